"""`sdeploy export` of models sdeploy did not build: ShuffleNets written in other codebases' styles
(tests/fixtures/styles/), each through the front doors a user has (.onnx, .pt2, TorchScript, --module), and the
pattern lowering that makes their graphs what XNNPACK runs well. Bad model files get one line and exit 2."""
from __future__ import annotations

import importlib.util
import warnings
import zipfile
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from helpers import REPO, assert_one_line_error, run_sdeploy

torch = pytest.importorskip("torch")
pytest.importorskip("onnx2tf")

STYLES = REPO / "tests" / "fixtures" / "styles"
V2 = ["torchvision_v2", "megvii_v2", "cifar_v2", "grey_v2"]
V1 = ["megvii_v1", "cifar_v1", "gather_v1", "reshape4d_v1"]
OTHER = ["mobilenet_v2"]
MOVEMENT_OPS = {"GATHER", "SLICE", "STRIDED_SLICE", "SPLIT", "SPLIT_V"}  # none of them in a lowered zoo graph
HARDSWISH = {"reshape4d_v1"}  # XNNPACK takes HARD_SWISH in fp32 only: int8's is rewritten (tflite_rewrite.py)


def load_style(name: str):
    spec = importlib.util.spec_from_file_location(f"style_{name}", STYLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def trained_like(net, seed: int = 0):
    """Random BatchNorm statistics and affine terms: folding BN must matter for the numbers to match."""
    g = torch.Generator().manual_seed(seed)
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            n = m.num_features
            m.running_mean.copy_(torch.rand(n, generator=g) - 0.5)
            m.running_var.copy_(torch.rand(n, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(n, generator=g) + 0.5)
            m.bias.data.copy_(torch.rand(n, generator=g) - 0.5)
    return net.eval()


def hook_macs(net, shape) -> int:
    """conv + FC MACs counted on the PyTorch module by forward hooks: an independent check of graph_macs."""
    total = 0

    def conv(m, inputs, out):
        nonlocal total
        total += out.numel() * (m.in_channels // m.groups) * m.kernel_size[0] * m.kernel_size[1]

    def linear(m, inputs, out):
        nonlocal total
        total += m.in_features * m.out_features

    hooks = [m.register_forward_hook(conv if isinstance(m, torch.nn.Conv2d) else linear)
             for m in net.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    with torch.no_grad():
        net(torch.zeros(1, *shape))
    for h in hooks:
        h.remove()
    return total


class Forms:
    """One style's model written in every form a user could hand us."""

    def __init__(self, name: str, folder: Path):
        self.name, self.folder = name, folder
        module = load_style(name)
        self.shape = module.INPUT
        self.net = trained_like(module.build())
        x = torch.zeros(1, *self.shape)
        folder.mkdir(parents=True, exist_ok=True)
        self.weights = folder / "weights.pth"
        torch.save(self.net.state_dict(), self.weights)
        self.onnx = folder / f"{name}.onnx"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(self.net, (x,), str(self.onnx), dynamo=False, opset_version=17)
            self.pt2 = folder / f"{name}.pt2"
            torch.export.save(torch.export.export(self.net, (x,)), self.pt2)
            self.torchscript = folder / f"{name}.pt"
            torch.jit.save(torch.jit.trace(self.net, x), self.torchscript)
        self.module = f"{STYLES / name}.py:build"

    @property
    def size_arg(self) -> str:
        return f"{self.shape[1]},{self.shape[2]}"


@pytest.fixture(scope="module")
def forms(tmp_path_factory):
    root = tmp_path_factory.mktemp("styles")
    made: dict[str, Forms] = {}

    def get(name: str) -> Forms:
        if name not in made:
            made[name] = Forms(name, root / name)
        return made[name]
    return get


@pytest.fixture(scope="module")
def calib():
    """A real image folder (the digits set) big enough for every style's input size."""
    from shufflenet_deploy.data.digits import ensure_digits

    return ensure_digits(96) / "calib"


@pytest.fixture(scope="module")
def worker():
    from shufflenet_deploy.export.tflite_convert import shared_worker

    with shared_worker() as w:
        yield w


def export(tmp_path, worker, **request):
    from shufflenet_deploy.export.pipeline import ExportRequest, export as run_export

    return run_export(ExportRequest(outdir=tmp_path / "out", **request)).data


def tflite_ops(manifest: dict, precision: str) -> Counter:
    return Counter(manifest["artifacts"][precision]["ops"])


# -- the pattern lowering, on the ONNX graph (no conversion: fast) ------------------------------------------
@pytest.mark.parametrize("style", V2 + V1 + OTHER)
def test_pattern_lowering_keeps_the_numbers_and_leaves_no_channel_plumbing(style, forms, tmp_path):
    import onnx
    import onnxruntime as ort

    from shufflenet_deploy.export import onnx_normalize, onnx_patterns

    f = forms(style)
    lowered = tmp_path / "lowered.onnx"
    onnx_normalize.normalize(onnx_normalize.read_model(f.onnx), f.onnx, (f.shape[1], f.shape[2]), lowered)
    report = onnx_patterns.lower_foreign_onnx(lowered)
    x = np.random.default_rng(1).standard_normal((2, *f.shape)).astype(np.float32)
    session = ort.InferenceSession(str(lowered), providers=["CPUExecutionProvider"])
    got = np.concatenate([session.run(None, {"input": x[i:i + 1]})[0] for i in range(2)])
    with torch.no_grad():
        want = f.net(torch.from_numpy(x)).numpy()
    assert np.abs(got - want).max() <= 1e-4 * max(1.0, np.abs(want).max())
    ops = Counter(n.op_type for n in onnx.load(str(lowered)).graph.node)
    assert not ops.keys() & {"Slice", "Split", "Transpose", "BatchNormalization", "AveragePool"}, ops
    regions = report["channel_regions"]
    if style in V2:  # every split, concat and shuffle folded into the convolutions
        assert regions["folded"] == regions["regions"] >= 2 and "Gather" not in ops, report
    elif style in V1:  # each shuffle one canonical Gather (tflite_rewrite turns it into two transposes)
        assert regions["folded"] == 0 and ops["Gather"] >= 3, report
    else:
        assert regions["regions"] == 0 and "Gather" not in ops


@pytest.mark.parametrize("door", ["pt2", "torchscript", "module"])
@pytest.mark.parametrize("style", V2 + V1 + OTHER)
def test_every_door_gives_every_style_the_same_lowered_graph_as_its_onnx(door, style, forms, tmp_path):
    """Each door's ONNX (sources.py write_onnx), normalized and lowered, is the ONNX door's graph, op for op, with
    the same MACs and numbers: the conversions tested on a subset below hold for every door and style."""
    import onnx

    from shufflenet_deploy.export import onnx_normalize, onnx_patterns
    from shufflenet_deploy.export.graph_macs import count_macs
    from shufflenet_deploy.export.sources import open_source

    f = forms(style)
    size = (f.shape[1], f.shape[2])
    given = {"pt2": {"model": str(f.pt2)}, "torchscript": {"model": str(f.torchscript), "input_size": size},
             "module": {"model": None, "module": f.module, "checkpoint": f.weights, "input_size": size}}[door]
    source = open_source(given.pop("model"), given.pop("checkpoint", None), **given)
    x = np.random.default_rng(2).standard_normal((2, *f.shape)).astype(np.float32)
    with torch.no_grad():
        assert np.abs(source.reference(x) - f.net(torch.from_numpy(x)).numpy()).max() < 1e-4

    def lowered(path: Path, out: Path) -> Counter:
        onnx_normalize.normalize(onnx_normalize.read_model(path), path, size, out)
        macs = count_macs(out)
        onnx_patterns.lower_foreign_onnx(out)
        return Counter(n.op_type for n in onnx.load(str(out)).graph.node), macs
    written = tmp_path / "door.onnx"
    source.write_onnx(written)
    assert lowered(written, tmp_path / "a.onnx") == lowered(f.onnx, tmp_path / "b.onnx")


@pytest.mark.parametrize("style,opset", [("megvii_v2", 11), ("cifar_v2", 13), ("megvii_v1", 13)])
def test_older_opsets_fold_the_same(style, opset, forms, tmp_path):
    """Split's sizes, Squeeze's axes and Slice's bounds moved from attributes to inputs over opsets 11-18."""
    import onnx

    from shufflenet_deploy.export import onnx_normalize, onnx_patterns

    f = forms(style)
    old, lowered = tmp_path / "old.onnx", tmp_path / "lowered.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(f.net, (torch.zeros(1, *f.shape),), str(old), dynamo=False, opset_version=opset)
    onnx_normalize.normalize(onnx_normalize.read_model(old), old, (f.shape[1], f.shape[2]), lowered)
    regions = onnx_patterns.lower_foreign_onnx(lowered)["channel_regions"]
    ops = Counter(n.op_type for n in onnx.load(str(lowered)).graph.node)
    assert regions["regions"] >= 2 and not ops.keys() & {"Slice", "Split", "Transpose"}, (regions, ops)


@pytest.mark.parametrize("zoo", ["shufflenet_v2_0.5x", "shufflenet_v1_g3_0.5x"])
def test_pattern_lowering_of_a_plain_zoo_graph_equals_the_zoo_lowering(zoo, tmp_path):
    """The graph-level fold of torch's plain export gives the op counts of lower.py's module-level lowering."""
    import onnx

    from shufflenet_deploy.checkpoints import load_model
    from shufflenet_deploy.export import lower, onnx_export, onnx_normalize, onnx_patterns

    model = load_model(zoo)
    plain, by_module, by_pattern = (tmp_path / f"{n}.onnx" for n in ("plain", "module", "pattern"))
    onnx_export.export_onnx(model, 64, plain)
    onnx_export.export_onnx(lower.lower_torch(model, 64)[0], 64, by_module)
    lower.lower_onnx(by_module)
    onnx_normalize.normalize(onnx_normalize.read_model(plain), plain, 64, by_pattern)
    onnx_patterns.lower_foreign_onnx(by_pattern)

    def histogram(path):
        return Counter(n.op_type for n in onnx.load(str(path)).graph.node if n.op_type not in ("Identity", "Constant"))
    assert histogram(by_pattern) == histogram(by_module)


# -- whole exports ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("style", V2 + V1 + OTHER)
def test_every_style_exports_from_onnx_lowered_with_int8(style, forms, calib, worker, tmp_path):
    f = forms(style)
    manifest = export(tmp_path, worker, model=str(f.onnx), calib=calib, precisions=("fp32", "int8"),
                      int8_target="none")
    for precision in ("fp32", "int8"):
        art = manifest["artifacts"][precision]
        assert art["parity"]["passed"] and art["xnnpack"]["partitions"] == 1, (precision, art["xnnpack"])
        if style in HARDSWISH:
            assert ("HARD_SWISH" in art["ops"]) == (precision == "fp32"), art["ops"]
        ops = tflite_ops(manifest, precision)
        assert not ops.keys() & MOVEMENT_OPS, ops
        if style in V2 + OTHER:
            assert "TRANSPOSE" not in ops, ops
        else:  # the two-transpose shuffle, as in the zoo's v1
            assert ops["TRANSPOSE"] == 2 * load_shuffles(manifest), ops
    assert manifest["macs"]["total"] == hook_macs(f.net, f.shape)
    assert manifest["source"]["kind"] == "onnx" and manifest["artifacts"]["onnx"]["parity"]["reference"] == "source onnx"
    assert manifest["preprocessing"].get("channels", 3) == f.shape[0]
    assert "ImageNet" in manifest["preprocessing_from"]


def load_shuffles(manifest: dict) -> int:
    return manifest["artifacts"]["onnx"]["ops"].get("Gather", 0)


@pytest.mark.parametrize("door,style", [("pt2", "torchvision_v2"), ("pt2", "megvii_v1"), ("pt2", "grey_v2"),
                                        ("torchscript", "cifar_v2"), ("torchscript", "gather_v1"),
                                        ("module", "megvii_v2"), ("module", "reshape4d_v1")])
def test_each_front_door_exports_with_parity_against_its_own_source(door, style, forms, worker, tmp_path):
    f = forms(style)
    if door == "module":
        request = {"module": f.module, "checkpoint": f.weights}
    else:
        request = {"model": str(f.pt2 if door == "pt2" else f.torchscript)}
    size = None if door == "pt2" else (f.shape[1], f.shape[2])  # a program carries its example's size
    manifest = export(tmp_path, worker, **request, input_size=size, precisions=("fp32",))
    assert manifest["source"]["kind"] == door
    onnx_art, fp32 = manifest["artifacts"]["onnx"], manifest["artifacts"]["fp32"]
    assert onnx_art["parity"]["passed"] and onnx_art["parity"]["max_abs"] < 1e-4
    assert onnx_art["parity"]["reference"] == {"pt2": "exported program", "torchscript": "torchscript",
                                               "module": "pytorch"}[door]
    assert fp32["xnnpack"]["partitions"] == 1 and fp32["parity"]["passed"]
    assert manifest["input_size"] in (list(f.shape[1:]), f.shape[1]) and manifest["macs"]["total"] == \
        hook_macs(f.net, f.shape)


def test_module_door_from_the_command_line_loads_weights_and_says_it_runs_user_code(forms, tmp_path):
    f = forms("megvii_v2")
    done = run_sdeploy("export", "--help")
    assert "--module" in done.stdout and "RUNS that" in " ".join(done.stdout.split())
    out = tmp_path / "exp"
    done = run_sdeploy("export", "--module", f.module, "--checkpoint", f.weights, "--input-size", f.size_arg,
                       "--precision", "fp32", "--mean", "0.5,0.5,0.5", "--std", "0.25,0.25,0.25", "-o", out)
    assert done.returncode == 0, done.stderr[-2000:]
    import json

    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["preprocessing"]["mean"] == [0.5, 0.5, 0.5] and "mean" in manifest["preprocessing_from"]
    assert manifest["source"]["checkpoint"] == str(f.weights)
    bad = run_sdeploy("export", "--module", f.module, "--checkpoint", forms("cifar_v2").weights, "-o", tmp_path / "x")
    assert_one_line_error(bad, "does not fit the module")
    assert not (tmp_path / "x").exists()


def test_a_bare_torchvision_layout_state_dict_names_its_zoo_entry(tmp_path):
    from shufflenet_deploy.checkpoints import load_checkpoint
    from shufflenet_deploy.zoo.registry import create_model

    path = tmp_path / "v2.pth"
    torch.save(create_model("shufflenet_v2_1.0x", num_classes=10).state_dict(), path)
    model, meta = load_checkpoint(path)
    assert meta.model == "shufflenet_v2_1.0x" and meta.num_classes == 10


# -- what it cannot take ---------------------------------------------------------------------------------------
def _mlp_onnx(path: Path) -> None:
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(48, 10))
    torch.onnx.export(net, (torch.zeros(1, 3, 4, 4),), str(path), dynamo=False, opset_version=17)


def _gelu_onnx(path: Path) -> None:
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.GELU(), torch.nn.AdaptiveAvgPool2d(1),
                              torch.nn.Flatten(), torch.nn.Linear(8, 4))
    torch.onnx.export(net, (torch.zeros(1, 3, 32, 32),), str(path), dynamo=False, opset_version=17)


def _dynamic_onnx(path: Path) -> None:
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten())
    torch.onnx.export(net, (torch.zeros(1, 3, 32, 32),), str(path), dynamo=False, opset_version=17,
                      input_names=["x"], dynamic_axes={"x": {0: "b", 2: "h", 3: "w"}})


def _broken_torchscript(path: Path) -> None:
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("model/code/__torch__.py", "def forward(self, x):\n    return nonsense(\n")
        archive.writestr("model/data.pkl", b"not a pickle")


def _truncated_onnx(path: Path, forms) -> None:
    data = forms("torchvision_v2").onnx.read_bytes()
    path.write_bytes(data[: len(data) // 3])


@pytest.mark.parametrize("case,needles", [
    ("truncated.onnx", ("is not a readable ONNX model",)),
    ("mlp.onnx", ("no convolution", "not a CNN")),
    ("gelu.onnx", ("op Erf", "is not supported")),
    ("dynamic.onnx", ("leaves its input height and width open", "--input-size")),
    ("broken.pt", ("TorchScript that does not load",)),
    ("a_folder", ("is a folder, not a model file",)),
])
def test_a_model_file_it_cannot_take_gets_one_line_and_nothing_on_disk(case, needles, forms, tmp_path):
    path = tmp_path / case
    {"truncated.onnx": lambda: _truncated_onnx(path, forms), "mlp.onnx": lambda: _mlp_onnx(path),
     "gelu.onnx": lambda: _gelu_onnx(path), "dynamic.onnx": lambda: _dynamic_onnx(path),
     "broken.pt": lambda: _broken_torchscript(path), "a_folder": path.mkdir}[case]()
    out = tmp_path / "out"
    assert_one_line_error(run_sdeploy("export", path, "--precision", "fp32", "-o", out), *needles)
    assert sorted(p.name for p in tmp_path.iterdir()) == [case]
