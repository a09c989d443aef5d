"""Writes stay whole under races, failures and kills (issue 17).

The window between writing and swapping in is widened deterministically with the
``msdprof.files.output.before_swap`` hook instead of relying on timing luck.
"""

from __future__ import annotations

import os
import random
import re
import stat
import subprocess
import sys
import time
import warnings
from pathlib import Path

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


WRITER = """
import itertools, os, signal, sys
from pathlib import Path
from msdprof.files import output
mode, where, kill_at = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3])
calls = [0]
def kill(path):
    calls[0] += 1
    if calls[0] == kill_at:
        os.kill(os.getpid(), signal.SIGKILL)
output.before_swap = kill
write = output.write_directory if mode == "directory" else output.write_together
print("started", flush=True)
for generation in itertools.count(1) if kill_at == 0 else [1]:
    write(where, {name: f"new {generation}" for name in sys.argv[4:]}, force=True)
"""
SET = ["a.svg", "new.svg", "page.md"]  # the set one write puts in place, the page last


def _killed(mode, where, kill_at, names=SET):
    """Run a writer of ``names`` into ``where`` in a subprocess, SIGKILLed at its ``kill_at``-th
    step (``before_swap`` call)."""
    result = subprocess.run([sys.executable, "-c", WRITER, mode, str(where), str(kill_at), *names],
                            capture_output=True, timeout=120)
    assert result.returncode == -9, result.stderr.decode()


def _temporary(directory):
    return sorted(n for n in os.listdir(directory) if ".msdprof-" in n)


@pytest.mark.parametrize("swap", [1, 2, 3])
def test_what_a_writer_killed_at_any_swap_left_is_reported_and_left_alone_by_another_write(tmp_path, swap):
    # issue 26: recovery used to roll such leftovers back over files it was not asked to write
    (tmp_path / "a.svg").write_text("old")
    (tmp_path / "page.md").write_text("old page")
    _killed("together", tmp_path, swap)
    before = _tree(tmp_path)
    left = _temporary(tmp_path)
    assert left  # it died mid-write
    with pytest.warns(output.WriteWarning, match=f"^{tmp_path}: left as they are .*killed msdprof write"):
        output.write_atomic(tmp_path / "other.txt", "x")  # another write into the directory
    assert _tree(tmp_path) == {**before, "other.txt": b"x"}


@pytest.mark.parametrize("swap", [1, 2, 3])
def test_a_complete_rerun_after_a_killed_write_leaves_nothing_stale(tmp_path, swap):
    (tmp_path / "a.svg").write_text("old")
    (tmp_path / "page.md").write_text("old page")
    _killed("together", tmp_path, swap)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # every leftover stood for a file the rerun writes: nothing to report
        output.write_together(tmp_path, {name: "new" for name in SET}, force=True)
    assert _tree(tmp_path) == {name: b"new" for name in SET}


