"""The ``msdprof`` command: the parser of every subcommand, and :func:`main`.

Each subcommand is one module of this package (``count``, ``graph``, ``report``, ``budget``,
``sweep``, ``compare``, ``latency``, ``generate``) with ``add_parser(sub)`` and ``run(args)``, a thin layer over
the API; what they share is :mod:`msdprof.cli.options`.
"""

from __future__ import annotations

import contextlib
import os
import sys
import traceback
import warnings
from typing import Any, Callable, Sequence

from msdnet.options import OptionError, format_value

from ..files.output import WriteWarning
from . import budget, compare, count, generate, graph, latency, report, sweep
from ..core.units import one_line as error_line
from .options import ArgumentParser, CommandFailed, UsageError, one_line

COMMANDS: list[Callable[[Any], None]] = [count.add_parser, graph.add_parser, report.add_parser,
                                         budget.add_parser, sweep.add_parser, compare.add_parser,
                                         latency.add_parser, generate.add_parser]


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(
        prog="msdprof",
        description="What each exit of an MSDNet costs: multiply-adds and parameters per exit, "
                    "the scale x layer graph, reports and budgets.",
    )
    parser.add_argument("--version", action="version", version=f"msdprof {version()}",
                        help="print msdprof's version (from the installed package) and exit")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=ArgumentParser)
    sub.required = True
    for add in COMMANDS:
        add(sub)
    return parser


def version() -> str:
    """The installed package's version (its metadata), or ``unknown (not installed)``."""
    from importlib.metadata import PackageNotFoundError, version as installed

    try:
        return installed("msdprof")
    except PackageNotFoundError:
        return "unknown (not installed)"


def say(line: str) -> None:
    """``msdprof: LINE`` on stderr, always one line: control characters left in it (a newline
    in a path an OS error names) are escaped."""
    print("msdprof: " + one_line(line), file=sys.stderr)


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
        args.stdout = sys.stdout  # the results' stream; meanwhile what the user's model prints goes to stderr
        with warnings.catch_warnings(), contextlib.redirect_stdout(sys.stderr):
            warnings.simplefilter("always", WriteWarning)
            warnings.showwarning = _one_line_warnings(warnings.showwarning)
            args.run(args)
    except UsageError as error:
        say(f"error: {error}")
        return 2
    except OptionError as error:
        if debug and error.__cause__ is not None:  # the user's own code raised: show where
            traceback.print_exception(error.__cause__, file=sys.stderr)
        say(f"error: {cli_message(error)}")
        return 2
    except CommandFailed as error:
        say(f"error: {error}")
        return 1
    except BrokenPipeError:  # `msdprof ... | head`: the reader left; not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except OSError as error:
        where = f" {format_value(str(error.filename))}" if error.filename else ""
        say(f"error: cannot write{where}: {error.strerror or error}")
        return 2
    except KeyboardInterrupt as error:  # Ctrl-C, or the user's model raising it (said so)
        print(f"msdprof: interrupted{' ' + one_line(error_line(error)) if str(error) else ''}", file=sys.stderr)
        return 130
    return 0

