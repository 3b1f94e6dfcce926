"""The ops of a .tflite file with their shapes, cost features and op-type group; the same groups for complexity.py.

Groups (the report's vocabulary, the same on the FLOPs side and the time side):

    grouped_conv    1x1 (or kxk) convolution with 1 < groups < channels
    depthwise_conv  groups == input channels (onnx2tf emits these as CONV_2D with a [C,k,k,1] filter, not
                    DEPTHWISE_CONV_2D)
    dense_conv      ungrouped convolution (1x1 or 3x3) and FULLY_CONNECTED
    shuffle         channel-shuffle data movement: TRANSPOSE / RESHAPE / GATHER
    pooling         MAX/AVERAGE_POOL_2D, MEAN (global average pool)
    concat_add      CONCATENATION, ADD
    quant           QUANTIZE / DEQUANTIZE
    other           everything else (PAD, RELU after a concat, SOFTMAX, ...)

A TFLite CONV_2D is mapped by its filter [O, kh, kw, I/g] against its input's channel count C: g = C / (I/g).
The file is read with LiteRT's flatbuffer schema object API (graph.py, no interpreter), so shapes are the file's.

`fused_into`: XNNPACK folds a zero PAD over H/W into the convolution that alone consumes it (its subgraph
fusion), so in the graph such a PAD costs nothing, though timed alone it is slow: the [1,224,224,3] stem PAD alone
takes 2.8-3.3x its conv's time, PAD -> conv 1.00-1.01x the conv alone (benchmarks/results/pad_fusion.txt). Sweep
times and predictions count it 0. A PAD before MAX_POOL_2D is not folded (measured 0.30 vs 0.08 ms) and counts.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field

# graph.py (LiteRT's schema) is imported where a file is read, so the groups and share helpers, all the report
# needs, work without ai-edge-litert (a tflite-runtime install).

__all__ = ["GROUPS", "GROUP_LABELS", "LAYER_KIND_GROUP", "OpInfo", "classify", "model_ops", "flops_by_group",
           "time_by_group", "shares"]  # read_model, op_name, is_const: tflite/graph.py

GROUPS = ("grouped_conv", "depthwise_conv", "dense_conv", "shuffle", "pooling", "concat_add", "quant", "other")
GROUP_LABELS = {
    "grouped_conv": "grouped conv",
    "depthwise_conv": "depthwise conv",
    "dense_conv": "dense conv / FC",
    "shuffle": "shuffle data movement",
    "pooling": "pooling",
    "concat_add": "concat / add",
    "quant": "quantize / dequantize",
    "other": "other",
}
_SIMPLE = {
    "TRANSPOSE": "shuffle", "RESHAPE": "shuffle", "GATHER": "shuffle",
    "MAX_POOL_2D": "pooling", "AVERAGE_POOL_2D": "pooling", "MEAN": "pooling",
    "CONCATENATION": "concat_add", "ADD": "concat_add",
    "QUANTIZE": "quant", "DEQUANTIZE": "quant",
    "FULLY_CONNECTED": "dense_conv", "DEPTHWISE_CONV_2D": "depthwise_conv",
}
# complexity.Layer.kind -> group
LAYER_KIND_GROUP = {"conv": "dense_conv", "group_conv": "grouped_conv", "depthwise": "depthwise_conv",
                    "fc": "dense_conv", "se_fc": "dense_conv"}


@dataclass
class OpInfo:
    index: int
    op: str
    group: str
    signature: str
    macs: int
    in_bytes: int  # non-constant inputs
    out_bytes: int
    weight_bytes: int
    inputs: list = field(default_factory=list)  # [[shape], dtype, const]
    outputs: list = field(default_factory=list)  # [[shape], dtype]
    options: dict = field(default_factory=dict)
    kernel: list | None = None
    conv_groups: int | None = None
    fused_into: int | None = None  # index of the conv XNNPACK folds this PAD into (costs nothing in the graph)

    def to_dict(self) -> dict:
        return asdict(self)


def _prod(shape) -> int:
    n = 1
    for d in shape:
        n *= max(int(d), 1)
    return n


def _options(op) -> dict:
    opts = op.builtinOptions
    if opts is None:
        return {}
    out = {}
    for k, v in sorted(vars(opts).items()):
        if hasattr(v, "tolist"):
            v = v.tolist()
        if isinstance(v, (int, float, bool, str, list, type(None))):
            out[k] = v
    return out


def classify(op: str, in_channels: int | None, filter_shape: list[int] | None) -> tuple[str, int | None]:
    """(group, conv groups) for one op; CONV_2D by filter shape [O, kh, kw, I/g] vs the input's C."""
    if op == "CONV_2D" and filter_shape and in_channels:
        per_group = int(filter_shape[3])
        groups = max(1, in_channels // max(per_group, 1))
        if groups == 1:
            return "dense_conv", 1
        if per_group == 1 and groups == in_channels:
            return "depthwise_conv", groups
        return "grouped_conv", groups
    if op == "DEPTHWISE_CONV_2D":
        return "depthwise_conv", in_channels
    return _SIMPLE.get(op, "other"), None


def __getattr__(name: str):
    """`ops.read_model`, `ops.op_name`, `ops.is_const`, `ops.DTYPES`: graph.py's, imported on first use."""
    if name in ("read_model", "op_name", "is_const", "DTYPES"):
        from . import graph

        return getattr(graph, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def model_ops(path_or_model) -> list[OpInfo]:
    """Every op of subgraph 0 in execution order, with group, signature and cost features."""
    from .graph import DTYPES, is_const, op_name, read_model

    model = path_or_model if hasattr(path_or_model, "subgraphs") else read_model(path_or_model)
    graph = model.subgraphs[0]
    out = []
    for index, op in enumerate(graph.operators):
        name = op_name(model, op.opcodeIndex)
        inputs, outputs, in_bytes, weight_bytes, out_bytes = [], [], 0, 0, 0
        for t in op.inputs:
            if t < 0:
                inputs.append(None)
                continue
            tensor = graph.tensors[t]
            shape = [int(d) for d in (tensor.shape if tensor.shape is not None else [])]
            dtype, size = DTYPES.get(tensor.type, (str(tensor.type), 4))
            const = is_const(model, tensor)
            inputs.append([shape, dtype, const])
            if const:
                weight_bytes += _prod(shape) * size
            else:
                in_bytes += _prod(shape) * size
        for t in op.outputs:
            tensor = graph.tensors[t]
            shape = [int(d) for d in (tensor.shape if tensor.shape is not None else [])]
            dtype, size = DTYPES.get(tensor.type, (str(tensor.type), 4))
            outputs.append([shape, dtype])
            out_bytes += _prod(shape) * size
        first = inputs[0] if inputs and inputs[0] else None
        in_channels = first[0][-1] if first and first[0] else None
        filt = inputs[1][0] if len(inputs) > 1 and inputs[1] else None
        group, conv_groups = classify(name, in_channels, filt if name == "CONV_2D" else None)
        macs, kernel = 0, None
        if name in ("CONV_2D", "DEPTHWISE_CONV_2D") and filt and outputs:
            kernel = [filt[1], filt[2]]
            per_out = filt[1] * filt[2] * (filt[3] if name == "CONV_2D" else 1)
            macs = _prod(outputs[0][0]) * per_out
        elif name == "FULLY_CONNECTED" and filt and outputs:
            macs = _prod(outputs[0][0]) * filt[-1]
        options = _options(op)
        sig_src = [name, model.operatorCodes[op.opcodeIndex].version,
                   [i if i is None else [i[0], i[1], i[2]] for i in inputs], outputs, options]
        signature = hashlib.sha1(json.dumps(sig_src, sort_keys=True).encode()).hexdigest()[:16]
        out.append(OpInfo(index, name, group, signature, macs, in_bytes, out_bytes, weight_bytes, inputs,
                          outputs, options, kernel, conv_groups))
    for info in out:
        info.fused_into = _pad_fused_into(model, graph, graph.operators[info.index], info.op)
    return out


_PAD_ABSORBERS = ("CONV_2D", "DEPTHWISE_CONV_2D")


def _pad_fused_into(model, graph, op, name: str) -> int | None:
    """The index of the conv XNNPACK folds this op into: a PAD of zeros over H and W only, whose output is not a
    graph output and feeds exactly one op, a CONV_2D / DEPTHWISE_CONV_2D, as its data input."""
    import numpy as np

    from .graph import is_const, op_name

    if name != "PAD" or len(op.inputs) < 2 or op.inputs[1] < 0:
        return None
    pads = graph.tensors[op.inputs[1]]
    if not is_const(model, pads):
        return None
    values = np.frombuffer(bytes(model.buffers[pads.buffer].data), dtype=np.int32)
    if values.size != 8 or values[[0, 1, 6, 7]].any():  # [[N],[H],[W],[C]] x (before, after)
        return None
    produced = op.outputs[0]
    graph_outputs = graph.outputs.tolist() if hasattr(graph.outputs, "tolist") else list(graph.outputs or [])
    if produced in graph_outputs:
        return None
    consumers = [(i, other) for i, other in enumerate(graph.operators)
                 if other.inputs is not None and produced in list(other.inputs)]
    if len(consumers) != 1:
        return None
    index, consumer = consumers[0]
    if op_name(model, consumer.opcodeIndex) not in _PAD_ABSORBERS or list(consumer.inputs)[0] != produced:
        return None
    return index


def flops_by_group(complexity) -> dict[str, int]:
    """complexity.Complexity -> MACs per group (the FLOPs side of "where the FLOPs go vs where the time goes")."""
    out = {g: 0 for g in GROUPS}
    for layer in complexity.layers:
        out[LAYER_KIND_GROUP.get(layer.kind, "other")] += layer.macs
    return out


def time_by_group(ops: list[dict], key: str = "time_ms") -> dict[str, float]:
    out = {g: 0.0 for g in GROUPS}
    for op in ops:
        if op.get(key) is not None:
            out[op["group"]] += op[key]
    return out


def shares(values: dict[str, float]) -> dict[str, float]:
    total = sum(values.values())
    return {k: (v / total if total else 0.0) for k, v in values.items()}
