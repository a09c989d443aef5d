"""Per-exit costs: the authors' figures to the unit, independent counters, and the decomposition
(SPEC §2)."""

from __future__ import annotations

import pytest
import torch
from fvcore.nn import FlopCountAnalysis
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from msdnet import OptionError, Options, PRESETS, build_model
from msdprof import exit_costs
from msdprof.analysis.compare import KeepAlive
from msdprof.core.exits import Unsupported, count_model
from msdprof.core.dataflow import count_modules


def test_cumulative_ops_equal_the_authors_counter(reference):
    costs = exit_costs(Options(**reference["options"]))
    assert [e.macs for e in costs] == reference["ops"]


def test_cumulative_params_equal_the_authors_counter(reference):
    costs = exit_costs(Options(**reference["options"]))
    assert [e.params for e in costs] == reference["params"]


def test_preset_name_options_object_and_keywords_give_the_same_costs():
    by_name = exit_costs("cifar10-batch")
    by_object = exit_costs(PRESETS["cifar10-batch"])
    by_keywords = exit_costs(nBlocks=7, stepmode="lin_grow", step=1, base=1, nChannels=16)
    assert by_name == by_object == by_keywords


def test_model_instance_is_counted_as_built():
    model = build_model(PRESETS["cifar100-batch"], device="meta")
    assert exit_costs(model) == exit_costs("cifar100-batch")


def test_model_instance_with_options_is_rejected():
    model = build_model(PRESETS["cifar100-batch"], device="meta")
    with pytest.raises(OptionError, match="counted as built"):
        exit_costs(model, nBlocks=3)


def test_a_built_model_takes_the_input_size_it_was_built_for():
    model = build_model(PRESETS["cifar100-batch"], device="meta")
    assert exit_costs(model, input_size="3x32x32") == exit_costs(model, input_size=32) == exit_costs(model)


def test_a_built_model_refuses_another_input_size():
    model = build_model(PRESETS["cifar100-batch"], device="meta")
    with pytest.raises(OptionError, match="input-size 40: this MSDNet is built for 3x32x32 images"):
        exit_costs(model, input_size=40)


def test_count_model_takes_only_an_msdnet():
    with pytest.raises(OptionError, match=r"^model Linear: must be an msdnet.MSDNet \(its layer plan is needed\)$"):
        count_model(nn.Linear(2, 2))


def test_another_model_needs_an_input_size_or_inputs():
    with pytest.raises(OptionError, match=r"^input-size missing: Linear is not an MSDNet msdprof built: "
                                          r"give the sizes of its inputs \(--input-size, input_size= in Python"):
        exit_costs(nn.Linear(2, 2))


def test_unknown_convention_is_rejected():
    with pytest.raises(OptionError, match="did you mean 'macs'"):
        exit_costs(convention="mac")


def test_exit_layers_are_the_plans():
    assert [e.layer for e in exit_costs("cifar10-batch")] == [1, 3, 6, 10, 15, 21, 28]


# --- independent counters ------------------------------------------------------------------------

SMALL = {
    "cifar": Options(nBlocks=3, stepmode="lin_grow", step=1, base=2, nChannels=8, growthRate=4),
    "imagenet": Options(nBlocks=2, step=1, base=2, nChannels=8, growthRate=4, data="ImageNet",
                        grFactor="1-2-4-4", bnFactor="1-2-4-4"),
    "prune-min": Options(nBlocks=3, step=2, base=2, nChannels=8, growthRate=4, prune="min"),
}


@pytest.fixture(params=sorted(SMALL))
def small_model(request):
    """A real CPU model of one SMALL config, in eval mode, and a zero image of its input size."""
    model = build_model(SMALL[request.param]).eval()
    return model, torch.zeros(1, 3, *model.plan.input_size)


def test_macs_convention_equals_fvcore_conv_and_linear(small_model):
    model, x = small_model
    for e in exit_costs(model, convention="macs"):
        analysis = FlopCountAnalysis(KeepAlive(model, e.exit), x)
        analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
        by_op = analysis.by_operator()
        assert e.macs == by_op["conv"] + by_op["linear"], f"exit {e.exit}"


class LogitsOfFirstExits(nn.Module):
    """Exits 1..k's logits only: fvcore's JIT trace drops every map no returned logit depends on,
    which is exactly lazy evaluation — an oracle for ``lazy_macs`` built by other means."""

    def __init__(self, model: nn.Module, k: int):
        super().__init__()
        self.model, self.k = model, k

    def forward(self, x):
        return torch.cat(self.model(x, exits=self.k), dim=1)


def test_lazy_macs_equal_fvcore_on_the_logits_alone(small_model):
    model, x = small_model
    for e in exit_costs(model, convention="macs"):
        analysis = FlopCountAnalysis(LogitsOfFirstExits(model, e.exit), x)
        analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
        by_op = analysis.by_operator()
        assert e.lazy_macs == by_op["conv"] + by_op["linear"], f"exit {e.exit}"


def test_flops_convention_equals_torch_flop_counter(small_model):
    model, x = small_model
    for e in exit_costs(model, convention="flops"):
        with FlopCounterMode(display=False) as counter:
            model(x, exits=e.exit)
        assert e.macs == counter.get_total_flops(), f"exit {e.exit}"


def test_flops_are_twice_macs():
    macs = exit_costs("imagenet-step4", convention="macs")
    flops = exit_costs("imagenet-step4", convention="flops")
    assert [2 * e.macs for e in macs] == [e.macs for e in flops]


