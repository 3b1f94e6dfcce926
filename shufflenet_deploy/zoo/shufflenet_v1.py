"""ShuffleNet v1 (Zhang et al., CVPR 2018) exactly as the paper, with Megvii's official module names.

Unit: 1x1 group conv (BN, ReLU) -> shuffle -> 3x3 depthwise (BN, no ReLU) -> 1x1 group conv (BN).
Stride 1: relu(x + branch). Stride 2: concat(avgpool3x3s2(x), relu(branch)) — ReLU on the branch only, as
the official code does; equal to ReLU after the concat (an average pool of a post-ReLU tensor is
non-negative) but the ReLU then fuses into the conv when deployed.

Module names are the official ones (first_conv.0/1, features.N.branch_main_1.{0,1,3,4},
features.N.branch_main_2.{0,1}, classifier.0) in both shuffle conventions, so Megvii's checkpoints load
with `shuffle="megvii"`. The conventions differ in where the shuffle sits and its permutation:
"paper" shuffles after the first conv's ReLU with a (g, C/g) transpose; "megvii" after the depthwise
conv + BN with a (C/g, g) transpose (the inverse). Weights trained under one give different outputs
under the other. Stage2's first unit keeps its shuffle although its first conv is not grouped (the
permutation is then redundant but harmless), so both conventions have the same graph as the official code.

Channel and stem widths per (g, width) follow zoo/configs.py (Megvii's lists where they exist, else
multiples of 4g). SE variant (Table 5): squeeze-excite (reduction 16, FC-ReLU-FC-sigmoid, FC biases) on
each unit's whole output, after the add / concat; this is the placement that gives Table 5's 527 MFLOPs
for 2x g3 (on the branch alone it would be 526).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .configs import SE_REDUCTION, ShuffleNetV1Config
from .layers import ChannelShuffle, conv_bn, init_weights

_SHUFFLE_AFTER = {"paper": 2, "megvii": 4}  # index in branch_main_1 after which the shuffle runs


class SqueezeExcite(nn.Module):
    def __init__(self, channels: int, reduction: int = SE_REDUCTION):
        super().__init__()
        self.fc1 = nn.Linear(channels, channels // reduction)
        self.fc2 = nn.Linear(channels // reduction, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = torch.sigmoid(self.fc2(F.relu(self.fc1(x.mean((2, 3))))))
        return x * scale[:, :, None, None]


class ShuffleV1Unit(nn.Module):
    def __init__(self, c_in: int, c_out: int, *, stride: int, groups: int, first_groups: int,
                 shuffle: str, se: bool):
        super().__init__()
        mid, branch_out = c_out // 4, c_out - c_in if stride == 2 else c_out
        self.stride = stride
        self.branch_main_1 = nn.Sequential(*conv_bn(c_in, mid, groups=first_groups),
                                           *conv_bn(mid, mid, 3, stride, groups=mid, relu=False))
        self.branch_main_2 = nn.Sequential(*conv_bn(mid, branch_out, groups=groups, relu=False))
        self.shuffle_after = _SHUFFLE_AFTER.get(shuffle, -1)
        self.shuffle = ChannelShuffle(groups, shuffle) if groups > 1 and shuffle != "none" else nn.Identity()
        if stride == 2:
            self.branch_proj = nn.AvgPool2d(3, 2, 1)
        self.se = SqueezeExcite(c_out) if se else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x
        for i, layer in enumerate(self.branch_main_1):
            y = layer(y)
            if i == self.shuffle_after:
                y = self.shuffle(y)
        y = self.branch_main_2(y)
        out = F.relu(x + y) if self.stride == 1 else torch.cat((self.branch_proj(x), F.relu(y)), 1)
        return self.se(out)


class ShuffleNetV1(nn.Module):
    def __init__(self, cfg: ShuffleNetV1Config, num_classes: int = 1000):
        super().__init__()
        self.first_conv = nn.Sequential(*conv_bn(3, cfg.stem, 3, 2))
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.features = nn.Sequential(*(
            ShuffleV1Unit(c_in, c_out, stride=stride, groups=cfg.groups, first_groups=first_groups,
                          shuffle=cfg.shuffle, se=cfg.se)
            for _, c_in, c_out, stride, first_groups in cfg.units()))
        self.classifier = nn.Sequential(nn.Linear(cfg.feature_channels, num_classes, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(self.maxpool(self.first_conv(x)))
        return self.classifier(x.mean((2, 3)))  # global average pool at any input size


def build(cfg: ShuffleNetV1Config, num_classes: int = 1000) -> ShuffleNetV1:
    return init_weights(ShuffleNetV1(cfg, num_classes))
