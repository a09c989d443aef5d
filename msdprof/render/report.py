"""Reports: one page per MSDNet configuration (or several side by side), or on any early-exit
network of the user's (``--model``), with its pictures.

A report says, for one image: the options and the layer plan (layers per block, exit layers, scales
per layer, transitions); per exit, the cumulative operations and parameters, the share of the full
network, the block and head parts, the direct cost and the lazy cost (scaled, then again as
exact integers); the totals; a cost-vs-exit plot (:mod:`msdprof.render.costplot`) and the layout picture (:mod:`msdprof.render.drawing`, which needs Graphviz;
without it the report says so in its place).

:func:`report_files` returns every file of a report as ``{file name: bytes}`` (Markdown or HTML,
pictures as SVG beside it); :func:`preset_files` does so for every preset plus an index.  Nothing
in them depends on the date, the machine or the output directory, so regenerating gives the same
bytes.  A network of the user's (:func:`model_configuration`) has no options nor layer plan: its
report has a section on the model in their place, its dataflow graph as the layout picture, and
what ran with no counting rule listed.  :func:`write_files` writes such a set into a directory of
its own as one swap (all old or all new at every instant); :func:`write_report` writes one report
beside other files, the pictures first and the page last (see :mod:`msdprof.files.output`).
"""

from __future__ import annotations

import dataclasses
import os
import re
import shlex
import shutil
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

from msdnet import PRESETS, LayerPlan, Options, build_plan, resolve
from msdnet.options import OptionError, format_value

from . import drawing, interactive, memory_view
from .costplot import Series, cost_plot
from ..core.counting import CONVENTION_HELP
from ..core.conventions import check_convention
from ..core.dataflow import Dataflow
from .document import Block, Facts, Frame, Heading, Image, Note, Paragraph, Table, to_html, to_markdown
from ..core.exits import ExitCosts, costs_of, exit_costs, record_exits
from ..core.memory import ExitMemories, exit_memory, memory_of
from .formatting import (OP_NAMES, any_model_note, op_scale, op_unit, scaled,
                         counted_note, lazy_gap_note, table_columns, unsupported_note, wrapper_note)
from ..analysis.graph import dataflow_graph, default_depth, fold_graph, layout_graph
from ..files.output import (check_writable, cut_name, name_max, stamped_name, write_directory,
                            write_with_pictures)
from ..files.user_model import model_title
from ..core.units import shape_text

#: Report formats and the suffix of their files.
SUFFIXES = {"markdown": ".md", "html": ".html"}
#: The index file of :func:`preset_files`, per format.
INDEX = {"markdown": "README.md", "html": "index.html"}


@dataclass(frozen=True)
class UserModel:
    """A network of the user's, as ``msdprof report --model`` was given it: the ``spec``
    (``FILE.py:FACTORY``), the factory's keyword arguments as typed (JSON, or ``None``), the
    checkpoint loaded (or ``None``), the model built and the dataflow record of one forward pass."""

    spec: str
    kwargs: str | None
    checkpoint: str | None
    model: Any  # torch.nn.Module
    flow: Dataflow
    typed: tuple[tuple[str, str], ...] = ()  # --input-size, --input-dtype, --inputs, --outputs as given


@dataclass(frozen=True)
class Configuration:
    """One network of a report: the name it is shown under, its layer plan and per-exit costs.

    ``preset`` is the preset the options were taken from (``None`` for options alone).  A network
    of the user's (:func:`model_configuration`) has ``plan`` ``None`` and ``user`` set.
    """

    label: str
    preset: str | None
    plan: LayerPlan | None
    costs: ExitCosts
    user: UserModel | None = None
    memory: ExitMemories | None = None  # what each exit needs in memory, when asked for

    @property
    def options(self) -> Options:
        return self.plan.options

    @property
    def slug(self) -> str:
        """The label as a file-name part: ``cifar10-anytime-with-step-4``."""
        return re.sub(r"[^a-z0-9.]+", "-", self.label.lower()).strip("-.") or "network"


def _differences(options: Options, base: Options) -> str:
    return ", ".join(
        f"{f.name} {format_value(getattr(options, f.name))}"
        for f in fields(Options) if getattr(options, f.name) != getattr(base, f.name)
    )


def label(options: Options, preset: str | None = None, input_size: Any = None) -> str:
    """How a configuration is named: the preset (or the preset it equals), with what differs.

    ``cifar10-anytime``, ``cifar10-anytime with step 4, base 2``, ``nBlocks 5, step 3`` (options
    alone: what differs from the authors' defaults), plus ``, input 40x40`` for a non-default size.
    """
    if preset is None:
        preset = next((name for name, p in PRESETS.items() if p == options), None)
    if preset is not None:
        diff = _differences(options, PRESETS[preset])
        text = f"{preset} with {diff}" if diff else preset
    else:
        text = _differences(options, Options()) or "authors' defaults"
    if input_size is not None:
        height, width = build_plan(options, input_size).input_size
        if (height, width) != (options.default_input_size,) * 2:
            text += f", input {height}x{width}"
    return text


