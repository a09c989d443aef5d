"""MSDNet options and their validation (the lowest floor of ``msdnet``: no torch, no plan).

The options carry the names the authors' scripts use (``nBlocks``, ``grFactor``, ...) and are
checked on construction, including the limits and the rules that tie several options together
(which scales are alive at each layer, the channel schedule).  The layer plan built from them is
:mod:`msdnet.plan`.  Rules: ``shared/SPEC.md`` section 1.

Channel counts are channels; layers are numbered 1..L over the whole network, blocks and exits
1..nBlocks.
"""

from __future__ import annotations

import difflib
import math
from dataclasses import dataclass, fields
from functools import cached_property
from typing import Any, Callable, Iterable

STEPMODES = ("even", "lin_grow")
PRUNES = ("max", "min")
DATASETS = ("cifar10", "cifar100", "ImageNet")
NUM_CLASSES = {"cifar10": 10, "cifar100": 100, "ImageNet": 1000}
DEFAULT_INPUT = {"cifar10": 32, "cifar100": 32, "ImageNet": 224}
CIFAR_HEAD_CHANNELS = 128

# Limits on what an MSDNet can be (docs/errors.md, "Limits").  They sit far beyond every recipe
# the authors trained (at most 35 layers, 5 scales, 2,400 channels on a map, 224-pixel inputs) and
# are checked on the options alone, before any list, plan or tensor is made, so an absurd size is a
# one-line error at once instead of a hang, an overflow deep in torch, or memory running out.

#: Layers in the whole network (``L``, summed over the blocks); also bounds ``nBlocks``, ``base``
#: and ``step``.  The deepest recipe has 35 layers; counting 1,000 layers takes seconds.
MAX_LAYERS = 1000
#: Channels of any feature map (and of ``nChannels``, ``growthRate`` and every factor): one 3x3
#: convolution between two maps this wide holds 9*10^10 weights, 360 GB in float32.
MAX_CHANNELS = 100_000
#: Input side in pixels; :func:`input_size_range` searches the sides up to it.
MAX_INPUT_SIDE = 4096
#: Scales (``len(grFactor)``): the most for which some input side up to :data:`MAX_INPUT_SIDE`
#: works (CIFAR stem, 10; the ImageNet stem divides the side by 4 first, so it takes 8).
MAX_SCALES = 10
#: Digits of a whole-number option beyond which it is refused unread (10^18 is past every limit).
_MAX_DIGITS = 18


class OptionError(ValueError):
    """A bad option value: names the option, the value given and what is allowed.

    ``str(error)`` reads ``nBlocks 0: must be a whole number >= 1``; the CLI prints it as
    ``msdprof: error: --nBlocks 0: ...``.
    """

    def __init__(self, option: str, value: Any, allowed: str):
        self.option = option
        self.value = value
        self.allowed = allowed
        super().__init__(f"{option} {format_value(value)}: {allowed}")


