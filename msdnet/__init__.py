"""A faithful PyTorch MSDNet (Huang et al., ICLR 2018), built from the authors' options.

The options, layer plan and presets need no torch; the model (``MSDNet``, ``build_model``,
``EarlyExit``) imports torch when first named, so that ``msdprof --help`` starts fast.
"""

from typing import Any

from .options import OptionError, Options
from .plan import LayerPlan, build_plan
from .presets import DEFAULT_PRESET, PRESETS, preset, resolve

_MODEL_NAMES = ("EarlyExit", "MSDNet", "build_model")

__all__ = [
    "DEFAULT_PRESET", "EarlyExit", "LayerPlan", "MSDNet", "OptionError", "Options", "PRESETS",
    "build_model", "build_plan", "preset", "resolve",
]


def __getattr__(name: str) -> Any:
    if name in _MODEL_NAMES:
        from . import model

        return getattr(model, name)
    raise AttributeError(f"module 'msdnet' has no attribute {name!r}")
