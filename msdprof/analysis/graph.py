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
classifiers, ``exit``.  Every module of the network is charged to exactly one node (through
:meth:`msdnet.MSDNet.named_parts`), so the node costs add up to ``exit_costs(...).total_macs`` and
``total_params``.

Edges are the dataflow, with attribute ``kind``: ``normal`` (the same-scale conv unit, and the
identity concatenation, from the previous map at that scale), ``down`` (the strided conv unit from
the finer scale), ``transition``, ``classifier`` and, only with ``dense=True``, ``dense`` (the
earlier same-scale maps since the last transition, which the concatenation carries along).  So
``nx.ancestors(graph, "exitK")`` is exactly the set of maps exit K needs.

Graph attributes: ``options`` (:meth:`msdnet.Options.as_dict`), ``input_size`` (height, width in
pixels), ``convention``, ``dense`` and, when known, ``preset``.
"""

from __future__ import annotations

from typing import Any, Callable

import networkx as nx
import torch
from torch import nn

from msdnet import DEFAULT_PRESET, MSDNet, Options
from msdnet.options import OptionError
from msdnet.model import Part, check_msdnet
from msdnet.model import model_from

from ..core.counting import CONVENTIONS, Counts, check_convention
from ..core.dataflow import Dataflow, Outputs, count_modules, evaluating, record_network

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
    height, width = model.plan.input_size
    image = torch.zeros(1, 3, height, width, device=next(model.parameters()).device)
    with evaluating(model):
        return count_modules(model, image)


def _node_costs(model: MSDNet, convention: str, counts: Counts | None) -> tuple[dict[str, int], dict[str, int]]:
    """Operations (in ``convention``) and parameters per node id, from ``counts`` of one image
    (counted here when not given)."""
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
    check_convention(convention)
    check_msdnet(model)
    plan = model.plan
    ops, params = _node_costs(model, convention, counts)
    graph = nx.DiGraph(
        options=plan.options.as_dict(), input_size=plan.input_size, convention=convention, dense=dense,
    )

    def add(node: str, kind: str, scale: int, layer: int, block: int, fmap: Any, **extra: Any) -> None:
        graph.add_node(
            node, kind=kind, scale=scale, layer=layer, block=block, channels=fmap.channels,
            height=fmap.height, width=fmap.width, macs=ops[node], params=params[node], **extra,
        )

    current: dict[int, str] = {}  # scale -> the node holding that scale's latest map
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
            if dense:
                for earlier in since_transition[fmap.scale][:-1]:
                    graph.add_edge(earlier, node, kind="dense")
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
                channels=head.classes, height=1, width=1, macs=ops[node], params=params[node],
                exit=head.exit,
            )
            graph.add_edge(current[plan.nScales - 1], node, kind="classifier")
    return graph


def dataflow_graph(flow: Dataflow, convention: str = "msdnet", model: str | None = None) -> nx.DiGraph:
    """The dataflow graph of a recorded pass of any early-exit model (:func:`msdprof.core.dataflow.record`
    with its exits selected), as a ``networkx.DiGraph``.

    Nodes are the module calls, and the functional ops that cost something in some convention,
    read a parameter or have no rule, by :attr:`msdprof.core.dataflow.Op.name` (``"layer1.0.conv1"``,
    ``"head#2"``, ``"layer1.0/add"``); free functional ops between them (``cat``, ``view``, ``+``
    ...) are left out and their inputs joined to their readers, so ancestry is as in the full
    record.  Attributes: ``kind`` (``module`` or ``function``), ``type``, ``module`` (the module
    called, or the one whose forward called the function), ``shape`` (output, batch included),
    ``macs`` (in ``convention``), ``params`` (each parameter charged to the node that reads it
    first, so node costs add up to the pass's totals), ``order`` (execution order).  One node
    ``"exit{k}"`` per output (kind ``exit``, ``exit`` = k, ``name`` = the output's name, no cost)
    follows its producer (nodes are added in execution order, each exit right after its producer),
    so ``nx.ancestors(graph, "exit2")`` is everything output 2 reads.
    Graph attributes: ``dataflow`` (True), ``convention``, ``model`` (the name given, the model's
    class name), ``input_shapes``.
    """
    check_convention(convention)
    to_number = CONVENTIONS[convention]
    firsts = flow.first_reads()
    graph = nx.DiGraph(dataflow=True, convention=convention, model=model,
                       input_shapes=[list(s) for s in flow.input_shapes])
    sources: list[set[str]] = []  # per op, the kept nodes its result comes from
    exits_of: dict[int, list[int]] = {}
    for k, producer in enumerate(flow.outputs, start=1):
        exits_of.setdefault(producer, []).append(k)
    for op, first in zip(flow.ops, firsts):
        reads = set().union(*(sources[i] for i in op.inputs)) if op.inputs else set()
        costly = any(f(op.count) for f in CONVENTIONS.values())
        if op.kind == "module" or costly or first or op.unknown_functions:
            graph.add_node(
                op.name, kind=op.kind, type=op.type, module=op.module,
                shape=list(op.shape) if op.shape is not None else None, macs=to_number(op.count),
                params=sum(flow.param_sizes[p] for p in first), order=op.index,
            )
            graph.add_edges_from((source, op.name) for source in sorted(reads))
            sources.append({op.name})
        else:
            sources.append(reads)
        for k in exits_of.get(op.index, ()):  # exit nodes follow their producers, in order
            node = exit_id(k)
            graph.add_node(node, kind="exit", exit=k, name=flow.exit_names[k - 1], macs=0, params=0,
                           shape=list(op.shape or ()), order=op.index)
            graph.add_edges_from((source, node) for source in sorted(sources[op.index]))
    return graph


def layout_graph(
    preset_or_config: str | Options | nn.Module | None = None,
    *,
    input_size: Any = None,
    dense: bool = False,
    convention: str = "msdnet",
    inputs: Any = None,
    outputs: Outputs = None,
    **options: Any,
) -> nx.DiGraph:
    """The scale x layer connectivity graph of an MSDNet, as a ``networkx.DiGraph``; for any other
    early-exit ``nn.Module``, its :func:`dataflow_graph` (``input_size``, ``inputs`` and
    ``outputs`` as for :func:`msdprof.exit_costs`; ``dense`` does not apply).

    ``preset_or_config``: a preset name, an :class:`msdnet.Options`, a built ``MSDNet`` (taken as
    built) or ``None``; keyword ``options`` are laid over it (see :func:`msdnet.resolve`).
    ``input_size``: side or (height, width) in pixels (default 32 for CIFAR, 224 for ImageNet).
    ``dense``: also add the ``dense`` edges (quadratic in the layers per block).
    ``convention``: the unit of the nodes' ``macs`` (``msdnet``, ``macs`` or ``flops``).
    The model is built on the ``meta`` device: nothing is allocated.
    """
    check_convention(convention)
    if isinstance(preset_or_config, nn.Module) and not isinstance(preset_or_config, MSDNet):
        if options or dense:
            raise OptionError("model", type(preset_or_config).__name__,
                              "is drawn as built: pass no MSDNet options (nor dense) with a model")
        flow = record_network(preset_or_config, input_size=input_size, inputs=inputs, outputs=outputs)
        return dataflow_graph(flow, convention, type(preset_or_config).__name__)
    model = model_from(preset_or_config, input_size, use="drawn", **options)
    graph = graph_from_model(model, dense, convention)
    if isinstance(preset_or_config, str) or (preset_or_config is None and not options):
        graph.graph["preset"] = preset_or_config or DEFAULT_PRESET
    return graph


__all__ = [
    "EDGE_KINDS", "NODE_KINDS", "dataflow_graph", "exit_id", "graph_from_model", "layout_graph", "map_id", "node_id",
    "transition_id",
]
