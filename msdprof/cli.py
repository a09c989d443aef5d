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

from . import formatting
from .counting import CONVENTION_HELP, CONVENTIONS
from .exits import exit_costs
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


# --- main ------------------------------------------------------------------------------------

COMMANDS: list[Callable[[Any], None]] = [_add_count]


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
