"""``msdprof report --model`` (issue 12): a report on the user's own early-exit network.

Its figures must be exactly those of ``exit_costs`` on the same model (itself checked against the
authors' counter, fvcore and FlopCounterMode in ``tests/test_any_model.py``), its picture exactly
what ``msdprof graph --model`` draws, what had no rule must be listed, and the command line it prints
must make the same report again.  An MSDNet's reports are unchanged (``tests/test_report.py``
regenerates ``reports/`` byte for byte).
"""

from __future__ import annotations

import re
import shlex
import shutil

import pytest

from cli_run import picture
from early_exit_models import Gated, SDNResNet
from msdprof import exit_costs
from msdprof.cli import main

needs_graphviz = pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot is not installed")

FACTORIES = '''
from early_exit_models import BranchyDict, Gated, SDNResNet

def sdn(width=8):
    return SDNResNet(width=width)

def branchy():
    return BranchyDict()

def gated():
    return Gated()
'''


@pytest.fixture
def folder(model_folder):
    """A folder holding models.py (the factories) beside a copy of the test models."""
    return model_folder(FACTORIES)


def report(capsys, *argv: str) -> tuple[int, str]:
    code = main(["report", *argv])
    return code, capsys.readouterr().err


def section(text: str, heading: str) -> str:
    return text.split(f"## {heading}\n", 1)[1].split("\n## ", 1)[0]


def exact_rows(text: str) -> list[list[int]]:
    """The rows of the Markdown report's exact-count table, as integers."""
    lines = [line for line in section(text, "Exact counts").splitlines() if re.match(r"\| \d", line)]
    return [[int(cell) for cell in line.strip("|").split("|")] for line in lines]


def test_exact_counts_are_the_exit_costs_of_the_model(folder, capsys):
    assert report(capsys, "--model", "models.py:sdn", "--input-size", "3x16x16", "-o", "r.md")[0] == 0
    costs = exit_costs(SDNResNet().eval(), input_size=16)
    assert exact_rows((folder / "r.md").read_text()) == [
        [e.exit, e.macs, e.params, e.block_macs, e.block_params, e.head_macs, e.head_params,
         e.direct_macs, e.direct_params, e.lazy_macs, e.lazy_params, e.idle_params, e.uncounted_macs]
        for e in costs]


def test_a_report_in_another_convention_has_that_convention_s_figures(folder, capsys):
    assert report(capsys, "--model", "models.py:sdn", "--input-size", "16", "--convention", "flops",
                  "-o", "r.md")[0] == 0
    costs = exit_costs(SDNResNet().eval(), input_size=16, convention="flops")
    assert [row[1] for row in exact_rows((folder / "r.md").read_text())] == [e.macs for e in costs]


def test_markdown_report_has_its_plot_and_dataflow_picture_beside_it(folder, capsys):
    code, err = report(capsys, "--model", "models.py:sdn", "--input-size", "16", "-o", "r.md")
    assert code == 0
    written = {p.name for p in folder.iterdir()} - {"models.py", "early_exit_models.py", "__pycache__"}
    pictures = ["r-cost.svg"] + (["r-layout.svg"] if shutil.which("dot") else [])
    assert written == {"r.md"} | {picture(folder, n).name for n in pictures}
    assert err.startswith("msdprof report: wrote r.md, ")


def test_a_model_report_has_a_model_section_and_no_msdnet_options_or_plan(folder, capsys):
    report(capsys, "--model", "models.py:branchy", "--input-size", "32", "-o", "r.md")
    text = (folder / "r.md").read_text()
    assert text.startswith("# branchy (BranchyDict) report\n")  # the spec whole in the summary (issue 33 item 8)
    assert "## Model" in text and "## Options" not in text and "## Layer plan" not in text
    assert "- **exits:** 2 (early, final)" in text
    assert "- **inputs:** 1x3x32x32 (zeros)" in text
    assert "BranchyDict **models.py:branchy**: 2 exits (early, final)" in text


@needs_graphviz
def test_the_layout_picture_is_what_graph_model_draws(folder, capsys):
    report(capsys, "--model", "models.py:sdn", "--input-size", "16", "-o", "r.md")
    assert main(["graph", "--model", "models.py:sdn", "--input-size", "16", "-o", "g.svg"]) == 0
    assert picture(folder, "r-layout.svg").read_bytes() == (folder / "g.svg").read_bytes()
    assert "## Dataflow graph" in (folder / "r.md").read_text()


