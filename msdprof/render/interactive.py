"""The interactive layout page: one offline HTML file where clicking an exit shows what it needs.

:func:`page` turns a connectivity graph (one ``networkx.DiGraph`` per convention, as
:func:`msdprof.layout_graph` returns it) and the per-exit costs (:func:`msdprof.exit_costs`, one
:class:`~msdprof.core.exits.ExitCosts` per convention) into a single HTML file: the Graphviz picture of
:mod:`msdprof.render.drawing` as inline SVG, inline CSS and a small inline script; nothing is fetched.

Every graph node is an SVG element with ``data-node="<node id>"``.  Clicking an exit gives it the
class ``selected`` and exactly its ancestors (``networkx.ancestors``) the class ``ancestor``; the
maps the exits before it need (and those exits) get ``earlier``, and the maps computed so far that
lazy evaluation defers get ``deferred``.  A side panel shows the exit's eager, lazy and direct
operations and parameters (the :class:`~msdprof.core.exits.ExitCost` figures given), how many of the
maps computed so far it needs, and what lazy defers.  Hovering a node shows its shape, operations
and parameters; a switch changes the convention; the picture pans (drag) and zooms (wheel, + / -).

Everything the page shows is read from the graph's node attributes -- ``kind``, ``macs``,
``params``, ``exit`` on exit nodes, the output shape (``channels``/``height``/``width``, or
``shape``) -- from ``networkx.ancestors`` and from the ``ExitCost`` figures, never from the form of
the node ids, so any early-exit graph with those attributes gets the same page.  "Computed so far"
for exit k means the non-exit nodes added to the graph before exit k's node: the graph is built in
execution order (for an MSDNet their operations plus heads 1..k are exactly the eager figure).
Operation counts are in each convention's unit (``ops``, ``MACs``, ``FLOPs``); parameters are
counted once each.  The output depends only on its inputs: the same network gives the same bytes.
"""

from __future__ import annotations

import html
import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any, Mapping

import networkx as nx
from torch import nn

from msdnet import MSDNet
from msdnet.model import model_from

from . import drawing
from ..core.counting import CONVENTIONS, check_convention
from ..core.dataflow import Dataflow
from ..core.exits import ExitCosts, costs_of, record_exits
from .formatting import OP_NAMES
from ..analysis.graph import dataflow_graph, layout_graph
from ..files.output import check_writable, write_atomic
from ..core.units import format_count

SVG_NS = "http://www.w3.org/2000/svg"
XLINK_NS = "http://www.w3.org/1999/xlink"
ET.register_namespace("", SVG_NS)
ET.register_namespace("xlink", XLINK_NS)

#: The three figures of an exit the panel shows, with the ExitCost fields they come from.
FIGURES = (
    ("eager", "macs", "params", "everything run before exit k is reached, heads 1..k included "
                                "(the authors' count)"),
    ("lazy", "lazy_macs", "lazy_params", "only what exits 1..k read, and heads 1..k"),
    ("direct", "direct_macs", "direct_params", "exit k chosen in advance: no earlier head"),
)


def _shape(d: Mapping[str, Any]) -> str:
    """A node's output shape as ``C×H×W`` (or the ``shape`` attribute), ``""`` when not known."""
    if all(d.get(k) is not None for k in ("channels", "height", "width")):
        return f"{d['channels']}×{d['height']}×{d['width']}"
    shape = d.get("shape", d.get("output_shape"))
    if isinstance(shape, (list, tuple)):
        return "×".join(str(s) for s in shape)
    return "" if shape is None else str(shape)


def _what(d: Mapping[str, Any]) -> str:
    """What a node is, for the hover card: ``map 80×16×16`` or ``exit 2: 1000 classes``."""
    if d.get("exit") is not None:
        classes = d.get("channels")
        return f"exit {d['exit']}" + (f": {classes} classes" if classes is not None else "")
    shape = _shape(d)
    kind = str(d.get("kind", "node"))
    return f"{kind} {shape}" if shape else kind


def _ops_text(value: int, convention: str) -> str:
    return f"{format_count(value)} {OP_NAMES[convention]}"


