"""Sweeps on a Dask cluster: throughput, and the caller's memory as 10k, 100k and 1M configurations
stream through it.

    pip install -e '.[cluster]'
    python benchmarks/bench_sweep_cluster.py [--quick] [--save]

A Dask ``LocalCluster`` of one single-threaded worker process per CPU runs in a process of its own
(as a remote scheduler would); each sweep is ``msdprof.sweep(..., executor=client.get_executor())``
in a fresh *caller* process connected to it, as ``msdprof sweep --dask ADDRESS`` does.  The grids
(:func:`grid`) are :data:`SIZES` configurations of small networks (1 to 5 blocks, 2 scales,
16-pixel images, every one counted), ``--top 10`` kept: the same networks at each size (only the
growth rate's range grows), so the throughput is comparable and the caller's memory can only grow
with the count itself.  Measured per sweep: wall seconds, configurations per second, the caller's
CPU seconds (all its threads: Dask's event loop deserialising the results, and reading every
outcome), and the caller's peak resident memory above its resident memory once connected (Linux's
``VmHWM``, reset to the resident size first), sampled too as the sweep streams.

Then on this machine without Dask: the 100,000-configuration grid with a pool of one process per
CPU (``jobs``; its result must be the Dask one, byte for byte as JSON), and the 10,000 MSDNet-size
configurations of ``benchmarks/bench_count.py`` (cifar10-anytime, up to 469 layers) for what one
machine counts of real networks.  From these: when one machine stops being enough.  Targets are
checked and printed as PASS/FAIL; the exit code is 1 if one fails.  ``--save`` also writes what it
prints to ``benchmarks/results/bench_sweep_cluster.json``.  Not run by the test suite.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from bench_count import SWEEP_BASE, SWEEP_GRID, _status_mb, _table  # noqa: E402
from results import add_save_option, recorded  # noqa: E402

SIZES = (10_000, 100_000, 1_000_000)
QUICK_SIZES = (10_000, 20_000)
LOCAL_SIZE = 100_000  # the most one sweep counts without an executor (MAX_CONFIGURATIONS)
TOP = 10
FLAT_MB = 20.0  # the caller's peak at the largest size above its peak at the smallest, at most
DASK_SHARE = 0.5  # the Dask sweep's throughput over the local pool's on the same cores, at least
CALLER_RATE = 10_000  # configurations the caller reads per CPU second, at least


def grid(size: int) -> dict[str, str]:
    """``size`` (a multiple of 10,000) configurations: 80 network shapes (nBlocks 1..5, step 1..4,
    base 1..4) x 125 stem widths x ``size / 10,000`` growth rates."""
    return {"nBlocks": "1:5", "step": "1:4", "base": "1:4", "nChannels": "1:125",
            "growthRate": f"2:{2 * size // 10_000}:2"}


def base():
    from msdnet import Options

    return Options(nChannels=4, growthRate=2, grFactor=(1, 2), bnFactor=(1, 2), base=1)


INPUT_SIZE = 16


def digest(result) -> str:
    return hashlib.sha256(json.dumps(result.as_dict(), sort_keys=True).encode()).hexdigest()


def _reset_peak() -> None:
    try:  # start the peak afresh at the resident size now (Linux >= 4.0)
        with open("/proc/self/clear_refs", "w") as clear:
            clear.write("5")
    except OSError:
        pass


def serve_cluster(workers: int) -> None:
    """A LocalCluster of ``workers`` single-threaded processes; prints its address, then serves it
    until its standard input closes."""
    from distributed import LocalCluster

    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                      dashboard_address=":0") as cluster:
        print(cluster.scheduler_address, flush=True)
        sys.stdin.read()


def measure_caller(size: int, address: str) -> dict:
    """In this (fresh) process: the sweep of :func:`grid` ``(size)`` on the cluster at ``address``."""
    from distributed import Client

    from msdprof.analysis.sweep import sweep

    with Client(address, set_as_default=False) as client:
        executor = client.get_executor(pure=False)
        sweep(grid(10_000), base(), input_size=INPUT_SIZE, top=TOP, executor=executor)  # warm-up
        _reset_peak()
        baseline = _status_mb("VmRSS")
        samples: list[tuple[int, float]] = []

        def progress(done: int, total: int) -> None:
            samples.append((done, _status_mb("VmRSS")))

        cpu = time.process_time()
        start = time.perf_counter()
        result = sweep(grid(size), base(), input_size=INPUT_SIZE, top=TOP, executor=executor,
                       progress=progress)
        seconds = time.perf_counter() - start
        cpu = time.process_time() - cpu
    quarters = [next(rss for done, rss in samples if done >= size * q // 4) - baseline for q in (1, 2, 3, 4)]
    return {"size": result.size, "counted": result.counted, "seconds": seconds, "caller_cpu": cpu,
            "baseline_mb": baseline, "peak_mb": _status_mb("VmHWM") - baseline, "quarters_mb": quarters,
            "digest": digest(result)}


def measure_local(which: str) -> dict:
    """In this (fresh) process: a sweep on a pool of one process per CPU: ``tiny`` the
    :data:`LOCAL_SIZE` grid of :func:`grid`, ``real`` bench_count's MSDNet-size grid."""
    from msdprof.analysis.sweep import sweep

    jobs = os.cpu_count() or 1
    before = os.times()
    start = time.perf_counter()
    if which == "tiny":
        result = sweep(grid(LOCAL_SIZE), base(), input_size=INPUT_SIZE, top=TOP, jobs=jobs)
    else:
        result = sweep(SWEEP_GRID, SWEEP_BASE, top=TOP, jobs=jobs)
    seconds = time.perf_counter() - start
    after = os.times()
    cpu = sum(getattr(after, f) - getattr(before, f)
              for f in ("user", "system", "children_user", "children_system"))
    return {"size": result.size, "counted": result.counted, "seconds": seconds, "cpu": cpu,
            "digest": digest(result)}


