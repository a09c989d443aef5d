"""Writing output files so that an error or a kill never leaves half a file or a mixed set, and
nothing is replaced silently.

One file (:func:`write_atomic`) is written whole under a temporary name in its directory, then
swapped in by one rename.  Without ``force`` it is placed with ``os.link``, which fails if the name
exists, so two writers cannot both succeed.  Only regular files are written or replaced: a device, a
FIFO or a socket at the target is refused, and a replaced file keeps its mode.

A directory of files that belong together (:func:`write_directory`, ``report --all -o DIR``) is
built whole in a fresh sibling directory -- the new files, plus hard links to everything else
``DIR`` holds (subdirectories as trees of hard links), so nothing the command does not write is
copied, moved or changed -- and swapped with ``DIR`` by one exchanging rename (Linux's
``renameat2(RENAME_EXCHANGE)``).  At every instant ``DIR`` shows the whole old set or the whole new
one.  Where the exchange is not supported, ``DIR`` is renamed aside and the new one renamed in (for
an instant there is no ``DIR``; a kill then leaves the old one aside, named below, and reported);
where hard links are not (another file system inside ``DIR``), the files are swapped in one by one.

Several files written beside other files (:func:`write_together`) are all written before the
first is swapped in, then swapped in in the order given; a failure puts back what was swapped in.
These renames follow each other but are not one.  A page and the pictures it shows
(:func:`write_with_pictures`, ``report -o a.md``) are therefore named so that no rename changes
what a page shows: each picture is named for its content (:func:`stamped_name`), so a new set
takes no name the old page shows; the page is swapped in last and the pictures only the old page
showed are removed after.  At every instant the page shows its own pictures, whole.

The temporary names are ``.NAME.msdprof-PID-XXXX.tmp`` (a new file, or the sibling directory) and
``.old`` (a replaced file, kept until the write is done, or a directory renamed aside); a NAME too
long to fit is cut and ends in ``~`` and 8 hex digits of its hash, so no temporary name is longer
than the file system allows.  A process killed mid-write leaves them behind.  A later write never
restores them over anything: it removes those of dead writers that belong to the names it
writes, once its own write is done (a complete rerun leaves nothing stale), and reports the
others in one line (:class:`WriteWarning`) without touching them.
"""

from __future__ import annotations

import ctypes
import errno
import hashlib
import html
import os
import re
import secrets
import shutil
import stat
import warnings
from pathlib import Path
from typing import Callable, Iterable, Mapping
from urllib.parse import quote

from msdnet.options import OptionError

#: The mode of a new file (a replaced file keeps its own).
NEW_FILE_MODE = 0o644
_TEMP = re.compile(r"^\.(?P<name>.+)\.msdprof-(?P<pid>\d+)-[0-9a-f]+\.(?P<kind>tmp|old|new)$")
#: Bytes a temporary name adds to NAME at most: ``.`` and ``.msdprof-PID-XXXXXXXX.tmp`` (PIDs
#: below 10^10, tokens of 8 hex digits).
_ADDED = 1 + len(".msdprof-") + 10 + 1 + 8 + len(".tmp")

#: Called with a path just before each step of a write that changes what a name shows: each file
#: swapped in, the directory exchanged, the old directory removed (tests kill the writer there).
before_swap: Callable[[Path], None] | None = None


class WriteWarning(UserWarning):
    """What a write reports and leaves alone: the temporary files or directories a killed msdprof
    write left; a directory whose files could only be swapped in one by one."""


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
    size, limit = len(os.fsencode(path.name)), name_max(parent)
    if size > limit:
        raise OptionError(option, str(path), f"its name is {size} bytes, more than the {limit} the "
                                             "file system allows; give a shorter name")
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


# --- temporary names and what dead writers left ------------------------------------------------


def name_max(directory: Path) -> int:
    """The longest file name ``directory``'s file system allows, in bytes (255 when it does not say)."""
    try:
        return os.pathconf(directory, "PC_NAME_MAX")
    except (OSError, ValueError):
        return 255


def _digest(name: str) -> str:
    return hashlib.sha256(name.encode("utf-8", "surrogateescape")).hexdigest()[:8]


def cut_name(name: str, room: int) -> str:
    """``name`` whole when it fits in ``room`` bytes, else cut (at a character boundary) and ended
    with ``~`` and 8 hex digits of its SHA-256: ``room`` bytes in all, the same every time, and
    another for any other ``name``."""
    if len(name.encode("utf-8", "surrogateescape")) <= room:
        return name
    cut = name.encode("utf-8", "surrogateescape")[:max(room - 9, 1)].decode("utf-8", "ignore")
    return f"{cut}~{_digest(name)}"


