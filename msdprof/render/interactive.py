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
import numpy as np
from torch import nn

from msdnet import MSDNet, resolve
from msdnet.plan import build_plan
from msdnet.model import model_from
from msdnet.options import OptionError

from . import drawing
from ..core.counting import CONVENTIONS
from ..core.conventions import check_convention
from ..core.dataflow import Dataflow
from ..core.exits import ExitCosts, costs_of, record_exits
from .formatting import OP_NAMES
from ..analysis.graph import (
    check_depth, dataflow_graph, default_depth, fold_graph, graph_from_plan, layout_graph,
)
from ..core.plan_costs import plan_costs_all
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
              initial: str | None = None, title: str = "", exit: int | None = None) -> dict[str, Any]:
    """What the page's script reads: the nodes in graph order (each with its description,
    operations per convention and parameters) and the edges between them (by place in that
    order), from which the script finds an exit's ancestors; per exit how many maps it needs of
    those computed so far, what lazy defers, its cone's cost and its eager/lazy/direct figures per
    convention.  Its size grows linearly with the graph and the exits.  ``graphs``/``costs``: by
    convention (the same network in each).  ``initial``: the convention shown first (default: the
    first given).  ``exit``: the exit chosen when the page opens (default: none).  For a dataflow
    graph (:func:`msdprof.analysis.graph.dataflow_graph`, not folded), ``flow`` holds what the
    script needs to fold it and draw it."""
    conventions = _check_inputs(graphs, costs)
    initial = initial or conventions[0]
    if initial not in conventions:
        raise ValueError(f"initial convention {initial!r} is not among {conventions}")
    graph = graphs[conventions[0]]
    order = list(graph.nodes)
    dataflow = bool(graph.graph.get("dataflow"))
    if dataflow and graph.graph.get("folded"):
        raise ValueError("the page folds a dataflow graph itself: give it unfolded (depth=None)")
    exit_nodes = sorted((d["exit"], n) for n, d in graph.nodes(data=True) if d.get("exit") is not None)
    for convention in conventions:
        numbers = [e.exit for e in costs[convention]]
        if numbers != [k for k, _ in exit_nodes]:
            raise ValueError(f"the graph's exits {[k for k, _ in exit_nodes]} are not those of "
                             f"costs[{convention!r}] ({numbers})")
    if exit is not None and exit not in [k for k, _ in exit_nodes]:
        raise OptionError("exit", exit, f"must be one of the exits {[k for k, _ in exit_nodes]}")
    nodes = {
        n: {"what": _what(d), "kind": d.get("kind"), "exit": d.get("exit"),
            "ops": {c: graphs[c].nodes[n]["macs"] for c in conventions},
            "ops_text": {c: _ops_text(graphs[c].nodes[n]["macs"], c) for c in conventions},
            "params": d["params"], "params_text": _params_text(d["params"])}
        for n, d in graph.nodes(data=True)
    }
    index = {n: i for i, n in enumerate(order)}
    is_exit = np.array([graph.nodes[n].get("exit") is not None for n in order])
    # needs[n, i]: node n is exit i's node or one of its ancestors (the graph is in execution order,
    # so a node's successors come after it -- checked below)
    needs = np.zeros((len(order), len(exit_nodes)), dtype=bool)
    for i, (_, node) in enumerate(exit_nodes):
        needs[index[node], i] = True
    for n in reversed(order):
        for s in graph.successors(n):
            if index[s] <= index[n]:
                raise ValueError(f"the graph's nodes are not in execution order: {n} feeds {s}, added before it")
            needs[index[n]] |= needs[index[s]]
    first_need = np.where(needs.any(axis=1), needs.argmax(axis=1), len(exit_nodes))  # first exit needing n
    def exact(values: list[int]) -> np.ndarray:  # int64 sums are exact below 2**63 (the values are >= 0)
        return np.array(values, dtype=np.int64 if sum(values) < 2**63 else object)

    ops = {c: exact([graphs[c].nodes[n]["macs"] for n in order]) for c in conventions}
    params = exact([graph.nodes[n]["params"] for n in order])
    position = np.arange(len(order))
    exits = []
    for i, (k, node) in enumerate(exit_nodes):
        cone = needs[:, i]
        computed = (position < index[node]) & ~is_exit
        late = cone & ~computed & (first_need >= i) & (position != index[node])
        if late.any():
            raise ValueError(f"the graph's nodes are not in execution order: exit {k} ({node}) "
                             "needs nodes added after it")
        deferred = computed & (first_need > i)
        exits.append({
            "exit": k, "node": node,
            "maps_needed": int((cone & ~is_exit).sum()), "maps_computed": int(computed.sum()),
            "deferred_maps": int(deferred.sum()),
            "figures": {c: {name: _figure(getattr(costs[c][i], f_ops), getattr(costs[c][i], f_params), c)
                            for name, f_ops, f_params, _ in FIGURES} for c in conventions},
            "deferred_cost": {c: _figure(int(ops[c][deferred].sum()), int(params[deferred].sum()), c)
                              for c in conventions},
            "cone_cost": {c: _figure(int(ops[c][cone].sum()), int(params[cone].sum()), c) for c in conventions},
        })
    last = {c: costs[c][len(costs[c]) - 1] for c in conventions}
    return {
        "title": title, "conventions": conventions, "initial": initial,
        "units": {c: OP_NAMES[c] for c in conventions},
        "figures": [{"name": name, "meaning": meaning} for name, _, _, meaning in FIGURES],
        "total": {c: _figure(last[c].macs, last[c].params, c) for c in conventions},
        "order": order, "edges": [[index[a], index[b]] for a, b in graph.edges],
        "nodes": nodes, "exits": exits, "exit": exit, "flow": _flow_data(graphs, conventions, initial) if dataflow else None,
    }


