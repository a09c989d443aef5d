"""A whole generation with early exits: what every token costs under a policy for the caches of the
layers a token skipped, and the speed-up over the full model.

The prompt's ``P`` tokens run through every layer once (the prefill, the full model's, which yields
the first token); then token i (1-based) is one decode step with ``P + i - 1`` tokens before it,
leaving at exit ``e_i``.  Block b is what exit b adds to exit b-1 (:class:`BlockCost`: its layers);
a token at exit e runs blocks 1..e and pays every exit head 1..e (heads 1..e-1 are its confidence
checks).  Block b's cache holds ``L_b`` tokens; the token costs ``macs_b(L_b)`` there (affine in
``L_b``, checked by :func:`msdprof.core.token_costs.token_costs`).  What the skipped blocks' caches
get is the policy's:

- ``none`` -- nothing: a later token attends at block b only to the tokens that ran block b
  (``L_b`` counts them).  Cost of token i: ``sum_{b<=e} macs_b(L_b) + heads``.
- ``propagate`` -- CALM's state propagation (Schuster et al., "Confident Adaptive Language
  Modeling", NeurIPS 2022, section 4.2): the exited hidden state is copied to the skipped layers,
  which compute their keys and values from it.  Every cache holds every token (``L_b = P + i - 1``)
  and token i also pays ``sum_{b>e} propagate_b``, the key and value work of the skipped blocks.
- ``recompute`` -- EE-LLM's KV recomputation (Chen et al., "EE-LLM: Large-Scale Training and
  Inference of Early-Exit Large Language Models with 3D Parallelism", ICML 2024, section 5): a
  skipped block's missing keys and values are computed when a later token goes through that block,
  the pending tokens batched with it.  Before token i runs block b (``b <= e_i``), each earlier token
  s missing there runs it too, at its own position: ``macs_b(P + s - 1)``; token i then sees a full
  cache (``L_b = P + i - 1``).
- ``deferred`` -- FREE's synchronized parallel decoding (Bae et al., "Fast and Robust Early-Exiting
  Framework for Autoregressive Language Models with Synchronized Parallel Decoding", EMNLP 2023)
  and LayerSkip's verification (Elhoushi et al., "LayerSkip: Enabling Early Exit Inference and
  Self-Speculative Decoding", ACL 2024): the remaining layers run later in one batch.  Tokens at an
  exit before the last attend to the caches as they are (as ``none``); a token at the last exit
  runs, with itself, every pending token through every block it skipped
  (``macs_b(P + s - 1)`` each), after which every cache is full.

A token left pending when the generation ends is never filled.  Bytes read by a step: the weights
its exit reads (with its checks' heads; ``propagate`` adds the skipped layers' key and value
weights) and, per block it runs, the cache after the step (what attention reads); a batch of pending
tokens reads the block's weights and cache once, with the token that runs it.

Given the exit of every token the figures are exact integers; given an exit distribution (each
token leaves at exit e with probability ``p_e``, independently) they are expected values, exact
in real arithmetic (the costs are affine in the cache lengths) and computed in floating point.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from torch import nn

from msdnet.options import OptionError

from ..core.display import Tabular
from ..core.token_costs import BlockCost, TokenCosts, check_prompt, parse_lengths, token_costs
from ..files.exit_trace import MAX_TOKENS, check_exits, parse_exits, read_exits
from .budget import ExitDistribution, given_fractions

#: The policies for the caches of skipped layers (module docstring), in the order help lists them.
POLICIES = {
    "none": "skipped layers get no keys and values; later tokens attend to the tokens that ran them",
    "propagate": "CALM: the exited hidden state is copied up, the skipped layers compute their keys "
                 "and values from it",
    "recompute": "EE-LLM: a skipped layer's keys and values are computed when a later token goes "
                 "through it, batched with it",
    "deferred": "FREE / LayerSkip verification: the remaining layers run later in one batch, with "
                "the next token that reaches the last exit",
}


def check_policy(policy: Any) -> str:
    if policy not in POLICIES:
        raise OptionError("policy", policy, "must be one of " + ", ".join(POLICIES))
    return policy


@dataclass(frozen=True)
class Generation:
    """A whole generation under ``policy``: ``prompt`` tokens prefilled, then ``tokens`` decode
    steps, token i leaving at ``exits[i-1]`` (``()`` for a distribution, whose ``fractions`` then
    give each exit's probability; else each exit's share of the tokens).  ``expected``: the
    figures are expected values (a distribution), else exact.

    Operations in the convention of the table, bytes in bytes: ``prefill_macs`` (the full model on
    the prompt), ``token_macs`` and ``token_bytes`` per token (checks and the policy's work
    included), ``check_macs`` (all tokens' confidence checks), ``policy_macs`` (the keys and values
    ``propagate`` computes, the blocks ``recompute`` and ``deferred`` run again for pending
    tokens), ``total_macs``/``total_bytes`` (prefill + tokens), ``full_macs``/``full_bytes`` (the
    same generation with every token at the last exit), and the speed-ups full / total."""

    policy: str
    prompt: int
    tokens: int
    exits: tuple[int, ...]
    fractions: tuple[float, ...]
    expected: bool
    prefill_macs: int
    prefill_bytes: int
    token_macs: tuple[float, ...]
    token_bytes: tuple[float, ...]
    check_macs: float
    policy_macs: float
    total_macs: float
    total_bytes: float
    full_macs: int
    full_bytes: int

    @property
    def macs_speedup(self) -> float:
        """``full_macs / total_macs``: the operations the exits save, as a speed-up."""
        return self.full_macs / self.total_macs

    @property
    def bytes_speedup(self) -> float:
        """``full_bytes / total_bytes``: the speed-up of a step bound by memory traffic."""
        return self.full_bytes / self.total_bytes

    @property
    def check_share(self) -> float:
        """The part of the decode steps' operations spent on confidence checks."""
        decode = self.total_macs - self.prefill_macs
        return self.check_macs / decode if decode else 0.0

    @property
    def per_token_macs(self) -> float:
        """Mean operations per generated token (checks and the policy's work included)."""
        return (self.total_macs - self.prefill_macs) / self.tokens

    @property
    def per_token_bytes(self) -> float:
        return (self.total_bytes - self.prefill_bytes) / self.tokens

    def as_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data.update(token_macs=list(self.token_macs), token_bytes=list(self.token_bytes),
                    exits=list(self.exits), fractions=list(self.fractions),
                    macs_speedup=self.macs_speedup, bytes_speedup=self.bytes_speedup,
                    check_share=self.check_share, per_token_macs=self.per_token_macs,
                    per_token_bytes=self.per_token_bytes)
        return data


