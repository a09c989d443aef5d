"""Time to each output within one full forward pass, from timestamps taken only where outputs are made.

This is how :mod:`msdprof.analysis.latency` times a network msdprof did not build (and, as a cross-check, an
MSDNet): the model runs as written, ``model(x)``, and the clock is read at the moments its outputs
become complete.  Where those moments are comes from the network's dataflow record
(:func:`msdprof.core.exits.record_exits`): output k was made by one operation of the record
(:attr:`msdprof.core.dataflow.Dataflow.outputs`), and :func:`stamp_points` turns it into a
:class:`Stamp`:

- made by a module call (``classifiers.0``, the 2nd call of ``shared``): the clock is read in a
  forward hook when that call returns -- exact;
- made by a functional op (``torch.cat``, ``x.flatten(1)`` in a ``forward``): no hook sees it, so the
  clock is read in a forward pre-hook when the next module call starts (or when the forward
  returns, if none follows) -- an upper bound: functional ops that ran in between are included.

Only the modules holding stamps get hooks (a pre-hook counting their calls, a forward hook where a
stamp sits at a call's end); nothing is attached to the model or patched, and the hooks are removed
in a ``finally``.  On CPU the clock is :func:`time.perf_counter`; on CUDA each stamp records a
``torch.cuda.Event`` (no synchronisation inside the forward) and the events are read after one
``torch.cuda.synchronize()``, so a stamp is the time the GPU finished output k's kernels.

:func:`check_stamps` runs the stamped forward once and checks that every stamp fired and that every
"end" stamp saw exactly the tensor the model returned for its exit.  What the hooks cost is measured,
not assumed (:class:`msdprof.analysis.latency.ForwardLatency`): the full forward timed with and without them,
and one stamping hook call timed on its own.
"""

from __future__ import annotations

import gc
import time
import weakref
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import torch
from torch import nn
from torch.utils import benchmark

from msdnet.options import OptionError

from ..core.dataflow import Dataflow, Inputs, as_inputs, tensors_in, unwrap

#: Timed forward passes at the least, however short ``min_time`` is (for a median and an IQR).
MIN_RUNS = 5


@dataclass(frozen=True)
class Stamp:
    """Where the time to exit ``exit`` (1-based, named ``name``) is read in one forward pass.

    ``when`` ``"end"``: when the ``call``-th call of module ``module`` returns (it made the output:
    exact); ``"start"``: when the ``call``-th call of ``module`` starts, the next module call after
    the functional op ``made_by`` that made the output (an upper bound); ``"return"``: when the
    model's forward returns (``module`` ``None``; also an upper bound when ``made_by`` is set).
    """

    exit: int
    name: str
    when: str
    module: str | None
    call: int
    made_by: str | None = None

    @property
    def exact(self) -> bool:
        return self.when == "end"

    def describe(self) -> str:
        """``classifiers.0 returns``, ``layer2.0 starts (after cat)``, ``forward returns``."""
        call = f" (call {self.call})" if self.call > 1 else ""
        after = f" (after {self.made_by})" if self.made_by else ""
        if self.when == "end":
            return f"{self.module}{call} returns"
        if self.when == "start":
            return f"{self.module}{call} starts{after}"
        return f"forward returns{after}"

    def as_dict(self) -> dict[str, Any]:
        return {"when": self.when, "module": self.module, "call": self.call,
                "made_by": self.made_by, "exact": self.exact}


def stamp_points(flow: Dataflow) -> tuple[Stamp, ...]:
    """Per exit of the record ``flow`` (its exits selected), where its time is read (module
    docstring)."""
    calls: dict[str, int] = {}
    number = {}  # op index -> which call of its module it is (module ops only)
    for op in flow.ops:
        if op.kind == "module":
            calls[op.module] = calls.get(op.module, 0) + 1
            number[op.index] = calls[op.module]
    stamps = []
    for k, (name, producer) in enumerate(zip(flow.exit_names, flow.outputs), start=1):
        op = flow.ops[producer]
        if op.kind == "module":
            stamps.append(Stamp(k, name, "end", op.module, number[producer]))
            continue
        following = next((o for o in flow.ops[producer + 1:] if o.kind == "module"), None)
        if following is None:
            stamps.append(Stamp(k, name, "return", None, 0, op.type))
        else:
            stamps.append(Stamp(k, name, "start", following.module, number[following.index], op.type))
    return tuple(stamps)


