"""Writes stay whole under races, failures and kills (issue 17).

The window between writing and swapping in is widened deterministically with the
``msdprof.files.output.before_swap`` hook instead of relying on timing luck.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys

import pytest

from msdnet.options import OptionError
from msdprof.files import output


def _tree(directory):
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir())}


def test_a_second_writer_without_force_fails_instead_of_replacing_the_first(tmp_path, monkeypatch):
    target = tmp_path / "x.csv"
    # the other writer finishes while this one is between its check and its swap
    monkeypatch.setattr(output, "before_swap", lambda path: path.write_text("first"))
    with pytest.raises(OptionError, match="already exists \\(written by another process meanwhile\\)"):
        output.write_atomic(target, "second")
    assert _tree(tmp_path) == {"x.csv": b"first"}


def test_a_failed_swap_rolls_back_what_was_swapped_in(tmp_path, monkeypatch):
    for name in ("a.svg", "b.svg", "page.md"):
        (tmp_path / name).write_text("old " + name)
    def fail_at_the_page(path):
        if path.name == "page.md":
            raise PermissionError(13, "Permission denied", str(path))
    monkeypatch.setattr(output, "before_swap", fail_at_the_page)
    with pytest.raises(OptionError, match=f"^output {tmp_path}/page.md: cannot be written: Permission denied$"):
        output.write_together(tmp_path, {"a.svg": "new", "b.svg": "new", "page.md": "new"}, force=True)
    assert _tree(tmp_path) == {n: f"old {n}".encode() for n in ("a.svg", "b.svg", "page.md")}


KILL_AT = """
import os, signal, sys
from pathlib import Path
from msdprof.files import output
count = [0]
def kill(path):
    count[0] += 1
    if count[0] == int(sys.argv[2]):
        os.kill(os.getpid(), signal.SIGKILL)
output.before_swap = kill
output.write_together(Path(sys.argv[1]), {"a.svg": "new", "new.svg": "new", "page.md": "new"}, force=True)
"""


@pytest.mark.parametrize("swap", [1, 2, 3])
def test_a_writer_killed_at_any_swap_is_rolled_back_by_the_next_write(tmp_path, swap):
    (tmp_path / "a.svg").write_text("old")
    (tmp_path / "page.md").write_text("old page")
    result = subprocess.run([sys.executable, "-c", KILL_AT, str(tmp_path), str(swap)], timeout=120)
    assert result.returncode == -9
    assert any(".msdprof-" in name for name in os.listdir(tmp_path))  # it died mid-write
    output.write_atomic(tmp_path / "other.txt", "x")  # the next write into the directory
    assert _tree(tmp_path) == {"a.svg": b"old", "other.txt": b"x", "page.md": b"old page"}


def test_a_new_directory_made_meanwhile_by_another_writer_is_written_into(tmp_path, monkeypatch):
    target = tmp_path / "out"
    def other_writer_first(path):
        if not target.exists():
            target.mkdir()
            (target / "a.md").write_text("other")
    monkeypatch.setattr(output, "before_swap", other_writer_first)
    output.write_directory(target, {"a.md": "mine"}, force=True)
    assert _tree(target) == {"a.md": b"mine"}
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_a_replaced_file_keeps_its_mode(tmp_path):
    target = tmp_path / "x.csv"
    target.write_text("old")
    target.chmod(0o444)
    output.write_atomic(target, "new", force=True)
    assert (target.read_text(), stat.S_IMODE(target.stat().st_mode)) == ("new", 0o444)


def test_a_fifo_is_never_replaced_even_with_force(tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(OptionError, match="is a FIFO, not a regular file"):
        output.write_atomic(fifo, "x", force=True)
    assert stat.S_ISFIFO(fifo.lstat().st_mode)


@pytest.mark.parametrize("kind", ["dangling", "loop"])
def test_a_symbolic_link_is_replaced_only_with_force(tmp_path, kind):
    link = tmp_path / "x.csv"
    link.symlink_to(tmp_path / ("nowhere" if kind == "dangling" else "x.csv"))
    with pytest.raises(OptionError, match="already exists; pass --force"):
        output.write_atomic(link, "x")
    assert link.is_symlink()


def test_an_empty_output_name_is_refused():
    with pytest.raises(OptionError, match="^output '': must name a file$"):
        output.check_writable("")
