"""`sdeploy export` wherever a user steps: every zoo family at every input size that makes a stage 1, 2, 3, 4 or
8 px wide, plus non-square sizes — real onnx2tf conversions, fp32 parity through LiteRT; int8 on a subset.

Why these sizes: onnx2tf 1.29 built a grouped conv wrongly whenever a stage was exactly g pixels wide (export/
lower.py `lower_onnx`), and the tests of the day used 32/64/80/160/224 px, which happened to miss g=3 and g=4.
Stage widths are W/8, W/16, W/32: 32 px -> 4/2/1, 64 -> 8/4/2, 96 -> 12/6/3, 128 -> 16/8/4, 256 -> 32/16/8.
Smallest widths (0.25x; v2 0.5x is its smallest), so a conversion costs little more than onnx2tf's start-up, which
one worker shared by the module (export/tflite_convert.py shared_worker) pays once, not per conversion.
"""
from __future__ import annotations

import pytest

from shufflenet_deploy.errors import UserError
from shufflenet_deploy.export.pipeline import ExportRequest, export
from shufflenet_deploy.export.tflite_convert import shared_worker
from shufflenet_deploy.sizes import as_hw, size_str
from shufflenet_deploy.tflite.graph import Graph

FAMILIES = ["shufflenet_v1_g1_0.25x", "shufflenet_v1_g2_0.25x", "shufflenet_v1_g3_0.25x", "shufflenet_v1_g4_0.25x",
            "shufflenet_v1_g8_0.25x", "shufflenet_v1_g3_0.25x_noshuffle", "shufflenet_v1_g3_0.25x_se",
            "shufflenet_v2_0.5x", "mobilenet_v1_0.25x"]
SIZES = [32, 64, 96, 128, 256, (96, 128), (128, 96)]
INT8 = [("shufflenet_v1_g3_0.25x", 96), ("shufflenet_v1_g8_0.25x", 64), ("shufflenet_v1_g4_0.25x", 128),
        ("shufflenet_v1_g2_0.25x", (64, 96)), ("shufflenet_v2_0.5x", 96), ("mobilenet_v1_0.25x", 128)]


@pytest.fixture(scope="module", autouse=True)
def one_conversion_worker():
    """~70 conversions: TensorFlow and onnx2tf are imported once for the module, not once per conversion."""
    with shared_worker():
        yield


def _check(manifest, out, size, precisions):
    h, w = as_hw(size)
    arts = manifest["artifacts"]
    assert arts["onnx"]["parity"]["passed"] and arts["onnx"]["parity"]["max_rel"] <= 1e-4
    for p in precisions:
        art = arts[p]
        assert art["parity"]["passed"], (p, art["parity"])
        assert art["inputs"][0]["shape"] == [1, h, w, 3]
        ops = Graph.load(out / art["file"]).histogram()
        # nothing XNNPACK cannot run is left over from the lowering's own rewrites
        assert "GATHER" not in ops and "ADD_N" not in ops and "DEQUANTIZE" not in ops, ops
    assert manifest["input_size"] == (size if isinstance(size, int) else [h, w])


@pytest.mark.slow
@pytest.mark.parametrize("size", SIZES, ids=size_str)
@pytest.mark.parametrize("model", FAMILIES)
def test_fp32_export_at_every_stage_width(tmp_path, model, size):
    out = tmp_path / "out"
    manifest = export(ExportRequest(model=model, input_size=size, precisions=("fp32",), verify_count=4,
                                    outdir=out)).data
    _check(manifest, out, size, ["fp32"])
    if "_se" not in model:  # SE's sigmoid gates are fine in XNNPACK too, but its partitioning is not our concern
        assert manifest["artifacts"]["fp32"]["xnnpack"]["partitions"] == 1


@pytest.mark.slow
@pytest.mark.parametrize("model,size", INT8, ids=lambda v: size_str(v) if not isinstance(v, str) else v)
def test_int8_export_at_the_sizes_that_used_to_fail(tmp_path, model, size):
    from shufflenet_deploy.data.digits import ensure_digits

    out = tmp_path / "out"
    manifest = export(ExportRequest(model=model, input_size=size, precisions=("fp32", "int8"), verify_count=8,
                                    calib=ensure_digits(max(as_hw(size))) / "calib", calib_count=24, outdir=out,
                                    model_options={"num_classes": 10})).data
    _check(manifest, out, size, ["fp32", "int8"])
    int8 = manifest["artifacts"]["int8"]
    assert int8["inputs"][0]["dtype"] == "int8" and int8["outputs"][0]["dtype"] == "int8"  # full-integer
    assert int8["xnnpack"]["partitions"] == 1
    # the per-layer int8 table: one row per quantized activation of the shipped graph, every one matched to fp32
    from shufflenet_deploy.export.int8_layers import quantized_activations

    rows = manifest["int8_layers"]["rows"]
    assert len(rows) == len(quantized_activations(out / "model_int8.tflite")) and all(r["matched"] for r in rows)
    assert manifest["int8_repair"]["target"] is None  # random weights: no target, one plain attempt


@pytest.mark.parametrize("model,size", [("shufflenet_v1_g3_0.5x", 96), ("shufflenet_v1_g8_0.5x", 64),
                                        ("shufflenet_v1_g8_1.0x", 128), ("shufflenet_v1_g4_0.5x", 128),
                                        ("shufflenet_v1_g2_0.5x", 64), ("shufflenet_v1_g8_0.5x", 256),
                                        ("shufflenet_v1_g3_0.5x", (128, 96))])
def test_no_optimize_refuses_the_sizes_onnx2tf_breaks_on_up_front(tmp_path, model, size):
    out = tmp_path / "out"
    with pytest.raises(UserError) as err:
        export(ExportRequest(model=model, input_size=size, precisions=("fp32",), outdir=out, optimize=False))
    line = err.value.one_line()
    assert "--no-optimize" in line and "drop --no-optimize" in line and "\n" not in line
    assert not out.exists() and not list(tmp_path.iterdir())  # refused before anything was written


@pytest.mark.slow
def test_no_optimize_still_converts_where_onnx2tf_can(tmp_path):
    """The refusal is exact: W == g breaks onnx2tf, H == g does not (96x128: stage 4 is 3 high, 4 wide)."""
    out = tmp_path / "out"
    manifest = export(ExportRequest(model="shufflenet_v1_g3_0.25x", input_size=(96, 128), precisions=("fp32",),
                                    verify_count=4, outdir=out, optimize=False)).data
    assert manifest["artifacts"]["fp32"]["parity"]["passed"]
