"""``msdprof compare``: msdprof's conventions, fvcore and FlopCounterMode per exit, gaps explained."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ..files.output import check_writable
from ..render import formatting
from .options import (
    add_format_option, add_model_options, add_network_options, add_output_options, network_options,
    model_io, progress, show, user_model,
)


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "compare", help="msdprof's conventions, fvcore and FlopCounterMode per exit, differences "
                        "explained operator by operator",
        description="Why FLOP counters disagree. For each exit k, what each tool counts for "
                    "what ran until outputs 1..k were complete (an MSDNet: blocks and heads 1..k) "
                    "of the same model: msdprof in each convention (msdnet, macs, flops), "
                    "fvcore's FlopCountAnalysis with its default handles (on a real CPU model), "
                    "and torch's FlopCounterMode; then every pair's gap as the sum of its "
                    "operators' differences (anything no operator holds is shown as unexplained). "
                    "Operators a tool did not see (e.g. FlopCounterMode: scaled-dot-product "
                    "attention and LSTM on CPU; fvcore: attention, recurrent layers) are named in "
                    "the notes with the figure that holds their work. A tool that fails is a note "
                    "in the output. With --model, your own early-exit network, as built.",
    )
    add_network_options(p)
    add_model_options(p)
    add_format_option(p, formatting.FORMATS, "; csv: a row per exit and operator, a column "
                                               "per tool, notes on stderr")
    add_output_options(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> None:
    from ..render import compare_view
    from ..analysis.compare import compare, compare_msdnet

    fmt = formatting.check_format(args.format, compare_view.FORMATS)
    options, name = network_options(args)
    if args.output:
        check_writable(args.output, args.force)  # before any work
    model = user_model(args)
    with progress(args, "counting with every tool") as tell:
        if model is not None:
            result = compare(model, progress=tell, **model_io(args))
        else:
            result = compare_msdnet(options, input_size=args.input_size, progress=tell)
    if model is not None:
        describe = f"{args.model} ({result.model})"
        extra: dict[str, Any] = {"factory": args.model}
    else:
        describe = f"{name} ({options.describe()})" if name else options.describe()
        extra = {**({"preset": name} if name else {}), "options": options.as_dict()}
    show(args, fmt, lambda: compare_view.renderable(result, describe),
         lambda: compare_view.render(result, fmt, describe,
                                     **({"extra": extra} if fmt == "json" else {})))
    if fmt == "csv":
        for note in result.notes:
            print(f"msdprof compare: note: {note}", file=sys.stderr)
