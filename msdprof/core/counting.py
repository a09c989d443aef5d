"""Counting rules, one per module type and one per functional op, and the per-module counter.

Each module rule looks at one call of one module (its inputs and output, shapes only, so it works on
the ``meta`` device) and returns an :class:`OpCount`: the multiply-adds of its weights (``macs``)
and the further operations the authors' counter charges (``extra``: Linear bias adds, activation
elements, pooling windows).  A function rule does the same for one call of a functional op made
outside any counted module (``F.conv2d``, ``F.linear``, ``torch.matmul`` ...): its multiply-adds are
``functional_macs``, which the authors' counter never sees.  A *convention* turns an
:class:`OpCount` into one number (SPEC sections 2 and 4):

- ``msdnet`` (the authors' op counter): ``macs + extra`` -- module calls only;
- ``macs``: ``macs + functional_macs`` (conv, linear and matmul multiply-adds, no bias);
- ``flops``: ``2 * (macs + functional_macs)``.

Adding a module type is one small function decorated with :func:`rule`, a functional op one
decorated with :func:`function_rule`.  Nothing is silently counted as 0, by construction: while a
pass is recorded, every ATen kernel each operation runs is seen (a dispatch-level view, where
``einsum`` is already ``bmm`` and an RNN is its matrix products) and measured by torch's own FLOP
formulas (:func:`aten_macs`: ``torch.utils.flop_counter``'s registry, plus :data:`EXTRA_FORMULAS`
for kernels it is blind to).  An operation whose kernels did multiply-adds its convention did not
count -- a module with no rule, a functional op with no rule, a rule that missed work -- is
reported as unsupported (:func:`msdprof.core.exits.unsupported_of`), in every convention.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils import flop_counter


from . import meta_shapes
from .conventions import CONVENTION_HELP  # noqa: F401  (re-exported: what each convention counts)


@dataclass(frozen=True)
class OpCount:
    """Operations of one module or functional-op call, for the whole batch it ran on.

    ``macs``: multiply-adds of a module's weights (convolutions, Linear, attention; bias excluded).
    ``extra``: the other operations the authors' counter charges a module (Linear bias adds,
    activation elements, pooling windows).  ``functional_macs``: multiply-adds of functional ops
    (``F.conv2d``, ``F.linear``, ``matmul`` ...) called outside counted modules.
    """

    macs: int = 0
    extra: int = 0
    functional_macs: int = 0

    def __add__(self, other: "OpCount") -> "OpCount":
        return OpCount(self.macs + other.macs, self.extra + other.extra,
                       self.functional_macs + other.functional_macs)


Rule = Callable[[nn.Module, tuple, Any], OpCount]
FunctionRule = Callable[[tuple, dict, Any], int]

#: Module counting rules keyed by module type; see :func:`rule`.  A subclass uses its nearest
#: registered base class's rule.
RULES: dict[type[nn.Module], Rule] = {}

#: Functional-op rules keyed by the function torch hands a torch-function mode; each returns the
#: call's multiply-adds.  See :func:`function_rule`.
FUNCTION_RULES: dict[Callable[..., Any], FunctionRule] = {}


def rule(*types: type[nn.Module]) -> Callable[[Rule], Rule]:
    """Register a counting rule ``f(module, inputs, output) -> OpCount`` for ``types``."""

    def register(f: Rule) -> Rule:
        for t in types:
            RULES[t] = f
        return f

    return register


def function_rule(*functions: Callable[..., Any]) -> Callable[[FunctionRule], FunctionRule]:
    """Register ``f(args, kwargs, output) -> multiply-adds`` for functional ops ``functions``."""

    def register(f: FunctionRule) -> FunctionRule:
        for function in functions:
            FUNCTION_RULES[function] = f
        return f

    return register


def rule_for(module: nn.Module) -> Rule | None:
    """The rule counting ``module``'s calls: its type's, else its nearest base class's, else ``None``."""
    for cls in type(module).__mro__:
        found = RULES.get(cls)
        if found is not None:
            return found
    return None


def _tuple(value: int | tuple[int, ...], n: int) -> tuple[int, ...]:
    return (value,) * n if isinstance(value, int) else tuple(value)


# --- module rules (the authors' rules for the types their counter knows, the same spirit for the rest)


