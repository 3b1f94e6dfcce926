"""The zoo: names, errors, the paper's ShuffleNet v1 structure, and a forward pass of every entry."""
from __future__ import annotations

import subprocess
import sys

import pytest
import torch
from torch import nn

from helpers import FIXTURES
from shufflenet_deploy.complexity import count_complexity
from shufflenet_deploy.errors import UserError
from shufflenet_deploy.zoo import configs
from shufflenet_deploy.zoo.layers import ChannelShuffle
from shufflenet_deploy.zoo.registry import create_model, get_spec, list_models




MEGVII_LISTS = {  # official ShuffleNetV1 network.py: [stem, stage2, stage3, stage4]
    (3, 0.5): [12, 120, 240, 480], (3, 1.0): [24, 240, 480, 960],
    (3, 1.5): [24, 360, 720, 1440], (3, 2.0): [48, 480, 960, 1920],
    (8, 0.5): [16, 192, 384, 768], (8, 1.0): [24, 384, 768, 1536],
    (8, 1.5): [24, 576, 1152, 2304], (8, 2.0): [48, 768, 1536, 3072],
}


def test_registry_and_complexity_do_not_import_torch():
    code = ("import sys, shufflenet_deploy.zoo.registry, shufflenet_deploy.complexity, shufflenet_deploy.cli.zoo\n"
            "from shufflenet_deploy.complexity import count_complexity\n"
            "count_complexity('shufflenet_v1_g3_1.0x')\n"
            "assert 'torch' not in sys.modules, 'torch was imported'")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_names_and_families():
    names = list_models()
    assert len(names) == len(set(names)) == 25 + 20 + 25 + 4 + 4
    assert {"shufflenet_v1_g3_1.0x", "shufflenet_v1_g8_0.5x", "shufflenet_v1_g3_1.0x_noshuffle",
            "shufflenet_v1_g3_2.0x_se", "shufflenet_v2_1.0x", "mobilenet_v1_0.75x"} <= set(names)
    assert list_models("shufflenet_v1_g3_*x") == [f"shufflenet_v1_g3_{w}x" for w in configs.V1_WIDTHS]
    assert list_models("mobilenet*") == ["mobilenet_v1_1.0x", "mobilenet_v1_0.75x", "mobilenet_v1_0.5x",
                                         "mobilenet_v1_0.25x"]
    assert {get_spec(n).family for n in names} == {"shufflenet_v1", "shufflenet_v2", "mobilenet_v1"}


def test_spec_fields():
    spec = get_spec("shufflenet_v1_g3_1.0x")
    assert spec.options == {"groups": 3, "width": 1.0, "shuffle": "paper", "se": False}
    assert (spec.paper_macs_m, spec.paper_convention) == (137, "conv")
    assert get_spec("shufflenet_v1_g3_2.0x").paper_convention == "conv+fc"
    assert get_spec("shufflenet_v1_g2_0.25x").paper_macs_m is None
    assert get_spec("shufflenet_v1_g3_1.0x_noshuffle").options["shuffle"] == "none"
    prep = spec.default_preprocessing()
    assert (prep.channel_order, prep.mean, prep.input_size) == ("RGB", (0.485, 0.456, 0.406), 224)


@pytest.mark.parametrize("name, expected", [
    ("shufflenet_v1_g3_1.0", "did you mean shufflenet_v1_g3_1.0x"),
    ("shufflenet_v1_g5_1.0x", "groups are 1, 2, 3, 4, 8"),
    ("shufflenet_v1_g3_0.3x", "widths are 0.25x, 0.5x, 1.0x, 1.5x, 2.0x"),
    ("shufflenet_v1_g1_1.0x_noshuffle", "g=1 has no shuffle"),
    ("shufflenet_v2_0.75x", "widths are 0.5x, 1.0x, 1.5x, 2.0x"),
    ("mobilenet_v1_2.0x", "widths are 1.0x, 0.75x, 0.5x, 0.25x"),
    ("mobilnet_v1_1.0x", "did you mean mobilenet_v1_1.0x"),
])
def test_unknown_names_explain_themselves(name, expected):
    with pytest.raises(UserError) as err:
        get_spec(name)
    assert expected in err.value.one_line() and name in err.value.one_line()


