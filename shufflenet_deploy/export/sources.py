"""The front doors of `sdeploy export`: whatever the user's model is, one `Source`.

- a zoo name, our checkpoint, or a state_dict (checkpoints.py; one whose shapes fit one zoo entry needs no name);
- `model.onnx`: any ONNX image classifier the installed onnx reads;
- `model.pt2`: a `torch.export.save`d ExportedProgram;
- `model.pt` (or any name) holding TorchScript (`torch.jit.save`; told apart from a checkpoint by its archive's
  `code/` folder, so `--checkpoint`'s files keep working);
- `--module path/to/net.py:factory [--checkpoint weights.pth]`: the user's own Python builds the nn.Module (running
  their file is their choice); the weights load with `weights_only=True`.
A zoo model keeps its module-level lowering (lower.py); every other source becomes an ONNX graph (`write_onnx`)
that onnx_normalize.py normalizes and onnx_patterns.py lowers. Each is checked against its own source
(`reference`): PyTorch for a module, the TorchScript or ExportedProgram itself, ONNX Runtime on the user's file.
"""
from __future__ import annotations

import importlib.util
import sys
import warnings
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import UserError
from ..model_meta import ModelMeta
from ..sizes import as_hw, canonical

KINDS = ("zoo", "checkpoint", "onnx", "pt2", "torchscript", "module")
DEFAULT_SIZE = 224
# The preprocessing of a model whose file does not say: ImageNet's (torchvision's), stated in the manifest.
IMAGENET_GREY = ((0.449,), (0.226,))  # the mean of ImageNet's three channel statistics, for 1-channel models


@dataclass
class Source:
    kind: str                     # one of KINDS
    meta: ModelMeta | None        # None only while a foreign source is being opened (_finish sets it)
    path: Path | None = None      # the file the user gave (the module's file for --module)
    module: object | None = None  # a torch callable: zoo model, user nn.Module, TorchScript, ExportedProgram.module()
    onnx_model: object | None = None  # the user's ONNX graph
    notes: dict = field(default_factory=dict)  # what the manifest says about where the model came from
    trained: bool = True          # False only for a bare zoo name: random weights
    preprocessing_from: str | None = None  # where a foreign model's preprocessing came from (flags or a default)

    @property
    def zoo(self) -> bool:
        """Built by our zoo: lowered by module (lower.py); every other source is lowered by pattern."""
        return self.kind in ("zoo", "checkpoint")

    @property
    def reference_name(self) -> str:
        return {"onnx": "source onnx", "pt2": "exported program", "torchscript": "torchscript"}.get(self.kind,
                                                                                                    "pytorch")

    def reference(self, x_nchw: np.ndarray) -> np.ndarray:
        """The source's own logits for NCHW float inputs: every artifact's parity chain starts here."""
        from .verify import run_torch

        if self.kind == "onnx":
            return _run_onnx_model(self.onnx_model, x_nchw)
        if self.zoo:
            return run_torch(self.module, x_nchw)
        try:  # one image at a time: a program or a trace may be fixed to batch 1
            return run_torch(self.module, x_nchw, batch=1)
        except Exception as err:  # the user's model: any exception
            raise UserError(f"{self.path} fails on a {list(x_nchw.shape[1:])} input: {type(err).__name__}: "
                            f"{_first_line(err)}", "check --input-size and the model's expected input") from None

    def write_onnx(self, path: Path) -> None:
        """The source as an ONNX file (not yet normalized) at the export's input size."""
        import onnx

        if self.kind == "onnx":
            onnx.save(self.onnx_model, str(path))
            return
        import torch

        from .onnx_export import OPSET

        height, width = as_hw(self.meta.input_size)
        dummy = torch.zeros(1, self.meta.channels, height, width)
        module = self.module
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if self.kind == "pt2":  # the TorchScript exporter takes a traced copy of the program's module
                module = torch.jit.trace(module, (dummy,), check_trace=False)
            try:
                torch.onnx.export(module, (dummy,), str(path), dynamo=False, opset_version=OPSET,
                                  do_constant_folding=True)
            except Exception as err:  # the exporter raises many types for ops it cannot write
                raise UserError(f"{self.meta.model} cannot be written as ONNX: {_first_line(err)}",
                                "export it to ONNX yourself and pass the .onnx file") from None


