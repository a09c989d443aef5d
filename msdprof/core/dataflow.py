"""The dataflow of one forward pass: which operation produced which tensor, from which tensors.

:func:`record` runs a callable once with forward hooks on every module of a model and a scoped
torch-function mode, and returns a :class:`Dataflow`: the operations that ran, in execution order,
each with its count (:class:`msdprof.core.counting.OpCount`), the operations whose results it read, the
parameters it read and its output shape.  An operation is

- a call of a *counted* module: one whose type has a rule in :data:`msdprof.core.counting.RULES`, or a
  leaf module (one with no children; an empty ``nn.Sequential`` is a pass-through, not a leaf).
  The model itself is never a leaf: a model with no children and no rule is recorded by its
  functional ops.  What
  runs inside a counted module is part of it, except the submodules that run inside a module whose
  rule is its base class's (a ``BatchNormAct2d(nn.BatchNorm2d)`` with an ``act`` child): the rule
  knows the base class's work only, so they are operations of their own.  A leaf whose type has no
  rule is recorded all the same, marked ``unknown_module``, with the multiply-adds its kernels did
  by torch's formulas (``functional_macs``);
- a functional op called outside counted modules (``torch.cat``, ``+``, ``view``, indexing,
  ``F.interpolate``, ``F.conv2d``, ``matmul`` ...) whose result holds a tensor: its multiply-adds
  by its rule in :data:`msdprof.core.counting.FUNCTION_RULES`, else those its kernels did by
  torch's formulas (``einsum``, ``tensordot``: ``functional_macs``).

Every ATen kernel an operation runs is seen too (a ``TorchDispatchMode``, meta tensors included),
and measured by torch's own FLOP formulas: ``aten_macs`` and ``opaque`` of each :class:`Op` (see
:func:`msdprof.core.counting.aten_macs`), against which what its rule counted is checked.

Tensors are followed by identity (weak references, so nothing is kept alive); an in-place op makes
its result's producer the op itself.  Every module call that is not an operation is kept as a
:class:`Call` (its span of operations), which tells what ran inside which submodule.

Nothing is left behind: hooks are removed in a ``finally``, the mode is scoped to a ``with`` block,
nothing is attached to the model or patched in torch.  One model from several threads: a record
(and :func:`evaluating`) holds the model and its submodules for its thread, so a second thread's
on any of them waits for it (each sees the model as it was given, and leaves it so), and the hooks
record the calls of their own thread only.  On ``meta`` tensors the mode also takes the
shape-only shortcuts of :mod:`msdprof.core.meta_shapes`.
"""

from __future__ import annotations

import dataclasses
import gc
import math
import threading
import warnings
import weakref
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator, Sequence

import torch
from torch import nn
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode

from msdnet.options import OptionError

from . import counting, meta_shapes, trees
from .counting import CONVENTIONS, FUNCTION_RULES, RULES, Counts, KernelTally, ModuleCount, OpCount, counted_macs, rule_for
from .units import INPUT_DTYPE_NAMES, INPUT_FORMS, check_bytes, first_line, one_line, shape_text, shapes_text


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
    ``unknown_module``: a leaf module whose type has no counting rule.  ``unknown_functions``: the
    functional op's name when it is one with no rule whose kernels multiply matrices by amounts no
    formula gives.
    ``aten_macs``: the multiply-adds of the ATen kernels it ran, by torch's FLOP formulas (its
    submodules that are operations of their own excluded); ``opaque``: the kernels it ran that
    multiply matrices by amounts no formula gives (see :func:`msdprof.core.counting.aten_macs`).
    ``allocates``: the activation storages (keys of :attr:`Dataflow.storage_bytes`) its outputs
    are the first to lie on -- new memory; ``touches``: every activation storage it reads or
    writes (its inputs' and outputs'; a view or an in-place result lies on its input's storage).
    ``held``: bytes of activation storage still referenced when it finished -- its inputs and
    outputs and whatever the model's code holds then (Python frees a tensor when its last
    reference goes, on ``meta`` as on a real device).
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
    aten_macs: int = 0
    opaque: tuple[str, ...] = ()
    allocates: tuple[int, ...] = ()
    touches: tuple[int, ...] = ()
    held: int = 0


@dataclass(frozen=True)
class ValueRead:
    """Where a recorded forward read tensor values: ``function`` (``item``, ``nonzero``,
    ``bool`` ...) called ``calls`` times from the ``forward`` of ``module`` (``""``: the model's
    own)."""

    function: str
    module: str
    calls: int

    def __str__(self) -> str:
        return f"{self.function} x{self.calls}" + (f" in {self.module}" if self.module else "")


@dataclass(frozen=True)
class Idle:
    """A module none of whose own parameters was read in a recorded forward (it did not run on these
    inputs: an expert no token reached, a head the forward skipped): its ``params`` (elements) and
    ``exit``, the first exit (1-based) by which a module holding it had run (``None``: none but
    the model itself), from which on its parameters are missing from the figures."""

    module: str
    type: str
    params: int
    exit: int | None


@dataclass(frozen=True)
class Call:
    """A call of a module that is not itself an :class:`Op`: the operations ``first`` to ``end - 1``
    ran inside it.  ``module`` is its name (``""`` for the model itself), ``type`` its class name."""

    module: str
    first: int
    end: int
    type: str = ""


@dataclass(frozen=True)
class Dataflow:
    """What :func:`record` saw.

    ``ops`` in execution order; ``calls``: the module calls that hold operations; ``outputs``: per
    exit, the index of the operation that produced it (``()`` when no exits were selected);
    ``exit_names``: the exits' names (a dict's keys, else ``"1"``, ``"2"`` ...); ``param_sizes``:
    elements of each parameter read, by key; ``input_shapes``: shapes of the tensors given to the
    model, ``input_names`` their keyword names (``""``: positional) and ``input_dtypes`` their
    dtypes (``"float32"``, ``"int64"`` ...); ``model``: the class name of the module recorded and ``wrapper`` what it was wrapped in
    (see :func:`unwrap`), set by :func:`record_network`;
    ``param_bytes``: bytes of each parameter read, by key (its dtype's size); ``storage_bytes``:
    bytes of each activation storage -- memory an operation of the pass allocated (not the
    model's inputs, parameters or buffers, nor views of them), by key; ``output_storages``: per
    exit, the activation storage its tensor lies on (``-1``: none).

    ``batch_inputs``: per input, whether it carries the batch (:func:`batch_carriers`, judged on
    the inputs as given, before a ``batch`` scaled them; ``()``: not said).

    ``on_values``: whether the pass made real tensors (else it ran on shapes alone, ``meta``);
    ``value_reads``: where the model read tensor values into Python or made shapes from them
    (``.item()``, ``nonzero``, ``bool(t)`` ...): its figures then hold for these inputs only;
    ``same_tensor``: exits left out because the model returned the very tensor of an earlier exit
    again, as (its name, the earlier exit's name); ``idle``: modules whose parameters no operation
    read (they did not run on these inputs).
    """

    ops: tuple[Op, ...]
    calls: tuple[Call, ...]
    outputs: tuple[int, ...] = ()
    exit_names: tuple[str, ...] = ()
    param_sizes: dict[int, int] = field(default_factory=dict)
    input_shapes: tuple[tuple[int, ...], ...] = ()
    model: str = ""
    wrapper: str = ""
    param_bytes: dict[int, int] = field(default_factory=dict)
    storage_bytes: dict[int, int] = field(default_factory=dict)
    output_storages: tuple[int, ...] = ()
    input_names: tuple[str, ...] = ()
    input_dtypes: tuple[str, ...] = ()
    on_values: bool = False
    value_reads: tuple[ValueRead, ...] = ()
    same_tensor: tuple[tuple[str, str], ...] = ()
    idle: tuple[Idle, ...] = ()
    batch_inputs: tuple[bool, ...] = ()

    @property
    def carriers(self) -> tuple[bool, ...]:
        """Per input (in the order of ``input_shapes``), whether it carries the batch: as the
        record says (``batch_inputs``), else read off the shapes (:func:`batch_carriers`)."""
        return self.batch_inputs or batch_carriers(self.input_shapes)

    def eager_ends(self) -> list[int]:
        """Per exit k, the last operation that ran before outputs 1..k were all complete (the
        eager schedule to exit k is operations 0 to this one)."""
        ends, done = [], -1
        for producer in self.outputs:
            done = max(done, producer)
            ends.append(done)
        return ends

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

    def held_peak(self) -> int:
        """The most bytes of activation storage the pass held at once, as the model's code is
        written (the largest :attr:`Op.held`): the memory model's as-written peak of the whole
        forward (:mod:`msdprof.core.memory`), for the batch recorded."""
        return max((op.held for op in self.ops), default=0)

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


