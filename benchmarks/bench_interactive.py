"""How fast the interactive layout page is written, and how big it is, in one run on this machine.

    python benchmarks/bench_interactive.py [--runs N] [--save]

For ``imagenet-step4`` and ``imagenet-step7``: the seconds :func:`msdprof.render.interactive.write_page`
takes from the preset name to the file on disk (the graph and the exit costs in all three
conventions from the layer plan, the Graphviz picture, the page), against the static alternative it embeds, ``.svg`` as
``msdprof graph -o layout.svg`` writes it (``layout_graph`` + ``drawing.write_graph``: one
convention, no costs).  The page's time is split into its parts (the graph and the exit costs in
three conventions from the plan, as ``network_page`` makes them for a preset; drawing the SVG with Graphviz; assembling the page).  Times are
wall-clock medians of ``--runs`` runs in this process after one untimed run, garbage collection
off, torch on 2 threads.  Then one fresh ``msdprof graph -o layout.html`` process (Python and
torch imports included), for the record.

Targets (issue 15): the imagenet-step7 page is written in under 2 s and is under 2 MB.  Printed
as PASS/FAIL; the exit code is 1 if one fails.  ``--save`` also writes what it prints to
``benchmarks/results/bench_interactive.json``.  Not run by the test suite.
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

import torch

from msdnet import resolve
from msdnet.plan import build_plan
from msdprof import layout_graph
from msdprof.analysis.graph import graph_from_plan
from msdprof.render import drawing
from msdprof.core.counting import CONVENTIONS
from msdprof.core.plan_costs import plan_costs_all
from msdprof.render.interactive import page, write_page
from results import add_save_option, recorded

PRESETS = ("imagenet-step4", "imagenet-step7")
TARGET_SECONDS = 2.0
TARGET_BYTES = 2 * 1024 * 1024


def median_seconds(run: Callable[[], object], runs: int) -> float:
    run()  # untimed: first-call costs (imports, caches)
    times = []
    gc.disable()
    try:
        for _ in range(runs):
            start = time.perf_counter()
            run()
            times.append(time.perf_counter() - start)
    finally:
        gc.enable()
    return statistics.median(times)


def parts(preset: str, runs: int) -> dict[str, float]:
    """Median seconds of each part of write_page for ``preset``."""
    state: dict[str, object] = {}

    def count() -> None:  # as network_page does for a preset: no module built
        plan = build_plan(resolve(preset))
        state["graphs"] = {c: graph_from_plan(plan, False, c) for c in CONVENTIONS}
        state["costs"] = plan_costs_all(plan)

    def draw() -> None:
        state["svg"] = drawing.render(state["graphs"]["msdnet"], "svg")  # type: ignore[index]

    def assemble() -> None:
        page(state["graphs"], state["costs"], svg=state["svg"])  # type: ignore[arg-type]

    return {"graphs and costs from the plan, 3 conventions": median_seconds(count, runs),
            "Graphviz drawing (neato)": median_seconds(draw, runs),
            "page assembly": median_seconds(assemble, runs)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="timed runs per measurement (default 5)")
    args = add_save_option(parser).parse_args()
    with recorded("bench_interactive", args.save):
        return run(args)


def run(args: argparse.Namespace) -> int:
    torch.set_num_threads(2)
    print(f"Machine: {platform.system()} {platform.machine()}, {os.cpu_count()} CPUs, "
          f"CPython {platform.python_version()}, torch {torch.__version__} "
          f"({torch.get_num_threads()} threads).\n")
    print(f"Time: median of {args.runs} runs after one untimed run, wall clock, gc off.\n")
    print("| preset | method | median s | time / .svg | file KB |")
    print("|---:|---:|---:|---:|---:|")
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for preset in PRESETS:
            html, svg = Path(tmp, f"{preset}.html"), Path(tmp, f"{preset}.svg")
            svg_s = median_seconds(lambda: drawing.write_graph(layout_graph(preset), svg, force=True), args.runs)
            html_s = median_seconds(lambda: write_page(html, preset, force=True), args.runs)
            size = html.stat().st_size
            results[preset] = (html_s, size)
            print(f"| {preset} | `.svg` (layout_graph + write_graph) | {svg_s:.3f} | 1.0x | "
                  f"{svg.stat().st_size / 1024:.0f} |")
            print(f"| {preset} | `.html` (write_page) | {html_s:.3f} | {html_s / svg_s:.1f}x | "
                  f"{size / 1024:.0f} |")
            for name, seconds in parts(preset, args.runs).items():
                print(f"| {preset} | of which: {name} | {seconds:.3f} |  |  |")
        command = [sys.executable, "-m", "msdprof.cli", "graph", "--preset", "imagenet-step7", "-o",
                   str(Path(tmp, "fresh.html"))]
        start = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True)
        fresh = time.perf_counter() - start
    print(f"\nOne fresh process, `msdprof graph --preset imagenet-step7 -o layout.html` (imports "
          f"included): {fresh:.2f} s.\n")
    seconds, size = results["imagenet-step7"]
    checks = [
        (seconds < TARGET_SECONDS, f"imagenet-step7 page written in {seconds:.2f} s (target < {TARGET_SECONDS:.0f} s)"),
        (size < TARGET_BYTES, f"imagenet-step7 page is {size / 1024 / 1024:.2f} MB (target < 2 MB)"),
    ]
    for ok, text in checks:
        print(f"{'PASS' if ok else 'FAIL'} {text}")
    return 0 if all(ok for ok, _ in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
