"""Checkpoints: Megvii's official layout reproduces its logits; our format round-trips; bad files are UserErrors."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

from helpers import FIXTURES
from shufflenet_deploy.checkpoints import FORMAT, load_checkpoint, load_model, make_meta, save_checkpoint
from shufflenet_deploy.data.preprocess import Preprocessing
from shufflenet_deploy.errors import UserError
from shufflenet_deploy.zoo.registry import create_model




FIXTURE = FIXTURES / "megvii"
MEGVII = FIXTURE / "megvii_g3_1.0x.pth.tar"


@pytest.fixture(scope="module")
def megvii_input():
    return torch.from_numpy(np.load(FIXTURE / "megvii_g3_1.0x_input_bgr255.npy"))


@pytest.fixture(scope="module")
def megvii_state():
    return torch.load(MEGVII, map_location="cpu", weights_only=True)["state_dict"]


def logits(model, x):
    with torch.no_grad():
        return model(x).numpy()


def test_megvii_fixture_reproduces_official_logits(megvii_input):
    model = load_model("shufflenet_v1_g3_1.0x", MEGVII)
    assert not model.training
    expected = np.load(FIXTURE / "megvii_g3_1.0x_logits.npy")
    assert np.abs(logits(model, megvii_input) - expected).max() <= 1e-4
    meta = model.sdeploy_meta
    assert meta.model == "shufflenet_v1_g3_1.0x" and meta.options["shuffle"] == "megvii"
    assert meta.num_classes == 1000 and meta.class_names is None and meta.input_size == 224
    assert meta.preprocessing == Preprocessing.megvii(224)


def test_megvii_name_is_inferred_from_shapes():
    _, meta = load_checkpoint(MEGVII)
    assert meta.model == "shufflenet_v1_g3_1.0x"


def test_megvii_weights_need_the_megvii_shuffle(megvii_input, megvii_state):
    megvii = load_model("shufflenet_v1_g3_1.0x", MEGVII, shuffle="paper")  # official layout: forced to megvii
    assert megvii.sdeploy_meta.options["shuffle"] == "megvii"
    paper = create_model("shufflenet_v1_g3_1.0x", shuffle="paper").eval()
    paper.load_state_dict({k.removeprefix("module."): v for k, v in megvii_state.items()})
    assert np.abs(logits(megvii, megvii_input[:1]) - logits(paper, megvii_input[:1])).max() > 1e-2


@pytest.mark.parametrize("wrap, prefix, counters", [
    (False, False, True), (False, True, False), (True, False, False), (True, True, True)])
def test_official_layout_variants(tmp_path, megvii_state, wrap, prefix, counters):
    state = {k.removeprefix("module."): v for k, v in megvii_state.items()
             if counters or not k.endswith("num_batches_tracked")}
    state = {("module." + k if prefix else k): v for k, v in state.items()}
    torch.save({"state_dict": state} if wrap else state, tmp_path / "w.pth")
    model, _ = load_checkpoint(tmp_path / "w.pth", "shufflenet_v1_g3_1.0x")
    ours = model.state_dict()
    assert all(torch.equal(ours[k.removeprefix("module.")], v) for k, v in megvii_state.items()
               if not k.endswith("num_batches_tracked"))


def test_our_format_round_trips(tmp_path):
    prep = Preprocessing.imagenet(64)
    model = load_model("shufflenet_v1_g3_0.25x", num_classes=3)
    meta = make_meta("shufflenet_v1_g3_0.25x", 3, preprocessing=prep, class_names=["a", "b", "c"])
    path = save_checkpoint(tmp_path / "sub" / "ckpt.pt", model, meta, extra={"epoch": 4, "top1": 0.5})
    assert os.listdir(tmp_path / "sub") == ["ckpt.pt"]  # atomic: no temp file left behind

    raw = torch.load(path, map_location="cpu", weights_only=True)
    assert (raw["format"], raw["version"], raw["epoch"]) == (FORMAT, 1, 4)
    assert raw["meta"]["preprocessing"]["mean"] == list(prep.mean)

    loaded, loaded_meta = load_checkpoint(path)  # the checkpoint names its model
    assert loaded_meta == meta.replace(options={"groups": 3, "width": 0.25, "shuffle": "paper", "se": False})
    assert loaded.sdeploy_meta.class_names == ("a", "b", "c") and not loaded.training
    x = torch.randn(1, 3, 64, 64)
    assert np.array_equal(logits(model, x), logits(loaded, x))
    assert load_checkpoint(path, input_size=96)[1].preprocessing.input_size == 96


def test_save_refuses_reserved_extra_keys(tmp_path):
    model = load_model("mobilenet_v1_0.25x", num_classes=2)
    with pytest.raises(ValueError, match="reserved"):
        save_checkpoint(tmp_path / "x.pt", model, model.sdeploy_meta, extra={"meta": {}})


def test_load_model_without_checkpoint():
    model = load_model("mobilenet_v1_0.25x", num_classes=4, input_size=96)
    assert not model.training
    assert model.sdeploy_meta.preprocessing == Preprocessing.imagenet(96)
    assert model.sdeploy_meta.num_classes == 4


class Opaque:  # torch.save of an arbitrary object: weights_only must refuse it
    pass


def bad_file(tmp_path: Path, kind: str) -> Path:
    path = tmp_path / f"{kind}.pt"
    if kind == "random":
        path.write_bytes(np.random.default_rng(0).bytes(2000))
    elif kind == "text":
        path.write_text("epoch,loss\n1,0.5\n")
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "pickle":
        torch.save({"model": Opaque()}, path)
    elif kind == "list":
        torch.save([1, 2, 3], path)
    return path


@pytest.mark.parametrize("kind, expected", [
    ("missing", "checkpoint not found"),
    ("random", "is not a PyTorch checkpoint"),
    ("text", "is not a PyTorch checkpoint"),
    ("empty", "is not a PyTorch checkpoint (the file is empty)"),
    ("pickle", "refuses arbitrary pickles for safety"),
    ("list", "holds no state_dict (found a list)"),
])
def test_bad_files(tmp_path, kind, expected):
    path = bad_file(tmp_path, kind)
    with pytest.raises(UserError) as err:
        load_checkpoint(path, "shufflenet_v1_g3_1.0x")
    line = err.value.one_line()
    assert expected in line and str(path) in line and "\n" not in line
    assert err.value.exit_code == 2 and err.value.hint
    if kind == "pickle":
        assert "Opaque" in line and "torch.save(model.state_dict()" in line


def test_shape_mismatch_names_keys_and_both_shapes():
    with pytest.raises(UserError) as err:
        load_checkpoint(MEGVII, "shufflenet_v1_g8_1.0x")
    line = err.value.one_line()
    assert "does not fit shufflenet_v1_g8_1.0x" in line and "shape mismatches" in line
    assert "features.0.branch_main_1.0.weight [60, 24, 1, 1] in the file vs [96, 24, 1, 1] in the model" in line
    assert "it looks like shufflenet_v1_g3_1.0x" in line and "\n" not in line


def test_wrong_family_names_missing_and_unexpected_keys():
    with pytest.raises(UserError) as err:
        load_checkpoint(MEGVII, "shufflenet_v2_1.0x")
    assert "missing keys (conv1.0.weight" in err.value.one_line()
    assert "unexpected keys (first_conv.0.weight" in err.value.one_line()


def test_other_checkpoint_mistakes(tmp_path):
    model = load_model("mobilenet_v1_0.25x", num_classes=2)
    ours = save_checkpoint(tmp_path / "m.pt", model, model.sdeploy_meta)
    with pytest.raises(UserError, match="holds mobilenet_v1_0.25x, not shufflenet_v2_1.0x"):
        load_checkpoint(ours, "shufflenet_v2_1.0x")
    torch.save(model.state_dict(), tmp_path / "bare.pt")
    with pytest.raises(UserError, match="whose shapes fit no zoo model"):
        load_checkpoint(tmp_path / "bare.pt")
    assert load_checkpoint(tmp_path / "bare.pt", "mobilenet_v1_0.25x")[1].num_classes == 2
    with pytest.raises(UserError, match="no model given"):
        load_model()
