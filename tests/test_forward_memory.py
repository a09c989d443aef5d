"""A forward too large for memory is refused before it runs (issue 26 item 6).

msdprof runs a model it did not put on ``meta`` for real (``count``/``budget``/``graph``/``report``/
``compare --model``, ``count --device cpu``, ``latency``).  Before that forward -- and before its
zero inputs or a timed batch are made -- it is recorded on shapes alone (fake tensors; an MSDNet on
its twin on ``meta``) and refused past ``MAX_BYTES`` when its inputs and twice the activation storage
its code holds at once (the memory model's as-written peak) would not fit.  Each refusal below is
checked for what did not happen: the model's forward never ran on a real tensor, and the process's
peak resident memory did not grow by what the refused work would have taken.
"""

from __future__ import annotations

import re
from pathlib import Path

import torch
from torch import nn

from msdnet.options import OptionError
from msdprof import exit_costs, exit_memory
from msdprof.core import dataflow
from msdprof.core.dataflow import Inputs, fake_record, record
from msdprof.core.exits import meta_twin, record_exits
from msdprof.core.units import bytes_text

from cli_run import run

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "early_exit_models.py"

WIDENING = '''
from torch import nn


class Widening(nn.Module):
    """Two exits; a 1x1 convolution from 3 to 256 channels at full resolution (1 KiB a pixel)."""

    calls = []  # the type of the tensor each forward ran on: FakeTensor (the estimate) or Tensor

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 256, 1)
        self.head1, self.head2 = nn.Linear(3, 10), nn.Linear(256, 10)

    def forward(self, x):
        Widening.calls.append(type(x).__name__)
        first = self.head1(x.mean((2, 3)))
        return [first, self.head2(self.conv(x).mean((2, 3)))]
'''


def _widening(tmp_path):
    (tmp_path / "widening.py").write_text(WIDENING)
    namespace: dict = {}
    exec(compile(WIDENING, str(tmp_path / "widening.py"), "exec"), namespace)
    return namespace["Widening"]


def _widening_held(side: int) -> int:
    """The most bytes Widening's code holds at once on one side x side image: at the mean of its
    256-channel map, the map (256 x side^2 float32), that mean (256) and head 1's output (10)."""
    return 4 * (256 * side * side + 256 + 10)


def _peak_growth(work) -> int:
    """Bytes the process's peak resident memory rose above what it held when ``work()`` began
    (Linux: ``VmHWM``, reset to the current size by writing 5 to ``/proc/self/clear_refs``)."""
    def status(field: str) -> int:
        return int(re.search(rf"{field}:\s+(\d+) kB", Path("/proc/self/status").read_text()).group(1)) * 1024

    Path("/proc/self/clear_refs").write_text("5")
    before = status("VmRSS")
    work()
    return status("VmHWM") - before


# --- the estimate -------------------------------------------------------------------------------


def test_a_record_on_fake_tensors_holds_the_bytes_the_real_record_holds():
    import sys
    sys.path.insert(0, str(EXAMPLES.parent))
    from early_exit_models import CoarseToFine, SDNResNet

    for model, shape in ((SDNResNet(), (1, 3, 64, 64)), (CoarseToFine(), (2, 3, 32, 32))):
        x = torch.randn(shape)
        with dataflow.evaluating(model):
            real = record(model, lambda: model(x))
        fake = fake_record(model, Inputs((x,)))
        assert fake is not None
        assert fake.held_peak() == real.held_peak() > 0
        assert [op.name for op in fake.ops] == [op.name for op in real.ops]


def test_an_msdnets_twin_on_meta_holds_the_bytes_the_real_msdnet_holds():
    from msdnet.model import model_from

    model = model_from("cifar10-anytime", None, "cpu", use="counted")
    image = torch.zeros(2, 3, 32, 32)
    with dataflow.evaluating(model):
        real = dataflow.record(model, lambda: model(image))
    assert record_exits(meta_twin(model), batch=2).held_peak() == real.held_peak()


