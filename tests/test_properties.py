"""Property tests over the option space (issue 7): for any valid options, the model builds on meta,
the hook counts equal the closed-form count from the plan (eager and lazy), the decomposition
identities hold, the graph matches the plan and the CLI's JSON equals the API.

Deterministic in CI: the examples are derived from the test's name (``derandomize``).
"""

from __future__ import annotations

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from msdnet import Options, build_model
from msdnet.plan import input_size_range
from msdprof import exit_costs, layout_graph

from closed_form import cumulative, lazy_cumulative, needed, pieces

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
    base, prune = draw(st.integers(1, 8)), draw(st.sampled_from(["max", "min"]))
    layers = base + sum(step if stepmode == "even" else step * i + 1 for i in range(1, n_blocks))
    assume(prune == "max" or layers + 1 >= n_scales)  # shorter prune-min networks are rejected
    options = Options(
        nBlocks=n_blocks, stepmode=stepmode, step=step, base=base,
        nChannels=draw(st.sampled_from([8, 16, 32])), growthRate=draw(st.sampled_from([4, 6, 8])),
        grFactor=gr, bnFactor=bn, prune=prune,
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


@PROPERTY
@given(networks())
def test_lazy_counts_equal_the_closed_form_count_of_what_the_exits_read(network):
    options, side = network
    costs = exit_costs(options, input_size=side)
    expected = lazy_cumulative(build_model(options, side, device="meta").plan)
    assert [(e.lazy_macs, e.lazy_params) for e in costs] == expected


@PROPERTY
@given(networks())
def test_lazy_saves_exactly_the_maps_no_exit_up_to_k_reads(network):
    options, side = network
    costs = exit_costs(options, input_size=side)
    plan = build_model(options, side, device="meta").plan
    table = pieces(plan)
    for e in costs:
        computed = {key for key, p in table.items() if (p.head or p.block) <= e.exit}
        skipped = computed - needed(plan, e.exit)
        assert e.macs - e.lazy_macs == sum(table[key].ops for key in skipped)
        assert e.lazy_macs <= e.macs
        assert (e.lazy_macs == e.macs) == (not skipped or all(table[k].ops == 0 for k in skipped))


def _node(key: tuple) -> str:
    """The graph node id of a closed-form piece."""
    kind, *rest = key
    return {"stem": lambda s: f"s{s}/l0", "layer": lambda l, s: f"s{s}/l{l}",
            "transition": lambda l, s: f"t{l}/s{s}", "head": lambda k: f"exit{k}"}[kind](*rest)


@PROPERTY
@given(networks())
def test_graph_has_the_plans_maps_reads_and_costs(network):
    options, side = network
    graph = layout_graph(options, input_size=side)
    table = pieces(build_model(options, side, device="meta").plan)
    assert set(graph.nodes) == {_node(key) for key in table}
    for key, piece in table.items():
        node = graph.nodes[_node(key)]
        assert (node["macs"], node["params"]) == (piece.ops, piece.params), key
        assert set(graph.predecessors(_node(key))) == {_node(r) for r in piece.reads}, key


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
