"""One honest pass (issue 30): a count runs the model's forward once, on shapes alone; on real
values only where the model reads them, and then it says so; nothing is dropped in silence.

The models below count their own forward calls (and the device each ran on: ``meta`` for a pass on
shapes alone, ``cpu`` for one on real tensors), so each test can say how many passes a count made.
Expected figures come from the models' shapes by hand (a Linear of in x out reads in*out weights
and out biases; ``macs`` counts in*out multiply-adds a row).
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest
import torch
from torch import nn

from msdnet.options import OptionError
from msdprof import exit_costs, exit_memory
from msdprof.render.formatting import render_csv, render_json, render_table
from zoo import ENTRIES

from cli_run import run

TESTS = Path(__file__).resolve().parent


class Counted(nn.Module):
    """Two exits of Linear layers; every forward call is noted with its input's device."""

    def __init__(self):
        super().__init__()
        self.calls: list[str] = []
        self.a, self.b, self.head1, self.head2 = nn.Linear(4, 8), nn.Linear(8, 8), nn.Linear(8, 2), nn.Linear(8, 2)

    def forward(self, x):
        self.calls.append(x.device.type)
        h = self.a(x)
        return [self.head1(h), self.head2(self.b(h))]


class ReadsAValue(Counted):
    """As :class:`Counted`, but it scales exit 2 by a branch on a value of its input."""

    def forward(self, x):
        self.calls.append(x.device.type)
        h = self.a(x)
        scale = 2.0 if x.sum() > 0 else 1.0
        return [self.head1(h), self.head2(self.b(h)) * scale]


class PaddedExit(nn.Module):
    """Decides in ``forward`` to stop after its first exit when it is confident (threshold 0: always on
    these weights) and pads its output list with that exit's tensor, as some code does to keep one
    output per exit."""

    def __init__(self, threshold: float = 0.0):
        super().__init__()
        self.threshold = threshold
        self.stages = nn.ModuleList([nn.Linear(4, 8), nn.Linear(8, 8), nn.Linear(8, 8)])
        self.heads = nn.ModuleList([nn.Linear(8, 3) for _ in range(3)])

    def forward(self, x):
        outs = []
        for stage, head in zip(self.stages, self.heads):
            x = torch.relu(stage(x))
            outs.append(head(x))
            if bool(outs[-1].softmax(-1).amax() > self.threshold):
                break
        return outs + [outs[-1]] * (3 - len(outs))


# --- one pass ---------------------------------------------------------------------------------------


def test_a_model_on_cpu_is_counted_in_one_pass_on_shapes():
    model = Counted()
    costs = exit_costs(model, input_size="1x4:float", convention="macs")
    assert model.calls == ["meta"]
    assert [e.macs for e in costs] == [4 * 8 + 8 * 2, 4 * 8 + 8 * 2 + 8 * 8 + 8 * 2]
    assert not costs.on_values and not costs.data_dependent


def test_its_weights_stay_where_they_were_and_untouched():
    model = Counted()
    before = {name: (t.device.type, t.clone()) for name, t in model.state_dict().items()}
    exit_costs(model, input_size="1x4:float")
    after = model.state_dict()
    assert all(after[name].device.type == device and torch.equal(after[name], value)
               for name, (device, value) in before.items())
    assert all(not p.is_meta for p in model.parameters())


def test_count_memory_reads_costs_and_memory_off_one_pass(tmp_path, capsys):
    (tmp_path / "counted.py").write_text(
        "import json, pathlib\nfrom torch import nn\n"
        "class Counted(nn.Module):\n"
        "    def __init__(self):\n"
        "        super().__init__()\n"
        "        self.a, self.h1, self.h2 = nn.Linear(4, 8), nn.Linear(8, 2), nn.Linear(8, 2)\n"
        "    def forward(self, x):\n"
        f"        log = pathlib.Path({str(tmp_path / 'calls.txt')!r})\n"
        "        log.write_text(log.read_text() + x.device.type + ' ' if log.exists() else x.device.type + ' ')\n"
        "        h = self.a(x)\n"
        "        return [self.h1(h), self.h2(h)]\n")
    spec = f"{tmp_path / 'counted.py'}:Counted"
    for argv in (("count",), ("count", "--memory")):
        (tmp_path / "calls.txt").unlink(missing_ok=True)
        code, out, err = run(capsys, *argv, "--model", spec, "--input-size", "1x4:float", "--format", "json")
        assert (code, err) == (0, "")
        assert (tmp_path / "calls.txt").read_text().split() == ["meta"], argv


