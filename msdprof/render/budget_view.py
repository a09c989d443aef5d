"""Showing what a budget buys (:mod:`msdprof.analysis.budget`): tables, JSON, CSV and the accuracy-vs-cost plot.

Tables scale operation counts to M (K for tiny networks) with two decimals and percentages to one;
JSON and CSV carry exact integers where the figure is one (budgets, per-exit costs, test-set
totals), float32 thresholds as they are, and exact rationals as ``"numerator/denominator"``
strings beside the floats where a figure is a fraction.  The plot is a deterministic SVG drawn with
the helpers of :mod:`msdprof.render.costplot`.
"""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path
from typing import Any, Sequence

import matplotlib
from matplotlib.figure import Figure
from rich.console import Group, RenderableType
from rich.text import Text

from ..analysis.budget import (
    LAST_EXIT_THRESHOLD, NO_EXIT_THRESHOLD, AnytimeChoice, AnytimeStep, Calibration,
    ExitDistribution, ExitReach, ExpectedCost,
)
from .costplot import SVG_PARAMS, svg_bytes
from ..core.exits import ExitCosts
from .formatting import (OP_NAMES, check_format, csv_text, op_unit, scaled, filled_table,
                         to_text)
from ..files.saved_outputs import SavedOutputs

FORMATS = ("table", "json", "csv")


def _header(costs: ExitCosts, name: str | None) -> dict[str, Any]:
    data = costs.as_dict()
    head = {"options": data["options"], "convention": data["convention"], "input": data["input"]}
    if costs.options is None:  # a --model network: its class and the input it was counted on
        head = {"model": data["model"], "inputs": data["inputs"], **head}
    return {"preset" if costs.options is not None else "spec": name, **head} if name else head


def _network(costs: ExitCosts, name: str | None) -> str:
    if costs.options is None:  # a model msdprof did not build (--model): titles name its class first
        return name or costs.model
    return f"{name} ({costs.options.describe()})" if name else costs.options.describe()


def _kind(costs: ExitCosts) -> str:
    """What the network is, in titles: ``MSDNet``, or the class of a --model network."""
    return "MSDNet" if costs.options is not None else costs.model


def _image(costs: ExitCosts) -> str:
    """``One 3x32x32 image``, or the input shape(s) a --model network was counted on."""
    if costs.input_size is None:
        return "Input " + costs.inputs_text
    h, w = costs.input_size
    return f"One 3x{h}x{w} image"


def _unit(costs: ExitCosts) -> tuple[float, str]:
    return op_unit(costs.total_macs, costs.convention)


def _exact(value: Fraction) -> str:
    return f"{value.numerator}/{value.denominator}" if value.denominator != 1 else str(value.numerator)


def _percent(value: Fraction | float) -> str:
    return f"{100 * float(value):.1f}"


# --- anytime ----------------------------------------------------------------------------------


def _reach_line(what: str, reach: ExitReach | None, first: int, costs: ExitCosts) -> str:
    divisor, unit = _unit(costs)
    if reach is None:
        return (f"{what}: no exit fits; exit 1 costs {scaled(first, divisor)} {unit} "
                f"({first:,})")
    deepest = " (the last exit: every exit fits)" if reach.exit == len(costs) else ""
    layer = f" (layer {reach.layer})" if reach.layer is not None else ""
    return (f"{what}: exit {reach.exit}{layer}, {scaled(reach.macs, divisor)} {unit} "
            f"({reach.macs:,}){deepest}")


