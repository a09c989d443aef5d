"""Per-exit costs of early-exit networks msdprof did not build (SPEC section 4, issue 12).

The oracles are independent of msdprof: hand counts on the tiniest model, the authors' way of
counting (``tests/authors_op_counter.py``: running totals read at every Linear) for the eager
``msdnet`` figures, PyTorch's FlopCounterMode on a forward stopped at exit k for eager ``flops``, and
fvcore's JIT trace of outputs 1..k (a trace drops work no output reads: exactly lazy) for ``macs``.
"""

from __future__ import annotations

import dataclasses

import pytest
import torch
from fvcore.nn import FlopCountAnalysis
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from msdnet import OptionError, PRESETS, build_model
from msdprof import exit_costs
from msdprof.core.exits import Unsupported, count_model, count_network

from authors_op_counter import running_totals
from early_exit_models import MODELS, BranchyDict, Gated, SDNResNet, SharedBlock, TwoExitTiny, WithAuxiliary


def image(side: int = 16) -> torch.Tensor:
    return torch.zeros(1, 3, side, side)


def outputs_of(result) -> list[torch.Tensor]:
    return list(result.values()) if isinstance(result, dict) else list(result)


@pytest.fixture(params=sorted(MODELS))
def model(request):
    torch.manual_seed(0)
    return MODELS[request.param]().eval()


# --- the tiniest model, by hand ---------------------------------------------------------------------

# TwoExitTiny on 1x3x4x4: conv1 3*4*9*16 = 1728 multiply-adds, its ReLU 64 elements, each head
# 64*2 = 128 multiply-adds + 2 bias adds, conv2 4*4*9*16 = 2304; parameters conv1 108, conv2 144,
# each head 130.
TINY = [
    dict(exit=1, layer=None, macs=1922, params=238, block_macs=1792, block_params=108, head_macs=130,
         head_params=130, direct_macs=1922, direct_params=238, lazy_macs=1922, lazy_params=238,
         idle_params=0, uncounted_macs=0),
    dict(exit=2, layer=None, macs=4356, params=512, block_macs=2304, block_params=144, head_macs=130,
         head_params=130, direct_macs=4226, direct_params=382, lazy_macs=4356, lazy_params=512,
         idle_params=0, uncounted_macs=0),
]


def test_every_field_of_the_tiniest_model_equals_the_hand_count():
    costs = exit_costs(TwoExitTiny(), input_size=(3, 4, 4), convention="msdnet")
    assert [dataclasses.asdict(e) for e in costs] == TINY


def test_macs_convention_of_the_tiniest_model_counts_conv_and_linear_only():
    costs = exit_costs(TwoExitTiny(), input_size=(3, 4, 4), convention="macs")
    assert [e.macs for e in costs] == [1728 + 128, 1728 + 128 + 2304 + 128]


# --- independent counters, per exit ----------------------------------------------------------------


def test_eager_msdnet_figures_are_the_authors_running_totals_at_each_head(model):
    readings = running_totals(model, image())
    costs = exit_costs(model, input_size=16, convention="msdnet")
    assert [(e.macs, e.params) for e in costs] == readings


def test_eager_flops_equal_flop_counter_mode_on_the_forward_stopped_at_exit_k(model):
    for e in exit_costs(model, input_size=16, convention="flops"):
        with FlopCounterMode(display=False) as counter, torch.no_grad():
            model(image(), exits=e.exit)
        assert e.macs == counter.get_total_flops(), f"exit {e.exit}"


class FirstOutputs(nn.Module):
    """Outputs 1..k of a model, joined: what fvcore's trace keeps is what they read."""

    def __init__(self, model: nn.Module, k: int):
        super().__init__()
        self.model, self.k = model, k

    def forward(self, x):
        return torch.cat(outputs_of(self.model(x))[: self.k], dim=1)


