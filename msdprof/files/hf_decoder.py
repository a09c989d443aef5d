"""A decoder with exits from a transformers causal-LM configuration file (``--hf-config``).

:func:`hf_decoder` reads ``config.json`` (the file a Hugging Face checkpoint ships; its
``model_type`` names the architecture), builds the causal LM on the ``meta`` device (no weight is
allocated, nothing is downloaded: the file is read, the classes are transformers' own) and wraps it
in an :class:`ExitDecoder`: exit k is the model's final norm and LM head read after decoder layer
``exit_layers[k-1]``, as LayerSkip (Elhoushi et al., ACL 2024) reads its early exits, on the last
position only (as ``generate`` keeps the logits of the last position).

An :class:`ExitDecoder` keeps the generation contract of ``msdprof generate --model``:
``forward(input_ids, past_key_values=None, use_cache=True)`` returns ``(exit_logits, cache)``, one
logits tensor per exit (exit 1 first) and the model's cache (a transformers ``DynamicCache``; made
by the model when ``None``).
"""

from __future__ import annotations

import inspect
import json
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Sequence

import torch
from torch import nn

from msdnet.options import OptionError

from ..core.units import first_line
from .user_model import quietly

#: The attributes a transformers decoder keeps its final norm under, by architecture family.
NORM_NAMES = ("norm", "final_layernorm", "ln_f", "final_layer_norm", "norm_f")


@contextmanager
def _quiet_transformers() -> Iterator[None]:
    """transformers' own log lines (a ``torch_dtype`` it now calls ``dtype``) and warnings left
    out while msdprof reads the file and builds the model: msdprof says what it read, in one line."""
    from transformers.utils import logging as hf_logging

    level = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        with quietly():
            yield
    finally:
        hf_logging.set_verbosity(level)


def read_hf_config(path: str | Path) -> Any:
    """The transformers configuration in the JSON file ``path`` (its ``model_type`` picks the
    class; nothing is downloaded).  :class:`OptionError` naming ``--hf-config`` when the file is
    missing, is not a JSON object, names no known ``model_type``, or transformers refuses it."""
    from transformers import AutoConfig

    text = str(path)
    file = Path(path)
    if not file.is_file():
        raise OptionError("hf-config", text, "no such file" if not file.exists() else "is not a file")
    try:
        data = json.loads(file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError, ValueError) as error:
        raise OptionError("hf-config", text, f"is not a JSON file ({first_line(error)})") from None
    if not isinstance(data, dict):
        raise OptionError("hf-config", text, f"holds a JSON {type(data).__name__}, not a configuration object")
    model_type = data.pop("model_type", None)
    if not isinstance(model_type, str):
        raise OptionError("hf-config", text, "names no model_type (a transformers config.json has one, "
                                             "such as \"llama\")")
    try:
        with _quiet_transformers():
            return AutoConfig.for_model(model_type, **data)
    except ValueError as error:
        if "Unrecognized model identifier" in str(error):
            raise OptionError("hf-config", text, f"model_type {model_type!r} is not one transformers "
                                                 "knows (upgrade transformers, or check the name)") from None
        raise OptionError("hf-config", text, f"transformers refused it: {first_line(error)}") from None
    except Exception as error:  # a value transformers cannot take
        raise OptionError("hf-config", text, f"transformers refused it: {type(error).__name__}: "
                                             f"{first_line(error)}") from None


def parse_exit_layers(value: str | Sequence[int] | None, layers: int) -> tuple[int, ...]:
    """``8,16,24,32`` (or a sequence of ints) as increasing layer numbers from 1 to ``layers``,
    the last being ``layers`` (the full model, against which a speed-up is measured); ``None``:
    one exit, the full model."""
    text = value if isinstance(value, str) else ",".join(map(str, value)) if value is not None else str(layers)
    try:
        found = tuple(int(v) for v in (value.split(",") if isinstance(value, str) else
                                       value if value is not None else (layers,)))
    except (TypeError, ValueError):
        found = ()
    if not found or any(isinstance(v, bool) for v in (value or ())) or list(found) != sorted(set(found)) \
            or found[0] < 1 or found[-1] > layers:
        raise OptionError("exit-layers", text, f"must be increasing layer numbers from 1 to {layers}, "
                                               f"e.g. {_example(layers)}")
    if found[-1] != layers:
        raise OptionError("exit-layers", text, f"must end with the last layer, {layers}: the full model, "
                                               f"against which speed-ups are measured (e.g. {_example(layers)})")
    return found


