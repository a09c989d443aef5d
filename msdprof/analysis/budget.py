"""What a budget buys: anytime prediction and budgeted batch classification (the paper's two settings).

*Anytime*: every image has the same hard budget; the answer is the deepest exit whose cumulative
cost fits it (:func:`anytime`), and :func:`anytime_steps` lists the budgets at which that answer
changes.  *Budgeted batch*: an average budget spread unevenly over easy and hard images; given the
fraction of images that leaves at each exit (:class:`ExitDistribution`: fractions given, or the
authors' geometric family), :func:`expected_cost` is the cost per image; given saved per-exit
softmax outputs (:mod:`msdprof.files.saved_outputs`), :func:`budgeted_batch` calibrates confidence
thresholds on the validation split and evaluates them on the test split exactly as the authors'
``adaptive_inference.py`` does (quirks included), vectorised over samples.

Every cost has two readings: *eager* (``ExitCost.macs``: blocks 1..k and heads 1..k, what the
authors count) and *lazy* (``ExitCost.lazy_macs``: only the feature maps exits 1..k read; going on
from exit k to k+1 pays ``lazy_macs(k+1) - lazy_macs(k)``, the deferred rest, so an image leaving at
exit k has paid ``lazy_macs(k)`` in all).  Operation counts are in the convention of the
:class:`~msdprof.core.exits.ExitCosts` given (``costs.convention``) and are for one image.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Sequence

import numpy as np
import torch

from msdnet.options import OptionError

from ..core.exits import ExitCosts
from ..core.memory import ExitMemories
from ..core.units import parse_bytes, parse_count
from ..files.saved_outputs import SavedOutputs

#: The authors' geometric family: p = 1..39, q = p/20, fractions proportional to q^k.
GEOMETRIC_P = tuple(range(1, 40))
#: The tolerance on the sum of given fractions.
FRACTION_SUM_TOLERANCE = Fraction(1, 10**9)
#: A given fraction is read exactly, so its text is bounded: at most this many characters, and an
#: exponent (``1e-5``) of at most this size either way (the exact value of ``1e-N`` holds 10^N).
MAX_FRACTION_CHARS = 100
MAX_EXPONENT = 999
_EXPONENT = re.compile(r"[eE]\s*[+-]?\s*0*(\d+)")
#: The authors' threshold of an exit no sample is sent out at (``T`` is filled with it), and of the
#: last exit, which takes every sample left.
NO_EXIT_THRESHOLD = 1e8
LAST_EXIT_THRESHOLD = -1e8


# --- anytime ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ExitReach:
    """An exit reached within a budget: ``macs`` operations and ``params`` parameters spent (eager
    or lazy, as the record holding it says), for one image."""

    exit: int
    layer: int
    macs: int
    params: int


@dataclass(frozen=True)
class AnytimeChoice:
    """The deepest exit whose cumulative cost fits ``budget`` operations per image.

    ``eager`` reads ``ExitCost.macs``, ``lazy`` reads ``ExitCost.lazy_macs``; ``None`` when not even
    exit 1 fits (its costs are ``first_macs`` and ``first_lazy_macs``).
    """

    budget: int
    convention: str
    eager: ExitReach | None
    lazy: ExitReach | None
    first_macs: int
    first_lazy_macs: int

    def as_dict(self) -> dict[str, Any]:
        def reach(r: ExitReach | None) -> dict[str, int] | None:
            return None if r is None else {"exit": r.exit, "layer": r.layer, "macs": r.macs,
                                           "params": r.params}

        return {"budget": self.budget, "eager": reach(self.eager), "lazy": reach(self.lazy),
                "exit1": {"macs": self.first_macs, "lazy_macs": self.first_lazy_macs}}


@dataclass(frozen=True)
class AnytimeStep:
    """The smallest budgets (operations per image) at which exit ``exit`` is reached: eager and
    lazy.  A budget of ``eager_budget`` or more reaches exit ``exit`` or a deeper one."""

    exit: int
    layer: int
    eager_budget: int
    lazy_budget: int


def _deepest(costs: ExitCosts, budget: int, lazy: bool) -> ExitReach | None:
    fits = [e for e in costs if (e.lazy_macs if lazy else e.macs) <= budget]
    if not fits:
        return None
    e = max(fits, key=lambda e: e.exit)
    return ExitReach(e.exit, e.layer, e.lazy_macs if lazy else e.macs,
                     e.lazy_params if lazy else e.params)


def anytime(costs: ExitCosts, budget: int | float | str) -> AnytimeChoice:
    """The deepest exit that fits ``budget`` operations per image (``300M``, ``1.5G``, ``2e8`` or a
    number; :func:`msdprof.core.units.parse_count`), eager and lazy.  A budget exactly equal to an
    exit's cost reaches it."""
    budget = parse_count(budget, "anytime")
    return AnytimeChoice(budget, costs.convention, _deepest(costs, budget, lazy=False),
                         _deepest(costs, budget, lazy=True), costs[0].macs, costs[0].lazy_macs)


