"""Named device profiles: built-ins (builtin_devices.toml) overridden field by field by the user's TOML file
(each table read by `DeviceProfile.from_fields`, devices/profile.py; a table that changes a built-in's transport
keeps only the built-in's transport-free fields).

Why TOML profiles: a device is many small facts (how to reach it, which Python, which cores, which thread
counts) that should be written once, not repeated as flags. The user file is the first of: an explicit
path (`--devices FILE`), `$SDEPLOY_DEVICES`, `$XDG_CONFIG_HOME/sdeploy/devices.toml` (default ~/.config/...).
An explicit path wins over the environment variable, as with every other flag-vs-env choice.
"""
from __future__ import annotations

import difflib
import os
import tomllib
from pathlib import Path
from typing import Any

from ..errors import UserError
from .profile import COMMON, DeviceProfile

BUILTIN_FILE = Path(__file__).with_name("builtin_devices.toml")
BENCHMARK_BINARY_HINT = (
    "set benchmark_binary = \"/path/to/benchmark_model\" for this device in your devices.toml or pass "
    "--benchmark-binary PATH; get the Android arm64 build of TFLite's benchmark_model as described in "
    "android_harness/README.md (section 1, 'Get benchmark_model')")


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
    except RecursionError:  # x = [[[[...]]]] thousands deep
        raise UserError(f"{path}: invalid TOML: values nested too deeply", "check --devices / $SDEPLOY_DEVICES") \
            from None
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
            base = merged.get(name, {})
            if "transport" in values and values["transport"] != base.get("transport", "local"):
                base = {k: v for k, v in base.items() if k in COMMON}  # the built-in's way to reach it is gone
            merged[name] = {**base, **values}
            sources[name] = str(file) if sources.get(name) is None else f"built-in + {file}"
    return {name: DeviceProfile.from_fields(name, values, sources[name]) for name, values in merged.items()}


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
