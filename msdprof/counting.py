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


def _meta_cat(tensors: Any, dim: int = 0) -> torch.Tensor | None:
    """The empty result of ``torch.cat(tensors, dim)`` of same-dtype meta tensors, or ``None``
    (not that case, or shapes torch would reject: then torch itself runs and raises)."""
    if not isinstance(tensors, (list, tuple)) or not tensors or not isinstance(dim, int):
        return None
    first = tensors[0]
    if not all(isinstance(t, torch.Tensor) and t.is_meta and t.dtype == first.dtype for t in tensors):
        return None
    ndim = first.dim()
    if ndim == 0 or not -ndim <= dim < ndim:
        return None
    dim %= ndim
    shape = list(first.shape)
    for t in tensors[1:]:
        if t.dim() != ndim or any(a != b for i, (a, b) in enumerate(zip(t.shape, shape)) if i != dim):
            return None
        shape[dim] += t.shape[dim]
    return first.new_empty(shape)


def _meta_linear(input: Any = None, weight: Any = None, bias: Any = None) -> torch.Tensor | None:
    """The empty result of ``F.linear(input, weight, bias)`` of same-dtype meta tensors, or
    ``None`` (not that case, or shapes torch would reject: then torch itself runs and raises)."""
    tensors = (input, weight) if bias is None else (input, weight, bias)
    if not all(isinstance(t, torch.Tensor) and t.is_meta and t.dtype == input.dtype for t in tensors):
        return None
    if input.dim() < 1 or weight.dim() != 2 or input.shape[-1] != weight.shape[1]:
        return None
    if bias is not None and tuple(bias.shape) not in ((weight.shape[0],), (1,), ()):
        return None
    return input.new_empty((*input.shape[:-1], weight.shape[0]))


class _MetaShapes(TorchFunctionMode):
    """While counting, ``F.batch_norm``, ``F.linear`` and ``torch.cat`` of ``meta`` tensors
    return an empty tensor of the result's shape directly.

    A meta tensor has a shape and no values, so the shape is all these functions can produce on it;
    but torch's meta kernels for them run Python decompositions of the real arithmetic (batch norm
    about 0.5 ms a call, most of the time of counting an MSDNet; the first ``cat`` or ``linear``
    with a bias imports ``torch._dynamo``, about 1 s).  A torch-function mode is scoped to its ``with`` block: nothing
    of torch or of the model is patched, and real (CPU, CUDA) tensors are untouched.
    """

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func is F.batch_norm:
            x = args[0] if args else kwargs.get("input")
            if isinstance(x, torch.Tensor) and x.is_meta:
                return x.new_empty(x.shape)
        elif func is F.linear:
            result = _meta_linear(*args, **kwargs)
            if result is not None:
                return result
        elif func is torch.cat:
            try:
                result = _meta_cat(*args, **kwargs)
            except TypeError:  # a signature torch.cat takes and _meta_cat does not: torch decides
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
