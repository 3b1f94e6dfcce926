"""The gap report, the sweep, the single-op cutter and the latency predictor (shufflenet_deploy/analysis/).

Fast tests build synthetic sweep documents (random latencies from a known law, so nothing is hand-typed) and
check the report's CSV/Markdown against the JSON it was built from. Slow tests convert tiny real models
(32 px, 10 classes; cached under the repo's .cache) and run a real sweep on `local`.
"""
from __future__ import annotations

import csv
import json
import re
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from helpers import FIXTURES, REPO, md_table
from shufflenet_deploy.analysis import gap, predict
from shufflenet_deploy.errors import UserError
from shufflenet_deploy.tflite.ops import GROUPS, classify
from shufflenet_deploy.bench.results import SCHEMA, BenchResult, ResultsDocument
from shufflenet_deploy.bench.settings import sweep_preset
from shufflenet_deploy.cli import main as cli_main

RUNNER = REPO / "shufflenet_deploy" / "runner.py"
SYNTH_MODELS = ("shufflenet_v1_g3_0.5x", "shufflenet_v1_g3_1.0x", "shufflenet_v1_g3_2.0x", "shufflenet_v1_g8_1.0x",
                "mobilenet_v1_1.0x", "shufflenet_v1_g3_0.25x")


# ---------------------------------------------------------------------------------------------- synthetic data
def synthetic_doc(device="local", k=0.7, seed=0, with_peak=True, models=SYNTH_MODELS, bytes_weight=0.2) -> dict:
    """A sweep document whose latencies follow latency = c * MACs^k (x small noise), with synthetic per-op data
    (op time ∝ MACs + bytes_weight * input bytes: a device that moves bytes slower has a larger shuffle share)."""
    from shufflenet_deploy.complexity import count_complexity
    from shufflenet_deploy.tflite.ops import flops_by_group

    rng = np.random.default_rng(seed)
    doc = {"schema": SCHEMA, "created": None, "partial": False, "results": [], "peak": [], "models": {},
           "skipped": [], "sweep": {"device": device, "threads": 1, "runs": 10, "op_method": "synthetic"}}
    for name in models:
        cx = count_complexity(name, input_size=224)
        entry = {"model": name, "input_size": 224, "macs_total": cx.macs_total, "macs_conv": cx.macs_conv,
                 "flops_by_group": flops_by_group(cx), "precisions": {}}
        for precision, scale in (("fp32", 1.0), ("int8", 0.8)):
            lat = scale * 1e-6 * cx.macs_total ** k * float(rng.uniform(0.98, 1.02))
            ops = []
            for i, layer in enumerate(cx.layers):
                group = {"conv": "dense_conv", "group_conv": "grouped_conv", "depthwise": "depthwise_conv",
                         "fc": "dense_conv"}[layer.kind]
                ops.append({"index": i, "op": "CONV_2D", "group": group, "signature": f"{name}-{i}",
                            "macs": layer.macs, "in_bytes": 4 * int(np.prod(layer.in_shape)),
                            "out_bytes": 4 * int(np.prod(layer.out_shape)), "time_ms": None})
                ops.append({"index": i, "op": "TRANSPOSE", "group": "shuffle", "signature": f"{name}-t{i}",
                            "macs": 0, "in_bytes": 4 * int(np.prod(layer.out_shape)),
                            "out_bytes": 4 * int(np.prod(layer.out_shape)), "time_ms": None})
            total = sum(o["macs"] + bytes_weight * o["in_bytes"] for o in ops)
            for o in ops:
                o["time_ms"] = lat * 0.9 * (o["macs"] + bytes_weight * o["in_bytes"]) / total
            entry["precisions"][precision] = {"ops": ops, "op_method": "synthetic", "overhead_ms": 0.0}
            doc["results"].append(BenchResult(device=device, model=name, precision=precision, threads=1,
                                              latency_ms={"p50": lat, "mean": lat}).to_dict())
        doc["models"][name] = entry
    # an interleaved pass re-timed some models (the report must prefer those medians)
    doc["interleaved"] = {"rounds": 2, "latency_ms": {f"{r['model']}|{r['precision']}": r["latency_ms"]["p50"]
                                                     * float(rng.uniform(0.97, 1.03))
                                                     for r in doc["results"][::2]}}
    if with_peak:
        for precision, g in (("fp32", 50.0), ("int8", 190.0)):
            doc["peak"].append({"device": device, "precision": precision, "threads": 1, "kernel": "conv",
                                "macs": 10 ** 9, "median_ms": 1000 / g, "gmacs": g})
    return doc


def write_doc(folder: Path, doc: dict) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "bench.json").write_text(json.dumps(doc))
    return folder


def read_csv(path: Path) -> list[dict]:
    with open(path) as fh:
        return list(csv.DictReader(fh))


# ----------------------------------------------------------------------------------------------------- maths
def test_fitted_exponent_recovers_a_known_exponent():
    rng = np.random.default_rng(1)
    macs = rng.uniform(1e7, 1e9, 20)
    for k in (0.5, 0.7, 1.0):
        fit = gap.fit_exponent(list(macs), list(3e-5 * macs ** k))
        assert fit.k == pytest.approx(k, abs=1e-9) and fit.r2 == pytest.approx(1.0)
    noisy = gap.fit_exponent(list(macs), list(3e-5 * macs ** 0.7 * rng.uniform(0.97, 1.03, 20)))
    assert noisy.k == pytest.approx(0.7, abs=0.03)
    assert gap.fit_exponent([1e6], [1.0]) is None