def anytime_renderable(costs: ExitCosts, choice: AnytimeChoice, steps: Sequence[AnytimeStep],
                       name: str | None = None, plain: bool = True) -> RenderableType:
    """The answer (eager and lazy) and the table of the budgets at which it changes."""
    divisor, unit = _unit(costs)
    answer = Text("\n".join([
        f"{_kind(costs)} anytime budget: {name}\n({costs.options.describe()})"
        if name and costs.options is not None else f"{_kind(costs)} anytime budget: {name or _network(costs, name)}",
        f"Budget {choice.budget:,} {OP_NAMES[costs.convention]} per image "
        f"({scaled(choice.budget, divisor)} {unit}); the deepest exit whose cumulative cost fits:",
        "  " + _reach_line("eager", choice.eager, choice.first_macs, costs),
        "  " + _reach_line("lazy ", choice.lazy, choice.first_lazy_macs, costs),
        "",
    ]))
    eager = choice.eager.exit if choice.eager else None
    lazy = choice.lazy.exit if choice.lazy else None
    rows = [[
        str(s.exit), "-" if s.layer is None else str(s.layer), scaled(s.eager_budget, divisor), scaled(s.lazy_budget, divisor),
        scaled(s.eager_budget - s.lazy_budget, divisor),
        " ".join(w for w, k in (("eager", eager), ("lazy", lazy)) if k == s.exit),
    ] for s in steps]
    table = filled_table(
        "Budgets at which the answer changes",
        f"{_image(costs)}, '{costs.convention}' convention. A budget of at least the eager "
        "(lazy) figure reaches the exit: eager = blocks 1..k + heads 1..k, as the authors count; "
        "lazy = heads 1..k and only the feature maps they read (the rest is deferred to later "
        "exits).",
        ["exit", "layer", f"eager budget\n{unit}", f"lazy budget\n{unit}", f"lazy saves\n{unit}",
         "chosen"],
        rows, plain, left=(5,), drop_order=(4, 1, 3, 2),
    )
    return Group(answer, table)


def anytime_json(costs: ExitCosts, choice: AnytimeChoice, steps: Sequence[AnytimeStep],
                 name: str | None = None) -> str:
    data = {**_header(costs, name), **choice.as_dict(),
            "steps": [{"exit": s.exit, "layer": s.layer, "eager_budget": s.eager_budget,
                       "lazy_budget": s.lazy_budget} for s in steps]}
    return json.dumps(data, indent=2) + "\n"


def anytime_csv(costs: ExitCosts, choice: AnytimeChoice, steps: Sequence[AnytimeStep],
                name: str | None = None) -> str:
    """One row per exit: the budgets reaching it, the budget asked and whether it is the answer."""
    eager = choice.eager.exit if choice.eager else None
    lazy = choice.lazy.exit if choice.lazy else None
    return csv_text(
        ["exit", "layer", "eager_budget", "lazy_budget", "budget", "eager_choice", "lazy_choice",
         "convention"],
        [{"exit": s.exit, "layer": s.layer, "eager_budget": s.eager_budget,
          "lazy_budget": s.lazy_budget, "budget": choice.budget,
          "eager_choice": int(s.exit == eager), "lazy_choice": int(s.exit == lazy),
          "convention": costs.convention} for s in steps],
    )


def render_anytime(costs: ExitCosts, choice: AnytimeChoice, steps: Sequence[AnytimeStep],
                   fmt: str, name: str | None = None) -> str:
    fmt = check_format(fmt, FORMATS)
    if fmt == "json":
        return anytime_json(costs, choice, steps, name)
    if fmt == "csv":
        return anytime_csv(costs, choice, steps, name)
    return to_text(anytime_renderable(costs, choice, steps, name))


# --- budgeted batch: expected cost of distributions -------------------------------------------


def _p(d: ExitDistribution) -> str:
    return "given" if d.p is None else str(d.p)


def _fractions_cell(fractions: Sequence[Fraction]) -> str:
    return " ".join(_percent(f) for f in fractions)


def _distribution_dict(d: ExitDistribution) -> dict[str, Any]:
    return {"p": d.p, "q": None if d.q is None else float(d.q),
            "fractions": [float(f) for f in d.fractions],
            "fractions_exact": [_exact(f) for f in d.fractions]}


def _family_note(distributions: Sequence[ExitDistribution]) -> str:
    notes = []
    if any(d.p is not None for d in distributions):
        notes.append("p: the authors' geometric family, fractions proportional to q^k with "
                     "q = p/20 (float32, as their code computes them)")
    if any(d.p is None for d in distributions):
        notes.append("given: the fractions of --fractions, or the shares of the exits in --exits-from")
    return "; ".join(notes) + "."


def expected_renderable(costs: ExitCosts, rows: Sequence[ExpectedCost], name: str | None = None,
                        plain: bool = True) -> RenderableType:
    divisor, unit = _unit(costs)
    return filled_table(
        f"{_kind(costs)} budgeted batch, expected cost per image: {_network(costs, name)}",
        f"{_image(costs)}, '{costs.convention}' convention. "
        f"{_family_note([r.distribution for r in rows])} Expected = "
        "sum over exits of fraction x cost: eager = blocks 1..k + heads 1..k; lazy = only the "
        "maps exits 1..k read (going on pays what was deferred).",
        ["p", "% of images leaving at\nexit 1, 2, ...", f"expected\neager {unit}",
         f"expected\nlazy {unit}", "lazy\nsaves %"],
        [[_p(r.distribution), _fractions_cell(r.distribution.fractions),
          scaled(round(r.macs), divisor), scaled(round(r.lazy_macs), divisor),
          _percent(1 - r.lazy_macs / r.macs) if r.macs else "0.0"] for r in rows],
        plain, left=(1,),
    )


