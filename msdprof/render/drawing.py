"""Drawing and saving the connectivity graph: Graphviz source, SVG/PNG/PDF, JSON and GraphML.

The picture reads like the MSDNet paper's figure: layers left to right, scales top to bottom, one
column per layer (and per transition), the exits below the coarsest scale, a band per block, a
legend for the edge kinds.  Every node and every band is pinned to that grid (``neato -n2``, fixed
node sizes, explicit font), so the geometry does not depend on the fonts installed and the same
graph gives the same bytes on every run.  Lengths in this module are in points (1/72 inch).
"""

from __future__ import annotations

import bisect
import functools
import json
import re
import shutil
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator

import graphviz

from msdnet.options import OptionError

from .formatting import OP_NAMES
from ..files.output import check_writable, write_atomic

if TYPE_CHECKING:  # networkx is imported where a graph is written: `msdprof graph --help` needs none
    import networkx as nx

#: Formats Graphviz renders, and the program that renders them (positions are pinned: no layout).
RENDERED = ("svg", "png", "pdf")
GRAPHVIZ_PROGRAM = "neato"

FONT = "Helvetica"
COLUMN = 104.0  # points between the centres of two grid columns (a layer or a transition)
ROW = 64.0  # points between the centres of two scales
HEADER = 0.62 * ROW  # points from scale 0's centre up to the column headers
NODE_WIDTH, NODE_HEIGHT = 92.0, 30.0
DENSE_RISE = HEADER - NODE_HEIGHT / 2 - 12  # the most a dense edge's arch rises over a box's top
EXIT_HEIGHT = 38.0
NODE_FONT = 14.0  # points: a box's label ("128×16×16", "1000 classes" fit NODE_WIDTH)
LABEL_EM = 0.62  # a map label's character width, in font sizes, as Graphviz reckons it (a longer
#                  label is set smaller, so Graphviz never warns "size too small for label")
AXIS_FONT = 12.0  # points: a column's header (a scale's label is one point larger)
CHAR_WIDTH = 0.56  # a generous average glyph width, in font sizes, for sizing text boxes

SCALE_FILLS = ("#dde9f7", "#dcf0dc", "#fce7cc", "#ece0f5", "#f8dde5", "#e0f2f1")
BAND_FILLS = ("#f1f4f9", "#fbfbfd")

EDGE_STYLES: dict[str, dict[str, str]] = {
    "normal": {"color": "#3b4a5a", "penwidth": "1.3"},
    "down": {"color": "#2166ac", "penwidth": "1.3"},
    "transition": {"color": "#b07d00", "penwidth": "1.8"},
    "classifier": {"color": "#b3261e", "penwidth": "1.8"},
    "dense": {"color": "#9aa3ad", "penwidth": "0.6", "arrowsize": "0.4"},
}
EDGE_MEANING = {
    "normal": "normal: same-scale conv (+ identity)",
    "down": "down: strided conv from the finer scale",
    "transition": "transition: 1x1 conv compressing",
    "classifier": "classifier: exit head on the coarsest scale",
    "dense": "dense: earlier maps carried by the concatenation",
}
NODE_STYLES: dict[str, dict[str, str]] = {
    "map": {"shape": "box", "style": "filled", "color": "#3b4a5a", "penwidth": "1"},
    "transition": {"shape": "box", "style": "filled", "fillcolor": "#fff3c4", "color": "#b07d00",
                   "penwidth": "1.6"},
    "classifier": {"shape": "box", "style": "rounded,filled,bold", "fillcolor": "#f8d3cf",
                   "color": "#b3261e", "fontcolor": "#6e1510"},
}


@functools.lru_cache(maxsize=65536)  # grid positions repeat: a dense graph formats millions of them
def _num(value: float) -> str:
    """A coordinate or length as Graphviz reads it: at most two decimals, no trailing zeros."""
    return f"{value:.2f}".rstrip("0").rstrip(".")


def _pos(x: float, y: float) -> str:
    return f"{_num(x)},{_num(y)}!"


def _text_width(text: str, size: float) -> float:
    """Points a line of ``text`` may take at font ``size``, for sizing a box (not font metrics)."""
    return max(len(line) for line in text.split("\n")) * size * CHAR_WIDTH


def _size(channels: int, height: int, width: int) -> str:
    return f"{channels}×{height}×{width}"


#: The dataflow picture (any model): box and grid sizes in points, and the shape the wrapped
#: rows aim for (the page's view beside its panel, in CSS pixels).
FLOW_BOX = (150.0, 48.0)
FLOW_EXIT = (150.0, 22.0)
FLOW_GAP = (14.0, 8.0, 22.0)  # between columns, between stacked boxes, between rows
FLOW_FONT = 12.0
FLOW_VIEW = (930.0, 720.0)
FLOW_CHARS = 21  # a box's label lines are cut to this many characters ("..." ends a cut one)


def _columns(graph: nx.DiGraph) -> dict[tuple[int, bool], int]:
    """Grid column of each (layer, is-transition): layers in order, a transition right after its layer."""
    keys = sorted({(d["layer"], d["kind"] == "transition") for _, d in graph.nodes(data=True)
                   if d["kind"] != "classifier"})
    return {key: column for column, key in enumerate(keys)}


