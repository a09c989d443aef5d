"""Every user mistake on the command line: exit code 2, one line on stderr naming the bad value,
no traceback, nothing written (issue 7).

The table runs ``msdprof.cli.main`` in-process (an exception escaping it — what would be a traceback
— fails the test) in an empty working directory that must stay empty; a few cases run the real
console entry point as a subprocess.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from msdprof.cli import main

BAD_INPUTS = [
    # (arguments, text the one line must contain)
    (["count", "--nBlocks", "0"], "--nBlocks 0: must be a whole number >= 1"),
    (["count", "--nBlocks", "-2"], "--nBlocks -2: must be a whole number >= 1"),
    (["count", "--nBlocks", "2.5"], "--nBlocks 2.5: must be a whole number >= 1"),
    (["count", "--stepmode", "evn"], "--stepmode evn: must be one of even, lin_grow (did you mean 'even'?)"),
    (["count", "--prune", "maxx"], "--prune maxx: must be one of max, min (did you mean 'max'?)"),
    (["count", "--data", "cifar"], "--data cifar: must be one of cifar10, cifar100, ImageNet (did you mean"),
    (["count", "--format", "jsn"], "--format jsn: must be one of table, json, csv, markdown (did you mean 'json'?)"),
    (["count", "--convention", "flop"], "--convention flop: must be one of msdnet, macs, flops (did you mean"),
    (["count", "--preset", "imagenet-step5"], "--preset imagenet-step5: must be one of"),
    (["count", "--base", "0"], "--base 0: must be a whole number >= 1"),
    (["count", "--nBlocks", "3", "--step", "0"], "--step 0: must be a whole number >= 1"),
    (["count", "--grFactor", "1-x-4"], "--grFactor 1-x-4: must be positive whole numbers joined by '-'"),
    (["count", "--grFactor", ""], "--grFactor '': must be positive whole numbers"),
    (["count", "--bnFactor", "1-0-4"], "--bnFactor 1-0-4: must be positive whole numbers"),
    (["count", "--grFactor", "1-2"], "--grFactor 1-2: must have the same length as bnFactor 1-2-4 (3)"),
    (["count", "--growthRate", "5", "--grFactor", "1-1-1", "--bnFactor", "1-1-1"], "--growthRate 5: growthRate*grFactor[1] = 5 is odd"),
    (["count", "--reduction", "1.5"], "--reduction 1.5: must be a number from 0 to 1"),
    (["count", "--bottleneck", "yes please"], "--bottleneck yes please: must be true or false"),
    (["count", "--input-size", "16"], "--input-size 16: too small for 3 scales and the cifar10 heads"),
    (["count", "--input-size", "16"], "sides from 17 to 48 work"),
    (["count", "--device", "cuda"], "--device cuda: must be meta or cpu"),
    (["count", "-o", "/nonexistent/x.csv"], "directory /nonexistent does not exist"),
    (["count", "--nBlocks"], "argument --nBlocks: expected one argument"),
    (["count", "--nBlocks", "1", "--base", "1", "--prune", "min"], "--prune min: needs at least nScales - 1 = 2 layers"),
    (["frobnicate"], "invalid choice: 'frobnicate'"),
    # graph
    (["graph"], "the following arguments are required: -o/--output"),
    (["graph", "-o", "layout.bmp"], "--output layout.bmp: unknown suffix '.bmp'; the file name must end in one of .svg"),
    (["graph", "-o", "/nonexistent/layout.svg"], "--output /nonexistent/layout.svg: directory /nonexistent does not exist"),
    (["graph", "--convention", "flop", "-o", "layout.dot"], "--convention flop: must be one of msdnet, macs, flops"),
    (["graph", "--input-size", "100", "-o", "layout.svg"], "--input-size 100: too large for 3 scales"),
    # report
    (["report", "-o", "report.txt"], "--output report.txt: must end in .md (Markdown) or .html (HTML)"),
    (["report", "-o", "/nonexistent/report.md"], "--output /nonexistent/report.md: directory /nonexistent does not exist"),
    (["report", "--all", "--preset", "cifar10-batch", "-o", "reports"], "--preset cifar10-batch: cannot be used with --all"),
    (["report", "--compare", "nBlocks=0", "-o", "report.md"], "--compare nBlocks=0: nBlocks 0: must be a whole number >= 1"),
    (["report", "--compare", "foo:step=2", "-o", "report.md"], "--compare foo:step=2: preset foo: must be one of"),
    # budget (bad saved-output files: tests/test_budget.py)
    (["budget"], "give --anytime BUDGET, or --fractions F1,F2,..., --geometric or --logits FILE"),
    (["budget", "--anytime", "5X"], "--anytime 5X: must be a count like 300M, 1.5G or 120000"),
    (["budget", "--anytime=-5M"], "--anytime -5M: must be a count like 300M"),
    (["budget", "--fractions", "0.5,0.5"], "--fractions 0.5,0.5: must have 10 entries, one per exit of the network, not 2"),
    (["budget", "--anytime", "50M", "--geometric"], "--anytime (one budget per image) cannot be combined with --geometric"),
    (["budget", "--logits", "/nonexistent/outputs.npz"], "--logits /nonexistent/outputs.npz: does not exist"),
    (["budget", "--geometric", "--plot", "curve.svg"], "--plot curve.svg: needs --logits FILE"),
    (["budget", "--geometric", "--format", "markdown"], "--format markdown: must be one of table, json, csv"),
    # sweep
    (["sweep", "--nBlocks", "3:x"], "--nBlocks 3:x: a range is a:b or a:b:step with whole numbers"),
    (["sweep", "--stepmode", "evne"], "--stepmode evne: must be one of even, lin_grow (did you mean 'even'?)"),
    (["sweep", "--nBlocks", "3:4", "--max-macs", "2Q"], "--max-macs 2Q: must be a count like 300M"),
    (["sweep", "--nBlocks", "3:4", "--jobs", "0"], "--jobs 0: must be a whole number >= 1"),
    (["sweep", "--nBlocks", "1:100000000"], "--nBlocks 1:100000000: more than 100000 values"),
    (["sweep", "--growthRate", "7", "--grFactor", "1-1-1,1-3-3", "--bnFactor", "1-1-1"],
     "(the grid's first reason to skip; all 2 configurations skipped)"),
    (["sweep", "--format", "yaml"], "--format yaml: must be one of table, json, csv, markdown"),
    (["sweep", "--nBlocks", "3:4", "-o", "/nonexistent/grid.csv"], "--output /nonexistent/grid.csv: directory /nonexistent does not exist"),
]


@pytest.mark.parametrize("argv, message", BAD_INPUTS, ids=[" ".join(a) for a, _ in BAD_INPUTS])
def test_bad_input_exits_2_with_one_line_and_writes_nothing(argv, message, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    code = main(argv)
    out, err = capsys.readouterr()
    assert code == 2
    assert out == ""
    assert err.startswith("msdprof: error: ")
    assert err.count("\n") == 1, err
    assert message in err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("argv, message", [
    (["count", "--grFactor", "1-x-4"], "--grFactor 1-x-4: must be positive whole numbers joined by '-'"),
    (["graph", "-o", "layout.bmp"], "--output layout.bmp: unknown suffix '.bmp'"),
    (["report", "-o", "report.txt"], "--output report.txt: must end in .md"),
    (["frobnicate"], "invalid choice: 'frobnicate'"),
])
def test_console_entry_point_exits_2_with_one_line_and_no_traceback(argv, message, tmp_path):
    result = subprocess.run([sys.executable, "-m", "msdprof.cli", *argv], capture_output=True, text=True,
                            cwd=tmp_path)
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.startswith("msdprof: error: ")
    assert result.stderr.count("\n") == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert message in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_existing_output_is_kept_without_force(tmp_path):
    target = tmp_path / "costs.csv"
    target.write_text("precious")
    result = subprocess.run([sys.executable, "-m", "msdprof.cli", "count", "--format", "csv", "-o", str(target)],
                            capture_output=True, text=True)
    assert result.returncode == 2 and "already exists; pass --force" in result.stderr
    assert target.read_text() == "precious"


def test_unwritable_location_is_refused_naming_the_target():
    # /sys is a read-only file system on Linux, even for root
    result = subprocess.run([sys.executable, "-m", "msdprof.cli", "count", "-o", "/sys/costs.txt"],
                            capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stderr.startswith("msdprof: error: --output /sys/costs.txt: ")
    assert result.stderr.count("\n") == 1
