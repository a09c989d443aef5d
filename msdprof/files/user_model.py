"""The user's own model for ``--model``: a factory in a file or a module, optionally a checkpoint.

``FILE.py:FACTORY`` loads the file as a module (its folder first on ``sys.path`` while it loads,
so that its sibling imports work); ``package.module:FACTORY`` imports the module.  The factory is
called with the keyword arguments of ``--model-kwargs`` (a JSON object) and must return an
``nn.Module``.  ``--checkpoint FILE`` loads a state dict with ``torch.load(weights_only=True)``:
a checkpoint holding it under ``state_dict`` (as the authors' ``main.py`` saves it) and keys
prefixed ``module.`` (saved from ``nn.DataParallel``) are understood.  Counts do not depend on the
weights; the checkpoint is loaded so that the model counted is the model the user has.

Every failure is an :class:`~msdnet.options.OptionError` naming the file, the factory and, for an
exception the user's code raised, its type and first line (``--debug`` shows the traceback); a
``SystemExit`` or any other ``BaseException`` the user's code raises is one too, naming that code as
the cause; a ``KeyboardInterrupt`` stays one, saying where it came from.

:func:`read_inputs` reads saved example inputs (``--inputs FILE``) without running any code:
``torch.load(weights_only=True)`` or ``numpy.load(allow_pickle=False)``.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import json
import sys
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

from msdnet.options import OptionError

from ..core.units import ANSI, first_line, one_line, shape_text

FORMS = "FILE.py:FACTORY or package.module:FACTORY"


def _first_line(error: BaseException) -> str:
    text = first_line(error)
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


@contextmanager
def users_code(option: str, spec: str, what: str) -> Iterator[None]:
    """Run the user's code (``what``: ``"calling make()"``) inside the block: an exception it raises
    is an :class:`OptionError` naming ``option`` and ``spec``; ``SystemExit`` and any other
    ``BaseException`` too, said to be the user's code's; a ``KeyboardInterrupt`` is raised again
    saying where it came from."""
    try:
        yield
    except OptionError:
        raise
    except KeyboardInterrupt as error:
        raise KeyboardInterrupt(f"while {what} ({spec}, your model's code)") from error
    except Exception as error:
        raise OptionError(option, spec, f"{what} failed: {_first_line(error)}") from error
    except BaseException as error:  # SystemExit, GeneratorExit, the user's own BaseException
        raise OptionError(option, spec, f"{what} raised {_first_line(error)} (your model's code, "
                                        "not msdprof)") from error


def load_factory(spec: str, option: str = "model") -> Callable[..., Any]:
    """The factory ``spec`` names (see the module docstring); any function so named (``--outputs
    FILE.py:FUNCTION``) with ``option`` the option that named it."""
    where, sep, name = spec.rpartition(":")
    if not sep or not where or not name.isidentifier():
        raise OptionError(option, spec, f"must be {FORMS.replace('FACTORY', 'FUNCTION') if option != 'model' else FORMS}")
    if where.endswith(".py"):
        path = Path(where)
        if not path.is_file():
            raise OptionError(option, spec, f"no file {where}")
        module_name = f"msdprof_user_model_{abs(hash(str(path.resolve())))}"
        loader_spec = importlib.util.spec_from_file_location(module_name, path)
        module = importlib.util.module_from_spec(loader_spec)  # type: ignore[arg-type]
        sys.path.insert(0, str(path.resolve().parent))
        try:
            with users_code(option, spec, f"loading {where}"):
                loader_spec.loader.exec_module(module)  # type: ignore[union-attr]
        finally:
            sys.path.remove(str(path.resolve().parent))
    else:
        try:
            with users_code(option, spec, f"importing {where}"):
                try:
                    module = importlib.import_module(where)
                except ModuleNotFoundError as error:
                    raise OptionError(option, spec, f"no module {error.name!r} to import (or give "
                                                    "FILE.py:FACTORY)") from error
        except OptionError:
            raise
    factory = getattr(module, name, None)
    if not callable(factory):
        defined = sorted(k for k, v in vars(module).items() if callable(v) and not k.startswith("_")
                         and getattr(v, "__module__", None) == module.__name__)
        raise OptionError(option, spec, f"{where} defines no {name}" + (
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
    except (ValueError, RecursionError) as error:  # an integer of thousands of digits, deep nesting
        shown = text if len(text) <= 60 else f"{text[:40]}... ({len(text):,} characters)"
        raise OptionError("model-kwargs", shown, "must be a JSON object like '{\"width\": 8}' ("
                          + ("nested too deeply" if isinstance(error, RecursionError) else first_line(error))
                          + ")") from None
    if not isinstance(value, dict):
        raise OptionError("model-kwargs", text, "must be a JSON object like '{\"width\": 8}'")
    return value


@contextmanager
def quietly() -> Iterator[None]:
    """Inside the block no warning is shown: what torch or numpy warn while msdprof reads a file the
    user gave (a pickle protocol ``torch.load`` did not expect, ...) would be a line beside
    msdprof's own, which says what it read or, in one line, why it could not."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def load_checkpoint(model: Any, path: str) -> None:
    """Load the state dict in ``path`` into ``model`` (see the module docstring)."""
    import torch

    file = Path(path)
    if not file.is_file():
        raise OptionError("checkpoint", path, "no such file")
    try:
        with quietly():
            state = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as error:
        raise OptionError("checkpoint", path, "is not a state dict torch.load(weights_only=True) can read: "
                          + load_failure(error)) from error
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(k, str) for k in state):
        raise OptionError("checkpoint", path, "holds no state dict (a dict of tensors, or one under 'state_dict')")
    if state and all(k.startswith("module.") for k in state):
        state = {k[len("module."):]: v for k, v in state.items()}
    own = model.state_dict()
    wrong = [k for k, v in state.items() if k in own and isinstance(v, torch.Tensor) and v.shape != own[k].shape]
    if wrong:
        first = wrong[0]
        more = f" (and {len(wrong) - 1} more tensors of another size)" if len(wrong) > 1 else ""
        raise OptionError("checkpoint", path, f"does not fit the model: {first} is "
                          f"{shape_text(list(state[first].shape)) or 'a scalar'} in the checkpoint, "
                          f"{shape_text(list(own[first].shape)) or 'a scalar'} in the model{more}")
    try:
        result = model.load_state_dict(state, strict=False, assign=any(
            p.is_meta for p in model.parameters()))
    except Exception as error:
        raise OptionError("checkpoint", path, f"does not fit the model: {_one_line_error(error)}") from error
    if result.missing_keys or result.unexpected_keys:
        parts = []
        if result.missing_keys:
            parts.append(f"{len(result.missing_keys)} missing (first {result.missing_keys[0]})")
        if result.unexpected_keys:
            parts.append(f"{len(result.unexpected_keys)} unexpected (first {result.unexpected_keys[0]})")
        raise OptionError("checkpoint", path, "does not fit the model: keys " + ", ".join(parts))