def test_meta_counts_equal_real_cpu_counts():
    assert exit_costs("cifar10-anytime", device="cpu") == exit_costs("cifar10-anytime", device="meta")


# --- decomposition -------------------------------------------------------------------------------

CONFIGS = [
    dict(nBlocks=1),
    dict(nBlocks=4, step=2, base=3),
    dict(nBlocks=5, stepmode="lin_grow", step=2, base=1, prune="min"),
    dict(nBlocks=6, step=1, base=1, reduction=0),
    dict(nBlocks=3, step=3, base=2, bottleneck=False, data="cifar100"),
    dict(nBlocks=4, step=1, base=2, grFactor="1-2", bnFactor="1-1", input_size=24),  # 2 scales: 9..24 px
    dict(nBlocks=3, step=2, base=2, data="ImageNet", grFactor="1-2-4-4", bnFactor="1-2-4-4", nChannels=16,
         growthRate=8),
    dict(nBlocks=8, stepmode="lin_grow", step=1, base=2, prune="min", reduction=0.5),
]


@pytest.fixture(params=CONFIGS, ids=lambda c: ",".join(f"{k}={v}" for k, v in c.items()))
def costs(request):
    return exit_costs(**request.param)


def test_cumulative_adds_block_and_head_to_the_previous_exit(costs):
    previous = (0, 0)
    for e in costs:
        assert e.macs == previous[0] + e.block_macs + e.head_macs
        assert e.params == previous[1] + e.block_params + e.head_params
        previous = (e.macs, e.params)


def test_direct_is_cumulative_less_the_earlier_heads(costs):
    for e in costs:
        earlier = costs[: e.exit - 1]
        assert e.direct_macs == e.macs - sum(x.head_macs for x in earlier)
        assert e.direct_params == e.params - sum(x.head_params for x in earlier)


def test_last_exit_params_are_all_the_models_parameters(costs):
    model = build_model(costs.options, costs.input_size, device="meta")
    assert costs.total_params == sum(p.numel() for p in model.parameters())


# --- the counter itself --------------------------------------------------------------------------


def test_counting_leaves_the_model_as_it_was():
    model = build_model(PRESETS["cifar10-batch"], device="meta")
    before = {name: (set(vars(m)), len(m._forward_hooks), len(m._forward_pre_hooks))
              for name, m in model.named_modules()}
    state = set(model.state_dict())
    exit_costs(model)
    after = {name: (set(vars(m)), len(m._forward_hooks), len(m._forward_pre_hooks))
             for name, m in model.named_modules()}
    assert after == before
    assert set(model.state_dict()) == state


def test_hooks_are_removed_when_the_forward_fails():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Linear(5, 5))  # the Linear gets a wrong shape
    with pytest.raises(RuntimeError):
        count_modules(model, torch.zeros(1, 3, 8, 8))
    assert all(not m._forward_hooks for m in model.modules())


def test_module_types_without_a_rule_are_reported_not_zeroed():
    model = nn.Sequential(nn.Conv2d(3, 4, 3, bias=False), nn.Softplus(), nn.Softplus())
    counts = count_modules(model, torch.zeros(1, 3, 8, 8))
    assert counts.unsupported == {"Softplus": 2}
    assert counts.total("macs") == 3 * 4 * 9 * 6 * 6


def test_exit_costs_lists_unsupported_modules_of_a_modified_model():
    model = build_model(PRESETS["cifar100-batch"], device="meta")
    model.classifiers[0].features[0][2] = nn.Softplus()
    assert exit_costs(model).unsupported == (Unsupported("Softplus", 1, (1,)),)


@pytest.mark.parametrize("module, shape, expected", [
    # Conv2d: Cin/groups * Cout * kh * kw * Hout * Wout (bias adds nothing): 4/2 * 6 * 3*3 * 6*6
    (nn.Conv2d(4, 6, 3, groups=2), (1, 4, 8, 8), dict(msdnet=2 * 6 * 9 * 36, macs=2 * 6 * 9 * 36)),
    # Linear: in*out + out in msdnet, in*out in macs
    (nn.Linear(10, 3), (1, 10), dict(msdnet=33, macs=30)),
    # ReLU: input elements
    (nn.ReLU(), (1, 2, 4, 4), dict(msdnet=32, macs=0)),
    # pooling: C * Hout * Wout * k*k
    (nn.AvgPool2d(2), (1, 3, 4, 4), dict(msdnet=3 * 2 * 2 * 4, macs=0)),
    (nn.MaxPool2d(3, 2, 1), (1, 2, 8, 8), dict(msdnet=2 * 4 * 4 * 9, macs=0)),
    (nn.AdaptiveAvgPool2d(1), (1, 5, 3, 3), dict(msdnet=45, macs=0)),
    (nn.BatchNorm2d(3), (1, 3, 4, 4), dict(msdnet=0, macs=0)),
])
def test_rules_per_module_type(module, shape, expected):
    counts = count_modules(nn.Sequential(module).eval(), torch.zeros(shape))
    assert {c: counts.total(c) for c in expected} == expected


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_without_cuda_is_one_option_error():
    with pytest.raises(OptionError, match=r"^device cuda: CUDA is not available on this machine"):
        exit_costs("cifar10-batch", device="cuda")


def test_a_convention_that_is_not_a_name_is_refused():
    with pytest.raises(OptionError, match=r"^convention macs: must be one of msdnet, macs, flops \(a name, not a list\)$"):
        exit_costs("cifar10-batch", convention=["macs"])
