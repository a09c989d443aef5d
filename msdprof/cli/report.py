"""``msdprof report``: a report per configuration (tables, totals, cost plot, layout picture)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, Sequence

from msdnet.options import OptionError

from ..files.output import check_writable
from ..render import drawing
from .options import (
    add_batch_option, add_convention_option, add_model_options, add_network_options,
    add_quiet_option, file_list, given_options, memory_batch, model_io, network_options, notice,
    output_name, progress, typed_io, user_model,
)


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "report", help="a report per configuration: tables, totals, cost plot, layout picture",
        description="A report on one MSDNet (or several side by side): options and layer plan, "
                    "the cost of every exit, totals, and beside it a cost-vs-exit plot and the "
                    "layout picture as SVG files (the layout needs Graphviz; without it the report "
                    "says so in its place). -o FILE.md writes Markdown, -o FILE.html HTML (its "
                    "layout section shows the interactive page FILE-layout.html, written beside it). "
                    "With --model, a report on your own early-exit network: the model, the cost of "
                    "every exit, what had no counting rule, totals, the plot and its dataflow graph.",
    )
    add_network_options(p)
    add_model_options(p)
    p.add_argument(
        "--compare", nargs="+", metavar="ITEM",
        help="several networks side by side; each ITEM is PRESET, PRESET:OPTION=V,OPTION=V or "
             "OPTION=V,OPTION=V (e.g. --compare cifar10-anytime cifar10-batch, or --preset "
             "cifar10-anytime --compare step=2,base=4 step=4,base=2); --preset and options given "
             "outside --compare are common to every ITEM",
    )
    p.add_argument("--all", action="store_true",
                   help="a report on every preset and an index (README.md) in the directory -o DIR")
    p.add_argument("--html", action="store_true", help="write HTML (with --all: index.html)")
    p.add_argument("--memory", action="store_true",
                   help="add a 'Memory per exit' section: parameter and peak activation bytes, "
                        "eager and lazy, and a bar chart FILE-memory.svg (not with --all)")
    add_batch_option(p)
    add_convention_option(p, "unit of the operation counts")
    p.add_argument("-o", "--output", metavar="FILE|DIR", required=True, type=output_name,
                   help="the report: FILE.md or FILE.html, its pictures FILE-*.svg beside it; "
                        "with --all a directory")
    p.add_argument("--force", action="store_true", help="replace files that exist")
    add_quiet_option(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> None:
    from ..render import report
    from ..core.conventions import check_convention

    check_convention(args.convention)
    given = given_options(args)
    if args.model is not None and args.compare:
        raise OptionError("compare", " ".join(args.compare), "cannot be used with --model: a report "
                                                             "on your own network is on it alone")
    batch = memory_batch(args)
    if args.all:
        for option, value in (("model", args.model), ("memory", "given" if args.memory else None), ("preset", args.preset),
                              ("input-size", args.input_size), *given.items(),
                              ("compare", args.compare and " ".join(args.compare))):
            if value is not None:
                raise OptionError(option, value, "cannot be used with --all, which reports every "
                                                 "preset as it is")
        fmt = "html" if args.html else "markdown"
        report.check_targets(args.output, [report.INDEX[fmt]], args.force)  # before any work
        with progress(args, "every preset") as tell:
            files = report.preset_files(fmt, args.convention, progress=tell)
        written = report.write_files(args.output, files, args.force)
        report_notice(args, report, written)
        return
    path, _ = report.check_report_path(args.output, args.html)
    check_writable(path, args.force)  # before any work
    model = user_model(args)
    with progress(args, "report") as tell:
        if tell is not None:
            tell(0, 1, "counting")
        if model is not None:
            configs = [report.model_configuration(model, args.model, convention=args.convention,
                                                  kwargs=args.model_kwargs, checkpoint=args.checkpoint,
                                                  typed=typed_io(args), **model_io(args))]
        elif args.compare:
            configs = report.compare_configurations(args.compare, args.preset, given, args.input_size,
                                                    args.convention)
        else:
            options, name = network_options(args)
            configs = [report.configuration(options, name, args.input_size, args.convention)]
        if args.memory:
            configs = [report.with_memory(c, batch, args.input_size) for c in configs]
        written = report.write_report(path, configs, html=args.html, force=args.force, progress=tell)
    report_notice(args, report, written)


def report_notice(args: argparse.Namespace, report: Any, written: Sequence[Path]) -> None:
    """``wrote a.md, a-cost.svg in DIR``, and that the layout pictures were left out (and why)."""
    where = {p.parent for p in written}
    place = "" if where == {Path(".")} or len(where) != 1 else f" in {where.pop()}"
    left_out = ("" if report.graphviz_available() else
                f"; left out the layout pictures: Graphviz's `{drawing.GRAPHVIZ_PROGRAM}` program "
                "was not found (apt-get install graphviz), the report says so in their place")
    names = sorted((p.name for p in written), key=lambda n: (n.endswith(".svg"), n))  # pages first
    notice(args, f"wrote {file_list(names)}{place}{left_out}")
