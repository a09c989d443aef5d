"""Why FLOP counters disagree: msdprof's conventions, fvcore and FlopCounterMode on one model, per
exit, every gap between two of them explained operator by operator, and where each tool is blind.

Exit k's figure is what ran until outputs 1..k were complete (msdprof's eager definition, SPEC
section 4: for an MSDNet, blocks and heads 1..k).  Each tool runs the whole forward **once** and its
running totals are read at the moments the outputs were made:

- ``msdnet``, ``macs``, ``flops``: the dataflow record (:func:`msdprof.core.dataflow.record_network`),
  its operations up to the one that completed outputs 1..k, in each convention
  (:data:`msdprof.core.counting.CONVENTIONS`), grouped by the operator each one is;
- ``fvcore``: ``fvcore.nn.FlopCountAnalysis`` with its default handles on :class:`KeepAlive`, which
  returns the exits and every module's output so that the JIT trace keeps all of that work (a trace
  drops whatever no returned tensor depends on); each handled node is charged to exit k when it comes
  no later, in the trace (execution order), than the node that made the last of outputs 1..k;
- ``FlopCounterMode``: ``torch.utils.flop_counter.FlopCounterMode`` around the run, its counts read
  after every ATen call, exit k's at the call that made the last of outputs 1..k.

For an MSDNet this equals running every tool on exactly blocks and heads 1..k (``model(x,
exits=k)``), since its forward makes block k, then head k, then block k+1 (``tests/test_compare.py``
checks it against those truncated runs), in one forward per tool instead of one per exit.

Every count is in the tool's own unit for one run of the inputs given (usually one image): msdprof's
conventions as documented, fvcore's "flops" (one multiply-add = 1, plus its other handles),
FlopCounterMode's FLOPs (one multiply-add = 2).  A tool that raises is reported in a one-line note,
never re-raised.  So is every operator a tool did not see although it does multiply-adds (its
*blind spots*, :data:`BLIND_SPOTS`): FlopCounterMode has no formula for the CPU kernels of
``scaled_dot_product_attention`` and ``nn.LSTM``; fvcore has no default handle for
``scaled_dot_product_attention``, the recurrent layers, ``baddbmm``, ``mv``, ``dot`` and others; the
note says which figure holds that work, and the gap's term under that operator is exactly it.
"""

from __future__ import annotations

import warnings
import weakref
from collections import Counter
from contextlib import nullcontext
from dataclasses import dataclass
from itertools import combinations
from numbers import Number
from typing import Any, Callable, Iterator

import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode

from msdnet.options import OptionError
from msdnet.model import check_msdnet, model_from

from ..core.counting import CONVENTIONS, OpCount
from ..core.dataflow import (Dataflow, Inputs, Outputs, check_forward_bytes, evaluating, example_inputs,
                             given_inputs, record_network, select_exits, tensors_in)
from ..core.exits import meta_twin, record_exits, unsupported_of
from ..core.display import Tabular
from ..core.meta_shapes import SHORTCUTS, compute

#: ``outputs(model, x, k)``: run ``model`` on ``x`` as early-exit inference does up to exit ``k``
#: (every block and head 1..k) and return the outputs of exits 1..k (see :class:`KeepAlive`).
ExitOutputs = Callable[[nn.Module, torch.Tensor, int], Any]

#: ``progress(done, steps, what)``: called as :func:`compare` starts each of its ``steps`` steps
#: (``done`` finished so far; ``what`` names the step) and once more at the end (``done == steps``).
Progress = Callable[[int, int, str], None]

FVCORE = "fvcore"
TORCH = "FlopCounterMode"
#: The tools compared, in the order of tables and of the pairs ``later - earlier``.
TOOLS: tuple[str, ...] = (*CONVENTIONS, FVCORE, TORCH)

#: What each tool is, for captions and JSON.
TOOL_HELP = {
    "msdnet": "msdprof, 'msdnet' convention (the authors' op counter, the paper's 'FLOPs')",
    "macs": "msdprof, 'macs' convention (multiply-adds of conv, linear, matmul, attention; no bias)",
    "flops": "msdprof, 'flops' convention (2 x macs)",
    FVCORE: "fvcore.nn.FlopCountAnalysis with its default handles, .total() (one multiply-add = 1)",
    TORCH: "torch.utils.flop_counter.FlopCounterMode, .get_total_flops() (one multiply-add = 2)",
}

