"""Recurrent early-exit networks of the zoo, tiny: an exit per chunk of the sequence (the hidden
state carried on) or per stacked layer; RNN, LSTM (bidirectional, several layers, ``batch_first``,
``proj_size``, packed sequences), GRU and the three cells unrolled by hand.

Inputs: ``L x N x F`` sequences (``N x L x F`` where ``batch_first``), L = 6, N = 2, F = 4.
``forward(x, exits=None)`` returns the exits' outputs; ``exits=k`` stops once output k is complete.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence


class Chunked(nn.Module):
    """One recurrent layer over the sequence in ``chunks`` parts, the state carried on; after each
    part an exit reads the last step's output (early exit in time)."""

    chunks = 3

    def __init__(self, rnn: nn.RNNBase, out_features: int):
        super().__init__()
        self.rnn = rnn
        self.heads = nn.ModuleList(nn.Linear(out_features, 4) for _ in range(self.chunks))

    def forward(self, x, exits=None):
        state, outs = None, []
        for part, exit_head in zip(x.chunk(self.chunks, dim=1 if self.rnn.batch_first else 0), self.heads):
            y, state = self.rnn(part, state)
            outs.append(exit_head(y[:, -1] if self.rnn.batch_first else y[-1]))
            if exits == len(outs):
                break
        return outs


def rnn_chunks() -> nn.Module:
    """A 2-layer ReLU RNN, in three chunks."""
    return Chunked(nn.RNN(4, 8, num_layers=2, nonlinearity="relu"), 8)


def gru_chunks() -> nn.Module:
    """The issue's GRU, batch first, in three chunks."""
    return Chunked(nn.GRU(4, 8, batch_first=True), 8)


def lstm_projection() -> nn.Module:
    """An LSTM with ``proj_size`` (its hidden state is projected to 3), two layers, in three chunks."""
    return Chunked(nn.LSTM(4, 8, num_layers=2, proj_size=3), 3)


class StackedBiLSTM(nn.Module):
    """Two bidirectional 2-layer LSTMs stacked, batch first, an exit after each (early exit in
    depth)."""

    def __init__(self):
        super().__init__()
        self.lower = nn.LSTM(4, 8, num_layers=2, bidirectional=True, batch_first=True)
        self.head1 = nn.Linear(16, 4)
        self.upper = nn.LSTM(16, 6, bidirectional=True, batch_first=True)
        self.head2 = nn.Linear(12, 4)

    def forward(self, x, exits=None):
        h = self.lower(x)[0]
        outs = [self.head1(h.mean(1))]
        if exits == 1:
            return outs
        return outs + [self.head2(self.upper(h)[0].mean(1))]


class PackedLSTM(nn.Module):
    """Sequences of lengths 6 and 3, packed: the recurrent layers run 9 steps, not 12."""

    lengths = (6, 3)

    def __init__(self):
        super().__init__()
        self.lower = nn.LSTM(4, 8)
        self.head1 = nn.Linear(8, 4)
        self.upper = nn.GRU(8, 8, bidirectional=True)
        self.head2 = nn.Linear(16, 4)

    def forward(self, x, exits=None):
        packed = pack_padded_sequence(x, torch.tensor(self.lengths))
        low, (h, _) = self.lower(packed)
        outs = [self.head1(h[-1])]
        if exits == 1:
            return outs
        _, h = self.upper(low)
        return outs + [self.head2(torch.cat([h[0], h[1]], 1))]


class UnrolledCells(nn.Module):
    """An RNNCell, an LSTMCell and a GRUCell stacked, unrolled by hand over the six steps; an
    exit reads the top cell's state after steps 2, 4 and 6."""

    def __init__(self):
        super().__init__()
        self.rnn = nn.RNNCell(4, 8)
        self.lstm = nn.LSTMCell(8, 8)
        self.gru = nn.GRUCell(8, 6, bias=False)
        self.head = nn.Linear(6, 4)

    def forward(self, x, exits=None):
        h1 = h2 = c2 = h3 = None
        outs = []
        for t, step in enumerate(x, start=1):
            h1 = self.rnn(step, h1)
            h2, c2 = self.lstm(h1, None if h2 is None else (h2, c2))
            h3 = self.gru(h2, h3)
            if t % 2 == 0:
                outs.append(self.head(h3))
                if exits == len(outs):
                    break
        return outs


MODELS = {
    "rnn-chunks": rnn_chunks, "gru-chunks": gru_chunks, "lstm-projection": lstm_projection,
    "bilstm-stacked": StackedBiLSTM, "lstm-packed": PackedLSTM, "cells-unrolled": UnrolledCells,
}
