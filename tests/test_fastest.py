"""bench/fastest.py: the fastest artifact per device, model and thread count, its margin and its reason, and the
`fastest` block of bench.json through the strict reader (issue 25). Rows are built by hand: what is tested is the
naming, not a measurement (tests/test_cli_bench.py measures real files)."""
from __future__ import annotations

import json

import pytest

from shufflenet_deploy.bench.fastest import line, name_fastest
from shufflenet_deploy.bench.results import BenchResult, ResultsDocument, read_document, write_document
from shufflenet_deploy.errors import UserError

NO_DOT = "no int8 dot-product instructions (asimddp / VNNI): XNNPACK's int8 GEMM runs its slower widening kernels"
ORT = {"name": "onnxruntime", "version": "1.23.0"}
RUNTIMES = {"onnx": ORT, "onnx_int8": ORT}
FILES = {"onnx": "model.onnx", "onnx_int8": "model_int8.onnx"}


def row(precision, p50, lo, hi, *, device="local", threads=1, key="shufflenet_v1_g3_1.0x@224"):
    file = FILES.get(precision, f"model_{precision}.tflite")
    return BenchResult(device=device, model=key.split("@")[0], precision=precision, threads=threads,
                       latency_ms={"p50": p50, "median_ci": [lo, hi]}, model_key=key, artifact={"file": file},
                       runtime=RUNTIMES.get(precision, {"name": "ai_edge_litert", "version": "2.1.0"}),
                       device_facts={"int8": NO_DOT})


def test_onnx_runtime_named_fastest_with_its_margin_and_reason():
    (f,) = name_fastest([row("fp32", 9.45, 9.40, 9.50), row("int8", 8.45, 8.40, 8.50), row("onnx", 7.59, 7.55, 7.62)])
    assert (f.precision, f.artifact, f.runtime) == ("onnx", "model.onnx", "onnxruntime 1.23.0")
    assert f.runner_up == "int8 (ai_edge_litert 2.1.0)" and f.margin == pytest.approx(8.45 / 7.59 - 1)
    assert not f.tied and "ONNX Runtime's own CPU kernels" in f.why
    assert "11.3% ahead of int8" in line(f) and "7.590 ms" in line(f)


def test_litert_over_onnx_runtime_names_the_kernel_libraries():
    (f,) = name_fastest([row("fp32", 5.9, 5.8, 6.0), row("onnx", 6.4, 6.3, 6.5)])
    assert f.precision == "fp32" and "XNNPACK" in f.why and "ONNX Runtime" in f.why


def test_onnx_runtimes_int8_file_is_a_candidate_and_its_arithmetic_is_int8():
    """export --onnx-int8: model_int8.onnx competes like any file; against model.onnx the int8-vs-fp32 fact
    decides, against a TFLite row the kernel libraries."""
    (f,) = name_fastest([row("onnx", 9.0, 8.9, 9.1), row("onnx_int8", 12.0, 11.9, 12.1)])
    assert f.precision == "onnx" and f.why == f"fp32 wins: {NO_DOT}."
    (f,) = name_fastest([row("int8", 8.0, 7.9, 8.1), row("onnx_int8", 12.0, 11.9, 12.1)])
    assert f.precision == "int8" and "model_int8.onnx" in f.why and "XNNPACK" in f.why
    (f,) = name_fastest([row("int8", 8.0, 7.9, 8.1), row("onnx_int8", 6.0, 5.9, 6.1)])
    assert (f.artifact, f.runtime) == ("model_int8.onnx", "onnxruntime 1.23.0") and "ONNX Runtime" in f.why


def test_fp32_over_int8_is_explained_by_the_cpus_isa():
    (f,) = name_fastest([row("fp32", 8.0, 7.9, 8.1), row("int8", 9.0, 8.9, 9.1)])
    assert f.precision == "fp32" and f.why == f"fp32 wins: {NO_DOT}."


def test_overlapping_medians_are_a_tie_not_a_winner():
    (f,) = name_fastest([row("fp32", 8.0, 7.7, 8.4), row("int8", 8.2, 7.9, 8.5)])
    assert f.tied and "within noise" in f.why and "within noise" in line(f)


def test_one_per_device_model_and_threads():
    found = name_fastest([row("fp32", 8.0, 7.9, 8.1), row("int8", 6.0, 5.9, 6.1, threads=4),
                          row("fp32", 5.0, 4.9, 5.1, threads=4), row("fp32", 20.0, 19, 21, device="rpi"),
                          row("int8", 0.0, 0, 0, device="rpi")])   # no median: not a candidate
    assert [(f.device, f.threads, f.precision) for f in found] == [("local", 1, "fp32"), ("local", 4, "fp32"),
                                                                    ("rpi", 1, "fp32")]
    assert found[0].why == "The only artifact measured here." and found[0].runner_up is None


def test_the_fastest_block_round_trips_and_a_damaged_one_is_refused(tmp_path):
    results = [row("fp32", 9.45, 9.40, 9.50), row("onnx", 7.59, 7.55, 7.62)]
    json_path, _ = write_document(ResultsDocument(results=results, fastest=name_fastest(results)), tmp_path / "b")
    assert read_document(json_path).fastest == name_fastest(results)
    data = json.loads(json_path.read_text())
    data["fastest"][0]["p50_ms"] = -1
    json_path.write_text(json.dumps(data))
    with pytest.raises(UserError) as err:
        read_document(json_path)
    assert "fastest[0]: p50_ms is -1, expected a positive, finite number" in err.value.one_line()