def _params_text(value: int) -> str:
    return f"{format_count(value)} params"


def _figure(ops: int, params: int, convention: str) -> dict[str, Any]:
    return {"ops": ops, "ops_text": _ops_text(ops, convention),
            "params": params, "params_text": _params_text(params)}


def _check_inputs(graphs: Mapping[str, nx.DiGraph], costs: Mapping[str, ExitCosts]) -> list[str]:
    """The conventions of the page, in :data:`CONVENTIONS` order; ValueError if the graphs and
    costs do not describe one network."""
    if not graphs or set(graphs) != set(costs):
        raise ValueError(f"graphs ({sorted(graphs)}) and costs ({sorted(costs)}) must be given "
                         "for the same conventions, at least one")
    for convention in graphs:
        check_convention(convention)
        if costs[convention].convention != convention:
            raise ValueError(f"costs[{convention!r}] are counted in {costs[convention].convention!r}")
    first = next(iter(graphs.values()))
    for convention, graph in graphs.items():
        if list(graph.nodes) != list(first.nodes) or set(graph.edges) != set(first.edges):
            raise ValueError(f"the {convention!r} graph has other nodes or edges than the others")
    return [c for c in CONVENTIONS if c in graphs]


def page_data(graphs: Mapping[str, nx.DiGraph], costs: Mapping[str, ExitCosts],
              initial: str | None = None, title: str = "") -> dict[str, Any]:
    """What the page's script reads: per node its description, operations per convention and
    parameters; per exit its ancestors, the maps computed so far, what lazy defers, and its
    eager/lazy/direct figures per convention.  ``graphs``/``costs``: by convention (the same
    network in each).  ``initial``: the convention shown first (default: the first given)."""
    conventions = _check_inputs(graphs, costs)
    initial = initial or conventions[0]
    if initial not in conventions:
        raise ValueError(f"initial convention {initial!r} is not among {conventions}")
    graph = graphs[conventions[0]]
    order = list(graph.nodes)
    exit_nodes = sorted((d["exit"], n) for n, d in graph.nodes(data=True) if d.get("exit") is not None)
    for convention in conventions:
        numbers = [e.exit for e in costs[convention]]
        if numbers != [k for k, _ in exit_nodes]:
            raise ValueError(f"the graph's exits {[k for k, _ in exit_nodes]} are not those of "
                             f"costs[{convention!r}] ({numbers})")

    def ops(nodes: set[str], convention: str) -> int:
        return sum(graphs[convention].nodes[n]["macs"] for n in nodes)

    def params(nodes: set[str]) -> int:
        return sum(graph.nodes[n]["params"] for n in nodes)

    nodes = {
        n: {"what": _what(d), "kind": d.get("kind"), "exit": d.get("exit"),
            "ops": {c: graphs[c].nodes[n]["macs"] for c in conventions},
            "ops_text": {c: _ops_text(graphs[c].nodes[n]["macs"], c) for c in conventions},
            "params": d["params"], "params_text": _params_text(d["params"])}
        for n, d in graph.nodes(data=True)
    }
    exits = []
    needed_so_far: set[str] = set()  # exits 1..k and their ancestors: the lazy set
    for i, (k, node) in enumerate(exit_nodes):
        ancestors = nx.ancestors(graph, node)
        earlier = set(needed_so_far)
        needed_so_far |= ancestors | {node}
        computed = {n for n in order[:order.index(node)] if graph.nodes[n].get("exit") is None}
        if not ancestors <= computed | earlier:
            raise ValueError(f"the graph's nodes are not in execution order: exit {k} ({node}) "
                             "needs nodes added after it")
        deferred = computed - needed_so_far
        maps_needed = {n for n in ancestors if graph.nodes[n].get("exit") is None}
        exits.append({
            "exit": k, "node": node,
            "ancestors": [n for n in order if n in ancestors],
            "earlier": [n for n in order if n in earlier - ancestors],
            "deferred": [n for n in order if n in deferred],
            "maps_needed": len(maps_needed), "maps_computed": len(computed),
            "figures": {c: {name: _figure(getattr(costs[c][i], f_ops), getattr(costs[c][i], f_params), c)
                            for name, f_ops, f_params, _ in FIGURES} for c in conventions},
            "deferred_cost": {c: _figure(ops(deferred, c), params(deferred), c) for c in conventions},
            "cone_cost": {c: _figure(ops(ancestors | {node}, c), params(ancestors | {node}), c)
                          for c in conventions},
        })
    last = {c: costs[c][len(costs[c]) - 1] for c in conventions}
    return {
        "title": title, "conventions": conventions, "initial": initial,
        "units": {c: OP_NAMES[c] for c in conventions},
        "figures": [{"name": name, "meaning": meaning} for name, _, _, meaning in FIGURES],
        "total": {c: _figure(last[c].macs, last[c].params, c) for c in conventions},
        "nodes": nodes, "exits": exits,
    }


