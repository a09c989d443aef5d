"""Per-exit cost of an early-exit network: ``exit_costs``.

The network runs once, on shapes alone unless it reads tensor values (nothing of its size is
allocated), with its dataflow recorded (:mod:`msdprof.core.dataflow`): every operation, its count,
what it read.  The per-exit figures are read off that one record by the definitions of SPEC
section 4, the same for an ``msdnet.MSDNet`` and for any ``nn.Module`` that returns one output per
exit:

- eager (``macs``/``params``): everything that ran until outputs 1..k were complete, in execution
  order -- what the authors' op counter holds when head k finishes;
- lazy: the union of the dataflow ancestors of outputs 1..k;
- direct: eager less the heads of exits 1..k-1 (for an MSDNet blocks 1..k and head k, SPEC
  section 2: the cost when exit k is chosen in advance and the model runs as written), with every
  parameter its operations read (a head shared by every exit included);
- head k: the work exit k alone needs after the last result a later exit also reads (an MSDNet's
  ``classifiers[k-1]``; a 1x1 conv and the ``F.interpolate`` after it); block k: the rest of what
  ran after output k-1 and until output k (block and head parameters where first read, so that
  they add up to what exit k adds).
"""

from __future__ import annotations

import dataclasses
from dataclasses import asdict
from typing import Any, Sequence

import torch
from torch import nn

from msdnet import MSDNet, Options, build_model
from msdnet.options import OptionError
from msdnet.model import check_msdnet
from msdnet.model import model_from

from .counting import CONVENTIONS, counted_macs
from .conventions import check_convention
from .dataflow import Dataflow, Outputs, as_inputs, collection_paused, record_network, uncounted
from .results import LAZY_GAP, ExitCost, ExitCosts, ExitSpread, Spread, Unsupported
from .samples import over_samples


def _heads(flow: Dataflow, reach: list[int]) -> list[set[int]]:
    """Per exit k, the operations of its head: the work exit k alone needs after the last result a
    later exit also reads -- the operations of its eager window that ran after the last one whose
    result reaches a later output, and whose results reach output k and no other (modules and
    functional ops alike: a classifier, or a 1x1 conv and the ``F.interpolate`` after it).  The
    last exit has no later one to tell its head from its block by: its head is what
    :func:`_last_head` finds."""
    heads = []
    done = -1  # the last operation that ran before outputs 1..k-1 were complete
    for k, until in enumerate(flow.eager_ends()):
        bit, later = 1 << k, -(1 << (k + 1))  # exit k's bit; the bits of every later exit
        if k < len(flow.outputs) - 1:
            start = next((i + 1 for i in range(until, done, -1) if reach[i] & later), done + 1)
            heads.append({i for i in range(start, until + 1) if reach[i] == bit})
        else:
            heads.append(_last_head(flow, reach, flow.outputs[k], bit))
        done = until
    return heads


def _last_head(flow: Dataflow, reach: list[int], producer: int, bit: int) -> set[int]:
    """The last exit's head: the functional ops of the model's own ``forward`` that end it (an
    ``F.interpolate``), back to the operation they read, and the outermost submodule call (not
    the model's own) holding that operation whose operations all reach this exit and no other
    (an MSDNet's last classifier); else that operation alone when it reaches no other exit."""
    head: set[int] = set()
    op = flow.ops[producer]
    while op.kind == "function" and op.module == "" and reach[op.index] == bit:
        head.add(op.index)
        read = [i for i in op.inputs if reach[i] == bit]
        if len(read) != 1:
            return head
        op = flow.ops[read[0]]
    if reach[op.index] != bit:
        return head
    for call in sorted(flow.calls, key=lambda c: (c.first, -c.end)):  # outer calls first
        if call.module and call.first <= op.index < call.end and all(
                reach[i] == bit for i in range(call.first, call.end)):
            return head | set(range(call.first, call.end))
    return head | {op.index}


def exit_heads(flow: Dataflow, reach: list[int] | None = None) -> list[set[int]]:
    """Per exit, the operations of its head (indices into ``flow.ops``; see :func:`_heads`);
    ``reach``: ``flow.reach()``, when the caller has it already."""
    return _heads(flow, flow.reach() if reach is None else reach)


class _Running:
    """A set of operations that grows and shrinks: their count and the parameters they read, each
    once (a parameter leaves with the last operation reading it)."""

    def __init__(self, flow: Dataflow, ops: list[int]):
        self.flow, self.ops = flow, ops
        self.count = self.params = 0
        self.readers: dict[int, int] = {}

    def add(self, i: int, sign: int = 1) -> None:
        self.count += sign * self.ops[i]
        for p in self.flow.ops[i].params:
            n = self.readers.get(p, 0) + sign
            self.readers[p] = n
            if n == (1 if sign > 0 else 0):
                self.params += sign * self.flow.param_sizes[p]