@dataclass(frozen=True)
class MemoryFit:
    """Which exits fit ``budget`` bytes of memory: ``exit``, the deepest whose
    :attr:`~msdprof.core.memory.ExitMemory.total_bytes` (the model as written) fits, and
    ``lazy_exit``, the deepest whose ``lazy_total_bytes`` fits (``None``: not even exit 1).
    Totals grow with k, so every exit up to these fits too."""

    budget: int
    exit: int | None
    lazy_exit: int | None


def memory_fit(memories: ExitMemories, budget: int | str) -> MemoryFit:
    """The deepest exits that fit ``budget`` bytes (``64MB``, ``512MiB``, a number;
    :func:`msdprof.core.units.parse_bytes`); a total exactly equal to the budget fits."""
    budget = parse_bytes(budget, "memory")
    eager = [m.exit for m in memories if m.total_bytes <= budget]
    lazy = [m.exit for m in memories if m.lazy_total_bytes <= budget]
    return MemoryFit(budget, max(eager, default=None), max(lazy, default=None))


def anytime_steps(costs: ExitCosts) -> tuple[AnytimeStep, ...]:
    """Every budget at which the anytime answer changes: for each exit, the smallest budget that
    reaches it (the cheapest cost of it or a deeper exit; with cumulative costs, which grow with k,
    its own cost), eager and lazy."""
    steps = []
    for i, e in enumerate(costs):
        later = costs.exits[i:]
        steps.append(AnytimeStep(e.exit, e.layer, min(x.macs for x in later),
                                 min(x.lazy_macs for x in later)))
    return tuple(steps)


# --- exit distributions and expected cost -----------------------------------------------------


@dataclass(frozen=True)
class ExitDistribution:
    """The fraction of images that leaves at each exit, exit 1 first (exact rationals).

    ``p``: the authors' geometric parameter (q = p/20) for a member of :func:`geometric_family`,
    whose ``fractions`` are exactly the float32 numbers the authors' formula gives (so they sum to 1
    only to float32 precision); ``None`` for fractions given by the user.
    """

    fractions: tuple[Fraction, ...]
    p: int | None = None

    def __len__(self) -> int:
        return len(self.fractions)

    @property
    def q(self) -> Fraction | None:
        """The ratio of the geometric family, p/20 (``None`` for given fractions)."""
        return None if self.p is None else Fraction(self.p, 20)

    @property
    def label(self) -> str:
        """``p=7`` for a member of the geometric family, ``given`` otherwise."""
        return "given" if self.p is None else f"p={self.p}"

    def out_counts(self, samples: int) -> tuple[int, ...]:
        """How many of ``samples`` images calibration sends out at each exit, as the authors' code
        computes it: ``floor(samples * fraction)`` with the product in float32 (their ``p`` is a
        float32 tensor)."""
        n = np.float32(samples)
        return tuple(math.floor(n * np.float32(float(f))) for f in self.fractions)