def _fittest(candidates: Iterable[tuple[Any, float, float]], view: tuple[float, float], growing: int) -> Any:
    """The ``choice`` of the candidate ``(choice, width, height)`` that ``view`` shows whole the
    largest (the first of equals).  ``candidates`` come by growing width (``growing`` 0) or height
    (1): the search stops once that dimension alone makes a candidate smaller than the best, as
    it does every later one."""
    best, best_fit = None, -1.0
    for choice, *size in candidates:
        if view[growing] / size[growing] < best_fit:
            break
        width, height = size
        fit = min(view[0] / width, view[1] / height)
        if fit > best_fit + 1e-9:
            best, best_fit = choice, fit
    return best


def _split(widths: list[int], parts: int) -> list[int]:
    """The first item of each of ``parts`` runs of ``widths`` (in order) whose widest run is the
    narrowest possible."""
    def cuts(capacity: int) -> list[int] | None:
        starts, run = [0], 0
        for i, w in enumerate(widths):
            if run + w > capacity and run:
                starts.append(i)
                run = 0
            run += w
        return starts if len(starts) <= parts else None

    low, high = max(widths), sum(widths)
    while low < high:  # the narrowest capacity that needs at most `parts` runs
        middle = (low + high) // 2
        if cuts(middle) is None:
            low = middle + 1
        else:
            high = middle
    return cuts(low) or [0]


#: Points between the bottom of one row of blocks and the top of the next.
ROW_GAP = 0.35 * ROW
#: Points a row of blocks' band reaches above its finest scale's centre line (the column headers,
#: the block's name over them) and below its coarsest (the exits).
BAND_ABOVE, BAND_BELOW = HEADER + 30.0, 1.3 * ROW
#: Points above the first row (the title) and below the last (the legend).
TITLE_HEIGHT, LEGEND_HEIGHT = 0.8 * ROW, 0.9 * ROW


class _Grid:
    """Where an MSDNet's picture puts everything, in points, Graphviz's y axis pointing up.

    The grid's columns (layers, a transition right after its layer) are wrapped by block into rows
    so the picture's shape is close to the page's view (:data:`FLOW_VIEW`): the number of rows that
    lets the view show the whole picture the largest.  A row shows the scales from the finest
    any of its maps has (``first[row]``: a pruned network's later rows are shorter) to the
    coarsest; an exit sits under the coarsest scale of its row."""

    def __init__(self, graph: nx.DiGraph, view: tuple[float, float] = FLOW_VIEW) -> None:
        columns = _columns(graph)
        self.n_scales = 1 + max(d["scale"] for _, d in graph.nodes(data=True))
        block_of, finest = {}, {}
        for _, d in graph.nodes(data=True):
            if d["kind"] != "classifier":
                block_of[columns[(d["layer"], d["kind"] == "transition")]] = d["block"]
                finest[d["block"]] = min(finest.get(d["block"], d["scale"]), d["scale"])
        blocks = sorted(set(block_of.values()))
        columns_of = Counter(block_of.values())
        widths = [columns_of[block] for block in blocks]

        def wrapped(parts: int) -> tuple[list[int], float, float]:
            starts = _split(widths, parts)
            runs = list(zip(starts, [*starts[1:], len(widths)]))
            widest = max(sum(widths[a:b]) for a, b in runs)
            height = sum(self._pitch(min(finest[blocks[i]] for i in range(a, b))) for a, b in runs)
            return starts, (widest + 1) * COLUMN, TITLE_HEIGHT + height + LEGEND_HEIGHT

        starts = _fittest((wrapped(parts) for parts in range(1, len(blocks) + 1)), view, growing=1)
        self.strips = len(starts)
        row_of_block = {block: bisect.bisect_right(starts, i) - 1 for i, block in enumerate(blocks)}
        #: per row: the finest scale shown, and the y of that scale's centre line
        self.first = [min(finest[b] for b in blocks[a:b]) for a, b in zip(starts, [*starts[1:], len(blocks)])]
        self.offset = [0.0]
        for row in range(1, self.strips):
            self.offset.append(self.offset[-1] - self._pitch(self.first[row - 1]))
        start = {}  # row -> its first global column
        self.columns: dict[tuple[int, bool], tuple[int, int]] = {}  # key -> (row, column in the row)
        for key, column in columns.items():
            row = row_of_block[block_of[column]]
            start.setdefault(row, column)
            self.columns[key] = (row, column - start[row])
        self.row_of: dict[str, int] = {}
        self.where: dict[str, tuple[float, float]] = {}
        for node, d in graph.nodes(data=True):
            if d["kind"] != "classifier":
                row, at = self.columns[(d["layer"], d["kind"] == "transition")]
                self.row_of[node] = row
                self.where[node] = (at * COLUMN, self.y(row, d["scale"]))
        for node, d in graph.nodes(data=True):
            if d["kind"] == "classifier":
                (source,) = graph.predecessors(node)
                self.row_of[node] = row = self.row_of[source]
                self.where[node] = (self.where[source][0], self.y(row, self.n_scales - 0.1))
        widest = [0] * self.strips
        for row, at in self.columns.values():
            widest[row] = max(widest[row], at)
        self.right = [COLUMN / 2 + COLUMN * at for at in widest]  # x of each row's right end

    def _pitch(self, first: int) -> float:
        """Points from a row's finest scale to the next row's, the row showing scales ``first``.."""
        return (self.n_scales - 1 - first) * ROW + BAND_ABOVE + BAND_BELOW + ROW_GAP

    def y(self, row: int, scale: float) -> float:
        """The y of ``scale``'s centre line in ``row`` (``n_scales - 0.1``: the exits)."""
        return self.offset[row] - (scale - self.first[row]) * ROW

    def band(self, row: int) -> tuple[float, float]:
        """The bottom and top y of ``row``'s band of blocks."""
        return self.y(row, self.n_scales - 1) - BAND_BELOW, self.y(row, self.first[row]) + BAND_ABOVE


