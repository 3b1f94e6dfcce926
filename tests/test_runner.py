"""runner.py as the device sees it: copied ALONE to an empty dir and run as a plain script (`python -I`)."""
from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from helpers import REPO

RUNNER = REPO / "shufflenet_deploy" / "runner.py"
PY = sys.executable


@pytest.fixture(scope="module")
def device_dir(tmp_path_factory, tiny_tflite):
    """An empty dir holding only runner.py and the two models, like the device work dir."""
    d = tmp_path_factory.mktemp("device")
    shutil.copy(RUNNER, d / "runner.py")
    for precision in ("fp32", "int8"):
        shutil.copy(tiny_tflite(precision), d / f"tiny_{precision}.tflite")
    return d


def run_runner(device_dir: Path, *args: str, env: dict | None = None, python: str = PY):
    proc = subprocess.run([python, "-I", "runner.py", *args], cwd=device_dir, capture_output=True, text=True,
                          timeout=120, env=env)
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    assert len(lines) == 1, f"runner must print exactly one line on stdout, got {proc.stdout!r} / {proc.stderr!r}"
    return proc.returncode, json.loads(lines[0])


def test_fp32_report_is_complete_and_sane(device_dir):
    code, rep = run_runner(device_dir, "tiny_fp32.tflite", "--runs", "7", "--warmup", "2")
    assert code == 0 and rep["error"] is None
    assert rep["schema"] == "sdeploy-runner/1"
    assert rep["runtime"]["name"] == "ai_edge_litert" and rep["runtime"]["version"]
    assert len(rep["times_ms"]) == rep["runs"] == 7
    assert all(t > 0 for t in rep["times_ms"])
    assert rep["init_ms"] > 0 and rep["first_inference_ms"] > 0
    assert rep["peak_rss_mb"] > 10
    assert rep["numpy"] == np.__version__ and rep["machine"] and rep["python"]
    assert rep["cpu"]["cores"] == os.cpu_count() and rep["cpu"]["model"]
    assert set(rep["conditions"]) == {"before", "after"}
    assert set(rep["conditions"]["after"]) == {"governor", "freq_khz", "temp_c"}
    assert rep["inputs"][0]["shape"] == [1, 16, 16, 3] and rep["inputs"][0]["dtype"] == "float32"
    assert rep["outputs"][0]["shape"] == [1, 10]


def test_instances_share_the_runs_and_memory_stays_one_interpreters(device_dir):
    code, one = run_runner(device_dir, "tiny_fp32.tflite", "--runs", "24", "--warmup", "1")
    code3, three = run_runner(device_dir, "tiny_fp32.tflite", "--runs", "24", "--warmup", "1", "--instances", "3")
    assert code == code3 == 0 and one["instances"] == 1 and "instance_medians_ms" not in one
    assert three["instances"] == 3 and len(three["times_ms"]) == three["runs"] == 24
    meds = three["instance_medians_ms"]
    # 8 runs each: the median of all 24 (mean of the 12th and 13th) lies between the instances' medians;
    # the 13th alone need not (only 4 runs of each instance are sure to sit at or below its median)
    overall = statistics.median(three["times_ms"])
    assert len(meds) == 3 and min(meds) - 1e-12 <= overall <= max(meds) + 1e-12
    # peak_rss_mb is taken before the 2nd and 3rd interpreter exist; the all-instances figure is never below it
    assert 10 < three["peak_rss_mb"] <= three["peak_rss_mb_all_instances"]


def test_min_seconds_extends_the_run(device_dir):
    code, rep = run_runner(device_dir, "tiny_fp32.tflite", "--runs", "3", "--warmup", "0", "--min-seconds", "0.2")
    assert code == 0
    assert len(rep["times_ms"]) > 3  # a tiny model runs thousands of times in 0.2 s


def test_int8_input_is_quantized_and_output_matches_in_process(device_dir, tmp_path):
    from ai_edge_litert.interpreter import Interpreter

    x = np.random.default_rng(3).uniform(0, 1, (1, 16, 16, 3)).astype(np.float32)
    np.save(device_dir / "x.npy", x)
    code, rep = run_runner(device_dir, "tiny_int8.tflite", "--runs", "2", "--warmup", "0", "--input", "x.npy",
                           "--save-output", "out.npy")
    assert code == 0, rep
    interp = Interpreter(model_path=str(device_dir / "tiny_int8.tflite"))
    interp.allocate_tensors()
    inp, out = interp.get_input_details()[0], interp.get_output_details()[0]
    scale, zp = inp["quantization"]
    assert inp["dtype"] == np.int8 and scale > 0
    assert rep["inputs"][0]["quantization"] == {"scale": pytest.approx(scale), "zero_point": zp}
    q = np.clip(np.round(x / scale + zp), -128, 127).astype(np.int8)
    interp.set_tensor(inp["index"], q)
    interp.invoke()
    expected = interp.get_tensor(out["index"])
    saved = np.load(device_dir / "out.npy")
    assert saved.dtype == np.int8 and saved.shape == (1, 10)
    np.testing.assert_array_equal(saved, expected)  # bit-exact: same quantized input, same kernels
    # and the quantization really happened: a different rounding would (almost surely) change some logits
    interp.set_tensor(inp["index"], np.zeros_like(q))
    interp.invoke()
    assert not np.array_equal(interp.get_tensor(out["index"]), expected)


