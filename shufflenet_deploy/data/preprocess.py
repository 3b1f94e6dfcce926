"""A model's preprocessing, as metadata that travels with it.

The same `Preprocessing` drives training, evaluation, ONNX/TFLite parity inputs and int8 calibration, so a
model is never calibrated or measured on inputs prepared differently from how it was trained. It is stored in
our checkpoints and in every export's manifest.json.

Order of operations (the torchvision/ImageNet convention, and the one Megvii's released models used):
decode -> RGB or BGR -> resize the short side to `resize` (bilinear) -> centre crop `input_size`
-> float32 * `scale` -> (x - mean) / std, per channel, in the model's channel order.

`input_size` is a square side or (height, width) (sizes.py); `resize` is then taken against the longer side, so
the crop always fits inside the resized image.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from ..errors import UserError
from ..sizes import as_hw, canonical, to_json

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp")


@dataclass(frozen=True)
class Preprocessing:
    input_size: int | tuple[int, int] = 224
    resize: int = 256  # short side before the centre crop; equal to input_size means "no crop"
    channel_order: str = "RGB"  # "RGB" or "BGR"
    scale: float = 1.0 / 255.0
    mean: tuple[float, float, float] = (0.485, 0.456, 0.406)
    std: tuple[float, float, float] = (0.229, 0.224, 0.225)
    channels: int = 3  # 1: the image is converted to grey (PIL "L") before scaling

    def __post_init__(self):
        if self.channel_order not in ("RGB", "BGR"):
            raise ValueError(f"channel_order must be RGB or BGR, not {self.channel_order!r}")
        if not isinstance(self.resize, int) or isinstance(self.resize, bool) or not 1 <= self.resize <= 65536:
            raise ValueError(f"resize must be a side in pixels, not {self.resize!r}")
        if self.channels not in (1, 3):
            raise ValueError(f"channels must be 1 or 3, not {self.channels!r}")
        object.__setattr__(self, "mean", tuple(float(v) for v in self.mean))
        object.__setattr__(self, "std", tuple(float(v) for v in self.std))
        if len(self.mean) != self.channels or len(self.std) != self.channels:
            raise ValueError(f"mean and std need {self.channels} value(s) each (one per input channel), "
                             f"got {len(self.mean)} and {len(self.std)}")
        if not all(math.isfinite(v) for v in (*self.mean, *self.std, self.scale)) or min(self.std) <= 0 \
                or self.scale <= 0:
            raise ValueError(f"mean, std and scale must be finite, std and scale positive (mean {self.mean}, "
                             f"std {self.std}, scale {self.scale})")
        object.__setattr__(self, "input_size", canonical(self.input_size))

    @property
    def hw(self) -> tuple[int, int]:
        return as_hw(self.input_size)

    @classmethod
    def imagenet(cls, input_size=224) -> "Preprocessing":
        return cls(input_size=input_size, resize=round(max(as_hw(input_size)) * 256 / 224))

    @classmethod
    def megvii(cls, input_size=224) -> "Preprocessing":
        """Megvii's released ShuffleNet weights: BGR, 0..255, no mean/std."""
        return cls(input_size=input_size, resize=round(max(as_hw(input_size)) * 256 / 224), channel_order="BGR",
                   scale=1.0, mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0))

    def with_input_size(self, input_size) -> "Preprocessing":
        ratio = self.resize / max(self.hw)
        return Preprocessing(**{**asdict(self), "input_size": canonical(input_size),
                                "resize": round(max(as_hw(input_size)) * ratio)})

    def to_dict(self) -> dict:
        d = asdict(self)
        d["mean"], d["std"] = list(self.mean), list(self.std)
        d["input_size"] = to_json(self.input_size)
        if self.channels == 3:  # the usual case stays as every earlier manifest and checkpoint wrote it
            del d["channels"]
        return d

    @classmethod
    def read(cls, block: dict, where: str, hint: str | None = None) -> "Preprocessing":
        """A stored preprocessing block (a manifest's, a checkpoint's meta), every failure one UserError naming WHERE."""
        try:
            return cls.from_dict(block)
        except (TypeError, ValueError, UserError) as err:
            raise UserError(f"{where}: preprocessing is damaged ({getattr(err, 'message', err)})", hint) from None

    @classmethod
    def from_dict(cls, d: dict) -> "Preprocessing":
        known = {k: d[k] for k in ("input_size", "resize", "channel_order", "scale", "mean", "std", "channels")
                 if k in d}
        return cls(**known)

    # -- applying it -------------------------------------------------------------------------------------------
    def pixels(self, image) -> np.ndarray:
        """A PIL image -> HWC uint8 RGB (or grey, one channel) array, resized and centre-cropped (no scaling yet)."""
        from PIL import Image

        image = image.convert("RGB" if self.channels == 3 else "L")
        w, h = image.size
        short = min(w, h)
        if short != self.resize:
            factor = self.resize / short
            image = image.resize((max(1, round(w * factor)), max(1, round(h * factor))), Image.BILINEAR)
        w, h = image.size
        crop_h, crop_w = self.hw
        left, top = (w - crop_w) // 2, (h - crop_h) // 2
        image = image.crop((left, top, left + crop_w, top + crop_h))
        pixels = np.asarray(image, dtype=np.uint8)
        return pixels if pixels.ndim == 3 else pixels[..., None]

    def normalize(self, pixels_hwc: np.ndarray) -> np.ndarray:
        """HWC uint8 RGB -> HWC float32 in the model's channel order, scaled and normalised."""
        x = pixels_hwc.astype(np.float32)
        if self.channel_order == "BGR" and x.shape[-1] == 3:
            x = x[..., ::-1]
        x = x * np.float32(self.scale)
        return ((x - np.asarray(self.mean, np.float32)) / np.asarray(self.std, np.float32)).astype(np.float32)

    def pixels_from_path(self, path: Path) -> np.ndarray:
        from PIL import Image

        with Image.open(path) as image:
            return self.pixels(image)

    def load(self, path: Path) -> np.ndarray:
        """One image file -> CHW float32, ready for the PyTorch/ONNX model."""
        return np.ascontiguousarray(self.normalize(self.pixels_from_path(path)).transpose(2, 0, 1))

    def load_batch(self, paths: Sequence[Path]) -> np.ndarray:
        """Image files -> NCHW float32."""
        if not paths:
            return np.zeros((0, self.channels, *self.hw), np.float32)
        return np.stack([self.load(p) for p in paths])

