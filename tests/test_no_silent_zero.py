"""No silent zero, by construction (issue 23): what ran multiply-adds a convention did not count is
listed, whatever the reason -- a module with no rule, a functional op with no rule, a rule that
missed work, a fused kernel no formula measures -- in the ``msdnet``, ``macs`` and ``flops``
conventions alike; every ``torch.nn`` module type is counted by a rule or accounted for; the root
is never a leaf; a rule through a base class never swallows children; wrappers are counted through
the module they wrap."""

from __future__ import annotations

import inspect
import tempfile

import pytest
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from msdnet import PRESETS, OptionError, build_model
from msdprof import count_modules, exit_costs
from msdprof.core.counting import rule_for
from msdprof.core.exits import Unsupported
from msdprof.render.formatting import render_table
from zoo.convnets import BatchNormAct2d, SDNResNet56

CONVENTIONS = ["msdnet", "macs", "flops"]


def two_exits(layer: nn.Module) -> nn.Module:
    """``layer`` between two exits: exit 1 reads its input's projection, exit 2 its output."""

    class TwoExits(nn.Module):
        def __init__(self):
            super().__init__()
            self.first = nn.Linear(4, 4)
            self.layer = layer

        def forward(self, x):
            h = self.first(x)
            return [h, self.layer(h)]

    return TwoExits()


# --- every torch.nn module type ---------------------------------------------------------------------

#: Types with no rule that contract nothing (torch's FLOP formulas see none of their kernels):
#: activations, dropout, normalisation, padding, non-average pooling, reshaping, embeddings, losses
#: and distances of elementwise arithmetic.
NO_MATRIX_PRODUCTS = {
    "CELU", "ELU", "GLU", "Hardshrink", "Hardtanh", "LogSigmoid", "LogSoftmax", "Mish", "PReLU", "RReLU",
    "SELU", "Softmax2d", "Softmin", "Softplus", "Softshrink", "Softsign", "Tanhshrink", "Threshold",
    "FeatureAlphaDropout", "InstanceNorm1d", "InstanceNorm2d", "InstanceNorm3d", "LazyBatchNorm1d",
    "LazyBatchNorm2d", "LazyBatchNorm3d", "LazyInstanceNorm1d", "LazyInstanceNorm2d", "LazyInstanceNorm3d",
    "LocalResponseNorm", "CrossMapLRN2d", "RMSNorm", "SyncBatchNorm", "CircularPad1d", "CircularPad2d",
    "CircularPad3d", "ConstantPad1d", "ConstantPad2d", "ConstantPad3d", "ReflectionPad1d",
    "ReflectionPad2d", "ReflectionPad3d", "ReplicationPad1d", "ReplicationPad2d", "ReplicationPad3d",
    "ZeroPad1d", "ZeroPad2d", "ZeroPad3d", "FractionalMaxPool2d", "FractionalMaxPool3d", "LPPool1d",
    "LPPool2d", "LPPool3d", "MaxUnpool1d", "MaxUnpool2d", "MaxUnpool3d", "ChannelShuffle", "PixelShuffle",
    "PixelUnshuffle", "Fold", "Unfold", "Embedding", "EmbeddingBag", "CosineSimilarity", "PairwiseDistance",
    "BCELoss", "BCEWithLogitsLoss", "CTCLoss", "CosineEmbeddingLoss", "CrossEntropyLoss", "GaussianNLLLoss",
    "HingeEmbeddingLoss", "HuberLoss", "KLDivLoss", "L1Loss", "MSELoss", "MarginRankingLoss",
    "MultiLabelMarginLoss", "MultiLabelSoftMarginLoss", "MultiMarginLoss", "NLLLoss", "NLLLoss2d",
    "PoissonNLLLoss", "SmoothL1Loss", "SoftMarginLoss", "TripletMarginLoss",
    "TripletMarginWithDistanceLoss",
}
#: Types counted through their children (fused fast paths are seen by the dispatch-level view:
#: see test_a_fused_transformer_layer_is_listed_not_counted_as_zero), and the bases and containers.
THROUGH_CHILDREN = {
    "Transformer", "TransformerEncoder", "TransformerDecoder", "TransformerEncoderLayer",
    "TransformerDecoderLayer", "AdaptiveLogSoftmaxWithLoss", "Sequential", "ModuleList", "ModuleDict",
    "ParameterList", "ParameterDict", "Container", "Module", "RNNCellBase",
}
#: Wrappers, counted through the module they wrap.
WRAPPERS = {"DataParallel"}
#: Leaves that multiply matrices with no rule: listed when they run (the dispatch view sees it).
LISTED_WHEN_RUN = {"LinearCrossEntropyLoss"}


def torch_nn_types() -> dict[str, type]:
    return {name: c for name, c in vars(nn).items() if inspect.isclass(c) and issubclass(c, nn.Module)}


