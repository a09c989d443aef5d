"""Benchmark results as files, and the docs' performance blocks written from them (issues 30, 32).

Every ``benchmarks/bench_*.py`` takes ``--save`` (:func:`add_save_option`) and runs its body inside
:func:`recorded`: what it prints still reaches the terminal and, with ``--save``, is written with the
commit, the machine, the date and the load average it ran at into ``benchmarks/results/NAME.json``
(:func:`save`).  The pages of the docs (:func:`pages`: ``docs/*.md`` and README.md) hold each result
between ``<!-- bench:NAME -->`` and ``<!-- /bench:NAME -->``, exactly as :func:`block` renders it;
``python benchmarks/results.py`` writes them there (``make bench-docs`` runs every benchmark with
``--save``, then this), and ``tests/test_benchmark_results.py`` fails when a block differs from its
file.  A measured figure in the docs is thus never typed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
MARK = re.compile(r"(<!-- bench:(?P<name>[\w-]+) -->\n)(?P<body>.*?)(<!-- /bench:(?P=name) -->)", re.S)
#: What a re-run rewrites: a change there is not a change of the code measured.
WRITTEN = ("benchmarks/results", "README.md", "docs")


def pages() -> list[Path]:
    """The pages benchmark blocks may live in: README.md and the docs site's pages."""
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def machine() -> str:
    """``Linux x86_64, AMD EPYC, 2 CPUs, CPython 3.11.7, torch 2.13.0+cpu``: where a benchmark ran."""
    import torch

    from msdprof.analysis.latency import cpu_name  # the CPU's model name, as msdprof latency gives it

    return (f"{platform.system()} {platform.machine()}, {cpu_name()}, {os.cpu_count()} CPUs, "
            f"{platform.python_implementation()} {platform.python_version()}, torch {torch.__version__}")


def commit() -> str:
    """The checkout's commit (12 hex digits), ``+ changes`` when the tracked files differ from it
    (outside :data:`WRITTEN`, which the benchmarks and ``results.py`` themselves rewrite)."""
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True).stdout.strip()

    head = git("rev-parse", "--short=12", "HEAD") or "unknown"
    changed = git("status", "--porcelain", "--untracked-files=no", "--", ".",
                  *(f":(exclude){path}" for path in WRITTEN))
    return head + (" + changes" if changed else "")


def command_line(name: str) -> str:
    """How to re-run benchmark ``name`` as this process was run: its options, ``--save`` left out."""
    return " ".join(["python", f"benchmarks/{name}.py", *(a for a in sys.argv[1:] if a != "--save")])


def save(name: str, output: str, command: str | None = None,
         load: tuple[float, float] | None = None) -> Path:
    """Write benchmark ``name``'s ``output`` (what it printed) with where and when it ran; ``load``:
    the 1-minute load average when it started and when it ended."""
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.json"
    data = {"benchmark": name, "command": command or command_line(name), "commit": commit(),
            "machine": machine(), "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "load": [round(x, 2) for x in load] if load else None, "output": output}
    path.write_text(json.dumps(data, indent=1) + "\n")
    return path


class Printed:
    """Standard output, kept as it is printed: inside ``with Printed() as printed:`` everything
    written to ``sys.stdout`` still reaches it, and ``printed.text`` is all of it."""

    def __init__(self) -> None:
        self._parts: list[str] = []
        self._stream = sys.stdout

    def __enter__(self) -> "Printed":
        self._stream, sys.stdout = sys.stdout, self  # type: ignore[assignment]
        return self

    def __exit__(self, *exc: object) -> None:
        sys.stdout = self._stream

    def write(self, text: str) -> int:
        self._stream.write(text)
        self._parts.append(text)
        if "\n" in text:  # a line at a time, as a benchmark's progress, even into a pipe
            self._stream.flush()
        return len(text)

    def flush(self) -> None:
        self._stream.flush()

    def __getattr__(self, attribute: str):  # isatty, encoding, fileno ...: the real stream's
        return getattr(self._stream, attribute)

    @property
    def text(self) -> str:
        return "".join(self._parts)


def add_save_option(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The ``--save`` option every benchmark takes."""
    parser.add_argument("--save", action="store_true",
                        help="also write what this run prints, with the commit, machine and date, to "
                             "benchmarks/results/NAME.json, which the docs' block is rendered from "
                             "(python benchmarks/results.py)")
    return parser


@contextmanager
def recorded(name: str, save_it: bool) -> Iterator[Printed]:
    """Run a benchmark's body: what it prints is printed and, with ``save_it``, saved as benchmark
    ``name``'s results when the body ends (whatever its PASS/FAIL lines say; not when it raises)."""
    start = os.getloadavg()[0]
    with Printed() as printed:
        yield printed
    if save_it:
        path = save(name, printed.text, load=(start, os.getloadavg()[0]))
        print(f"saved {path}", file=sys.stderr)


def block(name: str) -> str:
    """The docs block of benchmark ``name``, from its results file."""
    data = json.loads((RESULTS / f"{name}.json").read_text())
    load = data.get("load")
    where = data["machine"] + (f" (load average {load[0]:.1f} at the start, {load[1]:.1f} at the end)"
                               if load else "")
    return (f"Measured by `{data['command']}` at commit {data['commit']}, {data['date']}, on "
            f"{where}:\n\n```text\n{data['output'].rstrip()}\n```\n")


def render(text: str) -> str:
    """``text`` (a page of the docs) with every benchmark block rewritten from its results file."""
    return MARK.sub(lambda m: m.group(1) + block(m.group("name")) + m.group(4), text)


def main() -> int:
    texts = {page: page.read_text() for page in pages()}
    missing = [m.group("name") for text in texts.values() for m in MARK.finditer(text)
               if not (RESULTS / f"{m.group('name')}.json").is_file()]
    if missing:  # every page is left as it is
        print("no results for the blocks " + ", ".join(missing) + ": run "
              + "; ".join(f"python benchmarks/{name}.py --save" for name in missing), file=sys.stderr)
        return 1
    for page, text in texts.items():
        new = render(text)
        if new != text:
            page.write_text(new)
        names = [m.group("name") for m in MARK.finditer(new)]
        if names:
            print(f"{page.relative_to(ROOT)}: " + ", ".join(names))
    return 0


if __name__ == "__main__":
    sys.exit(main())
