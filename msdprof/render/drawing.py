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
import math
import re
import shutil
from collections import Counter
from functools import cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator

import graphviz

from msdnet.options import OptionError

from .formatting import OP_NAMES
from .glyphs import fitting_size, text_width
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
NODE_FONT = 14.0  # points: a map's label ("128×16×16" fits NODE_WIDTH; a longer one is set smaller)
NODE_PAD = 4.0  # points between a label and its box's sides
#: An exit's box: its three lines ("exit 3", "Σ 37.75 M", "lazy 35.42 M") at a map's font; as wide
#: as "lazy 993.12 M" needs where the next exit leaves room (set smaller where it does not).
EXIT_WIDTH, EXIT_HEIGHT = 112.0, 3 * 1.2 * NODE_FONT + 6
EXIT_DROP = NODE_HEIGHT / 2 + 12 + EXIT_HEIGHT / 2  # points from the coarsest scale's centre line down to an exit's
AXIS_FONT = 12.0  # points: a column's header (a scale's label is one point larger)

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


def _size(channels: int, height: int, width: int) -> str:
    return f"{channels}×{height}×{width}"


#: The dataflow picture (any model): sizes in points, and the shape the wrapped rows aim for (the
#: page's view beside its panel, in CSS pixels).  A box is FLOW_BOX[0] wide or, when a label needs
#: it, up to FLOW_WIDEST (all boxes of a picture alike); an exit's box is as wide, two lines high
#: (three, as high as a box, in a picture where an exit's lazy cost is less than its cumulative).
FLOW_BOX = (150.0, 44.0)
FLOW_EXIT = (150.0, 30.0)
FLOW_GAP = (18.0, 6.0, 22.0)  # the space between columns, between bands of boxes, between rows
FLOW_FONT = 12.0
FLOW_PAD = 4.0  # points between a label and its box's sides
FLOW_WIDEST = 270.0
FLOW_VIEW = (930.0, 720.0)


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
BAND_ABOVE, BAND_BELOW = HEADER + 30.0, EXIT_DROP + EXIT_HEIGHT / 2 + 6
#: Points right of a wrapped row's end that say where it goes on ("continues in row 2").
GOES_ON = 64.0
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
            return starts, (widest + 1) * COLUMN + (GOES_ON if parts > 1 else 0), TITLE_HEIGHT + height + LEGEND_HEIGHT

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
                self.where[node] = (self.where[source][0], self.y(row, self.n_scales - 1) - EXIT_DROP)
        widest = [0] * self.strips
        for row, at in self.columns.values():
            widest[row] = max(widest[row], at)
        self.right = [COLUMN / 2 + COLUMN * at for at in widest]  # x of each row's right end

    def _pitch(self, first: int) -> float:
        """Points from a row's finest scale to the next row's, the row showing scales ``first``.."""
        return (self.n_scales - 1 - first) * ROW + BAND_ABOVE + BAND_BELOW + ROW_GAP

    def y(self, row: int, scale: int) -> float:
        """The y of ``scale``'s centre line in ``row``."""
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


def exit_label(d: dict[str, Any]) -> list[str]:
    """The lines of an MSDNet exit's box: ``exit k``, then what reaching it costs (in the graph's
    unit, which the title names with the classes): ``Σ`` its cumulative operations, and its lazy
    ones where fewer (the node's ``cumulative_macs`` and ``lazy_macs``)."""
    return [f"exit {d['exit']}", *exit_cost_lines(d)]


