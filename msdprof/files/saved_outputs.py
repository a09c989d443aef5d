"""Per-exit softmax outputs saved by the authors' code: reading, checking, writing, and a synthetic
sample.

The authors' ``adaptive_inference.py`` saves ``(val_pred, val_target, test_pred, test_target)`` with
``torch.save``: ``*_pred`` float tensors ``[exits, samples, classes]`` of softmax probabilities, one
row per exit, and ``*_target`` the classes, ``[samples]`` (their code stores them as float tensors
of whole numbers).  :func:`load_outputs` reads that tuple from a ``.pt`` file (``torch.load`` with
``weights_only=True``: no code in the file is run) or the same four arrays, by name, from an
``.npz`` file, and refuses anything else with one :class:`~msdnet.options.OptionError` naming the file
and what is wrong.
"""

from __future__ import annotations

import io
import math
import os
import stat
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Callable, Mapping, NoReturn

import numpy as np
import torch

from msdnet.options import OptionError

from ..core.units import MAX_BYTES, bytes_text
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


#: The most numbers one split's predictions may hold: 10 exits x 50,000 images (ImageNet's whole
#: validation set) x 1,000 classes = 5*10^8, 2 GB in float32.  Checked on the declared shapes (the
#: ``.npy`` headers of an ``.npz``; the tensor shapes of a ``.pt``, read memory-mapped) before any
#: value is read.
MAX_PRED_ELEMENTS = 500_000_000
#: The largest file read at all: both splits at the limit in float64, with their targets.
MAX_FILE_BYTES = 2 * MAX_PRED_ELEMENTS * 8 + 2**30

#: The tensor types a file may hold (others -- quantized, bit fields, complex -- are refused).
_FLOATS = (torch.float16, torch.bfloat16, torch.float32, torch.float64)
_INTEGERS = (torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64, torch.uint16,
             torch.uint32, torch.uint64)


def _shape(t: torch.Tensor | tuple[int, ...]) -> str:
    return "[" + ", ".join(str(d) for d in (t.shape if isinstance(t, torch.Tensor) else t)) + "]"


def _dtype_name(dtype: Any) -> str:
    return str(dtype).removeprefix("torch.")


def _native(name: str, value: np.ndarray, fail: Fail) -> np.ndarray:
    """``value`` in a dtype torch reads: native byte order, long doubles as float64, unsigned
    integers wider than 8 bits as int64."""
    if value.dtype.kind not in "biuf":
        fail(f"{name} has dtype {value.dtype}: must hold numbers")
    dtype = value.dtype.newbyteorder("=")
    if dtype.kind == "f" and dtype.itemsize > 8:  # np.longdouble
        dtype = np.dtype(np.float64)
    if dtype.kind == "u" and dtype.itemsize > 1:
        if value.size and int(value.max()) > np.iinfo(np.int64).max:
            fail(f"{name} holds {int(value.max())}: must hold class numbers")
        dtype = np.dtype(np.int64)
    return np.ascontiguousarray(value.astype(dtype, copy=False))


def _tensor(name: str, value: Any, fail: Fail) -> torch.Tensor:
    if isinstance(value, np.ndarray):
        value = torch.from_numpy(_native(name, value, fail))
    if not isinstance(value, torch.Tensor):
        fail(f"{name} is a {type(value).__name__}: must be a tensor")
    if value.is_nested:
        fail(f"{name} is a nested tensor: must be a dense real tensor")
    if value.layout != torch.strided or value.dtype not in _FLOATS + _INTEGERS + (torch.bool,):
        fail(f"{name} must be a dense real tensor, not {value.layout} {_dtype_name(value.dtype)}")
    if value.device.type == "meta":
        fail(f"{name} is a meta tensor: it holds no values")
    return value.detach().cpu()