@rule(nn.Conv1d, nn.Conv2d, nn.Conv3d)
def _conv(m: nn.Module, inputs: tuple, output: torch.Tensor) -> OpCount:
    """Cin/groups x prod(kernel) multiply-adds per output element (bias adds nothing)."""
    return OpCount(macs=m.in_channels // m.groups * output.numel() * math.prod(m.kernel_size))


@rule(nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)
def _conv_transpose(m: nn.Module, inputs: tuple, output: torch.Tensor) -> OpCount:
    """Each input element meets Cout/groups x prod(kernel) weights (fvcore's rule)."""
    return OpCount(macs=inputs[0].numel() * (m.out_channels // m.groups) * math.prod(m.kernel_size))


@rule(nn.Linear)
def _linear(m: nn.Linear, inputs: tuple, output: torch.Tensor) -> OpCount:
    rows = output.numel() // m.out_features
    bias = output.numel() if m.bias is not None else 0
    return OpCount(macs=rows * m.in_features * m.out_features, extra=bias)


@rule(nn.Bilinear)
def _bilinear(m: nn.Bilinear, inputs: tuple, output: torch.Tensor) -> OpCount:
    """Each output element is ``x1 A_o x2``: in1 x in2 multiply-adds; bias adds as Linear's."""
    rows = output.numel() // m.out_features
    bias = output.numel() if m.bias is not None else 0
    return OpCount(macs=rows * m.in1_features * m.in2_features * m.out_features, extra=bias)


@rule(nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.GELU, nn.SiLU, nn.Sigmoid, nn.Tanh, nn.Hardswish,
      nn.Hardsigmoid, nn.Softmax)
def _activation(m: nn.Module, inputs: tuple, output: torch.Tensor) -> OpCount:
    """One operation per element (the authors' ReLU rule)."""
    return OpCount(extra=output.numel())


@rule(nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d, nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d)
def _pool(m: nn.Module, inputs: tuple, output: torch.Tensor) -> OpCount:
    """The window of every output element: C x Hout x Wout x k x k for 2-d (the authors' rule)."""
    dims = 1 if isinstance(m, (nn.AvgPool1d, nn.MaxPool1d)) else 3 if isinstance(
        m, (nn.AvgPool3d, nn.MaxPool3d)) else 2
    return OpCount(extra=output.numel() * math.prod(_tuple(m.kernel_size, dims)))


@rule(nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool3d,
      nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d, nn.AdaptiveMaxPool3d)
def _adaptive_pool(m: nn.Module, inputs: tuple, output: Any) -> OpCount:
    """Every input element once (the authors' AdaptiveAvgPool2d rule)."""
    return OpCount(extra=inputs[0].numel())


@rule(nn.MultiheadAttention)
def _attention(m: nn.MultiheadAttention, inputs: tuple, output: Any) -> OpCount:
    """Projections of query, key and value, scores, the weighted sum and the output projection;
    bias adds as Linear's."""
    query, key, value = (inputs + (None, None))[:3]
    key = query if key is None else key
    value = key if value is None else value
    sequence = 1 if m.batch_first else 0
    batch = query.numel() // (query.shape[sequence] * query.shape[-1]) if query.dim() == 3 else 1
    lq = query.shape[sequence] if query.dim() == 3 else query.shape[0]
    lk = key.shape[sequence] if key.dim() == 3 else key.shape[0]
    e = m.embed_dim
    projections = lq * e * e + lk * m.kdim * e + lk * m.vdim * e + lq * e * e
    attention = 2 * lq * lk * e
    bias = (2 * lq + 2 * lk) * e if m.in_proj_bias is not None else 0
    return OpCount(macs=batch * (projections + attention), extra=batch * bias)


def _rows(x: Any) -> int:
    """Time steps of every sequence in a recurrent layer's input: a PackedSequence's rows, else
    every element but the features (``L x N``, ``N x L`` or an unbatched ``L``)."""
    if isinstance(x, nn.utils.rnn.PackedSequence):
        return x.data.shape[0]
    return x.numel() // x.shape[-1]


@rule(nn.RNNBase)
def _recurrent(m: nn.RNNBase, inputs: tuple, output: Any) -> OpCount:
    """At every time step of every sequence, each layer and direction multiplies its input by
    ``weight_ih`` (``G*H x in``), its hidden state by ``weight_hh`` (``G*H x H``, or ``G*H x P``
    with ``proj_size`` P) and, with ``proj_size``, its new hidden state by ``weight_hr``
    (``P x H``): one multiply-add per weight per step (G gates: 1 RNN, 3 GRU, 4 LSTM).  Every layer
    and direction runs the same steps, so the multiply-adds are steps x all weight elements; bias
    adds (``extra``, as Linear's) steps x all bias elements."""
    rows = _rows(inputs[0])
    weights = sum(p.numel() for name, p in m.named_parameters() if name.startswith("weight_"))
    biases = sum(p.numel() for name, p in m.named_parameters() if name.startswith("bias_"))
    return OpCount(macs=rows * weights, extra=rows * biases)


@rule(nn.RNNCell, nn.LSTMCell, nn.GRUCell)
def _recurrent_cell(m: nn.RNNCellBase, inputs: tuple, output: Any) -> OpCount:
    """One step of :func:`_recurrent` for each row of the batch (one row unbatched)."""
    x = inputs[0]
    rows = x.shape[0] if x.dim() == 2 else 1
    biases = m.bias_ih.numel() + m.bias_hh.numel() if m.bias else 0
    return OpCount(macs=rows * (m.weight_ih.numel() + m.weight_hh.numel()), extra=rows * biases)


@rule(nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.LayerNorm, nn.GroupNorm,
      nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout, nn.Flatten,
      nn.Unflatten, nn.Identity, nn.Upsample)
def _free(m: nn.Module, inputs: tuple, output: Any) -> OpCount:
    """Free, as BatchNorm2d and Dropout are to the authors' counter."""
    return OpCount()


# --- functional-op rules: multiply-adds only (counted by the macs and flops conventions) ---------


def _arg(args: tuple, kwargs: dict, index: int, name: str) -> Any:
    return args[index] if len(args) > index else kwargs.get(name)


@function_rule(F.conv1d, F.conv2d, F.conv3d)
def _f_conv(args: tuple, kwargs: dict, output: torch.Tensor) -> int:
    weight = _arg(args, kwargs, 1, "weight")
    return output.numel() * math.prod(weight.shape[1:])


@function_rule(F.conv_transpose1d, F.conv_transpose2d, F.conv_transpose3d)
def _f_conv_transpose(args: tuple, kwargs: dict, output: torch.Tensor) -> int:
    """Each input element meets Cout/groups x prod(kernel) weights (weight: Cin x Cout/groups x k...)."""
    x, weight = _arg(args, kwargs, 0, "input"), _arg(args, kwargs, 1, "weight")
    return x.numel() * math.prod(weight.shape[1:])


@function_rule(F.linear)
def _f_linear(args: tuple, kwargs: dict, output: torch.Tensor) -> int:
    weight = _arg(args, kwargs, 1, "weight")
    return output.numel() * weight.shape[-1]


@function_rule(torch.matmul, torch.Tensor.matmul, torch.Tensor.__matmul__, torch.mm, torch.Tensor.mm,
               torch.bmm, torch.Tensor.bmm)
def _f_matmul(args: tuple, kwargs: dict, output: torch.Tensor) -> int:
    first = args[0] if args else kwargs.get("input")
    return output.numel() * first.shape[-1]


@function_rule(torch.addmm, torch.baddbmm, torch.Tensor.addmm, torch.Tensor.baddbmm)
def _f_addmm(args: tuple, kwargs: dict, output: torch.Tensor) -> int:
    first = args[1] if len(args) > 1 else kwargs.get("mat1", kwargs.get("batch1"))
    return output.numel() * first.shape[-1]


@function_rule(F.scaled_dot_product_attention)
def _f_attention(args: tuple, kwargs: dict, output: torch.Tensor) -> int:
    query, key, value = (_arg(args, kwargs, i, n) for i, n in enumerate(("query", "key", "value")))
    scores = query.numel() // query.shape[-1] * key.shape[-2]  # batch x L x S
    return scores * query.shape[-1] + scores * value.shape[-1]


# --- the dispatch-level view: torch's FLOP formulas on the ATen kernels an operation ran -------

aten = torch.ops.aten


def _rnn_layer_flops(input: Any, weight0: Any, weight1: Any, *args: Any, out_val: Any = None,
                     **kwargs: Any) -> int:
    """``mkldnn_rnn_layer`` (an LSTM layer on CPU): every step multiplies by ``weight_ih`` and
    ``weight_hh``; 2 FLOPs a multiply-add, as torch's formulas."""
    return 2 * input.numel() // input.shape[-1] * (weight0.numel() + weight1.numel())


def _cpu_attention_flops(query: Any, key: Any, value: Any, *args: Any, out_val: Any = None,
                         **kwargs: Any) -> int:
    """``_scaled_dot_product_flash_attention_for_cpu``: torch's own SDPA formula."""
    return flop_counter.sdpa_flop_count(query.shape, key.shape, value.shape)


#: FLOP formulas for ATen kernels ``torch.utils.flop_counter`` has none for (it counts 0 for
#: them: an LSTM on CPU, attention on CPU), called as torch's: ``f(*args, out_val=out, **kwargs)``.
EXTRA_FORMULAS: dict[Any, Callable[..., int]] = {
    aten.mkldnn_rnn_layer: _rnn_layer_flops,
    aten._scaled_dot_product_flash_attention_for_cpu: _cpu_attention_flops,
}

FORMULAS: dict[Any, Callable[..., int]] = {**flop_counter.flop_registry, **EXTRA_FORMULAS}

#: Words in an ATen kernel's name that say it multiplies matrices; a kernel named so with no
#: formula is *opaque*: it did multiply-adds no one can measure here (``_int_mm``,
#: ``_transformer_encoder_layer_fwd``, ``_native_multi_head_attention``, ``cudnn_rnn`` ...).
MULTIPLY_ADD_WORDS = frozenset({
    "mm", "bmm", "addmm", "baddbmm", "addbmm", "mv", "addmv", "dot", "vdot", "matmul", "conv",
    "convolution", "rnn", "lstm", "gru", "attention", "transformer", "linear", "bilinear",
    "trilinear", "einsum", "tensordot", "conv1d", "conv2d", "conv3d", "tbc",
})

#: Kernels whose names hold such a word but that do no multiply-adds of their own: the pointwise
#: parts of fused RNN cells (their matrix products ran before them).  Interpolation kernels
#: (``upsample_bilinear2d`` ...) are left out by their prefix.
POINTWISE_KERNELS = frozenset({"_thnn_fused_lstm_cell", "_thnn_fused_gru_cell"})

_KINDS: dict[Any, Callable[..., int] | bool] = {}

#: The code of the wrapper ``torch.utils.flop_counter`` puts around a formula that reads shapes:
#: it turns every argument into shapes with ``tree_map``, a cost of its own on every kernel.
_SHAPE_WRAPPED = flop_counter.shape_wrapper(lambda: 0).__code__


def _shapes(value: Any) -> Any:
    """``value`` with its tensors, and those of lists and tuples in it, as their shapes."""
    if isinstance(value, torch.Tensor):
        return value.shape
    if isinstance(value, (list, tuple)):
        return type(value)(map(_shapes, value)) if type(value) in (list, tuple) else value
    return value


def _on_shapes(formula: Callable[..., int]) -> Callable[..., int]:
    """``formula`` called as torch calls it, its shapes made here: the formula torch's wrapper
    holds (``__wrapped__``) given the shapes directly; any other formula as it is."""
    raw = getattr(formula, "__wrapped__", None)
    if raw is None or getattr(formula, "__code__", None) is not _SHAPE_WRAPPED:
        return formula

    def on_shapes(*args: Any, out_val: Any = None, **kwargs: Any) -> int:
        return raw(*map(_shapes, args), out_shape=_shapes(out_val),
                   **{k: _shapes(v) for k, v in kwargs.items()})

    return on_shapes


def _kind(packet: Any) -> Callable[..., int] | bool:
    """A kernel's FLOP formula; else ``True`` when it is opaque, ``False`` when it does no
    multiply-adds (cached per kernel)."""
    found = _KINDS.get(packet)
    if found is None:
        found = FORMULAS.get(packet)
        if found is not None:
            found = _on_shapes(found)
        else:
            name = getattr(packet, "__name__", str(packet))
            words = set(name.strip("_").split("_"))
            found = (bool(words & MULTIPLY_ADD_WORDS) and name not in POINTWISE_KERNELS
                     and not name.startswith("upsample"))
        _KINDS[packet] = found
    return found


def aten_macs(func: Any, args: tuple, kwargs: dict, out: Any) -> int | None:
    """Multiply-adds of one ATen kernel call by torch's formulas (FLOPs / 2); ``None`` when the
    kernel is opaque (it multiplies matrices and no formula says how much); 0 when it does none."""
    packet = getattr(func, "_overloadpacket", func)
    kind = _kind(packet)
    if kind is False:
        return 0
    if kind is True:
        return None
    return kind(*args, **kwargs, out_val=out) // 2


def shortcut_macs(func: Callable[..., Any], args: tuple, kwargs: dict, out: torch.Tensor) -> int:
    """What torch's formulas give for a call of ``func`` that :mod:`msdprof.core.meta_shapes`
    answered without running a kernel: ``F.linear`` is ``mm``, ``F.conv2d`` a ``convolution``."""
    if func is F.linear:
        x, weight = _arg(args, kwargs, 0, "input"), _arg(args, kwargs, 1, "weight")
        rows = x.numel() // x.shape[-1]
        return flop_counter.mm_flop([rows, x.shape[-1]], list(weight.shape)[::-1]) // 2
    if func in meta_shapes.RECURRENT:  # each step multiplies by every weight matrix (torch's mm formula)
        x, params = args[0], args[2]
        rows = x.shape[0] * x.shape[1]
        return sum(flop_counter.mm_flop([rows, p.shape[1]], [p.shape[1], p.shape[0]]) // 2
                   for p in params if p.dim() == 2)
    if func is F.conv2d:
        x, weight = _arg(args, kwargs, 0, "input"), _arg(args, kwargs, 1, "weight")
        return flop_counter.conv_flop_count(list(x.shape), list(weight.shape), list(out.shape)) // 2
    return 0


@dataclass
class KernelTally:
    """Running totals of what the ATen kernels of a recorded pass did: their multiply-adds by
    torch's formulas and the names of opaque kernels (see :func:`aten_macs`)."""

    macs: int = 0
    opaque: list[str] = field(default_factory=list)

    def add(self, func: Any, args: tuple, kwargs: dict, out: Any) -> None:
        macs = aten_macs(func, args, kwargs, out)
        if macs is None:
            self.opaque.append(getattr(getattr(func, "_overloadpacket", func), "__name__", str(func)))
        else:
            self.macs += macs


def counted_macs(count: OpCount, convention: str) -> int:
    """The multiply-adds ``convention`` counts in ``count``: a module rule's (``msdnet``, whose
    counter sees modules only), functional ones too (``macs``, ``flops``)."""
    return count.macs + (count.functional_macs if convention != "msdnet" else 0)


CONVENTIONS: dict[str, Callable[[OpCount], int]] = {
    "msdnet": lambda c: c.macs + c.extra,
    "macs": lambda c: c.macs + c.functional_macs,
    "flops": lambda c: 2 * (c.macs + c.functional_macs),
}

@dataclass(frozen=True)
class ModuleCount:
    """What one module did during a counted run: operations over all its calls (and the functional
    ops its ``forward`` called outside counted submodules), the parameters it read, its calls."""

    ops: OpCount
    params: int
    calls: int


@dataclass(frozen=True)
class Counts:
    """The result of :func:`count_modules`: per module name, and the module types with no rule.

    ``unsupported`` maps a module type or functional op name to how many of its calls ran work
    some convention did not count (:func:`msdprof.core.dataflow.uncounted`: a leaf type with no
    rule, or kernels doing more multiply-adds than its rule counted): the totals of a convention
    are complete only when nothing is listed.
    """

    modules: dict[str, ModuleCount]
    unsupported: dict[str, int] = field(default_factory=dict)

    def total(self, convention: str, prefix: str = "") -> int:
        """Operations (in ``convention``) of the modules whose name starts with ``prefix``."""
        to_number = CONVENTIONS[convention]
        return sum(to_number(c.ops) for name, c in self.modules.items() if name.startswith(prefix))

    def params(self, prefix: str = "") -> int:
        """Parameters of the modules that ran and whose name starts with ``prefix``."""
        return sum(c.params for name, c in self.modules.items() if name.startswith(prefix))


__all__ = [
    "CONVENTIONS", "CONVENTION_HELP", "Counts", "EXTRA_FORMULAS", "FORMULAS", "FUNCTION_RULES",
    "KernelTally", "MULTIPLY_ADD_WORDS", "aten_macs", "counted_macs", "shortcut_macs",
    "ModuleCount", "OpCount", "RULES", "function_rule", "rule", "rule_for",
]
