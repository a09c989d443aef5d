"""The scale x layer connectivity graph of an MSDNet: ``layout_graph``.

Nodes are what the network really computes, read from the layer plan:

- ``"s{scale}/l{layer}"`` (kind ``map``): the feature map at ``scale`` output by network layer
  ``layer`` (1..L); the stem's maps are layer 0;
- ``"t{layer}/s{scale}"`` (kind ``transition``): the map at ``scale`` output by the transition that
  follows ``layer``;
- ``"exit{k}"`` (kind ``classifier``): the logits of exit ``k``.

Node attributes: ``kind``, ``scale``, ``layer``, ``block``, ``channels``, ``height``, ``width``
(pixels; a classifier's logits are ``classes`` x 1 x 1), ``macs`` (operations spent producing the
node, in the graph's ``convention``), ``params`` (parameters of the modules producing it) and, for
classifiers, ``exit``, ``cumulative_macs`` and ``lazy_macs`` (what reaching the exit costs, the
figures of ``exit_costs``: blocks and heads 1..k; the ancestors of exits 1..k).  Every module of
the network is charged to exactly one node (through :meth:`msdnet.MSDNet.named_parts`), so the
node costs add up to ``exit_costs(...).total_macs`` and ``total_params``.

Edges are the dataflow, with attribute ``kind``: ``normal`` (the same-scale conv unit, and the
identity concatenation, from the previous map at that scale), ``down`` (the strided conv unit from
the finer scale), ``transition``, ``classifier`` and, only with ``dense=True``, ``dense`` (the
earlier same-scale maps since the last transition, which the concatenation carries along).  So
``nx.ancestors(graph, "exitK")`` is exactly the set of maps exit K needs.

Graph attributes: ``options`` (:meth:`msdnet.Options.as_dict`), ``input_size`` (height, width in
pixels), ``convention``, ``dense`` and, when known, ``preset``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import networkx as nx

from msdnet import DEFAULT_PRESET, Options, resolve
from msdnet.plan import LayerPlan, build_plan
from msdnet.options import OptionError

from ..core.conventions import check_convention
from ..core.plan_costs import piece_costs

if TYPE_CHECKING:  # torch is imported where a model is: an MSDNet's graph from options needs none
    from torch import nn

    from msdnet import MSDNet
    from msdnet.model import Part

    from ..core.counting import Counts
    from ..core.dataflow import Dataflow, Outputs

EDGE_KINDS = ("normal", "down", "transition", "classifier", "dense")
NODE_KINDS = ("map", "transition", "classifier")


def map_id(scale: int, layer: int) -> str:
    """Node id of the map at ``scale`` output by ``layer`` (0 = the stem): ``"s1/l4"``."""
    return f"s{scale}/l{layer}"


def transition_id(layer: int, scale: int) -> str:
    """Node id of the map at ``scale`` output by the transition after ``layer``: ``"t9/s1"``."""
    return f"t{layer}/s{scale}"


def exit_id(exit: int) -> str:
    """Node id of exit ``exit``'s classifier (1-based): ``"exit3"``."""
    return f"exit{exit}"


def node_id(part: Part) -> str:
    """The graph node a :class:`msdnet.model.Part` (one entry of ``MSDNet.named_parts``) produces."""
    if part.kind == "map":
        return map_id(part.scale, part.layer)
    if part.kind == "transition":
        return transition_id(part.layer, part.scale)
    return exit_id(part.exit)  # type: ignore[arg-type]  # a classifier's exit is set


def count_image(model: MSDNet) -> Counts:
    """Per-module counts of one zero image of the plan's size, on the model's device, in eval mode."""
    import torch

    from ..core.dataflow import count_modules, evaluating

    height, width = model.plan.input_size
    image = torch.zeros(1, 3, height, width, device=next(model.parameters()).device)
    with evaluating(model):
        return count_modules(model, image)


