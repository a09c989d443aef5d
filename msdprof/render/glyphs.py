"""How wide a line of text is drawn, in points, without reading any font installed: ``text_width``.

The pictures name Helvetica, which Graphviz and browsers draw with whatever sans font the machine
has: Liberation Sans (Helvetica's and Arial's widths) or DejaVu Sans (wider) on most Linux
machines, Helvetica or Arial elsewhere.  Each character's advance below is the wider of DejaVu Sans
and Liberation Sans, in hundredths of the font size, rounded up (read from their font files), so a
box sized by :func:`text_width` holds its text whichever of them draws it, and the same text gives
the same width on every machine.
"""

from __future__ import annotations

import functools

#: (advance in hundredths of the font size, the characters that have it)
_ADVANCES = (
    (28, "'ijl"), (30, "I"), (32, " ,.·"), (34, "/:;\\|"), (36, "f"), (37, "-"), (40, "()[]t"),
    (41, "!"), (42, "r"), (46, '"'), (50, "*J`"), (53, "sz"), (55, "c"), (56, "?L_"), (58, "k"),
    (60, "vxy"), (62, "FTaeo"), (64, "$0123456789bdghnpqu{}Σ"), (67, "EKPSY"), (69, "ABVXZ"),
    (73, "CR"), (74, "U"), (75, "N"), (76, "H"), (78, "&DG"), (79, "OQ"), (82, "w"),
    (84, "#+<=>^~×↓↑"), (87, "M"), (96, "%"), (98, "m"), (99, "W"), (100, "…→←"), (102, "@"),
)
ADVANCE = {char: width / 100 for width, chars in _ADVANCES for char in chars}
#: The advance taken for a character not in the table (a CJK ideograph is about 1 em).
WIDEST = 1.05


@functools.lru_cache(maxsize=4096)
def _ems(line: str) -> float:
    return sum(ADVANCE.get(char, WIDEST) for char in line)


def text_width(text: str, size: float) -> float:
    """Points the widest line of ``text`` takes at font ``size`` points (see the module docstring)."""
    return max(_ems(line) for line in text.split("\n")) * size


def fitting_size(lines: list[str], size: float, room: float) -> float:
    """``size``, or the largest smaller font size (in hundredths of a point) at which every one of
    ``lines`` is at most ``room`` points wide."""
    widest = max((_ems(line) for line in lines), default=0.0)
    if widest * size <= room:
        return size
    return int(100 * room / widest) / 100


__all__ = ["ADVANCE", "WIDEST", "fitting_size", "text_width"]
