"""`msdprof.core.plan_costs`: per-exit costs from the layer plan alone equal what the forward hooks count
on the built model (`exit_costs`, the reference method), in every field of `ExitCost` and every
convention -- on every preset, over the option space (hypothesis), on the authors' reference
figures (tests/data) and on the independent closed form of tests/closed_form.py.

Deterministic in CI: the examples are derived from the test's name (``derandomize``)."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from torch import nn

from msdnet import OptionError, Options, PRESETS, build_model, build_plan
from msdnet.plan import input_size_range
from msdprof import exit_costs
from msdprof.core.counting import CONVENTIONS
from msdprof.core.exits import count_model
from msdprof.core.plan_costs import options_costs, plan_costs, plan_costs_all

from closed_form import cumulative, lazy_cumulative


@pytest.mark.parametrize("convention", list(CONVENTIONS))
@pytest.mark.parametrize("name", list(PRESETS))
def test_every_preset_costs_what_the_hooks_count(name, convention):
    assert plan_costs(build_plan(PRESETS[name]), convention) == exit_costs(name, convention=convention)


def test_cumulative_ops_and_params_equal_the_authors_counter(reference):
    costs = plan_costs(build_plan(Options(**reference["options"])))
    assert [e.macs for e in costs] == reference["ops"]
    assert [e.params for e in costs] == reference["params"]


def test_conventions_relate_as_the_counting_rules_say():
    costs = plan_costs_all(build_plan(PRESETS["cifar10-batch"]))
    for macs, flops in zip(costs["macs"], costs["flops"]):
        assert flops.macs == 2 * macs.macs and flops.lazy_macs == 2 * macs.lazy_macs
        assert flops.params == macs.params
    for msdnet, macs in zip(costs["msdnet"], costs["macs"]):
        assert msdnet.macs > macs.macs  # + ReLU elements, pooling windows, Linear biases


def test_options_costs_takes_what_exit_costs_takes():
    assert options_costs("cifar10-batch", nBlocks=3, convention="macs", input_size=30) == exit_costs(
        "cifar10-batch", nBlocks=3, convention="macs", input_size=30)
    assert options_costs() == exit_costs()


def test_no_module_is_built(monkeypatch):
    built = []
    original = nn.Module.__init__

    def spy(self, *args, **kwargs):
        built.append(type(self).__name__)
        original(self, *args, **kwargs)

    monkeypatch.setattr(nn.Module, "__init__", spy)
    options_costs("imagenet-step4")
    assert built == []


def test_an_unknown_convention_is_an_option_error():
    with pytest.raises(OptionError, match="did you mean 'macs'"):
        plan_costs(build_plan(PRESETS["cifar10-batch"]), "mac")


def test_an_input_the_plan_refuses_is_refused_as_exit_costs_refuses_it():
    with pytest.raises(OptionError) as plan_error:
        options_costs("cifar10-batch", input_size=8)
    with pytest.raises(OptionError) as hooks_error:
        exit_costs("cifar10-batch", input_size=8)
    assert str(plan_error.value) == str(hooks_error.value)


# --- over the option space -----------------------------------------------------------------------

PROPERTY = settings(
    max_examples=40, deadline=None, derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


@st.composite
def networks(draw):
    """Any options the network takes -- 1 to 4 scales with any factors, any nChannels and
    growthRate, reductions from 0 to 1, both prunes and stepmodes, bottleneck or not, CIFAR or
    ImageNet -- up to 40 layers (so that the hooks stay quick), and any input height and width the
    plan takes (not only square ones)."""
    n_scales = draw(st.integers(1, 4))
    factors = st.lists(st.integers(1, 4), min_size=n_scales, max_size=n_scales).map(tuple)
    n_blocks = draw(st.integers(1, 6))
    stepmode = draw(st.sampled_from(["even", "lin_grow"]))
    step = draw(st.integers(0 if n_blocks == 1 else 1, 4))
    base = draw(st.integers(1, 6))
    layers = base + sum(step if stepmode == "even" else step * i + 1 for i in range(1, n_blocks))
    assume(layers <= 40)
    try:
        options = Options(
            nBlocks=n_blocks, stepmode=stepmode, step=step, base=base,
            nChannels=draw(st.integers(1, 24)), growthRate=draw(st.integers(1, 12)),
            grFactor=draw(factors), bnFactor=draw(factors), prune=draw(st.sampled_from(["max", "min"])),
            reduction=draw(st.sampled_from([0.0, 0.25, 0.5, 0.75, 1.0]) | st.floats(0, 1)),
            bottleneck=draw(st.booleans()), data=draw(st.sampled_from(["cifar10", "cifar100", "ImageNet"])),
        )
    except OptionError:
        assume(False)
    low, high = input_size_range(options)
    sides = st.integers(low, min(high, low + 40))
    return options, (draw(sides), draw(sides))


@PROPERTY
@given(networks())
def test_every_field_in_every_convention_equals_what_the_hooks_count(network):
    options, size = network
    plan = build_plan(options, size)
    model = build_model(options, size, device="meta")
    by_plan = plan_costs_all(plan)
    assert set(by_plan) == set(CONVENTIONS)
    for convention in CONVENTIONS:
        assert by_plan[convention] == count_model(model, convention), convention


@PROPERTY
@given(networks())
def test_cumulative_and_lazy_costs_equal_the_closed_form(network):
    options, size = network
    plan = build_plan(options, size)
    costs = plan_costs(plan)
    assert [(e.macs, e.params) for e in costs] == cumulative(plan)
    assert [(e.lazy_macs, e.lazy_params) for e in costs] == lazy_cumulative(plan)
