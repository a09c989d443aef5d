"""Showing what memory each exit needs (:mod:`msdprof.core.memory`): ``count --memory``'s table,
JSON, CSV and Markdown, and ``budget --memory``'s.

Tables give bytes in MB (10^6 bytes; KB for tiny networks) with two decimals; JSON and CSV carry
exact integers (bytes).
"""

from __future__ import annotations

import json
from dataclasses import asdict, fields
from typing import Any, Callable

from ..analysis.budget import MemoryFit
from ..core.exits import ExitCost, ExitCosts
from ..core.memory import ExitMemories, ExitMemory
from ..core.units import shapes_text
from .formatting import (check_format, csv_text, filled_table, markdown_table, network_name, op_unit,
                         scaled, to_text)

FORMATS = ("table", "json", "csv", "markdown")


def byte_scale(largest: int) -> tuple[float, str]:
    """(divisor, unit) for a table whose largest figure is ``largest`` bytes: MB, or KB below one."""
    return (1e6, "MB") if largest >= 1e6 else (1e3, "KB")


def memory_title(costs: ExitCosts | None, memories: ExitMemories, name: str | None = None) -> str:
    """``MSDNet per-exit memory, batch 64: cifar10-anytime (nBlocks 10, ...)``; without the costs
    (the memory alone, :func:`~msdprof.core.memory.exit_memory`): ``MSDNet per-exit memory, batch 64``."""
    if costs is None:
        return f"{memories.model} per-exit memory, batch {memories.batch}" + (f": {name}" if name else "")
    head = f"{'MSDNet' if costs.options is not None else costs.model} per-exit memory, batch {memories.batch}"
    if costs.options is None:
        return head + (f": {name}" if name else "")
    return f"{head}: {network_name(costs.options, name)} ({costs.options.describe()})"


def memory_caption(costs: ExitCosts | None, memories: ExitMemories) -> str:
    divisor, unit = byte_scale(max(e.total_bytes for e in memories))
    if costs is None:
        what, counted = f"{memories.batch} input{'s' if memories.batch != 1 else ''}", ""
    elif costs.options is not None:
        h, w = costs.input_size
        what = f"{memories.batch} 3x{h}x{w} image{'s' if memories.batch != 1 else ''}"
        counted = "per image"
    else:
        what = "inputs " + shapes_text(memories.input_shapes or costs.input_shapes,
                                       memories.input_names or costs.input_names,
                                       memories.input_dtypes or costs.input_dtypes)
        if memories.kept():
            what += (f" (batch {memories.batch} in {', '.join(memories.carrying())}; "
                     f"{', '.join(memories.kept())} kept as given)")
        counted = f"for inputs {costs.inputs_text}"  # what the operations were counted on
    if costs is not None:
        _, ops = op_unit(costs.total_macs, costs.convention)
        counted = f"; operations {counted} ({ops})"
    return (f"{what} ({memories.input_bytes:,} bytes), inference (no autograd graph); {unit} = "
            f"{int(divisor):,} bytes{counted}. params = bytes of the "
            "parameters read to reach exit k (lazy: only those outputs 1..k need). peak = the most "
            "activation bytes alive at once, each tensor freed after its last reader; as written = "
            "the same as the model's code holds its tensors (what the CPU allocator reaches, less "
            "kernel workspaces); lazy peak = computing only what outputs 1..k read. total = params "
            "+ inputs + as written. peak at = the operation running at the as-written peak.")


def memory_columns(costs: ExitCosts | None, memories: ExitMemories
                   ) -> list[tuple[str, Callable[[ExitCost | None, ExitMemory], str]]]:
    """(header, cell of an exit's cost and memory) pairs shared by the rich and Markdown tables;
    without the costs (``None``: each cell is given ``None`` for the cost), no layer nor
    operations."""
    divisor, unit = byte_scale(max(e.total_bytes for e in memories))

    def size(field: str) -> Callable[[ExitCost | None, ExitMemory], str]:
        return lambda c, m: scaled(getattr(m, field), divisor)

    counted = []
    if costs is not None:
        op_divisor, ops = op_unit(costs.total_macs, costs.convention)
        counted = [("layer", lambda c, m: str(c.layer))] if costs.options is not None else []
        counted.append((f"cumulative\n{ops}", lambda c, m: scaled(c.macs, op_divisor)))
    return [
        ("exit", lambda c, m: str(m.exit)),
        *counted,
        (f"params\n{unit}", size("param_bytes")),
        (f"peak\n{unit}", size("peak_bytes")),
        (f"as written\n{unit}", size("held_peak_bytes")),
        (f"total\n{unit}", size("total_bytes")),
        (f"lazy\nparams {unit}", size("lazy_param_bytes")),
        (f"lazy\npeak {unit}", size("lazy_peak_bytes")),
        (f"lazy\ntotal {unit}", size("lazy_total_bytes")),
        ("peak at", lambda c, m: m.held_peak_op),
    ]


