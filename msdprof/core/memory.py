"""What memory each exit needs: parameter bytes and peak activation bytes, eager and lazy.

Read off the same one recorded forward pass as the operation counts (:mod:`msdprof.core.dataflow`,
on ``meta`` by default: nothing is allocated), in inference mode (no autograd graph is kept):

- **parameter bytes** of exit k: the bytes (each parameter's dtype: fp32 4, fp16/bf16 2, int8 1) of
  every parameter read by the operations of its schedule, each counted once;
- **peak activation bytes** of exit k: the most bytes of activation storage alive at once while
  the schedule runs.  An activation storage is memory an operation of the pass allocated (never the
  model's inputs, parameters or buffers); it is alive from the operation that allocates it to the
  last operation of the schedule that reads or writes it -- a view shares its base's storage and an
  in-place result reuses it, so either keeps that storage alive -- and the storages of outputs
  1..k are kept to the end.  While an operation runs, its inputs and its outputs are alive
  together.  Memory inside an operation (a convolution's workspace, the temporaries inside a module
  with a counting rule) is not seen: the measured peak is at least this one (docs/memory.md).

Two schedules, as for the operation counts (SPEC section 4):

- **eager** -- the model as written, until outputs 1..k are complete: every operation that ran
  until then, in execution order, and what a later operation reads is still held then (the
  model's code holds it for the operations after exit k), as the allocator sees a real run;
- **lazy** -- a run that computes only the ancestors of outputs 1..k, in execution order, each
  tensor freed after its last reader among them (nothing held for exits after k).

Every storage alive at a step of the lazy schedule is alive at the same operation of the eager one
(allocated no later, read again no sooner), so the lazy peak never exceeds the eager peak.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Callable, Iterator, Sequence

import torch
from torch import nn

from msdnet import MSDNet, Options
from msdnet.model import check_msdnet, model_from
from msdnet.options import OptionError

from .conventions import check_convention
from .dataflow import Dataflow, as_inputs, input_bytes, input_labels
from .display import Tabular
from .exits import ExitCosts, costs_of, record_exits


#: Largest batch a memory figure is asked for (a sanity bound: the record runs on ``meta``).
MAX_BATCH = 1 << 20


@dataclass(frozen=True)
class Alive:
    """One activation storage alive at a peak: ``op``, the operation that allocated it (its
    :attr:`~msdprof.core.dataflow.Op.name`), that operation's output ``shape``, and its ``bytes``."""

    op: str
    shape: tuple[int, ...] | None
    bytes: int


@dataclass(frozen=True)
class Peak:
    """The peak of one schedule: ``bytes`` of activation storage alive at once, the operation
    running then (``op``, its name; the first such operation when the peak is reached more than
    once) and what is ``alive`` there, largest first."""

    bytes: int
    op: str
    alive: tuple[Alive, ...]


@dataclass(frozen=True)
class ExitMemory:
    """The memory exit ``exit`` (1-based) needs, for the batch of :class:`ExitMemories`; bytes.

    - ``param_bytes``/``lazy_param_bytes``: bytes of the parameters the eager/lazy schedule reads;
    - ``peak_bytes``/``lazy_peak_bytes``: peak activation bytes of the eager/lazy schedule, each
      tensor alive to its last reader, and ``peak``/``lazy_peak`` where it is reached;
    - ``held_peak_bytes``: the eager peak as the model's code is written -- the activation storage
      it still referenced after each operation until output k (Python keeps a tensor while a
      variable or a list holds it, past its last reader), at operation ``held_peak_op``: what the
      allocator reaches, less what it hands out inside operations (workspaces);
    - ``total_bytes``: parameters + the inputs + ``held_peak_bytes``, what running the model as
      written to exit k holds at once; ``lazy_total_bytes``: lazy parameters + the inputs +
      ``lazy_peak_bytes``, the same for a lazy executor that frees each tensor after its last
      reader (buffers such as BatchNorm's running statistics are in neither).
    """

    exit: int
    param_bytes: int
    lazy_param_bytes: int
    peak_bytes: int
    lazy_peak_bytes: int
    held_peak_bytes: int
    held_peak_op: str
    total_bytes: int
    lazy_total_bytes: int
    peak: Peak
    lazy_peak: Peak

    def row(self) -> dict[str, Any]:
        """The scalar fields and the peaks' operations: one CSV row."""
        data = {k: v for k, v in asdict(self).items() if k not in ("peak", "lazy_peak")}
        return {**data, "peak_op": self.peak.op, "lazy_peak_op": self.lazy_peak.op}


