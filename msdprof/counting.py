"""Counting rules, one per module type, and a forward-hook counter that leaves no trace.

Each rule looks at one call of one module (its inputs and output, shapes only, so it works on the
``meta`` device) and returns an :class:`OpCount`: the multiply-adds of its weights (``macs``) and
the further operations the authors' counter charges (``extra``: Linear bias adds, activations,
pooling).  A *convention* turns an :class:`OpCount` into one number (SPEC section 2):

- ``msdnet`` (the authors' op counter): ``macs + extra``;
- ``macs``: ``macs`` (Conv2d and Linear multiply-adds only, no bias);
- ``flops``: ``2 * macs``.

Adding a module type is one small function decorated with :func:`rule`.  A leaf module of a type
with no rule is never silently counted as 0: :func:`count_modules` reports it in ``unsupported``.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode

from msdnet.config import OptionError, did_you_mean


@dataclass(frozen=True)
class OpCount:
    """Operations of one module call, for the whole batch it ran on.

    ``macs``: multiply-adds of weights (Conv2d, Linear; bias excluded).  ``extra``: the other
    operations the authors' counter charges (Linear bias adds, ReLU elements, pooling windows).
    """

    macs: int = 0
    extra: int = 0

    def __add__(self, other: "OpCount") -> "OpCount":
        return OpCount(self.macs + other.macs, self.extra + other.extra)


Rule = Callable[[nn.Module, tuple, Any], OpCount]

#: Counting rules keyed by module type; see :func:`rule`.
RULES: dict[type[nn.Module], Rule] = {}


def rule(*types: type[nn.Module]) -> Callable[[Rule], Rule]:
    """Register a counting rule ``f(module, inputs, output) -> OpCount`` for ``types``."""

    def register(f: Rule) -> Rule:
        for t in types:
            RULES[t] = f
        return f

    return register


def _pair(value: int | tuple[int, ...]) -> tuple[int, int]:
    return (value, value) if isinstance(value, int) else (value[0], value[1])


@rule(nn.Conv2d)
def _conv2d(m: nn.Conv2d, inputs: tuple, output: torch.Tensor) -> OpCount:
    kh, kw = m.kernel_size
    return OpCount(macs=m.in_channels // m.groups * output.numel() * kh * kw)


@rule(nn.Linear)
def _linear(m: nn.Linear, inputs: tuple, output: torch.Tensor) -> OpCount:
    rows = output.numel() // m.out_features
    bias = output.numel() if m.bias is not None else 0
    return OpCount(macs=rows * m.in_features * m.out_features, extra=bias)


@rule(nn.ReLU)
def _relu(m: nn.Module, inputs: tuple, output: torch.Tensor) -> OpCount:
    return OpCount(extra=output.numel())


@rule(nn.AvgPool2d, nn.MaxPool2d)
def _pool2d(m: nn.Module, inputs: tuple, output: torch.Tensor) -> OpCount:
    kh, kw = _pair(m.kernel_size)
    return OpCount(extra=output.numel() * kh * kw)


@rule(nn.AdaptiveAvgPool2d)
def _adaptive_pool2d(m: nn.Module, inputs: tuple, output: torch.Tensor) -> OpCount:
    return OpCount(extra=inputs[0].numel())


@rule(nn.BatchNorm2d, nn.Dropout, nn.Dropout2d, nn.Flatten, nn.Identity)
def _free(m: nn.Module, inputs: tuple, output: Any) -> OpCount:
    return OpCount()


CONVENTIONS: dict[str, Callable[[OpCount], int]] = {
    "msdnet": lambda c: c.macs + c.extra,
    "macs": lambda c: c.macs,
    "flops": lambda c: 2 * c.macs,
}

#: What each convention counts, for help texts and report footnotes.
CONVENTION_HELP = {
    "msdnet": "the authors' op counter: one multiply-add = 1, plus ReLU elements, pooling windows "
              "and Linear bias adds (the paper's 'FLOPs')",
    "macs": "Conv2d and Linear multiply-adds only, no bias (fvcore's count)",
    "flops": "2 x macs (torch.utils.flop_counter's count)",
}


def check_convention(name: str) -> str:
    """``name`` if it is a known convention, else :class:`OptionError` naming the known ones."""
    if name not in CONVENTIONS:
        raise OptionError(
            "convention", name,
            "must be one of " + ", ".join(CONVENTIONS) + did_you_mean(name, CONVENTIONS),
        )
    return name


@dataclass(frozen=True)
class ModuleCount:
    """What one module did during a counted run: operations over all its calls, its parameters."""

    ops: OpCount
    params: int
    calls: int


@dataclass(frozen=True)
class Counts:
    """The result of :func:`count_modules`: per module name, and the module types with no rule.

    ``unsupported`` maps a type name to how many times modules of it ran uncounted.
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