def configuration(
    options: Options, preset: str | None = None, input_size: Any = None, convention: str = "msdnet"
) -> Configuration:
    """Count ``options`` (on the ``meta`` device) and name it; :class:`OptionError` for bad input."""
    convention = check_convention(convention)
    plan = build_plan(options, input_size)
    costs = exit_costs(options, convention=convention, input_size=input_size)
    return Configuration(label(options, preset, input_size), preset, plan, costs)


def model_configuration(
    model: Any, spec: str, input_size: Any = None, convention: str | None = None, kwargs: str | None = None,
    checkpoint: str | None = None, *, inputs: Any = None, outputs: Any = None,
    typed: tuple[tuple[str, str], ...] = (),
) -> Configuration:
    """A network of the user's, counted on zero inputs of ``input_size`` or on ``inputs`` (exits
    picked by ``outputs``; see :func:`msdprof.exit_costs`) from one dataflow record (which also
    draws its graph); shown under ``spec``; ``typed``: the input and output options as the command
    line gave them (``(("input-size", "1x128"), ("input-dtype", "long"))``), for the command shown;
    ``convention``: by default ``msdnet`` for an MSDNet, ``macs`` for any other model."""
    from msdnet import MSDNet

    convention = check_convention(convention, isinstance(model, MSDNet))
    flow = record_exits(model, input_size=input_size, inputs=inputs, outputs=outputs)
    costs = costs_of(model, flow, convention)
    return Configuration(spec, None, None, costs, UserModel(spec, kwargs, checkpoint, model, flow, typed))


def with_memory(config: Configuration, batch: int = 1, input_size: Any = None) -> Configuration:
    """``config`` with what each exit needs in memory for ``batch`` inputs (its report gets a
    "Memory per exit" section and chart); ``input_size`` as the network of the user's was counted on."""
    if config.user is not None and batch == 1:  # the record the costs were read off
        flow = config.user.flow
        memories = memory_of(config.user.model, flow, flow.input_shapes[0][0] if flow.input_shapes[0] else 1)
    elif config.user is not None:
        memories = exit_memory(config.user.model, batch=batch, input_size=input_size)
    else:
        memories = exit_memory(config.options, batch=batch, input_size=config.plan.input_size)
    return dataclasses.replace(config, memory=memories)


def preset_configuration(name: str, convention: str = "msdnet") -> Configuration:
    """The :class:`Configuration` of preset ``name`` as it is."""
    return configuration(resolve(name), name, convention=convention)


_ITEM_FORMAT = ("must be PRESET, PRESET:OPTION=V,OPTION=V or OPTION=V,OPTION=V "
                "(e.g. cifar10-anytime:step=4,base=2)")


def parse_item(text: str) -> tuple[str | None, dict[str, str]]:
    """One configuration to compare, as ``--compare`` takes it: ``(preset or None, options)``.

    ``cifar10-batch`` -> ``("cifar10-batch", {})``; ``cifar10-anytime:step=4,base=2`` ->
    ``("cifar10-anytime", {"step": "4", "base": "2"})``; ``nBlocks=5,step=3`` -> ``(None, {...})``.
    Only the shape is checked here; names and values are checked by :func:`msdnet.resolve`.
    """
    name, _, rest = text.partition(":") if ":" in text or "=" not in text else ("", "", text)
    if ":" in text and not rest:
        raise OptionError("compare", text, _ITEM_FORMAT)
    overrides: dict[str, str] = {}
    for pair in rest.split(",") if rest else []:
        key, equals, value = pair.partition("=")
        if not equals or not key.strip():
            raise OptionError("compare", text, _ITEM_FORMAT)
        overrides[key.strip()] = value.strip()
    if not name.strip() and not overrides:
        raise OptionError("compare", text, _ITEM_FORMAT)
    return name.strip() or None, overrides


def compare_configurations(
    items: Sequence[str], preset: str | None = None, overrides: dict[str, Any] | None = None,
    input_size: Any = None, convention: str = "msdnet",
) -> list[Configuration]:
    """The configurations ``items`` name (see :func:`parse_item`), in order.

    ``preset`` and ``overrides`` are common to all (the command line's ``--preset`` and options):
    an item's own preset replaces ``preset``, its own options are laid over ``overrides``.  An item
    with neither starts, like ``msdprof count``, from ``preset``, else the authors' defaults.
    """
    overrides = dict(overrides or {})
    resolve(preset, **overrides)  # a mistake in the common options is named as such
    configs = []
    for item in items:
        name, own = parse_item(item)
        try:
            options = resolve(name or preset, **{**overrides, **own})
        except OptionError as error:
            raise OptionError("compare", item, f"{error.option} {format_value(error.value)}: "
                                               f"{error.allowed}") from None
        configs.append(configuration(options, name or preset, input_size, convention))
    return configs