#: The operator a module of each type (or subclass) is, for msdprof's per-operation counts (fvcore's
#: names); a type not listed is shown under its class name.
MODULE_OPERATORS: dict[type[nn.Module], str] = {
    **dict.fromkeys((nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d,
                     nn.ConvTranspose3d), "conv"),
    nn.Linear: "linear",
    **dict.fromkeys((nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d), "batch_norm"),
    nn.LayerNorm: "layer_norm",
    nn.GroupNorm: "group_norm",
    nn.ReLU: "relu",
    nn.AvgPool2d: "avg_pool2d",
    nn.MaxPool2d: "max_pool2d",
    nn.AdaptiveAvgPool2d: "adaptive_avg_pool2d",
    nn.MultiheadAttention: "multi_head_attention",
    nn.LSTM: "lstm",
    nn.GRU: "gru",
    nn.RNN: "rnn",
}

#: The operator a functional op is, by msdprof's name for it (:func:`msdprof.core.dataflow.function_name`).
FUNCTION_OPERATORS = {
    **dict.fromkeys(("conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d",
                     "conv_transpose3d"), "conv"),
    **dict.fromkeys(("linear", "mm", "addmm"), "linear"),
    **dict.fromkeys(("matmul", "bmm", "baddbmm"), "matmul"),
}

#: Where the ``extra`` operations of a module type (see :class:`msdprof.core.counting.OpCount`) are
#: shown apart from its multiply-adds: a Linear layer's bias adds, which only ``msdnet`` counts.
EXTRA_OPERATORS: dict[type[nn.Module], str] = {nn.Linear: "linear bias"}

#: FlopCounterMode's operator names (aten, without the namespace) that are the same operator as a
#: name above.  A Linear layer reaches it as ``addmm`` (with a bias) or ``mm`` (without), so both
#: are shown as ``linear`` (a 2-d ``torch.mm``/``matmul`` written by hand is too); ``bmm`` and
#: ``baddbmm`` are batched matrix products (``matmul``).
TORCH_OPERATORS = {
    "convolution": "conv", "_convolution": "conv", "convolution_overrideable": "conv",
    "cudnn_convolution": "conv", "_slow_conv2d_forward": "conv", "addmm": "linear", "mm": "linear",
    "bmm": "matmul", "baddbmm": "matmul",
}

#: fvcore's operator names that are the same operator as a name above.
FVCORE_OPERATORS = {"mm": "linear", "addmm": "linear", "bmm": "matmul"}

#: The ATen ops (FlopCounterMode: ``aten.NAME``; fvcore: ``aten::NAME``) that do multiply-adds, by
#: the operator they are.  One that runs and that a tool has no formula or handle for is a blind spot
#: of that tool, named in the notes; what it left out is that operator's term in the gap.  On CPU,
#: ``F.scaled_dot_product_attention`` runs ``_scaled_dot_product_flash_attention_for_cpu`` (which
#: FlopCounterMode has no formula for; under ``sdpa_kernel(SDPBackend.MATH)`` it decomposes into
#: ``bmm`` and is counted), ``nn.LSTM`` runs ``mkldnn_rnn_layer``, and ``nn.MultiheadAttention`` in
#: eval mode without gradients takes the fast path ``_native_multi_head_attention`` (projections
#: included), which neither FlopCounterMode nor fvcore counts.
BLIND_SPOTS = {
    **dict.fromkeys(("scaled_dot_product_attention", "_scaled_dot_product_flash_attention_for_cpu",
                     "_scaled_dot_product_attention_math",
                     "_scaled_dot_product_fused_attention_overrideable"),
                    "scaled_dot_product_attention"),
    "_native_multi_head_attention": "multi_head_attention",
    **dict.fromkeys(("lstm", "mkldnn_rnn_layer", "lstm_cell", "_thnn_fused_lstm_cell"), "lstm"),
    **dict.fromkeys(("gru", "gru_cell", "_thnn_fused_gru_cell"), "gru"),
    **dict.fromkeys(("rnn_tanh", "rnn_relu", "rnn_tanh_cell", "rnn_relu_cell"), "rnn"),
    **dict.fromkeys(("mkldnn_convolution", "conv_transpose1d", "conv_transpose2d",
                     "conv_transpose3d", "conv1d", "conv2d", "conv3d"), "conv"),
    **dict.fromkeys(("baddbmm", "addbmm", "bmm", "matmul", "einsum", "tensordot", "bilinear", "mv",
                     "addmv", "dot", "vdot", "inner", "outer", "ger", "addr", "chain_matmul"),
                    "matmul"),
    **dict.fromkeys(("linear", "mm", "addmm", "_addmm_activation"), "linear"),
}


