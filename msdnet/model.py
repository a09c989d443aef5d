"""The MSDNet ``nn.Module``, built from a :class:`~msdnet.config.LayerPlan` (SPEC section 1).

The module tree mirrors the authors' PyTorch port: ``blocks[i]`` is an ``nn.Sequential`` of the
stem (block 0 only), the layers and the transitions of block ``i+1``; ``classifiers[i]`` is exit
``i+1``'s head.  Every shape decision comes from the plan; this file only turns it into modules.
"""

from __future__ import annotations

import math
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any, Iterator

import torch
from torch import nn

from .config import ConvUnit, FeatureMap, Head, Layer, LayerPlan, OptionError, Options, Transition, build_plan


class ConvBasic(nn.Sequential):
    """Conv (no bias), BN, ReLU: the authors' ``ConvBasic``."""

    def __init__(self, cin: int, cout: int, kernel: int = 3, stride: int = 1, padding: int = 1):
        super().__init__(
            nn.Conv2d(cin, cout, kernel, stride, padding, bias=False),
            nn.BatchNorm2d(cout),
            nn.ReLU(inplace=True),
        )


class ConvBN(nn.Sequential):
    """One conv unit (the authors' ``ConvBN``): optional 1x1 bottleneck, then 3x3 conv, BN, ReLU."""

    def __init__(self, unit: ConvUnit):
        modules: list[nn.Module] = []
        cin = unit.in_channels
        if unit.inner is not None:
            modules += [
                nn.Conv2d(cin, unit.inner, 1, 1, 0, bias=False),
                nn.BatchNorm2d(unit.inner),
                nn.ReLU(inplace=True),
            ]
            cin = unit.inner
        modules += [
            nn.Conv2d(cin, unit.out_channels, 3, unit.stride, 1, bias=False),
            nn.BatchNorm2d(unit.out_channels),
            nn.ReLU(inplace=True),
        ]
        super().__init__(*modules)


class ScaleOutput(nn.Module):
    """One output scale of a layer: ``cat([input at s, down(input at s-1), normal(input at s)])``.

    With a single (normal) unit this is the authors' ``ConvNormal``, with two ``ConvDownNormal``.
    """

    def __init__(self, units: tuple[ConvUnit, ...], in_scales: tuple[int, ...]):
        super().__init__()
        self.convs = nn.ModuleList(ConvBN(u) for u in units)
        self.reads = [in_scales.index(u.in_scale) for u in units]  # positions in the input list
        self.keeps = in_scales.index(units[-1].out_scale)

    def forward(self, maps: list[torch.Tensor]) -> torch.Tensor:
        new = [conv(maps[i]) for conv, i in zip(self.convs, self.reads)]
        return torch.cat([maps[self.keeps], *new], dim=1)


class MSDLayer(nn.Module):
    """A dense multi-scale layer: maps at ``in_scales`` in, maps at ``out_scales`` out."""

    def __init__(self, layer: Layer):
        super().__init__()
        self.scales = nn.ModuleList(ScaleOutput(units, layer.in_scales) for units in layer.units)

    def forward(self, maps: list[torch.Tensor]) -> list[torch.Tensor]:
        return [scale(maps) for scale in self.scales]


class TransitionLayer(nn.Module):
    """A 1x1 ConvBasic at each alive scale (the authors' ``ParallelModule`` of ``ConvBasic``)."""

    def __init__(self, transition: Transition, grFactor: tuple[int, ...]):
        super().__init__()
        self.convs = nn.ModuleList(
            ConvBasic(transition.in_channels * grFactor[s], out.channels, 1, 1, 0)
            for s, out in zip(transition.scales, transition.outputs)
        )

    def forward(self, maps: list[torch.Tensor]) -> list[torch.Tensor]:
        return [conv(x) for conv, x in zip(self.convs, maps)]


class Stem(nn.Module):
    """The first layer (the authors' ``MSDNFirstLayer``): one map per scale from the image."""

    def __init__(self, stem: tuple[FeatureMap, ...], data: str):
        super().__init__()
        first = stem[0].channels
        if data == "ImageNet":
            scale0: nn.Module = nn.Sequential(
                nn.Conv2d(3, first, 7, 2, 3),  # the one layer conv with a bias
                nn.BatchNorm2d(first),
                nn.ReLU(inplace=True),
                nn.MaxPool2d(3, 2, 1),
            )
        else:
            scale0 = ConvBasic(3, first, 3, 1, 1)
        coarser = [ConvBasic(a.channels, b.channels, 3, 2, 1) for a, b in zip(stem, stem[1:])]
        self.scales = nn.ModuleList([scale0, *coarser])

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        maps = []
        for conv in self.scales:
            x = conv(x)
            maps.append(x)
        return maps


class Classifier(nn.Module):
    """An exit head on the coarsest map: two 3x3/2 ConvBasic, avg-pool 2, flatten, Linear."""

    def __init__(self, head: Head):
        super().__init__()
        c = head.conv_channels
        self.features = nn.Sequential(
            ConvBasic(head.reads.channels, c, 3, 2, 1),
            ConvBasic(c, c, 3, 2, 1),
            nn.AvgPool2d(2),
        )
        self.linear = nn.Linear(c, head.classes)

    def forward(self, maps: list[torch.Tensor]) -> torch.Tensor:
        features = self.features(maps[-1])
        return self.linear(features.flatten(1))


