"""Named recipes: the seed's CIFAR-10 scripts, the PyTorch port's CIFAR-100 and ImageNet scripts,
and the paper's ImageNet k=6 and k=7 variants (base = step = k)."""

from __future__ import annotations

import dataclasses
from types import MappingProxyType
from typing import Mapping

from .options import Options, OptionError, check_option_name, did_you_mean

_CIFAR = dict(nChannels=16, growthRate=6, grFactor=(1, 2, 4), bnFactor=(1, 2, 4))
_IMAGENET = dict(data="ImageNet", nChannels=32, growthRate=16, grFactor=(1, 2, 4, 4), bnFactor=(1, 2, 4, 4))

PRESETS: Mapping[str, Options] = MappingProxyType({
    "cifar10-anytime": Options(nBlocks=10, stepmode="even", step=2, base=4, data="cifar10", **_CIFAR),
    "cifar10-batch": Options(nBlocks=7, stepmode="lin_grow", step=1, base=1, data="cifar10", **_CIFAR),
    "cifar100-anytime": Options(nBlocks=7, stepmode="even", step=2, base=4, data="cifar100", **_CIFAR),
    "cifar100-batch": Options(nBlocks=5, stepmode="lin_grow", step=1, base=1, data="cifar100", **_CIFAR),
    "imagenet-step4": Options(nBlocks=5, stepmode="even", step=4, base=4, **_IMAGENET),
    "imagenet-step6": Options(nBlocks=5, stepmode="even", step=6, base=6, **_IMAGENET),
    "imagenet-step7": Options(nBlocks=5, stepmode="even", step=7, base=7, **_IMAGENET),
})
DEFAULT_PRESET = "cifar10-anytime"


def preset(name: str) -> Options:
    """The options of preset ``name``; :class:`OptionError` (with a suggestion) if unknown."""
    try:
        return PRESETS[name]
    except KeyError:
        raise OptionError(
            "preset", name, "must be one of " + ", ".join(PRESETS) + did_you_mean(name, PRESETS)
        ) from None


def resolve(preset_or_config: str | Options | None = None, **overrides: object) -> Options:
    """Options from a preset name or an :class:`Options`, with keyword options laid over them.

    With neither a preset nor any option, the default recipe :data:`DEFAULT_PRESET`; with options
    but no preset, the authors' defaults for the rest.  Unknown option names raise
    :class:`OptionError`.
    """
    for name in overrides:
        check_option_name(name)
    if preset_or_config is None:
        base = Options() if overrides else PRESETS[DEFAULT_PRESET]
    elif isinstance(preset_or_config, Options):
        base = preset_or_config
    elif isinstance(preset_or_config, str):
        base = preset(preset_or_config)
    else:
        raise OptionError(
            "preset", type(preset_or_config).__name__, "must be a preset name or an msdnet.Options"
        )
    return dataclasses.replace(base, **overrides) if overrides else base
