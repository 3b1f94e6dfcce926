"""sdeploy itself on aarch64 (issue 15): the base wheel installed as a board user would, run under qemu-user.

For each aarch64 root — Debian bookworm (Python 3.11, numpy 1.26.4 as constraints.txt pins it) and Debian trixie
(Python 3.13, whatever numpy and LiteRT pip picks: numpy 2.x) — this checkout's wheel and its aarch64
dependencies go from the package registry into a site dir with the host's pip (`--target --platform ...`), and
the *installed* console script runs under `qemu-aarch64-static -cpu cortex-a76 -L ROOT ROOT/usr/bin/python3`:
`devices check local`, `bench` of an x86 export of the bundled model on `--device local`, `report`, and `export`
(which must name the missing [export] extra in one line). Then the same with tflite-runtime instead of LiteRT:
runner.py on its own, and the base CLI.

The local device under qemu needs a devices TOML and three shims (tests/servers/aarch64.py
`emulated_local_device`): without binfmt the host cannot exec the aarch64 sys.executable, and the local
transport's `uname`/`cat /proc/cpuinfo` are the host's x86 tools. Emulated timings mean nothing; these tests prove
that the commands work and what they record (machine, CPU facts, runtime, Python, numpy).

Durations: `pytest -s --durations=0 tests/test_aarch64_cli.py` (the site sizes and versions are printed).
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from helpers import assert_one_line_error, run
from installs import HEAVY, REPO, cached_install, dir_mb, wheel_requires
from servers import aarch64 as a64

pytestmark = [pytest.mark.aarch64, pytest.mark.slow]

SUITES = ("bookworm", "trixie")
CONSTRAINTS = REPO / "constraints.txt"
RUNNER = REPO / "shufflenet_deploy" / "runner.py"
TFLITE_RUNTIME = "tflite-runtime==2.14.0"   # the last release; cp311 manylinux_2_34 aarch64 wheel, none for 3.13
LITERT_ROOT_VERSION = "2.1.0"                # what build_aarch64_root.sh puts in ROOT/opt/sdeploy-site
# tflite-runtime 2.14.0 vs ai-edge-litert 2.1.0 on the bundled model, all 269 digits val images, Cortex-A76:
# fp32 logits differ by at most 3.8e-5 (range +-58); int8 outputs are not bit-identical: 48% of the int8 logits
# differ, by 1-5 steps (1151 by 1, 115 by 2, 16 by 3, 3 by 4, 3 by 5 of 2690), with every top-1 class the same.
# Both runtimes' builtin kernels (--no-xnnpack) disagree as well: it is their kernel versions, not the CPU.
FP32_ATOL = 1e-4
INT8_MAX_STEPS = 8


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONHOME", "PYTHONPATH", "VIRTUAL_ENV", "SDEPLOY_DEVICES", "XDG_CONFIG_HOME")}
    env.update(extra)
    return env


def _pip_target(site: Path, suite: str, *requirements: str, constraints: bool, no_deps: bool = False) -> None:
    """Install REQUIREMENTS' aarch64 wheels for SUITE's Python into SITE with the host pip (pip's HTTP cache keeps
    the downloads, so a rerun does not fetch them again)."""
    argv = [sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check", "--no-warn-conflicts",
            "--target", str(site), *a64.pip_target_args(suite)]
    argv += ["-c", str(CONSTRAINTS)] if constraints else []
    argv += ["--no-deps"] if no_deps else []
    done = run([*argv, *requirements], timeout=1800, env=_clean_env())
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]


def _site(tmp: Path, name: str, suite: str, *requirements: str, constraints: bool, wheel: Path | None = None,
          wheel_deps: bool = True) -> Path:
    """A private site dir TMP/site for SUITE's Python: REQUIREMENTS (and, with WHEEL_DEPS, what WHEEL depends on)
    from the machine's install cache (tests/installs.py: built once per hash of what it installs), copied, with
    this session's WHEEL on top (--no-deps)."""
    def build(path: Path) -> None:
        _pip_target(path, suite, *requirements, *([str(wheel)] if wheel and wheel_deps else []),
                    constraints=constraints)
        for own in [*path.glob("shufflenet_deploy*"), path / "bin" / "sdeploy"]:  # the wheel comes each session
            shutil.rmtree(own) if own.is_dir() else own.unlink(missing_ok=True)

    key = [suite, *requirements, " ".join(a64.pip_target_args(suite)),
           CONSTRAINTS.read_text() if constraints else "", wheel_requires(wheel) if wheel and wheel_deps else ""]
    site = tmp / "site"
    shutil.copytree(cached_install(f"site-{suite}-{name}", key, build), site, symlinks=True)
    if wheel:
        own = tmp / "wheel-only"
        _pip_target(own, suite, str(wheel), constraints=constraints, no_deps=True)
        shutil.copytree(own, site, symlinks=True, dirs_exist_ok=True)
    return site