def test_affinity_is_applied(device_dir):
    code, rep = run_runner(device_dir, "tiny_fp32.tflite", "--runs", "2", "--affinity", "0")
    assert code == 0 and rep["cpu"]["affinity"] == [0]


def test_no_xnnpack_runs(device_dir):
    code, rep = run_runner(device_dir, "tiny_fp32.tflite", "--runs", "2", "--no-xnnpack")
    assert code == 0 and rep["error"] is None


def test_bad_model_reports_error_json(device_dir):
    (device_dir / "junk.tflite").write_bytes(b"not a flatbuffer")
    code, rep = run_runner(device_dir, "junk.tflite", "--runs", "1")
    assert code == 1 and rep["error"]


def test_missing_runtime_exits_3_with_pip_hint(device_dir, tmp_path):
    """Stub packages that raise ImportError shadow every TFLite runtime (PYTHONPATH beats site-packages)."""
    for name in ("ai_edge_litert", "tflite_runtime", "tensorflow"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "__init__.py").write_text("raise ImportError('hidden by the test')\n")
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    proc = subprocess.run([PY, "runner.py", "tiny_fp32.tflite"], cwd=device_dir, capture_output=True, text=True,
                          timeout=60, env=env)
    rep = json.loads(proc.stdout)
    assert proc.returncode == 3
    assert rep["error"] == "no TFLite runtime"
    assert rep["hint"] == "pip install ai-edge-litert"


def _tiny_onnx(path: Path) -> Path:
    """A conv + relu ONNX graph (NCHW 1x3x16x16 -> 1x4x16x16) written with onnx's helpers."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    w = numpy_helper.from_array(np.random.default_rng(0).standard_normal((4, 3, 3, 3)).astype(np.float32), "w")
    graph = helper.make_graph(
        [helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]), helper.make_node("Relu", ["c"], ["y"])],
        "tiny", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 16, 16])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 16, 16])], [w])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8), path)
    return path


def test_an_onnx_model_runs_under_onnx_runtime_and_its_absence_exits_3(device_dir, tmp_path):
    """Issue 25: the same runner times a .onnx file with ONNX Runtime (the same report, the runtime named); many
    ONNX files interleave too; without onnxruntime: exit 3 and its pip line."""
    import onnxruntime

    _tiny_onnx(device_dir / "tiny.onnx")
    code, rep = run_runner(device_dir, "tiny.onnx", "--runs", "7", "--warmup", "1", "--instances", "2")
    assert code == 0 and rep["error"] is None, rep
    assert rep["runtime"] == {"name": "onnxruntime", "version": onnxruntime.__version__}
    assert len(rep["times_ms"]) == 7 and all(t > 0 for t in rep["times_ms"]) and rep["instances"] == 2
    assert rep["inputs"][0]["shape"] == [1, 3, 16, 16] and rep["outputs"][0]["shape"] == [1, 4, 16, 16]
    (device_dir / "many.json").write_text(json.dumps(["tiny.onnx", {"id": "again", "path": "tiny.onnx"}]))
    code, rep = run_runner(device_dir, "--many", "many.json", "--runs", "3", "--rounds", "2")
    assert code == 0 and rep["runtime"]["name"] == "onnxruntime"
    assert [len(r["times_ms"]) for r in rep["results"]] == [6, 6] and not any(r["error"] for r in rep["results"])
    (tmp_path / "onnxruntime").mkdir()
    (tmp_path / "onnxruntime" / "__init__.py").write_text("raise ImportError('hidden by the test')\n")
    proc = subprocess.run([PY, "runner.py", "tiny.onnx"], cwd=device_dir, capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHONPATH": str(tmp_path)})
    rep = json.loads(proc.stdout)
    assert proc.returncode == 3 and rep["error"] == "no ONNX Runtime" and rep["hint"] == "pip install onnxruntime"


def test_runner_imports_nothing_from_sdeploy():
    text = RUNNER.read_text()
    assert "shufflenet_deploy" not in text and "from ." not in text


def test_missing_numpy_exits_3_with_pip_hint(device_dir):
    """A bare system Python (no numpy) is a common first state of a board: say what to install."""
    python = shutil.which("python3", path="/usr/bin")
    if python is None or subprocess.run([python, "-c", "import numpy"], capture_output=True).returncode == 0:
        pytest.skip("needs a python3 without numpy at /usr/bin/python3")
    code, rep = run_runner(device_dir, "tiny_fp32.tflite", python=python)
    assert code == 3 and rep["error"].startswith("numpy missing") and "pip install numpy ai-edge-litert" in rep["hint"]


def test_peak_rss_is_the_runners_own_not_its_parents(device_dir):
    """ru_maxrss survives fork+exec: a runner started from a 500 MB parent must still report its own peak."""
    ballast = np.ones(500 * 2**20 // 8)  # 500 MB resident in this (parent) process
    ballast += 1
    code, report = run_runner(device_dir, "tiny_fp32.tflite", "--runs", "2")
    assert code == 0 and 10 < report["peak_rss_mb"] < 300, report["peak_rss_mb"]
    del ballast
