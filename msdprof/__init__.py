"""msdprof: what each exit of an early-exit network (MSDNet) costs, exactly."""

from .exits import ExitCost, ExitCosts, exit_costs

__all__ = ["ExitCost", "ExitCosts", "exit_costs"]
