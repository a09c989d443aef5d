"""The ``msdprof`` command: a thin layer over the API.

Every subcommand takes the network options under the authors' names (``--nBlocks 7 --stepmode
lin_grow ...``) and/or ``--preset NAME``.  A user mistake prints one line on stderr,
``msdprof: error: --OPTION VALUE: what is allowed``, and exits with code 2; nothing is written.
"""

from __future__ import annotations

import argparse
import difflib
import os
import sys
import traceback
from pathlib import Path
from typing import Any, Callable, Sequence

from msdnet import DEFAULT_PRESET, PRESETS, Options, resolve
from msdnet.options import OPTION_NAMES, OptionError, format_value

from . import drawing, formatting
from .conventions import CONVENTION_HELP
from .units import ROW_COLUMNS, parse_count
from .output import check_writable, write_atomic

# Everything that imports torch, networkx or matplotlib (the counting, the graph, the views) is
# imported by the command that uses it, inside its _run_* function: `msdprof --help` and
# `msdprof CMD --help` import none of them (tests/test_help.py), and start in a fraction of a second.

OPTION_HELP = {
    "nBlocks": "number of blocks = exits (authors' default 1)",
    "stepmode": "layers per block after the first: even | lin_grow (default even)",
    "step": "layers added per block after the first (default 1)",
    "base": "layers in the first block (default 4)",
    "nChannels": "stem channels at scale 0 (default 32; CIFAR recipes 16)",
    "growthRate": "channels each layer adds at scale 0 (default 6; ImageNet 16)",
    "grFactor": "per-scale channel multipliers, e.g. 1-2-4 (default); nScales = its length",
    "bnFactor": "per-scale bottleneck width factors (default 1-2-4)",
    "prune": "how scales are dropped in deep layers: max | min (default max)",
    "reduction": "transition compression, 0..1; 0 = no transitions (default 0.5)",
    "bottleneck": "1x1 bottleneck before each 3x3 conv: true | false (default true)",
    "data": "cifar10 | cifar100 | ImageNet: classes, stem, head, input size (default cifar10)",
}


class UsageError(Exception):
    """A command-line mistake argparse found; printed as one line, exit code 2."""


class CommandFailed(Exception):
    """A command that ran and found something wrong that is not the user's mistake (exit code 1)."""


class ArgumentParser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, no usage dump
        raise UsageError(f"{message} (see '{self.prog} --help')")

    def parse_known_args(self, args: Any = None, namespace: Any = None) -> Any:
        """As argparse's, but an unknown option is an error here, where this (sub)command's options
        are known: ``unrecognized arguments: --nblocks 7; did you mean --nBlocks?``."""
        namespace, extras = super().parse_known_args(args, namespace)
        unknown = [arg for arg in extras if arg.startswith("-")]
        if unknown:
            self.error(f"unrecognized arguments: {' '.join(extras)}{self.option_hint(unknown[0])}")
        return namespace, extras

    def option_hint(self, typed: str) -> str:
        """``; did you mean --nBlocks?`` for an option close to ``typed`` (any letter case), else ``""``."""
        by_lower = {s.lower(): s for action in self._actions for s in action.option_strings
                    if s.startswith("--")}
        close = difflib.get_close_matches(typed.split("=", 1)[0].lower(), by_lower, n=1, cutoff=0.7)
        return f"; did you mean {by_lower[close[0]]}?" if close else ""


def add_convention_option(parser: argparse.ArgumentParser, what: str, explain: bool = False) -> None:
    """``--convention NAME``: ``what`` says what it is the unit of; ``explain`` spells out each."""
    names = "; ".join(f"{k}: {v}" for k, v in CONVENTION_HELP.items()) if explain else ", ".join(CONVENTION_HELP)
    parser.add_argument("--convention", default="msdnet", metavar="NAME",
                        help=f"{what}: {names} (default msdnet)")


def add_format_option(parser: argparse.ArgumentParser, formats: Sequence[str], more: str = "") -> None:
    """``--format FMT`` among ``formats`` (the first, ``table``, is the default)."""
    parser.add_argument("--format", default="table", metavar="FMT",
                        help=" | ".join(formats) + " (default table: rich in a terminal, plain when "
                             "piped); json and csv hold exact integers" + more)


