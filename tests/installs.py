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


def find_python(version: str) -> str | None:
    """An interpreter of VERSION ("3.13") that runs: pythonX.Y on PATH (GitHub's setup-python), else pyenv's own
    (a pyenv shim named pythonX.Y exists but refuses to run a version that is not selected)."""
    import glob
    import os
    import shutil

    root = os.environ.get("PYENV_ROOT", os.path.expanduser("~/.pyenv"))
    for candidate in [shutil.which(f"python{version}"),
                      *sorted(glob.glob(os.path.join(root, "versions", f"{version}.*", "bin", f"python{version}")))]:
        if candidate and subprocess.run([candidate, "-c", "pass"], capture_output=True, timeout=60).returncode == 0:
            return candidate
    return None


def dir_mb(path: Path) -> float:
    """Size of a folder's files in MB (what `du` would say, without following symlinks)."""
    return sum(p.lstat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink()) / 1e6


# ------------------------------------------------------------------------------ installs cached by their hash
# Venvs and aarch64 site dirs hold the same third-party packages run after run; only sdeploy's own wheel changes.
# So what the wheel *depends on* is installed once per machine into .cache/test-installs/NAME-KEY (KEY: a hash of
# the wheel's Requires-Dist lines, the extras, the constraints file, the Python and platform, the pip arguments),
# and the freshly built wheel goes on top each session (--no-deps). A change to any of those is a new key: a new
# install from scratch, and the stale one is removed. The real path is used (CI's .cache is a symlink into the
# machine cache, and a venv made through a clone's symlink would point its scripts into that clone).
INSTALL_CACHE = REPO / ".cache" / "test-installs"


def wheel_requires(wheel: Path) -> str:
    """The wheel's Requires-Dist lines (its METADATA): what a pip install of it brings in."""
    import zipfile

    with zipfile.ZipFile(wheel) as z:
        meta = next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))
        lines = z.read(meta).decode().splitlines()
    return "\n".join(line for line in lines if line.startswith("Requires-Dist:"))


def cached_install(name: str, key_parts: list[str], build) -> Path:
    """INSTALL_CACHE/NAME-KEY, made by BUILD(folder) when missing (at its final path, marked complete when done;
    under a file lock, so concurrent sessions or xdist workers build it once)."""
    import hashlib
    import shutil

    from filelock import FileLock

    cache = INSTALL_CACHE.resolve() if INSTALL_CACHE.exists() else INSTALL_CACHE
    cache.mkdir(parents=True, exist_ok=True)
    cache = cache.resolve()
    key = hashlib.sha256("\n".join([sys.version, *key_parts]).encode()).hexdigest()[:16]
    final = cache / f"{name}-{key}"
    with FileLock(str(cache / f"{name}.lock")):
        if not (final / ".complete").exists():
            for stale in cache.glob(f"{name}-" + "?" * 16):  # this entry's older keys only, not NAME-other-...
                shutil.rmtree(stale, ignore_errors=True)
            build(final)  # a venv must be made at its final path (its scripts name it)
            (final / ".complete").write_text(key)
    return final


def cached_venv(wheel: Path, constraints: Path, extras: str = "", python: str = sys.executable) -> Path:
    """A venv of PYTHON with the wheel's dependencies (and EXTRAS') from the registry pinned by CONSTRAINTS, built
    once per machine, with this session's WHEEL installed on top: what `pip install shufflenet-deploy{extras}`
    gives."""
    def build(path: Path) -> None:
        subprocess.run([python, "-m", "venv", "--clear", str(path)], check=True, timeout=300)
        _pip(path, "install", "-c", str(constraints), f"{wheel}{extras}")
        _pip(path, "uninstall", "-y", "shufflenet-deploy")   # the dependencies stay; the wheel comes each session

    name, key = "venv-" + (extras.strip("[]") or "base"), [wheel_requires(wheel), extras, constraints.read_text()]
    if python != sys.executable:  # another interpreter: its own entry, keyed by its version too
        version = subprocess.run([python, "-c", "import sys; print(sys.version_info[:2], sys.version)"],
                                 capture_output=True, text=True, check=True, timeout=60).stdout
        name += "-py" + ".".join(version.split(")")[0].strip("( ").split(", "))
        key.append(version)
    venv = cached_install(name, key, build)
    _pip(venv, "install", "--no-deps", "--force-reinstall", str(wheel))
    return venv


def layered_venv(wheel: Path, folder: Path) -> Path:
    """A venv at FOLDER holding only this session's WHEEL (not editable), whose dependencies are the running
    project venv's: its site-packages is on the new venv's path (a plain path line in a .pth file, so the project's
    own editable install there is not seen). For the 3.11 `[export]` demo: that venv was installed from the same
    Requires-Dist and constraints.txt by `make` (CI's venv stage), so installing the 3.6 GB stack a second time
    (~4.5 minutes on a fresh machine) would prove nothing new; what this proves is the wheel itself."""
    import sysconfig

    subprocess.run([sys.executable, "-m", "venv", str(folder)], check=True, timeout=300)
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    (folder / "lib" / version / "site-packages" / "_sdeploy_project_venv.pth").write_text(
        sysconfig.get_paths()["purelib"] + "\n")
    _pip(folder, "install", "--no-deps", str(wheel))
    return folder


def _pip(venv: Path, command: str, *args: str) -> None:
    argv = [str(venv / "bin" / "python"), "-m", "pip", command, "-q", "--disable-pip-version-check", *args]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
