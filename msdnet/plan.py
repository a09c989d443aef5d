"""The layer plan of an MSDNet, computed once from its :class:`~msdnet.options.Options` and an input size.

Which scales are alive at every layer, how many channels and pixels every feature map has, which
conv units produce it, where transitions and exits sit.  The model builder, the connectivity graph
and the reports all read the plan; nothing else re-derives it.  Rules: ``shared/SPEC.md`` section 1.

Channel counts are channels; sizes are pixels (height, width); layers are numbered 1..L over the
whole network, blocks and exits 1..nBlocks.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from typing import Any

from .options import CIFAR_HEAD_CHANNELS, MAX_INPUT_SIDE, OptionError, Options, _schedule, format_value
from .presets import PRESETS

def conv_out(size: int, kernel: int, stride: int, padding: int) -> int:
    """Output side of a convolution or pooling window, in pixels (floor rule)."""
    return (size + 2 * padding - kernel) // stride + 1


def _next_scale(size: int) -> int:
    """A 3x3 stride-2 pad-1 conv: one scale coarser."""
    return conv_out(size, 3, 2, 1)


def _head_output(size: int) -> int:
    """Side of the map a classifier flattens: two 3x3 stride-2 convs, then a 2x2 average pool."""
    return conv_out(_next_scale(_next_scale(size)), 2, 2, 0)


def _scale_sides(data: str, side: int, n_scales: int) -> tuple[int, ...]:
    """Side of every scale's maps for an input side of ``side`` pixels."""
    first = side if data != "ImageNet" else conv_out(conv_out(side, 7, 2, 3), 3, 2, 1)
    sides = [first]
    for _ in range(1, n_scales):
        sides.append(_next_scale(sides[-1]))
    return tuple(sides)


_MOST_SCALES_SUGGESTED = 8  # scale counts tried when suggesting what the default input size needs


def _side_works(data: str, side: int, n_scales: int) -> bool:
    sides = _scale_sides(data, side, n_scales)
    return min(sides) >= 1 and _head_output(sides[-1]) == 1


def input_size_range(options: Options) -> tuple[int, int]:
    """Smallest and largest input side (pixels) for which every map exists and the heads end 1x1."""
    sides = _working_sides(options.data, options.nScales)
    if sides is None:
        most = max(n for n in range(1, options.nScales) if _working_sides(options.data, n))
        stem = " (whose stem divides the side by 4)" if options.data == "ImageNet" else ""
        raise OptionError(
            "grFactor", options.grFactor,
            f"no input size works: with {options.nScales} scales no side from 1 to "
            f"{MAX_INPUT_SIDE} pixels keeps every scale's maps and ends each {options.data} head in "
            f"a 1x1 map; {options.data}{stem} takes at most {most} scales",
        )
    return sides


@lru_cache(maxsize=None)
def _working_sides(data: str, n_scales: int) -> tuple[int, int] | None:
    """Smallest and largest side up to :data:`MAX_INPUT_SIDE` that ``n_scales`` scales take, or
    ``None`` (computed once per data set and number of scales)."""
    works = [s for s in range(1, MAX_INPUT_SIDE + 1) if _side_works(data, s, n_scales)]
    return (works[0], works[-1]) if works else None


def _default_size_error(options: Options, side: int, low: int, high: int) -> OptionError:
    """The data set's own input size does not fit the number of scales: name the data set (the
    user gave no --input-size), the scales that fit it (with a preset that has them) and the sides
    that fit these scales."""
    fits = [n for n in range(1, _MOST_SCALES_SUGGESTED + 1) if _side_works(options.data, side, n)]
    if not fits:
        scales = ""
    else:
        shown = str(fits[0]) if len(fits) == 1 else f"{fits[0]} to {fits[-1]}"
        example = next(((name, p) for name, p in PRESETS.items()
                        if p.data == options.data and p.nScales in fits), None)
        scales = f"needs {shown} scales"
        if example:
            name, p = example
            scales += (f" (--grFactor {format_value(p.grFactor)} --bnFactor {format_value(p.bnFactor)}, "
                       f"as in --preset {name})")
        scales += (f", these options have {options.nScales} (grFactor "
                   f"{format_value(options.grFactor)}); or ")
    return OptionError(
        "data", options.data,
        f"its default {side}x{side} input {scales}give --input-size: sides from {low} to {high} "
        f"work with {options.nScales} scales",
    )


