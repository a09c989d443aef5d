"""Benchmark results as files, and the README's performance blocks written from them (issue 30).

A benchmark ends with :func:`save`: what it printed (Markdown tables, PASS lines), with the commit,
the machine and the date it ran on, into ``benchmarks/results/NAME.json``.  The README holds each
result between ``<!-- bench:NAME -->`` and ``<!-- /bench:NAME -->``, exactly as :func:`block`
renders it; ``python benchmarks/results.py`` writes them there, and ``tests/test_benchmark_results.py``
fails when a block differs from its file.  A figure in the README is thus never typed.
"""

from __future__ import annotations

import json
import os
import platform
import re
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
MARK = re.compile(r"(<!-- bench:(?P<name>[\w-]+) -->\n)(?P<body>.*?)(<!-- /bench:(?P=name) -->)", re.S)


def machine() -> str:
    """``Linux x86_64, 2 CPUs, CPython 3.11.7, torch 2.13.0+cpu``: where a benchmark ran."""
    import torch

    return (f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs, "
            f"{platform.python_implementation()} {platform.python_version()}, torch {torch.__version__}")


def commit() -> str:
    """The checkout's commit (12 hex digits), ``+ changes`` when the work tree differs from it."""
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True).stdout.strip()

    head = git("rev-parse", "--short=12", "HEAD") or "unknown"
    return head + (" + changes" if git("status", "--porcelain", "--untracked-files=no") else "")


class Out:
    """What a benchmark prints, line by line, kept for its results file (:func:`save`)."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def __call__(self, line: str = "") -> None:
        print(line, flush=True)
        self.lines.append(line)


def save(name: str, output: str, command: str | None = None) -> Path:
    """Write benchmark ``name``'s ``output`` (what it printed) with where and when it ran."""
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.json"
    data = {"benchmark": name, "command": command or f"python benchmarks/{name}.py {' '.join(sys.argv[1:])}".strip(),
            "commit": commit(), "machine": machine(),
            "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), "output": output}
    path.write_text(json.dumps(data, indent=1) + "\n")
    return path


def block(name: str) -> str:
    """The README block of benchmark ``name``, from its results file."""
    data = json.loads((RESULTS / f"{name}.json").read_text())
    return (f"Measured by `{data['command']}` at commit {data['commit']}, {data['date']}, on "
            f"{data['machine']}:\n\n```text\n{data['output'].rstrip()}\n```\n")


def render(text: str) -> str:
    """``text`` (the README) with every benchmark block rewritten from its results file."""
    return MARK.sub(lambda m: m.group(1) + block(m.group("name")) + m.group(4), text)


def main() -> int:
    readme = ROOT / "README.md"
    text = readme.read_text()
    new = render(text)
    if new != text:
        readme.write_text(new)
    print("README performance blocks: " + ", ".join(m.group("name") for m in MARK.finditer(new)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
