"""The dataflow of one forward pass: which operation produced which tensor, from which tensors.

:func:`record` runs a callable once with forward hooks on every module of a model and a scoped
torch-function mode, and returns a :class:`Dataflow`: the operations that ran, in execution order,
each with its count (:class:`msdprof.core.counting.OpCount`), the operations whose results it read, the
parameters it read and its output shape.  An operation is

- a call of a *counted* module: one whose type has a rule in :data:`msdprof.core.counting.RULES`, or a
  leaf module (one with no children; an empty ``nn.Sequential`` is a pass-through, not a leaf).  What runs inside it is part of it; a leaf whose type has no
  rule is recorded all the same, marked ``unknown_module``, with the multiply-adds of the functional
  ops it calls (``functional_macs``);
- a functional op called outside counted modules (``torch.cat``, ``+``, ``view``, indexing,
  ``F.interpolate``, ``F.conv2d``, ``matmul`` ...) whose result holds a tensor.

Tensors are followed by identity (weak references, so nothing is kept alive); an in-place op makes
its result's producer the op itself.  Every module call that is not an operation is kept as a
:class:`Call` (its span of operations), which tells what ran inside which submodule.

Nothing is left behind: hooks are removed in a ``finally``, the mode is scoped to a ``with`` block,
nothing is attached to the model or patched in torch.  On ``meta`` tensors the mode also takes the
shape-only shortcuts of :mod:`msdprof.core.meta_shapes`.
"""

from __future__ import annotations

import math
import weakref
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from msdnet.options import OptionError

from . import meta_shapes
from .counting import FUNCTION_RULES, MULTIPLY_ADD_FUNCTIONS, Counts, ModuleCount, OpCount, rule_for
from .units import check_bytes, shape_text, shapes_text


@dataclass(frozen=True)
class Op:
    """One operation of a recorded pass.

    ``index``: its place in execution order (0-based).  ``name``: a unique id -- the module's name
    for a module call (``"features.3"``; ``"#2"`` and so on appended for a module's later calls), or
    ``"<calling module>/<function>"`` for a functional op (``"layer1.0/add"``; ``"add"`` when the
    model's own ``forward`` called it), numbered the same way.  ``kind``: ``"module"`` or
    ``"function"``.  ``type``: the module's class name or the function's name.  ``module``: the
    module called (``kind`` module) or the innermost module whose ``forward`` made the call (``""``:
    the model itself).  ``count``: its operations, for the whole batch.  ``inputs``: indices of the
    operations whose results it read.  ``params``: keys of the parameters it read (see
    :attr:`Dataflow.param_sizes`).  ``shape``: the shape of its (first) output tensor.
    ``unknown_module``: a leaf module whose type has no counting rule.  ``unknown_functions``: names
    of functional ops with multiply-adds but no rule that it ran (itself, or inside an unknown leaf).
    """

    index: int
    name: str
    kind: str
    type: str
    module: str
    count: OpCount
    inputs: tuple[int, ...]
    params: tuple[int, ...]
    shape: tuple[int, ...] | None
    unknown_module: bool = False
    unknown_functions: tuple[str, ...] = ()


@dataclass(frozen=True)
class Call:
    """A call of a module that is not itself an :class:`Op`: the operations ``first`` to ``end - 1``
    ran inside it.  ``module`` is its name (``""`` for the model itself)."""

    module: str
    first: int
    end: int


