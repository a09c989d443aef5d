"""Hand-made transformer-shaped early-exit networks (plain ``nn.Module``s, no transformers library),
for the graph pictures, the interactive page and its browser tests:

    msdprof graph --model examples/transformer_models.py:ViT --input-size 32 -o vit.html
    msdprof graph --model examples/transformer_models.py:Decoder --inputs tokens.pt -o decoder.html

``ViT``: patch embedding, ``depth`` pre-norm encoder blocks, an exit (LayerNorm + Linear on the
class token) after every block.  ``Decoder``: a Llama-shaped decoder (token embedding, RMSNorm,
attention without rotary embeddings, a SwiGLU MLP) whose one LM head (RMSNorm + Linear, shared)
reads the hidden state every ``every`` layers.  Widths are tiny: the pictures are the point.
Each ``forward`` returns one output per exit, exit 1 first.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class Attention(nn.Module):
    """Multi-head self-attention (causal for the decoder), written out with matmuls."""

    def __init__(self, width: int, heads: int, causal: bool = False):
        super().__init__()
        self.heads, self.causal = heads, causal
        self.qkv = nn.Linear(width, 3 * width, bias=not causal)
        self.out = nn.Linear(width, width, bias=not causal)

    def forward(self, x):
        b, n, c = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        scores = (q @ k.transpose(-2, -1)) / (c // self.heads) ** 0.5
        if self.causal:
            scores = scores.masked_fill(torch.ones(n, n, dtype=torch.bool, device=x.device).triu(1), float("-inf"))
        return self.out((scores.softmax(-1) @ v).transpose(1, 2).reshape(b, n, c))


class EncoderBlock(nn.Module):
    def __init__(self, width: int, heads: int):
        super().__init__()
        self.norm1, self.attn = nn.LayerNorm(width), Attention(width, heads)
        self.norm2 = nn.LayerNorm(width)
        self.mlp = nn.Sequential(nn.Linear(width, 4 * width), nn.GELU(), nn.Linear(4 * width, width))

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class ViTExit(nn.Module):
    def __init__(self, width: int, classes: int):
        super().__init__()
        self.norm, self.fc = nn.LayerNorm(width), nn.Linear(width, classes)

    def forward(self, x):
        return self.fc(self.norm(x[:, 0]))


class ViT(nn.Module):
    """A ViT with an exit after each of its ``depth`` blocks (12 for the docs)."""

    def __init__(self, depth: int = 12, width: int = 32, heads: int = 4, patch: int = 8, image: int = 32,
                 classes: int = 10):
        super().__init__()
        self.patch = nn.Conv2d(3, width, patch, patch)
        self.cls = nn.Parameter(torch.zeros(1, 1, width))
        self.pos = nn.Parameter(torch.zeros(1, 1 + (image // patch) ** 2, width))
        self.blocks = nn.ModuleList(EncoderBlock(width, heads) for _ in range(depth))
        self.exits = nn.ModuleList(ViTExit(width, classes) for _ in range(depth))

    def forward(self, x):
        x = self.patch(x).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls.expand(x.shape[0], -1, -1), x], dim=1) + self.pos
        outputs = []
        for block, exit in zip(self.blocks, self.exits):
            x = block(x)
            outputs.append(exit(x))
        return outputs


class RMSNorm(nn.Module):
    def __init__(self, width: int, eps: float = 1e-6):
        super().__init__()
        self.eps, self.weight = eps, nn.Parameter(torch.ones(width))

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


class SwiGLU(nn.Module):
    def __init__(self, width: int, hidden: int):
        super().__init__()
        self.gate, self.up = nn.Linear(width, hidden, bias=False), nn.Linear(width, hidden, bias=False)
        self.down = nn.Linear(hidden, width, bias=False)

    def forward(self, x):
        return self.down(F.silu(self.gate(x)) * self.up(x))


class DecoderLayer(nn.Module):
    def __init__(self, width: int, heads: int):
        super().__init__()
        self.attn_norm, self.attn = RMSNorm(width), Attention(width, heads, causal=True)
        self.mlp_norm, self.mlp = RMSNorm(width), SwiGLU(width, 2 * width)

    def forward(self, x):
        x = x + self.attn(self.attn_norm(x))
        return x + self.mlp(self.mlp_norm(x))


class LMHead(nn.Module):
    def __init__(self, width: int, vocab: int):
        super().__init__()
        self.norm, self.proj = RMSNorm(width), nn.Linear(width, vocab, bias=False)

    def forward(self, x):
        return self.proj(self.norm(x))


class Decoder(nn.Module):
    """A Llama-shaped decoder of ``layers`` layers (32), its one LM head read every ``every`` (4)
    layers: 8 exits.  Input: token ids, shape (batch, sequence)."""

    def __init__(self, layers: int = 32, every: int = 4, width: int = 16, heads: int = 2, vocab: int = 64):
        super().__init__()
        self.every = every
        self.embed = nn.Embedding(vocab, width)
        self.layers = nn.ModuleList(DecoderLayer(width, heads) for _ in range(layers))
        self.head = LMHead(width, vocab)

    def forward(self, tokens):
        x = self.embed(tokens)
        outputs = []
        for i, layer in enumerate(self.layers, start=1):
            x = layer(x)
            if i % self.every == 0:
                outputs.append(self.head(x))
        return outputs
