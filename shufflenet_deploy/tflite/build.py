"""Single-op .tflite models written from scratch (no TensorFlow): the peak-compute kernels a board measures.

A board with only the base install has a TFLite interpreter but no converter, and must still measure its own peak
(bench/peak.py), so the kernels are built here from LiteRT's schema: one CONV_2D or FULLY_CONNECTED with random
weights, in fp32 or full-integer int8 (int8 input/output, per-channel int8 conv weights, int32 bias at
input_scale x weight_scale: what TF's converter writes for the same layer). tests/test_tflite_build.py checks
each model against numpy on the real interpreter.
"""
from __future__ import annotations

import numpy as np

from .graph import BO, TT, Graph, fb, pack

VERSION = {("conv", "fp32"): 1, ("conv", "int8"): 3, ("fc", "fp32"): 1, ("fc", "int8"): 4}


def _empty_model() -> Graph:
    model = fb.ModelT()
    model.version = 3
    model.description = b"sdeploy single-op model (tflite/build.py)"
    model.operatorCodes, model.buffers = [], [fb.BufferT()]  # buffer 0: the empty sentinel
    sg = fb.SubGraphT()
    sg.tensors, sg.operators, sg.name = [], [], b"main"
    model.subgraphs = [sg]
    return Graph(model)


def _quantize(g: Graph, t: int, scale, zero_point, axis: int = 0) -> None:
    q = fb.QuantizationParametersT()
    q.scale = np.atleast_1d(np.asarray(scale, np.float32))
    q.zeroPoint = np.atleast_1d(np.asarray(zero_point, np.int64))
    q.quantizedDimension = axis
    g.tensor(t).quantization = q


def single_op(kind: str, precision: str, in_shape: tuple[int, ...], out_channels: int, seed: int = 0) -> bytes:
    """CONV_2D 1x1 over an NHWC `in_shape` ("conv"), or FULLY_CONNECTED over [rows, depth] ("fc"), -> bytes.

    Inputs are meant to lie in [-1, 1]; int8 scales are set for that (the values do not matter for timing, only
    that nothing saturates)."""
    if (kind, precision) not in VERSION:
        raise ValueError(f"no {kind} model in {precision}")
    rng = np.random.default_rng(seed)
    depth = in_shape[-1]
    w = rng.uniform(-1, 1, (out_channels, 1, 1, depth) if kind == "conv" else (out_channels, depth))
    w = (w / np.sqrt(depth)).astype(np.float32)
    b = rng.uniform(-0.1, 0.1, out_channels).astype(np.float32)
    out_shape = (*in_shape[:-1], out_channels)
    g = _empty_model()
    int8 = precision == "int8"
    kind_type = TT.INT8 if int8 else TT.FLOAT32
    x = g.add_tensor("input", in_shape, kind_type)
    y = g.add_tensor("output", out_shape, kind_type)
    if int8:
        s_in = 1.0 / 127
        s_w = np.abs(w).reshape(out_channels, -1).max(axis=1) / 127 if kind == "conv" else np.abs(w).max() / 127
        per_row = s_w.reshape(-1, 1, 1, 1) if kind == "conv" else s_w
        w_q = np.clip(np.round(w / per_row), -127, 127).astype(np.int8)
        s_b = s_in * np.atleast_1d(s_w)
        b_q = np.round(b / (s_b if kind == "conv" else s_b[0])).astype(np.int32)
        wt = g.add_tensor("weights", w.shape, TT.INT8, data=w_q)
        bt = g.add_tensor("bias", b.shape, TT.INT32, data=b_q)
        _quantize(g, x, s_in, 0)
        _quantize(g, y, 4.0 / 127, 0)  # |output| stays well under 4 for these weights and inputs
        _quantize(g, wt, s_w, np.zeros(np.size(s_w), np.int64))
        _quantize(g, bt, s_b if kind == "conv" else s_b[:1], np.zeros(out_channels if kind == "conv" else 1,
                                                                     np.int64))
    else:
        wt = g.add_tensor("weights", w.shape, TT.FLOAT32, data=w)
        bt = g.add_tensor("bias", b.shape, TT.FLOAT32, data=b)
    if kind == "conv":
        opts = fb.Conv2DOptionsT()
        opts.padding, opts.strideW, opts.strideH = fb.Padding.VALID, 1, 1
        opts.dilationWFactor = opts.dilationHFactor = 1
        opts.fusedActivationFunction = fb.ActivationFunctionType.NONE
        op = g.make_op(BO.CONV_2D, [x, wt, bt], [y], options_type=fb.BuiltinOptions.Conv2DOptions, options=opts,
                       version=VERSION[kind, precision])
    else:
        opts = fb.FullyConnectedOptionsT()
        opts.fusedActivationFunction = fb.ActivationFunctionType.NONE
        op = g.make_op(BO.FULLY_CONNECTED, [x, wt, bt], [y], options_type=fb.BuiltinOptions.FullyConnectedOptions,
                       options=opts, version=VERSION[kind, precision])
    g.sg.operators.append(op)
    g.sg.inputs, g.sg.outputs = np.asarray([x], np.int32), np.asarray([y], np.int32)
    return pack(g.model)


def reference(kind: str, in_shape, out_channels: int, x: np.ndarray, seed: int = 0) -> np.ndarray:
    """What single_op's fp32 model computes, in numpy (its tests compare the two)."""
    rng = np.random.default_rng(seed)
    depth = in_shape[-1]
    w = rng.uniform(-1, 1, (out_channels, 1, 1, depth) if kind == "conv" else (out_channels, depth))
    w = (w / np.sqrt(depth)).astype(np.float32).reshape(out_channels, depth)
    b = rng.uniform(-0.1, 0.1, out_channels).astype(np.float32)
    return x @ w.T + b