def _counted_modules(model: nn.Module):
    """Leaf modules, and any module holding parameters of its own, with their names."""
    for name, module in model.named_modules():
        leaf = next(module.children(), None) is None
        if leaf or next(module.parameters(recurse=False), None) is not None:
            yield name, module, leaf


def _all_meta(*tensors: Any) -> bool:
    """Whether every one of ``tensors`` is a meta tensor of the first one's dtype."""
    return all(
        isinstance(t, torch.Tensor) and t.is_meta and t.dtype == tensors[0].dtype for t in tensors
    )


def _meta_batch_norm(
    input: Any, running_mean: Any, running_var: Any, weight: Any = None, bias: Any = None,
    training: bool = False, momentum: float = 0.1, eps: float = 1e-5,
) -> torch.Tensor | None:
    """Evaluation mode only, with running statistics of the input's channels."""
    if training is not False or not _all_meta(input) or input.dim() < 2:
        return None
    stats = (running_mean, running_var, *(t for t in (weight, bias) if t is not None))
    if not _all_meta(input, *stats) or any(tuple(t.shape) != (input.shape[1],) for t in stats):
        return None
    return input.new_empty(input.shape)


def _meta_cat(tensors: Any, dim: int = 0) -> torch.Tensor | None:
    if not isinstance(tensors, (list, tuple)) or not tensors or not _all_meta(*tensors):
        return None
    ndim = tensors[0].dim()
    if isinstance(dim, bool) or not isinstance(dim, int) or ndim == 0 or not -ndim <= dim < ndim:
        return None
    dim %= ndim
    shape = list(tensors[0].shape)
    for t in tensors[1:]:
        if t.dim() != ndim or any(a != b for i, (a, b) in enumerate(zip(t.shape, shape)) if i != dim):
            return None
        shape[dim] += t.shape[dim]
    return tensors[0].new_empty(shape)


def _meta_linear(input: Any, weight: Any, bias: Any = None) -> torch.Tensor | None:
    if not _all_meta(input, weight, *(() if bias is None else (bias,))):
        return None
    if input.dim() < 1 or weight.dim() != 2 or input.shape[-1] != weight.shape[1]:
        return None
    if bias is not None and tuple(bias.shape) != (weight.shape[0],):
        return None
    return input.new_empty((*input.shape[:-1], weight.shape[0]))


def _ints2(value: Any, minimum: int) -> tuple[int, int] | None:
    """``(a, b)`` from an int or a pair of ints, each >= ``minimum``; else ``None``."""
    pair = (value, value) if isinstance(value, int) else value
    if (not isinstance(pair, (tuple, list)) or len(pair) != 2
            or any(isinstance(v, bool) or not isinstance(v, int) or v < minimum for v in pair)):
        return None
    return pair[0], pair[1]


def _meta_conv2d(
    input: Any, weight: Any, bias: Any = None, stride: Any = 1, padding: Any = 0, dilation: Any = 1,
    groups: Any = 1,
) -> torch.Tensor | None:
    if not _all_meta(input, weight, *(() if bias is None else (bias,))):
        return None
    strides, pads, dilations = _ints2(stride, 1), _ints2(padding, 0), _ints2(dilation, 1)
    if strides is None or pads is None or dilations is None or input.dim() != 4 or weight.dim() != 4:
        return None  # padding="same", unbatched input, ...: torch itself decides
    if isinstance(groups, bool) or not isinstance(groups, int) or groups < 1:
        return None
    batch, channels, height, width = input.shape
    out, per_group, kh, kw = weight.shape
    if channels != per_group * groups or out % groups:
        return None
    if bias is not None and tuple(bias.shape) != (out,):
        return None
    sides = [
        (side + 2 * pad - dil * (k - 1) - 1) // st + 1
        for side, k, st, pad, dil in zip((height, width), (kh, kw), strides, pads, dilations)
    ]
    if min(sides) < 1:
        return None
    return input.new_empty((batch, out, *sides))


