"""How fast and how lean msdprof counts, against the alternatives, in one run on this machine.

    make bench                              # or: python benchmarks/bench_count.py [--quick]

Per-exit counting (the cumulative multiply-adds of every exit, convention ``macs``) of the
``imagenet-step4`` and ``imagenet-step7`` presets, from the options to the numbers, by:

- msdprof (meta): ``exit_costs(preset)``: a model on the meta device, nothing allocated;
- msdprof (real CPU model): ``exit_costs(preset, device="cpu")``: build with real weights, count;
- fvcore: build a real CPU model, then ``FlopCountAnalysis`` of a wrapper running exits 1..k, for
  each exit k (conv + linear, as tests/test_exits.py reads it);
- FlopCounterMode: build a real CPU model, then ``torch.utils.flop_counter.FlopCounterMode``
  around ``model(x, exits=k)`` for each exit k (flops / 2).

All four must give the same per-exit numbers (checked and printed).  Times are medians of several
runs in this process after one untimed warm-up run.  Memory is the peak resident set size
(Linux's ``VmHWM``) above the one right after ``import torch``, in a fresh process per method that
runs it once (its own imports included); that run's time is the "first run" column.

Then a sweep of 1,000 configurations with the msdprof API on every core (:data:`SWEEP_GRID` over
``cifar10-anytime``).  The targets of issue 8 are checked and printed as PASS/FAIL; the exit code
is 1 if one fails.  Not run by the test suite.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from typing import Callable

import torch
from torch import nn

PRESETS = ("imagenet-step4", "imagenet-step7")
METHODS = ("msdprof-meta", "msdprof-cpu", "fvcore", "flopcounter")
LABELS = {
    "msdprof-meta": "msdprof (meta)",
    "msdprof-cpu": "msdprof (real CPU model)",
    "fvcore": "fvcore FlopCountAnalysis",
    "flopcounter": "torch FlopCounterMode",
    "build": "(building the real CPU model alone)",
}
RUNS = {"msdprof-meta": 9, "msdprof-cpu": 5, "fvcore": 5, "flopcounter": 5, "build": 5}
SWEEP_BASE = "cifar10-anytime"
SWEEP_GRID = {"nBlocks": "1:10", "step": "1:5", "base": "1:10", "stepmode": "even,lin_grow"}
SWEEP_RUNS = 3

# Targets (issue 8)
FASTER_THAN_FVCORE = 10.0
SWEEP_SECONDS = 60.0
SWEEP_SIZE = 1000
MEMORY_MB = 100.0


class FirstExits(nn.Module):
    """Blocks and heads 1..k, returning one tensor that depends on every map they compute (a
    tracer drops work no output depends on; summing every map keeps it without adding a conv)."""

    def __init__(self, model: nn.Module, k: int):
        super().__init__()
        self.model, self.k = model, k

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        total, maps = x.new_zeros(()), x
        for block, head in zip(self.model.blocks[: self.k], self.model.classifiers):
            maps = block(maps)
            total = total + head(maps).sum() + sum(m.sum() for m in maps)
        return total


def _real_model(preset: str):
    from msdnet import build_model, resolve

    model = build_model(resolve(preset)).eval()
    return model, torch.zeros(1, 3, *model.plan.input_size)


def count_msdprof_meta(preset: str) -> list[int]:
    from msdprof import exit_costs

    return [e.macs for e in exit_costs(preset, convention="macs")]


def count_msdprof_cpu(preset: str) -> list[int]:
    from msdprof import exit_costs

    return [e.macs for e in exit_costs(preset, convention="macs", device="cpu")]


def count_fvcore(preset: str) -> list[int]:
    from fvcore.nn import FlopCountAnalysis

    model, x = _real_model(preset)
    macs = []
    for k in range(1, model.nBlocks + 1):
        analysis = FlopCountAnalysis(FirstExits(model, k), x)
        analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
        by_op = analysis.by_operator()
        macs.append(by_op["conv"] + by_op["linear"])
    return macs


def count_flopcounter(preset: str) -> list[int]:
    from torch.utils.flop_counter import FlopCounterMode

    model, x = _real_model(preset)
    macs = []
    with torch.no_grad():
        for k in range(1, model.nBlocks + 1):
            with FlopCounterMode(display=False) as counter:
                model(x, exits=k)
            macs.append(counter.get_total_flops() // 2)
    return macs


def build_only(preset: str) -> list[int]:
    _real_model(preset)
    return []


COUNTERS: dict[str, Callable[[str], list[int]]] = {
    "msdprof-meta": count_msdprof_meta,
    "msdprof-cpu": count_msdprof_cpu,
    "fvcore": count_fvcore,
    "flopcounter": count_flopcounter,
    "build": build_only,
}


def _status_mb(field: str) -> float:
    """``VmRSS`` (resident now) or ``VmHWM`` (its peak) of this process, from Linux's /proc, in MB.
    (``ru_maxrss`` would not do: Linux carries it over from the parent process through exec.)"""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024  # kB
    raise RuntimeError(f"no {field} in /proc/self/status")


def measure_fresh(method: str, preset: str) -> dict[str, float]:
    """In this (fresh) process: run ``method`` once; its peak RSS above the RSS after ``import
    torch`` (imported at the top of this file, before anything else) and the time it took."""
    try:  # start the peak afresh at the resident size now (Linux >= 4.0)
        with open("/proc/self/clear_refs", "w") as clear:
            clear.write("5")
    except OSError:
        pass  # the peak then includes import torch's own
    baseline = _status_mb("VmRSS")
    start = time.perf_counter()
    COUNTERS[method](preset)
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "peak_mb": _status_mb("VmHWM") - baseline}


def fresh(method: str, preset: str) -> dict[str, float]:
    out = subprocess.run([sys.executable, __file__, "--fresh", method, preset],
                         check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def median_seconds(f: Callable[[], object], runs: int) -> float:
    f()  # warm-up, untimed
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        f()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _table(headers: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---:" for _ in headers) + "|"]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])


def run_sweep(quick: bool) -> tuple[float, int, int, int, float]:
    from msdprof.sweep import sweep

    grid = {"nBlocks": "1:4", "step": "1:2", "base": "1:5", "stepmode": "even"} if quick else SWEEP_GRID
    jobs = os.cpu_count() or 1
    times, cpu = [], []
    result = None
    for _ in range(1 if quick else SWEEP_RUNS):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        result = sweep(grid, SWEEP_BASE, jobs=jobs)
        times.append(time.perf_counter() - start)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu.append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
    assert result is not None
    return statistics.median(times), result.size, result.counted, jobs, statistics.median(cpu)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="one run per method and a 40-configuration sweep: a smoke test, "
                             "no targets checked")
    parser.add_argument("--fresh", nargs=2, metavar=("METHOD", "PRESET"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.fresh:
        print(json.dumps(measure_fresh(*args.fresh)))
        return 0

    import fvcore

    from msdnet import PRESETS as ALL_PRESETS

    print("## msdprof benchmark: per-exit counting, and a sweep of 1,000 configurations\n")
    print(f"Machine: {platform.system()} {platform.machine()}, {os.cpu_count()} CPUs, "
          f"{platform.python_implementation()} {platform.python_version()}, torch {torch.__version__} "
          f"({torch.get_num_threads()} threads), fvcore {getattr(fvcore, '__version__', '?')}.\n")
    print("Time: median of N runs after one untimed run (options to per-exit numbers; the fvcore and "
          "FlopCounterMode times include building the real model). First run and memory: one run in "
          "a fresh process; memory is its peak RSS above the RSS right after `import torch`.\n")

    sweep_seconds, size, counted, jobs, sweep_cpu = run_sweep(args.quick)
    results: dict[tuple[str, str], dict[str, float]] = {}
    agree = {}
    for preset in PRESETS:
        numbers = {m: COUNTERS[m](preset) for m in METHODS}
        agree[preset] = all(numbers[m] == numbers["msdprof-meta"] for m in METHODS)
        for method in (*METHODS, "build"):
            runs = 1 if args.quick else RUNS[method]
            seconds = median_seconds(lambda: COUNTERS[method](preset), runs)
            results[preset, method] = {"seconds": seconds, "runs": runs, **{
                f"fresh_{k}": v for k, v in fresh(method, preset).items()}}

    rows = []
    for preset in PRESETS:
        meta = results[preset, "msdprof-meta"]["seconds"]
        layers = ALL_PRESETS[preset].nLayers
        for method in (*METHODS, "build"):
            r = results[preset, method]
            ratio = "" if method == "build" else f"{r['seconds'] / meta:.1f}x"
            rows.append([f"{preset} ({layers} layers)", LABELS[method], f"{r['seconds']:.3f}",
                         str(r["runs"]), ratio, f"{r['fresh_seconds']:.2f}", f"{r['fresh_peak_mb']:.0f}"])
    print(_table(["preset", "method", "median s", "runs", "time / msdprof (meta)",
                  "first run s", "peak MB above torch"], rows))
    print()
    for preset in PRESETS:
        print(f"Per-exit MACs of {preset} agree across the four methods: "
              f"{'yes' if agree[preset] else 'NO'} ({', '.join(str(m) for m in count_msdprof_meta(preset))}).")
    print()
    grid = " ".join(f"--{k} {v}" for k, v in SWEEP_GRID.items())
    print(_table(["sweep", "configurations", "jobs", "median s", "runs", "configurations / s",
                  "CPU s (workers)"],
                 [[f"`msdprof sweep --preset {SWEEP_BASE} {grid}`" if not args.quick else "quick grid",
                   f"{size} ({counted} counted)", str(jobs), f"{sweep_seconds:.1f}",
                   str(1 if args.quick else SWEEP_RUNS), f"{size / sweep_seconds:.1f}", f"{sweep_cpu:.1f}"]]))
    print()
    if args.quick:
        print("(--quick: targets not checked)")
        return 0

    step4 = results["imagenet-step4", "msdprof-meta"]
    vs_fvcore = results["imagenet-step4", "fvcore"]["seconds"] / step4["seconds"]
    vs_cpu = results["imagenet-step4", "msdprof-cpu"]["seconds"] / step4["seconds"]
    memory = results["imagenet-step7", "msdprof-meta"]["fresh_peak_mb"]
    checks = [
        (vs_fvcore >= FASTER_THAN_FVCORE,
         f"imagenet-step4 per-exit counting: msdprof (meta) {vs_fvcore:.1f}x faster than fvcore "
         f"(target >= {FASTER_THAN_FVCORE:.0f}x)"),
        (vs_cpu > 1,
         f"imagenet-step4 per-exit counting: msdprof (meta) {vs_cpu:.1f}x faster than building and "
         "counting a real CPU model (target > 1x)"),
        (size == SWEEP_SIZE and sweep_seconds < SWEEP_SECONDS,
         f"sweep of {size} configurations on {jobs} cores: {sweep_seconds:.1f} s "
         f"(target < {SWEEP_SECONDS:.0f} s)"),
        (memory < MEMORY_MB,
         f"imagenet-step7 counting on meta: peak {memory:.0f} MB above the process after "
         f"`import torch` (target < {MEMORY_MB:.0f} MB)"),
        (all(agree.values()), "the four methods give the same per-exit MACs"),
    ]
    for ok, text in checks:
        print(f"{'PASS' if ok else 'FAIL'} {text}")
    return 0 if all(ok for ok, _ in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
