"""Measured time per exit of an early-exit network, and of an MSDNet's early exit.

Every figure elsewhere in msdprof is an operation count; this module measures what the counts
stand for.  For every model -- an MSDNet or any ``nn.Module`` returning one output per exit -- the
full forward ``model(x)`` is timed with timestamps read only where the outputs are made
(:mod:`msdprof.analysis.stamps`): the time to each output within one forward, the eager cost's time.  What
those timestamp hooks cost is measured and shown: the full forward is timed with and without them
(:class:`ForwardLatency`), and one hook call on its own.

For an MSDNet, per exit ``k`` two *programs* are timed as well:

- **eager**: ``model(x, exits=k)`` -- blocks and heads 1..k;
- **lazy**: heads 1..k and only the feature maps they read, run by the cascade
  :meth:`msdnet.MSDNet.early_exit` uses with ``lazy=True`` (``msdnet.model._LazyCascade``), asking
  for exits 1..k in turn.

A program is a callable of no arguments made by a :data:`Programs` function ``(model, x, k)``;
:data:`PROGRAMS` holds the two above.  A model msdprof did not build has no way of stopping at exit k
or of running only what exits 1..k read, so it gets the in-forward times alone (lazy time: none).

Each program is timed by :func:`time_program`: a few warm-up calls, then
``torch.utils.benchmark.Timer.blocked_autorange`` at a fixed thread count (the timer synchronises
CUDA before reading the clock; it also turns the garbage collector off while timing).  Times are in
milliseconds for the whole batch; ``ms per G-op`` divides by the batch's operations in the costs'
convention.  Timings depend on the machine and on what else it runs: they are never test
assertions (the tests check which modules each program runs, see ``tests/test_latency.py``).
"""

from __future__ import annotations

import math
import os
import platform
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import torch
from torch import nn
from torch.utils import benchmark

from msdnet import MSDNet
from msdnet.options import OptionError, _whole
from msdnet.model import _LazyCascade, check_msdnet

from ..core.dataflow import (
    InputSpec, Inputs, Outputs, as_inputs, check_forward_bytes, evaluating, make_inputs, parse_inputs,
    record_on_shapes, select_exits,
)
from ..files.user_model import load_failure, quietly, read_inputs
from ..core.exits import ExitCosts, costs_of, record_exits
from ..core.display import Tabular
from ..core.units import shape_text
from .stamps import Stamp, Stamper, check_stamps, stamp_points, timed_runs

#: A timed program: runs the network up to one exit (for the batch it was made with).
Program = Callable[[], Any]
#: ``programs(model, x, k)``: the program reaching exit ``k`` (1-based) of ``model`` on batch ``x``.
Programs = Callable[[nn.Module, torch.Tensor, int], Program]

DEVICES = ("cpu", "cuda")
#: Calls of a program before it is timed (memory allocator, kernel choice, CUDA context).
WARMUP = 3
#: Default seconds of timing per program (``blocked_autorange(min_run_time=...)``).
MIN_TIME = 1.0
#: Most images per timed call, torch intra-op threads, and numbers in a random batch (4 GiB of
#: float32): bounds that refuse an absurd value at once (a huge thread count crashes torch).
MAX_BATCH = 65536
MAX_THREADS = 1024
MAX_BATCH_NUMBERS = 2 ** 30
#: Most seconds of timing per program (``--min-time``): a command times 2 programs per exit and
#: the full forward, so an hour per program is already a day for a 10-exit network.
MAX_MIN_TIME = 3600.0
def eager_program(model: nn.Module, x: torch.Tensor, k: int) -> Program:
    """``model(x, exits=k)`` under ``torch.no_grad()``: blocks and heads 1..k."""
    net = check_msdnet(model)
    net._check_exits(k)

    def run() -> list[torch.Tensor]:
        with torch.no_grad():
            return net(x, exits=k)

    return run