def _edge_ends(title: str, graph: nx.DiGraph) -> tuple[str, str] | None:
    """The (tail, head) of the graph edge Graphviz titled ``tail->head`` (ids may hold ``->``)."""
    start = 0
    while (at := title.find("->", start)) >= 0:
        tail, head = title[:at], title[at + 2:]
        if graph.has_edge(tail, head):
            return tail, head
        start = at + 1
    return None


def interactive_svg(svg: bytes | str, graph: nx.DiGraph) -> str:
    """The Graphviz ``svg`` of ``graph`` made ready for the page: ``data-node`` on every node's
    group, ``data-from``/``data-to`` on every edge's, native tooltips (titles and their links)
    removed, and the picture sized to its container."""
    root = ET.fromstring(svg.encode("utf-8") if isinstance(svg, str) else svg)
    title_tag, g_tag, a_tag = f"{{{SVG_NS}}}title", f"{{{SVG_NS}}}g", f"{{{SVG_NS}}}a"
    found: set[str] = set()
    for group in root.iter(g_tag):
        title = group.find(title_tag)
        classes = group.get("class", "").split()
        name = title.text if title is not None else None
        if name is not None and "node" in classes and name in graph and name not in found:
            group.set("data-node", name)
            found.add(name)
        elif name is not None and "edge" in classes and (ends := _edge_ends(name, graph)):
            group.set("data-from", ends[0])
            group.set("data-to", ends[1])
    missing = [n for n in graph.nodes if n not in found]
    if missing:
        raise ValueError(f"the picture has no element for {len(missing)} node(s), e.g. {missing[0]!r}")
    for parent in list(root.iter()):  # drop titles; unwrap the <g><a xlink:title> tooltip wrappers
        for child in list(parent):
            if child.tag == title_tag:
                parent.remove(child)
            elif child.tag == g_tag and len(child) == 1 and child[0].tag == a_tag:
                at = list(parent).index(child)
                parent.remove(child)
                for offset, grandchild in enumerate(list(child[0])):
                    parent.insert(at + offset, grandchild)
    for attribute in ("width", "height"):
        root.attrib.pop(attribute, None)
    root.set("id", "layout")
    root.set("preserveAspectRatio", "xMinYMin meet")
    return ET.tostring(root, encoding="unicode")