@dataclass(frozen=True)
class GenerationCosts(Tabular):
    """What ``msdprof generate`` computes: the per-exit token costs (``table``, a
    :class:`~msdprof.core.token_costs.TokenCosts`), the ``policy`` for skipped layers' caches and,
    when the exits taken or their distribution were given, the whole ``generation``."""

    table: TokenCosts
    policy: str
    generation: Generation | None = None

    def as_dict(self) -> dict[str, Any]:
        return {**self.table.as_dict(), "policy": self.policy,
                "generation": self.generation.as_dict() if self.generation is not None else None}


# --- the engine ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Parts:
    """What the engine reads of the table, per block b and exit e (0-based lists)."""

    blocks: tuple[BlockCost, ...]
    head: tuple[int, ...]  # head e's operations
    checks: tuple[int, ...]  # heads 1..e-1
    weights: tuple[int, ...]  # bytes a token at exit e reads of weights, checks included
    direct_weights: tuple[int, ...]  # the same without the checks' heads
    propagate_bytes: tuple[int, ...]  # the skipped layers' key and value weights past exit e
    propagate: tuple[int, ...]  # per block, its key and value work for one token

    def macs(self, b: int, length: float) -> float:
        line = self.blocks[b].macs
        return line.intercept + line.per_token * length

    def cache(self, b: int, length: float) -> float:
        line = self.blocks[b].cache_bytes
        return line.intercept + line.per_token * length


