"""Named device profiles: built-ins (builtin_devices.toml) overridden field by field by the user's TOML file.

Why TOML profiles: a device is many small facts (how to reach it, which Python, which cores, which thread
counts) that should be written once, not repeated as flags. The user file is the first of: an explicit
path (`--devices FILE`), `$SDEPLOY_DEVICES`, `$XDG_CONFIG_HOME/sdeploy/devices.toml` (default ~/.config/...).
An explicit path wins over the environment variable, as with every other flag-vs-env choice.
"""
from __future__ import annotations

import dataclasses
import difflib
import os
import re
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import UserError
from ..validate import is_int, is_number

BUILTIN_FILE = Path(__file__).with_name("builtin_devices.toml")
TRANSPORTS = ("local", "ssh", "adb")
BENCHMARK_BINARY_HINT = (
    "set benchmark_binary = \"/path/to/benchmark_model\" for this device in your devices.toml or pass "
    "--benchmark-binary PATH; get the Android arm64 build of TFLite's benchmark_model as described in "
    "android_harness/README.md (section 1, 'Get benchmark_model')")


@dataclass
class DeviceProfile:
    name: str
    transport: str = "local"
    description: str = ""
    host: str | None = None
    port: int = 22
    user: str | None = None
    key: str | None = None
    known_hosts: str | None = None
    strict_host_key_checking: bool = True
    ssh_options: list[str] = field(default_factory=list)  # extra ssh arguments, e.g. ["-o", "ProxyJump=gw"]
    ssh_config: str | None = None  # ssh -F FILE ("/dev/null" ignores ~/.ssh/config)
    connect_timeout: float = 10
    serial: str | None = None
    adb: str = "adb"
    adb_server_port: int | None = None
    connect: str | None = None
    workdir: str | None = None
    python: str | None = None
    benchmark_binary: str | None = None
    affinity: str | None = None
    threads: list[int] = field(default_factory=lambda: [1])
    peak_gmacs: dict[str, float] | None = None
    source: str = "built-in"

    @property
    def python_argv(self) -> list[str]:
        """The device's Python command as an argument list (`python = "env FOO=1 python3"` is allowed)."""
        import shlex

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
        if self.transport == "ssh":
            return f"{self.user + '@' if self.user else ''}{self.host}:{self.port}"
        if self.transport == "adb":
            return self.connect or self.serial or "first adb device"
        return "this machine"

    def transport_factory(self):
        """Build the transport (imported lazily so `sdeploy devices` never imports ssh/adb code)."""
        if self.transport == "local":
            from .local import LocalTransport

            return LocalTransport(workdir_root=self.workdir)
        if self.transport == "ssh":
            if not self.host:
                raise UserError(f"device {self.name!r} has no host", f"set host in [devices.{self.name}]")
            from .ssh import SSHTransport

            kwargs = {"workdir_root": self.workdir} if self.workdir else {}
            return SSHTransport(self.host, user=self.user, port=self.port, key=self.key,
                                known_hosts=self.known_hosts,
                                strict_host_key_checking=self.strict_host_key_checking,
                                connect_timeout=self.connect_timeout, extra_options=tuple(self.ssh_options),
                                config_file=self.ssh_config, **kwargs)
        from .adb import AdbTransport

        kwargs = {"workdir": self.workdir} if self.workdir else {}
        return AdbTransport(self.serial, adb=self.adb, server_port=self.adb_server_port, connect=self.connect,
                            **kwargs)


def parse_cpus(spec: str) -> list[int]:
    """'4-7' / '0,2,4-5' CPU lists, or hex masks ('f0', '0xf0'): a mask has a 0x prefix or a hex letter."""
    text = str(spec).strip().lower()
    try:
        if text.startswith("0x") or any(c in "abcdef" for c in text):
            mask = int(text, 16)
            cpus = [i for i in range(mask.bit_length()) if mask >> i & 1]
        else:
            cpus = set()
            for part in text.split(","):
                lo, _, hi = part.partition("-")
                cpus.update(range(int(lo), int(hi or lo) + 1))
            cpus = sorted(cpus)
    except ValueError:
        cpus = []
    if not cpus:
        raise UserError(f"bad CPU affinity {spec!r}", "use a CPU list like 4-7 or 0,2 or a hex mask like f0")
    return cpus


def user_file(path: str | Path | None = None) -> tuple[Path | None, bool]:
    """(file, explicit): explicit files must exist; the XDG default may be absent."""
    if path:
        return Path(path).expanduser(), True
    if os.environ.get("SDEPLOY_DEVICES"):
        return Path(os.environ["SDEPLOY_DEVICES"]).expanduser(), True
    base = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return base / "sdeploy" / "devices.toml", False


def _read_toml(path: Path) -> dict[str, Any]:
    return _read_file(path)[0]


