"""The analytic counter: the papers' figures, and agreement with a forward-hook count on real modules."""
from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from shufflenet_deploy.complexity import count_complexity
from shufflenet_deploy.errors import UserError
from shufflenet_deploy.zoo.registry import create_model, get_spec, list_models




def mmacs(name: str, convention: str) -> float:
    return count_complexity(name).macs(convention) / 1e6


@pytest.mark.parametrize("groups, exact, paper", [
    (1, 142.50, 143), (2, 140.04, 140), (3, 136.50, 137), (4, 133.25, 133), (8, 136.83, 137)])
def test_table1_convolutions_only(groups, exact, paper):
    value = mmacs(f"shufflenet_v1_g{groups}_1.0x", "conv")
    assert round(value, 2) == exact and round(value) == paper


@pytest.mark.parametrize("name, exact, paper", [
    ("shufflenet_v1_g3_0.5x", 37.59, 38), ("shufflenet_v1_g3_1.5x", 292.44, 292),
    ("shufflenet_v1_g3_2.0x", 524.05, 524), ("shufflenet_v1_g3_2.0x_se", 526.93, 527),
    ("shufflenet_v1_g4_0.5x", 37.94, 38)])
def test_width_scaled_figures_are_conv_plus_fc(name, exact, paper):
    value = mmacs(name, "conv+fc")
    assert round(value, 2) == exact and round(value) == paper


@pytest.mark.parametrize("width, paper", [(1.0, 569), (0.75, 325), (0.5, 149), (0.25, 41)])
def test_mobilenet_v1(width, paper):
    assert round(mmacs(f"mobilenet_v1_{width}x", "conv+fc")) == paper


@pytest.mark.parametrize("width, params, gflops, paper", [
    (0.5, 1_366_792, 0.04, 41), (1.0, 2_278_604, 0.14, 146), (1.5, 3_503_624, 0.30, 299), (2.0, 7_393_996, 0.58, 591)])
def test_shufflenet_v2_matches_torchvision(width, params, gflops, paper):
    """Same architecture as torchvision (its documented params and GFLOPS); the v2 paper's figures are
    0.7-1.3% higher than a pure multiply-add count, so only closeness to them is asserted."""
    c = count_complexity(f"shufflenet_v2_{width}x")
    assert c.params == params
    assert round(c.macs_total / 1e9, 2) == gflops
    assert abs(c.macs_total / 1e6 - paper) / paper < 0.015


def test_every_paper_figure_is_reproduced_except_v2():
    for name in list_models():
        spec = get_spec(name)
        comparison = count_complexity(name).paper_comparison()
        if spec.paper is not None:
            assert comparison.matches == (spec.family != "shufflenet_v2"), name


def test_se_placement_adds_2_88m_at_2x_g3():
    with_se, plain = count_complexity("shufflenet_v1_g3_2.0x_se"), count_complexity("shufflenet_v1_g3_2.0x")
    se = [l for l in with_se.layers if l.kind == "se_fc"]
    assert len(se) == 32 and sum(l.macs for l in se) == 2_880_000
    assert with_se.macs_conv == plain.macs_conv  # SE FCs count as FC, not conv


def test_layer_records_and_to_dict():
    c = count_complexity("shufflenet_v1_g3_1.0x", input_size=64, num_classes=10)
    layer = {l.name: l for l in c.layers}["features.3.branch_main_2.0"]
    assert (layer.kind, layer.in_shape, layer.out_shape, layer.groups, layer.kernel) == (
        "group_conv", (60, 8, 8), (240, 8, 8), 3, 1)
    assert {l.kind for l in c.layers} == {"conv", "group_conv", "depthwise", "fc"}
    data = json.loads(json.dumps(c.to_dict()))
    assert {"model", "input_size", "macs_conv", "macs_total", "params", "layers"} <= data.keys()
    assert data["input_size"] == 64 and len(data["layers"]) == len(c.layers)
    assert "layers" not in c.summary()


def test_bad_input_size():
    with pytest.raises(UserError, match="input size"):
        count_complexity("shufflenet_v1_g3_1.0x", input_size=0)


def traced(model: nn.Module, input_size: int) -> dict[str, tuple[int, int]]:
    """name -> (MACs, own params) of every conv/FC, measured by forward hooks on a real forward pass."""
    found = {}

    def hook(name):
        def record(module, inputs, output):
            own = sum(p.numel() for p in module.parameters(recurse=False))
            if isinstance(module, nn.Conv2d):
                per_output = module.in_channels // module.groups * module.kernel_size[0] * module.kernel_size[1]
                found[name] = (output[0].numel() * per_output, own)
            else:
                found[name] = (module.in_features * module.out_features, own)
        return record

    for name, module in model.named_modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            module.register_forward_hook(hook(name))
    with torch.no_grad():
        model.eval()(torch.zeros(1, 3, input_size, input_size))
    return found


@pytest.mark.parametrize("name, size", [
    ("shufflenet_v1_g1_0.5x", 64), ("shufflenet_v1_g3_1.0x", 64), ("shufflenet_v1_g8_0.25x_se", 64),
    ("shufflenet_v1_g2_1.5x_noshuffle", 64), ("shufflenet_v1_g4_0.5x", 57), ("shufflenet_v2_0.5x", 64),
    ("shufflenet_v2_1.0x", 57), ("mobilenet_v1_0.25x", 64), ("mobilenet_v1_0.75x", 45)])
def test_analytic_count_equals_forward_hooks(name, size):
    model = create_model(name, num_classes=10)
    c = count_complexity(name, size, num_classes=10)
    assert traced(model, size) == {l.name: (l.macs, l.params) for l in c.layers}
    assert c.params == sum(p.numel() for p in model.parameters())  # BN weight+bias, not running stats
