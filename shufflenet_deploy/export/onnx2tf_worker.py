"""Runs onnx2tf (and TensorFlow's int8 converter) in a child process, offline.

Why a child process: onnx2tf and TensorFlow print thousands of lines and hold ~1.5 GB; isolating them keeps the
user's terminal clean (everything goes to the log file), frees the memory afterwards and lets us guard the
network for this process alone.

Why not `onnx2tf -oiqt`: it also builds dynamic-range and two int16-activation variants nobody asked for (about
2/3 of its ~230 s for ShuffleNet 1x g3). We let onnx2tf build the Keras graph, write its saved_model once, convert
that to the float files asked for (convert_graph) and run TensorFlow's full-integer converter ourselves, once,
with the user's calibration images — exactly what -oiqt does for its int8 file, minus the rest.

Offline: onnx2tf fetches `calibration_image_sample_data_20x128x128x3_float32.npy` from the internet at every
conversion of an image model (as validation data) unless that file is in its working directory. The parent
writes that file from the user's real calibration images, and this worker refuses every socket connection and
DNS lookup, recording each attempt in `network_attempts.json`, so a conversion can never silently go online.

Why a serve mode: importing TensorFlow and onnx2tf costs seconds, paid again by every one-shot worker, and a test
module or a sweep converts dozens of models. `--serve` imports them once, then runs each SPEC path read from stdin
in a child forked from that state, and answers one JSON line per job on its original stdout. Each job thus gets
what a one-shot worker gets — a process of its own, its own network-attempt record, its workdir as cwd, fds 1/2
on its log, TensorFlow as it is right after the imports — and writes byte-identical files (in-process it would
not: see _fork_job).

Usage (by shufflenet_deploy.export.tflite_convert only):
  python -m shufflenet_deploy.export.onnx2tf_worker SPEC.json   (one job; output goes where the parent points it)
  python -m shufflenet_deploy.export.onnx2tf_worker --serve     (SPEC paths on stdin; {"spec", "ok", "code"} out)
SPEC: {"onnx": path (a private copy: onnx2tf rewrites its input), "workdir": dir, "outdir": dir,
       "precisions": [...], "calibration_nhwc": path to .npy or null, "result": path,
       "log": absolute path the serve mode appends the job's output to,
       "mode": "int8" to requantize an earlier run's saved_model only, "int8": options (convert_int8)}
"""
from __future__ import annotations

import atexit
import importlib
import json
import os
import socket
import sys
import time
import traceback
from pathlib import Path

ATTEMPTS: list[str] = []  # this job's blocked attempts
_record: Path | None = None  # the file they are recorded in: the current job's


def block_network(record: Path) -> None:
    """Make every outgoing connection and name lookup fail loudly, and remember who tried, in RECORD.

    Installed once; a later call (a job of a serving worker, in the child it forked) only re-points the record and
    starts a new list, so each job's attempts land in its own workdir."""
    global _record
    ATTEMPTS.clear()
    installed, _record = _record is not None, record
    if installed:
        return

    def refuse(what):
        def _refuse(*args, **kwargs):
            ATTEMPTS.append(f"{what} {args[1:2] or args[:1]}")
            _record.write_text(json.dumps(ATTEMPTS))
            raise OSError(f"network access blocked by sdeploy ({what})")

        return _refuse

    socket.socket.connect = refuse("connect")
    socket.socket.connect_ex = refuse("connect_ex")
    socket.create_connection = refuse("create_connection")
    socket.getaddrinfo = refuse("getaddrinfo")


def convert_graph(spec: dict) -> dict[str, str]:
    """onnx2tf builds the Keras graph; we write its saved_model once and convert that to float32 TFLite (and to
    float16 when asked). Returns {precision: file}.

    Why not let onnx2tf write them: it converts each TFLite file with `from_keras_model`, which re-serialises the
    whole Keras model (every layer's config, constants included, as JSON) into a fresh saved_model each time:
    ~75% of a conversion (40 s -> 10 s for ShuffleNet v2 0.5x, docs/ci.md). The saved_model is written exactly as
    onnx2tf's `output_signaturedefs` writes it (the int8 conversion reads it), and TFLite files from it have the
    same ops and outputs; only TensorFlow's generated tensor names may differ."""
    import onnx2tf
    import tensorflow as tf
    import tf_keras

    outdir = Path(spec["outdir"])
    options = {
        # onnx2tf shells out to an `onnxsim` command found on PATH, so whether it ran depended on how sdeploy
        # was started (venv activated or not). Our ONNX is already constant-folded by the exporter; we turn
        # onnxsim off so the same input always gives the same TFLite file.
        "not_use_onnxsim": True,
        **spec.get("onnx2tf_options", {}),
    }
    # output_signaturedefs also names the graph's ops as a saved_model needs them (no leading "/")
    model = onnx2tf.convert(input_onnx_file_path=spec["onnx"], output_folder_path=str(outdir), verbosity="info",
                            output_signaturedefs=True, disable_model_save=True, **options)
    archive = tf_keras.export.ExportArchive()
    archive.add_endpoint(name="serving_default", fn=lambda *inputs: model(inputs),
                         input_signature=[tf.TensorSpec(t.shape, t.dtype, t.name) for t in model.inputs])
    archive.write_out(str(outdir))
    converter = tf.lite.TFLiteConverter.from_saved_model(str(outdir))
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS, tf.lite.OpsSet.SELECT_TF_OPS]
    stem = Path(spec["onnx"]).stem
    files = {"fp32": outdir / f"{stem}_float32.tflite"}
    files["fp32"].write_bytes(converter.convert())
    if "fp16" in spec["precisions"]:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
        files["fp16"] = outdir / f"{stem}_float16.tflite"
        files["fp16"].write_bytes(converter.convert())
    return {precision: str(path) for precision, path in files.items()}