def _one_line_error(error: BaseException) -> str:
    text = one_line(error)
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def load_failure(error: BaseException, save: str = "the state dict alone: torch.save(model.state_dict(), FILE)") -> str:
    """Why ``torch.load(weights_only=True)`` refused a file, on one line: for a pickled payload, the
    unpickler's own reason (``Unsupported global: GLOBAL os.system ...``), not the advice around it,
    and what to ``save`` instead."""
    text = ANSI.sub("", str(error))
    marker = "WeightsUnpickler error:"  # the reason follows it, on its line or the next
    if marker in text:
        reason = next((line.strip() for line in text.split(marker, 1)[1].splitlines() if line.strip()), "")
        return f"it holds pickled objects, not only tensors{f' ({reason})' if reason else ''}; save {save}"
    return _one_line_error(error)


def load_model(spec: str, kwargs: str | None = None, checkpoint: str | None = None) -> Any:
    """The ``nn.Module`` ``spec``'s factory returns (with ``kwargs``, a JSON object), with the
    ``checkpoint``'s weights when given.  A factory refusing the keyword arguments (one missing, one
    it does not take) names ``--model-kwargs``; a TorchScript module is refused (it cannot be
    recorded)."""
    import torch
    from torch import nn

    factory = load_factory(spec)
    arguments = parse_kwargs(kwargs)
    name = spec.rpartition(":")[2]
    try:
        inspect.signature(factory).bind(**arguments)
    except TypeError as error:
        raise OptionError("model-kwargs", kwargs if kwargs is not None else "missing",
                          f"{name}() cannot be called with them: {error} (give its arguments as a JSON "
                          "object: --model-kwargs '{\"width\": 8}')") from None
    except ValueError:  # no signature to read (a builtin): the call will tell
        pass
    with users_code("model", spec, f"calling {name}()"):
        model = factory(**arguments)
    if isinstance(model, (torch.jit.ScriptModule, torch.jit.ScriptFunction)):
        raise OptionError("model", spec, f"{name}() returned a TorchScript module (scripted or traced), "
                                         "which msdprof cannot record: return the eager nn.Module")
    if not isinstance(model, nn.Module):
        raise OptionError("model", spec, f"{name}() returned a {type(model).__name__}, not an nn.Module")
    if checkpoint is not None:
        load_checkpoint(model, checkpoint)
    return model


