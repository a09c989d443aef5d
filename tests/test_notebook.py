"""Results in notebooks and terminals (issue 32, "Notebooks"): every result object shows as an HTML
table in Jupyter, as the command's rich table in a terminal, and converts to a pandas DataFrame
with the exact figures of ``--format csv``, one row per exit (per configuration of a sweep)."""

from __future__ import annotations

import csv
import importlib
import io
import os
import pkgutil
import re
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest
import rich.pretty
import torch
from rich.console import Console
from torch import nn

import msdprof
from msdnet import Options, build_model
from msdprof import compare_msdnet, exit_costs, exit_memory, measure_latency, random_batch, sweep
from msdprof.core.display import PANDAS_MISSING, Tabular
from msdprof.render import notebook
from msdprof.render.compare_view import render_csv as compare_csv
from msdprof.render.formatting import render_csv, rich_table, to_text
from msdprof.render.latency_view import render_csv as latency_csv
from msdprof.render.memory_view import memory_table, render_memory
from msdprof.render.sweep_view import render_csv as sweep_csv
from conftest import REFERENCE

GOLDEN = Path(__file__).parent / "golden"
ANYTIME = REFERENCE["cifar10_anytime_seed"]  # the authors' code's figures for cifar10-anytime
ANSI = re.compile(r"\x1b\[[0-9;]*m")


class Tables(HTMLParser):
    """The tables of an HTML fragment: per table, its caption, header cells and body rows (text;
    ``<br>`` read as a line break), and the paragraphs outside tables."""

    def __init__(self, text: str):
        super().__init__(convert_charrefs=True)
        self.tables: list[dict] = []
        self.paragraphs: list[str] = []
        self.tags: list[str] = []
        self._cell: list[str] | None = None
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        if tag == "table":
            self.tables.append({"caption": "", "header": [], "rows": []})
        elif tag == "tr" and self.tables:
            self.tables[-1]["rows"].append([])
        elif tag in ("td", "th", "caption", "p"):
            self._cell = []
        elif tag == "br" and self._cell is not None:
            self._cell.append("\n")

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)

    def handle_endtag(self, tag):
        text = "".join(self._cell or [])
        if tag == "caption":
            self.tables[-1]["caption"] = text
        elif tag == "th":
            self.tables[-1]["header"].append(text)
        elif tag == "td":
            self.tables[-1]["rows"][-1].append(text)
        elif tag == "p":
            self.paragraphs.append(text)
        if tag in ("td", "th", "caption", "p"):
            self._cell = None


def body(table: dict) -> list[list[str]]:
    """The rows of td cells (the header row holds th cells only)."""
    return [row for row in table["rows"] if row]


def text_rows(text: str, bar: str = "|") -> list[list[str]]:
    """The body rows of a table drawn as text (``bar`` between cells): rows whose first cell is a
    number."""
    rows = [[c.strip() for c in line.strip(bar).split(bar)] for line in text.splitlines()
            if line.startswith(bar)]
    return [row for row in rows if row[0].isdigit()]


def golden_rows(name: str) -> list[list[str]]:
    return text_rows((GOLDEN / name).read_text())