def exit_cost_lines(d: dict[str, Any], unit: str = "") -> list[str]:
    """What reaching an exit costs, for its box: ``Σ`` its cumulative operations and its lazy ones
    where fewer (the exit node's ``cumulative_macs`` and ``lazy_macs``), each followed by ``unit``;
    none when the node carries no costs."""
    from ..core.units import format_count  # torch: not imported by `msdprof graph --help`

    if d.get("cumulative_macs") is None:
        return []
    after = f" {unit}" if unit else ""
    lines = [f"Σ {format_count(d['cumulative_macs'])}{after}"]
    if d["lazy_macs"] != d["cumulative_macs"]:
        lines.append(f"lazy {format_count(d['lazy_macs'])}{after}")
    return lines


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
    unit = OP_NAMES.get(graph.graph.get("convention", "msdnet"), "ops")
    classes = sorted({d["channels"] for _, d in graph.nodes(data=True) if d["kind"] == "classifier"})
    first = (f"MSDNet{' ' + name if name else ''}: {counted}, input 3×{height}×{width}; "
             "boxes: channels×height×width")
    exits = (f"exit k ({'/'.join(map(str, classes))} classes): Σ the cumulative {unit} to reach it; lazy: "
             "only what exits 1..k read, where fewer")
    second = ", ".join(f"{k} {str(v).lower() if isinstance(v, bool) else v}" for k, v in options.items())
    return f"{first}\n{exits}\n{second}"


def _add_text(dot: graphviz.Digraph, name: str, text: str, x: float, y: float, size: float,
              css: str, left: bool = False, width: float | None = None, **attrs: str) -> float:
    """A decoration: fixed-size plain text centred (or, with ``left``, starting) at ``x``;
    returns its width in points."""
    lines = text.split("\n")
    width = width if width is not None else text_width(text, size) + 4
    height = len(lines) * size * 1.25 + 4
    label = "".join(line + "\\l" for line in lines) if left else text.replace("\n", "\\n")
    dot.node(name, label=label, pos=_pos(x + width / 2 if left else x, y), shape="plaintext",
             width=_num(width / 72), height=_num(height / 72), fontsize=_num(size), style="",
             **{"class": css}, **attrs)
    return width


def flow_places(graph: nx.DiGraph, view: tuple[float, float] = FLOW_VIEW, width: float = FLOW_BOX[0],
                exit_height: float = FLOW_EXIT[1]) -> dict[str, Any]:
    """Where every box of a (folded) dataflow graph goes, in points, y pointing down: each node
    one column after the latest of its inputs (a chain reads left to right; an exit in its
    producer's column); the boxes of a column stacked in bands (the longest path on top), its
    exits in the bands under them, every band of a row at the same height (an exit is no taller
    than a box), so that the space between two bands, like the space between two columns or two
    rows, holds no box (:data:`FLOW_GAP`: :func:`flow_routes` draws the edges there); the columns
    wrapped into rows so the picture's shape is close to ``view``'s (the number of columns per
    row that lets ``view`` show the whole picture the largest).  ``width``: a box's width;
    ``exit_height``: an exit's height (at most a box's).

    Returns ``{"x", "y"}`` (each node's centre), ``"row"``, ``"at"`` (its column in its row),
    ``"band"`` (0 the top), ``"tops"`` (each row's top y), ``"box"`` (``width``), ``"exit"``
    (``exit_height``), ``"width"``,
    ``"height"`` and ``"columns"`` (per row).  The page's script lays a graph out the same way
    (``flowLayout`` in ``flow_layout.js``)."""
    order = list(graph)
    place = {n: i for i, n in enumerate(order)}
    is_exit = {n: graph.nodes[n]["kind"] == "exit" for n in order}
    column: dict[str, int] = {}
    for node in order:
        before = [column[p] for p in graph.predecessors(node) if place[p] < place[node]]
        column[node] = max(before, default=0) if is_exit[node] else 1 + max(before, default=-1)
    count = 1 + max(column.values(), default=0)
    stacked, exits = [0] * count, [0] * count
    for node in order:
        (exits if is_exit[node] else stacked)[column[node]] += 1
    box_h, exit_h = FLOW_BOX[1], exit_height
    g0, g1, g2 = FLOW_GAP
    step, pitch = width + g0, box_h + g1

    def content(start: int, end: int) -> float:  # the height of a row: its deepest column's
        return max((stacked[c] + exits[c] - 1) * pitch + (exit_h if exits[c] else box_h) for c in range(start, end))

    def wrapped() -> Iterator[tuple[int, float, float]]:  # by more columns a row: growing width
        for per_row in range(1, count + 1):
            rows = range(0, count, per_row)
            height = sum(g2 + content(s, min(s + per_row, count)) for s in rows) + g2 / 2
            yield per_row, g0 + per_row * step, height
            if per_row * step > view[0] * 8:
                return

    per_row = _fittest(wrapped(), view, growing=0)
    tops, top = [], g2
    for start in range(0, count, per_row):
        tops.append(top)
        top += content(start, min(start + per_row, count)) + g2
    reach = {}  # the longest path from a node onwards: the trunk takes a column's top band
    for node in reversed(order):
        reach[node] = 1 + max((reach[s] for s in graph.successors(node) if place[s] > place[node]), default=0)
    x: dict[str, float] = {}
    y: dict[str, float] = {}
    row_of: dict[str, int] = {}
    at_of: dict[str, int] = {}
    band: dict[str, int] = {}
    used: dict[tuple[int, bool], int] = {}
    for node in sorted(order, key=lambda n: (column[n], is_exit[n], -reach[n], place[n])):
        c = column[node]
        row, at = divmod(c, per_row)
        k = used.get((c, is_exit[node]), 0)
        used[(c, is_exit[node])] = k + 1
        row_of[node], at_of[node] = row, at
        x[node] = g0 + at * step + width / 2
        band[node] = stacked[c] + k if is_exit[node] else k
        y[node] = tops[row] + band[node] * pitch + (exit_h if is_exit[node] else box_h) / 2
    return {"x": x, "y": y, "row": row_of, "at": at_of, "band": band, "tops": tops,
            "box": width, "exit": exit_h, "width": g0 + min(per_row, count) * step, "height": top - g2 / 2, "columns": per_row}


