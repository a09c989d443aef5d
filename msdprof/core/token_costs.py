"""What one generated token costs at each exit of a decoder, as a function of the cache length.

A *decoder with exits* keeps one contract: ``forward(input_ids, past_key_values=None,
use_cache=True)`` returns ``(exit_logits, cache)`` -- one logits tensor per exit (a list or tuple,
exit 1 first, or a dict by name) and the cache to pass back on the next step (a transformers
``Cache``, ``(key, value)`` tuples per layer, any tree of tensors; the model makes it when given
``None``).  :func:`token_costs` counts it the way ``count`` counts any early-exit model, one
recorded forward each on shapes alone (:func:`msdprof.core.dataflow.record_network`; nothing of its
size allocated, repeated layer shapes answered by the kernel cache):

- the *prefill*: the prompt's ``P`` tokens, no cache (the model makes it);
- one *decode step* per cache length ``L`` counted: one new token with a cache of ``L`` tokens.
  The cache is the prefill's, every tensor of it resized along the dimension the tokens lie on
  (found on the prefill's cache: the one dimension of size ``P``; checked on every step, where it
  must grow by exactly one token).

Per exit k, from each record (the same definitions as ``count``'s, SPEC section 4): the *window*
of exit k is what ran after output k-1 and until output k; its *head* is what exit k alone needs at
its end (:func:`msdprof.core.exits.exit_heads`; the last exit's, which no later exit tells from its
block, is the tail of its window that repeats exit k-1's head operation by operation -- a shared
final norm and LM head -- else ``count``'s own rule); its *block* is the rest.  Then

- ``token_macs`` = blocks 1..k + head k: what the model truncated after exit k's layers runs for
  one token (eager: every operation that ran, in execution order);
- ``lazy_token_macs``: only the operations output k reads;
- ``check_macs``: heads 1..k-1, which a token leaving at exit k has evaluated first (each exit's
  confidence check), the same at every length;
- the cache: each tensor of the returned cache belongs to the first exit its producer flows into;
  ``cache_bytes`` at ``L`` holds the tensors of exits 1..k given to the step (``L`` tokens),
  ``kv_bytes_per_token`` what the step added to them;
- ``weight_bytes``: the parameters the step reads (each once; an embedding table only the rows it
  gathers; ``prefill_bytes``: the prefill's), ``bytes_read`` = weights + the cache of exits 1..k after the step (``L + 1`` tokens,
  what attention reads), ``intensity`` = ``token_macs / bytes_read``;
- ``propagate_macs`` (CALM's state propagation): the key and value work of every cache tensor past
  exit k, from its layer's input (the operations inside the outermost module call that produced
  that layer's cache tensors and no other layer's, which the cache tensors read).

Where the figures of blocks and heads lie on one line in ``L`` at every length counted (three at
least: never assumed), each exit has ``token_macs_intercept + token_macs_per_cached_token * L``,
exact at any ``L``; :class:`BlockCost` holds the same per block, for the policies of
:mod:`msdprof.analysis.generation`.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Callable, Sequence

import torch
from torch import nn

from msdnet.options import OptionError

from . import trees
from .counting import CONVENTIONS
from .conventions import check_convention
from .dataflow import Dataflow, Inputs, OutputError, record_network, select_exits
from .exits import exit_heads, unsupported_of
from .results import Unsupported
from .units import first_line

#: Where the model is named in messages.
CONTRACT = ("forward(input_ids, past_key_values=None, use_cache=True) returning (exit_logits, "
            "cache): one logits tensor per exit and the cache to pass back")

#: The most cache lengths one table counts one by one where the cost is not affine in ``L``.
MAX_COUNTED = 256
#: The most cache lengths ``--at`` may ask for (a range is answered from its line).
MAX_LENGTHS = 1_000_000
#: The most tokens a prompt or a cache length may hold: ten times the longest context window of
#: any model yet (past 2^63 torch cannot even make the token ids).
MAX_CONTEXT = 100_000_000


# --- results ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Line:
    """``intercept + per_token * L``: a figure affine in the cache length ``L`` (whole numbers)."""

    intercept: int
    per_token: int

    def at(self, length: int) -> int:
        return self.intercept + self.per_token * length


@dataclass(frozen=True)
class BlockCost:
    """What exit ``exit``'s block costs one token: the operations after output ``exit - 1`` and
    until output ``exit``, less its head.  ``macs``: per token with ``L`` tokens in the block's
    cache (the convention's unit); ``head_macs``: exit ``exit``'s head; ``propagate_macs``: the key
    and value work of the block's cache tensors for one token from a copied hidden state (``None``:
    the cache tensors' layers could not be told apart); ``cache_bytes``: the block's cache holding
    ``L`` tokens."""

    exit: int
    macs: Line
    head_macs: int
    propagate_macs: int | None
    cache_bytes: Line


@dataclass(frozen=True)
class TokenCost:
    """What a token costs at exit ``exit`` (1-based; ``layer``: the decoder layer it reads, where
    known), in the convention of :class:`TokenCosts`; bytes in bytes.  Mappings are by cache length
    ``L`` (tokens already in the cache).  See the module docstring for each figure."""

    exit: int
    layer: int | None
    prefill_macs: int
    lazy_prefill_macs: int
    prefill_bytes: int
    token_macs: dict[int, int]
    lazy_token_macs: dict[int, int]
    token_macs_intercept: int | None
    token_macs_per_cached_token: int | None
    check_macs: int
    propagate_macs: int | None
    weight_bytes: int
    check_bytes: int
    propagate_bytes: int | None
    kv_bytes_per_token: int
    cache_bytes: dict[int, int]
    bytes_read: dict[int, int]

    @property
    def intensity(self) -> dict[int, float]:
        """Operations per byte read, per ``L``: ``token_macs / bytes_read``."""
        return {n: self.token_macs[n] / self.bytes_read[n] for n in self.token_macs}

    def check_share(self, length: int) -> float:
        """The part of a token's cost at ``L`` = ``length`` that the earlier exits' heads are:
        ``check_macs / (token_macs + check_macs)``."""
        total = self.token_macs[length] + self.check_macs
        return self.check_macs / total if total else 0.0

    def as_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        for key in ("token_macs", "lazy_token_macs", "cache_bytes", "bytes_read"):
            data[key] = {str(n): v for n, v in data[key].items()}
        data["intensity"] = {str(n): v for n, v in self.intensity.items()}
        data["check_share"] = {str(n): self.check_share(n) for n in self.token_macs}
        return data


@dataclass(frozen=True)
class TokenCosts(Sequence[TokenCost]):
    """Per-exit token costs of one decoder (:func:`token_costs`): a sequence of :class:`TokenCost`,
    exit 1 first.

    ``model``: its class name; ``convention``: the unit of every ``*_macs``; ``prompt``: the
    prefill's tokens; ``lengths``: the cache lengths asked, in order; ``counted``: those counted by
    a record (the others follow from the affine fit, exact where it holds); ``fit_lengths``: the
    lengths the fit was checked at; ``blocks``: per block (:class:`BlockCost`), ``()`` where the
    cost is not affine in ``L``; ``exit_names``: as the model names its exits; ``unsupported``:
    what ran with work the convention did not count (:class:`~msdprof.core.results.Unsupported`);
    ``cache``: how the cache was read (``"DynamicCache: 64 tensors, tokens on dimension 2"``);
    ``on_values``: whether a record ran on real tensors (the model reads values).
    """

    model: str
    convention: str
    prompt: int
    lengths: tuple[int, ...]
    counted: tuple[int, ...]
    exits: tuple[TokenCost, ...]
    blocks: tuple[BlockCost, ...] = ()
    fit_lengths: tuple[int, ...] = ()
    exit_names: tuple[str, ...] = ()
    unsupported: tuple[Unsupported, ...] = ()
    cache: str = ""
    on_values: bool = False

    def __len__(self) -> int:
        return len(self.exits)

    def __getitem__(self, index):  # type: ignore[override]
        return self.exits[index]

    def __iter__(self):
        return iter(self.exits)

    @property
    def affine(self) -> bool:
        """Whether every exit's token cost is affine in ``L`` (checked at :attr:`fit_lengths`)."""
        return bool(self.blocks)

    def as_dict(self) -> dict[str, Any]:
        return {
            "model": self.model, "convention": self.convention, "prompt": self.prompt,
            "lengths": list(self.lengths), "counted": list(self.counted),
            "fit_lengths": list(self.fit_lengths), "affine": self.affine, "cache": self.cache,
            "counted_on": "values" if self.on_values else "shapes",
            "exit_names": list(self.exit_names),
            "exits": [e.as_dict() for e in self.exits],
            "blocks": [dataclasses.asdict(b) for b in self.blocks],
            "unsupported": [dataclasses.asdict(u) for u in self.unsupported],
        }


# --- one recorded step --------------------------------------------------------------------------


@dataclass(frozen=True)
class _Step:
    """One recorded forward: its ``flow`` with the exits selected, the returned cache (meta), and
    per cache tensor (by key path) its shape given (``None``: not given), its shape returned and
    the operation that produced it (``None``: returned as given)."""

    flow: Dataflow
    cache: Any
    given: dict[tuple, tuple[tuple[int, ...], int]]
    returned: dict[tuple, tuple[tuple[int, ...], int, int | None]]


def _contract(result: Any) -> tuple[Any, Any]:
    """(exit logits, cache) of what the model returned (see :data:`CONTRACT`)."""
    if isinstance(result, dict) or hasattr(result, "keys"):
        keys = list(result.keys())
        logits = next((result[k] for k in ("exit_logits", "logits") if k in keys), None)
        cache = next((result[k] for k in ("past_key_values", "cache") if k in keys), None)
        if logits is not None and cache is not None:
            return logits, cache
    elif isinstance(result, (list, tuple)) and len(result) == 2:
        return result[0], result[1]
    raise OutputError(f"{trees.describe(result)}, not (exit_logits, cache) nor a dict with exit_logits "
                      "and past_key_values")


def _record_step(model: nn.Module, ids: torch.Tensor, cache: Any, name: str) -> _Step:
    """Record ``model(ids, past_key_values=cache, use_cache=True)`` on shapes alone (see the
    module docstring); ``name`` names the model in messages."""
    given = Inputs((ids,), {"past_key_values": cache, "use_cache": True})
    given_shapes, given_ids = {}, set()
    for path, t in trees.leaves(cache):  # a tensor held twice counted once, at its first path
        if id(t) not in given_ids:
            given_shapes[path] = (tuple(t.shape), t.numel() * t.element_size())
            given_ids.add(id(t))
    kept: dict[str, Any] = {}

    def pick(result: Any) -> dict[str, torch.Tensor]:
        logits, returned = _contract(result)
        exits, names = select_exits(logits)
        kept["cache"], kept["names"] = returned, names
        chosen = {f"exit {n}": t for n, t in zip(names, exits)}
        kept["paths"], seen = {}, set()
        for path, t in trees.leaves(returned):
            if id(t) not in given_ids and id(t) not in seen:
                seen.add(id(t))
                chosen[f"cache {trees.path_text(path)}"] = t
                kept["paths"][f"cache {trees.path_text(path)}"] = path
        return chosen

    try:
        flow = record_network(model, inputs=given, outputs=pick)
    except OptionError as error:
        cause: BaseException = error
        while isinstance(cause.__cause__, (OutputError, OptionError)):  # what the contract check said
            cause = cause.__cause__
        if error.option == "outputs":
            raise OptionError("model", name, f"returns {first_line(cause)}; msdprof generate needs "
                                             f"{CONTRACT}") from error
        if error.option == "inputs":
            raise OptionError("model", name, f"{error.allowed.split(': ', 1)[-1]} (called as "
                                             f"{CONTRACT.split(' returning')[0]}, input_ids "
                                             f"{'x'.join(map(str, ids.shape))})") from error
        raise
    exits = len(kept["names"])
    produced = dict(zip(flow.exit_names, flow.outputs))
    for later, earlier in flow.same_tensor:  # a cache tensor returned twice (keys that are values)
        produced[later] = produced[earlier]
    returned = {}
    for key, path in kept["paths"].items():
        t = trees.pick(kept["cache"], path)
        returned[path] = (tuple(t.shape), t.numel() * t.element_size(), produced[key])
    for path, t in trees.leaves(kept["cache"]):
        if id(t) in given_ids and path in given_shapes:
            returned[path] = (tuple(t.shape), t.numel() * t.element_size(), None)
    names = [f"exit {n}" for n in kept["names"]]
    outputs = tuple(produced[n] for n in names)
    storages = dict(zip(flow.exit_names, flow.output_storages))
    flow = dataclasses.replace(
        flow, outputs=outputs, exit_names=tuple(kept["names"]),
        output_storages=tuple(storages.get(n, -1) for n in names),
        same_tensor=tuple((a.removeprefix("exit "), b.removeprefix("exit ")) for a, b in flow.same_tensor
                          if a.startswith("exit ") and b.startswith("exit ")))
    if len(flow.outputs) != exits or not exits:
        raise OptionError("model", name, f"returns {exits} exits; msdprof generate needs one logits "
                                         "tensor per exit, each computed by the model")
    return _Step(flow, kept["cache"], given_shapes, returned)


# --- the figures of one step --------------------------------------------------------------------


@dataclass(frozen=True)
class _Figures:
    """Per block and per exit figures of one recorded step (see the module docstring)."""

    block_macs: tuple[int, ...]
    head_macs: tuple[int, ...]
    lazy_macs: tuple[int, ...]
    cache_given: tuple[int, ...]  # per block: bytes of its cache tensors given to the step
    cache_returned: tuple[int, ...]  # per block: after the step
    propagate_macs: tuple[int | None, ...]  # per block
    weight_bytes: tuple[int, ...]  # per exit, blocks 1..k and head k
    check_bytes: tuple[int, ...]  # per exit, heads 1..k-1 on top
    propagate_bytes: tuple[int | None, ...]  # per exit, the key and value weights past it on top


def _last_head(flow: Dataflow, heads: list[set[int]], reach: list[int]) -> set[int]:
    """The last exit's head: the tail of its window repeating exit k-1's head operation by
    operation (kind and type), each reaching the last exit only; else ``count``'s rule."""
    n = len(flow.outputs)
    if n < 2:
        return heads[-1]
    before = sorted(heads[-2])
    ends = flow.eager_ends()
    tail = list(range(ends[-1] - len(before) + 1, ends[-1] + 1))
    if before and tail[0] > ends[-2] and all(
            (flow.ops[a].kind, flow.ops[a].type) == (flow.ops[b].kind, flow.ops[b].type) and reach[b] == 1 << (n - 1)
            for a, b in zip(before, tail)):
        return set(tail)
    return heads[-1]


def _read_bytes(flow: Dataflow, ops: set[int]) -> int:
    """Bytes of the parameters ``ops`` read, each once; a parameter only gathered from (an
    embedding) counts the rows gathered (its operations' outputs)."""
    full: set[int] = set()
    gathered: dict[int, int] = {}
    for i in ops:
        op = flow.ops[i]
        gathers = op.type in ("Embedding", "embedding") and op.shape is not None
        for p in op.params:
            if gathers:
                size = flow.param_bytes[p] // max(flow.param_sizes[p], 1)
                gathered[p] = gathered.get(p, 0) + math.prod(op.shape) * size
            else:
                full.add(p)
    return sum(flow.param_bytes[p] for p in full) + sum(
        min(b, flow.param_bytes[p]) for p, b in gathered.items() if p not in full)


def _ancestors(flow: Dataflow, starts: Sequence[int], first: int, end: int) -> set[int]:
    """The operations from ``first`` to ``end - 1`` whose results ``starts`` read, them included."""
    found, todo = set(), [s for s in starts if first <= s < end]
    while todo:
        i = todo.pop()
        if i in found:
            continue
        found.add(i)
        todo += [j for j in flow.ops[i].inputs if first <= j < end]
    return found


def _figures(step: _Step, convention: str) -> _Figures:
    flow = step.flow
    number = CONVENTIONS[convention]
    values = [number(op.count) for op in flow.ops]
    reach = flow.reach()
    heads = exit_heads(flow, reach)
    heads[-1] = _last_head(flow, heads, reach)
    n = len(flow.outputs)
    ends = flow.eager_ends()
    blocks, done = [], -1
    for k in range(n):
        blocks.append(set(range(done + 1, ends[k] + 1)) - heads[k])
        done = ends[k]

    def first_exit(producer: int | None) -> int | None:
        bits = reach[producer] if producer is not None else 0
        return (bits & -bits).bit_length() - 1 if bits else None

    cache_given, cache_returned = [0] * n, [0] * n
    groups: dict[tuple, list[tuple[tuple, int]]] = {}
    for path, (_, size, producer) in step.returned.items():
        block = first_exit(producer)
        if block is None:
            continue
        cache_returned[block] += size
        cache_given[block] += step.given.get(path, ((), 0))[1]
        if producer is not None:
            groups.setdefault(path[:-1] if len(path) > 1 else path, []).append((path, producer))
    propagate: list[int | None] = [0] * n
    kv_ops: list[set[int]] = [set() for _ in range(n)]
    producers = {p: key for key, members in groups.items() for _, p in members}
    for key, members in groups.items():
        mine = [p for _, p in members]
        spans = [c for c in flow.calls if c.module and all(c.first <= p < c.end for p in mine)
                 and all(producers[p] == key for p in producers if c.first <= p < c.end)]
        block = first_exit(mine[0])
        if not spans or block is None:
            if block is not None:
                propagate[block] = None
            continue
        outer = max(spans, key=lambda c: c.end - c.first)
        work = _ancestors(flow, mine, outer.first, outer.end)
        kv_ops[block] |= work
        if propagate[block] is not None:
            propagate[block] += sum(values[i] for i in work)
    weight, check, extra = [], [], []
    for k in range(n):
        direct = set().union(*blocks[:k + 1]) | heads[k]
        checked = direct.union(*heads[:k])
        weight.append(_read_bytes(flow, direct))
        check.append(_read_bytes(flow, checked) - weight[-1])
        later = set().union(*kv_ops[k + 1:])
        extra.append(None if any(p is None for p in propagate[k + 1:])
                     else _read_bytes(flow, checked | later) - weight[-1] - check[-1])
    return _Figures(
        block_macs=tuple(sum(values[i] for i in b) for b in blocks),
        head_macs=tuple(sum(values[i] for i in h) for h in heads),
        lazy_macs=tuple(sum(values[i] for i in range(len(values)) if reach[i] >> k & 1) for k in range(n)),
        cache_given=tuple(cache_given), cache_returned=tuple(cache_returned),
        propagate_macs=tuple(propagate), weight_bytes=tuple(weight), check_bytes=tuple(check),
        propagate_bytes=tuple(extra),
    )


# --- the cache at any length ----------------------------------------------------------------------


def _token_dims(cache: Any, prompt: int) -> dict[tuple, int | None]:
    """Per cache tensor (by key path), the dimension its tokens lie on: the one of size
    ``prompt`` (``None``: it has none, it does not grow); ``-1`` where several are."""
    dims = {}
    for path, t in trees.leaves(cache):
        found = [d for d, size in enumerate(t.shape) if size == prompt]
        dims[path] = found[0] if len(found) == 1 else (None if not found else -1)
    return dims


def _resized(cache: Any, dims: dict[tuple, int | None], length: int) -> Any:
    """The cache with every tensor that grows holding ``length`` tokens (meta tensors; a tensor
    held twice, keys that are the values, stays one)."""
    made: dict[int, torch.Tensor] = {}

    def change(path: tuple, t: torch.Tensor) -> torch.Tensor:
        if id(t) not in made:
            shape = list(t.shape)
            if dims.get(path) is not None:
                shape[dims[path]] = length
            made[id(t)] = torch.empty(shape, dtype=t.dtype, device="meta")
        return made[id(t)]

    return trees.map_paths(change, cache)


def _check_growth(step: _Step, dims: dict[tuple, int | None], length: int, name: str) -> None:
    """:class:`OptionError` unless every cache tensor given came back one token longer along its
    token dimension (the others unchanged)."""
    for path, (shape, _) in step.given.items():
        back = step.returned.get(path)
        want = list(shape)
        if dims.get(path) is not None:
            want[dims[path]] += 1
        if back is None or list(back[0]) != want:
            dropped = back is not None and dims.get(path) is not None and len(back[0]) == len(shape) \
                and back[0][dims[path]] < want[dims[path]]
            raise OptionError("model", name, f"its cache tensor {trees.path_text(path) or 'cache'} "
                                             f"{'x'.join(map(str, shape))} came back "
                                             f"{'missing' if back is None else 'x'.join(map(str, back[0]))} "
                                             f"after one token with {length} cached: msdprof generate "
                                             "needs a cache that grows by one token a step"
                                             + (" (one that drops old tokens, a sliding window's, is not "
                                                "supported)" if dropped else ""))


# --- fitting --------------------------------------------------------------------------------------


def _line(points: dict[int, int]) -> Line | None:
    """The line through ``points`` (length -> value), whole-numbered, when they all lie on it."""
    xs = sorted(points)
    if len(xs) < 2:
        return None
    x0, x1 = xs[0], xs[-1]
    slope = Fraction(points[x1] - points[x0], x1 - x0)
    intercept = points[x0] - slope * x0
    if slope.denominator != 1 or intercept.denominator != 1:
        return None
    if any(intercept + slope * x != points[x] for x in xs):
        return None
    return Line(int(intercept), int(slope))


# --- the public function ------------------------------------------------------------------------


def check_prompt(prompt: Any) -> int:
    """``prompt``, the tokens of a prompt: a whole number from 1 to :data:`MAX_CONTEXT`, else an
    :class:`OptionError` naming ``--prompt``."""
    if isinstance(prompt, bool) or not isinstance(prompt, int) or prompt < 1:
        raise OptionError("prompt", prompt, "must be a whole number of tokens >= 1")
    if prompt > MAX_CONTEXT:
        raise OptionError("prompt", prompt, f"must be at most {MAX_CONTEXT:,} tokens (ten times the longest "
                                            "context window of any model yet)")
    return prompt


class Lengths(tuple):
    """``(lengths, ranged)`` as :func:`parse_lengths` reads them (given again, not read again)."""


def parse_lengths(value: Any, option: str = "at") -> "Lengths":
    """The cache lengths of ``--at``: ``L1,L2,...`` or a range ``A:B`` (both included), or a
    sequence or ``range`` of whole numbers >= 0; with whether it was a range."""
    if isinstance(value, Lengths):
        return value
    text = value if isinstance(value, str) else str(value)
    allowed = "must be cache lengths L1,L2,... or a range A:B (whole numbers >= 0, e.g. 1,512,8192 or 1:8192)"
    if isinstance(value, range):
        if len(value) > MAX_LENGTHS:
            raise OptionError(option, text, f"holds more than {MAX_LENGTHS:,} lengths: give a shorter range")
        found, ranged = tuple(value), True
    elif isinstance(value, str):
        ranged = ":" in value
        try:
            bounds = tuple(int(v) for v in value.split(":")) if ranged else ()
            found = () if ranged else tuple(int(v) for v in value.split(","))
        except ValueError:
            bounds = found = ()
        if len(bounds) == 2 and 0 <= bounds[0] <= bounds[1]:
            if bounds[1] - bounds[0] >= MAX_LENGTHS:  # refused before it is made
                raise OptionError(option, text, f"holds more than {MAX_LENGTHS:,} lengths: give a shorter range")
            found = tuple(range(bounds[0], bounds[1] + 1))
    else:
        ranged = False
        try:
            found = tuple(int(v) for v in value) if not isinstance(value, bool) else ()
        except (TypeError, ValueError):
            found = ()
    if not found or any(n < 0 for n in found) or len(set(found)) != len(found):
        raise OptionError(option, text, allowed)
    if max(found) > MAX_CONTEXT:
        raise OptionError(option, text, f"holds a length above {MAX_CONTEXT:,} tokens (ten times the "
                                        "longest context window of any model yet)")
    if len(found) > MAX_LENGTHS:
        raise OptionError(option, text, f"holds more than {MAX_LENGTHS:,} lengths: give a shorter range")
    return Lengths((found, ranged))


def fit_points(lengths: Sequence[int], ranged: bool, prompt: int, more: Sequence[int] = ()) -> tuple[int, ...]:
    """The lengths to count: every one asked for a list; for a range its ends and middle; with
    those of ``more`` (a generation's first and last) outside the span of the others, at least
    three in all (the next ones past the largest, doubling, where fewer are asked)."""
    wanted = {lengths[0], lengths[-1], (lengths[0] + lengths[-1]) // 2} if ranged else set(lengths)
    wanted |= {n for n in more if not min(wanted) <= n <= max(wanted)}  # outside: checked there too
    extra = max(wanted) + 1
    while len(wanted) < 3:
        wanted.add(extra)
        extra = 2 * extra + 1
    return tuple(sorted(wanted))


def token_costs(
    model: nn.Module,
    *,
    prompt: int = 1,
    at: Any = "1",
    convention: str | None = None,
    more: Sequence[int] = (),
    exit_layers: Sequence[int] | None = None,
    name: str | None = None,
    progress: Callable[[int, int, str], None] | None = None,
) -> TokenCosts:
    """What one token costs at each exit of the decoder ``model`` (see the module docstring) after a
    prompt of ``prompt`` tokens, at the cache lengths ``at`` (:func:`parse_lengths`), in
    ``convention`` (default ``macs``).  ``more``: lengths to check the fit at too (a generation's);
    ``exit_layers``: the decoder layer each exit reads, where known; ``name``: the model as
    messages name it; ``progress(done, steps, step)``: called before each record."""
    convention = check_convention(convention, msdnet=False)
    name = name or type(model).__name__
    prompt = check_prompt(prompt)
    lengths, ranged = at if isinstance(at, Lengths) else parse_lengths(at)
    points = fit_points(lengths, ranged, prompt, more)
    device = next((t.device for t in (*model.parameters(), *model.buffers())), torch.device("meta"))
    steps = len(points) + 1
    if progress is not None:
        progress(0, steps, f"prefill of {prompt} tokens")
    prefill = _record_step(model, torch.zeros(1, prompt, dtype=torch.long, device=device), None, name)
    dims = _token_dims(prefill.cache, prompt)
    if any(d == -1 for d in dims.values()):  # several dimensions of the prompt's size: a step tells
        probe = _record_step(model, torch.zeros(1, 1, dtype=torch.long, device=device), prefill.cache, name)
        dims = {path: next((d for d, (a, b) in enumerate(zip(shape, probe.returned[path][0])) if b == a + 1), None)
                for path, (shape, _) in probe.given.items()}
    figures: dict[int, _Figures] = {}
    flows: dict[int, Dataflow] = {}
    on_values = prefill.flow.on_values

    def count(length: int, done: int) -> None:
        if progress is not None:
            progress(done, steps, f"one token after {length} cached")
        step = _record_step(model, torch.zeros(1, 1, dtype=torch.long, device=device),
                            _resized(prefill.cache, dims, length), name)
        _check_growth(step, dims, length, name)
        figures[length] = _figures(step, convention)
        flows[length] = step.flow
        nonlocal on_values
        on_values = on_values or step.flow.on_values

    for i, length in enumerate(points, 1):
        count(length, i)
    first = figures[points[0]]
    n = len(first.block_macs)
    if any(len(f.block_macs) != n for f in figures.values()) or len(prefill.flow.outputs) != n:
        raise OptionError("model", name, "returns a different number of exits at different cache lengths")
    lazy_lines = [_line({length: f.lazy_macs[k] for length, f in figures.items()}) for k in range(n)]
    blocks = _fit_blocks(figures) if None not in lazy_lines else None
    if blocks is None and ranged:
        missing = [length for length in lengths if length not in figures]
        if len(missing) > MAX_COUNTED:
            raise OptionError("at", at if isinstance(at, str) else f"{lengths[0]}:{lengths[-1]}",
                              f"{name}'s token cost is not affine in the cache length (counted at "
                              f"{', '.join(map(str, points))}): the {len(lengths):,} lengths of the range "
                              f"would each need a record; give at most {MAX_COUNTED} lengths with --at L1,L2,...")
        for i, length in enumerate(missing, len(points) + 1):
            count(length, i)
    pre = _figures(prefill, convention)
    last = figures[points[-1]]
    exits = []
    for k in range(n):
        if blocks:  # every length from the lines, which the counts at the counted ones lie on
            token = Line(sum(b.macs.intercept for b in blocks[:k + 1]) + blocks[k].head_macs,
                         sum(b.macs.per_token for b in blocks[:k + 1]))
            cache = Line(sum(b.cache_bytes.intercept for b in blocks[:k + 1]),
                         sum(b.cache_bytes.per_token for b in blocks[:k + 1]))
            lazy_line = lazy_lines[k]
            tokens = {length: token.intercept + token.per_token * length for length in lengths}
            lazy = {length: lazy_line.intercept + lazy_line.per_token * length for length in lengths}
            cached = {length: cache.intercept + cache.per_token * length for length in lengths}
            read = {length: last.weight_bytes[k] + cache.intercept + cache.per_token * (length + 1)
                    for length in lengths}
            per_token = cache.per_token
        else:  # every length counted
            tokens = {length: sum(figures[length].block_macs[:k + 1]) + figures[length].head_macs[k]
                      for length in lengths}
            lazy = {length: figures[length].lazy_macs[k] for length in lengths}
            cached = {length: sum(figures[length].cache_given[:k + 1]) for length in lengths}
            read = {length: figures[length].weight_bytes[k] + sum(figures[length].cache_returned[:k + 1])
                    for length in lengths}
            per_token = sum(last.cache_returned[:k + 1]) - sum(last.cache_given[:k + 1])
        later = last.propagate_macs[k + 1:]
        exits.append(TokenCost(
            exit=k + 1, layer=exit_layers[k] if exit_layers else None,
            prefill_macs=sum(pre.block_macs[:k + 1]) + pre.head_macs[k], lazy_prefill_macs=pre.lazy_macs[k],
            prefill_bytes=pre.weight_bytes[k],
            token_macs=tokens, lazy_token_macs=lazy,
            token_macs_intercept=token.intercept if blocks else None,
            token_macs_per_cached_token=token.per_token if blocks else None,
            check_macs=sum(last.head_macs[:k]),
            propagate_macs=None if None in later else sum(later),
            weight_bytes=last.weight_bytes[k], check_bytes=last.check_bytes[k],
            propagate_bytes=last.propagate_bytes[k], kv_bytes_per_token=per_token,
            cache_bytes=cached, bytes_read=read,
        ))
    largest = flows[points[-1]]
    leaves = list(trees.leaves(prefill.cache))
    grows = sorted({d for d in dims.values() if d is not None})
    cache_text = (f"{type(prefill.cache).__name__}: {len(leaves)} tensor{'s' * (len(leaves) != 1)}, tokens on "
                  f"dimension {', '.join(map(str, grows)) or 'none'}")
    return TokenCosts(
        model=name, convention=convention, prompt=prompt, lengths=lengths,
        counted=tuple(sorted(figures)), exits=tuple(exits), blocks=blocks or (),
        fit_lengths=tuple(sorted(figures)) if blocks else (), exit_names=largest.exit_names,
        unsupported=unsupported_of(largest, convention), cache=cache_text, on_values=on_values,
    )


def _fit_blocks(figures: dict[int, _Figures]) -> tuple[BlockCost, ...] | None:
    """Per block, its lines in ``L`` when every figure of every block lies on one at every length
    counted (three at least), else ``None``."""
    if len(figures) < 3:
        return None
    last = figures[max(figures)]
    found = []
    for b in range(len(last.block_macs)):
        macs = _line({length: f.block_macs[b] for length, f in figures.items()})
        head = _line({length: f.head_macs[b] for length, f in figures.items()})
        cache = _line({length: f.cache_given[b] for length, f in figures.items()})
        after = _line({length + 1: f.cache_returned[b] for length, f in figures.items()})
        if macs is None or head is None or head.per_token or cache is None or after != cache:
            return None
        found.append(BlockCost(b + 1, macs, head.intercept, last.propagate_macs[b], cache))
    return tuple(found)


__all__ = ["BlockCost", "CONTRACT", "Lengths", "Line", "MAX_CONTEXT", "MAX_COUNTED", "MAX_LENGTHS", "check_prompt", "TokenCost", "TokenCosts", "fit_points",
           "parse_lengths", "token_costs"]
