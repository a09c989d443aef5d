"""How fast graphs and pages are written at real-model size (issue 24, issue 26 item 7), in one run.

    python benchmarks/bench_graph.py [--quick] [--save]

1. A 1,000-layer MSDNet with its dense edges (``nBlocks=100, step=10, base=10``: some 2,100 maps
   and 336,000 edges): the graph from the layer plan alone (``layout_graph``, as ``msdprof graph``
   makes it now) against the graph from a built model counted by hooks (``graph_from_model``, as
   before), then each file written (``.json``, ``.dot``, ``.svg``).
2. The interactive page of a model of about 500 operations (a 40-block ViT of
   ``examples/transformer_models.py``, on the ``meta`` device), written by ``write_page``.
3. The page of an MSDNet with 250, 500 and 1,000 exits (1,000 layers at most) (``step=1, base=1``): the time ratio of
   each doubling (2 is linear; it was about 5.7 and 10 before the page computed ancestors itself).

Times are one wall-clock run each (these runs are long), in this process, torch on 2 threads;
``msdprof graph`` itself is timed in a new process too (start-up and imports included).
Targets: 1,000-layer dense ``.json`` and ``.dot`` written, graph included, in under 5 s; the
500-operation page in under 5 s; each doubling of the exits at most 2.5 times slower.  Printed as
PASS/FAIL (``.svg`` is printed for the record: Graphviz drawing 336,000 arcs is most of it);
the exit code is 1 if one fails.  ``--quick`` skips the counted graph and the 1,000-exit page.
``--save`` also writes what it prints to ``benchmarks/results/bench_graph.json``.  Not run by the
test suite.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))

from results import add_save_option, recorded  # noqa: E402
from transformer_models import ViT  # noqa: E402

from msdnet.model import model_from  # noqa: E402
from msdprof import layout_graph  # noqa: E402
from msdprof.analysis.graph import graph_from_model  # noqa: E402
from msdprof.render import drawing  # noqa: E402
from msdprof.render.interactive import write_page  # noqa: E402

DENSE = {"nBlocks": 100, "step": 10, "base": 10, "stepmode": "even"}
TARGET_SECONDS = 5.0


def seconds(run: Callable[[], object]) -> tuple[float, object]:
    start = time.perf_counter()
    result = run()
    return time.perf_counter() - start, result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="skip the counted graph and the 1,000-exit page")
    args = add_save_option(parser).parse_args()
    with recorded("bench_graph", args.save):
        return run(args)


def run(args: argparse.Namespace) -> int:
    torch.set_num_threads(2)
    print(f"Machine: {platform.system()} {platform.machine()}, {os.cpu_count()} CPUs, CPython "
          f"{platform.python_version()}, torch {torch.__version__}. One wall-clock run each.\n")
    checks = []
    with tempfile.TemporaryDirectory() as tmp:
        graph_s, graph = seconds(lambda: layout_graph(dense=True, **DENSE))
        layers = max(d["layer"] for _, d in graph.nodes(data=True))
        print(f"1. {layers}-layer MSDNet, dense: {graph.number_of_nodes()} nodes, {graph.number_of_edges()} edges")
        print(f"   graph from the plan (layout_graph): {graph_s:.2f} s")
        if not args.quick:
            counted_s, _ = seconds(lambda: graph_from_model(model_from(None, **DENSE), True))
            print(f"   graph from the built, counted model (graph_from_model): {counted_s:.2f} s "
                  f"({counted_s / graph_s:.1f}x the plan's)")
        for suffix in (".json", ".dot", ".svg"):
            write_s, _ = seconds(lambda: drawing.write_graph(graph, Path(tmp, "dense" + suffix), force=True))
            print(f"   {suffix}: written in {write_s:.2f} s, graph included {graph_s + write_s:.2f} s")
            if suffix != ".svg":
                checks.append((graph_s + write_s < TARGET_SECONDS,
                               f"{layers}-layer dense {suffix} in {graph_s + write_s:.2f} s (target < 5 s)"))
        options = [f"--{k}={v}" for k, v in DENSE.items()]
        for suffix in (".json", ".dot"):  # as a user runs it: a fresh interpreter, imports included
            command = [sys.executable, "-m", "msdprof.cli", "graph", *options, "--dense", "-o",
                       str(Path(tmp, "cli" + suffix))]
            cli_s, _ = seconds(lambda: subprocess.run(command, check=True, capture_output=True))
            print(f"   msdprof graph --dense -o {suffix[1:]} (a new process): {cli_s:.2f} s")
            checks.append((cli_s < TARGET_SECONDS,
                           f"msdprof graph of the {layers}-layer dense MSDNet to {suffix} in {cli_s:.2f} s (target < 5 s)"))

        with torch.device("meta"):  # shapes only, as msdprof counts an MSDNet
            model, warm = ViT(depth=40).eval(), ViT(depth=1).eval()
        write_page(Path(tmp, "warm.html"), warm, input_size=32)  # untimed: first-call imports (sympy ...)
        page_s, _ = seconds(lambda: write_page(Path(tmp, "vit.html"), model, input_size=32, force=True))
        operations = layout_graph(model, input_size=32).number_of_nodes()
        print(f"\n2. page of a 40-block ViT ({operations} operations and exits): {page_s:.2f} s")
        checks.append((page_s < TARGET_SECONDS, f"{operations}-operation page in {page_s:.2f} s (target < 5 s)"))

        print("\n3. page of an MSDNet by number of exits:")
        times = {}
        for exits in (250, 500) if args.quick else (250, 500, 1000):
            times[exits], _ = seconds(lambda: write_page(Path(tmp, f"e{exits}.html"), nBlocks=exits, step=1,
                                                          base=1, force=True))
            size = Path(tmp, f"e{exits}.html").stat().st_size / 1e6
            ratio = f", {times[exits] / times[exits // 2]:.2f}x the page of {exits // 2}" if exits // 2 in times else ""
            print(f"   {exits} exits: {times[exits]:.2f} s, {size:.1f} MB{ratio}")
            if exits // 2 in times:
                checks.append((times[exits] / times[exits // 2] <= 2.5,
                               f"{exits // 2} -> {exits} exits: {times[exits] / times[exits // 2]:.2f}x (target <= 2.5x)"))
    print()
    for ok, text in checks:
        print(f"{'PASS' if ok else 'FAIL'} {text}")
    return 0 if all(ok for ok, _ in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
