"""`sdeploy export`: checkpoint -> ONNX -> TFLite fp32/fp16/int8, each step verified, one manifest.

Everything is built in a hidden temp folder beside OUTDIR and renamed to OUTDIR only when every artifact
passed its parity check. A parity failure leaves OUTDIR holding just `export_report.json` (status "failed",
naming the worst artifact and sample) and the conversion log — never a model file that was not verified.

The stages: check the request and OUTDIR (outdir.py: --force replaces only an earlier export), open the source
(sources.py), gather images (images.py: real calibration images only; synthetic ones, said in the manifest, for
fp32/fp16 parity when there are none), ONNX, onnx2tf, lowering, parity, accuracy, the int8 table and repair,
the manifest, and the rename (outdir.py).
"""
from __future__ import annotations

import dataclasses
import datetime
import errno
import platform
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from ..data.folders import ImageSet, check_classes
from ..errors import UserError
from ..extras import versions
from ..fileio import check_writable, remove_stale, sha256, temp_dir, write_json
from ..int8_records import Int8Target, LayerRow, RepairRecord
from ..manifest import SCHEMA, Manifest
from ..precisions import EXPORT as EXPORT_PRECISIONS
from ..sizes import parse as parse_size, to_json
from . import int8_layers, verify
from .images import MIN_CALIBRATION, Images, load_images, validation_set
from .outdir import check_outdir, disk_nearly_full, keep_report, promote

LAYER_IMAGES = 64  # images the per-layer int8 table is measured on (two interpreters without XNNPACK)


@dataclass
class ExportRequest:
    model: str | None = None
    checkpoint: Path | None = None
    input_size: int | tuple[int, int] | None = None  # a square side or (height, width); sizes.parse
    precisions: tuple[str, ...] = ("fp32", "int8")
    calib: Path | None = None
    calib_count: int = 100
    verify_count: int = 32
    val: Path | None = None  # labelled ImageFolder tree for accuracy numbers
    outdir: Path = Path("export")
    force: bool = False
    model_options: dict = field(default_factory=dict)
    module: str | None = None  # path/to/net.py:factory (sources.py)
    preprocessing: dict | None = None  # mean/std/scale/channel_order given by the user, for models that carry none
    seed: int = 0
    optimize: bool = True  # lower.py: rewrite the graph for XNNPACK; False = onnx2tf's plain output
    onnx_int8: bool = False  # also write model_int8.onnx (ONNX Runtime's static QDQ int8; onnx_int8.py)
    # Int8Target.parse text; "auto" = the default target for a trained checkpoint, none for random init
    int8_target: str | None = "auto"


class _Int8Missed(Exception):
    """No int8 attempt met the target: what the kept report needs (the repair record, the plain int8's rows)."""

    def __init__(self, record: RepairRecord, rows: list[LayerRow], target_text: str):
        super().__init__(target_text)
        self.record, self.rows, self.target_text = record, rows, target_text
        self.manifest_part = {"int8_repair": record.to_dict(),
                              "int8_layers": _layers_block(rows, record.evaluated_on, record.layer_images)}


class ExportFailed(UserError):
    """Conversion or parity failed: the report (and the conversion log, if any) was kept, the artifacts were not.

    `report` and `log` are the kept files' paths (None when absent), so callers never parse the message."""

    def __init__(self, message: str, hint: str | None = None, *, report: Path | None = None,
                 log: Path | None = None):
        super().__init__(message, hint)
        self.report, self.log = report, log


