"""Writing output files so that an error never leaves half a file and nothing is replaced silently.

Every file is written whole under a temporary name in its directory, then swapped in by a rename.
Several files that belong together (a report and its pictures) are all written before the first is
swapped in, and swapped in in the order given, the page last; if a swap fails, the ones already
swapped in are rolled back.  Without ``force`` a file is placed with ``os.link``, which fails if the
name exists, so two writers cannot both succeed.  Only regular files are written or replaced: a
device, a FIFO or a socket at the target is refused, and a replaced file keeps its mode.

The temporary names are ``.NAME.msdprof-PID-XXXX.tmp`` (the new file), ``.old`` (the file it
replaces, kept until every swap is done) and ``.new`` (a marker: NAME did not exist before).  A
process killed mid-write leaves them behind; the next write into the same directory finds those
of dead processes and rolls their swaps back (``.old`` back in place, a ``.new`` file removed) and
deletes their temporary files, so the directory is as it was before the killed write.
"""

from __future__ import annotations

import errno
import os
import re
import secrets
import shutil
import stat
from pathlib import Path
from typing import Callable, Mapping

from msdnet.options import OptionError

#: The mode of a new file (a replaced file keeps its own).
NEW_FILE_MODE = 0o644
_TEMP = re.compile(r"^\.(?P<name>.+)\.msdprof-(?P<pid>\d+)-[0-9a-f]+\.(?P<kind>tmp|old|new)$")

#: Called with each target just before it is swapped in (tests widen the window of a kill with it).
before_swap: Callable[[Path], None] | None = None


def _special_kind(mode: int) -> str | None:
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return None


def check_writable(path: str | os.PathLike, force: bool = False, option: str = "output") -> Path:
    """``path`` as a :class:`Path` if a file can be written there, else :class:`OptionError`
    naming ``option`` (the command-line option that gave the path).

    An existing file (a symbolic link too, even a dangling one) is only accepted with ``force``
    (it is then replaced atomically); a device, FIFO or socket never.
    """
    if not str(path).strip():
        raise OptionError(option, "", "must name a file")
    path = Path(path)
    parent = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise OptionError(option, str(path), "is a directory; give a file name")
    if not parent.is_dir():
        raise OptionError(option, str(path), f"directory {parent} does not exist")
    if not os.access(parent, os.W_OK):
        raise OptionError(option, str(path), f"directory {parent} is not writable")
    try:
        kind = _special_kind(os.stat(path).st_mode)
    except OSError:  # nothing there, or a dangling link or a loop
        kind = None
    if kind:
        raise OptionError(option, str(path), f"is {kind}, not a regular file; msdprof writes only "
                                             "regular files (leave out -o to print)")
    if os.path.lexists(path) and not force:
        raise OptionError(option, str(path), "already exists; pass --force to replace it")
    return path


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def sweep_stale(directory: str | os.PathLike) -> None:
    """Roll back and remove what writers that died left in ``directory`` (see the module text)."""
    directory = Path(directory)
    try:
        names = os.listdir(directory)
    except OSError:
        return
    entries = [(m, directory / n) for n in names for m in (_TEMP.match(n),) if m]
    dead = [(m, p) for m, p in entries if not _pid_alive(int(m["pid"]))]
    for m, p in sorted(dead, key=lambda e: e[0]["kind"] != "old"):  # backups first, then the rest
        target = directory / m["name"]
        try:
            if p.is_dir() and not p.is_symlink():  # a new directory being filled
                shutil.rmtree(p)
            elif m["kind"] == "old":
                os.replace(p, target)
            elif m["kind"] == "new":
                if os.path.lexists(target):
                    os.unlink(target)
                os.unlink(p)
            else:
                os.unlink(p)
        except OSError:
            pass


def _temp_name(directory: Path, name: str, kind: str, token: str) -> Path:
    return directory / f".{name}.msdprof-{os.getpid()}-{token}.{kind}"


def _error(option: str, target: Path, error: OSError) -> OptionError:
    return OptionError(option, str(target), f"cannot be written: {error.strerror or error}")


def _keep_copy(target: Path, backup: Path) -> None:
    """``backup`` as a second name of ``target`` (a copy where hard links are not supported)."""
    try:
        os.link(target, backup, follow_symlinks=False)
    except OSError as error:
        if error.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK):
            raise
        shutil.copy2(target, backup, follow_symlinks=False)