def format_value(value: Any) -> str:
    """How a value is shown in messages and titles: factors as ``1-2-4``, booleans as ``true``."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (tuple, list)):
        return "-".join(format_value(v) for v in value) if value else "''"
    if isinstance(value, str):
        if not value:
            return "''"
        # a message is one line: a value holding a newline, a tab or an escape is shown quoted,
        # its control characters escaped (``'a\\nb'``)
        return value if value.isprintable() else repr(value)
    return str(value)


def did_you_mean(value: str, choices: Iterable[str]) -> str:
    """``" (did you mean 'x'?)"`` when ``value`` is close to one of ``choices`` (in any letter
    case: ``FLOPs`` finds ``flops``), else ``""``."""
    by_lower = {str(c).lower(): str(c) for c in choices}
    close = difflib.get_close_matches(str(value).lower(), list(by_lower), n=1, cutoff=0.5)
    return f" (did you mean '{by_lower[close[0]]}'?)" if close else ""


def _choice(option: str, value: Any, choices: tuple[str, ...]) -> str:
    if isinstance(value, str):
        for choice in choices:  # accept any letter case, keep the authors' spelling
            if value.lower() == choice.lower():
                return choice
    allowed = "must be one of " + ", ".join(choices)
    raise OptionError(option, value, allowed + did_you_mean(str(value), choices))


def _too_large(option: str, value: Any, maximum: int, why: str) -> OptionError:
    return OptionError(option, value, f"must be at most {maximum:,} ({why}; see the limits in docs/errors.md)")


def _whole(option: str, value: Any, minimum: int, maximum: int | None = None, why: str = "") -> int:
    if isinstance(value, str):
        text = value.strip()
        if maximum is not None and text.isdigit() and len(text.lstrip("0")) > _MAX_DIGITS:
            raise _too_large(option, value, maximum, why)  # not even converted
        try:
            value = int(text)
        except ValueError:
            raise OptionError(option, value, f"must be a whole number >= {minimum}") from None
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise OptionError(option, value, f"must be a whole number >= {minimum}")
    if maximum is not None and value > maximum:
        raise _too_large(option, value, maximum, why)
    return value


def _factors(option: str, value: Any) -> tuple[int, ...]:
    allowed = "must be positive whole numbers joined by '-', e.g. 1-2-4"
    if isinstance(value, str):
        parts = value.strip().split("-")
        try:
            value = tuple(int(p) for p in parts)
        except ValueError:
            raise OptionError(option, value, allowed) from None
    if not isinstance(value, (tuple, list)) or not value:
        raise OptionError(option, value, allowed)
    if any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in value):
        raise OptionError(option, value, allowed)
    if len(value) > MAX_SCALES:
        raise OptionError(option, value, f"has {len(value)} entries: at most {MAX_SCALES} scales (no "
                                         f"input up to {MAX_INPUT_SIDE} pixels takes more; see the "
                                         "limits in docs/errors.md)")
    if max(value) > MAX_CHANNELS:
        raise OptionError(option, value, f"has an entry above {MAX_CHANNELS:,} (the most channels a "
                                         "map may have; see the limits in docs/errors.md)")
    return tuple(value)


def _fraction(option: str, value: Any) -> float:
    allowed = "must be a number from 0 to 1"
    number = value
    if isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            raise OptionError(option, value, allowed) from None
    if isinstance(number, bool) or not isinstance(number, (int, float)) or not 0 <= number <= 1:
        raise OptionError(option, value, allowed)
    return float(number)


def _flag(option: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false", "1", "0", "yes", "no"):
        return value.lower() in ("true", "1", "yes")
    raise OptionError(option, value, "must be true or false")


@dataclass(frozen=True)
class Options:
    """The options of one MSDNet, named and defaulted as in the authors' scripts (SPEC section 1).

    Values are validated and normalised on construction: strings are accepted for every field
    (``grFactor="1-2-4"``, ``bottleneck="false"``, ``nBlocks="7"``), so the CLI and the API share
    one set of rules.  A bad value raises :class:`OptionError`.
    """

    nBlocks: int = 1
    stepmode: str = "even"
    step: int = 1
    base: int = 4
    nChannels: int = 32
    growthRate: int = 6
    grFactor: tuple[int, ...] = (1, 2, 4)
    bnFactor: tuple[int, ...] = (1, 2, 4)
    prune: str = "max"
    reduction: float = 0.5
    bottleneck: bool = True
    data: str = "cifar10"

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        for name in OPTION_NAMES:
            set_(self, name, check_value(name, getattr(self, name)))
        if self.nBlocks > 1:
            set_(self, "step", _whole("step", self.step, 1))
        if len(self.bnFactor) != len(self.grFactor):
            raise OptionError(
                "grFactor", self.grFactor,
                f"must have the same length as bnFactor {format_value(self.bnFactor)} "
                f"({len(self.bnFactor)})",
            )
        _check_layers(self)  # before the steps are listed
        _check_scales(self)
        _check_channels(self)

    @property
    def nScales(self) -> int:
        """Number of scales: ``len(grFactor)``."""
        return len(self.grFactor)

    @property
    def num_classes(self) -> int:
        return NUM_CLASSES[self.data]

    @property
    def default_input_size(self) -> int:
        """Side of the square input image the recipes use for this data set, in pixels."""
        return DEFAULT_INPUT[self.data]

    @cached_property
    def steps(self) -> tuple[int, ...]:
        """Layers in each block: ``base``, then ``step`` (even) or ``step*i + 1`` (lin_grow)."""
        grow = (lambda i: self.step) if self.stepmode == "even" else (lambda i: self.step * i + 1)
        return (self.base,) + tuple(grow(i) for i in range(1, self.nBlocks))

    @cached_property
    def nLayers(self) -> int:
        """``L``: layers in the whole network, in closed form (the steps need not be listed):
        ``base + step*(nBlocks-1)`` (even), ``base + step*nBlocks*(nBlocks-1)/2 + nBlocks-1``
        (lin_grow)."""
        more = self.nBlocks - 1
        if self.stepmode == "even":
            return self.base + self.step * more
        return self.base + self.step * self.nBlocks * more // 2 + more

    def as_dict(self) -> dict[str, Any]:
        """Plain values (factors as ``"1-2-4"``), as the authors' scripts take them; JSON-ready."""
        return {
            f.name: format_value(v) if isinstance(v, tuple) else v
            for f in fields(self)
            for v in (getattr(self, f.name),)
        }

    def describe(self) -> str:
        """One line naming every option, e.g. for titles: ``nBlocks 10, stepmode even, ...``."""
        return ", ".join(f"{k} {format_value(v)}" for k, v in self.as_dict().items())


