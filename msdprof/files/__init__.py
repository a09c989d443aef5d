"""Floor 2, files: what msdprof reads from disk and how it writes to it.

A user's model from ``FILE.py:FACTORY`` (``user_model``), saved per-exit outputs read safely
(``saved_outputs``), and atomic, no-clobber writes of one file or a set (``output``).  Imports the
floors below only.
"""
