"""Locate the aarch64 test root and run real aarch64 Python in it under qemu-user.

The root (.cache/aarch64-root, built by scripts/build_aarch64_root.sh) is an arm64 Debian userland with the
aarch64 ai-edge-litert wheel in ROOT/opt/sdeploy-site. `qemu-aarch64-static -cpu cortex-a76 -L ROOT` runs it
without binfmt or chroot. The CPU is pinned because the default `max` CPU gave wrong int8 results, and the
root carries a Cortex-A76 proc/cpuinfo because qemu 7.2 does not emulate /proc/cpuinfo for aarch64 guests:
`-L` redirects the guest's open("/proc/cpuinfo") to ROOT/proc/cpuinfo, and without it LiteRT's cpuinfo
library reads the host's x86 text and aborts when the interpreter is created.

Emulated timings are meaningless (50-300x slower, noisy); this target proves correctness only.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Sequence

REPO = Path(__file__).resolve().parents[2]
BUILD_SCRIPT = REPO / "scripts" / "build_aarch64_root.sh"
EXEC_SHIM = REPO / "scripts" / "aarch64_exec.sh"
QEMU = "qemu-aarch64-static"
QEMU_CPU = "cortex-a76"
REQUIRE_ENV = "SDEPLOY_REQUIRE_AARCH64"


def root_path() -> Path:
    """The root the build script makes (SDEPLOY_AARCH64_ROOT overrides, as in the script)."""
    return Path(os.environ.get("SDEPLOY_AARCH64_ROOT") or REPO / ".cache" / "aarch64-root")


def missing_reason(root: Path | None = None) -> str | None:
    """Why the aarch64 tier cannot run here, or None when it can."""
    root = root or root_path()
    if shutil.which(QEMU) is None:
        return f"{QEMU} not found (apt-get install qemu-user-static)"
    if not (root / ".sdeploy-stamp").is_file() or not (root / "usr/bin/python3").exists():
        return f"aarch64 root not built at {root} (run scripts/build_aarch64_root.sh, or `make test`)"
    return None


def required() -> bool:
    """CI sets SDEPLOY_REQUIRE_AARCH64=1: a missing root is then a failure, not a skip."""
    return os.environ.get(REQUIRE_ENV, "") not in ("", "0")


def python_command(root: Path | None = None) -> list[str]:
    """argv prefix that starts the root's aarch64 python3 under qemu (append python args)."""
    root = root or root_path()
    return [QEMU, "-cpu", QEMU_CPU, "-L", str(root), str(root / "usr/bin/python3")]


def python_env(root: Path | None = None) -> dict[str, str]:
    """Environment additions for the aarch64 python: the wheel dir on PYTHONPATH, no host user site."""
    root = root or root_path()
    return {"PYTHONPATH": str(root / "opt" / "sdeploy-site"), "PYTHONNOUSERSITE": "1",
            "TF_CPP_MIN_LOG_LEVEL": "2"}


def run_python(args: Sequence[str], *, timeout: float = 300, cwd: Path | None = None,
               root: Path | None = None) -> subprocess.CompletedProcess:
    """Run aarch64 `python3 ARGS...` and capture text output."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONHOME", "VIRTUAL_ENV")}
    env.update(python_env(root))
    return subprocess.run(python_command(root) + list(args), capture_output=True, text=True, timeout=timeout,
                          cwd=cwd, env=env)


def run_host_python(args: Sequence[str], *, timeout: float = 300, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run the x86 .venv python (the reference side of an x86-vs-aarch64 comparison)."""
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=timeout, cwd=cwd)


# A self-contained script that runs one .tflite on an .npy input and saves the raw output tensor. Both sides
# (x86 .venv and the aarch64 root, locally or over SSH) run this same text, so a byte comparison of the two
# .npy files is a bit-for-bit comparison of the interpreters' results.
RUN_MODEL_SCRIPT = '''\
import sys, platform
import numpy as np
from ai_edge_litert.interpreter import Interpreter
model, inp, out = sys.argv[1:4]
interp = Interpreter(model_path=model, num_threads=1)
interp.allocate_tensors()
i, o = interp.get_input_details()[0], interp.get_output_details()[0]
x = np.load(inp)
assert x.dtype == i["dtype"] and tuple(x.shape) == tuple(i["shape"]), (x.dtype, x.shape, i)
interp.set_tensor(i["index"], x)
interp.invoke()
y = interp.get_tensor(o["index"])
np.save(out, y)
print(platform.machine(), y.dtype.name, y.shape, int(y.astype(np.int64).sum()))
'''


def write_run_model_script(directory: Path) -> Path:
    path = Path(directory) / "run_model.py"
    path.write_text(RUN_MODEL_SCRIPT)
    return path


def make_int8_input(path: Path, shape=(1, 16, 16, 3), seed: int = 1):
    """A deterministic full-range int8 input batch saved as .npy (covers saturation at both ends)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    x = rng.integers(-128, 128, size=shape, dtype=np.int64).astype(np.int8)
    np.save(path, x)
    return x
