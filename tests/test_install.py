"""The wheel as a user installs it: not editable, in its own venv, run from a folder outside the source tree.

The venvs' third-party packages are installed once per machine and reused while what they install is unchanged
(tests/installs.py `cached_venv`: keyed by the wheel's requirements, the extras, constraints.txt and the Python);
this session's freshly built wheel is installed on top, so what runs is always this checkout.

The base install (`pip install shufflenet-deploy`) must hold no torch, TensorFlow or onnx2tf and still bench,
check, report and compare; a command that needs `[export]` or `[train]` says which extra in one line (exit 2).
`[export]` must run `sdeploy demo` from any folder, with the bundled models found inside the wheel. Each venv's
size is printed (the closing note of issue 15 quotes them): `pytest -s tests/test_install.py`.
"""
from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from helpers import assert_one_line_error, run
from installs import HEAVY, REPO, cached_venv, dir_mb, find_python, layered_venv

pytestmark = pytest.mark.slow
CONSTRAINTS = REPO / "constraints.txt"


def _venv(wheel: Path, extras: str = "", python: str | None = None) -> Path:
    """A venv with the wheel (and EXTRAS) installed from the registry, pinned by constraints.txt (Python 3.11)
    or constraints-py313.txt (another PYTHON); its dependencies are cached by their hash (tests/installs.py), the
    wheel is this session's."""
    t0 = time.monotonic()
    venv = (cached_venv(wheel, CONSTRAINTS, extras) if python is None
            else cached_venv(wheel, REPO / "constraints-py313.txt", extras, python=python))
    print(f"\nvenv{extras or ' (base)'}: {dir_mb(venv):.0f} MB, ready in {time.monotonic() - t0:.0f} s")
    return venv


def _run(venv: Path, cwd: Path, *args, timeout=900) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(PATH=f"{venv / 'bin'}:{env.get('PATH', '/usr/bin:/bin')}", MPLBACKEND="Agg",
               SDEPLOY_CACHE=str(cwd / ".sdeploy-cache"))
    return run([venv / "bin" / "sdeploy", *args], cwd=cwd, env=env, timeout=timeout)


@pytest.fixture(scope="module")
def export_dir(shared_export) -> Path:
    """The bundled model exported by the project's own (full) install: what a user brings to a board."""
    return shared_export("g3").path


@pytest.fixture(scope="module")
def base_venv(sdeploy_wheel) -> Path:
    return _venv(sdeploy_wheel)


def test_the_base_install_holds_no_conversion_stack(base_venv):
    code = ("import importlib.util, json; "
            f"print(json.dumps([m for m in {list(HEAVY)!r} if importlib.util.find_spec(m)]))")
    proc = subprocess.run([str(base_venv / "bin" / "python"), "-c", code], capture_output=True, text=True, timeout=60)
    assert json.loads(proc.stdout) == [], proc.stdout + proc.stderr
    assert dir_mb(base_venv) < 600


def test_base_commands_work_from_any_folder(base_venv, export_dir, tmp_path):
    assert _run(base_venv, tmp_path, "zoo").returncode == 0
    flops = _run(base_venv, tmp_path, "flops", "shufflenet_v1_g3_1.0x")
    assert flops.returncode == 0 and "136.50 M MACs" in flops.stdout, flops.stdout + flops.stderr
    check = _run(base_venv, tmp_path, "devices", "check", "local")
    assert check.returncode == 0, check.stdout + check.stderr

    bench = _run(base_venv, tmp_path, "bench", export_dir, "--device", "local", "--runs", "20", "--warmup", "2",
                 "--no-peak", "--json", "-o", tmp_path / "bench")
    assert bench.returncode == 0, bench.stderr[-3000:]
    results = json.loads(bench.stdout)["results"]
    assert {r["precision"] for r in results} == {"fp32", "int8"}
    assert all(r["runtime"]["name"] == "ai_edge_litert" and r["latency_ms"]["p50"] > 0 for r in results)
    assert all(r["macs"] == results[0]["macs"] and r["macs"] > 1e6 for r in results)

    report = _run(base_venv, tmp_path, "report", tmp_path / "bench" / "bench.json", "-o", tmp_path / "report")
    assert report.returncode == 0, report.stderr[-3000:]
    assert (tmp_path / "report" / "report.html").is_file()

    same = _run(base_venv, tmp_path, "compare", tmp_path / "bench" / "bench.json", tmp_path / "bench" / "bench.json")
    assert same.returncode == 0 and "same" in same.stdout, same.stdout + same.stderr

    fixture = REPO / "tests" / "fixtures" / "benchmark_model_output" / "sample_A_old_format_op_profiling.md"
    parsed = _run(base_venv, tmp_path, "bench", "--parse", fixture, "--json", "-o", tmp_path / "parsed")
    assert parsed.returncode == 0, parsed.stderr[-3000:]
    assert json.loads(parsed.stdout)["results"][0]["runtime"]["name"] == "benchmark_model"


@pytest.mark.parametrize("args, extra", [
    (["export", "shufflenet_v1_g3_0.5x", "-o", "x"], "[export]"),
    (["demo"], "[export]"),
    (["train", "shufflenet_v1_g3_0.5x", "--data", "d", "-o", "m.pt"], "[train]"),
    (["data", "digits", "-o", "d"], "[export]"),
    (["sweep", "--models", "shufflenet_v1_g3_0.5x", "--device", "local", "-o", "s"], "[export]"),
])
def test_a_command_whose_extra_is_missing_names_it(base_venv, tmp_path, args, extra):
    proc = _run(base_venv, tmp_path, *args)
    assert_one_line_error(proc, extra, "pip install 'shufflenet-deploy" + extra)
    assert not any(p.name in ("x", "s", "m.pt") for p in tmp_path.iterdir())


