"""A grid of MSDNet configurations, each counted: :func:`sweep`.

A *grid* maps option names (the authors', as in :class:`msdnet.Options`) to the values each one
takes.  Its configurations are every combination of them (the first option of the grid varying
slowest, as ``itertools.product``), each laid over a *base* (a preset name, an ``Options``, or with
neither the default recipe — the authors' defaults once the grid names an option, as for
``msdprof count``).  Each configuration is counted from its layer plan alone by
:func:`msdprof.core.plan_costs.plan_costs` (no module is built): a sweep row holds exactly what
:func:`msdprof.core.exits.exit_costs` returns for that configuration, as the tests check over the option
space.  ``verify=True`` also counts every configuration by the forward hooks (``exit_costs`` on the
``meta`` device, a few hundred times slower) and raises :class:`VerificationError` at the first
difference.

A combination the network cannot take (a growth rate a layer cannot halve, ``step`` 0 with several
blocks, an input too small for the scales, ...) is *skipped* with its reason, not fatal; so is one
torch cannot build when the hooks count it (``verify``).  A value no configuration could take
(``nBlocks x``, ``stepmode evne``) or a grid of more than :data:`MAX_CONFIGURATIONS` is an
:class:`~msdnet.OptionError` before anything is expanded or counted.

Filters, applied in this order to the counted configurations (operation counts in the sweep's
convention, per image, cumulative as ``msdprof count`` shows them):

- ``max_macs``: keep a configuration if its last exit (the whole network) costs at most this;
- ``exit_budget``: keep it if its exit 1 costs at most this.  Cumulative costs grow with the exit,
  so this is the same as "some exit fits the budget"; :attr:`SweepRow.budget_exits` says how many
  do (the deepest exit reachable within the budget);
- ``pareto``: keep only the configurations no other kept one dominates in (total operations, total
  parameters), both minimised: another dominates it if it is no worse in both and better in one.
  Equal pairs dominate neither.  (No accuracy proxy: cost and parameters only.)  Over size options
  alone (``nBlocks``, ``step``, ``base``) the smallest network dominates the rest; the front says
  more over options that trade operations for parameters (``prune``, ``reduction``,
  ``bottleneck``, ``grFactor``, ``bnFactor``).

Then ``sort`` orders the kept rows by a column (:func:`sort_columns`; ties keep grid order) and
``top`` keeps the first N of that order (of grid order without ``sort``).  Rows stream through the
filters: the sweep holds the rows it will return (``top`` of them with ``top``; the front with
``pareto``), never every configuration's costs; with ``points`` it also keeps three integers per
counted configuration for :mod:`msdprof.render.sweep_plot`.

Rows come back in grid order (or the ``sort`` order) whatever ``jobs`` is: the results of a
parallel sweep are identical to a sequential one.  ``executor`` counts on any
:class:`concurrent.futures.Executor` instead of this machine's processes (a
``ProcessPoolExecutor``, Dask's ``Client.get_executor()``, ...): the same rows again, in the same
order.  Configurations go to it in chunks, a bounded number at a time, and their outcomes stream
back in grid order, so the memory of the calling process does not grow with the grid; with an
executor a grid may hold up to :data:`MAX_EXECUTOR_CONFIGURATIONS`.
"""

from __future__ import annotations

import collections
import dataclasses
import gc
import heapq
import itertools
import math
import multiprocessing
import os
import pickle
import signal
import sys
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence

from msdnet import DEFAULT_PRESET, PRESETS, Options, build_plan, resolve
from msdnet.options import (  # check_value: the per-value rules Options itself applies
    OPTION_NAMES, WHOLE_NUMBER_OPTIONS, OptionError, check_option_name, check_value, did_you_mean,
    format_value,
)

from ..core.conventions import check_convention
from ..core.display import Tabular
from ..core.exits import ExitCost, ExitCosts, exit_costs
from ..core.units import ROW_COLUMNS, parse_count
from ..core.plan_costs import plan_costs

#: The most configurations one sweep counts (with --verify, over an hour of counting on two cores).
MAX_CONFIGURATIONS = 100_000
#: The most one sweep counts on an executor (a cluster): the calling process still reads every
#: outcome, at tens of thousands a second (benchmarks/bench_sweep_cluster.py measures it).
MAX_EXECUTOR_CONFIGURATIONS = 10_000_000

_SYNTAX = "values joined by commas, and for whole-number options ranges a:b or a:b:step (inclusive)"


