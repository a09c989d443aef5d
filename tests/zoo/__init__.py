"""The test zoo: early-exit networks of every family users bring, tiny, each with what its oracles
need (issue 23).

:data:`ENTRIES` maps a name to an :class:`Entry`: how to build the model, its example inputs on a
device, the module msdprof is given, and the hand-written forwards the oracles count --
:func:`eager_forward` (the model as written, stopped once output k is complete) and
:func:`lazy_forward` (only what outputs 1..k read).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import torch
from torch import nn

from . import attention, convnets, families, sequences


def _images(*shape: int) -> Callable[[str], tuple[torch.Tensor, ...]]:
    return lambda device: (torch.zeros(*shape, device=device),)


def _tokens(length: int = 8) -> Callable[[str], tuple[torch.Tensor, ...]]:
    return lambda device: (torch.zeros(1, length, dtype=torch.long, device=device),)


@dataclass(frozen=True)
class Entry:
    """One zoo model.  ``family``: what it stands for; ``build()``: the model, random weights;
    ``inputs(device)``: its example inputs; ``subject(model)``: the module msdprof counts (the model
    itself, or what it holds: an fx GraphModule); ``meta``: whether it runs on ``meta`` (not a
    model whose forward branches on values); ``lstm_on_cpu``: whether it runs ``nn.LSTM``
    without ``proj_size`` on padded CPU batches, where torch's FlopCounterMode counts 0
    (``mkldnn_rnn_layer``) --
    its CPU figures are checked against the oracle run on ``meta``, where the LSTM is matmuls."""

    family: str
    build: Callable[[], nn.Module]
    inputs: Callable[[str], tuple[torch.Tensor, ...]]
    subject: Callable[[nn.Module], nn.Module] = lambda model: model
    meta: bool = True
    lstm_on_cpu: bool = False


def eager_forward(model: nn.Module, inputs: tuple, k: int) -> Any:
    """The model's forward as written, stopped once output k is complete."""
    return model(*inputs, exits=k)


def lazy_forward(model: nn.Module, inputs: tuple, k: int) -> Any:
    """Only what outputs 1..k read: the model's ``lazy_forward`` where its forward computes work
    for later exits first, else the same as :func:`eager_forward`."""
    if hasattr(model, "lazy_forward"):
        return model.lazy_forward(*inputs, k)
    return eager_forward(model, inputs, k)


IMAGE = _images(1, 3, 16, 16)
SEQUENCE = _images(6, 2, 4)
BATCH_FIRST = _images(2, 6, 4)

ENTRIES: dict[str, Entry] = {
    "sdn-resnet56": Entry("SDN ResNet-56 (internal classifiers)", convnets.SDNResNet56, IMAGE),
    "sdn-vgg": Entry("SDN VGG-16", convnets.SDNVGG, IMAGE),
    "sdn-wrn": Entry("SDN wide ResNet", convnets.SDNWideResNet, IMAGE),
    "sdn-mobilenet": Entry("SDN MobileNet (depthwise separable)", convnets.SDNMobileNet, IMAGE),
    "imta-msdnet": Entry("IMTA's MSDNet: every block before any head", convnets.IMTAStyle, IMAGE),
    "ztw-cascade": Entry("Zero Time Waste cascade and ensemble", convnets.ZTWCascade, IMAGE),
    "ranet": Entry("RANet: low resolution first, fused upwards", convnets.RANetLike, IMAGE),
    "in-forward-exit": Entry("early exit decided in forward (confidence)", convnets.InForwardExit, IMAGE,
                             meta=False),
    "recurrent-depth": Entry("recurrence in depth (one block, three exits)", convnets.RecurrentDepth, IMAGE),
    "grouped-dilated": Entry("grouped and dilated convs", convnets.GroupedDilated, IMAGE),
    "transposed-decoder": Entry("transposed convs (decoder exits)", convnets.TransposedDecoder, IMAGE),
    "conv1d": Entry("1-d convs (audio)", convnets.Conv1dNet, _images(1, 2, 32)),
    "conv3d": Entry("3-d convs (video)", convnets.Conv3dNet, _images(1, 3, 4, 8, 8)),
    "norm-act": Entry("timm-style BatchNormAct2d", convnets.NormActNet, IMAGE),
    "no-children": Entry("no child modules, all functional", convnets.NoChildren, IMAGE),
    "fx-traced": Entry("fx-traced GraphModule", convnets.FxTraced, IMAGE, subject=lambda m: m.traced),
    "rnn-chunks": Entry("2-layer ReLU RNN, exits in time", sequences.rnn_chunks, SEQUENCE),
    "gru-chunks": Entry("GRU, batch first, exits in time", sequences.gru_chunks, BATCH_FIRST),
    "lstm-projection": Entry("LSTM with proj_size, 2 layers", sequences.lstm_projection, SEQUENCE),
    "bilstm-stacked": Entry("bidirectional LSTMs, exits in depth", sequences.StackedBiLSTM, BATCH_FIRST,
                            lstm_on_cpu=True),
    "lstm-packed": Entry("packed sequences (LSTM, bidirectional GRU)", sequences.PackedLSTM, SEQUENCE),
    "cells-unrolled": Entry("RNNCell, LSTMCell, GRUCell unrolled", sequences.UnrolledCells, SEQUENCE),
    "bert": Entry("BERT (transformers), all layers before the heads", attention.BertExits, _tokens()),
    "vit": Entry("ViT (transformers), layer by layer", attention.ViTExits, IMAGE),
    "llama-shared-head": Entry("Llama decoder (transformers), shared LM head every 4th layer",
                               attention.LlamaSharedHead, _tokens()),
    "mha-transformer": Entry("nn.MultiheadAttention transformer", attention.MHATransformer, _tokens()),
    "moe-top2": Entry("top-2 mixture of experts with a capacity (routing reads values)", families.Top2MoE,
                      _tokens(), meta=False),
    "tied-head-lm": Entry("LM head tied to the embedding, read by every exit", families.TiedHeadLM, _tokens()),
    "ssm-scan": Entry("Mamba-style selective scan written with einsum", families.SSMExits, _images(1, 8, 8)),
    "unet-deep": Entry("U-Net with deep supervision: 1x1 conv heads, then F.interpolate",
                       families.DeepSupervisedUNet, IMAGE),
}

__all__ = ["ENTRIES", "Entry", "eager_forward", "lazy_forward"]