def csv_frame(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


@pytest.fixture(scope="module")
def costs():
    return exit_costs("cifar10-anytime")


@pytest.fixture(scope="module")
def memories():
    return exit_memory("cifar10-anytime", batch=4)


SMALL = dict(nBlocks=2, step=1, base=1, nChannels=8, growthRate=4)


@pytest.fixture(scope="module")
def comparison():
    return compare_msdnet(**SMALL)


@pytest.fixture(scope="module")
def swept():
    return sweep({"nBlocks": "9:10", "growthRate": "5,6"}, "cifar10-anytime")


@pytest.fixture(scope="module")
def latency():
    model = build_model(Options(nBlocks=3, step=1, base=1, nChannels=8, growthRate=4), 17).eval()
    return measure_latency(model, random_batch(2, (17, 17)), min_time=0.001)


# --- Jupyter: HTML tables ------------------------------------------------------------------------


def test_exit_costs_html_has_one_row_per_exit_with_the_count_tables_figures(costs):
    (table,) = Tables(costs._repr_html_()).tables
    # the same cells as `msdprof count cifar10-anytime` prints (tests/test_tables.py's golden file)
    assert body(table) == golden_rows("count-cifar10-anytime.txt")
    # the cumulative column is the authors' code's count, in M ops with two decimals
    assert [row[2] for row in body(table)] == [f"{ops / 1e6:.2f}" for ops in ANYTIME["ops"]]
    assert [row[0] for row in body(table)] == [str(k) for k in range(1, 11)]


def test_exit_costs_html_has_the_count_tables_headers_title_and_caption(costs):
    html = Tables(costs._repr_html_())
    (table,) = html.tables
    assert table["header"][:3] == ["exit", "layer", "cumulative\nM ops"]
    assert table["caption"].startswith("MSDNet per-exit cost: cifar10-anytime (nBlocks 10, ")
    assert html.paragraphs[0].startswith("One 3x32x32 image; ops counted by the 'msdnet' convention")


def test_html_is_self_contained_no_script_no_style_sheet_no_link(costs, memories, comparison, swept, latency):
    for result in (costs, memories, comparison, swept, latency):
        html = result._repr_html_()
        tags = {"div", "table", "caption", "thead", "tbody", "tr", "th", "td", "p", "br"}
        assert set(Tables(html).tags) <= tags
        assert "url(" not in html and "http" not in html


class NamedExits(nn.Module):
    """Two exits named with HTML's own characters (a returned dict's keys)."""

    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Linear(4, 4), nn.Linear(4, 2)

    def forward(self, x):
        h = self.a(x)
        return {"<b>first</b>": h, "a&b \"second\"": self.b(h)}


def test_html_escapes_what_the_model_names():
    html = exit_costs(NamedExits(), inputs=torch.zeros(1, 4))._repr_html_()
    assert "<b>" not in html and "&lt;b&gt;first&lt;/b&gt;" in html
    assert "a&amp;b &quot;second&quot;" in html
    assert "exits 1=<b>first</b>, 2=a&b \"second\"" in Tables(html).paragraphs[0]


def test_jupyters_formatter_gives_the_html_table(costs):
    """What an IPython kernel sends Jupyter for a cell ending in ``costs``: the HTML beside the
    plain-text repr."""
    from IPython.core.formatters import DisplayFormatter

    data, _ = DisplayFormatter().format(costs)
    assert data["text/html"] == costs._repr_html_()
    assert data["text/plain"].startswith("ExitCosts(options=Options(")


def test_every_result_shows_its_commands_tables_in_html(memories, comparison, swept, latency):
    assert [t["caption"] for t in Tables(memories._repr_html_()).tables] == [
        "MSDNet per-exit memory, batch 4"]
    assert [t["caption"] for t in Tables(comparison._repr_html_()).tables] == [
        "Totals", "Differences, operator by operator (exact)"]
    assert [t["caption"] for t in Tables(swept._repr_html_()).tables] == [
        "MSDNet sweep: 4 configurations of nBlocks x growthRate over cifar10-anytime"]
    assert [t["caption"] for t in Tables(latency._repr_html_()).tables] == [
        "MSDNet measured time per exit: nBlocks 3, stepmode even, step 1, base 1, nChannels 8, "
        "growthRate 4, grFactor 1-2-4, bnFactor 1-2-4, prune max, reduction 0.5, bottleneck true, "
        "data cifar10"]


def test_a_long_html_table_says_how_many_rows_it_leaves_out(swept, monkeypatch):
    monkeypatch.setattr(notebook, "HTML_ROWS", 3)
    html = Tables(swept._repr_html_())
    assert len(body(html.tables[0])) == 3
    assert html.paragraphs[0] == "The first 3 of 4 rows; to_pandas() holds every one."


# --- terminals: rich tables ----------------------------------------------------------------------


def test_a_rich_console_prints_the_count_table_in_colour(costs, monkeypatch):
    monkeypatch.setenv("TERM", "xterm-256color")  # rich draws ASCII boxes on TERM=dumb
    out = io.StringIO()
    Console(file=out, width=120, force_terminal=True, color_system="standard").print(costs)
    printed = out.getvalue()
    assert "\x1b[1m" in printed  # bold: a terminal's table, not the dataclass's repr
    assert ANSI.sub("", printed).lstrip().startswith("MSDNet per-exit cost: cifar10-anytime (nBlocks 10,")
    assert text_rows(ANSI.sub("", printed), "│") == golden_rows("count-cifar10-anytime.txt")


def test_the_repl_shows_the_table_after_rich_pretty_install(costs, monkeypatch):
    monkeypatch.setattr(sys, "displayhook", sys.displayhook)  # restored after the test
    out = io.StringIO()
    rich.pretty.install(Console(file=out, width=120, color_system=None))
    sys.displayhook(costs)
    shown = "".join(line.rstrip() + "\n" for line in out.getvalue().splitlines())
    assert shown == to_text(rich_table(costs, "cifar10-anytime"), 120)  # `msdprof count`'s, in a terminal


def test_the_memory_alone_table_matches_the_golden_file_at_this_width(memories):
    # Regenerate with: MSDPROF_REGEN_GOLDEN=1 python -m pytest tests/test_notebook.py
    for width in (80, 120):
        text = to_text(memory_table(None, memories, plain=True), width)
        golden = GOLDEN / f"memory-alone-cifar10-anytime-{width}.txt"
        if os.environ.get("MSDPROF_REGEN_GOLDEN"):
            golden.write_text(text)
        assert text == golden.read_text()


# --- pandas ----------------------------------------------------------------------------------------


def test_exit_costs_to_pandas_has_one_row_per_exit_and_the_csv_columns(costs):
    frame = costs.to_pandas()
    assert frame.shape == (10, 15)
    assert list(frame.columns) == list(csv_frame(render_csv(costs))[0])
    assert list(frame["exit"]) == list(range(1, 11))


def test_exit_costs_to_pandas_holds_the_exact_integers_of_the_authors_code(costs):
    frame = costs.to_pandas()
    assert list(frame["macs"]) == ANYTIME["ops"]
    assert list(frame["params"]) == ANYTIME["params"]
    assert str(frame["macs"].dtype) == "int64"


def test_exit_costs_to_pandas_equals_the_csv_cell_for_cell(costs):
    rows = costs.to_pandas().to_dict("records")
    assert [{k: str(v) for k, v in row.items()} for row in rows] == csv_frame(render_csv(costs))


def test_an_unknown_figure_is_missing_not_a_float(costs):
    from msdprof.core.display import frame
    import pandas

    made = frame(pandas, ["exit", "uncounted_macs"], [{"exit": 1, "uncounted_macs": 12},
                                                       {"exit": 2, "uncounted_macs": None}])
    assert str(made["uncounted_macs"].dtype) == "Int64"
    assert made["uncounted_macs"][0] == 12 and made["uncounted_macs"].isna().tolist() == [False, True]


def test_memory_to_pandas_has_one_row_per_exit_in_bytes(memories, costs):
    frame = memories.to_pandas()
    assert frame.shape == (10, 12)
    assert list(frame["exit"]) == list(range(1, 11))
    # float32 parameters: 4 bytes each, of the authors' code's parameter count
    assert frame["param_bytes"].iloc[-1] == 4 * ANYTIME["params"][-1]
    command = csv_frame(render_memory(exit_costs("cifar10-anytime"), memories, "csv"))  # count --memory
    for column in frame.columns:
        assert [str(v) for v in frame[column]] == [row[column] for row in command], column


def test_comparison_to_pandas_has_each_tools_total_per_exit(comparison):
    frame = comparison.to_pandas()
    assert list(frame.columns) == ["exit", "msdnet", "macs", "flops", "fvcore", "FlopCounterMode"]
    assert frame.shape == (2, 6)
    totals = [row for row in csv_frame(compare_csv(comparison, "")) if row["operator"] == "total"]
    assert [{k: str(v) for k, v in row.items()} for row in frame.to_dict("records")] == [
        {k: v for k, v in row.items() if k != "operator"} for row in totals]
    assert list(frame["msdnet"]) == [e.macs for e in exit_costs(**SMALL)]


def test_a_tool_that_did_not_run_is_missing_in_pandas():
    meta = build_model(Options(**SMALL), device="meta")
    frame = compare_msdnet(meta).to_pandas()
    assert frame["fvcore"].isna().all() and str(frame["fvcore"].dtype) == "object"
    assert not frame["macs"].isna().any()


def test_sweep_to_pandas_has_one_row_per_configuration(swept):
    frame = swept.to_pandas()
    assert frame.shape == (4, 11)
    assert list(frame.columns) == list(csv_frame(sweep_csv(swept))[0])
    assert list(frame["nBlocks"]) == [9, 9, 10, 10] and list(frame["growthRate"]) == [5, 6, 5, 6]
    # nBlocks 10, growthRate 6 is cifar10-anytime: the authors' code's figures
    row = frame[(frame["nBlocks"] == 10) & (frame["growthRate"] == 6)].iloc[0]
    assert row["total_macs"] == ANYTIME["ops"][-1]
    assert row["exit_macs"] == tuple(ANYTIME["ops"]) and row["exit_params"] == tuple(ANYTIME["params"])


def test_latency_to_pandas_has_one_row_per_exit_and_the_csv_columns(latency):
    frame = latency.to_pandas()
    assert frame.shape == (3, len(csv_frame(latency_csv(latency))[0]))
    assert list(frame.columns) == list(csv_frame(latency_csv(latency))[0])
    assert list(frame["macs"]) == [e.macs for e in latency.costs]
    assert list(frame["eager_ms"]) == [e.eager.median_ms for e in latency.exits]  # unrounded


def test_to_pandas_without_pandas_is_one_line_naming_the_extra(costs, monkeypatch):
    monkeypatch.setitem(sys.modules, "pandas", None)  # import pandas now fails
    with pytest.raises(ModuleNotFoundError) as caught:
        costs.to_pandas()
    assert str(caught.value) == PANDAS_MISSING
    assert "\n" not in PANDAS_MISSING and "pip install 'msdprof[pandas]'" in PANDAS_MISSING


# --- the mechanism -------------------------------------------------------------------------------


def test_every_tabular_result_has_a_view():
    """A result class that inherits Tabular without its view in VIEWS would fail on display."""
    for module in pkgutil.walk_packages(msdprof.__path__, "msdprof."):
        if not module.name.startswith("msdprof.cli"):
            importlib.import_module(module.name)
    results = Tabular.__subclasses__()
    assert {cls.__name__ for cls in results} >= {"ExitCosts", "ExitMemories", "Comparison",
                                                 "SweepResult", "Latency"}
    for cls in results:
        assert any(base.__name__ in notebook.VIEWS for base in cls.__mro__), cls


def test_a_subclass_is_drawn_by_its_bases_view(costs):
    class Mine(type(costs)):
        pass

    assert notebook.view_of(Mine(**{f: getattr(costs, f) for f in costs.__dataclass_fields__})) \
        is notebook.VIEWS["ExitCosts"]


def test_a_generation_shows_as_its_table_and_has_a_pandas_row_per_exit_and_cache_length():
    from msdprof import generation_costs
    from msdprof.render.generation_view import render_csv as generation_csv

    config = dict(model_type="llama", hidden_size=16, intermediate_size=32, num_hidden_layers=4,
                  num_attention_heads=4, num_key_value_heads=2, vocab_size=40, max_position_embeddings=64)
    result = generation_costs(hf_config=config, exit_layers="2,4", prompt=3, at="3,5")
    frame = result.to_pandas()
    assert frame.shape[0] == 2 * 2  # 2 exits x 2 cache lengths
    assert [{k: str(v) for k, v in row.items()} for row in frame.to_dict("records")] == csv_frame(
        generation_csv(result))
    page = result._repr_html_()
    assert page.startswith("<") and "exit 1" in page.lower()