# --- text pieces -------------------------------------------------------------------------------


def _ranges(values: Sequence[int]) -> list[tuple[int, int, int]]:
    """Runs of equal values as (value, first index, last index), indices 1-based."""
    runs: list[tuple[int, int, int]] = []
    for i, v in enumerate(values, start=1):
        if runs and runs[-1][0] == v:
            runs[-1] = (v, runs[-1][1], i)
        else:
            runs.append((v, i, i))
    return runs


def _span(first: int, last: int) -> str:
    return str(first) if first == last else f"{first}–{last}"


def _joined(values: Iterable[Any]) -> str:
    return ", ".join(str(v) for v in values)


def command(config: Configuration, output: str | None = None) -> str:
    """The ``msdprof report`` command that makes this configuration's report."""
    parts = ["msdprof report"]
    if config.user is not None:
        user = config.user
        parts.append(f"--model {shlex.quote(user.spec)}")
        if user.kwargs is not None:
            parts.append(f"--model-kwargs {shlex.quote(user.kwargs)}")
        if user.checkpoint is not None:
            parts.append(f"--checkpoint {shlex.quote(user.checkpoint)}")
        parts.extend(f"--{option} {shlex.quote(value)}" for option, value in user.typed or (
            ("input-size", shape_text(config.costs.input_shapes[0][1:])),))
        if config.costs.convention != "msdnet":
            parts.append(f"--convention {config.costs.convention}")
        return " ".join(parts + ([f"-o {output}"] if output else []))
    base = PRESETS[config.preset] if config.preset else Options()
    if config.preset:
        parts.append(f"--preset {config.preset}")
    for f in fields(Options):
        value = getattr(config.options, f.name)
        if value != getattr(base, f.name):
            parts.append(f"--{f.name} {format_value(value)}")
    height, width = config.plan.input_size
    if (height, width) != (config.options.default_input_size,) * 2:
        parts.append(f"--input-size {height}x{width}")
    if config.costs.convention != "msdnet":
        parts.append(f"--convention {config.costs.convention}")
    if output:
        parts.append(f"-o {output}")
    return " ".join(parts)


def _unit(costs: ExitCosts) -> tuple[float, str]:
    """Divisor and unit name (``M ops``) for the operation counts of ``costs``."""
    return op_unit(costs.total_macs, costs.convention)


def _percent(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f}"


def caption(costs: ExitCosts, image: bool = True) -> str:
    """What the figures count, for the line under a table; ``image``: name the input size."""
    more = ""
    if costs.input_size is None:
        what, more = f"For the inputs {costs.inputs_text}", any_model_note(costs.convention)
    else:
        h, w = costs.input_size
        what = f"For one 3×{h}×{w} image" if image else "For one image (its size in the table)"
    return (f"{what}; {OP_NAMES[costs.convention]} of the `{costs.convention}` "
            f"convention — {CONVENTION_HELP[costs.convention]}.{more}"
            + wrapper_note(costs) + counted_note(costs) + lazy_gap_note(costs))


# --- blocks --------------------------------------------------------------------------------------


def options_table(config: Configuration) -> Table:
    """The twelve options, in one row, under the authors' names."""
    values = config.options.as_dict()
    return Table(tuple(values), (tuple(format_value(v) for v in values.values()),), align="l" * len(values))


def plan_facts(config: Configuration) -> Facts:
    """Layers per block, exit layers, scales per layer, transitions, map sides."""
    summary = config.plan.summary()
    scales = "; ".join(
        f"{value} at {'layer' if first == last else 'layers'} {_span(first, last)}"
        for value, first, last in _ranges(summary["scales_per_layer"])
    )
    after = summary["transitions_after_layers"]
    sides = ", ".join(f"{m.height}×{m.width}" for m in config.plan.stem)
    return Facts((
        ("layers per block", f"{_joined(summary['layers_per_block'])} (L = {config.options.nLayers} layers)"),
        ("exit layers", _joined(summary["exit_layers"])),
        ("scales per layer", scales),
        ("transitions", f"after layer{'s' if len(after) > 1 else ''} {_joined(after)}" if after else "none"),
        ("input", f"3×{config.plan.input_size[0]}×{config.plan.input_size[1]}; maps per scale {sides} px"),
    ))


def _params_unit(config: Configuration) -> tuple[float, str]:
    """Parameters in M for an MSDNet (as they always were), M or K for a network of the user's."""
    return (1e6, "M") if config.user is None else op_scale(config.costs.total_params)


