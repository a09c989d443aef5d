"""The interactive layout page: one offline HTML file where clicking an exit shows what it needs.

:func:`page` turns a connectivity graph (one ``networkx.DiGraph`` per convention, as
:func:`msdprof.layout_graph` returns it) and the per-exit costs (:func:`msdprof.exit_costs`, one
:class:`~msdprof.core.exits.ExitCosts` per convention) into a single HTML file: the Graphviz picture of
:mod:`msdprof.render.drawing` as inline SVG, inline CSS and a small inline script; nothing is fetched.
The style sheet and the script are files of the package, ``msdprof/render/page/page.css`` and
``page.js`` (read by ``_page_file``), copied into every page.

Every graph node is an SVG element with ``data-node="<node id>"``.  Clicking an exit gives it the
class ``selected`` and exactly its ancestors (``networkx.ancestors``) the class ``ancestor``; the
maps the exits before it need (and those exits) get ``earlier``, and the maps computed so far that
lazy evaluation defers get ``deferred``.  A side panel shows the exit's eager, lazy and direct
operations and parameters (the :class:`~msdprof.core.exits.ExitCost` figures given), how many of the
maps computed so far it needs, and what lazy defers.  Hovering a node shows its shape, operations
and parameters (an exit: the exit's lazy and eager figures, as the panel); a switch changes the
convention; the picture pans (drag) and zooms (wheel, + / -).  An exit chosen in the panel (a
button each, or past 24 exits a number box and a slider) is brought into view, zoomed to what it
needs as far as its labels stay legible; the panel folds away to a strip.  The search finds boxes
by id or by what the picture shows of them (an MSDNet's ``layer 4 scale 1``: see ``_where``; a
module's type), outlines every match and steps through them.

Everything the page shows is read from the graph's node attributes -- ``kind``, ``macs``,
``params``, ``exit`` on exit nodes, the output shape (``channels``/``height``/``width``, or
``shape``), an MSDNet's ``layer``/``scale``/``block`` -- from ``networkx.ancestors`` and from the
``ExitCost`` figures, never from the form of the node ids, so any early-exit graph with those
attributes gets the same page.  "Computed so far"
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

from . import drawing, formatting
from ..core.counting import CONVENTIONS
from ..core.conventions import check_convention
from ..core.dataflow import Dataflow
from ..core.exits import ExitCosts, costs_of, record_exits
from .formatting import OP_NAMES
from ..analysis.graph import (
    check_depth, dataflow_graph, default_depth, fold_graph, graph_from_plan, layout_graph, uncounted_in,
)
from ..core.plan_costs import plan_costs_all
from ..files.output import check_writable, write_atomic
from ..files.user_model import model_title
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


def _where(d: Mapping[str, Any]) -> str:
    """Where an MSDNet's picture shows a node, in its words (the column's header, the row's scale
    label, the band's block): ``layer 4 · scale 1 · block 1``, ``transition · scale 2 · block 2``,
    ``exit 3 · block 3``; ``""`` for a node without ``layer``/``scale``/``block`` attributes.  The
    page's search finds a box by these words as well as by its id and its shape."""
    if d.get("block") is None:
        return ""
    if d.get("exit") is not None:
        return f"exit {d['exit']} · block {d['block']}"
    column = ("transition" if d.get("kind") == "transition" else "stem" if d.get("layer") == 0
              else f"layer {d['layer']}" if d.get("layer") is not None else None)
    scale = f"scale {d['scale']}" if d.get("scale") is not None else None
    return " · ".join(w for w in (column, scale, f"block {d['block']}") if w)


