"""A grid of MSDNet configurations, each counted: :func:`sweep`.

A *grid* maps option names (the authors', as in :class:`msdnet.Options`) to the values each one
takes.  Its configurations are every combination of them (the first option of the grid varying
slowest, as ``itertools.product``), each laid over a *base* (a preset name, an ``Options``, or with
neither the default recipe — the authors' defaults once the grid names an option, as for
``msdprof count``), and each is counted by :func:`msdprof.exits.exit_costs` on the ``meta``
device: a sweep row holds exactly what ``exit_costs`` returns for that configuration.

A combination the network cannot take (a growth rate a layer cannot halve, ``step`` 0 with several
blocks, an input too small for the scales, ...) is *skipped* with its reason, not fatal.  A value no
configuration could take (``nBlocks x``, ``stepmode evne``) is an :class:`~msdnet.OptionError`
before anything is counted.

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

Rows come back in grid order whatever ``jobs`` is: the results of a parallel sweep are identical to
a sequential one.
"""

from __future__ import annotations

import dataclasses
import gc
import itertools
import math
import multiprocessing
import os
import signal
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping, Sequence

from msdnet import DEFAULT_PRESET, PRESETS, Options, resolve
from msdnet.config import (  # check_value: the per-value rules Options itself applies
    WHOLE_NUMBER_OPTIONS, OptionError, check_option_name, check_value, format_value,
)

from .counting import check_convention
from .exits import ExitCosts, exit_costs
from .formatting import parse_count

#: The most configurations one sweep counts (over an hour of counting on two cores).
MAX_CONFIGURATIONS = 100_000

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


def parse_values(option: str, text: str) -> tuple[Any, ...]:
    """The values of grid option ``option`` from its command-line text, normalised as
    :class:`msdnet.Options` normalises them.

    ``text`` is values joined by commas (``even,lin_grow``, ``1-2-4,1-2-4-4``), and for the
    whole-number options (:data:`WHOLE_NUMBER_OPTIONS`) inclusive ranges ``a:b`` or ``a:b:step``
    (``3:10``, ``2:32:2``), mixed freely (``1:3,8``).  Values keep their order (repeats too).
    Raises :class:`OptionError` for a value no configuration could take.
    """
    check_option_name(option)
    text = str(text)
    items: list[Any] = []
    for item in (part.strip() for part in text.split(",")):
        if not item:
            raise OptionError(option, text, f"an empty value; give {_SYNTAX}")
        values = _range(option, text, item) if ":" in item else (item,)
        if len(items) + len(values) > MAX_CONFIGURATIONS:
            raise OptionError(option, text, f"more than {MAX_CONFIGURATIONS} values")
        items.extend(values)
    return check_values(option, items)


def check_values(option: str, values: Iterable[Any]) -> tuple[Any, ...]:
    """``values`` of grid option ``option``, each normalised as :class:`msdnet.Options` would
    (``"7"`` -> 7, ``"1-2-4"`` -> (1, 2, 4), ``"EVEN"`` -> ``"even"``); :class:`OptionError` for
    a value no configuration could take, or no value at all."""
    check_option_name(option)
    normalised = tuple(check_value(option, v) for v in values)
    if not normalised:
        raise OptionError(option, "''", f"needs at least one value ({_SYNTAX})")
    return normalised


def _grid_values(option: str, values: Any) -> tuple[Any, ...]:
    if isinstance(values, str):
        return parse_values(option, values)
    if isinstance(values, (bool, int, float)):
        return check_values(option, [values])
    if not isinstance(values, Iterable):
        raise OptionError(option, values, f"must be a list of values or a string of {_SYNTAX}")
    return check_values(option, values)


def check_grid(grid: Mapping[str, Any]) -> tuple[tuple[str, tuple[Any, ...]], ...]:
    """The grid as ``((option, values), ...)`` in its own order, every value normalised.

    Each entry of ``grid`` is a string in the command-line syntax of :func:`parse_values`
    (``"3:10"``), a list of values (``[3, 5, 7]``, ``["1-2-4", (1, 2, 4, 4)]``) or one number.
    Raises :class:`OptionError` for an unknown option, a value no configuration could take, or a
    grid of more than :data:`MAX_CONFIGURATIONS` configurations.
    """
    checked = tuple((option, _grid_values(option, values)) for option, values in grid.items())
    size = math.prod(len(values) for _, values in checked)
    if size > MAX_CONFIGURATIONS:
        option, values = max(checked, key=lambda entry: len(entry[1]))
        raise OptionError(
            option, f"{format_value(values[0])}..{format_value(values[-1])}",
            f"the grid would have {size} configurations; at most {MAX_CONFIGURATIONS} in one sweep",
        )
    return checked


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

    ``option``/``value``/``reason`` are those of the :class:`~msdnet.OptionError` it raised;
    ``str(skipped)`` reads like the error (``growthRate 5: ...``).
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


