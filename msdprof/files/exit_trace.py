"""The exit each generated token took, read from a file (``--exits-from``): JSON or CSV.

JSON: a list of exit numbers (``[1, 4, 2, ...]``) or an object holding one under ``"exits"``.
CSV: one exit number a row, in a column named ``exit`` (any other columns are left alone) or the
only column, with or without that header.  Exits are numbered from 1 (exit 1 first), as every
msdprof table numbers them.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any, Sequence

from msdnet.options import OptionError

from ..core.units import first_line

#: The most exits a file may hold (a sanity bound: one a generated token).
MAX_TOKENS = 10_000_000


def check_exits(values: Sequence[Any], exits: int | None, option: str, typed: str) -> tuple[int, ...]:
    """``values`` as exit numbers from 1 to ``exits`` (``None``: any from 1); :class:`OptionError`
    naming ``option`` (given as ``typed``) otherwise."""
    found = []
    for i, value in enumerate(values, 1):
        try:
            number = int(value) if not isinstance(value, (bool, float)) else None
        except (TypeError, ValueError):
            number = None
        if isinstance(value, float) and value.is_integer():
            number = int(value)
        if number is None or number < 1 or (exits is not None and number > exits):
            shown = str(value)[:20] or "empty"
            raise OptionError(option, typed, f"entry {i} ({shown}) is not an exit: exits are numbered "
                                             + (f"1 to {exits}" if exits is not None else "from 1"))
        found.append(number)
    if not found:
        raise OptionError(option, typed, "holds no exits: give the exit each generated token took")
    if len(found) > MAX_TOKENS:
        raise OptionError(option, typed, f"holds {len(found):,} exits: at most {MAX_TOKENS:,}")
    return tuple(found)


def parse_exits(text: str, exits: int | None = None, option: str = "exits") -> tuple[int, ...]:
    """``1,4,2,...``: the exit each generated token took."""
    return check_exits([v.strip() for v in text.split(",")], exits, option, text)


def read_exits(path: str, exits: int | None = None) -> tuple[int, ...]:
    """The exits in the file ``path`` (module docstring), each from 1 to ``exits`` (``None``: any
    from 1)."""
    file = Path(path)
    if not file.is_file():
        raise OptionError("exits-from", path, "no such file" if not file.exists() else "is not a file")
    try:
        text = file.read_text()
    except (OSError, UnicodeDecodeError) as error:
        raise OptionError("exits-from", path, f"cannot be read: {first_line(error)}") from None
    if file.suffix.lower() == ".json" or text.lstrip()[:1] in ("[", "{"):
        try:
            data = json.loads(text)
        except (json.JSONDecodeError, RecursionError, ValueError) as error:
            raise OptionError("exits-from", path, f"is not JSON ({first_line(error)})") from None
        if isinstance(data, dict):
            data = data.get("exits")
        if not isinstance(data, list):
            raise OptionError("exits-from", path, "must hold a JSON list of exit numbers, or an object with "
                                                  "one under \"exits\"")
        return check_exits(data, exits, "exits-from", path)
    rows = [row for row in csv.reader(io.StringIO(text)) if any(cell.strip() for cell in row)]
    if not rows:
        return check_exits([], exits, "exits-from", path)
    header = [cell.strip().lower() for cell in rows[0]]
    if "exit" in header:
        column, rows = header.index("exit"), rows[1:]
    elif len(header) == 1:
        column = 0
    else:
        raise OptionError("exits-from", path, "has several columns and none named exit: give the exit each "
                                              "token took in a column named exit")
    return check_exits([row[column].strip() if column < len(row) else "" for row in rows], exits,
                       "exits-from", path)


__all__ = ["MAX_TOKENS", "check_exits", "parse_exits", "read_exits"]