def _place(temp: Path, target: Path, force: bool) -> None:
    """Swap ``temp`` in as ``target``: a rename with ``force``, else a link that fails if
    ``target`` exists (then ``temp`` is removed)."""
    if force:
        os.replace(temp, target)
        return
    try:
        os.link(temp, target)
    except FileExistsError:
        raise
    except OSError as error:  # a file system without hard links: create exclusively, then rename
        if error.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK):
            raise
        os.close(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, NEW_FILE_MODE))
        os.replace(temp, target)
        return
    os.unlink(temp)


def write_together(
    directory: str | os.PathLike, files: Mapping[str, str | bytes], force: bool = False,
    option: str = "output",
) -> list[Path]:
    """Write ``files`` (``{name: text or bytes}``) into the existing ``directory`` as one unit:
    every target is checked, then every file written under a temporary name, then all are swapped
    in, in the order given (put the page that names the others last).  Any failure rolls back what
    was swapped in and removes the temporary files; errors are :class:`OptionError` naming the
    target and ``option``.  Returns the paths written."""
    directory = Path(directory) if str(directory) else Path(".")
    targets = [check_writable(directory / name, force, option) for name in files]
    sweep_stale(directory)
    token = secrets.token_hex(4)
    staged: list[tuple[Path, Path]] = []
    journal: list[Path] = []  # .old backups and .new markers of the swaps done
    swapped: list[tuple[Path, Path | None]] = []  # (target, its backup or None if it was new)
    try:
        for target, data in zip(targets, files.values()):
            temp = _temp_name(directory, target.name, "tmp", token)
            try:
                with open(temp, "xb") as f:
                    f.write(data.encode("utf-8") if isinstance(data, str) else data)
                old_mode = None
                if force and os.path.lexists(target) and not target.is_symlink():
                    old_mode = stat.S_IMODE(os.stat(target).st_mode)
                os.chmod(temp, NEW_FILE_MODE if old_mode is None else old_mode)
            except OSError as error:
                if os.path.lexists(temp):
                    os.unlink(temp)
                raise _error(option, target, error) from None
            staged.append((temp, target))
        for temp, target in staged:
            try:
                if before_swap is not None:
                    before_swap(target)
                backup = None
                if os.path.lexists(target):
                    backup = _temp_name(directory, target.name, "old", token)
                    _keep_copy(target, backup)
                else:
                    backup_marker = _temp_name(directory, target.name, "new", token)
                    os.close(os.open(backup_marker, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
                    journal.append(backup_marker)
                if backup is not None:
                    journal.append(backup)
                _place(temp, target, force)
            except FileExistsError:
                raise OptionError(option, str(target), "already exists (written by another process "
                                                       "meanwhile); pass --force to replace it") from None
            except OSError as error:
                raise _error(option, target, error) from None
            swapped.append((target, backup))
    except BaseException:
        for target, backup in reversed(swapped):  # roll back
            try:
                if backup is not None:
                    os.replace(backup, target)
                else:
                    os.unlink(target)
            except OSError:
                pass
        for path in [t for t, _ in staged] + journal:
            try:
                if os.path.lexists(path):
                    os.unlink(path)
            except OSError:
                pass
        raise
    for path in journal:  # every swap done: the backups and markers go
        try:
            os.unlink(path)
        except OSError:
            pass
    return targets


def write_atomic(path: str | os.PathLike, data: str | bytes, force: bool = False, option: str = "output") -> Path:
    """Write ``data`` to ``path`` through a temporary file in the same directory and a rename
    (:func:`write_together` with one file); errors name ``option``."""
    path = check_writable(path, force, option)
    return write_together(path.parent, {path.name: data}, force, option)[0]


def write_directory(
    directory: str | os.PathLike, files: Mapping[str, str | bytes], force: bool = False,
    option: str = "output",
) -> list[Path]:
    """:func:`write_together` into ``directory``; one that does not exist yet is filled under a
    temporary name and renamed into place, so it appears whole (if another process made it
    meanwhile, the files are written into it as into any existing directory)."""
    directory = Path(directory)
    if directory.is_dir():
        return write_together(directory, files, force, option)
    parent = directory.parent if str(directory.parent) else Path(".")
    sweep_stale(parent)
    staging = _temp_name(parent, directory.name, "tmp", secrets.token_hex(4))
    try:
        os.mkdir(staging)
    except OSError as error:
        raise _error(option, directory, error) from None
    try:
        write_together(staging, files, option=option)
        os.chmod(staging, 0o755)
        try:
            os.rename(staging, directory)
        except OSError as error:
            if not directory.is_dir():
                raise _error(option, directory, error) from None
            return write_together(directory, files, force, option)  # made by another process
    finally:
        if staging.is_dir():
            shutil.rmtree(staging, ignore_errors=True)
    return [directory / name for name in files]
