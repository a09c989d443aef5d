"""Shape-only shortcuts for functions of ``meta`` tensors, used while counting.

A meta tensor has a shape and no values, so the shape is all a function can produce on it; but
torch's meta kernels for batch norm, conv2d, linear, 2-d pooling and ``torch.cat`` run Python code:
batch norm the decomposition of the real arithmetic (about 0.5 ms a call, most of the time of
counting an MSDNet), and the first conv, pooling, ``cat`` or biased ``linear`` of a process import
sympy and ``torch._dynamo`` (about 1.5 s).  :func:`compute` returns an empty tensor of the result's
shape directly for these; anything a shortcut is not sure of (other dtypes or devices, string
padding, shapes torch would reject) goes to torch itself.  Nothing of torch is patched: the counter's
scoped torch-function mode (:mod:`msdprof.core.dataflow`) calls :func:`compute`, and
:class:`MetaShapes` is the same as a mode of its own.
"""

from __future__ import annotations

from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode


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
SHORTCUTS: dict[Callable[..., Any], Callable[..., torch.Tensor | None]] = {
    F.batch_norm: _meta_batch_norm,
    F.conv2d: _meta_conv2d,
    F.linear: _meta_linear,
    F.max_pool2d: _meta_pool2d,
    F.avg_pool2d: _meta_avg_pool2d,
    torch.cat: _meta_cat,
}


def shortcut(func: Callable[..., Any], args: tuple, kwargs: dict,
             shortcuts: dict[Callable[..., Any], Callable[..., Any]] = SHORTCUTS) -> torch.Tensor | None:
    """``func(*args, **kwargs)`` by its shortcut in ``shortcuts`` (:data:`SHORTCUTS` or part of
    it), when it has one sure of the result; else ``None``."""
    found = shortcuts.get(func)
    if found is None:
        return None
    try:
        return found(*args, **kwargs)
    except TypeError:  # a call shape the shortcut does not take: torch decides
        return None


def compute(func: Callable[..., Any], args: tuple, kwargs: dict,
            shortcuts: dict[Callable[..., Any], Callable[..., Any]] = SHORTCUTS) -> Any:
    """``func(*args, **kwargs)``, through its shortcut when it has one that is sure of the result
    (``shortcuts``: :data:`SHORTCUTS` or part of it)."""
    result = shortcut(func, args, kwargs, shortcuts)
    return func(*args, **kwargs) if result is None else result


class MetaShapes(TorchFunctionMode):
    """Within its ``with`` block, functions of meta tensors go through :func:`compute`; real
    (CPU, CUDA) tensors are untouched."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        return compute(func, args, kwargs or {})


__all__ = ["MetaShapes", "SHORTCUTS", "compute", "shortcut"]
