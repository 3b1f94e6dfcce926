"""A fleet of three devices in one run: a Pi 4 (qemu `-cpu cortex-a72`, its real cpuinfo), a Pi 5 (`-cpu
cortex-a76`, its cpuinfo), each an aarch64 userland behind its own real sshd, and `local` (this x86 machine).

The sweep runs them concurrently (bench/fleet.py), survives one device's server being killed mid-run (the
others finish; the killed one's finished models are kept, marked partial, and the rerun resumes it), and the
report shows one column per device with its core name. Emulated timings are meaningless: this proves the
mechanics and the facts, never speed.
"""
from __future__ import annotations

import json
import os
import shlex
import subprocess
import time
from pathlib import Path

import pytest

from helpers import FIXTURES as _FIXTURES, SDEPLOY, md_table
from servers import aarch64 as a64
from servers import sshd as _sshd
from shufflenet_deploy.devices.cpuinfo import parse_cpuinfo

pytestmark = [pytest.mark.aarch64, pytest.mark.ssh, pytest.mark.slow]
FIXTURES = _FIXTURES / "cpuinfo"
BOARDS = {"rpi4": ("cortex-a72", "rpi4_aarch64.txt", "Cortex-A72"), "rpi5": ("cortex-a76", "rpi5.txt", "Cortex-A76")}


def _forced_command(root: Path, cpu: str) -> str:
    return (f"env SDEPLOY_AARCH64_ROOT={shlex.quote(str(root))} SDEPLOY_AARCH64_CPU={cpu} "
            f"{shlex.quote(str(a64.EXEC_SHIM))}")


def _devices_toml(path: Path, servers: dict) -> Path:
    lines = []
    for name, s in servers.items():
        lines += [f"[devices.{name}]", 'transport = "ssh"', f'host = "{s.host}"', f"port = {s.port}",
                  f'user = "{s.user}"', f'key = "{s.key}"', f'known_hosts = "{s.known_hosts}"',
                  'ssh_config = "/dev/null"', "threads = [1]", "connect_timeout = 10", ""]
    lines += ["[groups]", 'lab = ["rpi4", "rpi5", "local"]', ""]
    path.write_text("\n".join(lines))
    return path


@pytest.fixture(scope="module")
def exports(shared_export):
    """Two small real exports, fp32 and int8, that make one of the paper's pairs (ShuffleNet 0.5x vs 1x, g=3) at
    one size, so the cross-device speedup table has rows; two models, so a device can be killed between them."""
    return [shared_export("g3_0.5x@32").path, shared_export("g3_1.0x@32").path]