def tensors_in(value: Any) -> list[torch.Tensor]:
    """The tensors in ``value`` and in the lists, tuples and dict values inside it, and in the
    dataclasses and transformers caches there (:func:`msdprof.core.trees.leaves`), in order."""
    if isinstance(value, torch.Tensor):
        return [value]
    found: list[torch.Tensor] = []
    _gather(value, found)
    return found


def _gather(value: Any, found: list[torch.Tensor]) -> None:
    if isinstance(value, torch.Tensor):
        found.append(value)
    elif isinstance(value, (list, tuple)):
        for item in value:
            _gather(item, found)
    elif isinstance(value, dict):
        for item in value.values():
            _gather(item, found)
    elif not isinstance(value, _PLAIN) and (dataclasses.is_dataclass(value) or trees.is_cache(value)):
        found.extend(tensor for _, tensor in trees.leaves(value))


#: Values :func:`tensors_in` need not look into.
_PLAIN = (int, float, bool, str, type(None), torch.dtype, torch.device, type)


def function_name(func: Callable[..., Any]) -> str:
    """A short name for a function torch hands a mode: ``cat``, ``add``, ``getitem``, ``conv2d``."""
    name = getattr(func, "__name__", None) or type(func).__name__
    if name == "__get__":  # a property of Tensor (``x.T``, ``x.data``)
        name = getattr(getattr(func, "__self__", None), "__name__", "attribute")
    return name.strip("_") or name


#: Tensor methods that hand tensor values to Python (a value read, see :class:`ValueRead`); ATen
#: ops that do (``nonzero``, ``_local_scalar_dense`` ...) are known by their tags
#: (:func:`msdprof.core.meta_shapes.value_dependent`).
VALUE_METHODS = frozenset({
    torch.Tensor.item, torch.Tensor.tolist, torch.Tensor.numpy, torch.Tensor.__bool__,
    torch.Tensor.__int__, torch.Tensor.__float__, torch.Tensor.__index__, torch.Tensor.__complex__,
})


#: What a kernel that reads values is called where the model called no function of torch's (a
#: tensor's ``int()`` inside a module): ``item`` for ``_local_scalar_dense``, else its own name.
KERNEL_READS = {"_local_scalar_dense": "item"}


class ReadsValues(BaseException):
    """A pass on shapes alone met a read of tensor values (see :class:`ValueRead`): ``function``
    called from the ``forward`` of ``module``.  A ``BaseException``, so that the model's own
    ``except Exception`` does not swallow it."""

    def __init__(self, function: str, module: str):
        super().__init__(function, module)
        self.function, self.module = function, module

    def __str__(self) -> str:
        return self.function + (f" in {self.module}" if self.module else "")


@dataclass
class ByteGuard:
    """The memory limit of a pass on real tensors, checked before each ATen kernel runs: its new
    results (their sizes from the kernel cache or the op's meta kernel,
    :func:`msdprof.core.meta_shapes.result_bytes`) with the activation storage the model's code
    holds then, :data:`FORWARD_MEMORY_FACTOR` times, and the inputs' ``input_bytes`` must stay
    within :data:`~msdprof.core.units.MAX_BYTES`; else an :class:`OptionError` naming ``option``
    (given as ``typed``) saying ``what`` would not fit and ``fix``."""

    option: str
    typed: Any
    input_bytes: int
    what: str
    fix: str

    def check(self, func: Any, args: tuple, kwargs: dict, held: int) -> None:
        new = meta_shapes.result_bytes(func, args, kwargs)
        if new:
            check_bytes(self.option, self.typed, self.input_bytes + FORWARD_MEMORY_FACTOR * (held + new),
                        self.what, self.fix)


@dataclass
class _Frame:
    """A module call in progress."""

    name: str
    counted: bool  # the call is an operation (its type has a rule, or it is a leaf)
    unknown: bool  # a counted leaf whose type has no rule
    nested: bool  # inside a call that swallows it: part of that operation, not one of its own
    first: int
    swallows: bool = True  # what runs inside is part of it (not so for a rule through a base class)
    inputs: tuple[int, ...] = ()
    args: list[torch.Tensor] | None = None  # the tensors it was given (held until it returns, as the caller holds them)
    kernel_macs: int = 0  # the pass's kernel tally when the call began
    kernel_opaque: int = 0