def test_exit_memory_runs_the_forward_once():
    model = Counted()
    exit_memory(model, input_size="1x4:float", batch=16)
    assert model.calls == ["meta"]


# --- models that read values --------------------------------------------------------------------------


def test_a_model_that_reads_values_runs_for_real_once_more_at_most_and_says_where():
    model = ReadsAValue()
    costs = exit_costs(model, input_size="1x4:float", convention="macs")
    assert model.calls == ["meta", "cpu"]  # the pass on shapes stopped at the read; the real pass
    assert costs.on_values and costs.data_dependent
    assert [str(r) for r in costs.value_reads] == ["bool x1"]


def test_a_model_that_read_values_is_counted_on_them_straight_away_the_next_time():
    model = ReadsAValue()
    first = exit_costs(model, input_size="1x4:float", convention="macs")
    model.calls.clear()
    again = exit_costs(model, input_size="1x4:float", convention="macs")
    assert model.calls == ["cpu"]
    assert again == first


def test_a_value_read_is_said_in_the_caption_json_and_csv():
    costs = exit_costs(ReadsAValue(), input_size="1x4:float", convention="macs")
    text = " ".join(render_table(costs, width=200).split())
    assert ("Counted on the inputs given: the model read tensor values (bool x1), so these figures hold for "
            "these inputs and may differ on others.") in text
    data = json.loads(render_json(costs))
    assert (data["counted_on"], data["data_dependent"]) == ("values", True)
    assert data["value_reads"] == [{"function": "bool", "module": "", "calls": 1}]
    rows = render_csv(costs).splitlines()
    assert rows[0].split(",")[-2:] == ["data_dependent", "convention"]
    assert all(row.split(",")[-2] == "True" for row in rows[1:])


def test_a_model_on_meta_that_reads_values_is_one_line_naming_the_read():
    with pytest.raises(OptionError) as error:
        exit_costs(ReadsAValue().to("meta"), input_size="1x4:float")
    assert error.value.option == "model"
    assert "reads tensor values (bool) and its weights are on the meta device" in error.value.allowed


def test_what_torch_warns_in_a_failed_pass_on_shapes_is_not_shown():
    class WarnsThenReads(Counted):
        def forward(self, x):
            warnings.warn("the model's own warning")
            return super().forward(x) if x.sum().item() >= 0 else []

    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")
        exit_costs(WarnsThenReads(), input_size="1x4:float")
    assert [str(w.message) for w in said] == ["the model's own warning"]  # the real pass's, once


def test_a_model_that_warns_on_shapes_warns_once():
    class Warns(Counted):
        def forward(self, x):
            warnings.warn("the model's own warning")
            return super().forward(x)

    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")
        exit_costs(Warns(), input_size="1x4:float")
    assert [str(w.message) for w in said] == ["the model's own warning"]


# --- the zoo's mixture of experts and tied head ---------------------------------------------------------


def moe() -> nn.Module:
    torch.manual_seed(0)
    return ENTRIES["moe-top2"].build().eval()


def test_a_mixture_of_experts_names_its_routing_reads_and_its_idle_experts():
    costs = exit_costs(moe(), inputs=torch.zeros(1, 8, dtype=torch.long), convention="macs")
    assert [str(r) for r in costs.value_reads] == ["nonzero x4 in blocks.0", "nonzero x4 in blocks.1"]
    # token id 0 everywhere: all 8 tokens pick the same two experts of each block, the other two idle
    assert [(i.module, i.type, i.params, i.exit) for i in costs.idle] == [
        ("blocks.0.experts.0", "Sequential", 16 * 32 + 32 + 32 * 16 + 16, 1),
        ("blocks.0.experts.1", "Sequential", 1072, 1),
        ("blocks.1.experts.0", "Sequential", 1072, 2),
        ("blocks.1.experts.2", "Sequential", 1072, 2)]
    assert [e.idle_params for e in costs] == [2 * 1072, 4 * 1072]