Point = tuple[float, float]
#: Points an arrowhead takes (``arrowsize`` 0.6), and the radius of an edge's rounded corners.
ARROW, CORNER = 6.0, 3.0
#: The heights over a row's top band where edges run along the row (an arch over it, or an edge
#: coming to one of its boxes from elsewhere): points above the boxes' tops, lowest first.
TRACKS = (9.0, 11.5, 14.0, 16.5, 19.0)
#: Points right of a box where an edge leaving it turns (the tails whose turns would overlap in one
#: space between columns on different ones), left of a box where one entering its side turns in
#: (an arrow and a corner), and along a box's top where edges land on it.
RISERS, IN, LAND = (3.0, 5.0, 7.0), 9.0, 12.0


def _tracks(spans: dict[Any, tuple[float, float]], tracks: int) -> dict[Any, int]:
    """A track (0 .. ``tracks`` - 1) per key of ``spans`` (x intervals, in the order given):
    shorter spans first, each on the lowest track where it overlaps no span already placed (the
    track it overlaps least when every one is taken)."""
    placed: list[list[tuple[float, float]]] = [[] for _ in range(tracks)]
    result = {}
    for index, key in sorted(enumerate(spans), key=lambda item: (spans[item[1]][1] - spans[item[1]][0],
                                                                 spans[item[1]][0], item[0])):
        lo, hi = spans[key]
        clashes = [sum(1 for a, b in taken if a < hi and lo < b) for taken in placed]
        track = clashes.index(min(clashes))
        placed[track].append((lo, hi))
        result[key] = track
    return result