class _Recorder(TorchFunctionMode):
    """Hooks and torch-function mode of one :func:`record` pass (its state, nothing else's)."""

    def __init__(self, names: dict[nn.Module, str], values: bool = True, guard: ByteGuard | None = None):
        super().__init__()
        self.names = names
        self.values = values  # a value read is allowed (recorded); else it ends the pass (ReadsValues)
        self.guard = guard
        self.reads: dict[tuple[str, str], int] = {}  # (function, module) -> calls that read values
        self.calling: Any = None  # the function being called now (the model's, outermost)
        self.read_in_call = False  # its value read is noted already
        self.on_values = False  # an operation made a real tensor
        self.thread = threading.get_ident()  # the hooks see every thread's calls: only this one's count
        self.ops: list[Op] = []
        self.calls: list[Call] = []
        self.stack: list[_Frame] = []
        self.producers: dict[int, tuple[weakref.ref, int]] = {}
        self.param_keys: dict[int, tuple[int, int]] = {}  # id(parameter) -> (key, elements)
        self.param_bytes: dict[int, int] = {}  # key -> bytes
        # id(storage) -> (weak reference, key, whether an operation of the pass allocated it)
        self.storages: dict[int, tuple[weakref.ref, int, bool]] = {}
        self.storage_bytes: dict[int, int] = {}  # key -> bytes, activation storages only
        self.held = 0  # bytes of the activation storages alive now
        self.next_storage = 0  # the key the next storage seen gets
        self.params_alive: list[nn.Parameter] = []  # keeps the ids above unique during the pass
        self.times: dict[str, int] = {}  # op names given so far
        self.busy = False  # inside a hook: tensor calls made by the counter itself are not the model's
        self.kernels = KernelTally()  # what every ATen kernel of the model did, in running totals

    # --- bookkeeping ---------------------------------------------------------------------------

    def producer(self, tensor: torch.Tensor) -> int | None:
        entry = self.producers.get(id(tensor))
        return entry[1] if entry is not None and entry[0]() is tensor else None

    def producers_of(self, tensors: list[torch.Tensor]) -> tuple[int, ...]:
        found = {p for t in tensors if (p := self.producer(t)) is not None}
        return tuple(sorted(found))

    def param_key(self, p: nn.Parameter) -> int:
        entry = self.param_keys.get(id(p))
        if entry is None:
            entry = self.param_keys[id(p)] = (len(self.param_keys), p.numel())
            self.param_bytes[entry[0]] = p.numel() * p.element_size()
            self.params_alive.append(p)
        return entry[0]

    def storage(self, tensor: torch.Tensor, made: bool) -> tuple[int, bool, bool]:
        """(key, activation, new) of the storage ``tensor`` lies on; a storage seen first as an
        output (``made``) is an activation, one seen first as an input is not (the model's
        inputs, parameters, buffers).  Key ``-1``: a tensor with no storage of its own."""
        try:
            store = tensor.untyped_storage()
        except (RuntimeError, NotImplementedError, TypeError):  # sparse, nested, subclasses
            return -1, False, False
        entry = self.storages.get(id(store))
        if entry is not None and entry[0]() is store:
            return entry[1], entry[2], False
        key = self.next_storage
        self.next_storage += 1
        self.storages[id(store)] = (weakref.ref(store, self._freed(key) if made else None), key, made)
        if made:
            self.storage_bytes[key] = store.nbytes()
            self.held += self.storage_bytes[key]
        return key, made, True

    def _freed(self, key: int) -> Callable[[Any], None]:
        def freed(_: Any) -> None:
            self.held -= self.storage_bytes[key]
        return freed

    def memory_of(self, inputs: list[torch.Tensor], outputs: list[torch.Tensor]) -> dict[str, tuple[int, ...]]:
        """``allocates`` and ``touches`` (see :class:`Op`) of an operation reading the tensors
        ``inputs`` and making ``outputs``."""
        touches: dict[int, None] = {}
        for t in inputs:
            key, activation, _ = self.storage(t, made=False)
            if activation:
                touches[key] = None
        allocates = []
        for t in outputs:
            key, activation, new = self.storage(t, made=True)
            if activation:
                touches[key] = None
                if new:
                    allocates.append(key)
        return {"allocates": tuple(allocates), "touches": tuple(touches)}

    def unique(self, name: str) -> str:
        n = self.times.get(name, 0) + 1
        self.times[name] = n
        return name if n == 1 else f"{name}#{n}"

    def add(self, tensors: list[torch.Tensor], **fields: Any) -> None:
        """Record an operation whose results are the tensors ``tensors``."""
        index = len(self.ops)
        shape = tuple(tensors[0].shape) if tensors else None
        if tensors and not tensors[0].is_meta:
            self.on_values = True
        self.ops.append(Op(index=index, shape=shape, held=self.held, **fields))
        for t in tensors:
            self.producers[id(t)] = (weakref.ref(t), index)

    def swallowing_frame(self) -> _Frame | None:
        """The outermost counted module call in progress that swallows what runs inside it."""
        return next((f for f in self.stack if f.counted and f.swallows), None)

    def counted_frame(self) -> _Frame | None:
        """The operation a tensor call made now is part of: the outermost call that swallows what
        runs inside it, else the innermost counted call, else ``None``."""
        found = self.swallowing_frame()
        return found if found is not None else next((f for f in reversed(self.stack) if f.counted), None)

    def kernels_since(self, macs: int, opaque: int, first: int) -> tuple[int, tuple[str, ...]]:
        """Kernel multiply-adds and opaque kernels since the tally read ``macs``, ``opaque``, less
        those of the operations recorded from index ``first`` on (the submodules that were
        operations of their own)."""
        own_macs = self.kernels.macs - macs - sum(op.aten_macs for op in self.ops[first:])
        names = list(self.kernels.opaque[opaque:])
        for op in self.ops[first:]:
            for name in op.opaque:
                names.remove(name)
        return own_macs, tuple(names)

    # --- module hooks --------------------------------------------------------------------------

    def before(self, module: nn.Module, args: tuple, kwargs: dict) -> None:
        if threading.get_ident() != self.thread:
            return
        self.busy = True
        try:
            outer = self.swallowing_frame()
            name = self.names[module]
            known = rule_for(module) is not None
            leaf = next(module.children(), None) is None
            container = isinstance(module, (nn.Sequential, nn.ModuleList, nn.ModuleDict))
            counted = known or (leaf and not container and name != "")  # the root is never a leaf
            frame = _Frame(name, counted, counted and not known, outer is not None, len(self.ops),
                           swallows=not known or leaf or type(module) in RULES,
                           kernel_macs=self.kernels.macs, kernel_opaque=len(self.kernels.opaque))
            if counted and outer is None:
                frame.args = tensors_in((args, kwargs))
                frame.inputs = self.producers_of(frame.args)
            self.stack.append(frame)
        finally:
            self.busy = False

    def after(self, module: nn.Module, args: tuple, kwargs: dict, output: Any) -> None:
        if threading.get_ident() != self.thread:
            return
        self.busy = True
        try:
            frame = self.stack.pop()
            if not frame.counted:
                self.calls.append(Call(frame.name, frame.first, len(self.ops), type(module).__name__))
                return
            if frame.nested:
                return
            macs, opaque = self.kernels_since(frame.kernel_macs, frame.kernel_opaque, frame.first)
            found = rule_for(module)
            # no rule for the module: the multiply-adds its kernels did, by torch's formulas
            count = found(module, args, output) if found is not None else OpCount(functional_macs=macs)
            params = tuple(self.param_key(p) for p in module.parameters(recurse=frame.swallows))
            inside = tuple(range(frame.first, len(self.ops)))  # submodules that were operations
            outputs = tensors_in(output)
            self.add(
                outputs, name=self.unique(frame.name), kind="module", type=type(module).__name__,
                module=frame.name, count=count, inputs=tuple(sorted({*frame.inputs, *inside})),
                params=params, unknown_module=frame.unknown, aten_macs=macs, opaque=opaque,
                **self.memory_of(frame.args or [], outputs),
            )
        finally:
            self.busy = False

    # --- functional ops ------------------------------------------------------------------------

    def read_value(self, name: str, read: Iterable[torch.Tensor]) -> None:
        """The call being made reads the values of the tensors ``read`` into Python (see
        :class:`ValueRead`; ``name``: what it is called when no function of the model's is being
        called): noted once per call.  In a pass on shapes alone, a read of a meta tensor ends the
        pass (:class:`ReadsValues`); a real tensor there is a constant of the model's code, not the
        data, and its read is not noted."""
        if self.read_in_call:
            return
        where = (function_name(self.calling) if self.calling is not None else name,
                 self.stack[-1].name if self.stack else "")
        if not self.values:
            if any(t.is_meta for t in read):
                raise ReadsValues(*where)
            return
        self.read_in_call = True
        self.reads[where] = self.reads.get(where, 0) + 1

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if self.busy:
            return meta_shapes.compute(func, args, kwargs)
        self.calling, self.read_in_call = func, False
        try:
            if func in VALUE_METHODS:
                self.read_value(function_name(func), tensors_in(args))
            return self._call(func, args, kwargs)
        finally:
            self.calling = None

    def _call(self, func: Any, args: tuple, kwargs: dict) -> Any:
        macs, opaque = self.kernels.macs, len(self.kernels.opaque)
        self.busy = True  # a shortcut's empty result is no kernel of the model's
        try:
            result = meta_shapes.shortcut(func, args, kwargs)
        finally:
            self.busy = False
        if result is None:
            result = func(*args, **kwargs)
        else:  # no kernel ran: torch's formula for the kernel it stands for
            self.kernels.macs += counting.shortcut_macs(func, args, kwargs, result)
        if self.counted_frame() is not None:  # part of a counted module's call, which is the operation
            return result
        frame = self.stack[-1] if self.stack else None
        outputs = tensors_in(result)
        if not outputs:
            return result  # sizes, shapes, numbers: no data flows on
        name = function_name(func)
        owner = frame.name if frame is not None else ""
        inputs = tensors_in((args, kwargs))
        params = tuple(self.param_key(t) for t in inputs if isinstance(t, nn.Parameter))
        rule = FUNCTION_RULES.get(func)
        kernel_macs = self.kernels.macs - macs
        opaque_kernels = tuple(self.kernels.opaque[opaque:])
        # no rule for the function (einsum, tensordot ...): the multiply-adds its kernels did
        counted_macs = rule(args, kwargs, result) if rule is not None else kernel_macs
        self.add(
            outputs, name=self.unique(f"{owner}/{name}" if owner else name), kind="function",
            type=name, module=owner, count=OpCount(functional_macs=counted_macs),
            inputs=self.producers_of(inputs), params=params,
            unknown_functions=(name,) if rule is None and opaque_kernels else (),
            aten_macs=kernel_macs, opaque=opaque_kernels,
            **self.memory_of(inputs, outputs),
        )
        return result


class _KernelView(TorchDispatchMode):
    """Every ATen kernel the model runs during a :func:`record` pass, tallied by torch's FLOP
    formulas into its recorder's running totals (the counter's own calls excluded)."""

    def __init__(self, recorder: _Recorder):
        super().__init__()
        self.recorder = recorder

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        recorder = self.recorder
        if recorder.busy:
            return meta_shapes.kernel(func, args, kwargs)
        if meta_shapes.value_dependent(func):
            recorder.read_value(KERNEL_READS.get(func._overloadpacket.__name__, func._overloadpacket.__name__),
                                tensors_in((args, kwargs)))
        if recorder.guard is not None:
            recorder.guard.check(func, args, kwargs, recorder.held)
        out = meta_shapes.kernel(func, args, kwargs)
        recorder.kernels.add(func, args, kwargs, out)
        return out


#: How to pick one tensor per exit out of what a model returns (for messages).
OUTPUTS_HINT = ("pick one tensor per exit with --outputs (outputs= in Python): a key path taken of "
                "each exit's output or of what the model returns, such as 0, exit_logits or "
                "0.logits, or FILE.py:FUNCTION given what it returns")

#: What ``outputs=`` may be: a callable applied to what the model returns, or a key path (an
#: index, a key, or steps joined by dots: ``exit_logits``, ``0.logits``).
Outputs = Callable[[Any], Any] | int | str | None


