"""Reach a Linux board (Raspberry Pi, Jetson, an ARM server) with the user's own OpenSSH client.

Why the `ssh` binary and not a Python library (paramiko, asyncssh): it honours everything the user already set up
— ~/.ssh/config (Host aliases, User, Port, IdentityFile), known_hosts, the ssh-agent, ProxyJump/bastions,
ControlMaster — and it adds no Python dependency. We only run it with argument lists through `proc.run` (always a
timeout) and read its exit code and text.

Fixed choices:

* `-o BatchMode=yes` (never prompt: a password or passphrase prompt would hang a benchmark), `-o ConnectTimeout`,
  `-o StrictHostKeyChecking=yes` by default (`strict_host_key_checking=False` means `accept-new`: trust on first
  use, still refuse a changed key; a string is passed through), `known_hosts=` -> `-o UserKnownHostsFile=`,
  `key=` -> `-i KEY -o IdentitiesOnly=yes`, `-o ServerAliveInterval` so a dead link is noticed, `-o
  LogLevel=ERROR` so ssh's own notices do not end up in the command's stderr. `user`/`port` are passed only when
  set (port only when not 22), so a Host entry in ~/.ssh/config can supply them.
* Every remote command is an argument list joined with `shlex.quote` and handed to `sh -c` (itself quoted), so
  nothing unquoted reaches the remote login shell, whatever shell that is.
* No scp/sftp: push is `mkdir -p WORKDIR && cat > WORKDIR/NAME` with the file on stdin, pull is `cat PATH` to
  stdout. That also works through a forced command (authorized_keys `command=`), which the aarch64 test target
  and restricted accounts use. Many files (a sweep's ~130 single-op models per model) go in one session as a tar
  stream (`tar -xf - -C WORKDIR`; every Linux board has tar, busybox's included): one ssh handshake instead of
  one per file, which was most of a sweep's time on a board. A device without tar gets them one by one.
* The work dir is `/tmp/sdeploy-<random>` (or under `workdir_root`), created lazily, removed by `cleanup`.
* Each session ends with a random marker line carrying the command's exit status on stderr (removed from the
  returned stderr). ssh exits 255 both for its own failures and when the remote command exits 255; the marker
  tells them apart, and its absence after a 255 proves the session was cut.
* `run` records the command's pid beside the work dir; on a timeout the command is killed with a second, short
  session (best effort), so a runaway benchmark does not keep loading the board.

ssh failures become one-line `DeviceError`s (exit code 3): unreachable host (refused / no route / timeout / DNS),
authentication failure ("Permission denied"), unknown or changed host key ("Host key verification failed",
"REMOTE HOST IDENTIFICATION HAS CHANGED" — the hint says how to fix it), connection dropped after the session
started, and a command that does not finish within its timeout. Otherwise the remote command's own exit code is
returned.
"""
from __future__ import annotations

import io
import os
import posixpath
import re
import secrets
import shlex
import tarfile
from pathlib import Path
from typing import Sequence

from .. import proc
from ..errors import DeviceError, UserError
from .base import CommandResult, Transport, check_remote_name

_UNREACHABLE = ("connection refused", "no route to host", "connection timed out", "operation timed out",
                "network is unreachable", "could not resolve hostname", "name or service not known",
                "temporary failure in name resolution", "kex_exchange_identification",
                "connection closed by remote host during", "banner exchange")
_DROPPED = ("connection closed", "connection reset", "broken pipe", "closed by remote host",
            "server not responding", "client_loop:", "packet_write_wait", "disconnected")


