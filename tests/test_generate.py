"""What each generated token costs at every exit of a decoder with a KV cache (issue 31).

The decoder is a tiny transformers ``LlamaForCausalLM`` with grouped-query attention (d = 64, 4
query heads and 2 key/value heads of 16, so d_kv = 32; d_ff = 96; vocabulary 97; 4 layers), built
from a config here, with exits after layers 1, 3 and 4 (LayerSkip's: the final norm and LM head
read after the layer).  The oracles:

- ``FlopCounterMode`` (attention under ``sdpa_kernel(SDPBackend.MATH)``) on the same model truncated
  after each exit's layer (``num_hidden_layers = layer``, real random weights), generating token by
  token with a real ``DynamicCache``: the prefill of the prompt, then each step;
- the closed form per Llama layer and token with L cached tokens, ``2d^2 + 2 d d_kv + 2 d (L+1) +
  3 d d_ff`` multiply-adds (the new token attends to L + 1 keys), plus ``d V`` for the head;
- the policies for skipped layers' caches on a decoder written out as numbers, computed by hand.
"""

from __future__ import annotations

import itertools
import json
from fractions import Fraction

import pytest
import torch

from msdnet.options import OptionError
from msdprof import generation, generation_costs, token_costs
from msdprof.analysis.budget import given_fractions
from msdprof.core.token_costs import BlockCost, Line, TokenCost, TokenCosts
from cli_run import run

D, D_KV, D_FF, VOCAB, LAYERS = 64, 32, 96, 97, 4
CONFIG = dict(model_type="llama", hidden_size=D, intermediate_size=D_FF, num_hidden_layers=LAYERS,
              num_attention_heads=4, num_key_value_heads=2, head_dim=16, vocab_size=VOCAB)
EXIT_LAYERS = (1, 3, 4)


def layer_macs(cached: int) -> int:
    """One Llama layer, one new token, ``cached`` tokens in its cache."""
    return 2 * D * D + 2 * D * D_KV + 2 * D * (cached + 1) + 3 * D * D_FF


@pytest.fixture(scope="module")
def table() -> TokenCosts:
    return generation_costs(hf_config=CONFIG, exit_layers="1,3,4", prompt=3, at="3,4,6,9").table


def truncated(layers: int):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    settings = {k: v for k, v in CONFIG.items() if k != "model_type"}
    settings["num_hidden_layers"] = layers
    return LlamaForCausalLM(LlamaConfig(**settings, attn_implementation="sdpa")).eval()


def flops(step) -> int:
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter, sdpa_kernel(SDPBackend.MATH), torch.no_grad():
        step()
    return counter.get_total_flops()


@pytest.mark.parametrize("exit", [1, 2, 3])
def test_prefill_and_every_step_cost_what_flop_counter_mode_counts_on_the_truncated_llama(exit):
    from transformers import DynamicCache

    counted = generation_costs(hf_config=CONFIG, exit_layers="1,3,4", prompt=3, at="3,4,6",
                               convention="flops").table[exit - 1]
    model = truncated(EXIT_LAYERS[exit - 1])
    cache = DynamicCache(config=model.config)
    prompt = torch.randint(0, VOCAB, (1, 3))
    assert counted.prefill_macs == flops(lambda: model(prompt, cache=cache, use_cache=True, logits_to_keep=1))
    for cached in range(3, 7):  # generate token by token; the step after `cached` tokens
        token = torch.randint(0, VOCAB, (1, 1))
        measured = flops(lambda: model(token, cache=cache, use_cache=True, logits_to_keep=1))
        assert cache.get_seq_length() == cached + 1
        if cached in counted.token_macs:
            assert counted.token_macs[cached] == measured, cached


def test_a_token_costs_the_llama_closed_form_per_layer_plus_the_head(table):
    for e, layers in zip(table, EXIT_LAYERS):
        assert e.token_macs == {n: layers * layer_macs(n) + D * VOCAB for n in (3, 4, 6, 9)}
        assert e.lazy_token_macs == e.token_macs  # a decoder computes nothing an exit does not read
        assert e.token_macs_intercept == layers * layer_macs(0) + D * VOCAB  # L = 0: its own key only
        assert e.token_macs_per_cached_token == layers * 2 * D