def _exits_of(value: Any) -> tuple[list[Any], tuple[str, ...]] | None:
    """The items of an exit collection (a list or tuple, exits named 1, 2 ...; a dict, by key)."""
    if isinstance(value, dict):
        return list(value.values()), tuple(str(k) for k in value)
    if isinstance(value, (list, tuple)):
        return list(value), tuple(str(k) for k in range(1, len(value) + 1))
    return None


def _follow(result: Any, path: tuple[Any, ...]) -> tuple[list[Any], tuple[str, ...]]:
    """The exits a key path picks out of ``result``: at each level, the path taken of every exit's
    output when ``result`` is a collection of exits holding it (``0`` of ``[(logits, features),
    ...]``), else its first step taken of ``result`` itself and the rest followed from there
    (``exit_logits`` of ``{"exit_logits": [...], "past_key_values": ...}``)."""
    found = _exits_of(result)
    if found is not None and found[0] and not any(isinstance(v, torch.Tensor) for v in found[0]):
        try:
            picked = [trees.pick(v, path) for v in found[0]]
        except LookupError:
            picked = None
        if picked is not None and all(isinstance(t, torch.Tensor) for t in picked):
            return picked, found[1]
    if not path:
        if found is None:
            raise OutputError(f"{trees.describe(result)}: an early-exit network returns one tensor "
                              f"per exit (a list, tuple or dict of tensors); {OUTPUTS_HINT}")
        return found
    try:
        inner = trees.child(result, path[0])
    except LookupError:
        if isinstance(result, dict):
            keys = ", ".join(str(k) for k in list(result)[:8]) + (", ..." if len(result) > 8 else "")
            raise OutputError(f"a {type(result).__name__} of {keys}, which has no item {path[0]} (nor "
                              f"has each of its values {trees.path_text(path)}); {OUTPUTS_HINT}") from None
        if found is not None and found[0] and not isinstance(found[0][0], torch.Tensor):
            raise OutputError(f"exit {found[1][0]} as {trees.describe(found[0][0])}, which has no item "
                              f"{trees.path_text(path)}, nor has what it returns ({trees.describe(result)}) "
                              f"an item {path[0]}; {OUTPUTS_HINT}") from None
        raise OutputError(f"{trees.describe(result)}, which has no item {path[0]}; {OUTPUTS_HINT}") from None
    return _follow(inner, path[1:])


def select_exits(result: Any, outputs: Outputs = None) -> tuple[list[torch.Tensor], tuple[str, ...]]:
    """The exits' tensors and names in what a run returned (see :func:`record`): ``outputs`` a
    callable is applied to it first; a key path (an ``int``, a ``str``, steps joined by dots) picks
    the exits out of it (:func:`_follow`: of each exit's output, else of what it returns).
    :class:`OutputError` when they are not one tensor per exit."""
    if callable(outputs):
        try:
            result = outputs(result)
        except Exception as error:
            raise OutputError(f"what the model returned made the outputs function fail: "
                              f"{type(error).__name__}: {one_line(error)}") from error
    if isinstance(result, torch.Tensor):
        raise OutputError(f"1 output (a tensor): an early-exit network returns one output per exit; {OUTPUTS_HINT}")
    if isinstance(outputs, (int, str)) and not isinstance(outputs, bool):
        values, names = _follow(result, trees.parse_path(outputs))
    else:
        found = _exits_of(result)
        if found is None:
            raise OutputError(f"a {type(result).__name__}: an early-exit network returns one tensor per exit "
                              f"(a list, tuple or dict of tensors); {OUTPUTS_HINT}")
        values, names = found
    if not values:
        raise OutputError("no outputs (an empty collection): an early-exit network returns one tensor per exit")
    for name, value in zip(names, values):
        if not isinstance(value, torch.Tensor):
            raise OutputError(f"exit {name} as a {type(value).__name__}{_length(value)}, not a tensor; {OUTPUTS_HINT}")
    return values, names


def _length(value: Any) -> str:
    return f" of {len(value)}" if isinstance(value, (list, tuple, dict)) else ""




def record(
    model: nn.Module,
    run: Callable[[], Any],
    *,
    outputs: Outputs | bool = False,
    inputs: Inputs | None = None,
    values: bool = True,
    guard: ByteGuard | None = None,
    twins: dict[int, torch.Tensor] | None = None,
) -> Dataflow:
    """Run ``run()`` once (under ``torch.no_grad()``) with ``model``'s modules recorded.

    ``outputs``: ``False`` (default) to select no exits; ``None`` to take the exits from what
    ``run()`` returned (a list, tuple or dict of tensors); a callable to pick them out of it first
    (``lambda out: out[0]``), an index or key to pick one item of each exit's output (see
    :func:`select_exits`).  ``inputs``: what ``run()`` gives the model, for the record's
    ``input_shapes``, ``input_names`` and ``input_dtypes``.  Raises :class:`OutputError` when they are not one tensor per exit.

    ``values``: whether the model may read tensor values (noted in ``value_reads``); ``False``
    for a pass on shapes alone, which such a read ends with :class:`ReadsValues`.  ``guard``: the memory limit of a
    pass on real tensors (:class:`ByteGuard`).  ``twins``: when ``run()`` calls the model with
    stand-ins for its parameters (:func:`on_shapes`), each one's stand-in by ``id`` of the
    parameter (for ``idle``).

    Whatever ``run()`` raises is raised as it is, after the hooks are removed.  The model is held
    for this thread meanwhile: a record of it (or of a submodule) from another thread waits.
    """
    names = {m: name for name, m in model.named_modules()}
    recorder = _Recorder(names, values, guard)
    handles = []
    with _held(model), collection_paused():
        try:
            for module in names:
                handles.append(module.register_forward_pre_hook(recorder.before, with_kwargs=True))
                handles.append(module.register_forward_hook(recorder.after, with_kwargs=True))
            with torch.no_grad(), recorder, _KernelView(recorder):
                result = run()
        finally:
            for handle in handles:
                handle.remove()
    produced: list[int] = []
    exit_names: list[str] = []
    tensors: list[torch.Tensor] = []
    same: list[tuple[str, str]] = []
    if outputs is not False:
        first_named: dict[int, str] = {}  # id(tensor) -> the first exit returning it
        selected, selected_names = select_exits(result, outputs)
        for name, tensor in zip(selected_names, selected):
            earlier = first_named.setdefault(id(tensor), name)
            if earlier != name:
                same.append((name, earlier))
                continue
            index = recorder.producer(tensor)
            if index is None:
                raise OutputError(
                    f"exit {name} was not computed by the model (it is an input or a constant)"
                )
            produced.append(index)
            exit_names.append(name)
            tensors.append(tensor)
    sizes = {key: n for key, n in recorder.param_keys.values()}
    kept = tuple(key if activation else -1
                 for key, activation, _ in (recorder.storage(t, made=False) for t in tensors))
    given = inputs if inputs is not None else Inputs()
    flow = Dataflow(tuple(recorder.ops), tuple(recorder.calls), tuple(produced), tuple(exit_names), sizes,
                    given.shapes, param_bytes=dict(recorder.param_bytes),
                    storage_bytes=dict(recorder.storage_bytes), output_storages=kept,
                    input_names=given.names, input_dtypes=given.dtypes,
                    on_values=recorder.on_values,
                    value_reads=tuple(ValueRead(f, m, n) for (f, m), n in recorder.reads.items()),
                    same_tensor=tuple(same))
    return dataclasses.replace(flow, idle=_idle(names, flow, recorder.param_keys, twins or {}))