def convert_int8(spec: dict) -> str:
    """Full-integer int8 (int8 input and output) from onnx2tf's saved_model, calibrated on the given images.

    `spec["int8"]` (export/int8_repair.py's attempts) changes how: `calibration_nhwc` (another image set),
    `ranges` ("minmax", TensorFlow's own; "percentile" or "mse": activation ranges narrowed from histograms of
    the calibration activations, see narrow_ranges), `float_tensors` (output tensor names of layers kept in float:
    mixed precision) and `output`. Without it: TensorFlow's one-call conversion, as always."""
    import numpy as np
    import tensorflow as tf

    options = spec.get("int8") or {}
    calib = np.load(options.get("calibration_nhwc") or spec["calibration_nhwc"]).astype(np.float32)

    def representative_dataset():
        for i in range(calib.shape[0]):
            yield [calib[i : i + 1]]

    converter = tf.lite.TFLiteConverter.from_saved_model(spec["outdir"])
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative_dataset
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8
    if spec.get("per_tensor"):
        converter._experimental_disable_per_channel = True
    path = Path(options.get("output") or Path(spec["outdir"]) / "model_int8.tflite")
    ranges, float_tensors = options.get("ranges", "minmax"), options.get("float_tensors") or []
    if ranges == "minmax" and not float_tensors:
        path.write_bytes(converter.convert())
        return str(path)
    # the same two steps TensorFlow's convert() takes (calibrate, then quantize), with our changes between them
    from tensorflow.lite.python.convert import mlir_quantize

    converter._experimental_calibrate_only = True
    calibrated = converter.convert()
    if ranges != "minmax":
        calibrated = narrow_ranges(calibrated, calib, ranges)
    nodes = _calibrated_names(calibrated, float_tensors)
    path.write_bytes(mlir_quantize(calibrated, bool(spec.get("per_tensor")), input_data_type=tf.int8,
                                   output_data_type=tf.int8, denylisted_nodes=nodes or None))
    return str(path)


def _calibrated_names(calibrated: bytes, wanted: list[str]) -> list[str]:
    """The calibrated model's tensor names for the int8 names asked for (which carry `;Const_N` suffixes)."""
    from shufflenet_deploy.tflite.graph import read_model

    names = [t.name.decode() if isinstance(t.name, bytes) else t.name for t in read_model(calibrated).subgraphs[0].tensors]
    found = []
    for want in wanted:
        base = want.split(";Const")[0].rstrip(";")
        found += [n for n in names if n == base or n == want]
    return sorted(set(found))