def msdnet_exits(model: nn.Module, x: torch.Tensor, k: int) -> list[torch.Tensor]:
    """An MSDNet's exits 1..k: ``model(x, exits=k)`` runs blocks and heads 1..k."""
    return model(x, exits=k)


class KeepAlive(nn.Module):
    """Runs the model and returns, as one flat tuple, its exits first, then every other tensor that
    any module of ``model`` output during the run.

    With ``k`` given, the run is ``outputs(model, x, k)`` (exits 1..k only: a truncated run, as the
    tests' oracles make it); without, ``model(*inputs)``, its exits picked by ``select`` (as
    :func:`msdprof.core.dataflow.select_exits`).  A tracer (fvcore's JIT trace) drops work no
    returned tensor depends on; returning every module's output keeps all of what eager early-exit
    inference computes, without adding any operation.  The forward hooks that collect the outputs
    live for one call and are removed in a ``finally``.
    """

    def __init__(self, model: nn.Module, k: int | None = None, outputs: ExitOutputs = msdnet_exits,
                 select: Outputs = None, kwargs: dict[str, torch.Tensor] | None = None):
        super().__init__()
        self.model, self.k, self.outputs, self.select = model, k, outputs, select
        self.kwargs = kwargs or {}  # the model's keyword inputs (a trace takes positional ones only)

    def forward(self, *inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        kept: dict[int, torch.Tensor] = {}  # by id: an in-place module returns its input again

        def keep(module: nn.Module, args: tuple, output: Any) -> None:
            for t in tensors_in(output):
                kept.setdefault(id(t), t)

        handles = []
        try:
            for module in self.model.modules():
                handles.append(module.register_forward_hook(keep))
            if self.k is None:
                exits = select_exits(self.model(*inputs, **self.kwargs), self.select)[0]
            else:
                exits = list(tensors_in(self.outputs(self.model, inputs[0], self.k)))
        finally:
            for handle in handles:
                handle.remove()
        first = {id(t): t for t in exits}
        return (*exits, *(t for i, t in kept.items() if i not in first))


@dataclass(frozen=True)
class ToolCount:
    """One tool's count of exit k: the total it reports and its counts per operator.

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
    """Exit k: every tool's count of what ran until outputs 1..k were complete, and the gap of every
    pair that ran."""

    exit: int
    counts: tuple[ToolCount, ...]
    gaps: tuple[Gap, ...]

    def count(self, tool: str) -> ToolCount:
        return next(c for c in self.counts if c.tool == tool)


@dataclass(frozen=True)
class BlindSpot:
    """Operations a tool did not count although they do multiply-adds: its own name for them
    (``aten._scaled_dot_product_flash_attention_for_cpu``), the ``operator`` they are, how many
    ``calls`` ran in the whole forward, and ``held_by``: the msdprof convention that counts them
    (``macs`` beside fvcore, ``flops`` beside FlopCounterMode), or ``None`` when msdprof has no rule
    for them either.  The tool's figure leaves that work out; the gap ``held_by - tool`` holds it as
    the term ``operator``."""

    tool: str
    name: str
    operator: str
    calls: int
    held_by: str | None


@dataclass(frozen=True)
class Comparison(Tabular):
    """The result of :func:`compare`: per exit (exit 1 first), each tool's blind spots, and
    one-line notes (a tool that raised or did not run, each blind spot and which figure holds that
    work, operators a tool counted as 0 for want of a rule or handle).

    ``input_shape``: the first input's shape (``(1, 3, H, W)``: one image); ``input_shapes``: all
    inputs', ``input_names`` their keyword names (``""``: positional) and ``input_dtypes`` their
    dtypes (``"float32"``, ``"int64"`` ...); ``device``: the model's; ``model``: its class name.
    """

    exits: tuple[ExitComparison, ...]
    notes: tuple[str, ...]
    input_shape: tuple[int, ...]
    device: str
    blind_spots: tuple[BlindSpot, ...] = ()
    input_shapes: tuple[tuple[int, ...], ...] = ()
    model: str = "MSDNet"
    input_names: tuple[str, ...] = ()
    input_dtypes: tuple[str, ...] = ()

    def __iter__(self) -> Iterator[ExitComparison]:
        return iter(self.exits)

    def __len__(self) -> int:
        return len(self.exits)

    def __getitem__(self, i: int) -> ExitComparison:
        return self.exits[i]

    def as_dict(self) -> dict[str, Any]:
        """The JSON shape of ``msdprof compare --format json`` (exact integers)."""
        return {
            "model": self.model,
            "input": list(self.input_shape),
            "inputs": [list(s) for s in self.input_shapes],
            "input_dtypes": list(self.input_dtypes),
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
            "blind_spots": [{"tool": b.tool, "name": b.name, "operator": b.operator,
                             "calls": b.calls, "held_by": b.held_by} for b in self.blind_spots],
            "notes": list(self.notes),
        }


def _operators(counts: dict[str, int]) -> tuple[tuple[str, int], ...]:
    return tuple(sorted((op, int(n)) for op, n in counts.items() if n))


def _moments(made: list[int]) -> list[int]:
    """Per exit k, the step at which outputs 1..k were all made (the latest of their steps)."""
    return [max(made[: k + 1]) for k in range(len(made))]


def _module_operator(kind: type[nn.Module]) -> str:
    """The operator a module type is: its own or its nearest base class's in
    :data:`MODULE_OPERATORS`, else its class name."""
    return next((MODULE_OPERATORS[c] for c in kind.__mro__ if c in MODULE_OPERATORS), kind.__name__)


def _msdprof(model: nn.Module, flow: Dataflow) -> list[list[ToolCount]]:
    """Per exit, the three conventions' counts of the operations that ran until its outputs were
    complete, grouped by operator (:data:`MODULE_OPERATORS`, :data:`FUNCTION_OPERATORS`)."""
    modules = dict(model.named_modules())
    running = {c: Counter() for c in CONVENTIONS}
    moments = _moments(list(flow.outputs))
    result: list[list[ToolCount]] = []
    done = 0
    for until in moments:
        for op in flow.ops[done: until + 1]:
            kind = type(modules[op.module]) if op.kind == "module" else None
            name = (_module_operator(kind) if kind is not None
                    else FUNCTION_OPERATORS.get(op.type, op.type))
            for convention, to_number in CONVENTIONS.items():
                main = to_number(op.count)
                extra = to_number(OpCount(extra=op.count.extra)) if kind in EXTRA_OPERATORS else 0
                rest = OpCount(macs=op.count.macs, functional_macs=op.count.functional_macs)
                if extra and to_number(rest) + extra == main:
                    running[convention][EXTRA_OPERATORS[kind]] += extra
                    main -= extra
                running[convention][name] += main
        done = max(done, until + 1)
        result.append([ToolCount(c, sum(running[c].values()), _operators(running[c]))
                       for c in CONVENTIONS])
    return result


def _fvcore(model: nn.Module, given: Inputs, select: Any, exits: int
            ) -> tuple[list[ToolCount], dict[str, int]]:
    """fvcore's count per exit from one trace of the whole forward, and the operators it met and
    counted 0 (no handle), with their calls.

    Each handled node's count is noted as fvcore computes it (walking the trace's nodes in order);
    exit k holds the nodes that come no later in the trace than the node making the last of outputs
    1..k (``Node.isBefore``: a trace is in execution order).  The returned tuple of
    :class:`KeepAlive` starts with the exits, so its first values are their makers."""
    from fvcore.nn import FlopCountAnalysis

    seen: list[tuple[Any, Counter]] = []

    def noting(kind: str, handle: Callable[..., Any]) -> Callable[..., Any]:
        short = kind.split("::", 1)[-1]

        def counted(inputs: list, outputs: list) -> Any:
            n = handle(inputs, outputs)
            seen.append((outputs[0].node(), Counter({short: n}) if isinstance(n, Number) else Counter(n)))
            return n

        return counted

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # fvcore's and torch.jit's deprecation and tracer warnings
        analysis = FlopCountAnalysis(KeepAlive(model, select=select, kwargs=given.kwargs), given.args)
        analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
        handles = analysis._op_handles  # fvcore 0.1.5: kind -> handle, the defaults
        analysis.set_op_handle(**{kind: noting(kind, h) for kind, h in handles.items() if h is not None})
        analysis.total()
        skipped = analysis.unsupported_ops()
    if not seen:
        return [ToolCount(FVCORE, 0) for _ in range(exits)], dict(skipped)
    returned = list(seen[0][0].owningBlock().returnNode().inputs())
    first = returned[0].node()
    values = list(first.inputs()) if first.kind() == "prim::TupleConstruct" else returned
    makers = [v.node() for v in values[:exits]]
    counts = []
    running: Counter = Counter()
    done = 0  # seen is in trace order (fvcore walks graph.nodes()): one pass over it
    last = makers[0]
    for maker in makers:
        if last.isBefore(maker):
            last = maker
        while done < len(seen) and (seen[done][0] == last or seen[done][0].isBefore(last)):
            running.update(seen[done][1])
            done += 1
        named: Counter = Counter()
        for op, n in running.items():
            named[FVCORE_OPERATORS.get(op, op)] += n
        counts.append(ToolCount(FVCORE, int(sum(running.values())), _operators(named)))
    return counts, dict(skipped)


class _Moments(TorchDispatchMode):
    """Inside a FlopCounterMode: its counts after every ATen call, which call made which tensor,
    and the ATen ops that ran with no FLOP formula (by name, calls)."""

    def __init__(self, counter: Any):
        super().__init__()
        self.counter = counter
        self.snapshots: list[dict[Any, int]] = []
        self.made: dict[int, tuple[weakref.ref, int]] = {}
        self.unformulated: Counter = Counter()

    def __torch_dispatch__(self, func: Any, types: Any, args: tuple = (), kwargs: Any = None) -> Any:
        out = func(*args, **(kwargs or {}))
        packet = func.overloadpacket
        if packet not in self.counter.flop_registry:
            self.unformulated[packet.__name__] += 1
        step = len(self.snapshots)
        self.snapshots.append(dict(self.counter.flop_counts["Global"]))
        for t in tensors_in(out):
            self.made[id(t)] = (weakref.ref(t), step)
        return out

    def step(self, tensor: torch.Tensor) -> int:
        entry = self.made.get(id(tensor))
        if entry is None or entry[0]() is not tensor:
            raise RuntimeError("an exit's output was not made by an ATen call FlopCounterMode saw")
        return entry[1]


#: Functions FlopCounterMode has no formula for (they reach none of its ATen ops) whose meta
#: kernels are slow Python (batch norm: most of a meta MSDNet's time): on an MSDNet's meta twin
#: they take :data:`msdprof.core.meta_shapes.SHORTCUTS` and never reach the counter, which would
#: have counted them 0.  Convolutions and Linear layers always reach it.
UNCOUNTED_SHORTCUTS = {f: SHORTCUTS[f] for f in (F.batch_norm, F.max_pool2d, F.avg_pool2d, torch.cat)}


class _Uncounted(TorchFunctionMode):
    """:data:`UNCOUNTED_SHORTCUTS` on meta tensors (a shortcut not sure of its result: torch)."""

    def __torch_function__(self, func: Any, types: Any, args: tuple = (), kwargs: Any = None) -> Any:
        return compute(func, args, kwargs or {}, UNCOUNTED_SHORTCUTS)


def _torch(model: nn.Module, given: Inputs, select: Any, shortcuts: bool = False
           ) -> tuple[list[ToolCount], dict[str, int]]:
    """FlopCounterMode's count per exit from one run of the whole forward; the ATen ops that ran
    with no FLOP formula and do multiply-adds (:data:`BLIND_SPOTS`), with their calls.
    ``shortcuts``: :class:`_Uncounted` around the run (an MSDNet's meta twin)."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        with _Moments(counter) as moments, _Uncounted() if shortcuts else nullcontext():
            result = given.call(model)
        exits = select_exits(result, select)[0]
        steps = _moments([moments.step(t) for t in exits])
    counts = []
    for step in steps:
        by_op: dict[str, int] = {}
        names: dict[str, list[str]] = {}
        for packet, n in moments.snapshots[step].items():
            raw = getattr(packet, "__name__", str(packet)).split(".")[0]
            op = TORCH_OPERATORS.get(raw, raw)
            by_op[op] = by_op.get(op, 0) + n
            if op != raw and n:
                names.setdefault(op, []).append(f"aten.{raw}")
        counts.append(ToolCount(TORCH, sum(by_op.values()), _operators(by_op),
                                tuple((op, tuple(sorted(n))) for op, n in sorted(names.items()))))
    blind = {f"aten.{name}": n for name, n in moments.unformulated.items() if name in BLIND_SPOTS}
    return counts, blind


def _one_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0]}" if text else type(error).__name__


