"""What :func:`msdprof.exit_costs` returns: the per-exit costs of one network, as data.

:class:`ExitCosts` is a sequence of :class:`ExitCost`, exit 1 first, with what was counted and
how (:mod:`msdprof.core.exits` fills them in; :mod:`msdprof.core.samples` merges several samples').
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Iterator, Sequence

from msdnet import Options

from .dataflow import Idle, ValueRead
from .display import Tabular
from .units import shapes_text


#: An exit's lazy count below this fraction of its eager one is worth a word under the table
#: (:attr:`ExitCosts.lazy_gap`): no preset MSDNet comes near (its lowest, imagenet-step4's exit 1,
#: is 0.75); IMTA's MSDNet, computing later exits' maps first, is at 0.19.
LAZY_GAP = 0.5


@dataclass(frozen=True)
class ExitCost:
    """The cost of reaching exit ``exit`` (1-based), for one image (an MSDNet) or for the inputs
    given (any other model).

    Operation counts (``*_macs``) are in the table's convention (see :class:`ExitCosts`); ``params``
    are parameters (weights and biases, each counted once).

    - ``macs``/``params``: cumulative (eager), as the authors count them: everything that ran until
      outputs 1..k were complete -- for an MSDNet blocks 1..k and heads 1..k, what early-exit
      inference pays to reach exit k.
    - ``block_macs``/``block_params``: block k alone (what ran after output k-1, less head k).
    - ``head_macs``/``head_params``: head (classifier) k alone.
    - ``direct_macs``/``direct_params``: cumulative less the heads of exits 1..k-1 -- for an MSDNet
      blocks 1..k and head k, the cost when exit k is chosen in advance.
    - ``lazy_macs``/``lazy_params``: cumulative with lazy evaluation: the union of the ancestors of
      outputs 1..k (for an MSDNet, heads 1..k and only the feature maps they read); what no exit up
      to k reads is deferred and paid by a later exit, so ``lazy_macs <= macs`` and going on from
      exit k to k+1 costs ``lazy_macs(k+1) - lazy_macs(k)``.  The authors' counter has no lazy figure.
    - ``layer``: for an MSDNet, the network layer (1..L) whose coarsest map exit k reads; ``None``
      for other models.
    - ``idle_params``: parameters of modules that had not run by exit k on these inputs while a
      module holding them had (an expert no token reached): in none of the figures above (see
      :attr:`ExitCosts.idle`).
    - ``uncounted_macs``: work the cumulative figure leaves out (:attr:`ExitCosts.unsupported`),
      in the convention's unit: the multiply-adds by torch's formulas of what ran until output k
      was complete that its rules did not count (``None``: unknown, a kernel no formula measures;
      0: nothing left out).
    """

    exit: int
    layer: int | None
    macs: int
    params: int
    block_macs: int
    block_params: int
    head_macs: int
    head_params: int
    direct_macs: int
    direct_params: int
    lazy_macs: int
    lazy_params: int
    idle_params: int = 0
    uncounted_macs: int | None = 0


@dataclass(frozen=True)
class Unsupported:
    """Operations that ran work their convention did not count: a module ``type`` with no rule (the
    ``msdnet`` convention, whose rules charge more than multiply-adds), or a module or functional
    op whose ATen kernels did multiply-adds its rule did not count, or multiplied matrices by
    amounts no formula gives; how many ``calls``, the ``exits`` (1-based) whose outputs they feed,
    and ``kernel_macs``: the multiply-adds their kernels did by torch's formulas (``None``: unknown,
    a kernel no formula measures).  What was not counted is 0 in the figures, and always reported."""

    type: str
    calls: int
    exits: tuple[int, ...]
    kernel_macs: int | None = 0


@dataclass(frozen=True)
class Spread:
    """One figure of an exit over several samples: its ``mean``, ``min`` and ``max``."""

    mean: float
    min: int
    max: int


@dataclass(frozen=True)
class ExitSpread:
    """Exit ``exit``'s figures (by :class:`ExitCost` field: ``macs``, ``params`` ...) over the
    ``samples`` samples that returned it (:func:`msdprof.core.exits.count_samples`)."""

    exit: int
    samples: int
    figures: dict[str, Spread]


@dataclass(frozen=True)
class ExitCosts(Tabular, Sequence[ExitCost]):
    """The per-exit costs of one network: a sequence of :class:`ExitCost`, exit 1 first.

    ``convention`` names the unit of every ``*_macs`` figure (``msdnet``, ``macs`` or ``flops``);
    ``unsupported`` lists what ran with no counting rule (empty for an MSDNet).  For an MSDNet,
    ``options`` are its options and ``input_size`` the image's (height, width) in pixels; for any
    other model both are ``None``.  ``model``: the model's class name; ``input_shapes``: the shapes
    of the tensors it was given (batch included), ``input_names`` their keyword names (``""``:
    positional) and ``input_dtypes`` their dtypes (:attr:`inputs_text` says all three; the two are
    empty for an MSDNet, given one float32 image); ``exit_names``: the exits' names (a returned
    dict's keys, else ``1``, ``2`` ...); ``wrapper``: what the model given wraps its module in
    (``torch.compile``, ``DataParallel``, ``DistributedDataParallel``; ``""``: none) -- the module
    inside, named by ``model``, is what was counted.

    How it was counted: ``on_values`` -- the forward ran on real tensors (the model reads values,
    or ``real=True`` asked for it), else on shapes alone (nothing of the model's size allocated);
    ``value_reads`` -- where the model read tensor values (:class:`~msdprof.core.dataflow.ValueRead`:
    ``nonzero x3 in blocks.0.moe``), so the figures hold for these inputs; ``same_tensor`` -- exits
    left out, as (name, the earlier exit's name), because the model returned that exit's very
    tensor again (a padded output list); ``idle`` -- modules whose parameters were read by no
    operation (:class:`~msdprof.core.dataflow.Idle`; they did not run on these inputs).

    Counted over ``samples`` inputs (:func:`msdprof.core.exits.count_samples`): where the
    figures differ between them, ``spread`` gives each exit's mean, min and max, and ``exits``
    hold the means rounded to the unit (an exit some samples did not return: over those that did);
    empty where every sample gave the same figures.
    """

    options: Options | None
    convention: str
    input_size: tuple[int, int] | None
    exits: tuple[ExitCost, ...]
    unsupported: tuple[Unsupported, ...] = ()
    model: str = "MSDNet"
    input_shapes: tuple[tuple[int, ...], ...] = ()
    exit_names: tuple[str, ...] = ()
    wrapper: str = ""
    input_names: tuple[str, ...] = ()
    input_dtypes: tuple[str, ...] = ()
    on_values: bool = False
    value_reads: tuple[ValueRead, ...] = ()
    same_tensor: tuple[tuple[str, str], ...] = ()
    idle: tuple[Idle, ...] = ()
    samples: int = 1
    spread: tuple[ExitSpread, ...] = ()

    @property
    def data_dependent(self) -> bool:
        """Whether the model read tensor values while it was counted (:attr:`value_reads`): its
        figures then hold for the inputs given, and may differ on others."""
        return bool(self.value_reads)

    @property
    def inputs_text(self) -> str:
        """``1x3x32x32``, ``1x16:int64, mask=1x16``: the inputs' shapes, each with its keyword name
        and its dtype (float32 unsaid)."""
        return shapes_text(self.input_shapes, self.input_names, self.input_dtypes)

    def __len__(self) -> int:
        return len(self.exits)

    @property
    def named_exits(self) -> bool:
        """Whether the exits have names of their own (a returned dict's keys), not ``1``, ``2`` ..."""
        return bool(self.exit_names) and self.exit_names != tuple(str(k) for k in range(1, len(self) + 1))

    def __getitem__(self, index):  # type: ignore[override]
        return self.exits[index]

    def __iter__(self) -> Iterator[ExitCost]:
        return iter(self.exits)

    @property
    def lazy_gap(self) -> ExitCost | None:
        """The first exit before the last whose lazy count is below :data:`LAZY_GAP` of its eager
        one, else ``None``: the model's forward computes work for later exits before output k is
        complete (IMTA's MSDNet, a Hugging Face model running every layer before its heads), so
        leaving at exit k pays the lazy figure only if the forward stops after computing what
        exit k reads."""
        return next((e for e in self.exits[:-1] if e.lazy_macs < LAZY_GAP * e.macs), None)

    @property
    def total_macs(self) -> int:
        """Everything that ran until the last output was complete (= the last exit's cumulative
        count): for an MSDNet, every block and head."""
        return self.exits[-1].macs

    @property
    def total_params(self) -> int:
        """Parameters read until the last output was complete (an MSDNet: all of them)."""
        return self.exits[-1].params

    def as_dict(self) -> dict[str, Any]:
        """The JSON shape of ``msdprof count --format json``."""
        return {
            "model": self.model,
            "options": self.options.as_dict() if self.options is not None else None,
            "convention": self.convention,
            "input": [3, *self.input_size] if self.input_size is not None else None,
            "inputs": [list(shape) for shape in self.input_shapes],
            "input_names": list(self.input_names),
            "input_dtypes": list(self.input_dtypes),
            "exit_names": list(self.exit_names),
            "exits": [asdict(e) for e in self.exits],
            "total": {"macs": self.total_macs, "params": self.total_params},
            "unsupported": [asdict(u) for u in self.unsupported],
            "wrapper": self.wrapper,
            "counted_on": "values" if self.on_values else "shapes",
            "data_dependent": self.data_dependent,
            "value_reads": [asdict(r) for r in self.value_reads],
            "same_tensor": [{"exit": name, "same_as": earlier} for name, earlier in self.same_tensor],
            "idle": [asdict(i) for i in self.idle],
            "samples": self.samples,
            "spread": [asdict(e) for e in self.spread],
        }


__all__ = ["LAZY_GAP", "ExitCost", "ExitCosts", "ExitSpread", "Spread", "Unsupported"]