def test_a_file_named_like_a_leftover_of_another_is_never_touched(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()  # a PID no longer alive
    lookalike = tmp_path / f".notes.txt.msdprof-{dead}-abcd.old"
    lookalike.write_text("not a backup")
    with pytest.warns(output.WriteWarning, match=f"left as it is .notes.txt.msdprof-{dead}-abcd.old"):
        output.write_atomic(tmp_path / "other.csv", "x")
    assert _tree(tmp_path) == {lookalike.name: b"not a backup", "notes.txt": b"mine", "other.csv": b"x"}


def test_a_stale_backup_is_never_put_back_over_a_file_rewritten_since(tmp_path):
    (tmp_path / "a.svg").write_text("old")
    _killed("together", tmp_path, 2)  # a.svg swapped in, its backup left
    (tmp_path / "a.svg").write_text("rewritten by the user")
    with pytest.warns(output.WriteWarning):
        output.write_atomic(tmp_path / "other.csv", "x")
    assert (tmp_path / "a.svg").read_text() == "rewritten by the user"


# --- a directory swapped whole ----------------------------------------------------------------


def _report_directory(tmp_path):
    """``out/`` holding an old set, a file and a subdirectory msdprof does not write."""
    out = tmp_path / "out"
    (out / "digits").mkdir(parents=True)
    (out / "digits" / "page.html").write_text("digits")
    (out / "notes.txt").write_text("mine")
    for name in SET:
        (out / name).write_text("old")
    return out


def _check_one_set(out, inodes=None):
    """Every file of SET holds the same generation; what msdprof does not write is untouched
    (the same files, ``inodes`` as before when given).  Returns the generation."""
    written = {(out / name).read_text() for name in SET}
    assert len(written) == 1, f"a mixed set: {written}"
    assert sorted(os.listdir(out)) == sorted(SET + ["digits", "notes.txt"])
    assert (out / "notes.txt").read_text() == "mine" and (out / "digits" / "page.html").read_text() == "digits"
    if inodes is not None:
        assert _inodes(out) == inodes
    return written.pop()


def _inodes(out):
    return [os.stat(out / "notes.txt").st_ino, os.stat(out / "digits" / "page.html").st_ino]


def test_a_directory_write_keeps_what_it_does_not_write_as_the_same_files(tmp_path):
    out = _report_directory(tmp_path)
    (out / "link").symlink_to("notes.txt")
    inodes = _inodes(out)
    output.write_directory(out, {name: "new 1" for name in SET}, force=True)
    assert os.readlink(out / "link") == "notes.txt"
    (out / "link").unlink()
    assert _check_one_set(out, inodes) == "new 1"
    assert os.listdir(tmp_path) == ["out"]


# Steps of a directory write of SET: each file written in the sibling directory (1-3), the
# exchange (4), the removal of the old directory (5).
@pytest.mark.parametrize("step", [1, 2, 3, 4, 5])
def test_a_directory_write_killed_at_any_step_leaves_one_whole_set_and_a_rerun_nothing_stale(tmp_path, step):
    out = _report_directory(tmp_path)
    inodes = _inodes(out)
    _killed("directory", out, step)
    assert _check_one_set(out, inodes) == ("old" if step <= 4 else "new 1")
    assert _temporary(tmp_path)  # it died mid-write
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # what it left stood for out/: removed, not reported
        output.write_directory(out, {name: "new 2" for name in SET}, force=True)
    assert _check_one_set(out, inodes) == "new 2"
    assert os.listdir(tmp_path) == ["out"]


def test_a_directory_write_killed_30_times_at_random_never_leaves_a_mixed_set(tmp_path):
    out = _report_directory(tmp_path)
    inodes = _inodes(out)
    seen, mid_write = set(), 0
    for _ in range(30):
        writer = subprocess.Popen([sys.executable, "-c", WRITER, "directory", str(out), "0", *SET],
                                  stdout=subprocess.PIPE)
        assert writer.stdout.readline() == b"started\n"
        time.sleep(random.uniform(0, 0.02))  # a few writes, then a kill anywhere in one
        writer.kill()
        writer.wait()
        seen.add(_check_one_set(out, inodes))
        mid_write += bool(_temporary(tmp_path))
        assert all(re.fullmatch(r"\.out\.msdprof-\d+-[0-9a-f]{8}\.tmp", n) for n in _temporary(tmp_path))
    assert len(seen) > 1 and mid_write > 0  # the writer wrote between kills, and some killed it mid-write
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        output.write_directory(out, {name: "final" for name in SET}, force=True)
    assert _check_one_set(out, inodes) == "final" and os.listdir(tmp_path) == ["out"]


def test_a_second_directory_writer_without_force_fails_and_leaves_the_first_ones_set(tmp_path, monkeypatch):
    out = tmp_path / "out"
    out.mkdir()
    def other_writer_first(path):
        if path == out:
            (out / "page.md").write_text("other")
    monkeypatch.setattr(output, "before_swap", other_writer_first)
    with pytest.raises(OptionError, match="page.md: already exists \\(written by another process meanwhile\\)"):
        output.write_directory(out, {name: "mine" for name in SET})
    assert _tree(out) == {"page.md": b"other"} and os.listdir(tmp_path) == ["out"]


def test_a_directory_holding_the_working_directory_is_written_file_by_file_and_says_so(tmp_path, monkeypatch):
    out = _report_directory(tmp_path)
    monkeypatch.chdir(out)
    with pytest.warns(output.WriteWarning, match="swapped in one by one, not as one set: it is this process's working directory"):
        output.write_directory(Path("."), {name: "new" for name in SET}, force=True)
    assert _check_one_set(out) == "new"


# --- names near the limit ---------------------------------------------------------------------


@pytest.mark.parametrize("name", ["x" * 251 + ".csv", "é" * 125 + ".md"])  # 255 bytes
def test_a_name_of_255_bytes_is_written_and_replaced(tmp_path, name):
    target = tmp_path / name
    output.write_atomic(target, "first")
    output.write_atomic(target, "second", force=True)
    assert _tree(tmp_path) == {name: b"second"}


def test_a_directory_named_in_255_bytes_is_written_and_rewritten(tmp_path):
    out = tmp_path / ("d" * 255)
    output.write_directory(out, {"a.md": "first"})
    output.write_directory(out, {"a.md": "second"}, force=True)
    assert _tree(out) == {"a.md": b"second"} and os.listdir(tmp_path) == [out.name]


def test_leftovers_of_a_long_name_are_recognised_by_its_rerun(tmp_path):
    name = "x" * 251 + ".csv"
    _killed("together", tmp_path, 1, [name])
    assert len(_temporary(tmp_path)) == 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        output.write_atomic(tmp_path / name, "x")
    assert _tree(tmp_path) == {name: b"x"}


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


def test_a_directory_whose_parent_is_not_writable_is_written_file_by_file_and_says_so(tmp_path, monkeypatch):
    out = _report_directory(tmp_path)
    mkdir = os.mkdir
    def refused_beside_out(path, *args, **kwargs):  # what a read-only parent does (the tests run as root)
        if Path(path).parent == tmp_path:
            raise PermissionError(13, "Permission denied", str(path))
        return mkdir(path, *args, **kwargs)
    monkeypatch.setattr(os, "mkdir", refused_beside_out)
    with pytest.warns(output.WriteWarning, match=f"one by one, not as one set: its parent directory {tmp_path} is not writable"):
        output.write_directory(out, {name: "new" for name in SET}, force=True)
    assert _check_one_set(out) == "new" and os.listdir(tmp_path) == ["out"]


def test_a_name_longer_than_the_file_system_allows_is_refused_naming_its_size(tmp_path):
    with pytest.raises(OptionError, match="its name is 260 bytes, more than the 255 the file system allows"):
        output.check_writable(tmp_path / ("x" * 256 + ".svg"))


def test_the_command_line_reports_leftovers_in_one_warning_line(tmp_path, capsys):
    from msdprof.cli.entry import main
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()
    (tmp_path / f".r.md.msdprof-{dead}-abcd.old").write_text("x")
    assert main(["count", "--preset", "cifar10-batch", "-o", str(tmp_path / "t.csv")]) == 0
    assert capsys.readouterr().err.splitlines() == [
        f"msdprof: warning: {tmp_path}: left as it is .r.md.msdprof-{dead}-abcd.old: what a killed "
        "msdprof write left (files it replaced or was writing); delete when not needed",
        f"msdprof count: wrote {tmp_path / 't.csv'}",
    ]


# --- a page and its pictures beside other files (report -o a.md) ----------------------------------


def _page_set(generation):
    """A page ``a.md`` of ``generation`` and its two pictures, named for their content."""
    pictures = {output.stamped_name(f"a-{role}.svg", f"{role} {generation}".encode()): f"{role} {generation}".encode()
                for role in ("cost", "layout")}
    return f"page {generation}: " + " ".join(f"![{n}]({n})" for n in pictures), pictures


def _beside(tmp_path):
    """A directory holding generation 1 of the page set and what msdprof does not write there: a
    note, a picture under an old fixed name, another page with its own picture, and a file named
    like a stamped picture whose content does not match its stamp, which the page names."""
    (tmp_path / "notes.txt").write_text("mine")
    (tmp_path / "a-cost.svg").write_text("an older report's")
    (tmp_path / "a-photo-12345678.svg").write_text("a picture of mine")
    other_page, other = _page_set("other")
    (tmp_path / "b.md").write_text(other_page.replace("a-", "b-"))
    for name, data in other.items():
        (tmp_path / name.replace("a-", "b-")).write_bytes(data)
    page, pictures = _page_set(1)
    output.write_with_pictures(tmp_path / "a.md", page + " ![mine](a-photo-12345678.svg)", pictures)
    return _others(tmp_path)


def _others(directory):
    return {n: (directory / n).read_bytes() for n in os.listdir(directory) if not n.startswith(("a.md", "a-cost-", "a-layout-", "."))}


def _one_page_set(directory, others):
    """The page shows files that are all there and all of its own generation; nothing else was
    touched.  Returns the generation."""
    text = (directory / "a.md").read_text()
    generation = text.split(":")[0].removeprefix("page ")
    for name in re.findall(r"\]\((a-(?:cost|layout)-[^)]+)\)", text):
        assert (directory / name).read_text().endswith(f" {generation}"), f"page {generation} shows {name}"
    assert _others(directory) == others
    return generation


def test_a_rewritten_page_removes_only_the_pictures_it_alone_showed(tmp_path):
    others = _beside(tmp_path)
    page, pictures = _page_set(2)
    output.write_with_pictures(tmp_path / "a.md", page, pictures, force=True)
    assert _one_page_set(tmp_path, others) == "2"
    assert sorted(n for n in os.listdir(tmp_path) if n.startswith(("a-cost-", "a-layout-"))) == sorted(pictures)


def test_a_picture_another_page_of_the_same_stem_shows_is_kept(tmp_path):
    page, pictures = _page_set(1)
    output.write_with_pictures(tmp_path / "a.md", page, pictures)
    (tmp_path / "a.html").write_text(page)  # the same report as HTML shows the same pictures
    new_page, new_pictures = _page_set(2)
    output.write_with_pictures(tmp_path / "a.md", new_page, new_pictures, force=True)
    assert sorted(n for n in os.listdir(tmp_path) if n.endswith(".svg")) == sorted([*pictures, *new_pictures])


def test_a_rerun_keeps_the_pictures_it_would_write_byte_for_byte(tmp_path):
    page, pictures = _page_set(1)
    output.write_with_pictures(tmp_path / "a.md", page, pictures)
    inodes = {n: os.stat(tmp_path / n).st_ino for n in pictures}
    (tmp_path / "a.md").unlink()  # without --force: only the page must be new
    output.write_with_pictures(tmp_path / "a.md", page, pictures)
    assert {n: os.stat(tmp_path / n).st_ino for n in pictures} == inodes


def test_a_picture_name_taken_by_other_bytes_needs_force(tmp_path):
    page, pictures = _page_set(1)
    taken = sorted(pictures)[0]
    (tmp_path / taken).write_text("precious")
    with pytest.raises(OptionError, match=f"^output {tmp_path}/{taken}: already exists; pass --force"):
        output.write_with_pictures(tmp_path / "a.md", page, pictures)
    assert _tree(tmp_path) == {taken: b"precious"}


# Steps of rewriting generation 1 with generation 2: its two pictures placed (1, 2), the page (3),
# the two pictures of generation 1 removed (4, 5).  A kill leaves what the hook sees at a step.
def test_a_page_rewrite_seen_at_every_step_shows_one_whole_set(tmp_path, monkeypatch):
    others = _beside(tmp_path)
    seen = []
    monkeypatch.setattr(output, "before_swap", lambda path: seen.append((path.name, _one_page_set(tmp_path, others))))
    page, pictures = _page_set(2)
    output.write_with_pictures(tmp_path / "a.md", page, pictures, force=True)
    old = [n for n in seen[3:]]
    assert [(name, generation) for name, generation in seen[:3]] == [(n, "1") for n in sorted(pictures)] + [("a.md", "1")]
    assert [generation for _, generation in old] == ["2", "2"] and all(n.startswith("a-") for n, _ in old)
    assert _one_page_set(tmp_path, others) == "2"


PAGE_WRITER = """
import itertools, sys
from pathlib import Path
from msdprof.files import output
where = Path(sys.argv[1])
print("started", flush=True)
for generation in itertools.count(2):
    pictures = {output.stamped_name(f"a-{role}.svg", f"{role} {generation}".encode()):
                f"{role} {generation}".encode() for role in ("cost", "layout")}
    page = f"page {generation}: " + " ".join(f"![{n}]({n})" for n in pictures)
    output.write_with_pictures(where / "a.md", page, pictures, force=True)
"""


def test_a_page_writer_killed_10_times_at_random_never_leaves_a_page_with_pictures_not_its_own(tmp_path):
    others = _beside(tmp_path)
    seen = set()
    for _ in range(10):
        writer = subprocess.Popen([sys.executable, "-c", PAGE_WRITER, str(tmp_path)], stdout=subprocess.PIPE)
        assert writer.stdout.readline() == b"started\n"
        time.sleep(random.uniform(0, 0.02))
        writer.kill()
        writer.wait()
        seen.add(_one_page_set(tmp_path, others))
    assert len(seen) > 1  # the writer wrote between kills
