"""Memory is never exhausted by counting (issues 26 item 6 and 30).

A count runs the forward once on shapes alone (meta stand-ins for the weights and inputs): nothing of
the model's size is allocated, whatever the inputs' size.  A forward on real tensors -- asked for
(``count --device cpu``, ``real=True``), or because the model reads values -- is that one pass, with
the memory checked before each ATen kernel runs: refused when its inputs and twice the activation
storage its code holds then, with the kernel's new results, would pass ``MAX_BYTES``.  Commands that
must run the real forward again (``latency``'s timed batches, ``compare``'s fvcore) check it first
from the count's record on shapes.  Each refusal below is checked for what did not happen: the
process's peak resident memory did not grow by what the refused work would have taken.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
from torch import nn

from msdnet.options import OptionError
from msdprof import exit_costs, exit_memory
from msdprof.core import dataflow
from msdprof.core.dataflow import Inputs, ReadsValues, record, record_shapes
from msdprof.core.exits import record_exits
from msdprof.core.units import bytes_text

from cli_run import run

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "early_exit_models.py"

WIDENING = '''
from torch import nn


class Widening(nn.Module):
    """Two exits; a 1x1 convolution from 3 to 256 channels at full resolution (1 KiB a pixel)."""

    calls = []  # the device of the tensor each forward ran on: meta (on shapes) or cpu

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 256, 1)
        self.head1, self.head2 = nn.Linear(3, 10), nn.Linear(256, 10)

    def forward(self, x):
        Widening.calls.append(x.device.type)
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


def test_a_record_on_shapes_holds_the_bytes_the_real_record_holds():
    import sys
    sys.path.insert(0, str(EXAMPLES.parent))
    from early_exit_models import CoarseToFine, SDNResNet

    for model, shape in ((SDNResNet(), (1, 3, 64, 64)), (CoarseToFine(), (2, 3, 32, 32))):
        x = torch.randn(shape)
        with dataflow.evaluating(model):
            real = record(model, lambda: model(x))
        shapes = record_shapes(model, Inputs((x,)), False)
        assert not shapes.on_values and real.on_values
        assert shapes.held_peak() == real.held_peak() > 0
        assert [op.name for op in shapes.ops] == [op.name for op in real.ops]


def test_an_msdnet_on_cpu_is_recorded_on_shapes_with_the_bytes_the_real_msdnet_holds():
    from msdnet.model import model_from

    model = model_from("cifar10-anytime", None, "cpu", use="counted")
    image = torch.zeros(2, 3, 32, 32)
    with dataflow.evaluating(model):
        real = dataflow.record(model, lambda: model(image))
    shapes = record_exits(model, batch=2)
    assert not shapes.on_values
    assert shapes.held_peak() == real.held_peak()


class ReadsItem(nn.Module):
    """Reads a value of its input: ``.item()`` on meta has none."""

    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Linear(4, 2), nn.Linear(4, 2)

    def forward(self, x):
        return [self.a(x), self.b(x) * (1 if x.sum().item() >= 0 else 2)]


def test_a_forward_that_reads_values_ends_its_pass_on_shapes_naming_the_read():
    with pytest.raises(ReadsValues) as stopped:
        record_shapes(ReadsItem(), Inputs((torch.zeros(1, 4),)), None)
    assert str(stopped.value) == "item"


def test_a_forward_that_reads_values_is_counted_on_its_real_inputs_and_says_where():
    costs = exit_costs(ReadsItem(), input_size="1x4:float", convention="macs")
    assert [e.macs for e in costs] == [8, 16]  # a 4x2 matrix each, cumulative
    assert costs.on_values and costs.data_dependent
    assert [str(r) for r in costs.value_reads] == ["item x1"]


# --- any model (--model) ------------------------------------------------------------------------------


def test_count_on_shapes_allocates_nothing_of_an_input_a_real_run_refuses(tmp_path, capsys):
    _widening(tmp_path)
    result = []
    growth = _peak_growth(lambda: result.append(run(
        capsys, "count", "--model", f"{tmp_path / 'widening.py'}:Widening", "--input-size", "3x2048x2048",
        "--format", "csv")))
    code, out, err = result[0]
    assert (code, err) == (0, "")
    assert out.splitlines()[-1].split(",")[:2] == ["2", "2"]
    assert growth < 2**28  # neither the 48 MiB input nor the 4 GiB map was made


def test_count_on_cpu_refuses_the_kernel_that_would_pass_the_limit_before_it_runs(tmp_path, capsys):
    _widening(tmp_path)
    code, out, err = 0, "", ""

    def work():
        nonlocal code, out, err
        code, out, err = run(capsys, "count", "--model", f"{tmp_path / 'widening.py'}:Widening",
                             "--input-size", "3x2048x2048", "--device", "cpu")

    growth = _peak_growth(work)
    # the input (3 x 2048^2 float32), and twice what the model holds when the 1x1 convolution would
    # run: head 1's output (10 float32) and the convolution's 256-channel map it would make
    needed = bytes_text(3 * 2048 * 2048 * 4 + 2 * (10 * 4 + 256 * 2048 * 2048 * 4))
    assert (code, out) == (2, "")
    assert err == (f"msdprof: error: --input-size 3x2048x2048: Widening's forward on one 3x2048x2048 float32 "
                   f"image would take about {needed} of memory: at most 4.0 GiB (see the limits in docs/errors.md); "
                   "give smaller inputs, or count on shapes alone, which allocates nothing (without "
                   "--device cpu; real=False in Python)\n")
    assert needed == "8.0 GiB"
    assert growth < 2**30  # the 4 GiB map was not made


def test_a_model_that_fits_runs_once_on_shapes(tmp_path):
    widening = _widening(tmp_path)
    costs = exit_costs(widening(), input_size="3x64x64", convention="macs")
    assert widening.calls == ["meta"]
    assert costs[-1].macs == 3 * 10 + 64 * 64 * 3 * 256 + 256 * 10  # head 1, the 1x1 convolution, head 2
    assert costs[0].macs == 3 * 10
    assert not costs.on_values and not costs.data_dependent


def test_a_model_asked_to_run_for_real_runs_once_on_its_real_inputs(tmp_path):
    widening = _widening(tmp_path)
    costs = exit_costs(widening(), input_size="3x64x64", convention="macs", real=True)
    assert widening.calls == ["cpu"]
    assert costs.on_values and not costs.data_dependent
    assert costs[-1].macs == 3 * 10 + 64 * 64 * 3 * 256 + 256 * 10


def test_a_model_on_meta_is_recorded_once(tmp_path):
    widening = _widening(tmp_path)
    exit_costs(widening().to("meta"), input_size="3x16384x16384")
    assert widening.calls == ["meta"]


def test_a_real_batch_past_the_limit_names_batch(tmp_path):
    widening = _widening(tmp_path)
    try:
        exit_memory(widening(), batch=10_000, input_size="3x16x16", real=True)
    except OptionError as error:
        assert (error.option, str(error.value)) == ("batch", "10000")
        # the inputs, and twice head 1's output and the convolution's map when it would run
        needed = bytes_text(10_000 * (3 * 16 * 16 * 4 + 2 * (10 * 4 + 256 * 16 * 16 * 4)))
        assert f"Widening's forward on 10,000 3x16x16 float32 images would take about {needed} of memory" in error.allowed
        assert error.allowed.endswith("; give a smaller --batch, or count on shapes alone, which allocates "
                                      "nothing (without --device cpu; real=False in Python)")
    else:
        raise AssertionError("not refused")
    assert widening.calls == ["cpu"]


def test_the_memory_of_a_batch_on_shapes_needs_no_memory(tmp_path):
    widening = _widening(tmp_path)
    memories = exit_memory(widening(), batch=10_000, input_size="3x16x16")
    assert widening.calls == ["meta"]
    assert memories[-1].peak_bytes >= 10_000 * 256 * 16 * 16 * 4  # the convolution's map, counted


# --- an MSDNet run for real ------------------------------------------------------------------------


def test_count_memory_on_cpu_refuses_a_batch_before_its_first_kernel_passes_the_limit(capsys):
    result = []
    growth = _peak_growth(lambda: result.append(run(
        capsys, "count", "--memory", "--device", "cpu", "--batch", "100000", "--preset", "cifar10-anytime")))
    code, out, err = result[0]
    # the batch (1.1 GiB) fits; the stem's 16-channel 32x32 map for 100,000 images would not
    needed = bytes_text(100_000 * (3 * 32 * 32 * 4 + 2 * 16 * 32 * 32 * 4))
    assert (code, out) == (2, "")
    assert err == (f"msdprof: error: --batch 100000: MSDNet's forward on 100,000 3x32x32 float32 images would "
                   f"take about {needed} of memory: at most 4.0 GiB (see the limits in docs/errors.md); give a "
                   "smaller --batch, or count on shapes alone, which allocates nothing (without --device "
                   "cpu; real=False in Python)\n")
    assert growth < 2**31  # the batch, not the 6.1 GiB map


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
                   f"take about {needed} of memory: at most 4.0 GiB (see the limits in docs/errors.md); give a "
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
                   f"take about {needed} of memory: at most 4.0 GiB (see the limits in docs/errors.md); give a "
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
        f"{bytes_text(3 * 32 * 32 * 4 + 2 * held)} of memory: at most 1 MiB (see the limits in docs/errors.md)): "
        "counted on the meta device")
    assert any(note.startswith("fvcore not run") for note in result.notes)