def exit_table(config: Configuration) -> Table:
    """Per exit, scaled: the columns of ``msdprof count`` and the lazy parameters."""
    costs = config.costs
    divisor, prefix = _params_unit(config)
    columns = [*table_columns(costs), (f"lazy params {prefix}", lambda e: scaled(e.lazy_params, divisor))]
    headers = [h.replace("\n", " ") for h, _ in columns]
    rows = tuple(tuple(cell(e) for _, cell in columns) for e in costs)
    meaning = _MODEL_NOTE if config.user is not None else (
        " Cumulative = blocks 1..k + heads 1..k (what early-exit inference "
        "pays to reach exit k); block, head = block k, head k alone; direct = blocks 1..k + head k "
        "(the exit chosen in advance)." + _LAZY_NOTE)
    return Table(tuple(headers), rows, align="r" * len(headers), caption=caption(costs) + meaning)


_LAZY_NOTE = (" Lazy = only the maps exits 1..k read (their ancestors in the layout graph) and "
              "heads 1..k are computed; the rest is paid later if the image goes on. Lazy saves = its "
              "saving on the cumulative cost.")


_MODEL_NOTE = (
    " Cumulative (eager) = everything that ran until outputs 1..k were complete, in execution "
    "order (what early-exit inference pays to reach exit k; the authors' op counter's running "
    "total); head k = the outermost submodule call that made output k and feeds no other output; "
    "block k = the rest of what ran after output k−1; direct = cumulative less heads 1..k−1; lazy = "
    "only the dataflow ancestors of outputs 1..k (what they read); lazy saves = its saving on the "
    "cumulative cost."
)


def exact_table(config: Configuration) -> Table:
    """Per exit, every figure as an exact integer."""
    costs = config.costs
    unit = OP_NAMES[costs.convention]
    parts = ["", "block", "head", "direct", "lazy"]
    layers = costs.options is not None
    headers = ["exit", "layer"] if layers else ["exit"]
    for part in parts:
        name = part or "cumulative"
        headers += [f"{name} {unit}", f"{name} params"]
    headers += ["idle params", f"uncounted {unit}"]
    rows = []
    for e in costs:
        row = [str(e.exit), str(e.layer)] if layers else [str(e.exit)]
        for part in parts:
            prefix = f"{part}_" if part else ""
            row += [str(getattr(e, f"{prefix}macs")), str(getattr(e, f"{prefix}params"))]
        row += [str(e.idle_params), "unknown" if e.uncounted_macs is None else str(e.uncounted_macs)]
        rows.append(tuple(row))
    return Table(tuple(headers), tuple(rows), align="r" * len(headers))


def totals_table(config: Configuration) -> Table:
    """Blocks, heads and the full network: operations and parameters, with their shares."""
    costs = config.costs
    divisor, unit = _unit(costs)
    p_divisor, p_prefix = _params_unit(config)
    blocks = sum(e.block_macs for e in costs), sum(e.block_params for e in costs)
    heads = sum(e.head_macs for e in costs), sum(e.head_params for e in costs)
    full = costs.total_macs, costs.total_params
    first = costs[0].macs, costs[0].params

    def row(name: str, value: tuple[int, int]) -> tuple[str, ...]:
        return (name, scaled(value[0], divisor), _percent(value[0], full[0]), str(value[0]),
                scaled(value[1], p_divisor), _percent(value[1], full[1]), str(value[1]))

    n = len(costs)
    return Table(
        ("", unit, "% of full", unit.split(" ", 1)[1], f"params {p_prefix}", "% of full", "params"),
        (row(f"blocks 1..{n}", blocks), row(f"heads 1..{n}", heads), row("full network", full),
         row("exit 1 (cumulative)", first)),
    )


def _layout_blocks(config: Configuration, src: str, graphviz: bool, page: str | None = None) -> list[Block]:
    if not graphviz:
        program = "dot" if config.user is not None else drawing.GRAPHVIZ_PROGRAM  # dataflow: dot
        return [Note(
            "The layout picture needs Graphviz's `" + program + "` program, which "
            "was not found when this report was made: install Graphviz (`apt-get install graphviz`) "
            "and make the report again."
        )]
    if config.user is not None:
        return _graph_blocks(config, src, page)
    if page is not None:
        return [Frame(
            page, f"interactive layout of {config.label}",
            "Click an exit: the maps it needs light up, and the panel gives its eager, lazy and "
            "direct cost and what lazy evaluation defers; hover a map for its shape and cost; drag "
            f"to pan, wheel to zoom. Full page: [{page}]({page}); static picture: [{src}]({src}).",
        )]
    return [Image(
        src, f"layout of {config.label}",
        "Feature maps (channels×height×width) by scale (rows) and layer (columns), one band per "
        f"block; each exit reads the coarsest scale. Full size: [{src}]({src}).", wide=True,
    )]


