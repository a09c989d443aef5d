"""Convolutional early-exit networks of the zoo, tiny: the families users bring (SDN ResNet/VGG/
WRN/MobileNet, IMTA's eager MSDNet, ZTW cascades, RANet, in-forward early exit, recurrence in
depth, grouped/depthwise/dilated/transposed convs, 1-d and 3-d convs, timm-style norm-act, an
fx-traced GraphModule, a model with no child modules).

Each ``forward(x, exits=None)`` returns the list of its exits' outputs; ``exits=k`` stops once
output k is complete, running what the model runs by then: a hand-written forward whose count is
the eager cost of exit k.  Models that compute work for later exits first also have
``lazy_forward(x, k)``, computing only what outputs 1..k read.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import fx, nn


def head(channels: int, classes: int = 4) -> nn.Sequential:
    """An internal classifier: global average pool, flatten, Linear."""
    return nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(channels, classes))


def cbr(cin: int, cout: int, stride: int = 1, groups: int = 1, dilation: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, stride, padding=dilation, dilation=dilation, groups=groups, bias=False),
        nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
    )


class Chain(nn.Module):
    """Stages, each followed by its exit: the shape of most early-exit networks."""

    def forward(self, x, exits=None):
        outs = []
        for stage, exit_head in zip(self.stages, self.heads):
            x = stage(x)
            outs.append(exit_head(x))
            if exits == len(outs):
                break
        return outs


class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = nn.Sequential() if stride == 1 and cin == cout else nn.Sequential(
            nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


class SDNResNet56(Chain):
    """SDN's ResNet-56 (Kaya et al. 2019), one block per stage: an internal classifier after each."""

    def __init__(self):
        super().__init__()
        self.stem = cbr(3, 4)
        self.stages = nn.ModuleList([BasicBlock(4, 4), BasicBlock(4, 8, 2), BasicBlock(8, 16, 2)])
        self.heads = nn.ModuleList([head(4), head(8), head(16)])

    def forward(self, x, exits=None):
        return super().forward(self.stem(x), exits)


class SDNVGG(Chain):
    """SDN's VGG-16 shape: conv stages with max-pools, an MLP final classifier."""

    def __init__(self):
        super().__init__()
        self.stages = nn.ModuleList([
            nn.Sequential(cbr(3, 4), cbr(4, 4), nn.MaxPool2d(2)),
            nn.Sequential(cbr(4, 8), nn.MaxPool2d(2)),
            nn.Sequential(cbr(8, 8), nn.MaxPool2d(2)),
        ])
        self.heads = nn.ModuleList([head(4), head(8), nn.Sequential(
            nn.Flatten(), nn.Linear(8 * 2 * 2, 16), nn.ReLU(), nn.Dropout(), nn.Linear(16, 4))])


class WideBlock(nn.Module):
    """Pre-activation wide basic block with dropout (WRN)."""

    def __init__(self, cin: int, cout: int, stride: int = 1):
        super().__init__()
        self.bn1, self.conv1 = nn.BatchNorm2d(cin), nn.Conv2d(cin, cout, 3, 1, 1)
        self.dropout = nn.Dropout(0.3)
        self.bn2, self.conv2 = nn.BatchNorm2d(cout), nn.Conv2d(cout, cout, 3, stride, 1)
        self.shortcut = nn.Conv2d(cin, cout, 1, stride) if stride != 1 or cin != cout else nn.Identity()

    def forward(self, x):
        out = self.dropout(self.conv1(F.relu(self.bn1(x))))
        return self.conv2(F.relu(self.bn2(out))) + self.shortcut(x)


class SDNWideResNet(Chain):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 4, 3, 1, 1)
        self.stages = nn.ModuleList([WideBlock(4, 8), WideBlock(8, 16, 2)])
        self.heads = nn.ModuleList([head(8), nn.Sequential(nn.BatchNorm2d(16), nn.ReLU(), head(16))])

    def forward(self, x, exits=None):
        return super().forward(self.stem(x), exits)