def export(req: ExportRequest, progress: Callable[[str], None] = lambda msg: None) -> Manifest:
    """Run the whole export; return its manifest (OUTDIR/manifest.json, read back by the strict reader)."""
    precisions = _check_request(req)
    started = time.perf_counter()
    outdir = Path(req.outdir)
    for stale in remove_stale(outdir.parent, outdir.name):
        progress(f"removed {stale.name}, left by an interrupted export")
    progress("loading model")
    source = _load(req)
    meta = source.meta
    if not req.optimize and source.zoo:
        from .lower import check_plain_export

        check_plain_export(source.module, meta)
    pre = meta.preprocessing
    val = validation_set(req.val, meta)  # a class mismatch is found now, not after the conversion
    if val is not None:
        check_classes(val, meta.class_names, meta.model, meta.num_classes)
    images = load_images(req.calib, meta, pre, precisions, verify_count=req.verify_count,
                         calib_count=req.calib_count, seed=req.seed, progress=progress)

    tmp = temp_dir(outdir.parent, outdir.name, "tmp")
    try:
        try:
            manifest = _build(req, source, pre, images, precisions, tmp, progress, val)
        except _Int8Missed as missed:
            report = {"schema": SCHEMA, "status": "failed", "model": meta.model,
                      "input_size": to_json(meta.input_size), "failed": ["int8"], **missed.manifest_part}
            keep_report(tmp, outdir, report, {}, req.force)
            worst = "; ".join(int8_layers.summary_line(r) for r in int8_layers.worst(missed.rows, 3))
            why = "; ".join(filter(None, [missed.record.undecided, f"worst layers: {worst}"]))
            raise ExportFailed(f"no int8 attempt met the target {missed.target_text} (tried "
                               f"{', '.join(a.step for a in missed.record.attempts)}); {why}",
                               f"report kept in {outdir / 'export_report.json'}; pass --int8-target none to ship the "
                               f"plain int8 anyway, or export fp32", report=outdir / "export_report.json",
                               log=outdir / "conversion.log") from None
        except UserError as err:  # a conversion that failed: keep its log where the user can read it
            if not (tmp / "conversion.log").exists():
                raise
            report = {"schema": SCHEMA, "status": "failed", "model": meta.model,
                      "input_size": to_json(meta.input_size), "failed": ["convert"], "error": err.message}
            keep_report(tmp, outdir, report, {}, req.force)
            raise ExportFailed(err.message, f"conversion log kept in {outdir / 'conversion.log'}",
                               report=outdir / "export_report.json", log=outdir / "conversion.log") from None
        if val is not None:
            progress(f"measuring accuracy on {val.root}")
            manifest["accuracy"] = _accuracy(tmp, manifest, source, pre, val)
        manifest["timings"]["total_s"] = round(time.perf_counter() - started, 2)
        failed = {k: a["parity"] for k, a in manifest["artifacts"].items() if a.get("parity") and not a["parity"]["passed"]}
        if failed:
            keep_report(tmp, outdir, manifest, failed, req.force)
            name, parity = next(iter(failed.items()))
            raise ExportFailed(f"{name} artifact failed parity vs {parity['reference']}: "
                               f"{'; '.join(parity['failures'])}, worst on held-out image #{parity['worst_sample']}",
                               f"report kept in {outdir / 'export_report.json'}",
                               report=outdir / "export_report.json",
                               log=outdir / "conversion.log" if (outdir / "conversion.log").exists() else None)
        write_json(tmp / "manifest.json", manifest)
        written = Manifest.from_dict(manifest, outdir, str(outdir / "manifest.json"))  # what readers will see
        promote(tmp, outdir, req.force)
        return written
    except OSError as err:
        if err.errno in (errno.ENOSPC, errno.EDQUOT) or disk_nearly_full(outdir):
            raise UserError(f"the disk holding {outdir.resolve().parent} is full: the export was not written",
                            "free some space (an export needs a few times its model's size) and rerun") from None
        raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# -- checks and inputs ---------------------------------------------------------------------------------------
def _check_request(req: ExportRequest) -> list[str]:
    precisions = [p.strip() for p in req.precisions if p.strip()]
    unknown = [p for p in precisions if p not in EXPORT_PRECISIONS]
    if unknown or not precisions:
        raise UserError(f"unknown precision {unknown[0] if unknown else '(none)'!r}",
                        f"choose from {', '.join(EXPORT_PRECISIONS)}, e.g. --precision fp32,int8")
    if req.input_size is not None:
        req.input_size = parse_size(req.input_size)
    if req.calib_count < 1 or req.verify_count < 1:
        bad = "--calib-count" if req.calib_count < 1 else "verify_count"
        raise UserError(f"{bad} must be at least 1", "e.g. --calib-count 100")
    if "int8" in precisions and req.calib_count < MIN_CALIBRATION:
        raise UserError(f"--calib-count {req.calib_count} is too few images to calibrate int8 "
                        f"(at least {MIN_CALIBRATION})", "use --calib-count 100 (the default)")
    if req.int8_target not in (None, "auto"):
        Int8Target.parse(req.int8_target)  # a typo is refused before anything runs
    if req.onnx_int8 and "int8" not in precisions:
        raise UserError("--onnx-int8 is calibrated and judged like the TFLite int8 file, which this export does "
                        "not make", "add int8 to --precision (e.g. --precision fp32,int8 --onnx-int8)")
    outdir = Path(req.outdir)
    check_outdir(outdir, req.force)
    check_writable(outdir, "output folder")
    try:
        outdir.resolve().parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise UserError(f"output folder {outdir} cannot be created: {err.strerror}", "choose another -o") from None
    if req.checkpoint is not None and Path(req.checkpoint).is_dir():
        raise UserError(f"checkpoint {req.checkpoint} is a folder, not a checkpoint file",
                        "give the .pt/.pth file inside it")
    if req.checkpoint is not None and not Path(req.checkpoint).is_file():
        raise UserError(f"checkpoint {req.checkpoint} does not exist", "check the path")
    return ["onnx"] + [p for p in EXPORT_PRECISIONS if p in precisions]