def check_layout(
    shapes: Mapping[str, tuple[int, ...]], floating: Mapping[str, bool], fail: Fail,
    exits: int | None = None, kinds: Mapping[str, str] | None = None,
) -> None:
    """Check the four arrays' shapes against each other, against ``exits`` and against
    :data:`MAX_PRED_ELEMENTS`, and that the predictions are floats (``floating``), before any value
    is read; ``fail`` otherwise."""
    for name in ("val_pred", "test_pred"):
        shape = shapes[name]
        if len(shape) != 3:
            fail(f"{name} has shape {_shape(shape)}: must be [exits, samples, classes]")
        if not floating[name]:
            fail(f"{name} has dtype {kinds[name] if kinds else 'integer'}: must be float softmax "
                 "probabilities")
        if 0 in shape:
            fail(f"{name} has shape {_shape(shape)}: needs at least one exit, sample and class")
        if math.prod(shape) > MAX_PRED_ELEMENTS:
            fail(f"{name} has shape {_shape(shape)}, {math.prod(shape):,} numbers: at most "
                 f"{MAX_PRED_ELEMENTS:,} (10 exits x 50,000 images x 1,000 classes)")
    val, test = shapes["val_pred"], shapes["test_pred"]
    if val[0] != test[0]:
        fail(f"val_pred has {val[0]} exits but test_pred {test[0]}")
    if exits is not None and val[0] != exits:
        fail(f"holds {val[0]} exits; the network has nBlocks {exits}")
    if val[2] != test[2]:
        fail(f"val_pred has {val[2]} classes but test_pred {test[2]}")
    for name, pred_name in (("val_target", "val_pred"), ("test_target", "test_pred")):
        shape, samples = shapes[name], shapes[pred_name][1]
        if len(shape) != 1:
            fail(f"{name} has shape {_shape(shape)}: must be [samples]")
        if shape[0] != samples:
            fail(f"{name} has {shape[0]} entries but {pred_name} has {samples} samples")


def _pred(name: str, t: torch.Tensor, fail: Fail) -> torch.Tensor:
    t = t.to(torch.float32, copy=True)  # never a view of a memory-mapped file
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
    if t.dtype == torch.bool:
        fail(f"{name} has dtype bool: must hold class numbers")
    classes = pred.shape[2]
    if t.dtype == torch.uint64:  # torch compares uint64 with nothing: read it as int64
        if bool((t.view(torch.int64) < 0).any()):
            fail(f"{name} holds a number of 2^63 or more, outside 0..{classes - 1} (the {classes} "
                 f"classes of {pred_name})")
        t = t.view(torch.int64)
    elif t.dtype in (torch.uint16, torch.uint32):
        t = t.to(torch.int64)
    if t.is_floating_point():
        t = t.to(torch.float64)
        if not bool(torch.isfinite(t).all()) or not bool((t == t.floor()).all()):
            bad = t[~torch.isfinite(t) | (t != t.floor())][0].item()
            fail(f"{name} holds {bad:g}: must hold whole class numbers")
    out = (t < 0) | (t >= classes)
    if bool(out.any()):
        fail(f"{name} holds {t[out][0].item():g}, outside 0..{classes - 1} (the {classes} classes "
             f"of {pred_name})")
    return t.to(torch.int64, copy=True)


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
    check_layout({n: tuple(v.shape) for n, v in t.items()},
                 {n: v.is_floating_point() for n, v in t.items()}, fail, exits,
                 {n: _dtype_name(v.dtype) for n, v in t.items()})
    check_memory(fail, {n: (tuple(v.shape), v.element_size()) for n, v in t.items()})
    val_pred, test_pred = _pred("val_pred", t["val_pred"], fail), _pred("test_pred", t["test_pred"], fail)
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


def npz_headers(file: BinaryIO, fail: Fail) -> dict[str, tuple[tuple[int, ...], np.dtype, int]]:
    """Per array of an ``.npz``, by name: its shape and dtype as its ``.npy`` header declares
    them and the bytes the archive stores for it -- read without reading or inflating any data
    (``fail`` on a damaged archive, or an array that is not of numbers).  ``file`` is left at 0."""
    try:
        archive = zipfile.ZipFile(file)
    except (zipfile.BadZipFile, OSError, ValueError) as error:
        fail(f"cannot be read as .npz: {_first_line(error)}")
    headers = {}
    with archive:
        for info in archive.infolist():
            if not info.filename.endswith(".npy"):
                continue
            name = Path(info.filename).stem
            try:
                with archive.open(info) as member:
                    version = np.lib.format.read_magic(member)
                    read = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                            else np.lib.format.read_array_header_2_0)
                    shape, _, dtype = read(member)
            except Exception as error:  # a damaged member or header
                fail(f"cannot be read as .npz: {name}: {_first_line(error)}")
            if dtype.kind not in "biuf" or dtype.hasobject:
                fail(f"{name} has dtype {dtype}: must hold numbers")
            headers[name] = (tuple(shape), dtype, info.file_size)
    file.seek(0)
    return headers


def _npz_layout(file: BinaryIO, fail: Fail, exits: int | None) -> None:
    """Check the ``.npy`` header of each of the four arrays of an ``.npz`` (shape, dtype, declared
    size) with :func:`check_layout`, and the memory reading them takes, before any data is read
    or inflated."""
    headers = npz_headers(file, fail)
    missing = [n for n in NAMES if n not in headers]
    if missing:
        fail(f"has no array named {', '.join(missing)}; found " + (", ".join(headers) or "none"))
    shapes = {n: headers[n][0] for n in NAMES}
    check_layout(shapes, {n: headers[n][1].kind == "f" for n in NAMES}, fail, exits,
                 {n: str(headers[n][1]) for n in NAMES})
    for name in NAMES:
        shape, dtype, stored = headers[name]
        if math.prod(shape) * dtype.itemsize > stored:
            fail(f"cannot be read as .npz: {name} declares {_shape(shape)} {dtype}, more "
                 f"data than its {stored:,} bytes")
    check_memory(fail, {n: (headers[n][0], headers[n][1].itemsize) for n in NAMES})