def test_the_prefill_is_the_prompt_through_the_exits_layers_and_its_head_on_the_last_position(table):
    # 3 tokens: every projection 3 times, attention 3 x 3 scores as the model computes them
    per_layer = 3 * (2 * D * D + 2 * D * D_KV + 3 * D * D_FF) + 2 * D * 3 * 3
    assert [e.prefill_macs for e in table] == [n * per_layer + D * VOCAB for n in EXIT_LAYERS]


def test_the_cache_a_token_adds_is_the_keys_and_values_of_the_exits_layers(table):
    for e, layers in zip(table, EXIT_LAYERS):
        per_token = layers * 2 * D_KV * 4  # keys and values, float32
        assert e.kv_bytes_per_token == per_token
        assert e.cache_bytes == {n: n * per_token for n in (3, 4, 6, 9)}
        assert e.bytes_read == {n: e.weight_bytes + (n + 1) * per_token for n in (3, 4, 6, 9)}


def test_the_weights_read_are_the_exits_layers_its_head_and_one_embedding_row(table):
    layer_params = 2 * D * D + 2 * D * D_KV + 3 * D * D_FF + 2 * D  # projections and two norms
    for e, layers in zip(table, EXIT_LAYERS):
        assert e.weight_bytes == 4 * (layers * layer_params + D + D * VOCAB + D)  # final norm, head, a row
        assert e.prefill_bytes == e.weight_bytes + 4 * 2 * D  # the prompt's 3 rows
        assert e.check_bytes == 0  # the earlier exits read the same norm and head


def test_a_token_pays_the_heads_of_the_exits_before_the_one_it_takes(table):
    assert [e.check_macs for e in table] == [0, D * VOCAB, 2 * D * VOCAB]
    e = table[2]
    assert e.check_share(3) == 2 * D * VOCAB / (e.token_macs[3] + 2 * D * VOCAB)


def test_propagation_computes_the_keys_and_values_of_the_skipped_layers(table):
    assert [e.propagate_macs for e in table] == [(LAYERS - n) * 2 * D * D_KV for n in EXIT_LAYERS]
    assert [e.propagate_bytes for e in table] == [(LAYERS - n) * 4 * (2 * D * D_KV + D) for n in EXIT_LAYERS]


def test_a_range_is_counted_at_its_ends_and_middle_and_every_length_follows_exactly():
    ranged = generation_costs(hf_config=CONFIG, exit_layers="1,3,4", prompt=2, at="1:40").table
    assert ranged.counted == (1, 20, 40) and ranged.affine
    one = generation_costs(hf_config=CONFIG, exit_layers="1,3,4", prompt=2, at="17").table
    assert [e.token_macs[17] for e in ranged] == [e.token_macs[17] for e in one]
    assert len(ranged[0].token_macs) == 40


def test_the_fit_is_checked_where_a_generation_goes_beyond_the_lengths_asked():
    result = generation_costs(hf_config=CONFIG, exit_layers="1,3,4", prompt=2, at="2,3,4", exits=[1] * 30)
    assert 31 in result.table.counted  # the last token sees 2 + 29 cached tokens


SLIDING = '''
import torch
from torch import nn


class Sliding(nn.Module):
    """One layer attending to its last 4 keys at most: not affine in the cache length."""

    def __init__(self):
        super().__init__()
        self.embed, self.key, self.head = nn.Embedding(50, 8), nn.Linear(8, 8, bias=False), nn.Linear(8, 50, bias=False)

    def forward(self, input_ids, past_key_values=None, use_cache=True):
        h = self.embed(input_ids)
        keys = self.key(h)
        if past_key_values is not None:
            keys = torch.cat([past_key_values[0], keys], 1)
        window = keys[:, -4:]
        h = h + (h @ window.transpose(1, 2)) @ window
        return [self.head(h[:, -1:])], (keys,)


def sliding():
    return Sliding()
'''