@dataclass(frozen=True)
class SweepResult:
    """What :func:`sweep` found.

    ``rows``: the configurations counted and kept by the filters, in grid order.  ``skipped``: the
    configurations that could not be counted, with their reasons, in grid order.  ``size``: all
    configurations of the grid; ``filtered``: counted but over ``max_macs`` or ``exit_budget``;
    ``dominated``: within the filters but off the Pareto front (0 without ``pareto``).
    ``base``/``preset``: the options the grid is laid over and the preset name, if one was used.
    Operation counts are in ``convention``; ``input_size`` is as given (``None``: each
    configuration's data-set default).
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

    @property
    def counted(self) -> int:
        """Configurations counted (kept or not)."""
        return self.size - len(self.skipped)

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
            "summary": {
                "configurations": self.size, "counted": self.counted, "skipped": len(self.skipped),
                "filtered": self.filtered, "dominated": self.dominated, "kept": len(self.rows),
            },
            "rows": [row.as_dict() for row in self.rows],
            "skipped": [s.as_dict() for s in self.skipped],
        }


def pareto_front(rows: Sequence[SweepRow]) -> tuple[SweepRow, ...]:
    """The rows no other row dominates in (total_macs, total_params), both minimised, in their
    own order.  A row dominates another if it is no worse in both and better in one."""
    order = sorted(range(len(rows)), key=lambda i: (rows[i].total_macs, rows[i].total_params))
    keep = set()
    best_before = math.inf  # fewest parameters among rows with strictly fewer operations
    i = 0
    while i < len(order):
        j = i
        macs = rows[order[i]].total_macs
        while j < len(order) and rows[order[j]].total_macs == macs:
            j += 1
        group = order[i:j]  # equal operations, sorted by parameters: the first has the fewest
        fewest = rows[group[0]].total_params
        for k in group:
            params = rows[k].total_params
            if params < best_before and params == fewest:
                keep.add(k)
        best_before = min(best_before, fewest)
        i = j
    return tuple(row for i, row in enumerate(rows) if i in keep)


# --- counting, in this process or in a pool ------------------------------------------------------

_Outcome = tuple[int, Any]  # (index, ExitCosts | (option, value, reason))


def _count_one(index: int, options: Options, convention: str, input_size: Any) -> _Outcome:
    try:
        return index, exit_costs(options, convention=convention, input_size=input_size)
    except OptionError as error:  # not picklable as such: its parts travel
        return index, (error.option, error.value, error.allowed)


def _worker_init() -> None:
    """A pool worker: Ctrl-C is the parent's to handle; the objects inherited from the parent (torch's
    modules, hundreds of thousands) are frozen out of the garbage collector's passes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    gc.freeze()


def _count_chunk(chunk: list[tuple[int, Options]], convention: str, input_size: Any) -> list[_Outcome]:
    """Count a chunk in a pool worker, with the cyclic garbage collector paused: building a model
    makes tens of thousands of objects, and collections during it cost as much as the counting.
    (Models hold no reference cycles; what a chunk leaves is collected after it.)"""
    gc.disable()
    try:
        return [_count_one(index, options, convention, input_size) for index, options in chunk]
    finally:
        gc.enable()
        gc.collect()


def _pool_context() -> Any:
    """``fork`` where the platform has it and it is safe (Linux): workers start at once with torch
    already imported.  Elsewhere the platform's default (``spawn``)."""
    if os.name == "posix" and os.uname().sysname == "Linux":
        return multiprocessing.get_context("fork")
    return multiprocessing.get_context()