def test_a_mixture_of_experts_counts_what_its_tokens_route_to():
    model = moe()
    zeros = exit_costs(model, inputs=torch.zeros(1, 8, dtype=torch.long), convention="macs")
    varied = exit_costs(model, inputs=torch.arange(8).unsqueeze(0), convention="macs")
    assert zeros[0].macs != varied[0].macs  # the figures hold for the inputs given
    # capacity 8 * 2 / 4 = 4 tokens an expert: two experts of each block take 4 each on zeros
    expert = 16 * 32 + 32 * 16
    assert zeros[0].macs == 8 * 16 * 4 + 2 * 4 * expert + 8 * 16 * 32  # router, experts, head


def test_a_tied_head_counts_its_weight_once_in_params_and_param_bytes():
    torch.manual_seed(0)
    model = ENTRIES["tied-head-lm"].build().eval()
    ids = torch.zeros(1, 8, dtype=torch.long)
    costs, memory = exit_costs(model, inputs=ids), exit_memory(model, inputs=ids)
    block, norm, embedding = 16 * 32 + 32 + 32 * 16 + 16, 2 * 16, 40 * 16
    assert [e.params for e in costs] == [embedding + k * block + norm for k in (1, 2, 3)]
    assert [m.param_bytes for m in memory] == [4 * e.params for e in costs]


def test_count_memory_of_a_tied_head_is_4_bytes_a_parameter(tmp_path, capsys):
    torch.save(torch.zeros(1, 8, dtype=torch.long), tmp_path / "ids.pt")
    (tmp_path / "lm.py").write_text(f"import sys\nsys.path.insert(0, {str(TESTS)!r})\n"
                                    "from zoo.families import TiedHeadLM\n")
    code, out, err = run(capsys, "count", "--memory", "--model", f"{tmp_path / 'lm.py'}:TiedHeadLM",
                         "--inputs", str(tmp_path / "ids.pt"), "--format", "json")
    assert (code, err) == (0, "")
    data = json.loads(out)
    assert [m["param_bytes"] for m in data["memory"]["exits"]] == [4 * e["params"] for e in data["exits"]]


# --- exits the model did not return, or returned twice -------------------------------------------------


def test_an_exit_returned_again_as_the_same_tensor_is_left_out_and_named():
    costs = exit_costs(PaddedExit(), input_size="1x4:float", convention="macs")
    assert len(costs) == 1 and costs.exit_names == ("1",)
    assert costs.same_tensor == (("2", "1"), ("3", "1"))
    assert [str(r) for r in costs.value_reads] == ["bool x1"]
    text = " ".join(render_table(costs, width=200).split())
    assert "Exit 2 is the very tensor of exit 1, returned again: left out, not given exit 1's figures." in text


def test_samples_give_each_exit_its_mean_min_and_max():
    model = moe()
    samples = [torch.zeros(1, 8, dtype=torch.long), torch.arange(8).unsqueeze(0)]
    one = [exit_costs(model, inputs=s, convention="macs") for s in samples]
    costs = exit_costs(model, samples=samples, convention="macs")
    assert costs.samples == 2
    for k, spread in enumerate(costs.spread):
        values = [c[k].macs for c in one]
        assert (spread.figures["macs"].min, spread.figures["macs"].max) == (min(values), max(values))
        assert spread.figures["macs"].mean == sum(values) / 2
        assert costs[k].macs == round(sum(values) / 2)


def test_samples_of_a_model_counted_on_shapes_are_recorded_once():
    model = Counted()
    costs = exit_costs(model, samples=[torch.zeros(1, 4), torch.ones(1, 4), torch.randn(1, 4)])
    assert model.calls == ["meta"]
    assert costs.samples == 3 and costs.spread == ()