def _flow_data(graphs: Mapping[str, nx.DiGraph], conventions: list[str], initial: str) -> dict[str, Any]:
    """What the page's script needs to fold and draw a dataflow graph: per node its box label
    lines and groups; per group (module call) its box (as :func:`fold_graph` makes it) in every
    convention and its parent; the depth shown first; the layout's sizes."""
    graph = graphs[conventions[0]]
    depth = graph.graph.get("depth") or default_depth(graph)
    ops = {c: {} for c in conventions}  # per convention, per group: its operations' sum
    for node, held in graph.nodes(data="groups"):
        for c in conventions:
            macs = graphs[c].nodes[node]["macs"]
            for name in held or ():
                ops[c][name] = ops[c].get(name, 0) + macs
    groups: dict[str, dict[str, Any]] = {}
    for level in range(1, graph.graph.get("max_depth", 0) + 1):
        folded = fold_graph(graph, level)  # a box's shape, type, members and parameters
        for name, d in folded.nodes(data=True):
            if d["kind"] != "group" or name in groups:
                continue
            groups[name] = {
                "level": level, "parent": d["groups"][-1] if d["groups"] else None,
                "lines": {c: drawing.flow_label(name, {**d, "macs": ops[c][name]}, OP_NAMES[c]) for c in conventions},
                "ops": {c: ops[c][name] for c in conventions},
                "ops_text": {c: _ops_text(ops[c][name], c) for c in conventions},
                "params_text": _params_text(d["params"]), "members": d["members"],
            }
    width = drawing.flow_box_width(_box_lines(graphs[initial], groups, initial))
    exit_height = drawing.flow_exit_height(drawing.flow_label(n, d, OP_NAMES[c]) for c in conventions
                                           for n, d in graphs[c].nodes(data=True) if d["kind"] == "exit")
    return {
        "depth": depth, "max_depth": graph.graph.get("max_depth", 0),
        "groups": groups,
        "node_groups": {n: d.get("groups") or [] for n, d in graph.nodes(data=True)},
        "lines": {c: {n: drawing.flow_label(n, d, OP_NAMES[c]) for n, d in graphs[c].nodes(data=True)}
                  for c in conventions},
        "box": [width, drawing.FLOW_BOX[1], width, exit_height, *drawing.FLOW_GAP, drawing.FLOW_FONT],
        "view": list(drawing.FLOW_VIEW),
    }


