"""Architectures as plain data: what every zoo model is, without importing torch.

The torch builders (shufflenet_v1.py, shufflenet_v2.py, mobilenet_v1.py) and the analytic counter
(complexity.py) both read these configs, so `sdeploy zoo` can describe every model in milliseconds.

ShuffleNet v1 channel rule (paper Table 1 + Megvii's official lists):
- Stage channels at 1x are Table 1's (g=1..8: 144/200/240/272/384 for Stage2, x2 and x4 after).
- At width s, each stage has round_half_up(s * c_1x / (4g)) * 4g channels: a multiple of 4g, so the
  bottleneck (out/4) splits evenly into g groups. This reproduces Megvii's official lists exactly where
  they exist (g3 and g8 at 0.5/1/1.5/2x), and otherwise moves a channel count by at most 2g
  (e.g. g2 0.5x: 100 -> 104, g4 0.25x: 68 -> 64).
- Conv1 (the stem): 24 at 1x and 1.5x, 48 at 2x (official), and at <= 0.5x the smallest of 12/16
  divisible by g (official: g3 0.5x 12, g8 0.5x 16). The stem must be divisible by g because a
  stride-2 unit's branch outputs `out - in` channels through a g-group conv.
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass

from ..errors import UserError

V1_GROUPS = (1, 2, 3, 4, 8)
V1_WIDTHS = (0.25, 0.5, 1.0, 1.5, 2.0)
V1_STAGE2_1X = {1: 144, 2: 200, 3: 240, 4: 272, 8: 384}  # paper Table 1
V1_SHUFFLES = ("paper", "megvii", "none")
V1_REPEATS = (4, 8, 4)
SE_REDUCTION = 16

V2_CHANNELS = {  # width -> (stage2, stage3, stage4, conv5), the standard ShuffleNet v2 lists
    0.5: (48, 96, 192, 1024),
    1.0: (116, 232, 464, 1024),
    1.5: (176, 352, 704, 1024),
    2.0: (244, 488, 976, 2048),
}
V2_STEM = 24
V2_REPEATS = (4, 8, 4)

MOBILENET_WIDTHS = (1.0, 0.75, 0.5, 0.25)
MOBILENET_STEM_1X = 32
MOBILENET_BLOCKS_1X = (  # (output channels at 1x, stride) of the 13 depthwise-separable blocks
    (64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2),
    (512, 1), (512, 1), (512, 1), (512, 1), (512, 1), (1024, 2), (1024, 1),
)


@dataclass(frozen=True)
class ShuffleNetV1Config:
    groups: int
    width: float
    stem: int
    channels: tuple[int, int, int]  # Stage2..Stage4 output channels
    shuffle: str  # "paper" | "megvii" | "none"
    se: bool
    repeats: tuple[int, int, int] = V1_REPEATS

    def units(self):
        """(index, in_channels, out_channels, stride, first_conv_groups) for every unit, in order."""
        index, c_in = 0, self.stem
        for stage, (c_out, repeats) in enumerate(zip(self.channels, self.repeats)):
            for i in range(repeats):
                # Stage2's first 1x1 conv is not grouped: its 24-ish input channels are too few (paper).
                first_groups = 1 if stage == 0 and i == 0 else self.groups
                yield index, c_in, c_out, 2 if i == 0 else 1, first_groups
                index, c_in = index + 1, c_out

    @property
    def feature_channels(self) -> int:
        return self.channels[-1]


@dataclass(frozen=True)
class ShuffleNetV2Config:
    width: float
    stem: int
    channels: tuple[int, int, int]
    last: int  # conv5 channels
    repeats: tuple[int, int, int] = V2_REPEATS

    @property
    def feature_channels(self) -> int:
        return self.last


@dataclass(frozen=True)
class MobileNetV1Config:
    width: float
    stem: int
    blocks: tuple[tuple[int, int], ...]  # (out channels, stride)

    @property
    def feature_channels(self) -> int:
        return self.blocks[-1][0]


def _width_label(widths) -> str:
    return ", ".join(f"{w}x" for w in widths)


def _round_to(value: float, multiple: int) -> int:
    return int(value / multiple + 0.5) * multiple


def v1_stem(groups: int, width: float) -> int:
    if width >= 2.0:
        return 48
    if width >= 1.0:
        return 24
    return next(c for c in (12, 16) if c % groups == 0)


def shufflenet_v1_config(groups: int = 3, width: float = 1.0, shuffle: str = "paper",
                         se: bool = False) -> ShuffleNetV1Config:
    if groups not in V1_GROUPS:
        raise UserError(f"ShuffleNet v1 has no g={groups}",
                        f"groups are {', '.join(map(str, V1_GROUPS))} (paper Table 1)")
    if width not in V1_WIDTHS:
        raise UserError(f"ShuffleNet v1 has no {width}x width", f"widths are {_width_label(V1_WIDTHS)}")
    if shuffle not in V1_SHUFFLES:
        raise UserError(f"unknown channel-shuffle convention {shuffle!r}", f"use one of {', '.join(V1_SHUFFLES)}")
    base = V1_STAGE2_1X[groups]
    channels = tuple(_round_to(width * base * k, 4 * groups) for k in (1, 2, 4))
    return ShuffleNetV1Config(groups, float(width), v1_stem(groups, width), channels, shuffle, bool(se))


def shufflenet_v2_config(width: float = 1.0) -> ShuffleNetV2Config:
    if width not in V2_CHANNELS:
        raise UserError(f"ShuffleNet v2 has no {width}x width", f"widths are {_width_label(V2_CHANNELS)}")
    *channels, last = V2_CHANNELS[width]
    return ShuffleNetV2Config(float(width), V2_STEM, tuple(channels), last)


def mobilenet_v1_config(width: float = 1.0) -> MobileNetV1Config:
    if width not in MOBILENET_WIDTHS:
        raise UserError(f"MobileNet v1 has no {width}x width", f"widths are {_width_label(MOBILENET_WIDTHS)}")
    blocks = tuple((int(c * width), s) for c, s in MOBILENET_BLOCKS_1X)
    return MobileNetV1Config(float(width), int(MOBILENET_STEM_1X * width), blocks)


CONFIG_BUILDERS = {
    "shufflenet_v1": shufflenet_v1_config,
    "shufflenet_v2": shufflenet_v2_config,
    "mobilenet_v1": mobilenet_v1_config,
}
CLASSIFIERS = {"shufflenet_v1": "classifier.0", "shufflenet_v2": "fc", "mobilenet_v1": "classifier"}


def make_config(family: str, options: dict):
    """Validated config for `family` from its options; unknown option names are a user error."""
    builder = CONFIG_BUILDERS[family]
    allowed = list(inspect.signature(builder).parameters)
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise UserError(f"{family} has no option {', '.join(unknown)}", f"its options are {', '.join(allowed)}")
    return builder(**options)
