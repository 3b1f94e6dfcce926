"""`sdeploy bench` / `sdeploy devices` end to end: the real CLI in a subprocess, the real local (and ssh) device."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from helpers import FIXTURES

SAMPLES = FIXTURES / "benchmark_model_output"



@pytest.fixture
def sdeploy(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "SDEPLOY_DEVICES"}
    env["XDG_CONFIG_HOME"] = str(tmp_path / "xdg")  # no user devices.toml leaks in

    def run(*args, timeout=120):
        argv = [sys.executable, "-c", "from shufflenet_deploy.cli import run; run()", *map(str, args)]
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=env, cwd=tmp_path)
    return run


@pytest.fixture
def model_dir(tmp_path, tiny_tflite):
    d = tmp_path / "export"
    d.mkdir()
    for precision in ("fp32", "int8"):
        shutil.copy(tiny_tflite(precision), d / f"tiny_{precision}.tflite")
    return d


def _check_schema(doc):
    assert doc["schema"] == "sdeploy-bench/1" and doc["partial"] is False
    for r in doc["results"]:
        for key in ("schema", "device", "model", "precision", "runtime", "threads", "latency_ms",
                    "first_inference_ms", "init_ms", "peak_rss_mb", "runs", "warmup", "times_ms", "machine", "cpu",
                    "conditions", "warnings", "partial", "artifact", "op_profile", "created"):
            assert key in r, key
        assert set(r["latency_ms"]) >= {"p50", "p90", "p99", "mean", "std", "min", "max", "median_ci"}
        if r["source"] == "runner":  # imported outputs have no local artifact to hash
            assert set(r["artifact"]) == {"file", "sha256", "size_bytes"}


def test_bench_local_folder_writes_json_and_csv(sdeploy, model_dir):
    proc = sdeploy("bench", model_dir, "--device", "local", "--runs", "5", "--warmup", "1", "--threads", "1,2")
    assert proc.returncode == 0, proc.stderr
    assert "tiny" in proc.stdout and "int8" in proc.stdout and "ai_edge_litert" in proc.stdout
    out = model_dir / "bench-local"
    doc = json.loads((out / "bench.json").read_text())
    _check_schema(doc)
    assert sorted((r["precision"], r["threads"]) for r in doc["results"]) == [
        ("fp32", 1), ("fp32", 2), ("int8", 1), ("int8", 2)]
    assert (out / "bench.csv").read_text().count("\n") == 5


def test_bench_json_to_stdout(sdeploy, model_dir, tmp_path):
    proc = sdeploy("bench", model_dir / "tiny_int8.tflite", "--device", "local", "--runs", "3", "--warmup", "0",
                   "--json", "-o", tmp_path / "o")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    _check_schema(doc)
    assert [(r["model"], r["precision"]) for r in doc["results"]] == [("tiny", "int8")]
    assert json.loads((tmp_path / "o" / "bench.json").read_text())["results"] == doc["results"]


def test_unknown_device_is_one_line_exit_2(sdeploy, model_dir):
    proc = sdeploy("bench", model_dir, "--device", "pixle")
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "unknown device 'pixle'" in proc.stderr and "pixel" in proc.stderr


def test_timeout_is_one_line_exit_3(sdeploy, model_dir):
    proc = sdeploy("bench", model_dir / "tiny_fp32.tflite", "--device", "local", "--runs", "5",
                   "--min-seconds", "60", "--timeout", "2")
    assert proc.returncode == 3
    lines = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "tiny_fp32.tflite" in lines[0] and "2 s" in lines[0]


def test_pixel_without_binary_says_how(sdeploy, model_dir):
    proc = sdeploy("bench", model_dir, "--device", "pixel")
    assert proc.returncode == 2 and "android_harness/README.md" in proc.stderr


def test_parse_real_benchmark_model_output(sdeploy, tmp_path):
    proc = sdeploy("bench", "--parse", SAMPLES / "sample_A_old_format_op_profiling.md", "--device", "pixel",
                   "--precision", "fp32", "-o", tmp_path / "p", "--json")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    _check_schema(doc)
    (r,) = doc["results"]
    assert r["model"] == "mobilenet_v1_1.0_224" and r["device"] == "pixel" and r["source"] == "benchmark_model"
    assert r["latency_ms"]["mean"] > 0 and r["op_profile"]
    # sample B holds two good runs and one failed NNAPI run: the failure is reported, not imported
    proc = sdeploy("bench", "--parse", SAMPLES / "sample_B_tf24_peak_memory_and_failure.md", "-o", tmp_path / "b")
    assert proc.returncode == 0, proc.stderr
    assert "skipped" in proc.stderr and len(json.loads((tmp_path / "b" / "bench.json").read_text())["results"]) == 2


def test_devices_list_and_check(sdeploy):
    proc = sdeploy("devices", "--json")
    assert proc.returncode == 0, proc.stderr
    assert {"local", "pixel", "rpi"} <= set(json.loads(proc.stdout))
    proc = sdeploy("devices")
    assert proc.returncode == 0 and "raspberrypi.local" in proc.stdout
    proc = sdeploy("devices", "check", "local")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("ok") and "reachable" in lines[0]
    assert any("runtime" in line and "ai_edge_litert" in line for line in lines)


@pytest.mark.ssh
def test_bench_over_ssh_to_localhost(sdeploy, sshd, model_dir, tmp_path):
    """The tiny model benchmarked over a real OpenSSH session to 127.0.0.1 (the device is this host)."""
    devices = tmp_path / "devices.toml"
    devices.write_text(
        f'[devices.sshbox]\ntransport = "ssh"\nhost = "{sshd.host}"\nport = {sshd.port}\nuser = "{sshd.user}"\n'
        f'key = "{sshd.key}"\nknown_hosts = "{sshd.known_hosts}"\nssh_config = "/dev/null"\n'
        f'python = "{sys.executable}"\nthreads = [1]\n')
    proc = sdeploy("bench", model_dir / "tiny_int8.tflite", "--device", "sshbox", "--devices", devices,
                   "--runs", "5", "--warmup", "1", "--json", "-o", tmp_path / "o")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    _check_schema(doc)
    (r,) = doc["results"]
    assert r["device"] == "sshbox" and r["transport"] == "ssh" and len(r["times_ms"]) == 5
    proc = sdeploy("devices", "--devices", devices, "check", "sshbox")
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_interrupted_bench_writes_partial_results(sdeploy, model_dir, tmp_path):
    """The device hangs on the second thread count: exit 3, one line, and bench.json keeps the first result."""
    hang = tmp_path / "python_hangs_on_2_threads.sh"
    hang.write_text(f'#!/bin/sh\ncase "$*" in *"--threads 2"*) exec sleep 30;; esac\nexec "{sys.executable}" "$@"\n')
    hang.chmod(0o755)
    devices = tmp_path / "devices.toml"
    devices.write_text(f'[devices.flaky]\ntransport = "local"\npython = "{hang}"\nthreads = [1, 2]\n')
    proc = sdeploy("bench", model_dir / "tiny_fp32.tflite", "--device", "flaky", "--devices", devices,
                   "--runs", "5", "--warmup", "0", "--timeout", "3", "-o", tmp_path / "o")
    assert proc.returncode == 3
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "partial" in errors[0] and "rerun" in errors[0]
    doc = json.loads((tmp_path / "o" / "bench.json").read_text())
    assert doc["partial"] is True and [(r["threads"], r["partial"]) for r in doc["results"]] == [(1, True)]


def test_parse_android_harness_output(sdeploy, tmp_path):
    fixture = FIXTURES / "benchmark_model" / "harness_synthetic.txt"
    proc = sdeploy("bench", "--parse", fixture, "--device", "pixel", "--json", "-o", tmp_path / "h")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    _check_schema(doc)
    first = doc["results"][0]
    assert (first["model"], first["threads"], first["source"]) == ("a", 1, "android_harness")
    assert first["latency_ms"]["mean"] == pytest.approx(12.06)
    assert first["conditions"]["before"]["governor"]["cpu4"] == "schedutil"
    assert any("cpu4 frequency changed" in w for w in first["warnings"])


def test_a_second_bench_into_the_same_folder_never_loses_the_first(sdeploy, model_dir, tmp_path):
    """Finished results are replaced only with --force (refused before measuring); a partial result from an
    interrupted bench is completed by the rerun; a bench.json that is not results is never replaced."""
    model = model_dir / "tiny_fp32.tflite"
    out = tmp_path / "b"
    assert sdeploy("bench", model, "--device", "local", "--runs", "3", "--warmup", "0", "--no-peak",
                   "-o", out).returncode == 0
    first = (out / "bench.json").read_text()
    proc = sdeploy("bench", model, "--device", "local", "--runs", "3", "--no-peak", "-o", out)
    assert proc.returncode == 2 and "already holds results" in proc.stderr and "--force" in proc.stderr
    assert (out / "bench.json").read_text() == first
    doc = json.loads(first)
    doc["partial"] = True
    (out / "bench.json").write_text(json.dumps(doc))
    assert sdeploy("bench", model, "--device", "local", "--runs", "3", "--warmup", "0", "--no-peak",
                   "-o", out).returncode == 0
    assert json.loads((out / "bench.json").read_text())["partial"] is False
    assert sdeploy("bench", model, "--device", "local", "--runs", "3", "--warmup", "0", "--no-peak", "--force",
                   "-o", out).returncode == 0
    (out / "bench.json").write_text('{"my": "notes"}')
    proc = sdeploy("bench", model, "--device", "local", "--runs", "3", "--no-peak", "--force", "-o", out)
    assert proc.returncode == 2 and "in the way" in proc.stderr
    assert (out / "bench.json").read_text() == '{"my": "notes"}'


def test_a_folder_with_a_file_name_that_is_not_utf8_keeps_every_result(sdeploy, model_dir, tmp_path):
    """A file name in bytes the device's Python cannot pass on (copied from another system): it is pushed under a
    safe name, its model name is printable, and every model's result is written (JSON and CSV)."""
    folder = tmp_path / "mixed"
    folder.mkdir()
    shutil.copy(model_dir / "tiny_fp32.tflite", folder / "good.tflite")
    shutil.copy(model_dir / "tiny_fp32.tflite", os.fsencode(folder) + b"/\xff\xfe_int8.tflite")
    proc = sdeploy("bench", folder, "--device", "local", "--runs", "3", "--warmup", "0", "--no-peak",
                   "-o", tmp_path / "out")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads((tmp_path / "out" / "bench.json").read_text())
    assert sorted(r["model"] for r in doc["results"]) == ["good", "\ufffd\ufffd"]
    assert len((tmp_path / "out" / "bench.csv").read_text().splitlines()) == 3


