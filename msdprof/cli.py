"""The ``msdprof`` command: a thin layer over the API.

Every subcommand takes the network options under the authors' names (``--nBlocks 7 --stepmode
lin_grow ...``) and/or ``--preset NAME``.  A user mistake prints one line on stderr,
``msdprof: error: --OPTION VALUE: what is allowed``, and exits with code 2; nothing is written.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any, Callable, Sequence

from rich.console import Console

from msdnet import DEFAULT_PRESET, PRESETS, Options, resolve
from msdnet.config import OPTION_NAMES, OptionError, format_value

from . import drawing, formatting, report
from .counting import CONVENTION_HELP, CONVENTIONS, check_convention
from .exits import exit_costs
from .graph import layout_graph
from .output import check_writable, write_atomic

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


class ArgumentParser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, no usage dump
        raise UsageError(f"{message} (see '{self.prog} --help')")


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
        help="input image side in pixels (default 32 for CIFAR, 224 for ImageNet)",
    )


def network_options(args: argparse.Namespace) -> tuple[Options, str | None]:
    """The options the command line names, and the preset name to show (if one was used)."""
    given = {name: getattr(args, name) for name in OPTION_NAMES if getattr(args, name) is not None}
    name = args.preset if args.preset is not None else (None if given else DEFAULT_PRESET)
    return resolve(args.preset, **given), name


def add_output_options(parser: argparse.ArgumentParser, required: bool = False) -> None:
    parser.add_argument("-o", "--output", metavar="FILE", required=required,
                        help="write to FILE" + ("" if required else " instead of standard output"))
    parser.add_argument("--force", action="store_true", help="replace FILE if it exists")


def emit(args: argparse.Namespace, text: str) -> None:
    """Print ``text`` or write it atomically to ``--output``."""
    if getattr(args, "output", None):
        write_atomic(args.output, text, force=args.force)
    else:
        sys.stdout.write(text)


# --- count ------------------------------------------------------------------------------------


def _add_count(sub: Any) -> None:
    p = sub.add_parser(
        "count", help="per-exit multiply-adds and parameters",
        description="What each exit costs in operations and parameters, for one image. Exit k's "
                    "cumulative figure holds blocks 1..k and heads 1..k, as the authors count it.",
    )
    add_network_options(p)
    p.add_argument("--convention", default="msdnet", metavar="NAME",
                   help="; ".join(f"{k}: {v}" for k, v in CONVENTION_HELP.items())
                   + " (default msdnet)")
    p.add_argument("--format", default="table", metavar="FMT",
                   help="table | json | csv | markdown (default table: rich in a terminal, "
                        "plain when piped); json and csv hold exact integers")
    p.add_argument("--device", default="meta", metavar="DEV",
                   help="meta (default: shapes only, nothing allocated) or cpu (a real model; "
                        "refused if its weights would not fit in memory)")
    add_output_options(p)
    p.set_defaults(run=_run_count)


def _run_count(args: argparse.Namespace) -> None:
    fmt = formatting.check_format(args.format)
    options, name = network_options(args)
    if args.output:
        check_writable(args.output, args.force)  # before any work
    if args.device not in ("meta", "cpu"):
        raise OptionError("device", args.device, "must be meta or cpu")
    costs = exit_costs(options, convention=args.convention, input_size=args.input_size,
                       device=args.device)
    if fmt == "table" and not args.output and sys.stdout.isatty():
        Console().print(formatting.rich_table(costs, name))
        return
    emit(args, formatting.render(costs, fmt, name))


# --- graph ------------------------------------------------------------------------------------


def _add_graph(sub: Any) -> None:
    p = sub.add_parser(
        "graph", help="the scale x layer connectivity graph, drawn or as data",
        description="The feature maps the network computes (scales down, layers across), the "
                    "convs between them, transitions and exits. The suffix of FILE picks the "
                    "format: " + ", ".join(drawing.SUFFIXES) + " (.svg, .png and .pdf need "
                    "Graphviz; .json is networkx node-link data with each node's cost).",
    )
    add_network_options(p)
    p.add_argument("--dense", action="store_true",
                   help="also draw the dense edges: every earlier same-scale map the "
                        "concatenation carries (quadratic in the layers per block)")
    p.add_argument("--convention", default="msdnet", metavar="NAME",
                   help="unit of the node costs in .json/.graphml and the SVG tooltips: "
                        + ", ".join(CONVENTIONS) + " (default msdnet)")
    add_output_options(p, required=True)
    p.set_defaults(run=_run_graph)


def _run_graph(args: argparse.Namespace) -> None:
    options, name = network_options(args)
    path = drawing.check_output(args.output, args.force)  # before any work
    graph = layout_graph(options, input_size=args.input_size, dense=args.dense,
                         convention=args.convention)
    if name:
        graph.graph["preset"] = name
    drawing.write_graph(graph, path, force=args.force)


# --- report -----------------------------------------------------------------------------------


def _add_report(sub: Any) -> None:
    p = sub.add_parser(
        "report", help="a report per configuration: tables, totals, cost plot, layout picture",
        description="A report on one MSDNet (or several side by side): options and layer plan, "
                    "the cost of every exit, totals, and beside it a cost-vs-exit plot and the "
                    "layout picture as SVG files (the layout needs Graphviz; without it the report "
                    "says so in its place). -o FILE.md writes Markdown, -o FILE.html HTML.",
    )
    add_network_options(p)
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
    p.add_argument("--convention", default="msdnet", metavar="NAME",
                   help="unit of the operation counts: " + ", ".join(CONVENTIONS) + " (default msdnet)")
    p.add_argument("-o", "--output", metavar="FILE|DIR", required=True,
                   help="the report: FILE.md or FILE.html, its pictures FILE-*.svg beside it; "
                        "with --all a directory")
    p.add_argument("--force", action="store_true", help="replace files that exist")
    p.set_defaults(run=_run_report)


def _run_report(args: argparse.Namespace) -> None:
    check_convention(args.convention)
    given = {name: getattr(args, name) for name in OPTION_NAMES if getattr(args, name) is not None}
    if args.all:
        for option, value in (("preset", args.preset), ("input-size", args.input_size),
                              *given.items(), ("compare", args.compare and " ".join(args.compare))):
            if value is not None:
                raise OptionError(option, value, "cannot be used with --all, which reports every "
                                                 "preset as it is")
        fmt = "html" if args.html else "markdown"
        report.check_targets(args.output, [report.INDEX[fmt]], args.force)  # before any work
        report.write_files(args.output, report.preset_files(fmt, args.convention), args.force)
        return
    path, _ = report.check_report_path(args.output, args.html)
    check_writable(path, args.force)  # before any work
    if args.compare:
        configs = report.compare_configurations(args.compare, args.preset, given, args.input_size,
                                                args.convention)
    else:
        options, name = network_options(args)
        configs = [report.configuration(options, name, args.input_size, args.convention)]
    report.write_report(path, configs, html=args.html, force=args.force)


# --- main ------------------------------------------------------------------------------------

COMMANDS: list[Callable[[Any], None]] = [_add_count, _add_graph, _add_report]


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
    try:
        args = build_parser().parse_args(argv)
        args.run(args)
    except UsageError as error:
        print(f"msdprof: error: {error}", file=sys.stderr)
        return 2
    except OptionError as error:
        print(f"msdprof: error: {cli_message(error)}", file=sys.stderr)
        return 2
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