def _load(req: ExportRequest):
    from .sources import open_source

    return open_source(req.model, req.checkpoint, module=req.module, input_size=req.input_size,
                       preprocessing=req.preprocessing, options=req.model_options)


def _accuracy(tmp: Path, manifest: dict, source, pre, val: ImageSet) -> dict:

    check_classes(val, manifest["class_names"], manifest["model"])
    x = pre.load_batch(val.paths)
    table = verify.accuracy_table(tmp, manifest["artifacts"], x, val.labels, source.reference(x))
    return {"data": str(val.root), "samples": len(val), **table.to_dict()}


# -- the build -----------------------------------------------------------------------------------------------
def _build(req, source, pre, images: Images, precisions, tmp: Path, progress, val: ImageSet | None = None) -> dict:
    from . import lower, onnx_export, tflite_convert, tflite_inspect

    meta = source.meta
    timings: dict[str, float] = {}
    log = tmp / "conversion.log"
    artifacts: dict[str, dict] = {}

    t0 = time.perf_counter()
    progress("exporting ONNX")
    onnx_path = tmp / "model.onnx"
    lowering, macs, params = _write_onnx(req, source, onnx_path, tmp)
    reference_logits = source.reference(images.held_out)
    onnx_logits = verify.run_onnx(onnx_path, images.held_out)
    artifacts["onnx"] = {
        "file": "model.onnx", "format": "onnx", "opset": _opset(onnx_path),
        "ops": onnx_export.onnx_op_histogram(onnx_path),
        "parity": verify.check(verify.compare(reference_logits, onnx_logits, reference_name=source.reference_name),
                               verify.THRESHOLDS["onnx"]).to_dict(),
    }
    timings["onnx_s"] = round(time.perf_counter() - t0, 2)

    tflite_precisions = [p for p in precisions if p != "onnx"]
    t0 = time.perf_counter()
    progress(f"converting with onnx2tf ({', '.join(tflite_precisions)})")
    calib_nhwc = None if images.calibration is None else images.calibration.transpose(0, 2, 3, 1)
    converted = tflite_convert.convert(onnx_path, tmp / "work", precisions=tflite_precisions,
                                       calibration_nhwc=calib_nhwc if "int8" in tflite_precisions else None,
                                       sample_images_nhwc01=images.held_out_pixels, log=log,
                                       onnx2tf_options=lower.ONNX2TF_OPTIONS if req.optimize else None)
    timings.update({k: round(v, 2) for k, v in converted.timings.items()})
    timings["convert_s"] = round(time.perf_counter() - t0, 2)

    t0 = time.perf_counter()
    fp32_logits = None
    int8_blocks: dict = {}
    # the images both int8 files are judged on, loaded once
    evaluation = _evaluation_images(pre, images, val) if "int8" in tflite_precisions else None
    for precision in tflite_precisions:
        progress(f"verifying {precision} with LiteRT")
        final = tmp / f"model_{precision}.tflite"
        shutil.move(converted.files[precision], final)
        if req.optimize:
            lowering["tflite"][precision] = lower.lower_tflite(final, final)
        if precision == "int8":
            reference = _fp32_reference(tmp, converted, req.optimize)
            blocks, applied_lowering = _int8_quality(req, source.trained, pre, images, evaluation, reference, final,
                                                     tmp / "work", log, progress)
            int8_blocks.update(blocks)
            if req.optimize and applied_lowering:
                lowering["tflite"]["int8"] = applied_lowering
        logits = verify.run_tflite(final, images.held_out)
        if precision == "fp32":
            fp32_logits = logits
            parity = verify.compare(onnx_logits, logits, reference_name="onnx")
        else:
            reference = fp32_logits if fp32_logits is not None else onnx_logits
            parity = verify.compare(reference, logits, reference_name="fp32" if fp32_logits is not None else "onnx")
        io = tflite_inspect.io_details(final)
        if precision == "int8" and any(t.dtype != "int8" for t in io.inputs + io.outputs):
            raise UserError("the int8 conversion produced a model that is not full-integer (float inputs or "
                            "outputs)", "this is a bug in the conversion: report it with the model name")
        artifacts[precision] = {
            "file": final.name, "format": "tflite", "precision": precision,
            **io.to_dict(), **tflite_inspect.inspect_tflite(final).to_dict(),
            "parity": verify.check(parity, verify.THRESHOLDS[precision]).to_dict(),
        }
    timings["verify_s"] = round(time.perf_counter() - t0, 2)
    if req.onnx_int8:
        t0 = time.perf_counter()
        progress("quantizing model.onnx for ONNX Runtime (static QDQ int8)")
        int8_blocks["onnx_int8"], entry = _onnx_int8(req, source.trained, images, evaluation, tmp, onnx_logits)
        artifacts.update({"onnx_int8": entry} if entry else {})
        timings["onnx_int8_s"] = round(time.perf_counter() - t0, 2)
    shutil.rmtree(tmp / "work", ignore_errors=True)

    for name, art in artifacts.items():
        path = tmp / art["file"]
        art["size_bytes"] = path.stat().st_size
        art["sha256"] = sha256(path)

    manifest = {
        "schema": SCHEMA,
        "status": "ok",
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "model": meta.model,
        "options": dict(meta.options),
        "checkpoint": str(req.checkpoint) if req.checkpoint else None,
        "source": source.notes,
        "num_classes": meta.num_classes,
        "class_names": list(meta.class_names) if meta.class_names is not None else None,
        "input_size": to_json(meta.input_size),
        "layout": {"onnx": "NCHW", "tflite": "NHWC"},
        "preprocessing": pre.to_dict(),
        **({"preprocessing_from": source.preprocessing_from} if source.preprocessing_from else {}),
        "int8_io": "int8 input and output; quantize inputs with inputs[0].quantization (q = round(x/scale)+zero_point) "
                   "after preprocessing, dequantize logits with outputs[0].quantization",
        "macs": macs,
        "params": params,
        "images": {"source": images.source, "folder": str(images.image_set.root) if images.image_set else None,
                   "calibration": len(images.calib_files) if "int8" in precisions else 0,
                   "held_out": int(len(images.held_out)),
                   "skipped": [list(s) for s in images.image_set.skipped] if images.image_set else []},
        "artifacts": artifacts,
        "lowering": lowering,
        **int8_blocks,
        "tools": {"python": platform.python_version(), **versions()},
        "timings": timings,
        "log": log.name,
    }
    return manifest