def _parts(table: TokenCosts, policy: str) -> _Parts:
    if not table.affine:
        raise OptionError("policy", policy, f"{table.model}'s token cost is not affine in the cache "
                                            f"length (counted at {', '.join(map(str, table.counted))}): a "
                                            "whole generation needs it")
    propagate = tuple(b.propagate_macs for b in table.blocks)
    if policy == "propagate" and None in propagate:
        raise OptionError("policy", policy, f"{table.model}'s cache tensors could not be told apart by "
                                            "layer (each layer's keys and values made inside a module of "
                                            "its own): the key and value work of skipped layers is unknown")
    return _Parts(
        blocks=table.blocks, head=tuple(b.head_macs for b in table.blocks),
        checks=tuple(e.check_macs for e in table), weights=tuple(e.weight_bytes + e.check_bytes for e in table),
        direct_weights=tuple(e.weight_bytes for e in table),
        propagate_bytes=tuple(e.propagate_bytes or 0 for e in table),
        propagate=tuple(p or 0 for p in propagate),
    )


def _walk(parts: _Parts, policy: str, prompt: int, exits: Sequence[int], checked: bool = True
          ) -> tuple[list[int], list[int], int, int]:
    """Per token of ``exits`` (1-based exits), its operations and bytes; with the checks' and
    the policy's operations in all (module docstring).  ``checked``: the tokens pay their exits'
    confidence checks (not so the full model, which evaluates its last head alone)."""
    n = len(parts.blocks)
    have = [prompt] * n  # tokens with keys and values at each block
    missing: list[list[int]] = [[] for _ in range(n)]  # per block, the positions of pending tokens
    macs_out, bytes_out, checks, extra = [], [], 0, 0
    for i, e in enumerate(exits, 1):
        before, top = prompt + i - 1, e - 1
        macs = parts.head[top] + parts.checks[top] * checked
        read = parts.weights[top] if checked else parts.direct_weights[top]
        checks += parts.checks[top] * checked
        fill = policy == "recompute" or (policy == "deferred" and e == n)
        for b in range(n):
            runs = b <= top
            if runs and fill:
                for position in missing[b]:
                    cost = parts.macs(b, position)
                    macs += cost
                    extra += cost
                missing[b] = []
                have[b] = before
            if runs:
                length = before if policy == "propagate" else have[b]
                macs += parts.macs(b, length)
                read += parts.cache(b, length + 1)
                have[b] = length + 1
            elif policy == "propagate":
                macs += parts.propagate[b]
                extra += parts.propagate[b]
                have[b] = before + 1
            elif policy in ("recompute", "deferred"):
                missing[b].append(before)
        if policy == "propagate":
            read += parts.propagate_bytes[top]
        macs_out.append(macs)
        bytes_out.append(read)
    return macs_out, bytes_out, checks, extra


