"""How fast and how lean msdprof counts, against the alternatives, in one run on this machine.

    make bench                              # or: python benchmarks/bench_count.py [--quick] [--save]

Per-exit counting (the cumulative multiply-adds of every exit, convention ``macs``) of the
``imagenet-step4`` and ``imagenet-step7`` presets, from the options to the numbers, by:

- msdprof (meta): ``exit_costs(preset)``: a model on the meta device, nothing allocated;
- msdprof (plan): ``options_costs(preset)``: from the layer plan alone, no module built (what
  ``msdprof sweep`` uses);
- msdprof (real CPU model): ``exit_costs(preset, device="cpu")``: build with real weights, count;
- fvcore: build a real CPU model, then ``FlopCountAnalysis`` of a wrapper running exits 1..k, for
  each exit k (conv + linear, as tests/test_exits.py reads it);
- FlopCounterMode: build a real CPU model, then ``torch.utils.flop_counter.FlopCounterMode``
  around ``model(x, exits=k)`` for each exit k (flops / 2).

All five must give the same per-exit numbers (checked and printed).  Times are medians of several
runs in this process after one untimed warm-up run.  Memory is the peak resident set size
(Linux's ``VmHWM``) above the one right after ``import torch``, in a fresh process per method that
runs it once (its own imports included); that run's time is the "first run" column.

Then, per configuration, the plan against the hooks (``exit_costs``, meta) on every preset and on
:data:`SAMPLES` configurations drawn (seeded) from :data:`SWEEP_GRID`; and the sweep of that grid
(10,000 configurations over ``cifar10-anytime``, ``msdprof sweep``'s default method) with the API
on every core, once, in a fresh process: its time, the CPU seconds of the process and its workers
(the machine may be shared: the load average is printed before and after), and its peak memory
beside that of a 1,000-configuration sweep (rows streamed: memory flat in the grid size).  The
targets of issues 8 and 16 are checked and printed as PASS/FAIL; the exit code is 1 if one fails.
``--save`` also writes what it prints to ``benchmarks/results/bench_count.json`` (the docs'
block is rendered from it).  Not run by the test suite.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from typing import Callable

import torch
from torch import nn

from results import add_save_option, recorded

PRESETS = ("imagenet-step4", "imagenet-step7")
METHODS = ("msdprof-meta", "msdprof-plan", "msdprof-cpu", "fvcore", "flopcounter")
LABELS = {
    "msdprof-meta": "msdprof (meta)",
    "msdprof-plan": "msdprof (plan, no modules)",
    "msdprof-cpu": "msdprof (real CPU model)",
    "fvcore": "fvcore FlopCountAnalysis",
    "flopcounter": "torch FlopCounterMode",
    "build": "(building the real CPU model alone)",
}
RUNS = {"msdprof-meta": 9, "msdprof-plan": 21, "msdprof-cpu": 5, "fvcore": 5, "flopcounter": 5, "build": 5}
SWEEP_BASE = "cifar10-anytime"
SWEEP_GRID = {"nBlocks": "1:10", "step": "1:10", "base": "1:10", "stepmode": "even,lin_grow",
              "growthRate": "6,8,12,16,24"}
SMALL_GRID = {"nBlocks": "1:10", "step": "1:10", "base": "1:10", "stepmode": "even", "growthRate": "6"}
QUICK_GRID = {"nBlocks": "1:4", "step": "1:2", "base": "1:5", "stepmode": "even"}
SAMPLES = 12
SWEEP_TOP = 10  # rows the memory runs keep

# Targets (issue 8)
FASTER_THAN_FVCORE = 10.0
MEMORY_MB = 100.0
# Targets (issue 16)
PLAN_FASTER_THAN_HOOKS = 50.0
SWEEP_SECONDS = 30.0
SWEEP_SIZE = 10_000
SWEEP_CORES = 2
MEMORY_GROWTH_MB = 20.0  # peak of the 10,000 sweep above the 1,000 one


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


def count_msdprof_plan(preset: str) -> list[int]:
    from msdprof.core.plan_costs import options_costs

    return [e.macs for e in options_costs(preset, convention="macs")]


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
    "msdprof-plan": count_msdprof_plan,
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


def _grid_values(options) -> str:
    return ", ".join(f"{k} {getattr(options, k)}" for k in SWEEP_GRID)


def _table(headers: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---:" for _ in headers) + "|"]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])


GRIDS = {"sweep": SWEEP_GRID, "small": SMALL_GRID, "quick": QUICK_GRID}


def measure_sweep(grid: str, top: int | None) -> dict[str, float]:
    """In this (fresh) process: the sweep of ``GRIDS[grid]`` over :data:`SWEEP_BASE` with the API
    on every core, once: wall seconds, CPU seconds of this process and its workers, the peak RSS of
    this process above the RSS before it (MB), and the configurations counted."""
    import gc

    from msdprof.analysis.sweep import sweep

    gc.disable()  # as every timing here; the sweep itself pauses the collector while counting
    try:
        with open("/proc/self/clear_refs", "w") as clear:
            clear.write("5")
    except OSError:
        pass
    baseline = _status_mb("VmRSS")
    before = os.times()
    start = time.perf_counter()
    result = sweep(GRIDS[grid], SWEEP_BASE, jobs=os.cpu_count() or 1, top=top)
    seconds = time.perf_counter() - start
    after = os.times()
    cpu = sum(getattr(after, f) - getattr(before, f)
              for f in ("user", "system", "children_user", "children_system"))
    return {"seconds": seconds, "cpu_seconds": cpu, "peak_mb": _status_mb("VmHWM") - baseline,
            "size": result.size, "counted": result.counted}


def fresh_sweep(grid: str, top: int | None) -> dict[str, float]:
    out = subprocess.run([sys.executable, __file__, "--fresh-sweep", grid, str(top or 0)],
                         check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def sample_configurations(count: int) -> list:
    """``count`` configurations of :data:`SWEEP_GRID` over :data:`SWEEP_BASE`, drawn with a fixed
    seed, that the network takes."""
    import itertools
    import random

    from msdnet import OptionError, resolve
    from msdprof.analysis.sweep import check_grid

    grid = check_grid(SWEEP_GRID)
    combos = list(itertools.product(*(values for _, values in grid)))
    picked = []
    for combo in random.Random(16).sample(combos, len(combos)):
        try:
            picked.append(resolve(SWEEP_BASE, **dict(zip((k for k, _ in grid), combo))))
        except OptionError:
            continue
        if len(picked) == count:
            return picked
    return picked


def per_configuration(quick: bool) -> list[dict[str, object]]:
    """The plan against the hooks on every preset and on :data:`SAMPLES` configurations of the
    sweep grid: median seconds of each (after one untimed run) and whether they agree."""
    from msdnet import PRESETS as ALL_PRESETS
    from msdprof import exit_costs
    from msdprof.core.plan_costs import options_costs

    configs = [(name, options) for name, options in ALL_PRESETS.items()]
    configs += [(f"sample {i + 1}", options)
                for i, options in enumerate(sample_configurations(2 if quick else SAMPLES))]
    out = []
    for name, options in configs:
        hooks = median_seconds(lambda: exit_costs(options, convention="macs"), 1 if quick else 3)
        plan = median_seconds(lambda: options_costs(options, convention="macs"), 3 if quick else 21)
        same = exit_costs(options, convention="macs") == options_costs(options, convention="macs")
        out.append({"name": name, "options": options, "hooks": hooks, "plan": plan, "same": same})
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="one run per method and a 40-configuration sweep: a smoke test, "
                             "no targets checked")
    parser.add_argument("--fresh", nargs=2, metavar=("METHOD", "PRESET"), help=argparse.SUPPRESS)
    parser.add_argument("--fresh-sweep", nargs=2, metavar=("GRID", "TOP"), help=argparse.SUPPRESS)
    args = add_save_option(parser).parse_args()
    if args.fresh:
        print(json.dumps(measure_fresh(*args.fresh)))
        return 0
    if args.fresh_sweep:
        grid, top = args.fresh_sweep
        print(json.dumps(measure_sweep(grid, int(top) or None)))
        return 0
    with recorded("bench_count", args.save):
        return run(args)


def run(args: argparse.Namespace) -> int:
    import fvcore

    from msdnet import PRESETS as ALL_PRESETS

    print("## msdprof benchmark: per-exit counting, and a sweep of 10,000 configurations\n")
    print(f"Machine: {platform.system()} {platform.machine()}, {os.cpu_count()} CPUs, "
          f"{platform.python_implementation()} {platform.python_version()}, torch {torch.__version__} "
          f"({torch.get_num_threads()} threads), fvcore {getattr(fvcore, '__version__', '?')}.\n")
    print("Time: median of N runs after one untimed run (options to per-exit numbers; the fvcore and "
          "FlopCounterMode times include building the real model). First run and memory: one run in "
          "a fresh process; memory is its peak RSS above the RSS right after `import torch`.\n")

    load_before = os.getloadavg()
    big = fresh_sweep("quick" if args.quick else "sweep", SWEEP_TOP)
    small = fresh_sweep("quick" if args.quick else "small", SWEEP_TOP)
    load_after = os.getloadavg()
    jobs = os.cpu_count() or 1
    configurations = per_configuration(args.quick)
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
        print(f"Per-exit MACs of {preset} agree across the five methods: "
              f"{'yes' if agree[preset] else 'NO'} ({', '.join(str(m) for m in count_msdprof_meta(preset))}).")
    print()
    print(_table(["configuration", "layers", "hooks (meta) median s", "plan median s", "hooks / plan",
                  "same ExitCosts"],
                 [[c["name"] if c["name"] in ALL_PRESETS else f"{c['name']}: {_grid_values(c['options'])}",
                   str(c["options"].nLayers), f"{c['hooks']:.4f}", f"{c['plan']:.5f}",
                   f"{c['hooks'] / c['plan']:.0f}x", "yes" if c["same"] else "NO"] for c in configurations]))
    print()
    sweep_rows = []
    for run, grid in ((big, SWEEP_GRID), (small, SMALL_GRID)):
        shown = " ".join(f"--{k} {v}" for k, v in grid.items())
        sweep_rows.append([f"`--preset {SWEEP_BASE} {shown}`" if not args.quick else "quick grid",
                           f"{run['size']} ({run['counted']} counted)", str(jobs), f"{run['seconds']:.1f}",
                           f"{run['cpu_seconds']:.1f}", f"{run['size'] / run['seconds']:.0f}",
                           f"{run['peak_mb']:.0f}"])
    print(_table(["sweep (API, plan, top 10 kept)", "configurations", "jobs", "wall s",
                  "CPU s (process + workers)", "configurations / s", "peak MB (main process)"], sweep_rows))
    print()
    print(f"Load average (1, 5, 15 min) before the sweeps: {', '.join(f'{x:.1f}' for x in load_before)}; "
          f"after: {', '.join(f'{x:.1f}' for x in load_after)} (on {jobs} CPUs; wall time is what "
          f"other processes left, CPU s / {jobs} what {jobs} free cores would take at best).")
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
        (min(c["hooks"] / c["plan"] for c in configurations) >= PLAN_FASTER_THAN_HOOKS,
         f"per configuration, the plan is at least {min(c['hooks'] / c['plan'] for c in configurations):.0f}x "
         f"faster than the hooks over {len(configurations)} configurations (target >= "
         f"{PLAN_FASTER_THAN_HOOKS:.0f}x)"),
        (all(c["same"] for c in configurations), "the plan and the hooks give the same ExitCosts on every one"),
        (big["size"] == SWEEP_SIZE and jobs == SWEEP_CORES and big["seconds"] <= SWEEP_SECONDS,
         f"sweep of {big['size']} configurations on {jobs} cores: {big['seconds']:.1f} s wall, "
         f"{big['cpu_seconds']:.1f} CPU s (target <= {SWEEP_SECONDS:.0f} s on {SWEEP_CORES} cores)"),
        (big["peak_mb"] - small["peak_mb"] <= MEMORY_GROWTH_MB,
         f"memory flat in the grid size: the {big['size']}-configuration sweep peaks "
         f"{big['peak_mb'] - small['peak_mb']:.0f} MB above the {small['size']}-configuration one "
         f"(target <= {MEMORY_GROWTH_MB:.0f} MB)"),
        (memory < MEMORY_MB,
         f"imagenet-step7 counting on meta: peak {memory:.0f} MB above the process after "
         f"`import torch` (target < {MEMORY_MB:.0f} MB)"),
        (all(agree.values()), "the five methods give the same per-exit MACs"),
    ]
    for ok, text in checks:
        print(f"{'PASS' if ok else 'FAIL'} {text}")
    return 0 if all(ok for ok, _ in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
