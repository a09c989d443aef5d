"""Attention early-exit networks of the zoo, tiny, random weights, nothing downloaded: BERT and ViT
built from ``transformers`` configs, a Llama-shaped decoder built from transformers' Llama classes
with one LM head shared by every 4th layer, and a transformer of ``nn.MultiheadAttention`` blocks.

``forward(x, exits=None)`` returns the exits' outputs; ``exits=k`` stops once output k is
complete.  :class:`BertExits` runs the whole encoder before its heads (as Hugging Face models with
``output_hidden_states`` do): its ``lazy_forward(x, k)`` runs only the layers exit k reads.
"""

from __future__ import annotations

import torch
from torch import nn
from transformers import BertConfig, BertModel, LlamaConfig, ViTConfig, ViTModel
from transformers.models.llama.modeling_llama import LlamaDecoderLayer, LlamaRMSNorm, LlamaRotaryEmbedding


def _layers(model: nn.Module) -> nn.ModuleList:
    """A transformers encoder's layers (``encoder.layer``, or ``layers`` in newer versions)."""
    encoder = getattr(model, "encoder", None)
    return encoder.layer if encoder is not None else model.layers


def _hidden(result):
    """A transformers layer's hidden states (a tensor, or the first of a tuple in older versions)."""
    return result[0] if isinstance(result, tuple) else result


class BertExits(nn.Module):
    """A 4-layer BERT (hidden 16, 2 heads) whose exits read the [CLS] state of layers 1 and 4 from
    ``output_hidden_states``: every layer runs before the first head."""

    exit_layers = (1, 4)

    def __init__(self):
        super().__init__()
        config = BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=4, num_attention_heads=2,
                            intermediate_size=32, max_position_embeddings=16, attn_implementation="sdpa")
        self.bert = BertModel(config, add_pooling_layer=False)
        self.heads = nn.ModuleList(nn.Linear(16, 3) for _ in range(2))

    def forward(self, ids, exits=None):
        states = self.bert(input_ids=ids, output_hidden_states=True).hidden_states
        outs = []
        for layer, exit_head in zip(self.exit_layers, self.heads):
            outs.append(exit_head(states[layer][:, 0]))
            if exits == len(outs):
                break
        return outs

    def lazy_forward(self, ids, k):
        h, outs = self.bert.embeddings(input_ids=ids), []
        for i, layer in enumerate(_layers(self.bert)[: self.exit_layers[k - 1]], start=1):
            h = _hidden(layer(h))
            if i in self.exit_layers:
                outs.append(self.heads[len(outs)](h[:, 0]))
        return outs


class ViTExits(nn.Module):
    """A 4-layer ViT (16 px images, 4 px patches, hidden 16) run layer by layer, an exit (layer
    norm, [CLS] Linear) after layers 2 and 4."""

    def __init__(self):
        super().__init__()
        config = ViTConfig(image_size=16, patch_size=4, num_channels=3, hidden_size=16, num_hidden_layers=4,
                           num_attention_heads=2, intermediate_size=32, attn_implementation="sdpa")
        self.vit = ViTModel(config, add_pooling_layer=False)
        self.norms = nn.ModuleList(nn.LayerNorm(16) for _ in range(2))
        self.heads = nn.ModuleList(nn.Linear(16, 3) for _ in range(2))

    def forward(self, x, exits=None):
        h, outs = self.vit.embeddings(x), []
        for i, layer in enumerate(_layers(self.vit), start=1):
            h = _hidden(layer(h))
            if i % 2 == 0:
                outs.append(self.heads[i // 2 - 1](self.norms[i // 2 - 1](h)[:, 0]))
                if exits == len(outs):
                    break
        return outs


class LlamaSharedHead(nn.Module):
    """A Llama-shaped decoder (transformers' Llama layers, RMSNorm and rotary embeddings) whose one
    LM head, after the shared final norm, reads every ``every``-th layer: the early-exit LLM shape
    (LayerSkip, CALM).  Tiny by default; the benchmark builds it 7B-shaped on ``meta``."""

    def __init__(self, hidden: int = 16, layers: int = 8, heads: int = 2, intermediate: int = 32,
                 vocab: int = 40, every: int = 4):
        super().__init__()
        config = LlamaConfig(hidden_size=hidden, intermediate_size=intermediate, num_hidden_layers=layers,
                             num_attention_heads=heads, num_key_value_heads=heads, vocab_size=vocab,
                             max_position_embeddings=64, attn_implementation="sdpa")
        self.embed = nn.Embedding(vocab, hidden)
        self.layers = nn.ModuleList(LlamaDecoderLayer(config, i) for i in range(layers))
        self.norm = LlamaRMSNorm(hidden, eps=config.rms_norm_eps)
        self.rotary = LlamaRotaryEmbedding(config)
        self.lm_head = nn.Linear(hidden, vocab, bias=False)
        self.every = every

    def forward(self, ids, exits=None):
        h = self.embed(ids)
        positions = torch.arange(ids.shape[1], device=ids.device)[None]
        rotary = self.rotary(h, positions)
        outs = []
        for i, layer in enumerate(self.layers, start=1):
            h = _hidden(layer(h, position_embeddings=rotary, position_ids=positions))
            if i % self.every == 0:
                outs.append(self.lm_head(self.norm(h)))
                if exits == len(outs):
                    break
        return outs


class AttentionBlock(nn.Module):
    """Pre-norm transformer block of ``nn.MultiheadAttention`` and an MLP."""

    def __init__(self, width: int = 16):
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(width), nn.LayerNorm(width)
        self.attention = nn.MultiheadAttention(width, 2, batch_first=True)
        self.mlp = nn.Sequential(nn.Linear(width, 2 * width), nn.GELU(), nn.Linear(2 * width, width))

    def forward(self, x):
        h = self.norm1(x)
        x = x + self.attention(h, h, h, need_weights=False)[0]
        return x + self.mlp(self.norm2(x))


class MHATransformer(nn.Module):
    """Token embeddings, three :class:`AttentionBlock` and an exit (mean token, Linear) after each."""

    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(30, 16)
        self.blocks = nn.ModuleList(AttentionBlock() for _ in range(3))
        self.heads = nn.ModuleList(nn.Linear(16, 3) for _ in range(3))

    def forward(self, ids, exits=None):
        h, outs = self.embed(ids), []
        for block, exit_head in zip(self.blocks, self.heads):
            h = block(h)
            outs.append(exit_head(h.mean(1)))
            if exits == len(outs):
                break
        return outs


MODELS = {"bert": BertExits, "vit": ViTExits, "llama-shared-head": LlamaSharedHead, "mha-transformer": MHATransformer}