def lazy_program(model: nn.Module, x: torch.Tensor, k: int) -> Program:
    """Exits 1..k asked for in turn of the lazy cascade of ``MSDNet.early_exit(lazy=True)``: heads
    1..k and only the feature maps they read, directly or through other maps (the lazy set)."""
    net = check_msdnet(model)
    net._check_exits(k)

    def run() -> list[torch.Tensor]:
        with torch.no_grad():
            cascade = _LazyCascade(net, x)
            return [cascade.logits(j) for j in range(1, k + 1)]

    return run


#: How exit k is reached, by name; :func:`measure_latency` times each for every exit.
PROGRAMS: dict[str, Programs] = {"eager": eager_program, "lazy": lazy_program}


@dataclass(frozen=True)
class Timing:
    """One program's measured time, for the whole batch it ran on.

    ``median_ms``/``iqr_ms``: median and inter-quartile range of the ``blocks`` measurements, in
    milliseconds per call (``iqr_ms`` is ``None`` from a single block); each measurement is the mean of ``per_block`` consecutive calls
    (``torch.utils.benchmark``'s block), so ``runs = blocks * per_block`` calls were timed.
    """

    median_ms: float
    iqr_ms: float | None
    blocks: int
    per_block: int

    @property
    def runs(self) -> int:
        return self.blocks * self.per_block

    @classmethod
    def of(cls, measurement: benchmark.Measurement) -> "Timing":
        blocks = len(measurement.times)
        return cls(measurement.median * 1e3, measurement.iqr * 1e3 if blocks > 1 else None, blocks,
                   measurement.number_per_run)

    @classmethod
    def of_runs(cls, ms: Sequence[float]) -> "Timing":
        """From single calls' times in ms (each call its own block)."""
        q1, median, q3 = np.percentile(np.asarray(ms, dtype=float), [25, 50, 75])
        return cls(float(median), float(q3 - q1) if len(ms) > 1 else None, len(ms), 1)

    def as_dict(self) -> dict[str, Any]:
        return {"median_ms": self.median_ms, "iqr_ms": self.iqr_ms, "runs": self.runs,
                "blocks": self.blocks, "per_block": self.per_block}


def time_program(program: Program, threads: int = 1, min_time: float = MIN_TIME,
                 warmup: int = WARMUP) -> Timing:
    """Time ``program()``: ``warmup`` calls, then ``blocked_autorange`` for at least ``min_time``
    seconds, with torch's intra-op thread count set to ``threads`` meanwhile (restored after)."""
    timer = benchmark.Timer(stmt="program()", globals={"program": program}, num_threads=threads)
    if warmup:
        timer.timeit(warmup)
    return Timing.of(timer.blocked_autorange(min_run_time=min_time))


def spearman(xs: Sequence[float], ys: Sequence[float]) -> float | None:
    """Spearman's rank correlation of ``xs`` and ``ys`` (ties get their average rank); ``None``
    when it is undefined (fewer than 2 points, or one side constant)."""
    if len(xs) != len(ys):
        raise ValueError("spearman needs two sequences of the same length")
    if len(xs) < 2:
        return None

    def ranks(values: Sequence[float]) -> np.ndarray:
        v = np.asarray(values, dtype=float)
        order = np.argsort(v, kind="stable")
        r = np.empty(len(v))
        r[order] = np.arange(1, len(v) + 1)
        for value in np.unique(v):  # ties: the mean of their ranks
            r[v == value] = r[v == value].mean()
        return r

    a, b = ranks(xs), ranks(ys)
    a, b = a - a.mean(), b - b.mean()
    norm = math.sqrt(float((a * a).sum() * (b * b).sum()))
    return None if norm == 0 else float((a * b).sum() / norm)


# --- the machine -------------------------------------------------------------------------------


