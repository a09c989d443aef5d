"""Budgets (issue 6, parts 2 and 3): anytime exits, expected cost of an exit distribution, and
confidence thresholds calibrated on saved softmax outputs exactly as the authors' code does.

The oracle for calibration is a literal transcription of the authors' ``adaptive_inference.py``
(MSDNet-PyTorch), below; the vectorised code must agree with it on random inputs, ties included.
Hand-built inputs check the figures themselves: the thresholds, exit fractions, accuracy and
expected cost they must give are worked out in each test's comments.
"""

from __future__ import annotations

import json
import math
import warnings
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch

from msdnet import Options
from msdnet.options import OptionError
from msdprof import exit_costs
from msdprof.analysis.budget import (
    anytime, anytime_steps, budgeted_batch, calibrate, evaluate, expected_cost, geometric,
    geometric_family, given_fractions,
)
from msdprof.core.exits import ExitCost, ExitCosts
from msdprof.files.saved_outputs import (
    SavedOutputs, load_outputs, outputs_from, save_outputs, synthetic_outputs,
)
from cli_run import run

# --- the authors' code, transcribed (MSDNet-PyTorch adaptive_inference.py) --------------------
# Only change: dynamic_eval_with_threshold also returns `exp` (the per-exit counts it computes).


def authors_geometric_probs(p, nBlocks):
    _p = torch.FloatTensor(1).fill_(p * 1.0 / 20)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.range is deprecated; the authors use it
        probs = torch.exp(torch.log(_p) * torch.range(1, nBlocks))
    probs /= probs.sum()
    return probs


def dynamic_eval_find_threshold(logits, targets, p, flops):
    n_stage, n_sample, c = logits.size()
    max_preds, argmax_preds = logits.max(dim=2, keepdim=False)
    _, sorted_idx = max_preds.sort(dim=1, descending=True)
    filtered = torch.zeros(n_sample)
    T = torch.Tensor(n_stage).fill_(1e8)
    for k in range(n_stage - 1):
        acc, count = 0.0, 0
        out_n = math.floor(n_sample * p[k])
        for i in range(n_sample):
            ori_idx = sorted_idx[k][i]
            if filtered[ori_idx] == 0:
                count += 1
                if count == out_n:
                    T[k] = max_preds[k][ori_idx]
                    break
        filtered.add_(max_preds[k].ge(T[k]).type_as(filtered))
    T[n_stage - 1] = -1e8
    acc_rec, exp = torch.zeros(n_stage), torch.zeros(n_stage)
    acc, expected_flops = 0, 0
    for i in range(n_sample):
        gold_label = targets[i]
        for k in range(n_stage):
            if max_preds[k][i].item() >= T[k]:
                if int(gold_label.item()) == int(argmax_preds[k][i].item()):
                    acc += 1
                    acc_rec[k] += 1
                exp[k] += 1
                break
    acc_all = 0
    for k in range(n_stage):
        _t = 1.0 * exp[k] / n_sample
        expected_flops += _t * flops[k]
        acc_all += acc_rec[k]
    return acc * 100.0 / n_sample, expected_flops, T


def dynamic_eval_with_threshold(logits, targets, flops, T):
    n_stage, n_sample, _ = logits.size()
    max_preds, argmax_preds = logits.max(dim=2, keepdim=False)
    acc_rec, exp = torch.zeros(n_stage), torch.zeros(n_stage)
    acc, expected_flops = 0, 0
    for i in range(n_sample):
        gold_label = targets[i]
        for k in range(n_stage):
            if max_preds[k][i].item() >= T[k]:
                _g = int(gold_label.item())
                _pred = int(argmax_preds[k][i].item())
                if _g == _pred:
                    acc += 1
                    acc_rec[k] += 1
                exp[k] += 1
                break
    acc_all, sample_all = 0, 0
    for k in range(n_stage):
        _t = exp[k] * 1.0 / n_sample
        sample_all += exp[k]
        expected_flops += _t * flops[k]
        acc_all += acc_rec[k]
    return acc * 100.0 / n_sample, expected_flops, exp


