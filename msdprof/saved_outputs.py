"""Per-exit softmax outputs saved by the authors' code: reading, checking, writing, and a synthetic
sample.

The authors' ``adaptive_inference.py`` saves ``(val_pred, val_target, test_pred, test_target)`` with
``torch.save``: ``*_pred`` float tensors ``[exits, samples, classes]`` of softmax probabilities, one
row per exit, and ``*_target`` the classes, ``[samples]`` (their code stores them as float tensors
of whole numbers).  :func:`load_outputs` reads that tuple from a ``.pt`` file (``torch.load`` with
``weights_only=True``: no code in the file is run) or the same four arrays, by name, from an
``.npz`` file, and refuses anything else with one :class:`~msdnet.config.OptionError` naming the file
and what is wrong.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, NoReturn

import numpy as np
import torch

from msdnet.config import OptionError

from .output import write_atomic

#: The four things the file holds, in the authors' order.
NAMES = ("val_pred", "val_target", "test_pred", "test_target")
#: ``.npz`` is read with numpy; every other suffix with ``torch.load``.
NPZ_SUFFIX = ".npz"

#: Raises the :class:`OptionError` of one file (or set of tensors): ``fail("what is wrong")``.
Fail = Callable[[str], NoReturn]


@dataclass(frozen=True, eq=False)
class SavedOutputs:
    """Softmax outputs and targets of a validation and a test split, checked.

    ``val_pred``/``test_pred``: float32 ``[exits, samples, classes]``, values in [0, 1];
    ``val_target``/``test_target``: int64 ``[samples]``, classes ``0..classes-1``; ``source``: where
    they came from (a file name), for messages.
    """

    val_pred: torch.Tensor
    val_target: torch.Tensor
    test_pred: torch.Tensor
    test_target: torch.Tensor
    source: str = "outputs"

    @property
    def exits(self) -> int:
        return self.val_pred.shape[0]

    @property
    def classes(self) -> int:
        return self.val_pred.shape[2]

    @property
    def val_samples(self) -> int:
        return self.val_pred.shape[1]

    @property
    def test_samples(self) -> int:
        return self.test_pred.shape[1]


def _shape(t: torch.Tensor) -> str:
    return "[" + ", ".join(str(d) for d in t.shape) + "]"


def _tensor(name: str, value: Any, fail: Fail) -> torch.Tensor:
    if isinstance(value, np.ndarray):
        if value.dtype.kind not in "biuf":
            fail(f"{name} has dtype {value.dtype}: must hold numbers")
        value = torch.from_numpy(np.ascontiguousarray(value))
    if not isinstance(value, torch.Tensor):
        fail(f"{name} is a {type(value).__name__}: must be a tensor")
    if value.layout != torch.strided or value.is_complex():
        fail(f"{name} must be a dense real tensor, not {value.layout} {value.dtype}")
    return value.detach().cpu()


def _pred(name: str, t: torch.Tensor, fail: Fail) -> torch.Tensor:
    if t.dim() != 3:
        fail(f"{name} has shape {_shape(t)}: must be [exits, samples, classes]")
    if not t.is_floating_point():
        fail(f"{name} has dtype {str(t.dtype).removeprefix('torch.')}: must be float softmax "
             "probabilities")
    if 0 in t.shape:
        fail(f"{name} has shape {_shape(t)}: needs at least one exit, sample and class")
    t = t.to(torch.float32)
    if not bool(torch.isfinite(t).all()):
        fail(f"{name} holds NaN or infinite values: must be softmax probabilities")
    low, high = float(t.min()), float(t.max())
    if low < 0 or high > 1:
        fail(f"{name} holds {low if low < 0 else high:g}: must be softmax probabilities in [0, 1] "
             "(apply softmax to the logits first, as the authors' code does)")
    return t


def _target(
    name: str, t: torch.Tensor, pred_name: str, pred: torch.Tensor, fail: Fail
) -> torch.Tensor:
    if t.dim() != 1:
        fail(f"{name} has shape {_shape(t)}: must be [samples]")
    if t.shape[0] != pred.shape[1]:
        fail(f"{name} has {t.shape[0]} entries but {pred_name} has {pred.shape[1]} samples")
    if t.dtype == torch.bool:
        fail(f"{name} has dtype bool: must hold class numbers")
    if t.is_floating_point():
        if not bool(torch.isfinite(t).all()) or not bool((t == t.floor()).all()):
            bad = t[~torch.isfinite(t) | (t != t.floor())][0].item()
            fail(f"{name} holds {bad:g}: must hold whole class numbers")
    classes = pred.shape[2]
    out = (t < 0) | (t >= classes)
    if bool(out.any()):
        fail(f"{name} holds {t[out][0].item():g}, outside 0..{classes - 1} (the {classes} classes "
             f"of {pred_name})")
    return t.to(torch.int64)


def outputs_from(
    parts: Mapping[str, Any], source: str = "outputs", exits: int | None = None
) -> SavedOutputs:
    """:class:`SavedOutputs` from the four tensors (or numpy arrays) named in :data:`NAMES`, checked:
    shapes, dtypes, probabilities in [0, 1], the same exits and classes in both splits (``exits``
    of them when given), one target per sample, targets in range.  :class:`OptionError` on
    ``--logits source`` otherwise."""

    def fail(what: str) -> NoReturn:
        raise OptionError("logits", source, what)

    missing = [n for n in NAMES if n not in parts]
    if missing:
        fail(f"has no {', '.join(missing)}; found " + (", ".join(map(str, parts)) or "nothing"))
    t = {n: _tensor(n, parts[n], fail) for n in NAMES}
    val_pred, test_pred = _pred("val_pred", t["val_pred"], fail), _pred("test_pred", t["test_pred"], fail)
    if val_pred.shape[0] != test_pred.shape[0]:
        fail(f"val_pred has {val_pred.shape[0]} exits but test_pred {test_pred.shape[0]}")
    if exits is not None and val_pred.shape[0] != exits:
        fail(f"holds {val_pred.shape[0]} exits; the network has nBlocks {exits}")
    if val_pred.shape[2] != test_pred.shape[2]:
        fail(f"val_pred has {val_pred.shape[2]} classes but test_pred {test_pred.shape[2]}")
    return SavedOutputs(
        val_pred, _target("val_target", t["val_target"], "val_pred", val_pred, fail),
        test_pred, _target("test_target", t["test_target"], "test_pred", test_pred, fail),
        source,
    )


def _first_line(error: BaseException) -> str:
    """The gist of a reader's error, on one line: its first sentence, at most 160 characters."""
    text = str(error).strip()
    marker = "WeightsUnpickler error:"  # torch's weights_only refusal: the reason follows this
    if marker in text:
        text = text.split(marker, 1)[1].strip()
    lines = text.splitlines()
    line = lines[0].split(". ")[0].rstrip(".") if lines else ""
    if isinstance(error, KeyError) or not line:
        line = f"{type(error).__name__} {line}".strip()
    return line if len(line) <= 160 else line[:157] + "..."


