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



#: The convention used where none is named: the authors' counter for an MSDNet (what the paper
#: reports), multiply-adds for any other model (the authors' counter has rules for a CNN's
#: modules only: a token model's embeddings and norms would be listed as uncounted).
DEFAULTS = {True: "msdnet", False: "macs"}


def check_convention(name: str | None, msdnet: bool = True) -> str:
    """``name`` if it is a known convention; ``None``: the default for the model (:data:`DEFAULTS`:
    ``msdnet`` for an MSDNet, ``macs`` for any other); else :class:`OptionError` naming the known
    ones."""
    if name is None:
        return DEFAULTS[msdnet]
    if not isinstance(name, str) or name not in CONVENTION_HELP:
        raise OptionError(
            "convention", name,
            "must be one of " + ", ".join(CONVENTION_HELP)
            + (did_you_mean(name, CONVENTION_HELP) if isinstance(name, str) else " (a name, not a "
               + type(name).__name__ + ")"),
        )
    return name


__all__ = ["CONVENTION_HELP", "DEFAULTS", "check_convention"]