# --- inputs built by hand ---------------------------------------------------------------------

EAGER = (100, 250, 400)  # cumulative cost of exits 1..3, made up
LAZY = (80, 230, 400)    # lazy: exits 1 and 2 defer 20 operations each


def hand_costs(eager=EAGER, lazy=LAZY) -> ExitCosts:
    exits = tuple(
        ExitCost(exit=k, layer=2 * k, macs=m, params=10 * m, block_macs=0, block_params=0,
                 head_macs=0, head_params=0, direct_macs=m, direct_params=10 * m,
                 lazy_macs=lz, lazy_params=10 * lz)
        for k, (m, lz) in enumerate(zip(eager, lazy), 1)
    )
    return ExitCosts(Options(nBlocks=len(exits)), "msdnet", (32, 32), exits)


def one_hot_like(top: list[list[float]], label: list[list[int]], classes: int) -> torch.Tensor:
    """[exits, samples, classes]: probability ``top`` on class ``label``, the rest shared evenly."""
    top_t = torch.tensor(top, dtype=torch.float32)
    pred = ((1 - top_t) / (classes - 1))[:, :, None].repeat(1, 1, classes)
    return pred.scatter(2, torch.tensor(label)[:, :, None], top_t[:, :, None])


def outputs(val_pred, val_target, test_pred, test_target) -> SavedOutputs:
    return outputs_from({"val_pred": val_pred, "val_target": torch.tensor(val_target),
                         "test_pred": test_pred, "test_target": torch.tensor(test_target)})


# Ten validation images, three exits, ten classes. Confidences are multiples of 1/32 (exact in
# float32). Exit 1: image i has (20 - i)/32, so 20/32 .. 11/32. Exit 2: images 5..9 (those exit 1
# keeps with fractions 1/2, 3/10, 1/5) have 18, 17, 16, 15, 14 /32; images 0..4 have 31/32 (they left).
VAL_TOP = [
    [(20 - i) / 32 for i in range(10)],
    [31 / 32] * 5 + [18 / 32, 17 / 32, 16 / 32, 15 / 32, 14 / 32],
    [0.5] * 10,
]
HALF_3_2 = given_fractions("0.5,0.3,0.2", 3)  # out counts on 10 images: 5, 3, 2


def test_thresholds_are_the_out_count_th_confidence_of_the_images_left():
    # Exit 1 sends out 5 images: the 5th largest confidence, 16/32. Exit 2 sends out 3 of the 5
    # left (18, 17, 16 /32 for images 5, 6, 7): 16/32. The last exit takes the rest: -1e8.
    pred = one_hot_like(VAL_TOP, [[0] * 10] * 3, 10)
    assert calibrate(pred, HALF_3_2) == (0.5, 0.5, -1e8)


def test_exit_fractions_accuracy_and_expected_cost_on_test_follow_the_thresholds():
    # Thresholds (0.5, 0.5, -1e8). Test images (8): exit-1 confidences 0.75 0.5 0.5 0.25 0.25 0.25
    # 0.25 0.25 -> images 0-2 leave at exit 1; exit-2 confidences of the rest 0.5 0.5 0.25 0.25 0.25
    # -> images 3, 4 leave at exit 2; images 5-7 at exit 3: counts (3, 2, 3) = 3/8, 2/8, 3/8.
    # Predictions: exit 1 says class 0, exit 2 class 1, exit 3 class 0; targets make images 0, 1
    # right at exit 1 (2 of 3), 3 right at exit 2 (1 of 2), 5, 6, 7 right at exit 3 (3 of 3):
    # 6/8 = 75.0 %. Expected cost: (3*100 + 2*250 + 3*400)/8 = 2000/8 = 250 eager,
    # (3*80 + 2*230 + 3*400)/8 = 1900/8 = 237.5 lazy.
    val = one_hot_like(VAL_TOP, [[0] * 10] * 3, 10)
    test = one_hot_like([[0.75, 0.5, 0.5] + [0.25] * 5,
                         [0.9, 0.9, 0.9, 0.5, 0.5, 0.25, 0.25, 0.25],
                         [0.6] * 8],
                        [[0] * 8, [1] * 8, [0] * 8], 10)
    target = [0, 0, 1, 1, 0, 0, 0, 0]
    (result,) = budgeted_batch(hand_costs(), outputs(val, [0] * 10, test, target), [HALF_3_2])
    assert result.thresholds == (0.5, 0.5, -1e8)
    assert result.test.exit_counts == (3, 2, 3)
    assert result.test.exit_fractions == (Fraction(3, 8), Fraction(2, 8), Fraction(3, 8))
    assert result.test.correct_counts == (2, 1, 3)
    assert result.test.accuracy == 75.0
    assert (result.macs, result.lazy_macs) == (Fraction(250), Fraction(475, 2))


