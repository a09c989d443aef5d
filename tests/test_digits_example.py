"""examples/digits.py (issue 6): the pieces checkable without the quarter hour of training — the input
fits the network, the split is seeded, disjoint and whole — and the committed reports/digits/ is
what msdprof computes from the committed outputs: the per-exit table, the calibration table, the
`msdprof budget` command the page gives, and the curve, byte for byte.  The training itself runs in
`make digits`, not here."""

from __future__ import annotations

import importlib.util
import json
import re
import shlex
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from msdnet import build_model
from msdnet.plan import input_size_range
from msdprof.analysis import latency
from msdprof.render.budget_view import accuracy_plot
from msdprof.cli import main as cli_main
from msdprof.files.saved_outputs import load_outputs

ROOT = Path(__file__).resolve().parents[1]
FOLDER = ROOT / "reports" / "digits"


def _load_example():
    spec = importlib.util.spec_from_file_location("digits_example", ROOT / "examples" / "digits.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is made
    spec.loader.exec_module(module)
    return module


digits = _load_example()


@pytest.fixture(scope="module")
def committed():
    """The committed outputs, page and the analysis of those outputs."""
    outputs = load_outputs(FOLDER / digits.OUTPUTS, exits=digits.OPTIONS.nBlocks)
    costs, rows = digits.analyse(outputs)
    return outputs, costs, rows, (FOLDER / digits.PAGE).read_text()


# --- data: no training, no scikit-learn -----------------------------------------------------------


def test_input_is_the_smallest_side_the_network_takes_and_fits_it():
    assert digits.SIDE == input_size_range(digits.OPTIONS)[0] == 17
    images = np.random.default_rng(0).integers(0, 17, (4, 8, 8))  # grey levels 0..16, as digits
    x = digits.to_input(images)
    assert x.shape == (4, 3, 17, 17) and x.dtype == torch.float32
    assert torch.equal(x[:, 0], x[:, 1]) and torch.equal(x[:, 0], x[:, 2])  # grey, 3 times
    assert float(x.min()) >= -1 and float(x.max()) <= 1
    logits = build_model(digits.OPTIONS, digits.SIDE, device="meta")(x.to("meta"))
    assert [tuple(t.shape) for t in logits] == [(4, 10)] * digits.OPTIONS.nBlocks


def test_split_is_seeded_disjoint_and_covers_every_image():
    train, val, test = digits.split_indices(1797, seed=0)
    assert (len(train), len(val), len(test)) == (1079, 359, 359)
    assert sorted(np.concatenate([train, val, test]).tolist()) == list(range(1797))
    again = digits.split_indices(1797, seed=0)
    assert all(np.array_equal(a, b) for a, b in zip((train, val, test), again))
    assert not np.array_equal(digits.split_indices(1797, seed=1)[2], test)


def test_learning_rate_is_divided_by_10_at_half_and_three_quarters():
    assert [digits.learning_rate(e, 8) for e in range(8)] == pytest.approx(
        [0.1] * 4 + [0.01] * 2 + [0.001] * 2)


def test_digits_load_as_network_input():
    pytest.importorskip("sklearn")
    x, y = digits.load_images()
    assert x.shape == (1797, 3, 17, 17) and y.shape == (1797,)
    assert sorted(y.unique().tolist()) == list(range(10))


def test_whole_pipeline_runs_on_a_few_random_images_for_one_epoch(tmp_path, monkeypatch, capsys):
    # Not the training of the page: 1 epoch on 120 random "digits", to run every step of main().
    rng = np.random.default_rng(0)
    images, targets = rng.integers(0, 17, (120, 8, 8)), torch.as_tensor(rng.integers(0, 10, 120))
    monkeypatch.setattr(digits, "load_images", lambda: (digits.to_input(images), targets))
    threads = torch.get_num_threads()
    try:
        with torch.random.fork_rng():  # main() seeds torch and sets its threads: restore both
            assert digits.main(["--out", str(tmp_path / "d"), "--epochs", "1"]) == 0
    finally:
        torch.set_num_threads(threads)
    assert sorted(p.name for p in (tmp_path / "d").iterdir()) == sorted(
        [digits.OUTPUTS, digits.PLOT, digits.PAGE, digits.WEIGHTS, digits.TEST_INPUTS])
    outputs = load_outputs(tmp_path / "d" / digits.OUTPUTS, exits=5)
    assert (outputs.val_samples, outputs.test_samples) == (24, 24)
    assert "39 of the 39 members" in (tmp_path / "d" / digits.PAGE).read_text()
    assert "early exit agrees with the calibration: 78 of 78" in capsys.readouterr().out


# --- the committed reports/digits/: what msdprof computes from the committed outputs -------------


def test_committed_outputs_are_the_example_network_s(committed):
    outputs, costs, _, _ = committed
    assert (outputs.exits, outputs.classes, outputs.val_samples, outputs.test_samples) == (5, 10, 359, 359)
    assert costs.input_size == (17, 17) and costs.options == digits.OPTIONS


def test_committed_page_shows_the_costs_and_exit_accuracies_of_the_committed_outputs(committed):
    outputs, costs, _, page = committed
    assert digits.exit_table(costs, outputs) in page


def test_committed_page_shows_exactly_the_calibration_of_the_committed_outputs(committed):
    outputs, costs, rows, page = committed
    assert digits.calibration_table(costs, rows) in page
    row = next(r for r in rows if r.distribution.p == digits.CHECK_P)
    counts = " ".join(map(str, row.test.exit_counts))
    assert f"| calibration (`budgeted_batch`, saved outputs) | {counts} | {row.test.correct} |" in page


def test_committed_page_records_that_early_exit_agreed_with_the_calibration(committed):
    page = committed[3]
    for lazy in (False, True):
        assert (f"`lazy={lazy}`: the early exit takes exactly the exits and gets exactly the correct "
                "count the calibration predicts for 39 of the 39 members of the family.") in page


def test_the_msdprof_budget_command_on_the_page_gives_the_same_calibration(committed, capsys,
                                                                          monkeypatch):
    outputs, costs, rows, page = committed
    line = re.search(r"`(msdprof budget [^`]*)`", page).group(1)
    monkeypatch.chdir(ROOT)  # the page names the outputs relative to the repository
    assert cli_main(shlex.split(line)[1:] + ["--format", "json"]) == 0
    shown = json.loads(capsys.readouterr().out)["distributions"]
    assert [d["p"] for d in shown] == [r.distribution.p for r in rows]
    assert [d["test_accuracy"] for d in shown] == [r.test.accuracy for r in rows]
    assert [d["expected_macs"] for d in shown] == [float(r.macs) for r in rows]


def test_committed_weights_and_test_inputs_give_the_committed_test_outputs(committed):
    # the state dict and inputs digits.py saves beside the outputs are the ones that made them
    outputs = committed[0]
    model = latency.load_weights(build_model(digits.OPTIONS, digits.SIDE), FOLDER / digits.WEIGHTS)
    x = latency.load_inputs(FOLDER / digits.TEST_INPUTS, (digits.SIDE, digits.SIDE))
    assert x.shape == (outputs.test_samples, 3, digits.SIDE, digits.SIDE)
    torch.testing.assert_close(digits.softmax_outputs(model, x), outputs.test_pred)


def test_the_msdprof_latency_command_on_the_page_runs_the_trained_early_exit(committed, capsys,
                                                                            monkeypatch):
    # the timings are not checked; where the test images leave is: as the calibration predicts
    outputs, costs, rows, page = committed
    line = re.search(r"`(msdprof latency [^`]*)`", page).group(1)
    monkeypatch.chdir(ROOT)
    assert cli_main(shlex.split(line)[1:] + ["--min-time", "0.001", "--format", "json"]) == 0
    early = json.loads(capsys.readouterr().out)["early_exit"]
    row = next(r for r in rows if r.distribution.p == digits.CHECK_P)
    assert early["images_per_exit"] == list(row.test.exit_counts)
    assert early["thresholds"] == list(row.thresholds)


def test_committed_curve_is_the_plot_of_the_committed_outputs(committed):
    outputs, costs, rows, _ = committed
    assert (FOLDER / digits.PLOT).read_bytes() == accuracy_plot(costs, outputs, rows, digits.NAME), (
        "reports/digits/digits-budget.svg differs from the plot of the committed outputs: "
        "run `make digits`")


def test_committed_page_holds_no_absolute_path_and_no_date(committed):
    for text in (committed[3], (FOLDER / digits.PLOT).read_text()):
        assert "/work/" not in text and "/tmp" not in text and "/home/" not in text
        assert not re.search(r"20\d\d-\d\d-\d\d", text)