def open_source(model: str | None, checkpoint: Path | None, *, module: str | None = None, input_size=None,
                preprocessing: dict | None = None, options: dict | None = None) -> Source:
    """MODEL (a zoo name or a model file), CHECKPOINT and MODULE (path.py:factory) -> a Source."""
    if module is not None:
        if model is not None:
            raise UserError("give either a model (a zoo name or a file) or --module, not both",
                            "drop the model argument: --module builds it")
        return _from_module(module, checkpoint, input_size, preprocessing)
    file = _model_file(model, checkpoint)
    if file is not None:
        kind = _file_kind(file)
        if kind == "onnx":
            return _from_onnx(file, input_size, preprocessing)
        if kind == "pt2":
            return _from_pt2(file, input_size, preprocessing)
        if kind == "torchscript":
            return _from_torchscript(file, input_size, preprocessing)
        model, checkpoint = (None, file) if model is not None and Path(model) == file else (model, checkpoint)
    return _from_zoo(model, checkpoint, input_size, options or {})


# -- which door ----------------------------------------------------------------------------------------------
def _model_file(model: str | None, checkpoint: Path | None) -> Path | None:
    """The model file given as MODEL or as --checkpoint (an .onnx/.pt2/TorchScript there is taken as the model)."""
    if model is not None:
        path = Path(model)
        looks_like_file = path.suffix.lower() in (".onnx", ".pt2", ".pt", ".pth", ".ts", ".jit") or "/" in model
        if path.is_file():
            if checkpoint is not None:
                raise UserError(f"{model} is a model file and --checkpoint {checkpoint} was also given",
                                "pass one of them (weights for your own module go with --module)")
            return path
        if path.is_dir():
            raise UserError(f"{model} is a folder, not a model file", "give the .onnx/.pt2/TorchScript file inside "
                            "it (an export folder is benchmarked with `sdeploy bench`, not exported again)")
        if looks_like_file:
            raise UserError(f"model file {model} does not exist", "check the path, or name a zoo model "
                            "(`sdeploy zoo` lists them)")
        return None
    if checkpoint is not None and Path(checkpoint).is_file() and _file_kind(Path(checkpoint)) != "checkpoint":
        return Path(checkpoint)
    return None


