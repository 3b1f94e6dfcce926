"""Build sdeploy's wheel once per test session and install it as a user would: not editable, outside the tree.

Shared by tests/test_install.py (fresh x86_64 venvs) and tests/test_aarch64_cli.py (the base wheel with its
aarch64 dependencies in the qemu roots). The wheel is built from this checkout with the project venv's
setuptools (no build isolation: no download), into a temp folder; setup.py puts the bundled models inside it.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# what the base install must not contain: the conversion and training stack
HEAVY = ("torch", "tensorflow", "onnx2tf", "onnx", "onnxruntime", "sklearn", "tf_keras")


def build_wheel(outdir: Path) -> Path:
    """`pip wheel .` of this checkout into OUTDIR; returns the .whl path."""
    outdir.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                           "--disable-pip-version-check", str(REPO), "-w", str(outdir)],
                          capture_output=True, text=True, cwd=outdir, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    wheels = sorted(outdir.glob("shufflenet_deploy-*.whl"))
    assert len(wheels) == 1, wheels
    return wheels[0]


def dir_mb(path: Path) -> float:
    """Size of a folder's files in MB (what `du` would say, without following symlinks)."""
    return sum(p.lstat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink()) / 1e6
