"""The bundled real dataset: scikit-learn's handwritten digits, written out as an ImageFolder of PNGs.

Why this set: nothing can be downloaded at run time, and scikit-learn (already a dependency) ships these 1,797
real 8x8 scans of handwritten digits (10 classes) inside its wheel. Trained models need real images so that
int8 damage shows (random-init networks make every parity number look perfect).

Layout: ROOT/{train,val,calib}/<digit>/<index>.png, upscaled with bicubic interpolation to SIZE x SIZE, dark ink
on white, RGB. The split is fixed and stratified (per class, seeded shuffle): 70% train, 15% val, 15% calib —
calib is held out from training so int8 calibration never sees the training images, and val is held out from
both. Built on first use under the cache folder ($SDEPLOY_CACHE, else ~/.cache/sdeploy) or by
`sdeploy data digits -o DIR`.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np

from ..paths import cache_root, digits

SPLITS = (("train", 0.70), ("val", 0.15), ("calib", 0.15))
SEED = 0
CLASS_NAMES = [str(d) for d in range(10)]


def split_indices(targets: np.ndarray) -> dict[str, list[int]]:
    """Stratified fixed split: for each class a seeded permutation cut 70/15/15."""
    rng = np.random.default_rng(SEED)
    out: dict[str, list[int]] = {name: [] for name, _ in SPLITS}
    for digit in range(10):
        idx = rng.permutation(np.flatnonzero(targets == digit))
        n_train = round(len(idx) * SPLITS[0][1])
        n_val = round(len(idx) * SPLITS[1][1])
        out["train"] += idx[:n_train].tolist()
        out["val"] += idx[n_train : n_train + n_val].tolist()
        out["calib"] += idx[n_train + n_val :].tolist()
    return {k: sorted(v) for k, v in out.items()}


def render(image8x8: np.ndarray, size: int):
    """An 8x8 scan (0..16, 16 = ink) -> a size x size RGB PIL image, dark ink on white."""
    from PIL import Image

    gray = (255 - image8x8 * (255 / 16)).clip(0, 255).astype(np.uint8)
    return Image.fromarray(gray, "L").resize((size, size), Image.BICUBIC).convert("RGB")


def write_digits(outdir: Path, size: int = 64, *, force: bool = False) -> Path:
    """Write the three splits under `outdir` (atomically: a temp folder renamed at the end).

    An existing `outdir` is replaced only with `force`, and only if it is a digits folder sdeploy wrote (its
    README.txt says so): never a user's folder or file."""
    from sklearn.datasets import load_digits

    from ..errors import UserError
    from ..fileio import temp_dir
    from ..sizes import parse

    if not isinstance(size, int) or isinstance(parse(size, "--size"), tuple):
        raise UserError(f"--size must be one side in pixels, not {size}", "e.g. --size 64")
    outdir = Path(outdir)
    if outdir.exists() or outdir.is_symlink():
        if not outdir.is_dir() or outdir.is_symlink():
            raise UserError(f"-o {outdir} exists and is not a folder", "choose a new folder's path")
        ours = "Written by sdeploy" in ((outdir / "README.txt").read_text(errors="replace")
                                        if (outdir / "README.txt").is_file() else "")
        if not force:
            raise UserError(f"-o {outdir} already exists", "pass --force to replace it (only a digits folder "
                            "sdeploy wrote is replaced) or choose another -o")
        if not ours:
            raise UserError(f"-o {outdir} is not a digits folder sdeploy wrote (no README.txt of ours): --force "
                            "will not replace it", "choose another -o")
    digits = load_digits()
    try:
        outdir.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise UserError(f"cannot create {outdir.parent}: {err.strerror}", "choose another -o") from None
    tmp = temp_dir(outdir.parent, outdir.name, "tmp")
    try:
        for split, indices in split_indices(digits.target).items():
            for i in indices:
                folder = tmp / split / CLASS_NAMES[digits.target[i]]
                folder.mkdir(parents=True, exist_ok=True)
                render(digits.images[i], size).save(folder / f"{i:04d}.png")
        (tmp / "README.txt").write_text(
            f"scikit-learn handwritten digits (1,797 real 8x8 scans), upscaled to {size}x{size} RGB PNG.\n"
            "Fixed stratified split 70/15/15 (seed 0): train / val / calib. Written by sdeploy.\n")
        if outdir.exists():
            shutil.rmtree(outdir)
        os.replace(tmp, outdir)
    except OSError as err:
        raise UserError(f"cannot write {outdir}: {err.strerror}", "choose another -o") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return outdir


def ensure_digits(size: int = 64) -> Path:
    """The cached digits ImageFolder at `size`, written on first use."""
    from ..fileio import locked

    root = digits(size)
    if not (root / "README.txt").exists():
        with locked(cache_root() / f".digits-{size}.lock"):  # another process may be writing it right now
            if not (root / "README.txt").exists():
                shutil.rmtree(root, ignore_errors=True)  # the cache's own folder, never finished
                write_digits(root, size)
    return root
