"""Showing what each generated token costs (:mod:`msdprof.analysis.generation`): ``msdprof
generate``'s tables (one per exit, rows by cache length, then the whole generation), JSON and CSV
(the plot: :mod:`msdprof.render.generation_plot`).

Tables scale operations to one unit per column (M or K) and bytes to MB (KB for tiny models);
JSON and CSV carry exact integers (a distribution's expected figures as numbers).
"""

from __future__ import annotations

import json
from typing import Any

from rich.console import Group
from rich.text import Text

from ..analysis.generation import POLICIES, Generation, GenerationCosts
from ..core.conventions import CONVENTION_HELP
from ..core.token_costs import TokenCost, TokenCosts
from .formatting import OP_NAMES, check_format, csv_text, filled_table, scaled, to_text

FORMATS = ("table", "json", "csv")

#: The most cache lengths a table shows of a range (its ends, the lengths counted, powers of two).
SHOWN = 10

#: Units of a column of operations or bytes, largest first: one per column, by its largest figure.
PREFIXES = ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "K"))


def scale(largest: float) -> tuple[float, str]:
    """(divisor, prefix) for a column whose largest figure is ``largest``: T, G, M or K, so that it
    reads with at most 4 digits before the point (``K`` below a thousand)."""
    return next(((f, p) for f, p in PREFIXES if largest >= 10 * f), (1e3, "K"))


def ops_unit(largest: float, convention: str) -> tuple[float, str]:
    divisor, prefix = scale(largest)
    return divisor, f"{prefix} {OP_NAMES[convention]}"


def bytes_unit(largest: float) -> tuple[float, str]:
    divisor, prefix = scale(largest)
    return divisor, f"{prefix}B"


def shown_lengths(table: TokenCosts) -> tuple[int, ...]:
    """The cache lengths the tables show: every one asked, or of a long range its ends, the lengths
    counted and the powers of two between (JSON and CSV hold them all)."""
    lengths = table.lengths
    if len(lengths) <= SHOWN:
        return lengths
    first, last = lengths[0], lengths[-1]
    fixed = {first, last, *(n for n in table.counted if first <= n <= last)}
    every = 1
    while True:  # powers of two, then of four, of eight ... until the table is short enough
        powers = {2 ** k for k in range(0, last.bit_length(), every) if first < 2 ** k < last}
        if len(fixed | powers) <= SHOWN or not powers:
            return tuple(sorted(fixed | powers))
        every += 1


def title(result: GenerationCosts, name: str | None = None) -> str:
    table = result.table
    return (f"{name or table.model} per-token cost: prompt {table.prompt:,} token"
            f"{'s' * (table.prompt != 1)}, {len(table)} exits")


def exit_heading(e: TokenCost, table: TokenCosts, name: str) -> str:
    """``Exit 1 (after layer 8)``, ``Exit early (2)``."""
    where = f" (after layer {e.layer})" if e.layer is not None else (f" ({name})" if name != str(e.exit) else "")
    return f"Exit {e.exit}{where}"


def exit_summary(e: TokenCost, table: TokenCosts) -> str:
    """What an exit costs beside its rows: prefill, the line in L, the cache a token adds, the
    weights a step reads, its checks and CALM's propagation (operations in the table's unit,
    bytes as B)."""
    unit = OP_NAMES[table.convention]
    parts = [f"prefill {e.prefill_macs:,} {unit}"]
    if e.token_macs_intercept is not None:
        parts.append(f"token {e.token_macs_intercept:,} + {e.token_macs_per_cached_token:,} L {unit}")
    parts.append(f"cache {e.kv_bytes_per_token:,} B/token")
    parts.append(f"weights {e.weight_bytes:,} B")
    if e.check_macs:
        parts.append(f"checks {e.check_macs:,} {unit}" + (f", {e.check_bytes:,} B" if e.check_bytes else ""))
    if e.propagate_macs:
        parts.append(f"propagate {e.propagate_macs:,} {unit}")
    return "; ".join(parts)


