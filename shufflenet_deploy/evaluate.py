"""`sdeploy eval`: top-1/top-5 of a checkpoint, an ONNX or TFLite file, or every artifact of an export folder.

An export folder gives a table: each artifact's accuracy, its delta vs the PyTorch model, and its top-1
agreement with it — the numbers that say whether int8 cost anything. Preprocessing always comes from metadata
(the checkpoint's, or the export's manifest.json), never from flags, so evaluation sees exactly what the
deployed model will see.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .data.folders import ImageSet, check_classes, scan_image_folder
from .errors import UserError
from .export import verify
from .export.verify import Accuracy, AccuracyTable, accuracy_table, run_artifact
from .manifest import Manifest
from .sizes import as_hw, canonical, size_str

CHECKPOINT_SUFFIXES = (".pt", ".pth", ".tar", ".ckpt")


def resolve_data(data: Path | str, input_size: int) -> ImageSet:
    if str(data) == "digits":
        from .data.digits import ensure_digits

        return scan_image_folder(ensure_digits(max(as_hw(input_size))) / "val")
    return scan_image_folder(Path(data), what="evaluation folder")


def _manifest_beside(path: Path) -> Manifest:
    if not (path.parent / "manifest.json").exists():
        raise UserError(f"{path} has no manifest.json beside it, so its preprocessing is unknown",
                        "evaluate the export folder made by `sdeploy export`, or keep the manifest with the file")
    return Manifest.load(path.parent)


@dataclass(frozen=True)
class Evaluation:
    """`sdeploy eval`'s answer: one model's accuracy, or an export folder's table (every artifact beside PyTorch)."""

    data: str  # the labelled folder
    skipped: int  # its unreadable images
    artifact: str | None = None  # one model ...
    accuracy: Accuracy | None = None
    export: str | None = None  # ... or an export folder
    model: str | None = None
    samples: int | None = None
    table: AccuracyTable | None = None

    def to_dict(self) -> dict:
        if self.table is None:
            return {"artifact": self.artifact, "data": self.data, **self.accuracy.to_dict(), "skipped": self.skipped}
        return {"export": self.export, "model": self.model, "data": self.data, "samples": self.samples,
                "skipped": self.skipped, **self.table.to_dict()}


def evaluate(artifact: Path, data: Path | str, *, input_size: int | None = None) -> Evaluation:
    """Accuracy of one artifact or of every artifact of an export folder (with deltas vs PyTorch)."""
    artifact = Path(artifact)
    if not artifact.exists():
        raise UserError(f"{artifact} does not exist", "pass a checkpoint, a .onnx/.tflite file or an export folder")
    if artifact.is_dir():
        return _evaluate_export(artifact, data, input_size)
    from .fileio import regular_file

    regular_file(artifact, "model file")  # a named pipe would block the load forever, a device never end
    if artifact.suffix in (".onnx", ".tflite"):
        manifest = _manifest_beside(artifact)
        _check_size(input_size, manifest.input_size, artifact)
        pre = manifest.preprocessing
        image_set = resolve_data(data, pre.input_size)
        check_classes(image_set, manifest.class_names, str(artifact))
        x = pre.load_batch(image_set.paths)
        return _scores(artifact, run_artifact(artifact, x), image_set)
    model, pre, meta = _load_checkpoint(artifact, input_size)
    image_set = resolve_data(data, pre.input_size)
    check_classes(image_set, meta.class_names, str(artifact))
    return _scores(artifact, verify.run_torch(model, pre.load_batch(image_set.paths)), image_set)


def _check_size(requested, fixed, artifact: Path) -> None:
    if requested is not None and canonical(requested) != canonical(fixed):
        (fh, fw), (rh, rw) = as_hw(fixed), as_hw(requested)
        raise UserError(f"{artifact} was exported for {fh}x{fw} inputs, not {rh}x{rw}",
                        f"drop --input-size or re-export with --input-size {size_str(requested).replace('x', ',')}")


def _load_checkpoint(path: Path, input_size: int | None):
    from .checkpoints import load_model

    model = load_model(None, path)
    meta = model.sdeploy_meta
    pre = meta.preprocessing
    if input_size is not None and canonical(input_size) != pre.input_size:
        pre = pre.with_input_size(input_size)
    return model, pre, meta


def _scores(artifact: Path, logits: np.ndarray, image_set: ImageSet) -> Evaluation:
    return Evaluation(data=str(image_set.root), skipped=len(image_set.skipped), artifact=str(artifact),
                      accuracy=verify.accuracy(logits, image_set.labels))


def _evaluate_export(folder: Path, data: Path | str, input_size: int | None) -> Evaluation:
    manifest = Manifest.load(folder)
    for art in manifest.artifacts():
        art.check_unchanged()
    _check_size(input_size, manifest.input_size, folder)
    pre = manifest.preprocessing
    image_set = resolve_data(data, pre.input_size)
    check_classes(image_set, manifest.class_names, manifest.model)
    x = pre.load_batch(image_set.paths)
    reference = None
    checkpoint = manifest.checkpoint
    if checkpoint and Path(checkpoint).is_file():  # the manifest's path: never a pipe or a device to block on
        from .checkpoints import load_model

        reference = verify.run_torch(load_model(manifest.model, Path(checkpoint), **manifest.options), x)
    return Evaluation(data=str(image_set.root), skipped=len(image_set.skipped), export=str(folder),
                      model=manifest.model, samples=len(image_set),
                      table=accuracy_table(folder, manifest.data["artifacts"], x, image_set.labels, reference))