def _versions(site: Path) -> dict[str, str]:
    """{distribution name: version} from SITE's *.dist-info folders."""
    out = {}
    for info in site.glob("*.dist-info"):
        name, _, version = info.name[: -len(".dist-info")].rpartition("-")
        out[name.lower().replace("_", "-")] = version
    return out


def _assert_no_heavy(site: Path) -> None:
    present = [name for name in HEAVY if (site / name).exists()]
    assert not present, f"the base install pulled in {present}"


def _check_lines(stdout: str) -> dict[str, str]:
    """`sdeploy devices check` output -> {check name: "status detail"} (names may hold a space: "cpu facts")."""
    out = {}
    for line in stdout.splitlines():
        m = re.match(r"^(ok|warn|fail)\s+(\S+(?: \S+)?)\s{2,}(.*)$", line)
        if m:
            out[m.group(2)] = f"{m.group(1)} {m.group(3)}"
    return out


@dataclass
class Arm:
    """An aarch64 root plus a site dir with sdeploy installed for its Python."""

    suite: str
    root: Path
    site: Path

    @property
    def python(self) -> str:
        return a64.python_version(self.suite)

    def env(self, tmp: Path, *, emulated_device: bool = True, site: Path | None = None) -> dict[str, str]:
        home = tmp / "home"
        (home / "tmp").mkdir(parents=True, exist_ok=True)
        env = _clean_env(PYTHONPATH=str(site or self.site), PYTHONNOUSERSITE="1", MPLBACKEND="Agg",
                         HOME=str(home), SDEPLOY_CACHE=str(home / ".sdeploy-cache"), TMPDIR=str(home / "tmp"),
                         TF_CPP_MIN_LOG_LEVEL="2")
        if emulated_device:
            env.update(a64.emulated_local_device(self.root, tmp / "device"))
        return env

    def python_argv(self, *args) -> list[str]:
        return [*a64.python_command(self.root), *map(str, args)]

    def sdeploy(self, tmp: Path, *args, timeout: float = 900, emulated_device: bool = True,
                site: Path | None = None) -> subprocess.CompletedProcess:
        """The installed console script (SITE/bin/sdeploy), run by the aarch64 python from a folder outside the
        repo."""
        work = tmp / "work"
        work.mkdir(parents=True, exist_ok=True)
        script = (site or self.site) / "bin" / "sdeploy"
        return run(self.python_argv(script, *args), timeout=timeout, cwd=work,
                    env=self.env(tmp, emulated_device=emulated_device, site=site))


# ------------------------------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def x86_export(shared_export) -> Path:
    """`sdeploy export` of the bundled g3 model by the x86 .venv (the session's shared export): what a user brings
    to the board."""
    out = shared_export("g3").path
    assert (out / "model_int8.tflite").is_file() and (out / "model_fp32.tflite").is_file()
    return out


@pytest.fixture(scope="module", params=SUITES)
def arm(request, sdeploy_wheel, tmp_path_factory) -> Arm:
    """The base wheel + its aarch64 dependencies for the suite's Python (bookworm: pinned by constraints.txt)."""
    suite = request.param
    root = request.getfixturevalue("aarch64_root" if suite == "bookworm" else "aarch64_root_trixie")
    t0 = time.monotonic()
    site = _site(tmp_path_factory.mktemp(f"site_{suite}"), "base", suite, constraints=suite == "bookworm",
                 wheel=sdeploy_wheel)
    versions = _versions(site)
    print(f"\n[{suite}] base site: {dir_mb(site):.0f} MB in {time.monotonic() - t0:.0f} s; numpy "
          f"{versions.get('numpy')}, ai-edge-litert {versions.get('ai-edge-litert')}")
    return Arm(suite, root, site)


