"""The plot of ``msdprof generate --plot FILE.svg``: one generated token's cost against the cache
length, one line per exit, as a deterministic SVG (drawn as :mod:`msdprof.render.costplot` draws:
no pyplot, text as paths, salted ids, no date)."""

from __future__ import annotations

import matplotlib
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from ..analysis.generation import GenerationCosts
from .costplot import _COLOURS as COLOURS, SVG_PARAMS, svg_bytes
from .generation_view import ops_unit


def generation_plot(result: GenerationCosts, plot_title: str) -> bytes:
    """SVG of one token's cost (operations, eager) against the cache length L, one line per exit
    (every L asked; counted lengths marked)."""
    table = result.table
    lengths = table.lengths
    divisor, unit = ops_unit(max(e.token_macs[n] for e in table for n in lengths), table.convention)
    counted = [n for n in table.counted if n in table.exits[0].token_macs]
    with matplotlib.rc_context(SVG_PARAMS):
        figure = Figure(figsize=(7.5, 4.8))
        ax = figure.add_subplot()
        for i, (e, exit_name) in enumerate(zip(table, table.exit_names or [str(e.exit) for e in table])):
            colour = COLOURS[i % len(COLOURS)]
            label = f"exit {e.exit}" + (f" (layer {e.layer})" if e.layer is not None else
                                        f" ({exit_name})" if exit_name != str(e.exit) else "")
            ax.plot(lengths, [e.token_macs[n] / divisor for n in lengths], color=colour, linewidth=1.6,
                    label=label, marker="o" if len(lengths) <= 40 else None, markersize=3)
            if counted and len(lengths) > 40:
                ax.plot(counted, [e.token_macs[n] / divisor for n in counted], "o", color=colour, markersize=3)
        ax.set_xlabel("L, tokens in the cache")
        ax.set_ylabel(f"one token, {unit}")
        ax.set_ylim(bottom=0)
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}" if v >= 10 else f"{v:g}"))
        ax.legend(fontsize=8, frameon=False, loc="upper left", bbox_to_anchor=(1.01, 1.0))
        ax.set_title(plot_title, fontsize=11)
        note = (f"Eager cost of one new token through the exit's layers and head, after a prompt of "
                f"{table.prompt:,}; '{table.convention}' convention"
                + ("; dots: lengths counted, the lines exact from the affine fit." if table.affine and len(lengths) > 40
                   else "."))
        figure.text(0.01, -0.02, note, fontsize=8)
        return svg_bytes(figure)


__all__ = ["generation_plot"]