def _range(option: str, text: str, item: str) -> range:
    if option not in WHOLE_NUMBER_OPTIONS:
        raise OptionError(
            option, text,
            "ranges a:b are for the whole-number options (" + ", ".join(WHOLE_NUMBER_OPTIONS)
            + "); list the values with commas",
        )
    parts = item.split(":")
    try:
        numbers = [int(p) for p in parts]
    except ValueError:
        numbers = []
    if len(parts) not in (2, 3) or len(numbers) != len(parts):
        raise OptionError(option, text, "a range is a:b or a:b:step with whole numbers, e.g. 3:10")
    first, last, step = (*numbers, 1)[:3]
    if first > last or step < 1:
        raise OptionError(option, text, "a range a:b (or a:b:step) needs a <= b and a step >= 1")
    return range(first, last + 1, step)


def _size(values: Any) -> int:
    """How many values ``values`` (a range or a sized collection) holds, by arithmetic for a
    range (``len`` overflows past ``sys.maxsize``)."""
    if isinstance(values, range):
        step = values.step
        return max(0, (values.stop - values.start + step - (1 if step > 0 else -1)) // step)
    return len(values)


@dataclass(frozen=True)
class _Values:
    """One grid option's values before they are expanded and checked: ranges and tuples of raw
    values, in order, and how many values they hold."""

    option: str
    text: Any  # as given, for messages
    parts: tuple[Any, ...]
    size: int

    def ends(self) -> str:
        """``first..last`` of the values (for messages; only ``first..`` if they are not a
        sequence)."""
        parts = [part for part in self.parts if _size(part)]
        first = next(iter(parts[0]))
        last = format_value(parts[-1][-1]) if isinstance(parts[-1], Sequence) else ""
        return f"{format_value(first)}..{last}"

    def expand(self) -> tuple[Any, ...]:
        return check_values(self.option, itertools.chain.from_iterable(self.parts))


def _parse(option: str, text: str) -> _Values:
    check_option_name(option)
    text = str(text)
    parts: list[Any] = []
    size = 0
    for item in (part.strip() for part in text.split(",")):
        if not item:
            raise OptionError(option, text, f"an empty value; give {_SYNTAX}")
        values = _range(option, text, item) if ":" in item else (item,)
        size += _size(values)
        if size > MAX_CONFIGURATIONS:
            raise OptionError(option, text, f"more than {MAX_CONFIGURATIONS} values")
        parts.append(values)
    return _Values(option, text, tuple(parts), size)


def parse_values(option: str, text: str) -> tuple[Any, ...]:
    """The values of grid option ``option`` from its command-line text, normalised as
    :class:`msdnet.Options` normalises them.

    ``text`` is values joined by commas (``even,lin_grow``, ``1-2-4,1-2-4-4``), and for the
    whole-number options (:data:`WHOLE_NUMBER_OPTIONS`) inclusive ranges ``a:b`` or ``a:b:step``
    (``3:10``, ``2:32:2``), mixed freely (``1:3,8``).  Values keep their order (repeats too).
    Raises :class:`OptionError` for a value no configuration could take, or more than
    :data:`MAX_CONFIGURATIONS` values (counted before any is expanded).
    """
    return _parse(option, text).expand()


def check_values(option: str, values: Iterable[Any]) -> tuple[Any, ...]:
    """``values`` of grid option ``option``, each normalised as :class:`msdnet.Options` would
    (``"7"`` -> 7, ``"1-2-4"`` -> (1, 2, 4), ``"EVEN"`` -> ``"even"``); :class:`OptionError` for
    a value no configuration could take, or no value at all."""
    check_option_name(option)
    normalised = tuple(check_value(option, v) for v in values)
    if not normalised:
        raise OptionError(option, "''", f"needs at least one value ({_SYNTAX})")
    return normalised


def _grid_values(option: str, values: Any) -> _Values:
    """``values`` as given to the API, unexpanded: a range is sized by arithmetic, a sized
    collection by ``len``, any other iterable read up to one value past the limit."""
    check_option_name(option)
    if isinstance(values, str):
        return _parse(option, values)
    if isinstance(values, (bool, int, float)):
        return _Values(option, values, ((values,),), 1)
    if isinstance(values, range) or (isinstance(values, Iterable) and hasattr(values, "__len__")):
        return _Values(option, values, (values,), _size(values))
    if not isinstance(values, Iterable):
        raise OptionError(option, values, f"must be a list of values or a string of {_SYNTAX}")
    read = tuple(itertools.islice(values, MAX_CONFIGURATIONS + 1))
    if len(read) > MAX_CONFIGURATIONS:
        raise OptionError(option, type(values).__name__, f"more than {MAX_CONFIGURATIONS} values")
    return _Values(option, values, (read,), len(read))


def check_grid(
    grid: Mapping[str, Any], limit: int = MAX_CONFIGURATIONS,
) -> tuple[tuple[str, tuple[Any, ...]], ...]:
    """The grid as ``((option, values), ...)`` in its own order, every value normalised.

    Each entry of ``grid`` is a string in the command-line syntax of :func:`parse_values`
    (``"3:10"``), a list or range of values (``[3, 5, 7]``, ``range(1, 11)``, ``["1-2-4", (1, 2,
    4, 4)]``) or one number.  Raises :class:`OptionError` for an unknown option, a value no
    configuration could take, or a grid of more than ``limit`` configurations
    (:data:`MAX_CONFIGURATIONS`, or :data:`MAX_EXECUTOR_CONFIGURATIONS` for a sweep on an
    executor) -- the last found from the sizes of the values before any list of them is made.
    """
    unexpanded = [_grid_values(option, values) for option, values in grid.items()]
    size = math.prod(v.size for v in unexpanded)
    if size > limit:
        largest = max(unexpanded, key=lambda v: v.size)
        more = (f" ({MAX_EXECUTOR_CONFIGURATIONS} on a cluster: an executor, --dask)"
                if limit < MAX_EXECUTOR_CONFIGURATIONS else "")
        raise OptionError(
            largest.option, largest.ends(),
            f"the grid would have {size} configurations; at most {limit} in one sweep{more}",
        )
    return tuple((v.option, v.expand()) for v in unexpanded)


Values = tuple[tuple[str, Any], ...]


@dataclass(frozen=True)
class SweepRow:
    """One counted configuration of the grid.

    ``index``: its 1-based position in grid order.  ``values``: the grid's options and the values
    this configuration gives them, in grid order.  ``costs``: what :func:`msdprof.exit_costs`
    returns for it (per-exit operations in the sweep's convention, parameters).  ``budget_exits``:
    with an exit budget, how many exits cost at most the budget (cumulative), else ``None``.
    """

    index: int
    values: Values
    costs: ExitCosts
    budget_exits: int | None = None

    @property
    def options(self) -> Options:
        return self.costs.options

    @property
    def exits(self) -> int:
        return len(self.costs)

    @property
    def first_macs(self) -> int:
        """Operations to reach exit 1."""
        return self.costs[0].macs

    @property
    def total_macs(self) -> int:
        """Operations of the whole network (the last exit, cumulative)."""
        return self.costs.total_macs

    @property
    def total_params(self) -> int:
        return self.costs.total_params

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: exact integers, factors as ``"1-2-4"``."""
        data = {
            "index": self.index,
            "values": {k: format_value(v) if isinstance(v, tuple) else v for k, v in self.values},
            "options": self.options.as_dict(),
            "exits": self.exits,
            "layers": self.options.nLayers,
            "first_macs": self.first_macs,
            "total_macs": self.total_macs,
            "total_params": self.total_params,
        }
        if self.budget_exits is not None:
            data["budget_exits"] = self.budget_exits
        return {**data, "per_exit": self.costs.as_dict()["exits"]}


@dataclass(frozen=True)
class Skipped:
    """A configuration of the grid that cannot be built or counted, and why.

    ``option``/``value``/``reason`` are those of the :class:`~msdnet.OptionError` it raised (or,
    for a configuration torch could not build for the hooks, ``counting``/``by the hooks`` and
    torch's error); ``str(skipped)`` reads like the error (``growthRate 5: ...``).
    """

    index: int
    values: Values
    option: str
    value: Any
    reason: str

    def __str__(self) -> str:
        return f"{self.option} {format_value(self.value)}: {self.reason}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "values": {k: format_value(v) if isinstance(v, tuple) else v for k, v in self.values},
            "option": self.option,
            "value": format_value(self.value),
            "reason": self.reason,
        }


#: Columns rows can be sorted by (besides any MSDNet option): as the CSV names them.


def sort_columns(exit_budget: bool = False) -> tuple[str, ...]:
    """The columns :func:`sweep` can sort by: :data:`ROW_COLUMNS` (``budget_exits`` only with an
    exit budget) and every MSDNet option; prefix ``-`` for the largest first."""
    return tuple(c for c in ROW_COLUMNS if exit_budget or c != "budget_exits") + OPTION_NAMES


def _row_key(column: str) -> Callable[[SweepRow], Any]:
    if column == "layers":
        return lambda row: row.options.nLayers
    if column in ROW_COLUMNS:
        return lambda row: getattr(row, column)
    return lambda row: getattr(row.options, column)


def _check_sort(sort: Any, exit_budget: int | None) -> tuple[str, bool] | None:
    """``(column, largest first)`` of a sort spec ``"total_macs"`` / ``"-total_params"``."""
    if sort is None:
        return None
    columns = sort_columns(exit_budget is not None)
    column = sort[1:] if isinstance(sort, str) and sort.startswith("-") else sort
    if column not in columns:
        raise OptionError("sort", sort, "must be a column: " + ", ".join(columns) + " (prefix - for "
                          "the largest first, e.g. --sort=-total_params)" + did_you_mean(str(column), columns))
    return column, column != sort


def _check_top(top: Any) -> int | None:
    if top is None:
        return None
    if isinstance(top, str):
        try:
            top = int(top)
        except ValueError:
            pass
    if isinstance(top, bool) or not isinstance(top, int) or top < 1:
        raise OptionError("top", top, "must be a whole number >= 1 (rows shown)")
    return top


@dataclass(frozen=True)
class Point:
    """One counted configuration as the sweep plot shows it: its grid ``index``, exit 1's
    cumulative operations, the whole network's operations (in the sweep's convention) and
    parameters, and whether it is ``within`` the filters (``max_macs``, ``exit_budget``)."""

    index: int
    first_macs: int
    total_macs: int
    total_params: int
    within: bool


@dataclass(frozen=True)
class SweepResult(Tabular):
    """What :func:`sweep` found.

    ``rows``: the configurations counted and kept by the filters, in grid order (or ``sort``'s;
    the first ``top`` of them with ``top``).  ``skipped``: the configurations that could not be
    counted, with their reasons, in grid order.  ``size``: all configurations of the grid;
    ``filtered``: counted but over ``max_macs`` or ``exit_budget``; ``dominated``: within the
    filters but off the Pareto front (0 without ``pareto``); ``beyond_top``: kept but past the
    first ``top``.  ``base``/``preset``: the options the grid is laid over and the preset name, if
    one was used.  Operation counts are in ``convention``; ``input_size`` is as given (``None``:
    each configuration's data-set default).  ``verified``: every configuration was also counted by
    the hooks, with the same result.  ``points``: with ``points=True``, one :class:`Point` per
    counted configuration, in grid order.
    """

    grid: tuple[tuple[str, tuple[Any, ...]], ...]
    base: Options
    preset: str | None
    convention: str
    input_size: Any
    max_macs: int | None
    exit_budget: int | None
    pareto: bool
    size: int
    rows: tuple[SweepRow, ...]
    skipped: tuple[Skipped, ...]
    filtered: int
    dominated: int
    sort: str | None = None
    top: int | None = None
    beyond_top: int = 0
    verified: bool = False
    points: tuple[Point, ...] = ()

    @property
    def counted(self) -> int:
        """Configurations counted (kept or not)."""
        return self.size - len(self.skipped)

    @property
    def kept(self) -> int:
        """Configurations within the filters (and on the front with ``pareto``), shown or not."""
        return len(self.rows) + self.beyond_top

    def skip_reasons(self) -> list[tuple[str, int]]:
        """``(reason, configurations)`` for each distinct skip reason, most frequent first."""
        counts: dict[str, int] = {}
        for s in self.skipped:
            counts[str(s)] = counts.get(str(s), 0) + 1
        return sorted(counts.items(), key=lambda item: -item[1])

    def as_dict(self) -> dict[str, Any]:
        """The JSON shape of ``msdprof sweep --format json``: exact integers."""
        return {
            "grid": {k: [format_value(v) if isinstance(v, tuple) else v for v in vs] for k, vs in self.grid},
            "preset": self.preset,
            "base": self.base.as_dict(),
            "convention": self.convention,
            "input_size": None if self.input_size is None else (
                "x".join(map(str, self.input_size)) if isinstance(self.input_size, (tuple, list))
                else str(self.input_size)),
            "filters": {"max_macs": self.max_macs, "exit_budget": self.exit_budget, "pareto": self.pareto},
            "order": {"sort": self.sort, "top": self.top},
            "verified": self.verified,
            "summary": {
                "configurations": self.size, "counted": self.counted, "skipped": len(self.skipped),
                "filtered": self.filtered, "dominated": self.dominated, "kept": self.kept,
                "shown": len(self.rows),
            },
            "rows": [row.as_dict() for row in self.rows],
            "skipped": [s.as_dict() for s in self.skipped],
        }


def _dominates(a: tuple[int, int], b: tuple[int, int]) -> bool:
    return a[0] <= b[0] and a[1] <= b[1] and a != b


def pareto_front(rows: Sequence[Any], key: Callable[[Any], tuple[int, int]] | None = None) -> tuple[Any, ...]:
    """The rows no other row dominates in ``key(row)`` (default ``(total_macs, total_params)``),
    both minimised, in their own order.  A row dominates another if it is no worse in both and
    better in one; equal pairs dominate neither."""
    key = key or (lambda row: (row.total_macs, row.total_params))
    points = [key(row) for row in rows]
    order = sorted(range(len(rows)), key=lambda i: points[i])
    keep = set()
    best_before = math.inf  # the fewest of the second among rows with strictly less of the first
    i = 0
    while i < len(order):
        j = i
        first = points[order[i]][0]
        while j < len(order) and points[order[j]][0] == first:
            j += 1
        group = order[i:j]  # equal first, sorted by the second: the first of them has the least
        fewest = points[group[0]][1]
        for k in group:
            if points[k][1] < best_before and points[k][1] == fewest:
                keep.add(k)
        best_before = min(best_before, fewest)
        i = j
    return tuple(row for i, row in enumerate(rows) if i in keep)


class _Front:
    """The Pareto front in (total operations, parameters) of the rows added so far: a row no
    member dominates joins it, and the members it dominates leave.  (A row some member dominates
    dominates nothing that member does not: dropping it at once loses nothing.)"""

    def __init__(self) -> None:
        self.rows: list[SweepRow] = []

    def add(self, row: SweepRow) -> None:
        point = (row.total_macs, row.total_params)
        if any(_dominates((r.total_macs, r.total_params), point) for r in self.rows):
            return
        self.rows = [r for r in self.rows if not _dominates(point, (r.total_macs, r.total_params))]
        self.rows.append(row)


# --- counting, in this process or in a pool ------------------------------------------------------


class VerificationError(RuntimeError):
    """``verify``: the plan and the hooks counted configuration ``index`` differently.

    ``str(error)`` names the configuration and the first difference."""

    def __init__(self, index: int, values: Values, difference: str):
        self.index, self.values, self.difference = index, values, difference
        shown = ", ".join(f"{k} {format_value(v)}" for k, v in values) or "the base configuration"
        super().__init__(f"configuration #{index} ({shown}): {difference}")


@dataclass(frozen=True)
class _Task:
    """What every configuration of one sweep shares (sent once per chunk to a worker)."""

    base: Options
    names: tuple[str, ...]
    convention: str
    input_size: Any
    verify: bool


@dataclass(frozen=True)
class _Mismatch:
    difference: str


# An outcome: the ExitCosts, a skip's (option, value, reason), or a _Mismatch (verify only).
_Outcome = Any
_HOOKS_SKIP = ("counting", "by the hooks")


def _skip(error: OptionError) -> tuple[str, Any, str]:
    return error.option, error.value, error.allowed  # an OptionError is not picklable as such


def _difference(by_plan: _Outcome, by_hooks: _Outcome) -> str | None:
    """How the two outcomes of one configuration differ (the first field), or ``None``."""
    if by_plan == by_hooks:
        return None
    if not isinstance(by_plan, ExitCosts) or not isinstance(by_hooks, ExitCosts):
        def said(o: _Outcome) -> str:
            return "counted it" if isinstance(o, ExitCosts) else f"skipped it ({o[0]} {format_value(o[1])}: {o[2]})"
        return f"the plan {said(by_plan)}, the hooks {said(by_hooks)}"
    if len(by_plan) != len(by_hooks):
        return f"the plan gives {len(by_plan)} exits, the hooks {len(by_hooks)}"
    for mine, theirs in zip(by_plan, by_hooks):
        for field in dataclasses.fields(ExitCost):
            a, b = getattr(mine, field.name), getattr(theirs, field.name)
            if a != b:
                return f"exit {mine.exit} {field.name}: the plan counts {a}, the hooks {b}"
    return "the plan's and the hooks' ExitCosts differ outside the exits"


def _count_one(task: _Task, combo: tuple[Any, ...]) -> _Outcome:
    try:
        options = dataclasses.replace(task.base, **dict(zip(task.names, combo)))
    except OptionError as error:  # the same constructor refuses it for the hooks: nothing to verify
        return _skip(error)
    try:
        outcome: _Outcome = plan_costs(build_plan(options, task.input_size), task.convention)
    except OptionError as error:
        outcome = _skip(error)
    if not task.verify:
        return outcome
    try:
        by_hooks: _Outcome = exit_costs(options, convention=task.convention, input_size=task.input_size)
    except OptionError as error:
        by_hooks = _skip(error)
    except (RuntimeError, MemoryError, OverflowError, ValueError) as error:  # torch's, e.g. sizes
        return (*_HOOKS_SKIP, f"torch could not build or count it ({type(error).__name__}: "
                              f"{str(error).splitlines()[0] if str(error) else ''})")
    difference = _difference(outcome, by_hooks)
    return outcome if difference is None else _Mismatch(difference)


def _worker_init() -> None:
    """A pool worker: Ctrl-C is the parent's to handle; the objects inherited from the parent (torch's
    modules, hundreds of thousands) are frozen out of the garbage collector's passes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    gc.freeze()


def _count_chunk(task: _Task, combos: list[tuple[Any, ...]]) -> list[_Outcome]:
    """Count a chunk with the cyclic garbage collector paused: a plan makes thousands of objects
    and building a model (``verify``) tens of thousands, and collections during them cost as much
    as the counting (the heap holds torch's objects).  Neither holds reference cycles, so what a
    chunk leaves is freed as it goes; after models the collector still runs once."""
    gc.disable()
    try:
        return [_count_one(task, combo) for combo in combos]
    finally:
        gc.enable()
        if task.verify:
            gc.collect()


def _count_packed(task: _Task, combos: list[tuple[Any, ...]]) -> bytes:
    """:func:`_count_chunk`'s outcomes pickled in one piece, for a worker of a pool or an executor:
    one ``pickle.loads`` in the caller costs less than an executor's own serialisation of a list
    (Dask's walks it object by object: a third more of the caller's time per configuration)."""
    return pickle.dumps(_count_chunk(task, combos), protocol=pickle.HIGHEST_PROTOCOL)


def _pool_context() -> Any:
    """``fork`` where the platform has it and it is safe (Linux): workers start at once with torch
    already imported.  Elsewhere the platform's default (``spawn``)."""
    if os.name == "posix" and os.uname().sysname == "Linux":
        return multiprocessing.get_context("fork")
    return multiprocessing.get_context()


def _check_jobs(jobs: Any, executor: Executor | None) -> int:
    if executor is not None:
        if jobs != 1:
            raise OptionError("jobs", jobs, "the executor's workers count the configurations: give "
                                            "jobs or an executor (--dask), not both")
        return _executor_workers(executor)
    if jobs is None:
        return os.cpu_count() or 1
    if isinstance(jobs, str):
        try:
            jobs = int(jobs)
        except ValueError:
            pass
    if isinstance(jobs, bool) or not isinstance(jobs, int) or not 1 <= jobs <= MAX_JOBS:
        raise OptionError("jobs", jobs, f"must be a whole number from 1 to {MAX_JOBS} (processes "
                                        "counting at once)")
    return jobs


def _executor_workers(executor: Executor) -> int:
    """How many chunks ``executor`` counts at once, where it says: a ``ProcessPoolExecutor``'s or
    ``ThreadPoolExecutor``'s workers, the threads of a Dask client's cluster; else one per CPU of
    this machine.  It only sizes the chunks and how many are in flight, never the rows."""
    workers = getattr(executor, "_max_workers", None)  # the standard library's pools
    client = getattr(executor, "_client", None)  # distributed.cfexecutor.ClientExecutor
    if workers is None and callable(getattr(client, "nthreads", None)):
        try:
            workers = sum(client.nthreads().values())
        except Exception:  # a client that cannot say (closed, ...): the default below
            workers = None
    return max(1, min(int(workers), _MAX_WORKERS)) if isinstance(workers, int) and workers else (os.cpu_count() or 1)


#: The most worker processes a sweep starts (more would only compete for the same cores).
MAX_JOBS = 64


class WorkerError(RuntimeError):
    """The pool or the executor failed to count configurations ``first``..``last`` (a worker died,
    msdprof is missing on a Dask worker, the cluster went away, ...); ``str(error)`` says which and
    the error it raised, on one line."""

    def __init__(self, first: int, last: int, error: BaseException):
        self.first, self.last, self.error = first, last, error
        said = str(error).splitlines()[0] if str(error) else ""
        super().__init__(f"counting configurations #{first}..#{last} failed: "
                         f"{type(error).__name__}{': ' + said if said else ''}")


#: Configurations per chunk at most: plans are counted in about a millisecond, so chunks are
#: large; the hooks (``verify``) take a tenth of a second and more, so chunks are small and the
#: workers finish together.  On an executor a chunk is a task of its scheduler (a Dask task costs
#: the caller a fraction of a millisecond): larger chunks of plans.
_CHUNK = {False: 64, True: 4}
_EXECUTOR_CHUNK = {False: 256, True: 4}
#: Plans are counted in this process when the grid has no more than this many: starting workers
#: costs more than counting them.
_IN_PROCESS = {False: 64, True: 1}
_IN_FLIGHT = 4  # chunks queued per worker: enough to keep it busy, few enough to hold little
_MAX_WORKERS = 256  # an executor's workers counted at most: a cluster's chunks in flight stay bounded


def _in_order(
    executor: Executor, task: _Task, chunks: Iterator[list[tuple[Any, ...]]], in_flight: int,
    tick: Callable[[int], None],
) -> Iterator[_Outcome]:
    """The outcomes of ``chunks`` counted on ``executor``, in their order, with at most
    ``in_flight`` chunks submitted and not yet read: the rest are not even drawn from ``chunks``.
    A chunk that fails is a :class:`WorkerError`; those still pending are cancelled on the way out."""
    pending: collections.deque[tuple[Future, int, int]] = collections.deque()
    first = 1

    def read() -> list[_Outcome]:
        future, start, size = pending.popleft()
        try:
            outcomes = pickle.loads(future.result())
        except Exception as error:
            raise WorkerError(start, start + size - 1, error) from error
        tick(len(outcomes))
        return outcomes

    try:
        for chunk in chunks:
            pending.append((executor.submit(_count_packed, task, chunk), first, len(chunk)))
            first += len(chunk)
            if len(pending) == 1:
                tick(0)  # every worker has started: the caller may start threads now
            while len(pending) >= in_flight:
                yield from read()
        while pending:
            yield from read()
    finally:
        for future, _, _ in pending:
            future.cancel()


def _outcomes(
    task: _Task, combos: Iterator[tuple[Any, ...]], total: int, jobs: int,
    tick: Callable[[int], None], executor: Executor | None = None,
) -> Iterator[_Outcome]:
    """The outcome of every configuration of ``combos``, in their order, counted in this process,
    by ``jobs`` workers of a pool of this machine's processes, or on ``executor`` (``jobs``: its
    workers), with a bounded number of chunks in flight; ``tick(n)`` after each ``n`` counted
    (``tick(0)`` once the workers have started)."""
    most = (_CHUNK if executor is None else _EXECUTOR_CHUNK)[task.verify]
    size = max(1, min(most, total // (jobs * 8)))
    chunks = iter(lambda: list(itertools.islice(combos, size)), [])
    if executor is not None:
        yield from _in_order(executor, task, chunks, jobs * _IN_FLIGHT, tick)
        return
    if jobs == 1 or total <= _IN_PROCESS[task.verify]:
        for chunk in chunks:
            outcomes = _count_chunk(task, chunk)
            tick(len(outcomes))
            yield from outcomes
        return
    pool = ProcessPoolExecutor(min(jobs, math.ceil(total / size)), _pool_context(),
                               initializer=_worker_init)
    try:
        yield from _in_order(pool, task, chunks, jobs * _IN_FLIGHT, tick)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def sweep(
    grid: Mapping[str, Any],
    base: str | Options | None = None,
    *,
    convention: str = "msdnet",
    input_size: Any = None,
    max_macs: int | str | None = None,
    exit_budget: int | str | None = None,
    pareto: bool = False,
    sort: str | None = None,
    top: int | str | None = None,
    verify: bool = False,
    points: bool = False,
    jobs: int | None = 1,
    executor: Executor | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> SweepResult:
    """Count every configuration of ``grid`` laid over ``base``; see the module's docstring.

    ``grid``: option name -> values (see :func:`check_grid`), e.g. ``{"nBlocks": "3:10",
    "stepmode": ["even", "lin_grow"]}``.  ``base``: a preset name or an :class:`msdnet.Options`.
    ``convention``: ``msdnet`` (default), ``macs`` or ``flops``.  ``input_size``: side or (height,
    width) in pixels for every configuration (default: each one's data-set default).
    ``max_macs``/``exit_budget``: operation counts (``200M``, ``1.5G`` or an int) in the
    convention, per image.  ``pareto``: keep only the front in (total operations, parameters).
    ``sort``: a column of :func:`sort_columns` (``"-total_params"``: largest first); ``top``: keep
    the first N rows.  ``verify``: also count each configuration by the hooks; raises
    :class:`VerificationError` at the first difference.  ``points``: keep a :class:`Point` per
    counted configuration (for the plot).  ``jobs``: processes counting at once (``None``: one per
    CPU); the rows do not depend on it.  ``executor``: count on this
    :class:`concurrent.futures.Executor` instead (e.g. a Dask ``Client.get_executor()``; msdprof
    must be importable by its workers, ``jobs`` left out); the rows are the same, in the same
    order, and the grid may hold up to :data:`MAX_EXECUTOR_CONFIGURATIONS`.  It is not shut down.
    A chunk the pool or the executor fails to count raises :class:`WorkerError`.
    ``progress(done, total)``: called in this process as configurations are counted.
    """
    convention = check_convention(convention)
    checked = check_grid(grid, MAX_CONFIGURATIONS if executor is None else MAX_EXECUTOR_CONFIGURATIONS)
    jobs = _check_jobs(jobs, executor)
    max_macs = None if max_macs is None else parse_count(max_macs, "max-macs")
    exit_budget = None if exit_budget is None else parse_count(exit_budget, "exit-budget")
    order = _check_sort(sort, exit_budget)
    top = _check_top(top)
    if base is None:  # as for `msdprof count`: the default recipe, or the authors' defaults
        preset, base_options = (None, Options()) if checked else (DEFAULT_PRESET, PRESETS[DEFAULT_PRESET])
    else:
        preset, base_options = (base if isinstance(base, str) else None), resolve(base)

    names = tuple(option for option, _ in checked)
    total = math.prod(len(values) for _, values in checked)
    done = 0

    def tick(n: int) -> None:
        nonlocal done
        done += n
        if progress is not None:
            progress(done, total)

    task = _Task(base_options, names, convention, input_size, verify)
    combos = itertools.product(*(values for _, values in checked))
    outcomes = _outcomes(task, itertools.product(*(values for _, values in checked)), total, jobs, tick,
                         executor)
    skipped: list[Skipped] = []
    plotted: list[Point] = []
    filtered = within = 0

    def kept_rows() -> Iterator[SweepRow]:
        """The rows within the filters, in grid order; skips, points and filtered noted."""
        nonlocal filtered, within
        for index, (outcome, combo) in enumerate(zip(outcomes, combos), start=1):
            values = tuple(zip(names, combo))
            if isinstance(outcome, _Mismatch):
                raise VerificationError(index, values, outcome.difference)
            if not isinstance(outcome, ExitCosts):
                skipped.append(Skipped(index, values, *outcome))
                continue
            first, last = outcome[0].macs, outcome.total_macs
            over = (max_macs is not None and last > max_macs) or (exit_budget is not None and first > exit_budget)
            if points:
                plotted.append(Point(index, first, last, outcome.total_params, not over))
            if over:
                filtered += 1
                continue
            within += 1
            fits = None if exit_budget is None else sum(e.macs <= exit_budget for e in outcome)
            yield SweepRow(index, values, outcome, fits)

    try:
        rows: Iterator[SweepRow] = kept_rows()
        if pareto:
            front = _Front()
            for row in rows:
                front.add(row)
            rows = iter(front.rows)
        key = None if order is None else _row_key(order[0])
        if key is not None and top is not None:  # holds `top` rows at a time, never all of them
            pick = heapq.nlargest if order[1] else heapq.nsmallest  # type: ignore[index]
            shown = pick(top, rows, key=key)  # ties in grid order, as sorted() keeps them
        elif key is not None:
            shown = sorted(rows, key=key, reverse=order[1])  # type: ignore[index]
        else:
            shown = list(itertools.islice(rows, None if top is None else min(top, sys.maxsize)))
            collections.deque(rows, maxlen=0)  # count the rest: their skips, points, filters
        kept = len(front.rows) if pareto else within
    finally:
        outcomes.close()
    return SweepResult(
        grid=checked, base=base_options, preset=preset, convention=convention,
        input_size=input_size, max_macs=max_macs, exit_budget=exit_budget, pareto=pareto,
        size=total, rows=tuple(shown), skipped=tuple(skipped), filtered=filtered,
        dominated=within - kept, sort=sort, top=top, beyond_top=kept - len(shown),
        verified=verify, points=tuple(plotted),
    )


__all__ = [
    "MAX_CONFIGURATIONS", "MAX_EXECUTOR_CONFIGURATIONS", "Point", "ROW_COLUMNS", "Skipped",
    "SweepResult", "SweepRow", "VerificationError", "WHOLE_NUMBER_OPTIONS", "WorkerError",
    "check_grid", "check_values", "pareto_front", "parse_values", "sort_columns", "sweep",
]