def _exits_text(exits: list[int]) -> str:
    return f"exit {exits[0]}" if len(exits) == 1 else "exits " + ", ".join(map(str, exits))


#: The msdprof convention in the same unit as each other tool: where its blind spots are held.
_SAME_UNIT = {FVCORE: "macs", TORCH: "flops"}


def _blind_spots(tool: str, calls: dict[str, int], last: ExitComparison) -> list[BlindSpot]:
    """The blind spots of ``tool`` among ``calls`` (its name for an op -> calls)."""
    found = []
    for name, n in sorted(calls.items()):
        operator = BLIND_SPOTS.get(name.replace("aten::", "").replace("aten.", ""))
        if operator is None:
            continue
        held = _SAME_UNIT[tool] if last.count(_SAME_UNIT[tool]).count(operator) else None
        found.append(BlindSpot(tool, name, operator, n, held))
    return found


def _blind_note(spot: BlindSpot) -> str:
    why = ("no FLOP formula for this kernel" + ("; under torch.nn.attention.sdpa_kernel("
           "SDPBackend.MATH) it would be counted" if "flash_attention_for_cpu" in spot.name else "")
           if spot.tool == TORCH else "no default handle")
    held = (f"msdprof's {spot.held_by} counts it (the {spot.operator} term of their gap is exactly "
            "that work)" if spot.held_by else "msdprof has no rule for it either: no figure here "
            "holds that work")
    return (f"{spot.tool} did not see {spot.name} x{spot.calls} ({why}): its figure leaves that "
            f"{spot.operator} work out; {held}")


