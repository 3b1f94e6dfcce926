"""`sdeploy eval`: top-1/top-5 of a checkpoint, an ONNX or TFLite file, or every artifact of an export folder.

An export folder gives a table: each artifact's accuracy, its delta vs the PyTorch model, and its top-1
agreement with it — the numbers that say whether int8 cost anything. Preprocessing always comes from metadata
(the checkpoint's, or the export's manifest.json), never from flags, so evaluation sees exactly what the
deployed model will see.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .data.folders import ImageSet, scan_image_folder
from .errors import UserError
from .export import verify
from .manifest import Manifest

CHECKPOINT_SUFFIXES = (".pt", ".pth", ".tar", ".ckpt")


def resolve_data(data: Path | str, input_size: int) -> ImageSet:
    if str(data) == "digits":
        from .data.digits import ensure_digits

        return scan_image_folder(ensure_digits(input_size) / "val")
    return scan_image_folder(Path(data), what="evaluation folder")


def check_classes(image_set: ImageSet, class_names: list[str] | None, what: str) -> None:
    if class_names is not None and image_set.class_names != list(class_names):
        raise UserError(f"the evaluation set's classes {image_set.class_names[:5]}... do not match {what}'s "
                        f"{list(class_names)[:5]}...", "evaluate on a folder with the model's class sub-folders")


def _manifest_beside(path: Path) -> Manifest:
    if not (path.parent / "manifest.json").exists():
        raise UserError(f"{path} has no manifest.json beside it, so its preprocessing is unknown",
                        "evaluate the export folder made by `sdeploy export`, or keep the manifest with the file")
    return Manifest.load(path.parent)


def evaluate(artifact: Path, data: Path | str, *, input_size: int | None = None) -> dict:
    """Accuracy of one artifact or of every artifact of an export folder (with deltas vs PyTorch)."""
    from .data.preprocess import Preprocessing

    artifact = Path(artifact)
    if not artifact.exists():
        raise UserError(f"{artifact} does not exist", "pass a checkpoint, a .onnx/.tflite file or an export folder")
    if artifact.is_dir():
        return _evaluate_export(artifact, data, input_size)
    if artifact.suffix in (".onnx", ".tflite"):
        manifest = _manifest_beside(artifact)
        _check_size(input_size, manifest.input_size, artifact)
        pre = Preprocessing.from_dict(manifest.preprocessing)
        image_set = resolve_data(data, pre.input_size)
        check_classes(image_set, manifest.class_names, str(artifact))
        x = pre.load_batch(image_set.paths)
        logits = verify.run_onnx(artifact, x) if artifact.suffix == ".onnx" else verify.run_tflite(artifact, x)
        return {"artifact": str(artifact), "data": str(image_set.root), **_scores(logits, image_set)}
    model, pre, meta = _load_checkpoint(artifact, input_size)
    image_set = resolve_data(data, pre.input_size)
    check_classes(image_set, meta.get("class_names"), str(artifact))
    logits = verify.run_torch(model, pre.load_batch(image_set.paths))
    return {"artifact": str(artifact), "data": str(image_set.root), **_scores(logits, image_set)}


def _check_size(requested: int | None, fixed: int, artifact: Path) -> None:
    if requested is not None and requested != fixed:
        raise UserError(f"{artifact} was exported for {fixed}x{fixed} inputs, not {requested}x{requested}",
                        f"drop --input-size or re-export with --input-size {requested}")


def _load_checkpoint(path: Path, input_size: int | None):
    from .checkpoints import load_model
    from .data.preprocess import Preprocessing

    model = load_model(None, path)
    meta = model.sdeploy_meta
    pre = Preprocessing.from_dict(meta["preprocessing"])
    if input_size and input_size != pre.input_size:
        pre = pre.with_input_size(input_size)
    return model, pre, meta


def _scores(logits: np.ndarray, image_set: ImageSet) -> dict:
    return {**verify.accuracy(logits, image_set.labels), "skipped": len(image_set.skipped)}


def _evaluate_export(folder: Path, data: Path | str, input_size: int | None) -> dict:
    from .data.preprocess import Preprocessing

    manifest = Manifest.load(folder)
    _check_size(input_size, manifest.input_size, folder)
    pre = Preprocessing.from_dict(manifest.preprocessing)
    image_set = resolve_data(data, pre.input_size)
    check_classes(image_set, manifest.class_names, manifest.model)
    x = pre.load_batch(image_set.paths)
    reference = None
    checkpoint = manifest.checkpoint
    if checkpoint and Path(checkpoint).exists():
        from .checkpoints import load_model

        reference = verify.run_torch(load_model(manifest.model, Path(checkpoint), **manifest.options), x)
    return {"export": str(folder), "model": manifest.model, "data": str(image_set.root),
            "samples": len(image_set), "skipped": len(image_set.skipped),
            **accuracy_table(folder, manifest.data["artifacts"], x, image_set.labels, reference)}


def accuracy_table(folder: Path, artifacts: dict, x: np.ndarray, labels, reference: np.ndarray | None) -> dict:
    """Accuracy of every artifact, its delta vs the reference (PyTorch when given, else the first artifact)
    and its top-1 agreement with it."""
    rows = []
    if reference is not None:
        rows.append({"artifact": "pytorch", **verify.accuracy(reference, labels)})
    for name, art in artifacts.items():
        path = folder / art["file"]
        logits = verify.run_onnx(path, x) if art["format"] == "onnx" else verify.run_tflite(path, x)
        if reference is None:
            reference = logits
        row = {"artifact": name, **verify.accuracy(logits, labels)}
        row["top1_agreement"] = float((logits.argmax(1) == reference.argmax(1)).mean())
        rows.append(row)
    for row in rows:
        row["delta_top1"] = row["top1"] - rows[0]["top1"]
    return {"reference": rows[0]["artifact"], "rows": rows}
