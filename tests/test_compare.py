"""`sdeploy compare`: the regression gate on real bench results (split, slowed, mismatched)."""
from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from shufflenet_deploy.bench.harness import bench_artifact
from shufflenet_deploy.bench.results import write_results
from shufflenet_deploy.cli import main as cli_main
from shufflenet_deploy.devices.profile import DeviceProfile


@pytest.fixture(scope="module")
def measured(tiny_tflite):
    """One real local run of a tiny model, 200 runs."""
    profile = DeviceProfile.from_fields("local", {"transport": "local"})
    return bench_artifact(tiny_tflite("fp32"), profile, runs=200, warmup=10, instances=1)[0]


@pytest.fixture
def steady(measured):
    """The real result with seeded run times (5 ms, 1% spread): the verdict tests of scaled copies test the
    verdicts, not how noisy this host was while the fixture ran (a loaded CI host widened the interval past a
    20% slowdown)."""
    return dataclasses.replace(measured, times_ms=list(np.random.default_rng(0).normal(5.0, 0.05, 200)))


def halves(r):
    """Two halves of one run, interleaved (even / odd runs), so drift does not split them."""
    return (dataclasses.replace(r, times_ms=r.times_ms[0::2]), dataclasses.replace(r, times_ms=r.times_ms[1::2]))


def test_two_halves_of_one_run_are_the_same(tmp_path, measured, capsys):
    a, b = halves(measured)
    write_results([a], tmp_path / "a")
    write_results([b], tmp_path / "b")
    assert cli_main(["compare", str(tmp_path / "a"), str(tmp_path / "b"), "--json"]) == 0
    (pair,) = json.loads(capsys.readouterr().out)["pairs"]
    assert pair["verdict"] == "same" and pair["ci"][0] <= 1 <= pair["ci"][1]


