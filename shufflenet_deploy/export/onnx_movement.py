"""ONNX's data-movement ops (the ways exporters write ShuffleNet's channel split, concat and shuffle) run on numpy
arrays with ONNX semantics: channel_fold.py runs a region of them on integer id arrays to see where every channel
goes."""
from __future__ import annotations

import numpy as np

MOVEMENT = ("Reshape", "Transpose", "Split", "Slice", "Concat", "Gather", "Squeeze", "Unsqueeze", "Identity")


def attribute(node, name: str, default=None):
    from onnx import helper

    for a in node.attribute:
        if a.name == name:
            return helper.get_attribute_value(a)
    return default


def run_movement(node, args: list) -> list[np.ndarray]:
    """One movement op on numpy arrays (ONNX semantics for the forms the exporters write)."""
    op, x = node.op_type, args[0]
    if op == "Identity":
        return [x]
    if op == "Reshape":
        shape = [int(v) for v in args[1]]
        if not attribute(node, "allowzero", 0):
            shape = [x.shape[i] if v == 0 else v for i, v in enumerate(shape)]
        return [x.reshape(shape)]
    if op == "Transpose":
        perm = attribute(node, "perm") or list(range(x.ndim))[::-1]
        return [x.transpose(perm)]
    if op == "Concat":
        return [np.concatenate(args, axis=attribute(node, "axis"))]
    if op == "Gather":
        axis = attribute(node, "axis", 0)
        return [np.take(x, args[1].astype(np.int64), axis=axis)]
    if op in ("Squeeze", "Unsqueeze"):
        axes = [int(v) for v in (args[1] if len(args) > 1 and args[1] is not None else attribute(node, "axes", []))]
        if op == "Squeeze":
            return [np.squeeze(x, axis=tuple(axes)) if axes else np.squeeze(x)]
        out = x
        for a in sorted(a % (x.ndim + len(axes)) for a in axes):
            out = np.expand_dims(out, a)
        return [out]
    if op == "Slice":
        starts, ends = args[1], args[2]
        axes = args[3] if len(args) > 3 and args[3] is not None else range(len(starts))
        steps = args[4] if len(args) > 4 and args[4] is not None else [1] * len(starts)
        index = [slice(None)] * x.ndim
        for s, e, a, st in zip(starts, ends, axes, steps):
            index[int(a)] = slice(int(s), int(min(e, np.iinfo(np.int64).max)), int(st))
        return [x[tuple(index)]]
    if op == "Split":
        axis = attribute(node, "axis", 0) % x.ndim
        sizes = args[1] if len(args) > 1 and args[1] is not None else attribute(node, "split")
        if sizes is None:
            n = len(node.output)
            sizes = [x.shape[axis] // n] * n
        bounds = np.cumsum([int(s) for s in sizes])[:-1]
        return np.split(x, bounds, axis=axis)
    raise ValueError(op)
