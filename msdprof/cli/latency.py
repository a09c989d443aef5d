"""``msdprof latency``: measured time per exit, eager and lazy; predicted vs real early exit."""

from __future__ import annotations

import argparse
from typing import Any

from msdnet.options import OptionError

from ..files.output import write_atomic
from ..render import formatting
from .options import (
    UsageError, add_convention_option, add_format_option, add_model_options, add_network_options,
    add_output_options, check_output_and_plot, model_io, network_options, refuse_meta, show, user_model,
)


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "latency", help="measured time per exit, eager and lazy; predicted vs real early exit",
        description="Time every exit with torch.utils.benchmark (warm-up, a fixed thread count, "
                    "blocked_autorange; CUDA synchronised): eager = model(x, exits=k), lazy = heads "
                    "1..k and only the maps they read; and, for any model (--model too), the time "
                    "to each output within one full forward, read by timestamp hooks only where "
                    "the outputs are made, with the hooks' cost measured. Per exit: median and "
                    "inter-quartile range in ms, runs, ms per G-op, and the rank correlation of "
                    "time with operations. With --thresholds, or --logits FILE and --p P, also "
                    "MSDNet.early_exit on the batch: measured time per image against sum_k "
                    "fraction_k x time to exit k and against the operation-count prediction. "
                    "Timings depend on the machine.",
    )
    add_network_options(p)
    add_model_options(p)
    add_convention_option(p, "unit of the operation counts")
    p.add_argument("--batch", metavar="N",
                   help="images (items) per call: default 1 of seeded random noise (token ids and "
                        "masks: zeros); with --inputs: all of them, or the first N")
    p.add_argument("--device", default="cpu", metavar="DEV", help="cpu (default) or cuda")
    p.add_argument("--threads", default="1", metavar="N",
                   help="torch intra-op threads while timing (default 1)")
    p.add_argument("--min-time", metavar="S",
                   help="seconds of timing per program (default: msdprof.analysis.latency.MIN_TIME, 1 s)")
    p.add_argument("--weights", metavar="FILE",
                   help="a state dict to load (torch.save(model.state_dict()); read with "
                        "weights_only=True); default: the authors' random initialisation")
    p.add_argument("--thresholds", metavar="T1,T2,...",
                   help="time MSDNet.early_exit with these thresholds, one per exit (the last is "
                        "ignored)")
    p.add_argument("--logits", metavar="FILE",
                   help="time MSDNet.early_exit with the thresholds calibrated on these saved "
                        "outputs' validation split (as msdprof budget --logits) for --p")
    p.add_argument("--p", metavar="P",
                   help="with --logits: the member of the authors' geometric family "
                        "(q = P/20; 1..39)")
    p.add_argument("--plot", metavar="FILE.svg", help="draw ms and ops per exit (two axes)")
    add_format_option(p, formatting.FORMATS, "; csv holds the per-exit rows only")
    add_output_options(p)
    p.set_defaults(run=run, msdnet_inputs=True)  # --inputs: an MSDNet's images too


def run(args: argparse.Namespace) -> None:
    from msdnet import build_model
    from msdnet.options import _whole

    from ..analysis import latency
    from ..render import latency_view
    from ..analysis.budget import calibrate, geometric
    from ..core.conventions import check_convention
    from ..core.dataflow import as_inputs
    from ..files.saved_outputs import load_outputs

    fmt = formatting.check_format(args.format, latency_view.FORMATS)
    if args.inputs is not None:  # one batch is timed: one file
        if len(args.inputs) > 1:
            raise OptionError("inputs", " ".join(args.inputs), "takes one file here: several samples are "
                                                               "counted by msdprof count")
        args.inputs = args.inputs[0]
    options, name = network_options(args)
    device = latency.check_device(args.device)
    threads, min_time = latency.check_threads(args.threads), latency.check_min_time(
        args.min_time if args.min_time is not None else str(latency.MIN_TIME))
    batch = latency.check_batch(args.batch) if args.batch is not None else None
    check_convention(args.convention)
    if args.thresholds is not None and args.logits is not None:
        raise UsageError("--thresholds and --logits are two ways to give the thresholds; give one")
    if (args.logits is None) != (args.p is None):
        raise UsageError("--logits FILE and --p P go together: the thresholds calibrated on FILE "
                         "for the distribution P")
    if args.model is not None:
        mine = {"weights": "give your model's state dict with --checkpoint",
                "thresholds": "timing an early exit needs MSDNet.early_exit (an MSDNet msdprof builds)",
                "logits": "timing an early exit needs MSDNet.early_exit (an MSDNet msdprof builds)"}
        for option, why in mine.items():
            if getattr(args, option) is not None:
                raise OptionError(option, getattr(args, option), f"is not for --model: {why}")
    check_output_and_plot(args)  # before any work
    model = user_model(args)
    if model is not None:
        refuse_meta(model, "model", args.model, "", "count it on meta (msdprof count)")
        name, io = args.model, model_io(args)
        x = io["inputs"] if io["inputs"] is not None else latency.random_inputs(model, io["input_size"], batch)
        inputs = f"inputs of {args.inputs}" if args.inputs is not None else "random normal inputs"
    else:
        model = build_model(options, args.input_size, device="cpu")
        shape = (3, *model.plan.input_size)
        if args.weights is not None:
            latency.load_weights(model, args.weights)
        if args.inputs is not None:
            x, inputs = latency.load_inputs(args.inputs, shape), f"images of {args.inputs}"
        else:
            x, inputs = latency.random_inputs(model, shape, batch), "random normal images"
    if args.inputs is not None:
        x = as_inputs(x)
        items = len(x.tensors[0]) if x.tensors[0].dim() else 0
        if batch is not None and batch > items:
            raise OptionError("batch", args.batch, f"is more than the {items} "
                                                   f"{'items' if args.model else 'images'} of {args.inputs}")
        x = x.map(lambda t: t[:batch])
    thresholds, source = None, "--thresholds"
    if args.thresholds is not None:
        thresholds = [t.strip() for t in args.thresholds.split(",")]
        try:
            thresholds = [float(t) for t in thresholds]
        except ValueError:
            raise OptionError("thresholds", args.thresholds, f"must be {options.nBlocks} numbers "
                              "joined by commas, one per exit (the last is ignored)") from None
    elif args.logits is not None:
        p = geometric(_whole("p", args.p, 1), options.nBlocks)
        outputs = load_outputs(args.logits, exits=options.nBlocks)
        thresholds, source = calibrate(outputs.val_pred, p), f"calibrated on {args.logits}, p={p.p}"
    model, x = model.to(device), as_inputs(x).map(lambda t: t.to(device))
    try:
        result = latency.measure_latency(model, x, threads=threads, min_time=min_time,
                                         convention=args.convention, thresholds=thresholds,
                                         source=source, outputs=io["outputs"] if args.model else None)
    except OptionError as error:
        if error.option == "inputs" and args.inputs is None:  # the batch was made of --input-size
            raise OptionError("input-size", args.input_size, error.allowed) from error
        if error.option == "batch" and args.batch is None:  # the batch is all of --inputs, or one
            option = "inputs" if args.inputs is not None else "input-size"
            raise OptionError(option, getattr(args, option.replace("-", "_")), error.allowed) from error
        raise
    if args.plot:
        write_atomic(args.plot, latency_view.latency_plot(result, name), force=args.force,
                     option="plot")
    show(args, fmt, lambda: latency_view.renderable(result, name, inputs, plain=False),
         lambda: latency_view.render(result, fmt, name, inputs))
