"""MobileNet v1 (Howard et al., 2017), the baseline of ShuffleNet v1's Table 5 and Table 8.

Stem 3x3/2 conv with 32*alpha channels, the standard 13 depthwise-separable blocks (each: 3x3 depthwise
+ BN + ReLU, 1x1 conv + BN + ReLU), global average pool, FC with bias. Channels are int(c * alpha).
"""
from __future__ import annotations

import torch
from torch import nn

from .configs import MobileNetV1Config
from .layers import conv_bn, init_weights


class DepthwiseSeparable(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int):
        super().__init__()
        self.dw = nn.Sequential(*conv_bn(c_in, c_in, 3, stride, groups=c_in))
        self.pw = nn.Sequential(*conv_bn(c_in, c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pw(self.dw(x))


class MobileNetV1(nn.Module):
    def __init__(self, cfg: MobileNetV1Config, num_classes: int = 1000):
        super().__init__()
        blocks, c_in = [nn.Sequential(*conv_bn(3, cfg.stem, 3, 2))], cfg.stem
        for c_out, stride in cfg.blocks:
            blocks.append(DepthwiseSeparable(c_in, c_out, stride))
            c_in = c_out
        self.features = nn.Sequential(*blocks)
        self.classifier = nn.Linear(cfg.feature_channels, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x).mean((2, 3)))


def build(cfg: MobileNetV1Config, num_classes: int = 1000) -> MobileNetV1:
    return init_weights(MobileNetV1(cfg, num_classes))
