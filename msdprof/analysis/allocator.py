"""The peak memory the CPU allocator really reached to each exit: the check of
:mod:`msdprof.core.memory` against reality.

:func:`measured_peaks` runs a real model once (in eval mode, under ``torch.no_grad()``) with
``torch.profiler``'s memory events on, and reads the allocator's own record: every allocation and
free in order, with its address and bytes.  Exit k is complete when the storage of its output (and
of outputs 1..k-1) was allocated; the eager peak of exit k is the most bytes allocated at once, from
the start of the forward pass until then, less nothing: the model's parameters and inputs were
allocated before and are not in it, as in the prediction.  Everything the allocator hands out is in
it -- kernels' workspaces and the temporaries inside modules included -- so it is at least the
predicted peak; docs/memory.md shows the gap per exit.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from typing import Any, Callable

import torch
from torch import nn

from ..core.dataflow import evaluating, select_exits


@dataclass(frozen=True)
class AllocatorRun:
    """One run under the profiler: its ``result``, the CPU allocator's ``events`` in order --
    (address, bytes, time in microseconds), bytes negative for a free -- and the ``ops`` that ran
    (aten operator name, start, duration), to name what ran at a moment."""

    result: Any
    events: tuple[tuple[int, int, float], ...]
    ops: tuple[tuple[str, float, float], ...]

    def running_at(self, event: int) -> list[tuple[str, float, float]]:
        """The aten operators running at ``events[event]``, outermost first: (name, start, end)."""
        when = self.events[event][2]
        running = [(name, start, start + duration) for name, start, duration in self.ops
                   if start <= when <= start + duration]
        return sorted(running, key=lambda r: (r[1], -r[2]))

    def op_at(self, event: int) -> str:
        """What ran at ``events[event]``: ``aten::conv2d > aten::resize_`` (the outermost operator
        and the innermost; ``""``: none)."""
        running = self.running_at(event)
        if not running:
            return ""
        outer, inner = running[0][0], running[-1][0]
        return outer if outer == inner else f"{outer} > {inner}"

    def temporaries_at(self, event: int) -> int:
        """Bytes alive at ``events[event]`` that the outermost operator running then allocated
        and frees before it returns: its workspace, which no prediction from the tensors passed
        between operations sees."""
        running = self.running_at(event)
        if not running:
            return 0
        _, start, end = running[0]
        alive: dict[int, int] = {}
        for address, size, when in self.events[:event + 1]:
            if size > 0 and when >= start:
                alive[address] = size
            elif size < 0:
                alive.pop(address, None)
        freed = {address for address, size, when in self.events[event + 1:] if size < 0 and when <= end}
        return sum(size for address, size in alive.items() if address in freed)


def allocator_events(run: Callable[[], Any]) -> AllocatorRun:
    """``run()`` under ``torch.profiler`` with memory events on (see :class:`AllocatorRun`)."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        result = run()
    handle, path = tempfile.mkstemp(suffix=".json")
    os.close(handle)
    try:
        prof.export_chrome_trace(path)
        with open(path) as f:
            trace = json.load(f).get("traceEvents", [])
    finally:
        os.unlink(path)
    memory = [e for e in trace if e.get("name") == "[memory]" and e.get("args", {}).get("Device Type") == 0]
    memory.sort(key=lambda e: e["args"].get("Ev Idx", 0))
    ops = tuple((e["name"], float(e["ts"]), float(e.get("dur", 0))) for e in trace
                if e.get("ph") == "X" and str(e.get("name", "")).startswith("aten::"))
    events = tuple((int(e["args"]["Addr"]), int(e["args"]["Bytes"]), float(e["ts"])) for e in memory)
    return AllocatorRun(result, events, ops)


def measured_peaks(
    model: nn.Module,
    inputs: Any,
    outputs: Callable[[Any], Any] | None = None,
) -> tuple[int, ...]:
    """Per exit k, the most bytes the CPU allocator held at once (above what it held before the
    pass) from the start of one forward pass of ``model`` on ``inputs`` (a tensor or a tuple of
    tensors) until outputs 1..k were allocated; eval mode, no autograd graph.  ``outputs`` picks
    the exits out of what the model returns, as for :func:`msdprof.exit_costs`."""
    return peaks_of(measured_run(model, inputs), outputs)[0]


def measured_run(model: nn.Module, inputs: Any) -> AllocatorRun:
    """One forward pass of ``model`` on ``inputs`` in eval mode, no autograd, under the profiler."""
    given = (inputs,) if isinstance(inputs, torch.Tensor) else tuple(inputs)
    with evaluating(model), torch.no_grad():
        return allocator_events(lambda: model(*given))


def peaks_of(run: AllocatorRun, outputs: Callable[[Any], Any] | None = None) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Per exit, the peak bytes of ``run`` until outputs 1..k were allocated (see
    :func:`measured_peaks`), and the index of the event where each is reached."""
    tensors, _ = select_exits(run.result, outputs)
    made: dict[int, int] = {}  # address -> index of the event that last allocated it
    running, curve = 0, []
    for index, (address, size, _) in enumerate(run.events):
        running += size
        curve.append(running)
        if size > 0:
            made[address] = index
    peaks, places, until, best, at, seen = [], [], -1, 0, -1, 0
    for tensor in tensors:
        address = tensor.untyped_storage().data_ptr()
        until = max(until, made.get(address, -1))
        while seen <= until:
            if curve[seen] > best:
                best, at = curve[seen], seen
            seen += 1
        peaks.append(best)
        places.append(at)
    return tuple(peaks), tuple(places)


__all__ = ["AllocatorRun", "allocator_events", "measured_peaks", "measured_run", "peaks_of"]
