"""``msdprof count``: what each exit costs in operations and parameters, for one image."""

from __future__ import annotations

import argparse
from typing import Any

from msdnet.options import OptionError

from ..files.output import check_writable
from ..render import formatting
from .options import (
    add_batch_option, add_convention_option, add_format_option, add_model_options, add_network_options,
    add_output_options, memory_batch, model_io, network_options, refuse_meta, show, user_model,
)


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "count", help="per-exit multiply-adds and parameters",
        description="What each exit costs in operations and parameters, for one image. Exit k's "
                    "cumulative figure holds blocks 1..k and heads 1..k, as the authors count it.",
    )
    add_network_options(p)
    add_model_options(p)
    add_convention_option(p, "how operations are counted (msdnet agrees with the authors' op "
                             "counter; macs with fvcore's conv + linear and flops with "
                             "FlopCounterMode wherever those tools see every operator; 'msdprof "
                             "compare' shows the gaps and names what each tool missed)", explain=True)
    add_format_option(p, formatting.FORMATS)
    p.add_argument("--memory", action="store_true",
                   help="what memory each exit needs instead of the operation breakdown: "
                        "parameter bytes and peak activation bytes, eager and lazy, and where the "
                        "peak is (read off the same recorded pass; nothing allocated on meta)")
    add_batch_option(p, "; operations stay per image")
    p.add_argument("--device", metavar="DEV",
                   help="meta (default: counted on shapes alone, nothing allocated; a model that "
                        "reads tensor values runs on its real weights once, and the output says "
                        "so) or cpu (run on real weights and inputs; refused if its weights or its "
                        "forward would not fit in memory); with --model the model stays where "
                        "the factory built it unless --device moves it")
    p.add_argument("--sample-axis", action="store_true",
                   help="with --model and --inputs: the first axis of every tensor in the file(s) "
                        "indexes samples; each exit's figures come with their mean, min and max over "
                        "the samples where they differ (several --inputs files: one sample each)")
    add_output_options(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> None:
    from ..core.exits import exit_costs
    from ..core.memory import costs_and_memory

    fmt = formatting.check_format(args.format)
    options, name = network_options(args)
    if args.output:
        check_writable(args.output, args.force)  # before any work
    if args.device not in (None, "meta", "cpu"):
        raise OptionError("device", args.device, "must be meta or cpu")
    batch = memory_batch(args)
    model = user_model(args)
    real = args.device == "cpu"  # a run on the real weights and inputs, asked for
    io: dict = {"input_size": args.input_size}
    if model is not None:
        name, io = args.model, model_io(args)
        if args.device is not None:
            if args.device != "meta":
                refuse_meta(model, "device", args.device, f"{args.model} ",
                            "count it on meta (leave out --device)")
            model = model.to(args.device)
    network = model if model is not None else options
    if args.memory and "samples" in io:
        raise OptionError("inputs", " ".join(args.inputs), "with --memory, one sample: give one file "
                                                           "without --sample-axis")
    if args.memory:
        from ..render import memory_view

        costs, memories = costs_and_memory(network, convention=args.convention, batch=batch,
                                           device=args.device or "meta", real=real, **io)
        show(args, fmt, lambda: memory_view.memory_table(costs, memories, name),
             lambda: memory_view.render_memory(costs, memories, fmt, name))
        return
    costs = exit_costs(network, convention=args.convention, device=args.device or "meta", real=real, **io)
    show(args, fmt, lambda: formatting.rich_table(costs, name),
         lambda: formatting.render(costs, fmt, name))