@pytest.mark.slow
def test_runtime_all_times_the_exports_onnx_under_onnx_runtime_and_a_device_without_it_skips_it(
        sdeploy, shared_export, tmp_path):
    """Issue 25: `--runtime all` adds the export's verified model.onnx and model_int8.onnx, run by the device's ONNX
    Runtime through the same runner (rows of precision onnx and onnx_int8, their runtime named); the fastest of
    the four is named; a device whose Python has none skips them in one line
    (kept in every result), and `--runtime onnxruntime` alone fails there in one line, exit 3."""
    export = shared_export("g3").path
    proc = sdeploy("bench", export, "--device", "local", "--runtime", "all", "--preset", "quick", "--no-peak",
                   "-o", tmp_path / "b", timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    doc = json.loads((tmp_path / "b" / "bench.json").read_text())
    rows = {r["precision"]: r for r in doc["results"]}
    assert sorted(rows) == ["fp32", "int8", "onnx", "onnx_int8"] and "onnxruntime" in proc.stdout
    (fastest,) = doc["fastest"]   # one model, one device, one thread count: named, with its reason
    assert fastest["precision"] in rows and fastest["why"] and "fastest on local, 1 thread(s)" in proc.stdout
    onnx = rows["onnx"]
    assert onnx["runtime"]["name"] == "onnxruntime" and rows["fp32"]["runtime"]["name"] == "ai_edge_litert"
    assert onnx["artifact"]["file"] == "model.onnx" and onnx["macs"] == rows["fp32"]["macs"] > 0
    assert onnx["inputs"][0]["shape"] == [1, 3, 64, 64] and onnx["latency_ms"]["p50"] > 0
    onnx_int8 = rows["onnx_int8"]
    assert onnx_int8["artifact"]["file"] == "model_int8.onnx" and onnx_int8["runtime"] == onnx["runtime"]
    assert onnx_int8["macs"] == onnx["macs"] and onnx_int8["latency_ms"]["p50"] > 0

    hidden = tmp_path / "no_onnxruntime"   # an `onnxruntime` that fails to import, first on the device's path
    (hidden / "onnxruntime").mkdir(parents=True)
    (hidden / "onnxruntime" / "__init__.py").write_text("raise ImportError('not installed here')\n")
    devices = tmp_path / "devices.toml"
    devices.write_text(f'[devices.board]\ntransport = "local"\npython = "env PYTHONPATH={hidden} {sys.executable}"\n')
    proc = sdeploy("bench", export, "--devices", devices, "--device", "board", "--runtime", "all", "--preset",
                   "quick", "--no-peak", "-o", tmp_path / "c", timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads((tmp_path / "c" / "bench.json").read_text())["results"]
    assert sorted(r["precision"] for r in results) == ["fp32", "int8"]
    assert all(any(w.startswith("skipped onnxruntime on board: onnxruntime is not installed") and "pip install "
                   "onnxruntime" in w for w in r["warnings"]) for r in results)
    proc = sdeploy("bench", export, "--devices", devices, "--device", "board", "--runtime", "onnxruntime",
                   "--preset", "quick", "--no-peak", "-o", tmp_path / "d", timeout=600)
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert proc.returncode == 3 and len(errors) == 1 and "board cannot run ONNX Runtime" in errors[0], proc.stderr
    assert "Traceback" not in proc.stderr and not (tmp_path / "d" / "bench.json").exists()