def test_a_cost_not_affine_in_the_cache_length_is_counted_at_every_length_and_has_no_line(model_folder):
    from msdprof.files.user_model import load_model

    model_folder(SLIDING)
    model = load_model("models.py:sliding")
    table = token_costs(model, prompt=2, at="1:8")
    assert not table.affine and table.counted == tuple(range(1, 9))
    assert table[0].token_macs == {n: 8 * 8 + 2 * 8 * min(n + 1, 4) + 8 * 50 for n in range(1, 9)}
    assert table[0].token_macs_intercept is None
    with pytest.raises(OptionError, match=r"^policy none: Sliding's token cost is not affine in the cache length"):
        generation(table, "none", exits=[1, 1])


# --- the policies, on a decoder written out as numbers ----------------------------------------------


def numbers() -> TokenCosts:
    """Three exits.  Block b costs (10 b) + b L operations at L cached tokens; head b costs 2 b + 3;
    the keys and values of block b, 1 + b; block b's cache holds b bytes a token; a token at exit
    e reads 100 e bytes of weights, and the keys' and values' weights past it 10 bytes a block."""
    blocks = tuple(BlockCost(b, Line(10 * b, b), 2 * b + 3, 1 + b, Line(0, b)) for b in (1, 2, 3))
    exits = tuple(TokenCost(
        exit=e, layer=None, prefill_macs=1000, lazy_prefill_macs=1000, prefill_bytes=700, token_macs={},
        lazy_token_macs={}, token_macs_intercept=None, token_macs_per_cached_token=None,
        check_macs=sum(2 * j + 3 for j in range(1, e)), propagate_macs=None, weight_bytes=100 * e,
        check_bytes=0, propagate_bytes=10 * (3 - e), kv_bytes_per_token=0, cache_bytes={}, bytes_read={})
        for e in (1, 2, 3))
    return TokenCosts("Numbers", "macs", 2, (2,), (2, 3, 4), exits, blocks, (2, 3, 4))


# Prompt 2, tokens at exits 1, 2, 3: token i has 2 + i - 1 tokens before it.  Blocks: b1(L) = 10 + L,
# b2(L) = 20 + 2L, b3(L) = 30 + 3L; heads 5, 7, 9 (checks: 0, 5, 12); keys and values 2, 3, 4.
POLICY_CASES = {
    # none: token 1 b1(2) + 5; token 2 b1(3) + b2(2: only the prompt ran it) + 7 + 5; token 3 b1(4) +
    # b2(3) + b3(2) + 9 + 12
    "none": [12 + 5, 13 + 24 + 12, 14 + 26 + 36 + 21],
    # propagate: every cache full; token 1 also computes b2's and b3's keys and values (3 + 4), token
    # 2 b3's (4)
    "propagate": [12 + 5 + 7, 13 + 26 + 12 + 4, 14 + 28 + 42 + 21],
    # recompute: token 2 runs token 1 through b2 first (b2(2) = 24); token 3 runs tokens 1 and 2
    # through b3 (b3(2) + b3(3) = 36 + 39)
    "recompute": [12 + 5, 13 + 24 + 26 + 12, 14 + 28 + 36 + 39 + 42 + 21],
    # deferred: token 2 (not the last exit) sees b2 as the prompt left it; token 3 (the last exit)
    # runs token 1 through b2 (24) and tokens 1 and 2 through b3 (36 + 39)
    "deferred": [12 + 5, 13 + 24 + 12, 14 + 24 + 28 + 36 + 39 + 42 + 21],
}


