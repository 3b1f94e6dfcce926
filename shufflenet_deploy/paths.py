"""Where sdeploy keeps what it makes between runs: one root ($SDEPLOY_CACHE, else ~/.cache/sdeploy) and one
function per kind of thing kept there, so no module spells a cache path of its own."""
from __future__ import annotations

import os
from pathlib import Path


def cache_root() -> Path:
    return Path(os.environ.get("SDEPLOY_CACHE") or Path.home() / ".cache" / "sdeploy").expanduser()


def peak_cache(device: str) -> Path:
    """bench/peak_cache.py's document: a device's measured peak kernels."""
    return cache_root() / "peaks" / f"{device}.json"


def peak_kernels() -> Path:
    """The peak-kernel .tflite files bench/peak.py builds (the same on every device)."""
    return cache_root() / "peak"


def predictor(device: str) -> Path:
    """analysis/predict.py's document: a device's latency predictor."""
    return cache_root() / "predictors" / f"{device}.json"


def opcut(sha256: str) -> Path:
    """Single-op models cut from one .tflite file (tflite/opcut.py), keyed by the file's hash."""
    return cache_root() / "opcut" / sha256[:16]


def sweep_exports() -> Path:
    """analysis/export_cache.py's exports, one folder per model, size and options."""
    return cache_root() / "sweep-exports"


def digits(size: int) -> Path:
    """data/digits.py's ImageFolder at SIZE px."""
    return cache_root() / f"digits-{size}"
