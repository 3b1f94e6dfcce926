"""Packaging facts a user relies on, checked fast: what the base install declares, the aarch64 pins, the wheel's
contents, and the one line a missing extra gives (with the extra's packages hidden from a real `sdeploy`)."""
from __future__ import annotations

import subprocess
import sys
import tomllib
import zipfile

import pytest

from installs import HEAVY, REPO

PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]


def _name(requirement: str) -> str:
    return requirement.split(";")[0].split("=")[0].split("<")[0].split(">")[0].split("[")[0].strip().lower()


def test_the_base_install_declares_no_conversion_stack():
    base = {_name(r) for r in PYPROJECT["dependencies"]}
    assert base == {"numpy", "click", "rich", "pillow", "matplotlib", "ai-edge-litert"}
    assert PYPROJECT["requires-python"] == ">=3.11"      # Pi OS bookworm 3.11 and trixie 3.13
    export = PYPROJECT["optional-dependencies"]["export"]  # one stack per Python range, by marker
    assert all("python_version < '3.12'" in r or "python_version >= '3.12'" in r for r in export)
    for marker in ("python_version < '3.12'", "python_version >= '3.12'"):
        assert {"torch", "onnx2tf", "tensorflow", "onnx"} <= {_name(r) for r in export if marker in r}


def newer_python_export() -> list[str]:
    return [r.split(";")[0].strip() for r in PYPROJECT["optional-dependencies"]["export"]
            if "python_version >= '3.12'" in r]


@pytest.mark.parametrize("python,arch", [("3.12", "x86_64"), ("3.13", "x86_64"), ("3.12", "aarch64"),
                                         ("3.13", "aarch64")])
def test_the_newer_python_export_extra_resolves_to_wheels_only(python, arch, tmp_path):
    """Python 3.12/3.13's [export] set (onnx2tf 1.28.8, TensorFlow 2.21) installs from wheels on both arches."""
    tags = [f"--platform=manylinux_2_{v}_{arch}" for v in (17, 27, 28, 31, 34, 35)]
    tags.append(f"--platform=manylinux2014_{arch}")
    # torch left out: users take it from PyTorch's CPU index (docs/install.md), whose wheels this registry lacks
    done = subprocess.run([sys.executable, "-m", "pip", "install", "--dry-run", "--quiet", "--ignore-installed",
                           "--only-binary=:all:", f"--python-version={python}", *tags, "--target", str(tmp_path),
                           *[r for r in newer_python_export() if not r.startswith("torch")]],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]


def test_constraints_aarch64_is_derived_from_constraints():
    committed = (REPO / "constraints-aarch64.txt").read_text()
    subprocess.run(["sh", str(REPO / "scripts" / "aarch64_constraints.sh")], check=True, timeout=60)
    assert (REPO / "constraints-aarch64.txt").read_text() == committed, "run scripts/aarch64_constraints.sh"
    pins = dict(line.split("==") for line in committed.splitlines() if "==" in line and not line.startswith("#"))
    assert pins["onnx2tf"] == "1.28.8" and "onnxsim" not in pins and "onnxoptimizer" not in pins
    x86 = dict(line.split("==") for line in (REPO / "constraints.txt").read_text().splitlines()
               if "==" in line and not line.startswith("#"))
    assert pins["tensorflow"] == x86["tensorflow"] and pins["ai-edge-litert"] == x86["ai-edge-litert"]


def test_the_wheel_carries_the_bundled_models(sdeploy_wheel):
    names = zipfile.ZipFile(sdeploy_wheel).namelist()
    for model in (REPO / "models").glob("*.pt"):
        assert f"shufflenet_deploy/_models/{model.name}" in names
        assert f"shufflenet_deploy/_models/{model.with_suffix('.md').name}" in names
    assert "shufflenet_deploy/runner.py" in names and not any(n.startswith("tests/") for n in names)


HIDE = f"""
import importlib.abc, sys
class Hide(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] in {list(HEAVY)!r}:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
sys.meta_path.insert(0, Hide())
for name in list(sys.modules):
    if name.split(".")[0] in {list(HEAVY)!r}:
        del sys.modules[name]
import importlib.util
importlib.util.find_spec = lambda name, *a, _real=importlib.util.find_spec: (
    None if name.split(".")[0] in {list(HEAVY)!r} else _real(name, *a))
from shufflenet_deploy.cli import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.parametrize("args, extra", [
    (["export", "shufflenet_v1_g3_0.5x"], "[export]"),
    (["train", "shufflenet_v1_g3_0.5x", "--data", "digits", "-o", "m.pt"], "[train]"),
    (["sweep", "--models", "shufflenet_v1_g3_0.5x", "--device", "local"], "[export]"),
    (["data", "digits", "-o", "d"], "[export]"),
])
def test_a_missing_extra_is_one_line_naming_it(tmp_path, args, extra):
    proc = subprocess.run([sys.executable, "-c", HIDE, *args], cwd=tmp_path, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: sdeploy ") and extra in lines[0], proc.stderr
    assert f"pip install 'shufflenet-deploy{extra}'" in lines[0]
    assert list(tmp_path.iterdir()) == []
