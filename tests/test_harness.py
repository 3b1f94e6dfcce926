"""bench/harness.py on the real `local` transport with real tiny TFLite models (no mocks)."""
from __future__ import annotations

import contextlib
import json
import os
import shlex
import shutil
import stat
import sys
from pathlib import Path

import numpy as np
import pytest

from helpers import FIXTURES
from shufflenet_deploy.bench.check import check_device
from shufflenet_deploy.bench.artifacts import find_models
from shufflenet_deploy.bench.backends import BenchInterrupted
from shufflenet_deploy.bench.harness import bench_artifact
from shufflenet_deploy.bench.results import SCHEMA, read_results, write_results
from shufflenet_deploy.devices.profile import DeviceProfile
from shufflenet_deploy.errors import DeviceError, UserError


FAST = dict(runs=5, warmup=1)


@pytest.fixture(scope="module")
def export_dir(tmp_path_factory, tiny_tflite):
    """An export folder as the export stage writes it: manifest.json + fp32/int8 TFLite + a (skipped) ONNX."""
    d = tmp_path_factory.mktemp("export")
    arts = {}
    for precision in ("fp32", "int8"):
        shutil.copy(tiny_tflite(precision), d / f"model_{precision}.tflite")
        arts[precision] = {"file": f"model_{precision}.tflite", "precision": precision}
    (d / "model.onnx").write_bytes(b"onnx")
    arts["onnx"] = {"file": "model.onnx", "precision": "fp32"}
    manifest = {"schema": "sdeploy-export/1", "model": "tiny_net", "input_size": 16, "num_classes": 10,
                "preprocessing": {}, "macs": {"total": 123456, "conv": 120000}, "artifacts": arts}
    (d / "manifest.json").write_text(json.dumps(manifest))
    return d


def local(**kw) -> DeviceProfile:
    return DeviceProfile.from_fields(kw.pop("name", "local"), {"transport": "local", **kw})


def test_find_models(export_dir, tmp_path):
    models = find_models(export_dir)
    assert [(m.model, m.precision, m.path.name) for m in models] == [
        ("tiny_net", "fp32", "model_fp32.tflite"), ("tiny_net", "int8", "model_int8.tflite")]
    one = find_models(export_dir / "model_int8.tflite")  # a file inside an export folder keeps the manifest's name
    assert [(m.model, m.precision) for m in one] == [("tiny_net", "int8")]
    loose = tmp_path / "shufflenet_g3_int8.tflite"
    shutil.copy(export_dir / "model_int8.tflite", loose)
    assert [(m.model, m.precision) for m in find_models(loose)] == [("shufflenet_g3", "int8")]
    with pytest.raises(UserError, match="no such artifact"):
        find_models(tmp_path / "missing.tflite")


def test_bench_export_folder_on_local(export_dir, tmp_path):
    seen = []
    results = bench_artifact(export_dir, local(threads=[1, 2]), progress=seen.append, **FAST)
    assert [(r.model, r.precision, r.threads) for r in results] == [
        ("tiny_net", "fp32", 1), ("tiny_net", "fp32", 2), ("tiny_net", "int8", 1), ("tiny_net", "int8", 2)]
    assert any("threads=2" in msg for msg in seen)
    for r in results:
        d = r.to_dict()
        assert d["schema"] == SCHEMA and d["partial"] is False and d["source"] == "runner"
        assert d["runtime"]["name"] == "ai_edge_litert"
        assert len(d["times_ms"]) == d["runs"] == 5 and d["warmup"] == 1
        lat = d["latency_ms"]
        assert set(lat) >= {"p50", "p90", "p99", "mean", "std", "min", "max", "median_ci"}
        assert lat["min"] <= lat["p50"] <= lat["p90"] <= lat["p99"] <= lat["max"]
        assert d["first_inference_ms"] > 0 and d["init_ms"] > 0 and d["peak_rss_mb"] > 0
        size = (export_dir / d["artifact"]["file"]).stat().st_size
        assert d["artifact"]["sha256"] and d["artifact"]["size_bytes"] == size
        assert set(d["conditions"]) == {"before", "after"} and d["machine"] and d["cpu"]["cores"]
        assert isinstance(d["warnings"], list) and d["created"]
        # the model's facts come from the manifest, not from its name at a default size
        assert d["model_key"] == "tiny_net@16" and d["macs"] == 123456
        assert d["model_info"]["input_size"] == 16 and d["model_info"]["num_classes"] == 10
    json_path, csv_path = write_results(results, tmp_path / "out")
    back = read_results(tmp_path / "out")
    assert [r.to_dict() for r in back] == [r.to_dict() for r in results]
    assert csv_path.read_text().count("\n") == 5