@dataclass(frozen=True)
class Part:
    """What one submodule of an :class:`MSDNet` produces (see :meth:`MSDNet.named_parts`).

    ``kind`` is ``"map"`` (the feature map at ``scale`` output by network layer ``layer``; the
    stem's maps are layer 0), ``"transition"`` (the map at ``scale`` output by the transition after
    ``layer``) or ``"classifier"`` (the logits of exit ``exit``, read from the coarsest ``scale`` of
    ``layer``).  Layers are 1..L, scales 0..nScales-1, exits 1..nBlocks.
    """

    kind: str
    layer: int
    scale: int
    exit: int | None = None


class MSDNet(nn.Module):
    """Multi-Scale Dense Network (Huang et al., ICLR 2018), built exactly per the layer plan.

    ``forward(x)`` returns the logits of every exit, exit 1 first; ``forward(x, exits=k)`` runs
    blocks and heads 1..k only and returns the first ``k`` exits' logits.
    """

    def __init__(self, plan: LayerPlan):
        super().__init__()
        self.plan = plan
        options = plan.options
        blocks = []
        for block in range(1, options.nBlocks + 1):
            modules: list[nn.Module] = [Stem(plan.stem, options.data)] if block == 1 else []
            for layer in plan.block_layers(block):
                modules.append(MSDLayer(layer))
                if layer.transition is not None:
                    modules.append(TransitionLayer(layer.transition, options.grFactor))
            blocks.append(nn.Sequential(*modules))
        self.blocks = nn.ModuleList(blocks)
        self.classifiers = nn.ModuleList(Classifier(head) for head in plan.heads)
        self._initialise()

    @property
    def options(self) -> Options:
        return self.plan.options

    @property
    def nBlocks(self) -> int:
        return len(self.blocks)

    def named_parts(self) -> Iterator[tuple[str, Part]]:
        """``(module name, Part)`` for each submodule that outputs one map or one exit's logits.

        In forward order (block 1, classifier 1, block 2, ...); the named modules hold every module
        of the network, each exactly once, so they tie per-module counts to the parts they produce.
        """
        layers = iter(self.plan.layers)
        layer: Layer | None = None
        for b, (block, head) in enumerate(zip(self.blocks, self.plan.heads)):
            for i, module in enumerate(block):
                name = f"blocks.{b}.{i}"
                if isinstance(module, Stem):
                    for s in range(len(module.scales)):
                        yield f"{name}.scales.{s}", Part("map", 0, s)
                elif isinstance(module, MSDLayer):
                    layer = next(layers)
                    for j, s in enumerate(layer.out_scales):
                        yield f"{name}.scales.{j}", Part("map", layer.index, s)
                elif isinstance(module, TransitionLayer):  # follows the layer just named
                    assert layer is not None and layer.transition is not None
                    for j, s in enumerate(layer.transition.scales):
                        yield f"{name}.convs.{j}", Part("transition", layer.index, s)
            yield f"classifiers.{b}", Part("classifier", head.layer, self.plan.nScales - 1, head.exit)

    def _initialise(self) -> None:
        """The authors' initialisation: He-normal convs, BN weight 1 bias 0, Linear bias 0."""
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                n = m.kernel_size[0] * m.kernel_size[1] * m.out_channels
                m.weight.data.normal_(0, math.sqrt(2.0 / n))
            elif isinstance(m, nn.BatchNorm2d):
                m.weight.data.fill_(1)
                m.bias.data.zero_()
            elif isinstance(m, nn.Linear):
                m.bias.data.zero_()

    def _check_exits(self, exits: int | None) -> int:
        if exits is None:
            return self.nBlocks
        if isinstance(exits, bool) or not isinstance(exits, int) or not 1 <= exits <= self.nBlocks:
            raise ValueError(f"exits {exits!r}: must be a whole number from 1 to {self.nBlocks}")
        return exits

    def forward(self, x: torch.Tensor, exits: int | None = None) -> list[torch.Tensor]:
        """Logits ``[batch, classes]`` of exits 1..``exits`` (default: all), exit 1 first."""
        logits = []
        maps: Any = x
        for block, head in zip(self.blocks[: self._check_exits(exits)], self.classifiers):
            maps = block(maps)
            logits.append(head(maps))
        return logits


def available_memory() -> int | None:
    """Bytes of memory this machine can still give (Linux ``MemAvailable``), or ``None`` if unknown."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def _bytes(n: float) -> str:
    return f"{n / 2**30:.1f} GiB" if n >= 2**30 else f"{n / 2**20:.0f} MiB"


def _check_fits_in_memory(plan: LayerPlan) -> None:
    """Refuse a real CPU build whose float32 weights would not fit in the memory available."""
    available = available_memory()
    if available is None:
        return
    with torch.device("meta"):
        needed = sum(p.numel() for p in MSDNet(plan).parameters()) * 4
    if needed > 0.8 * available:
        raise OptionError(
            "device", "cpu",
            f"the model's float32 weights need {_bytes(needed)} but only {_bytes(available)} of "
            "memory is available; count on the meta device "
            "(the default), which allocates nothing",
        )


def build_model(
    options: Options | None = None,
    input_size: Any = None,
    device: str | torch.device | None = None,
) -> MSDNet:
    """Build the MSDNet of ``options`` (default: the authors' defaults) for ``input_size`` pixels.

    ``device="meta"`` builds it without allocating or initialising any weight: shapes only, which is
    all counting needs.  A CPU build that would not fit in memory raises :class:`OptionError`.
    """
    plan = build_plan(options or Options(), input_size)
    target = torch.device(device) if device is not None else torch.device("cpu")
    if target.type == "cpu":
        _check_fits_in_memory(plan)
    with torch.device(target) if device is not None else nullcontext():
        return MSDNet(plan)
