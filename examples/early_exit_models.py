"""Small early-exit networks of the kinds researchers bring (our own code, used by the tests and the
README): ``msdprof count --model examples/early_exit_models.py:SDNResNet --input-size 32``.

Each ``forward(x, exits=None)`` returns one output per exit, exit 1 first, and with ``exits=k``
returns right after output k is complete, having run exactly what the full forward runs until then
-- so an independent counter run on ``model(x, exits=k)`` holds the eager cost of exit k.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def conv_bn_relu(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU())


def classifier(channels: int, classes: int = 10) -> nn.Sequential:
    return nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(channels, classes))


class TwoExitTiny(nn.Module):
    """Two convs and two Linear heads on a 3x4x4 image: small enough to count by hand."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 4, 3, padding=1, bias=False)
        self.relu = nn.ReLU()
        self.head1 = nn.Linear(4 * 4 * 4, 2)
        self.conv2 = nn.Conv2d(4, 4, 3, padding=1, bias=False)
        self.head2 = nn.Linear(4 * 4 * 4, 2)

    def forward(self, x, exits=None):
        h = self.relu(self.conv1(x))
        out1 = self.head1(h.flatten(1))
        if exits == 1:
            return [out1]
        return [out1, self.head2(self.conv2(h).flatten(1))]


class BasicBlock(nn.Module):
    """ResNet's basic block; the residual sum and the last ReLU are functional (``+``, ``F.relu``)."""

    def __init__(self, cin: int, cout: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU()
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = nn.Sequential()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        out = self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x)))))
        return F.relu(out + self.shortcut(x))


class SDNResNet(nn.Module):
    """An SDN-style ResNet (Kaya et al., ICML 2019): internal classifiers after stages 1 and 2, the
    final classifier after stage 3.  ``blocks`` basic blocks per stage: 2 (ResNet-14), 9 for
    ResNet-56 (``SDNResNet(blocks=9)``: 6 x 9 + 2 layers)."""

    def __init__(self, width: int = 8, classes: int = 10, blocks: int = 2):
        super().__init__()
        self.stem = conv_bn_relu(3, width)

        def stage(cin: int, cout: int, stride: int) -> nn.Sequential:
            return nn.Sequential(BasicBlock(cin, cout, stride), *(BasicBlock(cout, cout) for _ in range(blocks - 1)))

        self.stages = nn.ModuleList([stage(width, width, 1), stage(width, 2 * width, 2),
                                     stage(2 * width, 4 * width, 2)])
        self.internal = nn.ModuleList([classifier(width, classes), classifier(2 * width, classes)])
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(4 * width, classes)

    def forward(self, x, exits=None):
        outputs = []
        h = self.stem(x)
        for i, stage in enumerate(self.stages):
            h = stage(h)
            if i < len(self.internal):
                outputs.append(self.internal[i](h))
            else:
                outputs.append(self.fc(self.pool(h).flatten(1)))
            if exits == len(outputs):
                break
        return outputs


def SDNResNet56(width: int = 8, classes: int = 10) -> SDNResNet:
    """The SDN ResNet-56 (9 basic blocks a stage), for ``--model early_exit_models.py:SDNResNet56``."""
    return SDNResNet(width, classes, blocks=9)


class CoarseToFine(nn.Module):
    """RANet-like (Yang et al., CVPR 2020): the coarse scale runs and exits first; the fine scale
    then fuses the coarse features, up-sampled with ``F.interpolate`` and joined by ``torch.cat``."""

    def __init__(self, classes: int = 10):
        super().__init__()
        self.coarse = nn.Sequential(conv_bn_relu(3, 8, 2), conv_bn_relu(8, 8))
        self.head1 = classifier(8, classes)
        self.fine = conv_bn_relu(3, 4)
        self.fuse = nn.Sequential(nn.Conv2d(12, 8, 1, bias=False), nn.BatchNorm2d(8), nn.ReLU())
        self.head2 = classifier(8, classes)

    def forward(self, x, exits=None):
        c = self.coarse(x)
        out1 = self.head1(c)
        if exits == 1:
            return [out1]
        f = self.fine(x)
        up = F.interpolate(c, size=f.shape[-2:], mode="nearest")
        return [out1, self.head2(self.fuse(torch.cat([f, up], dim=1)))]


