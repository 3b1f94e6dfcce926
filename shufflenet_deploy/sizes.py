"""Input sizes: a square side (`224`) or height and width (`480,640` / `480x640`, as the paper's Table 8 uses).

One canonical form everywhere: an int for a square input, a (height, width) tuple otherwise; JSON stores the int or
[h, w]. `parse` is what every command's --input-size goes through, so a bad size is refused up front with one
line — including sizes whose activations could not fit in memory (a 100000-px export would be OOM-killed minutes
later with no message).
"""
from __future__ import annotations

from .errors import UserError

MIN_SIDE = 16  # below this the stride-32 networks have no spatial extent left to pool
MAX_PIXELS = 4096 * 4096  # the stem's fp32 activations alone: 24 ch x 2048^2 x 4 B = 400 MB; conversions hold many


def as_hw(size) -> tuple[int, int]:
    """224 -> (224, 224); (480, 640) / [480, 640] / "480x640" -> (480, 640)."""
    if isinstance(size, str):
        size = [int(v) for v in size.lower().replace("x", ",").split(",")]
        size = size * 2 if len(size) == 1 else size
    if isinstance(size, (list, tuple)):
        h, w = (int(v) for v in size)
        return h, w
    return int(size), int(size)


def canonical(size):
    """int for a square size, (h, w) otherwise."""
    h, w = as_hw(size)
    return h if h == w else (h, w)


def to_json(size):
    size = canonical(size)
    return list(size) if isinstance(size, tuple) else size


def size_str(size) -> str:
    """224 -> "224"; (480, 640) -> "480x640"."""
    size = canonical(size)
    return f"{size[0]}x{size[1]}" if isinstance(size, tuple) else str(size)


def parse(value, what: str = "--input-size", minimum: int = MIN_SIDE):
    """"224", "480,640", "480x640", 224 or (480, 640) -> the canonical size; anything else is a UserError."""
    if isinstance(value, (int, list, tuple)) and not isinstance(value, bool):
        parts = list(value) if isinstance(value, (list, tuple)) else [value]
    else:
        text = str(value).strip().lower().replace("x", ",")
        parts = [p.strip() for p in text.split(",")]
    try:
        sides = [int(p) for p in parts]
    except (TypeError, ValueError):
        sides = []
    if len(sides) not in (1, 2):
        raise UserError(f"bad {what} {value!r}", "give one side (224) or height,width (480,640)")
    if min(sides) < minimum:
        raise UserError(f"{what} {value!r} is too small: each side must be at least {minimum} px",
                        f"use e.g. {what} 224 (or height,width like 480,640)")
    h, w = (sides * 2)[:2]
    if h * w > MAX_PIXELS:
        raise UserError(f"{what} {value!r} is too large: {h}x{w} activations would not fit in memory "
                        f"(at most {MAX_PIXELS} pixels, e.g. 4096x4096)", "choose a deployment-sized input")
    return canonical((h, w))
