"""Per-exit counting of early-exit models msdprof did not build, against fvcore's best way (issue 12).

Run: ``python benchmarks/bench_any_model.py [--save]`` (from the repository root; ``--save`` also
writes what it prints to ``benchmarks/results/bench_any_model.json``).  Prints, measured in this
run, the median seconds of each method over several runs and msdprof's speed-up; gc is disabled
and torch uses one thread while timing.  Before timing, every method's per-exit figures are checked
equal (the ``macs`` convention), so each does the same work.

- SDN-style ResNet (examples/early_exit_models.py, width 16, 32 px): fvcore's by-module totals
  cannot tell which work ran before exit k, so its best per-exit method is one trace per exit of a
  wrapper returning outputs 1..k (the trace keeps what they read: msdprof's ``lazy``); msdprof counts
  every exit, eager and lazy, from one forward pass.
- imagenet-step4 MSDNet (a real CPU model): fvcore's single trace of the whole network read
  ``by_module`` (blocks.i and classifiers.i summed per exit) -- its best method, since this
  module tree separates the exits -- and fvcore's one trace per exit; msdprof on the same CPU model
  and on ``meta``.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import time
from pathlib import Path
from typing import Callable

import torch
from fvcore.nn import FlopCountAnalysis
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "examples")]

from early_exit_models import SDNResNet  # noqa: E402
from msdnet import PRESETS, build_model  # noqa: E402
from msdprof import exit_costs  # noqa: E402
from msdprof.analysis.compare import KeepAlive  # noqa: E402
from results import add_save_option, recorded  # noqa: E402

RUNS = 5


def median_seconds(f: Callable[[], object], runs: int = RUNS) -> float:
    return interleaved_medians([f], runs)[0]


def interleaved_medians(functions: list[Callable[[], object]], runs: int = RUNS) -> list[float]:
    """The median seconds of each of ``functions`` over ``runs`` rounds, each round calling every
    one once in turn (so that a change of the machine's load during the measurement falls on all
    of them alike), after one untimed call each (first calls import and compile); gc off."""
    for f in functions:
        f()
    times: list[list[float]] = [[] for _ in functions]
    gc.disable()
    try:
        for _ in range(runs):
            for f, spent in zip(functions, times):
                start = time.perf_counter()
                f()
                spent.append(time.perf_counter() - start)
    finally:
        gc.enable()
    return [statistics.median(spent) for spent in times]


def conv_linear(analysis: FlopCountAnalysis) -> int:
    analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
    by_op = analysis.by_operator()
    return by_op.get("conv", 0) + by_op.get("linear", 0)


class FirstOutputs(nn.Module):
    def __init__(self, model: nn.Module, k: int):
        super().__init__()
        self.model, self.k = model, k

    def forward(self, x):
        return torch.cat(list(self.model(x))[: self.k], dim=1)


def sdn_rows() -> list[tuple[str, float]]:
    model = SDNResNet(width=16).eval()
    x = torch.zeros(1, 3, 32, 32)

    def ours() -> list[int]:
        return [e.lazy_macs for e in exit_costs(model, input_size=32, convention="macs")]

    def fvcore_per_exit() -> list[int]:
        return [conv_linear(FlopCountAnalysis(FirstOutputs(model, k), x)) for k in (1, 2, 3)]

    assert ours() == fvcore_per_exit(), "the two methods disagree"
    return [("msdprof exit_costs (one forward: eager, lazy, direct, head, block)", median_seconds(ours)),
            ("fvcore, one trace per exit (lazy only)", median_seconds(fvcore_per_exit))]


def msdnet_rows() -> list[tuple[str, float]]:
    model = build_model(PRESETS["imagenet-step4"]).eval()
    meta = build_model(PRESETS["imagenet-step4"], device="meta")
    x = torch.zeros(1, 3, 224, 224)
    n = model.nBlocks

    def ours_cpu() -> list[int]:
        return [e.macs for e in exit_costs(model, convention="macs")]

    def ours_meta() -> list[int]:
        return [e.macs for e in exit_costs(meta, convention="macs")]

    def fvcore_by_module() -> list[int]:
        analysis = FlopCountAnalysis(KeepAlive(model, n), x)
        analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
        per = analysis.by_module_and_operator()
        part = [sum(per.get(f"model.{kind}.{i}", {}).get(op, 0) for kind in ("blocks", "classifiers")
                    for op in ("conv", "linear")) for i in range(n)]
        return [sum(part[:k]) for k in range(1, n + 1)]

    def fvcore_per_exit() -> list[int]:
        return [conv_linear(FlopCountAnalysis(KeepAlive(model, k), x)) for k in range(1, n + 1)]

    expected = ours_meta()
    assert ours_cpu() == expected == fvcore_by_module() == fvcore_per_exit(), "the methods disagree"
    return [("msdprof exit_costs, meta (nothing allocated)", median_seconds(ours_meta)),
            ("msdprof exit_costs, the real CPU model", median_seconds(ours_cpu)),
            ("fvcore, one trace read by_module", median_seconds(fvcore_by_module, 3)),
            ("fvcore, one trace per exit", median_seconds(fvcore_per_exit, 3))]


def table(title: str, rows: list[tuple[str, float]]) -> str:
    best = rows[0][1]
    lines = [f"### {title}", "", "| method | median s | msdprof (first row) faster by |", "|---|---:|---:|"]
    lines += [f"| {name} | {s:.3f} | {s / best:.1f}x |" for name, s in rows]
    return "\n".join(lines) + "\n"


def main() -> int:
    args = add_save_option(argparse.ArgumentParser(description=__doc__.split("\n\n")[0])).parse_args()
    with recorded("bench_any_model", args.save):
        return run()


def run() -> int:
    torch.set_num_threads(1)
    print(f"torch {torch.__version__}, 1 thread, gc off while timing, median of {RUNS} runs "
          "(fvcore on imagenet-step4: 3)\n")
    print(table("Per-exit counting of an SDN-style ResNet (3 exits, 32 px)", sdn_rows()))
    print(table("Per-exit counting of imagenet-step4 (5 exits, 224 px)", msdnet_rows()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