def _node_costs(model: MSDNet, convention: str, counts: Counts | None) -> tuple[dict[str, int], dict[str, int]]:
    """Operations (in ``convention``) and parameters per node id, from ``counts`` of one image
    (counted here when not given)."""
    from ..core.counting import CONVENTIONS

    owners = {name: node_id(part) for name, part in model.named_parts()}
    counts = counts if counts is not None else count_image(model)
    to_number = CONVENTIONS[convention]
    ops = dict.fromkeys(owners.values(), 0)
    params = dict.fromkeys(owners.values(), 0)
    for name, count in counts.modules.items():
        owner = name
        while owner not in owners:  # climb to the named part that holds the module
            if "." not in owner:
                raise RuntimeError(f"module {name} belongs to no part of MSDNet.named_parts()")
            owner = owner.rsplit(".", 1)[0]
        ops[owners[owner]] += to_number(count.ops)
        params[owners[owner]] += count.params
    return ops, params


def graph_from_model(
    model: MSDNet, dense: bool = False, convention: str = "msdnet", counts: Counts | None = None,
) -> nx.DiGraph:
    """The connectivity graph of a built ``model`` (any device; ``meta`` costs nothing).

    Nodes and edges come from ``model.plan``; node costs from one counted forward pass of
    ``model`` (``counts``, when already made by :func:`count_image`), charged to nodes by
    ``model.named_parts()``.  See the module docstring.
    """
    from msdnet.model import check_msdnet

    convention = check_convention(convention)
    check_msdnet(model)
    ops, params = _node_costs(model, convention, counts)
    return _plan_graph(model.plan, dense, convention, ops, params)


def graph_from_plan(plan: LayerPlan, dense: bool = False, convention: str = "msdnet") -> nx.DiGraph:
    """The connectivity graph of the network of ``plan``, no module built: the same graph as
    :func:`graph_from_model` of the model built from ``plan``, node costs from
    :func:`msdprof.core.plan_costs.piece_costs` (one piece per node, in the order nodes are added;
    ``tests/test_graph.py`` checks both ways give equal graphs)."""
    convention = check_convention(convention)
    ops, params = piece_costs(plan, convention)
    return _plan_graph(plan, dense, convention, iter(ops), iter(params))


def _plan_graph(plan: LayerPlan, dense: bool, convention: str, ops: Any, params: Any) -> nx.DiGraph:
    """The graph of ``plan``; node costs from ``ops`` and ``params``: by node id (dicts), or in the
    order nodes are added (iterators)."""

    def cost(of: Any, node: str) -> int:
        return of[node] if isinstance(of, dict) else next(of)

    graph = nx.DiGraph(
        options=plan.options.as_dict(), input_size=plan.input_size, convention=convention, dense=dense,
    )

    def add(node: str, kind: str, scale: int, layer: int, block: int, fmap: Any, **extra: Any) -> None:
        graph.add_node(
            node, kind=kind, scale=scale, layer=layer, block=block, channels=fmap.channels,
            height=fmap.height, width=fmap.width, macs=cost(ops, node), params=cost(params, node), **extra,
        )

    current: dict[int, str] = {}  # scale -> the node holding that scale's latest map
    carried: list[tuple[str, str]] = []  # the dense edges
    since_transition: dict[int, list[str]] = {}  # scale -> maps the concatenation carries
    for fmap in plan.stem:
        node = map_id(fmap.scale, 0)
        add(node, "map", fmap.scale, 0, 1, fmap)
        if fmap.scale > 0:
            graph.add_edge(current[fmap.scale - 1], node, kind="down")
        current[fmap.scale] = node
        since_transition[fmap.scale] = [node]
    heads = {head.layer: head for head in plan.heads}
    for layer in plan.layers:
        made = {}
        for fmap, units in zip(layer.outputs, layer.units):
            node = map_id(fmap.scale, layer.index)
            add(node, "map", fmap.scale, layer.index, layer.block, fmap)
            for unit in units:
                graph.add_edge(current[unit.in_scale], node, kind=unit.kind)
            if dense:  # added last: they change no ancestry, and each node's edges keep their order
                carried.extend((earlier, node) for earlier in since_transition[fmap.scale][:-1])
            made[fmap.scale] = node
        current = made
        for scale, node in made.items():
            since_transition[scale].append(node)
        if layer.transition is not None:
            for fmap in layer.transition.outputs:
                node = transition_id(layer.index, fmap.scale)
                add(node, "transition", fmap.scale, layer.index, layer.block, fmap)
                graph.add_edge(current[fmap.scale], node, kind="transition")
                current[fmap.scale] = node
                since_transition[fmap.scale] = [node]
        head = heads.get(layer.index)
        if head is not None:
            node = exit_id(head.exit)
            graph.add_node(
                node, kind="classifier", scale=plan.nScales - 1, layer=head.layer, block=head.exit,
                channels=head.classes, height=1, width=1, macs=cost(ops, node), params=cost(params, node),
                exit=head.exit,
            )
            graph.add_edge(current[plan.nScales - 1], node, kind="classifier")
    _exit_figures(graph)
    graph.add_edges_from(carried, kind="dense")
    return graph


