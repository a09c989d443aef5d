"""`msdprof report` (issue 5): the figures a report shows are those of `exit_costs`, `reports/` is
exactly what `make reports` regenerates, a missing Graphviz is said in place of the picture, and bad
output paths write nothing."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from msdnet import PRESETS, preset
from msdprof import exit_costs
from msdprof import report as report_module
from msdprof.cli import main
from msdprof.costplot import Series, cost_plot
from msdprof.exits import ExitCost
from msdprof.report import compare_configurations, parse_item, preset_configuration, report_files

from conftest import REFERENCE

REPORTS = Path(__file__).resolve().parents[1] / "reports"

#: The reference recipes (shared/reference) and the presets that are the same networks.
REFERENCE_PRESETS = {"cifar10_anytime_seed": "cifar10-anytime", "imagenet_step4": "imagenet-step4"}

#: Exact-counts column header -> ExitCost field ("ops" is the msdnet convention's unit name).
EXACT_COLUMNS = {"exit": "exit", "layer": "layer", "cumulative ops": "macs", "cumulative params": "params"}
EXACT_COLUMNS.update({f"{p} ops": f"{p}_macs" for p in ("block", "head", "direct", "lazy")})
EXACT_COLUMNS.update({f"{p} params": f"{p}_params" for p in ("block", "head", "direct", "lazy")})


def table_under(text: str, heading: str) -> list[dict[str, str]]:
    """The rows of the first Markdown table after the heading ``heading``, as header -> cell."""
    lines = text[text.index(f" {heading}\n"):].splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("| "))
    rows = []
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip("|").split(" | ")])
    header, body = rows[0], rows[2:]
    return [dict(zip(header, row)) for row in body]


def exact_figures(text: str) -> list[dict[str, int]]:
    """The "Exact counts" table of a report as ExitCost field -> integer."""
    return [{EXACT_COLUMNS[k]: int(v) for k, v in row.items()} for row in table_under(text, "Exact counts")]


def run(capsys, *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    return code, capsys.readouterr().err


# --- the committed reports ------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(PRESETS))
def test_committed_report_shows_every_exact_figure_of_exit_costs(name):
    shown = exact_figures((REPORTS / f"{name}.md").read_text())
    assert shown == [dataclasses.asdict(e) for e in exit_costs(name)]


@pytest.mark.parametrize("name", list(PRESETS))
def test_committed_report_table_is_exit_costs_in_millions(name):
    rows = table_under((REPORTS / f"{name}.md").read_text(), "Cost per exit")
    costs = exit_costs(name)
    assert len(rows) == len(costs)
    for row, e in zip(rows, costs):
        assert float(row["cumulative M ops"].replace(",", "")) == pytest.approx(e.macs / 1e6, abs=0.005)
        assert float(row["direct M ops"].replace(",", "")) == pytest.approx(e.direct_macs / 1e6, abs=0.005)
        assert float(row["params M"]) == pytest.approx(e.params / 1e6, abs=0.005)
        assert float(row["% of full"]) == pytest.approx(100 * e.macs / costs.total_macs, abs=0.05)


def test_exact_table_covers_every_field_of_exit_cost():
    # If ExitCost grows a field (e.g. the lazy cost), the report must show it.
    shown = set(exact_figures((REPORTS / "cifar10-batch.md").read_text())[0])
    assert shown == {f.name for f in dataclasses.fields(ExitCost)}


@pytest.mark.parametrize("recipe", sorted(REFERENCE_PRESETS))
def test_reference_recipe_appears_with_the_reference_numbers(recipe):
    ref, name = REFERENCE[recipe], REFERENCE_PRESETS[recipe]
    assert preset(name).as_dict() == ref["options"]  # the preset is the reference network
    text = (REPORTS / f"{name}.md").read_text()
    assert f"3×{ref['input'][1]}×{ref['input'][2]}" in text
    shown = exact_figures(text)
    assert [row["macs"] for row in shown] == ref["ops"]
    assert [row["params"] for row in shown] == ref["params"]


def test_index_has_a_row_and_a_link_per_preset():
    rows = table_under((REPORTS / "README.md").read_text(), "MSDNet reports")
    assert [row["network"] for row in rows] == [f"[{name}]({name}.md)" for name in PRESETS]
    for row, name in zip(rows, PRESETS):
        assert float(row["full M ops"].replace(",", "")) == pytest.approx(exit_costs(name).total_macs / 1e6, abs=0.005)


def test_reports_folder_is_byte_identical_to_a_fresh_regeneration(capsys, tmp_path):
    assert report_module.graphviz_available(), "Graphviz is needed to regenerate reports/ (make graphviz)"
    fresh = tmp_path / "reports"
    code, err = run(capsys, "report", "--all", "-o", str(fresh))  # what `make reports` runs
    assert code == 0, err
    regenerated = {p.name: p.read_bytes() for p in fresh.iterdir()}
    missing = sorted(set(regenerated) - {p.name for p in REPORTS.iterdir()})
    assert not missing, f"reports/ lacks {missing}: run `make reports`"
    differs = sorted(name for name, data in regenerated.items() if (REPORTS / name).read_bytes() != data)
    assert not differs, f"reports/ differs from a regeneration in {differs}: run `make reports`"


def test_reports_folder_holds_no_report_of_a_preset_that_is_gone():
    # Files `msdprof report --all` would write (other tools may keep their own files here).
    names = {p.name for p in REPORTS.iterdir()}
    made = {f"{n}{end}" for n in PRESETS for end in (".md", "-cost.svg", "-layout.svg")} | {"README.md"}
    stale = sorted(n for n in names - made if n.endswith((".md", "-cost.svg", "-layout.svg")))
    assert not stale, f"reports/ holds {stale}, which `make reports` no longer writes: delete them"


def test_reports_hold_no_absolute_path_and_no_date():
    for path in REPORTS.iterdir():
        text = path.read_text()
        assert "/work/" not in text and "/tmp" not in text and "/home/" not in text, path.name
        assert not re.search(r"20\d\d-\d\d-\d\d", text), path.name


# --- one report, compare ------------------------------------------------------------------------


def test_report_writes_markdown_and_two_pictures_beside_it(capsys, tmp_path):
    code, err = run(capsys, "report", "--preset", "cifar100-batch", "-o", str(tmp_path / "r.md"))
    assert code == 0, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r-cost.svg", "r-layout.svg", "r.md"]
    text = (tmp_path / "r.md").read_text()
    assert "![cost vs exit of cifar100-batch](r-cost.svg)" in text
    assert "![layout of cifar100-batch](r-layout.svg)" in text


def test_report_of_options_without_a_preset_names_what_differs(capsys, tmp_path):
    code, err = run(capsys, "report", "--nBlocks", "3", "--step", "2", "-o", str(tmp_path / "r.md"))
    assert code == 0, err
    text = (tmp_path / "r.md").read_text()
    assert text.startswith("# MSDNet report: nBlocks 3, step 2\n")
    assert exact_figures(text) == [dataclasses.asdict(e) for e in exit_costs(nBlocks=3, step=2)]


def test_html_report_has_the_same_exact_figures(capsys, tmp_path):
    code, err = run(capsys, "report", "--preset", "cifar10-anytime", "-o", str(tmp_path / "r.html"))
    assert code == 0, err
    html = (tmp_path / "r.html").read_text()
    assert html.startswith("<!DOCTYPE html>") and '<img src="r-cost.svg"' in html
    cells = re.findall(r'<td class="r">(\d+)</td>', html)
    for ref_ops, ref_params in zip(REFERENCE["cifar10_anytime_seed"]["ops"], REFERENCE["cifar10_anytime_seed"]["params"]):
        assert str(ref_ops) in cells and str(ref_params) in cells


def test_compare_report_has_a_row_and_a_section_per_network(capsys, tmp_path):
    code, err = run(capsys, "report", "--compare", "cifar10-anytime", "cifar10-batch",
                    "-o", str(tmp_path / "c.md"))
    assert code == 0, err
    text = (tmp_path / "c.md").read_text()
    rows = table_under(text, "MSDNet comparison: cifar10-anytime vs cifar10-batch")
    assert [(r["network"], r["exits"]) for r in rows] == [("cifar10-anytime", "10"), ("cifar10-batch", "7")]
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "c-cifar10-anytime-layout.svg", "c-cifar10-batch-layout.svg", "c-cost.svg", "c.md"]
    second = text[text.index("\n## cifar10-batch\n"):]
    assert exact_figures(second) == [dataclasses.asdict(e) for e in exit_costs("cifar10-batch")]


def test_compare_items_lay_their_options_over_the_common_ones():
    configs = compare_configurations(["step=2,base=4", "step=4,base=2"], "cifar10-anytime", {"nBlocks": "5"})
    assert [(c.options.nBlocks, c.options.step, c.options.base, c.options.nChannels) for c in configs] == [
        (5, 2, 4, 16), (5, 4, 2, 16)]
    assert [c.label for c in configs] == [
        "cifar10-anytime with nBlocks 5", "cifar10-anytime with nBlocks 5, step 4, base 2"]


@pytest.mark.parametrize("text, parsed", [
    ("cifar10-batch", ("cifar10-batch", {})),
    ("cifar10-anytime:step=4,base=2", ("cifar10-anytime", {"step": "4", "base": "2"})),
    ("nBlocks=5,step=3", (None, {"nBlocks": "5", "step": "3"})),
])
def test_compare_item_names_a_preset_options_or_both(text, parsed):
    assert parse_item(text) == parsed


def test_report_shows_the_lazy_cost_and_its_saving_per_exit():
    config = preset_configuration("cifar10-anytime")
    text = report_files([config], "x", graphviz=False)["x.md"].decode()
    rows = table_under(text, "Cost per exit")
    for row, e in zip(rows, config.costs):
        assert float(row["lazy M ops"].replace(",", "")) == pytest.approx(e.lazy_macs / 1e6, abs=0.005)
        assert row["lazy saves %"] == f"{100 * (e.macs - e.lazy_macs) / e.macs:.1f}"
    assert rows[0]["lazy saves %"] == "11.6"  # 1 - 13,380,874 / 15,128,842 (exit_costs, cifar10-anytime)


# --- Graphviz missing ---------------------------------------------------------------------------


def test_missing_graphviz_is_said_in_place_of_the_layout(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))  # no `neato`, no `dot` to be found
    out = tmp_path / "out"
    out.mkdir()
    code, err = run(capsys, "report", "--preset", "cifar10-batch", "-o", str(out / "r.md"))
    assert code == 0, err
    assert sorted(p.name for p in out.iterdir()) == ["r-cost.svg", "r.md"]
    text = (out / "r.md").read_text()
    assert "r-layout.svg" not in text
    layout = text[text.index("## Layout\n"):text.index("## Exact counts\n")]
    assert "> **Note.** The layout picture needs Graphviz's `neato` program, which was not found" in layout


# --- bad output paths: one line, exit 2, nothing written ------------------------------------------

BAD_OUTPUTS = [
    (["-o", "{tmp}/r.txt"], "--output {tmp}/r.txt: must end in .md (Markdown) or .html (HTML)"),
    (["--html", "-o", "{tmp}/r.md"], "--output {tmp}/r.md: must end in .html with --html"),
    (["-o", "{tmp}/missing/r.md"], "--output {tmp}/missing/r.md: directory {tmp}/missing does not exist"),
    (["-o", "{tmp}"], "must end in .md (Markdown) or .html (HTML)"),
    (["--all", "-o", "{tmp}/missing/reports"], "--output {tmp}/missing/reports: directory {tmp}/missing does not exist"),
    (["--all", "-o", "{tmp}/file.md"], "--output {tmp}/file.md: is a file; give a directory"),
    (["--all", "--nBlocks", "3", "-o", "{tmp}/reports"], "--nBlocks 3: cannot be used with --all"),
    (["--compare", "cifar10-anytime:", "-o", "{tmp}/r.md"], "--compare cifar10-anytime:: must be PRESET, PRESET:OPTION=V"),
    (["--compare", "cifar10-anytime:foo=1", "-o", "{tmp}/r.md"], "--compare cifar10-anytime:foo=1: option foo: is not an MSDNet option"),
    (["--compare", "cifar10-batch", "cifar10-batch", "-o", "{tmp}/r.md"], "--compare cifar10-batch: is given twice"),
]


@pytest.mark.parametrize("argv, message", BAD_OUTPUTS, ids=[" ".join(a) for a, _ in BAD_OUTPUTS])
def test_bad_output_is_one_line_exit_2_and_writes_nothing(capsys, tmp_path, argv, message):
    (tmp_path / "file.md").write_text("precious")
    code, err = run(capsys, "report", *(a.format(tmp=tmp_path) for a in argv))
    assert code == 2
    assert err == f"msdprof: error: {err.split('msdprof: error: ', 1)[1]}" and err.count("\n") == 1
    assert message.format(tmp=tmp_path) in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file.md"]
    assert (tmp_path / "file.md").read_text() == "precious"


def test_existing_report_is_kept_without_force(capsys, tmp_path):
    (tmp_path / "r.md").write_text("precious")
    code, err = run(capsys, "report", "-o", str(tmp_path / "r.md"))
    assert code == 2 and "already exists; pass --force" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.md"]


def test_existing_picture_is_kept_without_force(capsys, tmp_path):
    (tmp_path / "r-cost.svg").write_text("precious")
    code, err = run(capsys, "report", "--preset", "cifar100-batch", "-o", str(tmp_path / "r.md"))
    assert code == 2 and f"--output {tmp_path}/r-cost.svg: already exists" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r-cost.svg"]


def test_a_new_directory_appears_whole_or_not_at_all(tmp_path, monkeypatch):
    files = {"a.md": b"a", "b.svg": b"b", "c.svg": b"c"}
    real = report_module.write_atomic
    monkeypatch.setattr(report_module, "write_atomic",
                        lambda path, data, force=False: real(path, data, force) if data != b"c" else 1 / 0)
    with pytest.raises(ZeroDivisionError):
        report_module.write_files(tmp_path / "new", files)
    assert list(tmp_path.iterdir()) == []  # neither the directory nor its staging copy


# --- the plot -----------------------------------------------------------------------------------


def test_cost_plot_is_the_same_bytes_every_time_with_no_date_and_no_font_dependence():
    series = [Series("cifar100-batch", exit_costs("cifar100-batch"))]
    first, second = cost_plot(series, "t"), cost_plot(series, "t")
    assert first == second
    svg = first.decode()
    assert "<dc:date>" not in svg
    assert "<text" not in svg  # text drawn as paths: no system font is needed to show it


def test_report_files_without_graphviz_leave_the_layout_out():
    files = report_files([preset_configuration("cifar100-batch")], "x", graphviz=False)
    assert sorted(files) == ["x-cost.svg", "x.md"]
