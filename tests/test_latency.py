"""``msdprof.analysis.latency`` and ``msdprof latency`` (issue 13): the machinery of measuring time per exit.

A timing is never asserted here (it depends on the machine and on what else runs on it).  What is
checked: each exit's timed program runs exactly that exit's modules -- eager: every module of
blocks and heads 1..k once (the names come from the module tree; the operations must be
``exit_costs``' cumulative figure), lazy: operations equal to ``exit_costs``' lazy figure (the
ancestors of exits 1..k in the connectivity graph) --, that the measurement times the programs the
seam gives for every exit, the JSON shape, the early-exit bookkeeping, Spearman's rho against
closed forms, and that every bad option is one line with exit code 2.
"""

from __future__ import annotations

import json
import math

import pytest
import torch

from msdnet import Options, build_model, preset
from msdnet.options import OptionError
from msdprof.analysis import latency
from msdprof.cli import main
from msdprof.core.dataflow import count_modules
from msdprof.core.exits import exit_costs
from msdprof.files.saved_outputs import save_outputs, synthetic_outputs

# The network of tests/test_early_exit.py: 4 exits over 3 scales, lazy < eager at exits 1-3.
SMALL = Options(nBlocks=4, step=1, base=1, nChannels=8, growthRate=4)
SIDE = 17
SMALL_ARGS = ["--nBlocks", "4", "--step", "1", "--base", "1", "--nChannels", "8", "--growthRate", "4",
              "--input-size", "17"]
QUICK = ["--min-time", "0.001"]  # the machinery, not a measurement


@pytest.fixture(scope="module")
def small():
    torch.manual_seed(0)
    return build_model(SMALL, SIDE).eval()


@pytest.fixture(scope="module")
def measured(small):
    x = latency.random_batch(2, (SIDE, SIDE))
    return latency.measure_latency(small, x, min_time=0.001, thresholds=[0.0, 2.0, 2.0, 2.0])


def counted_names(model, prefixes):
    """The modules count_modules counts (leaves and modules with their own parameters) under
    ``prefixes``: what running those submodules once must call, each once."""
    return {name for name, module in model.named_modules()
            if name.startswith(prefixes)
            and (next(module.children(), None) is None
                 or next(module.parameters(recurse=False), None) is not None)}


def prefixes(k):
    return tuple(f"{part}.{i}." for part in ("blocks", "classifiers") for i in range(k))


# --- the timed programs -------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["cifar10-batch", "imagenet-step4"])
def test_eager_program_of_exit_k_runs_every_module_of_blocks_and_heads_1_to_k_once(name):
    model = build_model(preset(name), device="meta")
    costs = exit_costs(name)
    x = torch.zeros(1, 3, *model.plan.input_size, device="meta")
    for k in range(1, model.nBlocks + 1):
        counts = count_modules(model, run=latency.eager_program(model, x, k))
        assert set(counts.modules) == counted_names(model, prefixes(k))
        assert {c.calls for c in counts.modules.values()} == {1}
        assert counts.total("msdnet") == costs[k - 1].macs


@pytest.mark.parametrize("name", ["cifar10-anytime", "imagenet-step4"])
def test_lazy_program_of_exit_k_runs_only_the_lazy_set_of_exits_1_to_k(name):
    model = build_model(preset(name), device="meta")
    costs = exit_costs(name)
    x = torch.zeros(1, 3, *model.plan.input_size, device="meta")
    for k in range(1, model.nBlocks + 1):
        counts = count_modules(model, run=latency.lazy_program(model, x, k))
        assert counts.total("msdnet") == costs[k - 1].lazy_macs  # the graph's ancestors of exits 1..k
        assert counts.params() == costs[k - 1].lazy_params
        assert {c.calls for c in counts.modules.values()} == {1}  # no map computed twice
        assert set(counts.modules) <= counted_names(model, prefixes(k))
        heads = {n for n in counts.modules if n.startswith("classifiers.")}
        assert heads == counted_names(model, tuple(f"classifiers.{i}." for i in range(k)))