def page(graphs: Mapping[str, nx.DiGraph], costs: Mapping[str, ExitCosts], initial: str | None = None,
         title: str = "layout", svg: bytes | str | None = None) -> str:
    """The interactive HTML page of one network (see the module docstring).

    ``graphs``, ``costs``: by convention, as :func:`page_data` takes them.  ``svg``: the picture
    (default: :func:`msdprof.render.drawing.render` of the initial convention's graph, which needs
    Graphviz).  ``title``: the page's heading.
    """
    data = page_data(graphs, costs, initial, title)
    graph = graphs[data["initial"]]
    picture = interactive_svg(svg if svg is not None else drawing.render(graph, "svg"), graph)
    payload = json.dumps(data, ensure_ascii=False, separators=(",", ":")).replace("</", "<\\/")
    switch = "".join(
        f'<label><input type="radio" name="convention" value="{c}"'
        f'{" checked" if c == data["initial"] else ""}> {c}</label>' for c in data["conventions"])
    return (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
        f"<title>{html.escape(title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n"
        f"<header><h1>{html.escape(title)}</h1>"
        f'<div id="conventions" role="radiogroup" aria-label="convention">count {switch}</div>'
        '<div id="zoom"><button type="button" data-zoom="in" title="zoom in">+</button>'
        '<button type="button" data-zoom="out" title="zoom out">−</button>'
        '<button type="button" data-zoom="fit" title="show the whole graph">fit</button></div>'
        '<p class="hint">click an exit · drag to pan · wheel to zoom · click the background to clear</p>'
        "</header>\n"
        f'<main><div id="viewport">{picture}</div>\n<aside id="panel" aria-live="polite"></aside></main>\n'
        '<div id="tooltip" hidden></div>\n'
        f'<script type="application/json" id="msdprof-data">{payload}</script>\n'
        f"<script>{_SCRIPT}</script>\n</body>\n</html>\n"
    )


def dataflow_page(model: nn.Module, flow: Dataflow, convention: str = "msdnet",
                  title: str | None = None) -> str:
    """:func:`page` of any early-exit ``model`` from its dataflow record ``flow``
    (:func:`msdprof.core.exits.record_exits`): its graph and costs in every convention, from that one
    record; ``title`` (default: the model's class name) heads the page."""
    check_convention(convention)
    graphs = {c: dataflow_graph(flow, c, type(model).__name__) for c in CONVENTIONS}
    costs = {c: costs_of(model, flow, c) for c in CONVENTIONS}
    return page(graphs, costs, convention,
                f"{title or type(model).__name__}: what each exit needs and costs")


def network_page(preset_or_config: Any = None, *, input_size: Any = None, dense: bool = False,
                 convention: str = "msdnet", name: str | None = None, title: str | None = None,
                 inputs: Any = None, outputs: Any = None, **options: Any) -> str:
    """:func:`page` of a network given as :func:`msdprof.layout_graph` takes it, counted in every
    convention (on the ``meta`` device); ``convention`` is the one shown first.  ``name`` (default:
    the preset name, if one is given) is shown in the picture's title; ``inputs`` and ``outputs``
    as :func:`msdprof.exit_costs` takes them, for a model msdprof did not build; ``title`` heads the page
    (default ``MSDNet <name>``, else the options)."""
    check_convention(convention)
    if isinstance(preset_or_config, nn.Module) and not isinstance(preset_or_config, MSDNet):
        model = preset_or_config  # any early-exit model: its dataflow graph, counted on input_size
        title = title or type(model).__name__ + (f" {name}" if name else "")
        flow = record_exits(model, input_size=input_size, inputs=inputs, outputs=outputs)
        return dataflow_page(model, flow, convention, title)
    model = preset_or_config if isinstance(preset_or_config, nn.Module) else model_from(
        preset_or_config, input_size, use="drawn", **options)
    graphs = {c: layout_graph(model, dense=dense, convention=c) for c in CONVENTIONS}
    flow = record_exits(model)
    costs = {c: costs_of(model, flow, c) for c in CONVENTIONS}
    if name is None and isinstance(preset_or_config, str) and not options:
        name = preset_or_config
    if name is not None:
        for graph in graphs.values():
            graph.graph["preset"] = name
    if title is None:
        title = f"MSDNet {name}" if name is not None else "MSDNet " + model.options.describe()
    return page(graphs, costs, convention, f"{title}: what each exit needs and costs")


def write_page(path: str | Path, preset_or_config: Any = None, *, force: bool = False,
               **kwargs: Any) -> Path:
    """Write :func:`network_page` to ``path``, atomically; an existing file only with ``force``."""
    check_writable(path, force)  # before any work
    return write_atomic(path, network_page(preset_or_config, **kwargs), force)


