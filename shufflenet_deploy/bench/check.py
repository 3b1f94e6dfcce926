"""`sdeploy devices check`: probe a device — reachable? arch, CPU, runtime, governor, temperature — one line each.

Never raises for device faults: every problem becomes a `fail`/`warn` line so the user sees all of them at once.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..devices.profile import DeviceProfile
from ..errors import DeviceError, UserError
from .backends import backend_for


@dataclass
class Check:
    status: str  # ok | warn | fail
    name: str
    detail: str


def check_device(profile: DeviceProfile, timeout: float = 30) -> list[Check]:
    """Probe reachability, arch, CPU, runtime, governor and temperature; never raises for device faults."""
    checks: list[Check] = []
    backend = backend_for(profile, timeout=timeout)
    try:
        transport = backend.transport
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
        checks.append(_facts_check(backend))
        status, detail = backend.probe_runtime()
        checks.append(Check(status, "runtime", detail))
        checks.append(_governor_check(sh("cat /sys/devices/system/cpu/cpu*/cpufreq/scaling_governor 2>/dev/null")))
        checks.append(_temp_check(sh("for z in /sys/class/thermal/thermal_zone*; do "
                                     "echo \"$(cat $z/type 2>/dev/null) $(cat $z/temp 2>/dev/null)\"; done")))
    except UserError as err:
        checks.append(Check("fail", "connection", err.one_line()))
    finally:
        backend.close()
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


def _facts_check(backend) -> Check:
    """Core names per cluster and the ISA features that decide XNNPACK's kernels (devices/cpuinfo.py)."""
    cpu = backend.device_facts()
    facts = cpu.to_dict() if cpu else None
    if not facts or facts.get("arch") == "unknown":
        return Check("warn", "cpu facts", "no /proc/cpuinfo the parser recognises: core names and ISA unknown")
    from ..devices.cpuinfo import summary

    return Check("ok", "cpu facts", f"{summary(facts)}; {facts.get('int8')}")


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


