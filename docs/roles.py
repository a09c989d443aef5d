"""A MkDocs hook: the docstrings' Sphinx cross-reference roles (``:func:`x```, ``:class:`~a.b.C```),
which mkdocstrings renders as text, shown as the code they name (``x``, ``C``)."""

from __future__ import annotations

import re

ROLE = re.compile(r":(?:func|class|data|attr|meth|mod|exc|obj):<code>(~)?([^<]*)</code>")


def on_page_content(html: str, **_) -> str:
    """``:func:<code>~msdprof.core.exits.exit_costs</code>`` → ``<code>exit_costs</code>``, and a
    role without ``~`` keeps its whole path."""
    return ROLE.sub(lambda m: f"<code>{m.group(2).rsplit('.', 1)[-1] if m.group(1) else m.group(2)}</code>", html)
