"""Nested inputs and outputs (issue 31): a decoder's cache -- a transformers ``DynamicCache``, or
``(key, value)`` tuples per layer saved with ``torch.save`` -- is an input like any other, the
exits are picked out of nested outputs by a key path, and ``--batch`` scales only the inputs that
carry the batch, each dtype at its own size.

The model is a two-layer decoder written here: each layer appends its key to the cache and
attends to every cached key; exit k reads layer k's last position.  Expected multiply-adds are
written out from its shapes (d = 8, vocabulary 50, L cached tokens).
"""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch
from torch import nn

from msdnet.options import OptionError
from msdprof import exit_costs, exit_memory
from msdprof.core.dataflow import Inputs, as_inputs
from cli_run import run

D, VOCAB = 8, 50

FACTORIES = '''
import torch
from torch import nn


class Decoder(nn.Module):
    """Two layers; layer i appends its key to past_key_values (a DynamicCache, or a tuple of
    (key, value) per layer) and attends to all cached keys; exit i reads the last position."""

    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(50, 8)
        self.keys = nn.ModuleList(nn.Linear(8, 8, bias=False) for _ in range(2))
        self.head = nn.Linear(8, 50, bias=False)

    def forward(self, input_ids, past_key_values=None, use_cache=True):
        h, logits, new = self.embed(input_ids), [], []
        for i, project in enumerate(self.keys):
            key = project(h)
            if hasattr(past_key_values, "update"):
                keys, _ = past_key_values.update(key.unsqueeze(1), key.unsqueeze(1), i)
                keys = keys.squeeze(1)
            else:
                keys = torch.cat([past_key_values[i][0], key], 1) if past_key_values else key
                new.append((keys, keys))
            h = h + (h @ keys.transpose(1, 2)) @ keys
            logits.append(self.head(h[:, -1:]))
        return {"exit_logits": logits, "past_key_values": past_key_values if new == [] else tuple(new)}


def decoder():
    return Decoder()
'''


@pytest.fixture
def folder(model_folder):
    return model_folder(FACTORIES)