@pytest.mark.parametrize("policy", sorted(POLICY_CASES))
def test_each_policy_costs_what_its_formula_gives_by_hand(policy):
    g = generation(numbers(), policy, exits=[1, 2, 3])
    assert list(g.token_macs) == POLICY_CASES[policy]
    assert g.check_macs == 0 + 5 + 12
    assert g.policy_macs == {"none": 0, "propagate": 3 + 4 + 4, "recompute": 24 + 36 + 39,
                             "deferred": 24 + 36 + 39}[policy]
    assert g.total_macs == 1000 + sum(POLICY_CASES[policy])
    # the full model: every token at exit 3, its head alone: b1 + b2 + b3 at 2, 3, 4 cached, + 9
    assert g.full_macs == 1000 + sum(60 + 6 * n + 9 for n in (2, 3, 4))


def test_the_bytes_of_a_step_are_its_weights_and_the_caches_attention_reads():
    # none: token 1 reads 100 + b1's cache of 3; token 2 200 + 4 + 2 x 3; token 3 300 + 5 + 2 x 4 + 3 x 3
    assert list(generation(numbers(), "none", exits=[1, 2, 3]).token_bytes) == [103, 210, 322]
    # propagate: full caches, and the skipped blocks' key and value weights (20 after exit 1, 10 after 2)
    assert list(generation(numbers(), "propagate", exits=[1, 2, 3]).token_bytes) == [103 + 20, 200 + 4 + 8 + 10,
                                                                                     300 + 5 + 10 + 15]


@pytest.mark.parametrize("policy", sorted(POLICY_CASES))
def test_a_distribution_gives_the_expected_value_over_every_sequence_of_exits(policy):
    table = numbers()
    probs = (Fraction(1, 2), Fraction(1, 3), Fraction(1, 6))
    tokens = 4
    expected_macs = expected_bytes = Fraction(0)
    for sequence in itertools.product((1, 2, 3), repeat=tokens):
        weight = Fraction(1)
        for e in sequence:
            weight *= probs[e - 1]
        g = generation(table, policy, exits=sequence)
        expected_macs += weight * g.total_macs
        expected_bytes += weight * g.total_bytes
    g = generation(table, policy, distribution=given_fractions(probs, 3), tokens=tokens)
    assert g.expected and g.total_macs == pytest.approx(float(expected_macs), rel=1e-12)
    assert g.total_bytes == pytest.approx(float(expected_bytes), rel=1e-12)


def test_the_speed_up_is_the_full_models_cost_over_the_generations(table):
    result = generation_costs(hf_config=CONFIG, exit_layers="1,3,4", prompt=3, exits=[1, 1, 3, 2])
    g = result.generation
    assert g.macs_speedup == g.full_macs / g.total_macs > 1
    assert g.check_share == g.check_macs / (g.total_macs - g.prefill_macs)
    every_last = generation_costs(hf_config=CONFIG, exit_layers="1,3,4", prompt=3, exits=[3, 3, 3, 3]).generation
    assert every_last.total_macs == every_last.full_macs + 4 * 2 * D * VOCAB  # only the checks differ


# --- the command ----------------------------------------------------------------------------------


@pytest.fixture
def config_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "llama.json").write_text(json.dumps(CONFIG))
    return tmp_path


def test_the_command_writes_the_table_json_csv_and_plot_from_a_config_file(config_file, capsys):
    code, out, err = run(capsys, "generate", "--hf-config", "llama.json", "--exit-layers", "1,3,4",
                         "--prompt", "3", "--at", "3,4,6", "--format", "json", "--plot", "cost.svg")
    assert code == 0, err
    data = json.loads(out)
    assert [e["token_macs"]["4"] for e in data["exits"]] == [n * layer_macs(4) + D * VOCAB for n in EXIT_LAYERS]
    assert data["policy"] == "none" and data["generation"] is None
    svg = (config_file / "cost.svg").read_text()  # one line per exit, in the house colours
    assert all(f"stroke: {colour}" in svg for colour in ("#1f77b4", "#d62728", "#2ca02c"))
    assert "stroke: #9467bd" not in svg
    code, out, err = run(capsys, "generate", "--hf-config", "llama.json", "--exit-layers", "1,3,4",
                         "--prompt", "3", "--at", "3,4,6", "--format", "csv")
    assert code == 0 and out.count("\n") == 1 + 3 * 3