def _exit_figures(graph: nx.DiGraph) -> None:
    """Set each classifier's ``cumulative_macs`` (blocks 1..k and heads 1..k: everything that ran
    until exit k) and ``lazy_macs`` (the union of the ancestors of exits 1..k and those exits) from
    the node costs of an MSDNet's graph, in one pass each (the union grows exit by exit)."""
    ran: dict[int, int] = {}  # block -> operations of the maps, transitions and classifier of that block
    for _, d in graph.nodes(data=True):
        ran[d["block"]] = ran.get(d["block"], 0) + d["macs"]
    exits = sorted((d["exit"], node) for node, d in graph.nodes(data=True) if d["kind"] == "classifier")
    seen: set[str] = set()
    cumulative = lazy = 0
    done = 0  # blocks summed so far
    for k, node in exits:
        while done < k:
            done += 1
            cumulative += ran.get(done, 0)
        stack = [node]
        while stack:  # what exit k reads that no earlier exit did
            at = stack.pop()
            if at not in seen:
                seen.add(at)
                lazy += graph.nodes[at]["macs"]
                stack.extend(graph.predecessors(at))
        graph.nodes[node].update(cumulative_macs=cumulative, lazy_macs=lazy)


def dataflow_graph(flow: Dataflow, convention: str | None = None, model: str | None = None) -> nx.DiGraph:
    """The dataflow graph of a recorded pass of any early-exit model (:func:`msdprof.core.dataflow.record`
    with its exits selected), as a ``networkx.DiGraph``.

    Nodes are the module calls, the functional ops that cost something in some convention, read a
    parameter or have no rule, and the free functional ops that join the results of two or more
    nodes (a residual ``+``, a ``cat``: the junctions), by :attr:`msdprof.core.dataflow.Op.name`
    (``"layer1.0.conv1"``, ``"head#2"``, ``"layer1.0/add"``); the other free functional ops (``view``,
    ``flatten``, a ``relu`` no convention counts ...) are left out and their input joined to their
    readers, so ancestry is as in the full record and an edge is a tensor read (a residual stream
    is a chain of junctions, not an edge from every block to every later one).  Attributes:
    ``kind`` (``module`` or ``function``), ``type``, ``module`` (the module called, or the one
    whose forward called the function), ``shape`` (output, batch included),
    ``macs`` (in ``convention``), ``params`` (each parameter charged to the node that reads it
    first, so node costs add up to the pass's totals), ``order`` (execution order), ``uncounted``
    (the work it ran that ``convention`` did not count, by torch's formulas, in its unit; ``None``:
    unknown, a kernel no formula measures; 0 for nearly every node).  One node
    ``"exit{k}"`` per output (kind ``exit``, ``exit`` = k, ``name`` = the output's name, no cost of
    its own; ``cumulative_macs`` and ``lazy_macs``: the exit's cumulative and lazy figures of
    :func:`msdprof.exit_costs`, in ``convention``) follows its producer (nodes are added in
    execution order, each exit right after its producer), so ``nx.ancestors(graph, "exit2")`` is
    everything output 2 reads.
    Each node also has ``groups``: the module calls that hold it, outermost first (``["layer1",
    "layer1.0"]`` for ``"layer1.0.conv1"``; a module's later calls are ``"name#2"`` and so on; the
    model itself is not one), which :func:`fold_graph` folds; an exit's ``groups`` is empty.
    Graph attributes: ``dataflow`` (True), ``convention``, ``model`` (the name given, the model's
    class name), ``input_shapes``, ``group_types`` (each group's module class name) and
    ``max_depth`` (the deepest nesting of groups: folding deeper shows every operation).
    """
    from ..core.counting import CONVENTIONS
    from ..core.exits import costs_from_dataflow, missed_work

    convention = check_convention(convention, msdnet=False)
    to_number = CONVENTIONS[convention]
    firsts = flow.first_reads()
    groups, group_types = _groups(flow)
    graph = nx.DiGraph(dataflow=True, convention=convention, model=model,
                       input_shapes=[list(s) for s in flow.input_shapes], group_types=group_types,
                       max_depth=max((len(g) for g in groups), default=0))
    figures = costs_from_dataflow(flow, convention)
    missed = missed_work(flow, convention)
    sources: list[frozenset[str]] = []  # per op, the nodes its result comes from
    exits_of: dict[int, list[int]] = {}
    for k, producer in enumerate(flow.outputs, start=1):
        exits_of.setdefault(producer, []).append(k)
    junctions = []
    for op, first in zip(flow.ops, firsts):
        read = {sources[i] for i in op.inputs if sources[i]}
        costly = any(f(op.count) for f in CONVENTIONS.values())
        joins = op.kind == "function" and len(read) > 1
        if op.kind == "module" or costly or first or op.unknown_functions or joins:
            graph.add_node(
                op.name, kind=op.kind, type=op.type, module=op.module,
                shape=list(op.shape) if op.shape is not None else None, macs=to_number(op.count),
                params=sum(flow.param_sizes[p] for p in first), order=op.index, groups=groups[op.index],
                uncounted=missed.get(op.index, 0),
            )
            graph.add_edges_from((source, op.name) for source in sorted(frozenset().union(*read)))
            sources.append(frozenset((op.name,)))
            if joins and not (costly or first or op.unknown_functions):
                junctions.append(op.name)
        else:
            sources.append(frozenset().union(*read))
        for k in exits_of.get(op.index, ()):  # exit nodes follow their producers, in order
            node = exit_id(k)
            graph.add_node(node, kind="exit", exit=k, name=flow.exit_names[k - 1], macs=0, params=0,
                           shape=list(op.shape or ()), order=op.index, groups=[],
                           cumulative_macs=figures[k - 1].macs, lazy_macs=figures[k - 1].lazy_macs)
            graph.add_edges_from((source, node) for source in sorted(sources[op.index]))
    for node in reversed(junctions):  # a junction nothing reads (a sum the model drops) is left out
        if not graph.out_degree(node):
            graph.remove_node(node)
    return graph