def _idle(names: dict[nn.Module, str], flow: Dataflow, read: dict[int, Any], twins: dict[int, torch.Tensor]
          ) -> tuple[Idle, ...]:
    """The modules (``names``: every module of the model, by its name) with parameters no
    operation of ``flow`` read (by ``id`` in ``read``, through their ``twins``): the outermost
    module none of whose parameters was read (an expert, not its layers), or a module some of whose
    own were not; each with the first exit by which it or a module holding it (not the model
    itself) had run."""
    own: dict[str, tuple[int, int]] = {}  # module -> (its own parameters, those not read)
    types: dict[str, str] = {}
    seen: set[int] = set()
    for module, name in names.items():
        total = unread = 0
        for p in module._parameters.values():
            if p is None or id(p) in seen:
                continue
            seen.add(id(p))
            total += p.numel()
            unread += p.numel() if id(twins.get(id(p), p)) not in read else 0
        own[name], types[name] = (total, unread), type(module).__name__
    if not any(unread for _, unread in own.values()):
        return ()
    whole: dict[str, list[int]] = {name: [0, 0] for name in own}  # the module and all inside it
    for name, (total, unread) in own.items():
        holder = name
        while True:
            whole[holder][0] += total
            whole[holder][1] += unread
            if not holder:
                break
            holder = holder.rpartition(".")[0]
    began: dict[str, int] = {}  # module -> the first operation it ran
    for call in flow.calls:
        began.setdefault(call.module, call.first)
    for op in flow.ops:
        if op.kind == "module":
            began.setdefault(op.module, op.index)
    ends = flow.eager_ends()

    def idle_whole(name: str) -> bool:
        return bool(name) and whole[name][0] > 0 and whole[name][1] == whole[name][0]

    idle = []
    for name, (total, unread) in own.items():
        outermost = idle_whole(name) and not idle_whole(name.rpartition(".")[0])
        inside = any(idle_whole(name[:i]) for i in range(len(name)) if name[i] == ".")
        if not (outermost or (unread and not idle_whole(name) and not inside)):
            continue
        holder = name
        while holder and holder not in began:
            holder = holder.rpartition(".")[0]
        exit = next((k + 1 for k, end in enumerate(ends) if end >= began[holder]), None) if holder else None
        idle.append(Idle(name, types[name], whole[name][1] if outermost else unread, exit))
    return tuple(idle)


_collection = threading.Lock()
_collection_state: dict[str, Any] = {"pauses": 0, "thresholds": None}  # blocks in progress; the thresholds before


@contextmanager
def collection_paused() -> Iterator[None]:
    """Python's cyclic garbage collector held to its youngest generation within the block, its
    thresholds as they were before the first of nested or concurrent blocks once the last ends.  A
    count makes tens of thousands of objects that live while it runs; each older collection
    would walk every object of the process (a count took twice its median every few calls).  The
    youngest generation is still collected, so that a reference cycle made while the model runs
    (torch's Python code leaves some) is freed as promptly as usual: the memory figures, which
    follow when each tensor is freed, do not depend on it."""
    with _collection:
        if _collection_state["pauses"] == 0:
            _collection_state["thresholds"] = gc.get_threshold()
            young = _collection_state["thresholds"][0]
            gc.set_threshold(young, 1 << 30, 1 << 30)
        _collection_state["pauses"] += 1
    try:
        yield
    finally:
        with _collection:
            _collection_state["pauses"] -= 1
            if _collection_state["pauses"] == 0:
                gc.set_threshold(*_collection_state["thresholds"])


_holders = threading.Condition()
_held_by: dict[int, tuple[int, int]] = {}  # id(module) -> (thread holding it, how many times)


@contextmanager
def _held(model: nn.Module) -> Iterator[None]:
    """``model`` and every submodule held by this thread within the block: another thread's
    ``_held`` of any of them waits until it ends (the same thread may hold them again inside)."""
    me = threading.get_ident()
    modules = [id(m) for m in model.modules()]  # alive for the block: their ids stay theirs
    with _holders:
        _holders.wait_for(lambda: all(_held_by.get(m, (me, 0))[0] == me for m in modules))
        for m in modules:
            _held_by[m] = (me, _held_by.get(m, (me, 0))[1] + 1)
    try:
        yield
    finally:
        with _holders:
            for m in modules:
                thread, times = _held_by[m]
                if times == 1:
                    del _held_by[m]
                else:
                    _held_by[m] = (thread, times - 1)
            _holders.notify_all()


@contextmanager
def evaluating(model: nn.Module) -> Iterator[nn.Module]:
    """``model`` in eval mode within the block; every submodule's own mode restored afterwards.
    The model is held for this thread meanwhile (another thread's :func:`record` or
    ``evaluating`` of it waits), so modes are restored exactly under threads too."""
    with _held(model):
        modes = [(m, m.training) for m in model.modules()]
        model.eval()
        try:
            yield model
        finally:
            for m, training in modes:
                m.training = training


# --- the inputs a model msdprof did not build is run on ----------------------------------------

#: The dtypes an example input may be given in (``--input-size 1x128:long``), by name.
INPUT_DTYPES: dict[str, torch.dtype] = {name: getattr(torch, name) for name in INPUT_DTYPE_NAMES}

#: Largest side and channel count of a generic model's example image (a sanity bound), and the
#: largest dimension of any example input.
MAX_INPUT_SIDE = 16384


@dataclass(frozen=True)
class InputSpec:
    """One example input to make: ``name`` (``""``: positional, else the keyword of ``forward``),
    its full ``shape`` (batch first) and ``dtype`` (a name of :data:`INPUT_DTYPES`; ``None``: the
    model's floating-point dtype)."""

    name: str
    shape: tuple[int, ...]
    dtype: str | None = None


@dataclass(frozen=True)
class Inputs:
    """What a model is called with: ``model(*args, **kwargs)``, each argument a tensor or any tree
    of tensors (tuples, lists, dicts, dataclasses, transformers caches: :mod:`msdprof.core.trees`;
    other leaves such as ``True`` or ``None`` are passed as they are).

    Its tensors are listed in order, positional arguments first (:attr:`tensors`), each named by
    :attr:`names`: ``""`` for a positional tensor, the keyword for a keyword tensor, and the key
    path for one nested inside an argument (``past_key_values.layers.0.keys``; ``1.0`` for item 0
    of positional argument 1)."""

    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)

    @property
    def leaves(self) -> tuple[tuple[str, torch.Tensor], ...]:
        """The tensors with their names (see the class docstring), positional ones first."""
        found = []
        for i, arg in enumerate(self.args):
            found += [(trees.path_text((i, *path)) if path else "", t) for path, t in trees.leaves(arg)]
        for key, arg in self.kwargs.items():
            found += [(trees.path_text((key, *path)), t) for path, t in trees.leaves(arg)]
        return tuple(found)

    @property
    def tensors(self) -> tuple[torch.Tensor, ...]:
        """The tensors, positional ones first, nested ones in order."""
        return tuple(t for _, t in self.leaves)

    @property
    def shapes(self) -> tuple[tuple[int, ...], ...]:
        return tuple(tuple(t.shape) for t in self.tensors)

    @property
    def names(self) -> tuple[str, ...]:
        """The tensors' names, in the order of :attr:`tensors` (see the class docstring)."""
        return tuple(name for name, _ in self.leaves)

    @property
    def dtypes(self) -> tuple[str, ...]:
        """The tensors' dtypes, in the order of :attr:`tensors`: ``"float32"``, ``"int64"`` ..."""
        return tuple(str(t.dtype).removeprefix("torch.") for t in self.tensors)

    @property
    def flat(self) -> bool:
        """Whether every argument is a tensor (nothing nested, no other values)."""
        return all(isinstance(t, torch.Tensor) for t in (*self.args, *self.kwargs.values()))

    def map(self, change: Callable[[torch.Tensor], torch.Tensor]) -> "Inputs":
        """The same inputs, each tensor through ``change`` (``lambda t: t[:1]``, ``.to(device)``);
        the containers around them are copies (:func:`msdprof.core.trees.map_tensors`)."""
        return Inputs(tuple(trees.map_tensors(change, a) for a in self.args),
                      {k: trees.map_tensors(change, a) for k, a in self.kwargs.items()})

    def call(self, function: Callable[..., Any]) -> Any:
        """``function(*args, **kwargs)``."""
        return function(*self.args, **self.kwargs)


#: What inputs may be, for messages.
INPUTS_FORM = ("a tensor, a tuple or list (positional inputs) or a dict by name (keyword inputs), "
               "of tensors or of tuples, lists, dicts, dataclasses or transformers caches holding "
               "tensors")


def as_inputs(value: Any, option: str = "inputs") -> Inputs:
    """``value`` as :class:`Inputs`: a tensor, a tuple or list (positional inputs), a dict by name
    (keyword inputs), each input a tensor or a tree holding tensors; or :class:`Inputs`.
    :class:`OptionError` naming ``option`` for anything else, or when no tensor is given."""
    if isinstance(value, Inputs):
        return value
    if isinstance(value, torch.Tensor):
        return Inputs((value,))
    if isinstance(value, (tuple, list)) and not hasattr(value, "_fields") and trees.has_tensors(value):
        return Inputs(tuple(value))
    if isinstance(value, dict) and trees.has_tensors(value) and all(
            isinstance(k, str) and k.isidentifier() for k in value):
        return Inputs((), dict(value))
    if (trees.is_cache(value) or dataclasses.is_dataclass(value) or hasattr(value, "_fields")) \
            and trees.has_tensors(value):
        return Inputs((value,))
    raise OptionError(option, type(value).__name__, f"must be {INPUTS_FORM}")