def lat_of(doc, model, precision):
    """The latency the report must use: the interleaved median if the JSON has one, else the result's p50."""
    inter = (doc.get("interleaved") or {}).get("latency_ms", {})
    r = next(r for r in doc["results"] if r["model"] == model and r["precision"] == precision)
    return inter.get(f"{model}|{precision}", r["latency_ms"]["p50"])


def test_speedup_table_math_and_paper_figures():
    doc = synthetic_doc(k=0.7)
    rows = gap.model_rows(ResultsDocument.from_dict(doc))
    macs = {m: doc["models"][m]["macs_total"] for m in doc["models"]}
    lat = {(r["model"], r["precision"]): lat_of(doc, r["model"], r["precision"]) for r in doc["results"]}
    table = {r.comparison: r for r in gap.speedup_table(rows)}
    half = table["ShuffleNet 0.5x vs 1x (g=3)"]
    assert half.theoretical == pytest.approx(macs["shufflenet_v1_g3_1.0x"] / macs["shufflenet_v1_g3_0.5x"])
    assert half.actual["fp32"] == pytest.approx(lat["shufflenet_v1_g3_1.0x", "fp32"] / lat["shufflenet_v1_g3_0.5x", "fp32"])
    assert half.actual["int8"] == pytest.approx(lat["shufflenet_v1_g3_1.0x", "int8"] / lat["shufflenet_v1_g3_0.5x", "int8"])
    # the paper's own Table 8 (Snapdragon 820, 224x224) ratios, from gap.PAPER_TABLE8
    p = gap.PAPER_TABLE8
    assert half.paper_theoretical == pytest.approx(p["shufflenet_v1_g3_1.0x"][0] / p["shufflenet_v1_g3_0.5x"][0])
    assert half.paper_actual_sd820 == pytest.approx(p["shufflenet_v1_g3_1.0x"][1]["224x224"]
                                                    / p["shufflenet_v1_g3_0.5x"][1]["224x224"])
    assert round(half.paper_actual_sd820, 2) == 2.49  # 37.8 / 15.2
    # latency = c MACs^0.7 -> actual = theoretical^0.7 (within the synthetic 2% + 3% noise)
    assert half.actual["fp32"] == pytest.approx(half.theoretical ** 0.7, rel=0.1)
    assert table["ShuffleNet 1x: g=3 vs g=8"].paper_actual_sd820 is None  # no Table 8 figure for g=8
    int8 = table["int8 vs fp32, ShuffleNet 1x g=3"]
    assert int8.theoretical == pytest.approx(190.0 / 50.0)
    assert int8.actual["int8"] == pytest.approx(lat["shufflenet_v1_g3_1.0x", "fp32"] / lat["shufflenet_v1_g3_1.0x", "int8"])


def test_device_lines_explain_int8_by_the_recorded_isa_and_say_once_when_it_is_missing():
    from shufflenet_deploy.bench.efficiency import NO_ISA
    from shufflenet_deploy.devices.cpuinfo import parse_cpuinfo

    doc = ResultsDocument.from_dict(synthetic_doc())
    lines = gap.device_lines(doc)             # results without CPU facts (a board without cpuinfo, an old file)
    assert lines[0] == f"local: {NO_ISA}" and sum(NO_ISA in line for line in lines) == 1
    assert len(lines) == 1 + len(SYNTH_MODELS) and "int8 ran" in lines[1]
    pi4 = parse_cpuinfo((FIXTURES / "cpuinfo" / "rpi4_aarch64.txt").read_text())
    for r in doc.results:
        r.device_facts = pi4.to_dict()
    lines = gap.device_lines(doc)
    assert "Cortex-A72" in lines[0] and not any(NO_ISA in line for line in lines)
    assert all("widening" in line for line in lines[1:])


def test_conv_grouping_by_filter_shape():
    assert classify("CONV_2D", 240, [60, 1, 1, 80]) == ("grouped_conv", 3)
    assert classify("CONV_2D", 60, [60, 3, 3, 1]) == ("depthwise_conv", 60)
    assert classify("CONV_2D", 24, [60, 1, 1, 24]) == ("dense_conv", 1)
    assert classify("CONV_2D", 3, [24, 3, 3, 3]) == ("dense_conv", 1)
    assert classify("DEPTHWISE_CONV_2D", 32, [1, 3, 3, 32])[0] == "depthwise_conv"
    assert classify("TRANSPOSE", None, None)[0] == "shuffle"
    assert classify("RESHAPE", None, None)[0] == "shuffle"
    assert classify("CONCATENATION", None, None)[0] == "concat_add"
    assert classify("QUANTIZE", None, None)[0] == "quant"
    assert classify("PAD", None, None)[0] == "other"


def test_flops_groups_follow_complexity_layers():
    from shufflenet_deploy.complexity import count_complexity
    from shufflenet_deploy.tflite.ops import flops_by_group

    cx = count_complexity("shufflenet_v1_g3_1.0x", input_size=224)
    flops = flops_by_group(cx)
    assert sum(flops.values()) == cx.macs_total
    assert flops["grouped_conv"] == sum(l.macs for l in cx.layers if l.kind == "group_conv")
    assert flops["shuffle"] == flops["pooling"] == 0