def cpu_name() -> str:
    """The CPU's model name (``/proc/cpuinfo`` on Linux), else what :mod:`platform` says."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


@dataclass(frozen=True)
class Machine:
    """Where the timings were taken: ``device`` (``cpu``/``cuda``), torch's intra-op ``threads``,
    the ``cpu`` model name and the ``gpu`` name (``None`` on CPU), torch's version."""

    device: str
    threads: int
    cpu: str
    gpu: str | None
    torch: str
    cores: int | None

    @classmethod
    def here(cls, device: str, threads: int) -> "Machine":
        gpu = torch.cuda.get_device_name() if device == "cuda" else None
        return cls(device, threads, cpu_name(), gpu, torch.__version__, os.cpu_count())

    def describe(self) -> str:
        where = f"GPU {self.gpu} (CPU {self.cpu})" if self.gpu else f"CPU {self.cpu}"
        cores = f", {self.cores} cores" if self.cores else ""
        return f"{where}{cores}, {self.threads} torch thread{'s' * (self.threads != 1)}, torch {self.torch}"


# --- options ------------------------------------------------------------------------------------


def check_device(device: Any) -> str:
    """``cpu`` or ``cuda`` (refused with :class:`OptionError` when CUDA is not available)."""
    if device not in DEVICES:
        raise OptionError("device", device, "must be cpu or cuda")
    if device == "cuda" and not torch.cuda.is_available():
        raise OptionError("device", device, f"CUDA is not available here (torch {torch.__version__}); "
                                            "use cpu")
    return device


def check_min_time(value: Any) -> float:
    """Seconds of timing per program: a number > 0 and at most :data:`MAX_MIN_TIME`."""
    allowed = (f"must be a number of seconds > 0 and at most {MAX_MIN_TIME:,.0f} (timing per "
               "program, e.g. 0.5)")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise OptionError("min-time", value, allowed) from None
    if isinstance(value, bool) or not 0 < number <= MAX_MIN_TIME:
        raise OptionError("min-time", value, allowed)
    return number


def check_batch(value: Any) -> int:
    return _whole("batch", value, 1, MAX_BATCH, "images per timed call")


def check_threads(value: Any) -> int:
    return _whole("threads", value, 1, MAX_THREADS, "torch intra-op threads")


def check_batch_numbers(batch: int, input_size: Sequence[int]) -> None:
    """:class:`OptionError` when ``batch`` images of ``input_size`` ((height, width) or (C, height,
    width)) hold more than :data:`MAX_BATCH_NUMBERS` numbers (checked before they are made)."""
    numbers = batch * math.prod(_image_shape(input_size))
    if numbers > MAX_BATCH_NUMBERS:
        shape = "x".join(map(str, _image_shape(input_size)))
        raise OptionError("batch", batch, f"of {shape} images holds {numbers:,} numbers: at most "
                                          f"{MAX_BATCH_NUMBERS:,} (4 GiB of float32; see the limits in docs/errors.md)")


# --- the batch and the weights ---------------------------------------------------------------------


def load_weights(model: MSDNet, path: str | os.PathLike) -> MSDNet:
    """Load the state dict saved in ``path`` (``torch.save(model.state_dict())``, read with
    ``torch.load(weights_only=True)``: no code in the file is run) into ``model``, strictly;
    :class:`OptionError` naming the file when it cannot be read or does not fit the network."""
    path = Path(path)
    if not path.is_file():
        raise OptionError("weights", str(path), "does not exist" if not path.exists() else
                          "is not a file")
    try:
        with quietly():
            state = torch.load(path, map_location=next(model.parameters()).device, weights_only=True)
    except Exception as error:  # a corrupt file fails in many ways
        raise OptionError("weights", str(path), "cannot be read by torch.load(weights_only=True): "
                          + load_failure(error)) from None
    if not isinstance(state, Mapping):
        raise OptionError("weights", str(path), f"holds a {type(state).__name__}: must hold a "
                          "state dict (torch.save(model.state_dict(), FILE))")
    mine = model.state_dict()
    missing = [k for k in mine if k not in state]
    unexpected = [k for k in state if k not in mine]
    shapes = [k for k in mine if k in state and (not isinstance(state[k], torch.Tensor)
                                                 or state[k].shape != mine[k].shape)]
    if missing or unexpected or shapes:
        first = (f"{len(missing)} missing (first {missing[0]})" if missing else
                 f"{len(unexpected)} unexpected (first {unexpected[0]})" if unexpected else
                 f"{shapes[0]} has shape {tuple(getattr(state[shapes[0]], 'shape', ()))}, the network "
                 f"{tuple(mine[shapes[0]].shape)}")
        raise OptionError("weights", str(path), f"does not fit this network: {first}; give the "
                          "options it was trained with")
    model.load_state_dict(state)
    return model


