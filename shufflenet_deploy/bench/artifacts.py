"""What `sdeploy bench` measures: the TFLite files of an export folder (via its manifest) or a bare .tflite file.

A model read through its export manifest carries the manifest's key, model facts and MACs, and its file is
checked against the manifest's sha256 before it is measured. A bare .tflite file (no manifest beside it) is
named from its file name (`model_int8.tflite` -> model, int8) and its MACs are counted from the graph itself
(conv + FC ops, tflite/ops.py), with that said in `model_info["macs_source"]`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..errors import UserError
from ..manifest import Manifest

PRECISIONS = ("fp32", "fp16", "int8", "int16", "int16x8", "dynamic", "uint8")


@dataclass
class ModelArtifact:
    path: Path
    model: str
    precision: str
    key: str | None = None  # manifest.model_key; None for a bare file until described
    model_info: dict | None = field(default=None, repr=False)
    sha256: str | None = None  # the manifest's, when there is one

    @property
    def macs(self) -> int | None:
        return ((self.model_info or {}).get("macs") or {}).get("total")


def find_models(artifact: Path) -> list[ModelArtifact]:
    """A .tflite file or an export folder with manifest.json -> the TFLite models to benchmark."""
    artifact = Path(artifact)
    if not artifact.exists():
        raise UserError(f"no such artifact: {artifact}", "pass a .tflite file or an export folder")
    folder = artifact if artifact.is_dir() else artifact.parent
    manifest = Manifest.load(folder) if (folder / "manifest.json").exists() else None
    if artifact.is_dir():
        if manifest is None:
            tflites = sorted(artifact.glob("*.tflite"))
            if not tflites:
                raise UserError(f"{artifact} has neither manifest.json nor .tflite files",
                                "pass a .tflite file or an export folder")
            return [describe_bare(guess_from_name(p)) for p in tflites]
        models = manifest_models(manifest)
        if not models:
            raise UserError(f"{folder / 'manifest.json'} lists no TFLite artifacts")
        return models
    if artifact.suffix != ".tflite":
        raise UserError(f"{artifact} is not a .tflite file", "pass a .tflite file or an export folder")
    for m in manifest_models(manifest) if manifest else []:
        if m.path.resolve() == artifact.resolve():
            return [m]
    return [describe_bare(guess_from_name(artifact))]


def manifest_models(manifest: Manifest) -> list[ModelArtifact]:
    """Every TFLite artifact of the export, each checked against the manifest's sha256."""
    out = []
    for art in manifest.tflite_artifacts():
        art.check_unchanged()
        out.append(ModelArtifact(art.path, manifest.model, art.precision, manifest.key, manifest.model_info(),
                                 art.sha256))
    return out


def guess_from_name(path: Path, default_precision: str = "fp32") -> ModelArtifact:
    """model_int8.tflite -> (model, int8); names without a precision suffix are taken as fp32."""
    path = Path(path)
    stem = path.stem
    if stem in PRECISIONS:
        return ModelArtifact(path, stem, stem)
    for prec in PRECISIONS:
        for sep in ("_", "-", "."):
            if stem.endswith(sep + prec):
                return ModelArtifact(path, stem[: -len(prec) - 1], prec)
    return ModelArtifact(path, stem, default_precision)


def describe_bare(m: ModelArtifact) -> ModelArtifact:
    """A .tflite without a manifest: key = its name, MACs counted from its graph (None if it cannot be read)."""
    m.key = m.model
    macs = None
    reason = None
    try:
        from ..tflite.ops import model_ops

        macs = sum(op.macs for op in model_ops(m.path)) or None
    except Exception as err:  # an unreadable file fails later, with the runner's own message
        reason = f"the .tflite graph could not be read ({type(err).__name__})"
    m.model_info = {"key": m.key, "name": m.model, "input_size": None, "num_classes": None, "options": {},
                    "macs": {"total": macs, "conv": None}, "params": None,
                    "macs_source": reason or "counted from the .tflite graph (conv + FC ops; no manifest beside it)"}
    return m