def _line(*points: tuple[float, float]) -> list[tuple[float, float]]:
    """Bezier control points (3n + 1) drawing straight segments through ``points``."""
    out = [points[0]]
    for (x0, y0), (x1, y1) in zip(points, points[1:]):
        out += [(x0 + (x1 - x0) / 3, y0 + (y1 - y0) / 3), (x0 + 2 * (x1 - x0) / 3, y0 + 2 * (y1 - y0) / 3), (x1, y1)]
    return out


def _spline(points: list[tuple[float, float]], tip: tuple[float, float] | None = None) -> str:
    """A Graphviz edge ``pos`` spline through ``points``, ending in an arrow whose tip is ``tip``."""
    head = f"e,{_num(tip[0])},{_num(tip[1])} " if tip is not None else ""
    return head + " ".join(f"{_num(x)},{_num(y)}" for x, y in points)


def _wrapped_edges(grid: _Grid, nodes: dict[str, dict[str, Any]]) -> Callable[[str, str, bool], str]:
    """``pos(tail, head, dense)``: a Graphviz edge ``pos`` for an edge from one row of blocks to a
    later one, in two pieces: one leaving ``tail`` to its row's right end, one entering ``head``
    from its row's left end (the arrow), at the heights a straight edge would cross there.  A dense
    edge's pieces run above the rows, so they depend on one end each and are made once per node
    (a 1,000-layer dense graph has some 280,000 of them)."""
    left, rise = -COLUMN / 2, DENSE_RISE
    leaving: dict[str, str] = {}
    entering: dict[str, str] = {}

    def dense_pos(tail: str, head: str) -> str:
        if tail not in leaving:
            (tx, ty), right = grid.where[tail], grid.right[grid.row_of[tail]]
            top = ty + NODE_HEIGHT / 2
            leaving[tail] = _spline(_line((tx + 10, top), (tx + 10, top + rise), (right, top + rise)))
        if head not in entering:
            hx, hy = grid.where[head]
            top = hy + NODE_HEIGHT / 2
            entering[head] = _spline(_line((left, top + rise), (hx - 10, top + rise), (hx - 10, top + 4)),
                                     (hx - 10, top))
        return leaving[tail] + ";" + entering[head]

    def pos(tail: str, head: str, dense: bool) -> str:
        if dense:
            return dense_pos(tail, head)
        (tx, ty), (hx, hy) = grid.where[tail], grid.where[head]
        t_row, h_row = grid.row_of[tail], grid.row_of[head]
        leave = _line((tx + NODE_WIDTH / 2, ty), (grid.right[t_row], (ty + grid.y(t_row, nodes[head]["scale"])) / 2))
        enter = _line((left, (grid.y(h_row, nodes[tail]["scale"]) + hy) / 2), (hx - NODE_WIDTH / 2 - 6, hy))
        return _spline(leave) + ";" + _spline(enter, (hx - NODE_WIDTH / 2, hy))

    return pos


def _dense_arcs(where: dict[str, tuple[float, float]]) -> Callable[[str, str], str]:
    """``arc(tail, head)``: a Graphviz edge ``pos``, an arch above the row from ``tail``'s top to
    ``head``'s top (a dense edge joins two maps of one scale).  Each node's coordinates are
    formatted once: a 1,000-layer dense graph has some 330,000 arcs."""
    tops = {node: y + NODE_HEIGHT / 2 for node, (x, y) in where.items()}
    tail_x = {node: _num(x + 10) for node, (x, _) in where.items()}
    head_x = {node: _num(x - 10) for node, (x, _) in where.items()}
    top_text = {node: (_num(top), _num(top + 4)) for node, top in tops.items()}

    def arc(tail: str, head: str) -> str:
        a, b = tail_x[tail], head_x[head]
        t, t4 = top_text[tail]
        rise = min(DENSE_RISE, 6 + 0.02 * (where[head][0] - where[tail][0] - 20))
        r = _num(tops[tail] + rise)
        return f"e,{b},{t} {a},{t} {a},{r} {b},{r} {b},{t4}"

    return arc