def add_network_options(parser: argparse.ArgumentParser) -> None:
    """``--preset``, every MSDNet option under the authors' name, and ``--input-size``."""
    group = parser.add_argument_group(
        "network",
        f"A preset, options, or both (options override the preset). With neither: the "
        f"'{DEFAULT_PRESET}' recipe; options without a preset start from the authors' defaults.",
    )
    group.add_argument("--preset", metavar="NAME", help="one of: " + ", ".join(PRESETS))
    for name in OPTION_NAMES:
        group.add_argument(f"--{name}", metavar="V", help=OPTION_HELP[name])
    group.add_argument(
        "--input-size", metavar="S|HxW",
        help="input image side in pixels (default 32 for CIFAR, 224 for ImageNet); with --model "
             "also CxHxW (3 channels unless given)",
    )


def add_model_options(parser: argparse.ArgumentParser) -> None:
    """``--model``, ``--model-kwargs`` and ``--checkpoint``: any early-exit network of the user's."""
    group = parser.add_argument_group(
        "your own model",
        "Any nn.Module whose forward returns one output per exit (a list or tuple, exit 1 first, "
        "or a dict). Counted as built, on one zero image of --input-size (needed).",
    )
    group.add_argument("--model", metavar="FILE.py:FACTORY",
                       help="the factory returning the model: FILE.py:FACTORY or "
                            "package.module:FACTORY (called with no arguments unless --model-kwargs)")
    group.add_argument("--model-kwargs", metavar="JSON",
                       help="keyword arguments for the factory, a JSON object: '{\"width\": 8}'")
    group.add_argument("--checkpoint", metavar="FILE",
                       help="a state dict to load (torch.load weights_only=True; a 'state_dict' "
                            "key and 'module.' prefixes are understood); counts do not depend on it")
    group.add_argument("--debug", action="store_true",
                       help="when your model's code raises, also print its traceback")


def given_options(args: argparse.Namespace) -> dict[str, str]:
    """The MSDNet options given on the command line, by name, as typed."""
    return {name: getattr(args, name) for name in OPTION_NAMES if getattr(args, name) is not None}


def user_model(args: argparse.Namespace) -> Any:
    """The model of ``--model`` (``None`` without it); refuses MSDNet options beside it."""
    if getattr(args, "model", None) is None:
        for option in ("model-kwargs", "checkpoint"):
            if getattr(args, option.replace("-", "_"), None) is not None:
                raise OptionError(option, getattr(args, option.replace("-", "_")), "needs --model")
        return None
    clash = ["preset"] * (args.preset is not None) + list(given_options(args))
    if clash:
        raise OptionError(clash[0], getattr(args, clash[0]),
                          "is an MSDNet option: --model counts your model as built; give one or the other")
    if args.input_size is None:
        raise OptionError("input-size", "missing", "--model needs the input: a side, HxW or CxHxW (e.g. 3x32x32)")
    from .user_model import load_model

    return load_model(args.model, args.model_kwargs, args.checkpoint)


def network_options(args: argparse.Namespace) -> tuple[Options, str | None]:
    """The options the command line names, and the preset name to show (if one was used)."""
    given = given_options(args)
    name = args.preset if args.preset is not None else (None if given else DEFAULT_PRESET)
    return resolve(args.preset, **given), name


def output_name(text: str) -> str:
    """An ``-o`` value: refuses ``''`` (which would otherwise mean standard output)."""
    if not text.strip():
        raise argparse.ArgumentTypeError("must name a file, not ''")
    return text


def add_output_options(parser: argparse.ArgumentParser, required: bool = False, quiet: str = "") -> None:
    """``-o FILE``, ``--force`` and ``--quiet`` (``quiet``: what else it silences)."""
    parser.add_argument("-o", "--output", metavar="FILE", required=required, type=output_name,
                        help="write to FILE" + ("" if required else " instead of standard output"))
    parser.add_argument("--force", action="store_true", help="replace FILE if it exists")
    add_quiet_option(parser, quiet)


def add_quiet_option(parser: argparse.ArgumentParser, more: str = "") -> None:
    parser.add_argument("--quiet", action="store_true",
                        help="no line on stderr saying what was written where" + more)