def _image_shape(input_size: Sequence[int]) -> tuple[int, int, int]:
    """(channels, height, width) from (height, width) -- 3 channels -- or (channels, height, width)."""
    return (3, *input_size) if len(input_size) == 2 else tuple(input_size)  # type: ignore[return-value]


def load_inputs(path: str | os.PathLike, input_size: Sequence[int]) -> torch.Tensor:
    """An MSDNet's images ``[N, C, height, width]`` (float32) from ``path``, read as
    :func:`msdprof.files.user_model.read_inputs` reads any model's saved inputs (an ``.npz`` holding
    one array, or one named ``x`` among others; a tensor saved with ``torch.save``, read with
    ``weights_only=True``); ``input_size`` is (height, width) (C = 3) or (C, height, width).
    :class:`OptionError` naming the file when it holds anything else."""
    given = read_inputs(str(path))
    x: Any = given.args[0] if len(given.args) == 1 and not given.kwargs else given.kwargs.get("x") if (
        not given.args) else None
    c, h, w = _image_shape(input_size)
    if not isinstance(x, torch.Tensor) or not x.is_floating_point() or x.dim() != 4 or \
            tuple(x.shape[1:]) != (c, h, w) or len(x) == 0:
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else ", ".join(
            f"{n}={tuple(t.shape)}" for n, t in given.kwargs.items()) or f"{len(given.args)} tensors"
        raise OptionError("inputs", str(path), f"holds {shape}: must hold float images [N, {c}, {h}, {w}] "
                                               "(N >= 1) for this network (in an .npz: one array, or x)")
    return x.to(torch.float32)


def random_inputs(model: nn.Module, input_size: Any, batch: int | None = None, seed: int = 0) -> Inputs:
    """Inputs of ``input_size`` (as :func:`msdprof.core.dataflow.parse_inputs` reads it; an
    MSDNet's: (C, height, width)) for ``model``, their first dimension ``batch`` when given:
    floating-point ones standard normal noise, the same for the same ``seed``; integer and boolean
    ones (token ids, masks) zeros.

    Refused with :class:`OptionError` before anything is made, naming ``batch`` (``input-size``
    when no batch is given): inputs of more than :data:`MAX_BATCH_NUMBERS` numbers, and inputs
    whose forward through ``model`` would take more than :data:`~msdprof.core.units.MAX_BYTES`
    (:func:`msdprof.core.dataflow.check_forward_bytes`, from a record of one item on shapes alone,
    :func:`msdprof.core.dataflow.record_on_shapes`)."""
    specs = parse_inputs(input_size)
    if batch is not None:
        specs = [InputSpec(s.name, (batch, *s.shape[1:]), s.dtype) for s in specs]
    numbers = sum(math.prod(s.shape) for s in specs)
    if numbers > MAX_BATCH_NUMBERS:
        shapes = ", ".join("x".join(map(str, s.shape[1:])) for s in specs)
        raise OptionError("batch", batch if batch is not None else 1, f"of {shapes} inputs holds {numbers:,} "
                          f"numbers: at most {MAX_BATCH_NUMBERS:,} (4 GiB of float32; see the limits in docs/errors.md)")
    option, typed = ("batch", batch) if batch is not None else ("input-size", shape_text(input_size))
    one = specs if batch is None else [InputSpec(s.name, (1, *s.shape[1:]), s.dtype) for s in specs]
    flow = record_on_shapes(model, one, False)
    if flow is not None:  # a model that reads values is checked on its record of one item, before timing
        check_forward_bytes(model, flow, option, typed, batch or 1, meta=False)
    generator = torch.Generator().manual_seed(seed)

    def noise(t: torch.Tensor) -> torch.Tensor:
        return torch.randn(t.shape, generator=generator, dtype=t.dtype).to(t.device) if (
            t.is_floating_point() and t.device.type != "meta") else t

    return make_inputs(model, specs).map(noise)


