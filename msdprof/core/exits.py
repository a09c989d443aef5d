"""Per-exit cost of an early-exit network: ``exit_costs``.

The network runs once (an MSDNet msdprof builds on the ``meta`` device by default: no weight is
allocated) with its dataflow recorded (:mod:`msdprof.core.dataflow`): every operation, its count, what
it read.  The per-exit figures are read off that one record by the definitions of SPEC section 4,
the same for an ``msdnet.MSDNet`` and for any ``nn.Module`` that returns one output per exit:

- eager (``macs``/``params``): everything that ran until outputs 1..k were complete, in execution
  order -- what the authors' op counter holds when head k finishes;
- lazy: the union of the dataflow ancestors of outputs 1..k;
- direct: eager less the heads of exits 1..k-1 (for an MSDNet blocks 1..k and head k, SPEC
  section 2: the cost when exit k is chosen in advance and the model runs as written);
- head k: the outermost submodule call that produced output k and whose work reaches output k
  and no other output (an MSDNet's ``classifiers[k-1]``; the producing operation alone when no
  such call exists); block k: the rest of what ran after output k-1 and until output k.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Iterator, Sequence

import torch
from torch import nn

from msdnet import MSDNet, Options, build_model
from msdnet.options import OptionError
from msdnet.model import check_msdnet
from msdnet.model import model_from

from .counting import CONVENTIONS
from .conventions import check_convention
from .units import shapes_text
from .dataflow import (
    Dataflow, Inputs, InputSpec, Outputs, check_forward_bytes, evaluating, record, record_network, uncounted,
)


#: An exit's lazy count below this fraction of its eager one is worth a word under the table
#: (:attr:`ExitCosts.lazy_gap`): no preset MSDNet comes near (its lowest, imagenet-step4's exit 1,
#: is 0.75); IMTA's MSDNet, computing later exits' maps first, is at 0.19.
LAZY_GAP = 0.5


@dataclass(frozen=True)
class ExitCost:
    """The cost of reaching exit ``exit`` (1-based), for one image (an MSDNet) or for the inputs
    given (any other model).

    Operation counts (``*_macs``) are in the table's convention (see :class:`ExitCosts`); ``params``
    are parameters (weights and biases, each counted once).

    - ``macs``/``params``: cumulative (eager), as the authors count them: everything that ran until
      outputs 1..k were complete -- for an MSDNet blocks 1..k and heads 1..k, what early-exit
      inference pays to reach exit k.
    - ``block_macs``/``block_params``: block k alone (what ran after output k-1, less head k).
    - ``head_macs``/``head_params``: head (classifier) k alone.
    - ``direct_macs``/``direct_params``: cumulative less the heads of exits 1..k-1 -- for an MSDNet
      blocks 1..k and head k, the cost when exit k is chosen in advance.
    - ``lazy_macs``/``lazy_params``: cumulative with lazy evaluation: the union of the ancestors of
      outputs 1..k (for an MSDNet, heads 1..k and only the feature maps they read); what no exit up
      to k reads is deferred and paid by a later exit, so ``lazy_macs <= macs`` and going on from
      exit k to k+1 costs ``lazy_macs(k+1) - lazy_macs(k)``.  The authors' counter has no lazy figure.
    - ``layer``: for an MSDNet, the network layer (1..L) whose coarsest map exit k reads; ``None``
      for other models.
    """

    exit: int
    layer: int | None
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
class Unsupported:
    """Operations that ran work their convention did not count: a module ``type`` with no rule (the
    ``msdnet`` convention), or a module or functional op whose ATen kernels did multiply-adds its
    rule did not count (or that has no rule), in any convention; how many ``calls``, and the
    ``exits`` (1-based) whose outputs they feed.  What was not counted is 0 in the figures, and
    always reported."""

    type: str
    calls: int
    exits: tuple[int, ...]


@dataclass(frozen=True)
class ExitCosts(Sequence[ExitCost]):
    """The per-exit costs of one network: a sequence of :class:`ExitCost`, exit 1 first.

    ``convention`` names the unit of every ``*_macs`` figure (``msdnet``, ``macs`` or ``flops``);
    ``unsupported`` lists what ran with no counting rule (empty for an MSDNet).  For an MSDNet,
    ``options`` are its options and ``input_size`` the image's (height, width) in pixels; for any
    other model both are ``None``.  ``model``: the model's class name; ``input_shapes``: the shapes
    of the tensors it was given (batch included), ``input_names`` their keyword names (``""``:
    positional) and ``input_dtypes`` their dtypes (:attr:`inputs_text` says all three; the two are
    empty for an MSDNet, given one float32 image); ``exit_names``: the exits' names (a returned
    dict's keys, else ``1``, ``2`` ...); ``wrapper``: what the model given wraps its module in
    (``torch.compile``, ``DataParallel``, ``DistributedDataParallel``; ``""``: none) -- the module
    inside, named by ``model``, is what was counted.
    """

    options: Options | None
    convention: str
    input_size: tuple[int, int] | None
    exits: tuple[ExitCost, ...]
    unsupported: tuple[Unsupported, ...] = ()
    model: str = "MSDNet"
    input_shapes: tuple[tuple[int, ...], ...] = ()
    exit_names: tuple[str, ...] = ()
    wrapper: str = ""
    input_names: tuple[str, ...] = ()
    input_dtypes: tuple[str, ...] = ()

    @property
    def inputs_text(self) -> str:
        """``1x3x32x32``, ``1x16:int64, mask=1x16``: the inputs' shapes, each with its keyword name
        and its dtype (float32 unsaid)."""
        return shapes_text(self.input_shapes, self.input_names, self.input_dtypes)

    def __len__(self) -> int:
        return len(self.exits)

    @property
    def named_exits(self) -> bool:
        """Whether the exits have names of their own (a returned dict's keys), not ``1``, ``2`` ..."""
        return bool(self.exit_names) and self.exit_names != tuple(str(k) for k in range(1, len(self) + 1))

    def __getitem__(self, index):  # type: ignore[override]
        return self.exits[index]

    def __iter__(self) -> Iterator[ExitCost]:
        return iter(self.exits)

    @property
    def lazy_gap(self) -> ExitCost | None:
        """The first exit before the last whose lazy count is below :data:`LAZY_GAP` of its eager
        one, else ``None``: the model's forward computes work for later exits before output k is
        complete (IMTA's MSDNet, a Hugging Face model running every layer before its heads), so
        leaving at exit k pays the lazy figure only if the forward stops after computing what
        exit k reads."""
        return next((e for e in self.exits[:-1] if e.lazy_macs < LAZY_GAP * e.macs), None)

    @property
    def total_macs(self) -> int:
        """Everything that ran until the last output was complete (= the last exit's cumulative
        count): for an MSDNet, every block and head."""
        return self.exits[-1].macs

    @property
    def total_params(self) -> int:
        """Parameters read until the last output was complete (an MSDNet: all of them)."""
        return self.exits[-1].params

    def as_dict(self) -> dict[str, Any]:
        """The JSON shape of ``msdprof count --format json``."""
        return {
            "model": self.model,
            "options": self.options.as_dict() if self.options is not None else None,
            "convention": self.convention,
            "input": [3, *self.input_size] if self.input_size is not None else None,
            "inputs": [list(shape) for shape in self.input_shapes],
            "input_names": list(self.input_names),
            "input_dtypes": list(self.input_dtypes),
            "exit_names": list(self.exit_names),
            "exits": [asdict(e) for e in self.exits],
            "total": {"macs": self.total_macs, "params": self.total_params},
            "unsupported": [asdict(u) for u in self.unsupported],
            "wrapper": self.wrapper,
        }


def _heads(flow: Dataflow, reach: list[int]) -> list[set[int]]:
    """Per exit, the operations of its head: the outermost submodule call (not the model's own)
    holding the exit's producer whose operations all reach that exit and no other; else the
    producer alone when it reaches no other exit; else nothing."""
    heads = []
    calls = sorted(flow.calls, key=lambda c: (c.first, -c.end))  # outer calls first
    for k, producer in enumerate(flow.outputs):
        bit = 1 << k
        head: set[int] = {producer} if reach[producer] == bit else set()
        for call in calls:
            if call.module and call.first <= producer < call.end and all(
                reach[i] & ~bit == 0 for i in range(call.first, call.end)
            ):
                head = set(range(call.first, call.end))
                break
        heads.append(head)
    return heads


def costs_from_dataflow(flow: Dataflow, convention: str) -> tuple[ExitCost, ...]:
    """Per-exit costs of a recorded pass with its exits selected, in ``convention`` (module
    docstring; ``layer`` is ``None``)."""
    to_number = CONVENTIONS[convention]
    ops = [to_number(op.count) for op in flow.ops]
    reach = flow.reach()
    firsts = flow.first_reads()
    heads = _heads(flow, reach)

    def cost(indices: Any) -> tuple[int, int]:  # every parameter the operations read
        indices = list(indices)
        read = {p for i in indices for p in flow.ops[i].params}
        return sum(ops[i] for i in indices), sum(flow.param_sizes[p] for p in read)

    def charged(indices: Any) -> tuple[int, int]:  # each parameter where it is first read
        indices = list(indices)
        return sum(ops[i] for i in indices), sum(flow.param_sizes[p] for i in indices for p in firsts[i])

    exits = []
    done = -1  # the last operation that ran before outputs 1..k-1 were complete
    for k, until in enumerate(flow.eager_ends()):
        window = set(range(done + 1, until + 1))
        earlier = (1 << (k + 1)) - 1
        eager = charged(range(until + 1))
        block = charged(window - heads[k])
        head = charged(heads[k])
        direct = charged(set(range(until + 1)).difference(*heads[:k]))
        lazy = cost(i for i in range(len(ops)) if reach[i] & earlier)
        exits.append(ExitCost(
            exit=k + 1, layer=None, macs=eager[0], params=eager[1], block_macs=block[0],
            block_params=block[1], head_macs=head[0], head_params=head[1], direct_macs=direct[0],
            direct_params=direct[1], lazy_macs=lazy[0], lazy_params=lazy[1],
        ))
        done = until
    return tuple(exits)


def unsupported_of(flow: Dataflow, convention: str) -> tuple[Unsupported, ...]:
    """What ran with work ``convention`` did not count (:func:`uncounted`): per module type or
    functional op name, its calls and the exits they feed."""
    reach = flow.reach()
    found: dict[str, tuple[int, int]] = {}
    for op in flow.ops:
        if uncounted(op, convention):
            calls, mask = found.get(op.type, (0, 0))
            found[op.type] = (calls + 1, mask | reach[op.index])
    return tuple(
        Unsupported(kind, calls, tuple(k + 1 for k in range(len(flow.outputs)) if mask >> k & 1))
        for kind, (calls, mask) in sorted(found.items())
    )


def record_exits(
    model: nn.Module,
    *,
    input_size: Any = None,
    inputs: Any = None,
    outputs: Outputs = None,
    batch: int = 1,
) -> Dataflow:
    """The dataflow of one forward pass of ``model`` in eval mode (every submodule's mode restored
    afterwards), its exits selected: an ``MSDNet`` on ``batch`` zero images of its plan's size on
    its own device, any other model as :func:`msdprof.core.dataflow.record_network` runs it (on
    ``inputs`` or ``batch`` zero images of ``input_size``).  Off the ``meta`` device, a forward
    that would take more memory than :data:`~msdprof.core.units.MAX_BYTES` is refused before it
    runs (:func:`msdprof.core.dataflow.check_forward_bytes`; an MSDNet's estimated on its twin on
    ``meta``)."""
    if not isinstance(model, MSDNet):
        return record_network(model, input_size=input_size, inputs=inputs, outputs=outputs, batch=batch)
    check_msdnet(model)
    height, width = model.plan.input_size
    option, typed = ("input-size", f"{height}x{width}") if batch == 1 else ("batch", batch)
    check_forward_bytes(model, [InputSpec("", (batch, 3, height, width))], option, typed,
                        shapes_only=lambda: _record_msdnet(meta_twin(model), batch))
    return _record_msdnet(model, batch)


def meta_twin(model: MSDNet) -> MSDNet:
    """An MSDNet of ``model``'s options, input size and dtype on the ``meta`` device (nothing
    allocated): the same operations on the same shapes."""
    first = next(model.parameters())
    return build_model(model.options, model.plan.input_size, device="meta").to(first.dtype)


def _record_msdnet(model: MSDNet, batch: int) -> Dataflow:
    height, width = model.plan.input_size
    first = next(model.parameters())  # the image follows the model's device and dtype (.half())
    image = torch.zeros(batch, 3, height, width, device=first.device, dtype=first.dtype)
    with evaluating(model):
        return record(model, lambda: model(image), outputs=None, inputs=Inputs((image,)))


def _as_any_model(model: nn.Module, flow: Dataflow, convention: str) -> ExitCosts:
    return ExitCosts(None, convention, None, costs_from_dataflow(flow, convention),
                     unsupported_of(flow, convention), flow.model or type(model).__name__,
                     flow.input_shapes, flow.exit_names, flow.wrapper, flow.input_names, flow.input_dtypes)


def costs_of(model: nn.Module, flow: Dataflow, convention: str = "msdnet") -> ExitCosts:
    """:class:`ExitCosts` of ``model`` from its record ``flow`` (:func:`record_exits`); an MSDNet's
    exits get their layers, options and input size from its plan."""
    check_convention(convention)
    if not isinstance(model, MSDNet):
        return _as_any_model(model, flow, convention)
    exits = tuple(ExitCost(**{**asdict(e), "layer": layer})
                  for e, layer in zip(costs_from_dataflow(flow, convention), model.plan.exit_layers))
    return ExitCosts(model.options, convention, model.plan.input_size, exits,
                     unsupported_of(flow, convention), input_shapes=flow.input_shapes,
                     exit_names=flow.exit_names)


def count_model(model: MSDNet, convention: str = "msdnet") -> ExitCosts:
    """Per-exit costs of a built ``model`` (any device; ``meta`` costs nothing), for one image."""
    check_convention(convention)
    check_msdnet(model)
    return costs_of(model, record_exits(model), convention)


def count_network(
    model: nn.Module,
    *,
    convention: str = "msdnet",
    input_size: Any = None,
    inputs: Any = None,
    outputs: Outputs = None,
) -> ExitCosts:
    """Per-exit costs of any early-exit ``model``: an ``nn.Module`` whose ``forward`` returns one
    output per exit (see :func:`exit_costs`).  Counted as it is (any device, ``meta`` included), in
    eval mode, every submodule's mode restored afterwards."""
    check_convention(convention)
    flow = record_network(model, input_size=input_size, inputs=inputs, outputs=outputs)
    return _as_any_model(model, flow, convention)


def exit_costs(
    preset_or_config: str | Options | nn.Module | None = None,
    *,
    convention: str = "msdnet",
    input_size: Any = None,
    inputs: Any = None,
    outputs: Outputs = None,
    device: str | torch.device = "meta",
    **options: Any,
) -> ExitCosts:
    """What each exit of an early-exit network costs.

    ``preset_or_config``: a preset name (``"cifar10-anytime"``), an :class:`msdnet.Options`, or
    ``None`` (keyword ``options`` such as ``nBlocks=7, stepmode="lin_grow"`` are laid over it, see
    :func:`msdnet.resolve`): the MSDNet is built on ``device`` (``meta`` allocates nothing) and
    counted for one image of ``input_size`` (side or (height, width) in pixels; default 32 for CIFAR,
    224 for ImageNet).  Or a built ``nn.Module``, counted as it is on its own device: an ``MSDNet``
    for one image of its plan's size; any other model whose ``forward`` returns one output per exit
    (a list or tuple of tensors, exit 1 first, or a dict, exits in insertion order) on ``inputs`` (a
    tensor, a tuple of tensors, a dict of keyword tensors, or :class:`msdprof.core.dataflow.Inputs`)
    or on zero tensors of ``input_size``: one image (a side, ``(H, W)`` or ``(C, H, W)``; batch 1 and
    3 channels added) or the command line's text (``"1x128:long"``, ``"input_ids=1x128:long,
    attention_mask=1x128:long"``: full shapes, dtypes, keywords; see
    :func:`msdprof.core.dataflow.parse_inputs`), in the model's floating-point dtype unless a dtype
    is given; ``outputs`` picks one tensor per exit out of a richer return value: a callable taking
    what the model returns (``lambda out: out[0]``), or an index or key taken of each exit's output
    (``0`` for a model returning ``[(logits, features), ...]``).
    ``convention``: ``msdnet`` (default), ``macs`` or ``flops`` (:data:`CONVENTIONS`).
    """
    check_convention(convention)
    if isinstance(preset_or_config, nn.Module) and not isinstance(preset_or_config, MSDNet):
        if options:
            raise OptionError("model", type(preset_or_config).__name__,
                              "is counted as built: pass no MSDNet options with a model")
        return count_network(preset_or_config, convention=convention, input_size=input_size,
                             inputs=inputs, outputs=outputs)
    if inputs is not None or outputs is not None:
        raise OptionError("inputs" if inputs is not None else "outputs", "given",
                          "is for a model msdprof did not build; an MSDNet is run on one image of its plan")
    model = model_from(preset_or_config, input_size, device, use="counted", **options)
    return count_model(model, convention)


__all__ = [
    "CONVENTIONS", "LAZY_GAP", "ExitCost", "ExitCosts", "Unsupported", "costs_from_dataflow", "costs_of",
    "count_model", "count_network", "exit_costs", "meta_twin", "record_exits", "unsupported_of",
]
