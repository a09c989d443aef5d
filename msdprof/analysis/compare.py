"""Why FLOP counters disagree: msdprof's conventions, fvcore and FlopCounterMode on one model, per
exit, and every gap between two of them explained operator by operator.

Each tool counts exactly what early-exit inference runs to reach exit k (cumulative: blocks and
heads 1..k), on the same model:

- ``msdnet``, ``macs``, ``flops``: :func:`msdprof.core.counting.count_modules` of that run, in each
  convention (:data:`msdprof.core.counting.CONVENTIONS`), grouped by the operator each module is;
- ``fvcore``: ``fvcore.nn.FlopCountAnalysis`` with its default handles (what a user gets by calling
  it) on :class:`KeepAlive`, which returns every module's output so that the JIT trace keeps all of
  that work (a trace drops whatever no returned tensor depends on);
- ``FlopCounterMode``: ``torch.utils.flop_counter.FlopCounterMode`` around that run (eager: it
  sees every call).

Every count is in the tool's own unit for one run of the input given (usually one image): msdprof's
conventions as documented, fvcore's "flops" (one multiply-add = 1, plus its other handles),
FlopCounterMode's FLOPs (one multiply-add = 2).  A tool that raises is reported in a one-line note,
never re-raised.

The model is anything with a way to run "exits 1..k": ``outputs(model, x, k)``; for an MSDNet,
:func:`msdnet_exits` (``model(x, exits=k)``).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from itertools import combinations
from typing import Any, Callable, Iterator

import torch
from torch import nn

from msdnet.options import OptionError
from msdnet.model import check_msdnet
from msdnet.model import model_from

from ..core.counting import CONVENTIONS, OpCount
from ..core.dataflow import count_modules, tensors_in

#: ``outputs(model, x, k)``: run ``model`` on ``x`` as early-exit inference does up to exit ``k``
#: (every block and head 1..k) and return the outputs of exits 1..k.
ExitOutputs = Callable[[nn.Module, torch.Tensor, int], Any]

FVCORE = "fvcore"
TORCH = "FlopCounterMode"
#: The tools compared, in the order of tables and of the pairs ``later - earlier``.
TOOLS: tuple[str, ...] = (*CONVENTIONS, FVCORE, TORCH)

#: What each tool is, for captions and JSON.
TOOL_HELP = {
    "msdnet": "msdprof, 'msdnet' convention (the authors' op counter, the paper's 'FLOPs')",
    "macs": "msdprof, 'macs' convention (Conv2d and Linear multiply-adds)",
    "flops": "msdprof, 'flops' convention (2 x macs)",
    FVCORE: "fvcore.nn.FlopCountAnalysis with its default handles, .total() (one multiply-add = 1)",
    TORCH: "torch.utils.flop_counter.FlopCounterMode, .get_total_flops() (one multiply-add = 2)",
}

#: The operator a module of each type is, for msdprof's per-module counts (fvcore's names); a type
#: not listed is shown under its class name.
MODULE_OPERATORS: dict[type[nn.Module], str] = {
    nn.Conv2d: "conv",
    nn.Linear: "linear",
    nn.BatchNorm2d: "batch_norm",
    nn.ReLU: "relu",
    nn.AvgPool2d: "avg_pool2d",
    nn.MaxPool2d: "max_pool2d",
    nn.AdaptiveAvgPool2d: "adaptive_avg_pool2d",
}

#: Where the ``extra`` operations of a module type (see :class:`msdprof.core.counting.OpCount`) are
#: shown apart from its multiply-adds: a Linear layer's bias adds, which only ``msdnet`` counts.
EXTRA_OPERATORS: dict[type[nn.Module], str] = {nn.Linear: "linear bias"}

#: FlopCounterMode's operator names (aten, without the namespace) that are the same operator as a
#: name above.  A Linear layer reaches it as ``addmm`` (with a bias) or ``mm`` (without), so both
#: are shown as ``linear`` (a 2-d ``torch.mm``/``matmul`` written by hand is too).
TORCH_OPERATORS = {
    "convolution": "conv", "_convolution": "conv", "convolution_overrideable": "conv",
    "cudnn_convolution": "conv", "_slow_conv2d_forward": "conv", "addmm": "linear", "mm": "linear",
}


def msdnet_exits(model: nn.Module, x: torch.Tensor, k: int) -> list[torch.Tensor]:
    """An MSDNet's exits 1..k: ``model(x, exits=k)`` runs blocks and heads 1..k."""
    return model(x, exits=k)