class Stamper:
    """The hooks of a stamped forward: :meth:`run` calls ``model(*inputs)`` and returns the
    milliseconds from its start to each stamp, then to its return.  Use as a context manager (the
    hooks exist inside the ``with`` block only).  A wrapped model (``DataParallel`` ...) runs as
    given; its stamps name modules of the module inside, as its record does
    (:func:`~msdprof.core.dataflow.unwrap`)."""

    def __init__(self, model: nn.Module, stamps: Sequence[Stamp], device: str = "cpu"):
        self.model, self.stamps, self.cuda = model, tuple(stamps), device == "cuda"
        modules = dict(unwrap(model)[0].named_modules())
        self.where: dict[str, dict[str, dict[int, list[int]]]] = {}  # module -> when -> call -> slots
        for slot, s in enumerate(self.stamps):
            if s.when == "return":
                continue
            if s.module not in modules:
                raise ValueError(f"stamp for exit {s.name}: the model has no module {s.module!r}")
            self.where.setdefault(s.module, {}).setdefault(s.when, {}).setdefault(s.call, []).append(slot)
        self.modules = {name: modules[name] for name in self.where}
        self.counts: dict[str, int] = dict.fromkeys(self.where, 0)
        if self.cuda:
            self.events = [torch.cuda.Event(enable_timing=True) for _ in range(len(self.stamps) + 2)]
        self.marks: list[Any] = [None] * len(self.stamps)
        self.seen: dict[int, list[weakref.ref]] = {}  # slot -> tensors an "end" hook saw (checking)
        self.checking = False
        self.handles: list[Any] = []

    # --- hooks ------------------------------------------------------------------------------

    def _mark(self, slot: int) -> None:
        if self.cuda:
            self.events[slot].record()
        else:
            self.marks[slot] = time.perf_counter()

    def _pre_hook(self, name: str) -> Callable[..., None]:
        starts = self.where[name].get("start", {})
        counts = self.counts

        def hook(module: nn.Module, args: Any) -> None:
            counts[name] += 1
            for slot in starts.get(counts[name], ()):
                self._mark(slot)

        return hook

    def _post_hook(self, name: str) -> Callable[..., None]:
        ends = self.where[name]["end"]
        counts = self.counts

        def hook(module: nn.Module, args: Any, output: Any) -> None:
            slots = ends.get(counts[name])
            if slots:
                for slot in slots:
                    self._mark(slot)
                    if self.checking:
                        self.seen[slot] = [weakref.ref(t) for t in tensors_in(output)]

        return hook

    def __enter__(self) -> "Stamper":
        try:
            for name, module in self.modules.items():
                self.handles.append(module.register_forward_pre_hook(self._pre_hook(name)))
                if "end" in self.where[name]:
                    self.handles.append(module.register_forward_hook(self._post_hook(name)))
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc: Any) -> None:
        for handle in self.handles:
            handle.remove()
        self.handles.clear()

    @property
    def hook_calls(self) -> int:
        """Hook calls in the last :meth:`run` (pre-hooks, and forward hooks where a stamp ends)."""
        return sum(n * (1 + ("end" in self.where[name])) for name, n in self.counts.items())

    # --- one forward --------------------------------------------------------------------------

    def _forward(self, inputs: Sequence[torch.Tensor], kwargs: dict[str, Any]) -> tuple[Any, Any, Any]:
        """``model(*inputs, **kwargs)`` under ``torch.no_grad()`` between two clock readings: (start, what it
        returned, end) -- ``perf_counter`` seconds on CPU, recorded events on CUDA (synchronised)."""
        with torch.no_grad():
            if self.cuda:
                start, end = self.events[-2], self.events[-1]
                start.record()
                out = self.model(*inputs, **kwargs)
                end.record()
                torch.cuda.synchronize()
                return start, out, end
            start = time.perf_counter()
            out = self.model(*inputs, **kwargs)
            return start, out, time.perf_counter()

    def _ms(self, start: Any, mark: Any) -> float:
        return start.elapsed_time(mark) if self.cuda else 1e3 * (mark - start)

    def run(self, *inputs: torch.Tensor, **kwargs: torch.Tensor) -> tuple[list[float], Any]:
        """``model(*inputs, **kwargs)`` under ``torch.no_grad()``: (ms to each stamp and then to the return,
        what the model returned)."""
        for name in self.counts:
            self.counts[name] = 0
        self.marks = [None] * len(self.stamps)
        start, out, end = self._forward(inputs, kwargs)
        marks = self.events[:len(self.stamps)] if self.cuda else self.marks
        unfired = [s for s, mark in zip(self.stamps, marks) if mark is None and s.when != "return"]
        if unfired:
            raise OptionError("model", type(self.model).__name__,
                              f"took another path on these inputs: exit {unfired[0].name}'s stamp "
                              f"({unfired[0].describe()}) did not fire; time it on inputs like the "
                              "ones it was recorded on")
        return [self._ms(start, end if s.when == "return" else mark)
                for s, mark in zip(self.stamps, marks)] + [self._ms(start, end)], out

    def plain(self, *inputs: torch.Tensor, **kwargs: torch.Tensor) -> float:
        """ms of ``model(*inputs, **kwargs)`` under ``torch.no_grad()`` with the same clock as :meth:`run`;
        call it outside the ``with`` block (no hooks)."""
        if self.handles:
            raise RuntimeError("Stamper.plain runs the model without hooks: call it outside the with block")
        start, _, end = self._forward(inputs, kwargs)
        return self._ms(start, end)

    def mark_cost_ns(self, threads: int = 1, min_time: float = 0.2) -> float:
        """Measured nanoseconds of one stamping hook call: the forward hook of the first "end" stamp
        (else a pre-hook's clock reading) called on its own, with ``torch.utils.benchmark`` (the
        median of blocks of calls).  PyTorch's own cost of calling hooks is not in it: that shows
        in the full forward timed with and without the hooks."""
        end = next((s for s in self.stamps if s.when == "end"), None)
        if end is None:
            call: Callable[[], None] = lambda: self._mark(0)  # noqa: E731
        else:
            hook, module = self._post_hook(end.module), self.modules[end.module]
            call = lambda: hook(module, (), None)  # noqa: E731
        counts = dict(self.counts)
        if end is not None:
            self.counts[end.module] = end.call
        try:
            timer = benchmark.Timer(stmt="call()", globals={"call": call}, num_threads=threads)
            return timer.blocked_autorange(min_run_time=min_time).median * 1e9
        finally:
            self.counts.update(counts)