#: Columns left out first at narrow widths, by the start of their header: where the peak is, the
#: operations, then the lazy parameters.
_DROP = ("peak at", "cumulative", "lazy\nparams")


def memory_table(costs: ExitCosts | None, memories: ExitMemories, name: str | None = None,
                 plain: bool = False):
    """The per-exit memory table (``count --memory``) as a ``rich`` table; without the costs
    (``None``), the memory alone."""
    columns = memory_columns(costs, memories)
    drop = tuple(i for start in _DROP for i, (header, _) in enumerate(columns) if header.startswith(start))
    rows = [[cell(c, m) for _, cell in columns] for c, m in zip(costs or [None] * len(memories), memories)]
    return filled_table(memory_title(costs, memories, name), memory_caption(costs, memories),
                        [h for h, _ in columns], rows, plain, left=(len(columns) - 1,),
                        drop_order=drop)


def memory_dict(costs: ExitCosts, memories: ExitMemories, name: str | None = None) -> dict[str, Any]:
    """``count --memory --format json``: the costs' JSON with ``memory`` beside ``exits``."""
    data = costs.as_dict()
    if name:
        data = {"preset" if costs.options is not None else "spec": name, **data}
    return {**data, "memory": memories.as_dict()}


def render_memory(costs: ExitCosts, memories: ExitMemories, fmt: str, name: str | None = None,
                  width: int | None = None) -> str:
    """``count --memory`` in ``fmt``: table (plain text at console ``width``, default
    :func:`~msdprof.render.formatting.text_width`), json, csv (one row per exit:
    the cost's fields, then the memory's, bytes) or markdown."""
    check_format(fmt, FORMATS)
    if fmt == "table":
        return to_text(memory_table(costs, memories, name, plain=True), width)
    if fmt == "json":
        return json.dumps(memory_dict(costs, memories, name), indent=2) + "\n"
    if fmt == "csv":
        cost_names = [f.name for f in fields(ExitCost)]
        memory_names = [n for n in memories[0].row() if n != "exit"]
        rows = ({**asdict(c), **m.row(), "convention": costs.convention, "batch": memories.batch}
                for c, m in zip(costs, memories))
        return csv_text([*cost_names, "convention", "batch", *memory_names], rows)
    columns = memory_columns(costs, memories)
    table = markdown_table([h.replace("\n", " ") for h, _ in columns],
                           [[cell(c, m) for _, cell in columns] for c, m in zip(costs, memories)])
    return f"### {memory_title(costs, memories, name)}\n\n{table}\n{memory_caption(costs, memories)}\n"


def memory_records(memories: ExitMemories) -> tuple[list[str], list[dict[str, Any]]]:
    """The memory alone as CSV rows (one per exit, bytes, exact): ``exit``, the exit's ``name``
    where the exits have names of their own, ``batch``, then the memory columns of
    ``count --memory --format csv``."""
    named = memories.exit_names and memories.exit_names != tuple(str(k) for k in range(1, len(memories) + 1))
    names = ["exit", *(["name"] if named else []), "batch", *(n for n in memories[0].row() if n != "exit")]
    rows = [{**m.row(), "batch": memories.batch, **({"name": name} if named else {})}
            for m, name in zip(memories, memories.exit_names or [""] * len(memories))]
    return names, rows


# --- budget --memory ---------------------------------------------------------------------------


def _fit_line(fit: MemoryFit) -> str:
    def reach(exit: int | None, what: str) -> str:
        return f"exit {exit} ({what})" if exit is not None else f"no exit ({what})"
    return (f"{fit.budget:,} bytes reach {reach(fit.exit, 'the model as written')} and "
            f"{reach(fit.lazy_exit, 'a lazy executor')}.")


