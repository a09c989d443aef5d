"""Floor 4, rendering: tables, JSON, CSV and Markdown (``formatting`` and the ``*_view`` modules),
pictures (``drawing`` with Graphviz, ``costplot`` and ``sweep_plot`` with matplotlib), the
interactive page (``interactive``) and report documents (``document``, ``report``).  Imports the
floors below only.
"""