def notice(args: argparse.Namespace, line: str) -> None:
    """``msdprof CMD: LINE`` on stderr, unless ``--quiet``."""
    if not getattr(args, "quiet", False):
        print(f"msdprof {args.command}: {line}", file=sys.stderr)


def file_list(paths: Sequence[Any], shown: int = 4) -> str:
    """``a.md, a-cost.svg`` or, past ``shown`` files, ``a.md, b.md, ... and 19 more files``."""
    names = [str(p) for p in paths]
    if len(names) <= shown:
        return ", ".join(names)
    return ", ".join(names[:shown - 1]) + f" and {len(names) - shown + 1} more files"


def emit(args: argparse.Namespace, text: str) -> None:
    """Print ``text``, or write it atomically to ``--output`` and say so on stderr."""
    if getattr(args, "output", None):
        write_atomic(args.output, text, force=args.force)
        notice(args, f"wrote {args.output}")
    else:
        sys.stdout.write(text)


def check_output_and_plot(args: argparse.Namespace) -> None:
    """Before any work: ``--output`` and ``--plot`` (an ``.svg``, not the ``-o`` file) can be
    written (existing files only with ``--force``)."""
    for option, path in (("output", args.output), ("plot", args.plot)):
        if path:
            check_writable(path, args.force, option)
    if args.plot is not None and not args.plot.lower().endswith(".svg"):
        raise OptionError("plot", args.plot, "must be an .svg file")
    if args.output and args.plot and os.path.abspath(args.output) == os.path.abspath(args.plot):
        raise OptionError("plot", args.plot, "is also the -o file; give two names")


def show(args: argparse.Namespace, fmt: str, rich: Callable[[], Any], text: Callable[[], str]) -> None:
    """The ``table`` format in a terminal: the ``rich()`` renderable, in colour; anything else
    (another format, a pipe, ``--output``): ``text()`` through :func:`emit`."""
    if fmt == "table" and not args.output and sys.stdout.isatty():
        from rich.console import Console

        Console().print(rich())
    else:
        emit(args, text())


# --- count ------------------------------------------------------------------------------------


def _add_count(sub: Any) -> None:
    p = sub.add_parser(
        "count", help="per-exit multiply-adds and parameters",
        description="What each exit costs in operations and parameters, for one image. Exit k's "
                    "cumulative figure holds blocks 1..k and heads 1..k, as the authors count it.",
    )
    add_network_options(p)
    add_model_options(p)
    add_convention_option(p, "how operations are counted (msdnet agrees with the authors' op "
                             "counter, macs with fvcore's conv + linear, flops with "
                             "FlopCounterMode; 'msdprof compare' shows the gaps)", explain=True)
    add_format_option(p, formatting.FORMATS)
    p.add_argument("--device", metavar="DEV",
                   help="meta (default: shapes only, nothing allocated) or cpu (a real model; "
                        "refused if its weights would not fit in memory); with --model the "
                        "default is where the factory built it")
    add_output_options(p)
    p.set_defaults(run=_run_count)


def _run_count(args: argparse.Namespace) -> None:
    from .exits import exit_costs

    fmt = formatting.check_format(args.format)
    options, name = network_options(args)
    if args.output:
        check_writable(args.output, args.force)  # before any work
    if args.device not in (None, "meta", "cpu"):
        raise OptionError("device", args.device, "must be meta or cpu")
    model = user_model(args)
    if model is not None:
        name = args.model
        if args.device is not None:
            model = model.to(args.device)
        costs = exit_costs(model, convention=args.convention, input_size=args.input_size)
    else:
        costs = exit_costs(options, convention=args.convention, input_size=args.input_size,
                           device=args.device or "meta")
    show(args, fmt, lambda: formatting.rich_table(costs, name),
         lambda: formatting.render(costs, fmt, name))


# --- graph ------------------------------------------------------------------------------------