def fresh(*argv: str) -> dict:
    out = subprocess.run([sys.executable, __file__, *argv], check=True, capture_output=True,
                         text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help=f"sweeps of {', '.join(map(str, QUICK_SIZES))} only: a smoke test, targets not checked")
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--caller", nargs=2, metavar=("SIZE", "ADDRESS"), help=argparse.SUPPRESS)
    parser.add_argument("--local", choices=("tiny", "real"), help=argparse.SUPPRESS)
    args = add_save_option(parser).parse_args()
    if args.serve:
        serve_cluster(args.serve)
        return 0
    if args.caller:
        print(json.dumps(measure_caller(int(args.caller[0]), args.caller[1])))
        return 0
    if args.local:
        print(json.dumps(measure_local(args.local)))
        return 0
    with recorded("bench_sweep_cluster", args.save):
        return run(args)


def run(args: argparse.Namespace) -> int:
    import dask
    import distributed
    import torch

    workers = os.cpu_count() or 1
    sizes = QUICK_SIZES if args.quick else SIZES
    print(f"## msdprof sweeps on a Dask cluster: {', '.join(f'{s:,}' for s in sizes)} configurations\n")
    print(f"Machine: {platform.system()} {platform.machine()}, {workers} CPUs, "
          f"{platform.python_implementation()} {platform.python_version()}, torch {torch.__version__}, "
          f"dask {dask.__version__}, distributed {distributed.__version__}.\n")
    print(f"Cluster: a Dask LocalCluster of {workers} single-threaded worker processes and its "
          "scheduler, in a process of their own; each sweep in a fresh caller process connected to "
          f"it, `--top {TOP}` kept.\n")

    load_before = os.getloadavg()
    with tempfile.TemporaryFile("w+") as log:  # the cluster's log: shown only if it fails to start
        server = subprocess.Popen([sys.executable, __file__, "--serve", str(workers)],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, text=True)
        try:
            address = server.stdout.readline().strip()
            if not address:
                log.seek(0)
                sys.exit(f"the Dask LocalCluster did not start:\n{log.read()[-4000:]}")
            runs = [fresh("--caller", str(size), address) for size in sizes]
        finally:
            server.stdin.close()
            server.wait(timeout=60)
    local = fresh("--local", "tiny") if not args.quick else None
    real = fresh("--local", "real") if not args.quick else None
    load_after = os.getloadavg()

    shown = " ".join(f"--{k} {v}" for k, v in grid(sizes[-1]).items() if k != "growthRate")
    print(f"Grids: `{shown} --growthRate 2:N:2` over nChannels 4, growthRate 2, grFactor 1-2, "
          f"bnFactor 1-2, base 1, input 16 (N = size / 5,000).\n")
    rows = []
    for run in runs:
        rows.append([f"{run['size']:,} ({run['counted']:,} counted)", f"{workers} Dask workers",
                     f"{run['seconds']:.1f}", f"{run['size'] / run['seconds']:,.0f}",
                     f"{run['caller_cpu']:.1f}", f"{run['size'] / run['caller_cpu']:,.0f}",
                     f"{run['baseline_mb']:.0f}", f"{run['peak_mb']:.1f}",
                     " / ".join(f"{q:.1f}" for q in run["quarters_mb"])])
    if local:
        rows.append([f"{local['size']:,} ({local['counted']:,} counted)", f"jobs {workers} (no Dask)",
                     f"{local['seconds']:.1f}", f"{local['size'] / local['seconds']:,.0f}", "", "", "", "", ""])
    print(_table(["configurations", "counted by", "wall s", "configurations / s", "caller CPU s",
                  "configurations / caller CPU s", "caller RSS MB once connected",
                  "caller peak MB above it", "caller RSS above it at 1/4, 1/2, 3/4, all (MB)"], rows))
    print()
    print(f"Load average (1, 5, 15 min) before: {', '.join(f'{x:.1f}' for x in load_before)}; after: "
          f"{', '.join(f'{x:.1f}' for x in load_after)} (on {workers} CPUs, which the caller and the "
          "scheduler share with the workers).\n")
    if args.quick:
        print("(--quick: targets not checked)")
        return 0

    first, last = runs[0], runs[-1]
    dask_rate = last["size"] / last["seconds"]
    local_rate = local["size"] / local["seconds"]
    per_core = real["size"] / real["cpu"]  # what a free core counts: wall time is the load's
    caller_rate = min(run["size"] / run["caller_cpu"] for run in runs)
    print(f"MSDNet-size networks on this machine alone (bench_count's grid over {SWEEP_BASE}, "
          f"{real['size']:,} configurations, jobs {workers}): {real['seconds']:.1f} s wall, "
          f"{real['size'] / real['seconds']:,.0f} configurations/s, {real['cpu']:.1f} CPU s: "
          f"{per_core:,.0f} configurations per CPU second.\n")
    print(f"When one machine stops being enough: a core counts {per_core:,.0f} MSDNet-size "
          f"configurations a second, so {workers} free cores count the local limit of "
          f"{LOCAL_SIZE:,} in {LOCAL_SIZE / per_core / workers / 60:.1f} min and 1,000,000 in "
          f"{1_000_000 / per_core / workers / 60:.0f} min (16 cores: {1_000_000 / per_core / 16 / 60:.1f} "
          f"min). Each Dask worker core adds about as much, until the caller, which reads every "
          f"outcome at {caller_rate:,.0f} configurations per CPU second here, is the limit: about "
          f"{caller_rate / per_core:,.0f} worker cores.\n")
    checks = [
        (last["peak_mb"] - first["peak_mb"] <= FLAT_MB,
         f"the caller's memory is flat in the grid size: {last['size']:,} configurations peak "
         f"{last['peak_mb'] - first['peak_mb']:.1f} MB above {first['size']:,} "
         f"({first['peak_mb']:.1f} MB and {last['peak_mb']:.1f} MB above the connected caller; "
         f"target <= {FLAT_MB:.0f} MB)"),
        (all(run["counted"] == run["size"] == size for run, size in zip(runs, sizes)),
         f"every configuration counted on the cluster, {sizes[-1]:,} in the largest sweep"),
        (local["digest"] == next(run["digest"] for run in runs if run["size"] == LOCAL_SIZE),
         f"the Dask sweep of {LOCAL_SIZE:,} configurations gives the local one's result (the same "
         "JSON)"),
        (dask_rate >= DASK_SHARE * local_rate,
         f"throughput: the Dask sweep of {last['size']:,} counts {dask_rate:,.0f} configurations/s "
         f"on {workers} workers, {dask_rate / local_rate:.2f} of the local pool's {local_rate:,.0f} "
         f"on the same cores (target >= {DASK_SHARE})"),
        (caller_rate >= CALLER_RATE,
         f"the caller reads at least {caller_rate:,.0f} configurations per CPU second (target >= "
         f"{CALLER_RATE:,})"),
    ]
    for ok, text in checks:
        print(f"{'PASS' if ok else 'FAIL'} {text}")
    return 0 if all(ok for ok, _ in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
