"""The docs' measured figures are written by the benchmarks that measured them, never typed
(issues 30 and 32).

Every ``<!-- bench:NAME -->`` block of README.md and docs/*.md is exactly what ``benchmarks/results.py`` renders
from the committed ``benchmarks/results/NAME.json`` (a typed edit, or a results file newer than
its block, fails here: ``python benchmarks/results.py`` rewrites the blocks), every results file
has its block and names the commit, machine and date it was measured at, and every
``benchmarks/bench_*.py`` takes ``--save`` and saves under its own name.  The mechanism itself is
checked on a toy benchmark and a throw-away git repository.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BENCHMARKS = ROOT / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

import results  # noqa: E402  (benchmarks/results.py)

TEXTS = {page: page.read_text() for page in results.pages()}
BLOCKS = {m.group("name"): m.group("body") for text in TEXTS.values() for m in results.MARK.finditer(text)}
PERFORMANCE = (ROOT / "docs" / "performance.md").read_text()
FILES = sorted(results.RESULTS.glob("*.json"))
SCRIPTS = sorted(BENCHMARKS.glob("bench_*.py"))


def test_the_docs_have_a_block_for_every_benchmark():
    assert set(BLOCKS) == {script.stem for script in SCRIPTS}


def test_each_block_name_appears_once():
    names = [m.group("name") for text in TEXTS.values() for m in results.MARK.finditer(text)]
    assert len(names) == len(set(names))


@pytest.mark.parametrize("name", sorted(BLOCKS))
def test_each_block_is_its_results_file_rendered(name):
    assert (results.RESULTS / f"{name}.json").is_file(), (
        f"block bench:{name} has no results file: run python benchmarks/{name}.py --save")
    assert BLOCKS[name] == results.block(name), (
        f"block bench:{name} differs from benchmarks/results/{name}.json: run "
        "python benchmarks/results.py (and never edit a block by hand)")


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_every_results_file_has_a_block_in_the_docs(path):
    assert path.stem in BLOCKS, f"{path.name} is shown nowhere: add <!-- bench:{path.stem} --> to a page of docs/"


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_every_results_file_names_its_commit_machine_and_date(path):
    data = json.loads(path.read_text())
    assert data["benchmark"] == path.stem
    assert re.fullmatch(r"python benchmarks/%s\.py( --?[\w-]+( \S+)?)*" % path.stem, data["command"])
    assert "--save" not in data["command"]
    assert re.fullmatch(r"[0-9a-f]{12}", data["commit"]), (
        f"{path.name}: measured at {data['commit']!r}, not a commit (re-run from a committed checkout)")
    assert re.fullmatch(r"\w+ \w+, .+, \d+ CPUs, \w+ \d+\.\d+\.\d+, torch \S+", data["machine"])
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d UTC", data["date"])
    assert len(data["load"]) == 2 and all(load >= 0 for load in data["load"])
    assert data["output"].strip()


def test_a_results_file_from_every_benchmark_and_no_other():
    assert {p.stem for p in FILES} == {script.stem for script in SCRIPTS}


def test_every_benchmark_takes_save_and_saves_under_its_own_name():
    """Each script's ``--help`` (its own parser, run in one interpreter) lists ``--save``, and its
    source records its output under its own file name."""
    code = (
        "import json, runpy, sys, io, contextlib\n"
        f"sys.path.insert(0, {str(BENCHMARKS)!r})\n"
        "found = {}\n"
        "for path in sys.argv[1:]:\n"
        "    sys.argv = [path, '--help']\n"
        "    out = io.StringIO()\n"
        "    with contextlib.redirect_stdout(out):\n"
        "        try:\n"
        "            runpy.run_path(path, run_name='__main__')\n"
        "        except SystemExit:\n"
        "            pass\n"
        "    found[path] = out.getvalue()\n"
        "print(json.dumps(found))\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, "-c", code, *map(str, SCRIPTS)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    helps = json.loads(done.stdout.strip().splitlines()[-1])
    for script in SCRIPTS:
        assert "--save" in helps[str(script)], f"{script.name} --help does not list --save"
        assert f'recorded("{script.stem}", ' in script.read_text(), f"{script.name} saves under another name"


def test_recorded_prints_and_saves_exactly_what_was_printed(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(results, "RESULTS", tmp_path)
    monkeypatch.setattr(sys, "argv", ["bench_toy.py", "--quick", "--save"])
    with results.recorded("bench_toy", True):
        print("| a | b |")
        print("PASS 1.5x (target <= 2x)", flush=True)
        sys.stdout.write("no newline at the end")
    printed = "| a | b |\nPASS 1.5x (target <= 2x)\nno newline at the end"
    assert capsys.readouterr().out == printed
    data = json.loads((tmp_path / "bench_toy.json").read_text())
    assert data["output"] == printed
    assert data["command"] == "python benchmarks/bench_toy.py --quick"


def test_recorded_saves_nothing_without_save(tmp_path, monkeypatch):
    monkeypatch.setattr(results, "RESULTS", tmp_path)
    with results.recorded("bench_toy", False):
        print("figures")
    assert list(tmp_path.iterdir()) == []


def test_recorded_saves_nothing_when_the_benchmark_raises(tmp_path, monkeypatch):
    monkeypatch.setattr(results, "RESULTS", tmp_path)
    with pytest.raises(RuntimeError), results.recorded("bench_toy", True):
        print("half of the figures")
        raise RuntimeError("the methods disagree")
    assert list(tmp_path.iterdir()) == []
    assert sys.stdout is not None and not isinstance(sys.stdout, results.Printed)


def test_render_rewrites_a_typed_block_and_nothing_else(tmp_path, monkeypatch):
    monkeypatch.setattr(results, "RESULTS", tmp_path)
    (tmp_path / "bench_toy.json").write_text(json.dumps({
        "benchmark": "bench_toy", "command": "python benchmarks/bench_toy.py", "commit": "0123456789ab",
        "machine": "Linux x86_64, AMD EPYC, 2 CPUs, CPython 3.11.7, torch 2.13.0+cpu",
        "date": "2026-12-07 21:00 UTC", "load": [0.5, 1.5], "output": "| x | 0.25 s |\nPASS\n"}))
    typed = "Prose 3 s.\n<!-- bench:bench_toy -->\n| x | 0.10 s |\n<!-- /bench:bench_toy -->\nMore prose.\n"
    assert results.render(typed) == (
        "Prose 3 s.\n<!-- bench:bench_toy -->\n"
        "Measured by `python benchmarks/bench_toy.py` at commit 0123456789ab, 2026-12-07 21:00 UTC, on "
        "Linux x86_64, AMD EPYC, 2 CPUs, CPython 3.11.7, torch 2.13.0+cpu (load average 0.5 at the "
        "start, 1.5 at the end):\n\n```text\n| x | 0.25 s |\nPASS\n```\n"
        "<!-- /bench:bench_toy -->\nMore prose.\n")


def test_commit_names_a_change_of_the_code_but_not_of_the_results_or_the_readme(tmp_path, monkeypatch):
    def git(*args: str) -> str:
        return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=tmp_path,
                              check=True, capture_output=True, text=True).stdout.strip()

    (tmp_path / "benchmarks" / "results").mkdir(parents=True)
    for name in ("README.md", "code.py", "benchmarks/results/bench_toy.json"):
        (tmp_path / name).write_text("first\n")
    git("init", "-q")
    git("add", "-A")
    git("commit", "-qm", "first")
    head = git("rev-parse", "--short=12", "HEAD")
    monkeypatch.setattr(results, "ROOT", tmp_path)
    (tmp_path / "README.md").write_text("blocks rewritten\n")
    (tmp_path / "benchmarks/results/bench_toy.json").write_text("saved again\n")
    assert results.commit() == head
    (tmp_path / "code.py").write_text("changed\n")
    assert results.commit() == head + " + changes"


def test_the_performance_prose_quotes_no_figure_of_its_own():
    """Outside its blocks, the Performance section says what is measured and how to re-run it; a
    time, ratio, size or rate there would be typed, so it would go stale."""
    section = PERFORMANCE
    prose = re.sub(r"```.*?```", "", results.MARK.sub("", section), flags=re.S)
    figure = re.compile(r"\d[\d,.]*\s*(?:s|ms|us|µs|MB|GB|KB|MiB|GiB|x|×|%|configurations ?/ ?s)(?![\w-])")
    assert figure.findall(prose) == []


def test_every_picture_a_benchmark_saves_is_shown_in_the_docs():
    assert [p.name for p in results.RESULTS.iterdir() if p.suffix != ".json"] == []  # pictures go to docs/
    latency = (ROOT / "docs" / "latency.md").read_text()
    assert "](bench_latency.svg)" in latency and (ROOT / "docs" / "bench_latency.svg").is_file()
