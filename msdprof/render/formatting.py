"""Rendering per-exit costs: a rich table, JSON, CSV and Markdown, with explicit units.

Tables scale operation counts to one unit per table (M or G, chosen from the total) and parameters
to millions; JSON and CSV carry the exact integers.
"""

from __future__ import annotations

import copy
import csv
import io
import json
import os
from dataclasses import asdict, fields
from typing import TYPE_CHECKING, Any, Callable, Iterable, Sequence

from rich import box
from rich.cells import cell_len
from rich.console import Console, ConsoleOptions, RenderResult
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

from msdnet.options import OptionError, Options, did_you_mean, format_value

from ..core.units import format_count
from msdnet.presets import PRESETS

from ..core.conventions import CONVENTION_HELP

if TYPE_CHECKING:  # torch-free at import: the CLI's --help reads FORMATS and parse_count
    from ..core.exits import ExitCost, ExitCosts

FORMATS = ("table", "json", "csv", "markdown")
#: The console width of plain tables (pipes, files) when ``COLUMNS`` does not give one.
TEXT_WIDTH = 120
#: The narrowest ``COLUMNS`` honoured (a smaller one is ignored: no table fits it).
MIN_WIDTH = 40


#: What one counted operation is called in each convention.
OP_NAMES = {"msdnet": "ops", "macs": "MACs", "flops": "FLOPs"}


def check_format(name: str, formats: tuple[str, ...] = FORMATS) -> str:
    if name not in formats:
        raise OptionError("format", name, "must be one of " + ", ".join(formats) + did_you_mean(name, formats))
    return name


def op_unit(total: int, convention: str) -> tuple[float, str]:
    """(divisor, unit name such as ``M ops``) for a table whose largest count is ``total``
    operations of ``convention``."""
    divisor, prefix = op_scale(total)
    return divisor, f"{prefix} {OP_NAMES[convention]}"


def op_scale(total: int) -> tuple[float, str]:
    """(divisor, prefix) for a table whose largest count is ``total``: M (K below a million), so
    that every exit of one network keeps two significant decimals."""
    return (1e6, "M") if total >= 1e6 else (1e3, "K")


def scaled(value: int, divisor: float) -> str:
    return f"{value / divisor:,.2f}"


def network_name(options: Options, name: str | None = None) -> str:
    """What the options are, by the base they were laid over: the preset ``name`` as it is
    (``cifar10-anytime``), a preset with options changed (``cifar10-batch with nBlocks 5``), or
    the authors' defaults with options changed (``the authors' defaults with nBlocks 7``).  A
    ``name`` that is not a preset is returned as it is."""
    base = PRESETS.get(name) if name else Options()
    if base is None:
        return str(name)
    defaults = base.as_dict()
    changed = ", ".join(f"{k} {format_value(v)}" for k, v in options.as_dict().items() if v != defaults[k])
    label = name or "the authors' defaults"
    return f"{label} with {changed}" if changed else label


def title(costs: ExitCosts, name: str | None = None) -> str:
    """``MSDNet per-exit cost: cifar10-anytime (nBlocks 10, ...)``: the base (see
    :func:`network_name`), then every option; another model: ``SDNResNet per-exit cost:
    models.py:sdn``."""
    if costs.options is None:
        return f"{costs.model} per-exit cost" + (f": {name}" if name else "")
    return f"MSDNet per-exit cost: {network_name(costs.options, name)} ({costs.options.describe()})"


def unsupported_note(costs: ExitCosts) -> str:
    """What ran work its convention did not count (taken as 0), with what its kernels did, in a
    sentence or two; or ``""``.  Modules whose kernels did no multiply-add (an embedding's lookup,
    a norm, in ``msdnet``) are named apart: the figures are not known to be too low for them."""
    if not costs.unsupported:
        return ""

    def items(found: list) -> str:
        return "; ".join(
            f"{u.type} x{u.calls}" + ("" if u.kernel_macs == 0 else ", " + (
                f"{format_count(u.kernel_macs)} multiply-adds by torch's formulas" if u.kernel_macs is not None
                else "kernels no formula measures"))
            + f" (feeds exit{'s' if len(u.exits) != 1 else ''} {', '.join(map(str, u.exits)) or 'none'})"
            for u in found)

    low = [u for u in costs.unsupported if u.kernel_macs != 0]
    free = [u for u in costs.unsupported if u.kernel_macs == 0]
    text = ""
    if low:
        text += (f" NOT COUNTED (work with no '{costs.convention}' rule, or that its rule missed, taken "
                 f"as 0, so the figures of the exits they feed are too low; 'uncounted' per exit in "
                 f"--format csv or json): {items(low)}.")
    if free:
        text += (f" No '{costs.convention}' rule, taken as 0 (their kernels did no multiply-adds; any "
                 f"other work the convention charges is not in the figures): {items(free)}.")
    return text