def test_lazy_program_leaves_out_maps_when_the_lazy_set_is_smaller():
    model = build_model(preset("cifar10-anytime"), device="meta")
    x = torch.zeros(1, 3, 32, 32, device="meta")
    eager = count_modules(model, run=latency.eager_program(model, x, 1))
    lazy = count_modules(model, run=latency.lazy_program(model, x, 1))
    assert set(lazy.modules) < set(eager.modules)  # 13.38 M ops of 15.13 M: s0/l3, s0/l4, s1/l4 left out


def test_programs_return_the_logits_of_exits_1_to_k_as_a_full_forward_gives_them(small):
    x = latency.random_batch(3, (SIDE, SIDE), seed=5)
    with torch.no_grad():
        full = small(x)
    for k in range(1, small.nBlocks + 1):
        for make in (latency.eager_program, latency.lazy_program):
            logits = make(small, x, k)()
            assert len(logits) == k
            for got, want in zip(logits, full):
                torch.testing.assert_close(got, want)


def test_a_program_for_an_exit_the_network_lacks_is_refused(small):
    x = latency.random_batch(1, (SIDE, SIDE))
    for make in (latency.eager_program, latency.lazy_program):
        with pytest.raises(ValueError, match="exits 5: must be a whole number from 1 to 4"):
            make(small, x, 5)


# --- the measurement ---------------------------------------------------------------------------


def test_measurement_times_the_program_the_seam_gives_for_every_exit_and_mode(small):
    made, calls = [], []

    def recording(mode):
        def programs(model, x, k):
            made.append((mode, k))
            return lambda: calls.append((mode, k))
        return programs

    x = latency.random_batch(1, (SIDE, SIDE))
    result = latency.measure_latency(small, x, min_time=0.001,
                                     programs={"eager": recording("eager"), "lazy": recording("lazy")})
    assert made == [(mode, k) for k in range(1, 5) for mode in ("eager", "lazy")]
    for mode, k in made:  # warm-up calls, then at least one timed block
        assert calls.count((mode, k)) >= latency.WARMUP + 1
    for e in result.exits:
        assert e.eager.runs >= 1 and e.lazy.runs >= 1


def test_measurement_restores_the_thread_count_and_the_training_mode(small):
    threads = torch.get_num_threads()
    small.train()
    try:
        latency.measure_latency(small, latency.random_batch(1, (SIDE, SIDE)), threads=1,
                                min_time=0.001)
        assert small.training
    finally:
        small.eval()
    assert torch.get_num_threads() == threads


def test_per_exit_figures_are_the_costs_and_the_timings_per_g_op(measured):
    costs = exit_costs(SMALL, input_size=SIDE)
    assert [(e.exit, e.layer, e.macs, e.lazy_macs) for e in measured.exits] == [
        (c.exit, c.layer, c.macs, c.lazy_macs) for c in costs]
    for e in measured.exits:  # ms per 10^9 ops of the batch of 2
        assert e.eager_ms_per_gop == pytest.approx(e.eager.median_ms / (2 * e.macs / 1e9))
        assert e.lazy_ms_per_gop == pytest.approx(e.lazy.median_ms / (2 * e.lazy_macs / 1e9))
        assert e.eager.runs == e.eager.blocks * e.eager.per_block


def test_json_holds_per_exit_timings_and_the_machine(measured):
    data = json.loads(json.dumps(measured.as_dict()))
    for key in ("device", "threads", "batch", "torch", "cpu", "gpu", "exits", "spearman_eager",
                "spearman_lazy", "early_exit"):
        assert key in data
    assert (data["device"], data["threads"], data["batch"], data["gpu"]) == ("cpu", 1, 2, None)
    assert data["torch"] == torch.__version__
    assert [e["exit"] for e in data["exits"]] == [1, 2, 3, 4]
    for e in data["exits"]:
        for key in ("exit", "macs", "eager_ms", "eager_iqr_ms", "lazy_ms", "lazy_iqr_ms",
                    "eager_runs", "lazy_runs", "eager_ms_per_gop", "lazy_ms_per_gop"):
            assert key in e
        assert e["eager_ms"] > 0 and e["lazy_ms"] > 0


