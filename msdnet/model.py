"""The MSDNet ``nn.Module``, built from a :class:`~msdnet.plan.LayerPlan` (SPEC section 1).

The module tree mirrors the authors' PyTorch port: ``blocks[i]`` is an ``nn.Sequential`` of the
stem (block 0 only), the layers and the transitions of block ``i+1``; ``classifiers[i]`` is exit
``i+1``'s head.  Every shape decision comes from the plan; this file only turns it into modules.
"""

from __future__ import annotations

import math
import numbers
import os
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any, Iterator, Sequence

import torch
from torch import nn

from .options import OptionError, Options
from .plan import ConvUnit, FeatureMap, Head, Layer, LayerPlan, Transition, build_plan, parse_input_size
from .presets import preset, resolve


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
        if next(self.parameters()).device.type != "meta":  # meta weights hold no values to set
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

    # Early exit that really stops (issue 6) ----------------------------------------------------

    def _check_thresholds(self, thresholds: Sequence[float]) -> tuple[float, ...]:
        """The thresholds of exits 1..nBlocks-1 as floats; ``ValueError`` naming a bad one."""
        if isinstance(thresholds, torch.Tensor) or type(thresholds).__name__ == "ndarray":
            thresholds = thresholds.tolist()  # a tensor or NumPy array of thresholds
        count = f"one number per exit ({self.nBlocks}; the last is ignored)"
        if isinstance(thresholds, (str, bytes)) or not isinstance(thresholds, Sequence):
            raise ValueError(f"thresholds {thresholds!r}: must be a sequence of {count}")
        if len(thresholds) != self.nBlocks:
            raise ValueError(f"thresholds {list(thresholds)!r}: must hold {count}, not {len(thresholds)}")
        limits = []
        for k, value in enumerate(thresholds[:-1]):
            if isinstance(value, bool) or not isinstance(value, numbers.Real) or math.isnan(value):
                raise ValueError(
                    f"thresholds[{k}] {value!r}: must be a number, compared with exit {k + 1}'s "
                    "confidence (the largest softmax probability, 0 to 1)"
                )
            limits.append(float(value))
        return tuple(limits)

    def early_exit(
        self, x: torch.Tensor, thresholds: Sequence[float], *, lazy: bool = False
    ) -> EarlyExit:
        """Classify the images ``x`` (``[N, 3, H, W]``), each leaving at the first confident exit.

        An image's confidence at exit ``k`` is the largest softmax probability of exit ``k``'s
        logits; it leaves at the first ``k`` whose confidence is ``>= thresholds[k-1]`` (the
        authors' rule, ``dynamic_eval_with_threshold``), and every image still undecided leaves at
        the last exit.  ``thresholds`` holds one number per exit; the last is ignored, a value above
        1 lets no image leave there and one at most 0 lets all leave; NaN raises ``ValueError``.

        Unlike the authors' code, which runs every exit for every image, this really stops: block 1
        and head 1 run on the whole batch, block ``k+1`` and head ``k+1`` only on the images still
        undecided (every scale's maps are indexed down to them, so the batch shrinks), and nothing
        more runs once no image remains.  The multiply-adds spent are the sum, over the images, of
        the cumulative cost of the exit each left at.

        ``lazy=True`` also defers what no exit so far reads: up to exit ``k`` only the feature maps
        exit ``k`` depends on (its ancestors in the dataflow) are computed; the finer-scale maps left
        out are computed later, and only for the images that go on.  The decisions are the same;
        an image leaving at exit ``k`` then costs the union of the ancestors of exits 1..k plus heads
        1..k (the lazy cost).

        Runs under ``torch.no_grad()`` and needs eval mode: in training mode BatchNorm would use the
        statistics of a batch that shrinks, so it raises ``RuntimeError`` (the mode is left as the
        caller set it; call ``model.eval()`` first).  Decisions need real weights: on the ``meta``
        device it runs shapes only, and every image goes on to the last exit.
        """
        limits = self._check_thresholds(thresholds)
        if not isinstance(x, torch.Tensor):
            raise ValueError(f"x is a {type(x).__name__}: must be a torch.Tensor [N, 3, H, W] "
                             "(torch.from_numpy turns a NumPy array into one)")
        height, width = self.plan.input_size
        if x.dim() != 4 or x.shape[1] != 3 or tuple(x.shape[2:]) != (height, width):
            raise ValueError(f"x has shape {list(x.shape)}: this network was built for "
                             f"[N, 3, {height}, {width}] (build it for another input size with "
                             "build_model(options, input_size))")
        if not isinstance(lazy, bool):
            raise ValueError(f"lazy {lazy!r}: must be True or False")
        if self.training:
            raise RuntimeError(
                "early_exit needs eval mode (BatchNorm must use its running statistics while the "
                "batch shrinks); call model.eval() first"
            )
        undecidable = x.device.type == "meta"
        n, device = x.shape[0], x.device
        prediction = torch.zeros(n, dtype=torch.long, device=device)
        left_at = torch.full((n,), self.nBlocks, dtype=torch.long, device=device)
        confidence = torch.zeros(0)
        remaining = torch.arange(n, device=device)  # original positions of the undecided images
        per_exit = [0] * self.nBlocks
        cascade = _LazyCascade(self, x) if lazy else _BlockCascade(self, x)
        with torch.no_grad():
            for k in range(1, self.nBlocks + 1):
                if len(remaining) == 0:
                    break
                best, label = torch.softmax(cascade.logits(k), dim=1).max(dim=1)
                if k == 1:
                    confidence = torch.zeros(n, dtype=best.dtype, device=device)
                if k == self.nBlocks:
                    prediction[remaining], confidence[remaining] = label, best
                    per_exit[-1] = len(remaining)
                    break
                if undecidable:
                    continue
                leave = best >= limits[k - 1]
                per_exit[k - 1] = int(leave.sum())
                if per_exit[k - 1] == 0:
                    continue
                leaving = remaining[leave]
                prediction[leaving], confidence[leaving], left_at[leaving] = label[leave], best[leave], k
                stay = ~leave
                remaining = remaining[stay]
                if len(remaining):
                    cascade.keep(stay)
        return EarlyExit(prediction, left_at, confidence, tuple(per_exit))