def compare(
    model: nn.Module,
    inputs: Any = None,
    *,
    input_size: Any = None,
    outputs: Outputs = None,
    notes: tuple[str, ...] = (),
    progress: Progress | None = None,
) -> Comparison:
    """Every tool's count of each exit of ``model`` and every pair's gap explained operator by
    operator, with each tool's blind spots.

    ``model``: any early-exit ``nn.Module`` whose forward returns one output per exit, run as built
    on its own device on ``inputs`` (a tensor or tuple of tensors) or on one zero image of
    ``input_size``; ``outputs`` picks the exits out of a richer return value -- all as for
    :func:`msdprof.exit_costs`.  Exit k's figure is what ran until outputs 1..k were complete, each
    tool running the whole forward once (module docstring).  The model runs in eval mode (every
    submodule's mode restored afterwards) without gradients.  fvcore needs real tensors: on the
    ``meta`` device it is not run, and a note says so.  ``notes`` are put first among the result's
    notes; ``progress`` is told as each tool starts (:data:`Progress`).
    """
    flow = record_network(model, input_size=input_size, inputs=inputs, outputs=outputs)  # msdprof's own count
    given, option, typed = given_inputs(model, input_size, inputs)
    if any(not t.is_meta for t in (*model.parameters(), *model.buffers())):
        check_forward_bytes(model, flow, option, typed)  # the other tools run the real forward
    return _compare(model, example_inputs(model, input_size, inputs), outputs, notes, progress, flow=flow)