def test_validation_accuracy_is_measured_with_the_thresholds_found_there():
    # On validation, images 0-4 leave at exit 1 (class 0), 5-7 at exit 2 (class 1), 8-9 at exit 3
    # (class 0); all targets 0: right 5 + 0 + 2 = 7 of 10.
    val = one_hot_like(VAL_TOP, [[0] * 10, [1] * 10, [0] * 10], 10)
    (result,) = budgeted_batch(hand_costs(), outputs(val, [0] * 10, val, [0] * 10), [HALF_3_2])
    assert result.val.exit_counts == (5, 3, 2)
    assert result.val.accuracy == 70.0


def test_confidences_tied_with_the_threshold_all_leave():
    # Exit 1 must send out 5 of 10, but images 3..7 all have 0.5: the 5th largest is 0.5 and the
    # authors' `>=` sends out every image at 0.5, 8 in all (0.75 x3 and 0.5 x5).
    top = [[0.75, 0.75, 0.75, 0.5, 0.5, 0.5, 0.5, 0.5, 0.25, 0.25], [0.5] * 10, [0.5] * 10]
    pred = one_hot_like(top, [[0] * 10] * 3, 10)
    thresholds = calibrate(pred, HALF_3_2)
    assert thresholds[0] == 0.5
    assert evaluate(pred, torch.zeros(10, dtype=torch.int64), thresholds).exit_counts[0] == 8


def test_an_exit_asked_to_send_out_more_images_than_are_left_keeps_the_1e8_threshold():
    # All ten exit-1 confidences are equal: 5 asked, all 10 leave. Exit 2 is asked for 3 of the 0
    # left: its count is never reached and T stays 1e8, as in the authors' loop.
    pred = one_hot_like([[0.5] * 10, [0.75] * 10, [0.5] * 10], [[0] * 10] * 3, 10)
    assert calibrate(pred, HALF_3_2) == (0.5, 1e8, -1e8)


def test_an_exit_with_no_image_to_send_out_keeps_the_1e8_threshold():
    # Fractions (0.05, 0.05, 0.9) of 10 images: floor(0.5) = 0 at exits 1 and 2; nobody leaves there.
    pred = one_hot_like(VAL_TOP, [[0] * 10] * 3, 10)
    none_early = given_fractions("0.05,0.05,0.9", 3)
    assert none_early.out_counts(10) == (0, 0, 9)
    thresholds = calibrate(pred, none_early)
    assert thresholds == (1e8, 1e8, -1e8)
    assert evaluate(pred, torch.zeros(10, dtype=torch.int64), thresholds).exit_counts == (0, 0, 10)


