"""``msdprof sweep``: count a grid of configurations, with filters and a Pareto front."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from concurrent.futures import Executor
from typing import Any, Iterator

from msdnet import PRESETS
from msdnet.options import OPTION_NAMES, OptionError

from ..core.units import ROW_COLUMNS
from ..files.output import write_atomic
from ..render import formatting
from .options import (
    CommandFailed, OPTION_HELP, UsageError, add_convention_option, add_format_option,
    add_output_options, check_output_and_plot, given_options, show,
)


def add_parser(sub: Any) -> None:
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
    p.add_argument("--dask", metavar="ADDRESS",
                   help="count on the workers of the running Dask scheduler at ADDRESS (e.g. "
                        "tcp://10.0.0.5:8786) instead of this machine's processes, for grids "
                        "larger than one machine counts in good time; the same rows, in the same "
                        "order. Needs pip install 'msdprof[cluster]' here and msdprof on every worker")
    add_format_option(p, formatting.FORMATS, "; json also every skipped configuration with its reason")
    add_output_options(p, quiet=", no progress bar and no summary")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> None:
    from ..render import sweep_view
    from ..analysis.sweep import (
        MAX_EXECUTOR_CONFIGURATIONS, VerificationError, WorkerError, check_grid, sweep,
    )

    fmt = formatting.check_format(args.format, sweep_view.FORMATS)
    grid = given_options(args)
    if not grid:
        raise UsageError("sweep needs a grid: the values of one or more options to combine, e.g. "
                         "--nBlocks 3:10 --stepmode even,lin_grow (one configuration: msdprof count)")
    check_output_and_plot(args)
    if args.dask is not None:
        if args.jobs is not None:
            raise OptionError("jobs", args.jobs, "the Dask cluster's workers count the "
                                                 "configurations: give --jobs or --dask, not both")
        check_grid(grid, MAX_EXECUTOR_CONFIGURATIONS)  # a bad grid is said before connecting
    interactive = not args.quiet and sys.stderr.isatty()
    with dask_executor(args.dask) as executor, sweep_view.ProgressBar() as bar:
        try:
            result = sweep(grid, args.preset, convention=args.convention, input_size=args.input_size,
                           max_macs=args.max_macs, exit_budget=args.exit_budget, pareto=args.pareto,
                           sort=args.sort, top=args.top, verify=args.verify,
                           points=args.plot is not None,
                           jobs=args.jobs if executor is None else 1, executor=executor,
                           progress=bar if interactive else None)
        except VerificationError as error:  # not the user's mistake: the two counts disagree
            raise CommandFailed(f"--verify: {error}") from error
        except WorkerError as error:  # the pool or the cluster failed: neither is the grid's fault
            raise CommandFailed(f"--dask {args.dask}: {error}" if executor else str(error)) from error
    if not result.counted:  # nothing to show: the first reason is the error
        first = result.skipped[0]
        every = "its only configuration" if result.size == 1 else f"all {result.size} configurations"
        raise OptionError(first.option, first.value, f"{first.reason} (the grid's first reason to "
                                                     f"skip; {every} skipped)")
    if args.plot:
        from ..render.sweep_plot import sweep_plot  # matplotlib: imported only to draw

        write_atomic(args.plot, sweep_plot(result, sweep_view.title(result)), force=args.force,
                     option="plot")
    show(args, fmt, lambda: sweep_view.renderable(result), lambda: sweep_view.render(result, fmt))
    if not args.quiet and (fmt in ("json", "csv") or args.output):
        print(f"msdprof sweep: {sweep_view.summary(result)}", file=sys.stderr)
        for line in sweep_view.skip_lines(result):
            print(f"msdprof sweep: {line}", file=sys.stderr)


#: Seconds ``--dask`` waits for the scheduler to answer, and then for a worker to join it.
DASK_TIMEOUT_S = 5


@contextlib.contextmanager
def dask_executor(address: str | None) -> Iterator[Executor | None]:
    """An executor on the workers of the Dask scheduler at ``address`` (``None`` without one),
    connected for the ``with`` block.  No Dask, an address Dask cannot read, no scheduler answering
    within :data:`DASK_TIMEOUT_S` or none of its workers joining within as long: an
    :class:`OptionError` for ``--dask``."""
    if address is None:
        yield None
        return
    try:
        from distributed import Client
        from distributed.comm import get_address_host, registry
        from distributed.comm.addressing import parse_address
    except ImportError as error:
        raise OptionError("dask", address, "needs Dask's distributed package, not installed here: "
                                           "pip install 'msdprof[cluster]'") from error
    try:  # a scheme Dask does not know would wait for its connect timeout's default, not ours
        registry.get_backend(parse_address(address)[0])
        get_address_host(address)
    except (ValueError, TypeError) as error:
        raise OptionError("dask", address, f"not a Dask scheduler address ({error}); e.g. "
                                           "tcp://10.0.0.5:8786") from error
    try:
        client = Client(address, timeout=DASK_TIMEOUT_S, set_as_default=False)
    except (OSError, TimeoutError, ValueError, OverflowError) as error:  # OverflowError: port > 65535
        raise OptionError("dask", address, f"no Dask scheduler answered within {DASK_TIMEOUT_S} s "
                                           "(start one with: dask scheduler)") from error
    try:
        try:
            client.wait_for_workers(1, timeout=DASK_TIMEOUT_S)
        except (OSError, TimeoutError) as error:
            raise OptionError("dask", address, f"the scheduler has no worker (none joined within "
                                               f"{DASK_TIMEOUT_S} s; start some with: dask worker "
                                               f"{address})") from error
        yield client.get_executor(pure=False)  # pure=False: no hashing of every chunk's values
    finally:
        client.close()