def _read(path: Path, fail: Fail) -> Mapping[str, Any]:
    with open(path, "rb") as f:  # torch.save writes a zip (or a pickle); .npz is a zip
        head = f.read(4)
    if not head.startswith((b"PK\x03\x04", b"\x80")):
        fail("is neither a torch .pt file (a zip or pickle archive) nor an .npz archive: expected "
             "the authors' (val_pred, val_target, test_pred, test_target) saved with torch.save, "
             "or those four arrays by name in an .npz")
    if path.suffix.lower() == NPZ_SUFFIX:
        try:
            data = np.load(path, allow_pickle=False)
        except Exception as error:  # a corrupt file can fail in many ways
            fail(f"cannot be read as .npz: {_first_line(error)}")
        if not isinstance(data, np.lib.npyio.NpzFile):
            fail("is not an .npz archive of named arrays")
        with data:
            missing = [n for n in NAMES if n not in data.files]
            if missing:
                fail(f"has no array named {', '.join(missing)}; found "
                     + (", ".join(data.files) or "none"))
            try:
                return {name: data[name] for name in NAMES}
            except Exception as error:  # idem: a damaged member, an object array
                fail(f"cannot be read as .npz: {_first_line(error)}")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # idem; weights_only refuses anything but tensors and containers
        fail(f"cannot be read by torch.load(weights_only=True), which reads only tensors and "
             f"containers: {_first_line(error)}")
    if isinstance(data, Mapping):
        return data
    if isinstance(data, (tuple, list)) and len(data) == len(NAMES):
        return dict(zip(NAMES, data))
    found = f"a {type(data).__name__}" + (f" of {len(data)}" if isinstance(data, (tuple, list)) else "")
    fail(f"holds {found}: must hold the tuple (val_pred, val_target, test_pred, test_target) the "
         "authors' code saves")


