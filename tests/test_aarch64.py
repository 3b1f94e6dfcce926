"""The aarch64 test target: real aarch64 Python + LiteRT under qemu-user, directly and as an SSH device.

Why: "runs on ARM" must be proven on ARM code, and int8 kernels are where architectures differ (XNNPACK picks
different kernels per CPU). With the CPU pinned to a Cortex-A76 and a matching /proc/cpuinfo, the aarch64
outputs of an int8 model must equal x86's bit for bit. Needs .cache/aarch64-root (scripts/build_aarch64_root.sh);
skipped without it unless SDEPLOY_REQUIRE_AARCH64=1.
"""
from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from servers import aarch64 as a64

pytestmark = pytest.mark.aarch64


@pytest.fixture(scope="module")
def int8_case(tiny_tflite, tmp_path_factory):
    """The tiny int8 model, a full-range int8 input, the run script, and x86's output (the reference)."""
    d = tmp_path_factory.mktemp("int8_case")
    model = tiny_tflite("int8")
    a64.make_int8_input(d / "input.npy")
    script = a64.write_run_model_script(d)
    done = a64.run_host_python([str(script), str(model), str(d / "input.npy"), str(d / "x86.npy")], timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("x86_64 int8")
    return {"dir": d, "model": model, "input": d / "input.npy", "script": script, "x86": d / "x86.npy"}


def test_root_python_is_aarch64(aarch64_root):
    done = a64.run_python(["-c", "import platform, sys, numpy, ai_edge_litert.interpreter; "
                                 "print(platform.machine(), sys.version_info[:2], numpy.__version__)"])
    assert done.returncode == 0, done.stderr
    assert done.stdout.split()[0] == "aarch64"
    assert "(3, 11)" in done.stdout and np.__version__ in done.stdout   # same numpy as the x86 side


def test_proc_cpuinfo_comes_from_the_root(aarch64_root):
    """qemu 7.2 does not emulate /proc/cpuinfo for aarch64; -L redirects it to ROOT/proc/cpuinfo (Cortex-A76)."""
    done = a64.run_python(["-c", "print(open('/proc/cpuinfo').read())"])
    assert done.returncode == 0, done.stderr
    assert "CPU part\t: 0xd0b" in done.stdout and "asimddp" in done.stdout
    assert "0xd0b" not in Path("/proc/cpuinfo").read_text()


def test_int8_outputs_bit_exact_x86_vs_aarch64(aarch64_root, int8_case):
    out = int8_case["dir"] / "aarch64_direct.npy"
    done = a64.run_python([str(int8_case["script"]), str(int8_case["model"]), str(int8_case["input"]), str(out)],
                          timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("aarch64 int8")
    x86, arm = np.load(int8_case["x86"]), np.load(out)
    assert x86.dtype == arm.dtype == np.int8
    assert out.read_bytes() == int8_case["x86"].read_bytes(), (x86, arm)


def test_exec_shim_makes_a_session_look_like_aarch64(aarch64_root):
    shim = str(a64.EXEC_SHIM)
    env = {k: v for k, v in os.environ.items() if k not in ("SSH_ORIGINAL_COMMAND", "VIRTUAL_ENV")}
    if aarch64_root != a64.REPO / ".cache" / "aarch64-root":
        env["SDEPLOY_AARCH64_ROOT"] = str(aarch64_root)
    script = 'uname -m; arch; python3 -c "import platform; print(platform.machine())"; exit 5'
    done = subprocess.run([shim, "-c", script], capture_output=True, text=True, timeout=120, env=env)
    assert (done.returncode, done.stdout.split()) == (5, ["aarch64"] * 3), done.stderr
    # forced-command mode: the client's command arrives in SSH_ORIGINAL_COMMAND
    done = subprocess.run([shim], capture_output=True, text=True, timeout=120,
                          env={**env, "SSH_ORIGINAL_COMMAND": "python -c 'import sys; sys.exit(7)'"})
    assert done.returncode == 7, done.stderr
    done = subprocess.run([shim, "uname", "-s", "-m"], capture_output=True, text=True, timeout=60, env=env)
    assert done.stdout.split() == ["Linux", "aarch64"]


@pytest.mark.parametrize("suite", ["bookworm", "trixie"])
def test_build_script_rerun_is_a_cached_noop(suite, request):
    """Each root matches the current build script and pins, and a rerun is a fast no-op (never a rebuild here:
    a rebuild would swap the root under tests that are using it)."""
    root = request.getfixturevalue("aarch64_root" if suite == "bookworm" else "aarch64_root_trixie")
    folder = "aarch64-root" if suite == "bookworm" else "aarch64-root-trixie"
    if root != a64.REPO / ".cache" / folder:
        pytest.skip(f"root built elsewhere ({folder} overridden by the environment)")
    env = {**os.environ, "SDEPLOY_AARCH64_SUITE": suite}
    check = subprocess.run([str(a64.BUILD_SCRIPT), "--check"], capture_output=True, text=True, timeout=60, env=env)
    if check.returncode != 0:
        reason = f"aarch64 {suite} root is stale: {check.stdout.strip()}"
        if a64.required():
            pytest.fail(reason)
        pytest.skip(reason)
    start = time.monotonic()
    done = subprocess.run([str(a64.BUILD_SCRIPT)], capture_output=True, text=True, timeout=60, env=env)
    assert done.returncode == 0, done.stderr
    assert "up to date" in done.stdout and folder in done.stdout
    assert time.monotonic() - start < 5


# ---------------------------------------------------------------------------------- the SSH aarch64 device
@pytest.mark.ssh
def test_ssh_device_reports_aarch64(aarch64_sshd):
    with aarch64_sshd.transport() as t:
        assert t.run(["uname", "-m"], timeout=60).stdout.strip() == "aarch64"
        r = t.run(["python3", "-c", "import platform, sys; print(platform.machine(), sys.argv[1:])", "a b", "; x"],
                  timeout=120)
        assert r.returncode == 0, r.stderr
        assert r.stdout.strip() == "aarch64 ['a b', '; x']"
        assert t.run(["python3", "-c", "import sys; sys.exit(3)"], timeout=120).returncode == 3


@pytest.mark.ssh
def test_int8_outputs_over_ssh_equal_x86(aarch64_sshd, int8_case, tmp_path):
    with aarch64_sshd.transport() as t:
        model = t.push(int8_case["model"], "model int8.tflite")
        t.push(int8_case["input"], "input.npy")
        t.push(int8_case["script"], "run_model.py")
        r = t.run(["python3", "run_model.py", Path(model).name, "input.npy", "out.npy"], timeout=300)
        assert r.returncode == 0, r.stderr
        assert r.stdout.startswith("aarch64 int8")
        t.pull("out.npy", tmp_path / "aarch64_ssh.npy")
    assert (tmp_path / "aarch64_ssh.npy").read_bytes() == int8_case["x86"].read_bytes()


# ------------------------------------------------------------------------------- the second root: Debian trixie
def test_trixie_root_python_is_3_13_with_numpy_2(aarch64_root_trixie, tiny_tflite, tmp_path):
    """Raspberry Pi OS trixie's Python: 3.13, numpy 2.x (no cp313 wheel of the pinned 1.26.4), the same LiteRT,
    and the int8 model runs there too."""
    done = a64.run_python(["-c", "import platform, sys, numpy, ai_edge_litert; "
                                 "print(platform.machine(), '%d.%d' % sys.version_info[:2], numpy.__version__, "
                                 "ai_edge_litert.__version__)"], root=aarch64_root_trixie)
    assert done.returncode == 0, done.stderr
    machine, python, numpy_version, litert = done.stdout.split()
    assert (machine, python, litert) == ("aarch64", "3.13", "2.1.0")
    assert numpy_version.split(".")[0] == "2", numpy_version
    a64.make_int8_input(tmp_path / "input.npy")
    script = a64.write_run_model_script(tmp_path)
    args = [str(script), str(tiny_tflite("int8")), str(tmp_path / "input.npy")]
    done = a64.run_python([*args, str(tmp_path / "trixie.npy")], timeout=300, root=aarch64_root_trixie)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("aarch64 int8")
    host = a64.run_host_python([*args, str(tmp_path / "x86.npy")], timeout=120)
    assert host.returncode == 0, host.stderr
    assert (tmp_path / "trixie.npy").read_bytes() == (tmp_path / "x86.npy").read_bytes()

