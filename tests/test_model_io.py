"""Feeding real models from the command line (issue 23 item 5) and the user's code kept in its
place (issue 26 items 5, 8, 11): token ids, several and keyword inputs, saved example inputs,
``--outputs``, and one-line errors naming the option that fixes them.

Per-exit figures are checked against PyTorch's FlopCounterMode (``--convention flops``) on a
forward that computes only what exits 1..k need (the lazy figure), written by hand or built as the
same model with k layers.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from msdnet import build_model, resolve
from msdnet.options import OptionError
from msdprof import exit_costs
from cli_run import run

FACTORIES = '''
import sys
import torch
from torch import nn


class EarlyExitBert(nn.Module):
    """A tiny BERT (random weights) with a classifier on the [CLS] token after every layer."""

    def __init__(self, layers=2):
        super().__init__()
        from transformers import BertConfig, BertModel
        config = BertConfig(vocab_size=100, hidden_size=32, num_hidden_layers=layers,
                            num_attention_heads=2, intermediate_size=64, max_position_embeddings=64,
                            attn_implementation="eager")
        self.bert = BertModel(config, add_pooling_layer=False)
        self.heads = nn.ModuleList(nn.Linear(32, 3) for _ in range(layers))

    def forward(self, input_ids, attention_mask):
        out = self.bert(input_ids=input_ids, attention_mask=attention_mask, output_hidden_states=True)
        return [head(out.hidden_states[i + 1][:, 0]) for i, head in enumerate(self.heads)]


class TwoInputs(nn.Module):
    """An image and a vector of side information: exit 1 reads the image, exit 2 both."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.side = nn.Linear(10, 6)
        self.head1 = nn.Linear(4, 2)
        self.head2 = nn.Linear(10, 2)

    def forward(self, image, extra):
        pooled = self.conv(image).mean((2, 3))
        return [self.head1(pooled), self.head2(torch.cat([pooled, self.side(extra)], 1))]


class LogitsAndFeatures(nn.Module):
    """Returns (logits, features) per exit."""

    def __init__(self):
        super().__init__()
        self.stage1 = nn.Linear(12, 16)
        self.stage2 = nn.Linear(16, 16)
        self.head1 = nn.Linear(16, 5)
        self.head2 = nn.Linear(16, 5)

    def forward(self, x):
        f1 = self.stage1(x.flatten(1))
        f2 = self.stage2(f1)
        return [(self.head1(f1), f1), (self.head2(f2), f2)]


class Chatty(LogitsAndFeatures):
    def forward(self, x):
        print("forward called")
        return [logits for logits, _ in super().forward(x)]


class Raises(nn.Module):
    def __init__(self, error):
        super().__init__()
        self.error, self.fc = error, nn.Linear(2, 2)

    def forward(self, x):
        raise self.error


class Custom(BaseException):
    pass


def bert(layers=2):
    return EarlyExitBert(layers)

def two_inputs():
    return TwoInputs()

def logits_and_features():
    return LogitsAndFeatures()

def chatty():
    print("building the model")
    return Chatty()

def needs_width(width):
    return LogitsAndFeatures()

def exits_the_program():
    sys.exit(3)

def forward_interrupted():
    return Raises(KeyboardInterrupt())

def forward_raises_custom():
    return Raises(Custom("stop"))

def forward_exits():
    return Raises(SystemExit(4))

def traced():
    model = LogitsAndFeatures()
    return torch.jit.trace(nn.Linear(12, 2), torch.zeros(1, 12))

def heads_only(out):
    return [logits for logits, _ in out]