def test_affinity_input_and_saved_outputs(export_dir, tmp_path):
    x = np.random.default_rng(0).uniform(0, 1, (1, 16, 16, 3)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    results = bench_artifact(export_dir / "model_int8.tflite", local(affinity="0"), input=tmp_path / "x.npy",
                             save_outputs_dir=tmp_path / "outs", **FAST)
    assert results[0].affinity == [0] and results[0].cpu["affinity"] == [0]
    saved = np.load(tmp_path / "outs" / "output_tiny_net_int8_t1.npy")
    assert saved.dtype == np.int8 and saved.shape == (1, 10)


def test_trials_are_merged(export_dir):
    (r,) = bench_artifact(export_dir / "model_fp32.tflite", local(), trials=2, **FAST)
    assert r.trials == 2 and r.runs == 10 and len(r.times_ms) == 10


def test_runs_are_spread_over_interpreter_instances(export_dir):
    (three,) = bench_artifact(export_dir / "model_fp32.tflite", local(), **FAST)  # the default: 3
    (one,) = bench_artifact(export_dir / "model_fp32.tflite", local(), instances=1, **FAST)
    assert three.instances == 3 and len(three.times_ms) == three.runs
    assert any(n.startswith("runs spread over 3 interpreters per trial") for n in three.notes)
    assert one.instances == 1 and not any("interpreters" in n for n in one.notes)


def test_timeout_names_model_and_limit(export_dir):
    with pytest.raises(DeviceError) as err:
        bench_artifact(export_dir / "model_fp32.tflite", local(), runs=5, warmup=0, min_seconds=60, timeout=2)
    line = err.value.one_line()
    assert "model_fp32.tflite" in line and "2 s" in line and err.value.exit_code == 3


def _wrapper(tmp_path: Path, body: str) -> str:
    script = tmp_path / "python_wrapper.sh"
    script.write_text(f"#!/bin/sh\n{body}\n")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return str(script)


def test_interrupted_run_keeps_partial_results(export_dir, tmp_path):
    """The device 'hangs' on the second thread count: the first result survives, marked partial."""
    python = _wrapper(tmp_path, f'case "$*" in *"--threads 2"*) exec sleep 30;; esac\nexec "{sys.executable}" "$@"')
    with pytest.raises(BenchInterrupted) as err:
        bench_artifact(export_dir / "model_fp32.tflite", local(python=python, threads=[1, 2]), timeout=3, **FAST)
    kept = err.value.results
    assert [(r.threads, r.partial) for r in kept] == [(1, True)]
    assert len(kept[0].times_ms) == 5


def test_missing_runtime_on_device(export_dir, tmp_path):
    stubs = tmp_path / "stubs"
    for name in ("ai_edge_litert", "tflite_runtime", "tensorflow"):
        (stubs / name).mkdir(parents=True)
        (stubs / name / "__init__.py").write_text("raise ImportError('not installed')\n")
    python = f"env PYTHONPATH={stubs} {sys.executable}"
    with pytest.raises(DeviceError) as err:
        bench_artifact(export_dir / "model_fp32.tflite", local(python=python), **FAST)
    line = err.value.one_line()
    assert "no TFLite runtime" in line and "-m pip install ai-edge-litert" in line


def test_missing_python_on_device(export_dir):
    with pytest.raises(DeviceError, match="cannot start"):
        bench_artifact(export_dir / "model_fp32.tflite", local(python="no-such-python3"), **FAST)


def test_read_results_rejects_other_schema(tmp_path):
    (tmp_path / "bench.json").write_text(json.dumps({"schema": "sdeploy-bench/0", "results": []}))
    with pytest.raises(UserError, match="sdeploy-bench/0"):
        read_results(tmp_path)


def test_adb_without_binary_says_how_to_get_it(export_dir):
    profile = DeviceProfile.from_fields("pixel", {"transport": "adb"})
    with pytest.raises(UserError) as err:
        bench_artifact(export_dir, profile)
    assert "android_harness/README.md" in err.value.one_line()


def test_check_local_device():
    checks = {c.name: c for c in check_device(local(name="local"))}
    assert checks["reachable"].status == "ok" and os.uname().machine in checks["reachable"].detail
    assert checks["runtime"].status == "ok" and "ai_edge_litert" in checks["runtime"].detail
    assert checks["cpu"].status == "ok"
    assert {"governor", "temperature"} <= set(checks)


# ---------------------------------------------------------------------------------------------- adb (fake device)
FAKE_BENCHMARK_MODEL = r"""#!/bin/sh
# Stand-in for TFLite's Android benchmark_model (not available here): prints output in its real format.
cat <<'OUT'
INFO: STARTING!
INFO: Log parameter values verbosely: [0]
INFO: Num threads: [2]
INFO: Loaded model model_fp32.tflite
INFO: The input model file size (MB): 0.003472
INFO: Initialized session in 1.52ms.
INFO: Running benchmark for at least 1 iterations and at least 0.5 seconds but terminate if exceeding 150 seconds.
INFO: count=1000 first=120 curr=40 min=38 max=120 avg=45.2 std=8
INFO: Running benchmark for at least 5 iterations and at least 0 seconds but terminate if exceeding 150 seconds.
INFO: count=50 first=41 curr=40 min=38 max=60 avg=42.5 std=3.1
INFO: Inference timings in us: Init: 1520, First inference: 120, Warmup (avg): 45.2, Inference (avg): 42.5
INFO: Note: as the benchmark tool itself affects memory footprint, the following is only APPROXIMATE to the actual memory footprint of the model at runtime. Take the information at your discretion.
INFO: Memory footprint delta from the start of the tool (MB): init=1.25 overall=3.5
INFO: Overall peak memory footprint (MB) via periodic monitoring: 5.75
OUT
"""


@contextlib.contextmanager
def fake_phone(tmp_path: Path, monkeypatch, exec_wrapper=None):
    """The real adb client and server against tests/servers/adbd.py, with the fake benchmark_model pushed from
    tmp_path; yields (device, profile kwargs)."""
    adb = shutil.which("adb")
    if adb is None:
        pytest.skip("Debian's `adb` client is not installed")
    import socket
    import subprocess

    try:
        from tests.servers.adbd import FakeAdbd
    except ImportError:
        from servers.adbd import FakeAdbd
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    (tmp_path / "home").mkdir()
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("ANDROID_ADB_SERVER_PORT", str(port))
    binary = tmp_path / "benchmark_model"
    binary.write_text(FAKE_BENCHMARK_MODEL)
    workdir = tmp_path / "device fs" / "sdeploy"
    try:
        with FakeAdbd(exec_wrapper=exec_wrapper) as dev:
            yield dev, dict(transport="adb", adb=adb, adb_server_port=port, connect=dev.serial, workdir=str(workdir),
                            benchmark_binary=str(binary))
    finally:
        subprocess.run([adb, "-P", str(port), "kill-server"], capture_output=True, stdin=subprocess.DEVNULL,
                       timeout=20)


@pytest.mark.adb
def test_bench_over_adb_with_fake_device(export_dir, tmp_path, monkeypatch):
    """Real adb client + server against tests/servers/adbd.py; benchmark_model is a script printing its format."""
    with fake_phone(tmp_path, monkeypatch) as (dev, kw):
        profile = DeviceProfile.from_fields("phone", {"affinity": "0", "threads": [2], **kw})
        checks = {c.name: c.status for c in check_device(profile)}
        assert checks["reachable"] == "ok" and checks["runtime"] == "ok"
        (r,) = bench_artifact(export_dir / "model_fp32.tflite", profile, runs=5, warmup=1)
        (cmd,) = [c for c in dev.commands if "--graph=" in c]
        for flag in ("taskset 1 ", "--num_threads=2", "--warmup_runs=1", "--num_runs=5", "--min_secs=0",
                     "--enable_op_profiling=true", "--report_peak_memory_footprint=true"):
            assert flag in cmd, (flag, cmd)
        # the same typed objects as the Linux runner's: TimedModel per id, OpTimes from the tool's op profile
        from shufflenet_deploy.bench.backends import backend_for
        from shufflenet_deploy.bench.op_times import OP_METHOD_ANDROID

        with backend_for(profile) as backend:
            timed = backend.measure_many({"m": export_dir / "model_fp32.tflite"}, runs=5, warmup=1, rounds=2)
            ops = backend.op_times(export_dir / "model_fp32.tflite", r, tmp_path, threads=1)
        assert timed["m"].id == "m" and len(timed["m"].times_ms) == 2 and timed["m"].median_ms > 0
        assert ops.op_method == OP_METHOD_ANDROID and ops.overhead_ms == 0.0 and ops.ops
    assert (r.device, r.model, r.precision, r.threads, r.source) == ("phone", "tiny_net", "fp32", 2, "benchmark_model")
    assert r.latency_ms["mean"] == pytest.approx(0.0425) and r.latency_ms["min"] == pytest.approx(0.038)
    assert r.init_ms == pytest.approx(1.52) and r.first_inference_ms == pytest.approx(0.12)
    assert r.peak_rss_mb == pytest.approx(5.75) and r.runs == 50 and r.affinity == [0]
    assert r.artifact["file"] == "model_fp32.tflite" and r.runtime["name"] == "benchmark_model"


@pytest.mark.adb
@pytest.mark.parametrize("cores, mask, cpus", [("little", "7", [0, 1, 2]), ("big", "f8", [3, 4, 5, 6, 7]),
                                               ("prime", "80", [7])])
def test_cores_on_a_phone_pin_benchmark_model_to_that_cluster(export_dir, tmp_path, monkeypatch, cores, mask, cpus):
    """`--cores` on Android: the clusters come from the phone's own /proc/cpuinfo (a Snapdragon 8 Gen 2: 3x A510,
    2x A715 + 2x A710, 1x X3) read over adb, and benchmark_model runs under taskset with that cluster's mask."""
    shims = tmp_path / "shims"
    shims.mkdir()
    cpuinfo = FIXTURES / "cpuinfo" / "sm8550_snapdragon_8gen2.txt"
    (shims / "cat").write_text('#!/bin/sh\nfor a do shift; [ "$a" = /proc/cpuinfo ] && a=' + shlex.quote(str(cpuinfo))
                               + '; set -- "$@" "$a"; done\nexec /bin/cat "$@"\n')
    # this host has 2 CPUs, the phone 8: the phone's taskset is checked by its mask in the command, then dropped
    (shims / "taskset").write_text('#!/bin/sh\nshift\nexec "$@"\n')
    phone_sh = tmp_path / "phone_sh"
    phone_sh.write_text(f"#!/bin/sh\nPATH={shlex.quote(str(shims))}:$PATH exec /bin/sh \"$@\"\n")
    for script in (shims / "cat", shims / "taskset", phone_sh):
        script.chmod(0o755)
    with fake_phone(tmp_path, monkeypatch, exec_wrapper=[str(phone_sh)]) as (dev, kw):
        (r,) = bench_artifact(export_dir / "model_fp32.tflite", DeviceProfile.from_fields("phone", {"threads": [1], **kw}),
                              runs=5, warmup=1, cores=cores)
        (cmd,) = [c for c in dev.commands if "--graph=" in c]
    assert f"taskset {mask} " in cmd, cmd
    assert r.affinity == cpus and r.cores == cores
    assert {c["name"] for c in r.device_facts["clusters"]} == {"Cortex-A510", "Cortex-A715", "Cortex-A710",
                                                                "Cortex-X3"}
    assert any("little cores only" in w for w in r.warnings) is (cores == "little")


@pytest.mark.ssh
def test_ssh_connection_dropped_mid_run_keeps_partial_results(export_dir, tmp_path, sshd_factory):
    """sshd (and every session) is killed while the second measurement runs: the first one survives."""
    import threading

    server = sshd_factory()
    python = _wrapper(tmp_path, f'case "$*" in *"--threads 2"*) exec sleep 30;; esac\nexec "{sys.executable}" "$@"')
    profile = DeviceProfile.from_fields("board", dict(
        transport="ssh", host=server.host, port=server.port, user=server.user, key=str(server.key),
        known_hosts=str(server.known_hosts), ssh_config="/dev/null", connect_timeout=5, python=python, threads=[1, 2]))

    def progress(msg):
        if "threads=2" in msg:
            threading.Timer(1.5, server.kill_all).start()

    with pytest.raises(BenchInterrupted) as err:
        bench_artifact(export_dir / "model_fp32.tflite", profile, progress=progress, timeout=60, **FAST)
    assert "did not finish" not in err.value.message  # a drop, not a timeout
    assert [(r.threads, r.partial, r.transport) for r in err.value.results] == [(1, True, "ssh")]


# ------------------------------------------------------------------------------ the runner's reply, on the host
def _reply() -> dict:
    return {"schema": "sdeploy-runner/1", "times_ms": [1.0, 1.2, 1.1], "first_inference_ms": 3.0, "init_ms": 5.0,
            "runtime": {"name": "ai_edge_litert", "version": "2.1.0"}, "cpu": {"affinity": [0, 1]},
            "conditions": {"before": None, "after": None}, "instances": 1, "machine": "aarch64"}


REPLY_DAMAGE = {  # a device's runner.py reply spoilt; the words of the one DeviceError line besides the device
    "text time": (lambda r: r.__setitem__("times_ms", [1.0, "fast"]), "times_ms is 'fast'"),
    "NaN time": (lambda r: r.__setitem__("times_ms", [float("nan")]), "times_ms is nan"),
    "negative time": (lambda r: r.__setitem__("times_ms", [1.0, -2.0]), "times_ms is -2.0"),
    "times not a list": (lambda r: r.__setitem__("times_ms", "1.0"), "times_ms is '1.0', expected a list"),
    "no times": (lambda r: r.__setitem__("times_ms", []), "has no run times"),
    "no runtime": (lambda r: r.pop("runtime"), "runtime is missing"),
    "text init time": (lambda r: r.__setitem__("init_ms", "5"), "init_ms is '5'"),
}


@pytest.mark.parametrize("damage", sorted(REPLY_DAMAGE))
def test_a_bad_runner_reply_is_one_device_error_not_a_traceback(damage):
    from shufflenet_deploy.bench.runner_backend import parse_reply
    from shufflenet_deploy.errors import DeviceError

    trial = parse_reply(_reply(), "pi", "m.tflite")
    assert trial.times_ms == (1.0, 1.2, 1.1) and trial.runtime.name == "ai_edge_litert" and trial.affinity == [0, 1]
    reply = _reply()
    spoil, words = REPLY_DAMAGE[damage]
    spoil(reply)
    with pytest.raises(DeviceError) as err:
        parse_reply(reply, "pi", "m.tflite")
    line = err.value.one_line()
    assert "\n" not in line and line.startswith("pi: the runner's reply for m.tflite") and words in line, line
    assert err.value.exit_code == 3


def test_a_bad_entry_of_a_many_reply_is_one_device_error():
    from shufflenet_deploy.bench.runner_backend import parse_many_entry
    from shufflenet_deploy.errors import DeviceError

    ok = parse_many_entry({"id": "conv", "times_ms": [0.5, 0.6], "median_ms": 0.55, "error": None}, "pi")
    assert (ok.id, ok.median_ms, ok.error) == ("conv", 0.55, None)
    failed = parse_many_entry({"id": "junk", "times_ms": [], "median_ms": None, "error": "cannot load"}, "pi")
    assert failed.median_ms is None and failed.error == "cannot load"
    with pytest.raises(DeviceError, match=r"median_ms is 'slow'"):
        parse_many_entry({"id": "conv", "times_ms": [0.5], "median_ms": "slow"}, "pi")