#: How many modules that did not run a note names (the JSON lists every one).
IDLE_SHOWN = 4


def counted_note(costs: ExitCosts) -> str:
    """What the figures of ``costs`` hold for, in a few sentences (or ``""``): where the model read
    tensor values (its figures hold for these inputs), exits it returned twice (left out), modules
    that did not run (their parameters in no figure)."""
    parts = []
    if costs.samples > 1:
        parts.append(f" Over {costs.samples} samples: " + (
            "each figure is the mean, rounded (min and max beside the cumulative; --format json or csv "
            "give every figure's)." if costs.spread else "every sample gave the same figures."))
        parts += [f" Exit {costs.exit_names[s.exit - 1]} was returned on {s.samples} of {costs.samples} "
                  "samples: its figures are over those." for s in costs.spread if s.samples < costs.samples]
    if costs.value_reads:
        reads = "; ".join(map(str, costs.value_reads))
        parts.append(f" Counted on the inputs given: the model read tensor values ({reads}), so these "
                     "figures hold for these inputs and may differ on others.")
    for name, earlier in costs.same_tensor:
        parts.append(f" Exit {name} is the very tensor of exit {earlier}, returned again: left out, "
                     f"not given exit {earlier}'s figures.")
    if costs.idle:
        shown = "; ".join(f"{i.module} ({i.type}, {i.params:,} params"
                          + (f", idle from exit {i.exit}" if i.exit is not None else "") + ")"
                          for i in costs.idle[:IDLE_SHOWN])
        more = len(costs.idle) - IDLE_SHOWN
        parts.append(f" Did not run on these inputs, their parameters in no figure: {shown}"
                     + (f"; and {more} more (--format json lists them)" if more > 0 else "") + ".")
    return "".join(parts)


def lazy_gap_note(costs: ExitCosts) -> str:
    """One line when an exit's lazy count is far below its eager one (see
    :attr:`~msdprof.core.exits.ExitCosts.lazy_gap`), else ``""``."""
    gap = costs.lazy_gap
    if gap is None:
        return ""
    return (f" Exit {gap.exit}: lazy is {_percent(gap.macs - gap.lazy_macs, gap.macs)}% below cumulative "
            "-- the forward computes work for later exits before this output is complete; an early exit "
            "pays the cumulative figure as the model runs, the lazy one only if its forward stops at "
            "what the exit reads.")


def wrapper_note(costs: ExitCosts) -> str:
    """``" Counted through the module torch.compile wraps (Net)."``, or ``""``."""
    return f" Counted through the module {costs.wrapper} wraps ({costs.model})." if costs.wrapper else ""


def any_model_note(convention: str) -> str:
    """What a convention counts beyond its MSDNet wording (:data:`CONVENTION_HELP`) on a model
    msdprof did not build: ``" For any model, ..."``, or ``""`` for ``msdnet``."""
    if convention == "msdnet":
        return ""
    return (" For any model, other convolutions, attention and functional conv, linear, matmul and "
            "einsum count too" + (" (macs is the default for a model msdprof did not build; "
                                  "--convention msdnet gives the authors' counter's rules)"
                                  if convention == "macs" else "") + ".")


