"""Showing measured time per exit (:mod:`msdprof.analysis.latency`): a table, JSON, CSV, Markdown and a plot.

An MSDNet's table has, per exit, its eager and lazy programs' times and the time to the exit within
one full forward ("fwd ms"); any other model's has the in-forward time alone (it has no programs).

Times are milliseconds with three significant decimals for the whole batch (per image for the early
exit); operations are scaled to M (K for tiny networks) with two decimals.  JSON holds every
figure unrounded, with the machine; CSV one row per exit (the early exit is in the table, Markdown
and JSON only).  The plot draws the measured time and the operations per exit on one figure with
two y axes (the helpers of :mod:`msdprof.render.costplot`).
"""

from __future__ import annotations

import json
import math
from typing import Any, Callable, Sequence

import matplotlib
from matplotlib.figure import Figure
from matplotlib.ticker import FixedLocator, NullLocator
from rich.console import Group, RenderableType

from .costplot import SVG_PARAMS, svg_bytes
from . import formatting
from .formatting import OP_NAMES, csv_text, filled_table, markdown_table, op_unit, scaled, to_text
from ..analysis.latency import WARMUP, ExitLatency, Latency, Timing

FORMATS = formatting.FORMATS


def _ms(value: float | None) -> str:
    if value is None:
        return "n/a"
    return f"{value:,.3f}" if value < 100 else f"{value:,.1f}"


def _rho(value: float | None) -> str:
    return "n/a (one exit)" if value is None else f"{value:.2f}"


def title(result: Latency, name: str | None = None) -> str:
    costs = result.costs
    if costs.options is None:
        return f"{costs.model} measured time per exit: {name or costs.model}"
    options = costs.options.describe()
    return f"MSDNet measured time per exit: {f'{name} ({options})' if name else options}"


def _runs(timings: Sequence[Timing]) -> str:
    runs = sorted({t.runs for t in timings})
    return f"{runs[0]}" if len(runs) == 1 else f"{runs[0]}-{runs[-1]}"


def _inexact(result: Latency) -> str:
    """The exits whose time is an upper bound (made by a functional op no hook sees)."""
    loose = [e for e in result.exits if not e.stamp.exact]
    if not loose:
        return ""
    return (" Upper bounds (the output is made by a functional op, so its time is read at the next "
            "hook, functional ops in between included): "
            + "; ".join(f"exit {e.name} at {e.stamp.describe()}" for e in loose) + ".")


def forward_caption(result: Latency) -> str:
    """The in-forward times: how they are taken, and what the full forward and the hooks cost."""
    f = result.forward
    share = 100 * f.overhead_ms / f.plain.median_ms if f.plain.median_ms else math.nan
    spread = "" if f.overhead.iqr_ms is None else f", IQR {f.overhead.iqr_ms * 1e3:,.1f} us"
    return (
        "fwd ms: time from the start of the full forward model(x) to output k, read by a timestamp "
        f"hook only where output k is made (median and IQR over {_runs([e.forward for e in result.exits])} "
        f"forwards, each followed by one without hooks, for at least {result.min_time:g} s after "
        f"{WARMUP} warm-up pairs). Full forward: {_ms(f.plain.median_ms)} ms without hooks (IQR "
        f"{_ms(f.plain.iqr_ms)}), {_ms(f.stamped.median_ms)} ms with the timestamp hooks (IQR "
        f"{_ms(f.stamped.iqr_ms)}); the hooks cost {f.overhead_ms * 1e3:+,.1f} us per forward "
        f"({share:+.1f}%; median of the pairs' differences{spread}), of which "
        f"{f.hook_calls} hook call{'s' * (f.hook_calls != 1)} x {f.hook_ns:,.0f} ns = "
        f"{f.hooks_ms * 1e3:,.1f} us is the hooks' own code. Spearman rank correlation of fwd "
        f"time with ops: {_rho(result.spearman_forward)}." + _inexact(result)
    )


def _batch(result: Latency, inputs: str) -> str:
    what = " and ".join("x".join(map(str, s[1:])) for s in result.input_shapes)
    return f"Batch of {result.batch} {what} {inputs} on {result.machine.describe()}."


def caption(result: Latency, inputs: str = "random normal images") -> str:
    convention = result.costs.convention
    per_gop = (f"ms/G = ms per 10^9 {OP_NAMES[convention]} of the batch ('{convention}' convention"
               f"{'' if not result.programs else '; lazy ms per lazy ops'}); % full: of the last "
               "exit's ops and time.")
    if not result.programs:
        return (f"{_batch(result, inputs)} Eager ops (everything that ran before output k was "
                f"complete) for one item of the batch. {per_gop} {forward_caption(result)} No lazy "
                f"time: {result.costs.model} runs as written (only an MSDNet msdprof builds can run "
                "just what exits 1..k read).")
    return (
        f"{_batch(result, inputs)} ms: median "
        f"time of one call on the whole batch, IQR its inter-quartile range, over "
        f"{_runs([t for e in result.exits for t in (e.eager, e.lazy)])} timed "
        f"calls per program (torch.utils.benchmark blocked_autorange, at least {result.min_time:g} s "
        f"per program after {WARMUP} warm-up calls). eager = model(x, exits=k): blocks and heads "
        f"1..k; lazy = heads 1..k and only the maps they read. {per_gop} Spearman rank correlation "
        f"of time with ops across exits: eager {_rho(result.spearman_eager)}, lazy "
        f"{_rho(result.spearman_lazy)}. {forward_caption(result)}"
    )


