"""A faithful PyTorch MSDNet (Huang et al., ICLR 2018), built from the authors' options."""

from .config import LayerPlan, OptionError, Options, build_plan
from .model import EarlyExit, MSDNet, build_model
from .presets import DEFAULT_PRESET, PRESETS, preset, resolve

__all__ = [
    "DEFAULT_PRESET", "EarlyExit", "LayerPlan", "MSDNet", "OptionError", "Options", "PRESETS",
    "build_model", "build_plan", "preset", "resolve",
]