def _read_file(path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """([devices.NAME] tables, [groups] NAME = [device, ...])."""
    from ..fileio import regular_file

    try:
        data = tomllib.loads(regular_file(path, "devices file", MAX_TOML_BYTES).read_bytes().decode("utf-8"))
    except tomllib.TOMLDecodeError as err:
        raise UserError(f"{path}: invalid TOML: {err}", "fix the file (see the line and column above)") from None
    except UnicodeDecodeError:
        raise UserError(f"devices file {path} is not UTF-8 text (a binary or damaged file)",
                        "check --devices / $SDEPLOY_DEVICES") from None
    except OSError as err:
        raise UserError(f"cannot read devices file {path}: {err.strerror}") from None
    devices, groups = data.get("devices", {}), data.get("groups", {})
    unknown = set(data) - {"devices", "groups"}
    if unknown or not isinstance(devices, dict) or not isinstance(groups, dict):
        raise UserError(f"{path}: expected only [devices.NAME] tables and a [groups] table, found "
                        f"{sorted(unknown) or 'devices/groups that are not tables'}",
                        "write each device as [devices.NAME] with key = value lines, groups as NAME = [\"a\", \"b\"]")
    for name, members in groups.items():
        if not (isinstance(members, list) and members and all(isinstance(m, str) for m in members)):
            raise UserError(f"{path}: [groups] {name} must be a list of device names, got {members!r}",
                            f'e.g. {name} = ["rpi4", "rpi5"]')
    return devices, groups


MAX_TOML_BYTES = 1024 * 1024
FIELDS = {f.name: f for f in dataclasses.fields(DeviceProfile) if f.name not in ("name", "source")}
_TEXT = ("transport", "description", "host", "user", "key", "known_hosts", "ssh_config", "serial", "adb", "connect",
         "workdir", "python", "benchmark_binary")


def _check_value(key: str, value: Any) -> str | None:
    """What is wrong with one profile value ("must be ..."), None when it is fine."""
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


def _make_profile(name: str, values: dict[str, Any], source: str) -> DeviceProfile:
    for key, value in values.items():
        if key not in FIELDS:
            close = difflib.get_close_matches(key, FIELDS, n=1)
            raise UserError(f"{source}: unknown field {key!r} in [devices.{name}]",
                            f"did you mean {close[0]!r}?" if close else f"known fields: {', '.join(FIELDS)}")
        wrong = _check_value(key, value)
        if wrong:
            shown = repr(value) if len(repr(value)) <= 60 else repr(value)[:57] + "..."
            raise UserError(f"{source}: [devices.{name}] {key} must be {wrong}, got {shown}",
                            f"fix {key} in [devices.{name}]")
    values = dict(values)
    if is_int(values.get("threads")):
        values["threads"] = [values["threads"]]
    if values.get("affinity") is not None:
        values["affinity"] = str(values["affinity"])
        parse_cpus(values["affinity"])
    profile = DeviceProfile(name=name, source=source, **values)
    if profile.transport not in TRANSPORTS:
        raise UserError(f"{source}: [devices.{name}] transport must be one of {', '.join(TRANSPORTS)}, "
                        f"got {profile.transport!r}")
    for key in ("host", "user", "serial"):
        value = getattr(profile, key)
        if value is not None and not _SAFE_NAME.match(str(value)):
            raise UserError(f"{source}: [devices.{name}] {key} {value!r} is not a valid {key} name (it must not "
                            "start with '-' and may hold only letters, digits and . _ - : @ % [ ])",
                            f"fix {key} in [devices.{name}]")
    return profile


# a host, user or adb serial handed to ssh/adb as an argument: never an option (-oProxyCommand=...), no shell
_SAFE_NAME = re.compile(r"^[A-Za-z0-9_.:@%\[\]][A-Za-z0-9_.:@%\[\]-]*$")


def load_registry(path: str | Path | None = None) -> dict[str, DeviceProfile]:
    """All profiles by name: built-ins, then the user file's tables merged into them field by field."""
    merged = {name: dict(values) for name, values in _read_toml(BUILTIN_FILE).items()}
    sources = {name: "built-in" for name in merged}
    file, explicit = user_file(path)
    if file is not None and (explicit or file.exists()):
        if not file.exists():
            raise UserError(f"devices file not found: {file}", "check --devices / $SDEPLOY_DEVICES")
        for name, values in _read_toml(file).items():
            if not isinstance(values, dict):
                raise UserError(f"{file}: devices.{name} must be a table ([devices.{name}])")
            merged.setdefault(name, {}).update(values)
            sources[name] = str(file) if sources.get(name) is None else f"built-in + {file}"
    return {name: _make_profile(name, values, sources[name]) for name, values in merged.items()}


def load_groups(path: str | Path | None = None) -> dict[str, list[str]]:
    """The user file's [groups]: a name for several devices, e.g. lab = ["rpi4", "rpi5"]."""
    file, explicit = user_file(path)
    if file is None or not file.exists():
        return {}
    return {name: list(members) for name, members in _read_file(file)[1].items()}


def resolve_devices(spec: str, path: str | Path | None = None) -> list[str]:
    """"rpi4,lab,local" -> device names, groups expanded, each once, in the order given; unknown names refused."""
    groups = load_groups(path)
    registry = load_registry(path)
    names: list[str] = []
    for part in filter(None, (p.strip() for p in spec.split(","))):
        for name in groups.get(part, [part]):
            if name not in registry:
                get_device(name, path)  # the one "unknown device" message, with suggestions
            if name not in names:
                names.append(name)
    if not names:
        raise UserError("no device named", "pass --device NAME[,NAME...] (a device or a [groups] name)")
    return names


def device_names(spec: str, path: str | Path | None = None) -> list[str]:
    """What --device names: "a,b" or a [groups] name -> several devices (resolve_devices); a plain name -> [it]
    (checked where it is used, with the usual message)."""
    if "," in spec or spec in load_groups(path):
        return resolve_devices(spec, path)
    return [spec]


def get_device(name: str, path: str | Path | None = None) -> DeviceProfile:
    registry = load_registry(path)
    if name in registry:
        return registry[name]
    close = difflib.get_close_matches(name, registry, n=3)
    hint = f"did you mean {' or '.join(close)}? " if close else ""
    raise UserError(f"unknown device {name!r}",
                    f"{hint}known devices: {', '.join(sorted(registry))} (add one in {user_file(path)[0]})")
