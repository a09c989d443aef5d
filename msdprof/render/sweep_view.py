"""Showing a sweep (:mod:`msdprof.analysis.sweep`): a table (rich or plain), Markdown, JSON and CSV.

Tables scale operation counts to one unit for the whole sweep (M, or K when every network is
tiny) with two decimals and parameters to M; JSON and CSV hold exact integers.  Every format says
how many configurations were counted, skipped (with the reasons), filtered out and dominated.
"""

from __future__ import annotations

import json
from typing import Any

from rich.console import Console, Group, RenderableType
from rich.text import Text

from msdnet.options import format_value

from ..core.counting import CONVENTION_HELP
from ..core.units import format_count
from .formatting import (OP_NAMES, check_format, csv_text, markdown_table, op_unit, scaled, styled_table,
                         text_width, to_text)
from ..analysis.sweep import SweepResult

FORMATS = ("table", "json", "csv", "markdown")
_REASONS_SHOWN = 10  # distinct skip reasons listed in a table; JSON lists every skipped one


def _unit(result: SweepResult) -> tuple[float, str]:
    return op_unit(max((row.total_macs for row in result.rows), default=10**6), result.convention)


def _value(value: Any) -> str:
    return format_value(value)


def _configurations(n: int) -> str:
    return f"{n} configuration" + ("" if n == 1 else "s")


def title(result: SweepResult) -> str:
    """``MSDNet sweep: 576 configurations of nBlocks x step x ... over cifar10-anytime``; with an
    empty grid ``MSDNet sweep: 1 configuration (no option varied): cifar10-anytime``."""
    names = " x ".join(option for option, _ in result.grid)
    base = result.preset if result.preset else "the authors' defaults"
    if not names:
        return f"MSDNet sweep: {_configurations(result.size)} (no option varied): {base}"
    return f"MSDNet sweep: {_configurations(result.size)} of {names} over {base}"


def summary(result: SweepResult) -> str:
    """One line: how many configurations were counted, skipped, filtered out, dominated, shown."""
    parts = [_configurations(result.size), f"{result.counted} counted"]
    if result.skipped:
        parts.append(f"{len(result.skipped)} skipped (invalid combinations)")
    filters = [name for name, value in (("--max-macs", result.max_macs),
                                        ("--exit-budget", result.exit_budget)) if value is not None]
    if filters:
        parts.append(f"{result.filtered} over {' or '.join(filters)}")
    if result.pareto:
        parts.append(f"{result.dominated} dominated")
    order = f" by {result.sort}" if result.sort else ""
    if result.beyond_top:
        parts.append(f"the first {len(result.rows)} of {result.kept}{order} shown")
    else:
        parts.append(f"{len(result.rows)} shown{order if len(result.rows) > 1 else ''}")
    if result.verified:
        parts.append("every count verified equal to the forward hooks'")
    return ", ".join(parts)


def caption(result: SweepResult) -> str:
    divisor, unit = _unit(result)
    size = ("each configuration's data-set default input" if result.input_size is None
            else f"input {result.input_size}")
    lines = [
        f"One image ({size}); {unit} by the '{result.convention}' convention: "
        f"{CONVENTION_HELP[result.convention]}. exit 1 and all exits: cumulative cost (blocks and "
        "heads 1..k). # is the position in the grid.",
    ]
    ops = OP_NAMES[result.convention]
    if result.max_macs is not None:
        lines.append(f"--max-macs {format_count(result.max_macs)} {ops}: kept if all exits cost at "
                     "most this.")
    if result.exit_budget is not None:
        lines.append(f"--exit-budget {format_count(result.exit_budget)} {ops}: kept if exit 1 costs "
                     "at most this; 'in budget' = the exits whose cumulative cost fits it.")
    if result.pareto:
        lines.append("--pareto: only configurations no other one beats in both total cost and "
                     "parameters (no worse in both, better in one).")
    lines.append(summary(result) + ".")
    return "\n".join(lines)


