"""Counts and shapes as text, read and written (torch-free: the CLI's ``--help`` reads it).

``parse_count("1.5G")`` is 1,500,000,000 operations; ``format_count(1_356_000_000)`` is ``1.36 G``;
``shape_text((1, 3, 32, 32))`` is ``1x3x32x32``.
"""

from __future__ import annotations

from typing import Any, Iterable

from msdnet.options import OptionError


def shape_text(shape: Any) -> str:
    """``1x3x32x32`` for a shape (a tuple or list), anything else as ``str``."""
    return "x".join(map(str, shape)) if isinstance(shape, (tuple, list)) else str(shape)


def shapes_text(shapes: Iterable[Any]) -> str:
    """``1x3x32x32, 1x10``: the shapes of a model's inputs."""
    return ", ".join(shape_text(s) for s in shapes)


#: The most memory a command may allocate for the data it reads or makes (saved outputs, a batch
#: of images and the feature maps a forward holds on it), in bytes: estimated from shapes before
#: anything is allocated (README "Limits").
MAX_BYTES = 4 * 2**30


def bytes_text(n: int | float) -> str:
    """``4.0 GiB``, ``120 MiB``: a size in bytes, in binary units."""
    return f"{n / 2**30:,.1f} GiB" if n >= 2**30 else f"{n / 2**20:,.0f} MiB"


def check_bytes(option: str, value: Any, needed: int, what: str) -> None:
    """:class:`OptionError` on ``option``'s ``value`` when ``what`` (``"the batch and its feature
    maps"``) would take ``needed`` bytes, more than :data:`MAX_BYTES`; checked before allocating."""
    if needed > MAX_BYTES:
        raise OptionError(option, value, f"{what} would take about {bytes_text(needed)} of memory: "
                                         f"at most {bytes_text(MAX_BYTES)} (see the README's limits)")


#: The columns of a sweep row that ``msdprof sweep --sort`` can order by (besides the options).
ROW_COLUMNS = ("index", "exits", "layers", "first_macs", "total_macs", "total_params", "budget_exits")

_PREFIXES = {"": 1, "K": 10**3, "M": 10**6, "G": 10**9, "T": 10**12}


def parse_count(text: str | int | float, option: str = "budget") -> int:
    """An operation count from ``300M``, ``1.5G``, ``2e8`` or ``120000`` (K/M/G/T = 10^3/6/9/12).

    Raises :class:`OptionError` (naming ``option``) for anything else or a negative count.
    """
    allowed = "must be a count like 300M, 1.5G or 120000 (K, M, G, T = 10^3, 10^6, 10^9, 10^12)"
    if isinstance(text, bool):
        raise OptionError(option, text, allowed)
    if isinstance(text, (int, float)):
        try:
            value = float(text)
        except OverflowError:  # an int past float's range
            raise OptionError(option, text, allowed + "; at most about 1.8e308") from None
    else:
        raw = str(text).strip().replace("_", "").replace(",", "")
        prefix = raw[-1:].upper() if raw[-1:].isalpha() else ""
        number = raw[:-1] if prefix else raw
        if prefix not in _PREFIXES or not number:
            raise OptionError(option, text, allowed)
        try:
            value = float(number) * _PREFIXES[prefix]
        except ValueError:
            raise OptionError(option, text, allowed) from None
    if not value >= 0 or value == float("inf"):
        raise OptionError(option, text, allowed)
    return int(round(value))


def format_count(value: float, unit: str = "") -> str:
    """A count in K/M/G/T with two decimals (``1.36 G``); exact below 1000."""
    for factor, prefix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "K")):
        if abs(value) >= factor:
            return f"{value / factor:.2f} {prefix}{unit}".rstrip()
    return f"{value:g} {unit}".rstrip() if isinstance(value, float) else f"{value} {unit}".rstrip()