def _tooltip(node: str, d: dict[str, Any], unit: str) -> str:
    from ..core.units import format_count  # torch: not imported by `msdprof graph --help`

    what = f"exit {d['exit']}: {d['channels']} classes" if d["kind"] == "classifier" else (
        f"{d['kind']} {_size(d['channels'], d['height'], d['width'])}")
    return (f"{node} ({what}, block {d['block']}): {format_count(d['macs'])} {unit}, "
            f"{format_count(d['params'])} params")


def _plural(n: int, what: str) -> str:
    return f"{n} {what}{'' if n == 1 else 's'}"


def _title(graph: nx.DiGraph) -> str:
    options = graph.graph["options"]
    layers = max(d["layer"] for _, d in graph.nodes(data=True))
    n_scales = len(str(options["grFactor"]).split("-"))
    height, width = graph.graph["input_size"]
    name = graph.graph.get("preset")
    counted = ", ".join(_plural(n, what) for n, what in
                        ((options["nBlocks"], "exit"), (layers, "layer"), (n_scales, "scale")))
    first = (f"MSDNet{' ' + name if name else ''}: {counted}, input 3×{height}×{width}; "
             "boxes: channels×height×width")
    second = ", ".join(f"{k} {str(v).lower() if isinstance(v, bool) else v}" for k, v in options.items())
    return f"{first}\n{second}"


def _add_text(dot: graphviz.Digraph, name: str, text: str, x: float, y: float, size: float,
              css: str, left: bool = False, width: float | None = None, **attrs: str) -> float:
    """A decoration: fixed-size plain text centred (or, with ``left``, starting) at ``x``;
    returns its width in points."""
    lines = text.split("\n")
    width = width if width is not None else _text_width(text, size) + 4
    height = len(lines) * size * 1.25 + 4
    label = "".join(line + "\\l" for line in lines) if left else text.replace("\n", "\\n")
    dot.node(name, label=label, pos=_pos(x + width / 2 if left else x, y), shape="plaintext",
             width=_num(width / 72), height=_num(height / 72), fontsize=_num(size), style="",
             **{"class": css}, **attrs)
    return width


def flow_places(graph: nx.DiGraph, view: tuple[float, float] = FLOW_VIEW) -> dict[str, Any]:
    """Where every box of a (folded) dataflow graph goes, in points, y pointing down: each node
    one column after the latest of its inputs (a chain reads left to right; an exit under its
    producer); the columns wrapped into rows so the picture's shape is close to ``view``'s (the
    number of columns per row that lets ``view`` show the whole picture the largest).

    Returns ``{"x": {node: centre x}, "y": {node: centre y}, "width", "height", "columns"}``.
    The page's script lays a graph out the same way (``layout`` in
    :mod:`msdprof.render.interactive`)."""
    order = list(graph)
    place = {n: i for i, n in enumerate(order)}
    column: dict[str, int] = {}
    for node in order:
        d = graph.nodes[node]
        before = [column[p] for p in graph.predecessors(node) if place[p] < place[node]]
        if d["kind"] == "exit":
            column[node] = max(before, default=0)
        else:
            column[node] = 1 + max(before, default=-1)
    count = 1 + max(column.values(), default=0)
    has_exit = [False] * count
    for node, c in column.items():
        if graph.nodes[node]["kind"] == "exit":
            has_exit[c] = True
    box_w, box_h = FLOW_BOX
    step_x, exit_h, gap = box_w + FLOW_GAP[0], FLOW_EXIT[1] + FLOW_GAP[1], FLOW_GAP[2]
    stacked: dict[int, int] = {}
    for node in order:  # boxes sharing a column stack downwards
        if graph.nodes[node]["kind"] != "exit":
            stacked[column[node]] = stacked.get(column[node], 0) + 1
    def row_height(cols: range) -> float:
        deep = max((stacked.get(c, 0) for c in cols), default=1) or 1
        return deep * (box_h + FLOW_GAP[1]) - FLOW_GAP[1] + (exit_h if any(has_exit[c] for c in cols) else 0) + gap

    def wrapped() -> Iterator[tuple[int, float, float]]:  # by more columns a row: growing width
        for per_row in range(1, count + 1):
            rows = [range(start, min(start + per_row, count)) for start in range(0, count, per_row)]
            yield per_row, per_row * step_x, sum(row_height(r) for r in rows)
            if per_row * step_x > view[0] * 8:
                return

    per_row = _fittest(wrapped(), view, growing=0)
    tops, top = [], 0.0
    for start in range(0, count, per_row):
        tops.append(top)
        top += row_height(range(start, min(start + per_row, count)))
    reach = {}  # the longest path from a node onwards: the trunk takes a column's top slot
    for node in reversed(order):
        reach[node] = 1 + max((reach[s] for s in graph.successors(node) if place[s] > place[node]), default=0)
    x: dict[str, float] = {}
    y: dict[str, float] = {}
    slot: dict[int, int] = {}
    for node in sorted(order, key=lambda n: (column[n], -reach[n], place[n])):
        c = column[node]
        row, at = divmod(c, per_row)
        x[node] = gap / 2 + at * step_x + box_w / 2
        if graph.nodes[node]["kind"] == "exit":
            below = stacked.get(c, 1) * (box_h + FLOW_GAP[1])
            y[node] = tops[row] + gap / 2 + below + FLOW_EXIT[1] / 2
        else:
            y[node] = tops[row] + gap / 2 + slot.get(c, 0) * (box_h + FLOW_GAP[1]) + box_h / 2
            slot[c] = slot.get(c, 0) + 1
    return {"x": x, "y": y, "width": min(per_row, count) * step_x + gap, "height": top, "columns": per_row}


