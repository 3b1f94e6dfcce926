"""`sdeploy export`: real conversions of small models (onnx2tf, TensorFlow's converter, LiteRT)."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from helpers import cli_in_process as run_cli
from shufflenet_deploy.cli import main as cli_main
from shufflenet_deploy.errors import UserError
from shufflenet_deploy.export import tflite_convert, verify
from shufflenet_deploy.export.pipeline import ExportRequest, export

SMALL = "shufflenet_v1_g3_0.25x"


@pytest.fixture(scope="module")
def calib_dir():
    from shufflenet_deploy.data.digits import ensure_digits

    return ensure_digits(32) / "calib"


@pytest.fixture(scope="module")
def full_export(tmp_path_factory, calib_dir):
    """One export of a small ShuffleNet at 32 px with every precision, shared by the manifest tests."""
    out = tmp_path_factory.mktemp("export") / "out"
    manifest = export(ExportRequest(model=SMALL, input_size=32, precisions=("fp32", "fp16", "int8"),
                                    calib=calib_dir, calib_count=40, outdir=out)).data
    return out, manifest


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.slow
def test_export_writes_verified_artifacts_and_manifest(full_export, calib_dir):
    out, manifest = full_export
    assert json.loads((out / "manifest.json").read_text()) == json.loads(json.dumps(manifest))
    assert sorted(manifest["artifacts"]) == ["fp16", "fp32", "int8", "onnx"]
    for name, art in manifest["artifacts"].items():
        path = out / art["file"]
        assert path.stat().st_size == art["size_bytes"] and sha(path) == art["sha256"], name
        assert art["parity"]["passed"], (name, art["parity"])
    arts = manifest["artifacts"]
    assert arts["onnx"]["parity"]["reference"] == "pytorch" and arts["onnx"]["parity"]["max_rel"] <= 1e-4
    assert arts["fp32"]["parity"]["reference"] == "onnx" and arts["fp32"]["parity"]["max_rel"] <= 1e-4
    assert arts["int8"]["parity"]["reference"] == "fp32" and arts["int8"]["parity"]["cosine"] >= verify.THRESHOLDS["int8"]["cosine"]
    # int8 is full-integer with int8 I/O, and the quantization parameters are recorded for the runner
    q_in = arts["int8"]["inputs"][0]
    assert q_in["dtype"] == "int8" and q_in["shape"] == [1, 32, 32, 3] and q_in["quantization"]["scale"] > 0
    assert arts["int8"]["outputs"][0]["dtype"] == "int8"
    assert arts["fp32"]["inputs"][0]["dtype"] == "float32" and arts["fp32"]["inputs"][0]["shape"] == [1, 32, 32, 3]
    assert "CONV_2D" in arts["fp32"]["ops"] and arts["fp32"]["xnnpack"]["partitions"] >= 1
    assert manifest["images"]["source"] == "calib" and manifest["images"]["calibration"] == 40
    assert manifest["macs"]["total"] > manifest["macs"]["conv"] > 0 and manifest["params"] > 0
    assert manifest["preprocessing"]["input_size"] == 32
    assert manifest["tools"]["onnx2tf"] and manifest["tools"]["ai-edge-litert"]
    # only what was asked: no int16 or dynamic-range variants, no saved_model left behind
    assert sorted(p.name for p in out.iterdir()) == [
        "conversion.log", "manifest.json", "model.onnx", "model_fp16.tflite", "model_fp32.tflite", "model_int8.tflite"]
    # nothing left beside OUTDIR (temp folders renamed or removed)
    assert [p.name for p in out.parent.iterdir()] == ["out"]


@pytest.mark.slow
def test_int8_artifact_numbers_match_an_independent_litert_run(full_export, calib_dir):
    """Re-run the int8 file by hand with the manifest's quant params: the recorded parity must be reproducible."""
    from ai_edge_litert.interpreter import Interpreter
    from shufflenet_deploy.data.preprocess import Preprocessing

    out, manifest = full_export
    pre = Preprocessing.from_dict(manifest["preprocessing"])
    image = pre.load(sorted(calib_dir.rglob("*.png"))[0]).transpose(1, 2, 0)[None]
    q = manifest["artifacts"]["int8"]["inputs"][0]["quantization"]
    it = Interpreter(model_path=str(out / "model_int8.tflite"))
    it.allocate_tensors()
    it.set_tensor(it.get_input_details()[0]["index"],
                  np.clip(np.round(image / q["scale"]) + q["zero_point"], -128, 127).astype(np.int8))
    it.invoke()
    oq = manifest["artifacts"]["int8"]["outputs"][0]["quantization"]
    raw = it.get_tensor(it.get_output_details()[0]["index"]).astype(np.float32)
    int8_logits = (raw - oq["zero_point"]) * oq["scale"]
    fp32_logits = verify.run_tflite(out / "model_fp32.tflite", image.transpose(0, 3, 1, 2))
    recorded = manifest["artifacts"]["int8"]["parity"]["cosine"]
    assert verify.compare(fp32_logits, int8_logits, reference_name="fp32").cosine > min(0.9, recorded - 0.05)


