"""The layer plan against hand-worked examples of the SPEC §1 formulas."""

from __future__ import annotations

import pytest

from msdnet import Options, build_plan, preset
from msdnet.options import has_transition, scales_alive


def scales_per_layer(plan):
    return [len(layer.out_scales) for layer in plan.layers]


# --- layers per block ----------------------------------------------------------------------------


def test_even_steps_are_base_then_step():
    # SPEC: steps[0] = base, steps[i] = step (even). Seed anytime recipe: exits at 4, 6, ..., 22.
    plan = build_plan(preset("cifar10-anytime"))
    assert plan.steps == (4, 2, 2, 2, 2, 2, 2, 2, 2, 2)
    assert plan.exit_layers == (4, 6, 8, 10, 12, 14, 16, 18, 20, 22)


def test_lin_grow_steps_are_step_times_i_plus_one():
    # SPEC: steps[i] = step*i + 1 (lin_grow). Seed batch recipe: exits at 1, 3, 6, 10, ...
    plan = build_plan(preset("cifar10-batch"))
    assert plan.steps == (1, 2, 3, 4, 5, 6, 7)
    assert plan.exit_layers == (1, 3, 6, 10, 15, 21, 28)


def test_lin_grow_with_step_two():
    # steps = [base, 2*1+1, 2*2+1] = [3, 3, 5]
    assert Options(nBlocks=3, stepmode="lin_grow", step=2, base=3).steps == (3, 3, 5)


# --- prune max -----------------------------------------------------------------------------------


def test_prune_max_drops_a_scale_every_interval_layers():
    # L = 22, nScales = 3: interval = ceil(22/3) = 8; outScales = 3 - floor((l-1)/8):
    # layers 1-8 keep 3 scales, 9-16 keep 2, 17-22 keep 1.
    plan = build_plan(preset("cifar10-anytime"))
    assert scales_per_layer(plan) == [3] * 8 + [2] * 8 + [1] * 6


def test_prune_max_input_scales_lag_one_layer():
    # inScales = 3 - floor(max(0, l-2)/8): layer 9 still reads 3 scales, layer 17 reads 2.
    options = preset("cifar10-anytime")
    assert scales_alive(options, 9) == (3, 2)
    assert scales_alive(options, 10) == (2, 2)
    assert scales_alive(options, 17) == (2, 1)
    assert scales_alive(options, 1) == (3, 3)


def test_prune_max_transitions_follow_the_layers_that_drop_a_scale():
    # transitions where inScales > outScales and reduction > 0: after layers 9 and 17.
    assert build_plan(preset("cifar10-anytime")).summary()["transitions_after_layers"] == [9, 17]


def test_prune_max_lin_grow_transitions():
    # L = 28: interval = ceil(28/3) = 10; outScales drops at l-1 = 10 and 20 -> layers 11 and 21.
    plan = build_plan(preset("cifar10-batch"))
    assert [t.after_layer for t in plan.transitions] == [11, 21]
    assert scales_per_layer(plan) == [3] * 10 + [2] * 10 + [1] * 8


def test_prune_max_drops_the_finest_scales():
    plan = build_plan(preset("cifar10-anytime"))
    assert plan.layers[8].out_scales == (1, 2)   # layer 9
    assert plan.layers[16].out_scales == (2,)    # layer 17


def test_no_transitions_when_reduction_is_zero():
    options = Options(nBlocks=10, step=2, base=4, nChannels=16, reduction=0)
    assert build_plan(options).transitions == ()
    assert not has_transition(options, 9)


# --- prune min -----------------------------------------------------------------------------------


PRUNE_MIN = Options(nBlocks=3, stepmode="even", step=2, base=2, nChannels=16, prune="min")


def test_prune_min_keeps_all_scales_until_the_last_layers():
    # L = 6: outScales = min(3, 6-l+1) -> 3, 3, 3, 3, 2, 1; inScales = min(3, 6-l+2) -> 3,3,3,3,3,2
    plan = build_plan(PRUNE_MIN)
    assert scales_per_layer(plan) == [3, 3, 3, 3, 2, 1]
    assert [len(layer.in_scales) for layer in plan.layers] == [3, 3, 3, 3, 3, 2]


def test_prune_min_transitions_at_a_third_and_two_thirds():
    # transitions after layers floor(6/3) = 2 and floor(12/3) = 4
    assert [t.after_layer for t in build_plan(PRUNE_MIN).transitions] == [2, 4]


