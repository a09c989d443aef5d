"""``MSDNet.early_exit``: early exit that really stops (issue 6, part 4).

The reference for every decision is the authors' rule (``dynamic_eval_with_threshold`` in their
``adaptive_inference.py``) applied to the logits of a full forward pass: an image leaves at the first
exit whose largest softmax probability is ``>=`` that exit's threshold, else at the last exit.  The
reference for every cost is ``msdprof.core.exits.exit_costs`` of the same model: an image that leaves at
exit k costs ``macs`` (blocks and heads 1..k) eagerly and ``lazy_macs`` lazily.
"""

from __future__ import annotations

import math
from fractions import Fraction

import pytest
import torch

from msdnet import Options, build_model
from msdprof.analysis.budget import ExitDistribution, evaluate, expected_cost
from msdprof.core.dataflow import count_modules
from msdprof.core.exits import exit_costs

# A small random network: 4 exits at layers 1-4 over 3 scales, the finest scale dropped at layer 3
# with a transition after it; exits 1-3 do not read every map of their blocks, so lazy < eager there.
SMALL = Options(nBlocks=4, step=1, base=1, nChannels=8, growthRate=4)
SIDE = 17  # the smallest input side 3 scales and the CIFAR heads take
IMAGES = 32


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return build_model(SMALL, SIDE).eval()


@pytest.fixture(scope="module")
def images():
    torch.manual_seed(1)
    return torch.randn(IMAGES, 3, SIDE, SIDE)


def confidences_of(model, images):
    """``[exits, images]``: every exit's largest softmax probability, from one full forward pass."""
    with torch.no_grad():
        return torch.stack([torch.softmax(logits, dim=1).max(dim=1).values for logits in model(images)])


