"""Every per-exit figure of the zoo (``tests/zoo``: 26 early-exit networks of every family) against
an independent oracle, on CPU and on ``meta`` (issue 23).

The oracle is PyTorch's FlopCounterMode (two FLOPs a multiply-add, like the ``flops`` convention)
on hand-written forwards: the model stopped once output k is complete (eager) and a forward
computing only what outputs 1..k read (lazy), attention under the MATH backend (FlopCounterMode
counts 0 for the CPU attention kernel).  Its other blind spot, ``nn.LSTM`` on CPU
(``mkldnn_rnn_layer``), is met by running the oracle on ``meta``, where an LSTM is matmuls.  fvcore
(lazy, by a trace of outputs 1..k) checks the convolutional families once more.  Torch runs one
thread here: the zoo is many tiny kernels, which threads on busy cores only slow down.
"""

from __future__ import annotations

import copy
import warnings

import pytest
import torch
from fvcore.nn import FlopCountAnalysis
from torch import nn
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from msdnet import PRESETS
from msdprof import exit_costs
from msdprof.render.formatting import render_table
from zoo import ENTRIES, convnets, eager_forward, lazy_forward

NAMES = sorted(ENTRIES)


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def flop_counter(forward) -> int:
    with FlopCounterMode(display=False) as counter, sdpa_kernel(SDPBackend.MATH):
        forward()
    return counter.get_total_flops()


def built(name: str) -> nn.Module:
    torch.manual_seed(0)
    return ENTRIES[name].build().eval()


def on_meta(model: nn.Module) -> nn.Module:
    """A copy of ``model`` on ``meta``, tied weights still tied (``.to("meta")`` would untie them:
    each module's parameter is converted on its own)."""
    memo = {id(t): (nn.Parameter(t.to("meta"), t.requires_grad) if isinstance(t, nn.Parameter) else t.to("meta"))
            for t in (*model.parameters(), *model.buffers())}
    return copy.deepcopy(model, memo)


def oracle(name: str, model: nn.Module, device: str) -> tuple[list[int], list[int]]:
    """FlopCounterMode's (eager, lazy) FLOPs per exit of the zoo model on ``device``."""
    entry = ENTRIES[name]
    if device == "cpu" and entry.lstm_on_cpu:
        model, device = on_meta(model), "meta"
    inputs = entry.inputs(device)
    exits = len(exit_costs(entry.subject(model), inputs=inputs, convention="flops"))
    eager = [flop_counter(lambda: eager_forward(model, inputs, k)) for k in range(1, exits + 1)]
    if not hasattr(model, "lazy_forward"):
        return eager, eager
    return eager, [flop_counter(lambda: lazy_forward(model, inputs, k)) for k in range(1, exits + 1)]


def test_the_zoo_holds_at_least_25_models_across_the_families():
    assert len(ENTRIES) >= 25
    assert len({entry.family for entry in ENTRIES.values()}) == len(ENTRIES)


@pytest.mark.parametrize("name", NAMES)
def test_eager_and_lazy_flops_equal_flop_counter_mode_at_every_exit_on_cpu(name):
    model = built(name)
    costs = exit_costs(ENTRIES[name].subject(model), inputs=ENTRIES[name].inputs("cpu"), convention="flops")
    eager, lazy = oracle(name, model, "cpu")
    assert ([e.macs for e in costs], [e.lazy_macs for e in costs]) == (eager, lazy)


@pytest.mark.parametrize("name", [n for n in NAMES if ENTRIES[n].meta])
def test_on_meta_every_figure_equals_the_cpu_figure_and_the_oracle_on_meta(name):
    model = built(name)
    entry = ENTRIES[name]
    cpu = exit_costs(entry.subject(model), inputs=entry.inputs("cpu"), convention="flops")
    meta_model = on_meta(model)
    meta = exit_costs(entry.subject(meta_model), inputs=entry.inputs("meta"), convention="flops")
    assert meta.exits == cpu.exits
    if entry.family.startswith(("BERT", "Llama")):
        return  # the largest: their meta oracle adds seconds and nothing the CPU one does not check
    eager, lazy = oracle(name, meta_model, "meta")
    assert ([e.macs for e in meta], [e.lazy_macs for e in meta]) == (eager, lazy)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("convention", ["macs", "flops"])
def test_no_zoo_model_leaves_multiply_adds_uncounted(name, convention):
    model = built(name)
    costs = exit_costs(ENTRIES[name].subject(model), inputs=ENTRIES[name].inputs("cpu"), convention=convention)
    assert costs.unsupported == ()


@pytest.mark.parametrize("name", ["imta-msdnet", "bert"])
def test_models_computing_later_exits_first_get_the_eager_lazy_line(name):
    model = built(name)
    costs = exit_costs(model, inputs=ENTRIES[name].inputs("cpu"))
    assert costs.lazy_gap is costs[0]
    saves = f"{100 * (costs[0].macs - costs[0].lazy_macs) / costs[0].macs:.1f}"
    assert (f"Exit 1: lazy is {saves}% below cumulative -- the forward computes work for later exits "
            "before this output is complete; an early exit pays the cumulative figure as the model "
            "runs, the lazy one only if its forward stops at what the exit reads.") in " ".join(
        render_table(costs, width=400).split())


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_no_msdnet_preset_gets_the_eager_lazy_line(preset):
    assert exit_costs(preset).lazy_gap is None


class FirstOutputs(nn.Module):
    """Outputs 1..k of a model, joined: what fvcore's trace keeps is what they read (lazy)."""

    def __init__(self, model: nn.Module, k: int):
        super().__init__()
        self.model, self.k = model, k

    def forward(self, x):
        return torch.cat([o.flatten(1) for o in self.model(x)[: self.k]], dim=1)


FVCORE = ["sdn-resnet56", "sdn-vgg", "sdn-wrn", "sdn-mobilenet", "imta-msdnet", "grouped-dilated",
          "conv3d", "norm-act"]


@pytest.mark.parametrize("name", FVCORE)
def test_lazy_macs_equal_fvcore_on_outputs_1_to_k(name):
    model = built(name)
    image = ENTRIES[name].inputs("cpu")[0]
    for e in exit_costs(model, inputs=image, convention="macs"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            analysis = FlopCountAnalysis(FirstOutputs(model, e.exit), image)
            analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
            by_op = analysis.by_operator()
        assert e.lazy_macs == by_op["conv"] + by_op["linear"], f"exit {e.exit}"


def test_the_model_with_no_children_is_counted_by_its_functional_ops_not_as_one_leaf():
    # hand count, 16x16 image: conv 3->8 3x3 on 16x16, then Linear 8->4; conv 8->8 /2 on 8x8, Linear;
    # conv 8->16 /2 on 4x4, Linear 16->4
    first = 3 * 9 * 8 * 16 * 16 + 8 * 4
    second = 8 * 9 * 8 * 8 * 8 + 8 * 4
    third = 8 * 9 * 16 * 4 * 4 + 16 * 4
    costs = exit_costs(convnets.NoChildren(), input_size=16, convention="macs")
    assert [e.macs for e in costs] == [first, first + second, first + second + third]
