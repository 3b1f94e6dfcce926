"""`make demo`'s job end to end: export the bundled trained model to int8 TFLite, benchmark it on local, and answer
the paper's question (ShuffleNet 0.5x vs 1x, g=3 vs g=8) with the pairs measured side by side."""
from __future__ import annotations

import csv
import json
import re

import pytest

from shufflenet_deploy.cli import main as cli_main


@pytest.mark.slow
def test_demo_exports_and_benchmarks_the_bundled_model(tmp_path, capsys, bundled_checkpoint):
    code = cli_main(["demo", "-o", str(tmp_path), "--checkpoint", str(bundled_checkpoint("g3")), "--runs", "20"])
    out = capsys.readouterr().out
    assert code == 0
    manifest = json.loads((tmp_path / "export" / "manifest.json").read_text())
    assert set(manifest["artifacts"]) == {"onnx", "fp32", "int8"}
    assert manifest["images"]["source"] == "bundled"  # calibrated on the bundled calibration split
    bench = json.loads((tmp_path / "bench-local" / "bench.json").read_text())
    results = {r["precision"]: r for r in bench["results"]}
    assert set(results) == {"fp32", "int8"}
    for r in results.values():
        assert r["device"] == "local" and r["model"] == "shufflenet_v1_g3_0.5x" and r["threads"] == 1
        assert len(r["times_ms"]) == r["runs"] == 20
        assert 0 < r["latency_ms"]["p50"] <= r["latency_ms"]["p90"] <= r["latency_ms"]["p99"]
        assert r["artifact"]["sha256"] == manifest["artifacts"][r["precision"]]["sha256"]
    assert "p50" in out and "shufflenet_v1_g3_0.5x" in out
    # the gap, in the demo's own output: MACs, GMAC/s, % of this machine's measured peak, int8 vs fp32 and why
    for r in results.values():
        assert r["macs"] == manifest["macs"]["total"]
        assert r["gmacs_per_s"] == pytest.approx(r["macs"] / (r["latency_ms"]["p50"] * 1e-3) / 1e9, rel=1e-12)
        assert r["peak_fraction"] == pytest.approx(r["gmacs_per_s"] / r["peak_gmacs"]) and r["peak_gmacs"] > 0
        assert r["device_facts"]["isa"] and r["device_facts"]["clusters"] and r["op_times"]["ops"]
    assert "GMAC/s" in out and "% of the measured fp32 peak" in out and "% of the measured int8 peak" in out
    assert "int8 ran" in out and ("dot product" in out or "dot-product" in out)
    # the paper's question, one line per pair, with the ratios of the pairs' side-by-side latencies
    pairs = json.loads((tmp_path / "pairs" / "bench.json").read_text())
    lat = {k.split("|")[0]: v for k, v in pairs["interleaved"]["latency_ms"].items()}
    macs = {r["model_key"]: r["macs"] for r in pairs["results"]}
    assert set(lat) == {"shufflenet_v1_g3_0.5x", "shufflenet_v1_g3_1.0x", "shufflenet_v1_g8_1.0x"}
    width = re.search(r"ShuffleNet 0\.5x vs 1x \(g=3\), fp32: (\d+\.\d)x fewer MACs -> (\d+\.\d)x faster here "
                      r"\(the paper: 3\.7x -> 2\.5x on a Snapdragon 820", out)
    assert width, out[-3000:]
    assert float(width[1]) == round(macs["shufflenet_v1_g3_1.0x"] / macs["shufflenet_v1_g3_0.5x"], 1) == 3.7
    assert float(width[2]) == round(lat["shufflenet_v1_g3_1.0x"] / lat["shufflenet_v1_g3_0.5x"], 1)
    groups = re.search(r"ShuffleNet 1x: g=3 vs g=8, fp32: equal MACs \(ratio 1\.01\) -> v1 g8 1\.0x "
                       r"(takes (\d+\.\d\d)x the time of|is (\d+\.\d\d)x faster than) v1 g3 1\.0x here", out)
    ratio = lat["shufflenet_v1_g8_1.0x"] / lat["shufflenet_v1_g3_1.0x"]
    assert groups and float(groups[2] or groups[3]) == round(ratio if ratio >= 1 else 1 / ratio, 2), out[-3000:]
    assert re.search(r"v1 g3 1\.0x fp32, where the time goes: grouped conv \d+% of MACs, \d+% of time", out)
    assert "The paper's question on this machine (" in out and "ISA: " in out
    assert pairs["sweep"]["peak_source"] == "cache"  # the peak `sdeploy bench` measured a moment before, not a new one

    md = (tmp_path / "report" / "report.md").read_text()
    assert "| ShuffleNet 0.5x vs 1x (g=3) | 3.66x |" in md   # the report has the pairs beside the bundled model
    assert "Where the FLOPs go vs where the time goes: shufflenet_v1_g3_0.5x@64 fp32" in md
    assert "Where the FLOPs go vs where the time goes: shufflenet_v1_g3_0.5x@64 int8" in md

    # the bench result of this 64-px, 10-class export reaches the report with the manifest's MACs (3.0 M, not the
    # 37.6 M of the zoo model at 224 px / 1000 classes), and GMAC/s = those MACs / the median
    assert manifest["input_size"] == 64 and manifest["num_classes"] == 10
    report = tmp_path / "report"
    assert cli_main(["report", str(tmp_path / "bench-local"), "-o", str(report)]) == 0
    rows = {row["precision"]: row for row in csv.DictReader(open(report / "models.csv"))}
    assert set(rows) == {"fp32", "int8"}
    for precision, row in rows.items():
        assert int(row["macs"]) == manifest["macs"]["total"] < 4e6
        assert row["model"] == "shufflenet_v1_g3_0.5x@64" and row["input_size"] == "64"
        p50 = results[precision]["latency_ms"]["p50"]
        assert float(row["gmacs"]) == pytest.approx(manifest["macs"]["total"] / (p50 * 1e-3) / 1e9, rel=1e-12)


def test_demo_without_the_bundled_model_says_how_to_get_it(tmp_path, capsys):
    code = cli_main(["demo", "-o", str(tmp_path / "d"), "--checkpoint", str(tmp_path / "missing.pt")])
    err = capsys.readouterr().err
    assert code == 2 and "make models" in err and not (tmp_path / "d").exists()


def test_demo_never_deletes_what_it_did_not_write(tmp_path, capsys, bundled_checkpoint):
    """A demo rerun replaces its own pairs sweep; a pairs folder holding someone's files stops it before any work."""
    notes = tmp_path / "pairs" / "notes.txt"
    notes.parent.mkdir()
    notes.write_text("mine")
    code = cli_main(["demo", "-o", str(tmp_path), "--checkpoint", str(bundled_checkpoint("g3"))])
    err = capsys.readouterr().err
    assert code == 2 and "holds files the demo did not write (notes.txt)" in err and "Traceback" not in err
    assert notes.read_text() == "mine" and not (tmp_path / "export").exists()