def _groups(flow: Dataflow) -> tuple[list[list[str]], dict[str, str]]:
    """Per operation of ``flow``, the module calls holding it (outermost first), named by module
    (``"#2"`` and so on appended for a module's later calls); and each such call's class name."""
    made = [(call.first, -call.end, -i, call) for i, call in enumerate(flow.calls)
            if call.module and call.end > call.first]  # calls are recorded as they end: outer after inner
    made.sort(key=lambda item: item[:3])
    seen: dict[str, int] = {}
    types: dict[str, str] = {}
    stack: list[tuple[str, int]] = []  # (group id, end)
    result: list[list[str]] = []
    at = 0
    for index in range(len(flow.ops)):
        while stack and stack[-1][1] <= index:
            stack.pop()
        while at < len(made) and made[at][0] <= index:
            call = made[at][3]
            at += 1
            seen[call.module] = seen.get(call.module, 0) + 1
            name = call.module if seen[call.module] == 1 else f"{call.module}#{seen[call.module]}"
            types[name] = call.type
            while stack and stack[-1][1] <= call.first:
                stack.pop()
            stack.append((name, call.end))
        result.append([name for name, _ in stack])
    return result, types


#: The most boxes (exits not counted) :func:`default_depth` lets a folded graph show.
MOST_BOXES = 30