def check_memory(fail: Fail, layout: Mapping[str, tuple[tuple[int, ...], int]]) -> None:
    """``fail`` when reading the four arrays (``{name: (shape, bytes per number)}``, as stored)
    would take more than :data:`~msdprof.core.units.MAX_BYTES`: each as read, plus the float32
    copy of the predictions and the int64 copy of the targets that are analysed (a tensor that
    repeats one value, stride 0, is counted at its full size: its copies are)."""
    needed = sum(math.prod(shape) * (size + (4 if name.endswith("pred") else 8))
                 for name, (shape, size) in layout.items())
    if needed > MAX_BYTES:
        fail(f"would take about {bytes_text(needed)} of memory to read and analyse: at most "
             f"{bytes_text(MAX_BYTES)} (see the limits in docs/errors.md)")


def _read(path: Path, file: BinaryIO, fail: Fail, exits: int | None) -> Mapping[str, Any]:
    head = file.read(4)  # torch.save writes a zip (or a pickle); .npz is a zip
    file.seek(0)
    if not head.startswith((b"PK\x03\x04", b"\x80")):
        fail("is neither a torch .pt file (a zip or pickle archive) nor an .npz archive: expected "
             "the authors' (val_pred, val_target, test_pred, test_target) saved with torch.save, "
             "or those four arrays by name in an .npz")
    if path.suffix.lower() == NPZ_SUFFIX:
        _npz_layout(file, fail, exits)
        try:
            data = np.load(file, allow_pickle=False)
        except Exception as error:  # a corrupt file can fail in many ways
            fail(f"cannot be read as .npz: {_first_line(error)}")
        if not isinstance(data, np.lib.npyio.NpzFile):
            fail("is not an .npz archive of named arrays")
        with data:
            try:
                return {name: data[name] for name in NAMES}
            except Exception as error:  # idem: a damaged member
                fail(f"cannot be read as .npz: {_first_line(error)}")
    # A zip-format .pt (what torch.save writes) is memory-mapped: the tensors' shapes are checked
    # before any of their data is read.  /proc/self/fd names the very file checked above.
    by_fd = f"/proc/self/fd/{file.fileno()}"
    mapped = zipfile.is_zipfile(file)
    file.seek(0)
    try:
        if mapped:
            data = torch.load(by_fd if os.path.exists(by_fd) else path, map_location="cpu",
                              weights_only=True, mmap=True)
        else:
            data = torch.load(file, map_location="cpu", weights_only=True)
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


def _open_regular(path: Path, fail: Fail) -> BinaryIO:
    """``path`` opened for reading if it is a regular file (a FIFO or a device is refused without
    waiting on it: the file is opened non-blocking and checked by its descriptor)."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        fail("does not exist")
    except OSError as error:
        fail(f"cannot be read: {error.strerror or error}")
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        if stat.S_ISDIR(info.st_mode):
            fail("is a directory; give the file the outputs were saved to")
        kind = "a FIFO" if stat.S_ISFIFO(info.st_mode) else "a device" if (
            stat.S_ISCHR(info.st_mode) or stat.S_ISBLK(info.st_mode)) else "a socket"
        fail(f"is {kind}, not a regular file; give the file the outputs were saved to")
    if info.st_size > MAX_FILE_BYTES:
        os.close(fd)
        fail(f"has {info.st_size:,} bytes: at most {MAX_FILE_BYTES:,} (two splits of "
             f"{MAX_PRED_ELEMENTS:,} float64 predictions)")
    os.set_blocking(fd, True)
    return os.fdopen(fd, "rb")


def load_outputs(path: str | os.PathLike, exits: int | None = None) -> SavedOutputs:
    """The saved outputs in ``path`` (``.pt``: the authors' tuple, or a dict with the four names;
    ``.npz``: four arrays by name), checked by :func:`outputs_from`; ``exits`` is the number the
    network has.  Only a regular file is read; its shapes are checked before its data is read.
    The message of every :class:`OptionError` names the file; the readers' warnings are not shown
    (the one-line error says what is wrong)."""
    path = Path(path)
    source = str(path)

    def fail(what: str) -> NoReturn:
        raise OptionError("logits", source, what)

    with _open_regular(path, fail) as file, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return outputs_from(_read(path, file, fail, exits), source, exits)


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