def _box_lines(graph: nx.DiGraph, groups: dict[str, dict[str, Any]], convention: str) -> list[list[str]]:
    """The label of every box the page may show in ``convention`` (operations and groups, exits left
    out): the boxes are as wide as the widest needs (a label of another convention that does not
    fit is set smaller)."""
    found = [drawing.flow_label(n, d, OP_NAMES[convention]) for n, d in graph.nodes(data=True) if d["kind"] != "exit"]
    return found + [g["lines"][convention] for g in groups.values()]


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
         title: str = "layout", svg: bytes | str | None = None, exit: int | None = None) -> str:
    """The interactive HTML page of one network (see the module docstring).

    ``graphs``, ``costs``: by convention, as :func:`page_data` takes them.  ``svg``: the picture
    of an MSDNet (default: :func:`msdprof.render.drawing.render` of the initial convention's
    graph, which needs Graphviz); a dataflow graph is folded and drawn by the page's script (its
    graph attribute ``depth``, if set, is the depth shown first).  ``title``: the page's heading.
    ``exit``: the exit chosen when the page opens.
    """
    data = page_data(graphs, costs, initial, title, exit)
    graph = graphs[data["initial"]]
    if data["flow"] is not None:
        picture = f'<svg xmlns="{SVG_NS}" id="layout" class="flow" viewBox="0 0 100 100"></svg>'
    else:
        picture = interactive_svg(svg if svg is not None else drawing.render(graph, "svg"), graph)
    payload = json.dumps(data, ensure_ascii=False, separators=(",", ":")).replace("</", "<\\/")
    switch = "".join(
        f'<label><input type="radio" name="convention" value="{c}"'
        f'{" checked" if c == data["initial"] else ""}> {c}</label>' for c in data["conventions"])
    folding = ('<div id="depth">depth <button type="button" data-depth="-1" title="fold one level">−</button>'
               '<span id="depth-value"></span><button type="button" data-depth="1" title="expand one level">+'
               '</button></div>' if data["flow"] is not None else "")
    hint = ("click an exit · click a blue box to expand it · drag to pan · wheel to zoom"
            if data["flow"] is not None else "click an exit · drag to pan · wheel or + to zoom and read the boxes")
    return (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
        f"<title>{html.escape(title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n"
        f"<header><h1>{html.escape(title)}</h1>"
        f'<div id="conventions" role="radiogroup" aria-label="convention">count {switch}</div>'
        '<div id="zoom"><button type="button" data-zoom="in" title="zoom in">+</button>'
        '<button type="button" data-zoom="out" title="zoom out">−</button>'
        '<button type="button" data-zoom="fit" title="show the whole graph">fit</button></div>'
        f'{folding}<input id="search" type="search" placeholder="find a module" aria-label="find a module" '
        'list="names"><datalist id="names"></datalist>'
        f'<p class="hint">{hint}<span id="small" hidden></span></p>'
        "</header>\n"
        f'<main><div id="viewport">{picture}</div>\n<aside id="panel" aria-live="polite"></aside></main>\n'
        '<div id="tooltip" hidden></div>\n'
        f'<script type="application/json" id="msdprof-data">{payload}</script>\n'
        f"<script>{drawing.flow_script()}</script>\n<script>{_SCRIPT}</script>\n</body>\n</html>\n"
    )


def dataflow_page(model: nn.Module, flow: Dataflow, convention: str | None = None,
                  title: str | None = None, depth: int | None = None, exit: int | None = None) -> str:
    """:func:`page` of any early-exit ``model`` from its dataflow record ``flow``
    (:func:`msdprof.core.exits.record_exits`): its graph and costs in every convention, from that one
    record; ``title`` (default: the model's class name) heads the page; ``depth``: the module depth
    shown first (default :func:`msdprof.analysis.graph.default_depth`); ``exit``: the exit chosen
    when it opens; ``convention``: the one shown first (default ``macs``)."""
    convention = check_convention(convention, msdnet=False)
    graphs = {c: dataflow_graph(flow, c, type(model).__name__) for c in CONVENTIONS}
    if depth is not None:
        for graph in graphs.values():
            graph.graph["depth"] = check_depth(depth)
    costs = {c: costs_of(model, flow, c) for c in CONVENTIONS}
    return page(graphs, costs, convention,
                f"{title or type(model).__name__}: what each exit needs and costs", exit=exit)