def _image(value: Any, dtype: str | None = None) -> InputSpec:
    """The one image ``value`` (a side, ``(H, W)``, ``(C, H, W)``) describes, batch 1 and 3
    channels added; an ``HxW`` 1 high or wide (``1x12``: surely a vector) is refused, naming both
    readings."""
    shape = tuple(value) if isinstance(value, (tuple, list)) else ()
    if len(shape) == 2 and 1 in shape:
        text = shape_text(shape)
        raise OptionError(
            "input-size", text,
            f"reads as an image {text} pixels, 1 high or wide (input {shape_text((1, 3, *shape))}): for a "
            f"{text} tensor give its dtype ({text}:float), for such an image its channels ({shape_text((3, *shape))})")
    return InputSpec("", (1, *parse_input_size(value)), dtype)


def parse_inputs(value: Any, dtype: str | None = None) -> tuple[InputSpec, ...]:
    """The example inputs ``value`` describes (the ``--input-size`` of a model msdprof did not
    build; see :data:`INPUT_FORMS`): a side, ``(H, W)`` or ``(C, H, W)`` image (batch 1 and 3
    channels added), or text ``"[NAME=]SHAPE[:DTYPE],..."`` -- one input of 1 to 3 dimensions with
    neither a name nor a dtype is such an image, every other shape is the tensor's full shape;
    ``dtype``: the dtype of inputs given without one (``--input-dtype``).  Already parsed
    :class:`InputSpec` items are returned as they are."""
    if dtype is not None and dtype not in INPUT_DTYPES:
        raise OptionError("input-dtype", dtype, "must be one of " + ", ".join(INPUT_DTYPES))
    if isinstance(value, InputSpec):
        return (value,)
    if isinstance(value, (tuple, list)) and value and all(isinstance(v, InputSpec) for v in value):
        return tuple(value)
    if not isinstance(value, str):
        return (_image(value, dtype),)
    specs = []
    items = [item.strip() for item in value.split(",")]
    for item in items:
        name, sep, rest = item.rpartition("=")
        shape_part, sep_dtype, item_dtype = rest.partition(":")
        item_dtype = item_dtype.strip().lower() if sep_dtype else dtype
        if sep and not name.strip().isidentifier():
            raise OptionError("input-size", value, f"{name.strip()!r} is not a keyword name: give NAME=SHAPE")
        if item_dtype is not None and item_dtype not in INPUT_DTYPES:
            raise OptionError("input-size", value, f"{item_dtype!r} is not a dtype: one of " + ", ".join(INPUT_DTYPES))
        try:
            shape = tuple(int(part) for part in shape_part.strip().lower().split("x"))
        except ValueError:
            shape = ()
        if not shape or any(not 1 <= n <= MAX_INPUT_SIDE for n in shape):
            raise OptionError("input-size", value, f"must be {INPUT_FORMS} (each size from 1 to {MAX_INPUT_SIDE})")
        specs.append(InputSpec(name.strip(), shape, item_dtype))
    names = [s.name for s in specs if s.name]
    if len(set(names)) != len(names):
        raise OptionError("input-size", value, "names a keyword input twice")
    only = specs[0]
    if len(specs) == 1 and not only.name and len(only.shape) <= 3 and only.dtype is None:
        return (_image(only.shape),)
    return tuple(specs)


def _placed(model: nn.Module, specs: Sequence[InputSpec]) -> tuple[torch.device, list[torch.dtype]]:
    """Where the inputs of ``specs`` go (``model``'s device) and each one's dtype: its own, else the
    model's floating-point dtype (float32 for a model without floating-point parameters or buffers)."""
    first = next((t for t in (*model.parameters(), *model.buffers()) if t.is_floating_point()), None)
    device = next((t.device for t in (*model.parameters(), *model.buffers())), torch.device("cpu"))
    floating = first.dtype if first is not None else torch.float32
    return device, [floating if s.dtype is None else INPUT_DTYPES[s.dtype] for s in specs]


def make_inputs(model: nn.Module, specs: Sequence[InputSpec], device: str | torch.device | None = None) -> Inputs:
    """Zero tensors of ``specs`` on ``device`` (default: ``model``'s device); those without a
    dtype in its floating-point dtype (float32 for a model without floating-point parameters or
    buffers)."""
    placed, dtypes = _placed(model, specs)
    device = placed if device is None else device
    made = [(s.name, torch.zeros(s.shape, device=device, dtype=d)) for s, d in zip(specs, dtypes)]
    return Inputs(tuple(t for name, t in made if not name), {name: t for name, t in made if name})


def given_inputs(model: nn.Module, input_size: Any = None, inputs: Any = None, batch: int = 1
                 ) -> tuple[Inputs | tuple[InputSpec, ...], str, Any]:
    """What a model msdprof did not build is run on: ``inputs`` as given (see :func:`as_inputs`),
    else the specs of ``batch`` zero inputs of ``input_size`` (see :func:`parse_inputs`), not yet
    made; with the option that names them and its value as given (``"input-size"``, ``"batch"``,
    ``"inputs"``)."""
    if inputs is not None:
        if input_size is not None:
            raise OptionError("input-size", shape_text(input_size), "give the inputs' sizes or saved inputs, not both")
        given = as_inputs(inputs)
        return given, "inputs", shapes_text(given.shapes)
    if input_size is None:
        raise OptionError(
            "input-size", "missing",
            f"{type(model).__name__} is not an MSDNet msdprof built: give the sizes of its inputs "
            "(--input-size, input_size= in Python: e.g. 3x32x32 or 1x128:long) or example inputs "
            "(--inputs FILE, inputs= in Python)",
        )
    specs = parse_inputs(input_size)
    if batch != 1:
        carried = batch_carriers([spec.shape for spec in specs])
        specs = tuple(dataclasses.replace(spec, shape=(batch, *spec.shape[1:])) if carries else spec
                      for spec, carries in zip(specs, carried))
        return specs, "batch", batch
    return specs, "input-size", shape_text(input_size)


def batch_carriers(shapes: Sequence[Sequence[int]]) -> tuple[bool, ...]:
    """Per input of ``shapes``, whether it carries the batch, which ``--batch`` scales and
    ``--memory`` counts per item: the batch is the first dimension of the first input that has
    dimensions, and an input carries it when its own first dimension is the same (token ids
    ``1x16`` and a transformers cache's ``1x8x16x64`` tensors do; a cache stacked layers first,
    ``4x2x1x8x16x64``, a scalar, do not and are kept as given)."""
    first = next((shape[0] for shape in shapes if len(shape)), None)
    return tuple(first is not None and len(shape) > 0 and shape[0] == first for shape in shapes)


def input_labels(names: Sequence[str]) -> tuple[str, ...]:
    """The inputs' names for messages: a keyword or key path, else ``input 2`` (1-based)."""
    return tuple(name or f"input {i}" for i, name in enumerate(names, 1))


def example_inputs(model: nn.Module, input_size: Any = None, inputs: Any = None, batch: int = 1) -> Inputs:
    """The real :class:`Inputs` a model msdprof did not build is run on (:func:`given_inputs`):
    ``inputs`` as given, else zero tensors on the model's device, floating-point ones in its
    floating-point dtype, refused past :data:`~msdprof.core.units.MAX_BYTES` before they are made."""
    given, option, typed = given_inputs(model, input_size, inputs, batch)
    return given if isinstance(given, Inputs) else checked_inputs(model, given, option, typed)


def checked_inputs(model: nn.Module, specs: Sequence[InputSpec], option: str, typed: Any) -> Inputs:
    """:func:`make_inputs` of ``specs``, refused past :data:`~msdprof.core.units.MAX_BYTES` before
    they are made, naming ``option`` as ``typed``."""
    device, dtypes = _placed(model, specs)
    if device.type != "meta":  # nothing is allocated on meta
        check_bytes(option, typed, sum(math.prod(s.shape) * d.itemsize for s, d in zip(specs, dtypes)),
                    inputs_text(specs, dtypes))
    return make_inputs(model, specs)