def caption(costs: ExitCosts) -> str:
    unit = f"{OP_NAMES[costs.convention]} counted by the '{costs.convention}' convention: " \
           f"{CONVENTION_HELP[costs.convention]}."
    if costs.options is None:
        shapes = costs.inputs_text
        exits = ", ".join(f"{i}={n}" for i, n in enumerate(costs.exit_names, 1)
                          if n != str(i))
        unit += any_model_note(costs.convention)
        return (f"Input {shapes}{f'; exits {exits}' if exits else ''}; {unit} Cumulative = all that "
                "ran until outputs 1..k were complete; block = what ran after output k-1, less head "
                "k; direct = cumulative less heads 1..k-1; lazy = only what outputs 1..k read (saves % "
                "of cumulative)." + wrapper_note(costs) + counted_note(costs) + lazy_gap_note(costs)
                + unsupported_note(costs))
    h, w = costs.input_size
    return (f"One 3x{h}x{w} image; {unit} Cumulative = "
            "blocks 1..k + heads 1..k (early-exit inference); direct = blocks 1..k + head k; lazy = "
            "cumulative computing only the maps exits 1..k read (saves % of cumulative)."
            + counted_note(costs) + lazy_gap_note(costs) + unsupported_note(costs))


def _percent(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f}" if whole else "-"


def table_columns(costs: ExitCosts) -> list[tuple[str, Callable[[ExitCost], str]]]:
    """(header, cell) pairs shared by the rich table and the Markdown table.  Each operation
    column has its own unit, M or K by its largest figure (a 1,930-op head reads 1.93 K ops, not
    0.00 M ops)."""
    def ops(label: str, field: str) -> tuple[str, Callable[[ExitCost], str]]:
        divisor, unit = op_unit(max((getattr(e, field) for e in costs), default=0), costs.convention)
        return f"{label}\n{unit}", lambda e: scaled(getattr(e, field), divisor)

    p_divisor, p_prefix = op_scale(costs.total_params)  # M, or K for a small network

    def params(field: str) -> Callable[[ExitCost], str]:
        return lambda e: scaled(getattr(e, field), p_divisor)

    layer = [("layer", lambda e: str(e.layer))] if costs.options is not None else []
    spread = {s.exit: s.figures["macs"] for s in costs.spread}
    divisor, unit = op_unit(max((s.max for s in spread.values()), default=0), costs.convention)
    over_samples = [(f"cumulative\nmin {unit}", lambda e: scaled(spread[e.exit].min, divisor)),
                    (f"cumulative\nmax {unit}", lambda e: scaled(spread[e.exit].max, divisor))] if spread else []
    return [
        ("exit", lambda e: str(e.exit)),
        *layer,
        ops("cumulative", "macs"),
        *over_samples,
        (f"params\n{p_prefix}", params("params")),
        ("% of\nfull", lambda e: _percent(e.macs, costs.total_macs)),
        ops("block", "block_macs"),
        ops("head", "head_macs"),
        ops("direct", "direct_macs"),
        (f"direct\nparams {p_prefix}", params("direct_params")),
        ops("lazy", "lazy_macs"),
        ("lazy\nsaves %", lambda e: _percent(e.macs - e.lazy_macs, e.macs)),
    ]


class FittedTable(Table):
    """A ``rich`` table that never cuts a word (a number) at the width it is drawn at.

    At its natural width when that fits; else headers and cells wrap between words only (each
    column at least as wide as its longest word); when even that is too wide, columns are left out,
    in ``drop_order`` (column indexes; default: the last first, never the first) until the rest
    fits, and the caption says which and where to find them.
    """

    drop_order: Sequence[int] | None = None

    def add_row(self, *renderables: Any, **kwargs: Any) -> None:
        """A row; its text cells as they are (a ``[`` in an exit's or a module's name is not
        markup)."""
        super().add_row(*(Text(cell) if isinstance(cell, str) else cell for cell in renderables), **kwargs)

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        yield from Table.__rich_console__(self.fitted(console, options.max_width), console, options)

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        return Table.__rich_measure__(self.fitted(console, options.max_width), console, options)

    def _border_width(self, columns: int) -> int:
        return (2 if self.box and self.show_edge else 0) + (columns - 1 if self.box else 0)

    def fitted(self, console: Console, width: int) -> Table:
        """This table as drawn ``width`` columns wide (itself when its natural width fits)."""
        def lines(cell: Any) -> list[str]:
            text = console.render_str(cell) if isinstance(cell, str) else cell
            return text.plain.splitlines() if isinstance(text, Text) else [""]

        natural, least = [], []
        for column in self.columns:
            cells = [line for cell in (column.header, *column._cells) for line in lines(cell)]
            pad = self._get_padding_width(column._index)
            natural.append(max(map(cell_len, cells), default=0) + pad)
            least.append(max((cell_len(w) for line in cells for w in line.split()), default=0) + pad)
        if sum(natural) + self._border_width(len(natural)) <= width:
            return self
        keep = list(range(len(self.columns)))
        order = [i for i in (self.drop_order or range(len(keep) - 1, 0, -1)) if i in keep]
        while sum(least[i] for i in keep) + self._border_width(len(keep)) > width and order:
            keep.remove(order.pop(0))
        table = copy.copy(self)
        table.columns = []
        for i in keep:
            column = copy.copy(self.columns[i])
            column._index = len(table.columns)
            table.columns.append(column)
        spare = width - self._border_width(len(keep)) - sum(least[i] for i in keep)
        widths = {i: least[i] for i in keep}
        while spare > 0 and any(widths[i] < natural[i] for i in keep):  # share out what is left
            for i in keep:
                if spare > 0 and widths[i] < natural[i]:
                    widths[i] += 1
                    spare -= 1
        for i, column in zip(keep, table.columns):
            column.width = widths[i] - self._get_padding_width(i)
        left_out = [lines(self.columns[i].header) for i in range(len(self.columns)) if i not in keep]
        if left_out:
            names = ", ".join(" ".join(header) for header in left_out)
            note = (f"Not shown at {width} columns: {names} (a wider terminal, or --format csv, "
                    "shows every column).")
            table.caption = Text.assemble(self.caption, "\n", note) if self.caption else Text(note)
        return table