def geometric(p: int, exits: int) -> ExitDistribution:
    """The authors' distribution for ``p`` (q = p/20) over ``exits`` exits, computed exactly as their
    code does, in float32: ``probs = exp(log(q) * [1..exits]); probs /= probs.sum()``."""
    if isinstance(p, bool) or not isinstance(p, int) or p < 1:
        raise OptionError("p", p, "must be a whole number >= 1 (the authors use 1..39)")
    if isinstance(exits, bool) or not isinstance(exits, int) or exits < 1:
        raise OptionError("exits", exits, "must be a whole number >= 1")
    q = torch.full((1,), p * 1.0 / 20, dtype=torch.float32)
    probs = torch.exp(torch.log(q) * torch.arange(1, exits + 1, dtype=torch.float32))
    if not bool(torch.isfinite(probs.sum())):  # q^k passed float32's largest number
        most = max(n for n in range(1, exits) if bool(torch.isfinite(probs[:n].sum())))
        raise OptionError(
            "nBlocks", exits,
            f"is too many exits for the authors' geometric family: the sum of q^k with q = {p}/20 "
            f"overflows float32 (their arithmetic) past {most} exits; use at most {most} blocks or "
            "give --fractions",
        )
    probs /= probs.sum()
    return ExitDistribution(tuple(Fraction(float(v)) for v in probs.tolist()), p)


def geometric_family(exits: int) -> tuple[ExitDistribution, ...]:
    """The authors' 39 distributions (p = 1..39) over ``exits`` exits: mostly exit 1 at p = 1,
    uniform at p = 20, mostly the last exit at p = 39.  :class:`OptionError` (naming ``nBlocks``)
    past 131 exits, where the sum of q^k overflows float32 for p = 39."""
    return tuple(geometric(p, exits) for p in reversed(GEOMETRIC_P))[::-1]  # p = 39 fails first


def _huge_exponent(text: str) -> bool:
    """Whether ``text`` has an exponent beyond :data:`MAX_EXPONENT`, judged by its digits alone."""
    return any(len(m.group(1)) > len(str(MAX_EXPONENT)) or int(m.group(1)) > MAX_EXPONENT
               for m in _EXPONENT.finditer(text))


def given_fractions(fractions: str | Sequence[Any], exits: int) -> ExitDistribution:
    """An :class:`ExitDistribution` from ``0.5,0.3,0.2`` or a sequence of numbers (or ``"1/3"``
    strings): one per exit, each >= 0, summing to 1 within 1e-9.  Decimal strings are read exactly
    (``"0.3"`` is 3/10).  :class:`OptionError` naming the bad value otherwise."""
    text = fractions if isinstance(fractions, str) else ",".join(str(f) for f in fractions)
    items = [s.strip() for s in fractions.split(",")] if isinstance(fractions, str) else list(fractions)
    values = []
    for i, item in enumerate(items, 1):
        if isinstance(item, str) and (len(item) > MAX_FRACTION_CHARS or _huge_exponent(item)):
            shown = item if len(item) <= 20 else item[:20] + "..."
            raise OptionError("fractions", text, f"entry {i} ({shown}) is too long or its "
                              f"exponent too large: at most {MAX_FRACTION_CHARS} characters and "
                              f"exponents from -{MAX_EXPONENT} to {MAX_EXPONENT}")
        try:
            if isinstance(item, bool):
                raise TypeError
            value = Fraction(item)
        except (ValueError, TypeError, ZeroDivisionError, OverflowError):
            shown = str(item)[:20] if str(item) else "empty"
            raise OptionError("fractions", text, f"entry {i} ({shown}) is not a number; give "
                              f"{exits} fractions separated by commas, one per exit "
                              "(e.g. 0.5,0.3,0.2 for 3 exits)") from None
        values.append(value)
    if len(values) != exits:
        raise OptionError("fractions", text, f"must have {exits} entries, one per exit of the "
                                             f"network, not {len(values)}")
    for i, value in enumerate(values, 1):
        if value < 0:
            raise OptionError("fractions", text, f"entry {i} ({items[i - 1]}) is negative; "
                                                 "fractions must be >= 0")
    total = sum(values, Fraction(0))
    if abs(total - 1) > FRACTION_SUM_TOLERANCE:
        shown = f"{float(total):.10g}" if total < 1e300 else "more than 1e300"  # float() overflows
        raise OptionError("fractions", text, f"sum to {shown}; they must sum to 1 (within 1e-9)")
    return ExitDistribution(tuple(values))