def _write_onnx(req, source, onnx_path: Path, tmp: Path) -> tuple[dict, dict, int]:
    """model.onnx, and (lowering report, MACs, params): a zoo model lowered by module, any other by pattern."""
    from . import lower, onnx_export

    if source.zoo:
        from ..complexity import count_complexity

        export_model, lowering = source.module, {"applied": False}
        if req.optimize:  # the deploy copy is exported; parity stays against the original model
            export_model, torch_report = lower.lower_torch(source.module, source.meta.input_size)
            lowering = {"applied": True, "torch": torch_report, "tflite": {}}
        onnx_export.export_onnx(export_model, source.meta.input_size, onnx_path)
        if req.optimize:
            lowering["onnx"] = lower.lower_onnx(onnx_path)
        meta = source.meta
        cx = count_complexity(meta.model, input_size=meta.input_size, num_classes=meta.num_classes,
                              **meta.options)  # equal to graph_macs on every zoo entry (tested)
        return lowering, {"conv": cx.macs_conv, "total": cx.macs_total,
                          "counted_by": "complexity.py (the zoo's architecture)"}, cx.params
    from .graph_macs import count_macs, count_params
    from .onnx_normalize import normalize, read_model
    from .onnx_patterns import lower_foreign_onnx

    written = tmp / "work" / "source.onnx"
    written.parent.mkdir(exist_ok=True)
    source.write_onnx(written)
    normalize(read_model(written), source.path or written, source.meta.input_size, onnx_path)
    macs = count_macs(onnx_path)
    counted = {"conv": macs.conv, "total": macs.total, "counted_by": "the ONNX graph (graph_macs.py)"}
    params = count_params(onnx_path)  # BatchNorm folded into the convolutions
    lowering = {"applied": False}
    if req.optimize:
        lowering = {"applied": True, "onnx": lower_foreign_onnx(onnx_path), "tflite": {}}
    return lowering, counted, params


def _opset(path: Path) -> int:
    import onnx

    return next((o.version for o in onnx.load(str(path), load_external_data=False).opset_import
                 if o.domain in ("", "ai.onnx")), 0)