def test_every_torch_nn_module_type_has_a_rule_or_is_accounted_for():
    without_rule = {name for name, c in torch_nn_types().items() if rule_for(c.__new__(c)) is None}
    accounted = NO_MATRIX_PRODUCTS | THROUGH_CHILDREN | WRAPPERS | LISTED_WHEN_RUN
    assert without_rule - accounted == set(), "a torch.nn type nobody decided how to count"
    assert accounted - without_rule == set(), "a type listed here now has a rule: take it off"


def built_and_run(cls: type) -> int | None:
    """Torch's FLOP formulas on one call of a default instance (or of ``cls(4)``) on a small input;
    ``None`` when no such call works."""
    for args in ((), (4,), (4, 4)):
        for inputs in ((torch.rand(2, 4, 4, 4),), (torch.rand(2, 4),), (torch.rand(2, 4), torch.rand(2, 4)),
                       (torch.zeros(2, 4, dtype=torch.long),)):
            try:
                module = cls(*args).eval()
                with FlopCounterMode(display=False) as counter, torch.no_grad():
                    module(*inputs)
            except Exception:  # noqa: BLE001 - another constructor or input, then
                continue
            return counter.get_total_flops()
    return None


def test_the_types_said_to_multiply_no_matrices_do_none_by_torchs_formulas():
    types = torch_nn_types()
    measured = {name: built_and_run(types[name]) for name in sorted(NO_MATRIX_PRODUCTS) if name in types}
    ran = {name: flops for name, flops in measured.items() if flops is not None}
    assert len(ran) >= 50  # most of them build from nothing or one size and take one tensor
    assert {name: flops for name, flops in ran.items() if flops} == {}


# --- the dispatch-level view ------------------------------------------------------------------------


class MatmulLeaf(nn.Module):
    """A leaf with no rule that multiplies matrices: 4 x 4 multiply-adds per row."""

    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(4, 4))

    def forward(self, x):
        return x @ self.weight


def test_a_leaf_with_no_rule_is_listed_in_the_msdnet_convention():
    costs = exit_costs(two_exits(MatmulLeaf()), inputs=torch.zeros(2, 4), convention="msdnet")
    assert costs.unsupported == (Unsupported("MatmulLeaf", 1, (2,), 2 * 4 * 4),)  # 2 rows x (4 x 4)


def test_a_leaf_with_no_rule_counts_its_functional_multiply_adds_in_the_macs_convention():
    costs = exit_costs(two_exits(MatmulLeaf()), inputs=torch.zeros(2, 4), convention="macs")
    assert costs.unsupported == ()
    assert costs[1].macs - costs[0].macs == 2 * 4 * 4  # 2 rows x (4 x 4)


class LinearWithGate(nn.Linear):
    """A Linear subclass (its rule is Linear's) whose forward does a second product its rule misses."""

    def forward(self, x):
        return super().forward(x) @ self.weight


@pytest.mark.parametrize("convention", CONVENTIONS)
def test_a_rule_that_misses_work_is_listed(convention):
    costs = exit_costs(two_exits(LinearWithGate(4, 4)), inputs=torch.zeros(2, 4), convention=convention)
    # its kernels: the Linear's 2 x 4 x 4 and the second product's 2 x 4 x 4, which its rule misses
    assert costs.unsupported == (Unsupported("LinearWithGate", 1, (2,), 2 * (2 * 4 * 4)),)
    assert costs[1].uncounted_macs == (2 if convention == "flops" else 1) * 2 * 4 * 4


class FunctionalBilinear(nn.Module):
    """``F.bilinear``, which has no function rule, runs ``_trilinear``: a kernel no formula measures."""

    def __init__(self):
        super().__init__()
        self.first = nn.Linear(4, 4)
        self.weight = nn.Parameter(torch.ones(3, 4, 4))

    def forward(self, x):
        h = self.first(x)
        return [h, F.bilinear(h, h, self.weight)]


@pytest.mark.parametrize("convention", CONVENTIONS)
def test_an_opaque_kernel_that_nothing_counted_is_listed_not_taken_as_zero(convention):
    costs = exit_costs(FunctionalBilinear(), inputs=torch.zeros(2, 4), convention=convention)
    assert costs.unsupported == (Unsupported("bilinear", 1, (2,), None),)  # no formula: unknown
    assert [e.uncounted_macs for e in costs] == [0, None]


def test_a_transformer_layer_runs_its_children_while_recorded_so_they_are_counted():
    # eval mode without grad would take the fused fast path; the recorder's torch-function mode turns
    # it off (a mode is active), so the attention and Linear children run and are counted
    layer = nn.TransformerEncoderLayer(4, 2, 8, batch_first=True)
    costs = exit_costs(two_exits(layer), inputs=torch.zeros(1, 3, 4), convention="macs")
    tokens = 3
    attention = tokens * 4 * 4 * 4 + 2 * tokens * tokens * 4  # q, k, v, out projections; scores, sum
    mlp = tokens * 4 * 8 * 2
    assert costs.unsupported == ()
    assert costs[1].macs - costs[0].macs == attention + mlp