def test_bad_options_are_user_errors():
    with pytest.raises(UserError, match="shuffle"):
        create_model("shufflenet_v1_g3_1.0x", shuffle="sideways")
    with pytest.raises(UserError, match="has no option dropout"):
        create_model("mobilenet_v1_1.0x", dropout=0.2)


@pytest.mark.parametrize("groups, width", sorted(MEGVII_LISTS))
def test_width_rule_reproduces_megvii_lists(groups, width):
    cfg = configs.shufflenet_v1_config(groups, width)
    assert [cfg.stem, *cfg.channels] == MEGVII_LISTS[groups, width]


@pytest.mark.parametrize("groups", configs.V1_GROUPS)
@pytest.mark.parametrize("width", configs.V1_WIDTHS)
def test_every_v1_channel_count_splits_into_groups(groups, width):
    cfg = configs.shufflenet_v1_config(groups, width)
    assert all(c % (4 * groups) == 0 for c in cfg.channels)  # bottleneck out/4 divisible by g
    assert cfg.stem % groups == 0  # the stride-2 branch's out - in as well
    if width == 1.0:
        assert cfg.channels[0] == configs.V1_STAGE2_1X[groups]


def test_v1_structure_follows_the_paper():
    model = create_model("shufflenet_v1_g3_1.0x")
    first, second = model.features[0], model.features[1]
    assert first.branch_main_1[0].groups == 1  # Stage2's first 1x1 conv is not grouped
    assert second.branch_main_1[0].groups == 3
    assert first.branch_main_2[0].out_channels == 240 - 24  # concatenated with the avg-pool shortcut
    assert isinstance(first.branch_proj, nn.AvgPool2d)
    assert [type(m) for m in first.branch_main_1] == [nn.Conv2d, nn.BatchNorm2d, nn.ReLU, nn.Conv2d,
                                                      nn.BatchNorm2d]  # no ReLU after the depthwise
    assert all(m.bias is None for m in model.modules() if isinstance(m, nn.Conv2d))
    assert model.classifier[0].bias is None
    assert len(model.features) == 16


def test_official_state_dict_keys():
    import json

    path = FIXTURES / "megvii_shufflenetv1_g3_1.0x_state_dict.json"
    official = json.loads(path.read_text())
    ours = {k: list(v.shape) for k, v in create_model("shufflenet_v1_g3_1.0x", shuffle="megvii").state_dict().items()}
    assert ours == {k: shape for k, shape in official}
    assert ours.keys() == create_model("shufflenet_v1_g3_1.0x").state_dict().keys()  # same names under "paper"


def test_shuffle_conventions_are_inverse_permutations():
    x = torch.arange(12.0).reshape(1, 12, 1, 1)
    paper, megvii = ChannelShuffle(3, "paper"), ChannelShuffle(3, "megvii")
    assert paper(x).flatten().tolist() == [0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11]
    assert torch.equal(megvii(paper(x)), x) and not torch.equal(megvii(x), paper(x))
    square = torch.arange(9.0).reshape(1, 9, 1, 1)  # C/g == g: the two coincide
    assert torch.equal(ChannelShuffle(3, "paper")(square), ChannelShuffle(3, "megvii")(square))


def test_noshuffle_has_no_shuffle_and_same_weights():
    plain = create_model("shufflenet_v1_g3_0.5x_noshuffle")
    assert not any(isinstance(m, ChannelShuffle) for m in plain.modules())
    assert sum(isinstance(m, ChannelShuffle) for m in create_model("shufflenet_v1_g3_0.5x").modules()) == 16
    assert plain.state_dict().keys() == create_model("shufflenet_v1_g3_0.5x").state_dict().keys()


@pytest.mark.parametrize("size", [64, 224])
def test_any_input_size(size):
    model = create_model("shufflenet_v1_g3_1.0x", num_classes=5).eval()
    with torch.no_grad():
        assert model(torch.randn(1, 3, size, size)).shape == (1, 5)


@pytest.mark.parametrize("name", list_models())
def test_every_entry_runs_and_matches_its_param_count(name):
    torch.manual_seed(0)
    model = create_model(name, num_classes=7).eval()
    with torch.no_grad():
        out = model(torch.randn(2, 3, 32, 32))
    assert out.shape == (2, 7) and torch.isfinite(out).all()
    assert sum(p.numel() for p in model.parameters()) == count_complexity(name, 32, num_classes=7).params