def costs_from_dataflow(flow: Dataflow, convention: str) -> tuple[ExitCost, ...]:
    """Per-exit costs of a recorded pass with its exits selected, in ``convention`` (module
    docstring; ``layer`` is ``None``).  Linear in the operations and exits: each figure grows from
    exit k-1's."""
    to_number = CONVENTIONS[convention]
    ops = [to_number(op.count) for op in flow.ops]
    reach = flow.reach()
    firsts = flow.first_reads()
    heads = _heads(flow, reach)

    def charged(indices: Any) -> tuple[int, int]:  # each parameter where it is first read
        indices = list(indices)
        return sum(ops[i] for i in indices), sum(flow.param_sizes[p] for i in indices for p in firsts[i])

    by_first_exit: dict[int, list[int]] = {}  # the lowest exit each operation reaches: when lazy adds it
    for i, r in enumerate(reach):
        if r:
            by_first_exit.setdefault((r & -r).bit_length() - 1, []).append(i)
    exits = []
    done = -1  # the last operation that ran before outputs 1..k-1 were complete
    idle = [sum(i.params for i in flow.idle if i.exit is not None and i.exit <= k + 1)
            for k in range(len(flow.outputs))]
    missed = missed_work(flow, convention)
    eager = [0, 0]
    direct, lazy = _Running(flow, ops), _Running(flow, ops)
    left_out: int | None = 0
    for k, until in enumerate(flow.eager_ends()):
        window = range(done + 1, until + 1)
        step = charged(window)
        eager = [eager[0] + step[0], eager[1] + step[1]]
        block = charged(set(window) - heads[k])
        head = charged(heads[k])
        for i in window:  # direct: what ran until output k, less heads 1..k-1 (a shared head's
            direct.add(i)  # parameters stay in while any operation left reads them)
            if i in missed:
                left_out = None if left_out is None or missed[i] is None else left_out + missed[i]
        if k:
            for i in heads[k - 1]:
                direct.add(i, -1)
        for i in by_first_exit.get(k, ()):
            lazy.add(i)
        exits.append(ExitCost(
            exit=k + 1, layer=None, macs=eager[0], params=eager[1], block_macs=block[0],
            block_params=block[1], head_macs=head[0], head_params=head[1], direct_macs=direct.count,
            direct_params=direct.params, lazy_macs=lazy.count, lazy_params=lazy.params,
            idle_params=idle[k], uncounted_macs=left_out,
        ))
        done = until
    return tuple(exits)


def missed_work(flow: Dataflow, convention: str) -> dict[int, int | None]:
    """Per operation that ran work ``convention`` did not count (:func:`uncounted`), what it left
    out in the convention's unit: its kernels' multiply-adds by torch's formulas less those it
    counted (``None``: a kernel no formula measures)."""
    unit = 2 if convention == "flops" else 1
    return {op.index: None if op.opaque else unit * max(op.aten_macs - counted_macs(op.count, convention), 0)
            for op in flow.ops if uncounted(op, convention)}


def unsupported_of(flow: Dataflow, convention: str) -> tuple[Unsupported, ...]:
    """What ran with work ``convention`` did not count (:func:`uncounted`): per module type or
    functional op name, its calls, the exits they feed and the multiply-adds their kernels did."""
    reach = flow.reach()
    found: dict[str, tuple[int, int, int | None]] = {}
    for op in flow.ops:
        if uncounted(op, convention):
            calls, mask, macs = found.get(op.type, (0, 0, 0))
            found[op.type] = (calls + 1, mask | reach[op.index],
                              None if macs is None or op.opaque else macs + op.aten_macs)
    return tuple(
        Unsupported(kind, calls, tuple(k + 1 for k in range(len(flow.outputs)) if mask >> k & 1), macs)
        for kind, (calls, mask, macs) in sorted(found.items())
    )


def record_exits(
    model: nn.Module,
    *,
    input_size: Any = None,
    inputs: Any = None,
    outputs: Outputs = None,
    batch: int = 1,
    real: bool = False,
) -> Dataflow:
    """The dataflow of one forward pass of ``model`` in eval mode (every submodule's mode restored
    afterwards), its exits selected (:func:`msdprof.core.dataflow.record_network`: on shapes alone
    unless the model reads values or ``real``): an ``MSDNet`` on ``batch`` images of its plan's
    size, any other model on ``inputs`` or ``batch`` zero inputs of ``input_size``."""
    if isinstance(model, MSDNet):
        check_msdnet(model)
        input_size = (3, *model.plan.input_size)
    return record_network(model, input_size=input_size, inputs=inputs, outputs=outputs, batch=batch, real=real)


