"""Families of the zoo brought by issues 30 and 33: a top-2 mixture of experts with a capacity
(which experts run, on how many tokens, depends on the token ids), an LM whose exits all read one
head tied to the embedding, a Mamba-style selective scan written with ``einsum``, and a U-Net with
deep supervision (each head a 1x1 conv and an ``F.interpolate``).

``forward(ids, exits=None)`` returns the exits' outputs; ``exits=k`` stops once output k is
complete, as in the rest of the zoo.
"""

from __future__ import annotations

import math

import torch
from torch import nn


class MoEBlock(nn.Module):
    """Top-2 routing over ``experts`` MLPs, each taking at most ``capacity`` tokens (first come; the
    rest skip it, as Switch and GShard drop them): an expert no token reaches does not run."""

    def __init__(self, dim: int, experts: int, hidden: int, capacity_factor: float):
        super().__init__()
        self.router = nn.Linear(dim, experts, bias=False)
        self.experts = nn.ModuleList(
            nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim)) for _ in range(experts))
        self.capacity_factor = capacity_factor

    def forward(self, h):
        tokens = h.reshape(-1, h.shape[-1])
        weights, chosen = self.router(tokens).softmax(-1).topk(2, dim=-1)
        capacity = math.ceil(self.capacity_factor * tokens.shape[0] * 2 / len(self.experts))
        out = torch.zeros_like(tokens)
        for e, expert in enumerate(self.experts):
            rows, slot = (chosen == e).nonzero(as_tuple=True)
            rows, slot = rows[:capacity], slot[:capacity]
            if rows.numel() == 0:
                continue
            out.index_add_(0, rows, expert(tokens[rows]) * weights[rows, slot, None])
        return out.view_as(h)


class Top2MoE(nn.Module):
    """Two top-2 MoE blocks of 4 experts (capacity factor 1), an LM head after each block."""

    def __init__(self, vocab: int = 32, dim: int = 16, experts: int = 4, hidden: int = 32, blocks: int = 2):
        super().__init__()
        self.embed = nn.Embedding(vocab, dim)
        self.blocks = nn.ModuleList(MoEBlock(dim, experts, hidden, 1.0) for _ in range(blocks))
        self.heads = nn.ModuleList(nn.Linear(dim, vocab) for _ in range(blocks))

    def forward(self, ids, exits=None):
        h, outs = self.embed(ids), []
        for block, head in zip(self.blocks, self.heads):
            h = h + block(h)
            outs.append(head(h))
            if exits == len(outs):
                break
        return outs


class TiedHeadLM(nn.Module):
    """Three MLP blocks whose exits all read one LM head (after a shared norm) tied to the
    embedding: its weight is the embedding's, as GPT-2 ties them."""

    def __init__(self, vocab: int = 40, dim: int = 16, blocks: int = 3):
        super().__init__()
        self.embed = nn.Embedding(vocab, dim)
        self.blocks = nn.ModuleList(
            nn.Sequential(nn.Linear(dim, 32), nn.ReLU(), nn.Linear(32, dim)) for _ in range(blocks))
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, vocab, bias=False)
        self.head.weight = self.embed.weight

    def forward(self, ids, exits=None):
        h, outs = self.embed(ids), []
        for block in self.blocks:
            h = h + block(h)
            outs.append(self.head(self.norm(h)))
            if exits == len(outs):
                break
        return outs


class SelectiveScan(nn.Module):
    """A Mamba-style block: an input projection, a selective state-space scan over time written
    with ``einsum`` (ATen runs it as ``bmm``), a SiLU gate and an output projection."""

    def __init__(self, dim: int = 8, state: int = 4):
        super().__init__()
        self.in_proj = nn.Linear(dim, 2 * dim)
        self.delta, self.b, self.c = nn.Linear(dim, dim), nn.Linear(dim, state), nn.Linear(dim, state)
        self.log_a = nn.Parameter(torch.zeros(dim, state))
        self.out_proj = nn.Linear(dim, dim)

    def forward(self, x):
        u, gate = self.in_proj(x).chunk(2, dim=-1)
        delta, b, c = nn.functional.softplus(self.delta(u)), self.b(u), self.c(u)
        h = x.new_zeros(x.shape[0], x.shape[2], self.log_a.shape[1])  # batch x dim x state
        ys = []
        for t in range(x.shape[1]):
            decay = torch.exp(-delta[:, t, :, None] * self.log_a.exp())
            h = h * decay + torch.einsum("bd,bn->bdn", delta[:, t] * u[:, t], b[:, t])
            ys.append(torch.einsum("bdn,bn->bd", h, c[:, t]))
        return self.out_proj(torch.stack(ys, dim=1) * nn.functional.silu(gate))


class SSMExits(nn.Module):
    """Three selective-scan blocks over an 8-step sequence, a classifier on the mean state after
    each."""

    def __init__(self, dim: int = 8, blocks: int = 3):
        super().__init__()
        self.blocks = nn.ModuleList(SelectiveScan(dim) for _ in range(blocks))
        self.heads = nn.ModuleList(nn.Linear(dim, 4) for _ in range(blocks))

    def forward(self, x, exits=None):
        outs = []
        for block, head in zip(self.blocks, self.heads):
            x = x + block(x)
            outs.append(head(x.mean(dim=1)))
            if exits == len(outs):
                break
        return outs


def _conv(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU())


class DeepSupervisedUNet(nn.Module):
    """A three-level U-Net with deep supervision: at each decoder level (coarsest first) a 1x1 conv
    head whose map ``F.interpolate`` brings to the input's size; skip concatenations join the
    encoder's maps to the decoder's."""

    def __init__(self, classes: int = 2):
        super().__init__()
        self.enc1, self.enc2, self.enc3 = _conv(3, 8), _conv(8, 16, 2), _conv(16, 32, 2)
        self.up2, self.dec2 = nn.ConvTranspose2d(32, 16, 2, 2), _conv(32, 16)
        self.up1, self.dec1 = nn.ConvTranspose2d(16, 8, 2, 2), _conv(16, 8)
        self.heads = nn.ModuleList(nn.Conv2d(c, classes, 1) for c in (32, 16, 8))

    def forward(self, x, exits=None):
        size = x.shape[-2:]
        e1 = self.enc1(x)
        e2 = self.enc2(e1)
        e3 = self.enc3(e2)
        outs = [nn.functional.interpolate(self.heads[0](e3), size=size, mode="bilinear")]
        if exits == 1:
            return outs
        d2 = self.dec2(torch.cat([self.up2(e3), e2], dim=1))
        outs.append(nn.functional.interpolate(self.heads[1](d2), size=size, mode="bilinear"))
        if exits == 2:
            return outs
        d1 = self.dec1(torch.cat([self.up1(d2), e1], dim=1))
        return outs + [self.heads[2](d1)]