def _rounded(points: list[Point]) -> tuple[list[Point], Point]:
    """The Bezier control points (3n + 1) of the right-angled line through ``points``, its corners
    rounded (:data:`CORNER`), ending :data:`ARROW` points short of the last point; and that last
    point (the arrow's tip)."""
    line = [points[0]]
    for p in points[1:]:  # no zero-length piece, no point in the middle of a straight run
        if p == line[-1]:
            continue
        if len(line) > 1 and (line[-2][0] == line[-1][0] == p[0] or line[-2][1] == line[-1][1] == p[1]):
            line[-1] = p
        else:
            line.append(p)
    tip = line[-1]
    (ax, ay), (bx, by) = line[-2], tip
    length = abs(bx - ax) + abs(by - ay)
    line[-1] = (bx - (bx - ax) / length * ARROW, by - (by - ay) / length * ARROW)
    out = [line[0]]

    def straight(a: Point, b: Point) -> None:
        if a != b:
            out.extend(_line(a, b)[1:])

    for p, q, s in zip(line, line[1:], line[2:]):
        into = abs(q[0] - p[0]) + abs(q[1] - p[1])
        onto = abs(s[0] - q[0]) + abs(s[1] - q[1])
        r = min(CORNER, into / 2, onto / 2)
        d_in = ((q[0] - p[0]) / into, (q[1] - p[1]) / into)
        d_out = ((s[0] - q[0]) / onto, (s[1] - q[1]) / onto)
        a = (q[0] - d_in[0] * r, q[1] - d_in[1] * r)
        b = (q[0] + d_out[0] * r, q[1] + d_out[1] * r)
        straight(out[-1], a)
        k = 0.45 * r  # a quarter circle, near enough
        out += [(a[0] + d_in[0] * k, a[1] + d_in[1] * k), (b[0] - d_out[0] * k, b[1] - d_out[1] * k), b]
    straight(out[-1], line[-1])
    return out, tip


