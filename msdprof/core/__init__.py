"""Floor 1, the core: what one forward pass computes and what each exit costs.

Counting rules (``counting``, one registry keyed by module type and by op; ``conventions`` says
what each convention counts), the dataflow record of one forward pass (``dataflow``, with the
shape-only shortcuts of ``meta_shapes`` on the meta device), per-exit costs from it (``exits``),
MSDNet costs read off the layer plan without running anything (``plan_costs``), and counts and
shapes as text (``units``).  Imports ``msdnet`` and nothing of ``msdprof`` above this floor.
"""