def _expect(parts: _Parts, policy: str, prompt: int, probs: Sequence[float], tokens: int
            ) -> tuple[list[float], list[float], float, float]:
    """:func:`_walk`'s figures in expectation over exits drawn independently from ``probs``."""
    n = len(parts.blocks)
    reach = [sum(probs[b:]) for b in range(n)]  # q_b: a token runs block b
    full = probs[-1]
    heads = sum(p * (parts.head[e] + parts.checks[e]) for e, p in enumerate(probs))
    checks_each = sum(p * parts.checks[e] for e, p in enumerate(probs))
    weights = sum(p * parts.weights[e] for e, p in enumerate(probs))
    propagated = sum(p * sum(parts.propagate[e + 1:]) for e, p in enumerate(probs))
    propagate_bytes = sum(p * parts.propagate_bytes[e] for e, p in enumerate(probs))
    pending = [0.0] * n  # recompute: sum_s (1-q_b)^(i-s) f_b(s); deferred: sum_s (1-p_N)^(i-1-s) f_b(s)
    waiting = 0.0  # deferred: sum_{j<i-1} (1-p_N)^j
    macs_out, bytes_out, extra = [], [], 0.0
    for i in range(1, tokens + 1):
        before = prompt + i - 1
        macs, read = heads, weights
        for b in range(n):
            q = reach[b]
            if policy == "none":
                length = prompt + (i - 1) * q
                macs += q * parts.macs(b, length)
                read += q * parts.cache(b, length + 1)
            elif policy == "propagate":
                macs += q * parts.macs(b, before)
                read += q * parts.cache(b, before + 1)
            elif policy == "recompute":
                macs += q * parts.macs(b, before) + q * pending[b]
                extra += q * pending[b]
                read += q * parts.cache(b, before + 1)
            else:  # deferred
                length = before - (1 - q) * waiting
                macs += (q - full) * parts.macs(b, length) + full * parts.macs(b, before)
                macs += full * (1 - q) * pending[b]
                extra += full * (1 - q) * pending[b]
                read += (q - full) * parts.cache(b, length + 1) + full * parts.cache(b, before + 1)
        if policy == "propagate":
            macs += propagated
            extra += propagated
            read += propagate_bytes
        for b in range(n):  # token i joins the pending sums for the next step
            if policy == "recompute":
                pending[b] = (1 - reach[b]) * (pending[b] + parts.macs(b, before))
            elif policy == "deferred":
                pending[b] = (1 - full) * pending[b] + parts.macs(b, before)
        waiting = (1 - full) * waiting + 1 if policy == "deferred" else waiting
        macs_out.append(macs)
        bytes_out.append(read)
    return macs_out, bytes_out, checks_each * tokens, extra


def generation(table: TokenCosts, policy: str = "none", *, exits: Sequence[int] | None = None,
               distribution: ExitDistribution | None = None, tokens: int | None = None) -> Generation:
    """The whole generation of :class:`Generation` from a table (:func:`token_costs`) whose fit
    covers its cache lengths: given the exit of every token (``exits``, 1-based), or an exit
    ``distribution`` and the number of ``tokens``."""
    policy = check_policy(policy)
    parts = _parts(table, policy)
    n, prompt, last = len(table), table.prompt, table.exits[-1]
    if exits is not None:
        exits = check_exits(list(exits), n, "exits", ",".join(map(str, exits))[:40])
        count = len(exits)
        macs, read, checks, extra = _walk(parts, policy, prompt, exits)
        fractions = tuple(exits.count(k) / count for k in range(1, n + 1))
        expected = False
    else:
        if distribution is None or tokens is None:
            raise OptionError("exits", "missing", "a whole generation needs the exit of every token, or "
                                                  "an exit distribution and the number of tokens")
        if len(distribution) != n:
            raise OptionError("fractions", distribution.label, f"has {len(distribution)} exits; the decoder has {n}")
        count = tokens
        fractions = tuple(float(f) for f in distribution.fractions)
        macs, read, checks, extra = _expect(parts, policy, prompt, fractions, tokens)
        exits, expected = (), True
    full_walk = _walk(parts, "none", prompt, [n] * count, checked=False)
    prefill_bytes = last.prefill_bytes
    return Generation(
        policy=policy, prompt=prompt, tokens=count, exits=tuple(exits), fractions=fractions,
        expected=expected, prefill_macs=last.prefill_macs, prefill_bytes=prefill_bytes,
        token_macs=tuple(macs), token_bytes=tuple(read), check_macs=checks, policy_macs=extra,
        total_macs=last.prefill_macs + sum(macs), total_bytes=prefill_bytes + sum(read),
        full_macs=last.prefill_macs + sum(full_walk[0]), full_bytes=prefill_bytes + sum(full_walk[1]),
    )


def check_tokens(tokens: Any) -> int:
    if isinstance(tokens, bool) or not isinstance(tokens, int) or not 1 <= tokens <= MAX_TOKENS:
        raise OptionError("tokens", tokens, f"must be a whole number of generated tokens from 1 to {MAX_TOKENS:,}")
    return tokens