def test_a_forward_that_reads_values_is_not_estimated_and_runs_as_before():
    class ReadsValues(nn.Module):  # .item() on a fake tensor raises: the real forward decides
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Linear(4, 2), nn.Linear(4, 2)

        def forward(self, x):
            return [self.a(x), self.b(x) * (1 if x.sum().item() >= 0 else 2)]

    model = ReadsValues()
    assert fake_record(model, Inputs((torch.zeros(1, 4),))) is None
    costs = exit_costs(model, input_size="1x4:float", convention="macs")
    assert [e.macs for e in costs] == [8, 16]  # a 4x2 matrix each, cumulative


# --- any model (--model) ------------------------------------------------------------------------------


def test_count_refuses_feature_maps_past_the_limit_before_the_forward_or_its_inputs_exist(tmp_path, capsys):
    _widening(tmp_path)
    growth = []
    code, out, err = 0, "", ""

    def work():
        nonlocal code, out, err
        code, out, err = run(capsys, "count", "--model", f"{tmp_path / 'widening.py'}:Widening",
                             "--input-size", "3x2048x2048")

    growth.append(_peak_growth(work))
    # the input (3 x 2048^2 float32) and twice what the model holds at its peak (its 4 GiB map)
    needed = bytes_text(3 * 2048 * 2048 * 4 + 2 * _widening_held(2048))
    assert (code, out) == (2, "")
    assert err == (f"msdprof: error: --input-size 3x2048x2048: Widening's forward on one 3x2048x2048 float32 "
                   f"image would take about {needed} of memory: at most 4.0 GiB (see the README's limits); "
                   "give smaller inputs, or count the model on the meta device, which allocates nothing "
                   "(count --device meta; model.to('meta') in Python)\n")
    assert needed == "8.0 GiB"
    assert growth[0] < 2**30  # neither the 48 MiB input nor the 4 GiB map was made


def test_the_forward_never_runs_on_a_real_tensor_when_refused(tmp_path):
    widening = _widening(tmp_path)
    model = widening()
    try:
        exit_costs(model, input_size="3x2048x2048")
    except OptionError as error:
        assert error.option == "input-size" and "8.0 GiB" in error.allowed
    else:
        raise AssertionError("not refused")
    assert widening.calls == ["FakeTensor"]


def test_a_forward_that_fits_runs_once_for_real_after_its_estimate(tmp_path):
    widening = _widening(tmp_path)
    costs = exit_costs(widening(), input_size="3x64x64", convention="macs")
    assert widening.calls == ["FakeTensor", "Tensor"]
    assert costs[-1].macs == 3 * 10 + 64 * 64 * 3 * 256 + 256 * 10  # head 1, the 1x1 convolution, head 2
    assert costs[0].macs == 3 * 10


def test_a_model_on_meta_is_recorded_once_with_no_estimate(tmp_path):
    widening = _widening(tmp_path)
    exit_costs(widening().to("meta"), input_size="3x16384x16384")
    assert widening.calls == ["Tensor"]  # the meta record itself: nothing allocated, nothing estimated


def test_count_on_meta_counts_the_input_refused_on_cpu(tmp_path, capsys):
    _widening(tmp_path)
    code, out, err = run(capsys, "count", "--model", f"{tmp_path / 'widening.py'}:Widening",
                         "--input-size", "3x2048x2048", "--device", "meta", "--format", "csv")
    assert (code, err) == (0, "")
    assert out.splitlines()[-1].split(",")[:2] == ["2", "2"]


def test_a_batch_past_the_limit_names_batch(tmp_path):
    widening = _widening(tmp_path)
    try:
        exit_memory(widening(), batch=10_000, input_size="3x16x16")  # the model where it is: CPU
    except OptionError as error:
        assert (error.option, str(error.value)) == ("batch", "10000")
        needed = bytes_text(10_000 * (3 * 16 * 16 * 4 + 2 * _widening_held(16)))
        assert f"Widening's forward on 10,000 3x16x16 float32 images would take about {needed} of memory" in error.allowed
        assert error.allowed.endswith("; give a smaller --batch")
    else:
        raise AssertionError("not refused")
    assert widening.calls == ["FakeTensor"]