def _add_graph(sub: Any) -> None:
    p = sub.add_parser(
        "graph", help="the scale x layer connectivity graph, drawn or as data",
        description="The feature maps the network computes (scales down, layers across), the "
                    "convs between them, transitions and exits. The suffix of FILE picks the "
                    "format: " + ", ".join(drawing.SUFFIXES) + " (.svg, .png, .pdf and .html need "
                    "Graphviz; .json is networkx node-link data with each node's cost; .html is "
                    "one offline page where clicking an exit lights up the maps it needs and "
                    "shows what it costs).",
    )
    add_network_options(p)
    add_model_options(p)
    p.add_argument("--exit", type=int, metavar="K",
                   help="with --model: highlight what exit K needs (its dataflow ancestors)")
    p.add_argument("--dense", action="store_true",
                   help="also draw the dense edges: every earlier same-scale map the "
                        "concatenation carries (quadratic in the layers per block)")
    add_convention_option(p, "unit of the node costs in .json/.graphml and the SVG tooltips; "
                             "the convention .html shows first")
    add_output_options(p, required=True)
    p.set_defaults(run=_run_graph)


def _run_graph(args: argparse.Namespace) -> None:
    from .graph import layout_graph

    options, name = network_options(args)
    path = drawing.check_output(args.output, args.force)  # before any work
    model = user_model(args)
    if model is None and args.exit is not None:
        raise OptionError("exit", args.exit, "needs --model (an MSDNet's layout shows every exit)")
    if model is not None and args.dense:
        raise OptionError("dense", "given", "is for an MSDNet's layout, not --model")
    if path.suffix.lower() == drawing.PAGE:
        from .interactive import write_page

        if model is not None:
            write_page(path, model, input_size=args.input_size, convention=args.convention,
                       name=args.model, title=f"{type(model).__name__} {args.model}", force=args.force)
            return
        title = f"MSDNet {name}" if name and not given_options(args) else f"MSDNet {options.describe()}"
        write_page(path, options, input_size=args.input_size, dense=args.dense,
                   convention=args.convention, name=name, title=title, force=args.force)
        return
    if model is not None:
        graph = layout_graph(model, input_size=args.input_size, convention=args.convention)
        graph.graph["spec"] = args.model
        exits = sum(1 for _, d in graph.nodes(data=True) if d["kind"] == "exit")
        if args.exit is not None:
            if not 1 <= args.exit <= exits:
                raise OptionError("exit", args.exit, f"must be an exit from 1 to {exits}")
            graph.graph["highlight"] = args.exit
    else:
        graph = layout_graph(options, input_size=args.input_size, dense=args.dense,
                             convention=args.convention)
    if name and model is None:
        graph.graph["preset"] = name
    drawing.write_graph(graph, path, force=args.force)
    notice(args, f"wrote {path}")


# --- report -----------------------------------------------------------------------------------


def _add_report(sub: Any) -> None:
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
    add_convention_option(p, "unit of the operation counts")
    p.add_argument("-o", "--output", metavar="FILE|DIR", required=True, type=output_name,
                   help="the report: FILE.md or FILE.html, its pictures FILE-*.svg beside it; "
                        "with --all a directory")
    p.add_argument("--force", action="store_true", help="replace files that exist")
    add_quiet_option(p)
    p.set_defaults(run=_run_report)


def _run_report(args: argparse.Namespace) -> None:
    from . import report
    from .counting import check_convention

    check_convention(args.convention)
    given = given_options(args)
    if args.model is not None and args.compare:
        raise OptionError("compare", " ".join(args.compare), "cannot be used with --model: a report "
                                                             "on your own network is on it alone")
    if args.all:
        for option, value in (("model", args.model), ("preset", args.preset),
                              ("input-size", args.input_size), *given.items(),
                              ("compare", args.compare and " ".join(args.compare))):
            if value is not None:
                raise OptionError(option, value, "cannot be used with --all, which reports every "
                                                 "preset as it is")
        fmt = "html" if args.html else "markdown"
        report.check_targets(args.output, [report.INDEX[fmt]], args.force)  # before any work
        written = report.write_files(args.output, report.preset_files(fmt, args.convention), args.force)
        _report_notice(args, report, written)
        return
    path, _ = report.check_report_path(args.output, args.html)
    check_writable(path, args.force)  # before any work
    model = user_model(args)
    if model is not None:
        configs = [report.model_configuration(model, args.model, args.input_size, args.convention,
                                              args.model_kwargs, args.checkpoint)]
    elif args.compare:
        configs = report.compare_configurations(args.compare, args.preset, given, args.input_size,
                                                args.convention)
    else:
        options, name = network_options(args)
        configs = [report.configuration(options, name, args.input_size, args.convention)]
    written = report.write_report(path, configs, html=args.html, force=args.force)
    _report_notice(args, report, written)