def _graph_blocks(config: Configuration, src: str, page: str | None) -> list[Block]:
    """The layout section of a network of the user's: its dataflow graph."""
    if page is not None:
        return [Frame(
            page, f"interactive dataflow graph of {config.label}",
            "Click an exit: the operations it needs light up, and the panel gives its eager, lazy "
            "and direct cost; hover an operation for its shape and cost; drag to pan, wheel to "
            f"zoom. Full page: [{page}]({page}); static picture: [{src}]({src}).",
        )]
    return [Image(
        src, f"dataflow graph of {config.label}",
        "Module calls (and the functional ops that cost something or read a parameter) in "
        "execution order, left to right, an edge where one reads another's result; exits marked. "
        f"Full size: [{src}]({src}).", wide=True,
    )]


def _exit_names(costs: ExitCosts) -> str:
    """`` (early, final)`` when the exits have names of their own (a dict's keys), else ``""``."""
    return f" ({', '.join(costs.exit_names)})" if costs.named_exits else ""


def model_facts(config: Configuration) -> Facts:
    """What the report's network of the user's is: the model, the factory, the inputs, the exits."""
    user, costs = config.user, config.costs
    assert user is not None
    ops = user.flow.ops
    modules = sum(1 for op in ops if op.kind == "module")
    functions = len(ops) - modules
    return Facts((
        ("model", f"{costs.model}, made by `{user.spec}`"
                  + (f" with `{user.kwargs}`" if user.kwargs is not None else "")),
        ("weights", f"`{user.checkpoint}` (counts do not depend on them)" if user.checkpoint
         else "as the factory made them (counts do not depend on them)"),
        ("inputs", f"{costs.inputs_text} (zeros)"),
        ("exits", f"{len(costs)}{_exit_names(costs)}"),
        ("recorded", f"{modules} module call{'s' * (modules != 1)} and {functions} functional "
                     f"op{'s' * (functions != 1)} in one forward pass"),
        ("parameters", f"{costs.total_params:,}"),
    ))


def configuration_blocks(
    config: Configuration, level: int, layout: str, graphviz: bool, cost: str | None = None,
    output: str | None = None, page: str | None = None, memory: str | None = None,
) -> list[Block]:
    """Every section about one configuration; headings at ``level``.  ``layout`` and ``cost`` are
    the file names of its pictures (``cost`` ``None``: no plot of its own); ``page`` that of its
    interactive layout page, shown in place of the layout picture (HTML reports); ``memory`` that
    of its memory chart, with a "Memory per exit" section when the configuration has its memory."""
    if config.user is not None:
        blocks: list[Block] = [
            Heading("Model", level),
            model_facts(config),
            Paragraph(f"Command line: `{command(config, output)}`"),
        ]
    else:
        blocks = [
            Heading("Options", level),
            options_table(config),
            Paragraph(f"Command line: `{command(config, output)}`"),
            Heading("Layer plan", level),
            plan_facts(config),
        ]
    blocks += [
        Heading("Cost per exit", level),
        exit_table(config),
        *([Note(unsupported_note(config.costs).strip())] if config.costs.unsupported else []),
        Heading("Totals", level),
        totals_table(config),
    ]
    if cost is not None:
        blocks += [Heading("Cost vs exit", level), Image(cost, f"cost vs exit of {config.label}")]
    if config.memory is not None and memory is not None:
        headers, rows, text = memory_view.memory_report_table(config.costs, config.memory)
        blocks += [Heading("Memory per exit", level),
                   Table(headers, rows, align="r" * (len(headers) - 1) + "l", caption=text),
                   Image(memory, f"memory per exit of {config.label}")]
    blocks += [Heading("Layout" if config.user is None else "Dataflow graph", level),
               *_layout_blocks(config, layout, graphviz, page)]
    blocks += [Heading("Exact counts", level), exact_table(config)]
    return blocks


def _summary(config: Configuration) -> str:
    costs = config.costs
    divisor, unit = _unit(costs)
    first, full = costs[0], costs[-1]
    if config.user is not None:
        p_divisor, p_prefix = _params_unit(config)
        return (
            f"{costs.model} **{config.label}**: {len(costs)} exits{_exit_names(costs)}, "
            f"counted on {costs.inputs_text}. Reaching exit 1 costs "
            f"{scaled(first.macs, divisor)} {unit} ({_percent(first.macs, full.macs)}% of the full "
            f"network's {scaled(full.macs, divisor)} {unit}); the network has "
            f"{scaled(costs.total_params, p_divisor)} {p_prefix} parameters."
        )
    return (
        f"MSDNet **{config.label}**: {len(costs)} exits over {config.options.nLayers} layers, "
        f"{config.options.nScales} scales, {config.options.data}. Reaching exit 1 costs "
        f"{scaled(first.macs, divisor)} {unit} ({_percent(first.macs, full.macs)}% of the full "
        f"network's {scaled(full.macs, divisor)} {unit}); the full network has "
        f"{scaled(costs.total_params, 1e6)} M parameters."
    )