def _example(layers: int) -> str:
    return ",".join(str(layers * k // 4) for k in range(1, 5) if layers * k // 4 >= 1) if layers >= 4 else str(layers)


def build_causal_lm(config: Any, option: str = "hf-config", typed: str = "") -> Any:
    """transformers' causal LM of ``config`` on the ``meta`` device (nothing allocated), attention
    through ``scaled_dot_product_attention``."""
    from transformers import AutoModelForCausalLM

    try:
        with torch.device("meta"), _quiet_transformers():
            return AutoModelForCausalLM.from_config(config, attn_implementation="sdpa").eval()
    except ValueError as error:
        raise OptionError(option, typed, f"is not a causal language model transformers can build "
                                         f"({first_line(error)[:200]})") from None
    except Exception as error:
        raise OptionError(option, typed, f"transformers could not build it: {type(error).__name__}: "
                                         f"{first_line(error)[:200]}") from None


def hf_decoder(config: Any, exit_layers: str | Sequence[int] | None = None) -> "ExitDecoder":
    """An :class:`ExitDecoder` of ``config`` (a path to a ``config.json``, a dict of its contents
    with ``model_type``, or a transformers configuration) on the ``meta`` device, with exits after
    ``exit_layers`` (see :func:`parse_exit_layers`)."""
    from transformers import AutoConfig, PretrainedConfig

    typed = str(config) if isinstance(config, (str, Path)) else type(config).__name__
    if isinstance(config, (str, Path)):
        config = read_hf_config(config)
    elif isinstance(config, dict):
        data = dict(config)
        model_type = data.pop("model_type", None)
        if not isinstance(model_type, str):
            raise OptionError("hf-config", "dict", "names no model_type (such as \"llama\")")
        with _quiet_transformers():
            config = AutoConfig.for_model(model_type, **data)
    elif not isinstance(config, PretrainedConfig):
        raise OptionError("hf-config", typed, "must be a config.json path, a dict of one or a transformers "
                                              "configuration")
    layers = getattr(config, "num_hidden_layers", None)
    if not isinstance(layers, int) or layers < 1:
        raise OptionError("hf-config", typed, "has no num_hidden_layers: it is not a decoder transformers "
                                              "describes by layers")
    exits = parse_exit_layers(exit_layers, layers)
    return ExitDecoder(build_causal_lm(config, "hf-config", typed), exits, typed)


def _parts(lm: Any, typed: str) -> tuple[Any, Any, Any, Any]:
    """(the decoder's base model, its list of decoder layers, its final norm, the LM head)."""
    base = getattr(lm, "base_model", None)
    head = lm.get_output_embeddings() if hasattr(lm, "get_output_embeddings") else None
    layers_count = lm.config.num_hidden_layers
    stacks = [m for m in base.modules() if isinstance(m, nn.ModuleList) and len(m) == layers_count] \
        if base is not None else []
    norm = next((getattr(base, name) for name in NORM_NAMES if isinstance(getattr(base, name, None), nn.Module)),
                None) if base is not None else None
    if base is None or head is None or len(stacks) != 1 or norm is None:
        raise OptionError("hf-config", typed, f"{type(lm).__name__}: its decoder layers, final norm or LM "
                                              "head were not found where transformers' decoders keep them "
                                              f"(a list of {layers_count} layers, a final norm named "
                                              f"{' or '.join(NORM_NAMES)})")
    return base, stacks[0], norm, head


class ExitTap(nn.Module):
    """A decoder layer, then exit ``exit``'s head (the final norm and the LM head, held by
    reference: they are the model's own, registered where the model keeps them) on its last
    position, the logits appended to the decoder's list of the pass."""

    def __init__(self, layer: nn.Module, exit: int, decoder: "ExitDecoder"):
        super().__init__()
        self.layer = layer
        self.exit = exit
        object.__setattr__(self, "_decoder", decoder)  # not a submodule: no cycle, no second name

    def forward(self, hidden_states: Any, *args: Any, **kwargs: Any) -> Any:
        out = self.layer(hidden_states, *args, **kwargs)
        hidden = out[0] if isinstance(out, tuple) else out
        decoder = self._decoder
        decoder._logits.append(decoder.head(decoder.norm(hidden[:, -1:, :])))
        return out


class ExitDecoder(nn.Module):
    """transformers causal LM ``lm`` with an exit after each of ``exit_layers`` (1-based): see the
    module docstring.  ``lm``'s decoder layers at those places are wrapped (an :class:`ExitTap`
    holding the layer): the model is this decoder's own, built for it."""

    def __init__(self, lm: nn.Module, exit_layers: Sequence[int], typed: str = ""):
        super().__init__()
        base, layers, norm, head = _parts(lm, typed)
        self.lm = lm
        self.exit_layers = tuple(exit_layers)
        for name, value in (("norm", norm), ("head", head), ("_base", base), ("_logits", [])):
            object.__setattr__(self, name, value)  # the model's own modules, not registered again
        for k, layer in enumerate(self.exit_layers, 1):
            layers[layer - 1] = ExitTap(layers[layer - 1], k, self)
        parameters = inspect.signature(base.forward).parameters
        self.cache_keyword = "cache" if "cache" in parameters else "past_key_values"

    def forward(self, input_ids: Any, past_key_values: Any = None, use_cache: bool = True) -> Any:
        self._logits.clear()
        out = self._base(input_ids=input_ids, use_cache=use_cache, **{self.cache_keyword: past_key_values})
        cache = out.get(self.cache_keyword)
        if cache is None and self.cache_keyword != "past_key_values":
            cache = out.get("past_key_values")
        logits = tuple(self._logits)
        self._logits.clear()
        return logits, cache


__all__ = ["ExitDecoder", "ExitTap", "NORM_NAMES", "build_causal_lm", "hf_decoder", "parse_exit_layers", "read_hf_config"]
