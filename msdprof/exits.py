"""Per-exit cost of an MSDNet: ``exit_costs``.

The network is run once (on the ``meta`` device by default: no weight is allocated) under the
hooks of :mod:`msdprof.counting`; each module's count is attributed to the block or the head it
belongs to, and the per-exit figures are assembled the way the authors' counter reads them
(SPEC section 2): exit k's cumulative cost holds blocks 1..k and heads 1..k.  The lazy cost
reads the same counts through the connectivity graph (:mod:`msdprof.graph`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Iterator, Sequence

import networkx as nx
import torch
from torch import nn

from msdnet import MSDNet, Options
from msdnet.model import check_msdnet
from msdnet.presets import model_from

from .counting import CONVENTIONS, Counts, check_convention, count_image
from .graph import exit_id, graph_from_model


@dataclass(frozen=True)
class ExitCost:
    """The cost of reaching exit ``exit`` (1-based), for one image.

    Operation counts (``*_macs``) are in the table's convention (see :class:`ExitCosts`); ``params``
    are parameters (weights and biases, counted once each).

    - ``macs``/``params``: cumulative, as the authors count them: blocks 1..k and heads 1..k — what
      early-exit inference pays to reach exit k.
    - ``block_macs``/``block_params``: block k alone.
    - ``head_macs``/``head_params``: classifier k alone.
    - ``direct_macs``/``direct_params``: blocks 1..k and head k only — the cost when exit k is
      chosen in advance.
    - ``lazy_macs``/``lazy_params``: cumulative with lazy evaluation: heads 1..k and only the
      feature maps they read, directly or through other maps (their ancestors in
      :func:`msdprof.layout_graph`); the finer-scale maps no exit up to k reads are deferred and
      paid by a later exit, so ``lazy_macs <= macs`` and going on from exit k to k+1 costs
      ``lazy_macs(k+1) - lazy_macs(k)``.  The authors' counter has no lazy figure.
    - ``layer``: the network layer (1..L) whose coarsest map exit k reads.
    """

    exit: int
    layer: int
    macs: int
    params: int
    block_macs: int
    block_params: int
    head_macs: int
    head_params: int
    direct_macs: int
    direct_params: int
    lazy_macs: int
    lazy_params: int


@dataclass(frozen=True)
class ExitCosts(Sequence[ExitCost]):
    """The per-exit costs of one network: a sequence of :class:`ExitCost`, exit 1 first.

    ``convention`` names the unit of every ``*_macs`` figure (``msdnet``, ``macs`` or ``flops``);
    ``input_size`` is the image's (height, width) in pixels; ``unsupported`` lists module types that
    ran with no counting rule (type name, calls) — empty for an MSDNet.
    """

    options: Options
    convention: str
    input_size: tuple[int, int]
    exits: tuple[ExitCost, ...]
    unsupported: tuple[tuple[str, int], ...] = ()

    def __len__(self) -> int:
        return len(self.exits)

    def __getitem__(self, index):  # type: ignore[override]
        return self.exits[index]

    def __iter__(self) -> Iterator[ExitCost]:
        return iter(self.exits)

    @property
    def total_macs(self) -> int:
        """The whole network, every block and head (= the last exit's cumulative count)."""
        return self.exits[-1].macs

    @property
    def total_params(self) -> int:
        """Parameters of the whole network."""
        return self.exits[-1].params

    def as_dict(self) -> dict[str, Any]:
        """The JSON shape of ``msdprof count --format json``."""
        return {
            "options": self.options.as_dict(),
            "convention": self.convention,
            "input": [3, *self.input_size],
            "exits": [asdict(e) for e in self.exits],
            "total": {"macs": self.total_macs, "params": self.total_params},
            "unsupported": dict(self.unsupported),
        }


def _block_prefix(k: int) -> str:
    return f"blocks.{k - 1}."


def _head_prefix(k: int) -> str:
    return f"classifiers.{k - 1}."


def lazy_costs(graph: nx.DiGraph) -> list[tuple[int, int]]:
    """(operations, parameters) per exit k with lazy evaluation: the nodes of ``graph`` (from
    :func:`msdprof.graph.graph_from_model`) that exits 1..k need — their classifiers and
    ancestors — summed, in the graph's convention."""
    needed: set[str] = set()
    ops = params = 0
    costs = []
    exits = sorted(d["exit"] for _, d in graph.nodes(data=True) if d["kind"] == "classifier")
    for k in exits:
        head = exit_id(k)
        new = (nx.ancestors(graph, head) | {head}) - needed  # what exit k adds to exits 1..k-1
        needed |= new
        ops += sum(graph.nodes[n]["macs"] for n in new)
        params += sum(graph.nodes[n]["params"] for n in new)
        costs.append((ops, params))
    return costs


def attribute(model: MSDNet, counts: Counts, convention: str) -> tuple[ExitCost, ...]:
    """Per-exit costs from per-module counts of ``model`` (blocks.i / classifiers.i names)."""
    plan = model.plan
    lazy = lazy_costs(graph_from_model(model, convention=convention, counts=counts))
    blocks = [counts.total(convention, _block_prefix(k)) for k in range(1, model.nBlocks + 1)]
    heads = [counts.total(convention, _head_prefix(k)) for k in range(1, model.nBlocks + 1)]
    block_params = [counts.params(_block_prefix(k)) for k in range(1, model.nBlocks + 1)]
    head_params = [counts.params(_head_prefix(k)) for k in range(1, model.nBlocks + 1)]
    exits = []
    for k in range(1, model.nBlocks + 1):
        i = k - 1
        exits.append(ExitCost(
            exit=k,
            layer=plan.exit_layers[i],
            macs=sum(blocks[:k]) + sum(heads[:k]),
            params=sum(block_params[:k]) + sum(head_params[:k]),
            block_macs=blocks[i],
            block_params=block_params[i],
            head_macs=heads[i],
            head_params=head_params[i],
            direct_macs=sum(blocks[:k]) + heads[i],
            direct_params=sum(block_params[:k]) + head_params[i],
            lazy_macs=lazy[i][0],
            lazy_params=lazy[i][1],
        ))
    return tuple(exits)


def count_model(model: MSDNet, convention: str = "msdnet") -> ExitCosts:
    """Per-exit costs of a built ``model`` (any device; ``meta`` costs nothing), for one image."""
    check_convention(convention)
    check_msdnet(model)
    counts = count_image(model, model.plan.input_size)
    return ExitCosts(
        model.options, convention, model.plan.input_size, attribute(model, counts, convention),
        tuple(sorted(counts.unsupported.items())),
    )


def exit_costs(
    preset_or_config: str | Options | nn.Module | None = None,
    *,
    convention: str = "msdnet",
    input_size: Any = None,
    device: str | torch.device = "meta",
    **options: Any,
) -> ExitCosts:
    """What each exit of an MSDNet costs, for one image.

    ``preset_or_config``: a preset name (``"cifar10-anytime"``), an :class:`msdnet.Options`, an
    ``MSDNet`` instance (counted as built, on its own device), or ``None``; keyword ``options``
    (``nBlocks=7, stepmode="lin_grow"``) are laid over it (see :func:`msdnet.resolve`).
    ``convention``: ``msdnet`` (default), ``macs`` or ``flops`` (:data:`CONVENTIONS`).
    ``input_size``: side or (height, width) in pixels; default 32 (CIFAR) or 224 (ImageNet).
    ``device``: where the model is built to be counted; ``meta`` allocates nothing.
    """
    check_convention(convention)
    model = model_from(preset_or_config, input_size, device, use="counted", **options)
    return count_model(model, convention)


__all__ = ["CONVENTIONS", "ExitCost", "ExitCosts", "count_model", "exit_costs", "lazy_costs"]
