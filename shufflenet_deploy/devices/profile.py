"""A device profile: what every device has (a name, its Python, its cores and thread counts, its benchmark binary)
and how it is reached, one type per transport: `LocalLink`, `SshLink`, `AdbLink`.

Why one type per transport: a profile used to be one record holding every transport's fields (24 of them), so an
adb `serial` on an ssh device was silently ignored and every reader had to know which fields applied. Now a
devices.toml table is read by `DeviceProfile.from_fields`, which takes the fields of its own transport only and
names a field of another transport as such ("serial is an adb field; this device's transport is ssh").
"""
from __future__ import annotations

import dataclasses
import difflib
import re
import shlex
import sys
from dataclasses import dataclass, field
from typing import Any, ClassVar, Union

from ..errors import UserError
from ..validate import is_int, is_number

TRANSPORTS = ("local", "ssh", "adb")
_DEVICE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
# a host, user or adb serial handed to ssh/adb as an argument: never an option (-oProxyCommand=...), no shell
_SAFE_NAME = re.compile(r"^[A-Za-z0-9_.:@%\[\]][A-Za-z0-9_.:@%\[\]-]*$")


@dataclass(frozen=True)
class LocalLink:
    """This machine: sdeploy's own interpreter runs the runner."""
    TRANSPORT: ClassVar[str] = "local"

    def target(self) -> str:
        return "this machine"

    def open(self, workdir: str | None):
        from .local import LocalTransport

        return LocalTransport(workdir_root=workdir)


@dataclass(frozen=True)
class SshLink:
    """A Linux board over OpenSSH (devices/ssh.py)."""
    TRANSPORT: ClassVar[str] = "ssh"
    host: str | None = None  # checked when the device is used, so one half-written table never blocks the others
    port: int = 22
    user: str | None = None
    key: str | None = None
    known_hosts: str | None = None
    strict_host_key_checking: bool = True
    ssh_options: tuple[str, ...] = ()  # extra ssh arguments, e.g. ("-o", "ProxyJump=gw")
    ssh_config: str | None = None  # ssh -F FILE ("/dev/null" ignores ~/.ssh/config)
    connect_timeout: float = 10

    def target(self) -> str:
        return f"{self.user + '@' if self.user else ''}{self.host}:{self.port}"

    def open(self, workdir: str | None, name: str = "this device"):
        if not self.host:
            raise UserError(f"device {name!r} has no host", f"set host in [devices.{name}]")
        from .ssh import SSHTransport

        kwargs = {"workdir_root": workdir} if workdir else {}
        return SSHTransport(self.host, user=self.user, port=self.port, key=self.key, known_hosts=self.known_hosts,
                            strict_host_key_checking=self.strict_host_key_checking,
                            connect_timeout=self.connect_timeout, extra_options=self.ssh_options,
                            config_file=self.ssh_config, **kwargs)


@dataclass(frozen=True)
class AdbLink:
    """An Android device through the adb client (devices/adb.py)."""
    TRANSPORT: ClassVar[str] = "adb"
    serial: str | None = None
    adb: str = "adb"
    adb_server_port: int | None = None
    connect: str | None = None  # host:port for `adb connect` (a device over TCP)

    def target(self) -> str:
        return self.connect or self.serial or "first adb device"

    def open(self, workdir: str | None):
        from .adb import AdbTransport

        kwargs = {"workdir": workdir} if workdir else {}
        return AdbTransport(self.serial, adb=self.adb, server_port=self.adb_server_port, connect=self.connect, **kwargs)


Link = Union[LocalLink, SshLink, AdbLink]
LINKS: dict[str, type] = {cls.TRANSPORT: cls for cls in (LocalLink, SshLink, AdbLink)}


