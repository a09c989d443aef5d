"""``--model FILE.py:FACTORY``: the CLI counts and draws the user's own early-exit network."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from msdprof import exit_costs
from cli_run import run

from early_exit_models import BranchyDict, SDNResNet

FACTORIES = '''
import torch
from torch import nn
from early_exit_models import SDNResNet, BranchyDict

def sdn(width=8):
    return SDNResNet(width=width)

def branchy():
    return BranchyDict()

def broken():
    raise RuntimeError("weights not found\\nsecond line")

def single():
    return nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 2))

def not_a_model():
    return 42

def msdnet():
    from msdnet import build_model, preset
    return build_model(preset("cifar10-anytime"))
'''


@pytest.fixture
def folder(model_folder):
    """A folder holding models.py (the factories) beside a copy of the test models."""
    return model_folder(FACTORIES)


def test_count_json_of_a_model_file_equals_the_api(folder, capsys):
    code, out, _ = run(capsys, "count", "--model", "models.py:sdn", "--input-size", "3x16x16", "--format", "json")
    assert code == 0
    expected = exit_costs(SDNResNet().eval(), input_size=16).as_dict()
    assert json.loads(out) == {"spec": "models.py:sdn", **json.loads(json.dumps(expected))}


def test_model_kwargs_reach_the_factory(folder, capsys):
    code, out, _ = run(capsys, "count", "--model", "models.py:sdn", "--model-kwargs", '{"width": 4}',
                       "--input-size", "16", "--format", "csv")
    assert code == 0
    last = out.strip().splitlines()[-1].split(",")
    assert int(last[2]) == exit_costs(SDNResNet(width=4).eval(), input_size=16).total_macs


def test_the_table_names_the_model_and_its_exits(folder, capsys):
    code, out, _ = run(capsys, "count", "--model", "models.py:branchy", "--input-size", "16")
    assert code == 0
    assert "BranchyDict per-exit cost: models.py:branchy" in out
    assert "exits 1=early, 2=final" in out


def test_a_checkpoint_saved_as_the_authors_main_py_does_is_loaded(folder, capsys):
    model = BranchyDict()
    state = {f"module.{k}": v for k, v in model.state_dict().items()}
    torch.save({"epoch": 3, "state_dict": state}, folder / "ckpt.pth.tar")
    code, out, err = run(capsys, "count", "--model", "models.py:branchy", "--input-size", "16",
                         "--checkpoint", "ckpt.pth.tar", "--format", "json")
    assert (code, err) == (0, "")
    assert json.loads(out)["total"]["params"] == sum(p.numel() for p in model.parameters())


def test_graph_json_of_a_model_marks_exits_and_keeps_ancestry(folder, capsys):
    code, _, _ = run(capsys, "graph", "--model", "models.py:branchy", "--input-size", "16", "-o", "g.json")
    assert code == 0
    data = json.loads((folder / "g.json").read_text())
    exits = {n["id"]: n for n in data["nodes"] if n["kind"] == "exit"}
    assert sorted(exits) == ["exit1", "exit2"] and exits["exit1"]["name"] == "early"
    parents = {e["target"]: e["source"] for e in data["edges"]}
    assert parents["exit1"] == "branches.early.2"


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz is not installed")
def test_graph_svg_highlights_what_an_exit_needs(folder, capsys):
    code, _, _ = run(capsys, "graph", "--model", "models.py:branchy", "--input-size", "16", "--exit", "1",
                     "-o", "g.svg")
    assert code == 0
    svg = (folder / "g.svg").read_text()
    assert "what exit 1 needs" in svg and "trunk.0.0" in svg


ERRORS = [
    (["--model", "models.py"], "--model models.py: must be FILE.py:FACTORY or package.module:FACTORY"),
    (["--model", "nowhere.py:sdn"], "--model nowhere.py:sdn: no file nowhere.py"),
    (["--model", "models.py:resnet"], "--model models.py:resnet: models.py defines no resnet (it defines: "
                                      "branchy, broken, msdnet, not_a_model, sdn, single)"),
    (["--model", "no_such_package.models:sdn"], "--model no_such_package.models:sdn: no module "
                                                "'no_such_package' to import (or give FILE.py:FACTORY)"),
    (["--model", "models.py:broken"], "--model models.py:broken: calling broken() failed: RuntimeError: "
                                      "weights not found"),
    (["--model", "models.py:not_a_model"], "--model models.py:not_a_model: not_a_model() returned a int, "
                                           "not an nn.Module"),
    (["--model", "models.py:single"], "--outputs missing: Sequential returns 1 output (a tensor): an early-exit "
                                      "network returns one output per exit; pick one tensor per exit with "
                                      "--outputs"),
    (["--model", "models.py:sdn", "--model-kwargs", "width=4"], "--model-kwargs width=4: must be a JSON object"),
    (["--model", "models.py:sdn", "--nBlocks", "3"], "--nBlocks 3: is an MSDNet option: --model counts "
                                                     "your model as built; give one or the other"),
    (["--checkpoint", "x.pt"], "--checkpoint x.pt: needs --model"),
    (["--model", "models.py:sdn", "--checkpoint", "missing.pt"], "--checkpoint missing.pt: no such file"),
]


@pytest.mark.parametrize("argv, message", ERRORS, ids=[e[1][:40] for e in ERRORS])
def test_model_errors_are_one_line(folder, capsys, argv, message):
    extra = [] if "--input-size" in argv or argv[0] == "--checkpoint" and len(argv) == 2 else ["--input-size", "8"]
    code, out, err = run(capsys, "count", *argv, *extra)
    assert code == 2 and out == ""
    assert err.startswith(f"msdprof: error: {message}") and err.count("\n") == 1


def test_an_input_the_model_refuses_names_its_shape_and_the_complaint(folder, capsys):
    code, _, err = run(capsys, "count", "--model", "models.py:sdn", "--input-size", "1x16x16")
    assert code == 2
    assert err.startswith("msdprof: error: --input-size 1x1x16x16: SDNResNet failed on it: RuntimeError: ")


def test_model_needs_an_input_size(folder, capsys):
    code, _, err = run(capsys, "count", "--model", "models.py:sdn")
    assert (code, err) == (2, "msdprof: error: --input-size missing: --model needs its inputs: --input-size "
                              "SIZE (e.g. 3x32x32 or 1x128:long) or --inputs FILE\n")


def test_debug_prints_the_traceback_of_the_users_code(folder, capsys):
    code, _, err = run(capsys, "count", "--model", "models.py:broken", "--input-size", "8", "--debug")
    assert code == 2
    assert "Traceback" in err and 'raise RuntimeError("weights not found' in err


def test_a_checkpoint_that_does_not_fit_says_which_keys(folder, capsys):
    torch.save({"trunk.0.0.weight": torch.zeros(1)}, folder / "bad.pt")
    code, _, err = run(capsys, "count", "--model", "models.py:branchy", "--input-size", "8", "--checkpoint", "bad.pt")
    assert code == 2
    assert err.startswith("msdprof: error: --checkpoint bad.pt: does not fit the model: ")


def test_budget_of_a_model_file_uses_its_exit_costs(folder, capsys):
    code, out, _ = run(capsys, "budget", "--model", "models.py:sdn", "--input-size", "16",
                       "--fractions", "0.5,0.3,0.2", "--format", "json")
    assert code == 0
    data = json.loads(out)
    macs = [e.macs for e in exit_costs(SDNResNet().eval(), input_size=16)]
    assert data["spec"] == "models.py:sdn" and data["model"] == "SDNResNet"
    assert data["distributions"][0]["expected_macs"] == pytest.approx(0.5 * macs[0] + 0.3 * macs[1] + 0.2 * macs[2])


def test_budget_fractions_are_checked_against_the_models_exits(folder, capsys):
    code, _, err = run(capsys, "budget", "--model", "models.py:sdn", "--input-size", "16", "--fractions", "0.5,0.5")
    assert code == 2 and err.startswith("msdprof: error: --fractions 0.5,0.5: ") and "3" in err


def test_count_of_a_factory_returning_an_msdnet_equals_its_preset(folder, capsys):
    code, out, _ = run(capsys, "count", "--model", "models.py:msdnet", "--input-size", "32",
                       "--format", "json")
    assert code == 0
    assert json.loads(out)["exits"] == json.loads(json.dumps(exit_costs("cifar10-anytime").as_dict()))["exits"]


# --- a model without weights (issue 33 item 15) -------------------------------------------------------

ON_META = '''
import torch
from early_exit_models import SDNResNet

def on_meta():
    with torch.device("meta"):
        return SDNResNet()
'''


@pytest.fixture
def meta_folder(model_folder):
    return model_folder(ON_META)


@pytest.mark.parametrize("argv, message", [
    (["latency", "--min-time", "0.001"],
     "--model models.py:on_meta: has no weights to run: its stem.0.weight is on the meta device (no "
     "values); count it on meta (msdprof count), or load its weights with --checkpoint FILE"),
    (["count", "--device", "cpu"],
     "--device cpu: models.py:on_meta has no weights to run: its stem.0.weight is on the meta device (no "
     "values); count it on meta (leave out --device), or load its weights with --checkpoint FILE"),
    (["count", "--device", "cpu", "--memory"], "--device cpu: models.py:on_meta has no weights to run"),
], ids=["latency", "count --device cpu", "count --memory --device cpu"])
def test_a_model_built_on_meta_is_not_run_and_says_what_to_do_in_one_line(meta_folder, capsys, argv, message):
    code, out, err = run(capsys, argv[0], "--model", "models.py:on_meta", "--input-size", "32", *argv[1:])
    assert (code, out) == (2, "")
    assert err.startswith(f"msdprof: error: {message}") and err.count("\n") == 1


def test_a_model_built_on_meta_is_counted_where_it_was_built(meta_folder, capsys):
    code, _, err = run(capsys, "count", "--model", "models.py:on_meta", "--input-size", "32", "--format", "json")
    assert (code, err) == (0, "")


def test_a_model_built_on_meta_runs_with_the_weights_of_a_checkpoint(meta_folder, capsys):
    torch.save(SDNResNet().state_dict(), meta_folder / "w.pt")
    code, out, err = run(capsys, "count", "--model", "models.py:on_meta", "--checkpoint", "w.pt",
                         "--input-size", "32", "--device", "cpu", "--format", "json")
    assert (code, err) == (0, "") and len(json.loads(out)["exits"]) == 3
