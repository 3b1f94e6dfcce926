"""int8 a user can trust: the per-layer error table of every int8 export, and the repair to an accuracy target,
decided with 95% bounds (export/int8_decision.py).

Real exports of the bundled models (onnx2tf + TensorFlow's quantizer + LiteRT). The proof model
(models/…_digits64_outliers.md: activation outlier channels by an exact rescale) fails decidedly and is repaired
decidedly on 539 held-out images, while 269 cannot decide its repair. The g8 0.5x digits checkpoint trained
without label smoothing (models/…_nosmooth.md) saturates in its last stage: the layer table must point there; an
impossible target must fail cleanly, keeping the report.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from helpers import run_sdeploy
from shufflenet_deploy.export.int8_layers import DATA_MOVEMENT, has_outliers, quantized_activations, worst
from shufflenet_deploy.int8_records import LayerRow
from shufflenet_deploy.int8_records import Int8Target
from shufflenet_deploy.errors import UserError

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("text, agreement, drop", [("agreement=99,drop=0.5", 0.99, 0.005), ("agreement=97", 0.97, 0.005),
                                                   ("drop=1", 0.99, 0.01)])
def test_target_syntax(text, agreement, drop):
    target = Int8Target.parse(text)
    assert (target.agreement, target.drop) == pytest.approx((agreement, drop))
    assert Int8Target.parse("none") is None


@pytest.mark.parametrize("text", ["agreement=101", "accuracy=99", "agreement=", "drop=-1", "agreement=high"])
def test_bad_target_is_refused(text):
    with pytest.raises(UserError):
        Int8Target.parse(text)


def test_every_int8_export_has_a_layer_table_matching_its_graph(shared_export, tmp_path):
    made = shared_export("g3")  # the bundled g3 as `sdeploy export --checkpoint` makes it
    out, m = made.path, made.manifest
    rows = m["int8_layers"]["rows"]
    tensors = quantized_activations(out / "model_int8.tflite")
    assert len(rows) == len(tensors) > 100 and all(r["matched"] for r in rows)
    assert [r["depth"] for r in rows] == sorted(r["depth"] for r in rows)
    for r in rows:
        assert r["scale"] > 0 and -128 <= r["zero_point"] <= 127 and 0 <= r["clipped"] <= 1 and r["snr_db"] > 0
    assert m["int8_repair"]["applied"] == "plain" and m["int8_repair"]["attempts"][0]["met"]
    # its numbers meet the target; 269 images cannot decide 99% (it takes 299 at zero disagreements): said, kept
    assert m["int8_repair"]["decision"] == "undecided" and "undecided at 269 images" in made.stdout
    assert not any(has_outliers(LayerRow.from_dict(r, "row")) for r in rows)  # a healthy model: no tensor's grid set by a few channels
    assert "int8 worst layers" in made.stdout
    # and the report of it, from the stored table (no TensorFlow needed)
    report = run_sdeploy("quant-report", out, "-o", tmp_path / "qr", cwd=tmp_path)
    assert report.returncode == 0, report.stderr[-2000:]
    assert (tmp_path / "qr" / "quant_layers.png").stat().st_size > 10_000
    assert len((tmp_path / "qr" / "quant_layers.csv").read_text().splitlines()) == len(rows) + 1


def test_the_onnx_int8_file_is_calibrated_judged_and_shipped_like_the_tflite_one(shared_export):
    """`export --onnx-int8`: model_int8.onnx (ONNX Runtime's static QDQ) from the same calibration images, judged
    against model.onnx on the same 269 val images as the TFLite int8 file, and listed with its sha256 and parity.
    With full-range weights this file lost 24 points on an AVX2 host (VPMADDUBSW's int16 saturation); the 7-bit
    weight range makes the judgement hold on every CPU, so this passes wherever it runs."""
    m = shared_export("g3").manifest
    block, art = m["onnx_int8"], m["artifacts"]["onnx_int8"]
    assert block["shipped"] and block["calibration"] == m["images"]["calibration"] == 100
    assert block["images"] == m["int8_repair"]["attempts"][0]["images"] == 269 and block["agreement"] >= 0.99
    assert block["decision"] in ("met", "undecided") and "reduce_range" in block["method"]
    assert art["file"] == "model_int8.onnx" and art["format"] == "onnx" and art["precision"] == "int8"
    assert art["parity"]["passed"] and art["parity"]["reference"] == "onnx" and art["ops"]["QuantizeLinear"] > 10
    # the lowered graph's residual Sums are quantized as Adds (ORT has no int8 Sum), their ReLUs fused
    assert "Sum" not in art["ops"] and art["ops"]["Add"] == m["artifacts"]["onnx"]["ops"]["Sum"] > 0
    assert "Relu" not in art["ops"]
    assert not (shared_export("g3").path / "model_int8.float.onnx").exists()  # the copy it was quantized from
    assert next(r for r in m["accuracy"]["rows"] if r["artifact"] == "onnx_int8")["top1"] >= 0.99


def test_a_decided_miss_of_the_onnx_int8_file_is_not_shipped_and_says_why():
    from shufflenet_deploy.export.onnx_int8 import judge_logits

    rng = np.random.default_rng(0)
    fp32 = rng.normal(size=(269, 10))
    int8 = fp32.copy()
    int8[:60] = rng.normal(size=(60, 10))  # ~54 of 269 answers changed: 80% agreement, decided below 99%
    judged = judge_logits(int8, fp32, None, "val (269 images)", 100, Int8Target())
    assert judged.decision == "missed" and not judged.shipped and "95% confidence" in judged.why
    block = judged.to_dict()
    assert block["shipped"] is False and block["why"] == judged.why and block["disagree"] == judged.check.disagree > 40
    assert judge_logits(fp32, fp32, None, "val", 100, Int8Target()).shipped  # 0 of 269 differ: undecided, shipped
    free = judge_logits(int8, fp32, None, "val", 100, None)  # no target (random weights): shipped, nothing decided
    assert free.shipped and free.decision is None and free.to_dict()["target"] is None


@pytest.fixture(scope="module")
def g8_exports(shared_export):
    """The g8 model whose last stage saturates, exported with one plain attempt (--int8-target none). Its repair
    is no longer exported here: the outlier proof model below shows the repair, decided, on every host."""
    made = shared_export("g8_nosmooth-plain")
    return {"plain": (made.manifest, made.stdout)}


def _top1(manifest, artifact):
    return next(r["top1"] for r in manifest["accuracy"]["rows"] if r["artifact"] == artifact)


def _skip_unless_plain_int8_fails_here(plain_manifest):
    """The repair tests need a model whose plain int8 misses the default target (drop > 0.5 pt). On the hosts
    measured so far it loses 2 of 269 images, but calibration runs TensorFlow's float kernels, which round per CPU
    (docs/ci.md): where it loses fewer, there is nothing to repair and these tests say so instead of failing."""
    drop = _top1(plain_manifest, "fp32") - _top1(plain_manifest, "int8")
    if drop <= 0.005:
        pytest.skip(f"on this CPU the plain int8 of the proof model meets the target (drop {100 * drop:.2f} pt): "
                    "nothing to repair here")


def test_plain_int8_of_the_failing_model_misses_the_target(g8_exports):
    m, _ = g8_exports["plain"]
    _skip_unless_plain_int8_fails_here(m)
    assert m["int8_repair"]["target"] is None and "none" in m["int8_repair"]["why"]


def test_the_layer_table_points_at_the_saturating_layers(g8_exports):
    m, stdout = g8_exports["plain"]
    rows = [LayerRow.from_dict(r, "manifest") for r in m["int8_layers"]["rows"]]
    bad = worst(rows, 3)
    assert all(r.clipped > 0.005 for r in bad), bad       # >0.5% of the values fall outside the int8 grid
    assert all(r.fp32_min < r.int8_min or r.fp32_max > r.int8_max for r in bad)
    assert all(r.depth > 0.8 * rows[-1].depth for r in bad)  # the last stage, where activations grow
    assert all(r.op not in DATA_MOVEMENT for r in bad)
    assert "clipped" in stdout


def _boundary_images(checkpoint: Path, folder: Path, count: int = 20) -> None:
    """Labelled images that sit on the fp32 model's decision boundary: blends of two val digits of different
    classes whose top-2 logits differ the least. Any int8 rounding flips about half of them, so no int8 model
    (not even with 16 layers in float: the int8 output alone moves logits by half a step) agrees on all."""
    import torch
    from PIL import Image

    from shufflenet_deploy.checkpoints import load_model
    from shufflenet_deploy.data.digits import ensure_digits
    from shufflenet_deploy.data.folders import scan_image_folder
    from shufflenet_deploy.data.preprocess import Preprocessing

    model = load_model(None, checkpoint)
    pre = model.sdeploy_meta.preprocessing
    val = scan_image_folder(ensure_digits(pre.hw[0]) / "val")
    rng = np.random.default_rng(0)
    by_class = {c: [k for k, label in enumerate(val.labels) if label == c] for c in range(len(val.class_names))}
    for made in range(count):
        c = made % len(by_class)  # every class gets images (the export checks the folder's classes)
        d = int(rng.choice([k for k in by_class if k != c]))
        a, b = (np.asarray(Image.open(val.paths[int(rng.choice(by_class[k]))]).convert("RGB"), np.float32)
                for k in (c, d))
        blends = np.stack([np.clip(np.round(t * a + (1 - t) * b), 0, 255) for t in np.linspace(0, 1, 129)])
        with torch.inference_mode():
            logits = model(torch.from_numpy(np.stack([pre.normalize(p) for p in blends]).transpose(0, 3, 1, 2)
                                            .copy())).numpy()
        top2 = np.sort(logits, axis=1)[:, -2:]
        gap = np.where(logits.argmax(1) == c, top2[:, 1] - top2[:, 0], np.inf)  # c's side of the boundary
        k = int(np.argmin(gap))
        (folder / val.class_names[c]).mkdir(parents=True, exist_ok=True)
        Image.fromarray(blends[k].astype(np.uint8)).save(folder / val.class_names[c] / f"blend{made}.png")


def test_an_impossible_target_fails_cleanly_and_keeps_the_report(bundled_checkpoint, tmp_path):
    hard = tmp_path / "boundary"
    _boundary_images(bundled_checkpoint("g3"), hard)
    out = tmp_path / "g3"
    proc = run_sdeploy("export", "--checkpoint", bundled_checkpoint("g3"), "--val", hard, "-o", out,
                       "--int8-target", "agreement=100", cwd=tmp_path, timeout=1200)
    assert proc.returncode == 2, proc.stdout[-2000:] + proc.stderr[-3000:]
    lines = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "no int8 attempt met the target agreement=100" in lines[0], proc.stderr[-2000:]
    assert "worst layers: #" in lines[0] and "Traceback" not in proc.stderr
    assert not list(out.glob("*.tflite")) and not (out / "manifest.json").exists()
    report = json.loads((out / "export_report.json").read_text())
    assert report["status"] == "failed" and report["failed"] == ["int8"]
    steps = [a["step"] for a in report["int8_repair"]["attempts"]]
    assert steps[:1] == ["plain"] and steps[-1] == "ranges-mse"     # 100% agreement is never decided: no float
    assert "no number of images decides it" in lines[0]
    assert report["int8_repair"]["applied"] is None and report["int8_layers"]["rows"]
    assert not any(p.name.startswith(".") for p in tmp_path.iterdir())  # no temp folder left behind


def _outlier_model(bundled_checkpoint, folder: Path, scale: float = 60.0) -> Path:
    """The bundled g3 with activation outlier channels (scripts/make_int8_outlier_model.py: an exact rescale, the
    same fp32 function): in every unit of stages 3 and 4, one channel of the first pointwise conv's output is
    SCALE times larger, compensated in the depthwise conv that reads it."""
    import importlib.util

    from helpers import REPO
    from shufflenet_deploy.checkpoints import load_checkpoint, save_checkpoint

    spec = importlib.util.spec_from_file_location("outliers", REPO / "scripts" / "make_int8_outlier_model.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    model, meta = load_checkpoint(bundled_checkpoint("g3"))
    module.add_outliers(model, list(range(4, 16)), scale)
    return save_checkpoint(folder / f"g3_outliers_{scale:g}.pt", model, meta)


OUTLIERS = "shufflenet_v1_g3_0.5x_digits64_outliers"


def test_the_proof_model_is_what_its_card_says(bundled_checkpoint, tmp_path):
    """models/…_outliers.pt is the bundled g3 with the card's rescale: the same weights bit for bit as the script
    makes them, and the same fp32 function."""
    import torch

    from helpers import REPO
    from shufflenet_deploy.checkpoints import load_checkpoint

    made = load_checkpoint(_outlier_model(bundled_checkpoint, tmp_path, scale=150.0))[0].state_dict()
    committed = load_checkpoint(REPO / "models" / f"{OUTLIERS}.pt")[0].state_dict()
    assert made.keys() == committed.keys() and all(torch.equal(made[k], committed[k]) for k in made)


def _wide_val(folder: Path) -> Path:
    """The bundled val and calib splits together: 539 labelled images the model never trained on."""
    import shutil

    from shufflenet_deploy.data.digits import ensure_digits

    root = ensure_digits(64)
    for split in ("val", "calib"):
        for image in (root / split).glob("*/*.png"):
            (folder / image.parent.name).mkdir(parents=True, exist_ok=True)
            shutil.copyfile(image, folder / image.parent.name / f"{split}-{image.name}")
    return folder


def test_the_proof_model_fails_decidedly_and_is_repaired_decidedly(tmp_path):
    """On 539 held-out images (calibrated on the train split): the plain int8 misses the target by far, decided;
    activation ranges at int8 speed still miss it, decided; float islands meet it, decided, and are shipped."""
    from helpers import REPO
    from shufflenet_deploy.data.digits import ensure_digits

    out = tmp_path / "export"
    proc = run_sdeploy("export", "--checkpoint", REPO / "models" / f"{OUTLIERS}.pt", "--calib",
                       ensure_digits(64) / "train", "--val", _wide_val(tmp_path / "wide"), "-o", out, cwd=tmp_path,
                       timeout=1800)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    repair = json.loads((out / "manifest.json").read_text())["int8_repair"]
    steps = {a["step"]: a for a in repair["attempts"]}
    plain = steps["plain"]
    assert plain["images"] == 539 and plain["decision"] == "missed" and plain["agreement"] < 0.95
    assert all(a["decision"] == "missed" for s, a in steps.items() if not s.startswith("float-"))
    applied = steps[repair["applied"]]
    assert applied["step"].startswith("float-") and applied["decision"] == repair["decision"] == "met"
    assert all(v["state"] == "met" and v["images"] == 539 for v in applied["verdicts"])
    assert applied["xnnpack_partitions"] > 1                      # the cost of float islands, recorded
    for a in repair["attempts"]:
        assert a["latency_ms"] > 0 and a["xnnpack_partitions"] >= 1 and a["seconds"] >= 0
    assert "int16-activations" in repair["not_tried"]
    assert f"int8 {applied['step']}" in proc.stdout and "target met at 539 images" in proc.stdout
    assert "<- applied" in proc.stdout
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["artifacts"]["int8"]["parity"]["passed"]


def test_at_269_images_the_miss_is_decided_its_cause_named_and_no_repair_can_be(tmp_path):
    """The bundled val split alone: the plain miss is decided and the layer table names its cause (outlier
    channels: the tensors' own SNR hides it); but 269 images cannot show 99% agreement even without an error, so
    no float island is built or shipped and the export says how many images would decide it."""
    from helpers import REPO
    from shufflenet_deploy.export.int8_layers import float_island, has_outliers, summary_line

    out = tmp_path / "export"
    proc = run_sdeploy("export", "--checkpoint", REPO / "models" / f"{OUTLIERS}.pt", "-o", out, cwd=tmp_path,
                       timeout=1800)
    assert proc.returncode == 2, proc.stdout[-3000:] + proc.stderr[-3000:]
    error = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(error) == 1 and "undecided at 269 images (about 299 would decide it)" in error[0], proc.stderr[-2000:]
    assert "pass more labelled images with --val" in error[0] and "Traceback" not in proc.stderr
    report = json.loads((out / "export_report.json").read_text())
    repair = report["int8_repair"]
    rows = [LayerRow.from_dict(r, "export_report.json") for r in report["int8_layers"]["rows"]]
    assert repair["attempts"][0]["decision"] == "missed" and repair["applied"] is None
    assert not any(a["step"].startswith("float-") for a in repair["attempts"])   # nothing slower was built
    assert not list(out.glob("*.tflite"))
    outliers = [r for r in rows if has_outliers(r)]
    assert len(outliers) >= 12 and worst(rows, 1)[0] in outliers     # one per rescaled unit, ranked first
    assert "outlier channels" in summary_line(outliers[0]) and "outlier channels" in error[0]
    island = float_island(rows, worst(rows, 1)[0].tensor)
    ops = {r.tensor: r.op for r in rows}
    assert ops[island[-1]] == "DEPTHWISE_CONV_2D" and len(island) >= 3   # floated through the shuffle to its reader
