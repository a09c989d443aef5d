"""The peak memory the CPU allocator really reached to each exit: the check of
:mod:`msdprof.core.memory` against reality.

:func:`measured_peaks` runs a real model once (in eval mode, under ``torch.no_grad()``) with
``torch.profiler``'s memory events on, and reads the allocator's own record: every allocation and
free in order, with its address and bytes.  Exit k is complete when the storage of its output (and
of outputs 1..k-1) was allocated; the eager peak of exit k is the most bytes allocated at once, from
the start of the forward pass until then, less nothing: the model's parameters and inputs were
allocated before and are not in it, as in the prediction.  Everything the allocator hands out is in
it -- kernels' workspaces and the temporaries inside modules included -- so it is at least the
predicted peak; the README's "Memory" section shows the gap per exit.
"""

from __future__ import annotations

import json
import os
import tempfile
from typing import Any, Callable

import torch
from torch import nn

from ..core.dataflow import evaluating, select_exits


def allocator_events(run: Callable[[], Any]) -> tuple[Any, list[tuple[int, int]]]:
    """``run()``'s result and the CPU allocator's events while it ran: (address, bytes) in order,
    bytes negative for a free."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        result = run()
    handle, path = tempfile.mkstemp(suffix=".json")
    os.close(handle)
    try:
        prof.export_chrome_trace(path)
        with open(path) as f:
            trace = json.load(f)
    finally:
        os.unlink(path)
    events = [e for e in trace.get("traceEvents", []) if e.get("name") == "[memory]"
              and e.get("args", {}).get("Device Type") == 0]
    events.sort(key=lambda e: e["args"].get("Ev Idx", 0))
    return result, [(int(e["args"]["Addr"]), int(e["args"]["Bytes"])) for e in events]


def measured_peaks(
    model: nn.Module,
    inputs: Any,
    outputs: Callable[[Any], Any] | None = None,
) -> tuple[int, ...]:
    """Per exit k, the most bytes the CPU allocator held at once (above what it held before the
    pass) from the start of one forward pass of ``model`` on ``inputs`` (a tensor or a tuple of
    tensors) until outputs 1..k were allocated; eval mode, no autograd graph.  ``outputs`` picks
    the exits out of what the model returns, as for :func:`msdprof.exit_costs`."""
    given = (inputs,) if isinstance(inputs, torch.Tensor) else tuple(inputs)
    with evaluating(model), torch.no_grad():
        result, events = allocator_events(lambda: model(*given))
    tensors, _ = select_exits(result, outputs)
    made: dict[int, int] = {}  # address -> index of the event that last allocated it
    running, curve = 0, []
    for index, (address, size) in enumerate(events):
        running += size
        curve.append(running)
        if size > 0:
            made[address] = index
    peaks, until, best, seen = [], -1, 0, 0
    for tensor in tensors:
        address = tensor.untyped_storage().data_ptr()
        until = max(until, made.get(address, -1))
        while seen <= until:
            best = max(best, curve[seen])
            seen += 1
        peaks.append(best)
    return tuple(peaks)


__all__ = ["allocator_events", "measured_peaks"]