def comparison_table(configs: Sequence[Configuration], links: Sequence[str] | None = None) -> Table:
    """One row per configuration: its shape, the first exit's and the full network's cost."""
    convention = configs[0].costs.convention
    divisor, unit = op_unit(max(c.costs.total_macs for c in configs), convention)
    rows = []
    for i, c in enumerate(configs):
        costs, o = c.costs, c.options
        name = f"[{c.label}]({links[i]})" if links else c.label
        row = [
            name, o.data, str(len(costs)), f"{o.step} ({o.stepmode})", str(o.base), str(o.nLayers),
            "×".join(map(str, costs.input_size)), scaled(costs[0].macs, divisor),
            _percent(costs[0].macs, costs.total_macs), scaled(costs.total_macs, divisor),
            scaled(costs.total_params, 1e6), _percent(sum(e.head_macs for e in costs), costs.total_macs),
            scaled(costs[0].lazy_macs, divisor),
        ]
        rows.append(tuple(row))
    headers = ["network", "data", "exits", "step (mode)", "base", "layers", "input",
               f"exit 1 {unit}", "exit 1 % of full", f"full {unit}", "full params M", "heads % of full",
               f"exit 1 lazy {unit}"]
    return Table(tuple(headers), tuple(rows), align="ll" + "r" * (len(headers) - 2))


# --- files ---------------------------------------------------------------------------------------


def graphviz_available() -> bool:
    """Whether Graphviz's program for the layout picture is on the ``PATH``."""
    return shutil.which(drawing.GRAPHVIZ_PROGRAM) is not None


def check_format(fmt: str) -> str:
    if fmt not in SUFFIXES:
        raise OptionError("format", fmt, "must be one of " + ", ".join(SUFFIXES))
    return fmt


def _layout_svg(config: Configuration) -> bytes:
    if config.user is not None:
        graph = dataflow_graph(config.user.flow, config.costs.convention, config.costs.model)
        graph.graph["spec"] = config.label
        return drawing.render(fold_graph(graph, default_depth(graph)), "svg")
    graph = layout_graph(config.options, input_size=config.plan.input_size, convention=config.costs.convention)
    graph.graph["preset"] = config.label
    return drawing.render(graph, "svg")


def _interactive_page(config: Configuration) -> bytes:
    if config.user is not None:
        return interactive.dataflow_page(
            config.user.model, config.user.flow, convention=config.costs.convention,
            title=model_title(config.user.spec, config.costs.model), source=config.user.spec).encode("utf-8")
    return interactive.network_page(config.options, input_size=config.plan.input_size,
                                    convention=config.costs.convention,
                                    name=config.label).encode("utf-8")


def _page(blocks: list[Block], title: str, fmt: str) -> bytes:
    text = to_markdown(blocks) if fmt == "markdown" else to_html(blocks, title)
    return text.encode("utf-8")


#: ``progress(done, steps, step)``: told as each step of writing a report starts (``step`` names
#: it) and once more at the end (``done == steps``).
Progress = Callable[[int, int, str], None]


class _Steps:
    """Tells ``progress`` (if any) about each of ``steps`` steps as it starts, and the end."""

    def __init__(self, progress: Progress | None, steps: int):
        self.progress, self.steps, self.done = progress, steps, 0

    def __call__(self, step: str) -> None:
        if self.progress is not None:
            self.progress(self.done, self.steps, step)
        self.done += 1

    def end(self) -> None:
        if self.progress is not None:
            self.progress(self.steps, self.steps, "done")


