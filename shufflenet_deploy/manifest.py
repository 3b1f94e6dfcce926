"""The export manifest (`OUTDIR/manifest.json`, schema "sdeploy-export/1"): its one reader, and the model key.

`export/pipeline.py` writes the manifest; everything that reads one (bench, eval, sweep, predict, CI scripts)
goes through `Manifest.load`, which checks the schema and the status and answers the questions every consumer
used to re-derive: which model, at which input size, with how many classes and which options — hence its key and
its MACs — and which files it holds, with their sha256.

The model key names what was measured: the zoo name, then `@SIZE` (or `@HxW`) off 224 px
(`shufflenet_v1_g3_0.5x@64`). Results carry the key *and* the MACs from the manifest (which count the export's own
classes and options), so a later stage never recomputes MACs from a name at a default size and class count.

Torch-free and numpy-free: the base install (a board, an arm64 runner) reads manifests too.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import UserError
from .fileio import sha256
from .sizes import canonical, size_str

SCHEMA = "sdeploy-export/1"
DEFAULT_SIZE = 224
DEFAULT_CLASSES = 1000


def model_key(name: str, input_size=DEFAULT_SIZE) -> str:
    """The key results are paired and reported by (see the module docstring)."""
    return name if size_str(input_size) == str(DEFAULT_SIZE) else f"{name}@{size_str(input_size)}"


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
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            raise UserError(f"{path.parent} is not an export folder (no manifest.json)",
                            "run `sdeploy export` first") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise UserError(f"{path} is not valid JSON ({err})", "re-run the export") from None
        return cls.from_dict(data, path.parent, str(path))

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
    def options(self) -> dict:
        return dict(self.data.get("options") or {})

    @property
    def class_names(self) -> list[str] | None:
        return self.data.get("class_names")

    @property
    def preprocessing(self) -> dict:
        return self.data["preprocessing"]

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
    def int8_layers(self) -> list[dict]:
        """The per-layer int8 error table (export/int8_layers.py), [] for exports made before it existed."""
        return list((self.data.get("int8_layers") or {}).get("rows") or [])

    @property
    def int8_repair(self) -> dict | None:
        """What the int8 repair tried and applied (export/int8_repair.py), None when not recorded."""
        return self.data.get("int8_repair")

    def model_info(self) -> dict:
        """The model facts a benchmark result carries (so the report never re-derives them)."""
        return {"key": self.key, "name": self.model, "input_size": self.data["input_size"],
                "num_classes": self.num_classes, "options": self.options,
                "macs": {"total": self.macs, "conv": self.macs_conv}, "params": self.data.get("params"),
                "macs_source": f"export manifest ({self._macs_counted_by()}, conv+FC)"}

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