def generation_costs(
    model: nn.Module | None = None,
    *,
    hf_config: Any = None,
    exit_layers: str | Sequence[int] | None = None,
    prompt: int = 1,
    at: Any = None,
    convention: str | None = None,
    policy: str = "none",
    exits: str | Sequence[int] | None = None,
    exits_from: str | None = None,
    fractions: str | Sequence[Any] | None = None,
    tokens: int | None = None,
    name: str | None = None,
    progress: Callable[[int, int, str], None] | None = None,
) -> GenerationCosts:
    """What each generated token costs at every exit of a decoder, with a KV cache (``msdprof
    generate``).

    The decoder: ``model``, an ``nn.Module`` keeping the contract of
    :data:`msdprof.core.token_costs.CONTRACT` (any device; counted on shapes alone), or
    ``hf_config`` -- a transformers causal-LM ``config.json`` (a path, a dict of it, or a
    configuration) built on ``meta`` with exits after ``exit_layers`` (``"8,16,24,32"``; the last
    is the last layer; :func:`msdprof.files.hf_decoder.hf_decoder`).

    The table (:func:`msdprof.core.token_costs.token_costs`): after a prompt of ``prompt`` tokens,
    at the cache lengths ``at`` (``"1,512,8192"``, a range ``"1:8192"``, a sequence; default: the
    prompt's length), in ``convention`` (default ``macs``).  A whole generation under ``policy``
    (:data:`POLICIES`, :func:`generation`) when given the exit each token took (``exits``:
    ``"1,4,2"`` or a sequence; ``exits_from``: a JSON or CSV file,
    :func:`msdprof.files.exit_trace.read_exits`) or an exit distribution (``fractions``, one per
    exit, summing to 1) with the number of ``tokens``.
    """
    policy = check_policy(policy)
    if (model is None) == (hf_config is None):
        raise OptionError("model" if model is not None else "hf-config", "missing" if model is None else "given",
                          "give the decoder as --model FILE.py:FACTORY or --hf-config config.json, one of them")
    given = [option for option, value in (("exits", exits), ("exits-from", exits_from), ("fractions", fractions))
             if value is not None]
    if len(given) > 1:
        raise OptionError(given[1], "given", f"and --{given[0]} are two ways to give the exits taken; give one")
    if fractions is None and tokens is not None:
        raise OptionError("tokens", tokens, "is the length of a generation given by --fractions; with the "
                                            "exits taken, their count is")
    if fractions is not None:
        if tokens is None:
            raise OptionError("fractions", fractions if isinstance(fractions, str) else "given",
                              "needs --tokens N, the number of tokens generated")
        tokens = check_tokens(tokens)
    prompt = check_prompt(prompt)
    lengths = parse_lengths(str(prompt) if at is None else at)
    taken = None
    if exits_from is not None:
        taken = read_exits(exits_from)
    elif exits is not None:
        taken = parse_exits(exits) if isinstance(exits, str) else check_exits(list(exits), None, "exits", "given")
    if model is None:
        from ..files.hf_decoder import hf_decoder

        model = hf_decoder(hf_config, exit_layers)
        layers = model.exit_layers
        name = name or (f"{type(model.lm).__name__} ({model.lm.config.model_type}, exits after layers "
                        f"{','.join(map(str, layers))})")
    else:
        if exit_layers is not None:
            raise OptionError("exit-layers", exit_layers, "is for --hf-config: a --model has its own exits")
        layers = None
    count = len(taken) if taken is not None else tokens
    more = (prompt, prompt + count - 1) if count else ()  # the fit checked over every length generated
    table = token_costs(model, prompt=prompt, at=lengths, convention=convention,
                        more=more, exit_layers=layers, name=name, progress=progress)
    n = len(table)
    result = None
    if taken is not None:
        typed = exits_from if exits_from is not None else exits if isinstance(exits, str) else "given"
        result = generation(table, policy, exits=check_exits(taken, n, "exits-from" if exits_from else "exits",
                                                             typed))
    elif fractions is not None:
        result = generation(table, policy, distribution=given_fractions(fractions, n), tokens=tokens)
    return GenerationCosts(table, policy, result)


__all__ = ["POLICIES", "Generation", "GenerationCosts", "check_policy", "check_tokens", "generation",
           "generation_costs"]