def model_title(spec: str, built: str) -> str:
    """A short name for titles of the model the factory ``spec`` built, an object of class
    ``built``: the factory's name without its file or module (``SDNResNet`` for
    ``examples/early_exit_models.py:SDNResNet``), and the class where it is another
    (``SDNResNet56 (SDNResNet)``)."""
    name = spec.rpartition(":")[2] or spec
    return name if name == built else f"{name} ({built})"


def read_inputs(path: str) -> Any:
    """The example inputs saved in ``path`` (``--inputs FILE``), as
    :class:`msdprof.core.dataflow.Inputs`: a ``.npz`` (``numpy.load(allow_pickle=False)``) holding one
    array or ``arr_0``, ``arr_1`` ... (``numpy.savez``'s positional names) for positional inputs,
    else arrays by keyword name; any other file is read with ``torch.load(weights_only=True)``: a
    tensor, a tuple or list (positional) or a dict by name (keyword inputs), of tensors or of
    tuples, lists and dicts holding tensors (a cache as ``(key, value)`` per layer); ``True``,
    ``None`` and numbers in them are passed as they are.  Nothing in the file is run."""
    import numpy as np
    import torch

    from ..core.dataflow import INPUTS_FORM, Inputs, as_inputs

    file = Path(path)
    if not file.is_file():
        raise OptionError("inputs", path, "does not exist" if not file.exists() else "is not a file")
    try:
        with quietly():
            if file.suffix.lower() == ".npz":
                _check_npz_bytes(file, path)  # from the .npy headers, before any value is read
                with np.load(file, allow_pickle=False) as data:
                    arrays = {name: torch.from_numpy(np.array(data[name])) for name in data.files}
                positional = sorted(arrays, key=lambda n: int(n[4:])) if all(
                    n.startswith("arr_") and n[4:].isdigit() for n in arrays) else None
                if len(arrays) == 1 or positional:
                    return Inputs(tuple(arrays[n] for n in (positional or arrays)))
                value: Any = arrays
            else:
                value = torch.load(file, map_location="cpu", weights_only=True)
    except OptionError:
        raise
    except Exception as error:  # a corrupt file fails in many ways
        raise OptionError("inputs", path, "cannot be read: " + load_failure(
            error, "the tensors alone: torch.save(inputs, FILE) (a tensor, a tuple or a dict of them)")) from error
    try:
        return as_inputs(value)
    except OptionError:
        what = type(value).__name__ if not isinstance(value, dict) else "a dict of " + ", ".join(
            sorted({type(v).__name__ for v in value.values()})) if value else "an empty " + type(value).__name__
        raise OptionError("inputs", path, f"holds {what}: must hold {INPUTS_FORM}") from None


def _check_npz_bytes(file: Path, path: str) -> None:
    """:class:`OptionError` naming ``--inputs`` when the arrays an ``.npz`` declares, read and as
    float32, would take more than :data:`~msdprof.core.units.MAX_BYTES` (read from its headers)."""
    import math

    from ..core.units import check_bytes
    from .saved_outputs import npz_headers

    def fail(what: str):
        raise OptionError("inputs", path, what)

    with open(file, "rb") as handle:
        headers = npz_headers(handle, fail)
    needed = sum(math.prod(shape) * (dtype.itemsize + 4) for shape, dtype, _ in headers.values())
    shapes = ["x".join(map(str, shape)) or "scalar" for shape, _, _ in headers.values()]
    what = f"its {shapes[0]} array" if len(shapes) == 1 else f"its arrays {', '.join(shapes)}"
    check_bytes("inputs", path, needed, f"{what}, read and as float32")


__all__ = [
    "FORMS", "load_checkpoint", "load_factory", "load_failure", "load_model", "model_title", "parse_kwargs",
    "read_inputs",
    "users_code",
]
