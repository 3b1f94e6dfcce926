"""What `sdeploy bench` measures: the TFLite files of an export folder (via its manifest) or a bare .tflite file.

A model read through its export manifest carries the manifest's key, model facts and MACs, and its file is
checked against the manifest's sha256 before it is measured. A bare .tflite file (no manifest beside it) is
named from its file name (`model_int8.tflite` -> model, int8) and its MACs are counted from the graph itself
(conv + FC ops, tflite/ops.py), with that said in `model_info["macs_source"]`. Reading a graph needs
ai-edge-litert's schema (tflite/graph.py); with tflite-runtime alone a bare file's MACs are unknown (the reason
is its macs_source) and --input's shape is left to the runner to check.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..errors import UserError
from ..manifest import Manifest, ModelInfo
from ..sizes import canonical
from ..precisions import FILE_NAMES, ONNX_ROWS



@dataclass
class ModelArtifact:
    path: Path
    model: str
    precision: str
    key: str | None = None  # manifest.model_key; None for a bare file until described
    model_info: ModelInfo | None = field(default=None, repr=False)
    sha256: str | None = None  # the manifest's, when there is one

    @property
    def macs(self) -> int | None:
        return self.model_info.macs_total if self.model_info else None


RUNTIMES = ("tflite", "onnxruntime", "all")


def find_models(artifact: Path, runtime: str = "tflite") -> list[ModelArtifact]:
    """A .tflite file or an export folder with manifest.json -> the models to benchmark: its TFLite files
    (runtime "tflite"), its verified model.onnx under ONNX Runtime as precision "onnx" and, when exported, its
    model_int8.onnx as "onnx_int8" ("onnxruntime"), or all of them, the ONNX files last ("all")."""
    if runtime not in RUNTIMES:
        raise UserError(f"unknown runtime {runtime!r}", f"use one of {', '.join(RUNTIMES)}")
    artifact = Path(artifact)
    if runtime == "tflite":
        return _tflite_models(artifact)
    folder = artifact if artifact.is_dir() else artifact.parent
    manifest = manifest_in(folder) if artifact.is_dir() else None
    if manifest is None:
        raise UserError(f"--runtime {runtime} needs an export folder (its model.onnx is what ONNX Runtime runs): "
                        f"{artifact} is not one", "pass the folder `sdeploy export` wrote")
    onnx = [a for a in manifest.artifacts() if a.name in ONNX_ROWS]  # model.onnx, then model_int8.onnx
    if not onnx:
        raise UserError(f"{folder / 'manifest.json'} lists no ONNX artifact", "re-export with the onnx precision")
    for a in onnx:
        a.check_unchanged()
    models = [ModelArtifact(a.path, manifest.model, a.name, manifest.key, manifest.model_info(), a.sha256)
              for a in sorted(onnx, key=lambda a: ONNX_ROWS.index(a.name))]
    return [*(_tflite_models(artifact) if runtime == "all" else []), *models]


def manifest_in(folder: Path) -> Manifest | None:
    """FOLDER's manifest, None when it has none. A manifest.json that is a broken symbolic link is an error: taken
    for no manifest, the folder's files would be measured without the checks their manifest holds."""
    path = Path(folder) / "manifest.json"
    if path.is_symlink() and not path.exists():
        raise UserError(f"{path} is a broken symbolic link", "re-run `sdeploy export`, or fix the link")
    return Manifest.load(folder) if path.exists() else None


def _tflite_models(artifact: Path) -> list[ModelArtifact]:
    artifact = Path(artifact)
    if not artifact.exists():
        raise UserError(f"no such artifact: {artifact}", "pass a .tflite file or an export folder")
    folder = artifact if artifact.is_dir() else artifact.parent
    manifest = manifest_in(folder)
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
    # a name that is not valid UTF-8 (bytes from another system) becomes printable text: it is written to JSON/CSV
    stem = path.stem.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    if stem in FILE_NAMES:
        return ModelArtifact(path, stem, stem)
    for prec in FILE_NAMES:
        for sep in ("_", "-", "."):
            if stem.endswith(sep + prec):
                return ModelArtifact(path, stem[: -len(prec) - 1], prec)
    return ModelArtifact(path, stem, default_precision)


def describe_bare(m: ModelArtifact) -> ModelArtifact:
    """A .tflite without a manifest: key = its name, MACs counted from its graph. A file that is not a TFLite
    model is refused here, on this machine, rather than by the device after the push."""
    m.key = m.model
    try:
        from ..tflite.graph import Graph
        from ..tflite.ops import model_ops
    except UserError as err:  # no schema to read the graph with (tflite-runtime): measure it, MACs unknown
        m.model_info = ModelInfo(m.key, m.model, macs_source=f"not counted: {err.message}")
        return m
    try:
        graph = Graph.load(m.path)
        macs = sum(op.macs for op in model_ops(graph.model)) or None
        shape = graph.shape(graph.sg.inputs[0])
    except Exception as err:  # flatbuffers raises struct.error, IndexError, ... on a file that is not one
        raise UserError(f"{m.path} is not a TFLite model ({type(err).__name__} reading its flatbuffer)",
                        "pass a .tflite file written by a TFLite converter, or an export folder") from None
    size = shape[1] if len(shape) == 4 and shape[1] == shape[2] else (shape[1:3] if len(shape) == 4 else None)
    m.model_info = ModelInfo(m.key, m.model, input_size=canonical(size) if size is not None else None,
                             macs_total=macs, macs_source="counted from the .tflite graph (conv + FC ops; no manifest "
                                                          "beside it)")
    return m


def check_input(path: Path, models: list[ModelArtifact]) -> None:
    """--input must be a float .npy of every model's input shape (with or without the batch axis): checked here,
    so a wrong file is an input error (exit 2), not a device fault after the push."""
    import numpy as np

    from ..fileio import regular_file

    regular_file(path, "--input", max_bytes=1 << 30)
    try:
        x = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as err:
        raise UserError(f"--input {path} is not a .npy array ({str(err).splitlines()[0][:80]})",
                        "save the preprocessed NHWC float32 input with numpy.save") from None
    try:
        from ..tflite.graph import Graph
    except UserError:  # no schema here (tflite-runtime): the runner checks the shape on the device
        return
    for m in models:
        graph = Graph.load(m.path)
        shape = graph.shape(graph.sg.inputs[0])
        got = [1, *x.shape] if x.ndim == len(shape) - 1 else list(x.shape)
        if got != shape:
            raise UserError(f"--input {path} has shape {list(x.shape)}, {m.path.name} takes {shape} (NHWC)",
                            "preprocess the input to the model's size, as its manifest says")