def report_files(
    configs: Sequence[Configuration], stem: str, fmt: str = "markdown", graphviz: bool | None = None,
    progress: Progress | None = None, stamp: bool = False, name_limit: int = 255,
) -> dict[str, bytes]:
    """Every file of the report on ``configs``: ``{name: bytes}``, names relative to the report.

    One configuration: ``STEM.md`` (or ``.html``), ``STEM-cost.svg``, ``STEM-layout.svg``.  Several:
    a comparison table and one plot of them all (``STEM-cost.svg``), then a section per
    configuration with its layout ``STEM-<label>-layout.svg``.  HTML reports also get each
    layout's interactive page (:mod:`msdprof.render.interactive`), ``STEM-layout.html`` or
    ``STEM-<label>-layout.html``, shown in the layout section.  ``graphviz`` (default: whether it
    is installed) ``False`` leaves the layout pictures out and says so in their place.
    ``progress`` is told as each picture and page is made (:data:`Progress`).  ``stamp``: every
    file but the page is named with 8 hex digits of its content's SHA-256 before the suffix
    (``STEM-cost-1a2b3c4d.svg``, :func:`stamped_name`), so that the pictures of a new report never
    take the names an older page shows (:func:`write_report`).  Where a picture's name would pass
    ``name_limit`` bytes (the file system's limit), the pictures' ``STEM`` is cut to fit and ended
    with 8 hex digits of its hash (:func:`~msdprof.files.output.cut_name`): the page keeps its name.
    """
    check_format(fmt)
    if not configs:
        raise OptionError("compare", "''", "give at least one configuration")
    if graphviz is None:
        graphviz = graphviz_available()
    if len(configs) > 1 and any(c.user is not None for c in configs):
        raise OptionError("compare", next(c.label for c in configs if c.user is not None),
                          "a network of your own is reported alone (no --compare)")
    slugs = [c.slug for c in configs]
    for i, slug in enumerate(slugs):
        if slug in slugs[:i]:
            raise OptionError("compare", configs[i].label, "is given twice; compare different networks")
    page = stem + SUFFIXES[fmt]
    # the longest name a picture adds to the stem: -<slug>-layout-XXXXXXXX.html
    longest = max(len(f"-{s}".encode()) for s in slugs) * (len(configs) > 1) + len("-layout-12345678.html")
    base = cut_name(stem, name_limit - longest)
    files: dict[str, bytes] = {}
    step = _Steps(progress, 2 + len(configs) * (int(graphviz) + int(fmt == "html" and graphviz)))

    def put(name: str, data: bytes) -> str:
        """Add a picture (or layout page) to ``files``; the name the report shows it under."""
        named = stamped_name(name, data) if stamp else name
        files[named] = data
        return named

    def pictures(config: Configuration, prefix: str) -> tuple[str, str | None, str | None]:
        """Its layout picture, interactive layout page and memory chart: their names."""
        memory = None
        if config.memory is not None:
            memory = put(f"{prefix}-memory.svg", memory_view.memory_plot(
                config.memory, f"{config.label}: memory per exit"))
        layout, interactive_page = f"{prefix}-layout.svg", None
        if graphviz:
            step("layout picture" if len(configs) == 1 else f"layout picture of {config.label}")
            layout = put(layout, _layout_svg(config))
            if fmt == "html":
                step("interactive layout page" if len(configs) == 1 else
                     f"interactive layout page of {config.label}")
                interactive_page = put(f"{prefix}-layout.html", _interactive_page(config))
        return layout, interactive_page, memory

    step("cost plot")
    if len(configs) == 1:
        (config,) = configs
        cost = put(f"{base}-cost.svg", cost_plot([Series(config.label, config.costs)],
                                                 f"{config.label}: cost vs exit"))
        layout, interactive_page, memory = pictures(config, base)
        title = (f"MSDNet report: {config.label}" if config.user is None else  # its spec is in the summary
                 f"{model_title(config.user.spec, config.costs.model)} report")
        blocks: list[Block] = [Heading(title, 1), Paragraph(_summary(config))]
        blocks += configuration_blocks(config, 2, layout, graphviz, cost, output=page,
                                       page=interactive_page, memory=memory)
    else:
        title = "MSDNet comparison: " + " vs ".join(c.label for c in configs)
        cost = put(f"{base}-cost.svg", cost_plot([Series(c.label, c.costs) for c in configs], "cost vs exit"))
        blocks = [
            Heading(title, 1),
            Paragraph(caption(configs[0].costs, image=False) + " Each network's section follows the table."),
            comparison_table(configs, links=None),
            Image(cost, "cost vs exit of every network"),
        ]
        for config in configs:
            layout, interactive_page, memory = pictures(config, f"{base}-{config.slug}")
            blocks += [Heading(config.label, 2, anchor=config.slug), Paragraph(_summary(config))]
            blocks += configuration_blocks(config, 3, layout, graphviz, page=interactive_page,
                                           memory=memory)
    step("page")
    files[page] = _page(blocks, title, fmt)
    step.end()
    return files