def test_prune_min_channel_schedule():
    # n: 16 -> 22 -> 28, transition floor(0.5*28) = 14 -> 20 -> 26, transition 13 -> 19 -> 25.
    plan = build_plan(PRUNE_MIN)
    assert [layer.in_channels for layer in plan.layers] == [16, 22, 14, 20, 13, 19]
    assert [(t.in_channels, t.out_channels) for t in plan.transitions] == [(28, 14), (26, 13)]
    # the last exit reads the coarsest scale: 25 * grFactor[2] = 100 channels at 8x8
    last = plan.heads[-1].reads
    assert (last.scale, last.channels, last.height, last.width) == (2, 100, 8, 8)


# --- channels and conv units ---------------------------------------------------------------------


def test_channels_grow_by_growth_rate_times_grfactor():
    # seed recipe, layer 1: n = 16 -> 22 at scale-0 units: 22, 44, 88 channels at 32, 16, 8 pixels.
    layer = build_plan(preset("cifar10-anytime")).layers[0]
    assert [(m.channels, m.height) for m in layer.outputs] == [(22, 32), (44, 16), (88, 8)]


def test_finest_scale_has_one_normal_unit_others_down_and_normal():
    layer = build_plan(preset("cifar10-anytime")).layers[0]
    assert [tuple(u.kind for u in units) for units in layer.units] == [
        ("normal",), ("down", "normal"), ("down", "normal"),
    ]
    # scale 0: normal 16 -> 6, bottleneck width min(16, 1*6) = 6
    (normal,) = layer.units[0]
    assert (normal.in_channels, normal.out_channels, normal.inner) == (16, 6, 6)
    # scale 2: down from scale 1 (32 ch) -> 24/2 = 12, inner min(32, 2*12) = 24;
    #          normal at scale 2 (64 ch) -> 12, inner min(64, 4*12) = 48
    down, normal = layer.units[2]
    assert (down.in_scale, down.in_channels, down.out_channels, down.inner) == (1, 32, 12, 24)
    assert (normal.in_scale, normal.in_channels, normal.out_channels, normal.inner) == (2, 64, 12, 48)


def test_layer_that_drops_a_scale_builds_its_finest_output_from_down_and_normal():
    # layer 9 of the seed recipe: inScales 3 -> outScales 2, finest output scale 1 gets a down
    # unit from scale 0 (bnFactor[0]) and a normal unit at scale 1.
    layer = build_plan(preset("cifar10-anytime")).layers[8]
    assert layer.out_scales == (1, 2)
    down, normal = layer.units[0]
    assert (down.kind, down.in_scale, down.in_channels, down.out_channels) == ("down", 0, 64, 6)
    assert (normal.kind, normal.in_scale, normal.in_channels) == ("normal", 1, 128)


def test_no_bottleneck_means_no_inner_width():
    plan = build_plan(Options(nBlocks=2, bottleneck=False))
    assert all(u.inner is None for layer in plan.layers for units in layer.units for u in units)


def test_imagenet_scale_sides():
    # 224 -> conv 7x7/2 -> 112 -> max-pool 3/2 -> 56; then 28, 14, 7.
    plan = build_plan(preset("imagenet-step4"))
    assert [m.height for m in plan.stem] == [56, 28, 14, 7]
    assert [m.channels for m in plan.stem] == [32, 64, 128, 128]


def test_cifar_head_has_128_channels_imagenet_head_keeps_its_input():
    assert build_plan(preset("cifar10-anytime")).heads[0].conv_channels == 128
    head = build_plan(preset("imagenet-step4")).heads[0]
    assert head.conv_channels == head.reads.channels


@pytest.mark.parametrize("name, side", [("cifar10-anytime", 32), ("imagenet-step4", 224)])
def test_default_input_size_is_the_data_sets(name, side):
    assert build_plan(preset(name)).input_size == (side, side)


def test_non_square_input_size():
    # 40x48 CIFAR input: scale sides ceil-halve per scale -> heights 40, 20, 10; widths 48, 24, 12.
    plan = build_plan(preset("cifar10-anytime"), "40x48")
    assert plan.input_size == (40, 48)
    assert [(m.height, m.width) for m in plan.stem] == [(40, 48), (20, 24), (10, 12)]


def test_plan_summary_shape():
    summary = build_plan(preset("cifar10-batch")).summary()
    assert summary["layers_per_block"] == [1, 2, 3, 4, 5, 6, 7]
    assert summary["exit_layers"] == [1, 3, 6, 10, 15, 21, 28]
    assert summary["transitions_after_layers"] == [11, 21]