# ---------------------------------------------------------------------------------------------------- report
def test_report_numbers_match_the_json(tmp_path):
    doc = synthetic_doc(k=0.72, seed=3)
    src = write_doc(tmp_path / "sweep", doc)
    out = tmp_path / "report"
    assert cli_main(["report", str(src), "-o", str(out)]) == 0
    for name in ("report.html", "report.md", "models.csv", "speedups.csv", "macs_vs_latency.png",
                 "efficiency.png", "op_shares.png", "flops_vs_time.png", "prediction_error.png"):
        assert (out / name).stat().st_size > 0, name
    html = (out / "report.html").read_text()
    assert html.count("data:image/png;base64,") == 5  # self-contained
    results = {(r["model"], r["precision"]): r for r in doc["results"]}
    peaks = {p["precision"]: p["gmacs"] for p in doc["peak"]}
    rows = read_csv(out / "models.csv")
    assert len(rows) == len(doc["results"])
    for row in rows:
        r = results[row["model"], row["precision"]]
        macs = doc["models"][row["model"]]["macs_total"]
        lat = lat_of(doc, row["model"], row["precision"])
        assert float(row["latency_ms"]) == lat
        assert float(row["sweep_p50_ms"]) == r["latency_ms"]["p50"]
        assert row["latency_source"] == ("interleaved" if lat != r["latency_ms"]["p50"] else "sweep")
        assert int(row["macs"]) == macs
        assert float(row["gmacs"]) == pytest.approx(macs / (lat * 1e-3) / 1e9, rel=1e-12)
        assert float(row["pct_of_peak"]) == pytest.approx(100 * float(row["gmacs"]) / peaks[row["precision"]])
        ops = doc["models"][row["model"]]["precisions"][row["precision"]]["ops"]
        total = sum(o["time_ms"] for o in ops)
        for g in GROUPS:
            assert float(row[f"share_{g}"]) == pytest.approx(sum(o["time_ms"] for o in ops if o["group"] == g)
                                                             / total)
    # the Markdown shows the same numbers, rounded
    md = (out / "report.md").read_text()
    for cells in md_table(md, "Latency, MACs and efficiency"):
        model, _, precision, macs_m, ms, gmacs = cells[:6]
        r = results[model, precision]
        assert float(ms) == pytest.approx(round(lat_of(doc, model, precision), 3), abs=1e-9)
        assert float(cells[-1]) == pytest.approx(round(r["latency_ms"]["p50"], 3), abs=1e-9)
        assert float(macs_m) == pytest.approx(round(doc["models"][model]["macs_total"] / 1e6, 1), abs=1e-9)
    # the exponent in the report is the fit of the JSON's numbers
    fp32 = [r for r in doc["results"] if r["precision"] == "fp32"]
    fit = gap.fit_exponent([doc["models"][r["model"]]["macs_total"] for r in fp32],
                           [lat_of(doc, r["model"], "fp32") for r in fp32])
    exp = next(r for r in read_csv(out / "exponents.csv") if r["precision"] == "fp32" and r["scope"] == "all models")
    assert float(exp["k"]) == pytest.approx(fit.k, rel=1e-12)
    assert fit.k == pytest.approx(0.72, abs=0.03)
    speed = {r["comparison"]: r for r in read_csv(out / "speedups.csv")}
    assert float(speed["ShuffleNet 0.5x vs 1x (g=3)"]["actual_fp32"]) == pytest.approx(
        lat_of(doc, "shufflenet_v1_g3_1.0x", "fp32") / lat_of(doc, "shufflenet_v1_g3_0.5x", "fp32"), rel=1e-12)
    # the file to ship: per model and threads, the precision with the lowest median, in the CSV and the Markdown
    fastest = read_csv(out / "fastest.csv")
    assert {(f["model"], f["threads"]) for f in fastest} == {(r["model"], str(r["threads"])) for r in doc["results"]}
    for f in fastest:
        p50s = {r["precision"]: r["latency_ms"]["p50"] for r in doc["results"] if r["model"] == f["model"]}
        assert f["precision"] == min(p50s, key=p50s.get) and float(f["p50_ms"]) == min(p50s.values())
    assert len(md_table(md, "Which file to ship")) == len(fastest)
    preds = read_csv(out / "predictions.csv")
    assert len(preds) == len(doc["results"])
    for p in preds:
        assert float(p["measured_ms"]) == lat_of(doc, p["key"], p["precision"])


def test_report_without_peak_says_so_and_omits_percent(tmp_path):
    src = write_doc(tmp_path / "sweep", synthetic_doc(with_peak=False))
    out = tmp_path / "report"
    assert cli_main(["report", str(src), "-o", str(out)]) == 0
    md = (out / "report.md").read_text()
    assert "no measured peak" in md
    assert all(row["pct_of_peak"] == "" for row in read_csv(out / "models.csv"))


