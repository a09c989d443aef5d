"""What each generated token costs, for a Llama-3-8B-shaped decoder with exits (issue 31).

Run: ``python benchmarks/bench_generate.py`` (from the repository root).  Prints, measured in this
run, then PASS/FAIL lines for issue 31's targets (exit code 1 when one fails), and saves what it
printed to ``benchmarks/results/bench_generate.json`` (:func:`results.save`).

The decoder: ``examples/llama3-8b.json`` (32 layers, hidden 4096, 32 heads, 8 key/value heads,
MLP 14336, vocabulary 128,256, bfloat16: 8.0 G parameters, 16 GB of weights) with exits after
layers 8, 16, 24 and 32, a 512-token prompt, every cache length from 1 to 8,192.

- The whole table in Python (``generation_costs``: the model built on ``meta`` from the config
  file, the prefill and three decode steps recorded on shapes, every exit at every length): the
  median of several calls in this process at two threads, after one call that imports
  transformers' model modules (reported apart); checked against the Llama closed form per layer.
- Nothing allocated: in a fresh process, the peak resident memory the call adds to the process
  after its imports (``ru_maxrss`` against the resident size before the call).
- ``msdprof generate`` on the same decoder and lengths, in a fresh process, start-up included (the
  Python interpreter, torch and transformers imports): the median wall time of three runs.
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]

import torch  # noqa: E402

from msdprof import generation_costs  # noqa: E402
from msdprof.files.hf_decoder import hf_decoder  # noqa: E402
from results import add_save_option, recorded  # noqa: E402

CONFIG = ROOT / "examples" / "llama3-8b.json"
EXITS, PROMPT, LENGTHS = "8,16,24,32", 512, "1:8192"
RUNS = 5
TABLE_TARGET, COMMAND_TARGET, MEMORY_TARGET = 2.0, 10.0, 512  # seconds, seconds, MB

D, D_KV, D_FF, VOCAB = 4096, 1024, 14336, 128256

MEMORY_PROBE = f"""
import resource, sys
sys.path.insert(0, {str(ROOT)!r})
import torch, transformers
from msdprof import generation_costs
torch.set_num_threads(2)
before = int(open("/proc/self/statm").read().split()[1]) * resource.getpagesize()
generation_costs(hf_config={str(CONFIG)!r}, exit_layers={EXITS!r}, prompt={PROMPT}, at={LENGTHS!r})
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(max(peak - before, 0))
"""


def table():
    return generation_costs(hf_config=CONFIG, exit_layers=EXITS, prompt=PROMPT, at=LENGTHS)


def layer_macs(cached: int) -> int:
    return 2 * D * D + 2 * D * D_KV + 2 * D * (cached + 1) + 3 * D * D_FF


def main() -> int:
    parser = add_save_option(argparse.ArgumentParser(description=__doc__.split("\n\n")[0]))
    args = parser.parse_args()
    with recorded("bench_generate", args.save):
        return measure()


def measure() -> int:
    out = print
    torch.set_num_threads(2)
    start = time.perf_counter()
    result = table()  # imports transformers' Llama modules, warms the kernel cache
    first = time.perf_counter() - start
    times = []
    gc.disable()
    try:
        for _ in range(RUNS):
            start = time.perf_counter()
            result = table()
            times.append(time.perf_counter() - start)
    finally:
        gc.enable()
    median = statistics.median(times)
    costs = result.table
    closed = all(e.token_macs[n] == layers * layer_macs(n) + D * VOCAB
                 for e, layers in zip(costs, (8, 16, 24, 32)) for n in (1, 512, 4096, 8192))
    probe = subprocess.run([sys.executable, "-c", MEMORY_PROBE], capture_output=True, text=True, check=True)
    added_mb = int(probe.stdout.split()[-1]) / 1e6
    command = [sys.executable, "-m", "msdprof.cli", "generate", "--hf-config", str(CONFIG), "--exit-layers",
               EXITS, "--prompt", str(PROMPT), "--at", LENGTHS]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    walls = []
    for _ in range(3):
        start = time.perf_counter()
        subprocess.run(command, capture_output=True, check=True, env=env, cwd=ROOT)
        walls.append(time.perf_counter() - start)
    wall = statistics.median(walls)

    out(f"torch {torch.__version__}, 2 threads, {os.cpu_count()} CPUs; Llama-3-8B-shaped decoder "
        f"({CONFIG.relative_to(ROOT)}), exits after layers {EXITS}, prompt {PROMPT}, L = {LENGTHS}")
    out()
    out("| what | seconds |")
    out("|---|---:|")
    out(f"| the whole table, first call in the process (imports transformers' model modules) | {first:.3f} |")
    out(f"| the whole table, median of {RUNS} calls (built on meta, prefill + "
        f"{len(costs.counted)} steps recorded, {len(costs.lengths):,} lengths x {len(costs)} exits) | {median:.3f} |")
    out(f"| msdprof generate, fresh process, start-up included (median of 3) | {wall:.3f} |")
    out()
    out(f"Counted at L = {', '.join(map(str, costs.counted))}; affine: {costs.affine}. Exit 1 at L = 8,192: "
        f"{costs[0].token_macs[8192]:,} MACs; exit 4: {costs[3].token_macs[8192]:,} MACs, its cache "
        f"{costs[3].cache_bytes[8192]:,} bytes, weights read {costs[3].weight_bytes:,} bytes.")
    model = hf_decoder(CONFIG, EXITS)  # on meta: its parameters' sizes, no values
    weights = sum(p.numel() * p.element_size() for p in model.parameters())
    out(f"Peak memory the call adds to a fresh process after its imports: {added_mb:.0f} MB "
        f"(the weights would take {weights / 1e9:.1f} GB).")
    out()
    checks = [
        (closed, "every exit's token cost at L = 1, 512, 4096, 8192 is the Llama closed form per layer "
                 "plus d x V"),
        (median < TABLE_TARGET, f"the whole table for L up to 8,192 in {median:.3f} s (target < {TABLE_TARGET:.0f} s)"),
        (added_mb < MEMORY_TARGET, f"nothing of the model's size allocated: {added_mb:.0f} MB added "
                                   f"(target < {MEMORY_TARGET} MB)"),
        (wall < COMMAND_TARGET, f"msdprof generate, start-up included, in {wall:.3f} s (target < "
                                f"{COMMAND_TARGET:.0f} s)"),
    ]
    for ok, text in checks:
        out(f"{'PASS' if ok else 'FAIL'} {text}")
    return 0 if all(ok for ok, _ in checks) else 1


if __name__ == "__main__":
    gc.collect()
    sys.exit(main())
