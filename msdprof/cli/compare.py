"""``msdprof compare``: msdprof's conventions, fvcore and FlopCounterMode per exit, gaps explained."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ..files.output import check_writable
from ..render import formatting
from .options import add_format_option, add_network_options, add_output_options, network_options, show


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "compare", help="msdprof's conventions, fvcore and FlopCounterMode per exit, differences "
                        "explained operator by operator",
        description="Why FLOP counters disagree. For each exit k, what each tool counts for "
                    "blocks and heads 1..k (cumulative) of the same real CPU model: msdprof in "
                    "each convention (msdnet, macs, flops), fvcore's FlopCountAnalysis with its "
                    "default handles, and torch's FlopCounterMode; then every pair's gap as the "
                    "sum of its operators' differences (anything no operator holds is shown as "
                    "unexplained). A tool that fails is a note in the output.",
    )
    add_network_options(p)
    add_format_option(p, formatting.FORMATS, "; csv: a row per exit and operator, a column "
                                               "per tool, notes on stderr")
    add_output_options(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> None:
    from ..render import compare_view
    from ..analysis.compare import compare_msdnet

    fmt = formatting.check_format(args.format, compare_view.FORMATS)
    options, name = network_options(args)
    if args.output:
        check_writable(args.output, args.force)  # before any work
    result = compare_msdnet(options, input_size=args.input_size)
    describe = f"{name} ({options.describe()})" if name else options.describe()
    extra = {**({"preset": name} if name else {}), "options": options.as_dict()}
    show(args, fmt, lambda: compare_view.renderable(result, describe),
         lambda: compare_view.render(result, fmt, describe,
                                     **({"extra": extra} if fmt == "json" else {})))
    if fmt == "csv":
        for note in result.notes:
            print(f"msdprof compare: note: {note}", file=sys.stderr)
