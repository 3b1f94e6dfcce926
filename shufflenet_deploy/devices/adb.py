"""Reach an Android phone through the user's own `adb` client (push, shell, pull).

Why the `adb` client and not a Python adb library (adbutils, adb-shell): the user already has it installed and
authorised, and it owns what is hard to get right — USB access, the RSA key pair the phone was told to trust
(~/.android/adbkey), the server lifecycle and `adb connect` for Wi-Fi debugging. We only run it with argument lists
through `proc.run` (always a timeout) and read its text.

Every command goes through the device's shell, so each argument is `shlex.quote`d. The remote command is wrapped as
`( mkdir -p WORKDIR && cd WORKDIR && ARGV ); printf 'MARKER%d\\n' $?`. The marker line (random per call, removed
from stdout) carries the exit code and proves the command finished: when the connection drops mid-command the adb
client exits 0 with whatever output arrived (seen with adb 29), so "no marker" is how a cut is detected. It also
gives exit codes on old devices without shell protocol v2 (there stderr arrives merged into stdout).

Failure texts of the adb client (29.x) and what they become (all `DeviceError`, exit code 3):

* `adb devices` empty / `error: no devices/emulators found` -> "no Android device attached" (hint: USB debugging,
  `adb connect`).
* state `unauthorized` / `error: device unauthorized.` / `adb connect` -> `failed to authenticate to HOST:PORT`
  -> "device SERIAL is unauthorized" (hint: accept the RSA prompt on the phone).
* several devices, no serial / `error: more than one device/emulator` -> the list of serials (hint: --serial or
  the device profile).
* `adb connect` exits 0 even on failure: `failed to connect to ...`, `cannot connect to ...`, `unable to connect
  to ...`, anything not starting with `connected to` / `already connected to` -> "adb connect HOST:PORT failed".
* `error: device offline`, `error: device 'SERIAL' not found`, `error: closed`, `protocol fault`, a missing exit
  marker, or a failed push/pull while `adb get-state` no longer says `device` -> "connection to device SERIAL lost".
* the adb client not finishing within the timeout -> "... did not finish within N s" (the client is killed, the
  adb server then closes the stream and the device kills the command).

The work dir defaults to /data/local/tmp/sdeploy (writable and executable on every phone). Tests and unusual
devices pass another `workdir=`.
"""
from __future__ import annotations

import posixpath
import re
import secrets
import shlex
import time
from pathlib import Path
from typing import Sequence

from .. import proc
from ..errors import DeviceError, UserError
from .base import CommandResult, Transport, check_remote_name

DEFAULT_WORKDIR = "/data/local/tmp/sdeploy"

_CONNECT_OK = ("connected to", "already connected to")
_LOST = re.compile(r"^(?:adb: )?error: (?:device offline|closed|device '.*' not found|no devices/emulators found)"
                   r"|protocol fault", re.MULTILINE)
_UNAUTHORIZED = re.compile(r"^(?:adb: )?error: device unauthorized", re.MULTILINE)
_NOT_READY = ("offline", "connecting", "authorizing")
# rm -rf of these would be a disaster on a phone; a workdir must be a dedicated directory below them.
_PROTECTED = {"/", "/data", "/data/local", "/data/local/tmp", "/sdcard", "/storage", "/system", "/vendor",
              "/tmp", "/home", "/root", "/usr", "/etc", "/var"}


