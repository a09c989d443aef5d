"""Showing a comparison of counters (:mod:`msdprof.analysis.compare`): a table (rich or plain), Markdown,
JSON and CSV.

The table of totals scales every count to M (K for tiny networks) with two decimals; the
differences, JSON and CSV are exact integers.  Every format carries the notes (a tool that did not
run, operators a tool did not see and the figure that holds their work, operators a tool counted as
0); JSON also lists the blind spots.
"""

from __future__ import annotations

import json
from typing import Any

from rich.console import Group, RenderableType
from rich.text import Text

from ..analysis.compare import TOOL_HELP, TOOLS, Comparison, ExitComparison, Gap
from . import formatting
from .formatting import check_format, csv_text, markdown_table, op_scale, scaled, styled_table, to_text
from ..core.units import shapes_text

FORMATS = formatting.FORMATS


def title(describe: str) -> str:
    """``Counters compared, per exit: cifar10-anytime (nBlocks 10, ...)``."""
    return f"Counters compared, per exit: {describe}"


def _scale(comparison: Comparison) -> tuple[float, str]:
    largest = max((c.total or 0 for e in comparison for c in e.counts), default=0)
    return op_scale(largest)


def total_cell(e: ExitComparison, tool: str, divisor: float) -> str:
    total = e.count(tool).total
    return "not run" if total is None else scaled(total, divisor)


def signed(n: int) -> str:
    return f"{n:+,}" if n else "0"


def terms_text(gap: Gap, between: str = " ") -> str:
    """``batch_norm 351,232 - relu 175,616 - avg_pool2d 512``: the operators summing to the gap.

    ``between``: what goes between two terms (``"\n"``: one term per line of a table).
    """
    parts = [*gap.terms, *((("unexplained", gap.unexplained),) if gap.unexplained else ())]
    if not parts:
        return "equal"
    text = ""
    for i, (op, n) in enumerate(parts):
        sign = ("-" if n < 0 else "") if i == 0 else (between + ("- " if n < 0 else "+ "))
        text += f"{sign}{op} {abs(n):,}"
    return text


def caption(comparison: Comparison) -> str:
    given = shapes_text(comparison.input_shapes, comparison.input_names, comparison.input_dtypes)
    return (f"Input {given}, {comparison.device} model in eval "
            "mode; exit k = what ran until outputs 1..k were complete (cumulative; an MSDNet: blocks "
            "and heads 1..k), each tool's running total read as each output is made. "
            + "; ".join(f"{tool}: {text}" for tool, text in TOOL_HELP.items())
            + ". A difference is the operators' differences summed; 'unexplained' is what no "
            "operator holds.")


def _notes(comparison: Comparison) -> list[str]:
    return [f"note: {n}" for n in comparison.notes]


def renderable(comparison: Comparison, describe: str, plain: bool = False) -> RenderableType:
    """Two tables (totals; differences by operator), the caption and the notes."""
    divisor, prefix = _scale(comparison)
    totals = styled_table("Totals", f"{prefix} = 10^{3 if prefix == 'K' else 6}; each tool in "
                          "its own unit.", plain)
    totals.add_column("exit", justify="right")
    for tool in TOOLS:
        totals.add_column(f"{tool}\n{prefix}", justify="right")
    for e in comparison:
        totals.add_row(str(e.exit), *(total_cell(e, tool, divisor) for tool in TOOLS))
    gaps = styled_table("Differences, operator by operator (exact)", caption(comparison), plain)
    gaps.add_column("exit", justify="right")
    gaps.add_column("difference")
    gaps.add_column("gap", justify="right")
    gaps.add_column("= operators")
    for e in comparison:
        for i, g in enumerate(e.gaps):
            gaps.add_row(str(e.exit) if i == 0 else "", g.label, signed(g.gap),
                         terms_text(g, between="\n"))
    heading = Text(title(describe), style="" if plain else "bold")
    return Group(heading, totals, gaps, *(Text(line) for line in _notes(comparison)))


def render_table(comparison: Comparison, describe: str) -> str:
    return to_text(renderable(comparison, describe, plain=True))


def render_markdown(comparison: Comparison, describe: str) -> str:
    divisor, prefix = _scale(comparison)
    totals = markdown_table(["exit", *(f"{tool} {prefix}" for tool in TOOLS)],
                            [[str(e.exit), *(total_cell(e, tool, divisor) for tool in TOOLS)]
                             for e in comparison])
    rows = [[str(e.exit), g.label, signed(g.gap), terms_text(g)] for e in comparison for g in e.gaps]
    gaps = markdown_table(["exit", "difference", "gap", "= operators"], rows)
    notes = "".join(f"\n- {n}" for n in comparison.notes)
    return (f"### {title(describe)}\n\n{totals}\n#### Differences, operator by operator (exact)\n\n"
            f"{gaps}\n{caption(comparison)}\n" + (f"\nNotes:\n{notes}\n" if notes else ""))


def render_json(comparison: Comparison, describe: str, extra: dict[str, Any] | None = None) -> str:
    return json.dumps({**(extra or {}), **comparison.as_dict()}, indent=2) + "\n"


def render_csv(comparison: Comparison, describe: str) -> str:
    """One row per exit and operator, a column per tool (exact; empty where a tool did not run);
    each exit ends with its ``total`` row, after an ``(unattributed)`` row if a total is more than
    its operators.  A gap between two tools is the difference of their columns."""
    rows = []
    for e in comparison:
        operators = dict.fromkeys(op for c in e.counts for op, _ in c.operators)
        lines = [(op, {c.tool: c.count(op) for c in e.counts if c.total is not None})
                 for op in operators]
        if any(c.unattributed for c in e.counts):
            lines.append(("(unattributed)", {c.tool: c.unattributed for c in e.counts
                                             if c.total is not None}))
        lines.append(("total", {c.tool: c.total for c in e.counts if c.total is not None}))
        rows += [{"exit": e.exit, "operator": op, **values} for op, values in lines]
    return csv_text(["exit", "operator", *TOOLS], rows)


def total_records(comparison: Comparison) -> tuple[list[str], list[dict[str, Any]]]:
    """One row per exit: ``exit`` and each tool's total (exact; ``None`` where a tool did not
    run) -- the ``total`` rows of :func:`render_csv`.  A gap between two tools is the difference
    of their columns."""
    rows = [{"exit": e.exit, **{c.tool: c.total for c in e.counts}} for e in comparison]
    return ["exit", *TOOLS], rows


RENDERERS = {"table": render_table, "json": render_json, "csv": render_csv,
             "markdown": render_markdown}


def render(comparison: Comparison, fmt: str, describe: str, **kwargs: Any) -> str:
    """``comparison`` in format ``fmt`` (one of :data:`FORMATS`)."""
    return RENDERERS[check_format(fmt, FORMATS)](comparison, describe, **kwargs)