class KeepAlive(nn.Module):
    """Runs ``outputs(model, x, k)`` and returns, as one tuple, every tensor that any module of
    ``model`` output during it, and the outputs.

    A tracer (fvcore's JIT trace) drops work no returned tensor depends on; returning every
    module's output keeps all of what eager early-exit inference computes, without adding any
    operation.  The forward hooks that collect the outputs live for one call and are removed in a
    ``finally``.
    """

    def __init__(self, model: nn.Module, k: int, outputs: ExitOutputs = msdnet_exits):
        super().__init__()
        self.model, self.k, self.outputs = model, k, outputs

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        kept: dict[int, torch.Tensor] = {}  # by id: an in-place module returns its input again

        def keep(module: nn.Module, inputs: tuple, output: Any) -> None:
            for t in tensors_in(output):
                kept.setdefault(id(t), t)

        handles = []
        try:
            for module in self.model.modules():
                handles.append(module.register_forward_hook(keep))
            result = self.outputs(self.model, x, self.k)
        finally:
            for handle in handles:
                handle.remove()
        for t in tensors_in(result):
            kept.setdefault(id(t), t)
        return tuple(kept.values())


@dataclass(frozen=True)
class ToolCount:
    """One tool's count of exits 1..k: the total it reports and its counts per operator.

    ``total`` is ``None`` when the tool did not run (see :attr:`Comparison.notes`).  ``operators``:
    (operator, count) pairs, operators with a count of 0 left out.  ``names``: the tool's own
    names for each operator shown under another (``linear`` <- ``addmm``).
    """

    tool: str
    total: int | None
    operators: tuple[tuple[str, int], ...] = ()
    names: tuple[tuple[str, tuple[str, ...]], ...] = ()

    @property
    def unattributed(self) -> int:
        """The part of the total no operator of the breakdown holds (0 for these tools)."""
        return 0 if self.total is None else self.total - sum(n for _, n in self.operators)

    def count(self, operator: str) -> int:
        return dict(self.operators).get(operator, 0)


@dataclass(frozen=True)
class Gap:
    """``minuend - subtrahend`` (two tools' totals) = the sum of ``terms`` + ``unexplained``.

    ``terms``: (operator, minuend's count - subtrahend's count), nonzero ones only, largest
    difference first.  ``unexplained``: what the operators do not account for (the two tools'
    :attr:`ToolCount.unattributed` parts), shown rather than hidden.
    """

    minuend: str
    subtrahend: str
    gap: int
    terms: tuple[tuple[str, int], ...]
    unexplained: int

    @property
    def label(self) -> str:
        return f"{self.minuend} - {self.subtrahend}"


def explain(a: ToolCount, b: ToolCount) -> Gap:
    """The gap ``a.total - b.total`` operator by operator (both tools must have run)."""
    if a.total is None or b.total is None:
        raise ValueError(f"{a.tool if a.total is None else b.tool} did not run: no gap to explain")
    operators = dict.fromkeys(op for op, _ in (*a.operators, *b.operators))
    terms = [(op, a.count(op) - b.count(op)) for op in operators]
    terms = sorted((t for t in terms if t[1]), key=lambda t: (-abs(t[1]), t[0]))
    gap = a.total - b.total
    return Gap(a.tool, b.tool, gap, tuple(terms), gap - sum(d for _, d in terms))


@dataclass(frozen=True)
class ExitComparison:
    """Exit k: every tool's count of blocks and heads 1..k, and the gap of every pair that ran."""

    exit: int
    counts: tuple[ToolCount, ...]
    gaps: tuple[Gap, ...]

    def count(self, tool: str) -> ToolCount:
        return next(c for c in self.counts if c.tool == tool)