@pytest.mark.slow
def test_conversion_is_offline_and_leaves_the_input_onnx_untouched(full_export, tmp_path, monkeypatch):
    """Without the sample file onnx2tf would download it: the guard must block and report that attempt."""
    out, _ = full_export
    onnx_copy = tmp_path / "user.onnx"
    onnx_copy.write_bytes((out / "model.onnx").read_bytes())
    before = sha(onnx_copy)
    monkeypatch.setattr(tflite_convert, "write_onnx2tf_sample", lambda workdir, images: None)
    with pytest.raises(UserError, match="tried to reach the network"):
        tflite_convert.convert(onnx_copy, tmp_path / "work", precisions=["fp32"], calibration_nhwc=None,
                               sample_images_nhwc01=np.zeros((1, 32, 32, 3), np.float32), log=tmp_path / "log")
    assert sha(onnx_copy) == before
    attempts = json.loads((tmp_path / "work" / "network_attempts.json").read_text())
    assert attempts, "the blocked download must be recorded"


@pytest.mark.slow
def test_normal_export_made_no_network_attempt_and_kept_its_onnx(full_export):
    out, manifest = full_export
    assert sha(out / "model.onnx") == manifest["artifacts"]["onnx"]["sha256"]
    assert "network access blocked" not in (out / "conversion.log").read_text()


@pytest.mark.slow
def test_parity_failure_keeps_only_the_report(tmp_path, monkeypatch):
    monkeypatch.setitem(verify.THRESHOLDS, "fp32", {"max_rel": 0.0, "cosine": 1.0 + 1e-9})
    monkeypatch.chdir(tmp_path)  # a relative OUTDIR, as `make demo` uses (the worker chdirs: paths must resolve)
    out = tmp_path / "out"
    code = cli_main(["export", SMALL, "--input-size", "32", "--precision", "fp32", "-o", "out"])
    assert code == 2
    assert sorted(p.name for p in out.iterdir()) == ["conversion.log", "export_report.json"]
    report = json.loads((out / "export_report.json").read_text())
    assert report["status"] == "failed" and report["failed"] == ["fp32"]
    assert report["images"]["source"] == "synthetic"


# -- bad input: one line, exit 2, nothing written ------------------------------------------------------------
def test_existing_outdir_needs_force(tmp_path, capsys):
    (tmp_path / "out").mkdir()
    code, _, err = run_cli(capsys, "export", SMALL, "-o", str(tmp_path / "out"))
    assert code == 2 and "already exists" in err and "--force" in err and len(err.splitlines()) == 1