@pytest.mark.parametrize("seed", range(12))
def test_vectorised_calibration_equals_the_authors_loop_on_random_outputs(seed):
    rng = np.random.default_rng(seed)
    exits, classes = int(rng.integers(2, 6)), int(rng.integers(2, 6))
    n_val, n_test = int(rng.integers(1, 60)), int(rng.integers(1, 60))
    levels = int(rng.integers(3, 12))  # few distinct confidences: many ties

    def pred(n):
        return torch.from_numpy((rng.integers(0, levels + 1, (exits, n, classes)) / levels)
                                .astype(np.float32))

    val_pred, test_pred = pred(n_val), pred(n_test)
    val_target = torch.from_numpy(rng.integers(0, classes, n_val)).float()  # as the authors save it
    test_target = torch.from_numpy(rng.integers(0, classes, n_test)).float()
    eager = sorted(int(v) for v in rng.integers(1, 10**6, exits))
    costs = hand_costs(eager, [max(1, v - 7) for v in eager])
    raw = rng.integers(0, 4, (exits,)) * rng.random(exits)  # zeros included: out_n = 0
    raw = raw if raw.sum() else np.ones(exits)
    distributions = [geometric(p, exits) for p in (1, 7, 20, 33, 39)]
    distributions.append(given_fractions([Fraction(float(x)) / Fraction(float(raw.sum()))
                                          for x in raw], exits))
    saved = outputs_from({"val_pred": val_pred, "val_target": val_target,
                          "test_pred": test_pred, "test_target": test_target})
    results = budgeted_batch(costs, saved, distributions)
    flops = [e.macs for e in costs]
    for d, result in zip(distributions, results):
        p = torch.tensor([float(f) for f in d.fractions], dtype=torch.float32)
        acc_val, _, T = dynamic_eval_find_threshold(val_pred, val_target, p, flops)
        acc_test, exp_flops, exp = dynamic_eval_with_threshold(test_pred, test_target, flops, T)
        assert result.thresholds == tuple(T.tolist())
        assert result.val.accuracy == acc_val
        assert result.test.accuracy == acc_test
        assert result.test.exit_counts == tuple(int(c) for c in exp.tolist())
        # The authors sum in float32; ours is exact.
        assert result.macs == Fraction(sum(c * f for c, f in zip(result.test.exit_counts, flops)),
                                       n_test)
        assert float(result.macs) == pytest.approx(float(exp_flops), rel=1e-6)


# --- distributions ----------------------------------------------------------------------------


@pytest.mark.parametrize("exits", [1, 5, 7, 10])
def test_geometric_fractions_equal_the_authors_formula_bit_for_bit(exits):
    for d in geometric_family(exits):
        assert d.fractions == tuple(Fraction(v) for v in authors_geometric_probs(d.p, exits).tolist())


def test_the_geometric_family_is_p_1_to_39_with_q_p_over_20():
    family = geometric_family(5)
    assert [d.p for d in family] == list(range(1, 40))
    uniform = Fraction(float(np.float32(0.2)))  # p = 20: q = 1, 1/5 each (in float32)
    assert family[19].q == 1 and family[19].fractions == (uniform,) * 5


def test_out_counts_are_floored_in_float32_as_the_authors_compute_them():
    # p = 1 over 7 exits: fraction 0.949999988 at exit 1; 20 x that is 18.99999976, which float32
    # rounds to 19.0: the authors send out 19 images, not the 18 of the exact product.
    d = geometric(1, 7)
    probs = authors_geometric_probs(1, 7)
    assert d.out_counts(20)[0] == 19 == math.floor(20 * probs[0])
    assert math.floor(20 * float(d.fractions[0])) == 18
    for n in (1, 20, 999, 5000):
        assert d.out_counts(n) == tuple(math.floor(n * probs[k]) for k in range(7))


def test_given_fractions_are_read_exactly():
    assert given_fractions("0.5,0.3,0.2", 3).fractions == (Fraction(1, 2), Fraction(3, 10),
                                                           Fraction(1, 5))
    assert given_fractions("1/3, 1/3, 1/3", 3).fractions == (Fraction(1, 3),) * 3


def test_given_fractions_may_miss_1_by_at_most_1e_9():
    assert given_fractions("0.3333333333,0.3333333333,0.3333333333", 3).p is None  # 1 - 1e-10


@pytest.mark.parametrize("text, message", [
    ("0.5,0.5", "must have 3 entries, one per exit of the network, not 2"),
    ("0.5,0.6,-0.1", "entry 3 (-0.1) is negative"),
    ("0.5,x,0.5", "entry 2 (x) is not a number"),
    ("0.5,0.3,0.3", "sum to 1.1; they must sum to 1 (within 1e-9)"),
    ("0.333333,0.333333,0.333333", "sum to 0.999999;"),
])
def test_bad_fractions_are_refused_naming_the_value(text, message):
    with pytest.raises(OptionError) as error:
        given_fractions(text, 3)
    assert message in str(error.value) and str(error.value).startswith(f"fractions {text}: ")


