"""`msdprof count`: the table, the machine-readable formats, and one-line errors (exit code 2)."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from msdprof import exit_costs
from msdprof.render.formatting import render_table
from cli_run import run

GOLDEN = Path(__file__).parent / "golden"


def test_count_prints_a_table_titled_with_the_options(capsys):
    code, out, err = run(capsys, "count", "--nBlocks", "7", "--stepmode", "lin_grow")
    assert code == 0 and err == ""
    assert "MSDNet per-exit cost" in out and "nBlocks 7" in out and "stepmode lin_grow" in out
    assert "cumulative" in out and "M ops" in out


def test_count_without_options_uses_the_default_recipe(capsys):
    code, out, _ = run(capsys, "count")
    assert code == 0
    assert "cifar10-anytime (nBlocks 10" in out


def test_count_table_matches_the_golden_file():
    # Regenerate with: MSDPROF_REGEN_GOLDEN=1 python -m pytest tests/test_cli_count.py
    text = render_table(exit_costs("cifar10-anytime"), "cifar10-anytime", width=120)
    golden = GOLDEN / "count-cifar10-anytime.txt"
    if os.environ.get("MSDPROF_REGEN_GOLDEN"):
        golden.write_text(text)
    assert text == golden.read_text()


def test_the_count_page_shows_the_golden_table():
    page = (Path(__file__).parent.parent / "docs" / "count.md").read_text()
    golden = "\n".join(line.rstrip() for line in (GOLDEN / "count-cifar10-anytime.txt").read_text().splitlines())
    assert "$ msdprof count --preset cifar10-anytime\n" + golden.strip("\n") + "\n```" in page


def test_json_output_parses_and_equals_the_api(capsys):
    code, out, _ = run(capsys, "count", "--preset", "imagenet-step4", "--format", "json")
    assert code == 0
    data = json.loads(out)
    api = exit_costs("imagenet-step4").as_dict()
    assert data == {"preset": "imagenet-step4", **api}
    assert data["input"] == [3, 224, 224]
    assert [e["macs"] for e in data["exits"]][0] == 339902824  # shared/reference imagenet_step4


def test_csv_output_has_exact_integers(capsys):
    code, out, _ = run(capsys, "count", "--preset", "cifar10-anytime", "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert code == 0 and len(rows) == 10
    assert int(rows[0]["macs"]) == 15128842 and int(rows[-1]["params"]) == 4839544  # reference
    assert rows[0]["convention"] == "msdnet"


def test_markdown_output_is_a_table(capsys):
    code, out, _ = run(capsys, "count", "--preset", "cifar10-batch", "--format", "markdown")
    assert code == 0
    assert out.count("\n| ") == 8  # header + 7 exits


def test_convention_option_changes_the_unit(capsys):
    code, out, _ = run(capsys, "count", "--convention", "flops", "--format", "json")
    assert json.loads(out)["exits"][0]["macs"] == exit_costs(convention="flops")[0].macs


def test_output_file_is_written_and_not_overwritten_without_force(capsys, tmp_path):
    target = tmp_path / "costs.json"
    assert run(capsys, "count", "--format", "json", "-o", str(target))[0] == 0
    assert json.loads(target.read_text())["convention"] == "msdnet"
    code, _, err = run(capsys, "count", "--format", "csv", "-o", str(target))
    assert code == 2 and "already exists; pass --force" in err
    assert json.loads(target.read_text())["convention"] == "msdnet"  # untouched
    assert run(capsys, "count", "--format", "csv", "-o", str(target), "--force")[0] == 0
    assert target.read_text().startswith("exit,layer,")


@pytest.mark.parametrize("argv, message", [
    (["--nBlocks", "0"], "--nBlocks 0: must be a whole number >= 1"),
    (["--stepmode", "lin"], "--stepmode lin: must be one of even, lin_grow"),
    (["--grFactor", "1-2"], "--grFactor 1-2: must have the same length as bnFactor 1-2-4 (3)"),
    (["--format", "yaml"], "--format yaml: must be one of table, json, csv, markdown"),
    (["--convention", "fvcore"], "--convention fvcore: must be one of msdnet, macs, flops"),
    (["--preset", "cifar10"], "--preset cifar10: must be one of"),
    (["--input-size", "8"], "--input-size 8: too small"),
    (["--reduction", "2"], "--reduction 2: must be a number from 0 to 1"),
    (["-o", "/nonexistent/dir/x.json"], "--output /nonexistent/dir/x.json: directory /nonexistent/dir does not exist"),
    (["--frobnicate"], "unrecognized arguments: --frobnicate"),
])
def test_bad_input_gives_one_line_and_exit_code_2(capsys, argv, message):
    code, out, err = run(capsys, "count", *argv)
    assert code == 2 and out == ""
    assert err.startswith("msdprof: error: ") and message in err
    assert err.count("\n") == 1


def test_console_script_errors_without_traceback():
    result = subprocess.run(
        [sys.executable, "-m", "msdprof.cli", "count", "--data", "mnist"],
        capture_output=True, text=True,
    )
    assert result.returncode == 2
    assert result.stderr == "msdprof: error: --data mnist: must be one of cifar10, cifar100, ImageNet\n"