def preset_files(fmt: str = "markdown", convention: str | None = None, graphviz: bool | None = None,
                 progress: Progress | None = None) -> dict[str, bytes]:
    """A report per preset of :data:`msdnet.PRESETS` and an index comparing them (``README.md``
    or ``index.html``), as in ``reports/``; ``progress`` is told as each preset starts."""
    check_format(fmt)
    convention = check_convention(convention)
    step = _Steps(progress, 2 * len(PRESETS))
    configs = []
    for name in PRESETS:
        step(f"counting {name}")
        configs.append(preset_configuration(name, convention))
    files: dict[str, bytes] = {}
    for config in configs:
        step(f"report on {config.label}")
        files.update(report_files([config], config.slug, fmt, graphviz))
    step.end()
    links = [c.slug + SUFFIXES[fmt] for c in configs]
    title = "MSDNet reports"
    blocks: list[Block] = [
        Heading(title, 1),
        Paragraph(
            "One report per preset of `msdnet.PRESETS`: the options and layer plan, the cost of "
            "every exit (cumulative, block and head parts, direct), totals, a cost-vs-exit plot and "
            "the layout picture."
        ),
        comparison_table(configs, links),
        Paragraph(
            caption(configs[0].costs, image=False) + " Exit 1 = cumulative cost of the first exit; heads = all "
            "classifiers together."
        ),
        Paragraph(
            f"Regenerate with `msdprof report --all{' --html' if fmt == 'html' else ''}"
            f"{'' if convention == 'msdnet' else ' --convention ' + convention} -o FOLDER --force`. "
            "The repository's `reports/` is made by `make reports`, and `tests/test_report.py` fails "
            "when it differs from a fresh regeneration."
        ),
    ]
    files[INDEX[fmt]] = _page(blocks, title, fmt)
    return files


def check_report_path(path: str | os.PathLike, html: bool = False) -> tuple[Path, str]:
    """The report file and its format from ``-o`` (``.md`` or ``.html``) and ``--html``."""
    path = Path(path)
    suffix = path.suffix.lower()
    wanted = ".html" if html else None
    if suffix not in (".md", ".html") or (wanted and suffix != wanted):
        allowed = "must end in .html with --html" if html else "must end in .md (Markdown) or .html (HTML)"
        raise OptionError("output", str(path), allowed)
    return path, "html" if suffix == ".html" else "markdown"


def check_targets(directory: str | os.PathLike, names: Iterable[str], force: bool = False) -> None:
    """:class:`OptionError` unless every file ``names`` can be written in ``directory`` (which may
    not exist yet: then its parent must be a writable directory)."""
    directory = Path(directory)
    if directory.exists() and not directory.is_dir():
        raise OptionError("output", str(directory), "is a file; give a directory")
    if directory.is_dir():
        for name in names:
            check_writable(directory / name, force)
    else:
        parent = directory.parent
        if not parent.is_dir():
            raise OptionError("output", str(directory), f"directory {parent} does not exist")
        if not os.access(parent, os.W_OK):
            raise OptionError("output", str(directory), f"directory {parent} is not writable")


def _pages_last(files: dict[str, bytes]) -> dict[str, bytes]:
    """``files`` in the order they are swapped in: the pictures, then the pages, the index last."""
    pages = set(INDEX.values())
    order = sorted(files, key=lambda n: (Path(n).suffix.lower() in (".md", ".html"), n in pages, n))
    return {name: files[name] for name in order}


def write_files(directory: str | os.PathLike, files: dict[str, bytes], force: bool = False) -> list[Path]:
    """Write ``files`` (``{name: bytes}``) into ``directory`` as one set; returns the paths written.

    Every target is checked before anything is written; an existing file is replaced only with
    ``force``.  The set is built whole beside ``directory``, with what else it holds, and swapped
    in by one rename (:func:`msdprof.files.output.write_directory`): at every instant the directory
    shows all the old files or all the new ones; a directory that does not exist yet appears whole.
    """
    check_targets(directory, files, force)
    return write_directory(directory, _pages_last(files), force)


def write_report(
    path: str | os.PathLike, configs: Sequence[Configuration], html: bool = False, force: bool = False,
    progress: Progress | None = None,
) -> list[Path]:
    """Write the report on ``configs`` to ``path`` (``.md`` or ``.html``), its pictures beside it,
    each named for its content (:func:`report_files` with ``stamp``), so that the page never shows
    a picture of another report, a kill included (:func:`msdprof.files.output.write_with_pictures`:
    the pictures, then the page, then the pictures only the replaced page showed removed).
    ``progress`` as for :func:`report_files`.  Returns the paths of the set, the page last."""
    path, fmt = check_report_path(path, html)
    check_writable(path, force)  # before any work; write_with_pictures checks every file again
    files = report_files(configs, path.stem, fmt, progress=progress, stamp=True,
                         name_limit=name_max(path.parent if str(path.parent) else Path(".")))
    page = files.pop(path.stem + SUFFIXES[fmt])  # the page keeps the name given (r.MD stays r.MD)
    return write_with_pictures(path, page, files, force)


__all__ = [
    "Configuration", "INDEX", "SUFFIXES", "UserModel", "check_report_path", "compare_configurations",
    "comparison_table", "configuration", "model_configuration", "model_facts",
    "graphviz_available", "label", "parse_item", "preset_configuration", "preset_files", "report_files",
    "with_memory", "write_files", "write_report",
]
