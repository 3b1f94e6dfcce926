"""ONNX -> TFLite fp32/fp16/int8 by driving onnx2tf offline in a child process (see onnx2tf_worker.py)."""
from __future__ import annotations

import errno
import json
import shutil
import sys
from pathlib import Path

import numpy as np

from ..errors import UserError
from ..proc import run

# onnx2tf validates every conversion on this file and downloads it when it is missing from its working dir.
ONNX2TF_SAMPLE_FILE = "calibration_image_sample_data_20x128x128x3_float32.npy"


def write_onnx2tf_sample(workdir: Path, images_nhwc01: np.ndarray) -> None:
    """onnx2tf's sample-data file, made from the user's own images (NHWC, 0..1, 20 x 128 x 128 x 3)."""
    import PIL.Image

    picks = [images_nhwc01[i % len(images_nhwc01)] for i in range(20)]
    resized = [np.asarray(PIL.Image.fromarray((p * 255).astype(np.uint8)).resize((128, 128)), np.float32) / 255
               for p in picks]
    np.save(workdir / ONNX2TF_SAMPLE_FILE, np.stack(resized).astype(np.float32))


def convert(onnx_path: Path, workdir: Path, *, precisions: list[str], calibration_nhwc: np.ndarray | None,
            sample_images_nhwc01: np.ndarray, log: Path, timeout: float = 1800,
            onnx2tf_options: dict | None = None) -> dict:
    """Run the worker; return {"files": {precision: path}, "timings": {...}, "network_attempts": [...]}."""
    workdir = Path(workdir).resolve()  # the worker chdirs into it: every path in its spec must be absolute
    workdir.mkdir(parents=True, exist_ok=True)
    private_onnx = workdir / "model.onnx"
    shutil.copyfile(onnx_path, private_onnx)  # onnx2tf rewrites its input in place
    write_onnx2tf_sample(workdir, sample_images_nhwc01)
    calib_file = None
    if calibration_nhwc is not None:
        calib_file = workdir / "calibration_nhwc.npy"
        np.save(calib_file, calibration_nhwc.astype(np.float32))
    spec = {"onnx": str(private_onnx), "workdir": str(workdir), "outdir": str(workdir / "tf"),
            "precisions": precisions, "calibration_nhwc": str(calib_file) if calib_file else None,
            "result": str(workdir / "result.json"), "onnx2tf_options": onnx2tf_options or {}}
    return _run_worker(spec, workdir, log, timeout)


def requantize(workdir: Path, *, output: Path, log: Path, calibration_nhwc: np.ndarray | None = None,
               ranges: str = "minmax", float_tensors: list[str] | None = None, timeout: float = 1800) -> Path:
    """Another int8 model from the saved_model an earlier `convert` left in WORKDIR (no onnx2tf rerun): other
    calibration images, another activation-range choice, layers kept in float. Returns OUTPUT."""
    workdir = Path(workdir).resolve()
    spec = json.loads((workdir / "spec.json").read_text())
    options = {"output": str(Path(output).resolve()), "ranges": ranges, "float_tensors": float_tensors or []}
    if calibration_nhwc is not None:
        calib_file = Path(output).resolve().with_suffix(".calibration.npy")
        np.save(calib_file, calibration_nhwc.astype(np.float32))
        options["calibration_nhwc"] = str(calib_file)
    spec.update(mode="int8", precisions=["int8"], int8=options, result=str(workdir / "result-requantize.json"))
    result = _run_worker(spec, workdir, log, timeout, name="spec-requantize.json")
    return Path(result["files"]["int8"])


def _run_worker(spec: dict, workdir: Path, log: Path, timeout: float, name: str = "spec.json") -> dict:
    spec_path = workdir / name
    spec_path.write_text(json.dumps(spec))
    result_path = Path(spec["result"])
    result_path.unlink(missing_ok=True)
    proc = run([sys.executable, "-m", "shufflenet_deploy.export.onnx2tf_worker", str(spec_path)],
               timeout=timeout, log=log, env={"TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": ""})
    attempts_file = workdir / "network_attempts.json"
    if attempts_file.exists():
        raise UserError(f"onnx2tf tried to reach the network ({json.loads(attempts_file.read_text())[0]}); "
                        f"the attempt was blocked (log: {log})", "report this: sdeploy must stay offline")
    if proc.returncode != 0 or not result_path.exists():
        tail = log.read_text(errors="replace")[-20000:] if log.exists() else ""
        if "No space left on device" in tail or "ENOSPC" in tail:
            raise OSError(errno.ENOSPC, "No space left on device", str(workdir))
        raise UserError(f"onnx2tf conversion failed with exit code {proc.returncode}",
                        f"see the conversion log {log}")
    return json.loads(result_path.read_text())
