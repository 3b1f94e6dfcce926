"""The one way sdeploy starts another process.

Always an argument list (never a shell string), always a timeout, output optionally appended to a log file so
that long tools (onnx2tf, ssh, adb, qemu) keep the terminal clean.
"""
from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path
from typing import Mapping, Sequence

from .errors import DeviceError, UserError


class ProcessTimeout(DeviceError):
    """A process that did not finish in time: a device fault (exit 3), caught wherever device faults are (a fleet
    keeps the other devices' results), whichever transport or tool hung."""


def run(
    args: Sequence[str],
    *,
    timeout: float,
    log: Path | None = None,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    input: bytes | None = None,
    check: bool = False,
) -> subprocess.CompletedProcess:
    """Run `args` and return the completed process with bytes stdout/stderr.

    With `log`, stdout and stderr are appended to that file and not captured (the returned object then holds
    empty output). `check=True` raises `UserError` naming the command and the tail of its output.
    """
    args = [os.fspath(a) for a in args]
    full_env = None if env is None else {**os.environ, **env}
    try:
        if log is not None:
            log.parent.mkdir(parents=True, exist_ok=True)
            with open(log, "ab") as fh:
                fh.write(("\n$ " + " ".join(args) + "\n").encode())
                fh.flush()
                proc = _run_group(args, stdout=fh, stderr=subprocess.STDOUT, cwd=cwd, env=full_env,
                                  input=input, timeout=timeout)
                proc.stdout, proc.stderr = b"", b""
        else:
            proc = _run_group(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=cwd, env=full_env,
                              input=input, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise ProcessTimeout(f"{Path(args[0]).name} did not finish within {timeout:g} s",
                             "raise the timeout or check what it is waiting for") from None
    except FileNotFoundError:
        raise UserError(f"command not found: {args[0]}", "install it or put it on PATH") from None
    if check and proc.returncode != 0:
        tail = (proc.stderr or proc.stdout or b"").decode(errors="replace").strip().splitlines()[-1:] or [""]
        where = f" (log: {log})" if log else ""
        raise UserError(f"{Path(args[0]).name} failed with exit code {proc.returncode}{where}: {tail[0]}")
    return proc


def _run_group(args, *, timeout: float, input: bytes | None, **popen) -> subprocess.CompletedProcess:
    """subprocess.run in a session of its own, so a timeout kills the whole process group (a wrapper script's
    children too), not just the direct child. An interrupt of sdeploy itself (Ctrl-C, SIGTERM: both reach only
    sdeploy, the child is in another session) kills the group too before it propagates: a child left running would
    keep a CPU busy and write into folders sdeploy is about to remove."""
    with subprocess.Popen(args, stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
                          start_new_session=True, **popen) as child:
        try:
            out, err = child.communicate(input, timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill_group(child)
            raise
        except BaseException:
            _kill_group(child)
            raise
        return subprocess.CompletedProcess(args, child.returncode, out, err)


def _kill_group(child: subprocess.Popen) -> None:
    try:
        os.killpg(child.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        child.communicate(timeout=30)
    except (subprocess.TimeoutExpired, ValueError):  # ValueError: pipes already closed mid-communicate
        child.wait(timeout=30)