def _stem(directory: Path, name: str) -> str:
    """``name`` as it appears in a temporary name in ``directory`` (:func:`cut_name`)."""
    return cut_name(name, name_max(directory) - _ADDED)


def _temp_name(directory: Path, name: str, kind: str, token: str) -> Path:
    return directory / f".{_stem(directory, name)}.msdprof-{os.getpid()}-{token}.{kind}"


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):  # someone else's live process; or not a PID at all
        return True
    return True


def _leftovers(directory: Path) -> list[tuple[str, Path]]:
    """``(the NAME they stand for, path)`` of every temporary file or directory in ``directory``
    that a dead msdprof writer left."""
    try:
        names = sorted(os.listdir(directory))
    except OSError:
        return []
    return [(m["name"], directory / n) for n in names for m in (_TEMP.match(n),)
            if m and not _pid_alive(int(m["pid"]))]


def _report(paths: Iterable[Path]) -> None:
    """One :class:`WriteWarning` line per directory naming the leftovers in it."""
    by_directory: dict[Path, list[str]] = {}
    for path in paths:
        by_directory.setdefault(path.parent, []).append(path.name)
    for directory, names in sorted(by_directory.items()):
        shown = ", ".join(sorted(names)[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
        warnings.warn(WriteWarning(
            f"{directory}: left as {'it is' if len(names) == 1 else 'they are'} {shown}: what a "
            "killed msdprof write left (files it replaced or was writing); delete when not needed"
        ), stacklevel=3)


def _only_copies_of(tree: Path, names: Iterable[str]) -> bool:
    """Whether removing ``tree`` (a dead writer's sibling directory) loses nothing: every file in
    it is, at its top, one of ``names`` or a temporary file of one, or has another name (a hard
    link) elsewhere."""
    names = set(names)
    stems = {_stem(tree, n) for n in names}
    for root, dirs, files in os.walk(tree):
        for name in files + [d for d in dirs if os.path.islink(os.path.join(root, d))]:
            path = os.path.join(root, name)
            temp = _TEMP.match(name)
            if root == str(tree) and (name in names or temp and temp["name"] in stems):
                continue
            try:
                info = os.lstat(path)
            except OSError:
                return False
            if not stat.S_ISLNK(info.st_mode) and info.st_nlink < 2:
                return False
    return True


def _tidy(directory: Path, names: Iterable[str], found: list[tuple[str, Path]],
          contents: Iterable[str] = ()) -> None:
    """Remove ``found`` leftovers of dead writers that stand for one of ``names`` (files, and
    sibling directories holding nothing but copies, see :func:`_only_copies_of` with ``contents``),
    report the rest."""
    mine = {_stem(directory, n) for n in names}
    kept = []
    for stem, path in found:
        try:
            if stem not in mine:
                kept.append(path)
            elif path.is_dir() and not path.is_symlink():
                if path.name.endswith(".tmp") and _only_copies_of(path, contents):
                    shutil.rmtree(path)
                else:
                    kept.append(path)  # an old directory set aside, or holding a file's only copy
            else:
                os.unlink(path)
        except OSError:
            kept.append(path)
    _report(kept)


# --- one file, or files beside others ---------------------------------------------------------


def _error(option: str, target: Path, error: OSError) -> OptionError:
    return OptionError(option, str(target), f"cannot be written: {error.strerror or error}")


def _hard_links_unsupported(error: OSError) -> bool:
    return error.errno in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK, errno.EXDEV)


def _keep_copy(target: Path, backup: Path) -> None:
    """``backup`` as a second name of ``target`` (a copy where hard links are not supported)."""
    try:
        os.link(target, backup, follow_symlinks=False)
    except OSError as error:
        if not _hard_links_unsupported(error):
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
        if not _hard_links_unsupported(error):
            raise
        os.close(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, NEW_FILE_MODE))
        os.replace(temp, target)
        return
    os.unlink(temp)


def _remove(paths: Iterable[Path]) -> None:
    for path in paths:
        try:
            if os.path.lexists(path):
                os.unlink(path)
        except OSError:
            pass