def parse_input_size(value: Any, options: Options) -> tuple[int, int]:
    """``(height, width)`` in pixels from ``None`` (the data set's default), ``32``, ``"32"``,
    ``"32x48"`` or ``(32, 48)``; raises :class:`OptionError` for sizes the network cannot take."""
    default = value is None
    if default:
        value = options.default_input_size
    typed = value  # errors echo what was given, as given
    allowed = "must be a side in pixels (e.g. 32) or HxW (e.g. 32x32)"
    if isinstance(value, str):
        try:
            parts = [int(p) for p in value.lower().replace("×", "x").split("x")]
        except ValueError:
            raise OptionError("input-size", value, allowed) from None
        value = parts[0] if len(parts) == 1 else tuple(parts)
    if isinstance(value, int) and not isinstance(value, bool):
        value = (value, value)
    if (not isinstance(value, (tuple, list)) or len(value) != 2
            or any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in value)):
        raise OptionError("input-size", typed if isinstance(typed, str) else value, allowed)
    shown = typed if isinstance(typed, str) else (
        value[0] if value[0] == value[1] else "x".join(map(str, value)))
    if max(value) > MAX_INPUT_SIDE:
        raise OptionError("input-size", shown, f"must be at most {MAX_INPUT_SIDE} pixels a side "
                                               "(see the limits in docs/errors.md)")
    for side in value:
        if not _side_works(options.data, side, options.nScales):
            low, high = input_size_range(options)  # searched only to word the error
            if default:
                raise _default_size_error(options, side, low, high)
            raise OptionError(
                "input-size", shown,
                f"{'(the ' + options.data + ' default) ' if default else ''}"
                f"too {'small' if side < low else 'large'} for {options.nScales} scales and the "
                f"{options.data} heads (each head must end in a 1x1 map); sides from {low} to "
                f"{high} work",
            )
    return int(value[0]), int(value[1])


@dataclass(frozen=True)
class FeatureMap:
    """The output of one scale of one layer: ``channels`` x ``height`` x ``width``."""

    scale: int
    channels: int
    height: int
    width: int


@dataclass(frozen=True)
class ConvUnit:
    """One conv unit of a layer (SPEC §1): optional 1x1 bottleneck, then a 3x3 conv.

    ``kind`` is ``"normal"`` (stride 1, reads ``in_scale == out_scale``) or ``"down"`` (stride 2,
    reads the finer scale ``out_scale - 1``).  ``inner`` is the bottleneck width in channels, or
    ``None`` without a bottleneck.
    """

    kind: str
    in_scale: int
    out_scale: int
    in_channels: int
    out_channels: int
    inner: int | None

    @property
    def stride(self) -> int:
        return 2 if self.kind == "down" else 1


@dataclass(frozen=True)
class Transition:
    """A 1x1 conv-BN-ReLU at every alive scale, compressing ``n`` to ``floor(reduction*n)``.

    ``in_channels``/``out_channels`` are at scale-0 units (multiply by ``grFactor[s]``).
    """

    after_layer: int
    scales: tuple[int, ...]
    in_channels: int
    out_channels: int
    outputs: tuple[FeatureMap, ...]


@dataclass(frozen=True)
class Layer:
    """Network layer ``index`` (1..L) of block ``block`` (1..nBlocks).

    ``in_scales``/``out_scales`` are the absolute scale indices alive on input and output (finest
    dropped first).  ``units[i]`` are the conv units whose outputs, after the input map at
    ``out_scales[i]``, are concatenated into output map ``outputs[i]``
    (before any transition).  ``in_channels`` and ``growth`` are at scale-0 units.
    """

    index: int
    block: int
    in_scales: tuple[int, ...]
    out_scales: tuple[int, ...]
    in_channels: int
    growth: int
    units: tuple[tuple[ConvUnit, ...], ...]
    outputs: tuple[FeatureMap, ...]
    transition: Transition | None


