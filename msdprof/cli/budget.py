"""``msdprof budget``: what a budget buys (anytime exits, budgeted-batch expected cost, calibrated thresholds)."""

from __future__ import annotations

import argparse
from typing import Any

from msdnet.options import OptionError

from ..core.units import parse_count
from ..files.output import check_writable, write_atomic
from ..render import formatting
from .options import (
    UsageError, add_batch_option, add_convention_option, add_format_option, add_model_options,
    add_network_options, add_output_options, check_output_and_plot, memory_batch, model_io,
    network_options, notice, output_name, show, user_model,
)


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "budget", help="what a budget buys: anytime exits, budgeted-batch expected cost",
        description="Anytime (--anytime BUDGET): the deepest exit whose cumulative cost fits a "
                    "per-image budget, eager and lazy, and the budgets at which that answer "
                    "changes. Budgeted batch: the expected cost per image when a given fraction of "
                    "images leaves at each exit (--fractions, or the authors' geometric family "
                    "with --geometric); with --logits, confidence thresholds calibrated on saved "
                    "validation outputs and evaluated on the test outputs exactly as the authors' "
                    "adaptive_inference.py does: test accuracy vs expected cost.",
    )
    add_network_options(p)
    add_model_options(p)
    p.add_argument("--anytime", metavar="BUDGET",
                   help="per-image budget in operations, e.g. 300M, 1.5G, 2e8 (K, M, G, T = "
                        "10^3, 10^6, 10^9, 10^12)")
    p.add_argument("--memory", metavar="BYTES",
                   help="which exits fit a device's memory, e.g. 64MB, 1.5GB, 512MiB (MB = 10^6 "
                        "bytes, MiB = 2^20): parameters + inputs + peak activations, as written "
                        "and lazy")
    add_batch_option(p)
    p.add_argument("--fractions", metavar="F1,F2,...",
                   help="the fraction of images leaving at each exit: nBlocks numbers >= 0 "
                        "summing to 1, e.g. 0.5,0.3,0.2")
    p.add_argument("--exits-from", metavar="FILE",
                   help="the exit each image (or generated token) took, as msdprof generate reads "
                        "it (a JSON list, or a CSV column named exit): the share of each exit is its "
                        "fraction")
    p.add_argument("--geometric", action="store_true",
                   help="the authors' 39 distributions: fractions proportional to q^k, "
                        "q = p/20, p = 1..39 (the default with --logits)")
    p.add_argument("--logits", metavar="FILE",
                   help="saved per-exit softmax outputs: the authors' (val_pred, val_target, "
                        "test_pred, test_target) as .pt (read with weights_only=True) or the four "
                        "arrays by name in .npz; pred [exits, samples, classes], target [samples]")
    p.add_argument("--plot", metavar="FILE.svg", type=output_name,
                   help="with --logits: draw test accuracy against expected cost (eager and "
                        "lazy), the paper's Figure 4 curve")
    add_convention_option(p, "unit of the costs and budgets")
    add_format_option(p, ("table", "json", "csv"))
    add_output_options(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> None:
    from ..render import budget_view
    from ..analysis.budget import (anytime, anytime_steps, budgeted_batch, exits_distribution, expected_cost,
                                   geometric_family, given_fractions)
    from ..files.exit_trace import read_exits
    from ..core.conventions import check_convention
    from ..core.exits import exit_costs
    from ..files.saved_outputs import load_outputs

    fmt = formatting.check_format(args.format, budget_view.FORMATS)
    batch = [flag for flag, given in (("--fractions", args.fractions is not None),
                                      ("--exits-from", args.exits_from is not None),
                                      ("--geometric", args.geometric),
                                      ("--logits", args.logits is not None),
                                      ("--plot", args.plot is not None)) if given]
    if args.memory is not None and (batch or args.anytime is not None):
        raise UsageError(f"--memory (which exits fit a device) cannot be combined with "
                         f"{'--anytime' if args.anytime is not None else batch[0]}")
    batch_size = memory_batch(args)
    if args.anytime is not None and batch:
        raise UsageError(f"--anytime (one budget per image) cannot be combined with {batch[0]} "
                         "(budgeted batch)")
    if args.anytime is None and args.memory is None and not batch:
        raise UsageError("give --anytime BUDGET, --memory BYTES, or --fractions F1,F2,..., "
                         "--exits-from FILE, --geometric or --logits FILE")
    ways = [flag for flag in ("--fractions", "--exits-from", "--geometric") if flag in batch]
    if len(ways) > 1:
        raise UsageError(f"{ways[0]} and {ways[1]} are two ways to give the distribution; give one")
    if args.plot is not None and args.logits is None:
        raise OptionError("plot", args.plot, "needs --logits FILE: it draws test accuracy "
                                             "against expected cost")
    check_convention(args.convention)
    per_image = parse_count(args.anytime, "anytime") if args.anytime is not None else None
    if args.memory is not None:
        return _memory(args, fmt, batch_size)
    model = user_model(args)
    costs = None
    if model is not None:  # counted first: its number of exits is what the options are checked by
        costs = exit_costs(model, convention=args.convention, **model_io(args))
        name, exits = args.model, len(costs)
    else:
        options, name = network_options(args)
        exits = options.nBlocks
    given = given_fractions(args.fractions, exits) if args.fractions is not None else None
    if args.exits_from is not None:
        given = exits_distribution(read_exits(args.exits_from, exits), exits)
    family = geometric_family(exits) if per_image is None and given is None else None
    check_output_and_plot(args)
    outputs = load_outputs(args.logits, exits=exits) if args.logits is not None else None
    if costs is None:
        costs = exit_costs(options, convention=args.convention, input_size=args.input_size)
    if per_image is not None:
        parts: tuple[Any, ...] = (costs, anytime(costs, per_image), anytime_steps(costs))
        renderable, render = budget_view.anytime_renderable, budget_view.render_anytime
    elif outputs is None:
        distributions = [given] if given else family
        parts = (costs, [expected_cost(costs, d) for d in distributions])
        renderable, render = budget_view.expected_renderable, budget_view.render_expected
    else:
        calibrations = budgeted_batch(costs, outputs, [given] if given else family)
        if args.plot:
            write_atomic(args.plot, budget_view.accuracy_plot(costs, outputs, calibrations, name),
                         force=args.force, option="plot")
            notice(args, f"wrote {args.plot}")
        parts = (costs, outputs, calibrations)
        renderable, render = budget_view.calibration_renderable, budget_view.render_calibration
    show(args, fmt, lambda: renderable(*parts, name, plain=False), lambda: render(*parts, fmt, name))


def _memory(args: argparse.Namespace, fmt: str, batch: int) -> None:
    """``budget --memory BYTES``: which exits fit."""
    from ..analysis.budget import memory_fit
    from ..core.memory import costs_and_memory
    from ..core.units import parse_bytes
    from ..render import memory_view

    budget = parse_bytes(args.memory, "memory")
    if args.output:
        check_writable(args.output, args.force)
    model = user_model(args)
    if model is not None:
        name, network = args.model, model
    else:
        network, name = network_options(args)
    costs, memories = costs_and_memory(network, convention=args.convention, batch=batch,
                                       input_size=args.input_size)
    fit = memory_fit(memories, budget)
    show(args, fmt, lambda: memory_view.fit_table(costs, memories, fit, name),
         lambda: memory_view.render_fit(costs, memories, fit, fmt, name))
