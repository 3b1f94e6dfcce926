"""Image folders: a flat folder of images, or an ImageFolder tree (one sub-folder per class).

Unreadable files are skipped and counted, never fatal unless nothing is left; every caller gets the list of
skipped files with the reason, so the CLI can say exactly what was left out.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from ..errors import UserError
from .preprocess import IMAGE_SUFFIXES


@dataclass
class ImageSet:
    root: Path
    paths: list[Path]
    labels: list[int] | None = None  # index into class_names, when the folder is an ImageFolder tree
    class_names: list[str] | None = None
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (relative path, reason)

    def __len__(self) -> int:
        return len(self.paths)

    def subset(self, indices) -> "ImageSet":
        labels = None if self.labels is None else [self.labels[i] for i in indices]
        return ImageSet(self.root, [self.paths[i] for i in indices], labels, self.class_names, list(self.skipped))

    def skipped_summary(self, limit: int = 3) -> str:
        names = ", ".join(f"{p} ({why})" for p, why in self.skipped[:limit])
        more = f" and {len(self.skipped) - limit} more" if len(self.skipped) > limit else ""
        return f"skipped {len(self.skipped)} file(s): {names}{more}" if self.skipped else ""


def _check_image(path: Path, min_size: int | None) -> str | None:
    """None if `path` is a readable image at least `min_size` on its short side, else the reason it is not."""
    import warnings

    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                image.verify()
                size = image.size
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        return "too large to decode safely (a decompression bomb, or a photo far beyond any input size)"
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        return "not a readable image"
    if min_size and min(size) < min_size:
        return f"{size[0]}x{size[1]} is smaller than the {min_size}px input (would be upscaled)"
    return None


def _readable(root: Path, candidates: list[Path], min_size: int | None, skipped: list) -> list[Path]:
    kept = []
    for path in candidates:
        reason = _check_image(path, min_size) if path.suffix.lower() in IMAGE_SUFFIXES else "not an image file"
        if reason:
            skipped.append((str(path.relative_to(root)), reason))
        else:
            kept.append(path)
    return kept


def scan_images(folder: Path, *, min_size: int | None = None, what: str = "image folder") -> ImageSet:
    """All readable images under `folder`; labelled when every image sits in a class sub-folder."""
    root = Path(folder)
    if not root.is_dir():
        raise UserError(f"{what} {root} does not exist or is not a folder", "pass a folder of JPEG/PNG images")
    files = sorted(p for p in root.rglob("*") if p.is_file() and not p.name.startswith("."))
    skipped: list[tuple[str, str]] = []
    paths = _readable(root, files, min_size, skipped)
    if not paths:
        detail = f" ({len(skipped)} file(s) skipped: {skipped[0][1]})" if skipped else ""
        raise UserError(f"{what} {root} holds no usable images{detail}", "add JPEG or PNG files")
    class_dirs = sorted({p.relative_to(root).parts[0] for p in paths if len(p.relative_to(root).parts) == 2})
    if class_dirs and all(len(p.relative_to(root).parts) == 2 for p in paths):
        index = {name: i for i, name in enumerate(class_dirs)}
        labels = [index[p.relative_to(root).parts[0]] for p in paths]
        return ImageSet(root, paths, labels, class_dirs, skipped)
    return ImageSet(root, paths, None, None, skipped)


def scan_image_folder(folder: Path, *, min_size: int | None = None, what: str = "data folder") -> ImageSet:
    """An ImageFolder tree (class per sub-folder): refuse flat folders and empty classes."""
    root = Path(folder)
    if not root.is_dir():
        raise UserError(f"{what} {root} does not exist or is not a folder",
                        "pass an ImageFolder tree: one sub-folder of images per class")
    class_dirs = sorted(d.name for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    if not class_dirs:
        raise UserError(f"{what} {root} has no class sub-folders",
                        "arrange images as DIR/<class name>/<image>.png (ImageFolder layout)")
    skipped: list[tuple[str, str]] = []
    paths, labels = [], []
    for label, name in enumerate(class_dirs):
        files = sorted(p for p in (root / name).rglob("*") if p.is_file() and not p.name.startswith("."))
        kept = _readable(root, files, min_size, skipped)
        if not kept:
            raise UserError(f"class {name!r} in {root} has no usable images",
                            "add images to it or remove the empty folder")
        paths += kept
        labels += [label] * len(kept)
    return ImageSet(root, paths, labels, class_dirs, skipped)


def check_classes(image_set: ImageSet, class_names: Sequence[str] | None, what: str,
                  num_classes: int | None = None) -> None:
    """The labelled folder must have the model's classes; without names, at least its number of classes."""
    if class_names is None:
        if num_classes is not None and len(image_set.class_names) != num_classes:
            raise UserError(f"{image_set.root} has {len(image_set.class_names)} class folders, {what} has "
                            f"{num_classes} outputs", "use a folder with one sub-folder per model class")
        return
    if image_set.class_names == list(class_names):
        return
    extra = [c for c in image_set.class_names if c not in class_names]
    missing = [c for c in class_names if c not in image_set.class_names]
    diff = "; ".join(part for part in (
        f"extra class folder(s) {', '.join(extra[:5])}" if extra else "",
        f"missing {', '.join(missing[:5])}" if missing else "",
        "same classes in another order" if not extra and not missing else "") if part)
    raise UserError(f"the classes of {image_set.root} do not match {what}'s {len(class_names)} classes: {diff}",
                    "use a folder with exactly the model's class sub-folders")