class AdbTransport(Transport):
    """Run commands on one Android device via `adb [-P port] -s SERIAL ...`. The device is chosen on first use."""

    name = "adb"

    def __init__(self, serial: str | None = None, *, adb: str = "adb", server_port: int | None = None,
                 workdir: str = DEFAULT_WORKDIR, connect: str | None = None, adb_timeout: float = 30.0,
                 transfer_timeout: float = 600.0):
        workdir = posixpath.normpath(workdir)
        if not workdir.startswith("/") or workdir in _PROTECTED:
            raise UserError(f"adb work dir {workdir!r} must be an absolute, dedicated directory",
                            f"use e.g. {DEFAULT_WORKDIR} (it is deleted at cleanup)")
        self._adb, self._port, self._workdir, self._connect = adb, server_port, workdir, connect
        self._requested_serial = serial
        self._serial: str | None = None
        self._connected_by_us = False
        self._created = False
        self._lost = False
        self.adb_timeout, self.transfer_timeout = adb_timeout, transfer_timeout

    # ---------------------------------------------------------------------------------------------- adb plumbing
    def _base(self) -> list[str]:
        return [self._adb] + (["-P", str(self._port)] if self._port else [])

    def _exec(self, args: Sequence[str], *, timeout: float, what: str) -> tuple[int, str, str]:
        """Run the adb client; return (rc, stdout, stderr) as text. Timeouts and a missing client raise."""
        try:
            # input=b"": adb forwards stdin to the device; never let it read (and wait on) ours.
            cp = proc.run([*self._base(), *args], timeout=timeout, input=b"")
        except proc.ProcessTimeout:
            raise DeviceError(f"{what} on {self._serial or 'the adb device'} did not finish within {timeout:g} s",
                              "raise the timeout, or check the device is awake and still connected") from None
        except UserError as exc:
            if exc.message.startswith("command not found"):
                raise UserError(f"adb client not found: {self._adb}",
                                "install Android platform-tools (Debian/Ubuntu: apt install adb) or pass its path")\
                    from None
            raise
        return cp.returncode, cp.stdout.decode(errors="replace"), cp.stderr.decode(errors="replace")

    def _device_args(self) -> list[str]:
        return ["-s", self.serial]

    # ---------------------------------------------------------------------------------------- device selection
    def _do_connect(self, target: str) -> str:
        rc, out, err = self._exec(["connect", target], timeout=self.adb_timeout, what=f"adb connect {target}")
        text = (out + err).strip()
        line = next((ln for ln in text.splitlines() if not ln.startswith("*")), "")
        if "failed to authenticate" in text:
            raise DeviceError(f"device {target} is unauthorized",
                              "accept the 'Allow USB debugging?' RSA prompt on the phone, then retry")
        if rc != 0 or not line.startswith(_CONNECT_OK):
            raise DeviceError(f"adb connect {target} failed: {line or text or f'exit code {rc}'}",
                              "check the address, that the phone is on the same network and wireless debugging "
                              "(or `adb tcpip 5555`) is enabled")
        self._connected_by_us = line.startswith("connected to")
        # adb's serial for a TCP device is HOST:PORT (5555 when no port was given).
        return target if re.search(r":\d+$", target) else f"{target}:5555"

    def list_devices(self) -> list[tuple[str, str]]:
        """(serial, state) pairs from `adb devices`."""
        rc, out, err = self._exec(["devices"], timeout=self.adb_timeout, what="adb devices")
        if rc != 0:
            raise DeviceError(f"adb devices failed: {(err or out).strip() or f'exit code {rc}'}",
                              "try `adb kill-server` and check the adb installation")
        devices = []
        for ln in out.splitlines():
            if not ln.strip() or ln.startswith(("List of devices", "*", "adb server")):
                continue
            serial, _, state = ln.partition("\t")
            devices.append((serial.strip(), state.strip() or "unknown"))
        return devices

    def _select(self, wanted: str | None, wait: float) -> str:
        deadline = time.monotonic() + wait
        while True:
            devices = self.list_devices()
            states = dict(devices)
            if wanted is None:
                if not devices:
                    raise DeviceError("no Android device attached",
                                      "plug the phone in with USB debugging enabled (Developer options), or use "
                                      "`adb connect HOST:PORT` / the profile's connect setting")
                if len(devices) > 1:
                    listed = ", ".join(f"{s} ({st})" for s, st in devices)
                    raise DeviceError(f"several Android devices attached: {listed}",
                                      "pass --serial SERIAL or set serial in the device profile")
                serial, state = devices[0]
            else:
                serial, state = wanted, states.get(wanted)
                if state is None and self._connect and time.monotonic() < deadline:
                    time.sleep(0.2)                 # just connected: the server may not list it yet
                    continue
                if state is None:
                    listed = ", ".join(f"{s} ({st})" for s, st in devices) or "none"
                    raise DeviceError(f"Android device {wanted} not found (attached: {listed})",
                                      "check the serial (`adb devices`), the cable, or connect it first")
            if state in _NOT_READY and time.monotonic() < deadline:
                time.sleep(0.2)
                continue
            if state == "device":
                return serial
            if state == "unauthorized":
                raise DeviceError(f"device {serial} is unauthorized",
                                  "accept the 'Allow USB debugging?' RSA prompt on the phone, then retry")
            if state.startswith("no permissions"):
                raise DeviceError(f"no permission to open USB device {serial}",
                                  "add a udev rule for the phone (Debian: apt install android-sdk-platform-tools-"
                                  "common) and replug it")
            raise DeviceError(f"device {serial} is {state}", "reconnect the phone or run `adb reconnect`")

    @property
    def serial(self) -> str:
        """The selected device's serial; selects (and `adb connect`s) it on first use."""
        if self._serial is None:
            wanted = self._requested_serial
            if self._connect:
                connected = self._do_connect(self._connect)
                wanted = wanted or connected
            self._serial = self._select(wanted, wait=10.0 if self._connect else 2.0)
        return self._serial

    # ------------------------------------------------------------------------------------------------ failures
    def _lost_error(self, detail: str) -> DeviceError:
        self._lost = True
        detail = detail.strip().splitlines()[-1] if detail.strip() else ""
        return DeviceError(f"connection to device {self._serial} lost" + (f" ({detail})" if detail else ""),
                           "check the cable / Wi-Fi and that the phone did not sleep or reboot, then retry")

    def _raise_for_adb_text(self, text: str) -> None:
        if _UNAUTHORIZED.search(text):
            raise DeviceError(f"device {self._serial} is unauthorized",
                              "accept the 'Allow USB debugging?' RSA prompt on the phone, then retry")
        m = _LOST.search(text)
        if m:
            raise self._lost_error(text[m.start():].splitlines()[0])

    def state(self) -> str:
        """`adb get-state` for the selected device ("device", "offline", ... or "missing")."""
        rc, out, err = self._exec([*self._device_args(), "get-state"], timeout=self.adb_timeout,
                                  what="adb get-state")
        return out.strip() if rc == 0 and out.strip() else "missing"

    def _transfer_failed(self, verb: str, rc: int, out: str, err: str) -> DeviceError:
        text = (err + out).strip()
        self._raise_for_adb_text(text)
        if self.state() != "device":
            return self._lost_error(text)
        msg = next((ln for ln in text.splitlines() if "error" in ln), text.splitlines()[0] if text else "")
        return DeviceError(f"adb {verb} failed on {self._serial}: {msg or f'exit code {rc}'}")

    # ----------------------------------------------------------------------------------------- Transport API
    @property
    def workdir(self) -> str:
        return self._workdir

    def describe(self) -> str:
        return f"adb:{self._serial or self._requested_serial or self._connect or 'auto'}"

    def _ensure_workdir(self) -> None:
        if not self._created:
            result = self._shell(f"mkdir -p {shlex.quote(self._workdir)}", timeout=self.adb_timeout,
                                 what="mkdir")
            if result.returncode != 0:
                raise DeviceError(f"cannot create {self._workdir} on {self._serial}: "
                                  f"{(result.stderr or result.stdout).strip()}",
                                  "pick a writable workdir (e.g. under /data/local/tmp)")
            self._created = True

    def push(self, local: Path, remote_name: str) -> str:
        local = Path(local)
        if not local.is_file():
            raise UserError(f"cannot push {local}: not a file")
        check_remote_name(remote_name)
        self._ensure_workdir()
        remote = posixpath.join(self._workdir, remote_name)
        rc, out, err = self._exec([*self._device_args(), "push", str(local), remote],
                                  timeout=self.transfer_timeout, what=f"adb push {local.name}")
        if rc != 0:
            raise self._transfer_failed("push", rc, out, err)
        return remote

    def pull(self, remote_path: str, local: Path) -> None:
        local = Path(local)
        local.parent.mkdir(parents=True, exist_ok=True)
        remote = posixpath.join(self._workdir, remote_path)      # absolute remote_path stays as is
        rc, out, err = self._exec([*self._device_args(), "pull", remote, str(local)],
                                  timeout=self.transfer_timeout, what=f"adb pull {posixpath.basename(remote)}")
        if rc != 0:
            raise self._transfer_failed("pull", rc, out, err)

    def run(self, argv: Sequence[str], *, timeout: float) -> CommandResult:
        if not argv:
            raise UserError("empty command")
        command = " ".join(shlex.quote(str(a)) for a in argv)
        self._ensure_workdir()
        return self._shell(f"cd {shlex.quote(self._workdir)} && {command}", timeout=timeout,
                           what=f"`{Path(str(argv[0])).name}`")

    def _shell(self, script: str, *, timeout: float, what: str) -> CommandResult:
        """Run a shell snippet in a subshell and return its real exit code (see the module docstring)."""
        marker = f"__sdeploy_exit_{secrets.token_hex(6)}="
        remote = f"( {script} ); printf '{marker}%d\\n' $?"
        rc, out, err = self._exec([*self._device_args(), "shell", remote], timeout=timeout, what=what)
        pos = out.rfind(marker)
        if pos < 0:
            self._raise_for_adb_text(err + out)
            raise self._lost_error(err if rc != 0 else "the command's exit status never arrived")
        tail = out[pos + len(marker):].split("\n", 1)[0].strip()
        stdout = out[:pos]
        if not tail.isdigit():
            raise self._lost_error("truncated exit status")
        return CommandResult(int(tail), stdout, err)

    def getprop(self, name: str) -> str:
        """A system property (`getprop NAME`), e.g. ro.product.cpu.abi -> arm64-v8a."""
        result = self._shell(f"getprop {shlex.quote(name)}", timeout=self.adb_timeout, what="getprop")
        return result.stdout.strip()

    def cleanup(self) -> None:
        """Remove the work dir (if this transport created it) and undo our `adb connect`.

        After a lost connection there is nothing left to reach: cleanup then stays quiet instead of masking the
        original error.
        """
        try:
            if self._created and self._serial is not None:
                self._created = False
                result = self._shell(f"rm -rf {shlex.quote(self._workdir)}", timeout=self.adb_timeout,
                                     what="cleanup")
                if result.returncode != 0:
                    raise DeviceError(f"could not remove {self._workdir} on {self._serial}: "
                                      f"{(result.stderr or result.stdout).strip()}")
        except DeviceError:
            if not self._lost:
                raise
        finally:
            if self._connected_by_us and self._connect:
                self._connected_by_us = False
                try:
                    self._exec(["disconnect", self._connect], timeout=self.adb_timeout, what="adb disconnect")
                except DeviceError:
                    pass
