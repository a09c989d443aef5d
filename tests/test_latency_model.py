"""``msdprof latency`` on any early-exit network (issue 13): the time to each output within one full
forward, from timestamps read only where the outputs are made (:mod:`msdprof.analysis.stamps`).

No timing is asserted (it depends on the machine).  What is checked: each stamp sits where the
output is made -- against an independent finder (forward hooks on every module, looking for the
call that returned the very tensor the model returned) --, function-made outputs get the next hook
and are marked upper bounds, only the stamped modules get hooks and none is left behind, a model
that takes another path when timed is refused, the clock readings come in execution order, the
JSON shape, and every bad option of ``--model`` is one line with exit code 2.
"""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from early_exit_models import BranchyDict, CoarseToFine, SDNResNet, SharedBlock
from msdnet import build_model, preset
from msdnet.options import OptionError
from msdprof.analysis import latency
from msdprof.cli import main
from msdprof.core.exits import record_exits
from msdprof.analysis.stamps import Stamp, Stamper, check_stamps, stamp_points

QUICK = ["--min-time", "0.001"]  # the machinery, not a measurement


class FunctionMade(nn.Module):
    """Exit 1 made by ``flatten`` in ``forward`` (no module returns it), exit 2 by ``torch.cat`` as
    the last thing the forward does."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.conv2 = nn.Conv2d(4, 4, 3, padding=1)

    def forward(self, x):
        h = self.conv(x)
        a = self.pool(h).flatten(1)
        b = torch.cat([self.pool(self.conv2(h)).flatten(1), a], 1)
        return [a, b]


class BatchDependent(nn.Module):
    """Exit 1 comes from head ``a`` on one image and from head ``b`` on a larger batch."""

    def __init__(self):
        super().__init__()
        self.body = nn.Conv2d(3, 4, 3)
        self.a, self.b, self.c = nn.Linear(4, 2), nn.Linear(4, 2), nn.Linear(4, 2)

    def forward(self, x):
        h = self.body(x).mean((2, 3))
        return [(self.a if len(x) == 1 else self.b)(h), self.c(h)]


def returned_by(model, x):
    """Independent of msdprof: per output, (module name, call number) of the first module call
    (the innermost) that returned that very tensor, from forward hooks on every module."""
    calls, returned, handles = {}, [], []

    def hook(name):
        def record(module, args, output):
            calls[name] = calls.get(name, 0) + 1
            items = output if isinstance(output, (list, tuple)) else [output]
            returned.extend((t, name, calls[name]) for t in items if isinstance(t, torch.Tensor))
        return record

    for name, module in model.named_modules():
        if name:
            handles.append(module.register_forward_hook(hook(name)))
    try:
        with torch.no_grad():
            out = model(x)
    finally:
        for h in handles:
            h.remove()
    tensors = list(out.values()) if isinstance(out, dict) else list(out)
    return [next((name, n) for t, name, n in returned if t is tensor) for tensor in tensors]


def stamps_of(model, side=32):
    return stamp_points(record_exits(model.eval(), input_size=side))


# --- where the clock is read -----------------------------------------------------------------


@pytest.mark.parametrize("make", [SDNResNet, CoarseToFine, BranchyDict, SharedBlock])
def test_each_stamp_sits_at_the_module_call_that_returned_the_output(make):
    torch.manual_seed(0)
    model = make().eval()
    stamps = stamps_of(model)
    assert all(s.when == "end" and s.exact for s in stamps)
    assert [(s.module, s.call) for s in stamps] == returned_by(model, torch.randn(1, 3, 32, 32))


def test_a_module_called_twice_is_stamped_at_the_call_that_made_the_output():
    stamps = stamps_of(SharedBlock())
    assert [(s.module, s.call) for s in stamps] == [("head.2", 1), ("head.2", 2)]
    assert stamps[1].describe() == "head.2 (call 2) returns"


def test_dict_exits_keep_their_names():
    assert [s.name for s in stamps_of(BranchyDict())] == ["early", "final"]


def test_an_output_made_by_a_functional_op_is_read_when_the_next_module_starts():
    first, _ = stamps_of(FunctionMade(), 8)
    assert first == Stamp(1, "1", "start", "conv2", 1, "flatten")
    assert not first.exact and first.describe() == "conv2 starts (after flatten)"


def test_an_output_made_after_the_last_module_is_read_when_the_forward_returns():
    _, last = stamps_of(FunctionMade(), 8)
    assert last == Stamp(2, "2", "return", None, 0, "cat")
    assert last.describe() == "forward returns (after cat)"


def test_an_msdnet_is_stamped_where_each_classifier_returns():
    model = build_model(preset("cifar10-anytime"), device="meta")
    stamps = stamp_points(record_exits(model))
    assert [(s.module, s.when) for s in stamps] == [(f"classifiers.{k}.linear", "end") for k in range(10)]


# --- the hooks ---------------------------------------------------------------------------------


def hooked(model):
    return {name for name, m in model.named_modules() if m._forward_hooks or m._forward_pre_hooks}


def test_only_the_stamped_modules_get_hooks_and_only_inside_the_with_block():
    model = SDNResNet().eval()
    stamper = Stamper(model, stamps_of(model))
    with stamper:
        assert hooked(model) == {"internal.0.2", "internal.1.2", "fc"}
    assert hooked(model) == set()


def test_clock_readings_come_in_execution_order_and_end_at_the_return():
    model = SDNResNet().eval()
    with Stamper(model, stamps_of(model)) as stamper:
        times, out = stamper.run(torch.randn(2, 3, 32, 32))
    assert len(times) == 4 and times == sorted(times) and times[0] > 0
    assert len(out) == 3


def test_hook_calls_count_each_pre_hook_and_each_stamping_forward_hook():
    model = SharedBlock().eval()  # head.2 runs twice: 2 pre-hook calls, 2 forward-hook calls
    with Stamper(model, stamps_of(model)) as stamper:
        stamper.run(torch.randn(1, 3, 32, 32))
        assert stamper.hook_calls == 4


def test_a_model_that_takes_another_path_when_timed_is_refused():
    model = BatchDependent().eval()
    stamps = stamp_points(record_exits(model, input_size=8))  # recorded on one image: head a
    with Stamper(model, stamps) as stamper, pytest.raises(OptionError, match="another path"):
        check_stamps(stamper, (torch.randn(2, 3, 8, 8),), list)


def test_measurement_leaves_no_hooks_no_attributes_and_the_modes_as_they_were():
    model = SDNResNet()
    model.train()
    model.fc.eval()
    before = {name: (m.training, set(vars(m))) for name, m in model.named_modules()}
    latency.measure_latency(model, torch.randn(1, 3, 32, 32), min_time=0.001)
    assert hooked(model) == set()
    assert {name: (m.training, set(vars(m))) for name, m in model.named_modules()} == before


def test_a_data_parallel_model_is_timed_through_the_module_it_wraps():
    # issue 33 item 14: the stamps name the wrapped module's submodules (head1.2), which the wrapper
    # holds as module.head1.2: a traceback
    inner = SDNResNet().eval()
    wrapped = nn.DataParallel(inner)
    result = latency.measure_latency(wrapped, torch.randn(1, 3, 32, 32), min_time=0.001)
    assert [e.stamp for e in result.exits] == list(stamps_of(inner))
    assert all(e.forward.runs >= 5 for e in result.exits)
    assert hooked(wrapped) == set()


# --- the measurement -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def measured():
    torch.manual_seed(0)
    return latency.measure_latency(BranchyDict(), torch.randn(3, 3, 32, 32), min_time=0.001)


def test_a_model_msdprof_did_not_build_gets_in_forward_times_and_no_programs(measured):
    assert not measured.programs and measured.batch == 3
    assert [e.name for e in measured.exits] == ["early", "final"]
    for e in measured.exits:
        assert e.eager is None and e.lazy is None and e.forward.runs >= 5
    assert measured.spearman_eager is None and measured.spearman_lazy is None


def test_its_operations_are_the_exit_costs_of_one_item_of_the_batch(measured):
    from msdprof.core.exits import exit_costs

    costs = exit_costs(BranchyDict(), input_size=32)
    assert [(e.macs, e.lazy_macs) for e in measured.exits] == [(c.macs, c.lazy_macs) for c in costs]


def test_the_full_forward_is_timed_with_and_without_the_hooks_alike(measured):
    f = measured.forward
    assert f.plain.runs == f.stamped.runs == measured.exits[0].forward.runs
    assert f.hook_calls == 4 and f.hook_ns > 0
    assert f.overhead.runs == f.plain.runs  # one difference per pair


def test_json_of_a_model_names_its_spec_stamps_and_forward(measured):
    from msdprof.render import latency_view

    data = json.loads(latency_view.render_json(measured, "m.py:make"))
    assert data["spec"] == "m.py:make" and data["model"] == "BranchyDict" and data["options"] is None
    assert data["input_shapes"] == [[3, 3, 32, 32]] and data["batch"] == 3
    first = data["exits"][0]
    assert first["name"] == "early" and first["eager_ms"] is None and first["lazy_ms"] is None
    assert first["stamp"] == {"when": "end", "module": "branches.early.2", "call": 1,
                              "made_by": None, "exact": True}
    assert set(data["forward"]) == {"plain", "stamped", "overhead_ms", "overhead_iqr_ms",
                                    "hook_calls", "hook_ns", "hooks_ms"}


def test_thresholds_and_programs_need_an_msdnet():
    x = torch.randn(1, 3, 32, 32)
    with pytest.raises(OptionError, match="thresholds given: need an MSDNet"):
        latency.measure_latency(SDNResNet(), x, min_time=0.001, thresholds=[0.5, 0.5, 0.5])
    with pytest.raises(OptionError, match="programs given: need an MSDNet"):
        latency.measure_latency(SDNResNet(), x, min_time=0.001, programs=latency.PROGRAMS)


def test_an_empty_batch_and_a_non_tensor_are_refused():
    with pytest.raises(OptionError, match="inputs Tensor: must be batch tensors .* at least one item"):
        latency.measure_latency(SDNResNet(), torch.zeros(0, 3, 8, 8), min_time=0.001)
    with pytest.raises(OptionError, match="inputs str: must be a tensor, a tuple or list"):
        latency.measure_latency(SDNResNet(), "x", min_time=0.001)


def test_an_msdnet_gets_in_forward_times_beside_its_programs():
    torch.manual_seed(0)
    model = build_model(preset("cifar10-anytime"))
    result = latency.measure_latency(model, torch.randn(1, 3, 32, 32), min_time=0.001)
    assert result.programs and all(e.eager and e.lazy and e.forward.runs >= 5 for e in result.exits)
    assert result.forward.hook_calls == 20  # 10 classifiers' Linear: a pre-hook and a forward hook


# --- the command -----------------------------------------------------------------------------------


MODEL_FILE = '''
from early_exit_models import SDNResNet


def make(width=8):
    return SDNResNet()
'''


@pytest.fixture()
def model_file(model_folder):
    model_folder(MODEL_FILE)
    return "models.py:make"


def test_command_times_a_model_file_and_writes_json_and_a_plot(model_file, tmp_path, capsys):
    plot = tmp_path / "t.svg"
    assert main(["latency", "--model", model_file, "--input-size", "32", "--batch", "2",
                 "--format", "json", "--plot", str(plot), *QUICK]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["model"] == "SDNResNet" and data["batch"] == 2 and len(data["exits"]) == 3
    assert plot.read_text().startswith("<?xml")


def test_command_table_of_a_model_says_how_it_was_timed(model_file, capsys):
    assert main(["latency", "--model", model_file, "--input-size", "32", *QUICK]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "SDNResNet measured time per exit" in out and "fwd ms" in out
    assert "the hooks cost" in out and "No lazy time" in out


def test_command_reads_inputs_of_the_model_s_shape(model_file, tmp_path, capsys):
    import numpy as np

    path = tmp_path / "x.npz"
    np.savez(path, x=np.zeros((4, 3, 32, 32), dtype=np.float32))
    assert main(["latency", "--model", model_file, "--input-size", "3x32x32", "--inputs", str(path),
                 "--batch", "2", "--format", "json", *QUICK]) == 0
    assert json.loads(capsys.readouterr().out)["batch"] == 2


def test_command_times_a_data_parallel_model_a_factory_returns(model_folder, capsys):
    model_folder("from torch import nn\nfrom early_exit_models import SDNResNet\n\n\n"
                 "def wrapped():\n    return nn.DataParallel(SDNResNet())\n")
    assert main(["latency", "--model", "models.py:wrapped", "--input-size", "32", "--format", "json",
                 *QUICK]) == 0
    out, err = capsys.readouterr()
    assert err == "" and len(json.loads(out)["exits"]) == 3


@pytest.mark.parametrize("extra, message", [
    (["--weights", "w.pt"], "--weights w.pt: is not for --model: give your model's state dict with --checkpoint"),
    (["--thresholds", "0.5,0.5,0.5"], "--thresholds 0.5,0.5,0.5: is not for --model: timing an early exit"),
    (["--logits", "o.npz", "--p", "20"], "--logits o.npz: is not for --model"),
    (["--preset", "cifar10-anytime"], "--preset cifar10-anytime: is an MSDNet option"),
])
def test_command_refuses_what_is_only_for_an_msdnet(model_file, extra, message, capsys):
    assert main(["latency", "--model", model_file, "--input-size", "32", *extra, *QUICK]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_command_refuses_inputs_of_another_shape(model_file, tmp_path, capsys):
    import numpy as np

    path = tmp_path / "x.npz"
    np.savez(path, x=np.zeros((4, 1, 32, 32), dtype=np.float32))
    assert main(["latency", "--model", model_file, "--input-size", "32", "--inputs", str(path),
                 *QUICK]) == 2
    err = capsys.readouterr().err
    assert "holds 4x1x32x32: not the inputs --input-size 32 says (1x3x32x32, any batch)" in err
    assert len(err.strip().splitlines()) == 1


def test_command_needs_the_input_size_with_a_model(model_file, capsys):
    assert main(["latency", "--model", model_file, *QUICK]) == 2
    assert "--input-size missing" in capsys.readouterr().err


def test_command_refuses_a_batch_too_large_to_make_before_making_it(model_file, capsys):
    assert main(["latency", "--model", model_file, "--input-size", "3x4096x4096", "--batch", "100",
                 *QUICK]) == 2
    err = capsys.readouterr().err
    assert err == ("msdprof: error: --batch 100: of 3x4096x4096 inputs holds 5,033,164,800 numbers: "
                   "at most 1,073,741,824 (4 GiB of float32; see the limits in docs/errors.md)\n")


def test_command_names_the_input_size_when_the_model_refuses_the_batch_made_of_it(model_folder, capsys):
    model_folder(MODEL_FILE)
    assert main(["latency", "--model", "models.py:make", "--input-size", "1x32x32", *QUICK]) == 2
    err = capsys.readouterr().err
    assert err.startswith("msdprof: error: --input-size 1x32x32: SDNResNet failed on it: ")
    assert len(err.strip().splitlines()) == 1