def _fp32_reference(tmp: Path, converted: "tflite_convert.Converted", optimize: bool) -> Path:
    """The lowered fp32 TFLite the int8 file is judged against: the shipped one, or (int8-only exports) the
    same conversion's fp32 output lowered the same way."""
    shipped = tmp / "model_fp32.tflite"
    if shipped.exists():
        return shipped
    reference = tmp / "work" / "reference_fp32.tflite"
    shutil.copyfile(converted.files["fp32"], reference)
    if optimize:
        from .lower import lower_tflite

        lower_tflite(reference, reference)
    return reference


def _int8_target(req: ExportRequest, trained: bool):
    """The target to repair to (None: one attempt, today's behaviour) and why."""
    if req.int8_target == "auto":
        if not trained:
            return None, "not applied: random-initialised weights (no checkpoint), where top-1 agreement means nothing"
        return Int8Target(), "default for trained weights (a checkpoint or the user's own model file)"
    target = Int8Target.parse(req.int8_target)
    return target, "--int8-target" if target else "--int8-target none"


def _int8_quality(req, trained: bool, pre, images: Images, evaluation: tuple, fp32: Path, int8: Path, workdir: Path,
                  log: Path, progress) -> tuple[dict, dict | None]:
    """(the manifest's blocks: the per-layer int8 table of the shipped int8 file and, with a target, the repair that
    chose it; the applied attempt's lowering report when it is not the plain file)."""
    from . import int8_repair
    from .lower import lower_tflite

    x_eval, labels, eval_name = evaluation
    progress("measuring the int8 error per layer")
    x_layers = np.ascontiguousarray(x_eval[:LAYER_IMAGES].transpose(0, 2, 3, 1))
    rows = int8_layers.layer_errors(fp32, int8, x_layers)
    target, why = _int8_target(req, trained=trained)
    record, applied_lowering = RepairRecord(why=why), None
    if target is not None:
        more = pre.load_batch(images.more_calibration_paths) if images.more_calibration_paths else None
        inputs = int8_repair.RepairInputs(
            workdir=workdir, fp32=fp32, int8=int8, x_eval=x_eval, labels=labels, eval_name=eval_name,
            calibration=images.calibration, more_calibration=more,
            lower=(lambda path: lower_tflite(path, path)) if req.optimize else None, log=log)
        try:
            repaired = int8_repair.repair(inputs, target, why, progress)
        except int8_repair.Int8TargetMissed as missed:
            raise _Int8Missed(dataclasses.replace(missed.record, layer_images=len(x_layers)), rows,
                              req.int8_target if req.int8_target != "auto" else
                              "agreement=99,drop=0.5 (the default)") from None
        record, applied_lowering = repaired.record, repaired.lowering
        if record.applied != "plain":
            rows = int8_layers.layer_errors(fp32, int8, x_layers)
    return ({"int8_layers": _layers_block(rows, eval_name, len(x_layers)), "int8_repair": record.to_dict()},
            applied_lowering)


def _evaluation_images(pre, images: Images, val: ImageSet | None) -> tuple[np.ndarray, np.ndarray | None, str]:
    """The images an int8 file's target is judged on: the labelled --val set, else the held-out images."""
    if val is not None:
        return pre.load_batch(val.paths), np.asarray(val.labels), f"{val.root} ({len(val)} images)"
    return images.held_out, None, f"held-out calibration images ({len(images.held_out)})"


def _onnx_int8(req, trained: bool, images: Images, evaluation: tuple, tmp: Path, onnx_logits) -> tuple[dict, dict | None]:
    """(the manifest's onnx_int8 block, the artifact entry or None when its target was missed): onnx_int8.py."""
    from . import onnx_export, onnx_int8

    path = tmp / onnx_int8.FILE
    onnx_int8.quantize(tmp / "model.onnx", path, images.calibration)
    x_eval, labels, eval_name = evaluation
    judged = onnx_int8.judge(path, tmp / "model.onnx", x_eval, labels, eval_name, len(images.calibration),
                             _int8_target(req, trained=trained)[0])
    if not judged.shipped:
        path.unlink()
        return judged.to_dict(), None
    parity = verify.compare(onnx_logits, verify.run_onnx(path, images.held_out), reference_name="onnx")
    return judged.to_dict(), {"file": path.name, "format": "onnx", "precision": "int8", "opset": _opset(path),
                   "ops": onnx_export.onnx_op_histogram(path), "quantization": onnx_int8.METHOD,
                   "parity": verify.check(parity, verify.THRESHOLDS["int8"]).to_dict()}


def _layers_block(rows: list[LayerRow], eval_name: str, count: int) -> dict:
    return {"method": "int8 vs fp32 TFLite, preserved tensors, accumulated error (export/int8_layers.py)",
            "images": f"the first {count} of {eval_name}", "rows": [row.to_dict() for row in rows]}

