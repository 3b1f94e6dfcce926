"""The lowering stage (shufflenet_deploy/export/lower.py, tflite_rewrite.py): exact rewrites, real conversions.

Fast tests check the PyTorch and ONNX rewrites numerically. Slow ones run real exports of every zoo family at
small sizes, lowered and (once) plain, and check: fp32 TFLite of the lowered graph against the *original*
PyTorch model, int8 against fp32, the op histogram (DEPTHWISE_CONV_2D, transposes per shuffle) and a single
XNNPACK partition for int8; and on the bundled trained model, int8 accuracy and agreement with fp32.
Weights: BN statistics are randomized so logits depend on the input (a fresh init makes parity look perfect).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from shufflenet_deploy.checkpoints import load_model, make_meta, save_checkpoint
from shufflenet_deploy.errors import UserError
from shufflenet_deploy.export import lower, verify
from shufflenet_deploy.export.pipeline import ExportRequest, export
from shufflenet_deploy.zoo.layers import randomize_batchnorm

FAMILIES = {  # name, options, size
    "v1_g3_paper": ("shufflenet_v1_g3_0.25x", {"shuffle": "paper"}, 64),
    # 48 px: onnx2tf 1.29 itself (lowered or not) takes a g8 grouped conv for a depthwise one when a feature map
    # after a shuffle is 8 wide (stage2 at 64 px) and fails; at 48 px no map is 8 wide
    "v1_g8_megvii": ("shufflenet_v1_g8_0.5x", {"shuffle": "megvii"}, 48),
    "v1_g3_megvii": ("shufflenet_v1_g3_0.25x", {"shuffle": "megvii"}, 48),
    "v1_g8_paper": ("shufflenet_v1_g8_0.25x", {"shuffle": "paper"}, 32),
    "v2": ("shufflenet_v2_0.5x", {}, 64),
    "mobilenet_v1": ("mobilenet_v1_0.25x", {}, 64),
}


def randomized(name: str, options: dict, seed: int = 0):
    """A zoo model whose BN layers have non-trivial statistics, so outputs depend on the input."""
    return randomize_batchnorm(load_model(name, **options), seed=seed).eval()


def shuffle_count(model) -> int:
    from shufflenet_deploy.zoo.layers import ChannelShuffle

    return sum(isinstance(m, ChannelShuffle) for m in model.modules())


def depthwise_count(model) -> int:
    """Depthwise convs, plus the avg-pools lower_torch turns into depthwise convs."""
    return sum(isinstance(m, torch.nn.AvgPool2d) or (isinstance(m, torch.nn.Conv2d) and m.groups > 1
                                                     and m.groups == m.in_channels == m.out_channels)
               for m in model.modules())


# ------------------------------------------------------------------------------------------------- fast
@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_torch_lowering_is_exact(family):
    name, options, size = FAMILIES[family]
    model = randomized(name, options)
    deploy, report = lower.lower_torch(model, size)
    x = torch.randn(3, 3, size, size, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        ref, out = model(x), deploy(x)
    assert (ref - out).abs().max() <= 1e-5 * ref.abs().max()
    assert not any(isinstance(m, torch.nn.AvgPool2d) for m in deploy.modules())
    expected = 3 if name.startswith("shufflenet_v1") else 0  # one avg-pool shortcut per stage
    assert report["avgpool_to_depthwise"] == expected
    assert any(isinstance(m, torch.nn.AvgPool2d) for m in model.modules()) == bool(expected)  # original untouched
    v2 = name.startswith("shufflenet_v2")  # v2's split/concat/shuffle are folded into its convs; v1's shuffles
    assert report["shuffles_folded"] == (shuffle_count(model) if v2 else 0)  # become explicit permutations
    from shufflenet_deploy.zoo.layers import ChannelPermutation

    assert shuffle_count(deploy) == 0
    permutations = sum(isinstance(m, ChannelPermutation) for m in deploy.modules())
    assert permutations == report["shuffles_as_permutation"] == shuffle_count(model) - report["shuffles_folded"]
    assert shuffle_count(model) > 0 or name.startswith("mobilenet")


@pytest.mark.parametrize("name,size", [("shufflenet_v2_0.5x", (64, 64)), ("shufflenet_v2_1.0x", (96, 64)),
                                       ("shufflenet_v2_2.0x", (32, 48))])
def test_v2_fold_is_exact_and_copies_nothing_twice(name, size):
    from shufflenet_deploy.export.shuffle_fold import fold_shufflenet_v2

    model = randomized(name, {}, seed=2)
    folded, removed = fold_shufflenet_v2(model)
    assert removed == shuffle_count(model) == 16 and shuffle_count(folded) == 0
    x = torch.randn(3, 3, *size, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        ref, out = model(x), folded(x)
    assert (ref - out).abs().max() <= 1e-5 * ref.abs().max()
    # every concat input is a whole tensor read by that concat alone (so int8 gives it the concat's scale)
    concat_inputs = [k for _, block, inputs in folded.steps if block is None for k in inputs]
    block_inputs = {inputs[0] for _, block, inputs in folded.steps if block is not None}
    assert len(concat_inputs) == len(set(concat_inputs)) and not set(concat_inputs) & block_inputs
    assert sum(block is None for _, block, _ in folded.steps) == 16  # units 2-16 and conv5: one concat each


def test_lowered_v2_onnx_is_exact_without_data_movement(tmp_path):
    from shufflenet_deploy.export.onnx_export import export_onnx, onnx_op_histogram

    model = randomized("shufflenet_v2_0.5x", {}, seed=3)
    deploy, report = lower.lower_torch(model, 64)
    path = tmp_path / "m.onnx"
    export_onnx(deploy, 64, path)
    assert lower.lower_onnx(path) == {"maxpool_zero_pad": 1, "residual_add_as_sum": 0}  # v2 has no residual add
    ops = onnx_op_histogram(path)
    assert not {"Slice", "Split", "Reshape", "Transpose", "Gather", "Shape"} & set(ops), ops
    x = np.random.default_rng(6).standard_normal((4, 3, 64, 64)).astype(np.float32)
    ref = verify.run_torch(model, x)  # the original model
    np.testing.assert_allclose(verify.run_onnx(path, x), ref, rtol=0, atol=1e-5 * np.abs(ref).max())


def test_plain_v2_export_is_refused_up_front(tmp_path):
    out = tmp_path / "out"
    with pytest.raises(UserError, match="--no-optimize") as err:
        export(ExportRequest(model="shufflenet_v2_0.5x", input_size=64, precisions=("fp32",), outdir=out,
                             optimize=False))
    assert "default lowered export" in err.value.one_line() and "\n" not in err.value.one_line()
    assert not out.exists() and list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("precision", ["fp32", "int8"])
def test_wide_concat_is_nested_for_xnnpack(tmp_path, precision):
    """A CONCATENATION of 7 inputs (XNNPACK takes at most 5) -> nested ones: one partition, identical outputs."""
    import tensorflow as tf

    from shufflenet_deploy.export import tflite_inspect
    from shufflenet_deploy.export import tflite_rewrite as tr
    from shufflenet_deploy.export.keras_convert import keras_to_tflite

    tf.keras.utils.set_random_seed(0)
    inputs = tf.keras.Input((8, 8, 4), batch_size=1)
    parts = [tf.keras.layers.Conv2D(c, 1, activation="relu")(inputs) for c in (1, 2, 3, 1, 4, 2, 5)]
    outputs = tf.keras.layers.Conv2D(6, 1)(tf.keras.layers.Concatenate()(parts))
    src, dst = tmp_path / "wide.tflite", tmp_path / "nested.tflite"
    src.write_bytes(keras_to_tflite(tf.keras.Model(inputs, outputs), precision))
    assert tflite_inspect.inspect_tflite(src).xnnpack.partitions > 1  # why the pass exists

    g = tr.Graph.load(src)
    assert tr.split_wide_concats(g) == 1
    g.save(dst)
    nested = tr.Graph.load(dst)
    assert sorted(len(op.inputs) for op in nested.sg.operators if nested.name(op) == "CONCATENATION") == [3, 5]
    info = tflite_inspect.inspect_tflite(dst)
    assert info.xnnpack.partitions == 1 and info.xnnpack.not_delegated == {}
    x = np.random.default_rng(0).uniform(0, 1, (2, 4, 8, 8)).astype(np.float32)
    np.testing.assert_array_equal(verify.run_tflite(dst, x), verify.run_tflite(src, x))


def test_pad_fold_option_is_exact_too():
    model = randomized("shufflenet_v1_g3_0.25x", {})
    deploy, report = lower.lower_torch(model, 64, pad_fold="all")
    assert report["pad_folded_convs"] > 0
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert torch.allclose(model(x), deploy(x), atol=1e-5 * model(x).abs().max().item())


def test_onnx_maxpool_rewrite_is_exact(tmp_path):
    import onnx

    from shufflenet_deploy.export.onnx_export import export_onnx

    model = randomized("shufflenet_v2_0.5x", {})
    path = tmp_path / "m.onnx"
    export_onnx(model, 64, path)
    x = np.random.default_rng(0).standard_normal((2, 3, 64, 64)).astype(np.float32)
    before = verify.run_onnx(path, x)
    assert lower.lower_onnx(path) == {"maxpool_zero_pad": 1, "residual_add_as_sum": 0}  # v2 has no residual add
    after = verify.run_onnx(path, x)
    np.testing.assert_allclose(after, before, rtol=0, atol=1e-6 * np.abs(before).max())
    nodes = onnx.load(str(path)).graph.node
    pools = [n for n in nodes if n.op_type == "MaxPool"]
    assert all(list(a.ints) == [0, 0, 0, 0] for n in pools for a in n.attribute if a.name == "pads")
    assert sum(n.op_type == "Pad" for n in nodes) == 1


def test_cli_no_optimize_reaches_the_request(monkeypatch, tmp_path):
    from click.testing import CliRunner

    from shufflenet_deploy.cli.export import export as export_cmd
    from shufflenet_deploy.export import pipeline

    seen = []
    monkeypatch.setattr(pipeline, "export", lambda req, progress=None: seen.append(req) or (_ for _ in ()).throw(
        SystemExit(0)))
    for flag, expected in (([], True), (["--no-optimize"], False)):
        CliRunner().invoke(export_cmd, ["shufflenet_v1_g3_0.25x", "-o", str(tmp_path / "o"), *flag])
        assert seen[-1].optimize is expected


# ------------------------------------------------------------------------------------------------- slow
@pytest.fixture(scope="module")
def calib64():
    from shufflenet_deploy.data.digits import ensure_digits

    return ensure_digits(64) / "calib"


def export_family(tmp_path: Path, family: str, calib: Path, *, optimize: bool = True) -> tuple[dict, Path, object]:
    name, options, size = FAMILIES[family]
    model = randomized(name, options)
    meta = make_meta(name, options=options).with_input_size(size)
    ckpt = save_checkpoint(tmp_path / f"{family}.pt", model, meta)
    out = tmp_path / f"out-{family}-{optimize}"
    manifest = export(ExportRequest(checkpoint=ckpt, input_size=size, precisions=("fp32", "int8"), calib=calib,
                                    calib_count=40, verify_count=16, outdir=out, optimize=optimize,
                                    int8_target=None)).data  # random weights: top-1 agreement is not what these test
    return manifest, out, model


@pytest.mark.slow
@pytest.mark.parametrize("family", ["v1_g3_paper", "v1_g8_megvii", "mobilenet_v1", "v2"])
def test_lowered_export_matches_the_original_model(tmp_path, calib64, family):
    manifest, out, model = export_family(tmp_path, family, calib64)
    arts, low = manifest["artifacts"], manifest["lowering"]
    assert low["applied"] is True
    assert all(a["parity"]["passed"] for a in arts.values())
    assert arts["onnx"]["parity"]["reference"] == "pytorch"  # the original model, not the deploy copy

    # fp32 TFLite of the lowered graph vs the original PyTorch model, directly
    size = manifest["input_size"]
    x = np.random.default_rng(3).standard_normal((8, 3, size, size)).astype(np.float32)
    ref = verify.run_torch(model, x)
    fp32 = verify.run_tflite(out / "model_fp32.tflite", x)
    assert np.abs(fp32 - ref).max() <= 1e-4 * np.abs(ref).max()
    assert arts["int8"]["parity"]["cosine"] >= 0.95

    v2 = family == "v2"
    assert low["torch"]["shuffles_folded"] == (shuffle_count(model) if v2 else 0)
    for precision in ("fp32", "int8"):
        ops, done = arts[precision]["ops"], low["tflite"][precision]
        assert "AVERAGE_POOL_2D" not in ops and "PADV2" not in ops and "GATHER" not in ops
        assert ops.get("DEPTHWISE_CONV_2D", 0) == depthwise_count(model) >= 1
        n_shuffle = shuffle_count(model) - low["torch"]["shuffles_folded"]  # v2: none left to rewrite
        if v2:  # no split, slice, reshape or requantize either: only concats of whole conv outputs
            assert not {"STRIDED_SLICE", "SLICE", "SPLIT", "SPLIT_V", "RESHAPE", "QUANTIZE"} & set(ops), ops
            assert done["wide_concats_split"] >= 1  # stage 3's deep units read from more than 5 convs
        assert done["data_movement_chains"] == n_shuffle
        # each shuffle reaches onnx2tf as one channel Gather, so onnx2tf writes no NCHW round trip (no TRANSPOSE at
        # all); the pass turns each GATHER into transpose2's two large-tile transposes (measured fastest)
        assert done["transposes_before"] == 0 and done["transpose_into_mean"] == 0
        assert ops.get("TRANSPOSE", 0) == done["transposes_after"] == 2 * n_shuffle
    assert arts["int8"]["xnnpack"]["partitions"] == 1
    assert arts["int8"]["xnnpack"]["not_delegated"] == {}
    assert arts["fp32"]["xnnpack"]["partitions"] == 1


@pytest.mark.slow
def test_no_optimize_gives_onnx2tf_plain_output(tmp_path, calib64):
    manifest, out, model = export_family(tmp_path, "v1_g3_paper", calib64, optimize=False)
    assert manifest["lowering"] == {"applied": False}
    ops = manifest["artifacts"]["int8"]["ops"]
    assert ops.get("AVERAGE_POOL_2D") == 3  # the avg-pool shortcuts, as onnx2tf writes them
    assert ops.get("TRANSPOSE", 0) >= 3 * shuffle_count(model)
    assert manifest["artifacts"]["int8"]["xnnpack"]["partitions"] > 1

    # the TFLite passes alone on the plain graph are exact too (fp32: same logits)
    x = np.random.default_rng(4).standard_normal((4, 3, 64, 64)).astype(np.float32)
    plain = verify.run_tflite(out / "model_fp32.tflite", x)
    lowered = out / "lowered_fp32.tflite"
    report = lower.lower_tflite(out / "model_fp32.tflite", lowered)
    assert report["depthwise"] >= 1 and report["data_movement_chains"] == shuffle_count(model)
    np.testing.assert_allclose(verify.run_tflite(lowered, x), plain, rtol=0, atol=1e-5 * np.abs(plain).max())


@pytest.mark.slow
def test_bundled_trained_model_int8_accuracy(shared_export):
    from shufflenet_deploy.data.digits import ensure_digits
    from shufflenet_deploy.data.folders import scan_image_folder
    from shufflenet_deploy.data.preprocess import Preprocessing

    results = {}
    for optimize in (True, False):
        made = shared_export("g3" if optimize else "g3-plain")  # the bundled model, lowered and --no-optimize
        out, manifest = made.path, made.manifest
        val = scan_image_folder(ensure_digits(manifest["input_size"]) / "val")
        x = Preprocessing.from_dict(manifest["preprocessing"]).load_batch(val.paths)
        fp32 = verify.run_tflite(out / "model_fp32.tflite", x)
        int8 = verify.run_tflite(out / "model_int8.tflite", x)
        labels = np.asarray(val.labels)
        results[optimize] = {"agree": float((fp32.argmax(1) == int8.argmax(1)).mean()),
                             "int8_top1": float((int8.argmax(1) == labels).mean()),
                             "partitions": manifest["artifacts"]["int8"]["xnnpack"]["partitions"]}
    assert results[True]["agree"] >= 0.99, results
    assert results[True]["int8_top1"] >= results[False]["int8_top1"] - 1e-9, results
    assert results[True]["partitions"] == 1
