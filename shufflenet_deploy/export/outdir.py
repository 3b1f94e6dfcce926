"""The export's output folder: who may be replaced (--force replaces only an earlier export: our schema, only our
files), the verified temp folder renamed onto it whole, and what a failed export keeps (its report and log)."""
from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

from ..errors import UserError
from ..fileio import current_umask, read_json_bounded, temp_dir, write_json
from ..manifest import SCHEMA


def disk_nearly_full(outdir: Path) -> bool:
    """Some writers (numpy's tofile) report a full disk as a short write with no errno."""
    folder = outdir.resolve().parent
    while not folder.exists():
        folder = folder.parent
    return shutil.disk_usage(folder).free < 64 * 2**20


def check_outdir(outdir: Path, force: bool) -> None:
    """OUTDIR must not exist, or (with --force) be a folder an earlier export wrote: --force never replaces a
    user's file, a device node or a folder sdeploy did not make."""
    if not (outdir.exists() or outdir.is_symlink()):
        return
    if not outdir.is_dir() or outdir.is_symlink():
        raise UserError(f"output {outdir} exists and is not a folder", "choose another -o (a new folder's path)")
    if not force:
        raise UserError(f"output folder {outdir} already exists", "pass --force to replace it or choose another -o")
    foreign = _not_an_export(outdir)
    if foreign:
        raise UserError(f"output folder {outdir} was not written by `sdeploy export` ({foreign}): --force "
                        "replaces only an earlier export", "choose another -o")


# what an export folder may hold: the export's own files, and the bench-DEVICE folders `sdeploy bench` writes there
_EXPORT_FILES = re.compile(r"^(manifest\.json|export_report\.json|conversion\.log"
                           r"|model(_[A-Za-z0-9]+)?\.(onnx|tflite))$")


def _not_an_export(folder: Path) -> str | None:
    """Why FOLDER is not an earlier export (None when it is): its manifest or failure report must be ours (our
    schema, readable), and every entry one an export or a bench of it writes. A file merely named manifest.json
    beside someone's project (a web app with its .git) is not enough."""
    doc = next((folder / n for n in ("manifest.json", "export_report.json") if (folder / n).is_file()), None)
    if doc is None:
        return "no manifest.json or export_report.json"
    try:
        data = read_json_bounded(doc, what="export manifest")
    except UserError as err:
        return f"its {doc.name} is not one: {err.message}"
    schema = data.get("schema") if isinstance(data, dict) else None
    if schema != SCHEMA:
        return f"its {doc.name} is not an sdeploy export's (schema {schema!r})"
    for entry in sorted(folder.iterdir()):
        own_bench = entry.is_dir() and not entry.is_symlink() and entry.name.startswith("bench-")
        if not (own_bench or (entry.is_file() and not entry.is_symlink() and _EXPORT_FILES.match(entry.name))):
            return f"it holds {entry.name!r}, which no export writes"
    return None


def promote(tmp: Path, outdir: Path, force: bool) -> None:
    """Rename the verified temp folder onto OUTDIR (replacing an earlier export only with --force)."""
    final = temp_dir(outdir.parent, outdir.name, "final")
    old = None
    try:
        os.chmod(final, 0o777 & ~current_umask())  # mkdtemp makes 0700
        for item in tmp.iterdir():
            shutil.move(str(item), final / item.name)
        if outdir.exists() and force:
            check_outdir(outdir, force)  # still an earlier export (not swapped for a file meanwhile)
            old = temp_dir(outdir.parent, outdir.name, "old")
            os.replace(outdir, old / "export")
        os.replace(final, outdir)
    finally:
        shutil.rmtree(final, ignore_errors=True)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)


def keep_report(tmp: Path, outdir: Path, manifest: dict, failed: dict, force: bool) -> None:
    report = temp_dir(outdir.parent, outdir.name, "report")
    try:
        manifest = {**manifest, "status": "failed", "failed": list(failed) or manifest.get("failed", [])}
        write_json(report / "export_report.json", manifest)
        if (tmp / "conversion.log").exists():
            shutil.copy(tmp / "conversion.log", report / "conversion.log")
        promote(report, outdir, force)
    finally:
        shutil.rmtree(report, ignore_errors=True)