@dataclass(frozen=True)
class ExitMemories(Tabular, Sequence[ExitMemory]):
    """Per-exit memory of one network for ``batch`` inputs: a sequence of :class:`ExitMemory`,
    exit 1 first.  ``input_bytes``: the inputs' bytes (the caller holds them), each at its
    dtype's size; ``model``: the model's class name; ``exit_names`` as in
    :class:`~msdprof.core.exits.ExitCosts`.  ``input_shapes``, ``input_names`` and
    ``input_dtypes``: the inputs of the batch (as in :class:`~msdprof.core.dataflow.Dataflow`);
    ``batch_inputs``: per input, whether it carries the batch (the others, such as a cache stacked
    layers first, are as given whatever the batch)."""

    model: str
    batch: int
    input_bytes: int
    exits: tuple[ExitMemory, ...]
    exit_names: tuple[str, ...] = ()
    input_shapes: tuple[tuple[int, ...], ...] = ()
    input_names: tuple[str, ...] = ()
    input_dtypes: tuple[str, ...] = ()
    batch_inputs: tuple[bool, ...] = ()

    def __len__(self) -> int:
        return len(self.exits)

    def __getitem__(self, index):  # type: ignore[override]
        return self.exits[index]

    def __iter__(self) -> Iterator[ExitMemory]:
        return iter(self.exits)

    def as_dict(self) -> dict[str, Any]:
        """The JSON shape of ``msdprof count --memory --format json``'s ``memory``."""
        return {"model": self.model, "batch": self.batch, "input_bytes": self.input_bytes,
                "unit": "bytes", "exit_names": list(self.exit_names),
                "batch_inputs": list(self.carrying()), "exits": [asdict(e) for e in self.exits]}

    def carrying(self) -> tuple[str, ...]:
        """The names of the inputs that carry the batch (``input 1`` for a positional one)."""
        labels = input_labels(self.input_names or ("",) * len(self.input_shapes))
        return tuple(label for label, carries in zip(labels, self.batch_inputs) if carries)

    def kept(self) -> tuple[str, ...]:
        """The names of the inputs that do not carry the batch, kept as given."""
        labels = input_labels(self.input_names or ("",) * len(self.input_shapes))
        return tuple(label for label, carries in zip(labels, self.batch_inputs) if not carries)


def schedule_peak(flow: Dataflow, schedule: Sequence[int], kept: Sequence[int] = ()) -> Peak:
    """The peak activation memory of running the operations ``schedule`` (indices into
    ``flow.ops``, in execution order) with the storages ``kept`` alive to the end (module
    docstring)."""
    first: dict[int, int] = {}
    last: dict[int, int] = {}
    for pos, i in enumerate(schedule):
        for key in flow.ops[i].touches:
            first.setdefault(key, pos)
            last[key] = pos
    for key in kept:
        if key in first:
            last[key] = len(schedule) - 1
    delta = [0] * (len(schedule) + 1)
    for key, start in first.items():
        size = flow.storage_bytes[key]
        delta[start] += size
        delta[last[key] + 1] -= size
    running, best, at = 0, 0, 0
    for pos in range(len(schedule)):
        running += delta[pos]
        if running > best:
            best, at = running, pos
    if not schedule:
        return Peak(0, "", ())
    makers = {key: i for i, op in enumerate(flow.ops) for key in op.allocates}
    alive = [Alive(flow.ops[makers[key]].name, flow.ops[makers[key]].shape, flow.storage_bytes[key])
             for key in first if first[key] <= at <= last[key] and flow.storage_bytes[key]]
    alive.sort(key=lambda a: -a.bytes)
    return Peak(best, flow.ops[schedule[at]].name, tuple(alive))


def _param_bytes(flow: Dataflow, schedule: Sequence[int]) -> int:
    read = {p for i in schedule for p in flow.ops[i].params}
    return sum(flow.param_bytes[p] for p in read)


def memory_from_dataflow(flow: Dataflow, input_bytes: int = 0) -> tuple[ExitMemory, ...]:
    """Per-exit memory of a recorded pass with its exits selected (module docstring);
    ``input_bytes`` enters the totals only."""
    reach = flow.reach()
    last: dict[int, int] = {}  # per activation storage, the last operation of the pass touching it
    for op in flow.ops:
        for key in op.touches:
            last[key] = op.index
    exits = []
    for k, until in enumerate(flow.eager_ends()):
        earlier = (1 << (k + 1)) - 1
        outputs = [key for key in flow.output_storages[:k + 1] if key >= 0]
        held = [key for key, end in last.items() if end > until]  # read after exit k: still held
        eager = list(range(until + 1))
        lazy = [i for i in range(len(flow.ops)) if reach[i] & earlier]
        peak = schedule_peak(flow, eager, outputs + held)
        lazy_peak = schedule_peak(flow, lazy, outputs)
        params, lazy_params = _param_bytes(flow, eager), _param_bytes(flow, lazy)
        held = max(eager, key=lambda i: flow.ops[i].held)  # the first operation at the most
        exits.append(ExitMemory(
            exit=k + 1, param_bytes=params, lazy_param_bytes=lazy_params, peak_bytes=peak.bytes,
            lazy_peak_bytes=lazy_peak.bytes, held_peak_bytes=flow.ops[held].held,
            held_peak_op=flow.ops[held].name,
            total_bytes=params + input_bytes + flow.ops[held].held,
            lazy_total_bytes=lazy_params + input_bytes + lazy_peak.bytes, peak=peak,
            lazy_peak=lazy_peak,
        ))
    return tuple(exits)