def exit_columns(result: Latency) -> list[tuple[str, Callable[[ExitLatency], str]]]:
    """(header, cell) pairs shared by the rich and the Markdown table."""
    divisor, unit = op_unit(max(e.macs for e in result.exits), result.costs.convention)
    last = result.exits[-1]
    ops = [(f"eager\n{unit}", lambda e: scaled(e.macs, divisor))]
    share = [("ops %\nfull", lambda e: f"{100 * e.macs / last.macs:.1f}")]
    if not result.programs:
        return [
            ("exit", lambda e: str(e.exit)),
            *([("name", lambda e: e.name)] if result.costs.named_exits else []), *ops,
            ("fwd\nms", lambda e: _ms(e.forward.median_ms)),
            ("IQR\nms", lambda e: _ms(e.forward.iqr_ms)),
            ("ms/G", lambda e: f"{e.forward_ms_per_gop:,.1f}"), *share,
            ("time %\nfull", lambda e: f"{100 * e.forward.median_ms / last.forward.median_ms:.1f}"),
            ("runs", lambda e: str(e.forward.runs)),
        ]
    return [
        ("exit", lambda e: str(e.exit)), *ops,
        ("eager\nms", lambda e: _ms(e.eager.median_ms)),
        ("IQR\nms", lambda e: _ms(e.eager.iqr_ms)),
        ("ms/G", lambda e: f"{e.eager_ms_per_gop:,.1f}"), *share,
        ("time %\nfull", lambda e: f"{100 * e.eager.median_ms / last.eager.median_ms:.1f}"),
        (f"lazy\n{unit}", lambda e: scaled(e.lazy_macs, divisor)),
        ("lazy\nms", lambda e: _ms(e.lazy.median_ms)),
        ("IQR\nms", lambda e: _ms(e.lazy.iqr_ms)),
        ("ms/G", lambda e: f"{e.lazy_ms_per_gop:,.1f}"),
        ("runs\ne/l", lambda e: f"{e.eager.runs}/{e.lazy.runs}"),
        ("fwd\nms", lambda e: _ms(e.forward.median_ms)),
    ]


def early_rows(result: Latency) -> tuple[list[str], list[list[str]]]:
    """Headers and rows of the early-exit comparison: measured, predicted by the per-exit times,
    predicted by the operation counts, and the full network, per image."""
    early = result.early_exit
    assert early is not None
    last, n = result.exits[-1], early.images
    full_eager, full_lazy = last.eager.median_ms / n, last.lazy.median_ms / n
    by_ops_eager = full_eager * float(early.expected_macs) / last.macs
    by_ops_lazy = full_lazy * float(early.expected_lazy_macs) / last.lazy_macs

    def iqr(t: Timing) -> str:
        return _ms(None if t.iqr_ms is None else t.iqr_ms / n)

    def row(what: str, eager: float, lazy: float, spread: str = "") -> list[str]:
        return [what, _ms(eager), f"{full_eager / eager:.2f}", _ms(lazy), f"{full_eager / lazy:.2f}",
                spread]

    headers = ["per image", "eager\nms", "eager\nspeed-up", "lazy\nms", "lazy\nspeed-up",
               "IQR ms e/l, runs"]
    rows = [
        row("measured: MSDNet.early_exit", early.eager_ms_per_image, early.lazy_ms_per_image,
            f"{iqr(early.eager)}/{iqr(early.lazy)}, "
            f"{early.eager.runs}/{early.lazy.runs}"),
        row("predicted: sum f_k x time to exit k", early.predicted_eager_ms_per_image,
            early.predicted_lazy_ms_per_image),
        row("predicted: full x sum f_k x ops_k / ops", by_ops_eager, by_ops_lazy),
        row("the whole network (exit %d)" % last.exit, full_eager, full_lazy),
    ]
    return headers, rows


def early_caption(result: Latency) -> str:
    early = result.early_exit
    assert early is not None
    divisor, unit = op_unit(max(e.macs for e in result.exits), result.costs.convention)
    thresholds = ", ".join("1e8" if t >= 1e8 else "-1e8" if t <= -1e8 else f"{t:.6g}"
                           for t in early.thresholds)
    return (
        f"Early exit on the same batch of {early.images}: thresholds {thresholds} ({early.source}); "
        f"images leaving at exit 1..{len(early.images_per_exit)}: "
        f"{' '.join(map(str, early.images_per_exit))}, so f_k = those shares. Expected "
        f"{OP_NAMES[result.costs.convention]} per image: eager "
        f"{scaled(round(early.expected_macs), divisor)} {unit}, lazy "
        f"{scaled(round(early.expected_lazy_macs), divisor)} {unit}. Speed-up: the whole network's "
        "eager time per image, model(x) (the last exit's eager program), over the row's; the "
        "operation-count prediction scales each mode's whole-network time by expected/total ops. The early exit really stops: "
        "block k+1 runs only on the images still undecided."
    )