def random_batch(batch: int, input_size: Sequence[int], seed: int = 0) -> torch.Tensor:
    """``batch`` images ``[batch, C, height, width]`` of standard normal noise (``input_size``:
    (height, width) with C = 3, or (C, height, width)), the same for the same ``seed`` (timing does
    not depend on the pixel values; early-exit decisions do)."""
    check_batch_numbers(batch, input_size)
    return torch.randn(batch, *_image_shape(input_size), generator=torch.Generator().manual_seed(seed))


# --- per exit -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ExitLatency:
    """Exit ``exit`` (named ``name``; ``layer``: an MSDNet's layer, else ``None``): its operations
    for one image (``macs``: eager, ``lazy_macs``: lazy, in the costs' convention) and measured
    times on the whole batch, in ms.

    ``forward``: from the start of the full forward ``model(x)`` to output ``exit``, read where
    ``stamp`` says (every model).  ``eager``/``lazy``: the exit's eager and lazy programs (an MSDNet;
    ``None`` for other models).  ``*_ms_per_gop``: median ms per 10^9 operations of the batch
    (``forward`` and ``eager`` per ``macs``, ``lazy`` per ``lazy_macs``).
    """

    exit: int
    layer: int | None
    macs: int
    lazy_macs: int
    stamp: Stamp
    forward: Timing
    forward_ms_per_gop: float
    eager: Timing | None = None
    lazy: Timing | None = None
    eager_ms_per_gop: float | None = None
    lazy_ms_per_gop: float | None = None

    @property
    def name(self) -> str:
        """The exit's name (a returned dict's key, else its number)."""
        return self.stamp.name

    def as_dict(self) -> dict[str, Any]:
        def ms(t: Timing | None, field: str) -> Any:
            return None if t is None else getattr(t, field)

        return {
            "exit": self.exit, "layer": self.layer, "macs": self.macs, "lazy_macs": self.lazy_macs,
            "eager_ms": ms(self.eager, "median_ms"), "eager_iqr_ms": ms(self.eager, "iqr_ms"),
            "eager_runs": ms(self.eager, "runs"), "eager_ms_per_gop": self.eager_ms_per_gop,
            "lazy_ms": ms(self.lazy, "median_ms"), "lazy_iqr_ms": ms(self.lazy, "iqr_ms"),
            "lazy_runs": ms(self.lazy, "runs"), "lazy_ms_per_gop": self.lazy_ms_per_gop,
            "name": self.name,
            "forward_ms": self.forward.median_ms, "forward_iqr_ms": self.forward.iqr_ms,
            "forward_runs": self.forward.runs, "forward_ms_per_gop": self.forward_ms_per_gop,
            "stamp": self.stamp.as_dict(),
        }


@dataclass(frozen=True)
class ForwardLatency:
    """The full forward ``model(x)`` on the batch, in ms: ``plain`` without hooks and ``stamped``
    with the timestamp hooks, timed in pairs (a stamped forward, then a plain one, with the same
    clock: :func:`msdprof.analysis.stamps.timed_runs`).  ``overhead``: the pairs' differences (stamped minus
    plain), their median and IQR -- what the hooks cost (noise can make it negative).
    ``hook_calls``: hook calls per forward; ``hook_ns``: one stamping hook call timed on its own, in
    ns, so ``hooks_ms = hook_calls * hook_ns`` is the hooks' own Python time per forward (PyTorch's
    cost of calling hooks at all is in ``overhead`` only)."""

    plain: Timing
    stamped: Timing
    overhead: Timing
    hook_calls: int
    hook_ns: float

    @property
    def overhead_ms(self) -> float:
        return self.overhead.median_ms

    @property
    def hooks_ms(self) -> float:
        return self.hook_calls * self.hook_ns / 1e6

    def as_dict(self) -> dict[str, Any]:
        return {"plain": self.plain.as_dict(), "stamped": self.stamped.as_dict(),
                "overhead_ms": self.overhead_ms, "overhead_iqr_ms": self.overhead.iqr_ms,
                "hook_calls": self.hook_calls, "hook_ns": self.hook_ns, "hooks_ms": self.hooks_ms}


