"""Per-exit counting against FlopCounterMode, in one process (issues 23 and 30).

Run: ``python benchmarks/bench_zoo.py [--save]`` (from the repository root; ``--save`` also writes
what it prints to ``benchmarks/results/bench_zoo.json``, which the docs' block is rendered from).  Prints, measured
in this run, the median seconds of each method and their ratios, then PASS/FAIL lines for issue
30's targets; exit code 1 when one fails.  gc is disabled while medians are timed (and enabled for
the pause check), torch uses one thread for the zoo; before timing, the methods' per-exit figures
are checked equal.

- The zoo (``tests/zoo``: tiny early-exit networks of every family, CPU): msdprof counts every exit
  (eager, lazy, direct, head, block; ``flops``) of the CPU model from one recorded forward, on
  shapes alone (a model that reads values: one real pass, once its first count, which tries
  shapes first, has seen it read them).  FlopCounterMode has no notion of exits: its best per-exit method is one forward stopped at
  each exit k (the zoo's hand-written ``exits=k``), under the MATH attention backend; one
  FlopCounterMode pass of the whole forward is the other yardstick.  Models with an ``nn.LSTM`` on
  CPU are timed but not checked (FlopCounterMode counts 0 for ``mkldnn_rnn_layer``).
- imagenet-step4: ``exit_costs`` against building the model on ``meta`` plus one bare meta forward
  (no counting), and the slowest of 30 calls against their median with gc on (collection pauses).
- A Llama-7B-shaped early-exit decoder (32 layers, hidden 4096, 32 heads, MLP 11008, vocabulary
  32000, one LM head shared by every 4th layer: 8 exits) built on ``meta``, 128 tokens, two threads.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import time
from pathlib import Path

import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(ROOT / "benchmarks")]

from bench_any_model import interleaved_medians, median_seconds  # noqa: E402  (the same timing: warm-up, gc off)
from msdnet import build_model, resolve  # noqa: E402
from msdprof import exit_costs  # noqa: E402
from results import add_save_option, recorded  # noqa: E402
from zoo import ENTRIES, eager_forward  # noqa: E402
from zoo.attention import LlamaSharedHead  # noqa: E402

RUNS = 9


def flop_counter_per_exit(model, inputs, exits: int) -> list[int]:
    """FlopCounterMode's best per-exit method: one forward stopped at each exit."""
    totals = []
    for k in range(1, exits + 1):
        with FlopCounterMode(display=False) as counter, sdpa_kernel(SDPBackend.MATH):
            eager_forward(model, inputs, k)
        totals.append(counter.get_total_flops())
    return totals


def flop_counter_once(model, inputs) -> int:
    with FlopCounterMode(display=False) as counter, sdpa_kernel(SDPBackend.MATH):
        model(*inputs)
    return counter.get_total_flops()


def zoo_rows() -> list[tuple[str, float, float, float]]:
    rows = []
    for name, entry in sorted(ENTRIES.items()):
        torch.manual_seed(0)
        model = entry.build().eval()
        inputs = entry.inputs("cpu")
        subject = entry.subject(model)

        def ours() -> list[int]:
            return [e.macs for e in exit_costs(subject, inputs=inputs, convention="flops")]

        exits = len(ours())
        if not entry.lstm_on_cpu:
            assert ours() == flop_counter_per_exit(model, inputs, exits), f"{name}: the methods disagree"
        rows.append((name, *interleaved_medians([ours, lambda: flop_counter_per_exit(model, inputs, exits),
                                                 lambda: flop_counter_once(model, inputs)], RUNS)))
    return rows


def imagenet_step4() -> tuple[float, float, float, float]:
    """(exit_costs median s, build on meta + bare forward median s, slowest / median with gc on,
    exit_costs median with gc on)."""
    options = resolve("imagenet-step4")

    def ours():
        return exit_costs("imagenet-step4")

    def bare():
        model = build_model(options, device="meta").eval()
        with torch.no_grad():
            model(torch.zeros(1, 3, 224, 224, device="meta"))

    ours_s, bare_s = median_seconds(ours, RUNS), median_seconds(bare, RUNS)
    times = []
    for _ in range(30):  # gc on, as a user's process runs it
        start = time.perf_counter()
        ours()
        times.append(time.perf_counter() - start)
    return ours_s, bare_s, max(times) / statistics.median(times), statistics.median(times)