def _compare(model: nn.Module, given: Inputs, select: Any, notes: tuple[str, ...],
             progress: Progress | None, twin: nn.Module | None = None, flow: Dataflow | None = None
             ) -> Comparison:
    """:func:`compare`; ``twin``: a model of the same shapes on the ``meta`` device (with ``given``
    on meta too) on which msdprof and FlopCounterMode run instead (their counts depend on shapes
    only), fvcore running on ``model``; ``flow``: msdprof's record of the model counted (the twin,
    else ``model``), when already made."""
    steps = ("msdprof", FVCORE, TORCH)
    tell = progress or (lambda done, total, what: None)
    counted = twin if twin is not None else model
    on_counted = given if twin is None else given.map(
        lambda t: torch.empty(t.shape, dtype=t.dtype, device="meta"))
    tell(0, len(steps), steps[0])
    if flow is None:
        flow = record_network(counted, inputs=on_counted, outputs=select)
    n = len(flow.outputs)
    per_exit = _msdprof(counted, flow)
    failures: list[str] = []
    calls: dict[str, dict[str, int]] = {}
    for done, tool in enumerate((FVCORE, TORCH), start=1):
        tell(done, len(steps), tool)
        runs_on, inputs = (counted, on_counted) if tool == TORCH else (model, given)
        if tool == FVCORE and any(t.is_meta for t in inputs.tensors):
            failures.append(f"{tool} not run: its JIT trace needs real tensors, and the model is on "
                            "the meta device")
            counts = [ToolCount(tool, None)] * n
        else:
            try:
                with evaluating(runs_on), torch.no_grad():
                    if tool == TORCH:
                        counts, calls[tool] = _torch(runs_on, inputs, select, twin is not None)
                    else:
                        counts, calls[tool] = _fvcore(runs_on, inputs, select, n)
            except Exception as error:  # any tool failure is a note, never a crash
                failures.append(f"{tool} raised {_one_line(error)} (on {_exits_text(list(range(1, n + 1)))})")
                counts = [ToolCount(tool, None)] * n
        for row, count in zip(per_exit, counts):
            row.append(count)
    tell(len(steps), len(steps), "done")
    results = []
    for k, counts in enumerate(per_exit, start=1):
        ran = [c for c in counts if c.total is not None]
        gaps = tuple(explain(a, b) for b, a in combinations(ran, 2))
        results.append(ExitComparison(k, tuple(counts), gaps))
    spots = [s for tool in (FVCORE, TORCH) if tool in calls
             for s in _blind_spots(tool, calls[tool], results[-1])]
    lines = [*notes, *failures, *(_blind_note(s) for s in spots)]
    for convention in ("msdnet", "macs"):
        missing = unsupported_of(flow, convention)
        if missing:
            lines.append(f"msdprof's {convention}{' and flops' if convention == 'macs' else ''} "
                         "counted 0 (no counting rule; calls in the whole forward): "
                         + ", ".join(f"{u.type} x{u.calls}" for u in missing))
    blind = {s.name for s in spots}
    skipped = sorted((op, c) for op, c in calls.get(FVCORE, {}).items() if op not in blind)
    if skipped:
        lines.append(f"{FVCORE} counted 0 (no handle by default; calls in the whole forward): "
                     + ", ".join(f"{op} x{c}" for op, c in skipped))
    first = given.tensors[0]
    device = next(iter(model.parameters()), first).device.type
    return Comparison(tuple(results), tuple(lines), tuple(first.shape), device, tuple(spots),
                      given.shapes, type(model).__name__, given.names, given.dtypes)


