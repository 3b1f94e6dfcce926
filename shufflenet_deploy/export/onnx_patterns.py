"""The XNNPACK lowering of a graph sdeploy did not build, found by pattern in ONNX (lower.py does our zoo's in
PyTorch, by module; both end in lower.lower_onnx and the same TFLite passes).

- x * HardSigmoid(x; 1/6, 0.5) -> HardSwish(x) (torch's exporter writes nn.Hardswish that way): one per-channel
  activation the fold below can carry into each piece of a cut conv, and one HARD_SWISH op in TFLite.
- Relu(Concat(a, b)) -> Concat(Relu(a), Relu(b)) (CIFAR-style v1 units activate after the join): each Relu then
  fuses into the conv that makes its input, where a standalone int8 RELU is not taken by XNNPACK (a partition
  each).
- AveragePool(k, s, p; count_include_pad or no pads) -> depthwise Conv with constant 1/(kh*kw) weights: exact,
  and the int8 graph stays one XNNPACK partition (lower.py says why: XNNPACK does not take int8 AVERAGE_POOL_2D).
- channel splits, concats and shuffles in any spelling -> folded into the convolutions, or one canonical Gather
  (channel_fold.py).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np


def lower_foreign_onnx(path: Path) -> dict:
    """In place, on a normalized graph (onnx_normalize.normalize); return what was done."""
    import onnx

    from .channel_fold import fold_channels
    from .lower import lower_onnx

    model = onnx.load(str(path))
    hardswish = fuse_hardswish(model)
    activations = activation_before_concat(model)
    pools = avgpool_as_depthwise(model)
    report = fold_channels(model)
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return {"hardswish_fused": hardswish, "activation_before_concat": activations, "avgpool_to_depthwise": pools,
            "channel_regions": report.to_dict(), **lower_onnx(path)}


def avgpool_as_depthwise(model) -> int:
    import onnx
    from onnx import helper, numpy_helper

    shapes = {v.name: [d.dim_value for d in v.type.tensor_type.shape.dim]
              for v in [*onnx.shape_inference.infer_shapes(model).graph.value_info, *model.graph.input]}
    done = 0
    for node in model.graph.node:
        if node.op_type != "AveragePool":
            continue
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        kernel = list(attrs.get("kernel_shape", []))
        pads = list(attrs.get("pads", [0] * 2 * len(kernel)))
        shape = shapes.get(node.input[0])
        if (len(kernel) != 2 or attrs.get("ceil_mode", 0)
                or attrs.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET")
                or not (attrs.get("count_include_pad", 0) or not any(pads)) or not shape or len(shape) != 4
                or not shape[1] or list(attrs.get("dilations", [1, 1])) != [1, 1]):
            continue
        channels = shape[1]
        weight = f"{node.name or node.output[0]}_as_depthwise_weight"
        model.graph.initializer.append(numpy_helper.from_array(
            np.full((channels, 1, *kernel), 1.0 / (kernel[0] * kernel[1]), np.float32), weight))
        conv = helper.make_node("Conv", [node.input[0], weight], list(node.output), name=node.name,
                                kernel_shape=kernel, strides=list(attrs.get("strides", [1, 1])), pads=pads,
                                group=channels)
        node.CopyFrom(conv)
        done += 1
    return done


def fuse_hardswish(model) -> int:
    from onnx import helper

    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    if opset < 14:  # HardSwish is an opset-14 op
        return 0
    made = {o: n for n in model.graph.node for o in n.output}
    readers: dict[str, int] = {}
    for n in model.graph.node:
        for name in n.input:
            readers[name] = readers.get(name, 0) + 1
    fused, drop = 0, set()
    for node in model.graph.node:
        if node.op_type != "Mul" or len(node.input) != 2:
            continue
        for x, gate in (node.input, node.input[::-1]):
            sig = made.get(gate)
            if sig is None or sig.op_type != "HardSigmoid" or sig.input[0] != x or readers.get(gate) != 1:
                continue
            attrs = {a.name: helper.get_attribute_value(a) for a in sig.attribute}
            if abs(attrs.get("alpha", 0.2) - 1 / 6) > 1e-6 or abs(attrs.get("beta", 0.5) - 0.5) > 1e-6:
                continue
            node.CopyFrom(helper.make_node("HardSwish", [x], list(node.output), name=node.name))
            drop.add(tuple(sig.output))
            fused += 1
            break
    keep = [n for n in model.graph.node if tuple(n.output) not in drop]
    del model.graph.node[:]
    model.graph.node.extend(keep)
    return fused


def activation_before_concat(model) -> int:
    """Relu/Clip whose only input is a Concat read by nothing else -> the same activation on each concat input."""
    from onnx import helper

    outputs = {o.name for o in model.graph.output}
    readers: dict[str, int] = {}
    for n in model.graph.node:
        for name in n.input:
            readers[name] = readers.get(name, 0) + 1
    made = {o: n for n in model.graph.node for o in n.output}
    before: dict[str, list] = {}  # the concat's (new) output -> the activations to place before it
    removed: set[str] = set()     # outputs of the activations that moved
    for node in model.graph.node:
        concat = made.get(node.input[0]) if node.op_type in ("Relu", "Clip") else None
        if concat is None or concat.op_type != "Concat" or readers.get(concat.output[0]) != 1 \
                or concat.output[0] in outputs:
            continue
        acts = []
        for i, name in enumerate(concat.input):
            act = helper.make_node(node.op_type, [name, *node.input[1:]], [f"{node.output[0]}_in{i}"],
                                   name=f"{node.name or node.output[0]}_in{i}")
            act.attribute.extend(node.attribute)
            acts.append(act)
            concat.input[i] = act.output[0]
        removed.add(node.output[0])
        concat.output[0] = node.output[0]
        before[concat.output[0]] = acts
    if before:
        order = []
        for n in model.graph.node:
            if n.op_type in ("Relu", "Clip") and n.output[0] in removed:
                continue
            if n.op_type == "Concat":
                order.extend(before.get(n.output[0], []))
            order.append(n)
        del model.graph.node[:]
        model.graph.node.extend(order)
    return len(before)
