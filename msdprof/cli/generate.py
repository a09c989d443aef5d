"""``msdprof generate``: what each generated token costs at every exit of a decoder, with a KV cache."""

from __future__ import annotations

import argparse
from typing import Any

from msdnet.options import OptionError

from ..files.output import write_atomic
from .options import (
    UsageError, add_convention_option, add_factory_options, add_format_option, add_output_options, check_output_and_plot,
    notice, output_name, progress, show,
)

#: The policies' names and what each does (kept here too: ``--help`` imports no torch).
POLICY_HELP = ("none: later tokens attend only to the layers that ran; propagate (CALM): the exited "
               "hidden state is copied up and the skipped layers compute their keys and values from "
               "it; recompute (EE-LLM): skipped layers run later, when a token goes deeper; deferred "
               "(FREE, LayerSkip verification): the remaining layers run later in one batch, with the "
               "next token at the last exit")


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "generate", help="per-token cost of a decoder with exits, by cache length; a whole generation",
        description="What one generated token costs at every exit of a decoder with a KV cache: "
                    "the prompt's prefill, one token after L cached tokens (exact, and as a line in L "
                    "where the cost is affine, checked at three lengths at least), the cache a token "
                    "adds and the bytes a step reads. Given the exit each token took, or their "
                    "distribution, the whole generation's cost under a --policy for the caches of "
                    "skipped layers, and its speed-up over the full model. Counted on shapes alone: "
                    "nothing of the model's size is allocated, nothing is downloaded.",
    )
    group = p.add_argument_group(
        "the decoder",
        "A transformers causal-LM configuration with exits after some layers, or your own model: a "
        "factory returning an nn.Module whose forward(input_ids, past_key_values=None, "
        "use_cache=True) returns (exit_logits, cache): one logits tensor per exit (a list, exit 1 "
        "first, or a dict) and the cache to pass back (a transformers Cache, (key, value) per "
        "layer, any tree of tensors).",
    )
    group.add_argument("--hf-config", metavar="config.json",
                       help="a transformers causal-LM config file (its model_type names the "
                            "architecture), built on the meta device: nothing downloaded or allocated")
    group.add_argument("--exit-layers", metavar="L1,L2,...",
                       help="with --hf-config: the layers after which an exit reads the final norm and "
                            "LM head (LayerSkip's early exit), ending with the last layer, e.g. "
                            "8,16,24,32 (default: the last layer alone)")
    add_factory_options(group)
    p.add_argument("--prompt", metavar="P", default="1",
                   help="tokens of the prompt, prefilled through the whole model (default 1)")
    p.add_argument("--at", metavar="L1,L2,...|A:B",
                   help="cache lengths L (tokens already cached) to give a token's cost at: a list, "
                        "each counted, or a range A:B, its ends and middle counted and every length "
                        "exact from the line they lie on (where they lie on none, each length is "
                        "counted, at most 256; default: P)")
    add_convention_option(p, "unit of the operation counts")
    p.add_argument("--policy", metavar="NAME", default="none",
                   help=f"what the caches of skipped layers get, in a whole generation: {POLICY_HELP} "
                        "(default none; docs/generate.md gives each one's formula and source)")
    whole = p.add_argument_group(
        "a whole generation",
        "The exit each generated token took, or their distribution: the total and per-token "
        "operations and bytes, the confidence checks' share (every exit head before the one "
        "taken is paid) and the speed-up over the full model, under --policy.",
    )
    whole.add_argument("--exits", metavar="E1,E2,...",
                       help="the exit each generated token took, 1-based, in order")
    whole.add_argument("--exits-from", metavar="FILE",
                       help="the same from a file: a JSON list (or {\"exits\": [...]}) or a CSV with "
                            "one exit a row (a column named exit, or the only column)")
    whole.add_argument("--fractions", metavar="F1,F2,...",
                       help="an exit distribution instead: the probability of leaving at each exit "
                            "(summing to 1), each token independently; with --tokens")
    whole.add_argument("--tokens", metavar="N", help="with --fractions: the number of tokens generated")
    p.add_argument("--plot", metavar="FILE.svg", type=output_name,
                   help="also draw one token's cost against the cache length, one line per exit")
    add_format_option(p, ("table", "json", "csv"), "; json also the whole generation token by token")
    add_output_options(p, quiet=" and no progress bar")
    p.set_defaults(run=run)


def _whole_number(option: str, text: str | None) -> int | None:
    if text is None:
        return None
    try:
        return int(text)
    except ValueError:
        raise OptionError(option, text, "must be a whole number") from None


def run(args: argparse.Namespace) -> None:
    from ..analysis.generation import check_policy, generation_costs
    from ..core.conventions import check_convention
    from ..render import formatting, generation_view

    fmt = formatting.check_format(args.format, generation_view.FORMATS)
    check_policy(args.policy)
    check_convention(args.convention, msdnet=False)
    if (args.hf_config is None) == (args.model is None):
        raise UsageError("give the decoder: --hf-config config.json (with --exit-layers) or --model "
                         "FILE.py:FACTORY, one of them")
    if args.model is None:
        for option in ("model-kwargs", "checkpoint"):
            if getattr(args, option.replace("-", "_")) is not None:
                raise OptionError(option, getattr(args, option.replace("-", "_")), "needs --model")
    elif args.exit_layers is not None:
        raise OptionError("exit-layers", args.exit_layers, "is for --hf-config: a --model has its own exits")
    prompt = _whole_number("prompt", args.prompt)
    tokens = _whole_number("tokens", args.tokens)
    check_output_and_plot(args)
    model = None
    name = args.hf_config
    if args.model is not None:
        from ..files.user_model import load_model

        model, name = load_model(args.model, args.model_kwargs, args.checkpoint), args.model
    with progress(args, "counting") as tell:
        result = generation_costs(
            model, hf_config=args.hf_config, exit_layers=args.exit_layers, prompt=prompt, at=args.at,
            convention=args.convention, policy=args.policy, exits=args.exits, exits_from=args.exits_from,
            fractions=args.fractions, tokens=tokens, name=None if model is None else name, progress=tell)
    if args.plot:
        from ..render.generation_plot import generation_plot

        write_atomic(args.plot, generation_plot(result, generation_view.title(result)), force=args.force,
                     option="plot")
        notice(args, f"wrote {args.plot}")
    show(args, fmt, lambda: generation_view.renderable(result),
         lambda: generation_view.render(result, fmt))


__all__ = ["POLICY_HELP", "add_parser", "run"]
