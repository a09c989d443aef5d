"""Counts and shapes as text, read and written (torch-free: the CLI's ``--help`` reads it).

``parse_count("1.5G")`` is 1,500,000,000 operations; ``format_count(1_356_000_000)`` is ``1.36 G``;
``shape_text((1, 3, 32, 32))`` is ``1x3x32x32``.
"""

from __future__ import annotations

import re
from typing import Any, Iterable, Sequence

from msdnet.options import OptionError


#: The dtypes an example input of a model may be given in (``--input-size 1x128:long``): names of
#: ``torch`` dtypes.
INPUT_DTYPE_NAMES = ("float", "float32", "half", "float16", "bfloat16", "double", "float64", "long",
                     "int64", "int", "int32", "int16", "int8", "uint8", "bool")

#: How ``--input-size`` describes the example inputs of a model msdprof did not build.
INPUT_FORMS = ("one image: a side, HxW or CxHxW (batch 1 and 3 channels added); with a :DTYPE, a "
               "NAME= (a keyword input) or several joined by commas, full shapes, batch first (e.g. "
               "1x12:float, 1x3x32x32,1x10 or input_ids=1x128:long,attention_mask=1x128:long)")


def one_line(error: BaseException) -> str:
    """``str(error)`` on one line: ANSI escapes dropped, lines joined with ``; ``, at most 400
    characters."""
    text = ANSI.sub("", str(error))
    text = "; ".join(line.strip() for line in text.splitlines() if line.strip())
    return text if len(text) <= 400 else text[:399] + "…"


ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")

def first_line(error: BaseException) -> str:
    """The first line of ``str(error)``, ANSI escapes dropped."""
    text = ANSI.sub("", str(error)).strip()
    return text.splitlines()[0] if text else ""


def shape_text(shape: Any) -> str:
    """``1x3x32x32`` for a shape (a tuple or list), anything else as ``str``."""
    return "x".join(map(str, shape)) if isinstance(shape, (tuple, list)) else str(shape)


#: Nested inputs under one name shown one by one up to this many; more are summed up.
NESTED_SHOWN = 4


def shapes_text(shapes: Iterable[Any], names: Sequence[str] = (), dtypes: Sequence[str] = ()) -> str:
    """``1x3x32x32, 1x10``: the shapes of a model's inputs; with their keyword ``names`` (``""``:
    positional) and ``dtypes`` (float32 unsaid), ``1x16:int64, mask=1x16``.  Tensors nested in
    one input (their names key paths, ``past_key_values.0.1``) are shown one by one up to
    :data:`NESTED_SHOWN`, else summed up: ``past_key_values=64 tensors 1x8x16x64`` (``1x8x16x64
    ... 1x8x17x64``: the first and last where they differ)."""
    items = []
    for i, shape in enumerate(shapes):
        name = names[i] if i < len(names) else ""
        dtype = dtypes[i] if i < len(dtypes) else "float32"
        items.append((name, f"{shape_text(shape)}{'' if dtype == 'float32' else ':' + dtype}"))
    parts, i = [], 0
    while i < len(items):
        name, text = items[i]
        root = name.split(".", 1)[0] if "." in name else None
        end = i + 1
        while root is not None and end < len(items) and items[end][0].split(".", 1)[0] == root and "." in items[end][0]:
            end += 1
        if end - i > NESTED_SHOWN:
            first, last = items[i][1], items[end - 1][1]
            same = all(t == first for _, t in items[i:end])
            parts.append(f"{root}={end - i} tensors {first}" + ("" if same else f" ... {last}"))
        else:
            parts += [f"{n + '=' if n else ''}{t}" for n, t in items[i:end]]
        i = end
    return ", ".join(parts)


#: The most memory a command may allocate for the data it reads or makes (saved outputs, a batch
#: of images and the feature maps a forward holds on it), in bytes: estimated from shapes before
#: anything is allocated (docs/errors.md, "Limits").
MAX_BYTES = 4 * 2**30


def bytes_text(n: int | float) -> str:
    """``4.0 GiB``, ``120 MiB``: a size in bytes, in binary units."""
    return f"{n / 2**30:,.1f} GiB" if n >= 2**30 else f"{n / 2**20:,.0f} MiB"


def check_bytes(option: str, value: Any, needed: int, what: str, fix: str = "") -> None:
    """:class:`OptionError` on ``option``'s ``value`` when ``what`` (``"the batch and its feature
    maps"``) would take ``needed`` bytes, more than :data:`MAX_BYTES`; checked before allocating.
    ``fix``: what to do instead (``"give a smaller --batch"``), said last."""
    if needed > MAX_BYTES:
        raise OptionError(option, value, f"{what} would take about {bytes_text(needed)} of memory: "
                                         f"at most {bytes_text(MAX_BYTES)} (see the limits in docs/errors.md)"
                                         + (f"; {fix}" if fix else ""))


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


_BYTE_UNITS = {"": 1, "B": 1, **{f"{p}B": 10**(3 * i) for i, p in enumerate("KMGT", 1)},
               **{f"{p}IB": 2**(10 * i) for i, p in enumerate("KMGT", 1)}}


def parse_bytes(text: str | int, option: str = "memory") -> int:
    """A number of bytes from ``64MB``, ``1.5GB``, ``512MiB``, ``2e8`` or ``65536`` (KB/MB/GB/TB =
    10^3/6/9/12 bytes, KiB/MiB/GiB/TiB = 2^10/20/30/40; a lone K/M/G/T is decimal too).

    Raises :class:`OptionError` (naming ``option``) for anything else or a negative size.
    """
    allowed = ("must be a size like 64MB, 1.5GB, 512MiB or 65536 (bytes; KB, MB, GB = 10^3, 10^6, "
               "10^9; KiB, MiB, GiB = 2^10, 2^20, 2^30)")
    raw = str(text).strip().replace("_", "").replace(",", "")
    unit = ""
    while raw and raw[-1].isalpha() and len(unit) < 3:
        unit, raw = raw[-1].upper() + unit, raw[:-1]
    unit = unit + "B" if unit in ("K", "M", "G", "T") else unit
    if isinstance(text, bool) or unit not in _BYTE_UNITS or not raw.strip():
        raise OptionError(option, text, allowed)
    try:
        value = float(raw) * _BYTE_UNITS[unit]
    except (ValueError, OverflowError):
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
