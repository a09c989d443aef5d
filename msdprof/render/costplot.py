"""The cost-vs-exit plot of one or several networks, as a deterministic SVG (matplotlib).

The same inputs give the same bytes on any machine with the same matplotlib: the figure is drawn
without pyplot (no global state), text is stored as paths (``svg.fonttype = path``: no dependence on
the system's fonts; matplotlib ships its DejaVu fonts), element ids come from a fixed salt
(``svg.hashsalt``) and the date is left out of the metadata.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Sequence

import matplotlib
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import FixedLocator, FuncFormatter, LogLocator, NullLocator

from ..core.exits import ExitCosts
from .formatting import op_unit

#: rcParams every plot is drawn under; see the module docstring.
SVG_PARAMS = {
    "svg.hashsalt": "msdprof",
    "svg.fonttype": "path",
    "font.family": "DejaVu Sans",
    "font.size": 10,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.color": "#e1e4e8",
    "grid.linewidth": 0.8,
}
_COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#7f7f7f")


@dataclass(frozen=True)
class Series:
    """One network on a plot: its per-exit costs and the name its legend entries carry."""

    label: str
    costs: ExitCosts


def svg_bytes(figure: Figure) -> bytes:
    """The figure as deterministic SVG bytes: no date, ids salted by :data:`SVG_PARAMS`."""
    out = io.BytesIO()
    with matplotlib.rc_context(SVG_PARAMS):
        figure.savefig(out, format="svg", metadata={"Date": None}, bbox_inches="tight")
    return out.getvalue()


def cost_plot(series: Sequence[Series], title: str) -> bytes:
    """SVG of operations vs exit: cumulative (solid), direct (dashed) and lazy (dotted) for each
    series.  One series: exits on the x axis and, for an MSDNet, the layer each exit
    reads on the top axis.  Several: one colour per series and one line style per kind of cost, on a
    log axis when their totals differ more than tenfold.  Operations in M (K for tiny networks) of
    the first series' convention.
    """
    if not series:
        raise ValueError("cost_plot needs at least one series")
    convention = series[0].costs.convention
    divisor, unit = op_unit(max(s.costs.total_macs for s in series), convention)
    with matplotlib.rc_context(SVG_PARAMS):
        figure = Figure(figsize=(7.5, 4.2))
        ax = figure.add_subplot()
        several = len(series) > 1
        msdnets = all(s.costs.options is not None for s in series)
        kinds = [
            ("cumulative (blocks 1..k + heads 1..k)", "macs", "-", "o"),
            ("direct (blocks 1..k + head k)", "direct_macs", "--", "s"),
            ("lazy (only the maps exits 1..k read)", "lazy_macs", ":", "^"),
        ] if msdnets else [  # any early-exit model: the dataflow definitions
            ("cumulative (all that ran until output k)", "macs", "-", "o"),
            ("direct (cumulative less heads 1..k-1)", "direct_macs", "--", "s"),
            ("lazy (what outputs 1..k read)", "lazy_macs", ":", "^"),
        ]
        for i, s in enumerate(series):
            exits = [e.exit for e in s.costs]
            for j, (what, field, style, marker) in enumerate(kinds):
                ax.plot(
                    exits, [getattr(e, field) / divisor for e in s.costs], linestyle=style,
                    marker=marker, markersize=4, linewidth=1.6, label=what,
                    color=_COLOURS[(i if several else j) % len(_COLOURS)],
                )
        totals = [s.costs.total_macs for s in series]
        if several and max(totals) > 10 * min(totals):
            ax.set_yscale("log")
            ax.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
            ax.yaxis.set_minor_locator(NullLocator())
        else:
            ax.set_ylim(bottom=0)
        if several:  # one colour per network, one line style per kind of cost
            networks = ax.legend(
                [Line2D([], [], color=_COLOURS[i % len(_COLOURS)]) for i in range(len(series))],
                [s.label for s in series], fontsize=8, frameon=False, loc="upper left",
                bbox_to_anchor=(1.01, 1.0), title="network", title_fontsize=8,
            )
            ax.add_artist(networks)
            ax.legend(
                [Line2D([], [], color="#444444", linestyle=style, marker=marker, markersize=4)
                 for _, _, style, marker in kinds],
                [what for what, _, _, _ in kinds], fontsize=8, frameon=False, loc="lower left",
                bbox_to_anchor=(1.01, 0.0), title="cost", title_fontsize=8,
            )
        else:
            ax.legend(fontsize=8, frameon=False, loc="upper left" if msdnets else "best")
        longest = max(series, key=lambda s: len(s.costs)).costs
        ax.xaxis.set_major_locator(FixedLocator([e.exit for e in longest]))
        ax.xaxis.set_minor_locator(NullLocator())
        ax.set_xlabel("exit k")
        ax.set_ylabel(f"{unit} ({convention} convention), one image" if msdnets else
                      f"{unit} ({convention} convention), the inputs counted")
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}" if v >= 10 else f"{v:g}"))
        if not several and msdnets:
            top = ax.secondary_xaxis("top")
            layers = {e.exit: e.layer for e in longest}
            top.xaxis.set_major_locator(FixedLocator(list(layers)))
            top.xaxis.set_major_formatter(FuncFormatter(lambda v, _: str(layers.get(round(v), ""))))
            top.set_xlabel("network layer the exit reads")
        ax.set_title(title, fontsize=11)
        return svg_bytes(figure)


__all__ = ["SVG_PARAMS", "Series", "cost_plot", "svg_bytes"]
