"""Exports the analysis measures, cached by content: `sdeploy sweep`, `sdeploy predict` and Table 8 reuse them.

Exports are cached under $SDEPLOY_CACHE/sweep-exports/, keyed by a content hash of the model name, options, input
size, precisions, checkpoint sha, calibration set, tool versions, sdeploy version and the export code itself.
int8 of the (untrained) zoo models is calibrated on the bundled digits set rendered at the input size: for
latency, what the calibration images show barely matters (it sets scales, not the op graph). A failed export is
remembered beside the cache entry (`.failed.json`, with its kept log) so a resumed sweep does not spend minutes
failing again; `ExportFailed.log` names the log.

A caller exporting many models holds `export.tflite_convert.shared_worker()` around its loop (the sweep does): one
onnx2tf worker then serves every conversion, byte-identical to a fresh one's, without its start-up each time.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Callable

from ..export.pipeline import ExportFailed
from ..fileio import locked, sha256, write_json
from ..paths import sweep_exports
from ..sizes import as_hw, canonical, size_str, to_json

Progress = Callable[[str], None]
# the export code a plain (not lowered) export depends on: edits to lower.py do not invalidate its cache
PLAIN_EXPORT_FILES = ("pipeline.py", "onnx_export.py", "tflite_convert.py", "onnx2tf_worker.py",
                      "tflite_inspect.py", "verify.py")


def _code_hash(names: tuple[str, ...] | None = None) -> str:
    """Hash of the export code: a change to the export (e.g. a new lowering stage) invalidates the cache."""
    h = hashlib.sha256()
    folder = Path(__file__).resolve().parent.parent / "export"
    for path in sorted(folder.glob("*.py")):
        if names is not None and path.name not in names:
            continue
        h.update(path.name.encode())
        h.update(path.read_bytes())
    return h.hexdigest()[:16]


def tool_versions() -> dict[str, str | None]:
    """What a cached export was made with (part of its key): sdeploy and its conversion stack."""
    from .. import __version__
    from ..extras import versions

    return {"sdeploy": __version__, **versions(("torch", "onnx", "onnx2tf", "tensorflow", "ai-edge-litert", "numpy"))}


def export_key(name: str, input_size: int, precisions: tuple[str, ...], options: dict | None = None,
               checkpoint: Path | None = None, calib_count: int = 32, lowered: bool = False) -> str:
    data = {"model": name, "options": options or {}, "input_size": to_json(input_size), "precisions": sorted(precisions),
            "lowered": lowered,
            "checkpoint": sha256(Path(checkpoint)) if checkpoint else None, "calib": f"digits-{size_str(input_size)}",
            "calib_count": calib_count, "tools": tool_versions(),
            "export_code": _code_hash(None if lowered else PLAIN_EXPORT_FILES)}
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


def export_folder(name: str, input_size: int, precisions: tuple[str, ...], options: dict | None = None,
                  checkpoint: Path | None = None, calib_count: int = 32, lowered: bool = False) -> Path:
    """Where export_cached keeps (or would keep) this export."""
    key = export_key(name, input_size, precisions, options, checkpoint, calib_count, lowered)
    label = name or Path(checkpoint).stem  # a user's checkpoint: the model is named inside it
    return sweep_exports() / f"{label}@{size_str(input_size)}{'-lowered' if lowered else ''}-{key}"


def export_cached(name: str | None, input_size, precisions: tuple[str, ...], progress: Progress = lambda m: None,
                  options: dict | None = None, checkpoint: Path | None = None, calib_count: int = 32,
                  lowered: bool = False) -> Path:
    """The export folder (manifest.json + model_<p>.tflite) for this model, exporting it on a cache miss.

    `lowered=False` measures onnx2tf's plain graph (ExportRequest(optimize=False)); `lowered=True` the lowered
    graph `sdeploy export` ships.
    """
    input_size = canonical(input_size)
    folder = export_folder(name, input_size, precisions, options, checkpoint, calib_count, lowered)
    if _finished(folder):
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    # one writer per entry: fleet threads and parallel processes may want the same export at the same time
    with locked(folder.with_name(folder.name + ".lock")):
        if _finished(folder):  # made while this caller waited
            return folder
        _export(name, input_size, precisions, progress, options, checkpoint, calib_count, lowered, folder)
    return folder


def _finished(folder: Path) -> bool:
    """True when FOLDER holds a finished export; raises the remembered failure of an identical earlier try."""
    if (folder / "manifest.json").exists():
        return True
    failed = folder.with_name(folder.name + ".failed.json")
    if failed.exists():  # the same export with the same code and tools failed before: do not spend minutes again
        record = json.loads(failed.read_text())
        raise ExportFailed(record["error"] + " (cached failure)", f"delete {failed} to retry"
                           + (f"; its log: {record['log']}" if record.get("log") else ""),
                           log=Path(record["log"]) if record.get("log") else None)
    return False


def _export(name, input_size, precisions, progress, options, checkpoint, calib_count, lowered, folder) -> None:
    from ..export.pipeline import ExportRequest, export

    failed = folder.with_name(folder.name + ".failed.json")
    calib = None
    if "int8" in precisions:
        from ..data.digits import ensure_digits

        progress(f"{name}: rendering calibration digits at {size_str(input_size)}px")
        calib = ensure_digits(max(as_hw(input_size))) / "calib"
    try:
        export(ExportRequest(model=name, checkpoint=checkpoint, input_size=input_size, precisions=tuple(precisions),
                             calib=calib, calib_count=calib_count, verify_count=8, outdir=folder, force=True,
                             model_options=dict(options or {}), optimize=lowered),
               progress=lambda m: progress(f"{name}@{size_str(input_size)}: {m}"))
    except ExportFailed as err:  # the pipeline kept its report (and log) in `folder`
        log = str(err.log) if err.log and Path(err.log).exists() else None
        write_json(failed, {"error": err.message, "model": name, "input_size": to_json(input_size), "log": log})
        raise ExportFailed(err.message, f"see {log}" if log else err.hint, report=err.report, log=err.log) from None