@dataclass(frozen=True, eq=False)
class EarlyExit:
    """What :meth:`MSDNet.early_exit` decided, per image, in the order of the batch given.

    ``prediction``: the class (``long``) predicted at the exit the image left at; ``exit``: that
    exit, 1-based (``long``); ``confidence``: its largest softmax probability there (0 to 1).
    ``images_per_exit``: how many images left at each exit, exit 1 first.
    """

    prediction: torch.Tensor
    exit: torch.Tensor
    confidence: torch.Tensor
    images_per_exit: tuple[int, ...]

    @property
    def exit_fractions(self) -> tuple[float, ...]:
        """The share of the batch that left at each exit, exit 1 first (0 for an empty batch)."""
        total = sum(self.images_per_exit)
        return tuple(count / total if total else 0.0 for count in self.images_per_exit)


class _BlockCascade:
    """Eager early exit: exit ``k``'s logits after running all of block ``k``."""

    def __init__(self, model: MSDNet, x: torch.Tensor):
        self.model = model
        self.maps: Any = x

    def logits(self, k: int) -> torch.Tensor:
        self.maps = self.model.blocks[k - 1](self.maps)
        return self.model.classifiers[k - 1](self.maps)

    def keep(self, mask: torch.Tensor) -> None:
        """Go on with the images ``mask`` selects only."""
        self.maps = [m[mask] for m in self.maps]


class _LazyCascade:
    """Lazy early exit: exit ``k``'s logits after computing only the missing maps exit ``k`` reads.

    ``latest[s]`` is ``(layer, map)``: the latest map computed at scale ``s`` (after its
    transition, if any; layer 0 is the stem).  A layer's maps are computed from the previous layer's,
    so a map deferred now is computed later from the maps kept at its scale and the finer one.
    """

    def __init__(self, model: MSDNet, x: torch.Tensor):
        self.model, self.x = model, x
        self.latest: dict[int, tuple[int, torch.Tensor]] = {}
        modules: list[list[Any]] = []  # [MSDLayer, TransitionLayer or None] per network layer
        for block in model.blocks:
            for module in block:
                if isinstance(module, MSDLayer):
                    modules.append([module, None])
                elif isinstance(module, TransitionLayer):
                    modules[-1][1] = module
        self.modules = modules

    def _needed(self, k: int) -> list[tuple[Layer, list[int]]]:
        """Per layer 1..(exit k's layer), the scales of its outputs that exit ``k`` depends on."""
        plan = self.model.plan
        scales = {plan.nScales - 1}
        needed = []
        for layer in reversed(plan.layers[: plan.exit_layers[k - 1]]):
            needed.append((layer, sorted(scales)))
            scales = {
                read for s in scales
                for read in (s, *(unit.in_scale for unit in layer.units[layer.out_scales.index(s)]))
            }
        return needed[::-1]

    def logits(self, k: int) -> torch.Tensor:
        if not self.latest:  # every stem map feeds the next coarser one: all are ancestors
            stem = self.model.blocks[0][0]
            self.latest = {s: (0, m) for s, m in enumerate(stem(self.x))}
        for layer, scales in self._needed(k):
            missing = [s for s in scales if self.latest[s][0] < layer.index]
            if not missing:
                continue
            inputs: list[Any] = [
                self.latest[s][1] if self.latest[s][0] == layer.index - 1 else None
                for s in layer.in_scales
            ]
            msd_layer, transition = self.modules[layer.index - 1]
            for s in missing:
                out = msd_layer.scales[layer.out_scales.index(s)](inputs)
                if transition is not None:
                    out = transition.convs[layer.transition.scales.index(s)](out)
                self.latest[s] = (layer.index, out)
        return self.model.classifiers[k - 1]([self.latest[self.model.plan.nScales - 1][1]])

    def keep(self, mask: torch.Tensor) -> None:
        """Go on with the images ``mask`` selects only."""
        self.latest = {s: (layer, m[mask]) for s, (layer, m) in self.latest.items()}


