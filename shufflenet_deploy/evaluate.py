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
from .sizes import as_hw, canonical, size_str

CHECKPOINT_SUFFIXES = (".pt", ".pth", ".tar", ".ckpt")


def resolve_data(data: Path | str, input_size: int) -> ImageSet:
    if str(data) == "digits":
        from .data.digits import ensure_digits

        return scan_image_folder(ensure_digits(max(as_hw(input_size))) / "val")
    return scan_image_folder(Path(data), what="evaluation folder")


def check_classes(image_set: ImageSet, class_names: list[str] | None, what: str,
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


def run_artifact(path: Path, x: np.ndarray) -> np.ndarray:
    """Logits of an .onnx or .tflite file; a file the runtime cannot load is a UserError naming it."""
    try:
        return verify.run_onnx(path, x) if path.suffix == ".onnx" else verify.run_tflite(path, x)
    except Exception as err:  # the runtimes raise RuntimeError, ValueError, onnxruntime's own Fail, ...
        kind = "ONNX" if path.suffix == ".onnx" else "TFLite"
        first = str(err).strip().splitlines()[0][:160] if str(err).strip() else type(err).__name__
        raise UserError(f"{path} cannot be run as a {kind} model ({first})",
                        "re-export it: the file is damaged or not a model") from None


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
        logits = run_artifact(artifact, x)
        return {"artifact": str(artifact), "data": str(image_set.root), **_scores(logits, image_set)}
    model, pre, meta = _load_checkpoint(artifact, input_size)
    image_set = resolve_data(data, pre.input_size)
    check_classes(image_set, meta.get("class_names"), str(artifact))
    logits = verify.run_torch(model, pre.load_batch(image_set.paths))
    return {"artifact": str(artifact), "data": str(image_set.root), **_scores(logits, image_set)}


def _check_size(requested, fixed, artifact: Path) -> None:
    if requested is not None and canonical(requested) != canonical(fixed):
        (fh, fw), (rh, rw) = as_hw(fixed), as_hw(requested)
        raise UserError(f"{artifact} was exported for {fh}x{fw} inputs, not {rh}x{rw}",
                        f"drop --input-size or re-export with --input-size {size_str(requested).replace('x', ',')}")


def _load_checkpoint(path: Path, input_size: int | None):
    from .checkpoints import load_model
    from .data.preprocess import Preprocessing

    model = load_model(None, path)
    meta = model.sdeploy_meta
    pre = Preprocessing.from_dict(meta["preprocessing"])
    if input_size is not None and canonical(input_size) != pre.input_size:
        pre = pre.with_input_size(input_size)
    return model, pre, meta


def _scores(logits: np.ndarray, image_set: ImageSet) -> dict:
    return {**verify.accuracy(logits, image_set.labels), "skipped": len(image_set.skipped)}


def _evaluate_export(folder: Path, data: Path | str, input_size: int | None) -> dict:
    from .data.preprocess import Preprocessing

    manifest = Manifest.load(folder)
    for art in manifest.artifacts():
        art.check_unchanged()
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
        logits = run_artifact(path, x)
        if reference is None:
            reference = logits
        row = {"artifact": name, **verify.accuracy(logits, labels)}
        row["top1_agreement"] = float((logits.argmax(1) == reference.argmax(1)).mean())
        rows.append(row)
    for row in rows:
        row["delta_top1"] = row["top1"] - rows[0]["top1"]
    return {"reference": rows[0]["artifact"], "rows": rows}