@dataclass(frozen=True)
class Comparison:
    """The result of :func:`compare`: per exit (exit 1 first), and one-line notes (a tool that
    raised or did not run, operators a tool counted as 0 for want of a rule or handle).

    ``input_shape``: the input counted (``(1, 3, H, W)``: one image); ``device``: the model's.
    """

    exits: tuple[ExitComparison, ...]
    notes: tuple[str, ...]
    input_shape: tuple[int, ...]
    device: str

    def __iter__(self) -> Iterator[ExitComparison]:
        return iter(self.exits)

    def __len__(self) -> int:
        return len(self.exits)

    def __getitem__(self, i: int) -> ExitComparison:
        return self.exits[i]

    def as_dict(self) -> dict[str, Any]:
        """The JSON shape of ``msdprof compare --format json`` (exact integers)."""
        return {
            "input": list(self.input_shape),
            "device": self.device,
            "tools": dict(TOOL_HELP),
            "exits": [{
                "exit": e.exit,
                "counts": {c.tool: None if c.total is None else {
                    "total": c.total, "operators": dict(c.operators),
                    **({"names": {op: list(n) for op, n in c.names}} if c.names else {}),
                } for c in e.counts},
                "gaps": [{"minuend": g.minuend, "subtrahend": g.subtrahend, "gap": g.gap,
                          "operators": dict(g.terms), "unexplained": g.unexplained} for g in e.gaps],
            } for e in self.exits],
            "notes": list(self.notes),
        }


def _operators(counts: dict[str, int]) -> tuple[tuple[str, int], ...]:
    return tuple(sorted((op, int(n)) for op, n in counts.items() if n))


def _msdprof(model: nn.Module, x: torch.Tensor, k: int, outputs: ExitOutputs
             ) -> tuple[list[ToolCount], dict[str, int]]:
    """The three conventions' counts of exits 1..k from one counted run; the module types counted 0."""
    counts = count_modules(model, x, run=lambda x: outputs(model, x, k))
    modules = dict(model.named_modules())
    result = []
    for convention, to_number in CONVENTIONS.items():
        by_op: dict[str, int] = {}
        for name, c in counts.modules.items():
            kind = type(modules[name])
            op = MODULE_OPERATORS.get(kind, kind.__name__)
            main, extra = to_number(OpCount(macs=c.ops.macs)), to_number(OpCount(extra=c.ops.extra))
            if kind in EXTRA_OPERATORS and main + extra == to_number(c.ops):
                by_op[EXTRA_OPERATORS[kind]] = by_op.get(EXTRA_OPERATORS[kind], 0) + extra
            else:
                main = to_number(c.ops)
            by_op[op] = by_op.get(op, 0) + main
        result.append(ToolCount(convention, counts.total(convention), _operators(by_op)))
    return result, dict(counts.unsupported)


def _fvcore(model: nn.Module, x: torch.Tensor, k: int, outputs: ExitOutputs
            ) -> tuple[ToolCount, dict[str, int]]:
    """fvcore's count of exits 1..k; the operators it met and counted 0 (no handle)."""
    from fvcore.nn import FlopCountAnalysis

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # fvcore's and torch.jit's deprecation and tracer warnings
        analysis = FlopCountAnalysis(KeepAlive(model, k, outputs), x)
        analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
        total = analysis.total()
        by_op = analysis.by_operator()
        skipped = analysis.unsupported_ops()
    return ToolCount(FVCORE, int(total), _operators(by_op)), dict(skipped)


