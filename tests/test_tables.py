"""Tables never cut a number, at any terminal width (issue 14): headers wrap between words, and
when even that is too wide, columns are left out and the caption names them."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from msdnet import PRESETS
from msdprof import exit_costs
from msdprof.analysis.budget import anytime, anytime_steps, expected_cost, geometric_family
from msdprof.render.budget_view import anytime_renderable, expected_renderable
from msdprof.render.formatting import drop_order, render_table, table_columns, to_text
from msdprof.analysis.sweep import sweep
from msdprof.render.sweep_view import render_table as render_sweep

GOLDEN = Path(__file__).parent / "golden"


def data_rows(text: str) -> list[list[str]]:
    """The cells of the body rows of a plain (ASCII-boxed) table: rows whose first cell is a number."""
    rows = []
    for line in text.splitlines():
        if line.startswith("|") and not line.startswith("|-"):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if cells[0].isdigit():
                rows.append(cells)
    return rows


def is_subsequence(part: list[str], whole: list[str]) -> bool:
    rest = iter(whole)
    return all(any(cell == other for other in rest) for cell in part)


@pytest.mark.parametrize("width, golden", [(80, "count-cifar10-anytime-80.txt"),
                                           (120, "count-cifar10-anytime.txt")])
def test_count_table_matches_the_golden_file_at_this_width(width, golden):
    # Regenerate with: MSDPROF_REGEN_GOLDEN=1 python -m pytest tests/test_tables.py
    text = render_table(exit_costs("cifar10-anytime"), "cifar10-anytime", width=width)
    if os.environ.get("MSDPROF_REGEN_GOLDEN"):
        (GOLDEN / golden).write_text(text)
    assert text == (GOLDEN / golden).read_text()


def test_at_80_columns_the_left_out_columns_are_named():
    text = render_table(exit_costs("cifar10-anytime"), "cifar10-anytime", width=80)
    assert max(map(len, text.splitlines())) <= 80
    assert "Not shown at 80 columns: direct M ops, direct params M (a wider terminal, or\n--format csv" in text


def test_at_80_columns_the_lazy_columns_stay_and_the_direct_ones_go_first():
    # issue 26 item 9: the README stresses the lazy figures; the direct ones are left out first
    header = render_table(exit_costs("cifar10-anytime"), "cifar10-anytime", width=80).split("|---")[0]
    assert "lazy" in header and "saves" in header and "direct" not in header


def test_drop_order_ranks_headers_by_the_first_entry_they_start_with():
    headers = ["exit", "layer", "cumulative\nM ops", "params\nM", "% of\nfull", "block\nM ops",
               "head\nM ops", "direct\nM ops", "direct\nparams M", "lazy\nM ops", "lazy\nsaves %"]
    assert drop_order(headers) == [8, 7, 5, 6, 4, 3, 1, 10, 9, 2]


@pytest.mark.parametrize("width", [80, 120])
def test_no_line_of_a_plain_table_ends_in_a_space(width):
    text = render_table(exit_costs("cifar10-anytime"), "cifar10-anytime", width=width)
    assert [line for line in text.splitlines() if line != line.rstrip()] == []


def test_piped_tables_take_the_width_columns_gives(monkeypatch):
    costs = exit_costs("cifar10-anytime")
    monkeypatch.setenv("COLUMNS", "80")
    assert render_table(costs, "cifar10-anytime") == render_table(costs, "cifar10-anytime", width=80)
    monkeypatch.setenv("COLUMNS", "not a width")
    assert render_table(costs, "cifar10-anytime") == render_table(costs, "cifar10-anytime", width=120)


def test_at_120_columns_every_column_is_shown():
    text = render_table(exit_costs("cifar10-anytime"), "cifar10-anytime", width=120)
    assert "Not shown" not in text
    assert len(data_rows(text)[0]) == len(table_columns(exit_costs("cifar10-anytime")))


@pytest.mark.parametrize("width", [60, 80, 100, 120])
@pytest.mark.parametrize("name", list(PRESETS))
def test_no_count_cell_is_cut_at_any_width(name, width):
    costs = exit_costs(name)
    text = render_table(costs, name, width=width)
    full = [[cell(e) for _, cell in table_columns(costs)] for e in costs]
    shown = data_rows(text)
    assert "…" not in text and max(map(len, text.splitlines())) <= width
    assert len(shown) == len(costs)
    for row, every in zip(shown, full):  # each shown cell whole, in its column's order
        assert row[0] == every[0] and is_subsequence(row, every)
        assert len(row) >= 2


def test_sweep_table_at_80_columns_keeps_the_totals_whole():
    result = sweep({"nBlocks": "3:4", "step": "1:2", "stepmode": "even,lin_grow",
                    "grFactor": "1-2-4,1-2-4-4", "bnFactor": "1-2-4,1-2-4-4"}, jobs=1)
    text = render_sweep(result, width=80)
    assert "…" not in text and max(map(len, text.splitlines())) <= 80
    totals = {f"{row.total_macs / 1e6:,.2f}" for row in result.rows}
    assert {cells[-2] for cells in data_rows(text)} == totals  # all exits M ops, then params M
    assert "Not shown at 80 columns: exits, layers, exit 1 M ops (a wider" in text


def test_budget_tables_at_60_columns_cut_no_number():
    costs = exit_costs("imagenet-step7")
    anytime_text = to_text(anytime_renderable(costs, anytime(costs, 300 * 10**6), anytime_steps(costs)), 60)
    rows = [expected_cost(costs, d) for d in geometric_family(len(costs))]
    expected_text = to_text(expected_renderable(costs, rows), 60)
    for text in (anytime_text, expected_text):
        assert "…" not in text and max(map(len, text.splitlines())) <= 60
    assert [cells[2] for cells in data_rows(anytime_text)] == [
        "615.69", "1,436.39", "2,283.21", "2,967.42", "3,253.79"]  # eager budgets, as count shows


def test_a_name_with_brackets_is_shown_as_it_is_not_read_as_markup():
    import torch
    from torch import nn

    from msdprof import exit_costs
    from msdprof.render.formatting import render_table

    class Named(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Linear(4, 2), nn.Linear(4, 2)

        def forward(self, x):
            return {"head[bold]": self.a(x), "[b]final": self.b(x)}

    text = render_table(exit_costs(Named(), inputs=torch.zeros(1, 4)), "models.py:[red]x", width=200)
    assert "head[bold]" in text and "[b]final" in text and "models.py:[red]x" in text
