"""Runs onnx2tf (and TensorFlow's int8 converter) in a child process, offline.

Why a child process: onnx2tf and TensorFlow print thousands of lines and hold ~1.5 GB; isolating them keeps the
user's terminal clean (everything goes to the log file), frees the memory afterwards and lets us guard the
network for this process alone.

Why not `onnx2tf -oiqt`: it also builds dynamic-range and two int16-activation variants nobody asked for (about
2/3 of its ~230 s for ShuffleNet 1x g3). We let onnx2tf build the graph (saved_model + float32/float16 .tflite,
which it always writes together) and run TensorFlow's full-integer converter ourselves, once, with the user's
calibration images — exactly what -oiqt does for its int8 file, minus the rest.

Offline: onnx2tf fetches `calibration_image_sample_data_20x128x128x3_float32.npy` from the internet at every
conversion of an image model (as validation data) unless that file is in its working directory. The parent
writes that file from the user's real calibration images, and this worker refuses every socket connection and
DNS lookup, recording each attempt in `network_attempts.json`, so a conversion can never silently go online.

Usage (by shufflenet_deploy.export.tflite only): python -m shufflenet_deploy.export.onnx2tf_worker SPEC.json
SPEC: {"onnx": path (a private copy: onnx2tf rewrites its input), "workdir": dir, "outdir": dir,
       "precisions": [...], "calibration_nhwc": path to .npy or null, "result": path,
       "mode": "int8" to requantize an earlier run's saved_model only, "int8": options (convert_int8)}
"""
from __future__ import annotations

import json
import os
import socket
import sys
import time
from pathlib import Path

ATTEMPTS: list[str] = []


def block_network(record: Path) -> None:
    """Make every outgoing connection and name lookup fail loudly, and remember who tried."""

    def refuse(what):
        def _refuse(*args, **kwargs):
            ATTEMPTS.append(f"{what} {args[1:2] or args[:1]}")
            record.write_text(json.dumps(ATTEMPTS))
            raise OSError(f"network access blocked by sdeploy ({what})")

        return _refuse

    socket.socket.connect = refuse("connect")
    socket.socket.connect_ex = refuse("connect_ex")
    socket.create_connection = refuse("create_connection")
    socket.getaddrinfo = refuse("getaddrinfo")


def convert_graph(spec: dict) -> dict[str, str]:
    """onnx2tf: ONNX -> saved_model + float32 (+ float16) TFLite. Returns {precision: file}."""
    import onnx2tf

    outdir = Path(spec["outdir"])
    options = {
        # onnx2tf shells out to an `onnxsim` command found on PATH, so whether it ran depended on how sdeploy
        # was started (venv activated or not). Our ONNX is already constant-folded by the exporter; we turn
        # onnxsim off so the same input always gives the same TFLite file.
        "not_use_onnxsim": True,
        **spec.get("onnx2tf_options", {}),
    }
    onnx2tf.convert(
        input_onnx_file_path=spec["onnx"],
        output_folder_path=str(outdir),
        copy_onnx_input_output_names_to_tflite=True,
        output_signaturedefs=True,
        verbosity="info",
        **options,
    )
    stem = Path(spec["onnx"]).stem
    return {"fp32": str(outdir / f"{stem}_float32.tflite"), "fp16": str(outdir / f"{stem}_float16.tflite")}


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


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
