"""`sdeploy sweep`: export (cached) and benchmark a set of zoo models on one device, with per-op timings.

Output: OUTDIR/bench.json (schema "sdeploy-bench/1": `results` are ordinary BenchResults, one per model key,
precision and thread count) with extra top-level blocks the report and the predictor read:

    sweep    what was asked (device, threads, runs, models, precisions, sizes) and the tool versions
    peak     the device's measured peak compute (analysis/peak.py)
    models   {key: {model, input_size, macs_total, macs_conv, flops_by_group,
                    precisions: {p: {file, sha256, op_method, overhead_ms, ops: [op + time_ms]}}}}
    skipped  [{model, input_size, precision, reason}] — missing/failed models, never fatal

plus OUTDIR/bench.csv (BenchResult rows). A model key is the zoo name, with "@SIZE" appended off 224 px.

Resumable: the file is rewritten atomically after every (model, precision); a rerun skips every combination that
already has both its whole-model result and its per-op timings, and skips the peak once measured.

Exports are cached under $SDEPLOY_CACHE/sweep-exports/, keyed by a content hash of the model name, options, input
size, precisions, checkpoint sha, calibration set, tool versions, sdeploy version and the export code itself.
int8 of the (untrained) zoo models is calibrated on the bundled digits set rendered at the input size: for
latency, what the calibration images show barely matters (it sets scales, not the op graph).

Per-op time (Linux devices): each distinct op signature is cut into a single-op model (analysis/opcut.py) and all
are timed in ONE runner invocation (`runner.py --many`, interleaved rounds), minus the invoke overhead of a
trivial model. Android: benchmark_model's own op profile (--enable_op_profiling), mapped to the model's ops.
"""
from __future__ import annotations

import csv
import hashlib
import json
import shutil
import tempfile
from pathlib import Path
from typing import Callable

from ..errors import UserError
from ..fileio import atomic_path, sha256, write_json

DEFAULT_MODELS = (
    "shufflenet_v1_g1_1.0x", "shufflenet_v1_g2_1.0x", "shufflenet_v1_g3_1.0x", "shufflenet_v1_g4_1.0x",
    "shufflenet_v1_g8_1.0x",
    "shufflenet_v1_g3_0.25x", "shufflenet_v1_g3_0.5x", "shufflenet_v1_g3_1.5x", "shufflenet_v1_g3_2.0x",
    "mobilenet_v1_1.0x", "mobilenet_v1_0.5x",
    "shufflenet_v2_0.5x", "shufflenet_v2_1.0x",
)
OP_METHOD_SINGLE = ("single-op models cut from the real TFLite file (flatbuffer rewrite, one per distinct op "
                    "signature), timed together in one runner process (--many, interleaved rounds; at the sweep's "
                    "end every model's ops are re-timed together in one process, 2 interpreters each), minus the "
                    "invoke overhead of a trivial one-op model; a zero PAD that XNNPACK folds into the next conv "
                    "counts 0 (its time alone is kept as raw_ms)")
OP_METHOD_ANDROID = "benchmark_model --enable_op_profiling (run order), mapped to the model's ops"

Progress = Callable[[str], None]
# the export code a plain (not lowered) export depends on: edits to lower.py do not invalidate its cache
PLAIN_EXPORT_FILES = ("pipeline.py", "onnx_export.py", "tflite_convert.py", "onnx2tf_worker.py",
                      "tflite_inspect.py", "verify.py")


def cache_root() -> Path:
    from ..data.digits import cache_root as root

    return root()


def model_key(name: str, input_size: int) -> str:
    return name if input_size == 224 else f"{name}@{input_size}"


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


def tool_versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    from .. import __version__

    out = {"sdeploy": __version__}
    for package in ("torch", "onnx", "onnx2tf", "tensorflow", "ai-edge-litert", "numpy"):
        try:
            out[package] = version(package)
        except PackageNotFoundError:
            out[package] = None
    return out