def _chunks(todo: list[tuple[int, Options]], jobs: int) -> list[list[tuple[int, Options]]]:
    """Small chunks, the costliest first (by layers, which the counting time follows), so that
    the workers finish together; the results are put back in grid order by index."""
    size = max(1, min(4, len(todo) // (jobs * 8)))
    by_cost = sorted(todo, key=lambda item: -item[1].nLayers * item[1].nScales)
    return [by_cost[i:i + size] for i in range(0, len(by_cost), size)]


def _check_jobs(jobs: Any) -> int:
    if jobs is None:
        return os.cpu_count() or 1
    if isinstance(jobs, str):
        try:
            jobs = int(jobs)
        except ValueError:
            pass
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise OptionError("jobs", jobs, "must be a whole number >= 1 (processes counting at once)")
    return jobs


def _run(
    todo: list[tuple[int, Options]], convention: str, input_size: Any, jobs: int,
    tick: Callable[[int], None],
) -> dict[int, Any]:
    """Outcome per configuration index; ``tick(n)`` after each ``n`` counted."""
    chunks = _chunks(todo, jobs)
    results: dict[int, Any] = {}
    if jobs == 1 or len(chunks) <= 1:
        for index, options in todo:
            results[index] = _count_one(index, options, convention, input_size)[1]
            tick(1)
        return results
    pool = ProcessPoolExecutor(min(jobs, len(chunks)), _pool_context(), initializer=_worker_init)
    try:
        pending = {pool.submit(_count_chunk, chunk, convention, input_size) for chunk in chunks}
        tick(0)  # every worker has started: the caller may start threads now (e.g. a progress bar)
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                outcomes = future.result()
                results.update(outcomes)
                tick(len(outcomes))
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    return results


def sweep(
    grid: Mapping[str, Any],
    base: str | Options | None = None,
    *,
    convention: str = "msdnet",
    input_size: Any = None,
    max_macs: int | str | None = None,
    exit_budget: int | str | None = None,
    pareto: bool = False,
    jobs: int | None = 1,
    progress: Callable[[int, int], None] | None = None,
) -> SweepResult:
    """Count every configuration of ``grid`` laid over ``base``; see the module's docstring.

    ``grid``: option name -> values (see :func:`check_grid`), e.g. ``{"nBlocks": "3:10",
    "stepmode": ["even", "lin_grow"]}``.  ``base``: a preset name or an :class:`msdnet.Options`.
    ``convention``: ``msdnet`` (default), ``macs`` or ``flops``.  ``input_size``: side or (height,
    width) in pixels for every configuration (default: each one's data-set default).
    ``max_macs``/``exit_budget``: operation counts (``200M``, ``1.5G`` or an int) in the
    convention, per image.  ``pareto``: keep only the front in (total operations, parameters).
    ``jobs``: processes counting at once (``None``: one per CPU); the rows do not depend on it.
    ``progress(done, total)``: called in this process as configurations are counted.
    """
    check_convention(convention)
    checked = check_grid(grid)
    jobs = _check_jobs(jobs)
    max_macs = None if max_macs is None else parse_count(max_macs, "max-macs")
    exit_budget = None if exit_budget is None else parse_count(exit_budget, "exit-budget")
    if base is None:  # as for `msdprof count`: the default recipe, or the authors' defaults
        preset, base_options = (None, Options()) if checked else (DEFAULT_PRESET, PRESETS[DEFAULT_PRESET])
    else:
        preset, base_options = (base if isinstance(base, str) else None), resolve(base)

    names = [option for option, _ in checked]
    combos = list(itertools.product(*(values for _, values in checked)))
    total = len(combos)
    done = 0

    def tick(n: int) -> None:
        nonlocal done
        done += n
        if progress is not None:
            progress(done, total)

    outcomes: dict[int, Any] = {}
    first: dict[Options, int] = {}  # each distinct configuration is counted once
    same: dict[int, int] = {}
    todo: list[tuple[int, Options]] = []
    for index, combo in enumerate(combos, start=1):
        try:
            options = dataclasses.replace(base_options, **dict(zip(names, combo)))
        except OptionError as error:
            outcomes[index] = (error.option, error.value, error.allowed)
            done += 1
            continue
        if options in first:
            same[index] = first[options]
            done += 1
        else:
            first[options] = index
            todo.append((index, options))
    outcomes.update(_run(todo, convention, input_size, jobs, tick))
    outcomes.update((index, outcomes[original]) for index, original in same.items())

    counted: list[SweepRow] = []
    skipped: list[Skipped] = []
    for index, combo in enumerate(combos, start=1):
        values = tuple(zip(names, combo))
        outcome = outcomes[index]
        if isinstance(outcome, ExitCosts):
            fits = None if exit_budget is None else sum(e.macs <= exit_budget for e in outcome)
            counted.append(SweepRow(index, values, outcome, fits))
        else:
            skipped.append(Skipped(index, values, *outcome))
    kept = [
        row for row in counted
        if (max_macs is None or row.total_macs <= max_macs)
        and (exit_budget is None or row.first_macs <= exit_budget)
    ]
    front = pareto_front(kept) if pareto else tuple(kept)
    return SweepResult(
        grid=checked, base=base_options, preset=preset, convention=convention,
        input_size=input_size, max_macs=max_macs, exit_budget=exit_budget, pareto=pareto,
        size=total, rows=tuple(front), skipped=tuple(skipped),
        filtered=len(counted) - len(kept), dominated=len(kept) - len(front),
    )


__all__ = [
    "MAX_CONFIGURATIONS", "Skipped", "SweepResult", "SweepRow", "WHOLE_NUMBER_OPTIONS",
    "check_grid", "check_values", "pareto_front", "parse_values", "sweep",
]