def styled_table(title: str, caption: str, plain: bool = False,
                 drop_order: Sequence[int] | None = None) -> FittedTable:
    """An empty ``rich`` table in the house style, fitted to the width it is drawn at (see
    :class:`FittedTable`; ``drop_order``: the columns to leave out first); ``plain`` (pipes,
    files) drops bold and rounded borders."""
    table = FittedTable(  # title and caption as they are: a name's "[" is not markup
        title=Text(title), caption=Text(caption) if caption else caption, box=box.ASCII if plain else box.ROUNDED,
        header_style="" if plain else "bold", title_style="" if plain else "bold",
        caption_justify="left",
    )
    table.drop_order = drop_order
    return table


def filled_table(title: str, caption: str, headers: Sequence[str], rows: Sequence[Sequence[str]],
                 plain: bool = False, left: Sequence[int] = (),
                 drop_order: Sequence[int] | None = None) -> FittedTable:
    """:func:`styled_table` with its columns (right-aligned, but those at ``left``) and rows."""
    table = styled_table(title, caption, plain, drop_order)
    for i, header in enumerate(headers):
        table.add_column(header, justify="left" if i in left else "right")
    for row in rows:
        table.add_row(*row)
    return table


def text_width() -> int:
    """The width of plain text (pipes, files): ``COLUMNS`` when it holds a whole number of at least
    :data:`MIN_WIDTH` (``COLUMNS=80 msdprof count | less``), else :data:`TEXT_WIDTH`."""
    value = os.environ.get("COLUMNS", "").strip()
    return int(value) if value.isdigit() and MIN_WIDTH <= int(value) <= 10_000 else TEXT_WIDTH


def to_text(renderable: Any, width: int | None = None) -> str:
    """A ``rich`` renderable as plain text at console ``width`` (default :func:`text_width`): what
    goes to a pipe, a file or a golden file; no line ends in spaces."""
    out = io.StringIO()
    Console(file=out, width=width or text_width(), color_system=None, legacy_windows=False,
            force_terminal=False).print(renderable)
    return "".join(line.rstrip() + "\n" for line in out.getvalue().splitlines())