def check_batch(batch: Any, option: str = "batch") -> int:
    """``batch`` as a whole number from 1 to :data:`MAX_BATCH`; else an ``OptionError``."""
    try:
        value = int(batch) if not isinstance(batch, (bool, float)) else None
    except (TypeError, ValueError):
        value = None
    if value is None or not 1 <= value <= MAX_BATCH:
        raise OptionError(option, str(batch), f"must be a whole number of inputs from 1 to {MAX_BATCH}")
    return value


def memory_of(model: nn.Module, flow: Dataflow, batch: int) -> ExitMemories:
    """:class:`ExitMemories` of ``model`` from its record ``flow`` (made for ``batch`` inputs by
    :func:`~msdprof.core.exits.record_exits`); the inputs' bytes each at its dtype's size."""
    size = input_bytes(flow)
    return ExitMemories(type(model).__name__, batch, size, memory_from_dataflow(flow, size), flow.exit_names,
                        flow.input_shapes, flow.input_names, flow.input_dtypes, flow.carriers)


def _model(preset_or_config: str | Options | nn.Module | None, inputs: Any, outputs: Any, input_size: Any,
           device: str | torch.device, options: dict[str, Any]) -> nn.Module:
    if isinstance(preset_or_config, nn.Module):
        if options:
            raise OptionError("model", type(preset_or_config).__name__,
                              "is counted as built: pass no MSDNet options with a model")
        if isinstance(preset_or_config, MSDNet):
            check_msdnet(preset_or_config)
        return preset_or_config
    if inputs is not None or outputs is not None:
        raise OptionError("inputs" if inputs is not None else "outputs", "given",
                          "is for a model msdprof did not build; an MSDNet is run on its plan's image")
    return model_from(preset_or_config, input_size, device, use="counted", **options)


def _batch_of(inputs: Any, batch: int) -> int:
    """The batch of the record: ``batch``, or the first dimension of the first input given."""
    if inputs is None:
        return batch
    if batch != 1:
        raise OptionError("batch", str(batch), "is for inputs msdprof makes; with inputs given, "
                                               "their own first dimension is the batch")
    first = as_inputs(inputs).tensors[0]
    return int(first.shape[0]) if first.dim() else 1


def exit_memory(
    preset_or_config: str | Options | nn.Module | None = None,
    *,
    batch: int = 1,
    input_size: Any = None,
    inputs: Any = None,
    outputs: Callable[[Any], Any] | None = None,
    device: str | torch.device = "meta",
    real: bool = False,
    **options: Any,
) -> ExitMemories:
    """What memory each exit of an early-exit network needs for ``batch`` inputs, in inference.

    The network is given as to :func:`msdprof.core.exits.exit_costs` (a preset, options, or a built
    model, on any device) and recorded as it is, once: on shapes alone unless the model reads
    values or ``real`` (nothing of its size is allocated; tied weights stay tied, so a parameter
    read by two modules is counted once).  ``batch`` zero inputs of its input size; with
    ``inputs`` (tensors given as they are) the batch is theirs (``batch`` must stay 1; the result's
    ``batch`` is their first dimension).
    """
    batch = check_batch(batch)
    model, flow = _recorded(preset_or_config, batch, input_size, inputs, outputs, device, real, options)
    return memory_of(model, flow, _batch_of(inputs, batch))


def _recorded(preset_or_config: Any, batch: int, input_size: Any, inputs: Any, outputs: Any,
              device: str | torch.device, real: bool, options: dict[str, Any]) -> tuple[nn.Module, Dataflow]:
    """The model :func:`exit_memory` is given and its record at ``batch`` (the inputs' own batch
    when they are given)."""
    model = _model(preset_or_config, inputs, outputs, input_size, device, options)
    return model, record_exits(model, input_size=input_size, inputs=inputs, outputs=outputs,
                               batch=1 if inputs is not None else batch, real=real)


def costs_and_memory(
    preset_or_config: str | Options | nn.Module | None = None,
    *,
    convention: str | None = None,
    batch: int = 1,
    input_size: Any = None,
    inputs: Any = None,
    outputs: Callable[[Any], Any] | None = None,
    device: str | torch.device = "meta",
    real: bool = False,
    **options: Any,
) -> tuple[ExitCosts, ExitMemories]:
    """:func:`~msdprof.core.exits.exit_costs` (for one input) and :func:`exit_memory` (for
    ``batch``) of one network from one record of its forward when ``batch`` is 1 (or the inputs
    given), from a record at each batch otherwise."""
    batch = check_batch(batch)
    model, flow = _recorded(preset_or_config, batch, input_size, inputs, outputs, device, real, options)
    convention = check_convention(convention, isinstance(model, MSDNet))
    one = flow if batch == 1 else record_exits(model, input_size=input_size, outputs=outputs, real=real)
    return costs_of(model, one, convention), memory_of(model, flow, _batch_of(inputs, batch))


__all__ = [
    "Alive", "ExitMemories", "ExitMemory", "MAX_BATCH", "Peak", "check_batch", "costs_and_memory", "exit_memory",
    "memory_from_dataflow", "memory_of", "schedule_peak",
]