def inputs_text(specs: Sequence[InputSpec], dtypes: Sequence[torch.dtype]) -> str:
    """``one 3x32x32 float32 image``, ``64 1x128 int64 inputs``, ``the inputs 1x128, 1x128``: what
    ``specs`` (in ``dtypes``) are, for messages."""
    if len(specs) == 1 and not specs[0].name and len(specs[0].shape) > 1:
        shape = specs[0].shape
        count = "one" if shape[0] == 1 else f"{shape[0]:,}"
        return (f"{count} {shape_text(shape[1:])} {str(dtypes[0]).removeprefix('torch.')} "
                f"{'image' if len(shape) == 4 else 'input'}{'s' * (count != 'one')}")
    return f"the inputs {shapes_text(s.shape for s in specs)}"


#: A forward's peak memory over the activation storage its code holds at once
#: (:meth:`Dataflow.held_peak`, the memory model's as-written peak): on CPU the allocator reached
#: 1.00 to 1.07 times it on forwards of 10 MB and more, and 1.0 to 2.6 times on smaller ones, where
#: a convolution's workspace of fixed size counts (``benchmarks/bench_forward_memory.py``); an
#: estimate takes 2.
FORWARD_MEMORY_FACTOR = 2


def forward_bytes(flow: Dataflow, batch: int = 1) -> int:
    """About the memory, in bytes, a no-grad forward on real tensors takes: the inputs ``flow`` was
    recorded on and :data:`FORWARD_MEMORY_FACTOR` times the activation storage its code holds at
    once (:meth:`Dataflow.held_peak`); ``batch`` times that for a batch of ``batch`` such inputs
    (``flow`` recorded on one item)."""
    carried = input_bytes(flow, carried=True)
    return batch * (carried + FORWARD_MEMORY_FACTOR * flow.held_peak()) + input_bytes(flow) - carried


def input_bytes(flow: Dataflow, carried: bool = False) -> int:
    """Bytes of the inputs ``flow`` was recorded on, each at its dtype's size; ``carried``: of those
    that carry the batch only (:attr:`Dataflow.carriers`)."""
    dtypes = flow.input_dtypes or ("float32",) * len(flow.input_shapes)
    return sum(math.prod(shape) * getattr(torch, dtype).itemsize
               for shape, dtype, carries in zip(flow.input_shapes, dtypes, flow.carriers)
               if carries or not carried)


def check_forward_bytes(model: nn.Module, flow: Dataflow, option: str, typed: Any, batch: int = 1,
                        meta: bool = True) -> None:
    """:class:`OptionError` naming ``option`` (as ``typed``) when a forward of ``model`` on real
    tensors -- on ``batch`` times the inputs ``flow`` recorded it on -- would take more than
    :data:`~msdprof.core.units.MAX_BYTES` (:func:`forward_bytes`): checked from that record (made on
    shapes alone) before anything of that size exists.  ``meta``: whether the message offers
    counting on ``meta`` (not for a command that times the model for real, such as ``latency``)."""
    specs = [InputSpec(name, (shape[0] * batch, *shape[1:]) if carries else shape)
             for name, shape, carries in zip(flow.input_names or ("",) * len(flow.input_shapes),
                                             flow.input_shapes, flow.carriers)]
    dtypes = [getattr(torch, d) for d in (flow.input_dtypes or ("float32",) * len(specs))]
    fix = ("a smaller --batch" if option == "batch" else "smaller inputs" + (
        ", or count the model on shapes alone (count without --device cpu; exit_costs without "
        "real=True)" if meta else ""))
    check_bytes(option, typed, forward_bytes(flow, batch),
                f"{type(model).__name__}'s forward on {inputs_text(specs, dtypes)}", f"give {fix}")


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


#: Wrappers counted through the module they wrap: (class, attribute holding it, what to call it).
WRAPPERS: tuple[tuple[type, str, str], ...] = (
    (nn.DataParallel, "module", "DataParallel"),
    (nn.parallel.DistributedDataParallel, "module", "DistributedDataParallel"),
)


def unwrap(model: nn.Module) -> tuple[nn.Module, str]:
    """The module ``model`` wraps and what wraps it (``"torch.compile"``, ``"DataParallel"`` ...;
    ``""`` when nothing does): wrappers are counted through the module inside, which runs the same
    operations eagerly.  A TorchScript module (``torch.jit.script``/``trace``) is an
    :class:`OptionError`: its graph runs without Python, so it cannot be recorded."""
    if isinstance(model, torch.jit.ScriptModule):
        raise OptionError(
            "model", type(model).__name__,
            "is TorchScript (torch.jit.script or trace), which cannot be recorded: pass the eager "
            "nn.Module it was made from",
        )
    wrappers = []
    while True:
        inner = getattr(model, "_orig_mod", None)  # torch.compile's OptimizedModule
        if type(model).__name__ == "OptimizedModule" and isinstance(inner, nn.Module):
            model, what = inner, "torch.compile"
        else:
            found = next(((attr, name) for cls, attr, name in WRAPPERS if isinstance(model, cls)), None)
            if found is None:
                return model, " in ".join(reversed(wrappers))
            model, what = getattr(model, found[0]), found[1]
        wrappers.append(what)


def stand_ins(model: nn.Module) -> dict[int, torch.Tensor]:
    """Meta tensors for the parameters and buffers of ``model`` not on ``meta`` (nothing
    allocated), by ``id`` of the tensor each stands for: one per distinct tensor, so that tied and
    shared weights stay so; of its shape, strides and dtype, an ``nn.Parameter`` for a parameter."""
    twins: dict[int, torch.Tensor] = {}
    for module in model.modules():
        for store in (module._parameters, module._buffers):
            for t in store.values():
                if t is None or t.is_meta or id(t) in twins:
                    continue
                twin = torch.empty_strided(t.shape, t.stride(), dtype=t.dtype, device=meta_shapes.META)
                twins[id(t)] = nn.Parameter(twin, t.requires_grad) if isinstance(t, nn.Parameter) else twin
    return twins


@contextmanager
def standing_in(model: nn.Module, twins: dict[int, torch.Tensor]) -> Iterator[None]:
    """``model``'s parameters and buffers replaced by their ``twins`` (:func:`stand_ins`) within
    the block, every one put back after it, whatever happens.  (``torch.func.functional_call``
    does the same swap, but keeps the forward's frames in a reference cycle: each activation would
    outlive its last reader until the garbage collector ran, and the memory figures with it.)"""
    swapped = []
    try:
        for module in model.modules():
            for store in (module._parameters, module._buffers):
                for key, t in store.items():
                    if t is not None and id(t) in twins:
                        swapped.append((store, key, t))
                        store[key] = twins[id(t)]
        yield
    finally:
        for store, key, t in reversed(swapped):
            store[key] = t


def record_shapes(model: nn.Module, given: Inputs | Sequence[InputSpec], outputs: Outputs | bool = None
                  ) -> Dataflow:
    """:func:`record` of ``model``'s forward on shapes alone, in eval mode: its parameters and
    buffers replaced by meta stand-ins for the call (:func:`standing_in`: nothing attached to the
    model, everything restored), on meta copies of ``given`` (tensors, or the specs of zero
    inputs): nothing of the model's size is allocated.  Raises :class:`ReadsValues` where the model
    reads tensor values, and whatever the model's code raises on meta tensors."""
    with evaluating(model):  # held by this thread from here: no other swaps its weights meanwhile
        twins = stand_ins(model)
        if isinstance(given, Inputs):
            on_meta = given.map(lambda t: t if t.is_meta else torch.empty_strided(
                t.shape, t.stride(), dtype=t.dtype, device="meta"))
        else:
            on_meta = make_inputs(model, given, device="meta")
        with standing_in(model, twins):
            return record(model, lambda: on_meta.call(model), outputs=outputs, inputs=on_meta, values=False,
                          twins=twins)


def record_values(model: nn.Module, given: Inputs, outputs: Outputs | bool = None,
                  guard: ByteGuard | None = None) -> Dataflow:
    """:func:`record` of ``model``'s forward on the real tensors ``given``, in eval mode, reads of
    their values noted (``value_reads``), under the memory limit ``guard``."""
    with evaluating(model):  # the containers copied: a cache the model extends stays as given
        return record(model, lambda: given.map(lambda t: t).call(model), outputs=outputs, inputs=given,
                      guard=guard)