def csv_text(fieldnames: Sequence[str], rows: Iterable[dict[str, Any]]) -> str:
    """CSV with a header line, ``\n`` line ends."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(fieldnames), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


#: The per-exit table's columns left out first where the terminal is too narrow, by the start of
#: their header: the direct figures, then block and head, then the shares and parameters; the
#: cumulative and lazy costs (what the README leads with) stay longest, exit always.
DROP_FIRST = ("direct\nparams", "direct\n", "block\n", "head\n", "% of", "params\n", "layer",
              "lazy\nsaves", "lazy\n", "cumulative")


def drop_order(headers: Sequence[str]) -> list[int]:
    """The indexes of ``headers`` but the first in the order :data:`DROP_FIRST` leaves them out
    (a header is ranked by the first entry it starts with; one matching none goes last)."""
    def rank(header: str) -> int:
        return next((r for r, start in enumerate(DROP_FIRST) if header.startswith(start)),
                    len(DROP_FIRST))

    return sorted(range(1, len(headers)), key=lambda i: rank(headers[i]))


def rich_table(costs: ExitCosts, name: str | None = None, plain: bool = False) -> Table:
    """The per-exit table as a ``rich`` table; ``plain`` drops colour and heavy borders.  Where
    it is too wide, the columns of :data:`DROP_FIRST` are left out first."""
    columns = table_columns(costs)
    table = styled_table(title(costs, name), caption(costs), plain,
                         drop_order([h for h, _ in columns]))
    for header, _ in columns:
        table.add_column(header, justify="right")
    for e in costs:
        table.add_row(*(cell(e) for _, cell in columns))
    return table


def render_table(costs: ExitCosts, name: str | None = None, width: int | None = None,
                 plain: bool = True) -> str:
    """The rich table as text at console ``width`` (default :func:`text_width`; what goes to a
    pipe or a golden file)."""
    return to_text(rich_table(costs, name, plain=plain), width)


def render_json(costs: ExitCosts, name: str | None = None) -> str:
    data = costs.as_dict()
    if name:
        data = {"preset" if costs.options is not None else "spec": name, **data}
    return json.dumps(data, indent=2) + "\n"


def render_csv(costs: ExitCosts, name: str | None = None) -> str:
    """Exact integers, one row per exit; the ``convention`` column names the unit of ``*_macs``."""
    return csv_text(*csv_records(costs))


def csv_records(costs: ExitCosts) -> tuple[list[str], list[dict[str, Any]]]:
    """The column names and rows (one per exit, exact) of :func:`render_csv`: an MSDNet's
    :class:`~msdprof.core.results.ExitCost` fields and ``convention``; another model's without
    ``layer``, with its exits' ``name``, their spread over samples and ``data_dependent``."""
    from ..core.exits import ExitCost

    names = [f.name for f in fields(ExitCost)]
    if costs.options is None:  # a --model network: no MSDNet layer; its exits' names instead
        names = ["exit", "name", *(n for n in names if n not in ("exit", "layer"))]
        spread = {s.exit: s for s in costs.spread}
        extra = [f"{field}_{stat}" for field in names[2:] for stat in ("mean", "min", "max")] if spread else []
        extra = [*(["samples_returned"] if spread else []), *extra]

        def row(e: ExitCost, exit_name: str) -> dict[str, Any]:
            values = {**{k: v for k, v in asdict(e).items() if k != "layer"}, "name": exit_name,
                      "data_dependent": costs.data_dependent, "convention": costs.convention}
            if e.exit in spread:
                values["samples_returned"] = spread[e.exit].samples
                for field, stats in spread[e.exit].figures.items():
                    values.update({f"{field}_{stat}": value for stat, value in asdict(stats).items()})
            return values

        return ([*names, *extra, "data_dependent", "convention"],
                [row(e, exit_name) for e, exit_name in zip(costs, costs.exit_names)])
    return [*names, "convention"], [{**asdict(e), "convention": costs.convention} for e in costs]


def markdown_table(headers: list[str], rows: list[list[str]], align: str = "right") -> str:
    """A GitHub Markdown table; every column right-aligned unless ``align="left"``."""
    mark = "---:" if align == "right" else ":---"
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join(mark for _ in headers) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def render_markdown(costs: ExitCosts, name: str | None = None) -> str:
    columns = table_columns(costs)
    headers = [h.replace("\n", " ") for h, _ in columns]
    table = markdown_table(headers, [[cell(e) for _, cell in columns] for e in costs])
    return f"### {title(costs, name)}\n\n{table}\n{caption(costs)}\n"


RENDERERS: dict[str, Callable[..., str]] = {
    "table": render_table,
    "json": render_json,
    "csv": render_csv,
    "markdown": render_markdown,
}


def render(costs: ExitCosts, fmt: str, name: str | None = None, **kwargs: Any) -> str:
    """``costs`` in format ``fmt`` (one of :data:`FORMATS`)."""
    return RENDERERS[check_format(fmt)](costs, name, **kwargs)