@dataclass
class DeviceProfile:
    name: str
    link: Link = field(default_factory=LocalLink)
    description: str = ""
    workdir: str | None = None
    python: str | None = None
    benchmark_binary: str | None = None
    affinity: str | None = None
    threads: list[int] = field(default_factory=lambda: [1])
    peak_gmacs: dict[str, float] | None = None
    source: str = "built-in"

    @property
    def transport(self) -> str:
        return self.link.TRANSPORT

    @property
    def python_argv(self) -> list[str]:
        """The device's Python command as an argument list (`python = "env FOO=1 python3"` is allowed)."""
        if self.python:
            return shlex.split(self.python)
        return [sys.executable] if self.transport == "local" else ["python3"]

    def affinity_cpus(self) -> list[int] | None:
        return parse_cpus(self.affinity) if self.affinity else None

    def affinity_mask(self) -> str | None:
        """Hex mask for `taskset MASK cmd` (Android's toybox taskset takes only masks)."""
        cpus = self.affinity_cpus()
        return None if cpus is None else format(sum(1 << c for c in cpus), "x")

    def target(self) -> str:
        return self.link.target()

    def transport_factory(self):
        """Build the transport (imported lazily so `sdeploy devices` never imports ssh/adb code)."""
        if isinstance(self.link, SshLink):
            return self.link.open(self.workdir, self.name)
        return self.link.open(self.workdir)

    @classmethod
    def from_fields(cls, name: str, values: dict[str, Any], source: str = "built-in") -> "DeviceProfile":
        """A [devices.NAME] table (flat key = value, as devices.toml writes it) -> the profile, each value checked;
        a field of another transport, an unknown field or a wrong value is one UserError naming SOURCE."""
        if not _DEVICE_NAME.match(name):  # a device's name becomes a folder (bench-DEVICE, OUT/DEVICE), a cache file
            raise UserError(f"{source}: device name {_short(name)} is not a valid name (letters, digits and . _ - "
                            "only, starting with a letter or digit, at most 64)", "rename the [devices.NAME] table")
        transport = values.get("transport", "local")
        if transport not in TRANSPORTS:
            raise UserError(f"{source}: [devices.{name}] transport must be one of {', '.join(TRANSPORTS)}, "
                            f"got {transport!r}")
        link_cls = LINKS[transport]
        own = {f.name for f in dataclasses.fields(link_cls)}
        common, linked = {}, {}
        for key, value in values.items():
            if key == "transport":
                continue
            if key not in COMMON and key not in own:
                other = next((t for t, c in LINKS.items() if key in {f.name for f in dataclasses.fields(c)}), None)
                if other:
                    raise UserError(f"{source}: [devices.{name}] {key} is an {other} field; this device's transport "
                                    f"is {transport}", f"remove {key}, or set transport = \"{other}\"")
                close = difflib.get_close_matches(key, ALL_FIELDS, n=1)
                raise UserError(f"{source}: unknown field {key!r} in [devices.{name}]",
                                f"did you mean {close[0]!r}?" if close else f"known fields: {', '.join(ALL_FIELDS)}")
            wrong = _check_value(key, value)
            if wrong:
                raise UserError(f"{source}: [devices.{name}] {key} must be {wrong}, got {_short(value)}",
                                f"fix {key} in [devices.{name}]")
            (common if key in COMMON else linked)[key] = value
        for key in ("host", "user", "serial"):
            value = linked.get(key)
            if value is not None and not _SAFE_NAME.match(value):
                raise UserError(f"{source}: [devices.{name}] {key} {value!r} is not a valid {key} name (it must not "
                                "start with '-' and may hold only letters, digits and . _ - : @ % [ ])",
                                f"fix {key} in [devices.{name}]")
        if is_int(common.get("threads")):
            common["threads"] = [common["threads"]]
        if common.get("affinity") is not None:
            common["affinity"] = str(common["affinity"])
            parse_cpus(common["affinity"])
        if "ssh_options" in linked:
            linked["ssh_options"] = tuple(linked["ssh_options"])
        return cls(name=name, link=link_cls(**linked), source=source, **common)


COMMON = tuple(f.name for f in dataclasses.fields(DeviceProfile) if f.name not in ("name", "link", "source"))
ALL_FIELDS = ("transport", *COMMON, *dict.fromkeys(f.name for c in LINKS.values() for f in dataclasses.fields(c)))
_TEXT = ("description", "host", "user", "key", "known_hosts", "ssh_config", "serial", "adb", "connect", "workdir",
         "python", "benchmark_binary")


def _check_value(key: str, value: Any) -> str | None:
    """What is wrong with one profile value ("must be ..."), None when it is fine."""
    if key == "python" and isinstance(value, str) and "\0" not in value:
        try:
            return None if shlex.split(value) else "a command, e.g. \"python3\""
        except ValueError as err:  # an unbalanced quote
            return f"a command shlex can split ({err})"
    if key in _TEXT:
        return None if isinstance(value, str) and "\0" not in value else "a string"
    if key in ("port", "adb_server_port"):
        return None if is_int(value) and 1 <= value <= 65535 else "a port number (1-65535)"
    if key == "strict_host_key_checking":
        return None if isinstance(value, bool) else "true or false"
    if key == "connect_timeout":
        return None if is_number(value) and 0 < value <= 3600 else "a number of seconds (0-3600)"
    if key == "affinity":
        return None if isinstance(value, str) or (is_int(value) and value >= 0) else "a CPU list like \"4-7\""
    if key == "ssh_options":
        return None if isinstance(value, list) and all(isinstance(v, str) for v in value) else "a list of strings"
    if key == "threads":
        threads = [value] if is_int(value) else value
        ok = isinstance(threads, list) and threads and all(is_int(t) and 0 < t <= 1024 for t in threads)
        return None if ok else "a list of positive integers (at most 1024)"
    if key == "peak_gmacs":
        ok = isinstance(value, dict) and all(isinstance(k, str) and is_number(v) and v > 0 for k, v in value.items())
        return None if ok else "a table of precision = positive GMAC/s"
    return None


def parse_cpus(spec: str) -> list[int]:
    """'4-7' / '0,2,4-5' CPU lists, or hex masks ('f0', '0xf0'): a mask has a 0x prefix or a hex letter."""
    text = str(spec).strip().lower()
    hint = "use a CPU list like 4-7 or 0,2 or a hex mask like f0"
    try:
        if text.startswith("0x") or any(c in "abcdef" for c in text):
            if len(text.removeprefix("0x")) > MAX_CPUS // 4:  # checked before int(): the mask's bits are CPUs
                raise UserError(f"CPU affinity mask {_short(spec)} names CPUs beyond {MAX_CPUS - 1}", hint)
            mask = int(text, 16)
            cpus = [i for i in range(mask.bit_length()) if mask >> i & 1]
        else:
            cpus = set()
            for part in text.split(","):
                lo, _, hi = part.partition("-")
                lo, hi = int(lo), int(hi or lo)
                if not 0 <= lo <= hi < MAX_CPUS:  # checked before the range is built: "0-1000000000" is 1e9 CPUs
                    raise UserError(f"bad CPU affinity {_short(spec)}: {part.strip()} is not a range of CPUs "
                                    f"0-{MAX_CPUS - 1}", hint)
                cpus.update(range(lo, hi + 1))
            cpus = sorted(cpus)
    except ValueError:
        cpus = []
    if not cpus:
        raise UserError(f"bad CPU affinity {_short(spec)}", hint)
    return cpus


MAX_CPUS = 65536  # the CPU numbers a result's affinity may hold (bench/results.py)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
