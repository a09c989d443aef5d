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


META = torch.device("meta")


def _empty(like: torch.Tensor, shape: Any) -> torch.Tensor:
    """An empty meta tensor of ``shape`` in ``like``'s dtype (``like.new_empty`` costs three times
    as much)."""
    return torch.empty(shape, dtype=like.dtype, device=META)


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
    return _empty(input, input.shape)


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
    return _empty(tensors[0], shape)


def _meta_linear(input: Any, weight: Any, bias: Any = None) -> torch.Tensor | None:
    if not _all_meta(input, weight, *(() if bias is None else (bias,))):
        return None
    if input.dim() < 1 or weight.dim() != 2 or input.shape[-1] != weight.shape[1]:
        return None
    if bias is not None and tuple(bias.shape) != (weight.shape[0],):
        return None
    return _empty(input, (*input.shape[:-1], weight.shape[0]))


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
    return _empty(input, (batch, out, *sides))


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
    return _empty(input, (*input.shape[:2], *sides))


def _meta_avg_pool2d(
    input: Any, kernel_size: Any, stride: Any = None, padding: Any = 0, ceil_mode: bool = False,
    count_include_pad: bool = True, divisor_override: Any = None,
) -> torch.Tensor | None:
    return _meta_pool2d(input, kernel_size, stride, padding, 1, ceil_mode)


def _meta_recurrent(input: Any, hx: Any, params: Any, has_biases: Any, num_layers: Any, dropout: Any,
                    train: Any, bidirectional: Any, batch_first: Any) -> tuple[torch.Tensor, ...] | None:
    """``_VF.lstm``, ``gru``, ``rnn_tanh``, ``rnn_relu`` on a padded batch (not a packed sequence:
    its ``has_biases`` is a bool, a packed call's fourth argument its weights): the output of every
    step, ``hidden size x directions`` wide (the projection size for an LSTM with one), and the
    last states as given.  Their kernels, on meta, are each step's matrix products run one by one."""
    states = hx if isinstance(hx, (list, tuple)) else (hx,)
    if not isinstance(has_biases, bool) or not isinstance(bidirectional, bool) or not isinstance(batch_first, bool):
        return None
    if not _all_meta(input, *states, *params) or input.dim() != 3 or any(s.dim() != 3 for s in states):
        return None
    steps, batch = (input.shape[1], input.shape[0]) if batch_first else input.shape[:2]
    if states[0].shape[1] != batch:
        return None
    width = states[0].shape[-1] * (2 if bidirectional else 1)
    out = _empty(input, (batch, steps, width) if batch_first else (steps, batch, width))
    return (out, *(_empty(s, s.shape) for s in states))


#: Shape-only results of functions on meta tensors; each returns ``None`` when it is not sure.
SHORTCUTS: dict[Callable[..., Any], Callable[..., torch.Tensor | None]] = {
    F.batch_norm: _meta_batch_norm,
    F.conv2d: _meta_conv2d,
    F.linear: _meta_linear,
    F.max_pool2d: _meta_pool2d,
    F.avg_pool2d: _meta_avg_pool2d,
    torch.cat: _meta_cat,
    torch._VF.lstm: _meta_recurrent,
    torch._VF.gru: _meta_recurrent,
    torch._VF.rnn_tanh: _meta_recurrent,
    torch._VF.rnn_relu: _meta_recurrent,
}

#: The recurrent functions :data:`SHORTCUTS` answers (their multiply-adds by torch's formulas:
#: :func:`msdprof.core.counting.shortcut_macs`).
RECURRENT = frozenset({torch._VF.lstm, torch._VF.gru, torch._VF.rnn_tanh, torch._VF.rnn_relu})


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





# --- the kernel cache: what torch's meta kernels answered, by the metadata they read ------------
#
# Torch's meta kernels for most ATen ops are Python (references and decompositions): 40 to 900 us
# a call where the CPU kernel of a small tensor takes 4.  On meta no value exists, so what a meta
# kernel returns (shapes, strides, dtypes) is a function of its arguments' metadata and of its
# other arguments: the first call of an op on given metadata runs the kernel, later ones make the
# same empty results directly (as torch's own FakeTensorMode caches its dispatch).  Only ops whose
# every result is a new tensor, or an argument it writes (in place, ``out=``), are kept: views are
# C++ and fast already, and ops whose shapes depend on values never run on meta.


class _Uncached(Exception):
    """An argument the cache cannot key on (a generator, a custom object ...)."""


#: Most entries the kernel cache holds before it is emptied (a bound on its memory).
KERNEL_CACHE_SIZE = 16384
_KERNELS: dict[Any, tuple[Any, ...]] = {}
_PLANS: dict[Any, tuple[tuple[int | str, ...], ...] | None] = {}
_PLAIN_TYPES = (int, float, bool, str, type(None), torch.dtype, torch.device, torch.memory_format,
                torch.layout)


_VALUE_DEPENDENT: dict[Any, bool] = {}

#: Ops tagged ``dynamic_output_shape`` whose shapes depend on values only in a form that runs
#: another op so tagged: indexing by a boolean mask (``nonzero``), ``one_hot`` without a class
#: count (``.item()`` of the maximum).  Indexing by integer tensors and ``one_hot`` of a given
#: class count have shapes of their own.
_SHAPED_BY_ANOTHER = frozenset({"index.Tensor", "one_hot.default"})


def value_dependent(func: Any) -> bool:
    """Whether the ATen op ``func`` reads tensor values into Python or makes a result whose shape
    depends on them (its tags ``data_dependent_output``, ``dynamic_output_shape``: ``item``,
    ``nonzero``, ``masked_select``, ``unique`` ...)."""
    found = _VALUE_DEPENDENT.get(func)
    if found is None:
        tags = getattr(func, "tags", ())
        name = f"{getattr(func, '__name__', '')}"
        found = _VALUE_DEPENDENT[func] = name not in _SHAPED_BY_ANOTHER and (
            torch.Tag.data_dependent_output in tags or torch.Tag.dynamic_output_shape in tags)
    return found