def test_one_file_per_device_is_a_side_by_side_report_and_one_mixed_file_needs_allow_mixed(tmp_path, capsys):
    local, rpi = synthetic_doc(device="local"), synthetic_doc(device="rpi", k=0.5, seed=2, bytes_weight=2.0)
    rpi["peak"][1].update(median_ms=1000 / 60.0, gmacs=60.0)  # its int8 kernels promise 1.2x, local's 3.8x
    # given as the folder a fleet sweep writes (OUT/DEVICE/bench.json); the third device below comes as its own file
    a, b = write_doc(tmp_path / "fleet" / "local", local), write_doc(tmp_path / "fleet" / "rpi", rpi)
    assert cli_main(["report", str(tmp_path / "fleet"), "-o", str(tmp_path / "r")]) == 0
    md = (tmp_path / "r" / "report.md").read_text()
    assert "Across devices" in md and "| comparison | MACs ratio | local | rpi |" in md
    devices = read_csv(tmp_path / "r" / "devices.csv")
    assert devices and all(row["local"] and row["rpi"] for row in devices)
    assert all(float(row["local"]) != float(row["rpi"]) for row in devices if "MACs" not in row["comparison"])
    assert {r["precision"] for r in devices} == {"fp32", "int8"}  # the paper's pairs in both, plus int8 vs fp32
    # the FLOP count promises both devices the same; int8 vs fp32 is promised by each device's own peak kernels
    promised = {r["comparison"]: (r["theoretical_local"], r["theoretical_rpi"]) for r in devices}
    local_flops, rpi_flops = promised["ShuffleNet 1x g=3 vs MobileNet v1 1.0, fp32"]
    assert local_flops == rpi_flops
    assert [round(float(v), 6) for v in promised["int8 vs fp32, ShuffleNet 1x g=3"]] == [3.8, 1.2]
    cells = {c[0]: c for c in md_table(md, "Across devices: the paper's speedups, one column per device")}
    int8_row = cells["int8 vs fp32, ShuffleNet 1x g=3"]
    assert int8_row[1] == "per device" and int8_row[2].endswith("(of 3.80x)") and int8_row[3].endswith("(of 1.20x)")
    assert cells["ShuffleNet 1x g=3 vs MobileNet v1 1.0, fp32"][1].endswith("x")

    # every device's numbers come from its own document, though both swept the same model keys
    docs = {"local": local, "rpi": rpi}
    for row in read_csv(tmp_path / "r" / "models.csv"):
        doc = docs[row["device"]]
        assert float(row["latency_ms"]) == lat_of(doc, row["model"], row["precision"])
        ops = doc["models"][row["model"]]["precisions"][row["precision"]]["ops"]
        share = sum(o["time_ms"] for o in ops if o["group"] == "shuffle") / sum(o["time_ms"] for o in ops)
        assert float(row["share_shuffle"]) == pytest.approx(share, rel=1e-9)
    shares = md_table(md, "Across devices: where the time goes (share of the summed per-op time)")
    shuffle = [c for c in shares if c[2] == "shuffle data movement"]
    assert len(shuffle) == 2 * len(SYNTH_MODELS) and all(float(c[4][:-1]) > float(c[3][:-1]) for c in shuffle)
    preds = read_csv(tmp_path / "r" / "predictions.csv")
    assert {p["device"] for p in preds} == {"local", "rpi"}
    assert all(float(p["measured_ms"]) == lat_of(docs[p["device"]], p["key"], p["precision"]) for p in preds)
    predictor = {c[0]: c for c in md_table(md, "Across devices: the latency predictor, fitted and evaluated per device")}
    assert set(predictor) == {"local", "rpi"} and all(int(c[1]) == len(local["results"]) for c in predictor.values())
    for device in ("local", "rpi"):  # each device's own tables and plots
        assert md_table(md, f"Latency, MACs and efficiency — {device}")
        assert (tmp_path / "r" / f"op_shares-{device}.png").stat().st_size > 1000
    assert (tmp_path / "r" / "macs_vs_latency_devices.png").exists()

    # a third device whose sweep stopped after its peak, before any model: named, no empty column, no crash
    stopped = synthetic_doc(device="pi3")
    stopped["results"], stopped["models"], stopped["partial"] = [], {}, True
    c = write_doc(tmp_path / "c", stopped)
    assert cli_main(["report", str(a), str(b), str(c), "-o", str(tmp_path / "r3")]) == 0
    md3 = (tmp_path / "r3" / "report.md").read_text()
    assert "| comparison | MACs ratio | local | rpi |" in md3 and "pi3: no results yet" in md3

    one = synthetic_doc(device="local")
    one["results"] += synthetic_doc(device="rpi", seed=2)["results"]
    mixed = write_doc(tmp_path / "mixed", one)
    capsys.readouterr()
    assert cli_main(["report", str(mixed), "-o", str(tmp_path / "m")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "several devices" in err[0] and "--allow-mixed" in err[0]
    assert cli_main(["report", str(mixed), "-o", str(tmp_path / "m"), "--allow-mixed"]) == 0


def test_other_schema_version_is_refused(tmp_path, capsys):
    doc = synthetic_doc()
    doc["schema"] = "sdeploy-bench/0"
    src = write_doc(tmp_path / "old", doc)
    assert cli_main(["report", str(src), "-o", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "sdeploy-bench/0" in err[0]


def test_resuming_a_sweep_with_the_other_graph_is_refused(tmp_path):
    from shufflenet_deploy.analysis.sweep import GRAPH_LOWERED, GRAPH_PLAIN, load_doc

    doc = synthetic_doc()
    doc["sweep"]["graph"] = GRAPH_PLAIN
    write_doc(tmp_path, doc)
    assert load_doc(tmp_path, "local", GRAPH_PLAIN).results
    with pytest.raises(UserError, match="onnx2tf plain output graph") as err:
        load_doc(tmp_path, "local", GRAPH_LOWERED)
    assert "--no-optimize" in err.value.hint


def test_predictor_leave_one_out_on_synthetic_law():
    """Op times proportional to a linear cost -> the per-op regressions recover every model closely."""
    doc = synthetic_doc(k=0.7, seed=4)
    pred = predict.fit(ResultsDocument.from_dict(doc))
    assert pred.schema == predict.SCHEMA and len(pred.evaluation) == len(doc["results"])
    for e in pred.evaluation:
        assert e.lookup_ops == 0  # signatures are model-private: leave-one-out can only use the regressions
    scale = predict.fit_scale([(1.0, 2.0), (2.0, 8.0)])  # ratios 2 and 4 -> geometric mean sqrt(8)
    assert (scale.a, scale.n, scale.min, scale.max) == pytest.approx((8 ** 0.5, 2, 2.0, 4.0))



def _first(table: dict) -> str:
    return next(iter(table))


# (damage to a fitted predictor's JSON, the words its one-line error must hold besides the file's name)
PREDICTOR_DAMAGE = {
    "NaN coefficient": (lambda d: d["regression"][_first(d["regression"])]["coef"].__setitem__(1, float("nan")),
                        ["NaN"]),
    "negative coefficient": (lambda d: d["regression"][_first(d["regression"])]["coef"].__setitem__(1, -1.0),
                             ["coef", "-1.0", "non-negative"]),
    "negative lookup time": (lambda d: d["lookup"].__setitem__(_first(d["lookup"]), -0.5),
                             ["lookup", "-0.5", "expected"]),
    "zero scale": (lambda d: d["correction"]["fp32"].__setitem__("a", 0), ["correction", "a is 0", "positive"]),
    "scale is text": (lambda d: d["correction"]["fp32"].__setitem__("a", "1.1"), ["a is '1.1'", "positive"]),
    "threads is text": (lambda d: d.__setitem__("threads", "one"), ["threads is 'one'", "whole number"]),
    "regression missing": (lambda d: d.pop("regression"), ["regression is missing"]),
    "evaluation not a list": (lambda d: d.__setitem__("evaluation", {}), ["evaluation is {}", "a list"]),
    "trained_on time missing": (lambda d: d["trained_on"][0].pop("measured_ms"),
                                ["trained_on[0]", "measured_ms is missing"]),
    "other schema": (lambda d: d.__setitem__("schema", "sdeploy-predictor/9"), ["sdeploy-predictor/9"]),
    "not JSON": (None, ["not valid JSON"]),
}


@pytest.mark.parametrize("damage", sorted(PREDICTOR_DAMAGE))
def test_a_damaged_predictor_file_is_one_line_naming_the_file_and_field(tmp_path, damage):
    path = tmp_path / "predictor-local.json"
    predict.save_predictor(predict.fit(ResultsDocument.from_dict(synthetic_doc())), path)
    assert predict.load_predictor(path) == predict.load_predictor(path)  # the intact file reads
    spoil, words = PREDICTOR_DAMAGE[damage]
    if spoil is None:
        path.write_bytes(b'{"schema": "sdeploy-predictor/3", "lookup": {')
    else:
        data = json.loads(path.read_text())
        spoil(data)
        path.write_text(json.dumps(data))
    with pytest.raises(UserError) as err:
        predict.load_predictor(path)
    line = err.value.one_line()
    assert "\n" not in line and str(path) in line and all(w in line for w in words), line


def test_a_fitted_predictor_round_trips_and_the_committed_one_still_reads(tmp_path):
    pred = predict.fit(ResultsDocument.from_dict(synthetic_doc()))
    predict.save_predictor(pred, tmp_path / "p.json")
    assert predict.load_predictor(tmp_path / "p.json") == pred
    committed = predict.load_predictor(REPO / "benchmarks/results/gap_report/sweep/predictor-local.json")
    assert committed.machine is not None and committed.lowered and committed.model.correction["fp32"].n == 13
    # a NaN that never went through a file (a predictor built in memory) is refused by the same reader
    data = pred.to_dict()
    data["correction"]["fp32"]["a"] = float("nan")
    with pytest.raises(UserError, match=r"correction\['fp32'\]: a is nan, expected a positive"):
        predict.Predictor.from_dict(data, "in memory")

# ------------------------------------------------------------------------------------- runner --many, cutter
def test_runner_many_times_every_model_in_one_process(tmp_path, tiny_tflite):
    shutil.copy(RUNNER, tmp_path / "runner.py")
    items = [{"id": p, "path": str(tiny_tflite(p))} for p in ("fp32", "int8")]
    items.append({"id": "junk", "path": str(tmp_path / "junk.tflite")})
    (tmp_path / "junk.tflite").write_bytes(b"nope")
    (tmp_path / "many.json").write_text(json.dumps(items))
    proc = subprocess.run([sys.executable, "-I", "runner.py", "--many", "many.json", "--runs", "4", "--rounds", "2",
                           "--warmup", "1"], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    rep = json.loads(proc.stdout)
    assert proc.returncode == 0 and rep["mode"] == "many" and rep["rounds"] == 2
    by_id = {e["id"]: e for e in rep["results"]}
    for p in ("fp32", "int8"):
        assert len(by_id[p]["times_ms"]) == 8 and by_id[p]["median_ms"] > 0 and by_id[p]["error"] is None
    assert by_id["junk"]["error"] and by_id["junk"]["times_ms"] == []
    # --instances: K interpreters per model, used in turn over the rounds; all their runs pooled
    proc = subprocess.run([sys.executable, "-I", "runner.py", "--many", "many.json", "--runs", "3", "--rounds", "4",
                           "--warmup", "1", "--instances", "2"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=120)
    rep = json.loads(proc.stdout)
    by_id = {e["id"]: e for e in rep["results"]}
    assert proc.returncode == 0 and rep["instances"] == 2
    for p in ("fp32", "int8"):
        assert len(by_id[p]["times_ms"]) == 12 and len(by_id[p]["instance_medians_ms"]) == 2
        assert min(by_id[p]["instance_medians_ms"]) <= by_id[p]["median_ms"] <= max(by_id[p]["instance_medians_ms"])
    both = subprocess.run([sys.executable, "-I", "runner.py", "x.tflite", "--many", "many.json"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=60)
    assert both.returncode == 2


def _check_cut_ops(path: Path) -> int:
    """Every cut op, fed the full model's intermediate inputs, reproduces the full model's intermediate output."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    from shufflenet_deploy.tflite import opcut, ops

    plain = OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    full = Interpreter(model_path=str(path), experimental_op_resolver_type=plain,
                       experimental_preserve_all_tensors=True)
    full.allocate_tensors()
    d = full.get_input_details()[0]
    rng = np.random.default_rng(0)
    x = (rng.integers(-100, 100, d["shape"]) if d["dtype"] == np.int8 else rng.random(d["shape"])).astype(d["dtype"])
    full.set_tensor(d["index"], x)
    full.invoke()
    model = ops.read_model(path)
    graph = model.subgraphs[0]
    checked = 0
    for info in ops.model_ops(model):
        op = graph.operators[info.index]
        single = Interpreter(model_content=opcut.single_op_model(model, info.index), experimental_op_resolver_type=plain)
        single.allocate_tensors()
        feeds = [t for t in op.inputs if t >= 0 and not ops.is_const(model, graph.tensors[t])]
        details = single.get_input_details()
        assert len(details) == len(feeds)
        for det, t in zip(details, feeds):
            single.set_tensor(det["index"], full.get_tensor(t))
        single.invoke()
        got = single.get_tensor(single.get_output_details()[0]["index"])
        np.testing.assert_array_equal(got, full.get_tensor(op.outputs[0]), err_msg=f"op {info.index} {info.op}")
        checked += 1
    return checked


@pytest.mark.parametrize("precision", ["fp32", "int8"])
def test_single_op_cutter_reproduces_intermediates_tiny(tiny_tflite, precision):
    assert _check_cut_ops(tiny_tflite(precision)) >= 3


@pytest.mark.parametrize("precision", ["fp32", "int8"])
def test_zero_pad_feeding_only_a_conv_is_counted_as_folded(tmp_path, precision):
    """XNNPACK folds such a PAD into the conv (benchmarks/results/pad_fusion.txt): the sweep times it 0, the
    predictor predicts 0; a PAD before a max-pool, or with two consumers, keeps its time."""
    from tflite_models import make_pad_tflite

    from shufflenet_deploy.bench import op_times
    from shufflenet_deploy.tflite import ops

    infos = ops.model_ops(make_pad_tflite(tmp_path / "pad.tflite", precision))
    pads = [(o.index, o.fused_into) for o in infos if o.op == "PAD"]
    conv_after_first = next(o.index for o in infos if o.op == "CONV_2D")
    assert pads == [(0, conv_after_first), (2, None), (4, None)]
    as_dicts = [o.to_dict() for o in infos]
    assert [op_times.in_graph_ms(o, 0.5, 0.1) for o in as_dicts if o["op"] == "PAD"] == [0.0, 0.4, 0.4]
    model = predict.OpModel({}, {f"{precision}|*|*": predict.Regression((0.25, 0, 0, 0), 9)})
    assert predict.op_sum(model, precision, as_dicts) == (0.25 * (len(infos) - 1), predict.PathCounts(
        lookup=0, regression=len(infos) - 1, fused=1, none=0))


# ------------------------------------------------------------------------------------------------ real sweeps
TINY = ["shufflenet_v1_g3_0.25x", "shufflenet_v1_g8_0.25x"]
QUICK = sweep_preset("quick")  # mechanics, not speed: the quick preset still fills every output


@pytest.mark.slow
def test_tiny_sweep_resume_predictor_report_and_cutter(tmp_path, capsys):
    """A real 32 px sweep on `local`: interrupted after one model, resumed, then predictor, report and cutter."""
    from shufflenet_deploy.analysis.sweep import run_sweep

    out = tmp_path / "sweep"
    messages: list[str] = []

    class Stop(Exception):
        pass

    def stop_after_first(key, precision):
        if precision == "int8":
            raise Stop

    with pytest.raises(Stop):
        run_sweep("local", models=TINY + ["no_such_model"], input_sizes=(32,), outdir=out, settings=QUICK,
                  num_classes=10, progress=messages.append, on_model_done=stop_after_first)
    first = json.loads((out / "bench.json").read_text())
    assert {(r["model"], r["precision"]) for r in first["results"]} == {(f"{TINY[0]}@32", "fp32"),
                                                                          (f"{TINY[0]}@32", "int8")}
    assert first["peak"] and first["partial"] is True
    created = {r["precision"]: r["created"] for r in first["results"]}

    messages.clear()
    doc = run_sweep("local", models=TINY + ["no_such_model"], input_sizes=(32,), outdir=out, settings=QUICK,
                    num_classes=10, progress=messages.append)
    predict.store(predict.fit(doc), out)  # what `sdeploy sweep` does with the finished document
    assert not (out / ".sdeploy.lock").exists()  # the folder was held during the sweep, and the lock is gone
    doc = json.loads((out / "bench.json").read_text())
    assert f"{TINY[0]}@32: done already, skipping" in messages
    assert not any(m.startswith("measuring peak") for m in messages)  # the peak is kept too
    assert {r["created"] for r in doc["results"] if r["model"] == f"{TINY[0]}@32"} == set(created.values())
    assert len(doc["results"]) == 4 and doc["partial"] is False
    # measured with the quick preset, and the document says so (every count, the interleaved pass's too)
    assert doc["sweep"]["preset"] == "quick" and doc["sweep"]["measure"] == QUICK.to_dict()
    assert "presets_used" not in doc["sweep"] and doc["sweep"]["runs"] == QUICK.runs
    assert (doc["interleaved"]["rounds"], doc["interleaved"]["runs_per_round"], doc["interleaved"]["instances"]) == (
        QUICK.interleaved_rounds, QUICK.interleaved_runs, QUICK.interleaved_instances)
    assert {r["runs"] for r in doc["results"]} == {QUICK.runs}
    assert [s["model"] for s in doc["skipped"]] == ["no_such_model"]
    for key in (f"{m}@32" for m in TINY):
        for p in ("fp32", "int8"):
            ops = doc["models"][key]["precisions"][p]["ops"]
            assert ops and all(o["time_ms"] is not None for o in ops)
            assert {"grouped_conv", "depthwise_conv", "shuffle"} <= {o["group"] for o in ops}

    pred = predict.load_predictor(out / "predictor-local.json")
    assert len(pred.evaluation) == 4 and pred.model.lookup
    # a swept model's ops all come from the lookup: each signature's median over the models it appeared in
    times: dict[str, dict[str, float]] = {}
    for k, entry in doc["models"].items():
        for o in entry["precisions"]["fp32"]["ops"]:
            times.setdefault(o["signature"], {})[k] = o["time_ms"]
    key = f"{TINY[1]}@32"
    ops = doc["models"][key]["precisions"]["fp32"]["ops"]
    res = predict.predict_ops(pred, "fp32", ops)
    assert res.paths.regression == 0
    assert res.op_sum_ms == pytest.approx(sum(float(np.median(list(times[o["signature"]].values()))) for o in ops))
    assert any(len(v) == 2 for v in times.values())  # the stem is shared by g=3 and g=8

    rep = tmp_path / "report"
    assert cli_main(["report", str(out), "-o", str(rep)]) == 0
    rows = read_csv(rep / "models.csv")
    assert set(doc["interleaved"]["latency_ms"]) == {f"{r['model']}|{r['precision']}" for r in doc["results"]}
    lat = {(r["model"], r["precision"]): lat_of(doc, r["model"], r["precision"]) for r in doc["results"]}
    assert {(r["model"], r["precision"]) for r in rows} == set(lat)
    for row in rows:
        assert float(row["latency_ms"]) == lat[row["model"], row["precision"]]
        assert row["latency_source"] == "interleaved"

    # the cutter on a real ShuffleNet export (5-D TRANSPOSE/RESHAPE shuffles, grouped convs), fp32 and int8
    from shufflenet_deploy.analysis.export_cache import export_cached

    folder = export_cached(TINY[0], 32, ("fp32", "int8"), options={"num_classes": 10})
    for p in ("fp32", "int8"):
        assert _check_cut_ops(folder / f"model_{p}.tflite") > 50


@pytest.mark.slow
def test_predict_cli_uses_the_stored_predictor(tmp_path, capsys, monkeypatch):
    """Fitted on this machine under another device name (same facts: fine), predicted on `local`; the output says
    which machine the predictor was fitted on. Forced onto another board's predictor, the number says it is a guess."""
    from importlib import metadata

    from shufflenet_deploy.bench.backends import backend_for
    from shufflenet_deploy.devices.registry import get_device

    with backend_for(get_device("local")) as backend:
        facts, runtime = backend.device_facts().to_dict(), backend.runtime_info().to_dict()
    src = tmp_path / "pred.json"
    doc = ResultsDocument.from_dict(synthetic_doc(device="my-laptop"))
    for r in doc.results:
        r.device_facts, r.runtime, r.affinity = facts, runtime, sorted(os.sched_getaffinity(0))
    predict.save_predictor(predict.fit(doc), src)
    monkeypatch.setenv("SDEPLOY_CACHE", str(REPO / ".cache" / "sdeploy"))
    argv = ["predict", "shufflenet_v1_g3_0.25x", "--device", "local", "--input-size", "32", "--precision", "fp32",
            "--predictor", str(src)]
    assert cli_main([*argv, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["predicted_ms"] > 0 and out["paths"]["regression"] > 0 and out["machine_differences"] == []
    assert out["fitted_on"]["runtime"] == f"ai_edge_litert {metadata.version('ai-edge-litert')}"
    assert cli_main(argv) == 0
    text = capsys.readouterr().out
    assert "fitted on: " in text and "(device 'my-laptop')" in text and "a guess" not in text

    pi = json.loads(src.read_text())
    pi["machine"]["isa"] = [k for k in pi["machine"]["isa"] if k != "avx2"] + (["dotprod"] if "dotprod" not in
                                                                                pi["machine"]["isa"] else [])
    src.write_text(json.dumps(pi))
    assert cli_main(argv) == 2
    assert "ISA" in capsys.readouterr().err
    assert cli_main([*argv, "--force-predictor"]) == 0
    assert "a guess (--force-predictor): ISA" in capsys.readouterr().out


@pytest.mark.slow
def test_sweep_takes_a_users_export_folder_and_checkpoint(tmp_path):
    """A user's own variants are swept like zoo names: an export folder as it is, a checkpoint exported at a size."""
    from shufflenet_deploy.analysis.export_cache import export_cached
    from shufflenet_deploy.analysis.sweep import run_sweep
    from shufflenet_deploy.checkpoints import load_model, save_checkpoint

    folder = export_cached(TINY[0], 32, ("fp32", "int8"), options={"num_classes": 10})
    model = load_model(TINY[1], num_classes=10)
    ckpt = save_checkpoint(tmp_path / "my_g8.pt", model, model.sdeploy_meta.with_input_size(32))
    doc = run_sweep("local", models=[str(folder), str(ckpt)], precisions=("fp32",), input_sizes=(32,),
                    outdir=tmp_path / "sweep", settings=QUICK)
    keys = {r.key for r in doc.results}
    assert keys == {f"{TINY[0]}@32", "my_g8@32"} and not doc.skipped
    assert doc.models["my_g8@32"]["model"] == TINY[1] and doc.models["my_g8@32"]["source"] == str(ckpt)
    assert doc.models[f"{TINY[0]}@32"]["export"] == str(folder)
    assert all(doc.models[k]["precisions"]["fp32"]["ops"] for k in keys)
    assert cli_main(["report", str(tmp_path / "sweep"), "-o", str(tmp_path / "r")]) == 0
    rows = {r["model"]: r for r in read_csv(tmp_path / "r" / "models.csv")}
    assert set(rows) == keys and int(rows["my_g8@32"]["macs"]) == doc.models["my_g8@32"]["macs_total"]


def test_two_sweeps_into_one_folder_the_second_fails_at_once(tmp_path):
    """Both used to say "wrote" and one's results were lost: the folder is held for the whole sweep. A sweep that
    fails on its input leaves no folder behind."""
    from shufflenet_deploy.analysis.sweep import run_sweep
    from shufflenet_deploy.fileio import exclusive

    out = tmp_path / "sweep"
    with exclusive(out, "sweep"):  # another sweep is running
        with pytest.raises(UserError, match="another sdeploy sweep is writing") as err:
            run_sweep("local", models=["shufflenet_v1_g3_0.25x"], input_sizes=(32,), outdir=out)
        assert "another -o" in err.value.hint
    with pytest.raises(UserError, match="unknown device"):
        run_sweep("no-such-device", models=["shufflenet_v1_g3_0.25x"], input_sizes=(32,), outdir=tmp_path / "new")
    assert not (tmp_path / "new").exists()
    with exclusive(out, "sweep"):
        pass
    assert not out.exists()  # the lock leaves nothing behind in a folder it made


def test_hostile_names_land_escaped_in_html_csv_markdown_and_file_names(tmp_path):
    """Device and model names from someone else's bench.json: no markup in report.html, no formula in a CSV cell,
    no forged row in report.md, no path outside -o for a plot."""
    evil_device = "pi'><img src=x onerror=alert(1)>|\n| forged | row"
    a = synthetic_doc(device="local")
    b = synthetic_doc(device=evil_device, seed=2)
    for r in b["results"]:
        r["model"] = "=HYPERLINK(\"http://x\")"
    out = tmp_path / "r"
    assert cli_main(["report", str(write_doc(tmp_path / "a", a)), str(write_doc(tmp_path / "b", b)),
                     "-o", str(out)]) == 0
    html_text = (out / "report.html").read_text()
    assert "<img src=x" not in html_text and "&lt;img src=x onerror=alert(1)&gt;" in html_text
    assert all(alt.startswith(("macs_vs", "efficiency", "op_shares", "flops_vs", "prediction"))
               for alt in re.findall(r"<img alt='([^']*)'", html_text))
    md = (out / "report.md").read_text()
    assert not any(line.startswith("| forged") for line in md.splitlines())
    for csv_file in out.glob("*.csv"):
        for row in read_csv(csv_file):
            assert not any(str(v).startswith(("=", "+", "@")) for v in row.values()), (csv_file.name, row)
    assert all(p.parent == out for p in out.rglob("*")), sorted(map(str, out.rglob("*")))


def test_a_report_never_replaces_a_folder_in_its_way_and_writes_all_or_nothing(tmp_path, capsys):
    out = tmp_path / "r"
    (out / "report.md").mkdir(parents=True)
    (out / "report.md" / "notes.txt").write_text("mine")
    assert cli_main(["report", str(write_doc(tmp_path / "s", synthetic_doc())), "-o", str(out)]) == 2
    assert "is a folder where a report file goes" in capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == ["report.md"] and (out / "report.md" / "notes.txt").exists()
    assert not list(tmp_path.glob(".r.*"))  # no stage left behind