def test_a_copy_slowed_by_20_percent_is_a_regression(tmp_path, steady, capsys):
    measured = steady
    slow = dataclasses.replace(measured, times_ms=[t * 1.2 for t in measured.times_ms])
    write_results([measured], tmp_path / "base")
    write_results([slow], tmp_path / "new")
    summary = tmp_path / "summary.md"
    code = cli_main(["compare", str(tmp_path / "base"), str(tmp_path / "new"), "--markdown", str(summary)])
    out = capsys.readouterr().out
    assert code == 1 and "**regression**" in out and summary.read_text() == out
    assert "| 1.200 |" in out
    # the other way round it is faster, and the gate passes
    assert cli_main(["compare", str(tmp_path / "new"), str(tmp_path / "base"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["pairs"][0]["verdict"] == "faster"
    # a threshold above the slowdown: slower, not a regression
    assert cli_main(["compare", str(tmp_path / "base"), str(tmp_path / "new"), "--max-regression", "30",
                     "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["pairs"][0]["verdict"] == "slower"


def test_mismatched_results_are_refused_unless_allowed(tmp_path, measured, capsys):
    other_device = dataclasses.replace(measured, device="rpi")
    other_model = dataclasses.replace(measured, model_key="something_else", model="something_else")
    write_results([measured], tmp_path / "base")
    write_results([other_device], tmp_path / "dev")
    write_results([measured, other_model], tmp_path / "more")
    assert cli_main(["compare", str(tmp_path / "base"), str(tmp_path / "dev")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "different devices" in err[0] and "--allow-mixed" in err[0]
    assert cli_main(["compare", str(tmp_path / "base"), str(tmp_path / "more")]) == 2
    assert "no counterpart" in capsys.readouterr().err
    assert cli_main(["compare", str(tmp_path / "base"), str(tmp_path / "more"), "--allow-mixed", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert len(doc["pairs"]) == 1 and "left out" in doc["notes"][0]


def test_bootstrap_interval_covers_the_truth():
    from shufflenet_deploy.bench.compare import ratio_ci

    rng = np.random.default_rng(5)
    base = rng.lognormal(0, 0.1, 300)
    ratio, low, high = ratio_ci(list(base), list(base * 1.1))
    assert ratio == pytest.approx(1.1) and low <= 1.1 <= high and low > 1.0


def test_fleet_folders_compare_device_by_device(tmp_path, steady, capsys):
    """`compare BASE NEW` on the folders a fleet run wrote (one DEVICE/bench.json each): pairs per device."""
    measured = steady
    pi = dataclasses.replace(measured, device="rpi")
    for side, slow in (("base", 1.0), ("new", 1.25)):
        write_results([measured], tmp_path / side / "local")
        write_results([dataclasses.replace(pi, times_ms=[t * slow for t in pi.times_ms])], tmp_path / side / "rpi")
    assert cli_main(["compare", str(tmp_path / "base"), str(tmp_path / "new"), "--json"]) == 1
    verdicts = {p["device"]: p["verdict"] for p in json.loads(capsys.readouterr().out)["pairs"]}
    assert verdicts == {"local": "same", "rpi": "regression"}
    (tmp_path / "empty").mkdir()
    assert cli_main(["compare", str(tmp_path / "base"), str(tmp_path / "empty")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no benchmark results" in err[0] and "DEVICE/" in err[0]


def test_a_model_name_cannot_forge_rows_in_the_markdown_summary(tmp_path, measured, capsys):
    name = "evil | fp32 | 1 | local | 0.1 | 0.1 | 1.0 | 1-1 | same |\n| injected"
    forged = dataclasses.replace(measured, model_key=name, model=name)
    write_results([forged], tmp_path / "a")
    write_results([forged], tmp_path / "b")
    summary = tmp_path / "summary.md"
    assert cli_main(["compare", str(tmp_path / "a"), str(tmp_path / "b"), "--markdown", str(summary)]) == 0
    rows = [line for line in summary.read_text().splitlines() if line.startswith("|")]
    assert len(rows) == 3 and rows[2].count(" | ") == 8, rows  # header, rule, one row of nine cells
    assert "\\| injected" in rows[2]


def test_the_report_of_a_plain_bench_result_has_no_dashes_in_its_header(tmp_path, measured):
    """A `sdeploy bench` result (no sweep block): the header says what the results know (threads, runs, runtime,
    CPU) and leaves out what nothing recorded (graph and calibration of a bare .tflite), never a dash."""
    write_results([measured], tmp_path / "bench")
    assert cli_main(["report", str(tmp_path / "bench"), "-o", str(tmp_path / "r")]) == 0
    header = (tmp_path / "r" / "report.md").read_text().splitlines()[2]
    assert header.startswith("Sources: ") and "—" not in header, header
    runtime = f"{measured.runtime['name']} {measured.runtime['version']}"
    assert f"threads: {measured.threads};" in header and f"runs per model: {measured.runs};" in header, header
    assert f"runtime: {runtime}" in header and "graph" not in header and "calibration" not in header, header


def test_runtimes_are_compared_like_with_like(tmp_path, steady, capsys):
    """A `--runtime all` result holds ONNX Runtime rows beside the TFLite ones: each is paired with its own kind,
    a new LiteRT version is refused as a different runtime, and ONNX Runtime's rows never pass as LiteRT's."""
    measured = steady
    onnx = dataclasses.replace(measured, precision="onnx", runtime={"name": "onnxruntime", "version": "1.23.0"})
    write_results([measured, onnx], tmp_path / "all")
    write_results([measured, dataclasses.replace(onnx, times_ms=[t * 1.2 for t in onnx.times_ms])], tmp_path / "slow")
    assert cli_main(["compare", str(tmp_path / "all"), str(tmp_path / "slow"), "--json"]) == 1
    verdicts = {p["precision"]: p["verdict"] for p in json.loads(capsys.readouterr().out)["pairs"]}
    assert verdicts == {"fp32": "same", "onnx": "regression"}
    newer = dataclasses.replace(measured, runtime={**measured.runtime, "version": "9.9.9"})
    write_results([newer, onnx], tmp_path / "newer")
    assert cli_main(["compare", str(tmp_path / "all"), str(tmp_path / "newer")]) == 2
    err = capsys.readouterr().err
    assert "different runtimes" in err and "9.9.9" in err and "onnxruntime" not in err
