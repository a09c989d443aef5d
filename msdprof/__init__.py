"""msdprof: what each exit of an early-exit network (MSDNet) costs, exactly."""

from .exits import ExitCost, ExitCosts, exit_costs
from .graph import layout_graph

__all__ = ["ExitCost", "ExitCosts", "exit_costs", "layout_graph"]
