"""Torch building blocks shared by the zoo families (imported only by the builders, never by the registry)."""
from __future__ import annotations

import torch
from torch import nn


class ChannelShuffle(nn.Module):
    """Interleave `groups` channel groups; no parameters.

    "paper" (ShuffleNet v1 paper, torchvision): view as (g, C/g), transpose. "megvii" (official code):
    view as (C/g, g), transpose — the inverse permutation; the two coincide only when C/g == g.
    """

    def __init__(self, groups: int, convention: str = "paper"):
        super().__init__()
        self.groups, self.convention = groups, convention

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        split = (self.groups, c // self.groups) if self.convention == "paper" else (c // self.groups, self.groups)
        return x.reshape(b, *split, h, w).transpose(1, 2).reshape(b, c, h, w)

    def extra_repr(self) -> str:
        return f"groups={self.groups}, convention={self.convention}"

    def permutation(self, channels: int) -> list[int]:
        """out[:, i] = in[:, perm[i]]: the same shuffle as one explicit channel permutation."""
        split = (self.groups, channels // self.groups) if self.convention == "paper" else \
            (channels // self.groups, self.groups)
        return torch.arange(channels).reshape(split).t().reshape(-1).tolist()


class ChannelPermutation(nn.Module):
    """out[:, i] = in[:, perm[i]] (exports as one ONNX Gather on the channel axis, whatever the spatial size)."""

    def __init__(self, perm: list[int]):
        super().__init__()
        self.register_buffer("index", torch.tensor(perm, dtype=torch.long), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.index_select(1, self.index)


def conv_bn(c_in: int, c_out: int, kernel: int = 1, stride: int = 1, groups: int = 1, relu: bool = True):
    """[Conv (no bias, padding kernel//2), BN, ReLU?] as a list, so callers keep official module indices."""
    layers = [nn.Conv2d(c_in, c_out, kernel, stride, kernel // 2, groups=groups, bias=False), nn.BatchNorm2d(c_out)]
    return layers + [nn.ReLU(inplace=True)] if relu else layers


def init_weights(model: nn.Module) -> nn.Module:
    """He init for convs, N(0, 0.01) for FCs, BN at identity: trains from scratch without tuning."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0, 0.01)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
    return model


def randomize_batchnorm(model, seed: int = 0):
    """Give every BatchNorm non-trivial statistics and affine parameters, in place, and return the model.

    A freshly initialised network's BN layers are identities, so its logits barely depend on the input and any
    conversion looks perfect; benchmarks and equivalence tests of untrained models use this instead."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.copy_(torch.randn(m.num_features, generator=gen) * 0.1)
                m.running_var.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
                m.weight.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
                m.bias.copy_(torch.randn(m.num_features, generator=gen) * 0.1)
    return model