def check_stamps(stamper: Stamper, inputs: Sequence[torch.Tensor] | Inputs,
                 select: Callable[[Any], Sequence[torch.Tensor]]) -> None:
    """Run the stamped forward once and check every stamp: each fired, and each "end" stamp saw the
    very tensor the model returned for its exit (``select`` picks the exits' tensors out of what it
    returned).  :class:`OptionError` when the model took another path than the one recorded."""
    cuda = stamper.cuda
    stamper.checking, stamper.cuda = True, False  # the CPU clock tells which stamps fired
    stamper.seen.clear()
    try:
        _, out = as_inputs(inputs).call(stamper.run)
    finally:
        stamper.checking, stamper.cuda = False, cuda
    tensors = list(select(out))
    for slot, stamp in enumerate(stamper.stamps):
        if stamp.when != "end":
            continue
        seen = [ref() for ref in stamper.seen.get(slot, ())]
        if not any(t is tensors[stamp.exit - 1] for t in seen):
            raise OptionError("model", type(stamper.model).__name__,
                              f"took another path on these inputs: exit {stamp.name} was not made "
                              f"where it was recorded ({stamp.describe()})")


def timed_runs(stamper: Stamper, inputs: Sequence[torch.Tensor] | Inputs, threads: int, min_time: float,
               warmup: int) -> tuple[list[list[float]], list[float]]:
    """Pairs of forwards, a stamped one then a plain one (no hooks), so that drift in the machine's
    speed hits both alike: ``warmup`` pairs, then as many as fit in ``min_time`` seconds (at least
    :data:`MIN_RUNS`), with torch's intra-op threads at ``threads`` and the garbage collector off
    (both restored after).  Returns, per stamped forward, the ms to each stamp and then to its
    return; per plain forward, its ms."""
    threads_before, gc_before = torch.get_num_threads(), gc.isenabled()
    torch.set_num_threads(threads)
    gc.disable()
    stamped: list[list[float]] = []
    plain: list[float] = []
    given = as_inputs(inputs)

    def pair() -> None:
        with stamper:
            stamped.append(given.call(stamper.run)[0])
        plain.append(given.call(stamper.plain))

    try:
        for _ in range(warmup):
            pair()
        del stamped[:], plain[:]
        began = time.perf_counter()
        while len(plain) < MIN_RUNS or time.perf_counter() - began < min_time:
            pair()
        return stamped, plain
    finally:
        torch.set_num_threads(threads_before)
        if gc_before:
            gc.enable()


__all__ = ["MIN_RUNS", "Stamp", "Stamper", "check_stamps", "stamp_points", "timed_runs"]
