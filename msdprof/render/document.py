"""A small document model (headings, paragraphs, facts, tables, images, frames, notes) rendered as Markdown or HTML.

A report is written once as a list of blocks and rendered by :func:`to_markdown` or :func:`to_html`,
so the two formats never say different things.  Text inside blocks may use three pieces of inline
Markdown, which :func:`inline_html` turns into HTML: ```code```, ``**bold**`` and ``[text](href)``.
Output is a pure function of the blocks: no dates, no absolute paths.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from typing import Union


@dataclass(frozen=True)
class Heading:
    """A heading of ``level`` 1..4; ``anchor`` (optional) is its HTML id."""

    text: str
    level: int = 2
    anchor: str | None = None


@dataclass(frozen=True)
class Paragraph:
    text: str


@dataclass(frozen=True)
class Facts:
    """Named values, one a line: a bullet list in Markdown, a definition list in HTML."""

    items: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Table:
    """A table; ``align`` holds ``"l"`` or ``"r"`` per column (default: first left, rest right).

    ``caption`` (optional) is a paragraph printed under it.
    """

    headers: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    align: str | None = None
    caption: str | None = None

    def alignment(self) -> str:
        return self.align or "l" + "r" * (len(self.headers) - 1)


@dataclass(frozen=True)
class Image:
    """A picture stored beside the document: ``src`` is a file name relative to it."""

    src: str
    alt: str
    caption: str | None = None
    wide: bool = False  # HTML: shown at a legible height, scrolling sideways, linked to the file


@dataclass(frozen=True)
class Frame:
    """A page stored beside the document, shown in place in HTML (an ``iframe`` ``height`` pixels
    high) and linked in Markdown: ``src`` is a file name relative to the document."""

    src: str
    title: str
    caption: str | None = None
    height: int = 640


@dataclass(frozen=True)
class Note:
    """A call-out, e.g. why a picture is missing."""

    text: str


Block = Union[Heading, Paragraph, Facts, Table, Image, Frame, Note]

_CODE = re.compile(r"`([^`]+)`")
_BOLD = re.compile(r"\*\*(.+?)\*\*")
_LINK = re.compile(r"\[([^\]]+)\]\(([^)\s]+)\)")


def inline_html(text: str) -> str:
    """``text`` escaped for HTML, with ```code```, ``**bold**`` and ``[text](href)`` converted."""
    codes: list[str] = []

    def keep(match: re.Match) -> str:  # protect code spans from the other rules
        codes.append(f"<code>{html.escape(match.group(1), quote=False)}</code>")
        return f"\x00{len(codes) - 1}\x00"

    out = _CODE.sub(keep, text)
    out = html.escape(out, quote=False)
    out = _BOLD.sub(r"<strong>\1</strong>", out)
    out = _LINK.sub(lambda m: f'<a href="{html.escape(m.group(2))}">{m.group(1)}</a>', out)
    return re.sub("\x00(\\d+)\x00", lambda m: codes[int(m.group(1))], out)


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _md_table(table: Table) -> str:
    marks = {"l": ":---", "r": "---:"}
    lines = [
        "| " + " | ".join(_md_cell(h) for h in table.headers) + " |",
        "|" + "|".join(marks[a] for a in table.alignment()) + "|",
    ]
    lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in table.rows]
    text = "\n".join(lines) + "\n"
    return text + (f"\n{table.caption}\n" if table.caption else "")


def to_markdown(blocks: list[Block]) -> str:
    """GitHub Markdown; blocks separated by one blank line, ending in one newline."""
    parts = []
    for block in blocks:
        if isinstance(block, Heading):
            parts.append(f"{'#' * block.level} {block.text}\n")
        elif isinstance(block, Paragraph):
            parts.append(block.text + "\n")
        elif isinstance(block, Facts):
            parts.append("".join(f"- **{name}:** {value}\n" for name, value in block.items))
        elif isinstance(block, Table):
            parts.append(_md_table(block))
        elif isinstance(block, Image):
            text = f"![{block.alt}]({block.src})\n"
            parts.append(text + (f"\n{block.caption}\n" if block.caption else ""))
        elif isinstance(block, Frame):
            text = f"[{block.title}]({block.src})\n"
            parts.append(text + (f"\n{block.caption}\n" if block.caption else ""))
        elif isinstance(block, Note):
            parts.append(f"> **Note.** {block.text}\n")
        else:  # pragma: no cover - the Block union is closed
            raise TypeError(f"not a document block: {block!r}")
    return "\n".join(parts)


_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif;
       color: #1f2328; max-width: 1180px; margin: 2em auto; padding: 0 1.5em; line-height: 1.5; }
h1 { font-size: 1.7em; border-bottom: 1px solid #d0d7de; padding-bottom: .3em; }
h2 { font-size: 1.3em; margin-top: 1.8em; border-bottom: 1px solid #eaeef2; padding-bottom: .2em; }
h3 { font-size: 1.1em; margin-top: 1.4em; }
table { border-collapse: collapse; margin: .8em 0; font-variant-numeric: tabular-nums; }
th, td { border: 1px solid #d0d7de; padding: .3em .7em; }
th { background: #f6f8fa; font-weight: 600; vertical-align: bottom; }
tbody tr:nth-child(even) { background: #f9fafb; }
td.r, th.r { text-align: right; } td.l, th.l { text-align: left; }
code { font-family: ui-monospace, "DejaVu Sans Mono", monospace; font-size: .9em;
       background: #f3f4f6; padding: .1em .3em; border-radius: 4px; }
p.caption { color: #57606a; font-size: .9em; margin-top: -.2em; }
figure { margin: 1em 0; } figure img { max-width: 100%; height: auto; border: 1px solid #eaeef2; }
figure.wide .scroll { overflow-x: auto; } figure.wide img { max-width: none; height: 460px; }
td.l:first-child { white-space: nowrap; }
figure.frame iframe { width: 100%; border: 1px solid #d0d7de; display: block; }
figcaption { color: #57606a; font-size: .9em; }
dl { display: grid; grid-template-columns: max-content auto; gap: .25em 1.2em; margin: .8em 0; }
dt { font-weight: 600; } dd { margin: 0; }
.note { border-left: 4px solid #d4a72c; background: #fff8c5; padding: .6em 1em; margin: 1em 0; }
"""