def test_spearman_is_the_rank_correlation_of_the_exits_times_with_their_ops(measured):
    assert measured.spearman_eager == latency.spearman([e.macs for e in measured.exits],
                                                       [e.eager.median_ms for e in measured.exits])
    assert measured.spearman_lazy == latency.spearman([e.lazy_macs for e in measured.exits],
                                                      [e.lazy.median_ms for e in measured.exits])


@pytest.mark.parametrize("xs, ys, rho", [
    ([1, 2, 3], [2, 4, 9], 1.0),
    ([1, 2, 3, 4], [9, 4, 2, 1], -1.0),
    # ranks 1, 2.5, 2.5, 4 and 1, 3, 2, 4: 4.5 / sqrt(4.5 * 5)
    ([1, 2, 2, 3], [1, 3, 2, 4], 4.5 / math.sqrt(22.5)),
    ([1, 2, 3, 4, 5], [1, 3, 2, 5, 4], 1 - 6 * 4 / (5 * 24)),  # no ties: 1 - 6 sum d^2 / n(n^2-1)
])
def test_spearman_matches_its_closed_form(xs, ys, rho):
    assert latency.spearman(xs, ys) == pytest.approx(rho)


def test_spearman_is_undefined_for_one_point_or_a_constant_side():
    assert latency.spearman([1], [2]) is None
    assert latency.spearman([1, 2, 3], [5, 5, 5]) is None


# --- early exit ----------------------------------------------------------------------------------


def test_early_exit_with_a_zero_first_threshold_sends_every_image_out_at_exit_1(measured):
    early = measured.early_exit
    assert early.images == 2 and early.images_per_exit == (2, 0, 0, 0)
    first = measured.exits[0]
    assert early.expected_macs == first.macs and early.expected_lazy_macs == first.lazy_macs
    assert early.predicted_eager_ms_per_image == pytest.approx(first.eager.median_ms / 2)
    assert early.predicted_lazy_ms_per_image == pytest.approx(first.lazy.median_ms / 2)
    assert early.eager_ms_per_image == early.eager.median_ms / 2


def test_early_exit_prediction_weighs_each_exit_by_the_share_that_left_there(small):
    x = latency.random_batch(4, (SIDE, SIDE), seed=3)
    top = torch.stack([torch.softmax(t, 1).max(1).values for t in small(x)]).detach()
    thresholds = [float(top[0].sort().values[2]), 2.0, 2.0, 2.0]  # the 2 most confident leave at exit 1
    result = latency.measure_latency(small, x, min_time=0.001, thresholds=thresholds)
    early, exits = result.early_exit, result.exits
    assert early.images_per_exit == (2, 0, 0, 2)
    assert early.predicted_eager_ms_per_image == pytest.approx(
        (exits[0].eager.median_ms + exits[3].eager.median_ms) / 2 / 4)
    assert early.expected_macs == (exits[0].macs + exits[3].macs) / 2


def test_thresholds_of_the_wrong_length_are_refused_before_any_timing(small):
    with pytest.raises(OptionError, match="must hold one number per exit"):
        latency.measure_latency(small, latency.random_batch(1, (SIDE, SIDE)), thresholds=[0.5])


# --- weights and inputs ------------------------------------------------------------------------


def test_weights_saved_from_one_network_load_into_another(small, tmp_path):
    torch.save(small.state_dict(), tmp_path / "w.pt")
    other = latency.load_weights(build_model(SMALL, SIDE), tmp_path / "w.pt")
    for (name, a), (_, b) in zip(small.state_dict().items(), other.state_dict().items()):
        assert torch.equal(a, b), name


