"""Any CNN's ONNX graph -> the static, plain graph the rest of the export expects (the front doors' common step).

Every front door (`.onnx`, `.pt2`, TorchScript, `--module`) ends here with one ONNX file. This module
- reads it and says in one line what it cannot take (not ONNX, truncated, not an image model, an op outside
  SUPPORTED, a size the graph leaves open without --input-size);
- fixes the input to batch 1 at the graph's own size (or --input-size where the graph leaves it open);
- folds what is constant with ONNX Runtime's *basic* level, which only uses standard ONNX ops: BatchNormalization
  into the convolution before it, Shape-computed slice bounds (torch's `chunk`) into constants, Identity and
  Dropout away; the graph keeps its opset;
- names the input "input" and the output "logits", as our own exports do.
The pattern lowering (lower.py `lower_foreign_onnx`) then works on the result.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..errors import UserError
from ..sizes import as_hw, canonical
from .onnx_export import INPUT_NAME, OUTPUT_NAME

# What the conversion (onnx2tf + the lowering) is known to take, after the basic folding above.
SUPPORTED = frozenset({
    "Conv", "BatchNormalization", "Relu", "Clip", "HardSwish", "HardSigmoid", "Sigmoid", "LeakyRelu", "PRelu",
    "Add", "Sum", "Mul", "Sub", "Div", "Concat", "MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool",
    "ReduceMean", "Flatten", "Reshape", "Transpose", "Gemm", "MatMul", "Split", "Slice", "Gather", "Squeeze",
    "Unsqueeze", "Identity", "Pad", "Softmax", "Dropout", "Constant",
})


@dataclass(frozen=True)
class GraphInput:
    """What the graph says about its input and output (read before anything is converted)."""
    channels: int
    input_size: int | tuple[int, int] | None  # None: the graph leaves it open
    opset: int


def read_model(path: Path):
    """onnx.load with one clear line for a file that is not a whole ONNX model."""
    import onnx

    path = Path(path)
    if not path.is_file():
        raise UserError(f"model file {path} does not exist", "check the path")
    try:
        model = onnx.load(str(path))
    except Exception as err:  # protobuf's DecodeError, onnx's own errors, ValueError on odd files
        raise UserError(f"{path} is not a readable ONNX model ({type(err).__name__}: {str(err).splitlines()[0][:100]}"
                        f"{'' if str(err) else 'truncated or damaged'})", "export it again, whole") from None
    if not model.graph.node:
        raise UserError(f"{path} is not a readable ONNX model (no graph: truncated, damaged or another format)",
                        "export it again, whole")
    try:
        onnx.checker.check_model(model)
    except Exception as err:
        raise UserError(f"{path} is not a valid ONNX model: {str(err).splitlines()[0][:160]}",
                        "export it again with torch.onnx.export or your framework's exporter") from None
    return model


def describe_input(model, path: Path) -> GraphInput:
    """The image input's channels and size (None where the graph leaves them open)."""
    inputs = _data_inputs(model)
    if len(inputs) != 1:
        raise UserError(f"{path} has {len(inputs)} inputs ({', '.join(i.name for i in inputs)}); sdeploy exports "
                        "image classifiers with one NCHW image input", "export the model with one input")
    value = inputs[0]
    dims = [d.dim_value if d.HasField("dim_value") else None for d in value.type.tensor_type.shape.dim]
    if len(dims) != 4 or value.type.tensor_type.elem_type != 1:  # 1 = FLOAT
        raise UserError(f"{path}'s input {value.name!r} is not a float NCHW image (shape {dims}); sdeploy exports "
                        "CNN image classifiers", "export the model with a (batch, channels, height, width) input")
    channels = dims[1]
    if channels not in (1, 3):
        raise UserError(f"{path}'s input {value.name!r} has {channels} channels; sdeploy takes 1 (grey) or 3 "
                        "(colour) channel images in NCHW order", "export the model with an NCHW image input")
    size = canonical((dims[2], dims[3])) if None not in dims[2:] else None
    if not any(n.op_type == "Conv" for n in model.graph.node):
        raise UserError(f"{path} has no convolution: it is not a CNN, and sdeploy exports CNNs",
                        "give a ShuffleNet or another CNN image classifier")
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    return GraphInput(channels=channels, input_size=size, opset=opset)


