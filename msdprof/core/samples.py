"""Per-exit costs over several samples: each exit's figures with their mean, min and max.

A model whose count depends on its inputs (it reads tensor values: a mixture of experts routing
tokens, an exit decided in ``forward``) is counted on each sample given
(:func:`msdprof.core.exits.count_samples`); :func:`over_samples` merges the counts.
"""

from __future__ import annotations

import dataclasses
from dataclasses import fields
from fractions import Fraction
from typing import Sequence

from .dataflow import Idle, ValueRead
from .results import ExitCost, ExitCosts, ExitSpread, Spread, Unsupported

#: The :class:`ExitCost` fields spread over samples (every figure but the exit and the layer).
FIGURES = tuple(f.name for f in fields(ExitCost) if f.name not in ("exit", "layer"))


def _spread(values: Sequence[int]) -> Spread:
    mean = Fraction(sum(values), len(values))
    return Spread(float(mean), min(values), max(values))


def over_samples(per: Sequence[ExitCosts]) -> ExitCosts:
    """One :class:`ExitCosts` of the counts ``per`` sample: every exit any sample returned (by name,
    in the order first returned), its figures the means over the samples that returned it, rounded
    to the unit, with their spread; what was read, left out or idle on any sample; identical
    counts give the first one, ``samples`` set."""
    first = per[0]
    if all(c.exits == first.exits and c.exit_names == first.exit_names for c in per[1:]):
        return dataclasses.replace(first, samples=len(per), value_reads=_reads(per), idle=_idle(per),
                                   same_tensor=_same(per))
    names: list[str] = []
    for costs in per:
        names += [n for n in costs.exit_names if n not in names]
    exits, spread = [], []
    for k, name in enumerate(names, start=1):
        returned = [c.exits[c.exit_names.index(name)] for c in per if name in c.exit_names]
        figures = {f: _spread([getattr(e, f) for e in returned]) for f in FIGURES}
        exits.append(ExitCost(exit=k, layer=returned[0].layer,
                              **{f: round(Fraction(sum(getattr(e, f) for e in returned), len(returned)))
                                 for f in FIGURES}))
        spread.append(ExitSpread(k, len(returned), figures))
    unsupported: dict[str, tuple[int, set[int]]] = {}
    for costs in per:
        for u in costs.unsupported:
            calls, feeds = unsupported.get(u.type, (0, set()))
            unsupported[u.type] = (calls + u.calls, feeds | {names.index(costs.exit_names[k - 1]) + 1
                                                              for k in u.exits})
    return dataclasses.replace(
        first, exits=tuple(exits), exit_names=tuple(names), samples=len(per), spread=tuple(spread),
        unsupported=tuple(Unsupported(t, calls, tuple(sorted(feeds)))
                          for t, (calls, feeds) in sorted(unsupported.items())),
        value_reads=_reads(per), idle=_idle(per), same_tensor=_same(per),
        on_values=any(c.on_values for c in per))


def _reads(per: Sequence[ExitCosts]) -> tuple[ValueRead, ...]:
    """Every value read of any sample, its calls summed over the samples."""
    calls: dict[tuple[str, str], int] = {}
    for costs in per:
        for r in costs.value_reads:
            calls[(r.function, r.module)] = calls.get((r.function, r.module), 0) + r.calls
    return tuple(ValueRead(f, m, n) for (f, m), n in calls.items())


def _idle(per: Sequence[ExitCosts]) -> tuple[Idle, ...]:
    """The modules idle on any sample (as the first sample where each was idle says), by name."""
    found: dict[str, Idle] = {}
    for costs in per:
        for i in costs.idle:
            found.setdefault(i.module, i)
    return tuple(found[name] for name in sorted(found))


def _same(per: Sequence[ExitCosts]) -> tuple[tuple[str, str], ...]:
    found: list[tuple[str, str]] = []
    for costs in per:
        found += [pair for pair in costs.same_tensor if pair not in found]
    return tuple(found)


__all__ = ["FIGURES", "over_samples"]
