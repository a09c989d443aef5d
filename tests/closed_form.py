"""An independent closed-form count of an MSDNet's per-exit cost, from the layer plan alone.

No model, no hooks: every conv, BN, ReLU, pool and Linear of SPEC §1 is written out as arithmetic on
the plan's channels and sizes, with the SPEC §2 `msdnet` rules.  Tests compare the hook counter
with it over the option space.  Returns per block and per head (ops, params).
"""

from __future__ import annotations

from msdnet.config import LayerPlan, conv_out


def _conv(cin: int, cout: int, k: int, h: int, w: int, relu: bool = True, bias: bool = False):
    """(ops, params) of conv k x k (output h x w, no bias unless ``bias``) + BN + ReLU."""
    ops = cin * cout * k * k * h * w + (cout * h * w if relu else 0)
    return ops, cin * cout * k * k + (cout if bias else 0) + 2 * cout


def _add(*parts):
    return sum(p[0] for p in parts), sum(p[1] for p in parts)


def closed_form(plan: LayerPlan) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """``(blocks, heads)``: ``(ops, params)`` of every block and every head, `msdnet` convention."""
    options = plan.options
    height, width = plan.input_size
    blocks = [(0, 0)] * options.nBlocks
    stem = plan.stem
    if options.data == "ImageNet":
        h1, w1 = conv_out(height, 7, 2, 3), conv_out(width, 7, 2, 3)
        first = _conv(3, stem[0].channels, 7, h1, w1, bias=True)
        pool = (stem[0].channels * stem[0].height * stem[0].width * 9, 0)
        first = _add(first, pool)
    else:
        first = _conv(3, stem[0].channels, 3, stem[0].height, stem[0].width)
    parts = [first] + [_conv(a.channels, b.channels, 3, b.height, b.width) for a, b in zip(stem, stem[1:])]
    blocks[0] = _add(*parts)

    sides = {m.scale: (m.height, m.width) for m in stem}
    for layer in plan.layers:
        parts = []
        for units in layer.units:
            for u in units:
                hin, win = sides[u.in_scale]
                hout, wout = sides[u.out_scale]
                cin = u.in_channels
                if u.inner is not None:
                    parts.append(_conv(cin, u.inner, 1, hin, win))
                    cin = u.inner
                parts.append(_conv(cin, u.out_channels, 3, hout, wout))
        if layer.transition is not None:
            t = layer.transition
            for s, out in zip(t.scales, t.outputs):
                parts.append(_conv(t.in_channels * options.grFactor[s], out.channels, 1, out.height, out.width))
        b = layer.block - 1
        blocks[b] = _add(blocks[b], *parts)

    heads = []
    for head in plan.heads:
        c, m = head.conv_channels, head.reads
        h1, w1 = conv_out(m.height, 3, 2, 1), conv_out(m.width, 3, 2, 1)
        h2, w2 = conv_out(h1, 3, 2, 1), conv_out(w1, 3, 2, 1)
        pool = (c * conv_out(h2, 2, 2, 0) * conv_out(w2, 2, 2, 0) * 4, 0)
        linear = (c * head.classes + head.classes, c * head.classes + head.classes)
        heads.append(_add(_conv(m.channels, c, 3, h1, w1), _conv(c, c, 3, h2, w2), pool, linear))
    return blocks, heads


def cumulative(plan: LayerPlan) -> list[tuple[int, int]]:
    """Per exit, the authors' cumulative (ops, params): blocks 1..k + heads 1..k."""
    blocks, heads = closed_form(plan)
    out, total = [], (0, 0)
    for block, head in zip(blocks, heads):
        total = _add(total, block, head)
        out.append(total)
    return out