def test_a_fleet_sweep_survives_a_dead_device_resumes_it_and_reports_three_columns(aarch64_root, exports, tmp_path):
    if _sshd.missing_reason():
        pytest.skip(_sshd.missing_reason())
    roots = {name: a64.board_root(aarch64_root, tmp_path / f"board-{name}", (FIXTURES / text).read_text())
             for name, (_, text, _) in BOARDS.items()}
    out = tmp_path / "sweep"
    # the quick preset: this test checks mechanics and facts, and the quick preset still fills every output
    args = ["sweep", "--device", "lab", "--models", ",".join(map(str, exports)), "--precision", "fp32,int8",
            "--preset", "quick", "-o", str(out)]
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    t0 = time.monotonic()
    with _sshd.running_sshd(tmp_path / "sshd-rpi4", forced_command=_forced_command(roots["rpi4"], "cortex-a72")) as s4:
        rpi5 = _sshd.running_sshd(tmp_path / "sshd-rpi5", forced_command=_forced_command(roots["rpi5"], "cortex-a76"))
        s5 = rpi5.__enter__()
        try:
            devices = _devices_toml(tmp_path / "devices.toml", {"rpi4": s4, "rpi5": s5})
            run = subprocess.Popen([*SDEPLOY, *args, "--devices", str(devices)], stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True, env=env)
            first = out / "rpi5" / "bench.json"
            deadline = time.monotonic() + 1500
            while time.monotonic() < deadline and run.poll() is None:  # kill rpi5 once its first model is in
                if first.exists() and json.loads(first.read_text())["results"]:
                    break
                time.sleep(2)
        finally:
            rpi5.__exit__(None, None, None)  # rpi5's sshd and its sessions die mid-sweep
        stdout, stderr = run.communicate(timeout=1800)
        first_run_s = time.monotonic() - t0
        assert run.returncode == 3, stderr[-3000:]
        error = [line for line in stderr.splitlines() if line.startswith("error:")]
        assert len(error) == 1 and "rpi5" in error[0] and "1 of 3 device(s)" in error[0], stderr[-3000:]
        for name in ("rpi4", "local"):
            doc = json.loads((out / name / "bench.json").read_text())
            assert not doc["partial"] and len(doc["results"]) == 4, name
        killed = json.loads(first.read_text())
        assert killed["partial"] and 1 <= len(killed["results"]) < 4
        before = {name: json.loads((out / name / "bench.json").read_text())["results"] for name in ("rpi4", "local")}

        # the rpi5 board back on a new port: the same command resumes it and leaves the others as they are
        with _sshd.running_sshd(tmp_path / "sshd-rpi5b",
                                forced_command=_forced_command(roots["rpi5"], "cortex-a76")) as s5b:
            _devices_toml(devices, {"rpi4": s4, "rpi5": s5b})
            t1 = time.monotonic()
            again = subprocess.run([*SDEPLOY, *args, "--devices", str(devices)], capture_output=True, text=True,
                                   env=env, timeout=1800)
            resume_s = time.monotonic() - t1
    assert again.returncode == 0, again.stderr[-3000:]
    docs = {name: json.loads((out / name / "bench.json").read_text()) for name in ("rpi4", "rpi5", "local")}
    # resumed, not redone: rpi5's model measured before the kill is kept as it was, the finished devices untouched
    kept = killed["results"][0]
    assert any(r["model_key"] == kept["model_key"] and r["times_ms"] == kept["times_ms"] for r in docs["rpi5"]["results"])
    for name, results in before.items():
        assert [r["times_ms"] for r in docs[name]["results"]] == [r["times_ms"] for r in results], name
    assert all(not d["partial"] and len(d["results"]) == 4 for d in docs.values())
    assert all(d["sweep"]["preset"] == "quick" and d["peak"] for d in docs.values())  # recorded; peak still measured
    for name, (cpu, _, core) in BOARDS.items():
        for r in docs[name]["results"]:
            assert r["machine"] == "aarch64" and r["transport"] == "ssh"
            assert {c["name"] for c in r["device_facts"]["clusters"]} == {core}, r["device_facts"]
    assert docs["rpi4"]["results"][0]["device_facts"]["isa"]["dotprod"] is False   # A72: no int8 dot product
    assert docs["rpi5"]["results"][0]["device_facts"]["isa"]["dotprod"] is True
    assert {r["machine"] for r in docs["local"]["results"]} == {"x86_64"}

    report = subprocess.run([*SDEPLOY, "report", *(str(out / n) for n in ("rpi4", "rpi5", "local")), "-o",
                             str(out / "report")], capture_output=True, text=True, env=env, timeout=600)
    assert report.returncode == 0, report.stderr[-3000:]
    md = (out / "report" / "report.md").read_text()
    assert "(quick preset: a quick look, noisier)" in md  # the report says how the numbers were measured
    assert "[all: 4x Cortex-A72]; ISA: no dotprod, i8mm or fp16" in md   # said in words, never a dash
    header = next(line for line in md.splitlines() if line.startswith("| model | precision | threads | MACs (M) |"))
    host_core = parse_cpuinfo(Path("/proc/cpuinfo").read_text()).cores[0].name  # this machine's CPU, whatever it is
    assert "rpi4 (Cortex-A72)" in header and "rpi5 (Cortex-A76)" in header and f"local ({host_core}" in header
    latency = md_table(md, "Across devices: latency per model (ms), one column per device")
    assert len(latency) == 4 and all("—" not in row[4:] for row in latency), latency  # a latency in every column
    speedups = {row[0]: row for row in md_table(md, "Across devices: the paper's speedups, one column per device")}
    for comparison in ("ShuffleNet 0.5x vs 1x (g=3), fp32", "ShuffleNet 0.5x vs 1x (g=3), int8",
                       "int8 vs fp32, geometric mean of all models"):
        assert "—" not in speedups[comparison][2:], speedups
    shares = md_table(md, "Across devices: where the time goes (share of the summed per-op time)")
    assert shares and all(len(row) == 6 for row in shares)
    predictors = {row[0]: row for row in md_table(md, "Across devices: the latency predictor, fitted and evaluated "
                                                    "per device")}
    assert set(predictors) == {"rpi4", "rpi5", "local"} and all(int(r[1]) > 0 for r in predictors.values())
    for name in ("rpi4", "rpi5", "local"):
        assert (out / "report" / f"op_shares-{name}.png").exists()
    print(f"\nfleet sweep: first run (rpi5 killed) {first_run_s:.0f} s, resume {resume_s:.0f} s")
    section = md.split("## Across devices: the paper's speedups", 1)[1].split("\n## ", 1)[0]
    print("## Across devices: the paper's speedups" + section)