def llama() -> tuple[float, float]:
    with torch.device("meta"):
        model = LlamaSharedHead(hidden=4096, layers=32, heads=32, intermediate=11008, vocab=32000).eval()
    ids = torch.zeros(1, 128, dtype=torch.long, device="meta")

    def ours() -> list[int]:
        return [e.macs for e in exit_costs(model, inputs=ids, convention="flops")]

    assert ours() == flop_counter_per_exit(model, (ids,), 8), "the methods disagree on the Llama-7B shape"
    return median_seconds(ours, 3), median_seconds(lambda: flop_counter_per_exit(model, (ids,), 8), 3)


def main() -> int:
    parser = add_save_option(argparse.ArgumentParser(description=__doc__.split("\n\n")[0]))
    args = parser.parse_args()
    with recorded("bench_zoo", args.save):
        return run()


def run() -> int:
    torch.set_num_threads(1)
    print(f"torch {torch.__version__}; medians of {RUNS} runs after one untimed run, gc off while timed; "
          "the methods of a row timed in turn, round by round")
    print()
    rows = zoo_rows()
    print(f"### Per-exit counting of the zoo ({len(rows)} tiny models, CPU, 1 thread)")
    print()
    print("| model | msdprof s | FlopCounterMode, a forward per exit, s | one FlopCounterMode pass, s "
          "| msdprof / per-exit | msdprof / one pass |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, ours, per_exit, once in rows:
        print(f"| {name} | {ours:.4f} | {per_exit:.4f} | {once:.4f} | {ours / per_exit:.2f}x | {ours / once:.2f}x |")
    total = [sum(r[i] for r in rows) for i in (1, 2, 3)]
    print(f"| **all** | {total[0]:.3f} | {total[1]:.3f} | {total[2]:.3f} | {total[0] / total[1]:.2f}x "
          f"| {total[0] / total[2]:.2f}x |")
    print()
    ours, bare, pause, gc_median = imagenet_step4()
    print("### exit_costs(\"imagenet-step4\") (5 exits, 224 px, 1 thread)")
    print()
    print("| method | median s | / msdprof |")
    print("|---|---:|---:|")
    print(f"| msdprof exit_costs (built on meta, every exit counted) | {ours:.4f} | 1.00x |")
    print(f"| building the model on meta + one bare meta forward | {bare:.4f} | {bare / ours:.2f}x |")
    print()
    print(f"30 calls with gc on: median {gc_median:.4f} s, the slowest {pause:.2f}x the median.")
    print()
    torch.set_num_threads(2)
    llama_s, llama_fcm = llama()
    print("### Llama-7B-shaped early-exit decoder on meta (32 layers, hidden 4096, 8 exits, 128 tokens, "
          "2 threads)")
    print()
    print("| method | median s | / msdprof |")
    print("|---|---:|---:|")
    print(f"| msdprof exit_costs (every exit, one forward, nothing allocated) | {llama_s:.3f} | 1.00x |")
    print(f"| FlopCounterMode, a forward per exit | {llama_fcm:.3f} | {llama_fcm / llama_s:.2f}x |")
    print()
    worst_per_exit = max(rows, key=lambda r: r[1] / r[2])
    worst_once = max(rows, key=lambda r: r[1] / r[3])
    checks = [
        (worst_per_exit[1] / worst_per_exit[2] <= 1.0,
         f"every zoo model within 1x FlopCounterMode's per-exit method (worst: {worst_per_exit[0]}, "
         f"{worst_per_exit[1] / worst_per_exit[2]:.2f}x)"),
        (worst_once[1] / worst_once[3] <= 2.0,
         f"every zoo model within 2x one FlopCounterMode pass (worst: {worst_once[0]}, "
         f"{worst_once[1] / worst_once[3]:.2f}x)"),
        (ours <= bare, f"exit_costs of imagenet-step4 within one meta build + bare forward "
                       f"({ours / bare:.2f}x of it)"),
        (pause <= 1.5, f"no exit_costs of imagenet-step4 above 1.5x the median with gc on ({pause:.2f}x)"),
        (llama_s < 1.0, f"Llama-7B-shaped decoder on meta in {llama_s:.3f} s (target < 1 s)"),
    ]
    for ok, text in checks:
        print(f"{'PASS' if ok else 'FAIL'} {text}")
    return 0 if all(ok for ok, _ in checks) else 1


if __name__ == "__main__":
    gc.collect()
    sys.exit(main())