def _html_table(table: Table) -> str:
    align = table.alignment()
    head = "".join(f'<th class="{a}">{inline_html(h)}</th>' for h, a in zip(table.headers, align))
    body = "\n".join(
        "<tr>" + "".join(f'<td class="{a}">{inline_html(c)}</td>' for c, a in zip(row, align)) + "</tr>"
        for row in table.rows
    )
    text = f"<table>\n<thead><tr>{head}</tr></thead>\n<tbody>\n{body}\n</tbody>\n</table>\n"
    return text + (f'<p class="caption">{inline_html(table.caption)}</p>\n' if table.caption else "")


def to_html(blocks: list[Block], title: str) -> str:
    """A self-contained HTML page (inline CSS); pictures are linked by their relative ``src``."""
    parts = []
    for block in blocks:
        if isinstance(block, Heading):
            anchor = f' id="{html.escape(block.anchor)}"' if block.anchor else ""
            parts.append(f"<h{block.level}{anchor}>{inline_html(block.text)}</h{block.level}>\n")
        elif isinstance(block, Paragraph):
            parts.append(f"<p>{inline_html(block.text)}</p>\n")
        elif isinstance(block, Facts):
            items = "".join(f"<dt>{inline_html(k)}</dt><dd>{inline_html(v)}</dd>\n" for k, v in block.items)
            parts.append(f"<dl>\n{items}</dl>\n")
        elif isinstance(block, Table):
            parts.append(_html_table(block))
        elif isinstance(block, Image):
            caption = f"<figcaption>{inline_html(block.caption)}</figcaption>" if block.caption else ""
            img = f'<img src="{html.escape(block.src)}" alt="{html.escape(block.alt)}">'
            if block.wide:
                img = f'<div class="scroll"><a href="{html.escape(block.src)}">{img}</a></div>'
            css = ' class="wide"' if block.wide else ""
            parts.append(f"<figure{css}>{img}{caption}</figure>\n")
        elif isinstance(block, Frame):
            caption = f"<figcaption>{inline_html(block.caption)}</figcaption>" if block.caption else ""
            frame = (f'<iframe src="{html.escape(block.src)}" title="{html.escape(block.title)}" '
                     f'height="{block.height}" loading="lazy"></iframe>')
            parts.append(f'<figure class="frame">{frame}{caption}</figure>\n')
        elif isinstance(block, Note):
            parts.append(f'<div class="note"><strong>Note.</strong> {inline_html(block.text)}</div>\n')
        else:  # pragma: no cover - the Block union is closed
            raise TypeError(f"not a document block: {block!r}")
    return (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        f"<title>{html.escape(title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n"
        + "".join(parts) + "</body>\n</html>\n"
    )


__all__ = ["Block", "Facts", "Frame", "Heading", "Image", "Note", "Paragraph", "Table", "inline_html", "to_html", "to_markdown"]
