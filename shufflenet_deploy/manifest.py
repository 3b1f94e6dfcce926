"""The export manifest (`OUTDIR/manifest.json`, schema "sdeploy-export/1"): its one reader, and the model key.

`export/pipeline.py` writes the manifest; everything that reads one (bench, eval, sweep, predict, CI scripts)
goes through `Manifest.load`, which checks the schema and the status and answers the questions every consumer
used to re-derive: which model, at which input size, with how many classes and which options — hence its key and
its MACs — and which files it holds, with their sha256.

The model key names what was measured: the zoo name, then `@SIZE` (or `@HxW`) off 224 px
(`shufflenet_v1_g3_0.5x@64`). Results carry the key *and* the MACs from the manifest (which count the export's own
classes and options), so a later stage never recomputes MACs from a name at a default size and class count.

Torch-free (the base install, a board, an arm64 runner, reads manifests too); the preprocessing block is read
as a `Preprocessing` (data/preprocess.py: numpy, a base dependency) and the int8 table as `LayerRow`s.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .data.preprocess import Preprocessing
from .errors import UserError
from .fileio import read_json_bounded, sha256
from .int8_records import LayerRow, RepairRecord
from .model_meta import Options
from .sizes import canonical, size_str, to_json
from .validate import Fields, is_int

SCHEMA = "sdeploy-export/1"
DEFAULT_SIZE = 224
DEFAULT_CLASSES = 1000


def _validate(data: dict, where: str) -> None:
    """Every field a consumer reads has its one type and a sane value; an artifact's file stays inside the folder."""
    f = Fields(data, where, "the manifest is damaged or was edited; re-run `sdeploy export`")
    if not f.text("model"):
        raise f.fail("model", data["model"], "a model name")
    f.size("input_size", optional=False)
    f.count("num_classes", optional=True, low=1, high=10**6)
    names, classes = f.texts("class_names"), data.get("num_classes")
    if names is not None and classes is not None and len(names) != classes:
        raise f.fail("class_names", f"{len(names)} names", f"one per class (num_classes is {classes})")
    f.obj("onnx_int8")
    if f.obj("int8_repair") is not None:
        RepairRecord.from_dict(data["int8_repair"], f"{where}: int8_repair", f.hint)
    f.scalars("options")
    if f.obj("preprocessing") is not None:
        Preprocessing.read(data["preprocessing"], where, f.hint)
    layers = Fields(f.obj("int8_layers") or {}, f"{where}: int8_layers", f.hint)
    for i, row in enumerate(layers.items("rows") or []):
        LayerRow.from_dict(row, f"{where}: int8_layers.rows[{i}]")
    macs = Fields(f.obj("macs") or {}, f"{where}: macs", f.hint)
    macs.count("total", optional=True), macs.count("conv", optional=True)
    artifacts = f.obj("artifacts", optional=False)
    for name, entry in artifacts.items():
        if entry is None:  # a precision that was not exported
            continue
        a = Fields(entry, f"{where}: artifacts[{name!r}]", f.hint)
        file = a.text("file")
        if not file or file in (".", "..") or Path(file).name != file or "\\" in file:
            raise a.fail("file", file, "a file name inside the export folder")
        a.text("format", optional=True), a.text("precision", optional=True)
        digest = a.text("sha256", optional=True)
        if digest is not None and (len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest)):
            raise a.fail("sha256", digest, "64 hex digits")


def model_key(name: str, input_size=DEFAULT_SIZE) -> str:
    """The key results are paired and reported by (see the module docstring)."""
    return name if size_str(input_size) == str(DEFAULT_SIZE) else f"{name}@{size_str(input_size)}"


