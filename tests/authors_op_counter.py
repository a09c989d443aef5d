"""An independent re-count in the manner of the authors' 2018 ``op_counter.py`` (MSDNet-PyTorch,
shipped again by RANet, IMTA and L2W): every leaf module is measured when it runs, by type, and the
running totals are read each time an ``nn.Linear`` finishes.  Written for the tests with forward
hooks on the leaves, sharing no code with msdprof: the oracle for the eager ``msdnet`` convention.
Like the original it raises on a leaf type it does not know, and it never sees functional ops.
"""

from __future__ import annotations

import torch
from torch import nn


def _measure(layer: nn.Module, x: torch.Tensor, out: torch.Tensor) -> int:
    kind = type(layer).__name__
    if kind == "Conv2d":
        return (layer.in_channels * layer.out_channels * layer.kernel_size[0] * layer.kernel_size[1]
                * out.size(2) * out.size(3) // layer.groups) * x.size(0)
    if kind == "ReLU":
        return x.numel()
    if kind in ("AvgPool2d", "MaxPool2d"):
        k = layer.kernel_size if isinstance(layer.kernel_size, int) else layer.kernel_size[0]
        return out.size(0) * out.size(1) * out.size(2) * out.size(3) * k * k
    if kind == "AdaptiveAvgPool2d":
        return x.numel()
    if kind == "Linear":
        return x.size(0) * (layer.weight.numel() + layer.bias.numel())
    if kind in ("BatchNorm2d", "Dropout2d", "Dropout", "Flatten", "Sequential"):
        return 0
    raise TypeError(f"unknown layer type: {kind}")


def running_totals(model: nn.Module, *inputs: torch.Tensor) -> list[tuple[int, int]]:
    """(operations, parameters) as the running totals stand after each ``nn.Linear`` call."""
    totals = {"ops": 0, "params": 0}
    readings: list[tuple[int, int]] = []
    seen: set[int] = set()

    def hook(layer: nn.Module, args: tuple, out: torch.Tensor) -> None:
        totals["ops"] += _measure(layer, args[0], out)
        if id(layer) not in seen:  # msdprof counts a parameter once (the original: every call)
            seen.add(id(layer))
            totals["params"] += sum(p.numel() for p in layer.parameters())
        if isinstance(layer, nn.Linear):
            readings.append((totals["ops"], totals["params"]))

    leaves = [m for m in model.modules() if next(m.children(), None) is None]
    handles = [m.register_forward_hook(hook) for m in leaves]
    try:
        with torch.no_grad():
            model(*inputs)
    finally:
        for h in handles:
            h.remove()
    return readings
