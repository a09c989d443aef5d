"""How long ``msdprof compare`` takes against ``msdprof count``, on the same preset, in one run.

    python benchmarks/bench_compare.py [--preset imagenet-step4] [--runs 3] [--save]

Both commands run as a user runs them: ``python -m msdprof.cli CMD --preset P`` in a fresh process
(imports included), alternately, ``--runs`` times each after one untimed run of each; the medians
and their ratio are printed, with the load average before and after (the machine may be shared:
both commands meet the same load since they alternate).  Issue 26's target: compare at most 5x
count on ``imagenet-step4`` (PASS/FAIL; exit code 1 on FAIL).  Then, in this process, where
compare's time goes (msdprof's record, fvcore's one trace of the real model, FlopCounterMode on
the meta twin).  ``--save`` also writes what it prints to
``benchmarks/results/bench_compare.json``.  Not run by the test suite.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

from results import add_save_option, recorded

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TARGET = 5.0


def timed(argv: list[str]) -> float:
    env = {**os.environ, "PYTHONPATH": ROOT + os.pathsep + os.environ.get("PYTHONPATH", "")}
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "msdprof.cli", *argv], check=True, env=env,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def phases(preset: str) -> list[tuple[str, float]]:
    """Seconds of each part of compare, in this process (imports done)."""
    sys.path.insert(0, ROOT)
    import torch

    from msdnet import build_model
    from msdnet import preset as get_preset
    from msdprof.analysis import compare as c
    from msdprof.core.dataflow import Inputs, evaluating

    options = get_preset(preset)
    found = []
    start = time.perf_counter()
    twin = build_model(options, device="meta")
    found.append(("build the meta twin", time.perf_counter() - start))
    start = time.perf_counter()
    real = build_model(options, device="cpu")
    found.append(("build the real CPU model", time.perf_counter() - start))
    image = torch.zeros(1, 3, *twin.plan.input_size)
    meta = image.to("meta")
    start = time.perf_counter()
    flow = c.record_network(twin, inputs=(meta,))
    c._msdprof(twin, flow)
    found.append(("msdprof: one record, 3 conventions", time.perf_counter() - start))
    with torch.no_grad():
        start = time.perf_counter()
        with evaluating(real):
            c._fvcore(real, Inputs((image,)), None, len(flow.outputs))
        found.append(("fvcore: one trace of the real model", time.perf_counter() - start))
        start = time.perf_counter()
        with evaluating(twin):
            c._torch(twin, Inputs((meta,)), None, True)
        found.append(("FlopCounterMode: one run on meta", time.perf_counter() - start))
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="imagenet-step4")
    parser.add_argument("--runs", type=int, default=3)
    args = add_save_option(parser).parse_args()
    with recorded("bench_compare", args.save):
        return run(args)


def run(args: argparse.Namespace) -> int:
    count, compare = ["count", "--preset", args.preset], ["compare", "--preset", args.preset]
    print(f"load average before: {os.getloadavg()[0]:.2f}")
    timed(count), timed(compare)  # untimed: caches warm
    times: dict[str, list[float]] = {"count": [], "compare": []}
    for _ in range(args.runs):
        times["count"].append(timed(count))
        times["compare"].append(timed(compare))
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    medians = {cmd: statistics.median(ts) for cmd, ts in times.items()}
    for cmd, ts in times.items():
        print(f"msdprof {cmd} --preset {args.preset}: median {medians[cmd]:.2f} s of "
              + ", ".join(f"{t:.2f}" for t in ts))
    ratio = medians["compare"] / medians["count"]
    verdict = "PASS" if ratio <= TARGET else "FAIL"
    print(f"{verdict} compare / count = {ratio:.1f}x (target <= {TARGET:.0f}x)")
    print("where compare's time goes (in-process, imports done):")
    for what, seconds in phases(args.preset):
        print(f"  {what:40s} {seconds:6.2f} s")
    return 0 if verdict == "PASS" else 1


if __name__ == "__main__":
    sys.exit(main())