def _report_notice(args: argparse.Namespace, report: Any, written: Sequence[Path]) -> None:
    """``wrote a.md, a-cost.svg in DIR``, and that the layout pictures were left out (and why)."""
    where = {p.parent for p in written}
    place = "" if where == {Path(".")} or len(where) != 1 else f" in {where.pop()}"
    left_out = ("" if report.graphviz_available() else
                f"; left out the layout pictures: Graphviz's `{drawing.GRAPHVIZ_PROGRAM}` program "
                "was not found (apt-get install graphviz), the report says so in their place")
    names = sorted((p.name for p in written), key=lambda n: (n.endswith(".svg"), n))  # pages first
    notice(args, f"wrote {file_list(names)}{place}{left_out}")


# --- budget -----------------------------------------------------------------------------------


def _add_budget(sub: Any) -> None:
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
    p.add_argument("--fractions", metavar="F1,F2,...",
                   help="the fraction of images leaving at each exit: nBlocks numbers >= 0 "
                        "summing to 1, e.g. 0.5,0.3,0.2")
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
    p.set_defaults(run=_run_budget)


def _run_budget(args: argparse.Namespace) -> None:
    from . import budget_view
    from .budget import (anytime, anytime_steps, budgeted_batch, expected_cost, geometric_family,
                         given_fractions)
    from .counting import check_convention
    from .exits import exit_costs
    from .saved_outputs import load_outputs

    fmt = formatting.check_format(args.format, budget_view.FORMATS)
    batch = [flag for flag, given in (("--fractions", args.fractions is not None),
                                      ("--geometric", args.geometric),
                                      ("--logits", args.logits is not None),
                                      ("--plot", args.plot is not None)) if given]
    if args.anytime is not None and batch:
        raise UsageError(f"--anytime (one budget per image) cannot be combined with {batch[0]} "
                         "(budgeted batch)")
    if args.anytime is None and not batch:
        raise UsageError("give --anytime BUDGET, or --fractions F1,F2,..., --geometric or "
                         "--logits FILE")
    if args.fractions is not None and args.geometric:
        raise UsageError("--fractions and --geometric are two ways to give the distribution; "
                         "give one")
    if args.plot is not None and args.logits is None:
        raise OptionError("plot", args.plot, "needs --logits FILE: it draws test accuracy "
                                             "against expected cost")
    check_convention(args.convention)
    per_image = parse_count(args.anytime, "anytime") if args.anytime is not None else None
    model = user_model(args)
    costs = None
    if model is not None:  # counted first: its number of exits is what the options are checked by
        costs = exit_costs(model, convention=args.convention, input_size=args.input_size)
        name, exits = args.model, len(costs)
    else:
        options, name = network_options(args)
        exits = options.nBlocks
    given = given_fractions(args.fractions, exits) if args.fractions is not None else None
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


# --- sweep ------------------------------------------------------------------------------------