def flow_routes(graph: nx.DiGraph, places: dict[str, Any]) -> dict[tuple[str, str], tuple[list[Point], Point]]:
    """Every edge of a dataflow graph laid out by :func:`flow_places`: its Bezier control points
    (y down) and its arrow's tip.  No edge passes under a box it does not join: an edge to the next
    column bends in the space between the two; an exit right under its producer is reached straight
    down; a skip along a row's top band arches over the row; any other edge leaves its tail's right
    side, runs in the space right of the tail's column to the space above the head's row (above
    the head's band when both are in one row), along it, and comes down onto the head's top (a box
    of the top band) or into its left side.  What runs along the space above a row is spread over
    :data:`TRACKS`, shorter spans lower, the edges of one tail on one track; the tails whose turns
    would overlap in one space between columns turn at different :data:`RISERS`.  The page's
    script routes the same way (``flowRoutes`` in ``flow_layout.js``)."""
    x, y, row, at, band, tops = (places[k] for k in ("x", "y", "row", "at", "band", "tops"))
    w = places["box"] / 2
    g1 = FLOW_GAP[1]
    pitch = FLOW_BOX[1] + g1
    per_row = places["columns"]
    is_exit = {n: graph.nodes[n]["kind"] == "exit" for n in graph}
    half = {n: (places["exit"] if is_exit[n] else FLOW_BOX[1]) / 2 for n in graph}
    lowest: dict[int, int] = {}  # global column -> its lowest box band; and its first exit band
    first_exit: dict[int, int] = {}
    for n in graph:
        c = row[n] * per_row + at[n]
        if is_exit[n]:
            first_exit[c] = min(first_exit.get(c, band[n]), band[n])
        else:
            lowest[c] = max(lowest.get(c, 0), band[n])
    kinds: dict[tuple[str, str], str] = {}
    spans: dict[tuple[int, str], tuple[float, float]] = {}  # (row, tail) -> what runs above the row
    for t, h in graph.edges:
        same = row[t] == row[h]
        if same and at[h] == at[t] + 1:
            kinds[t, h] = "next"
        elif (is_exit[h] and same and at[h] == at[t] and band[t] == lowest[row[t] * per_row + at[t]]
              and band[h] == first_exit[row[h] * per_row + at[h]]):
            kinds[t, h] = "down"
        else:
            onto = band[h] == 0 and not is_exit[h]  # a box of the top band: reached from above
            arch = same and onto and at[h] > at[t] + 1 and band[t] == 0
            kinds[t, h] = "arch" if arch else "around"
            if onto or not same:
                ends = (x[t] + w - LAND if arch else x[t] + w + RISERS[0], x[h] - w + LAND if onto else x[h] - w - IN)
                lo, hi = spans.get((row[h], t), (math.inf, -math.inf))
                spans[row[h], t] = (min(lo, *ends), max(hi, *ends))
    track = _tracks(spans, len(TRACKS))
    lanes = {}  # the height an edge running around turns along
    risers: dict[tuple[int, str], tuple[float, float]] = {}  # (column, tail) -> what its turn spans
    for (t, h), kind in kinds.items():
        if kind == "around":
            if row[t] != row[h] or (band[h] == 0 and not is_exit[h]):
                lanes[t, h] = tops[row[h]] - TRACKS[track[row[h], t]]
            else:
                lanes[t, h] = tops[row[h]] + band[h] * pitch - g1 / 2
            lo, hi = risers.get((at[t], t), (math.inf, -math.inf))
            risers[at[t], t] = (min(lo, y[t], lanes[t, h]), max(hi, y[t], lanes[t, h]))
    riser = _tracks(risers, len(RISERS))
    routes = {}
    for (t, h), kind in kinds.items():
        tx, ty, hx, hy = x[t], y[t], x[h], y[h]
        if kind == "next":
            left = hx - w
            routes[t, h] = ([(tx + w, ty), (tx + w + 7, ty), (left - 13, hy), (left - ARROW, hy)], (left, hy))
        elif kind == "down":
            routes[t, h] = (_line((tx, ty + half[t]), (hx, hy - half[h] - ARROW)), (hx, hy - half[h]))
        elif kind == "arch":  # over the row, from the tail's top onto the head's
            top = tops[row[t]]
            lane = top - TRACKS[track[row[t], t]]
            routes[t, h] = _rounded([(tx + w - LAND, top), (tx + w - LAND, lane), (hx - w + LAND, lane),
                                     (hx - w + LAND, top)])
        else:
            lane, out = lanes[t, h], tx + w + RISERS[riser[at[t], t]]
            if band[h] == 0 and not is_exit[h]:  # along the space above the head's row, onto its top
                routes[t, h] = _rounded([(tx + w, ty), (out, ty), (out, lane), (hx - w + LAND, lane),
                                         (hx - w + LAND, hy - half[h])])
            else:  # along the space above the head's row (its band, in the tail's row), into its left side
                routes[t, h] = _rounded([(tx + w, ty), (out, ty), (out, lane), (hx - w - IN, lane), (hx - w - IN, hy),
                                         (hx - w, hy)])
    return routes


@functools.lru_cache(maxsize=1)
@cache
def page_file(name: str) -> str:
    """The text of the interactive page's file ``name`` (``page.css``, ``page.js``,
    ``flow_layout.js``), shipped in the package under ``msdprof/render/page/``."""
    return resources.files(__package__).joinpath("page", name).read_text(encoding="utf-8")


def flow_script() -> str:
    """The JavaScript of :func:`flow_places` and :func:`flow_routes` (``flowLayout``,
    ``flowRoutes``), which the interactive page lays out and routes a folded graph with."""
    return page_file("flow_layout.js")