def test_functional_multiply_adds_are_listed_in_the_msdnet_convention_which_counts_modules_only():
    class Functional(nn.Module):
        def __init__(self):
            super().__init__()
            self.head = nn.Linear(4, 2)
            self.weight = nn.Parameter(torch.ones(4, 4))

        def forward(self, x):
            return [self.head(x), self.head(F.linear(x, self.weight))]

    costs = exit_costs(Functional(), inputs=torch.zeros(1, 4), convention="msdnet")
    assert costs.unsupported == (Unsupported("linear", 1, (2,), 4 * 4),)
    assert exit_costs(Functional(), inputs=torch.zeros(1, 4), convention="macs").unsupported == ()


def test_a_bilinear_layer_is_in1_times_in2_multiply_adds_per_output():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.first = nn.Linear(4, 4)
            self.bilinear = nn.Bilinear(4, 4, 3)

        def forward(self, x):
            h = self.first(x)
            return [h, self.bilinear(h, h)]

    costs = exit_costs(Net(), inputs=torch.zeros(2, 4), convention="msdnet")
    assert costs[1].macs - costs[0].macs == 2 * 3 * (4 * 4) + 2 * 3  # 2 rows x 3 outputs x (16 + bias add)
    assert costs.unsupported == ()


# --- the root and base-class rules ------------------------------------------------------------------


def test_a_model_with_no_children_is_not_one_leaf():
    class Bare(nn.Module):
        def __init__(self):
            super().__init__()
            self.weight = nn.Parameter(torch.ones(4, 4))

        def forward(self, x):
            h = x @ self.weight
            return [h, h @ self.weight]

    costs = exit_costs(Bare(), inputs=torch.zeros(2, 4), convention="macs")
    assert [e.macs for e in costs] == [2 * 16, 2 * 2 * 16]


def test_a_rule_through_a_base_class_does_not_swallow_the_child_that_runs():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 8, 3, padding=1, bias=False)
            self.norm = BatchNormAct2d(8)
            self.heads = nn.ModuleList(nn.Linear(8 * 4 * 4, 2) for _ in range(2))

        def forward(self, x):
            h = self.conv(x)
            return [self.heads[0](h.flatten(1)), self.heads[1](self.norm(h).flatten(1))]

    costs = exit_costs(Net(), input_size=(3, 4, 4), convention="msdnet")
    conv, head = 3 * 9 * 8 * 4 * 4, 128 * 2 + 2
    relu = 8 * 4 * 4  # BatchNormAct2d's act child: one operation an element (the authors' ReLU rule)
    assert [e.macs for e in costs] == [conv + head, conv + head + relu + head]
    assert costs.unsupported == ()


# --- wrappers ---------------------------------------------------------------------------------------


def test_torch_compile_is_counted_through_the_module_it_wraps_and_says_so():
    model = SDNResNet56().eval()
    costs = exit_costs(torch.compile(model), input_size=16)
    assert costs.exits == exit_costs(model, input_size=16).exits
    assert (costs.model, costs.wrapper) == ("SDNResNet56", "torch.compile")
    assert "Counted through the module torch.compile wraps (SDNResNet56)." in " ".join(
        render_table(costs, width=400).split())


def test_data_parallel_is_counted_through_the_module_it_wraps():
    model = SDNResNet56().eval()
    costs = exit_costs(nn.DataParallel(model), input_size=16)
    assert costs.exits == exit_costs(model, input_size=16).exits
    assert costs.as_dict()["wrapper"] == "DataParallel"


def test_distributed_data_parallel_is_counted_through_the_module_it_wraps():
    model = SDNResNet56().eval()
    with tempfile.TemporaryDirectory() as folder:
        dist.init_process_group("gloo", init_method=f"file://{folder}/store", rank=0, world_size=1)
        try:
            costs = exit_costs(nn.parallel.DistributedDataParallel(model), input_size=16)
        finally:
            dist.destroy_process_group()
    assert costs.exits == exit_costs(model, input_size=16).exits
    assert costs.wrapper == "DistributedDataParallel"


@pytest.mark.parametrize("make", [lambda m: torch.jit.script(m), lambda m: torch.jit.trace(m, torch.zeros(1, 3, 16, 16))],
                         ids=["script", "trace"])
def test_a_torchscript_model_is_refused_in_one_line_naming_what_to_pass(make):
    class Plain(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3)

        def forward(self, x):
            return [self.conv(x), self.conv(x) * 2]

    with pytest.raises(OptionError, match=r"^model \w+: is TorchScript \(torch\.jit\.script or trace\), "
                                          r"which cannot be recorded: pass the eager nn\.Module it was made from$"):
        exit_costs(make(Plain().eval()), input_size=16)


def test_count_modules_lists_a_rule_that_misses_work_as_exit_costs_does():
    counts = count_modules(LinearWithGate(4, 4), torch.zeros(2, 4))
    assert counts.unsupported == {"LinearWithGate": 1}  # per-module totals are incomplete: said


def test_count_modules_of_an_msdnet_lists_nothing():
    model = build_model(PRESETS["cifar10-anytime"], device="meta")
    assert count_modules(model, torch.zeros(1, 3, 32, 32, device="meta")).unsupported == {}
