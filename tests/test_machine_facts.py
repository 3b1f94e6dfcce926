"""A number measured on one machine is never silently applied to another (devices/machine.py, issue 27).

Two real /proc/cpuinfo texts of different ISA (a Raspberry Pi 4's Cortex-A72 without the int8 dot product and a
Pi 5's Cortex-A76 with it) and the same device name: the peak cache re-measures (or, with --no-peak, says why it
has no peak), `sdeploy predict` refuses in one line naming the difference, a resumed sweep refuses to mix them.
The device side is real: `local` runs its own `sh -c 'cat /proc/cpuinfo'`; only `cat` is shimmed on PATH to
answer with the board's text (as tests/servers/aarch64.py does for the qemu boards).
"""
from __future__ import annotations

import json
import os
import shlex
import stat
from pathlib import Path

import numpy as np
import pytest
from helpers import FIXTURES, cli_in_process

from shufflenet_deploy.analysis import predict
from shufflenet_deploy.bench import peak_cache
from shufflenet_deploy.bench.peak import peak_records
from shufflenet_deploy.bench.results import ResultsDocument
from shufflenet_deploy.devices.cpuinfo import parse_cpuinfo
from shufflenet_deploy.devices.machine import MachineFacts
from shufflenet_deploy.errors import UserError

PI4 = (FIXTURES / "cpuinfo" / "rpi4_aarch64.txt").read_text()
PI5 = (FIXTURES / "cpuinfo" / "rpi5.txt").read_text()
XEON = (FIXTURES / "cpuinfo" / "x86_xeon_vm.txt").read_text()
RUNTIME = {"name": "ai_edge_litert", "version": "2.1.0"}


def facts(text: str) -> dict:
    return parse_cpuinfo(text).to_dict()


def machine(text: str, runtime=RUNTIME, threads=1) -> MachineFacts:
    return MachineFacts.of(facts(text), runtime, threads)


