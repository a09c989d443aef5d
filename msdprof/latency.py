"""Measured time per exit of an MSDNet, and of its early exit, with ``torch.utils.benchmark``.

Every figure elsewhere in msdprof is an operation count; this module measures what the counts
stand for.  Per exit ``k`` two *programs* are timed:

- **eager**: ``model(x, exits=k)`` -- blocks and heads 1..k;
- **lazy**: heads 1..k and only the feature maps they read, run by the cascade
  :meth:`msdnet.MSDNet.early_exit` uses with ``lazy=True`` (``msdnet.model._LazyCascade``), asking
  for exits 1..k in turn.

A program is a callable of no arguments made by a :data:`Programs` function ``(model, x, k)``;
:data:`PROGRAMS` holds the two above.  This is the seam where a model msdprof did not build can be
given its own way of reaching exit k (e.g. the time to each output within one full forward), with
nothing else here changing.

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
from msdnet.config import OptionError, _whole
from msdnet.model import _LazyCascade, check_msdnet

from .exits import ExitCosts, count_model
from .saved_outputs import _first_line

#: A timed program: runs the network up to one exit (for the batch it was made with).
Program = Callable[[], Any]
#: ``programs(model, x, k)``: the program reaching exit ``k`` (1-based) of ``model`` on batch ``x``.
Programs = Callable[[nn.Module, torch.Tensor, int], Program]

DEVICES = ("cpu", "cuda")
#: Calls of a program before it is timed (memory allocator, kernel choice, CUDA context).
WARMUP = 3
#: Default seconds of timing per program (``blocked_autorange(min_run_time=...)``).
MIN_TIME = 1.0


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
    """Seconds of timing per program: a number > 0."""
    allowed = "must be a number of seconds > 0 (timing per program, e.g. 0.5)"
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise OptionError("min-time", value, allowed) from None
    if isinstance(value, bool) or not number > 0 or math.isinf(number):
        raise OptionError("min-time", value, allowed)
    return number


def check_batch(value: Any) -> int:
    return _whole("batch", value, 1)


def check_threads(value: Any) -> int:
    return _whole("threads", value, 1)


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
        state = torch.load(path, map_location=next(model.parameters()).device, weights_only=True)
    except Exception as error:  # a corrupt file fails in many ways
        raise OptionError("weights", str(path), "cannot be read by torch.load(weights_only=True): "
                          + _first_line(error)) from None
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


def load_inputs(path: str | os.PathLike, input_size: tuple[int, int]) -> torch.Tensor:
    """Images ``[N, 3, height, width]`` (float32) from ``path``: an ``.npz`` holding one array (or
    one named ``x``) or a tensor saved with ``torch.save`` (read with ``weights_only=True``);
    :class:`OptionError` naming the file when it holds anything else."""
    path = Path(path)

    def fail(what: str):
        raise OptionError("inputs", str(path), what)

    if not path.is_file():
        fail("does not exist" if not path.exists() else "is not a file")
    try:
        if path.suffix.lower() == ".npz":
            with np.load(path, allow_pickle=False) as data:
                names = data.files
                if "x" not in names and len(names) != 1:
                    fail(f"holds the arrays {', '.join(names) or 'none'}: give one array, or one "
                         "named x")
                x = torch.from_numpy(np.array(data["x" if "x" in names else names[0]]))
        else:
            x = torch.load(path, map_location="cpu", weights_only=True)
    except OptionError:
        raise
    except Exception as error:  # a corrupt file fails in many ways
        fail(f"cannot be read: {_first_line(error)}")
    h, w = input_size
    if not isinstance(x, torch.Tensor) or not x.is_floating_point() or x.dim() != 4 or \
            tuple(x.shape[1:]) != (3, h, w) or len(x) == 0:
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        fail(f"holds {shape}: must hold float images [N, 3, {h}, {w}] (N >= 1) for this network")
    return x.to(torch.float32)


def random_batch(batch: int, input_size: tuple[int, int], seed: int = 0) -> torch.Tensor:
    """``batch`` images ``[batch, 3, height, width]`` of standard normal noise, the same for the
    same ``seed`` (timing does not depend on the pixel values; early-exit decisions do)."""
    h, w = input_size
    return torch.randn(batch, 3, h, w, generator=torch.Generator().manual_seed(seed))


# --- per exit -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ExitLatency:
    """Exit ``exit``'s operations for one image (``macs``: eager, ``lazy_macs``: lazy, in the costs'
    convention) and the measured time of its eager and lazy program on the whole batch;
    ``*_ms_per_gop``: median milliseconds per 10^9 operations of the batch."""

    exit: int
    layer: int
    macs: int
    lazy_macs: int
    eager: Timing
    lazy: Timing
    eager_ms_per_gop: float
    lazy_ms_per_gop: float

    def as_dict(self) -> dict[str, Any]:
        return {
            "exit": self.exit, "layer": self.layer, "macs": self.macs, "lazy_macs": self.lazy_macs,
            "eager_ms": self.eager.median_ms, "eager_iqr_ms": self.eager.iqr_ms,
            "eager_runs": self.eager.runs, "eager_ms_per_gop": self.eager_ms_per_gop,
            "lazy_ms": self.lazy.median_ms, "lazy_iqr_ms": self.lazy.iqr_ms,
            "lazy_runs": self.lazy.runs, "lazy_ms_per_gop": self.lazy_ms_per_gop,
        }


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
class Latency:
    """What :func:`measure_latency` measured: per exit (exit 1 first), the machine, and the early
    exit when thresholds were given.  ``spearman_eager``/``spearman_lazy``: rank correlation across
    exits of the measured median time with ``macs``/``lazy_macs`` (``None`` for one exit)."""

    costs: ExitCosts
    machine: Machine
    batch: int
    min_time: float
    exits: tuple[ExitLatency, ...]
    spearman_eager: float | None
    spearman_lazy: float | None
    early_exit: EarlyExitLatency | None = None

    def as_dict(self) -> dict[str, Any]:
        m = self.machine
        return {
            "options": self.costs.options.as_dict(), "convention": self.costs.convention,
            "input": [3, *self.costs.input_size],
            "device": m.device, "threads": m.threads, "batch": self.batch, "torch": m.torch,
            "cpu": m.cpu, "gpu": m.gpu, "cores": m.cores, "min_time_s": self.min_time,
            "warmup_calls": WARMUP,
            "exits": [e.as_dict() for e in self.exits],
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


def measure_latency(
    model: MSDNet,
    x: torch.Tensor,
    *,
    threads: int = 1,
    min_time: float = MIN_TIME,
    convention: str = "msdnet",
    thresholds: Sequence[float] | None = None,
    source: str = "thresholds",
    programs: Mapping[str, Programs] | None = None,
) -> Latency:
    """Time exits 1..nBlocks of ``model`` on the batch ``x`` (on the model's device), eager and lazy;
    with ``thresholds`` (one per exit, as :meth:`MSDNet.early_exit` takes them) also the early exit
    on ``x``, next to its predictions.  ``source`` says where the thresholds came from (shown).

    ``programs``: ``{"eager": ..., "lazy": ...}`` (default :data:`PROGRAMS`).  The model is run in
    eval mode and its mode restored afterwards.  Operation counts come from
    :func:`msdprof.exits.count_model` (one image, ``convention``).
    """
    net = check_msdnet(model)
    threads, min_time = check_threads(threads), check_min_time(min_time)
    programs = dict(PROGRAMS if programs is None else programs)
    if set(programs) != {"eager", "lazy"}:
        raise ValueError("programs must map 'eager' and 'lazy' to a Programs function")
    device = x.device.type
    costs = count_model(net, convention)
    if thresholds is not None:
        thresholds = check_thresholds(net, thresholds)
    was_training = net.training
    net.eval()
    try:
        batch = len(x)
        exits = []
        for e in costs:
            eager = time_program(programs["eager"](net, x, e.exit), threads, min_time)
            lazy = time_program(programs["lazy"](net, x, e.exit), threads, min_time)
            exits.append(ExitLatency(
                e.exit, e.layer, e.macs, e.lazy_macs, eager, lazy,
                _per_gop(eager.median_ms, e.macs * batch), _per_gop(lazy.median_ms, e.lazy_macs * batch),
            ))
        early = (None if thresholds is None else
                 _early_exit(net, x, thresholds, source, exits, threads, min_time))
    finally:
        net.train(was_training)
    return Latency(
        costs, Machine.here(device, threads), batch, min_time, tuple(exits),
        spearman([e.macs for e in exits], [e.eager.median_ms for e in exits]),
        spearman([e.lazy_macs for e in exits], [e.lazy.median_ms for e in exits]),
        early,
    )


__all__ = [
    "DEVICES", "EarlyExitLatency", "ExitLatency", "Latency", "MIN_TIME", "Machine", "PROGRAMS",
    "Program", "Programs", "Timing", "WARMUP", "check_batch", "check_device", "check_min_time",
    "check_thresholds", "check_threads", "cpu_name", "eager_program", "lazy_program",
    "measure_latency", "spearman", "time_program",
]