def _meta_pool2d(
    input: Any, kernel_size: Any, stride: Any = None, padding: Any = 0, dilation: Any = 1,
    ceil_mode: bool = False, return_indices: bool = False,
) -> torch.Tensor | None:
    """``F.max_pool2d``, and ``F.avg_pool2d`` through :func:`_meta_avg_pool2d`: floor mode, no
    indices returned."""
    if not _all_meta(input) or input.dim() != 4 or ceil_mode is not False:
        return None
    if return_indices is not False:
        return None
    kernels = _ints2(kernel_size, 1)
    default_stride = stride is None or (isinstance(stride, (list, tuple)) and not stride)
    strides = kernels if default_stride else _ints2(stride, 1)
    pads, dilations = _ints2(padding, 0), _ints2(dilation, 1)
    if kernels is None or strides is None or pads is None or dilations is None:
        return None
    sides = []
    for side, k, st, pad, dil in zip(input.shape[2:], kernels, strides, pads, dilations):
        if pad > ((k - 1) * dil + 1) // 2:
            return None
        sides.append((side + 2 * pad - dil * (k - 1) - 1) // st + 1)
    if min(sides) < 1:
        return None
    return input.new_empty((*input.shape[:2], *sides))


def _meta_avg_pool2d(
    input: Any, kernel_size: Any, stride: Any = None, padding: Any = 0, ceil_mode: bool = False,
    count_include_pad: bool = True, divisor_override: Any = None,
) -> torch.Tensor | None:
    return _meta_pool2d(input, kernel_size, stride, padding, 1, ceil_mode)


#: Shape-only results of functions on meta tensors; each returns ``None`` when it is not sure.
_META_SHAPES: dict[Callable[..., Any], Callable[..., torch.Tensor | None]] = {
    F.batch_norm: _meta_batch_norm,
    F.conv2d: _meta_conv2d,
    F.linear: _meta_linear,
    F.max_pool2d: _meta_pool2d,
    F.avg_pool2d: _meta_avg_pool2d,
    torch.cat: _meta_cat,
}


class _MetaShapes(TorchFunctionMode):
    """While counting, batch norm, conv2d, linear, 2-d pooling and ``torch.cat`` of ``meta``
    tensors return an empty tensor of the result's shape directly.

    A meta tensor has a shape and no values, so the shape is all a function can produce on it; but
    torch's meta kernels for these run Python code: batch norm the decomposition of the real
    arithmetic (about 0.5 ms a call, most of the time of counting an MSDNet), and the first conv,
    pooling, ``cat`` or biased ``linear`` of a process import sympy and ``torch._dynamo`` (about
    1.5 s).  Anything these shortcuts are not sure of (other dtypes or devices, string padding, shapes torch
    would reject) goes to torch itself.  A torch-function mode is scoped to its ``with`` block:
    nothing of torch or of the model is patched, and real (CPU, CUDA) tensors are untouched.
    """

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        shortcut = _META_SHAPES.get(func)
        if shortcut is not None:
            try:
                result = shortcut(*args, **kwargs)
            except TypeError:  # a call shape the shortcut does not take: torch decides
                result = None
            if result is not None:
                return result
        return func(*args, **kwargs)


def count_modules(
    model: nn.Module, *args: Any, run: Callable[..., Any] | None = None, **kwargs: Any
) -> Counts:
    """Run ``model(*args, **kwargs)`` once under forward hooks and count every module call.

    ``run``: call ``run(*args, **kwargs)`` instead, with the hooks on ``model``'s modules -- to
    count another entry point of the model (e.g. ``run=model.early_exit``).

    The hooks keep their tallies in a local dict keyed by module name and are removed in a
    ``finally``: the model is left exactly as it was (no attributes, buffers or patched functions).
    Parameters of a module are counted once, the first time it runs.
    """
    ops: dict[str, OpCount] = {}
    calls: dict[str, int] = {}
    params: dict[str, int] = {}
    unsupported: dict[str, int] = {}

    def hook(name: str, leaf: bool, module: nn.Module, inputs: tuple, output: Any) -> None:
        calls[name] = calls.get(name, 0) + 1
        if name not in params:
            params[name] = sum(p.numel() for p in module.parameters(recurse=False))
        if not leaf:
            return
        counter = RULES.get(type(module))
        if counter is None:
            kind = type(module).__name__
            unsupported[kind] = unsupported.get(kind, 0) + 1
            return
        ops[name] = ops.get(name, OpCount()) + counter(module, inputs, output)

    handles = []
    try:
        for name, module, leaf in _counted_modules(model):
            handles.append(module.register_forward_hook(functools.partial(hook, name, leaf)))
        with torch.no_grad(), _MetaShapes():
            (model if run is None else run)(*args, **kwargs)
    finally:
        for handle in handles:
            handle.remove()
    modules = {
        name: ModuleCount(ops.get(name, OpCount()), params[name], n) for name, n in calls.items()
    }
    return Counts(modules, unsupported)


def count_image(model: nn.Module, input_size: tuple[int, int]) -> Counts:
    """:func:`count_modules` on one zero 3 x height x width image (``input_size``, pixels) on the
    model's device, in eval mode; the model's train/eval mode is restored afterwards."""
    height, width = input_size
    image = torch.zeros(1, 3, height, width, device=next(model.parameters()).device)
    was_training = model.training
    model.eval()
    try:
        return count_modules(model, image)
    finally:
        model.train(was_training)


def format_count(value: float, unit: str = "") -> str:
    """A count in K/M/G/T with two decimals (``1.36 G``); exact below 1000."""
    for factor, prefix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "K")):
        if abs(value) >= factor:
            return f"{value / factor:.2f} {prefix}{unit}".rstrip()
    return f"{value:g} {unit}".rstrip() if isinstance(value, float) else f"{value} {unit}".rstrip()


__all__ = [
    "CONVENTIONS", "CONVENTION_HELP", "Counts", "ModuleCount", "OpCount", "RULES", "check_convention",
    "count_modules", "format_count", "rule",
]