_CSS = """
* { box-sizing: border-box; }
html, body { height: 100%; margin: 0; }
body { display: flex; flex-direction: column; color: #1f2328; background: #fff;
       font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; }
header { display: flex; flex-wrap: wrap; align-items: center; gap: .4em 1.4em; padding: .5em 1em;
         border-bottom: 1px solid #d0d7de; background: #f6f8fa; }
header h1 { font-size: 1.05em; margin: 0; font-weight: 600; }
header .hint { margin: 0; color: #57606a; font-size: .9em; }
#conventions label { margin-left: .6em; cursor: pointer; }
#zoom button { font: inherit; min-width: 2.2em; margin-right: .2em; padding: .1em .5em; cursor: pointer;
               border: 1px solid #d0d7de; border-radius: 4px; background: #fff; }
main { flex: 1; display: flex; min-height: 0; }
#viewport { flex: 1; min-width: 0; position: relative; overflow: hidden; cursor: grab; }
#viewport.dragging { cursor: grabbing; }
#viewport svg { width: 100%; height: 100%; display: block; user-select: none; touch-action: none; }
#panel { width: 360px; flex: none; overflow-y: auto; padding: .8em 1em; border-left: 1px solid #d0d7de;
         background: #fcfcfd; }
#panel h2 { font-size: 1.15em; margin: 0 0 .4em; }
#panel .headline { font-size: 1.05em; margin: .2em 0 .6em; }
#panel table { border-collapse: collapse; width: 100%; font-variant-numeric: tabular-nums; margin: .4em 0; }
#panel th, #panel td { border-bottom: 1px solid #eaeef2; padding: .25em .4em; text-align: right; }
#panel th:first-child { text-align: left; }
#panel .meaning { color: #57606a; font-size: .85em; margin: .2em 0 .6em; }
#panel .ids { font: .8em ui-monospace, "DejaVu Sans Mono", monospace; color: #57606a; word-break: break-word; }
#panel .exits button { font: inherit; margin: .15em; padding: .15em .6em; cursor: pointer;
                       border: 1px solid #b3261e; border-radius: 4px; background: #f8d3cf; color: #6e1510; }
#panel .exits button.on { background: #b3261e; color: #fff; }
.swatch { display: inline-block; width: 1.1em; height: .8em; border: 2px solid; vertical-align: -1px;
          margin-right: .35em; border-radius: 2px; }
.swatch.selected { border-color: #6e1510; background: #e8998f; }
.swatch.ancestor { border-color: #d4570b; background: #ffe2c2; }
.swatch.earlier { border-color: #8250df; background: #eee4fb; }
.swatch.deferred { border-color: #8c959f; border-style: dashed; background: #eef0f2; }
.legend-list { list-style: none; padding: 0; margin: .5em 0; font-size: .9em; }
#tooltip { position: fixed; pointer-events: none; z-index: 10; max-width: 320px; padding: .35em .6em;
           background: #1f2328; color: #fff; border-radius: 4px; font-size: .85em; line-height: 1.35; }
#tooltip b { font-family: ui-monospace, "DejaVu Sans Mono", monospace; }
svg .node[data-node] { cursor: pointer; }
svg.has-selection .node[data-node], svg.has-selection .edge { opacity: .22; transition: opacity .15s; }
svg.has-selection .node.selected, svg.has-selection .node.ancestor, svg.has-selection .node.earlier,
svg.has-selection .node.deferred, svg.has-selection .edge.on { opacity: 1; }
svg .node.ancestor polygon, svg .node.ancestor path { stroke: #d4570b; stroke-width: 3.5; }
svg .node.selected polygon, svg .node.selected path { stroke: #6e1510; stroke-width: 4.5; fill: #e8998f; }
svg .node.earlier polygon, svg .node.earlier path { stroke: #8250df; stroke-width: 2.5; }
svg .node.deferred polygon, svg .node.deferred path { stroke: #8c959f; stroke-dasharray: 5 3;
                                                      stroke-width: 2; fill: #eef0f2; }
svg .node.deferred text { fill: #6e7781; }
svg .edge.on path { stroke: #d4570b; stroke-width: 2.4; }
svg .edge.on polygon { stroke: #d4570b; fill: #d4570b; }
svg .edge.on.earlier path { stroke: #8250df; }
svg .edge.on.earlier polygon { stroke: #8250df; fill: #8250df; }
svg .node.hover polygon, svg .node.hover path { stroke-width: 3; }
"""

