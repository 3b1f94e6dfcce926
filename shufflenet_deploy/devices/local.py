"""Run on this machine: the same Transport contract as ssh/adb, so the pipeline has one code path for all devices.

The work dir is a fresh temp dir (under `workdir_root` when a profile sets one), created on first use and removed
by `cleanup`. Commands are argument lists run through `proc.run` (no shell) with cwd = work dir. A command that
does not exist returns exit code 127 like a remote shell would, and one that cannot be executed (no permission, a
binary of another architecture) 126, so callers see the same result on every transport.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Sequence

from .. import proc
from ..errors import DeviceError, UserError
from .base import CommandResult, Transport, check_remote_name


class LocalTransport(Transport):
    name = "local"

    def __init__(self, workdir_root: str | os.PathLike | None = None):
        self._root = Path(workdir_root).expanduser() if workdir_root else None
        self._workdir: Path | None = None

    @property
    def workdir(self) -> str:
        if self._workdir is None:
            if self._root is not None:
                try:
                    self._root.mkdir(parents=True, exist_ok=True)
                except OSError as exc:
                    raise UserError(f"cannot create work dir root {self._root}: {exc.strerror}",
                                    "pick a writable workdir for the local device") from None
            try:  # /proc exists and takes no folder: the mkdir above passes, this one fails
                self._workdir = Path(tempfile.mkdtemp(prefix="sdeploy-", dir=self._root))
            except OSError as exc:
                raise UserError(f"cannot create a work dir in {self._root or tempfile.gettempdir()}: "
                                f"{exc.strerror}", "pick a writable workdir for the local device") from None
        return str(self._workdir)

    def describe(self) -> str:
        return "local"

    def _resolve(self, remote_path: str) -> Path:
        """Relative paths are relative to the work dir (as on ssh/adb); absolute ones stay as they are."""
        return Path(self.workdir, remote_path)

    def push(self, local: Path, remote_name: str) -> str:
        local = Path(local)
        if not local.is_file():
            raise UserError(f"cannot push {local}: not a file")
        check_remote_name(remote_name)
        target = self._resolve(remote_name)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(local, target)
        return str(target)

    def pull(self, remote_path: str, local: Path) -> None:
        source = self._resolve(remote_path)
        if not source.is_file():
            raise DeviceError(f"cannot pull {source}: no such file on this machine")
        local = Path(local)
        local.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, local)

    def run(self, argv: Sequence[str], *, timeout: float) -> CommandResult:
        if not argv:
            raise UserError("empty command")
        argv = [os.fspath(a) for a in argv]
        cwd = Path(self.workdir)
        exe = argv[0]
        found = (cwd / exe).exists() if os.sep in exe else shutil.which(exe) is not None
        if not found:
            return CommandResult(127, "", f"{exe}: command not found\n")
        try:
            done = proc.run(argv, timeout=timeout, cwd=cwd, input=b"")
        except PermissionError:
            return CommandResult(126, "", f"{exe}: permission denied\n")
        except OSError as err:  # e.g. ENOEXEC: a binary of another architecture (a shell says 126 too)
            return CommandResult(126, "", f"{exe}: cannot execute: {err.strerror or err}\n")
        except proc.ProcessTimeout:
            raise DeviceError(f"`{Path(exe).name}` did not finish within {timeout:g} s on this machine",
                              "raise the timeout or check what it is waiting for") from None
        return CommandResult(done.returncode, done.stdout.decode(errors="replace"),
                             done.stderr.decode(errors="replace"))

    def cleanup(self) -> None:
        if self._workdir is not None:
            shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir = None
