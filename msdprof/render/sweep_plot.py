"""The plot of a sweep (``msdprof sweep --plot FILE.svg``), as a deterministic SVG (matplotlib).

One dot per counted configuration: exit 1's cumulative cost (y) against the whole network's (x),
operations in the sweep's convention.  Configurations the filters (``--max-macs``,
``--exit-budget``) leave out are pale; the Pareto front in (total operations, parameters) among the
others -- the configurations ``--pareto`` keeps -- is highlighted.  Log axes when the costs span more
than tenfold.  Drawn as :mod:`msdprof.render.costplot` draws (no pyplot, text as paths, salted ids).
"""

from __future__ import annotations

import matplotlib
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, NullFormatter

from .costplot import SVG_PARAMS, svg_bytes
from .formatting import op_unit
from ..analysis.sweep import Point, SweepResult, pareto_front

_LABELLED = 12  # front configurations labelled with their grid position, at most


def front(points: tuple[Point, ...]) -> tuple[Point, ...]:
    """The points within the filters that no other such point dominates in (total operations,
    parameters): the configurations ``--pareto`` keeps."""
    return pareto_front([p for p in points if p.within], key=lambda p: (p.total_macs, p.total_params))


def sweep_plot(result: SweepResult, title: str) -> bytes:
    """SVG of exit 1's cost against the full cost of every counted configuration of ``result``
    (made with ``points=True``); the Pareto front highlighted.  Operations in M (K for tiny
    networks) of the sweep's convention, one image."""
    if not result.points:
        raise ValueError("sweep_plot needs a sweep made with points=True that counted something")
    points = result.points
    best = front(points)
    divisor, unit = op_unit(max(p.total_macs for p in points), result.convention)
    with matplotlib.rc_context(SVG_PARAMS):
        figure = Figure(figsize=(7.5, 5.0))
        ax = figure.add_subplot()
        groups = [
            ([p for p in points if not p.within], "outside the filters", "#c9ccd1", 6, 1),
            ([p for p in points if p.within],
             "within the filters" if not all(p.within for p in points) else "configurations", "#1f77b4", 8, 2),
        ]
        for group, label, colour, size, order in groups:
            if group:
                ax.scatter([p.total_macs / divisor for p in group], [p.first_macs / divisor for p in group],
                           s=size, color=colour, linewidths=0, label=f"{label} ({len(group)})", zorder=order)
        if best:
            ax.scatter([p.total_macs / divisor for p in best], [p.first_macs / divisor for p in best],
                       s=30, facecolors="none", edgecolors="#d62728", linewidths=1.4, zorder=3,
                       label=f"Pareto front in total cost and parameters ({len(best)})")
            if len(best) <= _LABELLED:
                for p in best:
                    ax.annotate(f"#{p.index}", (p.total_macs / divisor, p.first_macs / divisor),
                                xytext=(4, 3), textcoords="offset points", fontsize=7, color="#d62728")
        for axis, values in ((ax.xaxis, [p.total_macs for p in points]), (ax.yaxis, [p.first_macs for p in points])):
            if max(values) > 10 * max(1, min(values)):
                (ax.set_xscale if axis is ax.xaxis else ax.set_yscale)("log")
        number = FuncFormatter(lambda v, _: f"{v:,.0f}" if v >= 10 else f"{v:g}")
        ax.xaxis.set_major_formatter(number)
        ax.yaxis.set_major_formatter(number)
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.yaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel(f"all exits (the whole network), {unit}")
        ax.set_ylabel(f"exit 1 (cumulative), {unit}")
        ax.legend(fontsize=8, frameon=False, loc="upper left", bbox_to_anchor=(1.01, 1.0))
        ax.set_title(title, fontsize=11)
        figure.text(0.01, -0.02, f"One image; operations by the '{result.convention}' convention. "
                    f"{result.counted} configurations counted of {result.size}.", fontsize=8)
        return svg_bytes(figure)


__all__ = ["front", "sweep_plot"]
