"""Results in notebooks and terminals: the views :class:`msdprof.core.display.Tabular` draws with.

Each result is drawn by the table the command prints (``msdprof count``'s for :class:`ExitCosts`,
``count --memory``'s for the memory, ``compare``'s, ``sweep``'s, ``latency``'s): in a terminal as
that rich table, in a notebook as the same cells in an HTML ``<table>`` (:func:`html`: escaped,
self-contained, inline styles only; every column, whatever the width).  ``to_pandas()`` takes the
rows of the command's ``--format csv`` (the comparison's: its ``total`` rows, one per exit).

A result class not listed gets all of this in one change: inherit
:class:`~msdprof.core.display.Tabular` and add ``"ClassName": View(table, records)`` to
:data:`VIEWS`, ``table(result, every_row)`` giving its rich renderable and ``records(result)`` its
CSV columns and rows (both from its ``*_view`` module, imported when first shown).
"""

from __future__ import annotations

import html as html_text
import io
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Sequence

from rich.console import Console, Group, RenderableType
from rich.table import Table
from rich.text import Text

from msdnet import Options
from msdnet.presets import PRESETS

from .formatting import to_text

#: An HTML table shows at most this many rows and says how many more there are (a sweep can keep
#: a million configurations; ``to_pandas()`` holds every one).
HTML_ROWS = 500

Records = tuple[Sequence[str], Sequence[dict[str, Any]]]


def preset_name(options: Options | None) -> str | None:
    """The preset whose options these are exactly (titles name it as the command does), or ``None``."""
    return next((name for name, preset in PRESETS.items() if preset == options), None)


@dataclass(frozen=True)
class View:
    """How one kind of result is drawn: ``table(result, every_row)``, its rich renderable as the
    command shows it in a terminal (``every_row``: a table of every row, the cells HTML reads,
    where the terminal prints a long one faster as text); ``records(result)``, its
    ``--format csv`` column names and rows (exact figures)."""

    table: Callable[[Any, bool], RenderableType]
    records: Callable[[Any], Records]

    def rich(self, result: Any) -> RenderableType:
        return self.table(result, False)

    def html(self, result: Any) -> str:
        return html(self.table(result, True))


# --- the views, each importing its table's module when first used -------------------------------


def _costs_table(costs: Any, every_row: bool) -> RenderableType:
    from .formatting import rich_table

    return rich_table(costs, preset_name(costs.options))


def _costs_records(costs: Any) -> Records:
    from .formatting import csv_records

    return csv_records(costs)


def _memory_table(memories: Any, every_row: bool) -> RenderableType:
    from .memory_view import memory_table

    return memory_table(None, memories)


def _memory_records(memories: Any) -> Records:
    from .memory_view import memory_records

    return memory_records(memories)


def _compare_table(comparison: Any, every_row: bool) -> RenderableType:
    from .compare_view import renderable

    return renderable(comparison, comparison.model)


def _compare_records(comparison: Any) -> Records:
    from .compare_view import total_records

    return total_records(comparison)


def _sweep_table(result: Any, every_row: bool) -> RenderableType:
    from .sweep_view import renderable

    return renderable(result, every_row=every_row)


def _sweep_records(result: Any) -> Records:
    from .sweep_view import csv_records

    return csv_records(result, text=False)


def _latency_table(result: Any, every_row: bool) -> RenderableType:
    from .latency_view import renderable

    costs = result.costs
    inputs = "images" if costs.options is not None else "inputs"  # what they were is not recorded
    return renderable(result, preset_name(costs.options), inputs, plain=False)


def _latency_records(result: Any) -> Records:
    from .latency_view import csv_records

    return csv_records(result)


def _generation_table(result: Any, every_row: bool) -> RenderableType:
    from .generation_view import renderable

    return renderable(result)


def _generation_records(result: Any) -> Records:
    from .generation_view import csv_records

    return csv_records(result)


#: The view of each result class, by its name (a subclass takes its base's).
VIEWS: dict[str, View] = {
    "GenerationCosts": View(_generation_table, _generation_records),
    "ExitCosts": View(_costs_table, _costs_records),
    "ExitMemories": View(_memory_table, _memory_records),
    "Comparison": View(_compare_table, _compare_records),
    "SweepResult": View(_sweep_table, _sweep_records),
    "Latency": View(_latency_table, _latency_records),
}