def test_expected_cost_is_the_sum_of_fraction_times_cost():
    # 1/2 x 100 + 3/10 x 250 + 1/5 x 400 = 205; lazy 1/2 x 80 + 3/10 x 230 + 1/5 x 400 = 189.
    cost = expected_cost(hand_costs(), HALF_3_2)
    assert (cost.macs, cost.lazy_macs) == (205, 189)


def test_expected_cost_of_the_geometric_family_uses_the_authors_fractions():
    costs = hand_costs()
    for d in geometric_family(3):
        assert expected_cost(costs, d).macs == sum(f * c for f, c in zip(d.fractions, EAGER))


def test_a_distribution_for_another_number_of_exits_is_refused():
    with pytest.raises(OptionError, match="has 5 exits; the network has nBlocks 3"):
        expected_cost(hand_costs(), geometric(3, 5))


# --- anytime ----------------------------------------------------------------------------------


def test_a_budget_equal_to_an_exits_cost_reaches_it_and_one_unit_less_does_not():
    costs = hand_costs()  # eager 100, 250, 400; lazy 80, 230, 400
    at = anytime(costs, 250)
    assert (at.eager.exit, at.eager.macs, at.lazy.exit, at.lazy.macs) == (2, 250, 2, 230)
    below = anytime(costs, 249)
    assert (below.eager.exit, below.eager.macs, below.lazy.exit) == (1, 100, 2)


def test_when_no_exit_fits_the_answer_is_none_with_exit_1s_cost():
    tight = anytime(hand_costs(), 79)
    assert (tight.eager, tight.lazy, tight.first_macs, tight.first_lazy_macs) == (None, None, 100, 80)
    lazy_only = anytime(hand_costs(), "99")
    assert lazy_only.eager is None and lazy_only.lazy.exit == 1


def test_anytime_budgets_are_parsed_like_counts():
    assert anytime(hand_costs(), "0.25K").budget == 250
    with pytest.raises(OptionError, match="anytime 3Q: must be a count"):
        anytime(hand_costs(), "3Q")


@pytest.fixture(scope="module")
def small_costs() -> ExitCosts:
    return exit_costs(nBlocks=4, stepmode="lin_grow", step=1, base=1, nChannels=8)


def test_the_anytime_steps_of_a_network_are_its_cumulative_eager_and_lazy_costs(small_costs):
    steps = anytime_steps(small_costs)
    assert [(s.exit, s.eager_budget, s.lazy_budget) for s in steps] == [
        (e.exit, e.macs, e.lazy_macs) for e in small_costs]
    for s in steps:  # the answer changes exactly there
        assert anytime(small_costs, s.eager_budget).eager.exit == s.exit
        assert anytime(small_costs, s.lazy_budget).lazy.exit == s.exit
        below = anytime(small_costs, s.eager_budget - 1).eager
        assert (below.exit if below else 0) == s.exit - 1


# --- saved outputs: reading and checking ------------------------------------------------------


def good_parts(exits=3, classes=4, n=6) -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    return {"val_pred": torch.softmax(torch.randn(exits, n, classes), dim=2),
            "val_target": torch.arange(n) % classes,
            "test_pred": torch.softmax(torch.randn(exits, n + 1, classes), dim=2),
            "test_target": torch.arange(n + 1) % classes}


def test_the_authors_tuple_with_float_targets_loads_from_pt(tmp_path):
    parts = good_parts()
    path = tmp_path / "logits_single.pth"
    torch.save((parts["val_pred"], parts["val_target"].float(), parts["test_pred"],
                parts["test_target"].float()), path)
    loaded = load_outputs(path, exits=3)
    assert (loaded.exits, loaded.classes, loaded.val_samples, loaded.test_samples) == (3, 4, 6, 7)
    assert loaded.val_target.dtype == torch.int64
    assert torch.equal(loaded.test_target, parts["test_target"])