@dataclass(frozen=True)
class Head:
    """Classifier ``exit`` (1..nBlocks): reads the coarsest map of ``layer`` (after its transition).

    CIFAR: conv 3x3/2 ``in_channels -> 128``, the same ``128 -> 128``, avg-pool 2, Linear ``128 ->
    classes``.  ImageNet: the same with ``in_channels`` all through.
    """

    exit: int
    layer: int
    reads: FeatureMap
    conv_channels: int
    classes: int


@dataclass(frozen=True)
class LayerPlan:
    """Everything about an MSDNet's shape, computed once from its options and input size."""

    options: Options
    input_size: tuple[int, int]
    stem: tuple[FeatureMap, ...]
    layers: tuple[Layer, ...]
    heads: tuple[Head, ...]
    steps: tuple[int, ...] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "steps", self.options.steps)

    @property
    def nScales(self) -> int:
        return self.options.nScales

    def block_layers(self, block: int) -> tuple[Layer, ...]:
        """Layers of block ``block`` (1-based)."""
        return tuple(layer for layer in self.layers if layer.block == block)

    @cached_property
    def exit_layers(self) -> tuple[int, ...]:
        """The network layer each exit reads, exit 1 first."""
        return tuple(head.layer for head in self.heads)

    @cached_property
    def transitions(self) -> tuple[Transition, ...]:
        return tuple(layer.transition for layer in self.layers if layer.transition is not None)

    def summary(self) -> dict[str, Any]:
        """The plan in plain values: layers per block, exit layers, scales per layer, transitions."""
        return {
            "layers_per_block": list(self.steps),
            "exit_layers": list(self.exit_layers),
            "scales_per_layer": [len(layer.out_scales) for layer in self.layers],
            "transitions_after_layers": [t.after_layer for t in self.transitions],
        }


def build_plan(options: Options, input_size: Any = None) -> LayerPlan:
    """The :class:`LayerPlan` of ``options`` for an input of ``input_size`` pixels (default: the
    data set's, 32 or 224).  Raises :class:`OptionError` for an input size the network cannot take."""
    height, width = parse_input_size(input_size, options)
    heights = _scale_sides(options.data, height, options.nScales)
    widths = _scale_sides(options.data, width, options.nScales)
    gr, bn = options.grFactor, options.bnFactor

    def feature_map(scale: int, n: int) -> FeatureMap:
        return FeatureMap(scale, n * gr[scale], heights[scale], widths[scale])

    def unit(kind: str, out_scale: int, n: int, out_channels: int) -> ConvUnit:
        in_scale = out_scale - 1 if kind == "down" else out_scale
        cin = n * gr[in_scale]
        inner = min(cin, bn[in_scale] * out_channels) if options.bottleneck else None
        return ConvUnit(kind, in_scale, out_scale, cin, out_channels, inner)

    stem = tuple(feature_map(s, options.nChannels) for s in range(options.nScales))
    layers: list[Layer] = []
    heads: list[Head] = []
    g = options.growthRate
    block_ends = tuple(itertools.accumulate(options.steps))
    for step in _schedule(options):
        n = step.n_in
        in_scales = tuple(range(options.nScales - step.in_scales, options.nScales))
        out_scales = tuple(range(options.nScales - step.out_scales, options.nScales))
        units = []
        for s in out_scales:
            if s == out_scales[0] and step.in_scales == step.out_scales:
                units.append((unit("normal", s, n, g * gr[s]),))
            else:
                half = g * gr[s] // 2
                units.append((unit("down", s, n, half), unit("normal", s, n, half)))
        transition = None
        if step.reduced is not None:
            transition = Transition(
                step.index, out_scales, step.n_out, step.reduced,
                tuple(feature_map(s, step.reduced) for s in out_scales),
            )
        layers.append(Layer(
            step.index, step.block, in_scales, out_scales, n, g, tuple(units),
            tuple(feature_map(s, step.n_out) for s in out_scales), transition,
        ))
        if step.index == block_ends[step.block - 1]:  # the block's last layer: an exit
            last = transition.outputs[-1] if transition else layers[-1].outputs[-1]
            conv_channels = CIFAR_HEAD_CHANNELS if options.data != "ImageNet" else last.channels
            heads.append(Head(step.block, step.index, last, conv_channels, options.num_classes))
    return LayerPlan(options, (height, width), stem, tuple(layers), tuple(heads))