def drawn_edges(graph: nx.DiGraph) -> list[tuple[str, str]]:
    """The edges of a dataflow graph worth drawing: those no longer path already shows (a
    residual stream's sum reads every earlier block; one arrow per step says the same ancestry).
    Edges running against the graph's order (a folded cycle) are kept.  The page's script draws
    the same set (``reduce``)."""
    order = {n: i for i, n in enumerate(graph)}
    below: dict[str, set[str]] = {}  # what a node reaches along forward edges, itself excluded
    for node in reversed(list(graph)):
        reach: set[str] = set()
        for s in graph.successors(node):
            if order[s] > order[node]:
                reach.add(s)
                reach |= below[s]
        below[node] = reach
    kept = []
    for a, b in graph.edges:
        forward = order[b] > order[a]
        if forward and any(b in below[c] for c in graph.successors(a) if c != b and order[c] > order[a]):
            continue
        kept.append((a, b))
    return kept


def _cut(text: str) -> str:
    return text if len(text) <= FLOW_CHARS else text[:FLOW_CHARS - 1] + "…"


def flow_label(node: str, d: dict[str, Any], unit: str) -> list[str]:
    """The lines of a dataflow box: its name, type (with its number of operations when folded),
    output shape (one sample's: the batch dimension left out) with its operations in ``unit``
    (parameters are in the tooltip); the name and type cut to :data:`FLOW_CHARS`; an exit's: ``exit k`` (and its name) and its shape."""
    from ..core.units import format_count  # torch: not imported by `msdprof graph --help`

    shape = "×".join(map(str, (d.get("shape") or ())[1:])) or "scalar"  # the batch left out
    if d["kind"] == "exit":
        named = f" {d['name']}" if d.get("name") not in (None, str(d["exit"])) else ""
        return [_cut(f"exit {d['exit']}{named} · {shape}")]
    kind = d.get("type", "")
    if d.get("members", 1) > 1:
        kind += f" ({d['members']})"
    return [_cut(node), _cut(kind), f"{shape} · {format_count(d['macs'])} {unit}"]


def _flow_edge(tail: tuple[float, float], head: tuple[float, float], head_exit: bool) -> list[tuple[float, float]]:
    """The points of an edge between two dataflow boxes centred at ``tail`` and ``head`` (y down):
    a cubic Bezier (4 points) to the right for the next column, an arch over the row for a skip,
    down for an exit below, a curve to the next row's start; then where its arrow's tip is."""
    (tx, ty), (hx, hy) = tail, head
    w, h = FLOW_BOX[0] / 2, FLOW_BOX[1] / 2
    if head_exit and abs(hx - tx) < 1:
        top = hy - FLOW_EXIT[1] / 2
        return [(tx, ty + h), (tx, ty + h + 2), (hx, top - 8), (hx, top - 6), (hx, top)]
    if abs(hy - ty) < FLOW_BOX[1] + FLOW_GAP[1] + 1 and hx > tx:  # the same row
        if hx - tx < FLOW_BOX[0] + FLOW_GAP[0] + 1:
            return [(tx + w, ty), (tx + w + 6, ty), (hx - w - 12, hy), (hx - w - 6, hy), (hx - w, hy)]
        rise = min(FLOW_GAP[2] / 2 + 4, 8 + 0.03 * (hx - tx)) * 1.3
        return [(tx + 12, ty - h), (tx + 12, ty - h - rise), (hx - 12, hy - h - rise), (hx - 12, hy - h - 6),
                (hx - 12, hy - h)]
    end = (hx, hy - (FLOW_EXIT[1] / 2 if head_exit else h))
    start = (tx, ty + h)
    bend = max(20.0, (end[1] - start[1]) / 2)
    return [start, (start[0], start[1] + bend), (end[0], end[1] - 6 - bend), (end[0], end[1] - 6), end]