def _headers(result: SweepResult) -> list[str]:
    _, unit = _unit(result)
    headers = ["#", *(option for option, _ in result.grid), "exits", "layers",
               f"exit 1\n{unit}", f"all exits\n{unit}", "params\nM"]
    return headers + (["in\nbudget"] if result.exit_budget is not None else [])


def _cells(result: SweepResult) -> list[list[str]]:
    divisor, _ = _unit(result)
    rows = []
    for row in result.rows:
        cells = [str(row.index), *(_value(v) for _, v in row.values), str(row.exits),
                 str(row.options.nLayers), scaled(row.first_macs, divisor),
                 scaled(row.total_macs, divisor), scaled(row.total_params, 1e6)]
        if result.exit_budget is not None:
            cells.append(str(row.budget_exits))
        rows.append(cells)
    return rows


def skip_lines(result: SweepResult) -> list[str]:
    """``skipped N: reason`` per distinct reason, the most frequent first (at most 10 listed)."""
    reasons = result.skip_reasons()
    lines = [f"skipped {n}: {reason}" for reason, n in reasons[:_REASONS_SHOWN]]
    if len(reasons) > _REASONS_SHOWN:
        rest = sum(n for _, n in reasons[_REASONS_SHOWN:])
        lines.append(f"skipped {rest}: {len(reasons) - _REASONS_SHOWN} other reasons "
                     "(--format json lists every skipped configuration)")
    return lines


def _table(result: SweepResult, cells: list[list[str]], plain: bool) -> RenderableType:
    g = len(result.grid)  # columns: #, the grid's options, exits, layers, exit 1, all exits, params
    table = styled_table(title(result), caption(result), plain,  # the cost of all exits stays
                         drop_order=[g + 2, g + 1, g + 3, g + 5, g + 6, *range(g, 0, -1)])
    for header in _headers(result):
        table.add_column(header, justify="right")
    for row in cells:
        table.add_row(*row)
    skips = skip_lines(result)
    return Group(table, Text("\n".join(skips))) if skips else table


class _PlainText:
    """A table of many rows in a terminal: the plain text of :func:`render_table` at the
    terminal's width (rich lays out a few hundred rows a second)."""

    def __init__(self, result: SweepResult):
        self.result = result

    def __rich_console__(self, console: Console, options: Any) -> Any:
        yield Text(render_table(self.result, options.max_width).rstrip("\n"))


def renderable(result: SweepResult, plain: bool = False, every_row: bool = False) -> RenderableType:
    """The sweep as a rich table, and the skip reasons under it (as plain text past
    :data:`RICH_ROWS` rows, unless ``every_row``: a table to read the cells of, as HTML does)."""
    if len(result.rows) > RICH_ROWS and not plain and not every_row:
        return _PlainText(result)
    return _table(result, _cells(result), plain)


#: Tables of more rows are laid out by :func:`render_table`'s fast path in a terminal too.
RICH_ROWS = 200


def render_table(result: SweepResult, width: int | None = None) -> str:
    """The plain table at console ``width`` (default :func:`~msdprof.render.formatting.text_width`).  Rich lays out only the title, the header, the widest
    cell of every column and the caption; the rows are then written at the column widths it chose
    (right-justified, one line each), which is what rich prints for them.  Where a cell would wrap
    (a table wider than ``width``) rich lays out every row."""
    cells, width = _cells(result), width or text_width()
    if not cells:
        return to_text(_table(result, cells, plain=True), width)
    widest = [max((row[i] for row in cells), key=len) for i in range(len(cells[0]))]
    natural = [max(len(cell), *map(len, header.split("\n")))
               for cell, header in zip(widest, _headers(result))]

    def line(row: list[str]) -> str:
        return "|" + "|".join(f" {cell.rjust(span)} " for cell, span in zip(row, natural)) + "|"

    lines = to_text(_table(result, [widest], plain=True), width).split("\n")
    rule = "|" + "+".join("-" * (span + 2) for span in natural) + "|"
    at = lines.index(rule) if rule in lines else None
    if at is None or at + 1 >= len(lines) or lines[at + 1] != line(widest):
        return to_text(_table(result, cells, plain=True), width)  # columns narrowed: rich lays out all
    return "\n".join(lines[:at + 1] + [line(row) for row in cells] + lines[at + 2:])