def compare_msdnet(preset_or_config: Any = None, *, input_size: Any = None,
                   progress: Progress | None = None, **options: Any) -> Comparison:
    """:func:`compare` for an MSDNet and one zero image of its input size, every exit.

    ``preset_or_config``, ``input_size`` and ``options`` as for :func:`msdprof.exit_costs`.  A
    network given by options is built as a real CPU model for fvcore (whose JIT trace needs real
    tensors), and on the ``meta`` device for msdprof and FlopCounterMode (shapes only: nothing
    computed); when its weights would not fit in the memory available, only on ``meta`` (fvcore is
    then not run) and the first note says so; so too when its forward would take more memory
    than :data:`~msdprof.core.units.MAX_BYTES`.  A built MSDNet is compared as built, on its own
    device.
    """
    notes: tuple[str, ...] = ()
    twin = flow = None
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
        else:
            twin = meta_twin(model)  # FlopCounterMode's run, on shapes alone
            height, width = model.plan.input_size
            # msdprof's record, on shapes alone, also sizes the real forward fvcore runs
            flow = record_exits(model)
            try:  # fvcore runs the real model: its forward must fit in memory
                check_forward_bytes(model, flow, "input-size", f"{height}x{width}")
            except OptionError as error:
                model, twin = twin, None
                notes = (f"no real CPU forward ({error.allowed.split(';')[0]}): counted on the meta "
                         "device",)
    check_msdnet(model)
    device = next(model.parameters()).device
    image = torch.zeros(1, 3, *model.plan.input_size, device=device)
    return _compare(model, Inputs((image,)), None, notes, progress, twin, flow)


__all__ = ["BLIND_SPOTS", "BlindSpot", "Comparison", "ExitComparison", "ExitOutputs", "Gap",
           "KeepAlive", "Progress", "ToolCount", "TOOLS", "compare", "compare_msdnet", "explain",
           "msdnet_exits"]
