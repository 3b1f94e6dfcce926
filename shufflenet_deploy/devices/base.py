"""The one small interface every transport implements: push, run with a timeout, pull, cleanup.

A transport owns one remote work directory (created on first use, removed by `cleanup`). Commands are argument
lists; a transport that goes through a remote shell (ssh, adb) quotes every argument with `shlex.quote` itself,
so callers never build shell strings.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from ..errors import UserError


def check_remote_name(remote_name: str) -> None:
    """Pushed files stay inside the work dir: no absolute names, no `..` (every transport checks the same)."""
    if not remote_name or remote_name.startswith("/") or ".." in remote_name.split("/") or not remote_name.strip("/"):
        raise UserError(f"remote name {remote_name!r} must be a relative path inside the work dir")


@dataclass
class CommandResult:
    returncode: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0


class Transport(ABC):
    """Reach one device. Raise `DeviceError` (one clear line) for unreachable/auth/dropped/timeout faults."""

    name: str = "transport"

    @property
    @abstractmethod
    def workdir(self) -> str:
        """Absolute path of this session's work directory on the device."""

    @abstractmethod
    def push(self, local: Path, remote_name: str) -> str:
        """Copy a local file into the work dir under `remote_name`; return its remote path."""

    def push_many(self, files: Sequence[tuple[Path, str]]) -> list[str]:
        """Push several (local file, remote name) pairs; return their remote paths in order. One push each
        here; a transport whose pushes cost a connection each (ssh) sends them in one."""
        return [self.push(local, name) for local, name in files]

    @abstractmethod
    def pull(self, remote_path: str, local: Path) -> None:
        """Copy a remote file to `local`."""

    @abstractmethod
    def run(self, argv: Sequence[str], *, timeout: float) -> CommandResult:
        """Run `argv` on the device (cwd = work dir) and return its exit code and output."""

    @abstractmethod
    def cleanup(self) -> None:
        """Remove the work dir and anything this transport started."""

    def describe(self) -> str:
        return self.name

    def __enter__(self) -> "Transport":
        return self

    def __exit__(self, *exc) -> None:
        self.cleanup()
