"""The ``msdprof`` command: the parser of every subcommand, and :func:`main`.

Each subcommand is one module of this package (``count``, ``graph``, ``report``, ``budget``,
``sweep``, ``compare``, ``latency``) with ``add_parser(sub)`` and ``run(args)``, a thin layer over
the API; what they share is :mod:`msdprof.cli.options`.
"""

from __future__ import annotations

import os
import sys
import traceback
import warnings
from typing import Any, Callable, Sequence

from msdnet.options import OptionError, format_value

from ..files.output import WriteWarning
from . import budget, compare, count, graph, latency, report, sweep
from .options import ArgumentParser, CommandFailed, UsageError

COMMANDS: list[Callable[[Any], None]] = [count.add_parser, graph.add_parser, report.add_parser,
                                         budget.add_parser, sweep.add_parser, compare.add_parser,
                                         latency.add_parser]


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


def _one_line_warnings(shown: Callable[..., None]) -> Callable[..., None]:
    """``warnings.showwarning`` that prints a :class:`WriteWarning` (what a write left alone) as
    ``msdprof: warning: ...``, one line, and passes any other to ``shown``."""
    def show(message: Any, category: type, *rest: Any, **kwargs: Any) -> None:
        if issubclass(category, WriteWarning):
            print(f"msdprof: warning: {message}", file=sys.stderr)
        else:
            shown(message, category, *rest, **kwargs)
    return show


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code (0 ok, 2 for a user mistake)."""
    debug = "--debug" in (sys.argv[1:] if argv is None else argv)
    try:
        args = build_parser().parse_args(argv)
        with warnings.catch_warnings():
            warnings.simplefilter("always", WriteWarning)
            warnings.showwarning = _one_line_warnings(warnings.showwarning)
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