def render_markdown(result: SweepResult) -> str:
    headers = [h.replace("\n", " ") for h in _headers(result)]
    text = f"### {title(result)}\n\n{markdown_table(headers, _cells(result))}\n{caption(result)}\n"
    skips = skip_lines(result)
    return text + ("\n" + "\n".join(f"- {line}" for line in skips) + "\n" if skips else "")


def render_json(result: SweepResult) -> str:
    return json.dumps(result.as_dict(), indent=2) + "\n"


CSV_COLUMNS = ("exits", "layers", "first_macs", "total_macs", "total_params")


def render_csv(result: SweepResult) -> str:
    """One line per configuration shown, exact integers; ``exit_macs``/``exit_params`` hold the
    cumulative cost and parameters of exits 1..k joined by ``;``; ``convention`` names the unit."""
    return csv_text(*csv_records(result))


def csv_records(result: SweepResult, text: bool = True) -> tuple[list[str], list[dict[str, Any]]]:
    """The column names and rows (one per configuration shown, exact) of :func:`render_csv`;
    ``text=False``: the grid's values as JSON gives them (numbers as numbers) and ``exit_macs``/
    ``exit_params`` as tuples of integers rather than joined by ``;``."""
    names = [option for option, _ in result.grid]
    budget = ["budget_exits"] if result.exit_budget is not None else []
    fieldnames = ["index", *names, *CSV_COLUMNS, *budget, "exit_macs", "exit_params", "convention"]

    def value(v: Any) -> Any:
        return _value(v) if text or isinstance(v, tuple) else v

    def per_exit(figures: list[int]) -> Any:
        return ";".join(map(str, figures)) if text else tuple(figures)

    lines = []
    for row in result.rows:
        line = {"index": row.index, **{k: value(v) for k, v in row.values},
                "exits": row.exits, "layers": row.options.nLayers, "first_macs": row.first_macs,
                "total_macs": row.total_macs, "total_params": row.total_params,
                "exit_macs": per_exit([e.macs for e in row.costs]),
                "exit_params": per_exit([e.params for e in row.costs]),
                "convention": result.convention}
        if budget:
            line["budget_exits"] = row.budget_exits
        lines.append(line)
    return fieldnames, lines


def render(result: SweepResult, fmt: str) -> str:
    """``result`` in format ``fmt`` (one of :data:`FORMATS`)."""
    renderers = {"table": render_table, "json": render_json, "csv": render_csv,
                 "markdown": render_markdown}
    return renderers[check_format(fmt, FORMATS)](result)




class ProgressBar:
    """``progress(done, total)`` for :func:`msdprof.analysis.sweep.sweep`: a rich progress bar on stderr,
    started at the first call (once every worker process has started) and gone when closed."""

    def __init__(self, console: Console | None = None):
        self._console = console or Console(stderr=True)
        self._progress: Any = None
        self._task: Any = None

    def __call__(self, done: int, total: int) -> None:
        if self._progress is None:
            from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                                       TimeElapsedColumn, TimeRemainingColumn)
            self._progress = Progress(
                TextColumn("counting configurations"), BarColumn(), MofNCompleteColumn(),
                TimeElapsedColumn(), TimeRemainingColumn(), console=self._console, transient=True,
            )
            self._progress.start()
            self._task = self._progress.add_task("sweep", total=total)
        self._progress.update(self._task, completed=done)

    def close(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None

    def __enter__(self) -> "ProgressBar":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


__all__ = ["FORMATS", "ProgressBar", "caption", "csv_records", "render", "renderable", "skip_lines", "summary", "title"]