def test_inputs_load_from_npz_and_must_fit_the_network(tmp_path):
    import numpy as np

    np.savez(tmp_path / "x.npz", x=np.zeros((5, 3, SIDE, SIDE), dtype=np.float32))
    assert latency.load_inputs(tmp_path / "x.npz", (SIDE, SIDE)).shape == (5, 3, SIDE, SIDE)
    with pytest.raises(OptionError, match=r"must hold float images \[N, 3, 32, 32\]"):
        latency.load_inputs(tmp_path / "x.npz", (32, 32))


# --- the command -------------------------------------------------------------------------------


def test_command_json_has_the_per_exit_keys_and_the_early_exit(capsys):
    code = main(["latency", *SMALL_ARGS, *QUICK, "--batch", "2", "--thresholds", "0,2,2,2",
                 "--format", "json"])
    assert code == 0
    data = json.loads(capsys.readouterr().out)
    assert data["batch"] == 2 and data["device"] == "cpu" and len(data["exits"]) == 4
    assert data["early_exit"]["images_per_exit"] == [2, 0, 0, 0]
    assert data["inputs"] == "random normal images"


def test_command_calibrates_thresholds_on_saved_outputs_for_p(tmp_path, capsys):
    save_outputs(tmp_path / "o.npz", synthetic_outputs(exits=4, val_samples=200, test_samples=10))
    from msdprof.analysis.budget import calibrate, geometric
    from msdprof.files.saved_outputs import load_outputs

    want = calibrate(load_outputs(tmp_path / "o.npz").val_pred, geometric(20, 4))
    assert main(["latency", *SMALL_ARGS, *QUICK, "--logits", str(tmp_path / "o.npz"), "--p", "20",
                 "--format", "json"]) == 0
    early = json.loads(capsys.readouterr().out)["early_exit"]
    assert early["thresholds"] == list(want)
    assert early["source"] == f"calibrated on {tmp_path / 'o.npz'}, p=20"