def available_memory() -> int | None:
    """Bytes of memory this process can still get: the machine's (Linux ``MemAvailable``), or less
    where the process's address space is limited (``ulimit -v``, ``RLIMIT_AS``) -- that limit less
    what the process already maps; ``None`` if unknown."""
    found = []
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    found.append(int(line.split()[1]) * 1024)
    except OSError:
        pass
    try:
        import resource

        limit = resource.getrlimit(resource.RLIMIT_AS)[0]
        if limit != resource.RLIM_INFINITY:
            with open("/proc/self/statm") as f:
                mapped = int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
            found.append(max(0, limit - mapped))
    except (ImportError, OSError, ValueError):
        pass
    return min(found) if found else None


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


def check_msdnet(model: Any) -> MSDNet:
    """``model`` if it is an :class:`MSDNet`, else :class:`OptionError`: what is counted or drawn
    is read off its layer plan, which only an MSDNet has."""
    if not isinstance(model, MSDNet):
        raise OptionError("model", type(model).__name__, "must be an msdnet.MSDNet (its layer plan is needed)")
    return model


def build_model(
    options: Options | None = None,
    input_size: Any = None,
    device: str | torch.device | None = None,
) -> MSDNet:
    """Build the MSDNet of ``options`` (default: the authors' defaults) for ``input_size`` pixels.

    ``device="meta"`` builds it without allocating or initialising any weight: shapes only, which is
    all counting needs.  A CPU build that would not fit in memory raises :class:`OptionError`.
    """
    if isinstance(options, str):
        options = preset(options)
    if options is not None and not isinstance(options, Options):
        raise OptionError("options", type(options).__name__,
                          "must be an msdnet.Options or a preset name (e.g. 'cifar10-batch')")
    plan = build_plan(options or Options(), input_size)
    try:
        target = torch.device(device) if device is not None else torch.device("cpu")
    except (RuntimeError, TypeError):
        raise OptionError("device", device, "must be a torch device such as 'cpu' or 'meta'") from None
    if target.type == "cuda" and not torch.cuda.is_available():
        raise OptionError("device", device, "CUDA is not available on this machine (use 'cpu' or 'meta')")
    try:  # a device torch knows by name but cannot allocate on here (xla, mps ...)
        torch.empty(0, device=target)
    except (RuntimeError, NotImplementedError, AssertionError):
        raise OptionError("device", device, f"{target.type} is not available on this machine "
                                            "(use 'cpu' or 'meta')") from None
    if target.type == "cpu":
        _check_fits_in_memory(plan)
    try:
        with torch.device(target) if device is not None else nullcontext():
            return MSDNet(plan)
    except (MemoryError, RuntimeError) as error:  # the allocator refused, e.g. under ulimit -v
        if isinstance(error, RuntimeError) and "alloc" not in str(error).lower():
            raise
        raise OptionError("device", str(target), "ran out of memory allocating the model's "
                                                 "weights; count on the meta device (the default), "
                                                 "which allocates nothing") from None


def _check_built_size(model: MSDNet, input_size: Any) -> None:
    """An ``input_size`` given with a built MSDNet (``--model`` on a factory returning one) must be
    the size it was built for: a side, ``HxW``, or ``3xHxW``; :class:`OptionError` otherwise."""
    value = input_size
    if isinstance(value, str) and value.lower().count("x") == 2 and value.lower().startswith("3x"):
        value = value[2:]
    elif isinstance(value, (tuple, list)) and len(value) == 3 and value[0] == 3:
        value = tuple(value[1:])
    height, width = model.plan.input_size
    if parse_input_size(value, model.options) != (height, width):
        shown = input_size if isinstance(input_size, (str, int)) else "x".join(map(str, input_size))
        raise OptionError("input-size", shown, f"this MSDNet is built for 3x{height}x{width} images: "
                                               f"give {height}x{width} (or none)")


def model_from(
    preset_or_config: str | Options | nn.Module | None = None,
    input_size: Any = None,
    device: str | torch.device = "meta",
    *,
    use: str = "used",
    **overrides: object,
) -> MSDNet:
    """The :class:`MSDNet` a caller of the public API means: a built model as it is (then no
    options may be given: :class:`OptionError` saying it "is ``use`` as built"; an ``input_size``
    must be the one it was built for),
    else :func:`build_model` of :func:`resolve` ``(preset_or_config, **overrides)`` on ``device``."""
    if isinstance(preset_or_config, nn.Module):
        if overrides:
            raise OptionError(
                "model", type(preset_or_config).__name__,
                f"is {use} as built: pass no options with a model",
            )
        model = check_msdnet(preset_or_config)
        if input_size is not None:
            _check_built_size(model, input_size)
        return model
    return build_model(resolve(preset_or_config, **overrides), input_size, device=device)