_SCRIPT = r"""
(function () {
"use strict";
var data = JSON.parse(document.getElementById("msdprof-data").textContent);
var svg = document.getElementById("layout");
var viewport = document.getElementById("viewport");
var panel = document.getElementById("panel");
var tooltip = document.getElementById("tooltip");
var MARKS = ["selected", "ancestor", "earlier", "deferred"];
var elements = {};
Array.prototype.forEach.call(svg.querySelectorAll("[data-node]"), function (el) {
  elements[el.getAttribute("data-node")] = el;
});
var edges = Array.prototype.slice.call(svg.querySelectorAll("[data-from]"));
var exitsByNumber = {};
data.exits.forEach(function (e) { exitsByNumber[e.exit] = e; });
var convention = data.initial;
var current = null;

function esc(text) {
  return String(text).replace(/[&<>"]/g, function (c) {
    return {"&": "&amp;", "<": "&lt;", ">": "&gt;", "\"": "&quot;"}[c];
  });
}
function cell(field, figure, part) {
  return '<td data-field="' + field + '" data-value="' + figure[part] + '">' +
         esc(figure[part + "_text"]) + "</td>";
}
function exitButtons() {
  return '<p class="exits">' + data.exits.map(function (e) {
    return '<button type="button" data-exit="' + e.exit + '"' +
           (current === e ? ' class="on"' : "") + ">exit " + e.exit + "</button>";
  }).join("") + "</p>";
}
function render() {
  var html;
  if (current === null) {
    var total = data.total[convention];
    html = "<h2>Click an exit</h2><p>Click a red exit box (or a button below) to light up the " +
      "feature maps or operations it needs, and read what it costs. Hover any box for its shape and cost.</p>" +
      exitButtons() + '<p>Whole network: <span data-field="total-ops" data-value="' + total.ops +
      '">' + esc(total.ops_text) + '</span>, <span data-field="total-params" data-value="' +
      total.params + '">' + esc(total.params_text) + "</span>.</p>";
  } else {
    var e = current, f = e.figures[convention], d = e.deferred_cost[convention];
    var saves = f.eager.ops ? (100 * (f.eager.ops - f.lazy.ops) / f.eager.ops).toFixed(1) : "0.0";
    html = "<h2>exit " + e.exit + "</h2>" +
      '<p class="headline" data-field="headline"><b>' + esc(f.lazy.ops_text) + "</b> lazy vs <b>" +
      esc(f.eager.ops_text) + "</b> eager (lazy saves " + saves + "%)</p>" +
      "<table><thead><tr><th></th><th>" + esc(data.units[convention]) +
      "</th><th>params</th></tr></thead><tbody>" +
      data.figures.map(function (fig) {
        return '<tr><th title="' + esc(fig.meaning) + '">' + fig.name + "</th>" +
               cell(fig.name + "-ops", f[fig.name], "ops") +
               cell(fig.name + "-params", f[fig.name], "params") + "</tr>";
      }).join("") + "</tbody></table>" +
      '<p class="meaning">' + data.figures.map(function (fig) {
        return "<b>" + fig.name + "</b>: " + esc(fig.meaning);
      }).join("; ") + ".</p>" +
      '<p>Needs <b data-field="maps-needed" data-value="' + e.maps_needed + '">' + e.maps_needed +
      '</b> of the <b data-field="maps-computed" data-value="' + e.maps_computed + '">' +
      e.maps_computed + "</b> maps computed so far (its own cone: " +
      esc(e.cone_cost[convention].ops_text) + ").</p>" +
      '<p>Lazy defers <b data-field="deferred-maps" data-value="' + e.deferred.length + '">' +
      e.deferred.length + '</b> map' + (e.deferred.length === 1 ? "" : "s") + ': <span data-field=' +
      '"deferred-ops" data-value="' + d.ops + '">' + esc(d.ops_text) + '</span>, <span data-field=' +
      '"deferred-params" data-value="' + d.params + '">' + esc(d.params_text) + "</span>" +
      (e.deferred.length ? ', paid later if the image goes on:</p><p class="ids">' +
       e.deferred.map(esc).join(", ") : "") + "</p>" +
      '<ul class="legend-list">' +
      '<li><span class="swatch selected"></span>exit ' + e.exit + "</li>" +
      '<li><span class="swatch ancestor"></span>what it needs (its ancestors): ' + e.ancestors.length + "</li>" +
      '<li><span class="swatch earlier"></span>needed only by earlier exits: ' + e.earlier.length + "</li>" +
      '<li><span class="swatch deferred"></span>computed eagerly, deferred by lazy: ' + e.deferred.length +
      "</li></ul>" + exitButtons();
  }
  panel.innerHTML = html;
}
function mark(e) {
  Object.keys(elements).forEach(function (id) {
    MARKS.forEach(function (m) { elements[id].classList.remove(m); });
  });
  edges.forEach(function (el) { el.classList.remove("on", "earlier"); });
  svg.classList.toggle("has-selection", e !== null);
  if (e !== null) {
    elements[e.node].classList.add("selected");
    e.ancestors.forEach(function (id) { elements[id].classList.add("ancestor"); });
    e.earlier.forEach(function (id) { elements[id].classList.add("earlier"); });
    e.deferred.forEach(function (id) { elements[id].classList.add("deferred"); });
    var cone = {}, needed = {};  // exit e and its ancestors; with what earlier exits need
    e.ancestors.concat([e.node]).forEach(function (id) { cone[id] = needed[id] = true; });
    e.earlier.forEach(function (id) { needed[id] = true; });
    edges.forEach(function (el) {
      var from = el.getAttribute("data-from"), to = el.getAttribute("data-to");
      if (cone[from] && cone[to]) el.classList.add("on");
      else if (needed[from] && needed[to]) el.classList.add("on", "earlier");
    });
  }
}
function select(e) { current = e; mark(e); render(); }

document.querySelectorAll('#conventions input').forEach(function (input) {
  input.addEventListener("change", function () {
    if (input.checked) { convention = input.value; render(); }
  });
});
panel.addEventListener("click", function (event) {
  var button = event.target.closest("button[data-exit]");
  if (button) { select(exitsByNumber[button.getAttribute("data-exit")]); reveal(current); }
});

// Hover card.
svg.addEventListener("mouseover", function (event) {
  var el = event.target.closest("[data-node]");
  if (!el) return;
  var id = el.getAttribute("data-node"), n = data.nodes[id];
  el.classList.add("hover");
  tooltip.innerHTML = "<b>" + esc(id) + "</b><br>" + esc(n.what) + "<br>" + esc(n.ops_text[convention]) +
                      ", " + esc(n.params_text);
  tooltip.setAttribute("data-node", id);
  tooltip.hidden = false;
});
svg.addEventListener("mouseout", function (event) {
  var el = event.target.closest("[data-node]");
  if (el && !el.contains(event.relatedTarget)) { el.classList.remove("hover"); tooltip.hidden = true; }
});
svg.addEventListener("mousemove", function (event) {
  if (tooltip.hidden) return;
  var r = viewport.getBoundingClientRect(), w = tooltip.offsetWidth, h = tooltip.offsetHeight;
  var x = event.clientX + 14 + w <= r.right ? event.clientX + 14 : event.clientX - 14 - w;
  var y = event.clientY + 14 + h <= r.bottom ? event.clientY + 14 : event.clientY - 14 - h;
  tooltip.style.left = x + "px"; tooltip.style.top = y + "px";
});

// Pan and zoom: the view is a corner (x, y) in picture units and a scale s (pixels per unit);
// a press that moves more than 4 px is a drag, not a click.
var whole = svg.viewBox.baseVal, picture = {x: whole.x, y: whole.y, w: whole.width, h: whole.height};
var view = {x: 0, y: 0, s: 1};
function size() { return [Math.max(viewport.clientWidth, 1), Math.max(viewport.clientHeight, 1)]; }
function apply() {
  var wh = size();
  svg.setAttribute("viewBox", [view.x, view.y, wh[0] / view.s, wh[1] / view.s].join(" "));
}
function fitAll() {  // the whole picture, centred
  var wh = size(), s = Math.min(wh[0] / picture.w, wh[1] / picture.h);
  view = {s: s, x: picture.x - (wh[0] / s - picture.w) / 2, y: picture.y - (wh[1] / s - picture.h) / 2};
  apply();
}
function start() {  // the picture's full height (legible, at most 1.2 px a point), from its left edge
  var wh = size(), all = Math.min(wh[0] / picture.w, wh[1] / picture.h);
  var s = Math.max(all, Math.min(wh[1] / picture.h, 1.2));
  if (s === all) { fitAll(); return; }
  view = {s: s, x: picture.x, y: picture.y - (wh[1] / s - picture.h) / 2};
  apply();
}
function zoom(factor, clientX, clientY) {
  var r = viewport.getBoundingClientRect(), wh = size();
  var least = Math.min(wh[0] / picture.w, wh[1] / picture.h) / 2;
  var s = Math.min(Math.max(view.s * factor, least), 12);
  var px = view.x + (clientX - r.left) / view.s, py = view.y + (clientY - r.top) / view.s;
  view = {s: s, x: px - (clientX - r.left) / s, y: py - (clientY - r.top) / s};
  apply();
}
function reveal(e) {  // pan sideways to show exit e and what it needs (or its nearest part)
  var r = viewport.getBoundingClientRect(), b = elements[e.node].getBoundingClientRect();
  var left = b.left, right = b.right;
  e.ancestors.forEach(function (id) {
    var a = elements[id].getBoundingClientRect();
    left = Math.min(left, a.left); right = Math.max(right, a.right);
  });
  if (left >= r.left && right <= r.right) return;
  var shift = right - left <= 0.9 * r.width ? (left + right) / 2 - (r.left + r.right) / 2
                                             : b.right - (r.left + 0.9 * r.width);
  var w = r.width / view.s;
  view.x = Math.max(picture.x, Math.min(view.x + shift / view.s, picture.x + picture.w - w));
  apply();
}
function centre() {
  var r = viewport.getBoundingClientRect();
  return [r.left + r.width / 2, r.top + r.height / 2];
}
svg.addEventListener("wheel", function (event) {
  event.preventDefault();
  zoom(Math.exp(-event.deltaY * 0.0015), event.clientX, event.clientY);
}, {passive: false});
document.getElementById("zoom").addEventListener("click", function (event) {
  var what = event.target.getAttribute("data-zoom"), c = centre();
  if (what === "in") zoom(1.4, c[0], c[1]);
  else if (what === "out") zoom(1 / 1.4, c[0], c[1]);
  else if (what === "fit") fitAll();
});
window.addEventListener("resize", apply);
var press = null, dragged = false;
svg.addEventListener("pointerdown", function (event) {
  if (event.button !== 0) return;
  press = {x: event.clientX, y: event.clientY, vx: view.x, vy: view.y};
  dragged = false;
});
window.addEventListener("pointermove", function (event) {
  if (press === null) return;
  if (!dragged && Math.abs(event.clientX - press.x) + Math.abs(event.clientY - press.y) < 5) return;
  dragged = true; viewport.classList.add("dragging");
  view.x = press.vx - (event.clientX - press.x) / view.s;
  view.y = press.vy - (event.clientY - press.y) / view.s;
  apply();
});
window.addEventListener("pointerup", function () { press = null; viewport.classList.remove("dragging"); });
svg.addEventListener("click", function (event) {
  if (dragged) { dragged = false; return; }
  var el = event.target.closest("[data-node]");
  if (!el) { select(null); return; }
  var n = data.nodes[el.getAttribute("data-node")];
  if (n.exit !== null && n.exit !== undefined) select(exitsByNumber[n.exit]);
});
start();
render();
})();
"""

__all__ = ["FIGURES", "dataflow_page", "interactive_svg", "network_page", "page", "page_data", "write_page"]
