"""bench/settings.py: the measurement presets, their validation, and that `sdeploy sweep` / `sdeploy bench` pass
the one settings object all the way down (CLI -> run_sweep -> each step -> the peak kernels) and record it."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from shufflenet_deploy.bench import settings as ms
from shufflenet_deploy.bench.results import BenchResult, ResultsDocument
from shufflenet_deploy.cli import main as cli_main
from shufflenet_deploy.errors import UserError
from shufflenet_deploy.precisions import PEAK_KERNELS

FULL, QUICK = ms.SWEEP_PRESETS["full"], ms.SWEEP_PRESETS["quick"]


# ------------------------------------------------------------------------------------------------ the presets
def test_full_is_what_the_sweep_always_measured_with():
    assert FULL == ms.MeasureSettings() and FULL.preset == "full"
    assert (FULL.runs, FULL.warmup, FULL.model_instances) == (30, 5, 3)
    assert (FULL.op_runs, FULL.op_rounds) == (15, 3)
    assert (FULL.interleaved_rounds, FULL.interleaved_runs, FULL.interleaved_instances) == (8, 10, 4)
    assert (FULL.retime_rounds, FULL.retime_runs, FULL.retime_instances) == (4, 10, 2)
    assert (FULL.peak, FULL.peak_runs, FULL.peak_rounds, FULL.peak_instances) == (True, 10, 4, 2)
    assert ms.BENCH_PRESETS["full"] == ms.BenchSettings(preset="full", runs=50, warmup=10, instances=3, trials=1)


def test_quick_measures_every_step_at_a_fraction_of_the_cost():
    assert QUICK.to_dict() == {
        "preset": "quick", "runs": 5, "warmup": 1, "model_instances": 2, "op_runs": 3, "op_rounds": 1,
        "interleaved_rounds": 2, "interleaved_runs": 3, "interleaved_instances": 2,
        "retime_rounds": 1, "retime_runs": 3, "retime_instances": 1,
        "peak": True, "peak_runs": 3, "peak_rounds": 1, "peak_instances": 1}
    counts = [f.name for f in dataclasses.fields(QUICK) if f.name not in ("preset", "peak")]
    assert all(1 <= getattr(QUICK, c) <= getattr(FULL, c) for c in counts if c != "warmup")
    # what each step's runner call costs, in timed inferences per model (or op, or kernel)
    assert QUICK.op_runs * QUICK.op_rounds * 10 <= FULL.op_runs * FULL.op_rounds
    assert QUICK.interleaved_rounds * QUICK.interleaved_runs * 10 <= FULL.interleaved_rounds * FULL.interleaved_runs
    assert QUICK.peak_runs * QUICK.peak_rounds * 10 <= FULL.peak_runs * FULL.peak_rounds
    assert ms.BENCH_PRESETS["quick"].runs < ms.BENCH_PRESETS["full"].runs


@pytest.mark.parametrize("change, needle", [
    ({"op_runs": 0}, "op_runs=0"), ({"runs": -3}, "runs=-3"), ({"warmup": -1}, "warmup=-1"),
    ({"interleaved_rounds": 2.5}, "interleaved_rounds=2.5"), ({"retime_runs": True}, "retime_runs=True"),
    ({"peak": "no"}, "peak='no'"), ({"preset": "slow"}, "'slow'")])
def test_a_bad_setting_is_one_users_error(change, needle):
    with pytest.raises(UserError) as err:
        dataclasses.replace(FULL, **change)
    assert needle in err.value.one_line() and "\n" not in err.value.one_line()


def test_warmup_may_be_zero_and_unset_overrides_keep_the_preset():
    assert FULL.with_overrides(warmup=0).warmup == 0
    assert QUICK.with_overrides(runs=None, op_runs=None, peak=None) == QUICK
    assert QUICK.with_overrides(runs=7, peak=False) == dataclasses.replace(QUICK, runs=7, peak=False)
    with pytest.raises(UserError):
        ms.sweep_preset("medium")


# -------------------------------------------------------------------------------------------- the sweep CLI
@pytest.fixture
def sweep_calls(monkeypatch):
    """`sdeploy sweep` with run_sweep replaced: [(device, kwargs)] of every call; the export stack not needed."""
    from shufflenet_deploy.analysis import sweep as sweep_mod

    calls = []

    def fake(device, **kwargs):
        calls.append((device, kwargs))
        return ResultsDocument()

    monkeypatch.setattr(sweep_mod, "run_sweep", fake)
    monkeypatch.setattr(sweep_mod, "require_stack", lambda sources: None)
    return calls


def _sweep(tmp_path, *args) -> int:
    return cli_main(["sweep", "--device", "local", "--models", "shufflenet_v1_g3_0.25x", "-o", str(tmp_path / "s"),
                     *args])


def test_no_preset_is_the_full_preset(sweep_calls, tmp_path):
    assert _sweep(tmp_path) == 0
    assert sweep_calls[-1][1]["settings"] == FULL


def test_preset_quick_reaches_run_sweep(sweep_calls, tmp_path, capsys):
    assert _sweep(tmp_path, "--preset", "quick") == 0
    assert sweep_calls[-1][1]["settings"] == QUICK
    assert "quick preset" in capsys.readouterr().err


@pytest.mark.parametrize("args, expected", [
    (["--preset", "quick", "--runs", "12", "--warmup", "0"], dataclasses.replace(QUICK, runs=12, warmup=0)),
    (["--runs", "12"], dataclasses.replace(FULL, runs=12)),
    (["--preset", "quick", "--op-runs", "6", "--op-rounds", "2", "--interleaved-rounds", "4", "--no-peak"],
     dataclasses.replace(QUICK, op_runs=6, op_rounds=2, interleaved_rounds=4, peak=False)),
    (["--op-rounds", "1", "--preset", "quick"], dataclasses.replace(QUICK, op_rounds=1)),  # order does not matter
    (["--no-peak"], dataclasses.replace(FULL, peak=False)),
    (["--preset", "quick", "--peak"], QUICK),
])
def test_single_options_win_over_the_preset(sweep_calls, tmp_path, args, expected):
    assert _sweep(tmp_path, *args) == 0
    assert sweep_calls[-1][1]["settings"] == expected


def test_every_device_of_a_fleet_sweep_gets_the_settings(sweep_calls, tmp_path):
    devices = tmp_path / "devices.toml"
    devices.write_text('[devices.one]\ntransport = "local"\n[devices.two]\ntransport = "local"\n')
    assert _sweep(tmp_path, "--device", "one,two", "--devices", str(devices), "--preset", "quick",
                  "--op-runs", "4") == 0
    assert {d: kw["settings"] for d, kw in sweep_calls} == {d: dataclasses.replace(QUICK, op_runs=4)
                                                            for d in ("one", "two")}


@pytest.mark.parametrize("args, needle", [
    (["--preset", "fast"], "unknown --preset 'fast'"), (["--op-runs", "0"], "bad --op-runs '0'"),
    (["--op-rounds", "two"], "bad --op-rounds 'two'"), (["--interleaved-rounds", "-1"], "--interleaved-rounds"),
    (["--runs", "0"], "bad --runs '0'"), (["--warmup", "-1"], "bad --warmup '-1'"), (["--runs", "2.5"], "--runs")])
def test_a_bad_value_is_one_line_and_exit_2(sweep_calls, tmp_path, capsys, args, needle):
    assert _sweep(tmp_path, *args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and needle in err[0], err
    assert not sweep_calls  # refused before anything was measured


# ------------------------------------------------------------------------------------- down to each step
class FakeBackend:
    """A backend whose measure_many records what it was asked (ids, runs, rounds, instances)."""

    measures_peak = False

    def __init__(self):
        self.calls = []
        self.profile = type("P", (), {"name": "fake"})()

    def measure_many(self, files, *, threads=1, runs=20, warmup=3, rounds=1, instances=1, progress=None):
        self.calls.append({"ids": sorted(files), "runs": runs, "rounds": rounds, "instances": instances})
        from shufflenet_deploy.bench.raw import TimedModel

        return {i: TimedModel(i, median_ms=1.0 + n) for n, i in enumerate(files)}


def test_the_peak_kernels_take_the_settings(monkeypatch, tmp_path):
    from shufflenet_deploy.analysis.sweep import measure_peak
    from shufflenet_deploy.bench import peak

    monkeypatch.setattr(peak, "build_all", lambda folder: {(k, p): tmp_path / f"{k}_{p}.tflite"
                                                           for k in peak.KERNELS for p in PEAK_KERNELS})
    for settings, expected in ((QUICK, (3, 1, 1)), (FULL, (10, 4, 2))):
        backend = FakeBackend()
        records = measure_peak(backend, 1, settings=settings)
        assert [(c["runs"], c["rounds"], c["instances"]) for c in backend.calls] == [expected]
        assert len(records) == len(peak.KERNELS) * len(PEAK_KERNELS) and all(r.gmacs for r in records)
    backend = FakeBackend()
    peak.time_kernels(backend, 1)  # `sdeploy bench`'s cached peak: the full counts
    assert (backend.calls[0]["runs"], backend.calls[0]["rounds"]) == (FULL.peak_runs, FULL.peak_rounds)


def test_the_interleaved_pass_and_the_retiming_take_the_settings(monkeypatch, tmp_path):
    from shufflenet_deploy.analysis import sweep as sweep_mod

    monkeypatch.setenv("SDEPLOY_CACHE", str(tmp_path / "cache"))
    export = tmp_path / "export"
    export.mkdir()
    (export / "model_fp32.tflite").write_bytes(b"x")
    opcut = tmp_path / "cache" / "opcut" / "abcdef0123456789"
    opcut.mkdir(parents=True)
    for name in ("overhead_float32.tflite", "op_conv1.tflite"):
        (opcut / name).write_bytes(b"x")
    doc = ResultsDocument(results=[BenchResult(device="fake", model="m@32", precision="fp32", threads=1,
                                               latency_ms={"p50": 1.0})])
    doc.models = {"m@32": {"export": str(export), "precisions": {"fp32": {
        "file": "model_fp32.tflite", "sha256": "abcdef0123456789" * 4, "op_method": "single-op models",
        "ops": [{"signature": "conv1", "op": "CONV_2D", "inputs": [["x", "float32"]], "time_ms": 0.5,
                 "raw_ms": 0.6}]}}}}
    backend = FakeBackend()
    backend.measures_peak = True  # the Linux runner: the re-timing follows the interleaved pass
    sweep_mod.interleaved_pass(doc, backend, 1, ("fp32",), {}, True, lambda m: None, QUICK)
    interleaved, retime = backend.calls
    assert interleaved["ids"] == ["m@32|fp32"]
    assert (interleaved["rounds"], interleaved["runs"], interleaved["instances"]) == (2, 3, 2)
    assert doc.interleaved["rounds"] == 2 and doc.interleaved["runs_per_round"] == 3
    assert retime["ids"] == ["fp32|__overhead__float32", "fp32|conv1"]
    assert (retime["rounds"], retime["runs"], retime["instances"]) == (1, 3, 1)
    data = doc.models["m@32"]["precisions"]["fp32"]
    assert data["overhead_ms"] == 1.0 and data["ops"][0]["raw_ms"] == 2.0 and data["op_retimed"]


# ------------------------------------------------------------------------------------------- the bench CLI
@pytest.fixture
def bench_calls(monkeypatch):
    """`sdeploy bench` with bench_artifact replaced: the kwargs of every call; one result each."""
    from shufflenet_deploy.bench import harness

    calls = []

    def fake(artifact, profile, **kwargs):
        calls.append(kwargs)
        return [BenchResult(device=profile.name, model="tiny", precision="fp32", threads=1,
                            latency_ms={"p50": 1.0}, runs=kwargs["runs"], warmup=kwargs["warmup"])]

    monkeypatch.setattr(harness, "bench_artifact", fake)
    return calls


def _bench(tmp_path, *args) -> int:
    model = tmp_path / "m.tflite"
    model.write_bytes(b"not measured")
    return cli_main(["bench", str(model), "--device", "local", "-o", str(tmp_path / "b"), "--json", *args])


@pytest.mark.parametrize("args, expected", [
    ([], {"runs": 50, "warmup": 10, "instances": 3, "trials": 1}),
    (["--preset", "quick"], {"runs": 10, "warmup": 2, "instances": 2, "trials": 1}),
    (["--preset", "quick", "--runs", "30", "--trials", "2"], {"runs": 30, "warmup": 2, "instances": 2, "trials": 2}),
    (["--instances", "1", "--warmup", "0"], {"runs": 50, "warmup": 0, "instances": 1, "trials": 1}),
])
def test_bench_presets_and_overrides_reach_the_harness(bench_calls, tmp_path, capsys, args, expected):
    assert _bench(tmp_path, *args) == 0
    assert {k: bench_calls[-1][k] for k in expected} == expected
    assert bench_calls[-1]["peak"] == "auto"  # --peak/--no-peak keep their meaning, whatever the preset
    notes = json.loads((tmp_path / "b" / "bench.json").read_text())["results"][0]["notes"]
    quick = [n for n in notes if "--preset quick" in n]
    assert len(quick) == (1 if "quick" in args else 0)


def test_every_device_of_a_fleet_bench_gets_the_settings(bench_calls, tmp_path):
    devices = tmp_path / "devices.toml"
    devices.write_text('[devices.one]\ntransport = "local"\n[devices.two]\ntransport = "local"\n')
    assert _bench(tmp_path, "--device", "one,two", "--devices", str(devices), "--preset", "quick", "--runs", "7") == 0
    assert [(c["runs"], c["warmup"], c["instances"]) for c in bench_calls] == [(7, 2, 2)] * 2
    for name in ("one", "two"):
        notes = json.loads((tmp_path / "b" / f"bench-{name}" / "bench.json").read_text())["results"][0]["notes"]
        assert any("--preset quick (runs 7, warmup 2" in n for n in notes), notes


def test_bench_no_peak_is_unchanged_by_the_preset(bench_calls, tmp_path):
    assert _bench(tmp_path, "--preset", "quick", "--no-peak") == 0 and bench_calls[-1]["peak"] == "skip"
    assert _bench(tmp_path, "--preset", "quick", "--peak", "--force") == 0 and bench_calls[-1]["peak"] == "measure"


@pytest.mark.parametrize("args, needle", [
    (["--preset", "slow"], "unknown --preset 'slow'"), (["--trials", "0"], "bad --trials '0'"),
    (["--instances", "x"], "bad --instances 'x'"), (["--runs", "0"], "bad --runs '0'")])
def test_bench_bad_value_is_one_line_and_exit_2(bench_calls, tmp_path, capsys, args, needle):
    assert _bench(tmp_path, *args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and needle in err[0], err
    assert not bench_calls


# ----------------------------------------------------------------------------------------- a real quick sweep
@pytest.mark.slow
def test_a_quick_sweep_records_its_settings_and_the_report_says_so(tmp_path, monkeypatch):
    """A real `sdeploy sweep --preset quick --no-peak` of one small export on `local`: every output filled, the
    settings in bench.json, no peak measured (and the report says % of peak is unknown), 'quick preset' in the
    report's header line; resumed with the full preset, the document lists both."""
    from shufflenet_deploy.analysis.export_cache import export_cached
    from shufflenet_deploy.bench import peak_cache

    # as `sdeploy bench --no-peak`, the sweep's --no-peak would still use a peak `sdeploy bench` cached: none here
    monkeypatch.setattr(peak_cache, "lookup", lambda *args, **kwargs: ([], None))
    folder = export_cached("shufflenet_v1_g3_0.25x", 32, ("fp32", "int8"), options={"num_classes": 10})
    out = tmp_path / "sweep"
    assert cli_main(["sweep", "--device", "local", "--models", str(folder), "--precision", "fp32",
                     "--preset", "quick", "--no-peak", "--op-rounds", "2", "-o", str(out)]) == 0
    doc = json.loads((out / "bench.json").read_text())
    expected = dataclasses.replace(QUICK, peak=False, op_rounds=2)
    assert doc["sweep"]["preset"] == "quick" and doc["sweep"]["measure"] == expected.to_dict()
    assert doc["sweep"]["runs"] == QUICK.runs and doc["results"][0]["runs"] == QUICK.runs
    assert doc["results"][0]["instances"] == QUICK.model_instances
    assert not doc.get("peak") and "--no-peak" in doc["sweep"]["peak_note"]
    ops = doc["models"]["shufflenet_v1_g3_0.25x@32"]["precisions"]["fp32"]["ops"]
    assert ops and all(o["time_ms"] is not None for o in ops)
    assert doc["interleaved"]["rounds"] == QUICK.interleaved_rounds and doc["interleaved"]["latency_ms"]
    assert cli_main(["report", str(out), "-o", str(tmp_path / "r")]) == 0
    md = (tmp_path / "r" / "report.md").read_text()
    assert "runs per model: 5 (quick preset: a quick look, noisier)" in md
    assert "No measured peak for: local fp32" in md

    # resumed with the full preset (nothing left to measure but the final passes): both presets recorded
    assert cli_main(["sweep", "--device", "local", "--models", str(folder), "--precision", "fp32", "--no-peak",
                     "--interleaved-rounds", "1", "-o", str(out)]) == 0
    doc = json.loads((out / "bench.json").read_text())
    assert doc["sweep"]["preset"] == "full" and doc["sweep"]["presets_used"] == ["quick", "full"]
    assert cli_main(["report", str(out), "-o", str(tmp_path / "r2")]) == 0
    assert "(presets quick, full: " in (tmp_path / "r2" / "report.md").read_text()


def test_the_settings_module_is_a_leaf():
    """bench/settings.py sits below both bench/ and analysis/: it imports nothing of the project but errors."""
    import ast

    tree = ast.parse(Path(ms.__file__).read_text())
    imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.level}
    assert imported == {"errors"}
