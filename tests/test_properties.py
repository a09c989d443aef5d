"""Property tests over the option space (issue 7): for any valid options, the model builds on meta,
the hook counts equal the closed-form count from the plan, and the decomposition identities hold.

Deterministic in CI: the examples are derived from the test's name (``derandomize``).
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from msdnet import Options, build_model
from msdnet.config import input_size_range
from msdprof import exit_costs

from closed_form import cumulative

SCALES = {
    2: [((1, 2), (1, 2)), ((1, 2), (1, 1))],
    3: [((1, 2, 4), (1, 2, 4)), ((1, 2, 2), (1, 2, 2))],
    4: [((1, 2, 4, 4), (1, 2, 4, 4)), ((1, 2, 4, 8), (1, 2, 4, 4))],
}

PROPERTY = settings(
    max_examples=25, deadline=None, derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@st.composite
def networks(draw):
    """Valid options (nBlocks 1-12, both stepmodes, step/base 1-8, 2-4 scales, both prunes,
    reduction 0 or 0.5, bottleneck on/off, CIFAR or ImageNet) and an input side that works."""
    n_scales = draw(st.integers(2, 4))
    gr, bn = draw(st.sampled_from(SCALES[n_scales]))
    data = draw(st.sampled_from(["cifar10", "cifar100", "ImageNet"]))
    n_blocks = draw(st.integers(1, 12))
    stepmode = draw(st.sampled_from(["even", "lin_grow"]))
    # keep lin_grow networks to a few hundred layers so the suite stays fast
    step = draw(st.integers(1, 8 if stepmode == "even" or n_blocks <= 6 else 2))
    options = Options(
        nBlocks=n_blocks, stepmode=stepmode, step=step, base=draw(st.integers(1, 8)),
        nChannels=draw(st.sampled_from([8, 16, 32])), growthRate=draw(st.sampled_from([4, 6, 8])),
        grFactor=gr, bnFactor=bn, prune=draw(st.sampled_from(["max", "min"])),
        reduction=draw(st.sampled_from([0.0, 0.5])), bottleneck=draw(st.booleans()), data=data,
    )
    low, high = input_size_range(options)
    side = draw(st.integers(low, min(high, low + 16)))
    return options, side


@PROPERTY
@given(networks())
def test_model_builds_on_meta_with_the_plans_parameter_count(network):
    options, side = network
    model = build_model(options, side, device="meta")
    assert all(p.is_meta for p in model.parameters())
    assert sum(p.numel() for p in model.parameters()) == cumulative(model.plan)[-1][1]


@PROPERTY
@given(networks())
def test_hook_counts_equal_the_closed_form_count(network):
    options, side = network
    costs = exit_costs(options, input_size=side)
    expected = cumulative(build_model(options, side, device="meta").plan)
    assert [(e.macs, e.params) for e in costs] == expected


@PROPERTY
@given(networks())
def test_decomposition_identities_hold(network):
    options, side = network
    costs = exit_costs(options, input_size=side)
    heads_before = 0
    for k, e in enumerate(costs):
        previous = costs[k - 1].macs if k else 0
        assert e.macs == previous + e.block_macs + e.head_macs
        assert e.direct_macs == e.macs - heads_before
        heads_before += e.head_macs


def _cli_arguments(options: Options, side: int) -> list[str]:
    args = ["count", "--format", "json", "--input-size", str(side)]
    for name, value in options.as_dict().items():
        args += [f"--{name}", str(value).lower() if isinstance(value, bool) else str(value)]
    return args


@settings(PROPERTY, max_examples=10)
@given(networks())
def test_cli_json_equals_the_api(network):
    import contextlib
    import io
    import json

    from msdprof.cli import main

    options, side = network
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(_cli_arguments(options, side)) == 0
    assert json.loads(out.getvalue()) == exit_costs(options, input_size=side).as_dict()