OPTION_NAMES = tuple(f.name for f in fields(Options))

#: Options that take whole numbers, and the smallest value each can take on its own (``step`` 0
#: only with a single block: :class:`Options` checks that with ``nBlocks``).
WHOLE_NUMBER_OPTIONS = {"nBlocks": 1, "step": 0, "base": 1, "nChannels": 1, "growthRate": 1}
#: The largest value each whole-number option can take on its own, and why (the limits above).
WHOLE_NUMBER_MAXIMA = {
    **dict.fromkeys(("nBlocks", "step", "base"), (MAX_LAYERS, f"an MSDNet has at most {MAX_LAYERS:,} layers")),
    **dict.fromkeys(("nChannels", "growthRate"),
                    (MAX_CHANNELS, f"a feature map has at most {MAX_CHANNELS:,} channels")),
}

_VALUE_RULES: dict[str, Callable[[str, Any], Any]] = {
    **{name: lambda option, v: _whole(option, v, WHOLE_NUMBER_OPTIONS[option], *WHOLE_NUMBER_MAXIMA[option])
       for name in WHOLE_NUMBER_OPTIONS},
    "stepmode": lambda option, v: _choice(option, v, STEPMODES),
    "prune": lambda option, v: _choice(option, v, PRUNES),
    "data": lambda option, v: _choice(option, v, DATASETS),
    "grFactor": _factors,
    "bnFactor": _factors,
    "reduction": _fraction,
    "bottleneck": _flag,
}


def check_option_name(name: str) -> str:
    """``name`` if it is an MSDNet option (:data:`OPTION_NAMES`), else :class:`OptionError` with
    the known names and a "did you mean"."""
    if name not in OPTION_NAMES:
        raise OptionError(
            "option", name,
            "is not an MSDNet option; known: " + ", ".join(OPTION_NAMES) + did_you_mean(name, OPTION_NAMES),
        )
    return name


def check_value(option: str, value: Any) -> Any:
    """``value`` of ``option`` normalised by the rule :class:`Options` applies to it alone
    (``"1-2-4"`` -> ``(1, 2, 4)``, ``"7"`` -> ``7``), else :class:`OptionError`.  The rules that
    tie several options together (step with nBlocks, grFactor with bnFactor, scales, channels) are
    checked when the :class:`Options` is made."""
    return _VALUE_RULES[check_option_name(option)](option, value)


def scales_alive(options: Options, layer: int) -> tuple[int, int]:
    """``(inScales, outScales)`` of network layer ``layer`` (1..L), by the prune rule (SPEC §1)."""
    n, total = options.nScales, options.nLayers
    if options.prune == "max":
        interval = math.ceil(total / n)
        return n - max(0, layer - 2) // interval, n - (layer - 1) // interval
    return min(n, total - layer + 2), min(n, total - layer + 1)