def flow_label(node: str, d: dict[str, Any], unit: str) -> list[str]:
    """The lines of a dataflow box: its name, type (with its number of operations when folded),
    output shape (one sample's: the batch dimension left out) with its operations in ``unit``
    (parameters are in the tooltip), and ``+N not counted`` where it ran work its convention did not
    count (``+?``: an amount no formula gives); an exit's: ``exit k`` (and its name) and its shape, then what
    reaching it costs: ``Σ`` its cumulative operations, and a line of its lazy ones where fewer
    (the graph's ``cumulative_macs`` and ``lazy_macs``)."""
    from ..core.units import format_count  # torch: not imported by `msdprof graph --help`

    shape = "×".join(map(str, (d.get("shape") or ())[1:])) or "scalar"  # the batch left out
    if d["kind"] == "exit":
        named = f" {d['name']}" if d.get("name") not in (None, str(d["exit"])) else ""
        return [f"exit {d['exit']}{named} · {shape}", *exit_cost_lines(d, unit)]
    kind = d.get("type", "")
    if d.get("members", 1) > 1:
        kind += f" ({d['members']})"
    missed = d.get("uncounted", 0)
    left_out = "" if missed == 0 else f" +{'?' if missed is None else format_count(missed)} not counted"
    return [node, kind, f"{shape} · {format_count(d['macs'])} {unit}{left_out}"]


def flow_exit_height(labels: Iterable[list[str]]) -> float:
    """The height of the dataflow picture's exit boxes (all alike) for exits labelled ``labels``:
    :data:`FLOW_EXIT` for two lines, a box's for three (an exit whose lazy cost is less)."""
    return FLOW_BOX[1] if any(len(label) > 2 for label in labels) else FLOW_EXIT[1]


def flow_box_width(lines: Iterable[list[str]]) -> float:
    """The width of the dataflow picture's boxes (all alike) for boxes labelled ``lines``: the
    widest label plus :data:`FLOW_PAD` each side, from :data:`FLOW_BOX` to :data:`FLOW_WIDEST`
    points (a label wider than that is set smaller)."""
    widest = max((text_width(line, FLOW_FONT) for label in lines for line in label), default=0.0)
    return min(max(FLOW_BOX[0], math.ceil(widest + 2 * FLOW_PAD)), FLOW_WIDEST)