def exit_columns(table: TokenCosts) -> list[tuple[str, Any]]:
    """(header, cell of (exit, L)) pairs of the per-exit tables: one unit per column over every exit."""
    lengths = shown_lengths(table)
    op_div, ops = ops_unit(max(e.token_macs[n] for e in table for n in lengths), table.convention)
    lazy_div, lazy_ops = ops_unit(max(e.lazy_token_macs[n] for e in table for n in lengths), table.convention)
    byte_div, unit = bytes_unit(max(max(e.bytes_read[n] for n in lengths) for e in table))
    cache_div, cache_unit = bytes_unit(max(max(e.cache_bytes[n] for n in lengths) for e in table))
    return [
        ("L\ncached", lambda e, n: f"{n:,}"),
        (f"token\n{ops}", lambda e, n: scaled(e.token_macs[n], op_div)),
        (f"lazy\n{lazy_ops}", lambda e, n: scaled(e.lazy_token_macs[n], lazy_div)),
        ("checks\n%", lambda e, n: f"{100 * e.check_share(n):.1f}"),
        (f"cache\n{cache_unit}", lambda e, n: scaled(e.cache_bytes[n], cache_div)),
        (f"read\n{unit}", lambda e, n: scaled(e.bytes_read[n], byte_div)),
        (f"{OP_NAMES[table.convention]}\nper byte", lambda e, n: f"{e.intensity[n]:,.2f}"),
    ]


def caption(result: GenerationCosts) -> str:
    table = result.table
    unit = OP_NAMES[table.convention]
    how = "one pass on shapes each" if not table.on_values else "one pass each, on real tensors: the model reads values"
    fit = (f" Counted at L = {', '.join(map(str, table.counted))} ({how}); "
           + ("the cost is affine in L there, so every other L is exact from the line."
              if table.affine else "not affine in L: every L shown was counted."))
    notes = "".join(f" NOT COUNTED: {u.type} x{u.calls} (no '{table.convention}' rule, taken as 0)."
                    for u in table.unsupported if u.kernel_macs != 0)
    return (f"{unit} by the '{table.convention}' convention: {CONVENTION_HELP[table.convention]}. "
            "L = tokens already in the cache; token = one new token through the exit's layers and its "
            "head (eager, as the model truncated after them runs); lazy = only what the exit's output "
            "reads; checks = the earlier exits' heads a token leaving here evaluated, as a share of "
            "token + checks; cache = the exit's layers' keys and values holding L tokens; read = "
            "weights (each once, an embedding's rows gathered) + the cache after the step (L + 1 "
            f"tokens); {unit} per byte = token / read. Cache: {table.cache}." + fit + notes)


def generation_rows(g: Generation, table: TokenCosts) -> tuple[list[str], list[list[str]], str]:
    """Headers, rows and caption of the whole generation's table."""
    op_div, ops = ops_unit(max(g.full_macs, g.total_macs), table.convention)
    byte_div, unit = bytes_unit(max(g.full_bytes, g.total_bytes))
    decode = g.total_macs - g.prefill_macs
    rows = [
        ["prefill (full model)", scaled(g.prefill_macs, op_div), scaled(g.prefill_bytes, byte_div)],
        [f"{g.tokens:,} tokens", scaled(decode, op_div), scaled(g.total_bytes - g.prefill_bytes, byte_div)],
        ["  of which checks", scaled(g.check_macs, op_div), ""],
        [f"  of which {g.policy}", scaled(g.policy_macs, op_div), ""],
        ["per token (mean)", scaled(g.per_token_macs, op_div), scaled(g.per_token_bytes, byte_div)],
        ["total", scaled(g.total_macs, op_div), scaled(g.total_bytes, byte_div)],
        ["full model", scaled(g.full_macs, op_div), scaled(g.full_bytes, byte_div)],
        ["speed-up", f"{g.macs_speedup:.3f}x", f"{g.bytes_speedup:.3f}x"],
    ]
    shares = ", ".join(f"{100 * f:.1f}%" for f in g.fractions)
    how = ("expected values: each token leaves at exit k with the probability given, independently"
           if g.expected else "the exits given, token by token")
    text = (f"{g.tokens:,} tokens after a prompt of {g.prompt:,}; exits 1..{len(g.fractions)} take {shares} "
            f"of them ({how}). Policy {g.policy}: "
            f"{POLICIES[g.policy]}. Checks = the heads of the exits before the one taken, "
            f"{100 * g.check_share:.1f}% of the tokens' {OP_NAMES[table.convention]}. Full model = every "
            "token at the last exit, no checks. Bytes = weights + the cache attention reads, per step.")
    return ["", ops, unit], rows, text


