"""Per-exit costs from the layer plan alone, no torch modules: :func:`plan_costs`.

:func:`msdprof.core.exits.exit_costs` builds the network (on ``meta``) and counts it under forward
hooks -- the reference method.  This module reads the same :class:`msdnet.plan.LayerPlan` the
model is built from and adds up, for every module the model would hold (SPEC section 1), what
the counting rules of :mod:`msdprof.core.counting` charge for it (SPEC section 2): in a few hundred
integer operations, a few hundred times faster, for sweeps over many configurations.  The result
is the same :class:`~msdprof.core.exits.ExitCosts`, field for field, in every convention; the tests
(``tests/test_plan_costs.py``) compare the two on every preset and over the option space, and
``msdprof sweep --verify`` compares them on every configuration of a sweep.

A *piece* is what one graph node of :mod:`msdprof.analysis.graph` is charged: the stem's map at a scale,
a layer's output map at a scale, a transition's output at a scale, or an exit's classifier.  Each
piece's operations are kept as multiply-adds of weights (``macs``) and the other operations the
authors' counter charges (``extra``: ReLU elements, pooling windows, Linear bias adds), so that
one pass gives all three conventions.  Parameters are weights and biases (BatchNorm's two per
channel included; running statistics are buffers, not parameters).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from msdnet import Options, resolve
from msdnet.plan import ConvUnit, FeatureMap, LayerPlan, build_plan, conv_out

from .conventions import check_convention

if TYPE_CHECKING:
    from .exits import ExitCosts


class _Pieces:
    """The pieces of one network in forward order: per piece, its operations (``macs``,
    ``extra``), parameters, owner (block ``b`` >= 1, or head ``-k`` for exit k) and the pieces it
    reads (their indices)."""

    def __init__(self) -> None:
        self.macs: list[int] = []
        self.extra: list[int] = []
        self.params: list[int] = []
        self.owner: list[int] = []
        self.reads: list[tuple[int, ...]] = []

    def add(self, macs: int, extra: int, params: int, owner: int, reads: tuple[int, ...]) -> int:
        self.macs.append(macs)
        self.extra.append(extra)
        self.params.append(params)
        self.owner.append(owner)
        self.reads.append(reads)
        return len(self.macs) - 1


def _conv_bn_relu(cin: int, cout: int, kernel: int, pixels: int) -> tuple[int, int, int]:
    """``(macs, extra, params)`` of a bias-free ``kernel`` x ``kernel`` Conv2d ``cin -> cout``
    with ``pixels`` output positions, then BatchNorm2d and ReLU (the authors' ``ConvBasic``)."""
    weights = cin * cout * kernel * kernel
    return weights * pixels, cout * pixels, weights + 2 * cout


def _unit(unit: ConvUnit, in_pixels: int, out_pixels: int) -> tuple[int, int, int]:
    """``(macs, extra, params)`` of one conv unit: the optional 1x1 bottleneck at the input's
    resolution, then the 3x3 conv (stride 1 or 2) at the output's."""
    macs = extra = params = 0
    cin = unit.in_channels
    if unit.inner is not None:
        macs, extra, params = _conv_bn_relu(cin, unit.inner, 1, in_pixels)
        cin = unit.inner
    m, e, p = _conv_bn_relu(cin, unit.out_channels, 3, out_pixels)
    return macs + m, extra + e, params + p


def _stem(plan: LayerPlan, pieces: _Pieces) -> list[int]:
    """Add the stem's pieces (block 1); the piece index of each scale's map."""
    first = plan.stem[0]
    pixels = first.height * first.width
    if plan.options.data == "ImageNet":  # conv 7x7/2 with bias, BN, ReLU, max-pool 3/2
        height, width = plan.input_size
        conv_pixels = conv_out(height, 7, 2, 3) * conv_out(width, 7, 2, 3)
        weights = 3 * first.channels * 49
        macs = weights * conv_pixels
        extra = first.channels * conv_pixels + first.channels * pixels * 9
        params = weights + first.channels + 2 * first.channels
    else:
        macs, extra, params = _conv_bn_relu(3, first.channels, 3, pixels)
    current = [pieces.add(macs, extra, params, 1, ())]
    for finer, fmap in zip(plan.stem, plan.stem[1:]):
        cost = _conv_bn_relu(finer.channels, fmap.channels, 3, fmap.height * fmap.width)
        current.append(pieces.add(*cost, 1, (current[-1],)))
    return current


def _head(reads: FeatureMap, conv_channels: int, classes: int) -> tuple[int, int, int]:
    """``(macs, extra, params)`` of a classifier: two 3x3/2 ConvBasic, avg-pool 2, Linear."""
    h1, w1 = conv_out(reads.height, 3, 2, 1), conv_out(reads.width, 3, 2, 1)
    h2, w2 = conv_out(h1, 3, 2, 1), conv_out(w1, 3, 2, 1)
    pooled = conv_out(h2, 2, 2, 0) * conv_out(w2, 2, 2, 0)
    c = conv_channels
    m1, e1, p1 = _conv_bn_relu(reads.channels, c, 3, h1 * w1)
    m2, e2, p2 = _conv_bn_relu(c, c, 3, h2 * w2)
    features = c * pooled  # what the Linear reads, flattened
    linear_weights = features * classes
    return (m1 + m2 + linear_weights, e1 + e2 + c * pooled * 4 + classes,
            p1 + p2 + linear_weights + classes)


def _pieces(plan: LayerPlan) -> _Pieces:
    """Every piece of the network of ``plan``, in forward order (block 1, head 1, block 2, ...)."""
    pieces = _Pieces()
    stem = _stem(plan, pieces)
    n_scales = plan.nScales
    gr = plan.options.grFactor
    pixels = [fmap.height * fmap.width for fmap in plan.stem]
    current = dict(zip(range(n_scales), stem))  # scale -> the piece holding its latest map
    heads = {head.layer: head for head in plan.heads}
    for layer in plan.layers:
        made = {}
        for scale, units in zip(layer.out_scales, layer.units):
            macs = extra = params = 0
            for unit in units:
                m, e, p = _unit(unit, pixels[unit.in_scale], pixels[scale])
                macs, extra, params = macs + m, extra + e, params + p
            reads = tuple(current[unit.in_scale] for unit in units)  # the normal unit's input
            made[scale] = pieces.add(macs, extra, params, layer.block, reads)  # is the concat's too
        current = made
        transition = layer.transition
        if transition is not None:
            for scale, fmap in zip(transition.scales, transition.outputs):
                cost = _conv_bn_relu(transition.in_channels * gr[scale], fmap.channels, 1, pixels[scale])
                current[scale] = pieces.add(*cost, layer.block, (current[scale],))
        head = heads.get(layer.index)
        if head is not None:
            cost = _head(head.reads, head.conv_channels, head.classes)
            pieces.add(*cost, -head.exit, (current[n_scales - 1],))
    return pieces


def _lazy(pieces: _Pieces, n_exits: int) -> list[tuple[int, int, int]]:
    """Per exit k, ``(macs, extra, params)`` of the pieces exits 1..k read (their classifiers and
    everything these read, directly or not): the lazy cost, as :func:`msdprof.core.exits.lazy_costs`
    reads it from the graph.  Each piece is visited once over all exits."""
    heads = [0] * n_exits
    for index, owner in enumerate(pieces.owner):
        if owner < 0:
            heads[-owner - 1] = index
    needed = bytearray(len(pieces.macs))
    macs = extra = params = 0
    out = []
    for head in heads:
        todo = [head]
        while todo:
            index = todo.pop()
            if needed[index]:
                continue
            needed[index] = 1
            macs += pieces.macs[index]
            extra += pieces.extra[index]
            params += pieces.params[index]
            todo.extend(pieces.reads[index])
        out.append((macs, extra, params))
    return out


#: The operations a convention counts, from a piece's (macs, extra) (as counting.CONVENTIONS).
_IN_CONVENTION = {
    "msdnet": lambda macs, extra: macs + extra,
    "macs": lambda macs, extra: macs,
    "flops": lambda macs, extra: 2 * macs,
}


class _Totals:
    """Per block and per head ``(macs, extra)`` and parameters, and per exit the lazy
    ``(macs, extra, params)``, of one plan: what every convention's figures are made of."""

    def __init__(self, plan: LayerPlan):
        pieces = _pieces(plan)
        n = plan.options.nBlocks
        self.block_macs, self.block_extra, self.block_params = [0] * n, [0] * n, [0] * n
        self.head_macs, self.head_extra, self.head_params = [0] * n, [0] * n, [0] * n
        for macs, extra, params, owner in zip(pieces.macs, pieces.extra, pieces.params, pieces.owner):
            if owner > 0:
                self.block_macs[owner - 1] += macs
                self.block_extra[owner - 1] += extra
                self.block_params[owner - 1] += params
            else:
                self.head_macs[-owner - 1] += macs
                self.head_extra[-owner - 1] += extra
                self.head_params[-owner - 1] += params
        self.lazy = _lazy(pieces, n)

    def exit_costs(self, plan: LayerPlan, convention: str) -> ExitCosts:
        """The per-exit figures in ``convention``, assembled as :func:`msdprof.core.exits.attribute`
        assembles the hooks' counts (SPEC section 2)."""
        from .exits import ExitCost, ExitCosts  # torch: the plan's graph (piece_costs) needs none

        to_number = _IN_CONVENTION[convention]
        exits = []
        blocks_ops = blocks_params = heads_ops = heads_params = 0  # exits 1..k-1, then 1..k
        for i, layer in enumerate(plan.exit_layers):
            block_ops = to_number(self.block_macs[i], self.block_extra[i])
            head_ops = to_number(self.head_macs[i], self.head_extra[i])
            head_params = self.head_params[i]
            blocks_ops += block_ops
            blocks_params += self.block_params[i]
            lazy_macs, lazy_extra, lazy_params = self.lazy[i]
            exits.append(ExitCost(
                exit=i + 1, layer=layer,
                macs=blocks_ops + heads_ops + head_ops,
                params=blocks_params + heads_params + head_params,
                block_macs=block_ops, block_params=self.block_params[i],
                head_macs=head_ops, head_params=head_params,
                direct_macs=blocks_ops + head_ops, direct_params=blocks_params + head_params,
                lazy_macs=to_number(lazy_macs, lazy_extra), lazy_params=lazy_params,
            ))
            heads_ops += head_ops
            heads_params += head_params
        return ExitCosts(options=plan.options, convention=convention, input_size=plan.input_size,
                         exits=tuple(exits), input_shapes=((1, 3, *plan.input_size),),
                         exit_names=tuple(str(e.exit) for e in exits))


def piece_costs(plan: LayerPlan, convention: str = "msdnet") -> tuple[list[int], list[int]]:
    """Operations (in ``convention``) and parameters of every piece of the network of ``plan``, in
    forward order: the stem's maps by scale, then per layer its maps by scale, its transition's
    maps by scale and its exit's classifier -- the order in which
    :func:`msdprof.analysis.graph.graph_from_plan` adds the graph's nodes.  No module is built."""
    convention = check_convention(convention)
    pieces = _pieces(plan)
    to_number = _IN_CONVENTION[convention]
    return [to_number(m, e) for m, e in zip(pieces.macs, pieces.extra)], list(pieces.params)


def plan_costs(plan: LayerPlan, convention: str = "msdnet") -> ExitCosts:
    """What each exit of the network of ``plan`` costs, for one image, from the plan alone.

    Equal, field for field, to :func:`msdprof.core.exits.exit_costs` of the same options and input
    size: operations in ``convention`` (``msdnet``, ``macs`` or ``flops``), parameters.  No module
    is built.
    """
    convention = check_convention(convention)
    return _Totals(plan).exit_costs(plan, convention)


def plan_costs_all(plan: LayerPlan) -> dict[str, ExitCosts]:
    """:func:`plan_costs` of ``plan`` in every convention, by name, from one pass over the plan."""
    totals = _Totals(plan)
    return {convention: totals.exit_costs(plan, convention) for convention in _IN_CONVENTION}


def options_costs(
    preset_or_config: str | Options | None = None,
    *,
    convention: str = "msdnet",
    input_size: Any = None,
    **options: Any,
) -> ExitCosts:
    """:func:`plan_costs` of a preset name or :class:`msdnet.Options` (``None``: the default
    recipe) with keyword ``options`` laid over it, as :func:`msdprof.core.exits.exit_costs` takes them
    (a built model is not taken: count it with ``exit_costs``).  ``input_size``: side or (height,
    width) in pixels; default 32 (CIFAR) or 224 (ImageNet)."""
    convention = check_convention(convention)
    return plan_costs(build_plan(resolve(preset_or_config, **options), input_size), convention)


__all__ = ["options_costs", "piece_costs", "plan_costs", "plan_costs_all"]