def _add_sweep(sub: Any) -> None:
    p = sub.add_parser(
        "sweep", help="count a grid of configurations; filters and a Pareto front",
        description="Count every combination of the option values given (e.g. --nBlocks 3:10 "
                    "--step 1:6 --base 1:6 --stepmode even,lin_grow), laid over --preset (or the "
                    "authors' defaults), one row per configuration in grid order. Combinations "
                    "the network cannot take are skipped with their reason. Costs are per image "
                    "and cumulative (blocks and heads 1..k), in the --convention's unit.",
    )
    group = p.add_argument_group(
        "grid",
        "Each option takes values joined by commas, and the whole-number options (nBlocks, "
        "step, base, nChannels, growthRate) inclusive ranges a:b or a:b:step, e.g. --nBlocks "
        "3:10 --stepmode even,lin_grow --grFactor 1-2-4,1-2-4-4. Options not given keep the "
        "base's value.",
    )
    group.add_argument("--preset", metavar="NAME",
                       help="the base configuration: one of " + ", ".join(PRESETS))
    for name in OPTION_NAMES:
        group.add_argument(f"--{name}", metavar="V,V|A:B", help=OPTION_HELP[name])
    group.add_argument("--input-size", metavar="S|HxW",
                       help="input side for every configuration (default: each one's data set's)")
    p.add_argument("--max-macs", metavar="N",
                   help="keep configurations whose last exit (the whole network) costs at most N, "
                        "e.g. 200M")
    p.add_argument("--exit-budget", metavar="N",
                   help="keep configurations whose exit 1 costs at most N (cumulative costs grow "
                        "with the exit: the same as 'some exit fits'); adds the column 'in "
                        "budget', the number of exits that fit")
    p.add_argument("--pareto", action="store_true",
                   help="keep only the configurations no other one beats in both total cost and "
                        "total parameters (no worse in both, better in one), after the filters")
    p.add_argument("--sort", metavar="COLUMN",
                   help="order the rows by a column, smallest first: " + ", ".join(ROW_COLUMNS)
                        + " (budget_exits with --exit-budget) or an option name; --sort=-COLUMN "
                        "for the largest first; ties keep grid order")
    p.add_argument("--top", metavar="N",
                   help="show only the first N rows (of the --sort order, else of grid order)")
    p.add_argument("--plot", metavar="FILE.svg",
                   help="also draw every configuration's exit-1 cost against its full cost, the "
                        "Pareto front in total cost and parameters highlighted")
    p.add_argument("--verify", action="store_true",
                   help="also count every configuration by forward hooks on the built model (a "
                        "few hundred times slower) and fail on any difference from the plan's count")
    add_convention_option(p, "unit of the operation counts")
    p.add_argument("--jobs", metavar="N",
                   help=f"processes counting at once (default: one per CPU, {os.cpu_count()} here); "
                        "the results do not depend on it")
    add_format_option(p, formatting.FORMATS, "; json also every skipped configuration with its reason")
    add_output_options(p, quiet=", no progress bar and no summary")
    p.set_defaults(run=_run_sweep)


def _run_sweep(args: argparse.Namespace) -> None:
    from . import sweep_view
    from .sweep import VerificationError, sweep

    fmt = formatting.check_format(args.format, sweep_view.FORMATS)
    grid = given_options(args)
    if not grid:
        raise UsageError("sweep needs a grid: the values of one or more options to combine, e.g. "
                         "--nBlocks 3:10 --stepmode even,lin_grow (one configuration: msdprof count)")
    check_output_and_plot(args)
    interactive = not args.quiet and sys.stderr.isatty()
    with sweep_view.ProgressBar() as bar:
        try:
            result = sweep(grid, args.preset, convention=args.convention, input_size=args.input_size,
                           max_macs=args.max_macs, exit_budget=args.exit_budget, pareto=args.pareto,
                           sort=args.sort, top=args.top, verify=args.verify,
                           points=args.plot is not None, jobs=args.jobs,
                           progress=bar if interactive else None)
        except VerificationError as error:  # not the user's mistake: the two counts disagree
            raise CommandFailed(f"--verify: {error}") from error
    if not result.counted:  # nothing to show: the first reason is the error
        first = result.skipped[0]
        every = "its only configuration" if result.size == 1 else f"all {result.size} configurations"
        raise OptionError(first.option, first.value, f"{first.reason} (the grid's first reason to "
                                                     f"skip; {every} skipped)")
    if args.plot:
        from .sweep_plot import sweep_plot  # matplotlib: imported only to draw

        write_atomic(args.plot, sweep_plot(result, sweep_view.title(result)), force=args.force,
                     option="plot")
    show(args, fmt, lambda: sweep_view.renderable(result), lambda: sweep_view.render(result, fmt))
    if not args.quiet and (fmt in ("json", "csv") or args.output):
        print(f"msdprof sweep: {sweep_view.summary(result)}", file=sys.stderr)
        for line in sweep_view.skip_lines(result):
            print(f"msdprof sweep: {line}", file=sys.stderr)


# --- compare ---------------------------------------------------------------------------------


def _add_compare(sub: Any) -> None:
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
    p.set_defaults(run=_run_compare)


def _run_compare(args: argparse.Namespace) -> None:
    from . import compare_view
    from .compare import compare_msdnet

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
# --- latency ----------------------------------------------------------------------------------