def _torch(model: nn.Module, x: torch.Tensor, k: int, outputs: ExitOutputs) -> ToolCount:
    """FlopCounterMode's count of exits 1..k."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        outputs(model, x, k)
    by_op: dict[str, int] = {}
    names: dict[str, list[str]] = {}
    for packet, n in counter.get_flop_counts().get("Global", {}).items():
        raw = getattr(packet, "__name__", str(packet)).split(".")[0]
        op = TORCH_OPERATORS.get(raw, raw)
        by_op[op] = by_op.get(op, 0) + n
        if op != raw:
            names.setdefault(op, []).append(f"aten.{raw}")
    return ToolCount(TORCH, int(counter.get_total_flops()), _operators(by_op),
                     tuple((op, tuple(sorted(n))) for op, n in sorted(names.items()) if by_op[op]))


def _one_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0]}" if text else type(error).__name__


def _exits_text(exits: list[int]) -> str:
    return f"exit {exits[0]}" if len(exits) == 1 else "exits " + ", ".join(map(str, exits))


def compare(model: nn.Module, x: torch.Tensor, exits: int, outputs: ExitOutputs = msdnet_exits,
            notes: tuple[str, ...] = ()) -> Comparison:
    """Every tool's count of exits 1..k of ``model`` on input ``x``, for k = 1..``exits``, and every
    pair's gap explained operator by operator.

    ``outputs(model, x, k)`` runs exits 1..k (default :func:`msdnet_exits`).  The model runs in
    eval mode (its mode is restored afterwards) without gradients.  fvcore needs real tensors: on
    the ``meta`` device it is not run, and a note says so.  ``notes`` are put first among the
    result's notes.
    """
    failures: dict[tuple[str, str], list[int]] = {}  # (tool, why) -> exits
    zeros: dict[str, tuple[int, dict[str, int]]] = {}  # tool -> (k, calls counted 0 by operator)
    was_training = model.training
    model.eval()
    results = []
    try:
        for k in range(1, exits + 1):
            with torch.no_grad():
                counts, unsupported = _msdprof(model, x, k, outputs)
                if unsupported:
                    zeros["msdprof"] = (k, unsupported)
                for tool, run in ((FVCORE, _fvcore), (TORCH, _torch)):
                    if tool == FVCORE and x.is_meta:
                        failures.setdefault((tool, "not run: its JIT trace needs real tensors, and the "
                                             "model is on the meta device"), []).append(k)
                        counts.append(ToolCount(tool, None))
                        continue
                    try:
                        result = run(model, x, k, outputs)
                    except Exception as error:  # any tool failure is a note, never a crash
                        failures.setdefault((tool, f"raised {_one_line(error)}"), []).append(k)
                        counts.append(ToolCount(tool, None))
                        continue
                    if tool == FVCORE:
                        result, skipped = result
                        if skipped:
                            zeros[tool] = (k, skipped)
                    counts.append(result)
            ran = [c for c in counts if c.total is not None]
            gaps = tuple(explain(a, b) for b, a in combinations(ran, 2))
            results.append(ExitComparison(k, tuple(counts), gaps))
    finally:
        model.train(was_training)
    lines = list(notes)
    lines += [f"{tool} {why} (on {_exits_text(ks)})" for (tool, why), ks in failures.items()]
    for tool, (k, calls) in zeros.items():
        what = "no counting rule" if tool == "msdprof" else "no handle by default"
        lines.append(f"{tool} counted 0 ({what}; calls up to exit {k}): "
                     + ", ".join(f"{op} x{n}" for op, n in sorted(calls.items())))
    device = next(iter(model.parameters()), x).device.type
    return Comparison(tuple(results), tuple(lines), tuple(x.shape), device)


def compare_msdnet(preset_or_config: Any = None, *, input_size: Any = None, **options: Any) -> Comparison:
    """:func:`compare` for an MSDNet and one zero image of its input size, every exit.

    ``preset_or_config``, ``input_size`` and ``options`` as for :func:`msdprof.exit_costs`.  A
    network given by options is built as a real CPU model; when its weights would not fit in the
    memory available, it is built on the ``meta`` device instead (fvcore is then not run) and the
    first note says so.  A built MSDNet is compared as built, on its own device.
    """
    notes: tuple[str, ...] = ()
    if isinstance(preset_or_config, nn.Module):
        model = model_from(preset_or_config, input_size, use="compared", **options)
    else:
        try:
            model = model_from(preset_or_config, input_size, "cpu", use="compared", **options)
        except OptionError as error:
            if error.option != "device":
                raise
            model = model_from(preset_or_config, input_size, "meta", use="compared", **options)
            notes = (f"no real CPU model ({error.allowed.split(';')[0]}): counted on the meta "
                     "device",)
    check_msdnet(model)
    device = next(model.parameters()).device
    image = torch.zeros(1, 3, *model.plan.input_size, device=device)
    return compare(model, image, model.nBlocks, msdnet_exits, notes)


__all__ = ["Comparison", "ExitComparison", "ExitOutputs", "Gap", "KeepAlive", "ToolCount", "TOOLS",
           "compare", "compare_msdnet", "explain", "msdnet_exits"]