# --- early exit --------------------------------------------------------------------------------


@dataclass(frozen=True)
class EarlyExitLatency:
    """``MSDNet.early_exit`` timed on a batch of ``images``, next to two predictions.

    ``thresholds`` and where they came from (``source``); ``images_per_exit``: where the batch's
    images left (the same at every call: the batch is fixed).  ``eager``/``lazy``: measured time of
    ``early_exit(x, thresholds, lazy=...)`` on the whole batch.  Per image, in ms:
    ``*_ms_per_image`` measured, ``predicted_*_ms_per_image`` = Σ_k fraction_k × time to exit k
    (the per-exit programs' medians on the same batch, divided by its size).  ``expected_macs`` /
    ``expected_lazy_macs``: Σ_k fraction_k × operations to exit k, per image, exact.
    """

    source: str
    thresholds: tuple[float, ...]
    images: int
    images_per_exit: tuple[int, ...]
    eager: Timing
    lazy: Timing
    predicted_eager_ms_per_image: float
    predicted_lazy_ms_per_image: float
    expected_macs: Fraction
    expected_lazy_macs: Fraction

    @property
    def fractions(self) -> tuple[Fraction, ...]:
        return tuple(Fraction(n, self.images) for n in self.images_per_exit)

    @property
    def eager_ms_per_image(self) -> float:
        return self.eager.median_ms / self.images

    @property
    def lazy_ms_per_image(self) -> float:
        return self.lazy.median_ms / self.images

    def as_dict(self) -> dict[str, Any]:
        return {
            "source": self.source, "thresholds": list(self.thresholds), "images": self.images,
            "images_per_exit": list(self.images_per_exit),
            "eager": self.eager.as_dict(), "lazy": self.lazy.as_dict(),
            "eager_ms_per_image": self.eager_ms_per_image,
            "lazy_ms_per_image": self.lazy_ms_per_image,
            "predicted_eager_ms_per_image": self.predicted_eager_ms_per_image,
            "predicted_lazy_ms_per_image": self.predicted_lazy_ms_per_image,
            "expected_macs": float(self.expected_macs),
            "expected_lazy_macs": float(self.expected_lazy_macs),
        }


@dataclass(frozen=True)
class Latency(Tabular):
    """What :func:`measure_latency` measured: per exit (exit 1 first), the full forward, the machine,
    and the early exit when thresholds were given.  ``spearman_*``: rank correlation across exits of
    the measured median time with ``macs`` (``forward``, ``eager``) or ``lazy_macs`` (``lazy``);
    ``None`` for one exit, and ``eager``/``lazy`` for a model that is not an MSDNet.
    ``input_shapes``: the shapes of the timed batch's tensors."""

    costs: ExitCosts
    machine: Machine
    batch: int
    min_time: float
    exits: tuple[ExitLatency, ...]
    input_shapes: tuple[tuple[int, ...], ...]
    forward: ForwardLatency
    spearman_forward: float | None
    spearman_eager: float | None = None
    spearman_lazy: float | None = None
    early_exit: EarlyExitLatency | None = None

    @property
    def programs(self) -> bool:
        """Whether each exit's eager and lazy programs were timed (an MSDNet)."""
        return self.exits[0].eager is not None

    def as_dict(self) -> dict[str, Any]:
        m, costs = self.machine, self.costs
        return {
            "model": costs.model, "options": costs.options.as_dict() if costs.options else None,
            "convention": costs.convention,
            "input": list(self.input_shapes[0][1:]),
            "input_shapes": [list(s) for s in self.input_shapes],
            "device": m.device, "threads": m.threads, "batch": self.batch, "torch": m.torch,
            "cpu": m.cpu, "gpu": m.gpu, "cores": m.cores, "min_time_s": self.min_time,
            "warmup_calls": WARMUP,
            "exits": [e.as_dict() for e in self.exits],
            "forward": self.forward.as_dict(),
            "spearman_forward": self.spearman_forward,
            "spearman_eager": self.spearman_eager, "spearman_lazy": self.spearman_lazy,
            "early_exit": self.early_exit.as_dict() if self.early_exit else None,
        }