def _add_latency(sub: Any) -> None:
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
                   help="images per call (default 1; with --inputs: all of them, or the first N)")
    p.add_argument("--device", default="cpu", metavar="DEV", help="cpu (default) or cuda")
    p.add_argument("--threads", default="1", metavar="N",
                   help="torch intra-op threads while timing (default 1)")
    p.add_argument("--min-time", metavar="S",
                   help="seconds of timing per program (default: msdprof.latency.MIN_TIME, 1 s)")
    p.add_argument("--weights", metavar="FILE",
                   help="a state dict to load (torch.save(model.state_dict()); read with "
                        "weights_only=True); default: the authors' random initialisation")
    p.add_argument("--inputs", metavar="FILE",
                   help="images [N, C, H, W] (C = 3 for an MSDNet; with --model the shape of "
                        "--input-size): .npz (one array, or one named x) or a torch.save'd tensor; "
                        "default: --batch images of seeded random noise")
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
    p.set_defaults(run=_run_latency)


def _run_latency(args: argparse.Namespace) -> None:
    from msdnet import build_model
    from msdnet.options import _whole

    from . import latency, latency_view
    from .budget import calibrate, geometric
    from .counting import check_convention
    from .dataflow import parse_input_size
    from .saved_outputs import load_outputs

    fmt = formatting.check_format(args.format, latency_view.FORMATS)
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
        name, shape = args.model, parse_input_size(args.input_size)
    else:
        model = build_model(options, args.input_size, device="cpu")
        shape = (3, *model.plan.input_size)
        if args.weights is not None:
            latency.load_weights(model, args.weights)
    if args.inputs is not None:
        x = latency.load_inputs(args.inputs, shape)
        if batch is not None and batch > len(x):
            raise OptionError("batch", args.batch, f"is more than the {len(x)} images of "
                                                   f"{args.inputs}")
        x, inputs = x[:batch], f"images of {args.inputs}"
    else:
        x, inputs = latency.random_batch(batch or 1, shape), "random normal images"
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
    model, x = model.to(device), x.to(device)
    try:
        result = latency.measure_latency(model, x, threads=threads, min_time=min_time,
                                         convention=args.convention, thresholds=thresholds,
                                         source=source)
    except OptionError as error:
        if error.option == "inputs" and args.inputs is None:  # the batch was made of --input-size
            raise OptionError("input-size", args.input_size, error.allowed) from error
        raise
    if args.plot:
        write_atomic(args.plot, latency_view.latency_plot(result, name), force=args.force,
                     option="plot")
    show(args, fmt, lambda: latency_view.renderable(result, name, inputs, plain=False),
         lambda: latency_view.render(result, fmt, name, inputs))


# --- main ------------------------------------------------------------------------------------

COMMANDS: list[Callable[[Any], None]] = [_add_count, _add_graph, _add_report, _add_budget,
                                         _add_sweep, _add_compare, _add_latency]


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(
        prog="msdprof",
        description="What each exit of an MSDNet costs: multiply-adds and parameters per exit, "
                    "the scale x layer graph, reports and budgets.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=ArgumentParser)
    sub.required = True
    for add in COMMANDS:
        add(sub)
    return parser


def cli_message(error: OptionError) -> str:
    """``--nBlocks 0: must be ...``: the option as the command line spells it."""
    return f"--{error.option} {format_value(error.value)}: {error.allowed}"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code (0 ok, 2 for a user mistake)."""
    debug = "--debug" in (sys.argv[1:] if argv is None else argv)
    try:
        args = build_parser().parse_args(argv)
        args.run(args)
    except UsageError as error:
        print(f"msdprof: error: {error}", file=sys.stderr)
        return 2
    except OptionError as error:
        if debug and error.__cause__ is not None:  # the user's own code raised: show where
            traceback.print_exception(error.__cause__, file=sys.stderr)
        print(f"msdprof: error: {cli_message(error)}", file=sys.stderr)
        return 2
    except CommandFailed as error:
        print(f"msdprof: error: {error}", file=sys.stderr)
        return 1
    except BrokenPipeError:  # `msdprof ... | head`: the reader left; not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except OSError as error:
        where = f" {error.filename}" if error.filename else ""
        print(f"msdprof: error: cannot write{where}: {error.strerror or error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("msdprof: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
