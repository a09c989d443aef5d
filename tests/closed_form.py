"""An independent closed-form count of an MSDNet's per-exit cost, from the layer plan alone.

No model, no hooks, no graph: every conv, BN, ReLU, pool and Linear of SPEC §1 is written out as
arithmetic on the plan's channels and sizes, with the SPEC §2 `msdnet` rules, one *piece* per
feature map (and per head) with the pieces it reads.  Tests compare the hook counter with it over
the option space: per block and head (eager), and per exit with lazy evaluation (only the pieces an
exit reads, found by walking the inputs back from its head).
"""

from __future__ import annotations

from dataclasses import dataclass

from msdnet.plan import LayerPlan, conv_out


def _conv(cin: int, cout: int, k: int, h: int, w: int, relu: bool = True, bias: bool = False):
    """(ops, params) of conv k x k (output h x w, no bias unless ``bias``) + BN + ReLU."""
    ops = cin * cout * k * k * h * w + (cout * h * w if relu else 0)
    return ops, cin * cout * k * k + (cout if bias else 0) + 2 * cout


def _add(*parts):
    return sum(p[0] for p in parts), sum(p[1] for p in parts)


@dataclass(frozen=True)
class Piece:
    """What producing one map (or one exit's logits) costs, where it belongs and what it reads."""

    ops: int
    params: int
    block: int | None  # 1-based block, or None for a head
    head: int | None  # 1-based exit, or None for a map
    reads: tuple[tuple, ...]


def pieces(plan: LayerPlan) -> dict[tuple, Piece]:
    """Every map and head of the network, keyed ``("stem", s)``, ``("layer", l, s)``,
    ``("transition", l, s)``, ``("head", k)``, in forward order."""
    options = plan.options
    height, width = plan.input_size
    out: dict[tuple, Piece] = {}
    stem = plan.stem
    if options.data == "ImageNet":
        h1, w1 = conv_out(height, 7, 2, 3), conv_out(width, 7, 2, 3)
        first = _conv(3, stem[0].channels, 7, h1, w1, bias=True)
        first = _add(first, (stem[0].channels * stem[0].height * stem[0].width * 9, 0))  # max-pool
    else:
        first = _conv(3, stem[0].channels, 3, stem[0].height, stem[0].width)
    out[("stem", 0)] = Piece(*first, 1, None, ())
    for a, b in zip(stem, stem[1:]):
        out[("stem", b.scale)] = Piece(*_conv(a.channels, b.channels, 3, b.height, b.width), 1, None,
                                       (("stem", a.scale),))

    sides = {m.scale: (m.height, m.width) for m in stem}
    current = {m.scale: ("stem", m.scale) for m in stem}
    heads = {head.layer: head for head in plan.heads}
    for layer in plan.layers:
        made = {}
        for scale, units in zip(layer.out_scales, layer.units):
            parts = []
            for u in units:
                hin, win = sides[u.in_scale]
                hout, wout = sides[u.out_scale]
                cin = u.in_channels
                if u.inner is not None:
                    parts.append(_conv(cin, u.inner, 1, hin, win))
                    cin = u.inner
                parts.append(_conv(cin, u.out_channels, 3, hout, wout))
            reads = {current[scale]} | {current[u.in_scale] for u in units}  # + the concatenated input
            made[scale] = ("layer", layer.index, scale)
            out[made[scale]] = Piece(*_add(*parts), layer.block, None, tuple(sorted(reads)))
        current = made
        if layer.transition is not None:
            t = layer.transition
            for s, m in zip(t.scales, t.outputs):
                key = ("transition", layer.index, s)
                cost = _conv(t.in_channels * options.grFactor[s], m.channels, 1, m.height, m.width)
                out[key] = Piece(*cost, layer.block, None, (current[s],))
                current[s] = key
        head = heads.get(layer.index)
        if head is not None:
            c, m = head.conv_channels, head.reads
            h1, w1 = conv_out(m.height, 3, 2, 1), conv_out(m.width, 3, 2, 1)
            h2, w2 = conv_out(h1, 3, 2, 1), conv_out(w1, 3, 2, 1)
            pool = (c * conv_out(h2, 2, 2, 0) * conv_out(w2, 2, 2, 0) * 4, 0)
            linear = (c * head.classes + head.classes, c * head.classes + head.classes)
            cost = _add(_conv(m.channels, c, 3, h1, w1), _conv(c, c, 3, h2, w2), pool, linear)
            out[("head", head.exit)] = Piece(*cost, None, head.exit, (current[plan.nScales - 1],))
    return out


def closed_form(plan: LayerPlan) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """``(blocks, heads)``: ``(ops, params)`` of every block and every head, `msdnet` convention."""
    blocks = [(0, 0)] * plan.options.nBlocks
    heads = [(0, 0)] * plan.options.nBlocks
    for piece in pieces(plan).values():
        if piece.head is not None:
            heads[piece.head - 1] = (piece.ops, piece.params)
        else:
            blocks[piece.block - 1] = _add(blocks[piece.block - 1], (piece.ops, piece.params))
    return blocks, heads


def cumulative(plan: LayerPlan) -> list[tuple[int, int]]:
    """Per exit, the authors' cumulative (ops, params): blocks 1..k + heads 1..k."""
    blocks, heads = closed_form(plan)
    out, total = [], (0, 0)
    for block, head in zip(blocks, heads):
        total = _add(total, block, head)
        out.append(total)
    return out


def needed(plan: LayerPlan, exit: int) -> set[tuple]:
    """The pieces exits 1..``exit`` read, their heads included (walking the inputs back)."""
    table = pieces(plan)
    todo = [("head", k) for k in range(1, exit + 1)]
    seen: set[tuple] = set()
    while todo:
        key = todo.pop()
        if key not in seen:
            seen.add(key)
            todo.extend(table[key].reads)
    return seen


def lazy_cumulative(plan: LayerPlan) -> list[tuple[int, int]]:
    """Per exit k, (ops, params) of only the pieces exits 1..k read: the lazy cost."""
    table = pieces(plan)
    return [
        _add(*((table[key].ops, table[key].params) for key in needed(plan, k)))
        for k in range(1, plan.options.nBlocks + 1)
    ]