@pytest.fixture(scope="module")
def val_inputs(x86_export, tmp_path_factory):
    """Every bundled digits val image preprocessed as the export's manifest says (float32 NHWC), and the index of
    the first "7"."""
    from shufflenet_deploy.data.digits import ensure_digits
    from shufflenet_deploy.data.preprocess import Preprocessing

    manifest = json.loads((x86_export / "manifest.json").read_text())
    pre = Preprocessing.from_dict(manifest["preprocessing"])
    val = ensure_digits(pre.input_size) / "val"
    images = [(int(d.name), p) for d in sorted(val.iterdir()) if d.is_dir() for p in sorted(d.iterdir())]
    x = np.stack([pre.normalize(pre.pixels_from_path(p)) for _, p in images]).astype(np.float32)
    d = tmp_path_factory.mktemp("val_inputs")
    np.save(d / "val.npy", x)
    seven = next(i for i, (label, _) in enumerate(images) if label == 7)
    np.save(d / "seven.npy", x[seven][None])
    return {"all": d / "val.npy", "seven": d / "seven.npy", "labels": np.array([lab for lab, _ in images])}


# ------------------------------------------------------------------------------- the base install, two roots
def test_base_install_is_light_and_has_the_suites_numpy(arm, tmp_path):
    _assert_no_heavy(arm.site)
    versions = _versions(arm.site)
    assert "ai-edge-litert" in versions and "tflite-runtime" not in versions
    if arm.suite == "bookworm":
        assert versions["numpy"] == "1.26.4"              # constraints.txt, like the x86 .venv
    else:
        assert versions["numpy"].split(".")[0] == "2"     # no cp313 wheel of 1.26.4: pip's choice
    assert (arm.site / "bin" / "sdeploy").is_file()
    done = run(arm.python_argv("-c", "import platform, sys; print(platform.machine(), sys.version.split()[0])"),
                timeout=120, env=arm.env(tmp_path, emulated_device=False))
    assert done.returncode == 0, done.stderr
    machine, version = done.stdout.split()
    assert machine == "aarch64" and version.startswith(arm.python + "."), done.stdout


def test_devices_check_local(arm, tmp_path):
    # The built-in local profile re-executes sys.executable, which the host cannot exec without binfmt: one
    # `fail` line naming the reason (exit 3), not a traceback.
    done = arm.sdeploy(tmp_path / "plain", "devices", "check", "local", timeout=300, emulated_device=False)
    assert done.returncode == 3, done.stdout + done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    runtime = _check_lines(done.stdout)["runtime"]
    assert runtime.startswith("fail") and "Exec format error" in runtime, runtime

    done = arm.sdeploy(tmp_path, "devices", "check", "local", timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    checks = _check_lines(done.stdout)
    assert checks["reachable"].startswith("ok") and "arch aarch64" in checks["reachable"], done.stdout
    assert "0xd0b" in checks["cpu"], done.stdout
    assert checks["cpu facts"].startswith("ok") and "4x Cortex-A76" in checks["cpu facts"], done.stdout
    assert "dotprod" in checks["cpu facts"] and "asimddp" in checks["cpu facts"], done.stdout
    assert checks["runtime"].startswith("ok") and "ai_edge_litert" in checks["runtime"], done.stdout
    assert f"Python {arm.python}." in checks["runtime"], checks["runtime"]


def test_bench_and_report(arm, x86_export, tmp_path):
    out = tmp_path / "bench"
    done = arm.sdeploy(tmp_path, "bench", x86_export, "--device", "local", "--json", "--runs", "3", "--warmup", "1",
                       "--no-peak", "-o", out)
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout) == json.loads((out / "bench.json").read_text())
    doc = json.loads((out / "bench.json").read_text())
    assert not doc["partial"]
    assert {r["precision"] for r in doc["results"]} == {"fp32", "int8"}
    for r in doc["results"]:
        assert (r["device"], r["machine"], r["transport"]) == ("local", "aarch64", "local")
        assert r["runtime"]["name"] == "ai_edge_litert", r["runtime"]
        assert r["latency_ms"]["p50"] > 0 and r["runs"] == 3
        assert r["python"].startswith(arm.python + "."), r["python"]
        assert r["numpy"] == _versions(arm.site)["numpy"]
        assert r["cpu"]["parts"] == ["0xd0b"]
        facts = r["device_facts"]
        assert facts["arch"] == "arm"
        assert [c["name"] for c in facts["clusters"]] == ["Cortex-A76"]
        assert {c["name"] for c in facts["cores"]} == {"Cortex-A76"}
        assert facts["isa"]["dotprod"] and facts["isa"]["neon"]
        assert all("asimddp" in c["features"] for c in facts["cores"])
        assert "asimddp" in facts["int8"]
        assert r["macs"] and r["gmacs_per_s"] > 0

    report = tmp_path / "report"
    done = arm.sdeploy(tmp_path, "report", out / "bench.json", "-o", report)
    assert done.returncode == 0, done.stderr[-3000:]
    assert (report / "report.html").is_file() and (report / "report.html").stat().st_size > 0
    assert "Traceback" not in done.stderr


