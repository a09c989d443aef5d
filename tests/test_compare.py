"""`msdprof compare`: msdprof's conventions, fvcore and FlopCounterMode per exit, every gap explained
operator by operator (msdprof.analysis.compare, msdprof.render.compare_view)."""

from __future__ import annotations

import csv
import io
import json
import re
import sys

import pytest
import torch
from fvcore.nn import FlopCountAnalysis
from torch import nn
from torch.utils._python_dispatch import _get_current_dispatch_mode_stack, is_in_torch_dispatch_mode
from torch.utils.flop_counter import FlopCounterMode

import msdnet.model
from msdnet import Options, build_model
from msdprof import exit_costs
from msdprof.analysis.compare import (TOOLS, KeepAlive, ToolCount, compare, compare_msdnet, explain,
                             msdnet_exits)
from msdprof.render.compare_view import render, terms_text
from msdprof.core.counting import CONVENTIONS
from msdprof.core.dataflow import tensors_in
from cli_run import run

# Two small real CPU models: CIFAR (ReLU, 3x3 convs, avg-pool heads) and ImageNet (+ a biased 7x7
# stem conv and max pooling).
SMALL = {
    "cifar": Options(nBlocks=3, stepmode="lin_grow", step=1, base=2, nChannels=8, growthRate=4),
    "imagenet": Options(nBlocks=2, step=1, base=2, nChannels=8, growthRate=4, data="ImageNet",
                        grFactor="1-2-4-4", bnFactor="1-2-4-4"),
}


@pytest.fixture(scope="module", params=sorted(SMALL))
def compared(request):
    """(model, image, comparison) for one SMALL config, the model real, on the CPU, in eval mode."""
    model = build_model(SMALL[request.param]).eval()
    x = torch.zeros(1, 3, *model.plan.input_size)
    return model, x, compare_msdnet(model)


def test_every_exit_has_every_tool_and_every_pair(compared):
    model, _, comparison = compared
    assert [e.exit for e in comparison] == list(range(1, model.nBlocks + 1))
    for e in comparison:
        assert [c.tool for c in e.counts] == list(TOOLS)
        assert len(e.gaps) == len(TOOLS) * (len(TOOLS) - 1) // 2
    assert not any("raised" in note for note in comparison.notes)


def test_explained_parts_sum_to_each_gap_exactly(compared):
    _, _, comparison = compared
    for e in comparison:
        for g in e.gaps:
            assert g.gap == e.count(g.minuend).total - e.count(g.subtrahend).total
            assert sum(d for _, d in g.terms) == g.gap, (e.exit, g.label)
            assert g.unexplained == 0, (e.exit, g.label)


def test_msdprof_totals_equal_exit_costs(compared):
    model, _, comparison = compared
    for convention in CONVENTIONS:
        costs = exit_costs(model, convention=convention)
        assert [e.count(convention).total for e in comparison] == [c.macs for c in costs], convention


@pytest.fixture(scope="module")
def fvcore_direct(compared):
    """FlopCountAnalysis called here, per exit of ``compared``'s model."""
    model, x, comparison = compared
    analyses = []
    for e in comparison:
        analysis = FlopCountAnalysis(KeepAlive(model, e.exit), x)
        analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
        analyses.append(analysis)
    return analyses


def test_fvcore_totals_and_operators_equal_flop_count_analysis_called_directly(compared, fvcore_direct):
    _, _, comparison = compared
    for e, analysis in zip(comparison, fvcore_direct):
        assert e.count("fvcore").total == analysis.total()
        assert dict(e.count("fvcore").operators) == dict(analysis.by_operator())


def test_flop_counter_totals_equal_flop_counter_mode_called_directly(compared):
    model, x, comparison = compared
    for e in comparison:
        with FlopCounterMode(display=False) as counter:
            model(x, exits=e.exit)
        assert e.count("FlopCounterMode").total == counter.get_total_flops()