def _box_of(d: dict[str, Any], node: str, depth: int) -> str:
    groups = d.get("groups") or ()
    return groups[depth - 1] if len(groups) >= depth else node


def boxes_at(graph: nx.DiGraph, depth: int) -> int:
    """How many boxes (exits not counted) :func:`fold_graph` of ``graph`` at ``depth`` shows."""
    return len({_box_of(d, n, depth) for n, d in graph.nodes(data=True) if d["kind"] != "exit"})


def default_depth(graph: nx.DiGraph, most: int = MOST_BOXES) -> int:
    """The deepest depth at which :func:`fold_graph` of a :func:`dataflow_graph` shows at most
    ``most`` boxes (exits not counted); 1 when even the top-level modules are more."""
    for depth in range(graph.graph.get("max_depth", 0) + 1, 0, -1):
        if boxes_at(graph, depth) <= most:
            return depth
    return 1


def check_depth(depth: Any) -> int:
    """``depth`` if it is a whole number of at least 1, else :class:`OptionError` naming ``--depth``."""
    if isinstance(depth, bool) or not isinstance(depth, int) or depth < 1:
        raise OptionError("depth", depth, "must be a whole number of at least 1 (1 = the top-level modules)")
    return depth


def fold_graph(graph: nx.DiGraph, depth: int) -> nx.DiGraph:
    """A :func:`dataflow_graph` with every group (module call) ``depth`` levels down folded into one
    box: ``depth`` 1 shows the model's top-level modules, a depth past ``max_depth`` every operation.

    A box (kind ``group``, id the group's name) has ``type`` (the module's class name), ``module``,
    ``groups`` (the groups holding it), ``members`` (its operations), ``macs`` and ``params`` (their
    sums), ``order`` (its first operation's) and ``shape`` (the output of its last operation read
    outside it).  Operations and exits not inside a folded group are kept as they are (with
    ``members`` 1).  An edge joins two boxes when an edge joins something inside each, so every box
    holding an operation an exit needs is an ancestor of the exit (a box feeding only operations of
    a folded box that the exit does not need is one too: folding can only add ancestors).  Nodes are in
    execution order, each exit right after its producer's box.  Graph attributes: those of
    ``graph``, ``depth`` and ``folded`` (True).
    """
    check_depth(depth)
    box = {n: _box_of(d, n, depth) for n, d in graph.nodes(data=True)}
    members: dict[str, list[str]] = {}
    for node in graph:  # graph order is execution order
        members.setdefault(box[node], []).append(node)
    folded = nx.DiGraph(**graph.graph)
    folded.graph.update(depth=depth, folded=True)
    types = graph.graph.get("group_types", {})
    for name, inside in members.items():
        first = graph.nodes[inside[0]]
        if len(inside) == 1 and name == inside[0]:
            folded.add_node(name, **first, members=1)
            continue
        leaving = [n for n in inside if any(box[s] != name for s in graph.successors(n))]
        last = graph.nodes[(leaving or inside)[-1]]
        level = first["groups"].index(name)
        folded.add_node(
            name, kind="group", type=types.get(name, ""), module=name.split("#")[0],
            shape=last.get("shape"), macs=sum(graph.nodes[n]["macs"] for n in inside),
            params=sum(graph.nodes[n]["params"] for n in inside), order=first["order"],
            groups=first["groups"][:level], members=len(inside), uncounted=uncounted_in(graph, inside),
        )
    folded.add_edges_from((box[a], box[b]) for a, b in graph.edges if box[a] != box[b])
    return folded