class BranchyDict(nn.Module):
    """A shared trunk run to the end first, then a branch per exit, returned as a dict: the early
    branch reads the trunk's first half only, so lazily it needs much less than it waits for."""

    def __init__(self, classes: int = 10):
        super().__init__()
        self.trunk = nn.ModuleList([conv_bn_relu(3, 8), conv_bn_relu(8, 16, 2)])
        self.branches = nn.ModuleDict({"early": classifier(8, classes), "final": classifier(16, classes)})

    def forward(self, x, exits=None):
        first = self.trunk[0](x)
        second = self.trunk[1](first)
        out = {"early": self.branches["early"](first)}
        if exits == 1:
            return out
        out["final"] = self.branches["final"](second)
        return out


class SharedBlock(nn.Module):
    """One block and one head applied twice (weight sharing, as in recurrent early-exit nets)."""

    def __init__(self, classes: int = 10):
        super().__init__()
        self.stem = conv_bn_relu(3, 8)
        self.block = conv_bn_relu(8, 8)
        self.head = classifier(8, classes)

    def forward(self, x, exits=None):
        h = self.block(self.stem(x))
        out1 = self.head(h)
        if exits == 1:
            return [out1]
        return [out1, self.head(self.block(h))]


class Gated(nn.Module):
    """A module type with no counting rule (Softplus) and a functional op with multiply-adds and no
    rule of its own (``torch.einsum``: counted by its kernels in macs and flops, listed in msdnet),
    each feeding exit 2 only."""

    def __init__(self, classes: int = 10):
        super().__init__()
        self.stem = conv_bn_relu(3, 8)
        self.head1 = classifier(8, classes)
        self.gate = nn.Softplus()
        self.mix = nn.Parameter(torch.ones(8, 8))
        self.head2 = classifier(8, classes)

    def forward(self, x, exits=None):
        h = self.stem(x)
        out1 = self.head1(h)
        if exits == 1:
            return [out1]
        mixed = torch.einsum("nchw,cd->ndhw", self.gate(h), self.mix)
        return [out1, self.head2(mixed)]


class WithAuxiliary(nn.Module):
    """Returns ``(exits, features)``: counted with ``outputs=lambda out: out[0]``."""

    def __init__(self):
        super().__init__()
        self.inner = SDNResNet()

    def forward(self, x):
        return self.inner(x), x.mean()


class SelfAttention(nn.Module):
    """q, k, v and output projections around ``F.scaled_dot_product_attention``, residual."""

    def __init__(self, width: int = 16, heads: int = 2):
        super().__init__()
        self.heads = heads
        self.q, self.k, self.v, self.o = (nn.Linear(width, width) for _ in range(4))

    def forward(self, x):
        b, n, d = x.shape
        split = lambda t: t.view(b, n, self.heads, d // self.heads).transpose(1, 2)  # noqa: E731
        y = F.scaled_dot_product_attention(split(self.q(x)), split(self.k(x)), split(self.v(x)))
        return x + self.o(y.transpose(1, 2).reshape(b, n, d))


class AttentionExits(nn.Module):
    """A tiny transformer with an exit after each attention block: the pixels of a ``width``-channel
    image are its tokens (``--input-size 16x4x4``: 16 tokens of width 16); each exit averages the
    tokens and classifies them."""

    def __init__(self, width: int = 16, blocks: int = 3, classes: int = 10):
        super().__init__()
        self.blocks = nn.ModuleList(SelfAttention(width) for _ in range(blocks))
        self.heads = nn.ModuleList(nn.Linear(width, classes) for _ in range(blocks))

    def forward(self, x, exits=None):
        x = x.flatten(2).transpose(1, 2)  # (batch, tokens, width)
        out = []
        for block, head in list(zip(self.blocks, self.heads))[:exits]:
            x = block(x)
            out.append(head(x.mean(1)))
        return out


MODELS = {
    "sdn-resnet": SDNResNet,
    "coarse-to-fine": CoarseToFine,
    "branchy-dict": BranchyDict,
    "shared-block": SharedBlock,
}