'''


@pytest.fixture
def folder(model_folder):
    """A folder holding models.py (the factories above), made the working directory."""
    return model_folder(FACTORIES)


def lazy_flops(out: str) -> list[int]:
    return [e["lazy_macs"] for e in json.loads(out)["exits"]]


def flop_count(forward, *args, **kwargs) -> int:
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        forward(*args, **kwargs)
    return counter.get_total_flops()


def load(folder, name):
    import importlib.util

    spec = importlib.util.spec_from_file_location("factories_for_the_oracle", folder / "models.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return getattr(module, name)


# --- one command per model a new user brings ----------------------------------------------------


def test_a_bert_is_counted_from_its_token_ids_and_attention_mask(folder, capsys):
    code, out, err = run(capsys, "count", "--model", "models.py:bert", "--input-size",
                         "input_ids=1x16:long,attention_mask=1x16:long", "--convention", "flops",
                         "--format", "json")
    assert code == 0, err
    bert = load(folder, "bert")
    ids = torch.zeros(1, 16, dtype=torch.long)
    # exit k needs the embeddings, layers 1..k and heads 1..k: the same BERT with k layers
    expected = [flop_count(bert(layers=k).eval(), input_ids=ids, attention_mask=ids) for k in (1, 2)]
    assert lazy_flops(out) == expected
    assert json.loads(out)["inputs"] == [[1, 16], [1, 16]]


def test_the_inputs_are_named_with_their_keywords_and_dtypes_in_the_json_and_the_caption(folder, capsys):
    typed = ["count", "--model", "models.py:bert", "--input-size", "input_ids=1x16:long,attention_mask=1x16:long"]
    code, out, err = run(capsys, *typed, "--format", "json")
    assert code == 0, err
    data = json.loads(out)
    assert (data["input_names"], data["input_dtypes"]) == (["input_ids", "attention_mask"], ["int64", "int64"])
    code, out, err = run(capsys, *typed)
    assert code == 0 and "Input input_ids=1x16:int64, attention_mask=1x16:int64;" in " ".join(out.split())


def test_token_ids_given_as_a_size_and_a_dtype_count_as_keyword_ones(folder, capsys):
    by_dtype = run(capsys, "count", "--model", "models.py:bert", "--input-size", "1x16,1x16",
                   "--input-dtype", "long", "--format", "json")
    by_name = run(capsys, "count", "--model", "models.py:bert", "--input-size",
                  "input_ids=1x16:long,attention_mask=1x16:long", "--format", "json")
    assert by_dtype[0] == by_name[0] == 0
    assert json.loads(by_dtype[1])["exits"] == json.loads(by_name[1])["exits"]


def test_a_two_input_model_is_counted_from_two_sizes(folder, capsys):
    code, out, err = run(capsys, "count", "--model", "models.py:two_inputs", "--input-size",
                         "1x3x8x8,1x10", "--convention", "flops", "--format", "json")
    assert code == 0, err
    m = load(folder, "two_inputs")().eval()
    image, extra = torch.zeros(1, 3, 8, 8), torch.zeros(1, 10)

    def exit1():
        return m.head1(m.conv(image).mean((2, 3)))

    def exits_1_and_2():
        pooled = m.conv(image).mean((2, 3))
        return m.head1(pooled), m.head2(torch.cat([pooled, m.side(extra)], 1))

    assert lazy_flops(out) == [flop_count(exit1), flop_count(exits_1_and_2)]


def test_outputs_picks_the_logits_of_a_model_returning_logits_and_features(folder, capsys):
    code, out, err = run(capsys, "count", "--model", "models.py:logits_and_features", "--input-size",
                         "1x12:float", "--outputs", "0", "--convention", "flops", "--format", "json")
    assert code == 0, err
    m = load(folder, "logits_and_features")().eval()
    x = torch.zeros(1, 12)

    def exits_1_and_2():
        f1 = m.stage1(x)
        return m.head1(f1), m.head2(m.stage2(f1))

    expected = [flop_count(lambda: m.head1(m.stage1(x))), flop_count(exits_1_and_2)]
    assert lazy_flops(out) == expected


def test_outputs_may_be_a_function_in_a_file(folder, capsys):
    by_index = run(capsys, "count", "--model", "models.py:logits_and_features", "--input-size", "1x12:float",
                   "--outputs", "0", "--format", "json")
    by_function = run(capsys, "count", "--model", "models.py:logits_and_features", "--input-size",
                      "1x12:float", "--outputs", "models.py:heads_only", "--format", "json")
    assert by_index[0] == by_function[0] == 0
    assert json.loads(by_index[1])["exits"] == json.loads(by_function[1])["exits"]


def test_saved_keyword_inputs_count_as_the_sizes_they_have(folder, capsys):
    ids = torch.zeros(1, 16, dtype=torch.long)
    torch.save({"input_ids": ids, "attention_mask": ids}, folder / "example.pt")
    saved = run(capsys, "count", "--model", "models.py:bert", "--inputs", "example.pt", "--format", "json")
    sized = run(capsys, "count", "--model", "models.py:bert", "--input-size",
                "input_ids=1x16:long,attention_mask=1x16:long", "--format", "json")
    assert saved[0] == sized[0] == 0, saved[2]
    assert json.loads(saved[1])["exits"] == json.loads(sized[1])["exits"]


def test_saved_positional_inputs_in_an_npz_are_read_in_order(folder, capsys):
    np.savez(folder / "example.npz", np.zeros((1, 3, 8, 8), np.float32), np.zeros((1, 10), np.float32))
    saved = run(capsys, "count", "--model", "models.py:two_inputs", "--inputs", "example.npz", "--format", "json")
    sized = run(capsys, "count", "--model", "models.py:two_inputs", "--input-size", "1x3x8x8,1x10",
                "--format", "json")
    assert saved[0] == sized[0] == 0, saved[2]
    assert json.loads(saved[1])["exits"] == json.loads(sized[1])["exits"]


@pytest.mark.parametrize("command", ["graph", "budget", "report", "latency"])
def test_every_command_taking_a_model_takes_its_inputs_and_outputs(folder, capsys, command):
    more = {"graph": ["-o", "g.json"], "budget": ["--fractions", "0.5,0.5"], "report": ["-o", "r.md"],
            "latency": ["--min-time", "0.001", "--format", "json"]}[command]
    code, _, err = run(capsys, command, "--model", "models.py:logits_and_features", "--input-size",
                       "x=1x12", "--outputs", "0", *more)
    assert code == 0, err


def test_the_report_shows_the_inputs_and_outputs_as_typed(folder, capsys):
    code, _, err = run(capsys, "report", "--model", "models.py:logits_and_features", "--input-size",
                       "1x12:float", "--outputs", "0", "-o", "r.md")
    assert code == 0, err
    assert ("msdprof report --model models.py:logits_and_features --input-size 1x12:float --outputs 0"
            in (folder / "r.md").read_text())


def test_latency_times_keyword_inputs_the_batch_wide(folder, capsys):
    code, out, err = run(capsys, "latency", "--model", "models.py:bert", "--input-size",
                         "input_ids=1x16:long,attention_mask=1x16:long", "--batch", "3",
                         "--min-time", "0.001", "--format", "json")
    assert code == 0, err
    assert json.loads(out)["batch"] == 3


# --- the API takes the same ---------------------------------------------------------------------


def test_the_api_takes_keyword_inputs_and_an_output_index(folder):
    m = load(folder, "logits_and_features")().eval()
    by_dict = exit_costs(m, inputs={"x": torch.zeros(1, 12)}, outputs=0, convention="flops")
    by_text = exit_costs(m, input_size="x=1x12", outputs=0, convention="flops")
    x = torch.zeros(1, 12)

    def exits_1_and_2():
        f1 = m.stage1(x)
        return m.head1(f1), m.head2(m.stage2(f1))

    assert [e.lazy_macs for e in by_dict] == [e.lazy_macs for e in by_text] == [
        flop_count(lambda: m.head1(m.stage1(x))), flop_count(exits_1_and_2)]


def test_a_half_precision_msdnet_counts_as_its_float_twin():
    # issue 26 item 8: the example image follows the model's dtype (it was float32: a raw error)
    options = resolve("cifar10-batch", nBlocks=2, nChannels=8, growthRate=4)
    half = exit_costs(build_model(options).half())
    assert [e.macs for e in half] == [e.macs for e in exit_costs(options)]


def test_an_unavailable_device_is_one_option_error():
    with pytest.raises(OptionError, match=r"^device xla: xla is not available on this machine"):
        exit_costs("cifar10-batch", device="xla")


# --- errors name the option that fixes them -----------------------------------------------------


ERRORS = [
    (["--model", "models.py:needs_width", "--input-size", "1x12:float"],
     "--model-kwargs missing: needs_width() cannot be called with them: missing a required argument: "
     "'width'"),
    (["--model", "models.py:two_inputs", "--input-size", "1x3x8x8"],
     "--input-size 1x3x8x8: TwoInputs failed on it: TypeError: "),
    (["--model", "models.py:logits_and_features", "--input-size", "1x12:float"],
     "--outputs missing: LogitsAndFeatures returns exit 1 as a tuple of 2, not a tensor; pick one "
     "tensor per exit with --outputs"),
    (["--model", "models.py:logits_and_features", "--input-size", "1x12:float", "--outputs", "2"],
     "--outputs 2: LogitsAndFeatures returns exit 1 as a tuple of 2, which has no item 2"),
    (["--model", "models.py:logits_and_features", "--input-size", "1x12:float", "--input-size", "1x12:float"],
     "--input-size is given twice: give several inputs in one, joined by commas (--input-size 1x12:float,1x12:float)"),
    (["--model", "models.py:logits_and_features", "--input-size", "1x12:long64"],
     "--input-size 1x12:long64: 'long64' is not a dtype: one of float, "),
    (["--model", "models.py:logits_and_features", "--inputs", "x.pt", "--input-dtype", "long"],
     "--input-dtype long: is the dtype of --input-size"),
    (["--preset", "cifar10-batch", "--outputs", "0"], "--outputs 0: needs --model"),
    (["--model", "models.py:logits_and_features", "--input-size", "1x12"],  # a vector, not a 1-pixel image
     "--input-size 1x12: reads as an image 1x12 pixels, 1 high or wide (input 1x3x1x12): for a 1x12 tensor "
     "give its dtype (1x12:float), for such an image its channels (3x1x12)"),
    (["--model", "models.py:exits_the_program", "--input-size", "1x12:float"],
     "--model models.py:exits_the_program: calling exits_the_program() raised SystemExit: 3 (your "
     "model's code, not msdprof)"),
    (["--model", "models.py:forward_raises_custom", "--input-size", "2x2"],
     "--model Raises: its forward raised Custom: stop (your model's code, not msdprof)"),
    (["--model", "models.py:forward_exits", "--input-size", "2x2"],
     "--model Raises: its forward raised SystemExit: 4 (your model's code, not msdprof)"),
    (["--model", "models.py:traced", "--input-size", "1x12:float"],
     "--model models.py:traced: traced() returned a TorchScript module (scripted or traced), which "
     "msdprof cannot record: return the eager nn.Module"),
    (["--model", "models.py:bert", "--input-size", "1x16:long", "--model-kwargs", "[" * 100_000],
     "--model-kwargs "),
    (["--model", "models.py:bert", "--input-size", "1x16:long", "--model-kwargs", '{"layers": ' + "9" * 5000 + "}"],
     "--model-kwargs "),
]


@pytest.mark.parametrize("argv, message", ERRORS, ids=[e[1][:48] for e in ERRORS])
def test_model_errors_are_one_line_naming_the_option(folder, capsys, argv, message):
    torch.save(torch.zeros(1, 12), folder / "x.pt")
    code, out, err = run(capsys, "count", *argv)
    assert code == 2 and out == ""
    assert err.startswith(f"msdprof: error: {message}") and err.count("\n") == 1, err


def test_a_forward_raising_keyboard_interrupt_is_rc_130_naming_the_model(folder, capsys):
    code, out, err = run(capsys, "count", "--model", "models.py:forward_interrupted", "--input-size", "2x2")
    assert (code, out) == (130, "")
    assert err == "msdprof: interrupted while Raises.forward ran (your model's code)\n"


def test_what_a_model_prints_goes_to_stderr_not_into_the_json(folder, capsys):
    code, out, err = run(capsys, "count", "--model", "models.py:chatty", "--input-size", "1x12:float",
                         "--format", "json")
    assert code == 0
    assert json.loads(out)["model"] == "Chatty"
    assert err == "building the model\nforward called\n"  # the count's one pass


# --- checkpoints: the whole reason on one line ----------------------------------------------------


def test_a_checkpoint_of_another_size_names_the_tensor_and_both_shapes(folder, capsys):
    state = load(folder, "logits_and_features")().state_dict()
    state["head2.weight"] = torch.zeros(7, 16)
    torch.save(state, folder / "ckpt.pt")
    code, _, err = run(capsys, "count", "--model", "models.py:logits_and_features", "--input-size", "1x12:float",
                       "--outputs", "0", "--checkpoint", "ckpt.pt")
    assert (code, err) == (2, "msdprof: error: --checkpoint ckpt.pt: does not fit the model: head2.weight "
                              "is 7x16 in the checkpoint, 5x16 in the model\n")


class Payload:
    """Pickled into a checkpoint: torch.load(weights_only=True) must refuse it, on one line."""


def test_a_checkpoint_holding_a_pickled_object_is_one_line_without_escapes(folder, capsys):
    torch.save({"state_dict": {}, "extra": Payload()}, folder / "ckpt.pt")
    code, _, err = run(capsys, "count", "--model", "models.py:logits_and_features", "--input-size", "1x12:float",
                       "--outputs", "0", "--checkpoint", "ckpt.pt")
    assert code == 2 and err.count("\n") == 1 and "\x1b" not in err
    assert err.startswith("msdprof: error: --checkpoint ckpt.pt: is not a state dict torch.load"
                          "(weights_only=True) can read: it holds pickled objects, not only tensors (")
    assert "Payload" in err


def test_saved_inputs_holding_a_pickled_object_are_refused_on_one_line(folder, capsys):
    torch.save({"x": Payload()}, folder / "inputs.pt")
    code, _, err = run(capsys, "count", "--model", "models.py:logits_and_features", "--inputs", "inputs.pt",
                       "--outputs", "0")
    assert code == 2 and err.count("\n") == 1 and "\x1b" not in err
    assert err.startswith("msdprof: error: --inputs inputs.pt: cannot be read: it holds pickled objects")