def test_export_names_the_missing_extra(arm, bundled_checkpoint, tmp_path):
    done = arm.sdeploy(tmp_path, "export", "--checkpoint", bundled_checkpoint("g3"), "-o", tmp_path / "x",
                       timeout=300, emulated_device=False)
    line = assert_one_line_error(done, "[export]")
    # bookworm's 3.11 and trixie's 3.13 both take [export] (pyproject.toml's markers): the line says how to install
    assert "pip install 'shufflenet-deploy[export]'" in line and "needs Python" not in line, line
    assert not (tmp_path / "x").exists()


# ------------------------------------------------------------------------------ tflite-runtime (bookworm only)
@pytest.fixture(scope="module")
def tflite_runtime_site(aarch64_root, tmp_path_factory) -> Path:
    """numpy 1.26.4 + tflite-runtime 2.14.0 and nothing else: a board whose only interpreter is tflite-runtime."""
    site = _site(tmp_path_factory.mktemp("site_tflite_runtime"), "tflite-runtime", "bookworm", "numpy",
                 TFLITE_RUNTIME, constraints=True)
    versions = _versions(site)
    assert set(versions) == {"numpy", "tflite-runtime"}, versions
    print(f"\n[bookworm] numpy + tflite-runtime site: {dir_mb(site):.0f} MB; numpy {versions['numpy']}")
    return site


def _runner(root: Path, site: Path, model: Path, tmp: Path, *args) -> dict:
    env = _clean_env(PYTHONPATH=str(site), PYTHONNOUSERSITE="1", TF_CPP_MIN_LOG_LEVEL="2")
    done = run([*a64.python_command(root), RUNNER, model, *args], timeout=600, env=env, cwd=tmp)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["error"] is None and report["machine"] == "aarch64", report
    return report


# One interpreter over many inputs (runner.py's own runtime choice and quantization, so both runtimes get the same
# input bytes): the raw outputs of every input, stacked.
BATCH_SCRIPT = '''\
import importlib.util, json, sys
import numpy as np
runner_path, model, inputs, out = sys.argv[1:5]
spec = importlib.util.spec_from_file_location("sdeploy_runner", runner_path)
runner = importlib.util.module_from_spec(spec)
spec.loader.exec_module(runner)
cls, _, name, version = runner.load_runtime()
interp = cls(model_path=model, num_threads=1)
interp.allocate_tensors()
i, o = interp.get_input_details()[0], interp.get_output_details()[0]
ys = []
for x in np.load(inputs):
    interp.set_tensor(i["index"], runner.quantize(np, x[None], i))
    interp.invoke()
    ys.append(interp.get_tensor(o["index"])[0].copy())
np.save(out, np.stack(ys))
print(json.dumps({"name": name, "version": version}))
'''


