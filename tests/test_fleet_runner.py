"""bench/fleet.py on real work: devices run concurrently, a failing device does not stop the others, and
`sdeploy bench --device a,b` keeps the finished device's results while exiting 3 naming the dead one."""
from __future__ import annotations

import json
import subprocess
import sys
import threading
import time

from helpers import default_sigint
from shufflenet_deploy.bench.fleet import run_fleet
from shufflenet_deploy.errors import DeviceError


def test_devices_run_concurrently_and_one_failure_is_isolated():
    running, peak = set(), []
    lock = threading.Lock()

    def job(device, progress):
        with lock:
            running.add(device)
            peak.append(len(running))
        time.sleep(0.5)
        with lock:
            running.discard(device)
        if device == "dead":
            raise DeviceError("dead: connection refused")
        progress("measured")
        return device.upper()

    seen = []
    t0 = time.monotonic()
    outcomes = run_fleet(["a", "dead", "b"], job, lambda d, m: seen.append((d, m)))
    assert time.monotonic() - t0 < 1.4                    # three 0.5 s jobs at once, not one after another
    assert max(peak) == 3
    assert [o.device for o in outcomes.values()] == ["a", "dead", "b"]
    assert outcomes["a"].value == "A" and outcomes["b"].ok and not outcomes["dead"].ok
    assert "connection refused" in outcomes["dead"].error
    assert ("a", "measured") in seen and any(d == "dead" and m.startswith("failed") for d, m in seen)


def test_bench_of_two_devices_keeps_the_live_one_and_names_the_dead_one(tmp_path, tiny_tflite):
    devices = tmp_path / "devices.toml"
    devices.write_text('[devices.dead]\ntransport = "ssh"\nhost = "127.0.0.1"\nport = 1\nconnect_timeout = 3\n'
                       '[devices.here]\ntransport = "local"\n')
    proc = subprocess.run([sys.executable, "-c", "from shufflenet_deploy.cli import run; run()", "bench",
                           str(tiny_tflite("fp32")), "--device", "here,dead", "--devices", str(devices),
                           "--runs", "5", "--warmup", "1", "--no-peak", "-o", str(tmp_path / "out")],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 3, proc.stderr[-2000:]
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "failed on 1 of 2 device(s): dead" in errors[0] and "here finished" in errors[0]
    doc = json.loads((tmp_path / "out" / "bench-here" / "bench.json").read_text())
    assert doc["results"] and doc["results"][0]["device"] == "here"
    assert not (tmp_path / "out" / "bench-dead" / "bench.json").exists()


def test_cores_pins_the_runs_to_a_cluster_from_the_devices_own_facts(tmp_path, tiny_tflite):
    import os

    base = [sys.executable, "-c", "from shufflenet_deploy.cli import run; run()", "bench", str(tiny_tflite("fp32")),
            "--device", "local", "--runs", "5", "--warmup", "1", "--no-peak", "--json"]
    done = subprocess.run([*base, "--cores", "big", "-o", str(tmp_path / "big")], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    r = json.loads(done.stdout)["results"][0]
    assert r["affinity"] == sorted(os.sched_getaffinity(0)) and r["cores"] == "all"  # one cluster here: all of it
    facts = r["device_facts"]
    if len(facts["clusters"]) == 1:  # this x86 VM: no little cores, refused in one line before measuring
        refused = subprocess.run([*base, "--cores", "little", "-o", str(tmp_path / "little")], capture_output=True,
                                 text=True, timeout=300)
        assert refused.returncode == 2
        assert refused.stderr.strip().splitlines() == [line for line in refused.stderr.strip().splitlines()
                                                       if line.startswith("error: --cores little: local has no")]


def test_ctrl_c_stops_every_device_after_its_running_measurement(tmp_path, tiny_tflite):
    """SIGINT to sdeploy alone (as `kill -INT`; a terminal's Ctrl-C also ends the children): both workers stop at
    their next step instead of finishing their runs, and the command exits 130 with its one line."""
    import signal

    devices = tmp_path / "devices.toml"
    devices.write_text('[devices.one]\ntransport = "local"\n[devices.two]\ntransport = "local"\n')
    proc = subprocess.Popen([sys.executable, "-c", "from shufflenet_deploy.cli import run; run()", "bench",
                             str(tiny_tflite("fp32")), "--device", "one,two", "--devices", str(devices), "--runs", "5",
                             "--warmup", "0", "--min-seconds", "1", "--trials", "20", "--no-peak",
                             "-o", str(tmp_path / "out")], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=default_sigint)  # as a terminal's foreground sdeploy has it
    try:
        time.sleep(6)  # started, and into its 20 one-second trials per device
        assert proc.poll() is None
        proc.send_signal(signal.SIGINT)
        t0 = time.monotonic()
        _, stderr = proc.communicate(timeout=60)
        stopped_in = time.monotonic() - t0
    finally:
        proc.kill()
    assert proc.returncode == 130, stderr[-2000:]
    assert stderr.strip().splitlines()[-1] == "interrupted; temporary files removed"
    assert stopped_in < 8, stopped_in  # one running trial (~1 s each) per device, not the ~14 s left
