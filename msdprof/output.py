"""Writing output files so that an error never leaves half a file and nothing is replaced silently."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from msdnet.config import OptionError


def check_writable(path: str | os.PathLike, force: bool = False, option: str = "output") -> Path:
    """``path`` as a :class:`Path` if a file can be written there, else :class:`OptionError`
    naming ``option`` (the command-line option that gave the path).

    An existing file is only accepted with ``force`` (it is then replaced atomically).
    """
    path = Path(path)
    parent = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise OptionError(option, str(path), "is a directory; give a file name")
    if not parent.is_dir():
        raise OptionError(option, str(path), f"directory {parent} does not exist")
    if not os.access(parent, os.W_OK):
        raise OptionError(option, str(path), f"directory {parent} is not writable")
    if path.exists() and not force:
        raise OptionError(option, str(path), "already exists; pass --force to replace it")
    return path


def write_atomic(path: str | os.PathLike, data: str | bytes, force: bool = False, option: str = "output") -> Path:
    """Write ``data`` to ``path`` through a temporary file in the same directory and a rename;
    errors name ``option``."""
    path = check_writable(path, force, option)
    mode = "wb" if isinstance(data, bytes) else "w"
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent or ".")
    except OSError as error:
        raise OptionError(option, str(path), f"cannot be written: {error.strerror or error}") from None
    try:
        with os.fdopen(fd, mode, **({} if mode == "wb" else {"encoding": "utf-8", "newline": ""})) as f:
            f.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path
