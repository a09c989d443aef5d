"""Named recipes: the seed's CIFAR-10 scripts, the PyTorch port's CIFAR-100 and ImageNet scripts,
and the paper's ImageNet k=6 and k=7 variants (base = step = k)."""

from __future__ import annotations

import dataclasses
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Mapping

from .config import Options, OptionError, check_option_name, did_you_mean

if TYPE_CHECKING:  # torch is imported by model_from only: the presets are plain options
    import torch
    from torch import nn

    from .model import MSDNet

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


def _check_built_size(model: MSDNet, input_size: Any) -> None:
    """An ``input_size`` given with a built MSDNet (``--model`` on a factory returning one) must be
    the size it was built for: a side, ``HxW``, or ``3xHxW``; :class:`OptionError` otherwise."""
    from .config import parse_input_size

    value = input_size
    if isinstance(value, str) and value.lower().count("x") == 2 and value.lower().startswith("3x"):
        value = value[2:]
    elif isinstance(value, (tuple, list)) and len(value) == 3 and value[0] == 3:
        value = tuple(value[1:])
    height, width = model.plan.input_size
    if parse_input_size(value, model.options) != (height, width):
        shown = input_size if isinstance(input_size, (str, int)) else "x".join(map(str, input_size))
        raise OptionError("input-size", shown, f"this MSDNet is built for 3x{height}x{width} images: "
                                               f"give {height}x{width} (or none)")


def model_from(
    preset_or_config: str | Options | nn.Module | None = None,
    input_size: Any = None,
    device: str | torch.device = "meta",
    *,
    use: str = "used",
    **overrides: object,
) -> MSDNet:
    """The :class:`MSDNet` a caller of the public API means: a built model as it is (then no
    options may be given: :class:`OptionError` saying it "is ``use`` as built"; an ``input_size``
    must be the one it was built for),
    else :func:`build_model` of :func:`resolve` ``(preset_or_config, **overrides)`` on ``device``."""
    from torch import nn

    from .model import build_model, check_msdnet

    if isinstance(preset_or_config, nn.Module):
        if overrides:
            raise OptionError(
                "model", type(preset_or_config).__name__,
                f"is {use} as built: pass no options with a model",
            )
        model = check_msdnet(preset_or_config)
        if input_size is not None:
            _check_built_size(model, input_size)
        return model
    return build_model(resolve(preset_or_config, **overrides), input_size, device=device)