def network_page(preset_or_config: Any = None, *, input_size: Any = None, dense: bool = False,
                 convention: str | None = None, name: str | None = None, title: str | None = None,
                 depth: int | None = None, exit: int | None = None, inputs: Any = None,
                 outputs: Any = None, **options: Any) -> str:
    """:func:`page` of a network given as :func:`msdprof.layout_graph` takes it, counted in every
    convention (on the ``meta`` device); ``convention`` is the one shown first, ``exit`` the exit
    chosen when it opens.  ``name`` (default: the preset name, if one is given) is shown in the
    picture's title; ``title`` heads the page (default ``MSDNet <name>``, else the options).
    ``depth``: for any other model, the module depth shown first (see :func:`dataflow_page`);
    ``inputs`` and ``outputs``: its example inputs, in place of ``input_size``, and how its exits
    are picked out of what it returns (as :func:`msdprof.exit_costs`).  By default the convention
    shown first is ``msdnet`` for an MSDNet, ``macs`` for any other model."""
    check_convention(convention)
    if isinstance(preset_or_config, nn.Module) and not isinstance(preset_or_config, MSDNet):
        model = preset_or_config  # any early-exit model: its dataflow graph, counted on input_size
        title = title or type(model).__name__ + (f" {name}" if name else "")
        return dataflow_page(model, record_exits(model, input_size=input_size, inputs=inputs, outputs=outputs), convention, title,
                             depth, exit)
    if depth is not None:
        raise OptionError("depth", depth, "is for a model's dataflow graph: an MSDNet is drawn as its "
                                          "scale x layer grid")
    convention = check_convention(convention)
    if isinstance(preset_or_config, nn.Module):  # a built MSDNet: counted as built
        model = model_from(preset_or_config, input_size, use="drawn", **options)
        graphs = {c: layout_graph(model, dense=dense, convention=c) for c in CONVENTIONS}
        flow = record_exits(model)
        costs = {c: costs_of(model, flow, c) for c in CONVENTIONS}
        described = model.options.describe()
    else:  # options: graph and costs from the plan alone (equal to counting the built model)
        plan = build_plan(resolve(preset_or_config, **options), input_size)
        graphs = {c: graph_from_plan(plan, dense, c) for c in CONVENTIONS}
        costs = plan_costs_all(plan)
        described = plan.options.describe()
    if name is None and isinstance(preset_or_config, str) and not options:
        name = preset_or_config
    if name is not None:
        for graph in graphs.values():
            graph.graph["preset"] = name
    if title is None:
        title = f"MSDNet {name}" if name is not None else "MSDNet " + described
    return page(graphs, costs, convention, f"{title}: what each exit needs and costs", exit=exit)


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
#search { font: inherit; padding: .1em .4em; width: 14em; }
#depth button { font: inherit; min-width: 1.8em; cursor: pointer; border: 1px solid #d0d7de; border-radius: 4px;
                background: #fff; }
#panel .open button { font: inherit; margin: .15em; padding: .1em .5em; cursor: pointer;
                      border: 1px solid #2166ac; border-radius: 4px; background: #e8eef7; }
