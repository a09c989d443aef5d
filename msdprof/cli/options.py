"""What every ``msdprof`` command shares: the parser that reports a mistake in one line, the
network, model, convention, format and output options, and how a result is shown or written.

A user mistake is an :class:`~msdnet.options.OptionError` or a :class:`UsageError`, printed by
:func:`msdprof.cli.entry.main` as one line, exit code 2; nothing is written.
"""

from __future__ import annotations

import argparse
import difflib
import os
import sys
from typing import Any, Callable, Sequence

from msdnet import DEFAULT_PRESET, PRESETS, Options, resolve
from msdnet.options import OPTION_NAMES, OptionError

from ..core.conventions import CONVENTION_HELP
from ..files.output import check_writable, write_atomic

# Everything that imports torch, networkx or matplotlib (the counting, the graph, the views) is
# imported by the command that uses it, inside its run() function: `msdprof --help` and
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


def one_line(text: str) -> str:
    """``text`` with its control characters escaped (``a\\nb``): what msdprof echoes stays on one line."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


class ArgumentParser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, no usage dump
        raise UsageError(f"{message} (see '{self.prog} --help')")

    def _check_value(self, action: argparse.Action, value: Any) -> None:
        """As argparse's, with the closest choice: ``invalid choice: 'cont' (choose from count,
        graph, ...); did you mean count?``."""
        if action.choices is not None and value not in action.choices:
            choices = [str(c) for c in action.choices]
            close = difflib.get_close_matches(str(value).lower(), choices, n=1, cutoff=0.5)
            hint = f"; did you mean {close[0]}?" if close else ""
            raise argparse.ArgumentError(action, f"invalid choice: {value!r} (choose from "
                                                 f"{', '.join(choices)}){hint}")

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
    from ..files.user_model import load_model

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