# --- an MSDNet run for real ------------------------------------------------------------------------


def test_count_memory_on_cpu_refuses_a_batch_whose_forward_exceeds_the_limit(capsys):
    held = max(e.held_peak_bytes for e in exit_memory("cifar10-anytime"))  # as written, one image
    needed = bytes_text(100_000 * (3 * 32 * 32 * 4 + 2 * held))
    growth = []
    result = []
    growth.append(_peak_growth(lambda: result.append(run(
        capsys, "count", "--memory", "--device", "cpu", "--batch", "100000", "--preset", "cifar10-anytime"))))
    code, out, err = result[0]
    assert (code, out) == (2, "")
    assert err == (f"msdprof: error: --batch 100000: MSDNet's forward on 100,000 3x32x32 float32 images would "
                   f"take about {needed} of memory: at most 4.0 GiB (see the README's limits); give a "
                   "smaller --batch\n")
    assert growth[0] < 2**30  # the batch alone would be 1.1 GiB


def test_latency_refuses_a_batch_before_it_is_made(capsys, monkeypatch):
    from msdprof.analysis import latency

    made = []
    monkeypatch.setattr(latency, "make_inputs", lambda *a: made.append(a))
    held = max(e.held_peak_bytes for e in exit_memory("imagenet-step4"))  # as written, one image
    needed = bytes_text(6000 * (3 * 224 * 224 * 4 + 2 * held))
    result = []
    growth = _peak_growth(lambda: result.append(run(capsys, "latency", "--preset", "imagenet-step4",
                                                    "--batch", "6000")))
    code, out, err = result[0]
    assert (code, out) == (2, "")
    assert err == (f"msdprof: error: --batch 6000: MSDNet's forward on 6,000 3x224x224 float32 images would "
                   f"take about {needed} of memory: at most 4.0 GiB (see the README's limits); give a "
                   "smaller --batch\n")
    assert made == []
    assert growth < 2**30  # the batch alone would be 3.4 GiB


def test_latency_of_a_model_refuses_a_batch_before_it_is_made(tmp_path, capsys):
    _widening(tmp_path)
    result = []
    growth = _peak_growth(lambda: result.append(run(
        capsys, "latency", "--model", f"{tmp_path / 'widening.py'}:Widening", "--input-size", "3x64x64",
        "--batch", "65536")))
    code, out, err = result[0]
    assert growth < 2**30  # the batch alone would be 3.0 GiB (805,306,368 numbers: under the 2^30 bound)
    needed = bytes_text(65536 * (3 * 64 * 64 * 4 + 2 * _widening_held(64)))
    assert (code, out) == (2, "")
    assert err == (f"msdprof: error: --batch 65536: Widening's forward on 65,536 3x64x64 float32 images would "
                   f"take about {needed} of memory: at most 4.0 GiB (see the README's limits); give a "
                   "smaller --batch\n")


def test_compare_counts_an_msdnet_whose_forward_would_not_fit_on_meta_without_fvcore(monkeypatch):
    from msdprof.analysis.compare import compare_msdnet
    from msdprof.core import units

    held = max(e.held_peak_bytes for e in exit_memory("cifar10-anytime"))  # as written, one image
    monkeypatch.setattr(units, "MAX_BYTES", 2**20)  # 1 MiB, below its forward's 2 x 1.25 MB
    result = compare_msdnet("cifar10-anytime")
    assert result.device == "meta"
    assert result.notes[0] == (
        f"no real CPU forward (MSDNet's forward on one 3x32x32 float32 image would take about "
        f"{bytes_text(3 * 32 * 32 * 4 + 2 * held)} of memory: at most 1 MiB (see the README's limits)): "
        "counted on the meta device")
    assert any(note.startswith("fvcore not run") for note in result.notes)