svg.flow .node rect { fill: #fff; stroke: #3b4a5a; stroke-width: 1; }
svg.flow .node.group rect { fill: #e8eef7; stroke: #2166ac; stroke-width: 2; }
svg.flow .node.exit rect { fill: #f8d3cf; stroke: #b3261e; stroke-width: 2; }
svg.flow .node.exit text { fill: #6e1510; }
svg.flow .node text { font-family: system-ui, "DejaVu Sans", sans-serif; fill: #1f2328; pointer-events: none; }
svg.flow .node text.name { font-weight: 600; }
svg.flow .node rect.need { fill: #d4570b; stroke: none; }
svg.flow .node.ancestor rect:first-child { stroke: #d4570b; stroke-width: 3.5; fill: #ffe2c2; }
svg.flow .node.selected rect:first-child { stroke: #6e1510; stroke-width: 4.5; fill: #e8998f; }
svg.flow .node.earlier rect:first-child { stroke: #8250df; stroke-width: 2.5; }
svg.flow .node.deferred rect:first-child { stroke: #8c959f; stroke-dasharray: 5 3; stroke-width: 2; fill: #eef0f2; }
svg .node.found rect:first-child, svg .node.found polygon, svg .node.found path { stroke: #0a7d32; stroke-width: 5; }
svg.flow .edge:not(.on) path { stroke: #888; stroke-width: 1.2; }
svg.flow .edge:not(.on) polygon { fill: #888; stroke: #888; }
"""

_SCRIPT = r"""
(function () {
"use strict";
var data = JSON.parse(document.getElementById("msdprof-data").textContent);
var SVGNS = "http://www.w3.org/2000/svg";
var svg = document.getElementById("layout");
var viewport = document.getElementById("viewport");
var panel = document.getElementById("panel");
var tooltip = document.getElementById("tooltip");
var flow = data.flow;
var MARKS = ["selected", "ancestor", "earlier", "deferred"];
var order = data.order, index = {}, preds = [];
order.forEach(function (n, i) { index[n] = i; preds.push([]); });
data.edges.forEach(function (e) { preds[e[1]].push(e[0]); });
function isExit(n) { var x = data.nodes[n].exit; return x !== null && x !== undefined; }
var exitsByNumber = {};
data.exits.forEach(function (e) { exitsByNumber[e.exit] = e; });
var convention = data.initial;
var current = null, marks = null, found = null;
var elements = {}, edgeEls = [], boxOf = null, membersOf = null;

function esc(text) {
  return String(text).replace(/[&<>"]/g, function (c) {
    return {"&": "&amp;", "<": "&lt;", ">": "&gt;", "\"": "&quot;"}[c];
  });
}
// --- what an exit needs: computed here from the edges (the page grows linearly with the graph) ---
function closure(starts) {
  var seen = new Uint8Array(order.length), stack = starts.slice();
  starts.forEach(function (i) { seen[i] = 1; });
  while (stack.length) {
    preds[stack.pop()].forEach(function (p) { if (!seen[p]) { seen[p] = 1; stack.push(p); } });
  }
  return seen;
}
function marksOf(e) {  // per node (graph order): selected, ancestor, earlier, deferred or ""
  var at = index[e.node], k = data.exits.indexOf(e);
  var cone = closure([at]);
  var lazy = closure(data.exits.slice(0, k).map(function (x) { return index[x.node]; }));
  return order.map(function (n, i) {
    if (i === at) return "selected";
    if (cone[i]) return "ancestor";
    if (lazy[i]) return "earlier";
    return i < at && !isExit(n) ? "deferred" : "";
  });
}
// --- folding a dataflow graph by its module calls, and drawing it -----------------------------
var open = {}, depth = flow ? flow.depth : 0;
function setDepth(d) {
  depth = Math.max(1, Math.min(d, flow.max_depth + 1));
  open = {};
  Object.keys(flow.groups).forEach(function (g) { if (flow.groups[g].level < depth) open[g] = true; });
  document.getElementById("depth-value").textContent = " " + depth + " of " + (flow.max_depth + 1) + " ";
}
function boxFor(n) {
  var gs = flow.node_groups[n];
  for (var i = 0; i < gs.length; i++) if (!open[gs[i]]) return gs[i];
  return n;
}
var B = flow ? flow.box : null;  // box w, h; exit w, h; gaps: column, band, row; font
function make(tag, attrs, parent) {
  var el = document.createElementNS(SVGNS, tag);
  Object.keys(attrs).forEach(function (k) { el.setAttribute(k, attrs[k]); });
  if (parent) parent.appendChild(el);
  return el;
}
function linesOf(b) {
  return flow.groups[b] ? flow.groups[b].lines[convention] : flow.lines[convention][b];
}
function draw() {  // fold, lay out and draw the boxes the open groups leave
  var boxes = [], members = {}, repOf = [], seen = {}, exitBox = {};
  order.forEach(function (n, i) {
    var b = boxFor(n);
    repOf.push(b);
    if (!seen[b]) { seen[b] = true; boxes.push(b); members[b] = []; exitBox[b] = b === n && isExit(n); }
    members[b].push(i);
  });
  var edges = [], have = {};
  data.edges.forEach(function (e) {
    var a = repOf[e[0]], b = repOf[e[1]], key = a + "\u0000" + b;
    if (a !== b && !have[key]) { have[key] = true; edges.push([a, b]); }
  });
  var rank = {};  // every edge, grouped by tail in box order as networkx lists them (flow_layout.js)
  boxes.forEach(function (b, i) { rank[b] = i; });
  edges = edges.map(function (e, i) { return [e, i]; }).sort(function (a, b) {
    return rank[a[0][0]] - rank[b[0][0]] || a[1] - b[1];
  }).map(function (item) { return item[0]; });
  var at = flowLayout(boxes, edges, exitBox, B, flow.view), routes = flowRoutes(edges, exitBox, at, B);
  while (svg.firstChild) svg.removeChild(svg.firstChild);
  var edgeLayer = make("g", {"class": "edges"}, svg), nodeLayer = make("g", {"class": "nodes"}, svg);
  edgeEls = [];
  edges.forEach(function (e, i) {
    var p = routes[i][0], d = "M" + p[0];
    for (var j = 1; j + 2 < p.length; j += 3) d += "C" + p[j] + " " + p[j + 1] + " " + p[j + 2];
    var g = make("g", {"class": "edge", "data-from": e[0], "data-to": e[1]}, edgeLayer);
    make("path", {d: d, fill: "none", stroke: "#666"}, g);
    var tip = routes[i][1], from = p[p.length - 1], dx = tip[0] - from[0], dy = tip[1] - from[1], l = Math.hypot(dx, dy) || 1;
    var ux = dx / l, uy = dy / l;
    make("polygon", {points: [[tip[0], tip[1]], [from[0] - uy * 3, from[1] + ux * 3],
                              [from[0] + uy * 3, from[1] - ux * 3]].join(" "), fill: "#666", stroke: "#666"}, g);
    edgeEls.push(g);
  });
  elements = {};
  boxes.forEach(function (b) {
    var exit = exitBox[b], w = exit ? B[2] : B[0], h = exit ? B[3] : B[1], lines = linesOf(b);
    var cls = "node" + (flow.groups[b] ? " group" : "") + (exit ? " exit" : "");
    var g = make("g", {"class": cls, "data-node": b}, nodeLayer);
    make("rect", {x: at.x[b] - w / 2, y: at.y[b] - h / 2, width: w, height: h, rx: 6}, g);
    make("rect", {"class": "need", x: at.x[b] - w / 2 + 3, y: at.y[b] + h / 2 - 6, width: 0, height: 3}, g);
    var first = at.y[b] - (lines.length - 1) * B[7] * 0.55 + B[7] * 0.35 - (exit ? 0 : 2);
    lines.forEach(function (line, i) {
      var t = make("text", {x: at.x[b], y: first + i * B[7] * 1.1, "text-anchor": "middle",
                            "font-size": B[7], "class": i ? "" : "name"}, g);
      t.textContent = line;
    });
    elements[b] = g;
  });
  flowFitTexts(Array.prototype.slice.call(nodeLayer.querySelectorAll("text")), B[0] - 8, B[7]);
  boxOf = repOf; membersOf = members;
  picture = {x: 0, y: 0, w: at.width, h: at.height};
  mark();
}
function relabel() {
  Object.keys(elements).forEach(function (b) {
    var texts = elements[b].querySelectorAll("text"), lines = linesOf(b);
    lines.forEach(function (line, i) { if (texts[i]) texts[i].textContent = line; });
  });
  flowFitTexts(Array.prototype.slice.call(svg.querySelectorAll(".nodes text")), B[0] - 8, B[7]);
}
// --- marks ---------------------------------------------------------------------------------------
function mark() {
  Object.keys(elements).forEach(function (id) {
    MARKS.forEach(function (m) { elements[id].classList.remove(m); });
    elements[id].classList.toggle("found", id === found);
    elements[id].removeAttribute("data-needed");
    var bar = elements[id].querySelector(".need");
    if (bar) bar.setAttribute("width", 0);
  });
  edgeEls.forEach(function (el) { el.classList.remove("on", "earlier"); });
  svg.classList.toggle("has-selection", current !== null);
  if (current === null) return;
  marks = marksOf(current);
  var boxMark = {}, need = {}, RANK = {selected: 4, ancestor: 3, earlier: 2, deferred: 1, "": 0};
  order.forEach(function (n, i) {
    var b = flow ? boxOf[i] : n, m = marks[i];
    if (!(b in boxMark) || RANK[m] > RANK[boxMark[b]]) boxMark[b] = m;
    if (m === "selected" || m === "ancestor") need[b] = (need[b] || 0) + data.nodes[n].ops[convention];
  });
  Object.keys(boxMark).forEach(function (b) {
    if (boxMark[b] && elements[b]) elements[b].classList.add(boxMark[b]);
  });
  if (flow) {
    Object.keys(need).forEach(function (b) {
      var g = flow.groups[b];
      if (!g || !elements[b]) return;
      var inside = membersOf[b].filter(function (i) { return marks[i] === "ancestor"; }).length;
      var share = g.ops[convention] ? need[b] / g.ops[convention] : inside / g.members;
      elements[b].setAttribute("data-needed", inside + " of " + g.members + " operations, " +
                               formatCount(need[b]) + " of " + g.ops_text[convention]);
      elements[b].querySelector(".need").setAttribute("width", (B[0] - 6) * share);
    });
  }
  edgeEls.forEach(function (el) {
    var a = boxMark[el.getAttribute("data-from")], b = boxMark[el.getAttribute("data-to")];
    var inCone = function (m) { return m === "selected" || m === "ancestor"; };
    if (inCone(a) && inCone(b)) el.classList.add("on");
    else if ((inCone(a) || a === "earlier") && (inCone(b) || b === "earlier")) el.classList.add("on", "earlier");
  });
}
function formatCount(v) {  // as msdprof.core.units.format_count
  var steps = [[1e12, "T"], [1e9, "G"], [1e6, "M"], [1e3, "K"]];
  for (var i = 0; i < steps.length; i++) {
    if (Math.abs(v) >= steps[i][0]) return (v / steps[i][0]).toFixed(2) + " " + steps[i][1] + data.units[convention];
  }
  return v + " " + data.units[convention];
}
// --- the panel -----------------------------------------------------------------------------------
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
function openButtons() {
  if (!flow) return "";
  var list = Object.keys(open).filter(function (g) { return flow.groups[g].level >= depth; });
  if (!list.length) return "";
  return '<p class="open">Expanded: ' + list.map(function (g) {
    return '<button type="button" data-fold="' + esc(g) + '" title="fold it again">' + esc(g) + " ×</button>";
  }).join("") + "</p>";
}
function render() {
  var html, what = flow ? "operations" : "maps";
  if (current === null) {
    var total = data.total[convention];
    html = "<h2>Click an exit</h2><p>Click a red exit box (or a button below) to light up the " +
      "feature maps or operations it needs, and read what it costs. Hover any box for its shape and cost." +
      (flow ? " Click a blue box to see the module's operations; the depth buttons fold or expand every box." : "") +
      "</p>" + exitButtons() + '<p>Whole network: <span data-field="total-ops" data-value="' + total.ops +
      '">' + esc(total.ops_text) + '</span>, <span data-field="total-params" data-value="' +
      total.params + '">' + esc(total.params_text) + "</span>.</p>" + openButtons();
  } else {
    var e = current, f = e.figures[convention], d = e.deferred_cost[convention];
    var saves = f.eager.ops ? (100 * (f.eager.ops - f.lazy.ops) / f.eager.ops).toFixed(1) : "0.0";
    var deferred = order.filter(function (n, i) { return marks[i] === "deferred"; });
    var count = function (m) { return marks.filter(function (x) { return x === m; }).length; };
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
      e.maps_computed + "</b> " + what + " computed so far (its own cone: " +
      esc(e.cone_cost[convention].ops_text) + ").</p>" +
      '<p>Lazy defers <b data-field="deferred-maps" data-value="' + e.deferred_maps + '">' +
      e.deferred_maps + "</b> " + what.replace(/s$/, "") + (e.deferred_maps === 1 ? "" : "s") +
      ': <span data-field="deferred-ops" data-value="' + d.ops + '">' + esc(d.ops_text) +
      '</span>, <span data-field="deferred-params" data-value="' + d.params + '">' + esc(d.params_text) +
      "</span>" + (deferred.length ? ', paid later if the image goes on:</p><p class="ids">' +
       deferred.slice(0, 40).map(esc).join(", ") + (deferred.length > 40 ? " …" : "") : "") + "</p>" +
      '<ul class="legend-list">' +
      '<li><span class="swatch selected"></span>exit ' + e.exit + "</li>" +
      '<li><span class="swatch ancestor"></span>what it needs (its ancestors): ' + count("ancestor") +
      (flow ? "; a folded box's bar: the share of its operations needed" : "") + "</li>" +
      '<li><span class="swatch earlier"></span>needed only by earlier exits: ' + count("earlier") + "</li>" +
      '<li><span class="swatch deferred"></span>computed eagerly, deferred by lazy: ' + count("deferred") +
      "</li></ul>" + exitButtons() + openButtons();
  }
  panel.innerHTML = html;
}
function select(e) { current = e; mark(); render(); }

document.querySelectorAll('#conventions input').forEach(function (input) {
  input.addEventListener("change", function () {
    if (input.checked) { convention = input.value; if (flow) relabel(); mark(); render(); }
  });
});
panel.addEventListener("click", function (event) {
  var button = event.target.closest("button[data-exit]");
  if (button) { select(exitsByNumber[button.getAttribute("data-exit")]); showCone(); return; }
  var fold = event.target.closest("button[data-fold]");
  if (fold) {
    var name = fold.getAttribute("data-fold");
    Object.keys(open).forEach(function (g) {
      for (var p = g; p; p = flow.groups[p].parent) if (p === name) { delete open[g]; break; }
    });
    draw(); fitAll(); render();
  }
});
if (flow) {
  document.getElementById("depth").addEventListener("click", function (event) {
    var step = event.target.getAttribute("data-depth");
    if (step) { setDepth(depth + Number(step)); draw(); fitAll(); render(); }
  });
}

// Hover card.
svg.addEventListener("mouseover", function (event) {
  var el = event.target.closest("[data-node]");
  if (!el) return;
  var id = el.getAttribute("data-node"), n = data.nodes[id], lines;
  if (flow && flow.groups[id]) {
    var g = flow.groups[id];
    lines = [esc(flow.groups[id].lines[convention].slice(1, 3).join(", ")),
             esc(g.ops_text[convention]) + ", " + esc(g.params_text), "click to expand"];
    if (el.getAttribute("data-needed")) lines.splice(2, 0, "needed: " + esc(el.getAttribute("data-needed")));
  } else {
    lines = [esc(n.what), esc(n.ops_text[convention]) + ", " + esc(n.params_text)];
  }
  el.classList.add("hover");
  tooltip.innerHTML = "<b>" + esc(id) + "</b><br>" + lines.join("<br>");
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
// Labels smaller than LEGIBLE px on screen: the hint says so and how to read them.
var LEGIBLE = 10, small = document.getElementById("small"), smallest = null;  // px a unit of view.s
function apply() {
  var wh = size();
  svg.setAttribute("viewBox", [view.x, view.y, wh[0] / view.s, wh[1] / view.s].join(" "));
  if (smallest === null) {
    var least = Infinity;
    svg.querySelectorAll("[data-node] text").forEach(function (t) {
      var m = t.getScreenCTM();
      if (m) least = Math.min(least, parseFloat(t.getAttribute("font-size") || getComputedStyle(t).fontSize) * m.a);
    });
    smallest = least / view.s;
  }
  var px = smallest * view.s;
  small.hidden = !(px < LEGIBLE);
  small.textContent = small.hidden ? "" : " · the labels are " + px.toFixed(1) + " px at this size: " +
    "zoom in (+ or the wheel), or choose an exit with its button to zoom to what it needs";
}
function fitAll() {  // the whole picture, centred (a small one at most 1.5 px a unit)
  var wh = size(), s = Math.min(wh[0] / picture.w, wh[1] / picture.h, 1.5);
  view = {s: s, x: picture.x - (wh[0] / s - picture.w) / 2, y: picture.y - (wh[1] / s - picture.h) / 2};
  smallest = null;  // the picture may have been redrawn
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
function centreOn(el) {  // the element in the middle of the view, at least 1 px a unit
  var r = viewport.getBoundingClientRect(), b = el.getBoundingClientRect(), wh = size();
  var cx = view.x + (b.left + b.width / 2 - r.left) / view.s, cy = view.y + (b.top + b.height / 2 - r.top) / view.s;
  view.s = Math.max(view.s, 1);
  view.x = cx - wh[0] / 2 / view.s; view.y = cy - wh[1] / 2 / view.s;
  apply();
}
function showCone() {  // zoom to the chosen exit and what it needs (a button's choice: clicks keep the view)
  var r = viewport.getBoundingClientRect(), box = null;
  svg.querySelectorAll(".selected[data-node], .ancestor[data-node]").forEach(function (el) {
    var b = el.getBoundingClientRect();
    box = box ? {l: Math.min(box.l, b.left), t: Math.min(box.t, b.top), r: Math.max(box.r, b.right),
                 b: Math.max(box.b, b.bottom)} : {l: b.left, t: b.top, r: b.right, b: b.bottom};
  });
  if (!box) return;
  var wh = size(), x = view.x + (box.l - r.left) / view.s, y = view.y + (box.t - r.top) / view.s;
  var w = (box.r - box.l) / view.s + 40, h = (box.b - box.t) / view.s + 40;
  var s = Math.max(Math.min(wh[0] / w, wh[1] / h, 1.5), view.s);
  view = {s: s, x: x - 20 - (wh[0] / s - w) / 2, y: y - 20 - (wh[1] / s - h) / 2};
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
window.addEventListener("resize", fitAll);
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
  var id = el.getAttribute("data-node");
  if (flow && flow.groups[id]) { open[id] = true; tooltip.hidden = true; draw(); fitAll(); render(); return; }
  var n = data.nodes[id];
  if (n && n.exit !== null && n.exit !== undefined) select(exitsByNumber[n.exit]);
});

// Search: a module or operation by name; folded boxes holding it are expanded.
var search = document.getElementById("search"), names = flow ? Object.keys(flow.groups).concat(order) : order;
document.getElementById("names").innerHTML = names.map(function (n) {
  return '<option value="' + esc(n) + '">';
}).join("");
function find(text) {
  var name = names.indexOf(text) >= 0 ? text : names.filter(function (n) { return n.indexOf(text) >= 0; })[0];
  if (!text || !name) { found = null; mark(); return; }
  if (flow) {
    var chain = flow.groups[name] ? [] : flow.node_groups[name].slice();
    for (var g = flow.groups[name] ? flow.groups[name].parent : null; g; g = flow.groups[g].parent) chain.push(g);
    chain.forEach(function (g) { open[g] = true; });
    draw(); fitAll(); render();
  }
  found = name; mark();
  if (elements[name]) centreOn(elements[name]);
}
search.addEventListener("change", function () { find(search.value.trim()); });
search.addEventListener("keydown", function (event) { if (event.key === "Enter") find(search.value.trim()); });

if (flow) { setDepth(flow.depth); draw(); } else {
  Array.prototype.forEach.call(svg.querySelectorAll("[data-node]"), function (el) {
    elements[el.getAttribute("data-node")] = el;
  });
  edgeEls = Array.prototype.slice.call(svg.querySelectorAll("[data-from]"));
}
fitAll();
if (data.exit !== null) { current = exitsByNumber[data.exit]; mark(); }
render();
})();
"""

__all__ = ["FIGURES", "dataflow_page", "interactive_svg", "network_page", "page", "page_data", "write_page"]