def write_together(
    directory: str | os.PathLike, files: Mapping[str, str | bytes], force: bool = False,
    option: str = "output", remove: Iterable[str] = (),
) -> list[Path]:
    """Write ``files`` (``{name: text or bytes}``) into the existing ``directory``, beside what
    else it holds: every target is checked, then every file written under a temporary name, then
    all are swapped in, in the order given (put the page that names the others last).  Any failure
    puts back what was swapped in and removes the temporary files; errors are
    :class:`OptionError` naming the target and ``option``.  ``remove``: names in ``directory``
    removed once every file is in place (what the new files stand in for under other names: the
    pictures only a replaced page showed).  Leftovers of dead writers are removed when they stand
    for one of ``files``, else reported (:class:`WriteWarning`).  Returns the paths written."""
    directory = Path(directory) if str(directory) else Path(".")
    targets = [check_writable(directory / name, force, option) for name in files]
    found = _leftovers(directory)
    token = secrets.token_hex(4)
    staged: list[tuple[Path, Path]] = []
    swapped: list[tuple[Path, Path | None]] = []  # (target, its backup or None if it was new)
    try:
        for target, data in zip(targets, files.values()):
            temp = _temp_name(directory, target.name, "tmp", token)
            staged.append((temp, target))
            try:
                with open(temp, "xb") as f:
                    f.write(data.encode("utf-8") if isinstance(data, str) else data)
                old_mode = None
                if force and os.path.lexists(target) and not target.is_symlink():
                    old_mode = stat.S_IMODE(os.stat(target).st_mode)
                os.chmod(temp, NEW_FILE_MODE if old_mode is None else old_mode)
            except OSError as error:
                raise _error(option, target, error) from None
        for temp, target in staged:
            backup = None
            try:
                if before_swap is not None:
                    before_swap(target)
                if os.path.lexists(target):
                    backup = _temp_name(directory, target.name, "old", token)
                    _keep_copy(target, backup)
                _place(temp, target, force)
            except FileExistsError:
                _remove([backup] if backup else [])
                raise OptionError(option, str(target), "already exists (written by another process "
                                                       "meanwhile); pass --force to replace it") from None
            except OSError as error:
                _remove([backup] if backup else [])
                raise _error(option, target, error) from None
            except BaseException:
                _remove([backup] if backup else [])
                raise
            swapped.append((target, backup))
    except BaseException:
        for target, backup in reversed(swapped):  # put back what was swapped in
            try:
                if backup is not None:
                    os.replace(backup, target)
                else:
                    os.unlink(target)
            except OSError:
                pass
        _remove(t for t, _ in staged)
        _report(p for _, p in found)
        raise
    _remove(b for _, b in swapped if b is not None)
    for name in remove:
        if name not in files:
            if before_swap is not None:
                before_swap(directory / name)
            _remove([directory / name])
    _tidy(directory, files, found)
    return targets


def write_atomic(path: str | os.PathLike, data: str | bytes, force: bool = False, option: str = "output") -> Path:
    """Write ``data`` to ``path`` through a temporary file in the same directory and one rename
    (:func:`write_together` with one file); errors name ``option``."""
    path = check_writable(path, force, option)
    return write_together(path.parent, {path.name: data}, force, option)[0]


# --- a page and its pictures, beside other files ------------------------------------------------


def stamped_name(name: str, data: bytes) -> str:
    """``name`` with 8 hex digits of ``data``'s SHA-256 before its suffix: ``r-cost-1a2b3c4d.svg``."""
    path = Path(name)
    return f"{path.stem}-{hashlib.sha256(data).hexdigest()[:8]}{path.suffix}"


def _stamped(directory: Path, name: str) -> bool:
    """Whether ``name`` in ``directory`` is a regular file named by :func:`stamped_name` for
    what it holds (never a name someone else chose: its content must hash to its stamp)."""
    found = re.fullmatch(r".+-(?P<stamp>[0-9a-f]{8})(?:\.[^.]*)?", name)
    path = directory / name
    try:
        return bool(found) and path.is_file() and not path.is_symlink() and \
            hashlib.sha256(path.read_bytes()).hexdigest()[:8] == found["stamp"]
    except OSError:
        return False


def _holds(path: Path, data: bytes) -> bool:
    """Whether ``path`` is a regular file holding exactly ``data``."""
    try:
        return path.is_file() and not path.is_symlink() and path.stat().st_size == len(data) and \
            path.read_bytes() == data
    except OSError:
        return False