def dataflow_dot(graph: nx.DiGraph) -> str:
    """The Graphviz source of a (folded) dataflow graph (:func:`msdprof.analysis.graph.dataflow_graph`,
    :func:`~msdprof.analysis.graph.fold_graph`), every position pinned (``neato -n2``) by
    :func:`flow_places`: a box per operation or folded module (name, type, output shape, cost), a
    small red box per exit; with the graph attribute ``highlight`` = k, exit k and its ancestors
    filled, the rest greyed."""
    import networkx as nx

    from ..core.units import format_count  # torch: not imported by `msdprof graph --help`

    unit = OP_NAMES.get(graph.graph.get("convention", "msdnet"), "ops")
    marked: set[str] = set()
    if graph.graph.get("highlight") is not None:
        target = f"exit{graph.graph['highlight']}"
        marked = nx.ancestors(graph, target) | {target}
    title = graph.graph.get("spec") or graph.graph.get("model") or "model"
    if graph.graph.get("folded"):
        title += f", modules folded to depth {graph.graph['depth']} of {graph.graph.get('max_depth', 0) + 1}"
    if marked:
        title += f" -- what exit {graph.graph['highlight']} needs"
    places = flow_places(graph)
    height = places["height"]

    def at(node: str) -> tuple[float, float]:
        return places["x"][node], places["y"][node]

    def pos(x: float, y: float) -> str:
        return _pos(x, height - y)

    dot = graphviz.Digraph("dataflow", graph_attr={
        "splines": "line", "outputorder": "edgesfirst", "bgcolor": "white", "pad": "0.25",
        "fontname": FONT, "fontsize": "14", "label": title, "labelloc": "t",
    }, node_attr={"fixedsize": "true", "fontname": FONT, "fontsize": _num(FLOW_FONT), "margin": "0"},
        edge_attr={"color": "#777777", "arrowsize": "0.6"})
    for node in graph:
        d = graph.nodes[node]
        grey = bool(marked) and node not in marked
        lines = flow_label(node, d, unit)
        tip = ", ".join(lines) + (f", {format_count(d['params'])} params" if d.get("params") else "")
        if d["kind"] == "exit":
            dot.node(node, lines[0], pos=pos(*at(node)), shape="box", style="rounded,filled,bold",
                     width=_num(FLOW_EXIT[0] / 72), height=_num(FLOW_EXIT[1] / 72), tooltip=tip,
                     fillcolor="#eeeeee" if grey else "#f8d3cf", color="#999999" if grey else "#b3261e",
                     fontcolor="#999999" if grey else "#6e1510")
            continue
        group = d["kind"] == "group"
        dot.node(node, "\\n".join(line.replace("\\", "\\\\") for line in lines), pos=pos(*at(node)),
                 shape="box", style="rounded,filled" + (",bold" if group else ""),
                 width=_num(FLOW_BOX[0] / 72), height=_num(FLOW_BOX[1] / 72), tooltip=tip,
                 fillcolor="#eeeeee" if grey else ("#a8dadc" if marked else ("#e8eef7" if group else "#ffffff")),
                 color="#999999" if grey else ("#2166ac" if group else "#3b4a5a"),
                 fontcolor="#999999" if grey else "#000000")
    for tail, head in drawn_edges(graph):
        grey = bool(marked) and not (tail in marked and head in marked)
        *points, tip = _flow_edge(at(tail), at(head), graph.nodes[head]["kind"] == "exit")
        spline = _spline([(x, height - y) for x, y in points], (tip[0], height - tip[1]))
        dot.edge(tail, head, pos=spline, color="#dddddd" if grey else "#555555")
    return dot.source