def test_what_had_no_counting_rule_is_listed_under_the_cost_table(folder, capsys):
    report(capsys, "--model", "models.py:gated", "--input-size", "3x8x8", "--convention", "msdnet", "-o", "r.md")
    costs = " ".join(section((folder / "r.md").read_text(), "Cost per exit").split())
    assert ("> **Note.** NOT COUNTED (work with no 'msdnet' rule, or that its rule missed, taken as 0, "
            "so the figures of the exits they feed are too low; 'uncounted' per exit in --format csv or "
            "json): einsum x1, 4.10 K multiply-adds by torch's formulas (feeds exit 2). No 'msdnet' rule, "
            "taken as 0 (their kernels did no multiply-adds; any other work the convention charges is "
            "not in the figures): Softplus x1 (feeds exit 2).") in costs


def test_a_model_with_every_rule_has_no_not_counted_note(folder, capsys):
    report(capsys, "--model", "models.py:sdn", "--input-size", "16", "-o", "r.md")
    assert "NOT COUNTED" not in (folder / "r.md").read_text()


def test_the_command_line_shown_makes_the_same_report(folder, capsys):
    report(capsys, "--model", "models.py:sdn", "--model-kwargs", '{"width": 4}', "--input-size", "16",
           "--convention", "macs", "-o", "r.md")
    text = (folder / "r.md").read_text()
    shown = re.search(r"Command line: `(.*?)`", text).group(1)
    assert shown == ("msdprof report --model models.py:sdn --model-kwargs '{\"width\": 4}' "
                     "--input-size 16 --convention macs -o r.md")
    (folder / "again").mkdir()
    argv = shlex.split(shown)[2:-2] + ["-o", "again/r.md"]
    assert main(["report", *argv]) == 0
    assert (folder / "again" / "r.md").read_text() == text  # names in a report are relative to it


def test_the_cost_plot_of_a_model_uses_the_dataflow_definitions_and_no_layer_axis(folder, capsys):
    report(capsys, "--model", "models.py:sdn", "--input-size", "16", "-o", "r.md")
    svg = picture(folder, "r-cost.svg").read_text()
    assert "cumulative (all that ran until output k)" in svg
    assert "network layer the exit reads" not in svg and "blocks 1..k" not in svg


@needs_graphviz
def test_html_report_shows_the_interactive_dataflow_page(folder, capsys):
    assert report(capsys, "--model", "models.py:branchy", "--input-size", "32", "-o", "r.html")[0] == 0
    layout = picture(folder, "r-layout.html")
    assert ('<h1 title="models.py:branchy">branchy (BranchyDict): what each exit needs and costs</h1>'
            in layout.read_text())
    assert f'src="{layout.name}"' in (folder / "r.html").read_text()


@pytest.mark.parametrize("extra, message", [
    (["--all"], "--model models.py:sdn: cannot be used with --all"),
    (["--compare", "cifar10-anytime"], "--compare cifar10-anytime: cannot be used with --model"),
    (["--preset", "cifar10-anytime"], "--preset cifar10-anytime: is an MSDNet option"),
    (["--nBlocks", "5"], "--nBlocks 5: is an MSDNet option"),
])
def test_msdnet_only_options_are_refused_with_one_line_and_nothing_written(folder, capsys, extra, message):
    out = "out" if "--all" in extra else "r.md"
    code, err = report(capsys, "--model", "models.py:sdn", "--input-size", "16", *extra, "-o", out)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1
    assert not (folder / "r.md").exists() and not (folder / "out").exists()


def test_a_model_report_needs_the_input_size(folder, capsys):
    code, err = report(capsys, "--model", "models.py:sdn", "-o", "r.md")
    assert code == 2 and "--input-size missing: --model needs its inputs" in err
    assert not (folder / "r.md").exists()


def test_an_existing_report_is_not_replaced_without_force(folder, capsys):
    (folder / "r.md").write_text("mine")
    code, err = report(capsys, "--model", "models.py:sdn", "--input-size", "16", "-o", "r.md")
    assert code == 2 and "exists" in err
    assert (folder / "r.md").read_text() == "mine"


def test_the_api_reports_a_model_from_one_record(tmp_path):
    from msdprof.render.report import model_configuration, write_report

    config = model_configuration(Gated().eval(), "gated", 8)
    assert config.plan is None and config.costs == exit_costs(Gated().eval(), input_size=8)
    written = write_report(tmp_path / "g.md", [config])
    assert tmp_path / "g.md" in written


def test_without_graphviz_a_model_report_says_dot_is_needed_and_draws_no_layout():
    from msdprof.render.report import model_configuration, report_files

    files = report_files([model_configuration(Gated().eval(), "gated", 8)], "g", graphviz=False)
    assert set(files) == {"g.md", "g-cost.svg"}
    assert "needs Graphviz's `dot` program, which was not found" in files["g.md"].decode()
