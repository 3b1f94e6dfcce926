"""Analytic multiply-adds (MACs) and parameters per layer, from the zoo configs (no torch, no tracing).

Convention (the ShuffleNet papers'): "FLOPs" = multiply-adds. A convolution costs
H_out * W_out * C_out * (C_in / groups) * k * k, a fully connected layer C_in * C_out. BN, ReLU, pooling,
channel shuffle, add and concat cost nothing. Two totals are reported because the papers use both:
`macs_conv` (convolutions only: ShuffleNet v1 Table 1) and `macs_total` (convolutions + every FC,
including SE's: the width-scaled figures, MobileNet, ShuffleNet v2). ShuffleNet v2's published figures
(41/146/299/591) are 0.7-1.3% above this count although our v2 is torchvision's architecture exactly (same
params, torchvision's documented GFLOPS): the gap lies in how that paper counted, not in the model.

`params` counts trainable parameters (conv/FC weights and biases, BN weight and bias), i.e.
sum(p.numel() for p in model.parameters()); BN running statistics are buffers and are not counted.
Layer names are the torch modules' names (e.g. `features.3.branch_main_2.0`).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

from .errors import UserError
from .sizes import as_hw, canonical, size_str, to_json
from .zoo import configs
from .zoo.registry import PaperFigure, get_spec


@dataclass(frozen=True)
class Layer:
    name: str
    kind: str  # conv | group_conv | depthwise | fc | se_fc
    in_shape: tuple[int, ...]  # (C, H, W) for convs, (C,) for FC
    out_shape: tuple[int, ...]
    kernel: int
    stride: int
    groups: int
    macs: int
    params: int  # the layer's own weight (+ bias)
    bn_params: int = 0  # the BatchNorm right after it (weight + bias), 0 if none


@dataclass
class Complexity:
    model: str
    input_size: int | tuple[int, int]
    num_classes: int
    options: dict
    layers: list[Layer] = field(default_factory=list)

    @property
    def macs_conv(self) -> int:
        return sum(l.macs for l in self.layers if l.kind in ("conv", "group_conv", "depthwise"))

    @property
    def macs_total(self) -> int:
        return sum(l.macs for l in self.layers)

    @property
    def params(self) -> int:
        return sum(l.params + l.bn_params for l in self.layers)

    def macs(self, convention: str) -> int:
        """MACs in a paper convention: "conv" (convolutions only) or "conv+fc"."""
        return {"conv": self.macs_conv, "conv+fc": self.macs_total}[convention]

    def paper_comparison(self) -> "PaperComparison | None":
        """The paper's figure beside ours in its convention; None without one (or off 224x224, 1000 classes)."""
        paper = get_spec(self.model).paper
        if paper is None or (self.input_size, self.num_classes) != (224, 1000):
            return None
        ours = self.macs(paper.convention) / 1e6
        return PaperComparison(paper=paper, ours_m=round(ours, 2), matches=round(ours) == round(paper.macs_m))

    def summary(self) -> dict:
        spec = get_spec(self.model)
        return {
            "model": self.model,
            "family": spec.family,
            "input_size": to_json(self.input_size),
            "num_classes": self.num_classes,
            "options": dict(self.options),
            "macs_conv": self.macs_conv,
            "macs_total": self.macs_total,
            "params": self.params,
            "paper": asdict(spec.paper) if spec.paper else None,
        }

    def to_dict(self) -> dict:
        return {**self.summary(), "layers": [asdict(l) for l in self.layers]}


@dataclass(frozen=True)
class PaperComparison:
    """A published MAC count and ours in the same convention (conv-only or conv+FC), equal after rounding or not."""

    paper: PaperFigure
    ours_m: float
    matches: bool

    def to_dict(self) -> dict:
        return {**asdict(self.paper), "ours_m": self.ours_m, "matches": self.matches}