def to_dot(graph: nx.DiGraph) -> str:
    """The Graphviz source of the picture of ``graph`` (a :func:`msdprof.layout_graph` result).

    Every position is given (render with ``neato -n2``): an MSDNet's scale x layer grid, or a
    dataflow graph's wrapped rows (:func:`dataflow_dot`).  The source is the same for the same graph.
    """
    if graph.graph.get("dataflow"):
        return dataflow_dot(graph)
    grid = _Grid(graph)
    where = grid.where
    unit = OP_NAMES.get(graph.graph.get("convention", "msdnet"), "ops")
    nodes = dict(graph.nodes(data=True))
    n_scales = grid.n_scales
    dot = graphviz.Digraph("msdnet", graph_attr={
        "splines": "line", "outputorder": "edgesfirst", "bgcolor": "white", "pad": "0.25",
        "fontname": FONT, "fontsize": "12", "fontcolor": "#3b4a5a",
    }, node_attr={
        "fixedsize": "true", "fontname": FONT, "fontsize": _num(NODE_FONT), "margin": "0",
        "width": _num(NODE_WIDTH / 72), "height": _num(NODE_HEIGHT / 72),
    }, edge_attr={"arrowsize": "0.6"})

    # Bands: one per block, behind everything, with the block's name on top.
    spans: dict[int, list[float]] = {}
    rows: dict[int, int] = {}
    for node, d in nodes.items():
        spans.setdefault(d["block"], []).append(where[node][0])
        rows[d["block"]] = grid.row_of[node]
    for block, xs in sorted(spans.items()):
        bottom, top = grid.band(rows[block])
        with dot.subgraph(name=f"cluster_block{block}") as band:
            band.attr(
                bb=",".join(_num(v) for v in (min(xs) - COLUMN / 2, bottom, max(xs) + COLUMN / 2, top)),
                label=f"block {block}", labelloc="t", style="filled",
                fillcolor=BAND_FILLS[(block - 1) % 2], color="#cfd6e0", fontsize="12",
            )

    # The graph's own nodes: one Graphviz node (class "node") each.
    for node, d in nodes.items():
        style = dict(NODE_STYLES[d["kind"]])
        if d["kind"] == "classifier":
            label = f"exit {d['exit']}\n{d['channels']} classes"
            style["height"] = _num(EXIT_HEIGHT / 72)
        else:
            label = _size(d["channels"], d["height"], d["width"])
            style.setdefault("fillcolor", SCALE_FILLS[d["scale"] % len(SCALE_FILLS)])
            if len(label) * LABEL_EM * NODE_FONT > NODE_WIDTH - 8:  # "1024×28×28": smaller, not cut
                style["fontsize"] = _num((NODE_WIDTH - 8) / (len(label) * LABEL_EM))
        dot.node(node, label=label.replace("\n", "\\n"), pos=_pos(*where[node]),
                 tooltip=_tooltip(node, d, unit), **style)
    # Edges as dot.edge writes them, its quoting and attribute lists made once per node and kind
    # (a 1,000-layer dense graph has some 300,000 edges).
    quoted = {node: dot._quote_edge(node) for node in nodes}
    styles = {kind: dot._attr_list(None, kwargs=style) for kind, style in EDGE_STYLES.items()}
    dense_arc, wrapped_edge = _dense_arcs(where), _wrapped_edges(grid, nodes)
    row_of = grid.row_of
    edge_kinds = set()
    for tail, head, kind in graph.edges(data="kind"):
        edge_kinds.add(kind)
        attrs = styles[kind]
        if row_of[tail] != row_of[head]:  # "pos" sorts after the style's keys
            attrs = f'{attrs[:-1]} pos="{wrapped_edge(tail, head, kind == "dense")}"]'
        elif kind == "dense":
            attrs = f'{attrs[:-1]} pos="{dense_arc(tail, head)}"]'
        dot.body.append(dot._edge(tail=quoted[tail], head=quoted[head], attr=attrs))

    # Axes: a header per column, a label per scale in every row of blocks.
    for number, ((layer, transition), (row, at)) in enumerate(sorted(grid.columns.items())):
        text = "transition" if transition else ("stem" if layer == 0 else f"layer {layer}")
        _add_text(dot, f"_column{number}", text, at * COLUMN, grid.y(row, grid.first[row]) + HEADER,
                  AXIS_FONT, "axis", width=NODE_WIDTH, fontcolor="#5b6b7b")
    for scale in range(n_scales):
        sample = next(d for d in nodes.values() if d["scale"] == scale and d["kind"] == "map")
        for row in range(grid.strips):
            if scale >= grid.first[row]:
                _add_text(dot, f"_scale{scale}" + (f"_row{row + 1}" if row else ""),
                          f"scale {scale}\n{sample['height']}×{sample['width']}",
                          -0.95 * COLUMN, grid.y(row, scale), AXIS_FONT + 1, "axis", width=NODE_WIDTH,
                          fontcolor="#3b4a5a")

    # Title above, legend below.
    left = -0.95 * COLUMN - NODE_WIDTH / 2
    _add_text(dot, "_title", _title(graph), left, grid.band(0)[1] + TITLE_HEIGHT / 2, 12, "title", left=True)
    _legend(dot, edge_kinds, {d["kind"] for d in nodes.values()}, left,
            grid.band(grid.strips - 1)[0] - LEGEND_HEIGHT / 2, max(grid.right))
    return dot.source


def _legend(dot: graphviz.Digraph, edge_kinds: set[str], node_kinds: set[str], x: float, y: float,
            right: float) -> None:
    """The edge kinds and node kinds present (``edge_kinds``, ``node_kinds``) from ``x``, in lines
    of items that end before ``right`` (the first line's centre at ``y``)."""
    start = x = x + _add_text(dot, "_legend", "legend:", x, y, 11, "legend", left=True) + 6

    def room(width: float) -> tuple[float, float]:
        """Where an item ``width`` points wide goes: on this line, or the start of the next."""
        nonlocal x, y
        if x > start and x + width > right:
            x, y = start, y - 24
        at, x = x, x + width
        return at, y

    for kind in (k for k in EDGE_STYLES if k in edge_kinds):
        at, line = room(46 + _text_width(EDGE_MEANING[kind], 10) + 4 + 14)
        a, b = f"_legend_{kind}_from", f"_legend_{kind}_to"
        for name, end in ((a, at), (b, at + 40)):
            dot.node(name, label="", shape="point", width="0.03", height="0.03", pos=_pos(end, line),
                     color=EDGE_STYLES[kind]["color"], **{"class": "legend"})
        dot.edge(a, b, **EDGE_STYLES[kind], **{"class": "legend"})
        _add_text(dot, f"_legend_{kind}", EDGE_MEANING[kind], at + 46, line, 10, "legend", left=True)
    samples = (("map", "C×H×W", "feature map"), ("transition", "C×H×W", "transition output"),
               ("classifier", "exit k", "classifier"))
    for kind, label, meaning in samples:
        if kind not in node_kinds:
            continue
        at, line = room(NODE_WIDTH + 6 + _text_width(meaning, 10) + 4 + 14)
        style = {"fillcolor": SCALE_FILLS[0], **NODE_STYLES[kind]}
        dot.node(f"_legend_{kind}_node", label=label, pos=_pos(at + NODE_WIDTH / 2, line),
                 **{**style, "class": "legend"})
        _add_text(dot, f"_legend_{kind}_text", meaning, at + NODE_WIDTH + 6, line, 10, "legend", left=True)


