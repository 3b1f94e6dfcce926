"""Multiply-adds counted from an ONNX graph: the MACs of any model, not only the zoo's.

The same convention as complexity.py (the ShuffleNet papers'): a convolution costs
H_out * W_out * C_out * (C_in / groups) * kh * kw, a fully connected layer C_in * C_out; BN, activations,
pooling, the shuffle, add and concat cost nothing. A 1x1 convolution on a 1x1 map (an SE branch or a conv
classifier written as a conv) is a fully connected layer, whichever op wrote it, so `conv` (convolutions only,
ShuffleNet v1's Table 1) and `total` (convolutions + every FC) mean the same here as there. Shapes come from
ONNX shape inference, or, where it stops (torch's `chunk` computes its slice bounds at run time) and the input
size is fixed, from one ONNX Runtime inference; a size the graph leaves open is a UserError naming the node.
"""
from __future__ import annotations

from dataclasses import dataclass
from math import prod
from pathlib import Path

from ..errors import UserError


@dataclass(frozen=True)
class GraphMacs:
    conv: int   # convolutions on a spatial map (grouped and depthwise included)
    fc: int     # Gemm/MatMul, and 1x1 convolutions on a 1x1 map

    @property
    def total(self) -> int:
        return self.conv + self.fc


def count_macs(model) -> GraphMacs:
    """MACs of MODEL (an onnx.ModelProto or a path to one), batch 1."""
    import onnx

    if not isinstance(model, onnx.ModelProto):
        model = onnx.load(str(Path(model)))
    model = onnx.shape_inference.infer_shapes(model, data_prop=True)  # data_prop: sizes computed by Shape ops
    shapes = _shapes(model)
    if _open(model, shapes) and _static_inputs(model, shapes):
        shapes.update(_runtime_shapes(model))  # e.g. torch's chunk computes its slice bounds with Div
    conv = fc = 0
    for node in model.graph.node:
        if node.op_type == "Conv":
            macs, is_fc = _conv(node, shapes)
            fc, conv = (fc + macs, conv) if is_fc else (fc, conv + macs)
        elif node.op_type in ("Gemm", "MatMul"):
            fc += _matmul(node, shapes)
    return GraphMacs(conv=conv, fc=fc)


def _shapes(model) -> dict[str, tuple]:
    """{tensor name: shape} for every tensor shape inference (or an initializer) fixed; unknown dims are None."""
    out: dict[str, tuple] = {}
    graph = model.graph
    for value in [*graph.input, *graph.value_info, *graph.output]:
        dims = value.type.tensor_type.shape.dim
        out[value.name] = tuple(d.dim_value if d.HasField("dim_value") else None for d in dims)
    for init in graph.initializer:
        out[init.name] = tuple(init.dims)
    return out


def _open(model, shapes: dict) -> bool:
    """True when a tensor a MAC count reads has a shape inference left open."""
    needed = [name for node in model.graph.node if node.op_type in ("Conv", "Gemm", "MatMul")
              for name in (node.input[0], node.output[0])]
    return any(shapes.get(name) is None or None in shapes[name][1:] for name in needed)


def _static_inputs(model, shapes: dict) -> bool:
    inits = {init.name for init in model.graph.initializer}
    return all(None not in shapes[value.name][1:] for value in model.graph.input if value.name not in inits)


def _runtime_shapes(model) -> dict[str, tuple]:
    """{tensor name: shape} of every node output, from one ONNX Runtime inference on zeros (batch 1)."""
    import numpy as np
    import onnx
    import onnxruntime as ort

    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    known = {value.name for value in probe.graph.output}
    names = [o for node in probe.graph.node for o in node.output if o and o not in known]
    probe.graph.output.extend(onnx.helper.make_empty_tensor_value_info(name) for name in names)
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL  # keep every tensor
    options.log_severity_level = 3
    session = ort.InferenceSession(probe.SerializeToString(), options, providers=["CPUExecutionProvider"])
    feeds = {i.name: np.zeros([d if isinstance(d, int) else 1 for d in i.shape],
                              dtype=np.float32 if "float" in i.type else np.int64) for i in session.get_inputs()}
    outputs = session.run(None, feeds)
    return {o.name: tuple(v.shape) for o, v in zip(session.get_outputs(), outputs)}


def _known(node, shapes: dict, name: str) -> tuple[int, ...]:
    shape = shapes.get(name)
    if shape is None or any(d is None for d in shape[1:]):
        raise UserError(f"cannot count the MACs of {node.op_type} node {node.name or name!r}: the graph leaves "
                        f"the shape of {name!r} open ({shape})", "export at a fixed input size (--input-size)")
    return tuple(1 if d is None else d for d in shape)  # an open batch dimension counts as 1


def _conv(node, shapes: dict) -> tuple[int, bool]:
    x, w, y = (_known(node, shapes, n) for n in (node.input[0], node.input[1], node.output[0]))
    c_out, c_in_per_group, *kernel = w
    spatial_out = prod(y[2:])
    macs = spatial_out * c_out * c_in_per_group * prod(kernel)
    return macs, prod(x[2:]) == 1 and prod(kernel) == 1


def _matmul(node, shapes: dict) -> int:
    a, y = _known(node, shapes, node.input[0]), _known(node, shapes, node.output[0])
    trans_a = next((attr.i for attr in node.attribute if attr.name == "transA"), 0) if node.op_type == "Gemm" else 0
    inner = a[0] if trans_a else a[-1]
    return prod(y) * inner


def count_params(model) -> int:
    """Weights and biases of the convolutions and fully connected layers (BatchNorm folded into them)."""
    import onnx

    if not isinstance(model, onnx.ModelProto):
        model = onnx.load(str(Path(model)))
    sizes = {init.name: prod(init.dims) for init in model.graph.initializer}
    used = {name for node in model.graph.node if node.op_type in ("Conv", "Gemm", "MatMul")
            for name in node.input[1:] if name in sizes}
    return int(sum(sizes[name] for name in used))