def renderable(result: Latency, name: str | None = None, inputs: str = "random normal images",
               plain: bool = True) -> RenderableType:
    columns = exit_columns(result)
    per_exit = filled_table(title(result, name), caption(result, inputs), [h for h, _ in columns],
                      [[cell(e) for _, cell in columns] for e in result.exits], plain)
    if result.early_exit is None:
        return per_exit
    headers, rows = early_rows(result)
    return Group(per_exit, "", filled_table("Early exit: measured vs predicted", early_caption(result),
                                      headers, rows, plain, left=(0, 5)))


def render_json(result: Latency, name: str | None = None, inputs: str = "random normal images") -> str:
    """``name``: the preset (an MSDNet) or the ``--model`` spec, under ``preset`` or ``spec``."""
    data = result.as_dict()
    key = "preset" if result.costs.options is not None else "spec"
    return json.dumps({key: name, "inputs": inputs, **data} if name else {"inputs": inputs, **data},
                      indent=2) + "\n"


def render_csv(result: Latency, name: str | None = None, inputs: str = "random normal images") -> str:
    return csv_text(*csv_records(result))


def csv_records(result: Latency) -> tuple[list[str], list[dict[str, Any]]]:
    """The column names and rows of :func:`render_csv`: one per exit, every figure unrounded
    (``*_ms``: milliseconds for the whole batch), the stamp described, the batch and machine."""
    rows = [{**e.as_dict(), "stamp": e.stamp.describe(), "batch": result.batch,
             "device": result.machine.device, "threads": result.machine.threads}
            for e in result.exits]
    return list(rows[0]), rows


def render_markdown(result: Latency, name: str | None = None,
                    inputs: str = "random normal images") -> str:
    columns = exit_columns(result)
    text = (f"### {title(result, name)}\n\n"
            + markdown_table([h.replace("\n", " ") for h, _ in columns],
                             [[cell(e) for _, cell in columns] for e in result.exits])
            + f"\n{caption(result, inputs)}\n")
    if result.early_exit is not None:
        headers, rows = early_rows(result)
        text += ("\n#### Early exit: measured vs predicted\n\n"
                 + markdown_table([h.replace("\n", " ") for h in headers], rows)
                 + f"\n{early_caption(result)}\n")
    return text


def render(result: Latency, fmt: str, name: str | None = None,
           inputs: str = "random normal images") -> str:
    if fmt == "table":
        return to_text(renderable(result, name, inputs, plain=True))
    return {"json": render_json, "csv": render_csv, "markdown": render_markdown}[fmt](result, name, inputs)


def latency_plot(result: Latency, name: str | None = None) -> bytes:
    """SVG: measured median ms per exit (eager and lazy, IQR as error bars) on the left axis and
    the operations per exit (eager and lazy) on the right axis."""
    convention = result.costs.convention
    divisor, unit = op_unit(max(e.macs for e in result.exits), convention)
    exits = [e.exit for e in result.exits]
    with matplotlib.rc_context(SVG_PARAMS):
        figure = Figure(figsize=(7.5, 4.2))
        ax = figure.add_subplot()
        ops = ax.twinx()
        ops.spines["right"].set_visible(True)
        ops.grid(False)
        lines = []
        timed = (("eager ms", "eager", "#1f77b4", "o"), ("lazy ms", "lazy", "#2ca02c", "^"),
                 ("in-forward ms", "forward", "#d62728", "v"))
        for what, timing, colour, marker in timed if result.programs else timed[2:]:
            t = [getattr(e, timing) for e in result.exits]
            lines.append(ax.errorbar(exits, [x.median_ms for x in t],
                                     yerr=[(x.iqr_ms or 0) / 2 for x in t],
                                     color=colour, marker=marker, markersize=4, linewidth=1.6,
                                     capsize=3, label=what + " (median, bar = IQR)"))
        for what, field, style in (("eager", "macs", "--"), ("lazy", "lazy_macs", ":"))[
                :2 if result.programs else 1]:
            lines += ops.plot(exits, [getattr(e, field) / divisor for e in result.exits],
                              linestyle=style, color="#7f7f7f", marker="s", markersize=3,
                              linewidth=1.2, label=f"{what} {unit}")
        ax.set_ylim(bottom=0)
        ops.set_ylim(bottom=0)
        ax.set_xlabel("exit k")
        ax.set_ylabel(f"ms per call, batch {result.batch} ({result.machine.device})")
        ops.set_ylabel(f"{unit} ({convention} convention), one image")
        ax.xaxis.set_major_locator(FixedLocator(exits))
        ax.xaxis.set_minor_locator(NullLocator())
        ax.legend(lines, [line.get_label() for line in lines], fontsize=8, frameon=False,
                  loc="upper left")
        ax.set_title(title(result, name), fontsize=9, wrap=True)
        return svg_bytes(figure)


__all__ = ["FORMATS", "caption", "csv_records", "early_rows", "exit_columns", "forward_caption", "latency_plot",
           "render", "renderable", "title"]
