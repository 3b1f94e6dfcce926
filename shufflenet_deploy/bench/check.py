"""`sdeploy devices check`: probe a device — reachable? arch, CPU, runtime, governor, temperature — one line each.

Never raises for device faults: every problem becomes a `fail`/`warn` line so the user sees all of them at once.
"""
from __future__ import annotations

import json
from dataclasses import dataclass

from ..devices.registry import DeviceProfile
from ..errors import DeviceError, UserError
from .harness import _benchmark_binary

_RUNTIME_PROBE = r"""
import json, platform
out = {"python": platform.python_version(), "numpy": None, "runtime": None}
try:
    import numpy; out["numpy"] = numpy.__version__
except Exception as e:
    out["error"] = "numpy: %s" % e
for name, dist in (("ai_edge_litert", "ai-edge-litert"), ("tflite_runtime", "tflite-runtime"),
                   ("tensorflow", "tensorflow")):
    try:
        __import__(name + (".interpreter" if name != "tensorflow" else ""))
        from importlib import metadata
        out["runtime"] = {"name": name, "version": metadata.version(dist)}
        break
    except Exception:
        pass
print(json.dumps(out))
"""


@dataclass
class Check:
    status: str  # ok | warn | fail
    name: str
    detail: str


def check_device(profile: DeviceProfile, timeout: float = 30) -> list[Check]:
    """Probe reachability, arch, CPU, runtime, governor and temperature; never raises for device faults."""
    checks: list[Check] = []
    try:
        transport = profile.transport_factory()
    except DeviceError as err:
        return [Check("fail", "reachable", err.one_line())]

    def sh(script: str) -> str:
        res = transport.run(["sh", "-c", script], timeout=timeout)
        return res.stdout.strip()

    try:
        try:
            res = transport.run(["uname", "-m"], timeout=timeout)
        except UserError as err:
            return [Check("fail", "reachable", f"{profile.target()}: {err.one_line()}")]
        if not res.ok:
            return [Check("fail", "reachable", f"uname -m failed: {res.stderr.strip()[:200]}")]
        arch = res.stdout.strip()
        checks.append(Check("ok", "reachable", f"{profile.transport} {profile.target()}, arch {arch}"))
        checks.append(_cpu_check(sh("nproc 2>/dev/null; cat /proc/cpuinfo 2>/dev/null"), profile))
        checks.append(_runtime_check(transport, profile, timeout))
        checks.append(_governor_check(sh("cat /sys/devices/system/cpu/cpu*/cpufreq/scaling_governor 2>/dev/null")))
        checks.append(_temp_check(sh("for z in /sys/class/thermal/thermal_zone*; do "
                                     "echo \"$(cat $z/type 2>/dev/null) $(cat $z/temp 2>/dev/null)\"; done")))
    except UserError as err:
        checks.append(Check("fail", "connection", err.one_line()))
    finally:
        try:
            transport.cleanup()
        except UserError:
            pass
    return checks


def _cpu_check(text: str, profile: DeviceProfile) -> Check:
    lines = text.splitlines()
    cores = int(lines[0]) if lines and lines[0].strip().isdigit() else None
    fields: dict[str, list[str]] = {}
    for line in lines[1:]:
        key, sep, value = line.partition(":")
        if sep:
            fields.setdefault(key.strip(), []).append(value.strip())
    model = (fields.get("model name") or fields.get("Model") or fields.get("Hardware") or ["unknown CPU"])[0]
    parts = sorted(set(fields.get("CPU part", [])))
    detail = f"{model}{' (CPU parts ' + ', '.join(parts) + ')' if parts else ''}, {cores or '?'} cores"
    cpus = profile.affinity_cpus()
    if cpus and cores and max(cpus) >= cores:
        return Check("warn", "cpu", f"{detail}; affinity {profile.affinity} names CPUs the device lacks")
    return Check("ok" if cores else "warn", "cpu", detail)


def _runtime_check(transport, profile: DeviceProfile, timeout: float) -> Check:
    if profile.transport == "adb":
        try:
            path = _benchmark_binary(profile)
        except UserError as err:
            return Check("fail", "runtime", err.one_line())
        return Check("ok", "runtime", f"benchmark_model {path} ({path.stat().st_size // 1024} KiB, pushed at bench)")
    python = " ".join(profile.python_argv)
    res = transport.run([*profile.python_argv, "-c", _RUNTIME_PROBE], timeout=timeout)
    try:
        info = json.loads(res.stdout.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        tail = (res.stderr or res.stdout).strip().splitlines()[-1:] or ["no output"]
        return Check("fail", "runtime", f"cannot run {python}: {tail[0]}")
    if info.get("error") or not info.get("runtime"):
        return Check("fail", "runtime", f"{python} (Python {info['python']}) lacks "
                     f"{'numpy' if info.get('error') else 'a TFLite runtime'}: "
                     f"run `{python} -m pip install numpy ai-edge-litert` there")
    rt = info["runtime"]
    status = "warn" if rt["name"] == "tensorflow" else "ok"
    return Check(status, "runtime", f"{rt['name']} {rt['version']} (numpy {info['numpy']}, Python {info['python']})")


def _governor_check(text: str) -> Check:
    govs = sorted(set(text.split()))
    if not govs:
        return Check("warn", "governor", "no cpufreq information (frequencies unknown)")
    if govs == ["performance"]:
        return Check("ok", "governor", "performance")
    return Check("warn", "governor", f"{', '.join(govs)}: clocks follow load; set 'performance' for stable timings")


def _temp_check(text: str) -> Check:
    temps = {}
    for line in text.splitlines():
        kind, _, value = line.strip().rpartition(" ")
        if value.lstrip("-").isdigit():
            temps[kind or "zone"] = int(value) / 1000.0
    if not temps:
        return Check("warn", "temperature", "no thermal zones readable")
    hottest = max(temps, key=temps.get)
    detail = f"max {temps[hottest]:.1f} C ({hottest}) over {len(temps)} zones"
    return Check("warn" if temps[hottest] >= 60 else "ok", "temperature", detail)


