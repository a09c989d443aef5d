"""Floor 3, analyses built on the per-exit costs: the wiring of the network (``graph``), what a
budget buys (``budget``), design sweeps (``sweep``), why counters disagree (``compare``) and
measured time (``latency``, with the timestamp hooks of ``stamps``).  Imports the floors below only;
nothing here draws or prints.
"""
