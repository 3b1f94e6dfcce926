"""Locate the aarch64 test roots and run real aarch64 Python in them under qemu-user.

The root (.cache/aarch64-root, built by scripts/build_aarch64_root.sh) is an arm64 Debian bookworm userland
(Python 3.11) with the aarch64 ai-edge-litert wheel in ROOT/opt/sdeploy-site; the second one,
.cache/aarch64-root-trixie (`SDEPLOY_AARCH64_SUITE=trixie scripts/build_aarch64_root.sh`), is Debian trixie
(Python 3.13, numpy 2.x). `root_path(suite)` names either; every helper takes the root it runs in.
`qemu-aarch64-static -cpu cortex-a76 -L ROOT` runs it without binfmt or chroot. The CPU is pinned because the default `max` CPU gave wrong int8 results, and the
root carries a Cortex-A76 proc/cpuinfo because qemu 7.2 does not emulate /proc/cpuinfo for aarch64 guests:
`-L` redirects the guest's open("/proc/cpuinfo") to ROOT/proc/cpuinfo, and without it LiteRT's cpuinfo
library reads the host's x86 text and aborts when the interpreter is created.

Emulated timings are meaningless (50-300x slower, noisy); this target proves correctness only.
"""
from __future__ import annotations

import json
import os
import shlex
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
# suite -> (default root under .cache, env var overriding it (as in the build script), the root's Python, the
# minor version of its glibc: the newest manylinux_2_N wheels it can load)
SUITES = {
    "bookworm": ("aarch64-root", "SDEPLOY_AARCH64_ROOT", "3.11", 36),
    "trixie": ("aarch64-root-trixie", "SDEPLOY_AARCH64_ROOT_TRIXIE", "3.13", 41),
}


def root_path(suite: str = "bookworm") -> Path:
    """The root the build script makes for `suite` (its env var overrides, as in the script)."""
    name, env, _, _ = SUITES[suite]
    return Path(os.environ.get(env) or REPO / ".cache" / name)


def pip_target_args(suite: str) -> list[str]:
    """`pip install --target` arguments that select the suite's aarch64 wheels from the host (binary only)."""
    _, _, python, glibc_minor = SUITES[suite]
    cp = "cp" + python.replace(".", "")
    platforms = ["--platform", "manylinux2014_aarch64"]
    for minor in range(17, glibc_minor + 1):
        platforms += ["--platform", f"manylinux_2_{minor}_aarch64"]
    return [*platforms, "--only-binary=:all:", "--python-version", python, "--implementation", "cp",
            "--abi", cp, "--abi", "abi3", "--abi", "none"]


def python_version(suite: str) -> str:
    """The root's Python as "3.11" (bookworm) / "3.13" (trixie)."""
    return SUITES[suite][2]


def build_command(suite: str = "bookworm") -> str:
    return "scripts/build_aarch64_root.sh" if suite == "bookworm" else \
        f"SDEPLOY_AARCH64_SUITE={suite} scripts/build_aarch64_root.sh"


def missing_reason(root: Path | None = None, suite: str = "bookworm") -> str | None:
    """Why the aarch64 tier cannot run here (for this suite's root), or None when it can."""
    root = root or root_path(suite)
    if shutil.which(QEMU) is None:
        return f"{QEMU} not found (apt-get install qemu-user-static)"
    if not (root / ".sdeploy-stamp").is_file() or not (root / "usr/bin/python3").exists():
        return f"aarch64 {suite} root not built at {root} (run {build_command(suite)}, or `make test`)"
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


def emulated_local_device(root: Path, directory: Path) -> dict[str, str]:
    """Make `--device local` of an sdeploy running under qemu in ROOT see the machine it runs on; returns the
    environment additions (PATH, SDEPLOY_DEVICES) for that sdeploy process.

    On a real board the local device re-executes sys.executable and reads /proc/cpuinfo and `uname -m` with the
    board's own tools. Under qemu-user without binfmt both break: sys.executable (ROOT/usr/bin/python3) is an
    aarch64 ELF the host kernel cannot exec (ENOEXEC), and the commands the local transport runs (`sh -c 'cat
    /proc/cpuinfo'`, `uname -m`) are the host's x86 binaries, which read the host's CPU. So DIRECTORY gets:
      * python3 — runs ROOT's aarch64 python3 under qemu with the pinned CPU (environment inherited: PYTHONPATH
        stays the caller's site dir), named by a devices TOML as [devices.local] python;
      * uname — the host's, with x86_64 reported as aarch64 (as scripts/aarch64_exec.sh does);
      * cat — the host's, with /proc/cpuinfo mapped to ROOT/proc/cpuinfo, the Cortex-A76 text qemu's -L already
        gives the aarch64 processes.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    host_cat, host_uname = shutil.which("cat") or "/bin/cat", shutil.which("uname") or "/bin/uname"
    q = shlex.quote
    scripts = {
        "python3": f'exec {q(shutil.which(QEMU) or QEMU)} -cpu {QEMU_CPU} -L {q(str(root))} '
                   f'{q(str(root / "usr/bin/python3"))} "$@"\n',
        "uname": f'out=$({q(host_uname)} "$@") || exit $?\nprintf \'%s\\n\' "$out" | sed \'s/x86_64/aarch64/g\'\n',
        "cat": 'for a do\n    shift\n    [ "$a" = /proc/cpuinfo ] && a=' + q(str(root / "proc/cpuinfo"))
               + '\n    set -- "$@" "$a"\ndone\nexec ' + q(host_cat) + ' "$@"\n',
    }
    for name, body in scripts.items():
        path = directory / name
        path.write_text("#!/bin/sh\n" + body)
        path.chmod(0o755)
    devices = directory / "devices.toml"
    devices.write_text(f"[devices.local]\npython = {json.dumps(str(directory / 'python3'))}\n")
    return {"PATH": f"{directory}:{os.environ.get('PATH', '/usr/bin:/bin')}", "SDEPLOY_DEVICES": str(devices)}


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


def board_root(root: Path, directory: Path, cpuinfo: str) -> Path:
    """An emulated board of its own: DIRECTORY holds symlinks to ROOT's folders and files plus its own
    proc/cpuinfo (CPUINFO's text), so `qemu -L DIRECTORY` and scripts/aarch64_exec.sh's `cat /proc/cpuinfo`
    both show that board. Run it with the matching qemu CPU (SDEPLOY_AARCH64_CPU: a Pi 4 is cortex-a72, a Pi 5
    cortex-a76): LiteRT picks XNNPACK kernels from the cpuinfo text, and kernels the CPU lacks die with SIGILL."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    for entry in Path(root).iterdir():
        if entry.name in ("proc", ".sdeploy-shims") or entry.name.startswith(".sdeploy-shims."):
            continue
        link = directory / entry.name
        if not link.exists() and not link.is_symlink():
            link.symlink_to(entry)
    (directory / "proc").mkdir(exist_ok=True)
    (directory / "proc" / "cpuinfo").write_text(cpuinfo)
    return directory