def export_key(name: str, input_size: int, precisions: tuple[str, ...], options: dict | None = None,
               checkpoint: Path | None = None, calib_count: int = 32, lowered: bool = False) -> str:
    data = {"model": name, "options": options or {}, "input_size": input_size, "precisions": sorted(precisions),
            "lowered": lowered,
            "checkpoint": sha256(Path(checkpoint)) if checkpoint else None, "calib": f"digits-{input_size}",
            "calib_count": calib_count, "tools": tool_versions(),
            "export_code": _code_hash(None if lowered else PLAIN_EXPORT_FILES)}
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


def export_folder(name: str, input_size: int, precisions: tuple[str, ...], options: dict | None = None,
                  checkpoint: Path | None = None, calib_count: int = 32, lowered: bool = False) -> Path:
    """Where export_cached keeps (or would keep) this export."""
    key = export_key(name, input_size, precisions, options, checkpoint, calib_count, lowered)
    return cache_root() / "sweep-exports" / f"{name}@{input_size}{'-lowered' if lowered else ''}-{key}"


def export_cached(name: str, input_size: int, precisions: tuple[str, ...], progress: Progress = lambda m: None,
                  options: dict | None = None, checkpoint: Path | None = None, calib_count: int = 32,
                  lowered: bool = False) -> Path:
    """The export folder (manifest.json + model_<p>.tflite) for this model, exporting it on a cache miss.

    `lowered=False` measures onnx2tf's plain graph (ExportRequest(optimize=False) where the pipeline has the
    lowering stage); `lowered=True` the pipeline's optimized one.
    """
    import dataclasses

    from ..export.pipeline import ExportRequest, export

    folder = export_folder(name, input_size, precisions, options, checkpoint, calib_count, lowered)
    if (folder / "manifest.json").exists():
        return folder
    failed = folder.with_name(folder.name + ".failed.json")
    if failed.exists():  # the same export with the same code and tools failed before: do not spend minutes again
        raise UserError(json.loads(failed.read_text())["error"] + " (cached failure)",
                        f"delete {failed} to retry")
    calib = None
    if "int8" in precisions:
        from ..data.digits import ensure_digits

        progress(f"{name}: rendering calibration digits at {input_size}px")
        calib = ensure_digits(input_size) / "calib"
    folder.parent.mkdir(parents=True, exist_ok=True)
    extra = {}
    if "optimize" in {f.name for f in dataclasses.fields(ExportRequest)}:
        extra["optimize"] = lowered
    elif lowered:
        raise UserError("this export pipeline has no lowering stage", "sweep with --no-optimize")
    try:
        export(ExportRequest(model=name, checkpoint=checkpoint, input_size=input_size, precisions=tuple(precisions),
                             calib=calib, calib_count=calib_count, verify_count=8, outdir=folder, force=True,
                             model_options=dict(options or {}), **extra),
               progress=lambda m: progress(f"{name}@{input_size}: {m}"))
    except UserError as err:
        import re

        message = re.sub(r"\. see the conversion log \S+", "", err.one_line())  # its temp folder is gone
        write_json(failed, {"error": message, "model": name, "input_size": input_size})
        raise UserError(message, f"rerun `sdeploy export {name} --input-size {input_size}` to see onnx2tf's "
                        "log") from None
    return folder