def thresholds_for(confidences):
    """Thresholds that send about an equal share of the images to every exit: at exit k, the
    confidence (among the images still undecided) that ranks at that share, taken from the data."""
    exits, n = confidences.shape
    undecided = torch.ones(n, dtype=torch.bool)
    chosen = []
    for k in range(exits - 1):
        ranked = confidences[k][undecided].sort(descending=True).values
        chosen.append(ranked[len(ranked) // (exits - k) - 1].item())
        undecided &= confidences[k] < chosen[-1]
    return chosen + [0.0]


@pytest.fixture(scope="module")
def confidences(model, images):
    return confidences_of(model, images)


@pytest.fixture(scope="module")
def thresholds(confidences):
    return thresholds_for(confidences)


def authors_rule(model, images, thresholds):
    """(prediction, exit) per image by the authors' rule on the full forward pass's logits."""
    with torch.no_grad():
        probabilities = [torch.softmax(logits, dim=1) for logits in model(images)]
    predictions, exits = [], []
    for i in range(images.shape[0]):
        for k, p in enumerate(probabilities, start=1):
            if p[i].max().item() >= thresholds[k - 1] or k == len(probabilities):
                predictions.append(p[i].argmax().item())
                exits.append(k)
                break
    return predictions, exits


def test_the_chosen_thresholds_send_images_to_every_exit(model, images, thresholds):
    _, exits = authors_rule(model, images, thresholds)
    assert sorted(set(exits)) == [1, 2, 3, 4]


@pytest.mark.parametrize("lazy", [False, True], ids=["eager", "lazy"])
def test_predictions_and_exits_are_the_authors_rule_on_the_full_forward_pass(model, images, thresholds, lazy):
    result = model.early_exit(images, thresholds, lazy=lazy)
    assert (result.prediction.tolist(), result.exit.tolist()) == authors_rule(model, images, thresholds)


@pytest.mark.parametrize("lazy", [False, True], ids=["eager", "lazy"])
def test_confidence_is_the_largest_softmax_probability_at_the_exit_left_at(
    model, images, thresholds, confidences, lazy
):
    result = model.early_exit(images, thresholds, lazy=lazy)
    expected = confidences[result.exit - 1, torch.arange(IMAGES)]
    torch.testing.assert_close(result.confidence, expected)


def test_images_per_exit_counts_the_exits_left_at(model, images, thresholds):
    result = model.early_exit(images, thresholds)
    assert result.images_per_exit == tuple(result.exit.tolist().count(k) for k in (1, 2, 3, 4))
    assert result.exit_fractions == tuple(n / IMAGES for n in result.images_per_exit)


def test_each_block_runs_only_on_the_images_still_undecided(model, images, thresholds):
    sizes = []
    handles = [block.register_forward_hook(lambda m, i, out: sizes.append(out[-1].shape[0])) for block in model.blocks]
    try:
        result = model.early_exit(images, thresholds)
    finally:
        for handle in handles:
            handle.remove()
    left = result.images_per_exit
    assert sizes == [IMAGES, IMAGES - left[0], IMAGES - sum(left[:2]), IMAGES - sum(left[:3])]


def test_nothing_runs_after_every_image_has_left(model, images):
    ran = []
    handles = [h.register_forward_hook(lambda m, i, o, k=k: ran.append(k)) for k, h in enumerate(model.classifiers, 1)]
    try:
        result = model.early_exit(images, [0.0, 0.0, 0.0, 0.0])  # every confidence is >= 0
    finally:
        for handle in handles:
            handle.remove()
    assert (ran, result.images_per_exit) == ([1], (IMAGES, 0, 0, 0))


@pytest.mark.parametrize("convention", ["msdnet", "macs", "flops"])
def test_counted_cost_is_the_sum_of_each_images_cumulative_exit_cost(model, images, thresholds, convention):
    results = []
    counts = count_modules(model, run=lambda: results.append(model.early_exit(images, thresholds)))
    costs = exit_costs(model, convention=convention)
    assert counts.total(convention) == sum(costs[k - 1].macs for k in results[0].exit.tolist())


@pytest.mark.parametrize("convention", ["msdnet", "macs", "flops"])
def test_lazy_counted_cost_is_the_sum_of_each_images_lazy_exit_cost(model, images, thresholds, convention):
    results = []
    counts = count_modules(model, run=lambda: results.append(model.early_exit(images, thresholds, lazy=True)))
    costs = exit_costs(model, convention=convention)
    assert counts.total(convention) == sum(costs[k - 1].lazy_macs for k in results[0].exit.tolist())


@pytest.mark.parametrize("lazy", [False, True])
def test_counted_cost_per_image_is_the_budget_modules_expected_cost_for_the_exits_taken(
    model, images, thresholds, lazy
):
    # Issue 6: what the dynamic run really spends = the expected cost (msdprof.analysis.budget) of the same
    # exit distribution; and budget.evaluate on the full forward pass sends images to the same exits.
    results = []
    counts = count_modules(model, run=lambda: results.append(model.early_exit(images, thresholds, lazy=lazy)))
    taken = results[0].images_per_exit
    distribution = ExitDistribution(tuple(Fraction(n, IMAGES) for n in taken))
    expected = expected_cost(exit_costs(model), distribution)
    assert Fraction(counts.total("msdnet"), IMAGES) == (expected.lazy_macs if lazy else expected.macs)
    with torch.no_grad():
        softmax = torch.stack([torch.softmax(logits, dim=1) for logits in model(images)])
    assert evaluate(softmax, results[0].prediction, thresholds).exit_counts == taken


def test_lazy_run_spends_less_than_eager_when_images_leave_early(model, images, thresholds):
    # Exits 1-3 skip the finest maps (exit_costs: lazy_macs < macs there), and images leave at each.
    eager = count_modules(model, run=lambda: model.early_exit(images, thresholds)).total("macs")
    lazy = count_modules(model, run=lambda: model.early_exit(images, thresholds, lazy=True)).total("macs")
    assert lazy < eager


# Other layouts, each with maps that lazy evaluation defers (exit_costs: lazy_macs < macs at exits
# 1-2): prune min, no bottleneck and no transitions over 2 scales, 4 scales.  (options, input side)
LAYOUTS = {
    "prune-min": (Options(nBlocks=3, step=2, base=2, prune="min", nChannels=8, growthRate=4), 17),
    "2-scales-plain": (Options(nBlocks=3, stepmode="lin_grow", step=1, base=1, bottleneck=False, reduction=0,
                               nChannels=8, growthRate=4, grFactor=(1, 2), bnFactor=(1, 2)), 9),
    "4-scales": (Options(nBlocks=3, step=1, base=2, nChannels=8, growthRate=4, grFactor=(1, 2, 4, 4),
                         bnFactor=(1, 2, 4, 4)), 33),
}


def layout(name):
    options, side = LAYOUTS[name]
    torch.manual_seed(2)
    model = build_model(options, side).eval()
    images = torch.randn(12, 3, side, side)
    return model, images, thresholds_for(confidences_of(model, images))


@pytest.mark.parametrize("name", sorted(LAYOUTS))
def test_lazy_decisions_are_the_authors_rule_on_other_layouts(name):
    model, images, thresholds = layout(name)
    result = model.early_exit(images, thresholds, lazy=True)
    assert (result.prediction.tolist(), result.exit.tolist()) == authors_rule(model, images, thresholds)


@pytest.mark.parametrize("name", sorted(LAYOUTS))
def test_lazy_counted_cost_is_the_sum_of_lazy_exit_costs_on_other_layouts(name):
    model, images, thresholds = layout(name)
    results = []
    counts = count_modules(model, run=lambda: results.append(model.early_exit(images, thresholds, lazy=True)))
    costs = exit_costs(model)
    assert results[0].images_per_exit.count(0) == 0  # every exit is used, so every lazy cost is tested
    assert counts.total("msdnet") == sum(costs[k - 1].lazy_macs for k in results[0].exit.tolist())


@pytest.mark.parametrize("lazy", [False, True], ids=["eager", "lazy"])
def test_on_the_meta_device_every_image_goes_to_the_last_exit(lazy):
    model = build_model(SMALL, SIDE, device="meta").eval()
    result = model.early_exit(torch.zeros(5, 3, SIDE, SIDE, device="meta"), [0.0] * 4, lazy=lazy)
    assert result.images_per_exit == (0, 0, 0, 5)
    assert [t.shape for t in (result.prediction, result.exit, result.confidence)] == [(5,)] * 3


def test_training_mode_is_refused_and_left_as_it_was(images):
    model = build_model(SMALL, SIDE, device="meta").train()
    with pytest.raises(RuntimeError, match="needs eval mode"):
        model.early_exit(images.to("meta"), [0.5] * 4)
    assert model.training


def test_results_hold_no_autograd_history(model, images, thresholds):
    result = model.early_exit(images, thresholds)
    assert not any(t.requires_grad for t in (result.prediction, result.exit, result.confidence))


@pytest.mark.parametrize("bad, message", [
    ([0.5] * 3, r"thresholds \[0.5, 0.5, 0.5\]: must hold one number per exit \(4; the last is ignored\), not 3"),
    ([0.5] * 5, r"must hold one number per exit \(4; the last is ignored\), not 5"),
    (0.5, r"thresholds 0.5: must be a sequence of one number per exit"),
    ("0.5", r"thresholds '0.5': must be a sequence"),
    ([0.5, math.nan, 0.5, 0.5], r"thresholds\[1\] nan: must be a number"),
    ([0.5, "0.5", 0.5, 0.5], r"thresholds\[1\] '0.5': must be a number"),
    ([True, 0.5, 0.5, 0.5], r"thresholds\[0\] True: must be a number"),
])
def test_bad_thresholds_are_refused_naming_the_bad_value(bad, message):
    model = build_model(SMALL, SIDE, device="meta").eval()
    with pytest.raises(ValueError, match=message):
        model.early_exit(torch.zeros(1, 3, SIDE, SIDE, device="meta"), bad)


def test_the_last_threshold_is_ignored_and_may_be_anything(model, images, thresholds):
    usual = model.early_exit(images, thresholds)
    nan_last = model.early_exit(images, [*thresholds[:-1], math.nan])
    assert torch.equal(usual.exit, nan_last.exit) and torch.equal(usual.prediction, nan_last.prediction)


def test_thresholds_may_be_a_tensor(model, images, thresholds):
    as_list = model.early_exit(images, thresholds)
    as_tensor = model.early_exit(images, torch.tensor(thresholds, dtype=torch.float64))
    assert torch.equal(as_list.exit, as_tensor.exit)