def fit_table(costs: ExitCosts, memories: ExitMemories, fit: MemoryFit, name: str | None = None,
              plain: bool = False):
    """``budget --memory``: per exit, what it needs in all and whether that fits."""
    divisor, unit = byte_scale(max(fit.budget, max(e.total_bytes for e in memories)))
    rows = [[str(m.exit), scaled(m.param_bytes, divisor), scaled(m.held_peak_bytes, divisor),
             scaled(m.total_bytes, divisor), "yes" if m.total_bytes <= fit.budget else "no",
             scaled(m.lazy_total_bytes, divisor), "yes" if m.lazy_total_bytes <= fit.budget else "no"]
            for m in memories]
    caption = (f"{_fit_line(fit)} total = parameters + inputs ({memories.input_bytes:,} bytes) + peak "
               f"activations as the model's code holds them; lazy = only what outputs 1..k read, "
               f"each tensor freed after its last reader. {unit} = {int(divisor):,} bytes; buffers "
               "(BatchNorm statistics) and kernel workspaces are not included.")
    return filled_table(f"{memory_title(costs, memories, name)}: which exits fit "
                        f"{scaled(fit.budget, divisor)} {unit}", caption,
                        ["exit", f"params\n{unit}", f"as written\n{unit}", f"total\n{unit}", "fits",
                         f"lazy\ntotal {unit}", "lazy\nfits"], rows, plain)


def render_fit(costs: ExitCosts, memories: ExitMemories, fit: MemoryFit, fmt: str,
               name: str | None = None, width: int | None = None) -> str:
    """``budget --memory`` in ``fmt`` (table at console ``width``, default
    :func:`~msdprof.render.formatting.text_width`; json, csv)."""
    if fmt == "table":
        return to_text(fit_table(costs, memories, fit, name, plain=True), width)
    if fmt == "json":
        data = {**memory_dict(costs, memories, name), "budget_bytes": fit.budget, "exit": fit.exit,
                "lazy_exit": fit.lazy_exit}
        return json.dumps(data, indent=2) + "\n"
    rows = ({"exit": m.exit, "budget_bytes": fit.budget, "total_bytes": m.total_bytes,
             "fits": m.total_bytes <= fit.budget, "lazy_total_bytes": m.lazy_total_bytes,
             "lazy_fits": m.lazy_total_bytes <= fit.budget} for m in memories)
    return csv_text(["exit", "budget_bytes", "total_bytes", "fits", "lazy_total_bytes", "lazy_fits"], rows)


# --- the report's section ----------------------------------------------------------------------


def memory_plot(memories: ExitMemories, title: str) -> bytes:
    """SVG bar chart, per exit: parameters and peak activations (as written) stacked, beside the
    same for a lazy executor; MB (KB for tiny networks)."""
    from matplotlib.figure import Figure
    import matplotlib

    from .costplot import SVG_PARAMS, svg_bytes

    divisor, unit = byte_scale(max(e.total_bytes for e in memories))
    exits = [e.exit for e in memories]
    with matplotlib.rc_context(SVG_PARAMS):
        figure = Figure(figsize=(7.5, 4.2))
        ax = figure.add_subplot()
        width = 0.38
        eager_x = [k - width / 2 for k in exits]
        lazy_x = [k + width / 2 for k in exits]
        params = [e.param_bytes / divisor for e in memories]
        lazy_params = [e.lazy_param_bytes / divisor for e in memories]
        ax.bar(eager_x, params, width, color="#4c72b0", label="parameters")
        ax.bar(eager_x, [e.held_peak_bytes / divisor for e in memories], width, bottom=params,
               color="#dd8452", label="peak activations (as written)")
        ax.bar(lazy_x, lazy_params, width, color="#4c72b0", alpha=0.5, label="lazy: parameters")
        ax.bar(lazy_x, [e.lazy_peak_bytes / divisor for e in memories], width, bottom=lazy_params,
               color="#dd8452", alpha=0.5, label="lazy: peak activations")
        ax.set_xticks(exits)
        ax.set_xlabel("exit")
        ax.set_ylabel(f"{unit} (batch {memories.batch}, inputs not included)")
        ax.set_title(title)
        ax.legend(fontsize="small", frameon=False)
        ax.grid(axis="y", alpha=0.3)
        return svg_bytes(figure)


def memory_report_table(costs: ExitCosts, memories: ExitMemories) -> tuple[tuple[str, ...], tuple[tuple[str, ...], ...], str]:
    """(headers, rows, caption) of the report's "Memory per exit" table."""
    columns = memory_columns(costs, memories)
    headers = tuple(h.replace("\n", " ") for h, _ in columns)
    rows = tuple(tuple(cell(c, m) for _, cell in columns) for c, m in zip(costs, memories))
    return headers, rows, memory_caption(costs, memories)


__all__ = ["FORMATS", "byte_scale", "fit_table", "memory_caption", "memory_columns", "memory_dict",
           "memory_plot", "memory_records", "memory_report_table",
           "memory_table", "memory_title", "render_fit", "render_memory"]