def _shows(page: str, name: str) -> bool:
    """Whether the text of ``page`` names the file ``name`` (as written, HTML-escaped or
    percent-encoded), not as part of a longer name."""
    return any(re.search(rf"(?<![\w.%-]){re.escape(form)}(?![\w.%-])", page)
               for form in {name, html.escape(name), quote(name)})


def _of_stem(stem: str, name: str) -> bool:
    """Whether the file ``name`` is named as a picture of the page ``STEM.md`` is: ``STEM-...``,
    or, ``STEM`` cut to fit (:func:`cut_name`), ``CUT~XXXXXXXX-...``."""
    if name.startswith(stem + "-"):
        return True
    at = name.find(f"~{_digest(stem)}-")
    return at > 0 and stem.startswith(name[:at])


def stale_files(path: Path, keep: Iterable[str] = ()) -> list[str]:
    """What the page ``path`` shows that only it shows and that a rewrite keeping ``keep`` leaves
    unshown: files in its directory named ``STEM-...-XXXXXXXX.EXT`` (or with ``STEM`` cut,
    :func:`cut_name`) by :func:`stamped_name` for their content, named in the page, not in
    ``keep``, not named in another page of the same stem (``STEM.md``, ``STEM.html``, any letter
    case)."""
    directory = path.parent if str(path.parent) else Path(".")
    pages = (".md", ".html")
    try:
        listed = os.listdir(directory)
        texts = {n: (directory / n).read_text("utf-8", "replace") for n in listed
                 if Path(n).stem == path.stem and Path(n).suffix.lower() in pages and (directory / n).is_file()}
    except OSError:
        return []
    shown = texts.pop(path.name, "")
    keep = set(keep)
    return sorted(n for n in listed if _of_stem(path.stem, n) and n not in keep and _shows(shown, n)
                  and not any(_shows(other, n) for other in texts.values()) and _stamped(directory, n))


def write_with_pictures(path: str | os.PathLike, page: str | bytes, pictures: Mapping[str, bytes],
                        force: bool = False, option: str = "output") -> list[Path]:
    """Write the page ``path`` and the files it shows (``pictures``, named by
    :func:`stamped_name`, so a new set never takes the name of a file an older page shows) into
    its directory, beside what else it holds, so that the page shows its own set whole at every
    instant, a kill included: the pictures are written (one already there byte for byte is kept
    as it is), then the page swapped in last (:func:`write_together`), then the files only the
    page it replaced showed are removed (:func:`stale_files`).  A kill before the page is in
    place leaves the old page with its pictures, and the new pictures unshown beside them (a
    rerun with the same content takes them as they are); nothing else in the directory is ever
    touched.  Returns the paths of the set, the page last."""
    path = check_writable(path, force, option)
    directory = path.parent
    stale = stale_files(path, pictures)
    fresh = {name: data for name, data in sorted(pictures.items()) if not _holds(directory / name, data)}
    write_together(directory, {**fresh, path.name: page}, force, option, remove=stale)
    return [directory / name for name in sorted(pictures)] + [path]


# --- a directory swapped whole ----------------------------------------------------------------


def _exchange(a: Path, b: Path) -> bool:
    """Swap the names ``a`` and ``b`` in one step; ``False`` where the system cannot."""
    rename = getattr(_libc(), "renameat2", None)
    if rename is None:
        return False
    at_cwd, exchange = -100, 2  # AT_FDCWD, RENAME_EXCHANGE
    if rename(at_cwd, os.fsencode(a), at_cwd, os.fsencode(b), exchange) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP, errno.EOPNOTSUPP):
        return False
    raise OSError(code, os.strerror(code), str(b))


def _libc() -> ctypes.CDLL | None:
    try:
        return ctypes.CDLL(None, use_errno=True)
    except OSError:
        return None


def _carry(directory: Path, staging: Path, skip: set[str]) -> dict[str, int]:
    """Hard-link into ``staging`` everything ``directory`` holds but ``skip`` (subdirectories as
    trees of hard links); returns the inode of every name ``directory`` held."""
    held = {}
    for entry in os.scandir(directory):
        try:
            held[entry.name] = entry.inode()
            if entry.name in skip:
                continue
            if entry.is_dir(follow_symlinks=False):
                shutil.copytree(entry.path, staging / entry.name, symlinks=True, copy_function=os.link)
            else:
                os.link(entry.path, staging / entry.name, follow_symlinks=False)
        except FileNotFoundError:  # removed meanwhile
            held.pop(entry.name, None)
    return held


