"""A real OpenSSH server on 127.0.0.1 for transport tests: throwaway keys, a free port, stopped on exit.

Why a real sshd: the SSH transport's value is in how it drives the real `ssh` client (quoting through a remote
shell, exit codes, error texts of auth/host-key/connection failures); a fake server would test our assumptions
instead. Everything lives in one temp dir (host key, client key, authorized_keys, known_hosts, sshd_config,
log); sshd runs in the foreground (`-D -e`) as our child, and `stop()` kills it and every session process it
forked (collected from /proc before the kill, since per-connection children call setsid and would survive).

    with running_sshd(tmp_path) as srv:           # or the `sshd` / `sshd_factory` fixtures in conftest.py
        t = srv.transport()                       # an SSHTransport with the right port, key and known_hosts
"""
from __future__ import annotations

import contextlib
import getpass
import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Sequence

HOST = "127.0.0.1"


def sshd_binary() -> str | None:
    return shutil.which("sshd") or next((p for p in ("/usr/sbin/sshd",) if os.access(p, os.X_OK)), None)


def missing_reason() -> str | None:
    """Why the ssh tier cannot run here, or None."""
    if sshd_binary() is None:
        return "OpenSSH server not installed (apt-get install openssh-server; `make test` does it)"
    for tool in ("ssh", "ssh-keygen"):
        if shutil.which(tool) is None:
            return f"{tool} not found (apt-get install openssh-client)"
    return None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def keygen(path: Path, comment: str) -> Path:
    """An unencrypted ed25519 key pair at path / path.pub."""
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)],
                   check=True, capture_output=True, timeout=30)
    return path


def _children_map() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path("/proc", entry, "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rpartition(")")[2].split()[1])
        kids.setdefault(ppid, []).append(int(entry))
    return kids


def descendants(pid: int) -> list[int]:
    """All processes below `pid` (children first seen, breadth-first)."""
    kids, out, todo = _children_map(), [], [pid]
    while todo:
        for child in kids.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def _kill(pids: Sequence[int], sig=signal.SIGKILL) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)


@dataclass
class SSHServer:
    """One sshd instance; `host`, `port`, `user`, `key`, `known_hosts` are what a client needs."""

    directory: Path
    forced_command: str | None = None
    extra_config: Sequence[str] = ()
    host: str = HOST
    port: int = 0
    user: str = field(default_factory=getpass.getuser)
    proc: subprocess.Popen | None = None

    def __post_init__(self):
        d = self.directory
        d.mkdir(parents=True, exist_ok=True)
        self.host_key = keygen(d / "ssh_host_ed25519_key", "sdeploy-test-host")
        self.key = keygen(d / "client_key", "sdeploy-test-client")
        self.authorized_keys = d / "authorized_keys"
        options = ""
        if self.forced_command:
            escaped = self.forced_command.replace("\\", "\\\\").replace('"', '\\"')
            options = f'command="{escaped}",no-pty,no-port-forwarding,no-agent-forwarding,no-X11-forwarding '
        self.authorized_keys.write_text(options + Path(f"{self.key}.pub").read_text())
        self.known_hosts = d / "known_hosts"
        self.config = d / "sshd_config"
        self.log = d / "sshd.log"
        self.port = self.port or free_port()

    # --------------------------------------------------------------------------------------------- lifecycle
    def _write_config(self) -> None:
        d = self.directory
        lines = [
            *self.extra_config,      # first: for most sshd keywords the first value given wins
            f"ListenAddress {self.host}:{self.port}",
            f"HostKey {self.host_key}",
            f"PidFile {d / 'sshd.pid'}",
            f"AuthorizedKeysFile {self.authorized_keys}",
            "AuthenticationMethods publickey",
            "PubkeyAuthentication yes",
            "PasswordAuthentication no",
            "KbdInteractiveAuthentication no",
            "PermitRootLogin prohibit-password",
            "UsePAM no",
            "StrictModes no",
            "PrintMotd no",
            "PrintLastLog no",
            "AllowTcpForwarding no",
            "X11Forwarding no",
            "MaxStartups 50",
            "MaxSessions 50",
            "LogLevel ERROR",
        ]
        self.config.write_text("\n".join(lines) + "\n")
        self.known_hosts.write_text(f"[{self.host}]:{self.port} " + Path(f"{self.host_key}.pub").read_text())

    def start(self, timeout: float = 15) -> "SSHServer":
        """Start sshd and wait until its port accepts connections."""
        self._write_config()
        Path("/run/sshd").mkdir(mode=0o755, parents=True, exist_ok=True)   # privilege separation dir
        logf = open(self.log, "ab")
        try:
            self.proc = subprocess.Popen([sshd_binary(), "-D", "-e", "-f", str(self.config)],
                                         stdin=subprocess.DEVNULL, stdout=logf, stderr=logf)
        finally:
            logf.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"sshd exited with {self.proc.returncode}: {self.log.read_text()[-2000:]}")
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
                s.settimeout(0.5)
                if s.connect_ex((self.host, self.port)) == 0:
                    return self
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"sshd did not listen on {self.host}:{self.port} within {timeout} s")

    def kill_all(self) -> None:
        """SIGKILL sshd and every session process (a crashed/powered-off device, for dropped-connection tests)."""
        if self.proc is None:
            return
        pids = descendants(self.proc.pid)
        _kill([self.proc.pid, *pids])
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=10)
        self.proc = None

    def stop(self) -> None:
        """Stop sshd and its sessions; safe to call twice."""
        if self.proc is None:
            return
        pids = descendants(self.proc.pid)
        self.proc.terminate()
        _kill(pids)
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)
        self.proc = None

    def restart(self) -> "SSHServer":
        """Same port, same keys (a device that rebooted)."""
        self.stop()
        return self.start()

    def session_pids(self) -> list[int]:
        return descendants(self.proc.pid) if self.proc else []

    # ---------------------------------------------------------------------------------------------- clients
    def transport(self, **overrides):
        """An SSHTransport for this server; keyword arguments override the defaults."""
        from shufflenet_deploy.devices.ssh import SSHTransport

        kwargs = dict(user=self.user, port=self.port, key=str(self.key), known_hosts=str(self.known_hosts),
                      config_file="/dev/null", connect_timeout=5)
        kwargs.update(overrides)
        return SSHTransport(self.host, **kwargs)

    def ssh_argv(self) -> list[str]:
        """A plain `ssh` command line for this server (for debugging and ad-hoc checks)."""
        return ["ssh", "-F", "/dev/null", "-o", "BatchMode=yes", "-o", f"UserKnownHostsFile={self.known_hosts}",
                "-i", str(self.key), "-o", "IdentitiesOnly=yes", "-p", str(self.port), f"{self.user}@{self.host}"]


@contextlib.contextmanager
def running_sshd(directory: Path, *, forced_command: str | None = None,
                 extra_config: Sequence[str] = ()) -> Iterator[SSHServer]:
    """Start an sshd in `directory`; stop it and its sessions on exit."""
    server = SSHServer(Path(directory), forced_command=forced_command, extra_config=extra_config)
    last_error = None
    for _ in range(3):                  # the free port can be taken between probe and bind: retry on a new one
        try:
            server.start()
            break
        except RuntimeError as exc:
            last_error = exc
            server.port = free_port()
    else:
        raise last_error
    try:
        yield server
    finally:
        server.stop()