def test_unwritable_outdir(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    code, _, err = run_cli(capsys, "export", SMALL, "-o", str(blocker / "out"))
    assert code == 2 and "not a folder" in err and len(err.splitlines()) == 1


def test_missing_checkpoint(tmp_path, capsys):
    code, _, err = run_cli(capsys, "export", SMALL, "--checkpoint", str(tmp_path / "nope.pt"), "-o", str(tmp_path / "o"))
    assert code == 2 and "nope.pt" in err and "does not exist" in err
    assert not (tmp_path / "o").exists()


def test_int8_without_calibration_images_is_refused(tmp_path, capsys):
    code, _, err = run_cli(capsys, "export", SMALL, "--precision", "int8", "-o", str(tmp_path / "o"))
    assert code == 2 and "--calib" in err and "calibration" in err
    assert list(tmp_path.iterdir()) == []


def test_unknown_precision(tmp_path, capsys):
    code, _, err = run_cli(capsys, "export", SMALL, "--precision", "fp32,int4", "-o", str(tmp_path / "o"))
    assert code == 2 and "int4" in err


def test_empty_calibration_folder(tmp_path, capsys):
    (tmp_path / "calib").mkdir()
    code, _, err = run_cli(capsys, "export", SMALL, "--calib", str(tmp_path / "calib"), "-o", str(tmp_path / "o"))
    assert code == 2 and "no usable images" in err
    assert not (tmp_path / "o").exists()


def test_calibration_folder_of_non_images_and_small_images(tmp_path, capsys):
    from PIL import Image

    calib = tmp_path / "calib"
    calib.mkdir()
    for i in range(12):
        (calib / f"notes{i}.txt").write_text("not an image")
        (calib / f"fake{i}.png").write_bytes(b"\x89PNG broken")
        Image.new("RGB", (16, 16 + i)).save(calib / f"small{i}.png")  # a mix of sizes, all below 32 px
    for i in range(3):
        Image.new("RGB", (40, 48)).save(calib / f"ok{i}.jpg")
    code, _, err = run_cli(capsys, "export", SMALL, "--input-size", "32", "--calib", str(calib), "-o", str(tmp_path / "o"))
    assert code == 2 and "only 3 usable image(s)" in err and "skipped 36 file(s)" in err
    assert "not an image file" in err or "not a readable image" in err
    assert not (tmp_path / "o").exists()


def test_skipped_files_are_named_in_the_manifest_images_section(tmp_path, calib_dir):
    """Fast path check of the image selection (no conversion): skipped files are listed with their reason."""
    from shufflenet_deploy.data.preprocess import Preprocessing
    from shufflenet_deploy.export.images import load_images

    calib = tmp_path / "calib"
    calib.mkdir()
    for p in sorted(calib_dir.rglob("*.png"))[:20]:
        (calib / p.name).write_bytes(p.read_bytes())
    (calib / "readme.txt").write_text("hello")
    images = load_images(calib, {}, Preprocessing(32, 32), ["onnx", "int8"], verify_count=32, calib_count=10, seed=0)
    assert images.image_set.skipped == [("readme.txt", "not an image file")]
    assert len(images.calibration) == 10 and len(images.held_out) == 5
    assert not set(images.calib_files) & set(images.held_out_files)


@pytest.mark.slow
def test_failed_conversion_keeps_its_log(tmp_path, monkeypatch, capsys):
    from shufflenet_deploy.export import lower

    monkeypatch.setattr(lower, "ONNX2TF_OPTIONS", {"no_such_onnx2tf_option": True})  # makes onnx2tf.convert raise
    out = tmp_path / "out"
    code = cli_main(["export", SMALL, "--input-size", "32", "--precision", "fp32", "-o", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and "onnx2tf conversion failed" in err and str(out / "conversion.log") in err
    assert sorted(p.name for p in out.iterdir()) == ["conversion.log", "export_report.json"]
    assert "no_such_onnx2tf_option" in (out / "conversion.log").read_text()
    assert json.loads((out / "export_report.json").read_text())["failed"] == ["convert"]