def test_runner_with_tflite_runtime_matches_litert(aarch64_root, tflite_runtime_site, x86_export, val_inputs,
                                                   tmp_path):
    litert_site = aarch64_root / "opt" / "sdeploy-site"
    script = tmp_path / "run_batch.py"
    script.write_text(BATCH_SCRIPT)
    for precision in ("int8", "fp32"):
        model = x86_export / f"model_{precision}.tflite"
        # runner.py itself, on a real "7": which interpreter ran is in its JSON
        outs = {}
        for name, site in (("tflite_runtime", tflite_runtime_site), ("ai_edge_litert", litert_site)):
            saved = tmp_path / f"{name}_{precision}_seven.npy"
            report = _runner(aarch64_root, site, model, tmp_path, "--runs", "2", "--warmup", "0", "--instances", "1",
                             "--input", val_inputs["seven"], "--save-output", saved)
            expected = {"tflite_runtime": "2.14.0", "ai_edge_litert": LITERT_ROOT_VERSION}[name]
            assert report["runtime"] == {"name": name, "version": expected}, report["runtime"]
            assert report["numpy"] == "1.26.4" and report["python"].startswith("3.11.")
            outs[name] = np.load(saved)
            assert int(outs[name].argmax()) == 7
        # every val image through each runtime
        batch = {}
        for name, site in (("tflite_runtime", tflite_runtime_site), ("ai_edge_litert", litert_site)):
            saved = tmp_path / f"{name}_{precision}_val.npy"
            env = _clean_env(PYTHONPATH=str(site), PYTHONNOUSERSITE="1", TF_CPP_MIN_LOG_LEVEL="2")
            done = run([*a64.python_command(aarch64_root), script, RUNNER, model, val_inputs["all"], saved],
                        timeout=900, env=env, cwd=tmp_path)
            assert done.returncode == 0, done.stderr[-2000:]
            assert json.loads(done.stdout.strip().splitlines()[-1])["name"] == name
            batch[name] = np.load(saved)
        a, b = (batch[n].astype(np.float64) for n in ("tflite_runtime", "ai_edge_litert"))
        diff = np.abs(a - b)
        top1 = float((a.argmax(1) == b.argmax(1)).mean())
        print(f"\n{precision}: tflite-runtime 2.14.0 vs ai-edge-litert {LITERT_ROOT_VERSION} over {len(a)} val "
              f"images: max |diff| {diff.max():.3g}, {100 * (diff > 0).mean():.0f}% of outputs differ, top-1 "
              f"agreement {100 * top1:.1f}%")
        seven = np.abs(outs["tflite_runtime"].astype(np.float64) - outs["ai_edge_litert"].astype(np.float64)).max()
        if precision == "fp32":
            assert batch["tflite_runtime"].dtype == np.float32
            assert diff.max() <= FP32_ATOL and seven <= FP32_ATOL
        else:
            assert batch["tflite_runtime"].dtype == np.int8
            assert diff.max() <= INT8_MAX_STEPS and seven <= INT8_MAX_STEPS
        assert top1 >= 0.99
        assert (b.argmax(1) == val_inputs["labels"]).mean() >= 0.95   # a trained model on real images


def test_base_cli_with_tflite_runtime(aarch64_root, sdeploy_wheel, x86_export, tmp_path):
    """The base CLI with tflite-runtime in place of ai-edge-litert: bench works and says which interpreter ran;
    the peak kernels (which need LiteRT's flatbuffer schema) become one reason instead of a crash."""
    site = _site(tmp_path, "cli-tflite-runtime", "bookworm", "click", "rich", "numpy", "matplotlib", "pillow",
                 TFLITE_RUNTIME, constraints=True, wheel=sdeploy_wheel, wheel_deps=False)
    versions = _versions(site)
    assert "ai-edge-litert" not in versions and versions["tflite-runtime"] == "2.14.0"
    _assert_no_heavy(site)
    print(f"\n[bookworm] base CLI + tflite-runtime site: {dir_mb(site):.0f} MB; numpy {versions['numpy']}")
    arm = Arm("bookworm", aarch64_root, site)

    done = arm.sdeploy(tmp_path, "devices", "check", "local", timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "tflite_runtime 2.14.0" in done.stdout

    out = tmp_path / "bench"
    # the quick preset: a user's quick look on a board, runs and instances as the preset says
    done = arm.sdeploy(tmp_path, "bench", x86_export, "--device", "local", "--json", "--preset", "quick", "-o", out)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Traceback" not in done.stderr
    doc = json.loads((out / "bench.json").read_text())
    assert {r["precision"] for r in doc["results"]} == {"fp32", "int8"}
    for r in doc["results"]:
        assert r["runtime"] == {"name": "tflite_runtime", "version": "2.14.0"}, r["runtime"]
        assert r["machine"] == "aarch64" and r["latency_ms"]["p50"] > 0 and r["runs"] == 10
        assert r["peak_fraction"] is None
        assert "ai-edge-litert's schema" in r["peak_missing_reason"], r["peak_missing_reason"]
        assert [c["name"] for c in r["device_facts"]["clusters"]] == ["Cortex-A76"]

    done = arm.sdeploy(tmp_path, "report", out, "-o", tmp_path / "report")
    assert done.returncode == 0, done.stderr[-3000:]
    assert (tmp_path / "report" / "report.html").is_file()

    # a command that cannot do without the schema says so in one line, before measuring anything
    done = arm.sdeploy(tmp_path, "bench", x86_export, "--device", "local", "--op-profile", "--no-peak",
                       "-o", tmp_path / "ops")
    assert_one_line_error(done, "ai-edge-litert's schema", "pip install ai-edge-litert")