def test_an_exit_some_samples_did_not_return_is_named_with_how_many_did():
    model = PaddedExit(threshold=0.5)  # confident on some inputs, not on others
    torch.manual_seed(0)
    inputs = [torch.randn(1, 4) * scale for scale in (0.0, 50.0, 100.0)]
    per = [len(exit_costs(model, inputs=x)) + len(exit_costs(model, inputs=x).same_tensor) for x in inputs]
    counts = [len(exit_costs(model, inputs=x)) for x in inputs]
    assert per == [3, 3, 3] and len(set(counts)) > 1  # the samples stop at different exits
    costs = exit_costs(model, samples=inputs)
    returned = [s.samples for s in costs.spread]
    assert returned == [3] + [sum(c > k for c in counts) for k in range(1, max(counts))]
    text = " ".join(render_table(costs, width=200).split())
    assert f"Exit {max(counts)} was returned on {returned[-1]} of 3 samples: its figures are over those." in text


def test_count_takes_several_inputs_files_as_samples(tmp_path, capsys):
    for i, ids in enumerate((torch.zeros(1, 8, dtype=torch.long), torch.arange(8).unsqueeze(0))):
        torch.save(ids, tmp_path / f"ids{i}.pt")
    torch.save(torch.stack([torch.zeros(1, 8, dtype=torch.long), torch.arange(8).unsqueeze(0)]), tmp_path / "both.pt")
    (tmp_path / "moe.py").write_text(f"import sys, torch\nsys.path.insert(0, {str(TESTS)!r})\n"
                                     "from zoo.families import Top2MoE\n"
                                     "def make():\n    torch.manual_seed(0)\n    return Top2MoE()\n")
    spec = f"{tmp_path / 'moe.py'}:make"
    files = run(capsys, "count", "--model", spec, "--inputs", str(tmp_path / "ids0.pt"), str(tmp_path / "ids1.pt"),
                "--format", "json", "--convention", "macs")
    axis = run(capsys, "count", "--model", spec, "--inputs", str(tmp_path / "both.pt"), "--sample-axis",
               "--format", "json", "--convention", "macs")
    assert files[0] == axis[0] == 0
    assert json.loads(files[1])["samples"] == json.loads(axis[1])["samples"] == 2
    assert json.loads(files[1])["spread"] == json.loads(axis[1])["spread"] != []


def test_several_inputs_files_are_refused_where_one_batch_is_run(tmp_path, capsys):
    torch.save(torch.zeros(1, 4), tmp_path / "a.pt")
    (tmp_path / "m.py").write_text("from torch import nn\nclass M(nn.Module):\n"
                                   "    def __init__(self):\n        super().__init__()\n"
                                   "        self.a, self.b = nn.Linear(4, 2), nn.Linear(4, 2)\n"
                                   "    def forward(self, x):\n        return [self.a(x), self.b(x)]\n")
    two = (str(tmp_path / "a.pt"), str(tmp_path / "a.pt"))
    code, out, err = run(capsys, "graph", "--model", f"{tmp_path / 'm.py'}:M", "--inputs", *two,
                         "-o", str(tmp_path / "g.json"))
    assert (code, out) == (2, "")
    assert err == f"msdprof: error: --inputs {' '.join(two)}: takes one file here: several samples are counted by msdprof count\n"
    code, out, err = run(capsys, "count", "--memory", "--model", f"{tmp_path / 'm.py'}:M", "--inputs", *two)
    assert (code, out) == (2, "")
    assert err.startswith(f"msdprof: error: --inputs {' '.join(two)}: with --memory, one sample")


@pytest.mark.parametrize("name", ["moe-top2", "in-forward-exit"])
def test_the_memory_of_a_model_that_reads_values_comes_from_its_one_real_pass(name):
    torch.manual_seed(0)
    model, inputs = ENTRIES[name].build().eval(), ENTRIES[name].inputs("cpu")
    memory, costs = exit_memory(model, inputs=inputs), exit_costs(model, inputs=inputs)
    assert [m.param_bytes for m in memory] == [4 * e.params for e in costs]  # float32, each read once