@dataclass(frozen=True)
class Dataflow:
    """What :func:`record` saw.

    ``ops`` in execution order; ``calls``: the module calls that hold operations; ``outputs``: per
    exit, the index of the operation that produced it (``()`` when no exits were selected);
    ``exit_names``: the exits' names (a dict's keys, else ``"1"``, ``"2"`` ...); ``param_sizes``:
    elements of each parameter read, by key; ``input_shapes``: shapes of the tensors given to the
    model.
    """

    ops: tuple[Op, ...]
    calls: tuple[Call, ...]
    outputs: tuple[int, ...] = ()
    exit_names: tuple[str, ...] = ()
    param_sizes: dict[int, int] = field(default_factory=dict)
    input_shapes: tuple[tuple[int, ...], ...] = ()

    def reach(self) -> list[int]:
        """Per operation, the exits its result flows into, as a bit mask (bit k-1 = exit k).

        An operation reaches exit k when exit k's output is computed from its result, directly or
        through other operations; the output's own producer reaches it."""
        reach = [0] * len(self.ops)
        for k, producer in enumerate(self.outputs):
            reach[producer] |= 1 << k
        for op in reversed(self.ops):  # inputs always ran before the op that reads them
            for i in op.inputs:
                reach[i] |= reach[op.index]
        return reach

    def peak_numbers(self) -> int:
        """The most numbers the operations' results hold at once: each result is held from the
        operation that makes it to the last that reads it (an exit's output to the end), so this
        estimates a no-grad forward's working set (views and in-place results count as new ones:
        an estimate from above).  For the batch recorded; multiply for a larger one."""
        last = [op.index for op in self.ops]
        for op in self.ops:
            for i in op.inputs:
                last[i] = max(last[i], op.index)
        for producer in self.outputs:
            last[producer] = len(self.ops)
        freed = [0] * (len(self.ops) + 1)
        held = peak = 0
        for op in self.ops:
            size = math.prod(op.shape) if op.shape is not None else 0
            held += size
            freed[last[op.index]] += size
            peak = max(peak, held)
            held -= freed[op.index]
        return peak

    def first_reads(self) -> list[tuple[int, ...]]:
        """Per operation, the parameters it is the first to read: each parameter is charged to one
        operation, so that parameters of a module called twice count once."""
        seen: set[int] = set()
        firsts = []
        for op in self.ops:
            new = tuple(p for p in op.params if p not in seen)
            seen.update(new)
            firsts.append(new)
        return firsts


class OutputError(ValueError):
    """What a model returned is not one tensor per exit (the message says what it was)."""