def decoder(folder):
    import importlib.util

    spec = importlib.util.spec_from_file_location("nested_factories", folder / "models.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.decoder().eval()


def step_macs(cached: int, layers: int) -> int:
    """One new token with ``cached`` tokens in the cache, through ``layers`` layers and the head:
    per layer the key (d x d), the scores and the weighted sum over cached + 1 keys (2 d (L+1)),
    plus the head (d x V)."""
    return layers * (D * D + 2 * D * (cached + 1)) + D * VOCAB


def legacy_cache(cached: int) -> tuple:
    return tuple((torch.zeros(1, cached, D), torch.zeros(1, cached, D)) for _ in range(2))


def test_a_dynamic_cache_is_an_input_and_the_exits_are_picked_by_key(folder):
    from transformers import DynamicCache

    cache = DynamicCache(ddp_cache_data=[(torch.zeros(1, 1, 5, D), torch.zeros(1, 1, 5, D))] * 2)
    costs = exit_costs(decoder(folder), inputs={"input_ids": torch.zeros(1, 1, dtype=torch.long),
                                                "past_key_values": cache}, outputs="exit_logits")
    assert [e.direct_macs for e in costs] == [step_macs(5, 1), step_macs(5, 2)]
    assert costs.input_names == ("input_ids", "past_key_values.layers.0.keys", "past_key_values.layers.0.values",
                                 "past_key_values.layers.1.keys", "past_key_values.layers.1.values")
    assert cache.get_seq_length() == 5  # counted on copies: the caller's cache is as it was


def test_a_cache_given_on_real_tensors_is_left_as_it_was(folder):
    from transformers import DynamicCache

    cache = DynamicCache(ddp_cache_data=[(torch.zeros(1, 1, 3, D), torch.zeros(1, 1, 3, D))] * 2)
    exit_costs(decoder(folder), inputs={"input_ids": torch.zeros(1, 1, dtype=torch.long),
                                        "past_key_values": cache}, outputs="exit_logits", real=True)
    assert cache.get_seq_length() == 3


def test_saved_inputs_may_nest_a_cache_as_key_value_tuples(folder, capsys):
    torch.save({"input_ids": torch.zeros(1, 1, dtype=torch.long), "past_key_values": legacy_cache(7),
                "use_cache": True}, folder / "step.pt")
    code, out, err = run(capsys, "count", "--model", "models.py:decoder", "--inputs", "step.pt",
                         "--outputs", "exit_logits", "--format", "json")
    assert code == 0, err
    data = json.loads(out)
    assert [e["direct_macs"] for e in data["exits"]] == [step_macs(7, 1), step_macs(7, 2)]
    assert data["input_names"] == ["input_ids", "past_key_values.0.0", "past_key_values.0.1",
                                   "past_key_values.1.0", "past_key_values.1.1"]
    assert data["inputs"] == [[1, 1]] + [[1, 7, D]] * 4


def test_a_key_path_of_several_steps_reaches_the_exits(folder):
    class Wrapped(nn.Module):
        def __init__(self):
            super().__init__()
            self.inner = decoder(folder)

        def forward(self, input_ids, past_key_values):
            return (self.inner(input_ids, past_key_values), "side information")

    costs = exit_costs(Wrapped(), inputs={"input_ids": torch.zeros(1, 1, dtype=torch.long),
                                          "past_key_values": legacy_cache(2)}, outputs="0.exit_logits")
    assert [e.direct_macs for e in costs] == [step_macs(2, 1), step_macs(2, 2)]


def test_an_index_is_still_taken_of_each_exits_output_first(folder):
    class Pairs(nn.Module):  # [(logits, features), ...]: 0 picks each exit's logits, not exit 1
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Linear(4, 4), nn.Linear(4, 4)

        def forward(self, x):
            f = self.a(x)
            return [(f, x), (self.b(f), f)]

    costs = exit_costs(Pairs(), inputs=torch.zeros(1, 4), outputs=0)
    assert [e.macs for e in costs] == [16, 32]


def test_a_key_path_that_leads_nowhere_names_what_was_there(folder):
    with pytest.raises(OptionError, match=r"^outputs logits: Decoder returns a dict of exit_logits, "
                                          r"past_key_values, which has no item logits"):
        exit_costs(decoder(folder), inputs={"input_ids": torch.zeros(1, 1, dtype=torch.long),
                                            "past_key_values": legacy_cache(2)}, outputs="logits")


def test_the_outputs_option_takes_a_key_path_on_the_command_line(folder, capsys):
    torch.save({"input_ids": torch.zeros(1, 1, dtype=torch.long), "past_key_values": legacy_cache(3)},
               folder / "step.pt")
    code, out, err = run(capsys, "count", "--model", "models.py:decoder", "--inputs", "step.pt",
                         "--outputs", "exit_logits.1", "--format", "json")
    assert code == 2 and err.startswith("msdprof: error: --outputs exit_logits.1: Decoder returns a "
                                        "tensor: an early-exit network returns one tensor per exit")
    code, out, err = run(capsys, "count", "--model", "models.py:decoder", "--inputs", "step.pt",
                         "--outputs", "exit logits")
    assert code == 2 and err.startswith("msdprof: error: --outputs exit logits: must be an index (0), "
                                        "a key (logits), a key path")


def test_a_dataclass_of_tensors_is_an_input():
    @dataclasses.dataclass(frozen=True)
    class Batch:
        image: torch.Tensor
        scale: float = 2.0

    class Model(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Linear(4, 3), nn.Linear(3, 2)

        def forward(self, batch):
            h = self.a(batch.image) * batch.scale
            return [h, self.b(h)]

    costs = exit_costs(Model(), inputs=(Batch(torch.zeros(1, 4)),))
    assert [e.macs for e in costs] == [12, 18] and costs.input_names == ("0.image",)


def test_inputs_holding_no_tensor_are_refused_naming_the_forms():
    with pytest.raises(OptionError, match=r"^inputs dict: must be a tensor, a tuple or list \(positional "
                                          r"inputs\) or a dict by name \(keyword inputs\), of tensors or of"):
        as_inputs({"use_cache": True})


def test_nested_inputs_list_their_tensors_by_key_path_positional_first():
    given = as_inputs((torch.zeros(1, 2), (torch.zeros(3), torch.zeros(4))))
    assert given.names == ("", "1.0", "1.1") and given.shapes == ((1, 2), (3,), (4,))
    assert Inputs((), {"x": {"a": torch.zeros(2)}}).names == ("x.a",)


def test_batch_scales_only_the_inputs_that_carry_it_each_dtype_at_its_size(folder, capsys):
    # token ids 1x16 carry the batch; a cache stacked layers first (4x2x1x4x16x8) does not
    model = '''
import torch
from torch import nn

class Stacked(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed, self.head = nn.Embedding(50, 8), nn.Linear(8, 8)

    def forward(self, input_ids, stacked):
        h = self.embed(input_ids) + stacked.sum()
        return [h, self.head(h)]

def stacked():
    return Stacked()
'''
    (folder / "stacked.py").write_text(model)
    code, out, err = run(capsys, "count", "--model", "stacked.py:stacked", "--input-size",
                         "input_ids=1x16:long,stacked=4x2x1x4x16x8", "--memory", "--batch", "8",
                         "--format", "json")
    assert code == 0, err
    memory = json.loads(out)["memory"]
    assert memory["batch_inputs"] == ["input_ids"]
    assert memory["input_bytes"] == 8 * 16 * 8 + 4 * 2 * 1 * 4 * 16 * 8 * 4  # int64 at 8 bytes, float32 at 4
    code, out, err = run(capsys, "count", "--model", "stacked.py:stacked", "--input-size",
                         "input_ids=1x16:long,stacked=4x2x1x4x16x8", "--memory", "--batch", "8")
    assert "inputs input_ids=8x16:int64, stacked=4x2x1x4x16x8 (batch 8 in input_ids; stacked kept as " \
           "given)" in " ".join(out.split())


def test_memory_of_a_decode_step_counts_the_cache_as_input_bytes(folder):
    memory = exit_memory(decoder(folder), inputs={"input_ids": torch.zeros(1, 1, dtype=torch.long),
                                                  "past_key_values": legacy_cache(5)}, outputs="exit_logits")
    assert memory.input_bytes == 1 * 8 + 4 * 5 * D * 4
    assert memory.carrying() == ("input_ids", "past_key_values.0.0", "past_key_values.0.1",
                                 "past_key_values.1.0", "past_key_values.1.1")
