"""Recurrent layers counted exactly, in every convention (issue 23): hand formulas, and torch's
FlopCounterMode where it sees them.

The hand formula.  At every time step of every sequence, each layer and direction of an RNN
multiplies its input by ``weight_ih`` (``G*H x in``) and its previous hidden state by
``weight_hh`` (``G*H x H``; ``G*H x P`` with ``proj_size`` P), and, with ``proj_size``, its new
hidden state by ``weight_hr`` (``P x H``) -- G gates: 1 for RNN, 3 for GRU, 4 for LSTM.  Layer
l > 0 reads the previous layer's output of all directions (``in = dirs * H``, or ``dirs * P``).
So one step costs the sum of the weight matrices' elements in multiply-adds, and
``macs = steps * that sum`` with ``steps = L * N`` (or the packed sequences' total length).  The
``msdnet`` convention adds the bias adds as for Linear (``b_ih`` and ``b_hh``: ``2 * G * H`` per
layer, direction and step); ``flops`` is twice ``macs``.

FlopCounterMode counts 0 for an LSTM on CPU (its kernel, ``mkldnn_rnn_layer``, has no formula in
torch), so the LSTM oracle runs on ``meta``, where the LSTM is its matmuls; msdprof counts the CPU
LSTM the same, and its dispatch-level view has a formula for that kernel.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence
from torch.utils.flop_counter import FlopCounterMode

from msdprof import exit_costs

L, N, IN, H = 6, 2, 4, 8  # time steps, batch, input features, hidden size


def sequence(device: str = "cpu", batch_first: bool = False) -> torch.Tensor:
    return torch.zeros((N, L, IN) if batch_first else (L, N, IN), device=device)


def first(out):
    """The recurrent layer's output sequence, as the one exit."""
    return [out[0]]


def counts(layer: nn.Module, x, convention: str) -> int:
    return exit_costs(layer, inputs=x, outputs=first, convention=convention)[0].macs


def flop_counter(layer: nn.Module, x) -> int:
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        layer(x)
    return counter.get_total_flops()


# (layer, multiply-adds per step, bias adds per step), worked out by the formula above
CASES = {
    # RNN, 2 layers: 8x4 + 8x8, then 8x8 + 8x8; biases 2 x 8 per layer
    "rnn-2-layers": (lambda: nn.RNN(IN, H, num_layers=2), (32 + 64) + (64 + 64), 2 * (8 + 8)),
    # GRU, G = 3: 24x4 + 24x8; biases 24 + 24
    "gru": (lambda: nn.GRU(IN, H), 96 + 192, 48),
    # LSTM, 2 layers, bidirectional, G = 4: per direction 32x4 + 32x8, then 32x16 + 32x8
    "lstm-bidirectional-2-layers": (lambda: nn.LSTM(IN, H, num_layers=2, bidirectional=True),
                                    2 * (128 + 256) + 2 * (512 + 256), 4 * (32 + 32)),
    # LSTM with proj_size 3: 32x4 + 32x3 (hidden state projected) + 3x8 (the projection)
    "lstm-projection": (lambda: nn.LSTM(IN, H, proj_size=3), 128 + 96 + 24, 64),
    # GRU without bias
    "gru-no-bias": (lambda: nn.GRU(IN, H, bias=False), 96 + 192, 0),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_every_convention_equals_the_hand_formula(case):
    build, per_step, bias_per_step = CASES[case]
    layer, steps = build(), L * N
    assert counts(layer, sequence(), "macs") == steps * per_step
    assert counts(layer, sequence(), "flops") == 2 * steps * per_step
    assert counts(layer, sequence(), "msdnet") == steps * (per_step + bias_per_step)


@pytest.mark.parametrize("case", sorted(CASES))
def test_flops_equal_flop_counter_mode_on_meta(case):
    layer = CASES[case][0]().to("meta")
    assert counts(layer, sequence("meta"), "flops") == flop_counter(layer, sequence("meta"))


def test_flop_counter_mode_is_blind_to_an_lstm_on_cpu_where_msdprof_is_not():
    layer = nn.LSTM(IN, H)
    assert flop_counter(layer, sequence()) == 0  # mkldnn_rnn_layer: no formula in torch
    assert counts(layer, sequence(), "macs") == L * N * (128 + 256)


def test_batch_first_counts_the_same_steps():
    layer = nn.GRU(IN, H, batch_first=True)
    assert counts(layer, sequence(batch_first=True), "macs") == L * N * (96 + 192)


def test_packed_sequences_count_their_real_length_only():
    # lengths 6 and 3: 9 steps, not 12
    class Packed(nn.Module):
        def __init__(self):
            super().__init__()
            self.lstm = nn.LSTM(IN, H)

        def forward(self, x):
            return [self.lstm(pack_padded_sequence(x, torch.tensor([6, 3])))[0].data]

    assert exit_costs(Packed(), inputs=sequence(), convention="macs")[0].macs == 9 * (128 + 256)


def test_an_unbatched_sequence_counts_its_steps():
    assert counts(nn.RNN(IN, H), torch.zeros(L, IN), "macs") == L * (32 + 64)


@pytest.mark.parametrize("cell, per_row, bias", [
    (nn.RNNCell(IN, H), 32 + 64, 16), (nn.LSTMCell(IN, H), 128 + 256, 64), (nn.GRUCell(IN, H), 96 + 192, 48)])
def test_a_cell_is_one_step_per_row_in_every_convention(cell, per_row, bias):
    x = torch.zeros(N, IN)

    def one(out):
        return [out[0] if isinstance(out, tuple) else out]

    def of(convention):
        return exit_costs(cell, inputs=x, outputs=one, convention=convention)[0].macs

    assert (of("macs"), of("flops"), of("msdnet")) == (N * per_row, 2 * N * per_row, N * (per_row + bias))
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        cell(x)
    assert of("flops") == counter.get_total_flops()
