"""`make demo`'s job end to end: export the bundled trained model to int8 TFLite and benchmark it on local."""
from __future__ import annotations

import csv
import json

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
    md = (tmp_path / "report" / "report.md").read_text()
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