def tensors_in(value: Any) -> Iterator[torch.Tensor]:
    """The tensors in ``value`` and in the lists, tuples and dict values inside it."""
    if isinstance(value, torch.Tensor):
        yield value
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from tensors_in(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from tensors_in(item)


def function_name(func: Callable[..., Any]) -> str:
    """A short name for a function torch hands a mode: ``cat``, ``add``, ``getitem``, ``conv2d``."""
    name = getattr(func, "__name__", None) or type(func).__name__
    if name == "__get__":  # a property of Tensor (``x.T``, ``x.data``)
        name = getattr(getattr(func, "__self__", None), "__name__", "attribute")
    return name.strip("_") or name


@dataclass
class _Frame:
    """A module call in progress."""

    name: str
    counted: bool  # the call is an operation (its type has a rule, or it is a leaf)
    unknown: bool  # a counted leaf whose type has no rule
    nested: bool  # inside another counted call: part of that operation, not one of its own
    first: int
    inputs: tuple[int, ...] = ()
    functional: int = 0  # multiply-adds of functional ops inside an unknown leaf
    unknown_functions: list[str] = field(default_factory=list)


class _Recorder(TorchFunctionMode):
    """Hooks and torch-function mode of one :func:`record` pass (its state, nothing else's)."""

    def __init__(self, names: dict[nn.Module, str]):
        super().__init__()
        self.names = names
        self.ops: list[Op] = []
        self.calls: list[Call] = []
        self.stack: list[_Frame] = []
        self.producers: dict[int, tuple[weakref.ref, int]] = {}
        self.param_keys: dict[int, tuple[int, int]] = {}  # id(parameter) -> (key, elements)
        self.params_alive: list[nn.Parameter] = []  # keeps the ids above unique during the pass
        self.times: dict[str, int] = {}  # op names given so far
        self.busy = False  # inside a hook: tensor calls made by the counter itself are not the model's

    # --- bookkeeping ---------------------------------------------------------------------------

    def producer(self, tensor: torch.Tensor) -> int | None:
        entry = self.producers.get(id(tensor))
        return entry[1] if entry is not None and entry[0]() is tensor else None

    def producers_of(self, value: Any) -> tuple[int, ...]:
        found = {p for t in tensors_in(value) if (p := self.producer(t)) is not None}
        return tuple(sorted(found))

    def param_key(self, p: nn.Parameter) -> int:
        entry = self.param_keys.get(id(p))
        if entry is None:
            entry = self.param_keys[id(p)] = (len(self.param_keys), p.numel())
            self.params_alive.append(p)
        return entry[0]

    def unique(self, name: str) -> str:
        n = self.times.get(name, 0) + 1
        self.times[name] = n
        return name if n == 1 else f"{name}#{n}"

    def add(self, output: Any, **fields: Any) -> None:
        index = len(self.ops)
        tensors = list(tensors_in(output))
        shape = tuple(tensors[0].shape) if tensors else None
        self.ops.append(Op(index=index, shape=shape, **fields))
        for t in tensors:
            self.producers[id(t)] = (weakref.ref(t), index)

    def counted_frame(self) -> _Frame | None:
        """The outermost counted module call in progress: the operation being recorded, if any."""
        return next((f for f in self.stack if f.counted), None)

    # --- module hooks --------------------------------------------------------------------------

    def before(self, module: nn.Module, args: tuple, kwargs: dict) -> None:
        self.busy = True
        try:
            outer = self.counted_frame()
            known = rule_for(module) is not None
            container = isinstance(module, (nn.Sequential, nn.ModuleList, nn.ModuleDict))
            counted = known or (next(module.children(), None) is None and not container)
            frame = _Frame(self.names[module], counted, counted and not known, outer is not None,
                           len(self.ops))
            if counted and outer is None:
                frame.inputs = self.producers_of((args, kwargs))
            self.stack.append(frame)
        finally:
            self.busy = False

    def after(self, module: nn.Module, args: tuple, kwargs: dict, output: Any) -> None:
        self.busy = True
        try:
            frame = self.stack.pop()
            if not frame.counted:
                self.calls.append(Call(frame.name, frame.first, len(self.ops)))
                return
            if frame.nested:
                return
            found = rule_for(module)
            count = found(module, args, output) if found is not None else OpCount(
                functional_macs=frame.functional)
            params = tuple(self.param_key(p) for p in module.parameters())
            self.add(
                output, name=self.unique(frame.name), kind="module", type=type(module).__name__,
                module=frame.name, count=count, inputs=frame.inputs, params=params,
                unknown_module=frame.unknown, unknown_functions=tuple(frame.unknown_functions),
            )
        finally:
            self.busy = False

    # --- functional ops ------------------------------------------------------------------------

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        result = meta_shapes.compute(func, args, kwargs)
        if self.busy:
            return result
        rule = FUNCTION_RULES.get(func)
        unknown = func in MULTIPLY_ADD_FUNCTIONS
        counted = self.counted_frame()
        if counted is not None:  # part of a counted module's call, which is the operation
            if counted.unknown:  # no rule for the module: its functional multiply-adds are what is known
                counted.functional += rule(args, kwargs, result) if rule is not None else 0
                if unknown:
                    counted.unknown_functions.append(function_name(func))
            return result
        frame = self.stack[-1] if self.stack else None
        if next(tensors_in(result), None) is None:
            return result  # sizes, shapes, numbers: no data flows on
        name = function_name(func)
        owner = frame.name if frame is not None else ""
        params = tuple(self.param_key(t) for t in tensors_in((args, kwargs)) if isinstance(t, nn.Parameter))
        self.add(
            result, name=self.unique(f"{owner}/{name}" if owner else name), kind="function",
            type=name, module=owner,
            count=OpCount(functional_macs=rule(args, kwargs, result) if rule is not None else 0),
            inputs=self.producers_of((args, kwargs)), params=params,
            unknown_functions=(name,) if unknown else (),
        )
        return result

def select_exits(result: Any, outputs: Callable[[Any], Any] | None = None) -> tuple[list[torch.Tensor], tuple[str, ...]]:
    """The exits' tensors and names in what a run returned (see :func:`record`); :class:`OutputError`
    when they are not one tensor per exit."""
    if outputs is not None:
        result = outputs(result)
    if isinstance(result, torch.Tensor):
        raise OutputError(
            "1 output (a tensor): an early-exit network returns one output per exit (a list, "
            "tuple or dict of tensors, exit 1 first); pass outputs= to pick them out of what it returns"
        )
    if isinstance(result, dict):
        names, values = tuple(str(k) for k in result), list(result.values())
    elif isinstance(result, (list, tuple)):
        values = list(result)
        names = tuple(str(k) for k in range(1, len(values) + 1))
    else:
        raise OutputError(
            f"a {type(result).__name__}: an early-exit network returns one tensor per exit (a "
            "list, tuple or dict of tensors); pass outputs= to pick them out of what it returns"
        )
    if not values:
        raise OutputError("no outputs (an empty collection): an early-exit network returns one tensor per exit")
    for name, value in zip(names, values):
        if not isinstance(value, torch.Tensor):
            raise OutputError(
                f"exit {name} is a {type(value).__name__}, not a tensor: pass outputs= to pick one "
                "tensor per exit out of what the model returns"
            )
    return values, names


def record(
    model: nn.Module,
    run: Callable[[], Any],
    *,
    outputs: Callable[[Any], Any] | None | bool = False,
    input_shapes: tuple[tuple[int, ...], ...] = (),
) -> Dataflow:
    """Run ``run()`` once (under ``torch.no_grad()``) with ``model``'s modules recorded.

    ``outputs``: ``False`` (default) to select no exits; ``None`` to take the exits from what
    ``run()`` returned (a list, tuple or dict of tensors); a callable to pick them out of it first
    (``lambda out: out[0]``).  Raises :class:`OutputError` when they are not one tensor per exit.
    Whatever ``run()`` raises is raised as it is, after the hooks are removed.
    """
    names = {m: name for name, m in model.named_modules()}
    recorder = _Recorder(names)
    handles = []
    try:
        for module in names:
            handles.append(module.register_forward_pre_hook(recorder.before, with_kwargs=True))
            handles.append(module.register_forward_hook(recorder.after, with_kwargs=True))
        with torch.no_grad(), recorder:
            result = run()
    finally:
        for handle in handles:
            handle.remove()
    produced: tuple[int, ...] = ()
    exit_names: tuple[str, ...] = ()
    if outputs is not False:
        tensors, exit_names = select_exits(result, outputs)
        found = []
        for name, tensor in zip(exit_names, tensors):
            index = recorder.producer(tensor)
            if index is None:
                raise OutputError(
                    f"exit {name} was not computed by the model (it is an input or a constant)"
                )
            found.append(index)
        produced = tuple(found)
    sizes = {key: n for key, n in recorder.param_keys.values()}
    return Dataflow(tuple(recorder.ops), tuple(recorder.calls), produced, exit_names, sizes, input_shapes)


@contextmanager
def evaluating(model: nn.Module) -> Iterator[nn.Module]:
    """``model`` in eval mode within the block; every submodule's own mode restored afterwards."""
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        yield model
    finally:
        for m, training in modes:
            m.training = training


def example_inputs(model: nn.Module, input_size: Any = None, inputs: Any = None) -> tuple[torch.Tensor, ...]:
    """The tensors a model msdprof did not build is run on: ``inputs`` (a tensor or a tuple of
    tensors) as given, else one zero image of ``input_size`` -- a side, ``(H, W)`` or ``(C, H, W)``
    in pixels (3 channels unless given) -- on the model's device, in its floating-point dtype."""
    if inputs is not None:
        if input_size is not None:
            raise OptionError("input_size", shape_text(input_size), "give input_size or inputs, not both")
        given = (inputs,) if isinstance(inputs, torch.Tensor) else tuple(inputs) if isinstance(
            inputs, (tuple, list)) else None
        if not given or not all(isinstance(t, torch.Tensor) for t in given):
            raise OptionError("inputs", type(inputs).__name__, "must be a tensor or a tuple of tensors")
        return given
    if input_size is None:
        raise OptionError(
            "input_size", "missing",
            f"{type(model).__name__} is not an MSDNet msdprof built: give input_size "
            "(a side, (H, W) or (C, H, W)) or inputs (example tensors)",
        )
    shape = parse_input_size(input_size)
    first = next(model.parameters(), None)
    device = first.device if first is not None else torch.device("cpu")
    dtype = first.dtype if first is not None and first.is_floating_point() else torch.float32
    if device.type != "meta":  # checked before it is made
        check_bytes("input-size", shape_text(input_size), math.prod(shape) * dtype.itemsize,
                    f"one {shape_text(shape)} {str(dtype).removeprefix('torch.')} image")
    return (torch.zeros(1, *shape, device=device, dtype=dtype),)


#: Largest side and channel count of a generic model's example image (a sanity bound).
MAX_INPUT_SIDE = 16384


def parse_input_size(value: Any) -> tuple[int, int, int]:
    """(channels, height, width) from a side, ``(H, W)``, ``(C, H, W)`` or ``"3x32x32"``/``"32"``."""
    text = shape_text(value)
    if isinstance(value, str):
        try:
            value = tuple(int(part) for part in value.lower().split("x"))
        except ValueError:
            value = None
    elif isinstance(value, int) and not isinstance(value, bool):
        value = (value,)
    if (not isinstance(value, (tuple, list)) or not 1 <= len(value) <= 3 or any(
            isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= MAX_INPUT_SIDE for v in value)):
        raise OptionError(
            "input-size", text,
            f"must be a side, HxW or CxHxW in whole pixels from 1 to {MAX_INPUT_SIDE} (e.g. 32 or 3x32x32)",
        )
    if len(value) == 1:
        return 3, value[0], value[0]
    if len(value) == 2:
        return 3, value[0], value[1]
    return value[0], value[1], value[2]


def record_network(
    model: nn.Module,
    *,
    input_size: Any = None,
    inputs: Any = None,
    outputs: Callable[[Any], Any] | None = None,
) -> Dataflow:
    """:func:`record` of one forward pass of any early-exit ``model`` in eval mode (every
    submodule's mode restored afterwards), its exits selected, on :func:`example_inputs`.

    A user's mistake is an :class:`~msdnet.options.OptionError`: outputs that are not one tensor per
    exit, inputs the model's ``forward`` refuses (its exception's first line is named)."""
    given = example_inputs(model, input_size, inputs)
    shapes = tuple(tuple(t.shape) for t in given)
    with evaluating(model):
        try:
            return record(model, lambda: model(*given), outputs=outputs, input_shapes=shapes)
        except OutputError as error:
            raise OptionError("model", type(model).__name__, f"returns {error}") from error
        except Exception as error:  # the model's own forward refused the inputs
            what = shapes_text(shapes)
            message = str(error).strip().splitlines()[0] if str(error).strip() else ""
            raise OptionError(
                "inputs" if inputs is not None else "input-size", what,
                f"{type(model).__name__} failed on it: {type(error).__name__}: {message}",
            ) from error


def count_modules(
    model: nn.Module, *args: Any, run: Callable[..., Any] | None = None, **kwargs: Any
) -> Counts:
    """Run ``model(*args, **kwargs)`` once and count every module call, per module name.

    ``run``: call ``run(*args, **kwargs)`` instead, with ``model``'s modules recorded -- to count
    another entry point of the model (e.g. ``run=model.early_exit``).

    A per-module view of :func:`record`: a functional op is charged to the module
    whose ``forward`` called it.  The model is left exactly as it was (no attributes, buffers,
    hooks or patched functions).  Each parameter is counted once, by the first module that reads it.
    """
    flow = record(model, lambda: (model if run is None else run)(*args, **kwargs))
    ops: dict[str, OpCount] = {}
    params: dict[str, int] = {}
    calls: dict[str, int] = {}
    unsupported: dict[str, int] = {}
    for op, firsts in zip(flow.ops, flow.first_reads()):
        if op.kind == "function" and op.count == OpCount() and not firsts:
            continue  # free and reading no parameter (cat, view, +): nothing to charge its caller
        ops[op.module] = ops.get(op.module, OpCount()) + op.count
        params[op.module] = params.get(op.module, 0) + sum(flow.param_sizes[p] for p in firsts)
        if op.kind == "module":
            calls[op.module] = calls.get(op.module, 0) + 1
        if op.unknown_module:
            unsupported[op.type] = unsupported.get(op.type, 0) + 1
    for call in flow.calls:
        if call.module in ops:
            calls[call.module] = calls.get(call.module, 0) + 1
    modules = {name: ModuleCount(ops[name], params[name], calls.get(name, 0)) for name in ops}
    return Counts(modules, unsupported)


__all__ = [
    "Call", "Dataflow", "Op", "OutputError", "count_modules", "evaluating", "example_inputs", "function_name",
    "tensors_in",
    "parse_input_size", "record", "record_network", "select_exits",
]
