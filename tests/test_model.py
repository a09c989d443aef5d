"""The MSDNet module: built from the plan, faithful to the authors' parameter counts (SPEC §1)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from msdnet import MSDNet, OptionError, Options, PRESETS, build_model, build_plan
from msdnet.model import ConvBN, MSDLayer, TransitionLayer


def parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_total_parameters_equal_the_authors(reference):
    # shared/reference: the last `params` entry is the whole network's parameter count.
    model = build_model(Options(**reference["options"]), device="meta")
    assert parameters(model) == reference["params"][-1]


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_preset_runs_on_a_zero_image_and_returns_one_logits_per_exit(name):
    options = PRESETS[name]
    model = build_model(options).eval()
    side = options.default_input_size
    with torch.no_grad():
        logits = model(torch.zeros(2, 3, side, side))
    assert len(logits) == options.nBlocks
    assert all(out.shape == (2, options.num_classes) for out in logits)


def test_forward_with_exits_runs_only_the_first_k():
    model = build_model(PRESETS["cifar10-batch"]).eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        full = model(x)
        first3 = model(x, exits=3)
    assert len(first3) == 3
    for a, b in zip(first3, full):
        torch.testing.assert_close(a, b)


def test_forward_with_exits_skips_later_blocks():
    model = build_model(PRESETS["cifar10-batch"], device="meta")
    ran = []
    handles = [b.register_forward_hook(lambda m, i, o, k=k: ran.append(k)) for k, b in enumerate(model.blocks)]
    try:
        model(torch.zeros(1, 3, 32, 32, device="meta"), exits=2)
    finally:
        for h in handles:
            h.remove()
    assert ran == [0, 1]


@pytest.mark.parametrize("bad", [0, 8, -1, 2.0, True])
def test_forward_rejects_exits_out_of_range(bad):
    model = build_model(PRESETS["cifar10-batch"], device="meta")
    with pytest.raises(ValueError, match="from 1 to 7"):
        model(torch.zeros(1, 3, 32, 32, device="meta"), exits=bad)


def test_meta_model_allocates_no_weights():
    model = build_model(PRESETS["imagenet-step7"], device="meta")
    assert all(p.is_meta for p in model.parameters())
    assert parameters(model) == 62314472  # the same count as a real build (see next test's rule)


def test_meta_and_cpu_builds_have_the_same_parameter_shapes():
    options = PRESETS["cifar10-batch"]
    meta = {k: v.shape for k, v in build_model(options, device="meta").state_dict().items()}
    cpu = {k: v.shape for k, v in build_model(options).state_dict().items()}
    assert meta == cpu


@pytest.mark.parametrize("name", ["cifar10-anytime", "imagenet-step4"])
def test_layer_modules_have_the_plans_channels(name):
    model = build_model(PRESETS[name], device="meta")
    plan = model.plan
    layers = [m for m in model.modules() if isinstance(m, MSDLayer)]
    assert len(layers) == len(plan.layers)
    for module, layer in zip(layers, plan.layers):
        for scale_module, units in zip(module.scales, layer.units):
            for conv_bn, unit in zip(scale_module.convs, units):
                convs = [m for m in conv_bn if isinstance(m, nn.Conv2d)]
                assert convs[0].in_channels == unit.in_channels
                assert convs[-1].out_channels == unit.out_channels
                assert convs[-1].stride == (unit.stride, unit.stride)
                if unit.inner is not None:
                    assert convs[0].out_channels == unit.inner


@pytest.mark.parametrize("name", ["cifar10-anytime", "imagenet-step4"])
def test_layer_outputs_and_transitions_have_the_plans_shapes(name):
    model = build_model(PRESETS[name], device="meta")
    plan = model.plan
    shapes: dict[int, list] = {}
    modules = [m for m in model.modules() if isinstance(m, (MSDLayer, TransitionLayer))]
    handles = [m.register_forward_hook(lambda m, i, o, k=k: shapes.__setitem__(k, [t.shape for t in o]))
               for k, m in enumerate(modules)]
    try:
        model(torch.zeros(1, 3, *plan.input_size, device="meta"))
    finally:
        for h in handles:
            h.remove()
    expected = []
    for layer in plan.layers:
        expected.append([(1, m.channels, m.height, m.width) for m in layer.outputs])
        if layer.transition is not None:
            expected.append([(1, m.channels, m.height, m.width) for m in layer.transition.outputs])
    assert [[tuple(s) for s in shapes[k]] for k in range(len(modules))] == expected


def test_only_the_imagenet_stem_and_linear_layers_have_biases():
    model = build_model(PRESETS["imagenet-step4"], device="meta")
    with_bias = {name for name, m in model.named_modules()
                 if isinstance(m, (nn.Conv2d, nn.Linear)) and m.bias is not None}
    assert with_bias == {"blocks.0.0.scales.0.0"} | {f"classifiers.{k}.linear" for k in range(5)}


def test_cifar_convs_have_no_bias():
    model = build_model(PRESETS["cifar10-anytime"], device="meta")
    assert all(m.bias is None for m in model.modules() if isinstance(m, nn.Conv2d))


def test_bottleneck_off_builds_single_conv_units():
    model = build_model(Options(nBlocks=2, bottleneck=False), device="meta")
    units = [m for m in model.modules() if isinstance(m, ConvBN)]
    assert units and all(sum(isinstance(c, nn.Conv2d) for c in u) == 1 for u in units)


def test_model_keeps_its_plan():
    plan = build_plan(PRESETS["cifar100-batch"])
    assert MSDNet(plan).plan is plan


def test_real_build_that_would_not_fit_in_memory_is_refused(monkeypatch):
    import msdnet.model

    monkeypatch.setattr(msdnet.model, "available_memory", lambda: 64 * 2**20)  # 64 MiB free
    # imagenet-step7: 62,314,472 float32 weights = 238 MiB > 0.8 * 64 MiB
    with pytest.raises(OptionError, match="need 238 MiB but only 64 MiB"):
        build_model(PRESETS["imagenet-step7"])
    assert build_model(PRESETS["imagenet-step7"], device="meta").plan.options.nBlocks == 5