def test_lazy_macs_equal_fvcore_on_outputs_1_to_k(model):
    for e in exit_costs(model, input_size=16, convention="macs"):
        analysis = FlopCountAnalysis(FirstOutputs(model, e.exit), image())
        analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
        by_op = analysis.by_operator()
        assert e.lazy_macs == by_op["conv"] + by_op["linear"], f"exit {e.exit}"


def test_block_and_head_make_up_what_each_exit_adds(model):
    costs = exit_costs(model, input_size=16, convention="msdnet")
    previous = (0, 0)
    for e in costs:
        assert (e.block_macs + e.head_macs, e.block_params + e.head_params) == (
            e.macs - previous[0], e.params - previous[1])
        previous = (e.macs, e.params)


def test_the_same_model_on_the_meta_device_counts_the_same(model):
    real = exit_costs(model, input_size=16)
    assert exit_costs(model.to("meta"), input_size=16).exits == real.exits


# --- shapes of networks -----------------------------------------------------------------------------


def test_sdn_heads_are_the_internal_classifiers_and_the_final_fc():
    model = SDNResNet().eval()
    costs = exit_costs(model, input_size=16, convention="msdnet")
    # internal classifiers: adaptive pool (input elements) + Linear (in*out + out)
    assert costs[0].head_macs == 8 * 16 * 16 + 8 * 10 + 10
    assert costs[1].head_macs == 16 * 8 * 8 + 16 * 10 + 10
    # the last exit's head is the fc call; its pooling ran in the model's forward, before it
    assert costs[2].head_macs == 32 * 10 + 10


def test_dict_outputs_are_exits_in_insertion_order_with_their_names():
    costs = exit_costs(BranchyDict().eval(), input_size=16, convention="msdnet")
    assert costs.exit_names == ("early", "final")
    assert costs.as_dict()["exit_names"] == ["early", "final"]


def test_eager_waits_for_the_whole_trunk_where_lazy_reads_only_the_first_half():
    model = BranchyDict().eval()
    costs = exit_costs(model, input_size=16, convention="msdnet")
    trunk_second = 8 * 16 * 9 * 8 * 8 + 16 * 8 * 8  # conv 3x3/2 8->16 on 16x16, its ReLU
    assert costs[0].macs - costs[0].lazy_macs == trunk_second
    assert costs[1].lazy_macs == costs[1].macs


def test_a_shared_module_counts_its_operations_per_call_and_its_parameters_once():
    model = SharedBlock().eval()
    costs = exit_costs(model, input_size=16, convention="msdnet")
    block = 8 * 8 * 9 * 16 * 16 + 8 * 16 * 16  # conv 3x3 8->8 on 16x16 and its ReLU
    head = 8 * 16 * 16 + 8 * 10 + 10
    assert costs[1].macs - costs[0].macs == block + head
    assert costs[1].params == costs[0].params == sum(p.numel() for p in model.parameters())
    assert (costs[1].block_params, costs[1].head_params) == (0, 0)


def test_outputs_picks_the_exits_out_of_a_richer_return_value():
    torch.manual_seed(0)
    wrapped = WithAuxiliary().eval()
    costs = exit_costs(wrapped, input_size=16, outputs=lambda out: out[0])
    assert costs.exits == exit_costs(wrapped.inner, input_size=16).exits


def test_explicit_inputs_are_used_as_given():
    model = SDNResNet().eval()
    assert exit_costs(model, inputs=torch.zeros(1, 3, 16, 16)).exits == exit_costs(model, input_size=16).exits
    assert exit_costs(model, inputs=(torch.zeros(1, 3, 16, 16),)).input_shapes == ((1, 3, 16, 16),)


def test_an_msdnet_counted_as_any_model_gives_the_msdnet_figures():
    msdnet = build_model(PRESETS["cifar10-batch"], device="meta")
    as_any = count_network(msdnet, input_size=32, convention="msdnet")
    assert [dataclasses.replace(e, layer=None) for e in count_model(msdnet)] == list(as_any)


# --- nothing uncounted in silence -------------------------------------------------------------------