def _uncounted_text(costs: ExitCosts, i: int) -> str:
    """What exit ``i + 1``'s cumulative figure leaves out, for the panel (``""``: nothing): its
    uncounted work and the note naming what did it."""
    missed = costs[i].uncounted_macs
    if missed == 0:
        return ""
    amount = "an amount no formula gives" if missed is None else _ops_text(missed, costs.convention)
    return f"Not counted here: {amount}.{formatting.unsupported_note(costs)}"


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
            "params": d["params"], "params_text": _params_text(d["params"]),
            **({"where": where} if (where := _where(d)) else {})}
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
            "uncounted": {c: _uncounted_text(costs[c], i) for c in conventions},
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
    held_by: dict[str, list[str]] = {}  # per group, the nodes it holds
    for node, held in graph.nodes(data="groups"):
        for name in held or ():
            held_by.setdefault(name, []).append(node)
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
                "lines": {c: drawing.flow_label(name, {**d, "macs": ops[c][name],
                                                       "uncounted": uncounted_in(graphs[c], held_by[name])},
                                                OP_NAMES[c]) for c in conventions},
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
         title: str = "layout", svg: bytes | str | None = None, exit: int | None = None,
         source: str = "") -> str:
    """The interactive HTML page of one network (see the module docstring).

    ``graphs``, ``costs``: by convention, as :func:`page_data` takes them.  ``svg``: the picture
    of an MSDNet (default: :func:`msdprof.render.drawing.render` of the initial convention's
    graph, which needs Graphviz); a dataflow graph is folded and drawn by the page's script (its
    graph attribute ``depth``, if set, is the depth shown first).  ``title``: the page's heading.
    ``exit``: the exit chosen when the page opens.  ``source``: where the network came from in
    full (a ``--model`` spec with its path), the heading's tooltip.
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
    tooltip = f' title="{html.escape(source)}"' if source else ""
    find = "find a module" if data["flow"] is not None else "find: layer 4 scale 1"
    hint = ("click an exit · click a blue box to expand it · drag to pan · wheel to zoom"
            if data["flow"] is not None else "click an exit · drag to pan · wheel or + to zoom and read the boxes")
    return (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
        f"<title>{html.escape(title)}</title>\n<style>\n{drawing.page_file('page.css')}</style>\n</head>\n<body>\n"
        f"<header><h1{tooltip}>{html.escape(title)}</h1>"
        f'<div id="conventions" role="radiogroup" aria-label="convention">count {switch}</div>'
        '<div id="zoom"><button type="button" data-zoom="in" title="zoom in">+</button>'
        '<button type="button" data-zoom="out" title="zoom out">−</button>'
        '<button type="button" data-zoom="fit" title="show the whole graph">fit</button></div>'
        f'{folding}<div id="find"><input id="search" type="search" placeholder="{find}" aria-label="{find}" '
        'list="names"><datalist id="names"></datalist>'
        '<div id="hits-bar" hidden><span id="hits" role="status"></span>'
        '<button type="button" data-hit="-1" title="previous match (shift+enter)" disabled>‹</button>'
        '<button type="button" data-hit="1" title="next match (enter)" disabled>›</button></div></div>'
        f'<p class="hint">{hint}<span id="small" hidden></span></p>'
        "</header>\n"
        f'<main><div id="viewport">{picture}</div>\n<aside id="panel">'
        '<button type="button" id="panel-toggle" aria-controls="panel-content" aria-expanded="true" '
        'title="hide the panel"><span class="chevron">›</span><span class="label">panel</span></button>'
        '<div id="panel-content"><div id="chooser"></div>'
        '<div id="panel-body" aria-live="polite"></div></div></aside></main>\n'
        '<div id="tooltip" hidden></div>\n'
        f'<script type="application/json" id="msdprof-data">{payload}</script>\n'
        f"<script>{drawing.flow_script()}</script>\n<script>\n{drawing.page_file('page.js')}</script>\n</body>\n</html>\n"
    )


def dataflow_page(model: nn.Module, flow: Dataflow, convention: str | None = None,
                  title: str | None = None, depth: int | None = None, exit: int | None = None,
                  source: str = "") -> str:
    """:func:`page` of any early-exit ``model`` from its dataflow record ``flow``
    (:func:`msdprof.core.exits.record_exits`): its graph and costs in every convention, from that one
    record; ``title`` (default: the model's class name) heads the page, ``source`` (the ``--model``
    spec) is its tooltip; ``depth``: the module depth shown first (default
    :func:`msdprof.analysis.graph.default_depth`); ``exit``: the exit chosen when it opens;
    ``convention``: the one shown first (default ``macs``)."""
    convention = check_convention(convention, msdnet=False)
    graphs = {c: dataflow_graph(flow, c, type(model).__name__) for c in CONVENTIONS}
    if depth is not None:
        for graph in graphs.values():
            graph.graph["depth"] = check_depth(depth)
    costs = {c: costs_of(model, flow, c) for c in CONVENTIONS}
    return page(graphs, costs, convention,
                f"{title or type(model).__name__}: what each exit needs and costs", exit=exit,
                source=source)


def network_page(preset_or_config: Any = None, *, input_size: Any = None, dense: bool = False,
                 convention: str | None = None, name: str | None = None, title: str | None = None,
                 depth: int | None = None, exit: int | None = None, inputs: Any = None,
                 outputs: Any = None, **options: Any) -> str:
    """:func:`page` of a network given as :func:`msdprof.layout_graph` takes it, counted in every
    convention (on the ``meta`` device); ``convention`` is the one shown first, ``exit`` the exit
    chosen when it opens.  ``name`` (default: the preset name, if one is given) is shown in the
    picture's title; ``title`` heads the page (default ``MSDNet <name>``, else the options; for
    any other model, ``name`` is the ``--model`` spec: the heading is its factory's name, the whole
    spec its tooltip, :func:`~msdprof.files.user_model.model_title`).
    ``depth``: for any other model, the module depth shown first (see :func:`dataflow_page`);
    ``inputs`` and ``outputs``: its example inputs, in place of ``input_size``, and how its exits
    are picked out of what it returns (as :func:`msdprof.exit_costs`).  By default the convention
    shown first is ``msdnet`` for an MSDNet, ``macs`` for any other model."""
    check_convention(convention)
    if isinstance(preset_or_config, nn.Module) and not isinstance(preset_or_config, MSDNet):
        model = preset_or_config  # any early-exit model: its dataflow graph, counted on input_size
        title = title or (model_title(name, type(model).__name__) if name else type(model).__name__)
        return dataflow_page(model, record_exits(model, input_size=input_size, inputs=inputs, outputs=outputs), convention, title,
                             depth, exit, source=name or "")
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


__all__ = ["FIGURES", "dataflow_page", "interactive_svg", "network_page", "page", "page_data", "write_page"]