def _plan(func: Any) -> tuple[tuple[int | str, ...], ...] | None:
    """How a call of ``func`` is answered from the cache: per result, ``()`` for a new tensor or
    ``(index, name)`` of the argument it returns (one it writes); ``None`` when it cannot be (a
    view, a list or an optional result, a non-tensor result, a value-dependent op)."""
    if func in _PLANS:
        return _PLANS[func]
    plan: tuple[tuple[int | str, ...], ...] | None = None
    schema = getattr(func, "_schema", None)
    if schema is not None and not value_dependent(func):
        plan = ()
        for result in schema.returns:
            if not isinstance(result.type, torch._C.TensorType):
                plan = None
                break
            if result.alias_info is None:
                plan += ((),)
                continue
            written = next(((i, a.name) for i, a in enumerate(schema.arguments) if a.alias_info is not None
                            and a.alias_info.is_write
                            and a.alias_info.before_set == result.alias_info.before_set), None)
            if written is None or not result.alias_info.is_write:
                plan = None  # a view of an argument
                break
            plan += (written,)
    _PLANS[func] = plan
    return plan


def _key(value: Any, meta: list[bool] | None = None) -> Any:
    """What of ``value`` a meta kernel can read: a tensor's dtype, shape, strides and offset; a
    plain value itself; lists and tuples item by item.  ``meta``: a list to note each tensor's
    being on meta in (for :func:`kernel`)."""
    if isinstance(value, torch.Tensor):
        if value.layout is not torch.strided:
            raise _Uncached
        if meta is not None:
            meta.append(value.is_meta)
        return (value.dtype, value.shape, value.stride(), value.storage_offset())
    if isinstance(value, (list, tuple)):
        return (type(value), *(_key(v, meta) for v in value))
    if isinstance(value, _PLAIN_TYPES):
        return (type(value), value)
    raise _Uncached


def _on_meta_only(meta: list[bool], kwargs: dict) -> bool:
    """Whether a call computes on ``meta`` alone: its tensors (``meta``: each one's being on meta)
    are all meta, and there is one (else a factory: its ``device`` is meta)."""
    if not meta:
        device = kwargs.get("device")
        return device is not None and torch.device(device).type == "meta"
    return all(meta)


def _argument(args: tuple, kwargs: dict, where: tuple[int | str, ...]) -> Any:
    index, name = where
    return args[index] if index < len(args) else kwargs[name]


def _answer(plan: tuple[tuple[int | str, ...], ...], entry: tuple[Any, ...], args: tuple, kwargs: dict) -> Any:
    results = tuple(
        torch.empty_strided(made[0], made[1], dtype=made[2], device=META) if not where
        else _argument(args, kwargs, where)
        for where, made in zip(plan, entry)
    )
    return results[0] if len(results) == 1 else results


def _entry(out: Any) -> tuple[Any, ...]:
    outs = out if isinstance(out, tuple) else (out,)
    return tuple((o.shape, o.stride(), o.dtype) for o in outs)


def kernel(func: Any, args: tuple, kwargs: dict) -> Any:
    """``func(*args, **kwargs)`` for an ATen op; on meta arguments from the kernel cache when the
    same op ran on the same metadata before (see above)."""
    plan = _plan(func)
    if plan is None:
        return func(*args, **kwargs)
    meta: list[bool] = []
    try:
        key = (func, _key(args, meta), _key(tuple(kwargs.items()), meta))
    except _Uncached:
        return func(*args, **kwargs)
    if not _on_meta_only(meta, kwargs):
        return func(*args, **kwargs)
    entry = _KERNELS.get(key)
    if entry is not None:
        return _answer(plan, entry, args, kwargs)
    out = func(*args, **kwargs)
    if len(_KERNELS) >= KERNEL_CACHE_SIZE:
        _KERNELS.clear()
    _KERNELS[key] = _entry(out)
    return out





def _on_meta(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return torch.empty_strided(value.shape, value.stride(), dtype=value.dtype, device="meta")
    if isinstance(value, (list, tuple)):
        return type(value)(map(_on_meta, value))
    if isinstance(value, dict):
        return {k: _on_meta(v) for k, v in value.items()}
    return value


def result_bytes(func: Any, args: tuple, kwargs: dict) -> int:
    """Bytes of the new tensors a call of the ATen op ``func`` on tensors of any device will make,
    from the kernel cache or its meta kernel on empty copies of the arguments, before it runs; 0
    for a view, a result it writes in place, or an op whose result sizes are unknown before it runs
    (``nonzero``) or that has no meta kernel."""
    plan = _plan(func)
    if plan is None or all(plan):
        return 0
    try:
        key = (func, _key(args), _key(tuple(kwargs.items())))
    except _Uncached:
        return 0
    entry = _KERNELS.get(key)
    if entry is None:
        try:
            out = func(*_on_meta(args), **_on_meta(kwargs))
        except Exception:  # no meta kernel: what it makes is known only when it has run
            return 0
        if len(_KERNELS) >= KERNEL_CACHE_SIZE:
            _KERNELS.clear()
        entry = _KERNELS[key] = _entry(out)
    return sum(shape.numel() * dtype.itemsize for where, (shape, _, dtype) in zip(plan, entry) if not where)
__all__ = ["KERNEL_CACHE_SIZE", "META", "MetaShapes", "RECURRENT", "SHORTCUTS", "compute", "kernel", "result_bytes", "shortcut",
           "value_dependent"]