def renderable(result: GenerationCosts, name: str | None = None, plain: bool = False) -> Any:
    """The tables as one ``rich`` renderable: one per exit, then the whole generation's."""
    table = result.table
    columns = exit_columns(table)
    parts: list[Any] = [Text(title(result, name), style="" if plain else "bold")]
    for e, exit_name in zip(table, table.exit_names or [str(e.exit) for e in table]):
        rows = [[cell(e, n) for _, cell in columns] for n in shown_lengths(table)]
        parts.append(filled_table(f"{exit_heading(e, table, exit_name)}: {exit_summary(e, table)}", "",
                                  [h for h, _ in columns], rows, plain))
    parts.append(Text(caption(result)))
    if result.generation is not None:
        g = result.generation
        headers, rows, text = generation_rows(g, table)
        parts.append(filled_table(f"Whole generation, policy {g.policy}", text, headers, rows, plain,
                                  left=(0,)))
    return Group(*parts)


def render_json(result: GenerationCosts, name: str | None = None) -> str:
    data = result.as_dict()
    return json.dumps({"spec": name, **data} if name else data, indent=2) + "\n"


#: The CSV's columns: one row per exit and cache length.
CSV_FIELDS = ("exit", "name", "layer", "L", "token_macs", "lazy_token_macs", "check_macs", "check_share",
              "cache_bytes", "bytes_read", "intensity", "prefill_macs", "lazy_prefill_macs", "prefill_bytes",
              "token_macs_intercept", "token_macs_per_cached_token", "propagate_macs", "weight_bytes",
              "check_bytes", "propagate_bytes", "kv_bytes_per_token", "counted", "convention")


def render_csv(result: GenerationCosts, name: str | None = None) -> str:
    """One row per exit and cache length, exact integers; ``counted``: the length was counted by a
    record (else it follows from the affine fit)."""
    return csv_text(*csv_records(result))


def csv_records(result: GenerationCosts) -> tuple[list[str], list[dict[str, Any]]]:
    """The column names and rows of :func:`render_csv` (also ``to_pandas()``'s)."""
    table = result.table
    counted = set(table.counted)

    def rows():
        for e, exit_name in zip(table, table.exit_names or [str(e.exit) for e in table]):
            for n in table.lengths:
                yield {"exit": e.exit, "name": exit_name, "layer": "" if e.layer is None else e.layer, "L": n,
                       "token_macs": e.token_macs[n], "lazy_token_macs": e.lazy_token_macs[n],
                       "check_macs": e.check_macs, "check_share": e.check_share(n),
                       "cache_bytes": e.cache_bytes[n], "bytes_read": e.bytes_read[n],
                       "intensity": e.intensity[n], "prefill_macs": e.prefill_macs,
                       "lazy_prefill_macs": e.lazy_prefill_macs, "prefill_bytes": e.prefill_bytes,
                       "token_macs_intercept": _blank(e.token_macs_intercept),
                       "token_macs_per_cached_token": _blank(e.token_macs_per_cached_token),
                       "propagate_macs": _blank(e.propagate_macs), "weight_bytes": e.weight_bytes,
                       "check_bytes": e.check_bytes, "propagate_bytes": _blank(e.propagate_bytes),
                       "kv_bytes_per_token": e.kv_bytes_per_token, "counted": n in counted,
                       "convention": table.convention}

    return list(CSV_FIELDS), list(rows())


def _blank(value: Any) -> Any:
    return "" if value is None else value


def render_table(result: GenerationCosts, name: str | None = None, width: int | None = None) -> str:
    return to_text(renderable(result, name, plain=True), width)


def render(result: GenerationCosts, fmt: str, name: str | None = None) -> str:
    """``result`` in format ``fmt`` (one of :data:`FORMATS`)."""
    return {"table": render_table, "json": render_json, "csv": render_csv}[check_format(fmt, FORMATS)](result, name)


__all__ = ["CSV_FIELDS", "FORMATS", "SHOWN", "caption", "render", "render_csv", "render_json",
           "render_table", "renderable", "shown_lengths", "title"]