def dataflow_dot(graph: nx.DiGraph) -> str:
    """The Graphviz source of a (folded) dataflow graph (:func:`msdprof.analysis.graph.dataflow_graph`,
    :func:`~msdprof.analysis.graph.fold_graph`), every position pinned (``neato -n2``) by
    :func:`flow_places` and every edge of the graph drawn as :func:`flow_routes` lays it: a box per
    operation or folded module (name, type, output shape, cost), a small red box per exit (what
    it costs); with the graph attribute ``highlight`` = k, exit k and its ancestors filled, the
    rest greyed.  Boxes are as wide as the widest label needs (:func:`flow_box_width`), and a
    label still too wide, or an exit's, is set smaller to fit."""
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
    if any(d["kind"] == "exit" and d.get("cumulative_macs") is not None for _, d in graph.nodes(data=True)):
        title += (f"\nexits: Σ cumulative {unit} (everything that ran until the exit), lazy: only what "
                  "exits 1..k read, where fewer")
    labels = {node: flow_label(node, d, unit) for node, d in graph.nodes(data=True)}
    width = flow_box_width(lines for node, lines in labels.items() if graph.nodes[node]["kind"] != "exit")
    exit_height = flow_exit_height(lines for node, lines in labels.items() if graph.nodes[node]["kind"] == "exit")
    places = flow_places(graph, width=width, exit_height=exit_height)
    height = places["height"]

    def at(node: str) -> str:
        return _pos(places["x"][node], height - places["y"][node])

    dot = graphviz.Digraph("dataflow", graph_attr={
        "splines": "line", "outputorder": "edgesfirst", "bgcolor": "white", "pad": "0.25",
        "fontname": FONT, "fontsize": "14", "label": title, "labelloc": "t",
    }, node_attr={"fixedsize": "true", "fontname": FONT, "fontsize": _num(FLOW_FONT), "margin": "0",
                  "width": _num(width / 72)}, edge_attr={"color": "#777777", "arrowsize": "0.6"})
    for node, lines in labels.items():
        d = graph.nodes[node]
        grey = bool(marked) and node not in marked
        tip = ", ".join(lines) + (f", {format_count(d['params'])} params" if d.get("params") else "")
        size = fitting_size(lines, FLOW_FONT, width - 2 * FLOW_PAD)
        font = {} if size == FLOW_FONT else {"fontsize": _num(size)}
        label = "\\n".join(line.replace("\\", "\\\\") for line in lines)
        if d["kind"] == "exit":
            dot.node(node, label, pos=at(node), shape="box", style="rounded,filled,bold",
                     height=_num(exit_height / 72), tooltip=tip, **font,
                     fillcolor="#eeeeee" if grey else "#f8d3cf", color="#999999" if grey else "#b3261e",
                     fontcolor="#999999" if grey else "#6e1510")
            continue
        group = d["kind"] == "group"
        dot.node(node, label, pos=at(node), shape="box", style="rounded,filled" + (",bold" if group else ""),
                 height=_num(FLOW_BOX[1] / 72), tooltip=tip, **font,
                 fillcolor="#eeeeee" if grey else ("#a8dadc" if marked else ("#e8eef7" if group else "#ffffff")),
                 color="#999999" if grey else ("#2166ac" if group else "#3b4a5a"),
                 fontcolor="#999999" if grey else "#000000")
    for (tail, head), (points, tip) in flow_routes(graph, places).items():
        grey = bool(marked) and not (tail in marked and head in marked)
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

    # The graph's own nodes: one Graphviz node (class "node") each; an exit as wide as its
    # neighbours in the row leave room for.
    exit_widths: dict[str, float] = {}
    exits = sorted((grid.row_of[n], where[n][0], n) for n, d in nodes.items() if d["kind"] == "classifier")
    for i, (row, x, node) in enumerate(exits):
        near = [abs(x - other) for r, other, _ in exits[max(i - 1, 0):i + 2] if r == row and other != x]
        exit_widths[node] = min([EXIT_WIDTH] + [gap - 8 for gap in near])
    for node, d in nodes.items():
        style = dict(NODE_STYLES[d["kind"]])
        if d["kind"] == "classifier":
            lines = exit_label(d)
            width = exit_widths[node]
            style.update(width=_num(width / 72), height=_num(EXIT_HEIGHT / 72))
            size = fitting_size(lines, NODE_FONT, width - 2 * NODE_PAD)
        else:
            lines = [_size(d["channels"], d["height"], d["width"])]
            style.setdefault("fillcolor", SCALE_FILLS[d["scale"] % len(SCALE_FILLS)])
            size = fitting_size(lines, NODE_FONT, NODE_WIDTH - 2 * NODE_PAD)  # "1024×28×28": smaller, not cut
        if size != NODE_FONT:
            style["fontsize"] = _num(size)
        dot.node(node, label="\\n".join(lines), pos=_pos(*where[node]),
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

    # Where a wrapped row goes on, and where the next one comes from.
    for row in range(grid.strips - 1):
        middle = (grid.y(row, grid.first[row]) + grid.y(row, n_scales - 1)) / 2
        _add_text(dot, f"_goes_on{row + 1}", f"continues\nin row {row + 2}", grid.right[row] + 6, middle,
                  10, "axis", left=True, fontcolor="#5b6b7b")
        _add_text(dot, f"_comes_from{row + 2}", f"from row {row + 1}", -0.95 * COLUMN,
                  grid.y(row + 1, grid.first[row + 1]) + HEADER, 10, "axis", width=NODE_WIDTH,
                  fontcolor="#5b6b7b")

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
        at, line = room(46 + text_width(EDGE_MEANING[kind], 10) + 4 + 14)
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
        at, line = room(NODE_WIDTH + 6 + text_width(meaning, 10) + 4 + 14)
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


__all__ = ["PAGE", "RENDERED", "SUFFIXES", "check_output", "dataflow_dot", "flow_box_width", "flow_exit_height",
           "flow_label", "flow_places", "flow_routes", "flow_script", "render", "to_dot", "to_graphml", "to_json",
           "write_graph"]