def test_fvcore_minus_macs_is_fvcores_batch_norm_count(compared, fvcore_direct):
    _, _, comparison = compared
    for e, analysis in zip(comparison, fvcore_direct):
        gap = next(g for g in e.gaps if g.label == "fvcore - macs")
        assert gap.terms == (("batch_norm", analysis.by_operator()["batch_norm"]),)


def test_msdnet_minus_macs_holds_the_linear_bias_adds_one_per_class_and_exit(compared):
    model, _, comparison = compared
    for e in comparison:
        gap = next(g for g in e.gaps if g.label == "macs - msdnet")
        assert dict(gap.terms)["linear bias"] == -model.options.num_classes * e.exit


def test_flop_counter_agrees_with_flops_and_its_aten_names_are_kept(compared):
    _, _, comparison = compared
    for e in comparison:
        assert next(g for g in e.gaps if g.label == "FlopCounterMode - flops").terms == ()
        assert dict(e.count("FlopCounterMode").names) == {"conv": ("aten.convolution",),
                                                          "linear": ("aten.addmm",)}


# --- any early-exit module, against closed forms ---------------------------------------------


class TwoExits(nn.Module):
    """A tiny early-exit network: stem + head 1, block 2 + head 2 (8x8 images, 4 channels)."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1, bias=False), nn.BatchNorm2d(4), nn.ReLU())
        self.block2 = nn.Sequential(nn.Conv2d(4, 4, 3, padding=1), nn.ReLU())
        self.heads = nn.ModuleList(
            nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2)) for _ in range(2))

    def forward(self, x, exits=2):
        maps = self.stem(x)
        out = [self.heads[0](maps)]
        if exits == 2:
            out.append(self.heads[1](self.block2(maps)))
        return out


def test_any_early_exit_module_is_compared_against_closed_forms():
    comparison = compare(TwoExits(), torch.zeros(1, 3, 8, 8))
    conv1, conv2 = 3 * 4 * 9 * 64, 4 * 4 * 9 * 64  # Cin * Cout * k^2 * Hout * Wout (bias not counted)
    relu, pool, linear, bias, bn = 4 * 64, 4 * 64, 4 * 2, 2, 2 * 4 * 64  # bn: fvcore's 2 per element
    exit1 = dict(msdnet=conv1 + relu + pool + linear + bias, macs=conv1 + linear,
                 flops=2 * (conv1 + linear), fvcore=conv1 + bn + pool + linear,
                 FlopCounterMode=2 * (conv1 + linear))
    more = dict(msdnet=conv2 + relu + pool + linear + bias, macs=conv2 + linear,
                flops=2 * (conv2 + linear), fvcore=conv2 + pool + linear,
                FlopCounterMode=2 * (conv2 + linear))
    assert {c.tool: c.total for c in comparison[0].counts} == exit1
    assert {c.tool: c.total for c in comparison[1].counts} == {t: exit1[t] + more[t] for t in TOOLS}
    gap = next(g for g in comparison[0].gaps if g.label == "fvcore - msdnet")
    assert dict(gap.terms) == {"batch_norm": bn, "relu": -relu, "linear bias": -bias}


def test_comparing_leaves_the_model_in_its_mode_and_without_hooks():
    model = TwoExits()  # training mode
    compare(model, torch.zeros(1, 3, 8, 8))
    assert model.training
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in model.modules())


# --- tools that cannot run -------------------------------------------------------------------


class Untraceable(TwoExits):
    def forward(self, x, exits=2):
        if torch.jit.is_tracing():
            raise RuntimeError("this model cannot be traced\nsecond line")
        return super().forward(x, exits)


class NoDispatchModes(TwoExits):
    """Refuses to run under FlopCounterMode (msdprof's own kernel view is a dispatch mode too)."""

    def forward(self, x, exits=2):
        if is_in_torch_dispatch_mode() and any(  # FlopCounterMode's (torch's _FlopCounterMode)
                "FlopCounterMode" in type(mode).__name__ for mode in _get_current_dispatch_mode_stack()):
            raise RuntimeError("no dispatch modes here")
        return super().forward(x, exits)


def test_fvcore_raising_is_one_note_and_the_other_tools_still_count():
    comparison = compare(Untraceable(), torch.zeros(1, 3, 8, 8))
    assert comparison.notes[0] == ("fvcore raised RuntimeError: this model cannot be traced "
                                   "(on exits 1, 2)")
    for e in comparison:
        assert e.count("fvcore").total is None
        assert e.count("FlopCounterMode").total == e.count("flops").total
        assert all("fvcore" not in g.label for g in e.gaps) and len(e.gaps) == 6


def test_flop_counter_mode_raising_is_one_note():
    comparison = compare(NoDispatchModes(), torch.zeros(1, 3, 8, 8))
    assert comparison.notes[0] == ("FlopCounterMode raised RuntimeError: no dispatch modes here "
                                   "(on exits 1, 2)")
    assert comparison[0].count("fvcore").total is not None


def test_a_tool_that_did_not_run_shows_in_every_format():
    comparison = compare(Untraceable(), torch.zeros(1, 3, 8, 8))
    for fmt in ("table", "markdown"):
        text = render(comparison, fmt, "TwoExits")
        assert "not run" in text and "fvcore raised RuntimeError" in text
    assert json.loads(render(comparison, "json", "TwoExits"))["exits"][0]["counts"]["fvcore"] is None
    rows = list(csv.DictReader(io.StringIO(render(comparison, "csv", "TwoExits"))))
    assert all(row["fvcore"] == "" for row in rows)


def test_a_meta_model_is_compared_without_fvcore_and_says_so(compared):
    model, _, real = compared
    meta = compare_msdnet(build_model(model.options, model.plan.input_size, device="meta"))
    assert meta.device == "meta"
    assert meta.notes[0].startswith("fvcore not run: its JIT trace needs real tensors")
    for m, r in zip(meta, real):
        assert [c.total for c in m.counts if c.tool != "fvcore"] == \
               [c.total for c in r.counts if c.tool != "fvcore"]


def test_no_memory_for_a_real_model_is_one_note(monkeypatch):
    monkeypatch.setattr(msdnet.model, "available_memory", lambda: 1024)  # 1 KiB left
    comparison = compare_msdnet(SMALL["imagenet"])
    assert comparison.device == "meta"
    assert comparison.notes[0].startswith("no real CPU model (the model's float32 weights need ")
    assert comparison.notes[0].endswith("of memory is available): counted on the meta device")
    assert "\n" not in comparison.notes[0]


# --- explaining a gap ------------------------------------------------------------------------


def test_a_gap_the_operators_do_not_hold_is_shown_as_unexplained():
    a = ToolCount("a", 100, (("conv", 70), ("relu", 5)))  # 25 of a's total under no operator
    b = ToolCount("b", 60, (("conv", 60),))
    gap = explain(a, b)
    assert (gap.gap, gap.terms, gap.unexplained) == (40, (("conv", 10), ("relu", 5)), 25)
    assert terms_text(gap) == "conv 10 + relu 5 + unexplained 25"


def test_equal_counts_are_explained_as_equal():
    gap = explain(ToolCount("a", 7, (("conv", 7),)), ToolCount("b", 7, (("conv", 7),)))
    assert (gap.gap, gap.terms, terms_text(gap)) == (0, (), "equal")


def test_negative_terms_read_as_subtraction():
    gap = explain(ToolCount("a", 12, (("batch_norm", 12),)), ToolCount("b", 2, (("relu", 2),)))
    assert terms_text(gap) == "batch_norm 12 - relu 2"


# --- the command -----------------------------------------------------------------------------

NETWORK = ["--nBlocks", "2", "--step", "1", "--base", "1", "--nChannels", "8", "--growthRate", "4"]


@pytest.fixture(scope="module")
def api():
    return compare_msdnet(nBlocks=2, step=1, base=1, nChannels=8, growthRate=4)


def test_json_is_the_api_result(capsys, api):
    code, out, err = run(capsys, "compare", *NETWORK, "--format", "json")
    assert code == 0 and err == ""
    data = json.loads(out)
    assert data["exits"] == api.as_dict()["exits"] and data["options"]["nBlocks"] == 2
    assert data["exits"][1]["counts"]["fvcore"]["total"] == api[1].count("fvcore").total


def test_csv_columns_sum_to_each_tools_total(capsys, api):
    code, out, _ = run(capsys, "compare", *NETWORK, "--format", "csv")
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    for e in api:
        mine = [r for r in rows if r["exit"] == str(e.exit)]
        assert mine[-1]["operator"] == "total"
        for tool in TOOLS:
            assert sum(int(r[tool]) for r in mine[:-1]) == int(mine[-1][tool]) == e.count(tool).total


def test_table_shows_totals_and_each_explained_gap(capsys, api):
    code, out, _ = run(capsys, "compare", *NETWORK)
    assert code == 0
    assert "Counters compared, per exit" in out and "FlopCounterMode" in out
    gap = next(g for g in api[0].gaps if g.label == "fvcore - macs")
    row = rf"\| fvcore - macs +\| +{re.escape(f'{gap.gap:+,}')} \| batch_norm {gap.gap:,} +\|"
    assert re.search(row, out)


def test_markdown_lists_every_gap(capsys, api):
    code, out, _ = run(capsys, "compare", *NETWORK, "--format", "markdown")
    assert code == 0
    assert out.count("| fvcore - macs |") == len(api)


def test_output_file_is_not_replaced_without_force(capsys, tmp_path):
    target = tmp_path / "cmp.json"
    target.write_text("mine")
    code, _, err = run(capsys, "compare", *NETWORK, "--format", "json", "-o", str(target))
    assert code == 2 and "already exists; pass --force" in err and target.read_text() == "mine"


def test_unknown_format_is_one_line_error(capsys):
    code, out, err = run(capsys, "compare", "--format", "jsno")
    assert (code, out) == (2, "")
    assert err == ("msdprof: error: --format jsno: must be one of table, json, csv, markdown "
                   "(did you mean 'json'?)\n")


def test_msdnet_exits_runs_blocks_and_heads_one_to_k():
    model = build_model(SMALL["cifar"], device="meta")
    assert len(msdnet_exits(model, torch.zeros(1, 3, 32, 32, device="meta"), 2)) == 2


# --- where each tool is blind: attention and recurrent layers --------------------------------

from torch.nn.attention import SDPBackend, sdpa_kernel  # noqa: E402
import torch.nn.functional as F  # noqa: E402

WIDTH, HEADS, TOKENS = 8, 2, 5


class Attention(nn.Module):
    """Hand-written self-attention: q, k, v and output projections around F.scaled_dot_product_attention."""

    def __init__(self):
        super().__init__()
        self.q, self.k, self.v, self.o = (nn.Linear(WIDTH, WIDTH) for _ in range(4))

    def forward(self, x):
        b, n, d = x.shape
        split = lambda t: t.view(b, n, HEADS, d // HEADS).transpose(1, 2)  # noqa: E731
        y = F.scaled_dot_product_attention(split(self.q(x)), split(self.k(x)), split(self.v(x)))
        return x + self.o(y.transpose(1, 2).reshape(b, n, d))


class AttentionExits(nn.Module):
    """Two attention blocks, an exit (mean over tokens, Linear) after each."""

    def __init__(self, block=Attention):
        super().__init__()
        self.blocks = nn.ModuleList(block() for _ in range(2))
        self.heads = nn.ModuleList(nn.Linear(WIDTH, 3) for _ in range(2))

    def forward(self, x):
        out = []
        for block, head in zip(self.blocks, self.heads):
            x = block(x)
            out.append(head(x.mean(1)))
        return out


class MultiheadAttention(nn.MultiheadAttention):
    def __init__(self):
        super().__init__(WIDTH, HEADS, batch_first=True)

    def forward(self, x):
        return super().forward(x, x, x, need_weights=False)[0]


# Per block, one sequence of TOKENS tokens: the attention matmuls are scores (TOKENS x TOKENS per
# head, WIDTH / HEADS multiply-adds each) and the weighted sum (the same again).
ATTENTION_MACS = 2 * HEADS * TOKENS * TOKENS * (WIDTH // HEADS)  # 400
# nn.MultiheadAttention: four WIDTH x WIDTH projections of every token, then the attention matmuls.
MHA_MACS = 4 * TOKENS * WIDTH * WIDTH + ATTENTION_MACS  # 1,680
TOKENS_IN = torch.zeros(1, TOKENS, WIDTH)


@pytest.fixture(scope="module")
def attention():
    return compare(AttentionExits(), TOKENS_IN)


def test_flop_counter_mode_misses_exactly_the_attention_matmuls_on_cpu(attention):
    for e in attention:
        gap = next(g for g in e.gaps if g.label == "FlopCounterMode - flops")
        assert gap.terms == (("scaled_dot_product_attention", -2 * ATTENTION_MACS * e.exit),)


def test_fvcore_misses_exactly_the_attention_matmuls(attention):
    for e in attention:
        gap = next(g for g in e.gaps if g.label == "fvcore - macs")
        assert gap.terms == (("scaled_dot_product_attention", -ATTENTION_MACS * e.exit),)


def test_flops_is_what_flop_counter_mode_counts_under_the_math_attention_backend(attention):
    with sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter, torch.no_grad():
        AttentionExits()(TOKENS_IN)
    assert attention[-1].count("flops").total == counter.get_total_flops()


def test_attention_blind_spots_are_named_with_the_figure_that_holds_them(attention):
    spots = {(s.tool, s.name): (s.operator, s.calls, s.held_by) for s in attention.blind_spots}
    assert spots == {
        ("fvcore", "aten::scaled_dot_product_attention"): ("scaled_dot_product_attention", 2, "macs"),
        ("FlopCounterMode", "aten._scaled_dot_product_flash_attention_for_cpu"):
            ("scaled_dot_product_attention", 2, "flops"),
    }
    assert ("FlopCounterMode did not see aten._scaled_dot_product_flash_attention_for_cpu x2 (no "
            "FLOP formula for this kernel; under torch.nn.attention.sdpa_kernel(SDPBackend.MATH) it "
            "would be counted): its figure leaves that scaled_dot_product_attention work out; "
            "msdprof's flops counts it (the scaled_dot_product_attention term of their gap is "
            "exactly that work)") in attention.notes


def test_multihead_attentions_fast_path_is_missed_whole_by_both_tools():
    comparison = compare(AttentionExits(MultiheadAttention), TOKENS_IN)
    for e in comparison:
        assert next(g for g in e.gaps if g.label == "FlopCounterMode - flops").terms == (
            ("multi_head_attention", -2 * MHA_MACS * e.exit),)
        assert next(g for g in e.gaps if g.label == "fvcore - macs").terms == (
            ("multi_head_attention", -MHA_MACS * e.exit),)
    assert {(s.tool, s.name, s.held_by) for s in comparison.blind_spots} == {
        ("fvcore", "aten::_native_multi_head_attention", "macs"),
        ("FlopCounterMode", "aten._native_multi_head_attention", "flops")}


HIDDEN, FEATURES, STEPS = 6, 4, 5


class RecurrentExits(nn.Module):
    """Two stacked LSTMs, an exit (last step, Linear) after each."""

    def __init__(self):
        super().__init__()
        self.rnn1 = nn.LSTM(FEATURES, HIDDEN, batch_first=True)
        self.rnn2 = nn.LSTM(HIDDEN, HIDDEN, batch_first=True)
        self.head1, self.head2 = nn.Linear(HIDDEN, 3), nn.Linear(HIDDEN, 3)

    def forward(self, x):
        a, _ = self.rnn1(x)
        first = self.head1(a[:, -1])
        b, _ = self.rnn2(a)
        return [first, self.head2(b[:, -1])]


# An LSTM layer's weights: every step, 4 gates of HIDDEN units each read the input (FEATURES or
# HIDDEN) and the previous hidden state (HIDDEN).
LSTM_MACS = (STEPS * 4 * HIDDEN * (FEATURES + HIDDEN), STEPS * 4 * HIDDEN * (HIDDEN + HIDDEN))
HEAD_MACS = HIDDEN * 3
SEQUENCE_IN = torch.zeros(1, STEPS, FEATURES)


@pytest.fixture(scope="module")
def recurrent():
    return compare(RecurrentExits(), SEQUENCE_IN)


def test_lstm_blind_spots_of_both_tools_are_named(recurrent):
    assert {(s.tool, s.name, s.operator, s.calls) for s in recurrent.blind_spots} == {
        ("fvcore", "aten::lstm", "lstm", 2), ("FlopCounterMode", "aten.mkldnn_rnn_layer", "lstm", 2)}


def test_flop_counter_mode_and_fvcore_count_only_the_heads_of_an_lstm_model(recurrent):
    for e in recurrent:
        assert e.count("FlopCounterMode").total == 2 * HEAD_MACS * e.exit
        assert e.count("fvcore").total == HEAD_MACS * e.exit


def test_flops_minus_flop_counter_mode_is_exactly_the_lstm_multiply_adds(recurrent):
    for e in recurrent:
        gap = next(g for g in e.gaps if g.label == "FlopCounterMode - flops")
        assert gap.terms == (("lstm", -2 * sum(LSTM_MACS[:e.exit])),)
        assert all(s.held_by for s in recurrent.blind_spots)


# --- any model from the command line, progress --------------------------------------------------


def test_progress_is_told_as_each_tool_starts():
    told = []
    compare(TwoExits(), torch.zeros(1, 3, 8, 8), progress=lambda *step: told.append(step))
    assert told == [(0, 3, "msdprof"), (1, 3, "fvcore"), (2, 3, "FlopCounterMode"), (3, 3, "done")]


MODEL_FILE = '''
import torch.nn.functional as F
from torch import nn

class Attention(nn.Module):
    def __init__(self):
        super().__init__()
        self.q, self.k, self.v, self.o = (nn.Linear(8, 8) for _ in range(4))

    def forward(self, x):
        b, n, d = x.shape
        split = lambda t: t.view(b, n, 2, 4).transpose(1, 2)
        y = F.scaled_dot_product_attention(split(self.q(x)), split(self.k(x)), split(self.v(x)))
        return x + self.o(y.transpose(1, 2).reshape(b, n, d))

class Net(nn.Module):
    def __init__(self, exits=2):
        super().__init__()
        self.blocks = nn.ModuleList(Attention() for _ in range(exits))
        self.heads = nn.ModuleList(nn.Linear(8, 3) for _ in range(exits))

    def forward(self, x):
        x = x.squeeze(0)
        out = []
        for block, head in zip(self.blocks, self.heads):
            x = block(x)
            out.append(head(x.mean(1)))
        return out
'''


@pytest.fixture
def model_file(tmp_path):
    path = tmp_path / "attention_net.py"
    path.write_text(MODEL_FILE)
    return str(path)


def test_compare_model_json_is_the_api_result_on_the_same_model(capsys, model_file):
    code, out, err = run(capsys, "compare", "--model", f"{model_file}:Net", "--model-kwargs",
                         '{"exits": 3}', "--input-size", "1x5x8", "--format", "json")
    assert code == 0 and err == ""
    data = json.loads(out)
    torch.manual_seed(0)
    from msdprof.files.user_model import load_model
    expected = compare(load_model(f"{model_file}:Net", '{"exits": 3}'), input_size="1x5x8").as_dict()
    assert data["exits"] == expected["exits"] and len(data["exits"]) == 3
    assert data["factory"] == f"{model_file}:Net" and data["model"] == "Net"
    assert [s["name"] for s in data["blind_spots"]] == [
        "aten::scaled_dot_product_attention", "aten._scaled_dot_product_flash_attention_for_cpu"]


def test_compare_model_csv_puts_the_blind_spots_on_stderr(capsys, model_file):
    code, out, err = run(capsys, "compare", "--model", f"{model_file}:Net", "--input-size", "1x5x8",
                         "--format", "csv")
    assert code == 0
    assert "msdprof compare: note: FlopCounterMode did not see aten._scaled_dot_product_flash" in err
    rows = [r for r in csv.DictReader(io.StringIO(out)) if r["operator"] == "scaled_dot_product_attention"]
    assert [(r["exit"], r["flops"], r["FlopCounterMode"]) for r in rows] == [
        ("1", str(2 * ATTENTION_MACS), "0"), ("2", str(4 * ATTENTION_MACS), "0")]


def test_compare_model_needs_the_input_size(capsys, model_file):
    code, out, err = run(capsys, "compare", "--model", f"{model_file}:Net")
    assert (code, out) == (2, "")
    assert err.startswith("msdprof: error: --input-size missing: --model needs its inputs")


def test_a_progress_bar_shows_on_a_terminals_stderr_unless_quiet(capsys, monkeypatch):
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    monkeypatch.setenv("TERM", "xterm-256color")  # a terminal that redraws (TERM=dumb shows no bar)
    code, out, err = run(capsys, "compare", *NETWORK, "--format", "json")
    assert code == 0 and json.loads(out)["exits"]
    assert "msdprof compare: counting with every tool" in err
    code, _, err = run(capsys, "compare", *NETWORK, "--format", "json", "--quiet")
    assert (code, err) == (0, "")


# --- the one-forward method against truncated runs, on a model msdprof did not build ----------

from early_exit_models import BranchyDict, SDNResNet  # noqa: E402


@pytest.mark.parametrize("kind", [SDNResNet, BranchyDict])
def test_running_totals_equal_each_tool_on_the_truncated_forward(kind):
    """The examples' forward(x, exits=k) stops right after output k, having run what the full forward
    runs until then: each tool called directly on it is the oracle of exit k."""
    torch.manual_seed(0)
    model, x = kind().eval(), torch.zeros(1, 3, 32, 32)
    comparison = compare(model, x)
    for e in comparison:
        truncated = KeepAlive(model, e.exit, outputs=lambda m, x, k: list(tensors_in(m(x, exits=k))))
        analysis = FlopCountAnalysis(truncated, x)
        analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
        with FlopCounterMode(display=False) as counter, torch.no_grad():
            model(x, exits=e.exit)
        assert e.count("fvcore").total == analysis.total(), (kind.__name__, e.exit)
        assert e.count("FlopCounterMode").total == counter.get_total_flops(), (kind.__name__, e.exit)
        assert e.count("macs").total == exit_costs(model, convention="macs", input_size=32)[e.exit - 1].macs


# --- the caption names the inputs as given (issue 33 item 8) ----------------------------------


class TokenExits(nn.Module):
    """Token ids in, a classifier after the embedding and after one more Linear."""

    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(50, 8)
        self.block = nn.Linear(8, 8)
        self.heads = nn.ModuleList(nn.Linear(8, 3) for _ in range(2))

    def forward(self, ids):
        h = self.embed(ids).mean(1)
        return [self.heads[0](h), self.heads[1](self.block(h))]


def test_the_caption_names_token_inputs_with_their_shape_and_dtype():
    # `compare --input-size 1x16:int64` said "One 16 input": the batch read as a count, the dtype lost
    text = render(compare(TokenExits(), torch.zeros(1, 16, dtype=torch.long)), "table", "TokenExits")
    assert "Input 1x16:int64, cpu model in eval mode;" in text
    assert "One 16" not in text


def test_the_caption_of_an_msdnet_names_its_one_image():
    text = render(compare_msdnet(build_model(SMALL["cifar"]).eval()), "table", "cifar")
    assert "Input 1x3x32x32, cpu model in eval mode;" in text