def has_transition(options: Options, layer: int) -> bool:
    """Whether a transition follows network layer ``layer`` (SPEC §1)."""
    if options.reduction <= 0:
        return False
    if options.prune == "max":
        in_scales, out_scales = scales_alive(options, layer)
        return in_scales > out_scales
    total = options.nLayers
    return layer in (total // 3, (2 * total) // 3)


@dataclass(frozen=True)
class _Step:
    """One layer of the channel schedule: scales alive, channels (scale-0 units) before and after."""

    index: int
    block: int
    in_scales: int
    out_scales: int
    n_in: int
    n_out: int
    reduced: int | None  # channels after the transition that follows, or None


def _schedule(options: Options):
    """Walk the layers in order, yielding a :class:`_Step` each: the one place ``n`` is tracked."""
    n, index = options.nChannels, 0
    for block, steps in enumerate(options.steps, start=1):
        for _ in range(steps):
            index += 1
            n_in, n_out = scales_alive(options, index)
            grown = n + options.growthRate
            reduced = math.floor(options.reduction * grown) if has_transition(options, index) else None
            yield _Step(index, block, n_in, n_out, n, grown, reduced)
            n = grown if reduced is None else reduced


def _check_layers(options: Options) -> None:
    """Reject networks of more than :data:`MAX_LAYERS` layers, from the closed form of ``L``."""
    if options.nLayers > MAX_LAYERS:
        option = "nBlocks" if options.nBlocks > 1 else "base"
        raise OptionError(
            option, getattr(options, option),
            f"gives {options.nLayers:,} layers (nBlocks {options.nBlocks}, stepmode "
            f"{options.stepmode}, step {options.step}, base {options.base}); an MSDNet has "
            f"at most {MAX_LAYERS:,} (see the limits in docs/errors.md)",
        )


def _check_scales(options: Options) -> None:
    """Reject ``prune min`` networks too short to keep every scale the stem makes: layer 1 would
    read ``min(nScales, L + 1)`` scales of the stem's ``nScales`` (the authors' code fails there)."""
    layers = sum(options.steps)
    if options.prune == "min" and layers + 1 < options.nScales:
        raise OptionError(
            "prune", "min",
            f"needs at least nScales - 1 = {options.nScales - 1} layers in all, but these options give "
            f"{layers}: layer 1 would drop scales the stem makes; use prune max, more layers "
            "(nBlocks, base, step) or fewer scales (grFactor/bnFactor)",
        )


def _check_channels(options: Options) -> None:
    """Reject growth rates a layer cannot halve, transitions that would leave no channels and maps
    wider than :data:`MAX_CHANNELS`."""
    gr = options.grFactor
    widest = [max(gr[s:]) for s in range(options.nScales)]  # the widest factor from scale s on
    if options.nChannels * widest[0] > MAX_CHANNELS:
        raise OptionError(
            "nChannels", options.nChannels,
            f"makes stem maps of {options.nChannels * widest[0]:,} channels (times grFactor "
            f"{widest[0]}); a feature map has at most {MAX_CHANNELS:,} (see the limits in docs/errors.md)",
        )
    for step in _schedule(options):
        offset = options.nScales - step.out_scales
        if step.n_out * widest[offset] > MAX_CHANNELS:
            raise OptionError(
                "growthRate", options.growthRate,
                f"makes layer {step.index} maps of {step.n_out * widest[offset]:,} channels "
                f"({step.n_out:,} times grFactor {widest[offset]}); a feature map has at most "
                f"{MAX_CHANNELS:,} (see the limits in docs/errors.md)",
            )
        halved = range(offset if step.in_scales > step.out_scales else offset + 1, options.nScales)
        for s in halved:
            if options.growthRate * options.grFactor[s] % 2:
                raise OptionError(
                    "growthRate", options.growthRate,
                    f"growthRate*grFactor[{s}] = {options.growthRate * options.grFactor[s]} is odd, "
                    f"but layer {step.index} splits it in half at scale {s}; use an even growthRate "
                    "or even grFactor entries",
                )
        if step.reduced == 0:
            raise OptionError(
                "reduction", options.reduction,
                f"leaves floor({options.reduction}*{step.n_out}) = 0 channels at the transition "
                f"after layer {step.index}; use a larger reduction (or 0 for no transitions)",
            )