def _settle(old: Path, directory: Path, held: dict[str, int], skip: set[str]) -> None:
    """After the exchange, bring into ``directory`` what reached the old one after it was
    carried (``held``: inode per name then): names that appeared, and files replaced meanwhile;
    never one of ``skip`` (the names written)."""
    for entry in os.scandir(old):
        then = held.get(entry.name)
        if entry.name in skip or then == entry.inode() or (then is not None and entry.is_dir(follow_symlinks=False)):
            continue
        target = directory / entry.name
        if then is None and os.path.lexists(target):
            continue
        os.replace(entry.path, target)


def _swap_directory(directory: Path, files: Mapping[str, str | bytes], force: bool, option: str) -> list[Path] | str:
    """:func:`write_directory` into the existing ``directory`` by one exchange; or why it cannot
    be (the caller then writes file by file): its parent is not writable, or what it holds cannot
    be hard-linked."""
    parent = directory.parent if str(directory.parent) else Path(".")
    for name in files:
        check_writable(directory / name, force, option)
    found = _leftovers(parent)
    inside = _leftovers(directory)
    mine = {_stem(directory, n) for n in files}
    dropped = {p.name for stem, p in inside if stem in mine}  # stale: not carried into the new set
    token = secrets.token_hex(4)
    staging = _temp_name(parent, directory.name, "tmp", token)
    try:
        os.mkdir(staging)
    except OSError as error:
        if error.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
            return f"its parent directory {parent} is not writable"
        raise _error(option, directory, error) from None
    old = None  # where the old directory is once the new one is in place
    try:
        write_together(staging, files, option=option)
        try:
            held = _carry(directory, staging, set(files) | dropped)
        except OSError as error:
            if not _hard_links_unsupported(error) and not isinstance(error, shutil.Error):
                raise
            return "what it holds cannot be hard-linked (another file system inside it?)"
        os.chmod(staging, stat.S_IMODE(os.stat(directory).st_mode))
        if before_swap is not None:
            before_swap(directory)
        if _exchange(staging, directory):
            old = staging
        else:  # for an instant there is no directory
            old = _temp_name(parent, directory.name, "old", token)
            os.rename(directory, old)
            os.rename(staging, directory)
        raced = [n for n in files if not force and os.path.lexists(old / n)]
        if raced:  # another writer put one of them there since the check: put its directory back
            if old == staging:
                _exchange(staging, directory)
            else:
                os.rename(directory, staging)
                os.rename(old, directory)
            old = None
            raise OptionError(option, str(directory / raced[0]), "already exists (written by another "
                                                                 "process meanwhile); pass --force to replace it")
        _settle(old, directory, held, set(files))
        if before_swap is not None:
            before_swap(old)
        shutil.rmtree(old)
    except OSError as error:
        raise _error(option, directory, error) from None
    finally:
        if old is None and staging.is_dir():
            shutil.rmtree(staging, ignore_errors=True)
    _tidy(parent, [directory.name], found, contents=files)
    _report(p for stem, p in inside if stem not in mine)
    return [directory / name for name in files]


def write_directory(
    directory: str | os.PathLike, files: Mapping[str, str | bytes], force: bool = False,
    option: str = "output",
) -> list[Path]:
    """Write ``files`` into ``directory`` as one set: at every instant it holds all the old files
    or all the new ones (see the module text); what else it holds is kept as it is.  One that does
    not exist yet is filled under a temporary name and renamed into place, so it appears whole (if
    another process made it meanwhile, the files are written into it as into any existing
    directory).  Errors are :class:`OptionError` naming a path and ``option``."""
    directory = Path(directory)
    if directory.is_dir():
        real, here = Path(os.path.realpath(directory)), Path.cwd()
        why = ("it is this process's working directory" if real == here or real in here.parents else
               "it is a mount point" if os.path.ismount(real) else None)
        written = why or _swap_directory(real, files, force, option)
        if isinstance(written, str):
            warnings.warn(WriteWarning(
                f"{directory}: its files were swapped in one by one, not as one set: {written}"),
                stacklevel=2)
            written = write_together(directory, files, force, option)
        return [directory / p.name for p in written]
    parent = directory.parent if str(directory.parent) else Path(".")
    found = _leftovers(parent)
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
            return write_directory(directory, files, force, option)  # made by another process
    finally:
        if staging.is_dir():
            shutil.rmtree(staging, ignore_errors=True)
    _tidy(parent, [directory.name], found, contents=files)
    return [directory / name for name in files]