def exits_distribution(taken: Sequence[int], exits: int) -> ExitDistribution:
    """The distribution of the exits ``taken`` (1-based, one per image or generated token): each
    exit's share of them, exactly."""
    return given_fractions([Fraction(list(taken).count(k), len(taken)) for k in range(1, exits + 1)], exits)


@dataclass(frozen=True)
class ExpectedCost:
    """The expected cost per image of ``distribution``: ``macs`` = sum_k fraction_k * macs(k)
    (eager) and ``lazy_macs`` = sum_k fraction_k * lazy_macs(k), operations per image, exact."""

    distribution: ExitDistribution
    macs: Fraction
    lazy_macs: Fraction


def _check_exits(costs: ExitCosts, exits: int, what: str, value: Any) -> None:
    if exits != len(costs):
        raise OptionError(what, value, f"has {exits} exits; the network has nBlocks {len(costs)}")


def expected_cost(costs: ExitCosts, distribution: ExitDistribution) -> ExpectedCost:
    """The expected operations per image when ``distribution`` says where images leave."""
    _check_exits(costs, len(distribution), "fractions", distribution.label)
    return ExpectedCost(
        distribution,
        sum((f * e.macs for f, e in zip(distribution.fractions, costs)), Fraction(0)),
        sum((f * e.lazy_macs for f, e in zip(distribution.fractions, costs)), Fraction(0)),
    )


# --- calibration on saved outputs -------------------------------------------------------------


@dataclass(frozen=True)
class Evaluation:
    """Where the images of one split left and how many were right there.

    ``exit_counts[k]``/``correct_counts[k]``: images that left at exit k+1 / of those, the ones whose
    prediction there equals the target.  ``samples``: images in the split (the denominator).
    """

    samples: int
    exit_counts: tuple[int, ...]
    correct_counts: tuple[int, ...]

    @property
    def correct(self) -> int:
        return sum(self.correct_counts)

    @property
    def accuracy(self) -> float:
        """Top-1 accuracy in percent, as the authors compute it (``correct * 100.0 / samples``)."""
        return self.correct * 100.0 / self.samples

    @property
    def exit_fractions(self) -> tuple[Fraction, ...]:
        """The fraction of the split that left at each exit, exactly."""
        return tuple(Fraction(c, self.samples) for c in self.exit_counts)


@dataclass(frozen=True)
class Calibration:
    """One distribution calibrated on validation and evaluated on test.

    ``thresholds``: the authors' ``T``, float32 values (``1e8`` where no sample is sent out, ``-1e8``
    at the last exit): an image leaves at the first exit whose top softmax probability is ``>=`` its
    threshold.  ``macs``/``lazy_macs``: expected operations per test image, exact
    (sum_k test.exit_counts[k] * cost(k) / test.samples).
    """

    distribution: ExitDistribution
    thresholds: tuple[float, ...]
    val: Evaluation
    test: Evaluation
    macs: Fraction
    lazy_macs: Fraction


@dataclass(frozen=True)
class _Confidences:
    """Per exit and sample: the top softmax probability (float32) and its class."""

    top: torch.Tensor
    label: torch.Tensor

    @classmethod
    def of(cls, pred: torch.Tensor) -> "_Confidences":
        top, label = pred.max(dim=2, keepdim=False)
        return cls(top, label)