class _Walker:
    """Tracks the running (C, H, W) shape and appends one `Layer` per conv/FC."""

    def __init__(self, channels: int, size):
        h, w = as_hw(size)
        self.shape = (channels, h, w)
        self.layers: list[Layer] = []

    def conv(self, name: str, c_out: int, kernel: int = 1, stride: int = 1, groups: int = 1,
             shape: tuple[int, int, int] | None = None, bias: bool = False, bn: bool = True) -> None:
        """A conv of `shape` (default: the running shape), padding kernel // 2; the output becomes the running shape."""
        c_in, h, w = shape or self.shape
        pad = kernel // 2
        h_out, w_out = (h + 2 * pad - kernel) // stride + 1, (w + 2 * pad - kernel) // stride + 1
        weights = c_out * (c_in // groups) * kernel * kernel
        kind = "conv" if groups == 1 else "depthwise" if groups == c_in == c_out else "group_conv"
        self.shape = (c_out, h_out, w_out)
        self.layers.append(Layer(name, kind, (c_in, h, w), self.shape, kernel, stride, groups,
                                 weights * h_out * w_out, weights + (c_out if bias else 0), 2 * c_out if bn else 0))

    def fc(self, name: str, c_in: int, c_out: int, bias: bool, kind: str = "fc") -> None:
        weights = c_in * c_out
        self.layers.append(Layer(name, kind, (c_in,), (c_out,), 1, 1, 1, weights, weights + (c_out if bias else 0)))

    def pool(self, stride: int = 2) -> None:
        """3x3 pooling, padding 1 (the stem's max pool, v1's average-pool shortcut)."""
        c, h, w = self.shape
        self.shape = (c, (h - 1) // stride + 1, (w - 1) // stride + 1)


def _shufflenet_v1(cfg: configs.ShuffleNetV1Config, walk: _Walker, num_classes: int) -> None:
    walk.conv("first_conv.0", cfg.stem, kernel=3, stride=2)
    walk.pool()
    for i, c_in, c_out, stride, first_groups in cfg.units():
        unit, mid = f"features.{i}", c_out // 4
        walk.conv(f"{unit}.branch_main_1.0", mid, groups=first_groups)
        walk.conv(f"{unit}.branch_main_1.3", mid, kernel=3, stride=stride, groups=mid)
        walk.conv(f"{unit}.branch_main_2.0", c_out - c_in if stride == 2 else c_out, groups=cfg.groups)
        walk.shape = (c_out, *walk.shape[1:])  # concatenated with the shortcut when stride is 2
        if cfg.se:  # on the unit's whole output (after the add / concat): Table 5's 527 MFLOPs at 2x g3
            walk.fc(f"{unit}.se.fc1", c_out, c_out // configs.SE_REDUCTION, bias=True, kind="se_fc")
            walk.fc(f"{unit}.se.fc2", c_out // configs.SE_REDUCTION, c_out, bias=True, kind="se_fc")
    walk.fc("classifier.0", cfg.feature_channels, num_classes, bias=False)


def _shufflenet_v2(cfg: configs.ShuffleNetV2Config, walk: _Walker, num_classes: int) -> None:
    walk.conv("conv1.0", cfg.stem, kernel=3, stride=2)
    walk.pool()
    for stage, (c_out, repeats) in enumerate(zip(cfg.channels, cfg.repeats), start=2):
        half = c_out // 2
        for i in range(repeats):
            unit, x = f"stage{stage}.{i}", walk.shape
            if i == 0:  # both branches see the whole input and halve the resolution
                walk.conv(f"{unit}.branch1.0", x[0], kernel=3, stride=2, groups=x[0])
                walk.conv(f"{unit}.branch1.2", half)
                walk.conv(f"{unit}.branch2.0", half, shape=x)
            else:  # the other half passes through untouched
                walk.conv(f"{unit}.branch2.0", half, shape=(half, *x[1:]))
            walk.conv(f"{unit}.branch2.3", half, kernel=3, stride=2 if i == 0 else 1, groups=half)
            walk.conv(f"{unit}.branch2.5", half)
            walk.shape = (c_out, *walk.shape[1:])
    walk.conv("conv5.0", cfg.last)
    walk.fc("fc", cfg.last, num_classes, bias=True)


def _mobilenet_v1(cfg: configs.MobileNetV1Config, walk: _Walker, num_classes: int) -> None:
    walk.conv("features.0.0", cfg.stem, kernel=3, stride=2)
    for i, (c_out, stride) in enumerate(cfg.blocks, start=1):
        c_in = walk.shape[0]
        walk.conv(f"features.{i}.dw.0", c_in, kernel=3, stride=stride, groups=c_in)
        walk.conv(f"features.{i}.pw.0", c_out)
    walk.fc("classifier", cfg.feature_channels, num_classes, bias=True)


_WALKS = {"shufflenet_v1": _shufflenet_v1, "shufflenet_v2": _shufflenet_v2, "mobilenet_v1": _mobilenet_v1}


def count_complexity(name: str, input_size=224, num_classes: int = 1000, **options) -> Complexity:
    """Per-layer MACs and parameters of zoo model `name` at a square side or (height, width) input."""
    if min(as_hw(input_size)) < 1:
        raise UserError(f"input size must be positive, not {size_str(input_size)}")
    input_size = canonical(input_size)
    spec = get_spec(name)
    cfg = spec.config(**options)
    walk = _Walker(3, input_size)
    _WALKS[spec.family](cfg, walk, num_classes)
    return Complexity(name, input_size, num_classes, {**spec.options, **options}, walk.layers)