def _no_graphviz(path: Path) -> OptionError:
    return OptionError(
        "output", str(path),
        f"drawing {path.suffix.lower()} needs Graphviz's '{GRAPHVIZ_PROGRAM}' program, which is not "
        "installed: install Graphviz (apt-get install graphviz), or write .dot, which needs no Graphviz",
    )


def render(graph: nx.DiGraph, fmt: str) -> bytes:
    """The picture of ``graph`` as ``svg``, ``png`` or ``pdf`` bytes, rendered by Graphviz.

    Deterministic: the same graph gives the same bytes (the PDF creation date is pinned).
    """
    if fmt not in RENDERED:
        raise OptionError("format", fmt, "must be one of " + ", ".join(RENDERED))
    source = graphviz.Source(to_dot(graph), engine=GRAPHVIZ_PROGRAM)
    try:
        data = source.pipe(format=fmt, neato_no_op=2)
    except graphviz.ExecutableNotFound:
        raise _no_graphviz(Path(f"graph.{fmt}")) from None
    if fmt == "pdf":  # cairo stamps the time; pin it, keeping the length (and so the offsets)
        data = re.sub(rb"/CreationDate \(D:\d{14}Z\)", b"/CreationDate (D:20000101000000Z)", data)
    return data


def to_json(graph: nx.DiGraph) -> str:
    """networkx node-link data (``nodes``, ``edges``, ``graph``) as JSON, one node or edge a line
    (so a 300,000-edge graph is written by the C encoder, and still reads and diffs by line)."""
    import networkx as nx

    def items(values: list[Any]) -> str:
        # One json.dumps of the list, cut between its items; per-item dumps, 3x slower, only
        # when an item's text holds the cut mark (a string such as a module named "}, {").
        text = json.dumps(values)[1:-1]
        if all(isinstance(v, dict) and v for v in values) and text.count("}, {") == len(values) - 1:
            return "    " + text.replace("}, {", "},\n    {")
        return ",\n".join("    " + json.dumps(v) for v in values)

    def member(key: str, value: Any) -> str:
        if isinstance(value, list) and value:
            return f"  {json.dumps(key)}: [\n{items(value)}\n  ]"
        return f"  {json.dumps(key)}: {json.dumps(value)}"

    data = nx.node_link_data(graph, edges="edges")
    return "{\n" + ",\n".join(member(key, value) for key, value in data.items()) + "\n}\n"


def to_graphml(graph: nx.DiGraph) -> str:
    """GraphML; attributes that are not plain values (``options``, ``input_size``, a node's
    ``shape`` and ``groups``) as JSON, a missing one (``None``) left out."""
    plain = graph.copy()
    for key, value in graph.graph.items():
        if not isinstance(value, (str, int, float, bool)):
            plain.graph[key] = json.dumps(value)
    for _, d in plain.nodes(data=True):
        for key, value in list(d.items()):
            if value is None:
                del d[key]
            elif not isinstance(value, (str, int, float, bool)):
                d[key] = json.dumps(value)
    import networkx as nx

    return "\n".join(nx.generate_graphml(plain)) + "\n"


WRITERS: dict[str, Callable[[nx.DiGraph], str | bytes]] = {
    ".svg": lambda g: render(g, "svg"),
    ".png": lambda g: render(g, "png"),
    ".pdf": lambda g: render(g, "pdf"),
    ".dot": to_dot,
    ".json": to_json,
    ".graphml": to_graphml,
}
#: The interactive page: written by :func:`msdprof.render.interactive.write_page`, which needs the
#: per-exit costs as well as the graph (so not by :func:`write_graph`); it embeds the SVG.
PAGE = ".html"
SUFFIXES = (*WRITERS, PAGE)


def check_output(path: str | Path, force: bool = False) -> Path:
    """``path`` if ``write_graph`` can write it: a known suffix, a writable place, Graphviz
    installed when the suffix needs it; else :class:`OptionError`.  Nothing is written."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise OptionError(
            "output", str(path),
            f"unknown suffix '{path.suffix}'; the file name must end in one of " + ", ".join(SUFFIXES),
        )
    check_writable(path, force)
    if (suffix.lstrip(".") in RENDERED or suffix == PAGE) and shutil.which(GRAPHVIZ_PROGRAM) is None:
        raise _no_graphviz(path)
    return path


def write_graph(graph: nx.DiGraph, path: str | Path, force: bool = False) -> Path:
    """Write ``graph`` to ``path`` in the format its suffix names (see :data:`SUFFIXES`),
    atomically; an existing file is replaced only with ``force``."""
    path = check_output(path, force)
    if path.suffix.lower() == PAGE:
        raise ValueError(f"{path}: the {PAGE} page needs the exit costs too: use "
                         "msdprof.render.interactive.write_page")
    return write_atomic(path, WRITERS[path.suffix.lower()](graph), force)


__all__ = ["PAGE", "RENDERED", "SUFFIXES", "check_output", "dataflow_dot", "flow_label", "flow_places", "render", "to_dot", "to_graphml", "to_json",
           "drawn_edges", "write_graph"]
