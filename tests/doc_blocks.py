"""The examples of README.md and docs/*.md as things to run (issue 32: an example can never go stale).

Every fenced block is one of:

- ``console``: commands, each on a line starting ``$ `` (a line ending in ``\\`` goes on on the
  next; one holding a here-document ``<<'EOF'`` goes on to its ``EOF`` line), each followed by what it prints, stdout and stderr together as a terminal shows them —
  the golden output, compared exactly (trailing spaces aside) by tests/test_docs_examples.py; a
  command followed by no output need only exit 0.  One that must fail ends in ``# exit status N``.
- ``sh``: a shell script run with ``bash -e``: it must exit 0.
- ``python``: run in a fresh interpreter: it must exit 0.
- ``text``, ``json``, ``csv``: what a file or a benchmark holds, not run.

Each runs in an empty temporary directory holding links to the clone's ``examples/`` and
``reports/`` (the paths the docs give, as from the root of the clone), with ``COLUMNS`` unset
(a table is then 120 columns wide) and the interpreter running the tests first on ``PATH``.
A block preceded by ``<!-- docs-check: WHY -->`` takes long (WHY says what): it runs in
``make docs-check``, in a fresh clone of the repository, instead of in ``make test``.

``python tests/doc_blocks.py --write [FILE ...]`` runs every command of the ``console`` blocks (those
not marked long) that shows output and writes what it printed under it (to show a new command's
output, put any line under it first): the golden outputs are produced, never typed.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RUN = ("console", "sh", "python")
SHOWN = ("text", "json", "csv")
FENCE = re.compile(r"^(?:<!-- docs-check: (?P<long>[^>]+?) -->\n)?```(?P<lang>[a-z]*)\n(?P<body>.*?)^```$", re.S | re.M)
EXIT = re.compile(r"#\s*exit status (\d+)\s*$")
HERE = re.compile(r"<<\s*'(\w+)'")
LINKED = ("examples", "reports")
TIMEOUT = 600


def pages() -> list[Path]:
    """README.md and every page of the docs site, in a fixed order."""
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


@dataclass(frozen=True)
class Block:
    """One fenced block: its page (relative to the root), first line (1-based), language, text and,
    when it takes long, why."""
    page: str
    line: int
    lang: str
    body: str
    long: str | None

    @property
    def id(self) -> str:
        return f"{self.page}:{self.line}"


@dataclass(frozen=True)
class Command:
    """A ``$`` command of a ``console`` block, the output shown under it and the exit status it must end with."""
    text: str
    shown: str
    status: int


def blocks(page: Path) -> list[Block]:
    text = page.read_text(encoding="utf-8")
    return [Block(str(page.relative_to(ROOT)), text.count("\n", 0, m.start("lang")) + 1, m.group("lang"),
                  m.group("body"), m.group("long")) for m in FENCE.finditer(text)]


def all_blocks() -> list[Block]:
    return [b for page in pages() for b in blocks(page)]


def commands(body: str) -> list[Command]:
    """The ``$`` commands of a console block, each with the lines shown under it."""
    found: list[list] = []
    going_on: str | bool = False  # True: after a line ending in a backslash; "EOF": in a here-document
    for line in body.splitlines():
        if going_on:
            found[-1][0] += "\n" + line
            going_on = (going_on if line != going_on else False) if isinstance(going_on, str) else line.endswith("\\")
        elif line.startswith("$ "):
            found.append([line[2:], []])
            here = HERE.search(line)
            going_on = here.group(1) if here else line.endswith("\\")
        elif found:
            found[-1][1].append(line)
        elif line.strip():
            raise ValueError(f"a console block starts with output, not a '$ ' command: {line!r}")
    result = []
    for text, shown in found:
        status = EXIT.search(text.splitlines()[-1] if text else "")
        result.append(Command(text, "\n".join(shown).strip("\n"), int(status.group(1)) if status else 0))
    return result


def workspace(folder: Path) -> Path:
    """``folder`` made a place to run examples in: links to the clone's examples and reports."""
    for name in LINKED:
        (folder / name).symlink_to(ROOT / name, target_is_directory=True)
    return folder


def environment(clone: bool = False) -> dict[str, str]:
    """The environment an example runs in: this checkout's interpreter and packages first; for a
    long block, which runs in a fresh clone (``clone``), its interpreter's folder last on ``PATH``
    (``msdprof`` is found there) and no ``VIRTUAL_ENV`` or ``PYTHONPATH``, so that the clone's
    ``make`` finds the machine's own ``python3`` and makes and uses its own ``.venv``, as on a fresh
    machine, never installing into this one."""
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES", "FORCE_COLOR")}
    bin_dir = str(Path(sys.executable).parent)
    if clone:
        for name in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME"):
            env.pop(name, None)
        env["PATH"] = os.pathsep.join([*(p for p in env.get("PATH", "").split(os.pathsep) if p != bin_dir), bin_dir])
        return env
    env["TERM"] = "dumb"  # output as a pipe gets it, whatever terminal the tests run in
    env["PATH"] = os.pathsep.join([bin_dir, env.get("PATH", "")])
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH", "")]))
    return env


def printed(text: str) -> str:
    """Output as the docs show it: lines without trailing spaces, no blank lines at either end."""
    return "\n".join(line.rstrip() for line in text.splitlines()).strip("\n")


def run_command(command: Command, cwd: Path, clone: bool = False) -> tuple[int, str]:
    result = subprocess.run(["bash", "-c", command.text], cwd=cwd, env=environment(clone), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, timeout=TIMEOUT * 12 if clone else TIMEOUT)
    return result.returncode, printed(result.stdout)


def run_script(block: Block, cwd: Path) -> subprocess.CompletedProcess:
    argv = [sys.executable, "-c", block.body] if block.lang == "python" else ["bash", "-e", "-c", block.body]
    return subprocess.run(argv, cwd=cwd, env=environment(), capture_output=True, text=True, timeout=TIMEOUT)


def write_outputs(page: Path, scratch: Path) -> int:
    """Every console block of ``page`` (not marked long) with each command's output written under it;
    returns how many commands' outputs changed."""
    text = page.read_text(encoding="utf-8")
    changed = 0

    def rewrite(m: re.Match) -> str:
        nonlocal changed
        if m.group("lang") != "console" or m.group("long"):
            return m.group(0)
        parts = []
        for command in commands(m.group("body")):
            if not command.shown:
                parts.append("$ " + command.text)
                continue
            status, out = run_command(command, workspace(_fresh(scratch)))
            if status != command.status:
                raise SystemExit(f"{page.name}: `{command.text}` exited {status}:\n{out}")
            changed += out != command.shown
            parts.append("$ " + command.text + ("\n" + out if out else ""))
        head = m.group(0)[:m.start("body") - m.start(0)]
        return head + "\n".join(parts) + "\n```"

    page.write_text(FENCE.sub(rewrite, text), encoding="utf-8")
    return changed


def _fresh(scratch: Path) -> Path:
    import tempfile

    return Path(tempfile.mkdtemp(dir=scratch))


if __name__ == "__main__":
    import argparse
    import shutil
    import tempfile

    parser = argparse.ArgumentParser(description="Write each console block's outputs under its commands.")
    parser.add_argument("files", nargs="*", type=Path, help="pages to rewrite (default: README.md and docs/*.md)")
    parser.add_argument("--write", action="store_true", required=True, help="rewrite the pages in place")
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp())
    try:
        for page in [p.resolve() for p in args.files] or pages():
            n = write_outputs(page, scratch)
            print(f"{page.relative_to(ROOT)}: {n} output(s) changed")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
