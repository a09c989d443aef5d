"""msdprof: what each exit of an early-exit network (MSDNet) costs, exactly.

The public API is the names below, importable from ``msdprof`` directly.  They are imported when
first used (they need torch and networkx), so that ``msdprof --help`` starts without them.

The package is built in floors, each importing only the floors beneath it (``tests/test_architecture.py``
keeps it so): ``core`` (counting rules, the dataflow record, per-exit costs) < ``files`` (models and
outputs read, files written) < ``analysis`` (graph, budget, sweep, compare, latency) < ``render``
(tables, pictures, pages, reports) < ``cli`` (one module per command).  The docs' page
"Architecture" (docs/architecture.md) walks one command through them.
"""

import importlib
from typing import Any

from .core import display as _display

#: The module defining each public name, by floor.
_MODULES = {
    "core.exits": ("ExitCost", "ExitCosts", "Unsupported", "exit_costs"),
    "core.memory": ("Alive", "ExitMemories", "ExitMemory", "Peak", "exit_memory"),
    "core.dataflow": ("Inputs", "count_modules"),
    "core.plan_costs": ("plan_costs",),
    "core.token_costs": ("TokenCost", "TokenCosts", "token_costs"),
    "files.user_model": ("read_inputs",),
    "files.saved_outputs": ("SavedOutputs", "load_outputs", "outputs_from", "save_outputs",
                            "synthetic_outputs"),
    "analysis.graph": ("fold_graph", "layout_graph"),
    "analysis.budget": ("AnytimeChoice", "AnytimeStep", "Calibration", "Evaluation", "ExitDistribution",
                        "ExpectedCost", "anytime", "anytime_steps", "budgeted_batch", "calibrate",
                        "evaluate", "expected_cost", "geometric", "geometric_family",
                        "given_fractions", "MemoryFit", "memory_fit"),
    "analysis.allocator": ("measured_peaks",),
    "analysis.compare": ("BlindSpot", "Comparison", "compare", "compare_msdnet"),
    "analysis.latency": ("Latency", "measure_latency", "random_batch"),
    "analysis.sweep": ("SweepResult", "sweep"),
    "analysis.generation": ("Generation", "GenerationCosts", "generation", "generation_costs"),
    "render.interactive": ("write_page",),
}
_API = {name: module for module, names in _MODULES.items() for name in names}

__all__ = sorted(_API)


def _view_of(result: Any) -> Any:
    """The render floor's view of ``result``, for the core's :class:`~msdprof.core.display.Tabular`
    results (which may not import that floor themselves): imported when a result is first shown."""
    from .render.notebook import view_of

    return view_of(result)


_display.find_view = _view_of


def __getattr__(name: str) -> Any:
    if name in _API:
        return getattr(importlib.import_module(f".{_API[name]}", __name__), name)
    raise AttributeError(f"module 'msdprof' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