def normalize(model, path: Path, input_size, dst: Path) -> int:
    """Write the static, folded, renamed graph of MODEL (read from PATH) at INPUT_SIZE to DST; return classes."""
    import onnx

    _check_ops(model, path, stage="", domains_only=True)  # shape arithmetic (Shape, Cast, ...) folds away below
    value = _data_inputs(model)[0]
    height, width = as_hw(input_size)
    for dim, size in zip(value.type.tensor_type.shape.dim, (1, None, height, width)):
        if size is not None:
            dim.Clear()
            dim.dim_value = size
    for output in model.graph.output:  # sizes are re-inferred at the new input size
        for dim in output.type.tensor_type.shape.dim:
            if dim.HasField("dim_param") or dim.HasField("dim_value"):
                dim.Clear()
    del model.graph.value_info[:]
    folded = _fold_basic(model, path)
    _check_ops(folded, path, stage=" after folding")
    _rename(folded, value.name, INPUT_NAME, folded.graph.output[0].name, OUTPUT_NAME)
    inferred = onnx.shape_inference.infer_shapes(folded)
    out_dims = [d.dim_value for d in inferred.graph.output[0].type.tensor_type.shape.dim]
    if len(folded.graph.output) != 1 or not out_dims or 0 in out_dims or out_dims[0] != 1:
        raise UserError(f"{path} does not end in one logits output of a fixed size (found "
                        f"{len(folded.graph.output)} output(s), shape {out_dims})",
                        "export the classifier with one (batch, classes) output")
    classes = 1
    for d in out_dims[1:]:
        classes *= d
    onnx.save(folded, str(dst))
    return classes


def _data_inputs(model) -> list:
    inits = {i.name for i in model.graph.initializer}
    return [i for i in model.graph.input if i.name not in inits]


def _check_ops(model, path: Path, stage: str, domains_only: bool = False) -> None:
    for node in model.graph.node:
        if node.domain not in ("", "ai.onnx") or (node.op_type not in SUPPORTED and not domains_only):
            name = f"{node.domain}." if node.domain not in ("", "ai.onnx") else ""
            raise UserError(f"{path}: op {name}{node.op_type} (node {node.name or node.output[0]!r}){stage} is not "
                            f"supported; sdeploy converts {', '.join(sorted(SUPPORTED - {'Constant', 'Identity'}))}",
                            "replace that layer in the model, or export fp32 with onnx2tf directly")


def _fold_basic(model, path: Path):
    """ONNX Runtime's basic graph optimizations (constant folding, BN into conv), saved as plain ONNX."""
    import tempfile

    import onnx
    import onnxruntime as ort

    with tempfile.TemporaryDirectory(prefix="sdeploy-fold-") as tmp:
        out = Path(tmp) / "folded.onnx"
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
        options.optimized_model_filepath = str(out)
        options.log_severity_level = 3
        try:
            ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
        except Exception as err:  # ORT's own exception types (Fail, InvalidGraph, ...)
            raise UserError(f"{path} does not run in ONNX Runtime at this input size: {str(err).splitlines()[0][:200]}",
                            "check --input-size (the graph may fix it) and that the file is whole") from None
        folded = onnx.load(str(out))
    used = {n.domain or "" for n in folded.graph.node} | {""}
    keep = [o for o in folded.opset_import if (o.domain or "") in used or o.domain == "ai.onnx"]
    del folded.opset_import[:]
    folded.opset_import.extend(keep)
    return folded


def _rename(model, old_in: str, new_in: str, old_out: str, new_out: str) -> None:
    mapping = {old_in: new_in, old_out: new_out}
    taken = {o for n in model.graph.node for o in n.output} | {i.name for i in model.graph.initializer}
    for new in (new_in, new_out):  # a tensor that already has our name gets another
        if new in taken and new not in mapping:
            mapping[new] = f"{new}__user"
    for node in model.graph.node:
        for i, name in enumerate(node.input):
            node.input[i] = mapping.get(name, name)
        for i, name in enumerate(node.output):
            node.output[i] = mapping.get(name, name)
    for value in [*model.graph.input, *model.graph.output]:
        value.name = mapping.get(value.name, value.name)
