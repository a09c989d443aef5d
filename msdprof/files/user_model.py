"""The user's own model for ``--model``: a factory in a file or a module, optionally a checkpoint.

``FILE.py:FACTORY`` loads the file as a module (its folder first on ``sys.path`` while it loads,
so that its sibling imports work); ``package.module:FACTORY`` imports the module.  The factory is
called with the keyword arguments of ``--model-kwargs`` (a JSON object) and must return an
``nn.Module``.  ``--checkpoint FILE`` loads a state dict with ``torch.load(weights_only=True)``:
a checkpoint holding it under ``state_dict`` (as the authors' ``main.py`` saves it) and keys
prefixed ``module.`` (saved from ``nn.DataParallel``) are understood.  Counts do not depend on the
weights; the checkpoint is loaded so that the model counted is the model the user has.

Every failure is an :class:`~msdnet.options.OptionError` naming the file, the factory and, for an
exception the user's code raised, its type and first line (``--debug`` shows the traceback).
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import sys
from pathlib import Path
from typing import Any, Callable

from msdnet.options import OptionError

FORMS = "FILE.py:FACTORY or package.module:FACTORY"


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return f"{type(error).__name__}: {text.splitlines()[0]}" if text else type(error).__name__


def load_factory(spec: str) -> Callable[..., Any]:
    """The factory ``spec`` names (see the module docstring)."""
    where, sep, name = spec.rpartition(":")
    if not sep or not where or not name.isidentifier():
        raise OptionError("model", spec, f"must be {FORMS}")
    if where.endswith(".py"):
        path = Path(where)
        if not path.is_file():
            raise OptionError("model", spec, f"no file {where}")
        module_name = f"msdprof_user_model_{abs(hash(str(path.resolve())))}"
        loader_spec = importlib.util.spec_from_file_location(module_name, path)
        module = importlib.util.module_from_spec(loader_spec)  # type: ignore[arg-type]
        sys.path.insert(0, str(path.resolve().parent))
        try:
            loader_spec.loader.exec_module(module)  # type: ignore[union-attr]
        except Exception as error:
            raise OptionError("model", spec, f"{where} failed to load: {_first_line(error)}") from error
        finally:
            sys.path.remove(str(path.resolve().parent))
    else:
        try:
            module = importlib.import_module(where)
        except ModuleNotFoundError as error:
            raise OptionError("model", spec, f"no module {error.name!r} to import (or give FILE.py:FACTORY)") from error
        except Exception as error:
            raise OptionError("model", spec, f"importing {where} failed: {_first_line(error)}") from error
    factory = getattr(module, name, None)
    if not callable(factory):
        defined = sorted(k for k, v in vars(module).items() if callable(v) and not k.startswith("_")
                         and getattr(v, "__module__", None) == module.__name__)
        raise OptionError("model", spec, f"{where} defines no {name}" + (
            f" (it defines: {', '.join(defined)})" if defined else ""))
    return factory


def parse_kwargs(text: str | None) -> dict[str, Any]:
    """The keyword arguments of ``--model-kwargs``: a JSON object."""
    if text is None:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise OptionError("model-kwargs", text, f"must be a JSON object like '{{\"width\": 8}}' ({error.msg})") from None
    if not isinstance(value, dict):
        raise OptionError("model-kwargs", text, "must be a JSON object like '{\"width\": 8}'")
    return value


def load_checkpoint(model: Any, path: str) -> None:
    """Load the state dict in ``path`` into ``model`` (see the module docstring)."""
    import torch

    file = Path(path)
    if not file.is_file():
        raise OptionError("checkpoint", path, "no such file")
    try:
        state = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as error:
        raise OptionError("checkpoint", path, "is not a state dict torch.load(weights_only=True) can read: "
                          + _first_line(error)) from error
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(k, str) for k in state):
        raise OptionError("checkpoint", path, "holds no state dict (a dict of tensors, or one under 'state_dict')")
    if state and all(k.startswith("module.") for k in state):
        state = {k[len("module."):]: v for k, v in state.items()}
    try:
        result = model.load_state_dict(state, strict=False, assign=any(
            p.is_meta for p in model.parameters()))
    except Exception as error:
        raise OptionError("checkpoint", path, f"does not fit the model: {_first_line(error)}") from error
    if result.missing_keys or result.unexpected_keys:
        parts = []
        if result.missing_keys:
            parts.append(f"{len(result.missing_keys)} missing (first {result.missing_keys[0]})")
        if result.unexpected_keys:
            parts.append(f"{len(result.unexpected_keys)} unexpected (first {result.unexpected_keys[0]})")
        raise OptionError("checkpoint", path, "does not fit the model: keys " + ", ".join(parts))


def load_model(spec: str, kwargs: str | None = None, checkpoint: str | None = None) -> Any:
    """The ``nn.Module`` ``spec``'s factory returns (with ``kwargs``, a JSON object), with the
    ``checkpoint``'s weights when given."""
    from torch import nn

    factory = load_factory(spec)
    arguments = parse_kwargs(kwargs)
    try:
        model = factory(**arguments)
    except Exception as error:
        raise OptionError("model", spec, f"calling {spec.rpartition(':')[2]}() failed: {_first_line(error)}") from error
    if not isinstance(model, nn.Module):
        raise OptionError("model", spec, f"{spec.rpartition(':')[2]}() returned a {type(model).__name__}, not an nn.Module")
    if checkpoint is not None:
        load_checkpoint(model, checkpoint)
    return model


__all__ = ["FORMS", "load_checkpoint", "load_factory", "load_model", "parse_kwargs"]
