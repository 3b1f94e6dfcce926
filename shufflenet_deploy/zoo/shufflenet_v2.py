"""ShuffleNet v2 (Ma et al., ECCV 2018), the baseline whose paper explains why FLOPs mislead.

Same architecture and module names as torchvision's `shufflenet_v2_x*` (conv1, maxpool, stage2-4 with
branch1/branch2, conv5, fc), so parameter counts equal torchvision's and its weights load unchanged.
Channel split + concat + shuffle with 2 groups in the paper's (g, C/g) convention.
"""
from __future__ import annotations

import torch
from torch import nn

from .configs import ShuffleNetV2Config
from .layers import ChannelShuffle, conv_bn, init_weights


class ShuffleV2Unit(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int):
        super().__init__()
        half = c_out // 2
        self.stride = stride
        # stride 1 keeps branch1 empty (an identity on the first half), as torchvision does
        self.branch1 = nn.Sequential(*conv_bn(c_in, c_in, 3, stride, groups=c_in, relu=False),
                                     *conv_bn(c_in, half)) if stride == 2 else nn.Sequential()
        self.branch2 = nn.Sequential(*conv_bn(c_in if stride == 2 else half, half),
                                     *conv_bn(half, half, 3, stride, groups=half, relu=False),
                                     *conv_bn(half, half))
        self.shuffle = ChannelShuffle(2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride == 1:
            x1, x2 = x.chunk(2, dim=1)
            out = torch.cat((x1, self.branch2(x2)), 1)
        else:
            out = torch.cat((self.branch1(x), self.branch2(x)), 1)
        return self.shuffle(out)


class ShuffleNetV2(nn.Module):
    def __init__(self, cfg: ShuffleNetV2Config, num_classes: int = 1000):
        super().__init__()
        self.conv1 = nn.Sequential(*conv_bn(3, cfg.stem, 3, 2))
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        c_in = cfg.stem
        for stage, (c_out, repeats) in enumerate(zip(cfg.channels, cfg.repeats), start=2):
            units = [ShuffleV2Unit(c_in if i == 0 else c_out, c_out, 2 if i == 0 else 1) for i in range(repeats)]
            setattr(self, f"stage{stage}", nn.Sequential(*units))
            c_in = c_out
        self.conv5 = nn.Sequential(*conv_bn(c_in, cfg.last))
        self.fc = nn.Linear(cfg.last, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.conv1(x))
        x = self.conv5(self.stage4(self.stage3(self.stage2(x))))
        return self.fc(x.mean((2, 3)))


def build(cfg: ShuffleNetV2Config, num_classes: int = 1000) -> ShuffleNetV2:
    return init_weights(ShuffleNetV2(cfg, num_classes))