@dataclass(frozen=True)
class ModelInfo:
    """The model facts a benchmark result carries (bench.json's `model_info`), so the report never re-derives them:
    written from a manifest (`Manifest.model_info`) or from a bare .tflite's graph (bench/artifacts.py)."""

    key: str
    name: str
    macs_source: str  # where the MACs came from (the manifest's counter, the .tflite graph, or why none)
    input_size: int | tuple[int, int] | None = None
    num_classes: int | None = None
    options: Options = field(default_factory=dict)
    macs_total: int | None = None  # conv+FC MACs
    macs_conv: int | None = None
    params: int | None = None
    graph: str | None = None  # lowered or onnx2tf's plain output
    calibration: str | None = None  # the int8 calibration images
    converter: dict[str, str] = field(default_factory=dict)  # onnx2tf and tensorflow versions

    def to_dict(self) -> dict[str, Any]:
        out = {"key": self.key, "name": self.name, "input_size": None if self.input_size is None else
               to_json(self.input_size), "num_classes": self.num_classes, "options": dict(self.options),
               "macs": {"total": self.macs_total, "conv": self.macs_conv}, "params": self.params,
               "macs_source": self.macs_source}
        extra = {"graph": self.graph, "calibration": self.calibration, "converter": dict(self.converter) or None}
        return {**out, **{k: v for k, v in extra.items() if v is not None}}

    @classmethod
    def from_dict(cls, data: Any, where: str, hint: str | None = None) -> "ModelInfo":
        f = Fields(data, where, hint)
        size = f.size("input_size")
        macs = Fields(f.obj("macs") or {}, f"{where}: macs", hint)
        converter = f.obj("converter") or {}
        if not all(isinstance(v, str) for v in converter.values()):
            raise f.fail("converter", converter, "tool = version strings")
        options = f.scalars("options") or {}
        return cls(key=f.text("key"), name=f.text("name"), macs_source=f.text("macs_source", optional=True) or "",
                   input_size=None if size is None else canonical(size),
                   num_classes=f.count("num_classes", optional=True, low=1), options=dict(options),
                   macs_total=macs.count("total", optional=True), macs_conv=macs.count("conv", optional=True),
                   params=f.count("params", optional=True), graph=f.text("graph", optional=True),
                   calibration=f.text("calibration", optional=True), converter=dict(converter))


@dataclass(frozen=True)
class Artifact:
    """One file an export holds (manifest `artifacts[name]`)."""

    name: str  # the manifest's key: onnx, fp32, fp16, int8
    path: Path
    entry: dict

    @property
    def file(self) -> str:
        return self.entry["file"]

    @property
    def format(self) -> str:
        return self.entry.get("format") or Path(self.file).suffix.lstrip(".")

    @property
    def precision(self) -> str:
        return self.entry.get("precision") or self.name

    @property
    def sha256(self) -> str | None:
        return self.entry.get("sha256")

    def check_unchanged(self) -> None:
        """The file must still be the one the export verified (its sha256 in the manifest)."""
        if not self.path.is_file():
            raise UserError(f"manifest lists {self.file} but {self.path} does not exist", "re-run the export")
        if self.sha256 and sha256(self.path) != self.sha256:
            raise UserError(f"{self.path} no longer matches its manifest (sha256 differs): it was changed after "
                            "the export verified it", "re-run `sdeploy export`, or bench the .tflite file alone")