def test_export_extra_runs_the_demo_from_any_folder(tmp_path, sdeploy_wheel):
    """The wheel, not editable, runs the demo from a folder outside the tree, its bundled model found inside the
    wheel; on 3.11 its [export] stack is the project venv's (tests/installs.py `layered_venv` says why), on 3.13
    the next test installs it from the registry."""
    venv = layered_venv(sdeploy_wheel, tmp_path / "venv")
    found = subprocess.run([str(venv / "bin" / "python"), "-c", "import shufflenet_deploy; "
                            "print(shufflenet_deploy.__file__)"], capture_output=True, text=True, timeout=120,
                           cwd=tmp_path)
    assert found.stdout.startswith(str(venv)), found.stdout + found.stderr   # the wheel's copy, not the tree's
    work = tmp_path / "elsewhere"
    work.mkdir()
    proc = _run(venv, work, "demo", "--runs", "10", "--no-pairs", timeout=1800)  # pairs: test_demo.py
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert (work / "demo_out" / "report" / "report.html").is_file()
    manifest = json.loads((work / "demo_out" / "export" / "manifest.json").read_text())
    assert manifest["model"] == "shufflenet_v1_g3_0.5x"
    assert "/site-packages/shufflenet_deploy/_models/" in manifest["checkpoint"]  # inside the wheel, not the tree


def test_export_extra_on_python_313_runs_the_demo_and_exports_a_zoo_model(tmp_path, sdeploy_wheel):
    """Issue 23: `pip install 'shufflenet-deploy[export]'` on Python 3.13 (onnx2tf 1.28.8 on TensorFlow 2.21,
    numpy 2: pyproject.toml's markers) runs the demo, and exports a zoo model at an unusual size with real-photo
    calibration, each passing its own verification (the matrix of sizes runs on 3.11: test_export_matrix.py)."""
    from shufflenet_deploy.data.digits import ensure_digits

    python = find_python("3.13")
    if python is None:
        pytest.skip("no Python 3.13 here (python3.13 on PATH or pyenv's): the 3.13 export leg needs one")
    venv = _venv(sdeploy_wheel, "[export]", python=python)
    proc = subprocess.run([str(venv / "bin" / "python"), "-c", "import sys, tensorflow, numpy; "
                           "print(sys.version_info[:2], tensorflow.__version__, numpy.__version__)"],
                          capture_output=True, text=True, timeout=300)
    assert proc.stdout.startswith("(3, 13) 2.21") and " 2." in proc.stdout.split(") ")[1], proc.stdout + proc.stderr
    proc = _run(venv, tmp_path, "demo", "--runs", "10", "--no-pairs", timeout=1800)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    demo = json.loads((tmp_path / "demo_out" / "export" / "manifest.json").read_text())
    assert all(a["parity"]["passed"] for a in demo["artifacts"].values())
    calib = ensure_digits(96) / "calib"  # real scans, resized for this size by the export's own preprocessing
    proc = _run(venv, tmp_path, "export", "shufflenet_v2_0.5x", "--input-size", "96,80", "--calib", calib,
                "-o", tmp_path / "v2", timeout=1800)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    manifest = json.loads((tmp_path / "v2" / "manifest.json").read_text())
    arts = manifest["artifacts"]
    assert manifest["input_size"] == [96, 80] and arts["int8"]["inputs"][0]["shape"] == [1, 96, 80, 3]
    assert all(arts[p]["parity"]["passed"] and arts[p]["xnnpack"]["partitions"] == 1 for p in ("fp32", "int8"))
    assert all(r["matched"] for r in manifest["int8_layers"]["rows"])


def test_the_github_action_script_gates_a_regression(base_venv, export_dir, tmp_path):
    """scripts/action_bench.sh (all of action.yml's work) on the base install: bench, summary, compare, outputs."""
    def action(out: Path, baseline: Path | None = None) -> subprocess.CompletedProcess:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "SDEPLOY_"))}
        env.update(SDEPLOY_SOURCE=str(REPO), SDEPLOY_VENV=str(base_venv), SDEPLOY_EXPORT=str(export_dir),
                   SDEPLOY_RUNS="40", SDEPLOY_OUT=str(out), SDEPLOY_BASELINE=str(baseline or ""),
                   SDEPLOY_MAX_REGRESSION="5", SDEPLOY_CACHE=str(tmp_path / "cache"), MPLBACKEND="Agg")
        return subprocess.run(["bash", str(REPO / "scripts" / "action_bench.sh")], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=900)

    first = action(tmp_path / "base")
    assert first.returncode == 0, first.stdout[-2000:] + first.stderr[-2000:]
    assert "verdict=none" in (tmp_path / "base" / "outputs.txt").read_text()
    assert "| fp32 |" in (tmp_path / "base" / "summary.md").read_text()

    # a baseline 3x faster than the first run (far beyond the run-to-run noise of a shared machine, where a second
    # run can come out 20-30% faster than the first): the new run is a regression, exit 1
    doc = json.loads((tmp_path / "base" / "bench" / "bench.json").read_text())
    for r in doc["results"]:
        r["times_ms"] = [t / 3 for t in r["times_ms"]]
        r["latency_ms"] = {k: v / 3 if isinstance(v, float) else v for k, v in r["latency_ms"].items()}
    fast = tmp_path / "fast-baseline.json"
    fast.write_text(json.dumps(doc))
    second = action(tmp_path / "new", baseline=fast)
    assert second.returncode == 1, second.stdout[-2000:] + second.stderr[-2000:]
    assert "verdict=regression" in (tmp_path / "new" / "outputs.txt").read_text()
    assert "regression" in (tmp_path / "new" / "summary.md").read_text()