def _thresholds(conf: _Confidences, out_counts: Sequence[int]) -> torch.Tensor:
    """The authors' ``dynamic_eval_find_threshold`` without the loop over samples: at exit k the
    threshold is the ``out_counts[k]``-th largest confidence among the samples no earlier exit took
    (it stays 1e8 when that count is 0 or more than are left); every sample at or above it leaves."""
    exits, samples = conf.top.shape
    taken = torch.zeros(samples, dtype=torch.bool)
    thresholds = torch.full((exits,), NO_EXIT_THRESHOLD, dtype=torch.float32)
    for k in range(exits - 1):
        left = conf.top[k][~taken]
        n = out_counts[k]
        if 1 <= n <= left.numel():
            thresholds[k] = torch.topk(left, n, sorted=True).values[n - 1]
        taken |= conf.top[k] >= thresholds[k]
    thresholds[exits - 1] = LAST_EXIT_THRESHOLD
    return thresholds


def _evaluate(conf: _Confidences, target: torch.Tensor, thresholds: torch.Tensor) -> Evaluation:
    """The authors' ``dynamic_eval_with_threshold``: each sample leaves at the first exit whose
    confidence is ``>=`` the threshold (float32 comparison); a sample no exit takes counts nowhere."""
    exits, samples = conf.top.shape
    leaves = conf.top >= thresholds[:, None]
    left = leaves.any(dim=0)
    first = leaves.to(torch.uint8).argmax(dim=0)  # the first exit that takes the sample
    right = conf.label.gather(0, first[None]).squeeze(0) == target
    counts = torch.bincount(first[left], minlength=exits)
    correct = torch.bincount(first[left & right], minlength=exits)
    return Evaluation(samples, tuple(counts.tolist()), tuple(correct.tolist()))


def calibrate(pred: torch.Tensor, distribution: ExitDistribution) -> tuple[float, ...]:
    """The thresholds the authors' code finds on ``pred`` (``[exits, samples, classes]`` softmax
    outputs) for ``distribution``."""
    conf = _Confidences.of(pred.to(torch.float32))
    return tuple(_thresholds(conf, distribution.out_counts(conf.top.shape[1])).tolist())


def evaluate(pred: torch.Tensor, target: torch.Tensor, thresholds: Sequence[float]) -> Evaluation:
    """Where the samples of ``pred``/``target`` leave under ``thresholds`` and how many are right."""
    conf = _Confidences.of(pred.to(torch.float32))
    return _evaluate(conf, target.to(torch.int64), torch.tensor(thresholds, dtype=torch.float32))


def budgeted_batch(
    costs: ExitCosts,
    outputs: SavedOutputs,
    distributions: Sequence[ExitDistribution] | None = None,
) -> tuple[Calibration, ...]:
    """For each distribution (default: the authors' :func:`geometric_family`), thresholds calibrated
    on ``outputs``' validation split, then accuracy, exits taken and expected cost on its test split,
    exactly as the authors' ``dynamic_evaluate`` (their ``flops[k]`` = our ``ExitCost.macs``, and
    the same again with ``lazy_macs``)."""
    _check_exits(costs, outputs.exits, "logits", outputs.source or "outputs")
    if distributions is None:
        distributions = geometric_family(len(costs))
    val, test = _Confidences.of(outputs.val_pred), _Confidences.of(outputs.test_pred)
    results = []
    for distribution in distributions:
        _check_exits(costs, len(distribution), "fractions", distribution.label)
        thresholds = _thresholds(val, distribution.out_counts(outputs.val_samples))
        on_test = _evaluate(test, outputs.test_target, thresholds)
        spent = expected_cost(costs, ExitDistribution(on_test.exit_fractions))  # where test images left
        results.append(Calibration(
            distribution, tuple(thresholds.tolist()),
            _evaluate(val, outputs.val_target, thresholds), on_test, spent.macs, spent.lazy_macs,
        ))
    return tuple(results)


__all__ = [
    "AnytimeChoice", "AnytimeStep", "Calibration", "Evaluation", "ExitDistribution", "ExitReach",
    "ExpectedCost", "GEOMETRIC_P", "MemoryFit", "anytime", "anytime_steps", "budgeted_batch", "calibrate",
    "evaluate", "exits_distribution", "expected_cost", "geometric", "geometric_family", "given_fractions", "memory_fit",
]