@dataclass(frozen=True)
class Manifest:
    folder: Path
    data: dict

    @classmethod
    def load(cls, folder: Path) -> "Manifest":
        """OUTDIR (or OUTDIR/manifest.json) -> Manifest; a wrong schema, a failed export or a broken file is a
        UserError naming the path."""
        folder = Path(folder)
        path = folder if folder.name == "manifest.json" else folder / "manifest.json"
        if not path.exists():
            raise UserError(f"{path.parent} is not an export folder (no manifest.json)", "run `sdeploy export` first")
        return cls.from_dict(read_json_bounded(path, what="export manifest"), path.parent, str(path))

    @classmethod
    def from_dict(cls, data: Any, folder: Path, where: str = "manifest") -> "Manifest":
        if not isinstance(data, dict):
            raise UserError(f"{where} is not an sdeploy export manifest", "re-run the export")
        if data.get("schema") != SCHEMA:
            raise UserError(f"{where} has schema {data.get('schema')!r}, this sdeploy reads {SCHEMA!r}",
                            "re-run the export with this sdeploy")
        if data.get("status", "ok") != "ok":
            raise UserError(f"{where} records a failed export ({data.get('error') or data.get('failed')})",
                            "fix the export first: its export_report.json says what failed")
        missing = [k for k in ("model", "input_size", "artifacts") if k not in data]
        if missing:
            raise UserError(f"{where} lacks {', '.join(missing)}", "re-run the export")
        _validate(data, where)
        return cls(Path(folder), data)

    # -- what was exported ---------------------------------------------------------------------------------
    @property
    def model(self) -> str:
        return str(self.data["model"])

    @property
    def input_size(self):
        """int (square) or (height, width)."""
        return canonical(self.data["input_size"])

    @property
    def num_classes(self) -> int:
        return int(self.data.get("num_classes") or DEFAULT_CLASSES)

    @property
    def options(self) -> Options:
        return dict(self.data.get("options") or {})

    @property
    def class_names(self) -> list[str] | None:
        return self.data.get("class_names")

    @property
    def preprocessing(self) -> Preprocessing:
        """How the model's inputs are prepared (checked when the manifest was read)."""
        if not isinstance(self.data.get("preprocessing"), dict):
            raise UserError(f"{self.folder / 'manifest.json'} has no preprocessing", "re-run `sdeploy export`")
        return Preprocessing.read(self.data["preprocessing"], str(self.folder / "manifest.json"))

    @property
    def checkpoint(self) -> str | None:
        return self.data.get("checkpoint")

    @property
    def key(self) -> str:
        return model_key(self.model, self.input_size)

    @property
    def macs(self) -> int | None:
        """conv+FC MACs at the export's own input size, classes and options (complexity.py `macs_total` for a zoo
        model, counted from the ONNX graph for any other: `macs.counted_by`)."""
        total = (self.data.get("macs") or {}).get("total")
        return int(total) if total is not None else None

    @property
    def macs_conv(self) -> int | None:
        conv = (self.data.get("macs") or {}).get("conv")
        return int(conv) if conv is not None else None

    @property
    def int8_layers(self) -> list[LayerRow]:
        """The per-layer int8 error table (export/int8_layers.py), [] for exports made before it existed."""
        rows = (self.data.get("int8_layers") or {}).get("rows") or []
        return [LayerRow.from_dict(row, f"manifest int8_layers.rows[{i}]") for i, row in enumerate(rows)]

    @property
    def int8_layers_measured_on(self) -> str:
        return str((self.data.get("int8_layers") or {}).get("images") or "the export's evaluation images")

    @property
    def int8_repair(self) -> RepairRecord | None:
        """What the int8 repair tried and applied (export/int8_repair.py), None when not recorded."""
        block = self.data.get("int8_repair")
        return None if block is None else RepairRecord.from_dict(block, "manifest int8_repair")

    def model_info(self) -> ModelInfo:
        """The model facts a benchmark result carries (so the report never re-derives them)."""
        params = self.data.get("params")
        return ModelInfo(key=self.key, name=self.model, input_size=self.input_size, num_classes=self.num_classes,
                         options=self.options, macs_total=self.macs, macs_conv=self.macs_conv,
                         params=params if is_int(params) and params >= 0 else None,
                         macs_source=f"export manifest ({self._macs_counted_by()}, conv+FC)", **self._how_made())

    def _how_made(self) -> dict[str, str | dict[str, str]]:
        """The graph, the int8 calibration and the converter, for a report's header (omitted where unknown)."""
        out: dict[str, str | dict[str, str]] = {}
        lowering = self.data.get("lowering")
        if isinstance(lowering, dict) and "applied" in lowering:
            out["graph"] = ("lowered (export/lower.py, what `sdeploy export` ships)" if lowering["applied"]
                            else "onnx2tf plain output (no lowering)")
        images = self.data.get("images")
        if isinstance(images, dict) and isinstance(images.get("calibration"), int) and "int8" in (
                self.data.get("artifacts") or {}):
            out["calibration"] = f"{images['calibration']} {images.get('source') or ''} images".replace("  ", " ")
        tools = self.data.get("tools")
        if isinstance(tools, dict):
            out["converter"] = {k: str(tools[k]) for k in ("onnx2tf", "tensorflow") if tools.get(k)}
        return out

    def _macs_counted_by(self) -> str:
        counted = (self.data.get("macs") or {}).get("counted_by")
        return "complexity.py" if not isinstance(counted, str) or counted.startswith("complexity.py") else \
            "the ONNX graph"

    # -- what it holds -------------------------------------------------------------------------------------
    def artifacts(self) -> list[Artifact]:
        return [Artifact(name, self.folder / entry["file"], entry)
                for name, entry in (self.data.get("artifacts") or {}).items() if entry and entry.get("file")]

    def tflite_artifacts(self) -> list[Artifact]:
        return [a for a in self.artifacts() if str(a.file).endswith(".tflite")]

    def artifact(self, precision: str) -> Artifact:
        for a in self.artifacts():
            if a.name == precision or (a.format == "tflite" and a.precision == precision):
                return a
        have = ", ".join(a.name for a in self.artifacts()) or "none"
        raise UserError(f"{self.folder} has no {precision} artifact (it has: {have})",
                        f"re-export with --precision including {precision}")