def view_of(result: Any) -> View:
    """The view of ``result``'s class or its nearest base listed in :data:`VIEWS`."""
    for cls in type(result).__mro__:
        if cls.__name__ in VIEWS:
            return VIEWS[cls.__name__]
    raise TypeError(f"{type(result).__name__} has no table: add its view to msdprof.render.notebook.VIEWS")


# --- rich renderables as HTML -------------------------------------------------------------------

_CONSOLE = Console(file=io.StringIO(), color_system=None)
_ALIGN = {"left": "left", "center": "center", "right": "right", "full": "justify", "default": "left"}
_CELL = ("padding:2px 8px;white-space:nowrap;vertical-align:top;text-align:{};"
         "border-bottom:1px solid rgba(128,128,128,0.35)")


def plain(content: Any) -> str:
    """The text of a header, cell, title or caption as rich shows it (markup read, styles dropped)."""
    if content is None:
        return ""
    text = _CONSOLE.render_str(content) if isinstance(content, str) else content
    return text.plain if isinstance(text, Text) else str(text)


def escaped(content: Any) -> str:
    """:func:`plain` text as HTML: ``<``, ``>``, ``&`` and quotes escaped, line breaks as ``<br>``."""
    return html_text.escape(plain(content), quote=True).replace("\n", "<br>")


def table_html(table: Table) -> str:
    """A rich table as an HTML ``<table>``: its title as the ``<caption>``, the header row, at most
    :data:`HTML_ROWS` rows (then a line saying how many are left out), its caption under it."""
    columns = table.columns
    shown = min(table.row_count, HTML_ROWS)
    align = [_CELL.format(_ALIGN.get(c.justify, "left")) for c in columns]
    head = "".join(f'<th style="{a}">{escaped(c.header)}</th>' for c, a in zip(columns, align))
    body = "".join(
        "<tr>" + "".join(f'<td style="{a}">{escaped(c._cells[i])}</td>' for c, a in zip(columns, align))
        + "</tr>" for i in range(shown))
    title = (f'<caption style="caption-side:top;text-align:left;font-weight:bold;white-space:normal">'
             f'{escaped(table.title)}</caption>' if table.title else "")
    notes = []
    if table.row_count > shown:
        notes.append(f"The first {shown:,} of {table.row_count:,} rows; to_pandas() holds every one.")
    if table.caption:
        notes.append(plain(table.caption))
    note = "".join(f'<p style="margin:4px 0;max-width:60em;font-size:smaller;text-align:left">'
                   f'{html_text.escape(n, quote=True).replace(chr(10), "<br>")}</p>' for n in notes)
    return (f'<table style="border-collapse:collapse;margin:4px 0">{title}<thead><tr>{head}</tr>'
            f'</thead><tbody>{body}</tbody></table>{note}')


def _parts(renderable: Any) -> Iterator[str]:
    if isinstance(renderable, Group):
        for part in renderable.renderables:
            yield from _parts(part)
    elif isinstance(renderable, Table):
        yield table_html(renderable)
    elif isinstance(renderable, (str, Text)):
        if plain(renderable).strip():
            bold = isinstance(renderable, Text) and "bold" in str(renderable.style)
            yield f'<p style="margin:4px 0{";font-weight:bold" if bold else ""}">{escaped(renderable)}</p>'
    elif hasattr(renderable, "__rich__"):
        yield from _parts(renderable.__rich__())
    else:  # anything else: as the terminal shows it
        yield f"<pre>{html_text.escape(to_text(renderable), quote=True)}</pre>"


def html(renderable: Any) -> str:
    """A rich renderable (tables, text, groups of them) as self-contained HTML: no script, no style
    sheet, no external file."""
    return '<div class="msdprof">' + "".join(_parts(renderable)) + "</div>"


__all__ = ["HTML_ROWS", "VIEWS", "View", "escaped", "html", "plain", "preset_name", "table_html", "view_of"]