def expected_json(costs: ExitCosts, rows: Sequence[ExpectedCost], name: str | None = None) -> str:
    data = {**_header(costs, name), "distributions": [{
        **_distribution_dict(r.distribution),
        "expected_macs": float(r.macs), "expected_lazy_macs": float(r.lazy_macs),
        "expected_macs_exact": _exact(r.macs), "expected_lazy_macs_exact": _exact(r.lazy_macs),
    } for r in rows]}
    return json.dumps(data, indent=2) + "\n"


def expected_csv(costs: ExitCosts, rows: Sequence[ExpectedCost], name: str | None = None) -> str:
    exits = range(1, len(costs) + 1)
    return csv_text(
        ["p", "q", *(f"fraction_{k}" for k in exits), "expected_macs", "expected_lazy_macs",
         "convention"],
        [{"p": _p(r.distribution), "q": "" if r.distribution.q is None else float(r.distribution.q),
          **{f"fraction_{k}": float(f) for k, f in zip(exits, r.distribution.fractions)},
          "expected_macs": float(r.macs), "expected_lazy_macs": float(r.lazy_macs),
          "convention": costs.convention} for r in rows],
    )


def render_expected(costs: ExitCosts, rows: Sequence[ExpectedCost], fmt: str,
                    name: str | None = None) -> str:
    fmt = check_format(fmt, FORMATS)
    if fmt == "json":
        return expected_json(costs, rows, name)
    if fmt == "csv":
        return expected_csv(costs, rows, name)
    return to_text(expected_renderable(costs, rows, name))


# --- budgeted batch: calibrated on saved outputs ----------------------------------------------


def _threshold(t: float) -> str:
    if t == NO_EXIT_THRESHOLD:
        return "1e8"
    if t == LAST_EXIT_THRESHOLD:
        return "-1e8"
    return f"{t:.3f}"


def source_name(outputs: SavedOutputs) -> str:
    """The file the outputs came from, without its directory (no absolute paths in outputs)."""
    return Path(outputs.source).name


def calibration_renderable(costs: ExitCosts, outputs: SavedOutputs, rows: Sequence[Calibration],
                           name: str | None = None, plain: bool = True) -> RenderableType:
    divisor, unit = _unit(costs)
    return filled_table(
        f"{_kind(costs)} budgeted batch on {source_name(outputs)}: {_network(costs, name)}",
        f"Thresholds calibrated on the {outputs.val_samples} validation samples, evaluated on the "
        f"{outputs.test_samples} test samples, exactly as the authors' adaptive_inference.py. "
        f"{_family_note([r.distribution for r in rows])} An image leaves at the first exit whose top softmax probability is >= "
        "its threshold (1e8: none leaves there; -1e8: the last exit takes the rest). Expected "
        f"cost per test image ({_image(costs).lower()}, '{costs.convention}' convention): eager = "
        "blocks 1..k + heads 1..k; lazy = only the maps exits 1..k read.",
        ["p", "target % leaving at\nexit 1, 2, ...", "thresholds at\nexit 1, 2, ...", "val\nacc %",
         "test\nacc %", "test % leaving at\nexit 1, 2, ...", f"expected\neager {unit}",
         f"expected\nlazy {unit}"],
        [[_p(r.distribution), _fractions_cell(r.distribution.fractions),
          " ".join(_threshold(t) for t in r.thresholds), f"{r.val.accuracy:.2f}",
          f"{r.test.accuracy:.2f}", _fractions_cell(r.test.exit_fractions),
          scaled(round(r.macs), divisor), scaled(round(r.lazy_macs), divisor)] for r in rows],
        plain, left=(1, 2, 5), drop_order=(5, 2, 1, 3, 7),
    )