def shim_cpuinfo(folder: Path, text: str, monkeypatch) -> None:
    """Put a `cat` first on PATH that answers /proc/cpuinfo with TEXT (any other file: the real cat)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "cpuinfo").write_text(text)
    real = next(p for p in ("/usr/bin/cat", "/bin/cat") if os.path.exists(p))
    script = folder / "cat"
    script.write_text("#!/bin/sh\nfor a do\n    shift\n    [ \"$a\" = /proc/cpuinfo ] && a="
                      + shlex.quote(str(folder / "cpuinfo")) + "\n    set -- \"$@\" \"$a\"\ndone\nexec "
                      + real + " \"$@\"\n")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{folder}{os.pathsep}{os.environ['PATH']}")


# ------------------------------------------------------------------------------------------------ the facts
def test_two_boards_differ_in_what_decides_int8_speed():
    pi4, pi5 = machine(PI4), machine(PI5)
    differs = pi5.differences(pi4)
    assert any("Cortex-A76" in d and "Cortex-A72" in d for d in differs), differs
    assert any(d.startswith("ISA") and "dotprod there, not here" in d for d in differs), differs
    # same facts under another name, another runtime, another thread count
    assert machine(PI5).differences(pi5) == []
    assert any("runtime" in d for d in pi5.differences(machine(PI5, {"name": "ai_edge_litert", "version": "2.3.0"})))
    assert any("thread" in d for d in pi5.differences(machine(PI5, threads=4)))
    assert pi5.differences(machine(PI5, threads=4), threads=False) == []
    assert "Cortex-A76" in pi5.summary() and "dotprod" in pi5.summary()
    # round trip, and an x86 VM differs from a Pi in everything that counts
    assert MachineFacts.from_dict(pi5.to_dict(), "x") == pi5
    assert len(machine(XEON).differences(pi5)) >= 3


@pytest.mark.parametrize("field, value", [
    ("arch", "sparc"), ("isa", ["dotprod", "quantum"]), ("clusters", []), ("clusters", [{"core": "A76"}]),
    ("clusters", [{"core": "A76", "count": 4, "max_mhz": float("nan")}]), ("threads", -1), ("threads", "1"),
    ("cpus", [0, -3]), ("cpu", 7), ("runtime", ["ai_edge_litert"])])
def test_damaged_machine_facts_are_refused_by_field(field, value):
    data = machine(PI5).to_dict()
    data[field] = value
    with pytest.raises(UserError, match=field):
        MachineFacts.from_dict(data, "peaks/pi.json")


# ------------------------------------------------------------------------------------------------ the peak cache
def test_peak_cache_is_used_only_on_the_machine_that_measured_it(tmp_path, monkeypatch):
    monkeypatch.setenv("SDEPLOY_CACHE", str(tmp_path))
    timed = {("conv1x1_56x56x256x256", "fp32"): 20.0, ("conv1x1_56x56x256x256", "int8"): 8.0,
             ("matmul_64x1024x1024", "fp32"): 7.0, ("matmul_64x1024x1024", "int8"): 3.0}
    peak_cache.store("pi", machine(PI5), RUNTIME, 1, peak_records("pi", 1, timed))
    found, why = peak_cache.lookup("pi", machine(PI5), RUNTIME, 1)
    assert len(found) == 4 and why is None and all(r.machine.cpu == machine(PI5).cpu for r in found)
    # another board under the same name: nothing found, and the reason names the ISA difference
    found, why = peak_cache.lookup("pi", machine(PI4), RUNTIME, 1)
    assert found == [] and "another machine" in why and "dotprod" in why
    # another runtime or thread count: simply not cached yet
    assert peak_cache.lookup("pi", machine(PI5), {"name": "ai_edge_litert", "version": "2.3.0"}, 1) == ([], None)
    # the Pi 4's own measurement for the same runtime replaces the Pi 5's, other thread counts are kept
    peak_cache.store("pi", machine(PI5, threads=4), RUNTIME, 4, peak_records("pi", 4, timed))
    peak_cache.store("pi", machine(PI4), RUNTIME, 1, peak_records("pi", 1, timed))
    assert len(peak_cache.lookup("pi", machine(PI4), RUNTIME, 1)[0]) == 4
    assert len(peak_cache.lookup("pi", machine(PI5, threads=4), RUNTIME, 4)[0]) == 4


def _records(tmp_path) -> list[dict]:
    timed = {("conv1x1_56x56x256x256", "fp32"): 20.0, ("matmul_64x1024x1024", "fp32"): 7.0}
    return [{**r.to_dict(), "runtime": "ai_edge_litert 2.1.0", "machine": machine(PI5).to_dict()}
            for r in peak_records("pi", 1, timed)]


@pytest.mark.parametrize("damage", ["random bytes", "old list", "nan gmacs", "negative gmacs", "gmacs lie",
                                    "fifo", "folder", "bad machine"])
def test_a_damaged_peak_cache_is_re_measured_never_a_traceback(tmp_path, monkeypatch, damage):
    monkeypatch.setenv("SDEPLOY_CACHE", str(tmp_path))
    path = peak_cache.cache_path("pi")
    path.parent.mkdir(parents=True)
    doc = {"schema": peak_cache.SCHEMA, "device": "pi", "records": _records(tmp_path)}
    if damage == "random bytes":
        path.write_bytes(np.random.default_rng(0).bytes(300))
    elif damage == "old list":
        path.write_text(json.dumps([{k: v for k, v in r.items() if k != "machine"} for r in doc["records"]]))
    elif damage == "fifo":
        os.mkfifo(path)
    elif damage == "folder":
        path.mkdir()
    else:
        r = doc["records"][0]
        if damage == "bad machine":
            r["machine"]["isa"] = "dotprod"
        else:
            r["gmacs"] = {"nan gmacs": float("nan"), "negative gmacs": -5.0, "gmacs lie": 5000.0}[damage]
        path.write_text(json.dumps(doc))
    found, why = peak_cache.lookup("pi", machine(PI5), RUNTIME, 1)
    assert found == [] and why.startswith("the cached peak is not usable"), why
    if damage not in ("fifo", "folder"):  # a fresh measurement replaces what we could not read
        timed = {("conv1x1_56x56x256x256", "fp32"): 20.0, ("matmul_64x1024x1024", "fp32"): 7.0}
        peak_cache.store("pi", machine(PI5), RUNTIME, 1, peak_records("pi", 1, timed))
        assert len(peak_cache.lookup("pi", machine(PI5), RUNTIME, 1)[0]) == 2


def test_bench_with_a_peak_cached_on_another_board_says_so(tmp_path, monkeypatch, capsys):
    """`sdeploy bench --no-peak` on `local` that now reads as a Pi 4, with a peak cached while it read as a Pi 5
    (same name, same runtime, same threads): no % of peak, and the row says the peak came from another machine."""
    from shufflenet_deploy.tflite.build import single_op

    monkeypatch.setenv("SDEPLOY_CACHE", str(tmp_path / "cache"))
    from ai_edge_litert import __version__ as _  # noqa: F401  (the runtime the runner will report)
    from importlib import metadata

    runtime = {"name": "ai_edge_litert", "version": metadata.version("ai-edge-litert")}
    timed = {("conv1x1_56x56x256x256", "fp32"): 20.0, ("matmul_64x1024x1024", "fp32"): 7.0}
    cpus = sorted(os.sched_getaffinity(0))
    peak_cache.store("local", MachineFacts.of(facts(PI5), runtime, 1, cpus), runtime, 1,
                     peak_records("local", 1, timed))
    shim_cpuinfo(tmp_path / "shim", PI4, monkeypatch)
    model = tmp_path / "conv.tflite"
    model.write_bytes(single_op("conv", "fp32", (1, 8, 8, 16), 16))
    code, out, err = cli_in_process(capsys, "bench", model, "--device", "local", "--runs", "5", "--warmup", "1",
                                    "--no-peak", "--json", "-o", tmp_path / "bench")
    assert code == 0, err
    row = json.loads((tmp_path / "bench" / "bench.json").read_text())["results"][0]
    assert row["peak_fraction"] is None and row["device_facts"]["clusters"][0]["name"] == "Cortex-A72"
    assert "another machine" in row["peak_missing_reason"] and "dotprod" in row["peak_missing_reason"]


# ------------------------------------------------------------------------------------------------ the predictor
def _predictor(tmp_path, cpuinfo: str | None, device="pi") -> Path:
    from test_analysis import synthetic_doc

    doc = ResultsDocument.from_dict(synthetic_doc(device=device))
    if cpuinfo:
        from importlib import metadata

        runtime = {"name": "ai_edge_litert", "version": metadata.version("ai-edge-litert")}
        for r in doc.results:
            r.device_facts, r.runtime = facts(cpuinfo), runtime
    path = tmp_path / f"predictor-{device}.json"
    predict.save_predictor(predict.fit(doc), path)
    return path


def test_predict_refuses_a_predictor_fitted_on_another_board(tmp_path, monkeypatch, capsys):
    pred = _predictor(tmp_path, PI5, device="local")
    assert json.loads(pred.read_text())["machine"]["clusters"][0]["core"] == "Cortex-A76"
    shim_cpuinfo(tmp_path / "shim", PI4, monkeypatch)
    code, out, err = cli_in_process(capsys, "predict", "shufflenet_v1_g3_0.5x", "--device", "local",
                                    "--predictor", pred)
    assert code == 2 and len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert "does not hold on local" in err and "dotprod there, not here" in err and "Cortex-A72" in err
    assert "sdeploy sweep --device local" in err and "--force-predictor" in err


def test_predict_refuses_a_predictor_that_does_not_say_where_it_was_fitted(tmp_path, capsys):
    pred = _predictor(tmp_path, None, device="local")
    code, out, err = cli_in_process(capsys, "predict", "shufflenet_v1_g3_0.5x", "--device", "local",
                                    "--predictor", pred)
    assert code == 2 and len(err.splitlines()) == 1 and "does not record the machine" in err, err


def test_predict_without_a_predictor_says_how_to_fit_one(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SDEPLOY_CACHE", str(tmp_path))
    code, out, err = cli_in_process(capsys, "predict", "shufflenet_v1_g3_0.5x", "--device", "local")
    assert code == 2 and len(err.splitlines()) == 1 and "sdeploy sweep --device local" in err, err


@pytest.mark.parametrize("damage", ["nan coef", "negative coef", "nan scale", "zero scale", "not json", "fifo",
                                    "bad machine"])
def test_a_damaged_predictor_is_one_line(tmp_path, capsys, damage):
    pred = _predictor(tmp_path, PI5, device="local")
    data = json.loads(pred.read_text())
    key = next(iter(data["regression"]))
    if damage == "not json":
        pred.write_bytes(b"\x89PNG\r\n" + bytes(range(256)))
    elif damage == "fifo":
        pred.unlink()
        os.mkfifo(pred)
    else:
        if damage == "nan coef":
            data["regression"][key]["coef"][1] = float("nan")
        elif damage == "negative coef":
            data["regression"][key]["coef"][1] = -1.0
        elif damage == "nan scale":
            data["correction"]["fp32"]["a"] = float("nan")
        elif damage == "zero scale":
            data["correction"]["fp32"]["a"] = 0
        else:
            data["machine"]["clusters"] = "four big cores"
        pred.write_text(json.dumps(data))
    code, out, err = cli_in_process(capsys, "predict", "shufflenet_v1_g3_0.5x", "--device", "local",
                                    "--predictor", pred)
    assert code == 2 and len(err.splitlines()) == 1 and str(pred) in err and "Traceback" not in err, err


def test_resuming_a_sweep_on_another_board_is_refused(tmp_path, monkeypatch):
    from test_analysis import synthetic_doc, write_doc

    from shufflenet_deploy.analysis.sweep import run_sweep

    doc = synthetic_doc(device="local")
    for r in doc["results"]:
        r["device_facts"] = facts(PI5)
    write_doc(tmp_path / "sweep", doc)
    shim_cpuinfo(tmp_path / "shim", PI4, monkeypatch)
    with pytest.raises(UserError, match="measured on another machine") as err:
        run_sweep("local", models=["shufflenet_v1_g3_0.25x"], precisions=("fp32",), input_sizes=(32,),
                  outdir=tmp_path / "sweep")
    assert "dotprod" in err.value.message and "another -o folder" in err.value.hint


def test_resuming_a_sweep_that_does_not_record_its_machine_is_refused(tmp_path):
    """Results from an older sdeploy (no CPU facts): this machine cannot be shown to be theirs."""
    from test_analysis import synthetic_doc, write_doc

    from shufflenet_deploy.analysis.sweep import run_sweep

    write_doc(tmp_path / "sweep", synthetic_doc(device="local"))
    with pytest.raises(UserError, match="do not record the machine"):
        run_sweep("local", models=["shufflenet_v1_g3_0.25x"], precisions=("fp32",), input_sizes=(32,),
                  outdir=tmp_path / "sweep")