def test_a_module_type_without_a_rule_is_listed_with_the_exits_it_feeds():
    # the msdnet convention counts module calls by the authors' rules only: the einsum's 8*8*8*8
    # multiply-adds (its kernel is a bmm) are not counted there, and said so with their amount;
    # Softplus has no rule and did no multiply-add
    costs = exit_costs(Gated().eval(), input_size=8, convention="msdnet")
    assert costs.unsupported == (Unsupported("Softplus", 1, (2,), 0), Unsupported("einsum", 1, (2,), 8 ** 4))
    assert [e.uncounted_macs for e in costs] == [0, 8 ** 4]


def test_a_functional_op_with_no_rule_counts_its_kernels_multiply_adds_in_macs():
    costs = exit_costs(Gated().eval(), input_size=8, convention="macs")
    without = exit_costs(Gated().eval(), input_size=8, convention="msdnet")
    assert costs.unsupported == ()
    head2 = 8 * 10  # its pooling is free in macs; its Linear 8 -> 10
    assert costs[1].macs - costs[0].macs == 8 ** 4 + head2
    assert without.unsupported[-1].kernel_macs == 8 ** 4


def test_functional_conv_and_matmul_count_in_macs_and_are_free_in_msdnet():
    class Functional(nn.Module):
        def __init__(self):
            super().__init__()
            self.weight = nn.Parameter(torch.ones(4, 3, 3, 3))
            self.proj = nn.Parameter(torch.ones(4 * 6 * 6, 5))

        def forward(self, x):
            h = torch.nn.functional.conv2d(x, self.weight)
            return [h.flatten(1) @ self.proj, h.sum(dim=(2, 3))]

    macs = exit_costs(Functional(), input_size=8, convention="macs")
    assert macs[0].macs == 3 * 9 * 4 * 6 * 6 + 144 * 5
    assert macs[0].params == 4 * 27 + 144 * 5
    assert exit_costs(Functional(), input_size=8, convention="msdnet")[0].macs == 0


# --- the model is left as it was ------------------------------------------------------------------


def test_counting_restores_each_submodules_mode_and_leaves_no_hooks():
    model = SDNResNet().train()
    model.stem.eval()
    exit_costs(model, input_size=16)
    assert model.training and not model.stem.training and model.stages[0].training
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in model.modules())


def test_a_model_runs_in_eval_mode_while_counted():
    seen = []

    class Probe(TwoExitTiny):
        def forward(self, x, exits=None):
            seen.append(self.training)
            return super().forward(x, exits)

    exit_costs(Probe().train(), input_size=(3, 4, 4))
    assert seen == [False]  # one pass, on shapes


# --- errors -----------------------------------------------------------------------------------------


def test_a_model_returning_one_tensor_is_refused():
    with pytest.raises(OptionError, match=r"^outputs missing: Sequential returns 1 output \(a tensor\): an "
                                          r"early-exit network returns one output per exit; pick one "
                                          r"tensor per exit with --outputs \(outputs= in Python\)"):
        exit_costs(nn.Sequential(nn.Flatten(), nn.Linear(3 * 4 * 4, 2)), input_size=(3, 4, 4))


def test_outputs_that_pick_no_tensor_are_refused():
    with pytest.raises(OptionError, match=r"^outputs <lambda>: WithAuxiliary returns exit 1 as a list of 3, not a tensor"):
        exit_costs(WithAuxiliary().eval(), input_size=16, outputs=lambda out: [out[0]])


def test_inputs_of_the_wrong_shape_name_the_shape_and_the_models_complaint():
    with pytest.raises(OptionError, match=r"^input-size 1x1x16x16: SDNResNet failed on it: RuntimeError: "):
        exit_costs(SDNResNet().eval(), input_size=(1, 16, 16))


@pytest.mark.parametrize("size", [0, -3, (3, 0, 4), (1, 2, 3, 4), "3xax3", 10**9, 2.5])
def test_a_bad_input_size_is_refused(size):
    with pytest.raises(OptionError, match=r"^input-size .*: must be (one image: )?a side, HxW or CxHxW"):
        exit_costs(TwoExitTiny(), input_size=size)