def calibration_json(costs: ExitCosts, outputs: SavedOutputs, rows: Sequence[Calibration],
                     name: str | None = None) -> str:
    def row(r: Calibration) -> dict[str, Any]:
        return {
            **_distribution_dict(r.distribution),
            "thresholds": list(r.thresholds),
            "val_accuracy": r.val.accuracy, "val_correct": r.val.correct,
            "val_exit_counts": list(r.val.exit_counts),
            "test_accuracy": r.test.accuracy, "test_correct": r.test.correct,
            "test_exit_counts": list(r.test.exit_counts),
            "test_exit_fractions": [float(f) for f in r.test.exit_fractions],
            "expected_macs": float(r.macs), "expected_lazy_macs": float(r.lazy_macs),
            "test_total_macs": int(r.macs * r.test.samples),
            "test_total_lazy_macs": int(r.lazy_macs * r.test.samples),
        }

    data = {**_header(costs, name),
            "logits": {"file": source_name(outputs), "exits": outputs.exits,
                       "classes": outputs.classes, "val_samples": outputs.val_samples,
                       "test_samples": outputs.test_samples},
            "distributions": [row(r) for r in rows]}
    return json.dumps(data, indent=2) + "\n"


def calibration_csv(costs: ExitCosts, outputs: SavedOutputs, rows: Sequence[Calibration],
                    name: str | None = None) -> str:
    exits = range(1, len(costs) + 1)
    return csv_text(
        ["p", "q", *(f"fraction_{k}" for k in exits), *(f"threshold_{k}" for k in exits),
         "val_accuracy", "test_accuracy", *(f"test_exits_{k}" for k in exits), "test_samples",
         "expected_macs", "expected_lazy_macs", "convention"],
        [{"p": _p(r.distribution), "q": "" if r.distribution.q is None else float(r.distribution.q),
          **{f"fraction_{k}": float(f) for k, f in zip(exits, r.distribution.fractions)},
          **{f"threshold_{k}": t for k, t in zip(exits, r.thresholds)},
          "val_accuracy": r.val.accuracy, "test_accuracy": r.test.accuracy,
          **{f"test_exits_{k}": c for k, c in zip(exits, r.test.exit_counts)},
          "test_samples": r.test.samples,
          "expected_macs": float(r.macs), "expected_lazy_macs": float(r.lazy_macs),
          "convention": costs.convention} for r in rows],
    )


def render_calibration(costs: ExitCosts, outputs: SavedOutputs, rows: Sequence[Calibration],
                       fmt: str, name: str | None = None) -> str:
    fmt = check_format(fmt, FORMATS)
    if fmt == "json":
        return calibration_json(costs, outputs, rows, name)
    if fmt == "csv":
        return calibration_csv(costs, outputs, rows, name)
    return to_text(calibration_renderable(costs, outputs, rows, name))


def accuracy_plot(costs: ExitCosts, outputs: SavedOutputs, rows: Sequence[Calibration],
                  name: str | None = None) -> bytes:
    """SVG of test accuracy (%) against expected cost per test image, one point per distribution
    (the curve of the paper's Figure 4): eager (solid) and lazy (dashed) cost."""
    divisor, unit = _unit(costs)
    with matplotlib.rc_context(SVG_PARAMS):
        figure = Figure(figsize=(7.5, 4.6))
        ax = figure.add_subplot()
        accuracy = [r.test.accuracy for r in rows]
        for label, values, style, marker, colour in (
            ("eager: blocks 1..k + heads 1..k", [r.macs for r in rows], "-", "o", "#1f77b4"),
            ("lazy: only the maps exits 1..k read", [r.lazy_macs for r in rows], "--", "^", "#d62728"),
        ):
            ax.plot([float(v) / divisor for v in values], accuracy, linestyle=style, marker=marker,
                    markersize=3.5, linewidth=1.5, color=colour, label=label)
        ax.set_xlim(left=0)
        ax.set_ylim(top=min(ax.get_ylim()[1], 100.5))  # no room above 100% (a flat curve gets ±5%)
        ax.set_xlabel(f"expected {unit} per test image ({costs.convention} convention)")
        ax.set_ylabel("test accuracy, top-1 (%)")
        ax.legend(fontsize=8, frameon=False, loc="lower right", title="cost of an exit",
                  title_fontsize=8)
        what = f"{name}" if name else _network(costs, name)
        ax.set_title(f"Budgeted batch: accuracy vs expected cost\n{what}, outputs from "
                     f"{source_name(outputs)}", fontsize=10)
        return svg_bytes(figure)


__all__ = [
    "FORMATS", "accuracy_plot", "anytime_renderable", "calibration_renderable",
    "expected_renderable", "render_anytime", "render_calibration", "render_expected", "to_text",
]
