"""Nested inputs and outputs: any tree of tensors, its tensors by key path, and copies of it.

A model's inputs and outputs may be tensors nested in tuples, lists, dicts, named tuples,
dataclasses, the containers ``torch.utils._pytree`` knows (transformers registers its
``ModelOutput`` classes there) and transformers ``Cache`` objects (``DynamicCache`` and its
layers), which are not pytree nodes in transformers (checked for 5.x): they are walked through their
attributes, the tensors they hold.  Anything else is a leaf; only tensor leaves count.

A *key path* names one place in such a tree, its steps joined by dots: ``exit_logits``,
``0.logits``, ``past_key_values.layers.3.keys`` -- a dict key, a list or tuple index, an attribute.
:func:`leaves` lists the tensors with their paths, :func:`map_tensors` copies a tree with every
tensor changed (the containers are new, so a model that rebinds a cache's tensors leaves the
original as it was), :func:`pick` follows a path.
"""

from __future__ import annotations

import copy
import dataclasses
from typing import Any, Callable, Iterator

import torch
import torch.utils._pytree as pytree

Path = tuple[Any, ...]

#: The module whose classes are walked through their attributes: transformers' caches and layers.
CACHE_MODULE = "transformers.cache_utils"


def is_cache(value: Any) -> bool:
    """Whether ``value`` is a transformers cache object (a ``Cache`` or one of its layers)."""
    return any(getattr(cls, "__module__", "") == CACHE_MODULE for cls in type(value).__mro__)


def _is_object(value: Any) -> bool:
    """A node pytree does not open that is walked here: a cache, or a dataclass instance."""
    if isinstance(value, (torch.Tensor, type)) or not pytree.tree_is_leaf(value):
        return False
    return is_cache(value) or dataclasses.is_dataclass(value)


def _attributes(value: Any) -> dict[str, Any]:
    """The children of an object node: a dataclass's fields, a cache's attributes."""
    if dataclasses.is_dataclass(value) and not is_cache(value):
        return {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    return dict(vars(value))


def _step(entry: Any) -> Any:
    """One step of a key path from a pytree key entry: a key, an index or an attribute name."""
    for name in ("key", "idx", "name"):
        if hasattr(entry, name):
            return getattr(entry, name)
    return str(entry)


def leaves(value: Any, path: Path = ()) -> Iterator[tuple[Path, torch.Tensor]]:
    """Every tensor in ``value``, in order, with its key path (a tuple of steps)."""
    if isinstance(value, torch.Tensor):
        yield path, value
        return
    if _is_object(value):
        for name, child in _attributes(value).items():
            yield from leaves(child, (*path, name))
        return
    if pytree.tree_is_leaf(value):
        return  # a leaf that is no tensor
    found, _ = pytree.tree_flatten_with_path(value, is_leaf=_is_object)
    for entries, leaf in found:
        if isinstance(leaf, torch.Tensor):
            yield (*path, *(_step(e) for e in entries)), leaf
        elif _is_object(leaf):
            yield from leaves(leaf, (*path, *(_step(e) for e in entries)))


def map_tensors(change: Callable[[torch.Tensor], torch.Tensor], value: Any) -> Any:
    """A copy of ``value`` with every tensor through ``change``; containers and object nodes are
    new (shallow copies of the objects), anything else is kept as it is."""
    return map_paths(lambda _, t: change(t), value)


def map_paths(change: Callable[[Path, torch.Tensor], torch.Tensor], value: Any, path: Path = ()) -> Any:
    """:func:`map_tensors` with ``change(path, tensor)`` given each tensor's key path too."""
    if isinstance(value, torch.Tensor):
        return change(path, value)
    if _is_object(value):
        new = copy.copy(value)
        for name, child in _attributes(value).items():
            object.__setattr__(new, name, map_paths(change, child, (*path, name)))
        return new
    if pytree.tree_is_leaf(value):
        return value

    def leaf(entries: Any, item: Any) -> Any:
        if isinstance(item, torch.Tensor) or _is_object(item):
            return map_paths(change, item, (*path, *(_step(e) for e in entries)))
        return item

    return pytree.tree_map_with_path(leaf, value, is_leaf=_is_object)


def has_tensors(value: Any) -> bool:
    """Whether ``value`` holds a tensor anywhere."""
    return next(leaves(value), None) is not None


def path_text(path: Path) -> str:
    """``past_key_values.layers.3.keys``: a key path as text (``""`` for the root)."""
    return ".".join(str(step) for step in path)


def parse_path(text: str | int) -> Path:
    """The steps of ``exit_logits``, ``0.logits`` or ``3``: digits are indices (or keys, see
    :func:`child`)."""
    if isinstance(text, int):
        return (text,)
    return tuple(int(s) if s.lstrip("-").isdigit() else s for s in text.split("."))


def child(value: Any, step: Any) -> Any:
    """The child of ``value`` at ``step``: a dict key (an int step also as its text, a text step of
    digits also as an int), a list or tuple index, an attribute of an object node or a named tuple;
    :class:`LookupError` when it has none."""
    if isinstance(value, dict):
        for key in (step, str(step)) + ((int(step),) if isinstance(step, str) and step.lstrip("-").isdigit() else ()):
            if key in value:
                return value[key]
        raise LookupError(step)
    if isinstance(value, (list, tuple)):
        if isinstance(step, int):
            try:
                return value[step]
            except IndexError:
                raise LookupError(step) from None
        if hasattr(value, "_fields") and step in value._fields:  # a named tuple
            return getattr(value, step)
        raise LookupError(step)
    if isinstance(step, str) and not isinstance(value, torch.Tensor) and step in _attributes_or_fields(value):
        return getattr(value, step)
    raise LookupError(step)


def _attributes_or_fields(value: Any) -> dict[str, Any]:
    try:
        return _attributes(value)
    except TypeError:  # no __dict__
        return {}


def pick(value: Any, path: Path) -> Any:
    """What ``path`` reaches in ``value`` (:func:`child` step by step)."""
    for step in path:
        value = child(value, step)
    return value


def describe(value: Any) -> str:
    """``a tuple of 2``, ``a DynamicCache``, ``a tensor``: what a value is, for messages."""
    if isinstance(value, torch.Tensor):
        return "a tensor"
    name = type(value).__name__
    article = "an" if name[:1].lower() in "aeiou" else "a"
    return f"{article} {name}" + (f" of {len(value)}" if isinstance(value, (list, tuple, dict)) else "")


__all__ = ["CACHE_MODULE", "child", "describe", "has_tensors", "is_cache", "leaves", "map_paths", "map_tensors",
           "parse_path", "path_text", "pick"]