def test_the_four_named_arrays_load_from_npz(tmp_path):
    path = tmp_path / "outputs.npz"
    np.savez(path, **{k: v.numpy() for k, v in good_parts().items()})
    assert torch.equal(load_outputs(path, exits=3).val_pred, good_parts()["val_pred"])


def test_saved_synthetic_outputs_read_back_unchanged(tmp_path):
    sample = synthetic_outputs(exits=3, val_samples=20, test_samples=30)
    for name in ("s.pt", "s.npz"):
        back = load_outputs(save_outputs(tmp_path / name, sample), exits=3)
        assert torch.equal(back.test_pred, sample.test_pred)
        assert torch.equal(back.val_target, sample.val_target)


def _bad(**changes):
    parts = good_parts()
    parts.update(changes)
    return tuple(parts.values())


BAD_PT = {
    "wrong tuple": ((1, 2, 3), "holds a tuple of 3: must hold the tuple (val_pred, val_target, "
                               "test_pred, test_target)"),
    "wrong keys": ({"val_pred": torch.zeros(3, 2, 2)}, "has no val_target, test_pred, test_target"),
    "wrong ndim": (_bad(val_pred=torch.zeros(3, 6)), "val_pred has shape [3, 6]: must be "
                                                       "[exits, samples, classes]"),
    "integer pred": (_bad(test_pred=torch.zeros(3, 7, 4, dtype=torch.int64)),
                     "test_pred has dtype int64: must be float"),
    "exits differ": (_bad(test_pred=torch.full((2, 7, 4), 0.25)), "val_pred has 3 exits but "
                                                                  "test_pred 2"),
    "exits vs nBlocks": (_bad(val_pred=torch.full((5, 6, 4), 0.25),
                              test_pred=torch.full((5, 7, 4), 0.25)),
                         "holds 5 exits; the network has nBlocks 3"),
    "classes differ": (_bad(test_pred=torch.full((3, 7, 5), 0.2)), "val_pred has 4 classes but "
                                                                   "test_pred 5"),
    "target length": (_bad(val_target=torch.zeros(5, dtype=torch.int64)),
                      "val_target has 5 entries but val_pred has 6 samples"),
    "target 2-d": (_bad(val_target=torch.zeros(6, 1, dtype=torch.int64)),
                   "val_target has shape [6, 1]: must be [samples]"),
    "target too big": (_bad(test_target=torch.tensor([0, 1, 2, 3, 4, 0, 1])),
                       "test_target holds 4, outside 0..3 (the 4 classes of test_pred)"),
    "target negative": (_bad(test_target=torch.tensor([0, 1, 2, 3, -1, 0, 1])),
                        "test_target holds -1, outside 0..3"),
    "target not whole": (_bad(val_target=torch.tensor([0, 1, 2, 3, 0.5, 1])),
                         "val_target holds 0.5: must hold whole class numbers"),
    "not probabilities": (_bad(val_pred=torch.full((3, 6, 4), 3.0)),
                          "val_pred holds 3: must be softmax probabilities in [0, 1]"),
    "nan": (_bad(test_pred=torch.full((3, 7, 4), float("nan"))), "test_pred holds NaN"),
    "a list": ([torch.zeros(2)] * 4, "val_pred has shape [2]"),
}


@pytest.mark.parametrize("content, message", BAD_PT.values(), ids=BAD_PT.keys())
def test_a_bad_pt_file_is_refused_naming_the_file_and_the_fault(tmp_path, content, message):
    path = tmp_path / "bad.pt"
    torch.save(content, path)
    with pytest.raises(OptionError) as error:
        load_outputs(path, exits=3)
    assert str(error.value).startswith(f"logits {path}: ")
    assert message in str(error.value)
    assert "\n" not in str(error.value)


def test_a_pt_file_holding_objects_is_refused_unrun(tmp_path):
    path = tmp_path / "objects.pt"
    torch.save((Fraction(1, 2),) * 4, path)
    with pytest.raises(OptionError, match=r"cannot be read by torch.load\(weights_only=True\)"):
        load_outputs(path)


