"""``python -m msdprof.cli``: the ``msdprof`` command."""

import sys

from .entry import main

sys.exit(main())
