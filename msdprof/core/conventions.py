"""The counting conventions' names and what each counts, without torch: for ``--help`` texts,
captions and report footnotes.

:mod:`msdprof.core.counting` turns counts into each convention's number (its ``CONVENTIONS``) and
imports torch; this module only names them.  ``tests/test_help.py`` checks that the two agree.
"""

from __future__ import annotations

#: What each convention counts (the keys are the convention names, in the order help lists them).
CONVENTION_HELP = {
    "msdnet": "the authors' op counter: one multiply-add = 1, plus ReLU elements, pooling windows "
              "and Linear bias adds (the paper's 'FLOPs')",
    "macs": "Conv2d and Linear multiply-adds only, no bias (fvcore's count)",
    "flops": "2 x macs (torch.utils.flop_counter's count)",
}

__all__ = ["CONVENTION_HELP"]