def record_network(
    model: nn.Module,
    *,
    input_size: Any = None,
    inputs: Any = None,
    outputs: Outputs = None,
    batch: int = 1,
    real: bool = False,
) -> Dataflow:
    """The record of one forward pass of any early-exit ``model`` in eval mode (every submodule's
    mode restored afterwards), its exits selected (``outputs``: see :func:`select_exits`), on
    ``inputs`` or ``batch`` zero inputs of ``input_size`` (:func:`given_inputs`).

    One pass: on shapes alone (:func:`record_shapes`: nothing of the model's size allocated) unless
    ``real``; on the real inputs only where the model cannot run on shapes -- it reads tensor values
    (``.item()``, ``nonzero``, a branch on a value: the record's ``value_reads`` say where), or
    its code needs real tensors -- then with its memory checked before each kernel runs
    (:class:`ByteGuard`).  A model that read values on its last real record is recorded on real
    values straight away.  A model on ``meta`` that reads values cannot be counted (it has none).

    A user's mistake is an :class:`~msdnet.options.OptionError` naming the option that fixes it:
    outputs that are not one tensor per exit (``outputs``), inputs the model's ``forward`` refuses
    (``input-size`` or ``inputs``; its exception's first line is named), a TorchScript model, a
    forward on real tensors that would take more memory than :data:`~msdprof.core.units.MAX_BYTES`.
    Anything else the model's code raises (``SystemExit``, any ``BaseException``) is an
    ``OptionError`` naming the model; a ``KeyboardInterrupt`` stays one, saying where it came from.
    A wrapped model (``torch.compile``, ``DataParallel``, ``DistributedDataParallel``) is recorded
    through the module it wraps (:func:`unwrap`)."""
    model, wrapper = unwrap(model)
    given, option, typed = given_inputs(model, input_size, inputs, batch)
    shapes = given.shapes if isinstance(given, Inputs) else tuple(s.shape for s in given)
    carriers = batch_carriers(shapes if batch == 1 or isinstance(given, Inputs)
                              else [s.shape for s in parse_inputs(input_size)])
    flow = None
    with _users_forward(model, option, shapes, outputs):
        if not real and model not in _READ_VALUES:
            flow = record_on_shapes(model, given, outputs)
        if flow is None:
            flow = _on_values(model, given, option, typed, outputs, real)
            if flow.value_reads:
                _READ_VALUES[model] = True
            else:
                _READ_VALUES.pop(model, None)
    return dataclasses.replace(flow, model=type(model).__name__, wrapper=wrapper, batch_inputs=carriers)


#: The models whose last record on real values saw them read values: counted on real values
#: straight away the next time (their pass on shapes would stop at the read).  Weak: a model
#: dropped by its user leaves nothing here.
_READ_VALUES: weakref.WeakKeyDictionary[nn.Module, bool] = weakref.WeakKeyDictionary()


def record_on_shapes(model: nn.Module, given: Inputs | Sequence[InputSpec], outputs: Outputs
                         ) -> Dataflow | None:
    """:func:`record_shapes`, or ``None`` when the model cannot run on shapes alone (what torch
    warned about the attempt is not shown: a real pass says what it says); a model whose weights
    are all on ``meta`` has no real pass: what stopped it is raised (an :class:`OptionError` where
    it read values)."""
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")
        try:
            flow = record_shapes(model, given, outputs)
        except (ReadsValues, Exception) as error:
            weights = [*model.parameters(), *model.buffers()]
            if weights and all(t.is_meta for t in weights):  # no real pass can run
                raise _cannot_run_on_meta(model, error) from error
            return None
    for warning in said:  # the model's own warnings, once, as a real run gives them
        warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)
    return flow


def _cannot_run_on_meta(model: nn.Module, error: BaseException) -> BaseException:
    """What to raise for a model with no real weights that cannot run on shapes alone: it read
    values (an :class:`OptionError` saying where), else the model's own error."""
    if isinstance(error, ReadsValues):
        return OptionError("model", type(model).__name__,
                           f"reads tensor values ({error}) and its weights are on the meta device, "
                           "which holds none: build it with real weights (on cpu), or load a "
                           "checkpoint with --checkpoint")
    return error


def _on_values(model: nn.Module, given: Inputs | Sequence[InputSpec], option: str, typed: Any,
               outputs: Outputs, asked: bool) -> Dataflow:
    """:func:`record_values` on ``given`` (zero inputs made from specs, refused past the limit
    first) under the memory limit; ``asked``: the user asked for a real run (a refusal then says
    that a count on shapes alone allocates nothing)."""
    tensors = given if isinstance(given, Inputs) else checked_inputs(model, given, option, typed)
    specs = [InputSpec(n, tuple(t.shape)) for n, t in zip(tensors.names, tensors.tensors)]
    guard = ByteGuard(option, typed, sum(t.numel() * t.element_size() for t in tensors.tensors),
                      f"{type(model).__name__}'s forward on "
                      f"{inputs_text(specs, [t.dtype for t in tensors.tensors])}",
                      ("give smaller inputs" if option != "batch" else "give a smaller --batch")
                      + (", or count on shapes alone, which allocates nothing (without --device cpu; "
                         "real=False in Python)" if asked else ""))
    return record_values(model, tensors, outputs, guard)


@contextmanager
def _users_forward(model: nn.Module, option: str, shapes: Sequence[tuple[int, ...]], outputs: Outputs
                   ) -> Iterator[None]:
    """The model's forward runs inside: what it raises is said as an :class:`OptionError` (see
    :func:`record_network`)."""
    try:
        yield
    except OutputError as error:
        given_outputs = "missing" if outputs is None else getattr(outputs, "__name__", str(outputs))
        raise OptionError("outputs", given_outputs, f"{type(model).__name__} returns {error}") from error
    except OptionError:
        raise
    except KeyboardInterrupt as error:
        raise KeyboardInterrupt(f"while {type(model).__name__}.forward ran (your model's code)") from error
    except Exception as error:  # the model's own forward refused the inputs
        hint = ("; give every input forward takes: several sizes joined by commas, NAME=SIZE for a "
                "keyword, or --inputs FILE" if isinstance(error, TypeError) else "")
        raise OptionError(
            option, shapes_text(shapes),
            f"{type(model).__name__} failed on it: {type(error).__name__}: {first_line(error)}{hint}",
        ) from error
    except BaseException as error:  # SystemExit, GeneratorExit or the model's own: not msdprof's
        raise OptionError("model", type(model).__name__, f"its forward raised {type(error).__name__}"
                          f"{': ' + first_line(error) if str(error).strip() else ''} (your model's "
                          "code, not msdprof)") from error


def uncounted(op: Op, convention: str) -> bool:
    """Whether ``op`` ran work ``convention`` did not count: a module type with no rule (``msdnet``:
    the authors' counter charges every module by a rule), or kernels whose multiply-adds by torch's
    formulas exceed what the convention counted for it, or that multiply matrices by amounts no
    formula gives while it counted none."""
    if op.unknown_module and convention == "msdnet":
        return True
    counted = counted_macs(op.count, convention)
    return op.aten_macs > counted or (bool(op.opaque) and counted == 0)


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
        if any(uncounted(op, convention) for convention in CONVENTIONS):
            unsupported[op.type] = unsupported.get(op.type, 0) + 1
    for call in flow.calls:
        if call.module in ops:
            calls[call.module] = calls.get(call.module, 0) + 1
    modules = {name: ModuleCount(ops[name], params[name], calls.get(name, 0)) for name in ops}
    return Counts(modules, unsupported)


__all__ = [
    "ByteGuard", "Call", "Dataflow", "FORWARD_MEMORY_FACTOR", "INPUTS_FORM", "INPUT_DTYPES",
    "INPUT_FORMS", "Idle", "InputSpec", "Inputs", "OUTPUTS_HINT", "Op", "OutputError", "Outputs",
    "ReadsValues", "VALUE_METHODS", "ValueRead", "WRAPPERS", "as_inputs", "batch_carriers",
    "check_forward_bytes", "checked_inputs", "collection_paused", "count_modules", "evaluating",
    "example_inputs", "forward_bytes", "function_name", "given_inputs", "input_bytes", "input_labels",
    "inputs_text", "make_inputs", "parse_input_size", "parse_inputs", "record", "record_network",
    "record_on_shapes", "record_shapes", "record_values", "select_exits", "stand_ins", "standing_in",
    "tensors_in", "uncounted", "unwrap",
]
