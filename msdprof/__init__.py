"""msdprof: what each exit of an early-exit network (MSDNet) costs, exactly.

The names below are imported when first used (they need torch and networkx), so that
``msdprof --help`` starts without them.
"""

import importlib
from typing import Any

#: Public name -> the module defining it.
_API = {"ExitCost": "core.exits", "ExitCosts": "core.exits", "exit_costs": "core.exits",
        "layout_graph": "analysis.graph"}

__all__ = ["ExitCost", "ExitCosts", "exit_costs", "layout_graph"]


def __getattr__(name: str) -> Any:
    if name in _API:
        return getattr(importlib.import_module(f".{_API[name]}", __name__), name)
    raise AttributeError(f"module 'msdprof' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
