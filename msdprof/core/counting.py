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
decorated with :func:`function_rule`.  Nothing without a rule is silently counted as 0: a leaf
module of a type with no rule, and a functional op that does multiply-adds
(:data:`MULTIPLY_ADD_FUNCTIONS`) with no rule, are reported as unsupported.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import nn

from msdnet.options import OptionError, did_you_mean

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


#: Functional ops that do multiply-adds but have no rule yet: reported as unsupported by the
#: ``macs`` and ``flops`` conventions when called outside counted modules, never counted as 0.
MULTIPLY_ADD_FUNCTIONS = frozenset({
    torch.einsum, torch.tensordot, F.bilinear, torch.addbmm, torch.addmv, torch.mv, torch.dot,
    torch.vdot, torch.inner, torch.chain_matmul, torch.Tensor.addbmm, torch.Tensor.addmv,
    torch.Tensor.mv, torch.Tensor.dot, torch.Tensor.__rmatmul__, F.multi_head_attention_forward,
})


CONVENTIONS: dict[str, Callable[[OpCount], int]] = {
    "msdnet": lambda c: c.macs + c.extra,
    "macs": lambda c: c.macs + c.functional_macs,
    "flops": lambda c: 2 * (c.macs + c.functional_macs),
}

def check_convention(name: str) -> str:
    """``name`` if it is a known convention, else :class:`OptionError` naming the known ones."""
    if not isinstance(name, str) or name not in CONVENTIONS:
        raise OptionError(
            "convention", name,
            "must be one of " + ", ".join(CONVENTIONS)
            + (did_you_mean(name, CONVENTIONS) if isinstance(name, str) else " (a name, not a "
               + type(name).__name__ + ")"),
        )
    return name


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

    ``unsupported`` maps a type name to how many times leaf modules of it ran uncounted.
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
    "CONVENTIONS", "CONVENTION_HELP", "Counts", "FUNCTION_RULES", "MULTIPLY_ADD_FUNCTIONS",
    "ModuleCount", "OpCount", "RULES", "check_convention", "function_rule", "rule", "rule_for",
]
