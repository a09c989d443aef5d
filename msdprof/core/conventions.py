"""The counting conventions' names and what each counts, without torch: for ``--help`` texts,
captions and report footnotes.

:mod:`msdprof.core.counting` turns counts into each convention's number (its ``CONVENTIONS``) and
imports torch; this module only names them.  ``tests/test_help.py`` checks that the two agree.
"""

from __future__ import annotations

from msdnet.options import OptionError, did_you_mean

#: What each convention counts (the keys are the convention names, in the order help lists them).
CONVENTION_HELP = {
    "msdnet": "the authors' op counter: one multiply-add = 1, plus ReLU elements, pooling windows "
              "and Linear bias adds (the paper's 'FLOPs')",
    "macs": "multiply-adds only (conv, Linear, matmul, attention), no bias: fvcore's conv + linear "
            "count where fvcore sees every operator (it skips attention and recurrent layers)",
    "flops": "2 x macs: torch.utils.flop_counter's count where it sees every operator (on CPU it "
             "misses scaled-dot-product attention and LSTM)",
}



def check_convention(name: str) -> str:
    """``name`` if it is a known convention, else :class:`OptionError` naming the known ones."""
    if not isinstance(name, str) or name not in CONVENTION_HELP:
        raise OptionError(
            "convention", name,
            "must be one of " + ", ".join(CONVENTION_HELP)
            + (did_you_mean(name, CONVENTION_HELP) if isinstance(name, str) else " (a name, not a "
               + type(name).__name__ + ")"),
        )
    return name


__all__ = ["CONVENTION_HELP", "check_convention"]