def test_command_writes_table_csv_markdown_and_plot(tmp_path, capsys):
    assert main(["latency", *SMALL_ARGS, *QUICK, "--thresholds", "0.5,0.5,0.5,0.5",
                 "--plot", str(tmp_path / "t.svg"), "-o", str(tmp_path / "t.txt")]) == 0
    text = (tmp_path / "t.txt").read_text()
    assert "MSDNet measured time per exit" in text and "Early exit: measured vs predicted" in text
    assert (tmp_path / "t.svg").read_text().startswith("<?xml")
    assert main(["latency", *SMALL_ARGS, *QUICK, "--format", "csv"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("exit,layer,macs,lazy_macs,eager_ms,eager_iqr_ms") and len(lines) == 5
    assert main(["latency", *SMALL_ARGS, *QUICK, "--format", "markdown"]) == 0
    assert capsys.readouterr().out.startswith("### MSDNet measured time per exit")


def test_command_times_the_images_given_and_the_first_batch_of_them(tmp_path, capsys):
    torch.save(torch.zeros(6, 3, SIDE, SIDE), tmp_path / "x.pt")
    assert main(["latency", *SMALL_ARGS, *QUICK, "--inputs", str(tmp_path / "x.pt"), "--batch", "3",
                 "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["batch"] == 3 and data["inputs"] == f"images of {tmp_path / 'x.pt'}"


BAD = [
    (["--batch", "0"], "--batch 0: must be a whole number >= 1"),
    (["--batch", "two"], "--batch two: must be a whole number >= 1"),
    (["--device", "tpu"], "--device tpu: must be cpu or cuda"),
    (["--threads", "0"], "--threads 0: must be a whole number >= 1"),
    (["--threads", "1025"], "--threads 1025: must be at most 1,024 (torch intra-op threads"),
    (["--batch", "65537"], "--batch 65537: must be at most 65,536 (images per timed call"),
    (["--batch", "9" * 30], f"--batch {'9' * 30}: must be at most 65,536"),
    (["--min-time", "0"], "--min-time 0: must be a number of seconds > 0"),
    (["--min-time", "x"], "--min-time x: must be a number of seconds > 0"),
    (["--format", "yaml"], "--format yaml: must be one of table, json, csv, markdown"),
    (["--thresholds", "0.5,0.5"], "--thresholds 0.5,0.5: thresholds [0.5, 0.5]: must hold one number per exit (4"),
    (["--thresholds", "0.5,x,1,1"], "--thresholds 0.5,x,1,1: must be 4 numbers joined by commas"),
    (["--thresholds", "1,1,1,1", "--logits", "o.npz", "--p", "3"], "--thresholds and --logits are two ways"),
    (["--logits", "o.npz"], "--logits FILE and --p P go together"),
    (["--logits", "/nonexistent/o.npz", "--p", "3"], "--logits /nonexistent/o.npz: does not exist"),
    (["--logits", "/nonexistent/o.npz", "--p", "0"], "--p 0: must be a whole number >= 1"),
    (["--plot", "t.png"], "--plot t.png: must be an .svg file"),
    (["--weights", "/nonexistent/w.pt"], "--weights /nonexistent/w.pt: does not exist"),
    (["--inputs", "/nonexistent/x.npz"], "--inputs /nonexistent/x.npz: does not exist"),
    (["-o", "/nonexistent/t.txt"], "--output /nonexistent/t.txt: directory /nonexistent does not exist"),
]


@pytest.mark.parametrize("argv, message", BAD, ids=[" ".join(a) for a, _ in BAD])
def test_bad_option_is_one_line_rc_2_and_writes_nothing(argv, message, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    code = main(["latency", *SMALL_ARGS, *QUICK, *argv])
    out, err = capsys.readouterr()
    assert (code, out) == (2, "")
    assert err.startswith("msdprof: error: ") and err.count("\n") == 1, err
    assert message in err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_without_cuda_is_one_line_rc_2(capsys):
    assert main(["latency", *SMALL_ARGS, "--device", "cuda"]) == 2
    err = capsys.readouterr().err
    assert err == f"msdprof: error: --device cuda: CUDA is not available here (torch {torch.__version__}); use cpu\n"


def test_weights_of_another_network_are_one_line_rc_2(small, tmp_path, monkeypatch, capsys):
    torch.save(small.state_dict(), tmp_path / "w.pt")
    code = main(["latency", "--nBlocks", "3", "--base", "1", "--step", "1", "--nChannels", "8",
                 "--growthRate", "4", "--input-size", "17", "--weights", str(tmp_path / "w.pt")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert f"--weights {tmp_path / 'w.pt'}: does not fit this network: " in err
    assert "give the options it was trained with" in err


def test_inputs_of_the_wrong_size_are_one_line_rc_2(tmp_path, capsys):
    torch.save(torch.zeros(2, 3, 20, 20), tmp_path / "x.pt")
    assert main(["latency", *SMALL_ARGS, "--inputs", str(tmp_path / "x.pt")]) == 2
    err = capsys.readouterr().err
    assert "holds (2, 3, 20, 20): must hold float images [N, 3, 17, 17]" in err and err.count("\n") == 1


def test_a_batch_larger_than_the_inputs_is_one_line_rc_2(tmp_path, capsys):
    torch.save(torch.zeros(2, 3, SIDE, SIDE), tmp_path / "x.pt")
    assert main(["latency", *SMALL_ARGS, "--inputs", str(tmp_path / "x.pt"), "--batch", "3"]) == 2
    assert capsys.readouterr().err == (f"msdprof: error: --batch 3: is more than the 2 images of "
                                       f"{tmp_path / 'x.pt'}\n")