@pytest.mark.parametrize("name, data, message", [
    ("corrupt.pt", b"PK\x03\x04 broken", "cannot be read by torch.load(weights_only=True)"),
    ("notes.pt", b"not a torch file", "is neither a torch .pt file (a zip or pickle archive) nor an .npz"),
    ("costs.csv", b"exit,layer,macs\n1,4,15128842\n", "is neither a torch .pt file"),
    ("empty.npz", b"", "is neither a torch .pt file"),
    ("corrupt.npz", b"PK\x03\x04 broken", "cannot be read as .npz"),
])
def test_a_corrupt_file_is_refused(tmp_path, name, data, message):
    path = tmp_path / name
    path.write_bytes(data)
    with pytest.raises(OptionError) as error:
        load_outputs(path)
    assert message in str(error.value) and "\n" not in str(error.value)


def test_an_npz_without_the_four_names_is_refused(tmp_path):
    path = tmp_path / "outputs.npz"
    np.savez(path, val_pred=np.zeros((3, 2, 2)), preds=np.zeros(2))
    with pytest.raises(OptionError, match="has no array named val_target, test_pred, test_target; "
                                          "found val_pred, preds"):
        load_outputs(path)


def test_a_missing_file_is_refused(tmp_path):
    with pytest.raises(OptionError, match="does not exist"):
        load_outputs(tmp_path / "nowhere.pt")


# --- the command line -------------------------------------------------------------------------

SMALL = ["--nBlocks", "4", "--stepmode", "lin_grow", "--step", "1", "--base", "1", "--nChannels", "8"]


def test_cli_anytime_json_is_the_api_answer(capsys, small_costs):
    budget = small_costs[2].macs
    code, out, err = run(capsys, "budget", *SMALL, "--anytime", str(budget), "--format", "json")
    assert code == 0 and err == ""
    data = json.loads(out)
    assert set(data) == {"options", "convention", "input", "budget", "eager", "lazy", "exit1", "steps"}
    assert data["eager"] == {"exit": 3, "layer": small_costs[2].layer, "macs": budget,
                             "params": small_costs[2].params}
    assert data["lazy"]["exit"] == max(e.exit for e in small_costs if e.lazy_macs <= budget)
    assert data["steps"] == [{"exit": s.exit, "layer": s.layer, "eager_budget": s.eager_budget,
                              "lazy_budget": s.lazy_budget} for s in anytime_steps(small_costs)]


def test_cli_anytime_table_says_when_no_exit_fits(capsys):
    code, out, _ = run(capsys, "budget", *SMALL, "--anytime", "1K")
    assert code == 0
    assert "eager: no exit fits; exit 1 costs" in out and "Budgets at which the answer changes" in out


def test_cli_geometric_lists_39_distributions(capsys, small_costs):
    code, out, _ = run(capsys, "budget", *SMALL, "--geometric", "--format", "json")
    rows = json.loads(out)["distributions"]
    assert code == 0 and [r["p"] for r in rows] == list(range(1, 40))
    expected = expected_cost(small_costs, geometric(7, 4))
    assert rows[6]["expected_macs_exact"] == f"{expected.macs.numerator}/{expected.macs.denominator}"


def test_cli_fractions_csv_has_one_row_with_the_expected_costs(capsys, small_costs):
    code, out, _ = run(capsys, "budget", *SMALL, "--fractions", "0.4,0.3,0.2,0.1", "--format", "csv")
    lines = out.splitlines()
    assert code == 0 and len(lines) == 2 and lines[0].startswith("p,q,fraction_1,")
    macs = sum(f * e.macs for f, e in zip((0.4, 0.3, 0.2, 0.1), small_costs))
    assert float(lines[1].split(",")[-3]) == pytest.approx(macs, rel=1e-12)


@pytest.fixture(scope="module")
def sample_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("outputs") / "synthetic.npz"
    save_outputs(path, synthetic_outputs(exits=4, val_samples=200, test_samples=300, seed=1))
    return path