def _file_kind(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix == ".onnx":
        return "onnx"
    if suffix == ".pt2":
        return "pt2"
    if zipfile.is_zipfile(path):
        try:
            with zipfile.ZipFile(path) as archive:
                names = archive.namelist()
        except (zipfile.BadZipFile, OSError):
            return "checkpoint"  # torch.load then says what is wrong with it
        if any("/code/" in name for name in names):
            return "torchscript"
        if any(name.endswith("serialized_exported_program.json") or "/models/" in name for name in names):
            return "pt2"
    elif _looks_like_onnx(path):
        return "onnx"
    return "checkpoint"


def _looks_like_onnx(path: Path) -> bool:
    """An ONNX file under another suffix: a protobuf starting with ir_version (field 1, varint)."""
    try:
        with open(path, "rb") as f:
            head = f.read(2)
    except OSError:
        return False
    return len(head) == 2 and head[0] == 0x08 and 3 <= head[1] <= 12


# -- each door ------------------------------------------------------------------------------------------------
def _from_zoo(model: str | None, checkpoint: Path | None, input_size, options: dict) -> Source:
    from ..checkpoints import load_model

    if model is None and checkpoint is None:
        raise UserError("nothing to export", "name a zoo model (see `sdeploy zoo`), a model file (.onnx, .pt2, "
                        "TorchScript), --module path.py:factory, or --checkpoint")
    loaded = load_model(model, checkpoint, **options)
    meta = loaded.sdeploy_meta.with_input_size(input_size) if input_size else loaded.sdeploy_meta
    return Source("checkpoint" if checkpoint else "zoo", meta, path=Path(checkpoint) if checkpoint else None,
                  module=loaded, notes={"kind": "checkpoint" if checkpoint else "zoo"},
                  trained=checkpoint is not None)  # a zoo name alone has random weights


def _from_onnx(path: Path, input_size, preprocessing: dict | None) -> Source:
    from .onnx_normalize import describe_input, read_model

    graph = read_model(path)
    described = describe_input(graph, path)
    size = _size(path, described.input_size, input_size)
    source = Source("onnx", None, path=path, onnx_model=graph)
    return _finish(source, path.stem, described.channels, size, preprocessing,
                   {"opset": described.opset, "producer": graph.producer_name or None})


def _from_pt2(path: Path, input_size, preprocessing: dict | None) -> Source:
    import torch

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            program = torch.export.load(str(path))
    except Exception as err:  # torch raises many types for a damaged or foreign archive
        raise UserError(f"{path} is not a loadable torch.export program ({_first_line(err)})",
                        "save it with torch.export.save(torch.export.export(model, (example,)), path)") from None
    examples = [t for t in (program.example_inputs or ((), {}))[0] if isinstance(t, torch.Tensor)]
    if len(examples) != 1 or examples[0].dim() != 4:
        raise UserError(f"{path} takes {len(examples)} tensor input(s) "
                        f"{[list(t.shape) for t in examples]}; sdeploy exports one NCHW image input",
                        "export the program with one (1, C, H, W) example input")
    channels, *hw = examples[0].shape[1:]
    graph_size = canonical(tuple(int(v) for v in hw))
    size = _size(path, graph_size, input_size, fixed=False)
    source = Source("pt2", None, path=path, module=program.module())
    return _finish(source, path.stem, int(channels), size, preprocessing, {})


def _from_torchscript(path: Path, input_size, preprocessing: dict | None) -> Source:
    import torch

    try:
        scripted = torch.jit.load(str(path), map_location="cpu")
    except Exception as err:
        raise UserError(f"{path} is TorchScript that does not load ({_first_line(err)})",
                        "save it again with torch.jit.save(torch.jit.trace(model, example), path)") from None
    scripted.eval()
    channels = _first_conv_channels(scripted.named_parameters())
    source = Source("torchscript", None, path=path, module=scripted)
    return _finish(source, path.stem, channels, _size(path, None, input_size, fixed=False), preprocessing, {})


def _from_module(spec: str, checkpoint: Path | None, input_size, preprocessing: dict | None) -> Source:
    from torch import nn

    file, _, factory = spec.rpartition(":")
    if not file or not factory.isidentifier():
        raise UserError(f"--module {spec!r} is not path/to/file.py:factory", "e.g. --module nets/my_net.py:build")
    path = Path(file)
    if not path.is_file():
        raise UserError(f"--module file {path} does not exist", "check the path")
    name = f"sdeploy_user_module_{abs(hash(str(path.resolve())))}"
    try:
        spec_obj = importlib.util.spec_from_file_location(name, path)
        loaded = importlib.util.module_from_spec(spec_obj)
        sys.modules[name] = loaded  # dataclasses and pickling look modules up by name
        spec_obj.loader.exec_module(loaded)
    except Exception as err:  # the user's own code: any exception
        raise UserError(f"--module {path} failed to import: {type(err).__name__}: {_first_line(err)}",
                        "run the file with python to see the whole error") from None
    build = getattr(loaded, factory, None)
    if not callable(build):
        names = ", ".join(n for n, v in vars(loaded).items() if callable(v) and not n.startswith("_"))
        raise UserError(f"--module {path} has no callable {factory!r}", f"callables there: {names[:200]}")
    try:
        net = build()
    except Exception as err:
        raise UserError(f"--module {spec}: {factory}() raised {type(err).__name__}: {_first_line(err)}",
                        "the factory is called with no arguments; give it defaults") from None
    if not isinstance(net, nn.Module):
        raise UserError(f"--module {spec}: {factory}() returned a {type(net).__name__}, not a torch.nn.Module",
                        "return the model")
    if checkpoint is not None:
        _load_weights(net, Path(checkpoint))
    net.eval()
    channels = _first_conv_channels(net.named_parameters())
    source = Source("module", None, path=path, module=net)
    notes = {"factory": factory, "checkpoint": str(checkpoint) if checkpoint else None}
    generic = factory in ("build", "create", "model", "get_model", "make", "factory")
    return _finish(source, path.stem if generic else factory, channels, _size(path, None, input_size, fixed=False),
                   preprocessing, notes)


def _load_weights(net, checkpoint: Path) -> None:
    from ..checkpoints import read_state_dict

    state = read_state_dict(checkpoint)
    own = net.state_dict()
    missing = [k for k in own if k not in state and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in state if k not in own]
    shapes = [f"{k} {list(v.shape)} in the file vs {list(own[k].shape)}" for k, v in state.items()
              if k in own and v.shape != own[k].shape]
    if missing or unexpected or shapes:
        parts = [f"{len(items)} {what} ({', '.join(items[:3])}{', ...' if len(items) > 3 else ''})"
                 for what, items in (("missing keys", missing), ("unexpected keys", unexpected),
                                     ("shape mismatches", shapes)) if items]
        raise UserError(f"{checkpoint} does not fit the module: {'; '.join(parts)}",
                        "pass the weights saved from this module's state_dict()")
    net.load_state_dict(state, strict=False)


# -- shared ---------------------------------------------------------------------------------------------------
def _size(path: Path, graph_size, requested, *, fixed: bool = True):
    """The input size: the graph's where it fixes one (an ONNX graph cannot run at another), else --input-size,
    else the program's example size (pt2) or 224."""
    if requested is not None:
        requested = canonical(requested)
        if fixed and graph_size is not None and requested != graph_size:
            raise UserError(f"{path} fixes its input at {_size_text(graph_size)} px; --input-size "
                            f"{_size_text(requested)} differs", "drop --input-size, or export the model at that size")
        return requested
    return graph_size if graph_size is not None else (
        DEFAULT_SIZE if not fixed else _open_size(path))


def _open_size(path: Path):
    raise UserError(f"{path} leaves its input height and width open (dynamic shapes)",
                    "pass --input-size (e.g. --input-size 224 or 480,640)")


def _size_text(size) -> str:
    h, w = as_hw(size)
    return str(h) if h == w else f"{h}x{w}"


def _finish(source: Source, name: str, channels: int, size, preprocessing: dict | None, notes: dict) -> Source:
    from ..data.preprocess import Preprocessing

    if channels not in (1, 3):
        raise UserError(f"{source.path} takes {channels}-channel input; sdeploy exports 1 (grey) or 3 (colour) "
                        "channel image models", "export a model with an image input")
    given = {k: v for k, v in (preprocessing or {}).items() if v is not None}
    defaults = {} if channels == 3 else {"mean": IMAGENET_GREY[0], "std": IMAGENET_GREY[1]}
    try:
        pre = Preprocessing.imagenet(size)
        pre = Preprocessing(**{**pre.to_dict(), "input_size": size, **defaults, **given, "channels": channels})
    except (TypeError, ValueError) as err:
        raise UserError(f"preprocessing: {err}", "e.g. --mean 0.485,0.456,0.406 --std 0.229,0.224,0.225") from None
    said = sorted(k for k in ("mean", "std", "scale", "channel_order") if k in given)
    source.preprocessing_from = ("flags: " + ", ".join(said)) + ("; the rest ImageNet's default" if len(said) < 4
                                                                 else "") \
        if said else "ImageNet's default (no --mean/--std/--scale/--channel-order given)"
    logits = source.reference(np.zeros((1, channels, *as_hw(size)), np.float32))
    if logits.ndim < 2 or logits.shape[0] != 1 or not np.isfinite(logits).all():
        raise UserError(f"{source.path}: the model's output on one image has shape {list(logits.shape)}; sdeploy "
                        "exports classifiers with one (batch, classes) output", "export the classifier's logits")
    source.meta = ModelMeta(name, pre, num_classes=int(np.prod(logits.shape[1:])))
    source.notes = {"kind": source.kind, "file": str(source.path), **notes}
    return source


def _first_conv_channels(named_parameters) -> int:
    for _, value in named_parameters:
        if value.dim() == 4:
            return int(value.shape[1])
    raise UserError("the model has no convolution weights: sdeploy exports CNNs", "give a CNN image classifier")


def _run_onnx_model(model, x_nchw: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    try:
        session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
        name = session.get_inputs()[0].name
        return np.concatenate([session.run(None, {name: x_nchw[i: i + 1]})[0] for i in range(len(x_nchw))])
    except Exception as err:  # ORT's own exception types
        raise UserError(f"the ONNX model does not run in ONNX Runtime: {_first_line(err)}",
                        "check --input-size and that the file is whole") from None


def _first_line(err: Exception) -> str:
    text = str(err).strip().splitlines()
    return (text[0] if text else type(err).__name__)[:200]
