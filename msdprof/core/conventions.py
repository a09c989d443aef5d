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
    "macs": "multiply-adds only (conv, Linear, matmul, attention), no bias: fvcore's conv + linear "
            "count where fvcore sees every operator (it skips attention and recurrent layers)",
    "flops": "2 x macs: torch.utils.flop_counter's count where it sees every operator (on CPU it "
             "misses scaled-dot-product attention and LSTM)",
}

__all__ = ["CONVENTION_HELP"]