def test_cli_logits_json_is_the_api_calibration(capsys, small_costs, sample_file):
    code, out, err = run(capsys, "budget", *SMALL, "--logits", str(sample_file), "--format", "json")
    assert code == 0 and err == ""
    data = json.loads(out)
    assert data["logits"] == {"file": "synthetic.npz", "exits": 4, "classes": 10,
                              "val_samples": 200, "test_samples": 300}
    api = budgeted_batch(small_costs, load_outputs(sample_file))
    assert len(data["distributions"]) == 39
    for row, r in zip(data["distributions"], api):
        assert row["thresholds"] == list(r.thresholds)
        assert row["test_exit_counts"] == list(r.test.exit_counts)
        assert (row["val_accuracy"], row["test_accuracy"]) == (r.val.accuracy, r.test.accuracy)
        assert row["test_total_macs"] == r.macs * 300 and row["test_total_lazy_macs"] == r.lazy_macs * 300


@pytest.mark.parametrize("argv, message", [
    (["--fractions", "0.5,0.5"], "--fractions 0.5,0.5: must have 4 entries"),
    ([], "give --anytime BUDGET, --memory BYTES, or --fractions"),
    (["--anytime", "10M", "--geometric"], "--anytime (one budget per image) cannot be combined "
                                          "with --geometric"),
    (["--geometric", "--plot", "x.svg"], "--plot x.svg: needs --logits FILE"),
    (["--anytime", "lots"], "--anytime lots: must be a count like 300M"),
    (["--geometric", "--format", "xml"], "--format xml: must be one of table, json, csv"),
])
def test_cli_mistakes_are_one_line_with_exit_code_2(capsys, argv, message):
    code, out, err = run(capsys, "budget", *SMALL, *argv)
    assert code == 2 and out == ""
    assert err.startswith("msdprof: error: ") and message in err and err.count("\n") == 1


def test_cli_logits_for_another_network_is_one_line(capsys, sample_file):
    code, _, err = run(capsys, "budget", "--nBlocks", "3", "--logits", str(sample_file))
    assert code == 2
    assert err == f"msdprof: error: --logits {sample_file}: holds 4 exits; the network has nBlocks 3\n"


def test_cli_plot_refuses_to_overwrite_without_force(capsys, tmp_path, sample_file):
    plot = tmp_path / "curve.svg"
    plot.write_text("mine")
    code, _, err = run(capsys, "budget", *SMALL, "--logits", str(sample_file), "--plot", str(plot))
    assert code == 2 and "already exists; pass --force" in err and plot.read_text() == "mine"
    code, _, _ = run(capsys, "budget", *SMALL, "--logits", str(sample_file), "--plot", str(plot),
                     "--force")
    assert code == 0 and plot.read_bytes().startswith(b"<?xml") and b"<svg" in plot.read_bytes()


def test_cli_plot_is_the_same_bytes_every_time(capsys, tmp_path, sample_file):
    first, second = tmp_path / "a.svg", tmp_path / "b.svg"
    for path in (first, second):
        assert run(capsys, "budget", *SMALL, "--logits", str(sample_file), "--plot", str(path),
                   "--format", "csv")[0] == 0
    assert first.read_bytes() == second.read_bytes()


# --- the docs show what the commands draw --------------------------------------------------------

ROOT = Path(__file__).resolve().parent.parent


def test_the_docs_budget_picture_is_what_its_command_draws(capsys, tmp_path):
    # The budget page's two commands: SYNTHETIC outputs for 7 exits, then the plot for cifar10-batch.
    save_outputs(tmp_path / "synthetic-outputs.npz", synthetic_outputs(exits=7))
    plot = tmp_path / "budget-synthetic.svg"
    code, _, _ = run(capsys, "budget", "--preset", "cifar10-batch", "--logits",
                     str(tmp_path / "synthetic-outputs.npz"), "--plot", str(plot))
    assert code == 0 and plot.read_bytes() == (ROOT / "docs" / "budget-synthetic.svg").read_bytes()
