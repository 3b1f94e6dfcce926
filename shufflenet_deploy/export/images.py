"""The images an export runs on: calibration and held-out images from one folder (never overlapping), the
labelled validation set, or, with no images at all, synthetic ones for fp32/fp16 parity only.

int8 calibration uses real images only (`--calib DIR`, else the model's bundled calibration set); without either,
int8 is refused rather than calibrated on noise. A held-out part of the same folder feeds the parity checks.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from ..data.folders import ImageSet, scan_image_folder, scan_images
from ..errors import UserError
from ..model_meta import ModelMeta
from ..sizes import as_hw

MIN_CALIBRATION = 10


@dataclass
class Images:
    source: str  # "calib", "bundled" or "synthetic"
    calibration: np.ndarray | None  # NCHW, preprocessed
    held_out: np.ndarray  # NCHW, preprocessed
    held_out_pixels: np.ndarray  # NHWC 0..1, for onnx2tf's sample file
    image_set: ImageSet | None = None
    calib_files: list[str] = field(default_factory=list)
    held_out_files: list[str] = field(default_factory=list)
    more_calibration_paths: list[Path] = field(default_factory=list)  # the rest of the folder, for int8 repair


def load_images(calib: Path | None, meta: ModelMeta, pre, precisions: list[str], *, verify_count: int, calib_count: int,
                seed: int, progress: Callable[[str], None] = lambda msg: None) -> Images:
    """Calibration and held-out images from --calib (else the bundled model's calibration split), preprocessed as the
    model's metadata says; without any, synthetic images for fp32/fp16 parity (int8 is refused)."""
    folder, source = (Path(calib), "calib") if calib else (_bundled_calibration(meta), "bundled")
    if folder is None:
        if "int8" in precisions:
            raise UserError("int8 needs real calibration images and this model has no bundled set",
                            "pass --calib DIR (a folder of JPEG/PNG images like the deployment's inputs)")
        return synthetic(pre, verify_count, seed)
    progress(f"reading images from {folder}")
    found = scan_images(folder, min_size=min(pre.hw), what="calibration folder")
    needed = MIN_CALIBRATION + 5
    if len(found) < needed:
        skipped = f"; {found.skipped_summary()}" if found.skipped else ""
        raise UserError(f"calibration folder {folder} has only {len(found)} usable image(s){skipped}",
                        f"provide at least {needed} images ({MIN_CALIBRATION} calibration + 5 held out)")
    order = np.random.default_rng(seed).permutation(len(found))
    n_verify = min(verify_count, max(5, len(found) // 4))
    held, calib = order[:n_verify], order[n_verify : n_verify + calib_count]
    pixels = np.stack([pre.pixels_from_path(found.paths[i]) for i in held])  # decoded once, used twice
    return Images(
        source=source,
        calibration=pre.load_batch([found.paths[i] for i in calib]),
        held_out=np.ascontiguousarray(np.stack([pre.normalize(p) for p in pixels]).transpose(0, 3, 1, 2)),
        held_out_pixels=pixels.astype(np.float32) / 255,
        image_set=found,
        calib_files=[str(found.paths[i].relative_to(found.root)) for i in calib],
        held_out_files=[str(found.paths[i].relative_to(found.root)) for i in held],
        more_calibration_paths=[found.paths[i] for i in
                                order[n_verify + calib_count : n_verify + 4 * calib_count]],
    )


def _bundled_calibration(meta: ModelMeta) -> Path | None:
    """The calibration split of the dataset a bundled model was trained on, built on first use."""
    if meta.dataset == "digits":
        from ..data.digits import ensure_digits

        return ensure_digits(max(as_hw(meta.input_size))) / "calib"
    return None


def validation_set(val: Path | None, meta: ModelMeta) -> ImageSet | None:
    """--val DIR, else the bundled model's val split, else none (no labels, no accuracy)."""
    if val is not None:
        return scan_image_folder(Path(val), what="validation folder")
    if meta.dataset == "digits":
        from ..data.digits import ensure_digits

        return scan_image_folder(ensure_digits(max(as_hw(meta.input_size))) / "val")
    return None


def synthetic(pre, count: int, seed: int) -> Images:
    """Smooth random images (low-frequency noise, like natural images' spectrum) for fp32/fp16 parity only."""
    rng = np.random.default_rng(seed)
    h, w = pre.hw
    coarse = rng.uniform(0, 255, (count, 8, 8, 3)).astype(np.float32)
    from PIL import Image

    mode = "RGB" if pre.channels == 3 else "L"
    pixels = np.stack([np.asarray(Image.fromarray(c.astype(np.uint8)).resize((w, h), Image.BICUBIC).convert(mode))
                       for c in coarse]).reshape(count, h, w, pre.channels)
    held_out = np.stack([pre.normalize(p).transpose(2, 0, 1) for p in pixels])
    return Images("synthetic", None, np.ascontiguousarray(held_out), pixels.astype(np.float32) / 255)