def test_the_plot_is_the_same_bytes_twice(config_file, capsys):
    for name in ("a.svg", "b.svg"):
        assert run(capsys, "generate", "--hf-config", "llama.json", "--exit-layers", "1,3,4", "--at", "1:50",
                   "--plot", name, "--quiet")[0] == 0
    assert (config_file / "a.svg").read_bytes() == (config_file / "b.svg").read_bytes()


def test_exits_from_json_and_csv_give_the_generation_the_list_gives(config_file, capsys):
    (config_file / "exits.json").write_text(json.dumps({"exits": [1, 3, 2, 1]}))
    (config_file / "exits.csv").write_text("token,exit\n1,1\n2,3\n3,2\n4,1\n")
    results = []
    for given in (["--exits", "1,3,2,1"], ["--exits-from", "exits.json"], ["--exits-from", "exits.csv"]):
        code, out, err = run(capsys, "generate", "--hf-config", "llama.json", "--exit-layers", "1,3,4",
                             "--prompt", "3", "--policy", "recompute", "--format", "json", *given)
        assert code == 0, err
        results.append(json.loads(out)["generation"])
    assert results[0] == results[1] == results[2]
    assert results[0]["exits"] == [1, 3, 2, 1] and results[0]["tokens"] == 4


GOLDEN_ARGS = ["generate", "--hf-config", "llama.json", "--exit-layers", "1,3,4", "--prompt", "3", "--at",
               "3,4,6", "--exits", "1,3,2,1", "--policy", "deferred"]


@pytest.mark.parametrize("width", [80, 120])
def test_the_tables_match_the_golden_file_at_this_width(config_file, capsys, monkeypatch, width):
    # Regenerate with: MSDPROF_REGEN_GOLDEN=1 python -m pytest tests/test_generate.py
    from pathlib import Path
    import os

    monkeypatch.setenv("COLUMNS", str(width))
    code, out, err = run(capsys, *GOLDEN_ARGS)
    assert code == 0, err
    golden = Path(__file__).parent / "golden" / f"generate-llama-{width}.txt"
    if os.environ.get("MSDPROF_REGEN_GOLDEN"):
        golden.write_text(out)
    assert out == golden.read_text()
    assert max(map(len, out.splitlines())) <= width


ERRORS = [
    (["--exit-layers", "1,3,4"], "give the decoder: --hf-config config.json"),
    (["--hf-config", "nowhere.json"], "--hf-config nowhere.json: no such file"),
    (["--hf-config", "llama.json", "--exit-layers", "3,1,4"],
     "--exit-layers 3,1,4: must be increasing layer numbers from 1 to 4"),
    (["--hf-config", "llama.json", "--exit-layers", "1,3"],
     "--exit-layers 1,3: must end with the last layer, 4"),
    (["--hf-config", "llama.json", "--policy", "skip"], "--policy skip: must be one of none, propagate, "
                                                        "recompute, deferred"),
    (["--hf-config", "llama.json", "--at", "many"], "--at many: must be cache lengths L1,L2,... or a range A:B"),
    (["--hf-config", "llama.json", "--at", "1:99999999999999"], "--at 1:99999999999999: holds more than 1,000,000 "
                                                                "lengths"),
    (["--hf-config", "llama.json", "--prompt", "0"], "--prompt 0: must be a whole number of tokens >= 1"),
    # past 2^63 torch could not make the ids (a traceback before the bound); MAX_CONTEXT in token_costs
    (["--hf-config", "llama.json", "--prompt", "99999999999999999999"],
     "--prompt 99999999999999999999: must be at most 100,000,000 tokens"),
    (["--hf-config", "llama.json", "--prompt", "100000001"], "--prompt 100000001: must be at most 100,000,000 tokens"),
    (["--hf-config", "llama.json", "--at", "99999999999999999999"],
     "--at 99999999999999999999: holds a length above 100,000,000 tokens"),
    (["--hf-config", "llama.json", "--at", "1,100000001"], "--at 1,100000001: holds a length above 100,000,000 tokens"),
    (["--hf-config", "llama.json", "--exits", "1,5"], "--exits 1,5: entry 2 (5) is not an exit: exits are "
                                                      "numbered 1 to 1"),
    (["--hf-config", "llama.json", "--fractions", "1"], "--fractions 1: needs --tokens N"),
    (["--hf-config", "llama.json", "--tokens", "5"], "--tokens 5: is the length of a generation given by "
                                                     "--fractions"),
    (["--hf-config", "llama.json", "--exits", "1", "--fractions", "1"], "--fractions given: and --exits are two ways"),
    (["--hf-config", "llama.json", "--format", "markdown"], "--format markdown: must be one of table, json, csv"),
]