class SSHTransport(Transport):
    name = "ssh"

    def __init__(self, host: str, *, user: str | None = None, port: int | None = 22, key: str | None = None,
                 known_hosts: str | None = None, strict_host_key_checking: bool | str = True,
                 connect_timeout: float = 10, extra_options: Sequence[str] = (), ssh: str = "ssh",
                 config_file: str | None = None, workdir_root: str = "/tmp", transfer_timeout: float = 600,
                 server_alive_interval: int = 15):
        if not host or host.startswith("-"):
            raise UserError(f"bad ssh host {host!r}")
        self.host, self.user, self.port = host, user, port
        self.key = os.path.expanduser(key) if key else None
        self.known_hosts = os.path.expanduser(known_hosts) if known_hosts else None
        if strict_host_key_checking is True:
            self.strict = "yes"
        elif strict_host_key_checking is False:
            self.strict = "accept-new"
        else:
            self.strict = str(strict_host_key_checking)
        self.connect_timeout = connect_timeout
        self.extra_options = tuple(extra_options)
        self.ssh = ssh
        self.config_file = config_file
        self.transfer_timeout = transfer_timeout
        self.server_alive_interval = server_alive_interval
        self._workdir = posixpath.join(workdir_root, f"sdeploy-{secrets.token_hex(6)}")
        self._created = False
        self._failed = False     # an ssh-level failure happened: cleanup then stays quiet

    # ----------------------------------------------------------------------------------------------- helpers
    @property
    def target(self) -> str:
        """user@host:port as the user would recognise it in messages."""
        user = f"{self.user}@" if self.user else ""
        return f"{user}{self.host}" + (f":{self.port}" if self.port and self.port != 22 else "")

    def describe(self) -> str:
        return f"ssh:{self.target}"

    def ssh_argv(self) -> list[str]:
        """The ssh client command line up to and including the destination (no remote command yet)."""
        argv = [self.ssh]
        if self.config_file:
            argv += ["-F", self.config_file]
        argv += ["-T", "-x", "-a", "-o", "BatchMode=yes", "-o", f"ConnectTimeout={int(max(1, self.connect_timeout))}",
                 "-o", f"StrictHostKeyChecking={self.strict}", "-o", "LogLevel=ERROR",
                 "-o", f"ServerAliveInterval={self.server_alive_interval}", "-o", "ServerAliveCountMax=3"]
        if self.known_hosts:
            argv += ["-o", f"UserKnownHostsFile={self.known_hosts}"]
        if self.key:
            argv += ["-i", self.key, "-o", "IdentitiesOnly=yes"]
        if self.port and int(self.port) != 22:    # 22 is not passed, so a Port from ~/.ssh/config still applies
            argv += ["-p", str(self.port)]
        if self.user:
            argv += ["-l", self.user]
        argv += list(self.extra_options)
        return argv + ["--", self.host]

    def _session(self, script: str, *, timeout: float, what: str, stdin: bytes = b"",
                 on_timeout=None) -> tuple[int, bytes, str]:
        """Run a POSIX sh script remotely; return (exit code, stdout bytes, stderr text without the marker)."""
        if self.key and not os.path.isfile(self.key):
            raise UserError(f"ssh key {self.key} not found", "fix `key` in the device profile")
        marker = f"__sdeploy_rc_{secrets.token_hex(6)}="
        wrapped = f"{script}\n__sdeploy_rc=$?; printf '\\n{marker}%d\\n' \"$__sdeploy_rc\" >&2; exit \"$__sdeploy_rc\""
        argv = self.ssh_argv() + ["sh -c " + shlex.quote(wrapped)]
        try:
            done = proc.run(argv, timeout=timeout, input=stdin)
        except proc.ProcessTimeout:
            if on_timeout is not None:
                on_timeout()
            raise DeviceError(f"{what} on {self.target} did not finish within {timeout:g} s",
                              "raise the timeout or check what the command is waiting for") from None
        except UserError as exc:
            if exc.message.startswith("command not found"):
                raise UserError(f"ssh client `{self.ssh}` not found",
                                "install OpenSSH (apt-get install openssh-client)") from None
            raise
        err = done.stderr.decode(errors="replace")
        rc = done.returncode
        match = re.search(r"\n?" + re.escape(marker) + r"(\d+)\n?", err)
        if match:
            return int(match.group(1)), done.stdout, err[:match.start()] + err[match.end():]
        if rc == 255:
            self._failed = True
            raise self._ssh_error(err, what)
        # No marker but a normal exit: a forced command that ignores the requested command, or a remote
        # shell that died; report what we got rather than guessing.
        return rc, done.stdout, err

    def _ssh_error(self, err: str, what: str) -> DeviceError:
        """Turn the ssh client's stderr (exit 255, no exit marker) into one clear line."""
        text = err.lower()
        lines = [ln.strip() for ln in err.splitlines() if ln.strip() and not set(ln.strip()) <= {"@"}]
        detail = next((ln for ln in lines if not ln.startswith("@")), "") or "no message from ssh"
        where = f" (known_hosts: {self.known_hosts})" if self.known_hosts else ""
        entry = f"[{self.host}]:{self.port}" if self.port and self.port != 22 else self.host
        kh = f" -f {shlex.quote(self.known_hosts)}" if self.known_hosts else ""
        if "remote host identification has changed" in text or "host key for" in text and "has changed" in text:
            return DeviceError(
                f"host key of {self.target} has changed{where}",
                f"if the device was reinstalled, remove the old key with `ssh-keygen -R '{entry}'{kh}` and "
                "connect once to accept the new one; otherwise someone may be intercepting the connection")
        if "host key verification failed" in text or "no " in text and "host key is known" in text:
            return DeviceError(
                f"host key of {self.target} is unknown{where}",
                f"connect once with `ssh{' -p ' + str(self.port) if self.port and self.port != 22 else ''} "
                f"{self.target.rsplit(':', 1)[0]}` and accept the key, or add it with `ssh-keyscan"
                f"{' -p ' + str(self.port) if self.port and self.port != 22 else ''} {self.host} >> "
                f"{self.known_hosts or '~/.ssh/known_hosts'}` after checking its fingerprint, or set "
                "strict_host_key_checking = false for this device")
        if "permission denied" in text or "too many authentication failures" in text:
            return DeviceError(
                f"ssh authentication to {self.target} failed: {detail}",
                "check the user and key (`key` in the device profile), and that the public key is in the "
                "device's ~/.ssh/authorized_keys; BatchMode is on, so passwords are not asked for")
        if any(s in text for s in _UNREACHABLE):
            return DeviceError(f"cannot reach {self.target} over ssh: {detail}",
                               "check that the device is on, the host/port are right and sshd is running")
        if any(s in text for s in _DROPPED):
            return DeviceError(f"connection to {self.target} dropped during {what}: {detail}",
                               "check the device's power and network, then retry")
        return DeviceError(f"connection to {self.target} dropped during {what} (ssh exit 255): {detail}",
                           "check the device's power and network, then retry")

    def _check(self, rc: int, err: str, what: str) -> None:
        if rc != 0:
            msg = next((ln.strip() for ln in reversed(err.splitlines()) if ln.strip()), f"exit code {rc}")
            raise DeviceError(f"{what} failed on {self.target}: {msg}")

    # ---------------------------------------------------------------------------------------- Transport API
    @property
    def workdir(self) -> str:
        return self._workdir

    def _resolve(self, remote_path: str) -> str:
        return posixpath.join(self._workdir, remote_path)      # an absolute remote_path stays as it is

    def push(self, local: Path, remote_name: str) -> str:
        local = Path(local)
        if not local.is_file():
            raise UserError(f"cannot push {local}: not a file")
        check_remote_name(remote_name)
        remote = self._resolve(remote_name)
        q = shlex.quote
        script = f"mkdir -p {q(self._workdir)} {q(posixpath.dirname(remote))} && cat > {q(remote)}"
        rc, _, err = self._session(script, timeout=self.transfer_timeout, what=f"push of {local.name}",
                                   stdin=local.read_bytes())
        self._created = True
        self._check(rc, err, f"push of {local.name}")
        return remote

    def push_many(self, files: Sequence[tuple[Path, str]]) -> list[str]:
        files = [(Path(local), name) for local, name in files]
        if len(files) < 2:
            return [self.push(local, name) for local, name in files]
        for local, name in files:
            if not local.is_file():
                raise UserError(f"cannot push {local}: not a file")
            check_remote_name(name)
        stream = io.BytesIO()
        with tarfile.open(fileobj=stream, mode="w", format=tarfile.USTAR_FORMAT) as tar:
            for local, name in files:
                data = local.read_bytes()
                info = tarfile.TarInfo(name)
                info.size, info.mode, info.mtime = len(data), 0o644, int(local.stat().st_mtime)
                tar.addfile(info, io.BytesIO(data))
        q = shlex.quote
        what = f"push of {len(files)} files"
        script = (f"command -v tar >/dev/null 2>&1 || exit 127; mkdir -p {q(self._workdir)} && "
                  f"tar -xf - -C {q(self._workdir)}")
        rc, _, err = self._session(script, timeout=self.transfer_timeout, what=what, stdin=stream.getvalue())
        self._created = True
        if rc == 127:  # no tar on the device: one session per file
            return [self.push(local, name) for local, name in files]
        self._check(rc, err, what)
        return [self._resolve(name) for _, name in files]

    def pull(self, remote_path: str, local: Path) -> None:
        remote = self._resolve(remote_path)
        rc, out, err = self._session(f"cat -- {shlex.quote(remote)}", timeout=self.transfer_timeout,
                                     what=f"pull of {posixpath.basename(remote)}")
        self._check(rc, err, f"pull of {remote}")
        local = Path(local)
        local.parent.mkdir(parents=True, exist_ok=True)
        local.write_bytes(out)

    def run(self, argv: Sequence[str], *, timeout: float) -> CommandResult:
        if not argv:
            raise UserError("empty command")
        q = shlex.quote
        command = " ".join(q(os.fspath(a)) for a in argv)
        # The inner sh records its pid and execs the command (same pid), so a timeout can kill exactly it. The
        # pid file sits beside the work dir, not in it, so the command never sees it in a listing.
        pidfile = f"{self._workdir}.run-{secrets.token_hex(4)}.pid"
        inner = f"echo $$ > {q(pidfile)} && exec {command}"
        script = (f"mkdir -p {q(self._workdir)} && cd {q(self._workdir)} && {{ sh -c {q(inner)}; __r=$?; "
                  f"rm -f {q(pidfile)}; (exit $__r); }}")
        what = f"`{posixpath.basename(os.fspath(argv[0]))}`"
        self._created = True
        rc, out, err = self._session(script, timeout=timeout, what=what,
                                     on_timeout=lambda: self._kill_remote(pidfile))
        return CommandResult(rc, out.decode(errors="replace"), err)

    def _kill_remote(self, pidfile: str) -> None:
        """Best effort: stop a command whose ssh client we gave up on (sshd does not kill it without a tty)."""
        path = shlex.quote(pidfile)
        script = (f"p=$(cat {path} 2>/dev/null); rm -f {path}; [ -n \"$p\" ] || exit 0; "
                  "kill -TERM \"$p\" 2>/dev/null || exit 0; sleep 1; kill -KILL \"$p\" 2>/dev/null; true")
        try:
            self._session(script, timeout=self.connect_timeout + 10, what="kill after timeout")
        except (DeviceError, UserError):
            pass

    def cleanup(self) -> None:
        """Remove the work dir. After an ssh failure stay quiet rather than mask the original error."""
        if not self._created:
            return
        self._created = False
        try:
            wd = shlex.quote(self._workdir)
            rc, _, err = self._session(f"rm -rf -- {wd} {wd}.run-*.pid",
                                       timeout=self.connect_timeout + 30, what="cleanup")
            self._check(rc, err, f"removing {self._workdir}")
        except DeviceError:
            if not self._failed:
                raise