def meta_twin(model: MSDNet) -> MSDNet:
    """An MSDNet of ``model``'s options, input size and dtype on the ``meta`` device (nothing
    allocated): the same operations on the same shapes."""
    first = next(model.parameters())
    return build_model(model.options, model.plan.input_size, device="meta").to(first.dtype)


def as_any_model(model: nn.Module, flow: Dataflow, convention: str) -> ExitCosts:
    return ExitCosts(None, convention, None, costs_from_dataflow(flow, convention),
                     unsupported_of(flow, convention), flow.model or type(model).__name__,
                     flow.input_shapes, flow.exit_names, flow.wrapper, flow.input_names, flow.input_dtypes,
                     **_how_counted(flow))


def _how_counted(flow: Dataflow) -> dict[str, Any]:
    return {"on_values": flow.on_values, "value_reads": flow.value_reads, "same_tensor": flow.same_tensor,
            "idle": flow.idle}


def costs_of(model: nn.Module, flow: Dataflow, convention: str | None = None) -> ExitCosts:
    """:class:`ExitCosts` of ``model`` from its record ``flow`` (:func:`record_exits`); an MSDNet's
    exits get their layers, options and input size from its plan.  ``convention``: ``None`` for the
    model's default (:data:`~msdprof.core.conventions.DEFAULTS`)."""
    convention = check_convention(convention, isinstance(model, MSDNet))
    if not isinstance(model, MSDNet):
        return as_any_model(model, flow, convention)
    exits = tuple(ExitCost(**{**asdict(e), "layer": layer})
                  for e, layer in zip(costs_from_dataflow(flow, convention), model.plan.exit_layers))
    return ExitCosts(model.options, convention, model.plan.input_size, exits,
                     unsupported_of(flow, convention), input_shapes=flow.input_shapes,
                     exit_names=flow.exit_names, **_how_counted(flow))


def count_model(model: MSDNet, convention: str | None = None, *, real: bool = False) -> ExitCosts:
    """Per-exit costs of a built ``model`` (any device; counted on shapes alone unless ``real``),
    for one image."""
    convention = check_convention(convention)
    check_msdnet(model)
    return costs_of(model, record_exits(model, real=real), convention)


def count_network(
    model: nn.Module,
    *,
    convention: str | None = None,
    input_size: Any = None,
    inputs: Any = None,
    outputs: Outputs = None,
    real: bool = False,
) -> ExitCosts:
    """Per-exit costs of any early-exit ``model``: an ``nn.Module`` whose ``forward`` returns one
    output per exit (see :func:`exit_costs`), in eval mode, every submodule's mode restored
    afterwards."""
    convention = check_convention(convention, msdnet=False)
    flow = record_network(model, input_size=input_size, inputs=inputs, outputs=outputs, real=real)
    return as_any_model(model, flow, convention)


def count_samples(model: nn.Module, samples: Sequence[Any], *, convention: str | None = None,
                  outputs: Outputs = None, real: bool = False) -> ExitCosts:
    """Per-exit costs of any early-exit ``model`` over ``samples``, each one anything ``inputs=``
    of :func:`exit_costs` takes: recorded once when the first sample's record ran on shapes alone
    and every sample has its shapes and dtypes (the count cannot differ); else once per sample,
    merged by :func:`msdprof.core.samples.over_samples` (each exit's mean, min and max)."""
    convention = check_convention(convention, msdnet=False)
    if isinstance(samples, (str, bytes)) or not isinstance(samples, Sequence) or not samples:
        raise OptionError("samples", type(samples).__name__, "must be a non-empty list of inputs, each "
                          "what inputs= takes")
    given = [as_inputs(sample, "samples") for sample in samples]
    first = record_network(model, inputs=given[0], outputs=outputs, real=real)
    if not first.on_values and len({(g.names, g.shapes, g.dtypes) for g in given}) == 1:
        return dataclasses.replace(as_any_model(model, first, convention), samples=len(given))
    flows = [first, *(record_network(model, inputs=g, outputs=outputs, real=real) for g in given[1:])]
    return over_samples([as_any_model(model, flow, convention) for flow in flows])