@pytest.mark.parametrize("argv, message", ERRORS, ids=[e[1][:40] for e in ERRORS])
def test_mistakes_are_one_line_naming_the_option(config_file, capsys, argv, message):
    code, out, err = run(capsys, "generate", *argv)
    assert code == 2 and out == ""
    assert err.startswith(f"msdprof: error: {message}") and err.count("\n") == 1, err


def test_a_config_that_is_not_json_or_names_no_model_type_is_one_line(config_file, capsys):
    (config_file / "bad.json").write_text("{nope")
    (config_file / "untyped.json").write_text("{}")
    assert run(capsys, "generate", "--hf-config", "bad.json")[2].startswith(
        "msdprof: error: --hf-config bad.json: is not a JSON file")
    assert run(capsys, "generate", "--hf-config", "untyped.json")[2].startswith(
        "msdprof: error: --hf-config untyped.json: names no model_type")


def test_your_own_decoder_keeping_the_contract_is_counted_from_its_factory(model_folder, capsys):
    from test_nested_io import FACTORIES as DECODER  # two layers appending keys; exit i reads layer i

    model_folder(DECODER)
    code, out, err = run(capsys, "generate", "--model", "models.py:decoder", "--prompt", "4", "--at", "4,9",
                         "--format", "json")
    assert code == 0, err
    data = json.loads(out)
    for k, e in enumerate(data["exits"], 1):  # per layer: the key (d x d) and 2 d (L + 1); the head d x V
        assert e["token_macs"] == {str(n): k * (64 + 16 * (n + 1)) + 400 for n in (4, 9)}
        assert e["kv_bytes_per_token"] == k * 8 * 4  # keys and values are one tensor: counted once


def test_a_model_breaking_the_contract_is_named_with_the_contract(model_folder, capsys):
    model_folder('''
from torch import nn

class Plain(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(10, 4)

    def forward(self, input_ids, past_key_values=None, use_cache=True):
        return self.embed(input_ids)

def plain():
    return Plain()
''')
    code, out, err = run(capsys, "generate", "--model", "models.py:plain")
    assert code == 2 and err.startswith("msdprof: error: --model models.py:plain: returns a tensor, not "
                                        "(exit_logits, cache) nor a dict with exit_logits and past_key_values; "
                                        "msdprof generate needs forward(input_ids, past_key_values=None, "
                                        "use_cache=True) returning (exit_logits, cache)"), err


def test_budget_takes_the_exits_taken_as_its_distribution(config_file, capsys):
    (config_file / "exits.csv").write_text("exit\n1\n1\n2\n3\n")
    code, by_file, err = run(capsys, "budget", "--preset", "cifar10-batch", "--nBlocks", "3", "--exits-from",
                             "exits.csv", "--format", "json")
    assert code == 0, err
    code, by_fractions, _ = run(capsys, "budget", "--preset", "cifar10-batch", "--nBlocks", "3", "--fractions",
                                "0.5,0.25,0.25", "--format", "json")
    assert json.loads(by_file)["distributions"] == json.loads(by_fractions)["distributions"]


def test_the_help_names_every_policy_the_api_knows():
    from msdprof.analysis.generation import POLICIES
    from msdprof.cli.generate import POLICY_HELP

    assert [p for p in POLICIES if f"{p} " in POLICY_HELP or f"{p}:" in POLICY_HELP] == list(POLICIES)
