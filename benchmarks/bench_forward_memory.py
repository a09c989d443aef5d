"""How the memory limit of a forward on real tensors compares with the real forward.

Run: ``python benchmarks/bench_forward_memory.py [--save]`` (from the repository root; ``--save``
also writes what it prints to ``benchmarks/results/bench_forward_memory.json``).  A forward msdprof
runs on real tensors is refused when its inputs and ``FORWARD_MEMORY_FACTOR`` times the activation
storage its code holds (:meth:`msdprof.core.dataflow.Dataflow.held_peak`: checked before each
kernel inside the pass, and from the count's record on shapes before ``latency``'s and
``compare``'s real runs) pass ``MAX_BYTES``.  This prints, measured in this run, per model and
batch: that as-written peak (from the record on shapes alone: nothing allocated), the peak the CPU
allocator really reached
over the whole forward (``torch.profiler`` memory events, :func:`msdprof.measured_peaks`, the last
exit's figure), their ratio, and whether the estimate (factor times the as-written peak) is at
least the measured peak.  torch uses one thread.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "examples")]

from early_exit_models import CoarseToFine, SDNResNet  # noqa: E402
from msdnet.model import model_from  # noqa: E402
from msdprof.analysis.allocator import measured_peaks  # noqa: E402
from msdprof.core.dataflow import FORWARD_MEMORY_FACTOR, Inputs, record_shapes  # noqa: E402
from results import add_save_option, recorded  # noqa: E402


def row(name: str, model: torch.nn.Module, x: torch.Tensor) -> tuple[str, float, float]:
    flow = record_shapes(model, Inputs((x,)), False)
    held = flow.held_peak()
    measured = max(measured_peaks(model, x))
    ratio = measured / held
    covered = "yes" if FORWARD_MEMORY_FACTOR * held >= measured else "NO"
    print(f"| {name} | {len(x)} | {tuple(x.shape[2:])} | {held / 1e6:.2f} | {measured / 1e6:.2f} | "
          f"{ratio:.2f} | {covered} |", flush=True)
    return name, held, ratio


def main() -> int:
    args = add_save_option(argparse.ArgumentParser(description=__doc__.split("\n\n")[0])).parse_args()
    with recorded("bench_forward_memory", args.save):
        run()
    return 0


def run() -> None:
    torch.set_num_threads(1)
    print(f"estimate = inputs + {FORWARD_MEMORY_FACTOR} x as-written peak\n")
    print("| model | batch | input | as written MB | measured MB | measured / as written | estimate >= measured |")
    print("|---|---:|---|---:|---:|---:|---|")
    rows = []
    sdn, coarse = SDNResNet(), CoarseToFine()
    for batch, side in ((1, 32), (1, 256), (16, 128), (64, 32)):
        rows.append(row("SDNResNet", sdn, torch.randn(batch, 3, side, side)))
    for batch, side in ((1, 32), (8, 128)):
        rows.append(row("CoarseToFine", coarse, torch.randn(batch, 3, side, side)))
    for preset, side in (("cifar10-anytime", 32), ("imagenet-step4", 224)):
        net = model_from(preset, None, "cpu", use="measured")
        for batch in (1, 16):
            rows.append(row(preset, net, torch.randn(batch, 3, side, side)))
    big = [r for _, held, r in rows if held >= 10e6]
    small = [r for _, held, r in rows if held < 10e6]
    print(f"\nas written >= 10 MB: measured / as written from {min(big):.2f} to {max(big):.2f} "
          f"({len(big)} rows); below: from {min(small):.2f} to {max(small):.2f} ({len(small)} rows)")


if __name__ == "__main__":
    sys.exit(main())