def _per_gop(ms: float, ops: int) -> float:
    return ms / (ops / 1e9) if ops else math.nan


def _early_exit(model: MSDNet, x: torch.Tensor, thresholds: Sequence[float], source: str,
                exits: Sequence[ExitLatency], threads: int, min_time: float) -> EarlyExitLatency:
    result = model.early_exit(x, thresholds)
    timings = {lazy: time_program(lambda lazy=lazy: model.early_exit(x, thresholds, lazy=lazy),
                                  threads, min_time) for lazy in (False, True)}
    n = len(x)
    fractions = [Fraction(c, n) for c in result.images_per_exit]
    return EarlyExitLatency(
        source, tuple(float(t) for t in thresholds), n, tuple(result.images_per_exit),
        timings[False], timings[True],
        sum(float(f) * e.eager.median_ms for f, e in zip(fractions, exits)) / n,
        sum(float(f) * e.lazy.median_ms for f, e in zip(fractions, exits)) / n,
        sum((f * e.macs for f, e in zip(fractions, exits)), Fraction(0)),
        sum((f * e.lazy_macs for f, e in zip(fractions, exits)), Fraction(0)),
    )


def check_thresholds(model: MSDNet, thresholds: Sequence[float]) -> tuple[float, ...]:
    """``thresholds`` as ``MSDNet.early_exit`` reads them, or :class:`OptionError`."""
    try:
        model._check_thresholds(thresholds)
    except ValueError as error:
        raise OptionError("thresholds", ",".join(map(str, thresholds)) if isinstance(
            thresholds, (list, tuple)) else thresholds, str(error)) from None
    return tuple(float(t) for t in thresholds)


def _inputs(x: Any) -> Inputs:
    """``x`` as :class:`~msdprof.core.dataflow.Inputs` of batch tensors (see
    :func:`msdprof.core.dataflow.as_inputs`), each with at least one item, all of one batch size."""
    given = as_inputs(x)
    if not all(t.dim() >= 1 and len(t) for t in given.tensors) or len({len(t) for t in given.tensors}) > 1:
        raise OptionError("inputs", type(x).__name__, "must be batch tensors (a tensor, a tuple or a "
                          "dict of them) of one batch size, with at least one item")
    return given


def _time_forward(model: nn.Module, xs: Inputs, stamps: Sequence[Stamp],
                  select: Callable[[Any], Sequence[torch.Tensor]], threads: int, min_time: float,
                  ) -> tuple[list[Timing], ForwardLatency]:
    """Per stamp, the time from the forward's start to it; and the full forward with and without
    the stamp hooks (see :class:`ForwardLatency`)."""
    stamper = Stamper(model, stamps, xs.tensors[0].device.type)
    with stamper:
        check_stamps(stamper, xs, select)
        hook_calls = stamper.hook_calls
    stamped, plain = timed_runs(stamper, xs, threads, min_time, WARMUP)
    columns = list(zip(*stamped))
    forward = ForwardLatency(Timing.of_runs(plain), Timing.of_runs(columns[-1]),
                             Timing.of_runs([a - b for a, b in zip(columns[-1], plain)]), hook_calls,
                             stamper.mark_cost_ns(threads))
    return [Timing.of_runs(column) for column in columns[:-1]], forward