def narrow_ranges(calibrated: bytes, calib, method: str, bins: int = 2048) -> bytes:
    """Replace each activation's calibrated [min, max] by a narrower clip range from its histogram over the
    calibration images: "percentile" keeps 99.99% of the values inside, "mse" minimises the expected squared
    error of an 8-bit grid (clipping error + rounding noise step**2/12). Ranges only ever shrink."""
    import numpy as np
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    from shufflenet_deploy.tflite.graph import pack, read_model

    model = read_model(calibrated)
    tensors = model.subgraphs[0].tensors
    stats = {i: (float(t.quantization.min[0]), float(t.quantization.max[0])) for i, t in enumerate(tensors)
             if t.quantization is not None and t.quantization.min is not None and len(t.quantization.min) == 1}
    interp = Interpreter(model_content=calibrated, experimental_preserve_all_tensors=True,
                         experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    interp.allocate_tensors()
    inp = interp.get_input_details()[0]["index"]
    hists = {i: np.zeros(bins) for i in stats}
    for sample in calib:
        interp.set_tensor(inp, sample[None])
        interp.invoke()
        for i, (lo, hi) in stats.items():
            if hi > lo:
                hists[i] += np.histogram(interp.get_tensor(i), bins=bins, range=(lo, hi))[0]
    for i, (lo, hi) in stats.items():
        if hi <= lo or not hists[i].sum():
            continue
        new_lo, new_hi = _clip_range(hists[i], lo, hi, method)
        tensors[i].quantization.min, tensors[i].quantization.max = [new_lo], [new_hi]
    return pack(model)


def _clip_range(hist, lo: float, hi: float, method: str) -> tuple[float, float]:
    import numpy as np

    edges = np.linspace(lo, hi, len(hist) + 1)
    centers = (edges[:-1] + edges[1:]) / 2
    cdf = np.cumsum(hist) / hist.sum()
    if method == "percentile":
        tail = 1e-4 / (2 if lo < 0 < hi else 1)
        new_lo = lo if lo >= 0 else float(edges[np.searchsorted(cdf, tail)])
        new_hi = float(edges[min(len(hist), np.searchsorted(cdf, 1 - tail) + 1)])
        return min(new_lo, 0.0), max(new_hi, 0.0)
    best, best_err = (lo, hi), np.inf
    for r in np.linspace(0.2, 1.0, 41):
        c_lo, c_hi = lo * r if lo < 0 else lo, hi * r if hi > 0 else hi
        step = (c_hi - c_lo) / 255
        clipped = np.clip(centers, c_lo, c_hi)
        err = float(np.sum(hist * ((centers - clipped) ** 2 + step**2 / 12 * (clipped == centers))))
        if err < best_err:
            best, best_err = (float(c_lo), float(c_hi)), err
    return best


def main(spec_path: str) -> int:
    spec = json.loads(Path(spec_path).read_text())
    block_network(Path(spec["workdir"]) / "network_attempts.json")
    os.chdir(spec["workdir"])  # onnx2tf looks for its sample-data file in the working directory
    timings, files = {}, {}
    t0 = time.perf_counter()
    if spec.get("mode") != "int8":  # "int8": only (re)quantize the saved_model an earlier run left in outdir
        files.update(convert_graph(spec))
        timings["onnx2tf_s"] = time.perf_counter() - t0
    if "int8" in spec["precisions"]:
        t0 = time.perf_counter()
        files["int8"] = convert_int8(spec)
        timings["int8_s"] = time.perf_counter() - t0
    result = {"files": files, "timings": timings, "network_attempts": ATTEMPTS}
    Path(spec["result"]).write_text(json.dumps(result))
    return 0


def serve() -> int:
    """Run each SPEC path read from stdin as a job; answer {"spec", "ok", "code"} per job, one line each.

    onnx2tf and what a conversion loads are imported here, once; each job then runs in a child forked from this
    untouched state (see _fork_job). The protocol runs on private copies of fds 0 and 1; the fds themselves become
    what a one-shot worker has (stdin /dev/null, output to stderr; a job's child points 1 and 2 at its log), so
    nothing a job reads or prints can touch the protocol."""
    jobs, replies = os.fdopen(os.dup(0)), os.fdopen(os.dup(1), "w")
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    os.dup2(2, 1)
    block_network(Path(os.devnull))  # before onnx2tf loads, as in a one-shot worker; each job re-points it
    # What every job imports: onnx2tf first (it sets TensorFlow's environment before loading it), then Keras 3
    # (with scipy, sklearn, matplotlib), which TensorFlow's saved_model export loads mid-conversion. Neither starts
    # a thread that could hold a lock across fork, nor draws from TensorFlow's uid counter (see _fork_job).
    for module in ("onnx2tf", "keras"):
        try:
            importlib.import_module(module)
        except Exception:  # each job's own import then fails again, with its traceback in the job's log
            break
    for line in iter(jobs.readline, ""):
        spec_path = line.strip()
        if spec_path:
            code = _fork_job(spec_path, (jobs.fileno(), replies.fileno()))
            replies.write(json.dumps({"spec": spec_path, "ok": code == 0, "code": code}) + "\n")
            replies.flush()
    return 0


def _fork_job(spec_path: str, protocol: tuple[int, ...]) -> int:
    """Run one job in a child forked from the serving process; return its exit code (negative: a signal).

    Why fork, not run the job in-process after resetting Keras: TensorFlow names the constants a graph captures
    from a process-wide counter nothing can reset, so a second in-process job gives other tensor names (other
    bytes) than a fresh worker. A forked child starts where a fresh worker would be after its imports; whatever a
    job changes, leaks or crashes on dies with its child."""
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid:
        return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
    code = 1
    try:
        for fd in protocol:
            os.close(fd)
        code = _job(spec_path)
    finally:
        atexit._run_exitfuncs()  # what a one-shot worker's exit runs (onnx2tf's temp-folder cleanup, for one)
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def _job(spec_path: str) -> int:
    """`main` with fds 1 and 2 on the job's log; the exit code a one-shot worker would have had."""
    try:
        log = json.loads(Path(spec_path).read_text())["log"]
    except (OSError, ValueError, KeyError):
        log = os.devnull  # main fails on this spec too; the parent reports it as a failed conversion
    fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    try:
        return main(spec_path)
    except SystemExit as stop:  # onnx2tf calls sys.exit on some errors: the same code as a one-shot worker's
        if stop.code is None or isinstance(stop.code, int):
            return stop.code or 0
        print(stop.code, file=sys.stderr)
        return 1
    except Exception:  # what Python does with an uncaught exception in a one-shot worker: traceback, exit 1
        traceback.print_exc()
        return 1


if __name__ == "__main__":
    sys.exit(serve() if sys.argv[1] == "--serve" else main(sys.argv[1]))