def uncounted_in(graph: nx.DiGraph, nodes: list[str]) -> int | None:
    """What the ``nodes`` ran that the graph's convention did not count (``None``: unknown)."""
    found = [graph.nodes[n].get("uncounted", 0) for n in nodes]
    return None if None in found else sum(found)


def layout_graph(
    preset_or_config: str | Options | nn.Module | None = None,
    *,
    input_size: Any = None,
    dense: bool = False,
    convention: str | None = None,
    inputs: Any = None,
    outputs: Outputs = None,
    depth: int | None = None,
    **options: Any,
) -> nx.DiGraph:
    """The scale x layer connectivity graph of an MSDNet, as a ``networkx.DiGraph``; for any other
    early-exit ``nn.Module``, its :func:`dataflow_graph` (``input_size``, ``inputs`` and
    ``outputs`` as for :func:`msdprof.exit_costs`; ``dense`` does not apply).

    ``preset_or_config``: a preset name, an :class:`msdnet.Options`, a built ``MSDNet`` (taken as
    built) or ``None``; keyword ``options`` are laid over it (see :func:`msdnet.resolve`).
    ``input_size``: side or (height, width) in pixels (default 32 for CIFAR, 224 for ImageNet).
    ``dense``: also add the ``dense`` edges (quadratic in the layers per block).
    ``convention``: the unit of the nodes' ``macs`` (``msdnet``, ``macs`` or ``flops``; by default
    ``msdnet`` for an MSDNet, ``macs`` for any other model).
    ``depth``: for any other model, :func:`fold_graph` to that depth (``None``: every operation;
    :func:`default_depth` picks one that reads); an MSDNet keeps its scale x layer grid.
    The model is built on the ``meta`` device: nothing is allocated.
    """
    built = not (preset_or_config is None or isinstance(preset_or_config, (str, Options)))
    check_convention(convention)
    if depth is not None:
        check_depth(depth)
    if built:  # torch is imported for a model only: an MSDNet's graph from options needs none
        from torch import nn

        from msdnet import MSDNet
        from msdnet.model import model_from

        from ..core.dataflow import record_network

        if isinstance(preset_or_config, nn.Module) and not isinstance(preset_or_config, MSDNet):
            if options or dense:
                raise OptionError("model", type(preset_or_config).__name__,
                                  "is drawn as built: pass no MSDNet options (nor dense) with a model")
            flow = record_network(preset_or_config, input_size=input_size, inputs=inputs, outputs=outputs)
            graph = dataflow_graph(flow, check_convention(convention, msdnet=False), type(preset_or_config).__name__)
            return graph if depth is None else fold_graph(graph, depth)
    if depth is not None:
        raise OptionError("depth", depth, "is for a model's dataflow graph: an MSDNet is drawn as its "
                                          "scale x layer grid")
    convention = check_convention(convention)  # an MSDNet's: the authors' counter by default
    if built and isinstance(preset_or_config, MSDNet):
        return graph_from_model(model_from(preset_or_config, input_size, use="drawn", **options), dense, convention)
    # options (anything else is refused by resolve): the plan alone gives the graph and its costs
    graph = graph_from_plan(build_plan(resolve(preset_or_config, **options), input_size), dense, convention)
    if isinstance(preset_or_config, str) or (preset_or_config is None and not options):
        graph.graph["preset"] = preset_or_config or DEFAULT_PRESET
    return graph


__all__ = [
    "EDGE_KINDS", "MOST_BOXES", "NODE_KINDS", "boxes_at", "check_depth", "dataflow_graph", "default_depth", "exit_id",
    "fold_graph", "graph_from_model", "graph_from_plan", "layout_graph", "map_id", "node_id", "transition_id", "uncounted_in",
]