def measure_latency(
    model: nn.Module,
    x: torch.Tensor | Sequence[torch.Tensor] | Mapping[str, torch.Tensor] | Inputs,
    *,
    threads: int = 1,
    min_time: float = MIN_TIME,
    convention: str | None = None,
    thresholds: Sequence[float] | None = None,
    source: str = "thresholds",
    programs: Mapping[str, Programs] | None = None,
    outputs: Outputs = None,
) -> Latency:
    """Time every exit of ``model`` on the batch ``x`` (on the model's device).

    Any early-exit model (an ``nn.Module`` whose forward returns one output per exit; ``outputs``
    picks them out of a richer return value, as for :func:`msdprof.core.exits.exit_costs`; ``x`` a
    tensor, a tuple of tensors for a forward of several arguments, or a dict of keyword tensors, of
    one batch size): the time to each output
    within one full forward and the full forward with and without the timestamp hooks.  An
    :class:`msdnet.MSDNet` also gets each exit's eager and lazy program timed (``programs``:
    ``{"eager": ..., "lazy": ...}``, default :data:`PROGRAMS`) and, with ``thresholds`` (one per
    exit, as :meth:`MSDNet.early_exit` takes them), its early exit on ``x`` next to its predictions;
    ``source`` says where the thresholds came from (shown).

    The model is run in eval mode and every submodule's mode restored afterwards.  Operation
    counts are for one item of the batch (an MSDNet: one image of its plan), in ``convention``.
    """
    threads, min_time = check_threads(threads), check_min_time(min_time)
    xs = _inputs(x)
    msdnet = isinstance(model, MSDNet)
    if msdnet:
        check_msdnet(model)
        programs = dict(PROGRAMS if programs is None else programs)
        if set(programs) != {"eager", "lazy"}:
            raise ValueError("programs must map 'eager' and 'lazy' to a Programs function")
        if thresholds is not None:
            thresholds = check_thresholds(model, thresholds)
        if outputs is not None:
            raise OptionError("outputs", "given", "is for a model msdprof did not build")
    elif programs is not None or thresholds is not None:
        raise OptionError("programs" if programs is not None else "thresholds", "given",
                          f"need an MSDNet ({type(model).__name__} has no exits= to stop at, nor "
                          "early_exit)")
    flow = record_exits(model, inputs=None if msdnet else xs.map(lambda t: t[:1]), outputs=outputs)
    batch = len(xs.tensors[0])
    check_forward_bytes(model, flow, "batch", batch, batch, meta=False)
    costs = costs_of(model, flow, convention)
    stamps = stamp_points(flow)
    with evaluating(model):
        forward_times, forward = _time_forward(
            model, xs, stamps, lambda out: select_exits(out, outputs)[0], threads, min_time)
        exits = []
        for e, stamp, t in zip(costs, stamps, forward_times):
            timed: dict[str, Any] = {}
            if msdnet:
                eager = time_program(programs["eager"](model, xs.tensors[0], e.exit), threads, min_time)
                lazy = time_program(programs["lazy"](model, xs.tensors[0], e.exit), threads, min_time)
                timed = dict(eager=eager, lazy=lazy,
                             eager_ms_per_gop=_per_gop(eager.median_ms, e.macs * batch),
                             lazy_ms_per_gop=_per_gop(lazy.median_ms, e.lazy_macs * batch))
            exits.append(ExitLatency(e.exit, e.layer, e.macs, e.lazy_macs, stamp, t,
                                     _per_gop(t.median_ms, e.macs * batch), **timed))
        early = (None if thresholds is None else
                 _early_exit(model, xs.tensors[0], thresholds, source, exits, threads, min_time))
    macs = [e.macs for e in exits]
    return Latency(
        costs, Machine.here(xs.tensors[0].device.type, threads), batch, min_time, tuple(exits),
        xs.shapes, forward,
        spearman(macs, [e.forward.median_ms for e in exits]),
        spearman(macs, [e.eager.median_ms for e in exits]) if msdnet else None,
        spearman([e.lazy_macs for e in exits], [e.lazy.median_ms for e in exits]) if msdnet else None,
        early,
    )


__all__ = [
    "DEVICES", "EarlyExitLatency", "ExitLatency", "ForwardLatency", "Latency", "MAX_BATCH",
    "MAX_BATCH_NUMBERS", "MAX_THREADS", "MIN_TIME", "Machine", "PROGRAMS",
    "Program", "Programs", "Timing", "WARMUP", "check_batch", "check_batch_numbers", "check_device",
    "random_inputs",
    "check_min_time",
    "check_thresholds", "check_threads", "cpu_name", "eager_program", "lazy_program",
    "measure_latency", "spearman", "time_program",
]