def load_outputs(path: str | os.PathLike, exits: int | None = None) -> SavedOutputs:
    """The saved outputs in ``path`` (``.pt``: the authors' tuple, or a dict with the four names;
    ``.npz``: four arrays by name), checked by :func:`outputs_from`; ``exits`` is the number the
    network has.  The message of every :class:`OptionError` names the file."""
    path = Path(path)
    source = str(path)

    def fail(what: str) -> NoReturn:
        raise OptionError("logits", source, what)

    if not path.exists():
        fail("does not exist")
    if path.is_dir():
        fail("is a directory; give the file the outputs were saved to")
    return outputs_from(_read(path, fail), source, exits)


def save_outputs(path: str | os.PathLike, outputs: SavedOutputs, force: bool = False) -> Path:
    """Write ``outputs`` atomically: ``.npz`` as four named arrays, otherwise the authors' tuple
    with ``torch.save``.  An existing file is replaced only with ``force``."""
    parts = (outputs.val_pred, outputs.val_target, outputs.test_pred, outputs.test_target)
    buffer = io.BytesIO()
    if Path(path).suffix.lower() == NPZ_SUFFIX:
        np.savez(buffer, **{n: t.numpy() for n, t in zip(NAMES, parts)})
    else:
        torch.save(parts, buffer)
    return write_atomic(path, buffer.getvalue(), force=force)


def synthetic_outputs(
    exits: int, classes: int = 10, val_samples: int = 2000, test_samples: int = 2000, seed: int = 0
) -> SavedOutputs:
    """SYNTHETIC softmax outputs, for examples and tests: no network produced them.

    Each image gets a difficulty d ~ U(0, 1); exit k (of ``exits``) is right when
    ``0.55 + 0.4 (k/exits)^0.6 - d`` plus a little noise is positive, and its top probability grows
    with that margin, so later exits are more often right and confidence tracks correctness, as in
    a trained MSDNet.  The same arguments give the same numbers (numpy's PCG64 from ``seed``).
    """

    def split(n: int, rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        target = rng.integers(0, classes, n)
        difficulty = rng.random(n)
        ability = 0.55 + 0.4 * (np.arange(1, exits + 1) / exits) ** 0.6
        margin = ability[:, None] - difficulty[None, :] + 0.08 * rng.standard_normal((exits, n))
        right = margin > 0
        wrong_class = (target[None, :] + rng.integers(1, max(classes, 2), (exits, n))) % classes
        label = np.where(right, target[None, :], wrong_class)
        strength = 1 / (1 + np.exp(-(6 * margin + 0.5 * rng.standard_normal((exits, n)))))
        top = 1 / classes + (1 - 1 / classes) * strength
        pred = np.repeat(((1 - top) / max(classes - 1, 1))[:, :, None], classes, axis=2)
        np.put_along_axis(pred, label[:, :, None], top[:, :, None], axis=2)
        return torch.from_numpy(pred.astype(np.float32)), torch.from_numpy(target.astype(np.int64))

    rng = np.random.default_rng(seed)
    val_pred, val_target = split(val_samples, rng)
    test_pred, test_target = split(test_samples, rng)
    return SavedOutputs(val_pred, val_target, test_pred, test_target, "synthetic")


__all__ = ["NAMES", "SavedOutputs", "load_outputs", "outputs_from", "save_outputs",
           "synthetic_outputs"]
