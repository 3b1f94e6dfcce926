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
       "precisions": [...], "calibration_nhwc": path to .npy or null, "result": path}
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
    """Full-integer int8 (int8 input and output) from onnx2tf's saved_model, calibrated on the given images."""
    import numpy as np
    import tensorflow as tf

    calib = np.load(spec["calibration_nhwc"]).astype(np.float32)

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
    path = Path(spec["outdir"]) / "model_int8.tflite"
    path.write_bytes(converter.convert())
    return str(path)


def main(spec_path: str) -> int:
    spec = json.loads(Path(spec_path).read_text())
    block_network(Path(spec["workdir"]) / "network_attempts.json")
    os.chdir(spec["workdir"])  # onnx2tf looks for its sample-data file in the working directory
    timings, files = {}, {}
    t0 = time.perf_counter()
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