def exit_costs(
    preset_or_config: str | Options | nn.Module | None = None,
    *,
    convention: str | None = None,
    input_size: Any = None,
    inputs: Any = None,
    samples: Sequence[Any] | None = None,
    outputs: Outputs = None,
    device: str | torch.device = "meta",
    real: bool = False,
    **options: Any,
) -> ExitCosts:
    """What each exit of an early-exit network costs.

    ``preset_or_config``: a preset name (``"cifar10-anytime"``), an :class:`msdnet.Options`, or
    ``None`` (keyword ``options`` such as ``nBlocks=7, stepmode="lin_grow"`` are laid over it, see
    :func:`msdnet.resolve`): the MSDNet is built on ``device`` (``meta`` allocates nothing) and
    counted for one image of ``input_size`` (side or (height, width) in pixels; default 32 for CIFAR,
    224 for ImageNet).  Or a built ``nn.Module``, on any device: an ``MSDNet`` for one image of its
    plan's size; any other model whose ``forward`` returns one output per exit
    (a list or tuple of tensors, exit 1 first, or a dict, exits in insertion order) on ``inputs`` (a
    tensor, a tuple of tensors, a dict of keyword tensors, or :class:`msdprof.core.dataflow.Inputs`)
    or on zero tensors of ``input_size``: one image (a side, ``(H, W)`` or ``(C, H, W)``; batch 1 and
    3 channels added) or the command line's text (``"1x128:long"``, ``"input_ids=1x128:long,
    attention_mask=1x128:long"``: full shapes, dtypes, keywords; see
    :func:`msdprof.core.dataflow.parse_inputs`), in the model's floating-point dtype unless a dtype
    is given; ``outputs`` picks one tensor per exit out of a richer return value: a callable taking
    what the model returns (``lambda out: out[0]``), or an index or key taken of each exit's output
    (``0`` for a model returning ``[(logits, features), ...]``).
    ``convention``: ``msdnet``, ``macs`` or ``flops`` (:data:`CONVENTIONS`); by default ``msdnet``
    for an MSDNet (the authors' counter, what the paper reports) and ``macs`` for any other model.

    The forward runs once, on shapes alone (meta tensors stand for the weights and inputs: nothing
    of the model's size is allocated), unless the model reads tensor values (``.item()``,
    ``nonzero``, a branch on a value) or ``real`` asks for a run on the real weights and inputs:
    then on them, once more at most, its memory checked before each kernel; the result says where
    the model read values (:attr:`ExitCosts.value_reads`).  ``samples``: several inputs instead of
    one (:func:`count_samples`): each exit's figures over them (:attr:`ExitCosts.spread`).
    """
    convention = check_convention(convention, not isinstance(preset_or_config, nn.Module)
                                  or isinstance(preset_or_config, MSDNet))
    if isinstance(preset_or_config, nn.Module) and not isinstance(preset_or_config, MSDNet):
        if options:
            raise OptionError("model", type(preset_or_config).__name__,
                              "is counted as built: pass no MSDNet options with a model")
        if samples is not None and (inputs is not None or input_size is not None):
            raise OptionError("samples", "given", "replaces inputs and input-size: give one of them")
    elif inputs is not None or outputs is not None or samples is not None:
        given = "inputs" if inputs is not None else "outputs" if outputs is not None else "samples"
        raise OptionError(given, "given",
                          "is for a model msdprof did not build; an MSDNet is run on one image of its plan")
    with collection_paused():  # what the count makes is freed before the collector runs again
        costs = _counted(preset_or_config, convention, input_size, inputs, samples, outputs, device, real, options)
    return costs


def _counted(network: Any, convention: str, input_size: Any, inputs: Any, samples: Any, outputs: Outputs,
             device: str | torch.device, real: bool, options: dict[str, Any]) -> ExitCosts:
    """:func:`exit_costs`'s count, its arguments checked (its locals are gone when it returns)."""
    if isinstance(network, nn.Module) and not isinstance(network, MSDNet):
        if samples is not None:
            return count_samples(network, samples, convention=convention, outputs=outputs, real=real)
        return count_network(network, convention=convention, input_size=input_size, inputs=inputs,
                             outputs=outputs, real=real)
    return count_model(model_from(network, input_size, device, use="counted", **options), convention, real=real)


__all__ = [
    "CONVENTIONS", "LAZY_GAP", "ExitCost", "ExitCosts", "ExitSpread", "Spread", "Unsupported", "costs_from_dataflow", "costs_of",
    "as_any_model", "count_model", "missed_work", "count_network", "count_samples", "exit_costs", "exit_heads",
    "meta_twin", "record_exits",
    "unsupported_of",
]
