"""The ``msdprof`` command: a thin layer over the API.

Every subcommand takes the network options under the authors' names (``--nBlocks 7 --stepmode
lin_grow ...``) and/or ``--preset NAME``.  A user mistake prints one line on stderr,
``msdprof: error: --OPTION VALUE: what is allowed``, and exits with code 2; nothing is written.
"""

from .entry import COMMANDS, build_parser, main

__all__ = ["COMMANDS", "build_parser", "main"]