def export_fp32_hw(name: str, hw: tuple[int, int], progress: Progress = lambda m: None) -> Path:
    """fp32 .tflite of zoo model `name` at a non-square (h, w) input, synthetic weights/inputs (cached).

    Bypasses the export pipeline (square inputs only): onnx_export.export_onnx + tflite_convert.convert.
    """
    import numpy as np

    from ..checkpoints import load_model
    from ..export import onnx_export, tflite_convert

    h, w = hw
    data = {"model": name, "hw": [h, w], "tools": tool_versions(),
            "export_code": _code_hash(("onnx_export.py", "tflite_convert.py", "onnx2tf_worker.py"))}
    key = hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]
    folder = cache_root() / "hw-exports" / f"{name}@{h}x{w}-{key}"
    final = folder / "model_fp32.tflite"
    if final.exists():
        return final
    folder.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".work-", dir=folder))
    try:
        progress(f"{name}@{h}x{w}: exporting ONNX")
        model = load_model(name)
        onnx_export.export_onnx(model, (h, w), tmp / "model.onnx")
        progress(f"{name}@{h}x{w}: converting with onnx2tf")
        samples = np.random.default_rng(0).uniform(0, 1, (4, 64, 64, 3)).astype(np.float32)
        result = tflite_convert.convert(tmp / "model.onnx", tmp / "work", precisions=["fp32"], calibration_nhwc=None,
                                        sample_images_nhwc01=samples, log=folder / "conversion.log")
        shutil.move(result["files"]["fp32"], final.with_suffix(".tmp"))
        final.with_suffix(".tmp").replace(final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final


# ---- running many models in one runner process -----------------------------------------------------------
def measure_many(profile, files: dict[str, Path], *, threads: int = 1, runs: int = 20, warmup: int = 3,
                 rounds: int = 1, instances: int = 1, timeout: float = 1800,
                 progress: Progress = lambda m: None) -> dict[str, dict]:
    """Time {id: .tflite} on the device in one `runner.py --many` call -> {id: runner entry}.

    instances > 1: that many interpreters per model, used in turn over the rounds (see runner.py: a single
    interpreter instance can sit in a slow mode for its whole life)."""
    from ..bench.harness import RUNNER, _parse_runner, ModelArtifact

    transport = profile.transport_factory()
    try:
        runner = transport.push(RUNNER, "sdeploy_runner.py")
        items = []
        for i, (ident, path) in enumerate(files.items()):
            remote = transport.push(Path(path), f"m{i:04d}_{Path(path).name}")
            items.append({"id": ident, "path": remote})
        with tempfile.TemporaryDirectory() as tmp:
            listing = Path(tmp) / "many.json"
            listing.write_text(json.dumps(items))
            remote_list = transport.push(listing, "many.json")
        argv = [*profile.python_argv, runner, "--many", remote_list, "--threads", str(threads), "--runs", str(runs),
                "--warmup", str(warmup), "--rounds", str(rounds), "--instances", str(instances)]
        cpus = profile.affinity_cpus()
        if cpus:
            argv += ["--affinity", ",".join(map(str, cpus))]
        progress(f"timing {len(items)} models in one runner process")
        res = transport.run(argv, timeout=timeout)
        report = _parse_runner(res, profile, ModelArtifact(Path("many.json"), "many", "-"))
    finally:
        try:
            transport.cleanup()
        except UserError:
            pass
    return {str(e["id"]): e for e in report["results"]}


def measure_peak(profile, threads: int, progress: Progress = lambda m: None) -> list[dict]:
    from . import peak

    progress("building the peak-compute kernels")
    files = peak.build_all(cache_root() / "peak")
    progress(f"measuring peak compute on {profile.name}")
    ids = {f"{k}|{p}": path for (k, p), path in files.items()}
    timed = measure_many(profile, ids, threads=threads, runs=10, warmup=3, rounds=4, instances=2,
                         progress=progress)
    timings = {tuple(i.split("|")): timed[i].get("median_ms") for i in ids}
    return peak.peak_records(profile.name, threads, timings)


def op_times_single(profile, tflite: Path, workdir: Path, *, threads: int, runs: int = 15, rounds: int = 3,
                    progress: Progress = lambda m: None) -> dict:
    """Per-op timings of `tflite` by the single-op method -> {op_method, overhead_ms, ops: [...]}."""
    from . import opcut

    ops, files = opcut.cut_model(tflite, workdir)
    dtype = "int8" if any(o.inputs and o.inputs[0] and o.inputs[0][1] == "int8" for o in ops) else "float32"
    ids = {"__overhead__": opcut.overhead_model(workdir / f"overhead_{dtype}.tflite", dtype), **files}
    timed = measure_many(profile, ids, threads=threads, runs=runs, warmup=3, rounds=rounds, progress=progress)
    overhead = timed["__overhead__"].get("median_ms") or 0.0
    out = []
    for op in ops:
        entry = timed.get(op.signature) or {}
        raw = entry.get("median_ms")
        op_dict = op.to_dict()
        out.append({**op_dict, "raw_ms": raw, "time_ms": in_graph_ms(op_dict, raw, overhead),
                    "error": entry.get("error")})
    return {"op_method": OP_METHOD_SINGLE, "overhead_ms": overhead, "distinct_ops": len(files), "ops": out}


def in_graph_ms(op: dict, raw_ms: float | None, overhead_ms: float) -> float | None:
    """An op's time in its graph from its single-op time: minus the invoke overhead; 0 for a PAD that XNNPACK folds
    into the next conv (ops.py `fused_into`; its alone-time stays in raw_ms)."""
    if raw_ms is None:
        return None
    if op.get("fused_into") is not None:
        return 0.0
    return max(raw_ms - overhead_ms, 0.0)


_XNN_GROUPS = (("depthwise convolution", "depthwise_conv"), ("convolution", "conv"),
               ("fully connected", "dense_conv"), ("transpose", "shuffle"), ("copy", "shuffle"),
               ("reshape", "shuffle"), ("pooling", "pooling"), ("mean", "pooling"), ("concatenate", "concat_add"),
               ("add", "concat_add"), ("convert", "quant"), ("quantize", "quant"))


def op_times_android(op_profile: list[dict], tflite: Path) -> dict:
    """benchmark_model's run-order op profile -> the same {ops: [...]} shape, op by op where it can be mapped.

    Builtin rows (CONV_2D, TRANSPOSE, ...) map in order onto the model's ops of that type; XNNPACK rows
    ("Convolution (NHWC, F32) GEMM", ...) map in order onto the model's convolutions, other XNNPACK rows by
    name to a group; the aggregate "TfLiteXNNPackDelegate" rows are dropped when per-op XNNPACK rows exist.
    """
    from .ops import model_ops

    ops = [o.to_dict() for o in model_ops(tflite)]
    rows = [r for r in op_profile or [] if r.get("avg_ms") is not None]
    if any(not r["op"].startswith("TfLite") and not r["op"].isupper() for r in rows):
        rows = [r for r in rows if not r["op"].startswith("TfLite")]
    queues: dict[str, list[dict]] = {}
    for op in ops:
        queues.setdefault(op["op"], []).append(op)
        if op["op"] in ("CONV_2D", "DEPTHWISE_CONV_2D"):
            queues.setdefault("__conv__", []).append(op)
    extra = []
    for row in rows:
        name = row["op"]
        if name.isupper() or name.startswith("TfLite"):
            queue = queues.get(name)
            target = queue.pop(0) if queue else None
        else:
            lname = name.lower()
            group = next((g for key, g in _XNN_GROUPS if lname.startswith(key)), "other")
            target = queues["__conv__"].pop(0) if group in ("conv", "depthwise_conv") and queues.get("__conv__") \
                else None
            if target is None:
                extra.append({"op": name, "group": "dense_conv" if group == "conv" else group,
                              "time_ms": row["avg_ms"], "macs": 0, "in_bytes": 0, "out_bytes": 0,
                              "signature": None})
                continue
        if target is None:
            extra.append({"op": name, "group": "other", "time_ms": row["avg_ms"], "macs": 0, "in_bytes": 0,
                          "out_bytes": 0, "signature": None})
        else:
            target["time_ms"] = (target.get("time_ms") or 0.0) + row["avg_ms"]
    return {"op_method": OP_METHOD_ANDROID, "overhead_ms": 0.0, "ops": ops + extra}


# ---- the sweep ---------------------------------------------------------------------------------------------
GRAPH_LOWERED = "lowered (export/lower.py, what `sdeploy export` ships)"
GRAPH_PLAIN = "onnx2tf plain output (no lowering)"


def load_doc(outdir: Path, device: str, graph: str | None = None) -> dict:
    """The sweep document in OUTDIR (a fresh one if none). Refuses another device's results, and resuming with
    the other graph (lowered vs plain): one document must not mix them."""
    from ..bench.results import SCHEMA

    path = Path(outdir) / "bench.json"
    if not path.exists():
        return {"schema": SCHEMA, "created": None, "partial": True, "results": [], "sweep": {}, "peak": [],
                "models": {}, "skipped": []}
    doc = json.loads(path.read_text())
    if doc.get("schema") != SCHEMA:
        raise UserError(f"{path} has schema {doc.get('schema')!r}, this sdeploy reads {SCHEMA!r}",
                        "choose another -o for the sweep")
    devices = {r.get("device") for r in doc.get("results", [])} | {p.get("device") for p in doc.get("peak", [])}
    if devices - {device}:
        raise UserError(f"{path} holds results of device {sorted(devices - {device})[0]!r}, not {device!r}",
                        "choose another -o for this device's sweep")
    before = (doc.get("sweep") or {}).get("graph")
    if graph and before and doc.get("results") and before.split(" ")[0] != graph.split(" ")[0]:
        how = "with --no-optimize" if before.startswith("onnx2tf") else "without --no-optimize"
        raise UserError(f"{path} holds a sweep of the {before.split(' (')[0]} graph", f"resume it {how}, or "
                        "choose another -o")
    for key in ("results", "peak", "skipped"):
        doc.setdefault(key, [])
    doc.setdefault("models", {})
    doc.setdefault("sweep", {})
    return doc


def save_doc(outdir: Path, doc: dict) -> Path:
    from ..bench.results import BenchResult, now_iso

    outdir = Path(outdir)
    doc["created"] = now_iso()
    write_json(outdir / "bench.json", doc)
    rows = [BenchResult.from_dict(r).csv_row() for r in doc["results"]]
    header = list(rows[0]) if rows else list(BenchResult("", "", "", 0, {}).csv_row())
    with atomic_path(outdir / "bench.csv") as tmp:
        with open(tmp, "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=header)
            writer.writeheader()
            writer.writerows(rows)
    return outdir / "bench.json"


def _done(doc: dict, key: str, precision: str, threads: int) -> bool:
    has_result = any(r["model"] == key and r["precision"] == precision and r["threads"] == threads
                     for r in doc["results"])
    entry = doc["models"].get(key, {}).get("precisions", {}).get(precision, {})
    return has_result and bool(entry.get("ops"))


def run_sweep(device: str, *, devices_file: str | None = None, models: list[str] | None = None,
              precisions: tuple[str, ...] = ("fp32", "int8"), input_sizes: tuple[int, ...] = (224,),
              outdir: Path = Path("sweep"), runs: int = 30, warmup: int = 5, threads: int | None = None,
              num_classes: int = 1000, op_runs: int = 15, op_rounds: int = 3, lowered: bool = True,
              progress: Progress = lambda m: None, on_model_done: Callable[[str, str], None] | None = None) -> dict:
    """Run (or resume) a sweep; returns the results document (also in OUTDIR/bench.json)."""
    from ..bench.harness import bench_artifact
    from ..complexity import count_complexity
    from ..devices.registry import get_device
    from ..zoo.registry import list_models
    from .ops import flops_by_group

    profile = get_device(device, devices_file)
    threads = threads or profile.threads[0]
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    graph = GRAPH_LOWERED if lowered else GRAPH_PLAIN
    doc = load_doc(outdir, profile.name, graph)
    names = list(models or DEFAULT_MODELS)
    doc["sweep"] = {"device": profile.name, "transport": profile.transport, "threads": threads, "runs": runs,
                    "models": names, "precisions": list(precisions), "input_sizes": list(input_sizes),
                    "num_classes": num_classes, "tools": tool_versions(),
                    "graph": graph,
                    "op_method": OP_METHOD_ANDROID if profile.transport == "adb" else OP_METHOD_SINGLE,
                    "calibration": "bundled digits rendered at the input size (content barely matters for "
                                   "latency)"}
    known = set(list_models())
    if not any(p.get("threads") == threads for p in doc["peak"]):
        if profile.transport == "adb":
            doc["sweep"]["peak_note"] = "no measured peak: peak kernels need the Linux runner"
        else:
            doc["peak"] += measure_peak(profile, threads, progress)
            save_doc(outdir, doc)
    options = {"num_classes": num_classes} if num_classes != 1000 else {}
    for size in input_sizes:
        for name in names:
            key = model_key(name, size)
            todo = [p for p in precisions if not _done(doc, key, p, threads)]
            if not todo:
                progress(f"{key}: done already, skipping")
                continue
            doc["skipped"] = [s for s in doc["skipped"] if s.get("key") != key]
            if name not in known:
                _skip(doc, key, name, size, None, "not in the model zoo (see `sdeploy zoo`)", progress)
                save_doc(outdir, doc)
                continue
            try:
                folder = export_cached(name, size, tuple(precisions), progress, options, lowered=lowered)
            except UserError as err:
                _skip(doc, key, name, size, None, f"export failed: {err.one_line()}", progress)
                save_doc(outdir, doc)
                continue
            manifest = json.loads((folder / "manifest.json").read_text())
            cx = count_complexity(name, input_size=size, num_classes=num_classes)
            entry = doc["models"].setdefault(key, {"precisions": {}})
            entry.update(model=name, input_size=size, num_classes=num_classes, macs_total=cx.macs_total,
                         macs_conv=cx.macs_conv, params=cx.params, flops_by_group=flops_by_group(cx),
                         layers=[{"name": l.name, "kind": l.kind, "macs": l.macs} for l in cx.layers])
            for precision in todo:
                art = manifest["artifacts"].get(precision)
                if not art:
                    _skip(doc, key, name, size, precision, "the export has no such artifact", progress)
                    continue
                tflite = folder / art["file"]
                try:
                    progress(f"{key} {precision}: whole-model latency ({runs} runs)")
                    results = bench_artifact(tflite, profile, threads=[threads], runs=runs, warmup=warmup,
                                             progress=lambda m: progress(f"{key} {precision}: {m}"))
                    result = results[0]
                    result.model, result.precision = key, precision
                    progress(f"{key} {precision}: per-op timings")
                    if profile.transport == "adb":
                        op_data = op_times_android(result.op_profile or [], tflite)
                    else:
                        op_data = op_times_single(profile, tflite, cache_root() / "opcut" / art["sha256"][:16],
                                                  threads=threads, runs=op_runs, rounds=op_rounds,
                                                  progress=lambda m: progress(f"{key} {precision}: {m}"))
                except UserError as err:
                    _skip(doc, key, name, size, precision, f"benchmark failed: {err.one_line()}", progress)
                    save_doc(outdir, doc)
                    continue
                doc["results"] = [r for r in doc["results"] if not (
                    r["model"] == key and r["precision"] == precision and r["threads"] == threads)]
                doc["results"].append(result.to_dict())
                entry["precisions"][precision] = {"file": art["file"], "sha256": art["sha256"],
                                                  "xnnpack": art.get("xnnpack"), "op_histogram": art.get("ops"),
                                                  **op_data}
                save_doc(outdir, doc)
                if on_model_done:
                    on_model_done(key, precision)
    interleaved_pass(doc, profile, threads, tuple(precisions), options, lowered, progress)
    doc["partial"] = False
    save_doc(outdir, doc)
    from . import predict

    try:
        pred = predict.fit(doc)
        predict.save_predictor(pred, outdir / f"predictor-{profile.name}.json")
        predict.save_predictor(pred, predict.default_path(profile.name))
    except UserError as err:
        progress(f"no predictor fitted: {err.one_line()}")
    return doc


def interleaved_pass(doc: dict, profile, threads: int, precisions: tuple[str, ...], options: dict, lowered: bool,
                     progress: Progress, rounds: int = 8, runs: int = 10, instances: int = 4) -> None:
    """Time every finished model again, all in ONE runner process, interleaved over `rounds` rounds, each model
    on `instances` interpreters in turn (a lone interpreter can sit in a slow mode: runner.py).

    The per-model results were measured minutes apart on a machine whose load changes; these medians are side
    by side in one run, so their ratios (the report's speedups, the fitted exponent, the predictor's targets)
    are not skewed by load drift. Stored as doc["interleaved"]; the report prefers them and says so.
    """
    files = {}
    for r in doc["results"]:
        if r["threads"] != threads:
            continue
        entry = doc["models"].get(r["model"], {})
        data = entry.get("precisions", {}).get(r["precision"])
        if not data:
            continue
        folder = export_cached(entry["model"], entry["input_size"], precisions, progress, options, lowered=lowered)
        path = folder / data["file"]
        if path.exists():
            files[f"{r['model']}|{r['precision']}"] = path
    if not files:
        return
    progress(f"interleaved pass: {len(files)} models x {rounds} rounds in one runner process")
    timed = measure_many(profile, files, threads=threads, runs=runs, warmup=3, rounds=rounds, instances=instances,
                         progress=progress)
    from ..bench.results import now_iso

    doc["interleaved"] = {"threads": threads, "rounds": rounds, "runs_per_round": runs, "instances": instances,
                          "created": now_iso(),
                          "latency_ms": {k: v.get("median_ms") for k, v in sorted(timed.items())
                                         if v.get("median_ms")}}
    if profile.transport != "adb":
        retime_ops(doc, profile, threads, progress)


def retime_ops(doc: dict, profile, threads: int, progress: Progress, rounds: int = 4, runs: int = 10,
               instances: int = 2) -> None:
    """Re-time every distinct single-op model of the sweep in ONE runner process (interleaved rounds).

    Each model's ops were first timed right after that model, minutes apart from the others; re-timing them all
    together puts every model's per-op times under the same machine conditions (the predictor's lookup and the
    report's shares compare them across models). Ops whose single-op file is gone keep their first timing.
    """
    files, where = {}, []
    for key, entry in doc["models"].items():
        for precision, data in entry.get("precisions", {}).items():
            if not str(data.get("op_method", "")).startswith("single-op") or not data.get("sha256"):
                continue
            folder = cache_root() / "opcut" / data["sha256"][:16]
            dtype = "int8" if any(o["inputs"] and o["inputs"][0] and o["inputs"][0][1] == "int8"
                                  for o in data["ops"]) else "float32"
            overhead = folder / f"overhead_{dtype}.tflite"
            if not overhead.exists():
                continue
            files[f"{precision}|__overhead__{dtype}"] = overhead
            for op in data["ops"]:
                path = folder / f"op_{op['signature']}.tflite"
                if path.exists():
                    files[f"{precision}|{op['signature']}"] = path
            where.append((data, precision, dtype))
    if not files:
        return
    progress(f"re-timing {len(files)} distinct single-op models in one runner process")
    timed = measure_many(profile, files, threads=threads, runs=runs, warmup=2, rounds=rounds, instances=instances,
                         progress=progress)
    for data, precision, dtype in where:
        overhead = timed.get(f"{precision}|__overhead__{dtype}", {}).get("median_ms")
        if overhead is None:
            continue
        data["overhead_ms"] = overhead
        for op in data["ops"]:
            raw = timed.get(f"{precision}|{op['signature']}", {}).get("median_ms")
            if raw is not None:
                op["raw_ms"], op["time_ms"] = raw, in_graph_ms(op, raw, overhead)
        data["op_retimed"] = "all models' distinct ops re-timed together in one runner process at the sweep's end"


def _skip(doc, key, name, size, precision, reason, progress) -> None:
    import re

    log = re.search(r"see the conversion log (\S+)", reason)
    if log and not Path(log.group(1)).exists():  # the pipeline removes its temp folder with the log
        reason = reason[: log.start()] + f"rerun `sdeploy export {name} --input-size {size}` to see onnx2tf's log"
    progress(f"skipping {key}{' ' + precision if precision else ''}: {reason}")
    doc["skipped"].append({"key": key, "model": name, "input_size": size, "precision": precision,
                           "reason": reason})