def separable(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    """MobileNet's depthwise 3x3 then pointwise 1x1."""
    return nn.Sequential(cbr(cin, cin, stride, groups=cin),
                         nn.Conv2d(cin, cout, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU6())


class SDNMobileNet(Chain):
    def __init__(self):
        super().__init__()
        self.stages = nn.ModuleList([nn.Sequential(cbr(3, 8, 2), separable(8, 8)),
                                     separable(8, 16, 2), separable(16, 16)])
        self.heads = nn.ModuleList([head(8), head(16), head(16)])


class IMTAStyle(nn.Module):
    """IMTA's MSDNet (Li et al. 2019) computes every block before any classifier: the eager cost of
    exit 1 holds all the trunk; leaving there pays only blocks 1 and head 1 (lazy)."""

    def __init__(self):
        super().__init__()
        self.blocks = nn.ModuleList([cbr(3, 8), cbr(8, 16, 2), cbr(16, 32, 2)])
        self.heads = nn.ModuleList([head(8), head(16), head(32)])

    def forward(self, x, exits=None):
        features = []
        for block in self.blocks:
            x = block(x)
            features.append(x)
        outs = []
        for feature, exit_head in zip(features, self.heads):
            outs.append(exit_head(feature))
            if exits == len(outs):
                break
        return outs

    def lazy_forward(self, x, k):
        outs = []
        for block, exit_head in list(zip(self.blocks, self.heads))[:k]:
            x = block(x)
            outs.append(exit_head(x))
        return outs


class ZTWCascade(Chain):
    """Zero Time Waste (Wołczyk et al. 2021): each internal classifier also reads the previous
    one's logits (cascade), and a weighted ensemble of the logits so far is each exit's output."""

    def __init__(self):
        super().__init__()
        self.stages = nn.ModuleList([cbr(3, 4), cbr(4, 8, 2), cbr(8, 8, 2)])
        self.heads = nn.ModuleList([head(4), head(8), head(8)])
        self.cascade = nn.ModuleList([nn.Linear(4, 4), nn.Linear(4, 4)])
        self.ensemble = nn.Parameter(torch.ones(3))

    def forward(self, x, exits=None):
        outs, logits, previous = [], [], None
        for k, (stage, exit_head) in enumerate(zip(self.stages, self.heads)):
            x = stage(x)
            own = exit_head(x)
            if previous is not None:
                own = own + self.cascade[k - 1](previous)
            previous = own
            logits.append(own)
            weights = self.ensemble[: k + 1]
            outs.append(sum(w * z for w, z in zip(weights, logits)))
            if exits == len(outs):
                break
        return outs


class RANetLike(nn.Module):
    """RANet (Yang et al. 2020): a low-resolution sub-network exits first; the high-resolution one
    fuses its upsampled features before exiting."""

    def __init__(self):
        super().__init__()
        self.low = nn.Sequential(cbr(3, 8), cbr(8, 8))
        self.low_head = head(8)
        self.high = cbr(3, 8)
        self.fuse = cbr(16, 8)
        self.high_head = head(8)

    def forward(self, x, exits=None):
        low = self.low(F.avg_pool2d(x, 2))
        outs = [self.low_head(low)]
        if exits == 1:
            return outs
        up = F.interpolate(low, scale_factor=2, mode="bilinear", align_corners=False)
        outs.append(self.high_head(self.fuse(torch.cat([self.high(x), up], 1))))
        return outs


class InForwardExit(Chain):
    """Early exit decided in ``forward``: stop when the softmax confidence passes ``threshold``
    (never, at the default 2.0: every exit runs, as counting needs)."""

    def __init__(self, threshold: float = 2.0):
        super().__init__()
        self.threshold = threshold
        self.stages = nn.ModuleList([cbr(3, 4), cbr(4, 8, 2), cbr(8, 8, 2)])
        self.heads = nn.ModuleList([head(4), head(8), head(8)])

    def forward(self, x, exits=None):
        outs = []
        for stage, exit_head in zip(self.stages, self.heads):
            x = stage(x)
            outs.append(exit_head(x))
            if exits == len(outs) or bool(outs[-1].softmax(-1).amax() > self.threshold):
                break
        return outs


class RecurrentDepth(nn.Module):
    """Recurrence in depth: one block applied three times (shared weights), an exit after each."""

    def __init__(self):
        super().__init__()
        self.stem = cbr(3, 8)
        self.block = cbr(8, 8)
        self.head = head(8)

    def forward(self, x, exits=None):
        x, outs = self.stem(x), []
        for _ in range(3):
            x = self.block(x)
            outs.append(self.head(x))
            if exits == len(outs):
                break
        return outs


class GroupedDilated(Chain):
    """ResNeXt-style grouped convs, then dilated ones (DeepLab-style), an exit after each."""

    def __init__(self):
        super().__init__()
        self.stages = nn.ModuleList([
            nn.Sequential(cbr(3, 8), cbr(8, 8, groups=4)),
            nn.Sequential(cbr(8, 8, dilation=2), cbr(8, 8, groups=2, dilation=4)),
        ])
        self.heads = nn.ModuleList([head(8), head(8)])


class TransposedDecoder(nn.Module):
    """An encoder-decoder with an exit (a 1x1 conv prediction map) at each decoder scale."""

    def __init__(self):
        super().__init__()
        self.encoder = nn.Sequential(cbr(3, 8, 2), cbr(8, 16, 2))
        self.up1 = nn.ConvTranspose2d(16, 8, 2, stride=2)
        self.pred1 = nn.Conv2d(8, 2, 1)
        self.up2 = nn.ConvTranspose2d(8, 4, 4, stride=2, padding=1, groups=2)
        self.pred2 = nn.Conv2d(4, 2, 1)

    def forward(self, x, exits=None):
        h = F.relu(self.up1(self.encoder(x)))
        outs = [self.pred1(h)]
        if exits == 1:
            return outs
        return outs + [self.pred2(F.relu(self.up2(h)))]


class Conv1dNet(Chain):
    """A 1-d (audio) network with an exit per stage."""

    def __init__(self):
        super().__init__()
        self.stages = nn.ModuleList([
            nn.Sequential(nn.Conv1d(2, 8, 5, padding=2), nn.ReLU(), nn.MaxPool1d(2)),
            nn.Sequential(nn.Conv1d(8, 8, 3, padding=2, dilation=2, groups=2), nn.ReLU()),
        ])
        self.heads = nn.ModuleList([
            nn.Sequential(nn.AdaptiveAvgPool1d(1), nn.Flatten(), nn.Linear(8, 4)) for _ in range(2)])


class Conv3dNet(Chain):
    """A 3-d (video) network with an exit per stage."""

    def __init__(self):
        super().__init__()
        self.stages = nn.ModuleList([
            nn.Sequential(nn.Conv3d(3, 4, 3, padding=1), nn.BatchNorm3d(4), nn.ReLU()),
            nn.Sequential(nn.Conv3d(4, 8, (1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1)), nn.ReLU()),
        ])
        self.heads = nn.ModuleList([
            nn.Sequential(nn.AdaptiveAvgPool3d(1), nn.Flatten(), nn.Linear(c, 4)) for c in (4, 8)])


class BatchNormAct2d(nn.BatchNorm2d):
    """timm's norm-act layer: a BatchNorm2d subclass whose ``act`` child runs inside it."""

    def __init__(self, channels: int):
        super().__init__(channels)
        self.act = nn.ReLU()

    def forward(self, x):
        return self.act(super().forward(x))


class NormActNet(Chain):
    def __init__(self):
        super().__init__()
        self.stages = nn.ModuleList([
            nn.Sequential(nn.Conv2d(3, 8, 3, padding=1, bias=False), BatchNormAct2d(8)),
            nn.Sequential(nn.Conv2d(8, 8, 3, 2, 1, bias=False), BatchNormAct2d(8)),
        ])
        self.heads = nn.ModuleList([head(8), head(8)])


class NoChildren(nn.Module):
    """Parameters held by the model itself, all functional calls: no child module at all."""

    def __init__(self):
        super().__init__()
        self.w1 = nn.Parameter(torch.randn(8, 3, 3, 3) * 0.1)
        self.w2 = nn.Parameter(torch.randn(8, 8, 3, 3) * 0.1)
        self.w3 = nn.Parameter(torch.randn(16, 8, 3, 3) * 0.1)
        self.fc = nn.ParameterList([nn.Parameter(torch.randn(4, c) * 0.1) for c in (8, 8, 16)])
        self.bias = nn.Parameter(torch.zeros(4))

    def forward(self, x, exits=None):
        outs = []
        for weight, fc, stride in zip((self.w1, self.w2, self.w3), self.fc, (1, 2, 2)):
            x = F.relu(F.conv2d(x, weight, stride=stride, padding=1))
            outs.append(F.linear(x.mean((2, 3)), fc, self.bias))
            if exits == len(outs):
                break
        return outs


class FxTraced(nn.Module):
    """An SDN VGG turned into an ``fx.GraphModule`` (what quantization and pruning tools hand
    back); its eager forward stopped at exit k is the original's, same weights."""

    def __init__(self):
        super().__init__()
        self.original = SDNVGG()
        self.traced = fx.symbolic_trace(self.original, concrete_args={"exits": None})

    def forward(self, x, exits=None):
        return self.traced(x) if exits is None else self.original(x, exits)


def fx_traced() -> nn.Module:
    return FxTraced().traced


MODELS = {
    "sdn-resnet56": SDNResNet56, "sdn-vgg": SDNVGG, "sdn-wrn": SDNWideResNet,
    "sdn-mobilenet": SDNMobileNet, "imta-msdnet": IMTAStyle, "ztw-cascade": ZTWCascade,
    "ranet": RANetLike, "in-forward-exit": InForwardExit, "recurrent-depth": RecurrentDepth,
    "grouped-dilated": GroupedDilated, "transposed-decoder": TransposedDecoder,
    "conv1d": Conv1dNet, "conv3d": Conv3dNet, "norm-act": NormActNet, "no-children": NoChildren,
}
