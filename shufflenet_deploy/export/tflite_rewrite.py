"""The rewrite passes lower.py runs on a .tflite flatbuffer; the graph layer itself is shufflenet_deploy/tflite/.

Each pass takes a `tflite.graph.Graph` (a parsed model, first subgraph, on LiteRT's own schema), changes it in
place and returns how many sites it rewrote. Passes only fire on patterns they can prove equivalent from the graph
itself (constant perms and shapes, quantization parameters, fused activations); anything else is left as onnx2tf
wrote it. `Graph.save` then drops tensors no operator uses any more and empties their buffers.

- `fold_data_movement`: a chain of TRANSPOSE/RESHAPE/GATHER ops (single-consumer links; a GATHER with constant
  indices) is simulated on an index array; when the chain is an identity it is removed, when it is a reshape it
  becomes one RESHAPE, and when it permutes only the channels of an NHWC tensor as a group shuffle it becomes the
  chosen form (lower.py: "transpose2", "transpose1" or one GATHER). A GATHER is always rewritten: XNNPACK does not
  take it, and ShuffleNet v1's shuffles reach onnx2tf as a channel Gather (lower.py says why).
- `add_n_to_add`: ADD_N of two tensors -> ADD, with the RELU that alone reads it fused in (lower.py sends residual
  adds to onnx2tf as ONNX Sum); in an int8 graph TF's converter leaves ADD_N in float between DEQUANTIZE and
  QUANTIZE, and the pass makes that one int8 ADD with the QUANTIZE's output parameters.
- `grouped_to_depthwise`: CONV_2D whose filter has one input channel per group and whose groups equal the input
  channels (onnx2tf's output for a depthwise conv after a channel shuffle) -> DEPTHWISE_CONV_2D (filter
  [O,kh,kw,1] -> [1,kh,kw,O], per-channel quantization axis 0 -> 3).
- `padv2_to_pad`: PADV2 feeding only MAX_POOL_2D, on a provably non-negative input (fp32: produced with a fused
  RELU/RELU6; int8: zero point at the type's minimum and pad value equal to it) -> PAD with zeros. Max over a
  window that holds at least one real element is then unchanged, and XNNPACK takes PAD but not PADV2.
- `transpose_into_mean`: a TRANSPOSE feeding only MEANs whose kept axes stay in order -> MEAN over the
  untransposed axes.
- `split_wide_concats`: CONCATENATION of more than 5 inputs (XNNPACK's limit) -> nested concats of at most 5.
- `int8_hard_swish`: an int8 HARD_SWISH (XNNPACK takes it in fp32 only: a partition of its own each) ->
  ADD(x, 3) with fused RELU6, MUL by x, MUL by 1/6, all int8 ops XNNPACK takes. The constants are exact in int8
  (3 = 127 * 3/127, 1/6 = 127 * 1/(6*127)); the middle product takes 6x the output's scale and its zero point,
  so its integers are the output's, and the last MUL only rescales.

`Graph` is re-exported here for the callers that reach it as `tflite_rewrite.Graph`.
"""
from __future__ import annotations

import numpy as np

from ..tflite.graph import BO, TT, Graph, fb

__all__ = ["Graph", "fold_data_movement", "grouped_to_depthwise", "padv2_to_pad", "transpose_into_mean",
           "split_wide_concats", "add_n_to_add", "int8_hard_swish", "MAX_CONCAT_INPUTS"]


def _replace_ops(g: Graph, old: list, new: list, anchor=None) -> None:
    """Put `new` where `anchor` (default: the first of `old`) was, drop `old` (topological order is kept)."""
    ops = g.sg.operators
    at = ops.index(anchor) if anchor is not None else min(ops.index(o) for o in old)
    ids = {id(o) for o in old}
    kept = [o for o in ops if id(o) not in ids]
    before = sum(1 for o in ops[:at] if id(o) not in ids)
    g.sg.operators = kept[:before] + new + kept[before:]


def _rewire(g: Graph, old_tensor: int, new_tensor: int) -> None:
    for op in g.sg.operators:
        op.inputs = np.asarray([new_tensor if t == old_tensor else t for t in op.inputs], np.int32)


# -- pass: TRANSPOSE/RESHAPE chains ---------------------------------------------------------------------------
def _movement_result(g: Graph, chain: list) -> np.ndarray | None:
    x = np.arange(int(np.prod(g.shape(chain[0].inputs[0])))).reshape(g.shape(chain[0].inputs[0]))
    for op in chain:
        if g.code(op) == BO.TRANSPOSE:
            perm = g.const(op.inputs[1])
            if perm is None:
                return None
            x = x.transpose([int(p) for p in perm])
        elif g.code(op) == BO.GATHER:
            index = g.const(op.inputs[1])
            if index is None or getattr(op.builtinOptions, "batchDims", 0):
                return None
            x = np.take(x, index.astype(np.int64), axis=int(op.builtinOptions.axis))
        else:
            x = x.reshape(g.shape(op.outputs[0]))
    return x


def _group_shuffle(p: np.ndarray) -> tuple[int, int] | None:
    c = len(p)
    for a in range(2, c):
        if c % a == 0 and np.array_equal(p, np.arange(c).reshape(a, c // a).T.ravel()):
            return a, c // a
    return None


def fold_data_movement(g: Graph, shuffle: str = "transpose2") -> int:
    movement = (BO.TRANSPOSE, BO.RESHAPE, BO.GATHER)
    producers, consumers, outputs = g.producers(), g.consumers(), g.outputs()

    def links(op) -> bool:  # op's output flows into exactly one movement op and nowhere else
        t = int(op.outputs[0])
        return t not in outputs and len(consumers[t]) == 1 and g.code(consumers[t][0]) in movement

    chains = []
    for op in g.sg.operators:
        if g.code(op) not in movement:
            continue
        prev = producers.get(int(op.inputs[0]))
        if prev is not None and g.code(prev) in movement and links(prev):
            continue  # not a chain head
        chain = [op]
        while links(chain[-1]):
            chain.append(consumers[int(chain[-1].outputs[0])][0])
        chains.append(chain)

    rewritten = 0
    for chain in chains:
        n_transpose = sum(g.code(o) == BO.TRANSPOSE for o in chain)
        n_gather = sum(g.code(o) == BO.GATHER for o in chain)
        if n_transpose == 0 and n_gather == 0 and len(chain) == 1:
            continue
        x = _movement_result(g, chain)
        if x is None:
            continue
        src, dst = int(chain[0].inputs[0]), int(chain[-1].outputs[0])
        in_shape, out_shape = g.shape(src), g.shape(dst)
        flat = x.ravel()
        new: list = []
        if np.array_equal(flat, np.arange(flat.size)):
            if in_shape == out_shape and dst not in outputs:
                _replace_ops(g, chain, [])
                _rewire(g, dst, src)
                rewritten += 1
                continue
            new = [_reshape(g, src, dst, out_shape)]
        elif len(in_shape) == 4 and in_shape == out_shape and in_shape[0] == 1:
            hw, c = in_shape[1] * in_shape[2], in_shape[3]
            rows = flat.reshape(hw, c) - (np.arange(hw) * c)[:, None]
            if not (rows == rows[0]).all():
                continue
            perm = rows[0]
            if shuffle == "keep":
                continue
            new = _shuffle_ops(g, src, dst, perm, in_shape, shuffle)
            if new is None:
                continue
        else:
            continue
        if not n_gather and len(new) >= len(chain) and sum(g.code(o) == BO.TRANSPOSE for o in new) >= n_transpose:
            continue
        _replace_ops(g, chain, new)
        rewritten += 1
    return rewritten


def _shuffle_ops(g: Graph, src: int, dst: int, perm: np.ndarray, shape, mode: str) -> list | None:
    """Ops computing dst[..., c] = src[..., perm[c]] for an NHWC tensor, in the chosen form."""
    _, h, w, c = shape
    hw = h * w
    t = g.tensor(src)
    base = _name(g, dst)
    if mode == "gather":
        idx = g.add_tensor(f"{base}/gather_idx", [c], TT.INT32, data=perm.astype(np.int32))
        opts = fb.GatherOptionsT()
        opts.axis, opts.batchDims = 3, 0
        return [g.make_op(BO.GATHER, [src, idx], [dst], options_type=fb.BuiltinOptions.GatherOptions,
                          options=opts, version=2 if g.is_int8(src) else 1)]
    split = _group_shuffle(perm)
    if split is None:
        return None
    a, b = split
    if mode == "transpose1":  # [HW, a, b] -> [HW, b, a]: one transpose of many tiny a x b tiles
        steps = [([1, hw, a, b], None), ([1, hw, b, a], [0, 1, 3, 2])]
    elif mode == "transpose2":  # [HW, a, b] -> [b, a, HW] -> [HW, b, a]: two transposes of large tiles
        steps = [([hw, a, b], None), ([b, a, hw], [2, 1, 0]), ([hw, b, a], [2, 0, 1])]
    else:
        raise ValueError(f"unknown shuffle mode {mode!r}")
    ops, cur = [], src
    for i, (sh, perm_) in enumerate(steps):
        nxt = g.add_tensor(f"{base}/shuffle{i}", sh, t.type, like=t)
        if perm_ is None:
            ops.append(_reshape(g, cur, nxt, sh))
        else:
            pidx = g.add_tensor(f"{base}/perm{i}", [len(perm_)], TT.INT32, data=np.asarray(perm_, np.int32))
            ops.append(g.make_op(BO.TRANSPOSE, [cur, pidx], [nxt], options_type=fb.BuiltinOptions.TransposeOptions,
                                 options=fb.TransposeOptionsT(), version=2 if g.is_int8(src) else 1))
        cur = nxt
    ops.append(_reshape(g, cur, dst, list(shape)))
    return ops


def _name(g: Graph, t: int) -> str:
    name = g.tensor(t).name
    return name.decode() if isinstance(name, bytes) else str(name)


def _reshape(g: Graph, src: int, dst: int, shape) -> object:
    shape_t = g.add_tensor(f"{_name(g, dst)}/shape", [len(shape)], TT.INT32, data=np.asarray(shape, np.int32))
    opts = fb.ReshapeOptionsT()
    opts.newShape = np.asarray(shape, np.int32)
    return g.make_op(BO.RESHAPE, [src, shape_t], [dst], options_type=fb.BuiltinOptions.ReshapeOptions, options=opts)


# -- pass: ADD_N of two -> ADD (+ RELU fused) ----------------------------------------------------------------
def add_n_to_add(g: Graph) -> int:
    producers, consumers, outputs = g.producers(), g.consumers(), g.outputs()

    def only_reader(t: int, code: int):
        users = consumers[int(t)]
        return users[0] if int(t) not in outputs and len(users) == 1 and g.code(users[0]) == code else None

    rewritten = 0
    for op in list(g.sg.operators):
        if g.code(op) != BO.ADD_N or len(op.inputs) != 2:
            continue
        a, b, out = int(op.inputs[0]), int(op.inputs[1]), int(op.outputs[0])
        drop = [op]
        deqs = [producers.get(t) for t in (a, b)]
        quant = only_reader(out, BO.QUANTIZE)
        if all(d is not None and g.code(d) == BO.DEQUANTIZE and only_reader(d.outputs[0], BO.ADD_N) is op
               and g.is_int8(d.inputs[0]) for d in deqs) and quant is not None and g.is_int8(quant.outputs[0]):
            a, b, out = int(deqs[0].inputs[0]), int(deqs[1].inputs[0]), int(quant.outputs[0])
            drop += [*deqs, quant]
        elif g.is_int8(a) or g.tensor(a).type != g.tensor(out).type:
            continue
        activation = fb.ActivationFunctionType.NONE
        for code, fused in ((BO.RELU, fb.ActivationFunctionType.RELU), (BO.RELU6, fb.ActivationFunctionType.RELU6)):
            relu = only_reader(out, code)  # ReLU6: other codebases' residual units (a standalone int8 op otherwise)
            if relu is not None:
                activation, out = fused, int(relu.outputs[0])
                drop.append(relu)
                break
        opts = fb.AddOptionsT()
        opts.fusedActivationFunction = activation
        add = g.make_op(BO.ADD, [a, b], [out], options_type=fb.BuiltinOptions.AddOptions, options=opts,
                        version=2 if g.is_int8(a) else 1)
        _replace_ops(g, drop, [add], anchor=op)  # where ADD_N was: both inputs exist by then
        producers, consumers = g.producers(), g.consumers()
        rewritten += 1
    return rewritten


# -- pass: grouped CONV_2D -> DEPTHWISE_CONV_2D -----------------------------------------------------------------
def grouped_to_depthwise(g: Graph) -> int:
    producers, consumers = g.producers(), g.consumers()
    rewritten = 0
    for i, op in enumerate(g.sg.operators):
        if g.code(op) != BO.CONV_2D:
            continue
        x, w = int(op.inputs[0]), int(op.inputs[1])
        in_c = g.shape(x)[-1]
        o, kh, kw, per_group = g.shape(w)
        if per_group != 1 or in_c == 1 or o % in_c != 0:
            continue
        # the filter: a constant, or DEQUANTIZE(constant) in fp16 models
        holder = w
        deq = producers.get(w)
        if deq is not None:
            if g.code(deq) != BO.DEQUANTIZE or len(consumers[w]) != 1:
                continue
            holder = int(deq.inputs[0])
        if g.const(holder) is None or len(consumers[holder]) != 1:
            continue
        for t in {holder, w}:
            tensor = g.tensor(t)
            data = g.const(t)
            if data is not None:
                tensor.buffer = g.add_buffer(data.transpose(3, 1, 2, 0))
            tensor.shape = np.asarray([1, kh, kw, o], np.int32)
            q = tensor.quantization
            if q is not None and q.scale is not None and len(q.scale) > 1:
                q.quantizedDimension = 3
        src = op.builtinOptions
        opts = fb.DepthwiseConv2DOptionsT()
        opts.padding, opts.strideW, opts.strideH = src.padding, src.strideW, src.strideH
        opts.depthMultiplier = o // in_c
        opts.fusedActivationFunction = src.fusedActivationFunction
        opts.dilationWFactor, opts.dilationHFactor = src.dilationWFactor, src.dilationHFactor
        version = 3 if g.is_int8(x) else (2 if max(src.dilationWFactor, src.dilationHFactor) > 1 else 1)
        op.opcodeIndex = g.opcode(BO.DEPTHWISE_CONV_2D, version)
        op.builtinOptionsType, op.builtinOptions = fb.BuiltinOptions.DepthwiseConv2DOptions, opts
        rewritten += 1
    return rewritten


# -- pass: PADV2 before MAX_POOL_2D -> PAD ---------------------------------------------------------------------
_RELU = (fb.ActivationFunctionType.RELU, fb.ActivationFunctionType.RELU6)


def padv2_to_pad(g: Graph) -> int:
    producers, consumers = g.producers(), g.consumers()
    rewritten = 0
    for op in g.sg.operators:
        if g.code(op) != BO.PADV2 or len(op.inputs) < 3:
            continue
        x, pads, value = int(op.inputs[0]), int(op.inputs[1]), int(op.inputs[2])
        users = consumers[int(op.outputs[0])]
        if not users or any(g.code(u) != BO.MAX_POOL_2D for u in users):
            continue
        pad_amounts, v = g.const(pads), g.const(value)
        if pad_amounts is None or v is None:
            continue
        if any(int(p) >= min(u.builtinOptions.filterHeight, u.builtinOptions.filterWidth)
               for u in users for p in pad_amounts.ravel()):
            continue  # a window could hold padding only
        tensor = g.tensor(x)
        if tensor.type == TT.INT8:
            zp = tensor.quantization.zeroPoint if tensor.quantization is not None else None
            if zp is None or len(zp) != 1 or int(zp[0]) != -128 or int(v.ravel()[0]) != -128:
                continue
        elif tensor.type == TT.FLOAT32:
            prod = producers.get(x)
            fused = getattr(prod.builtinOptions, "fusedActivationFunction", None) if prod is not None else None
            nonneg = prod is not None and (fused in _RELU or g.code(prod) in (BO.RELU, BO.RELU6))
            if not nonneg or float(v.ravel()[0]) > 0:
                continue
        else:
            continue
        op.opcodeIndex = g.opcode(BO.PAD, 2 if tensor.type == TT.INT8 else 1)
        op.inputs = np.asarray([x, pads], np.int32)
        op.builtinOptionsType, op.builtinOptions = fb.BuiltinOptions.PadOptions, fb.PadOptionsT()
        rewritten += 1
    return rewritten


# -- pass: TRANSPOSE feeding only MEAN -> MEAN over the original axes -------------------------------------------
def transpose_into_mean(g: Graph) -> int:
    """onnx2tf's NHWC->NCHW TRANSPOSE before the global-average MEAN: reduce the NHWC tensor directly when the
    kept dimensions stay in the same order (the output is then identical)."""
    consumers, outputs = g.consumers(), g.outputs()
    rewritten = 0
    for op in list(g.sg.operators):
        if g.code(op) != BO.TRANSPOSE or int(op.outputs[0]) in outputs:
            continue
        perm = g.const(op.inputs[1])
        users = consumers[int(op.outputs[0])]
        if perm is None or not users or any(g.code(u) != BO.MEAN for u in users):
            continue
        perm = [int(p) for p in perm]
        plans = []
        for u in users:
            axes = g.const(u.inputs[1])
            keep = bool(getattr(u.builtinOptions, "keepDims", False))
            if axes is None or keep:
                break
            axes = [int(a) % len(perm) for a in axes.ravel()]
            kept = [perm[d] for d in range(len(perm)) if d not in axes]
            if kept != sorted(kept):
                break
            plans.append((u, [perm[a] for a in axes]))
        else:
            for u, new_axes in plans:
                axes_t = g.add_tensor(f"{_name(g, u.outputs[0])}/axes", [len(new_axes)], TT.INT32,
                                      data=np.asarray(new_axes, np.int32))
                u.inputs = np.asarray([int(op.inputs[0]), axes_t], np.int32)
            _replace_ops(g, [op], [])
            rewritten += 1
    return rewritten


# -- pass: CONCATENATION of many inputs -> nested ones XNNPACK takes -------------------------------------------
# LiteRT's XNNPACK delegate refuses a CONCATENATION of more inputs; TF's converter merges nested concats back
# into one, so the nesting has to be done here
MAX_CONCAT_INPUTS = 5


def split_wide_concats(g: Graph, limit: int = MAX_CONCAT_INPUTS) -> int:
    """CONCATENATION of more than `limit` inputs -> the first inputs (the smallest, in lower.py's order; as few as
    needed, so little is copied twice) concatenated first. Exact: same axis, and the inner outputs take the outer
    output's type and quantization (the builtin kernel requantizes every input to it anyway)."""
    rewritten = 0
    for op in list(g.sg.operators):
        if g.code(op) != BO.CONCATENATION or len(op.inputs) <= limit:
            continue
        out, axis = g.tensor(op.outputs[0]), op.builtinOptions.axis % len(g.shape(op.outputs[0]))
        inputs, inner = [int(t) for t in op.inputs], []
        while len(inputs) > limit:
            first = inputs[: min(limit, len(inputs) - limit + 1)]
            shape = g.shape(first[0])
            shape[axis] = sum(g.shape(t)[axis] for t in first)
            merged = g.add_tensor(f"{_name(g, op.outputs[0])}/part{len(inner)}", shape, out.type, like=out)
            opts = fb.ConcatenationOptionsT()
            opts.axis, opts.fusedActivationFunction = op.builtinOptions.axis, fb.ActivationFunctionType.NONE
            inner.append(g.make_op(BO.CONCATENATION, first, [merged], options=opts,
                                   options_type=fb.BuiltinOptions.ConcatenationOptions,
                                   version=int(g.model.operatorCodes[op.opcodeIndex].version)))
            inputs = [merged] + inputs[len(first):]
        op.inputs = np.asarray(inputs, np.int32)
        _replace_ops(g, [op], inner + [op])
        rewritten += 1
    return rewritten


# -- pass: int8 HARD_SWISH -> ADD(+RELU6), MUL, MUL --------------------------------------------------------------
def int8_hard_swish(g: Graph) -> int:
    rewritten = 0
    for op in list(g.sg.operators):
        if g.code(op) != BO.HARD_SWISH or not g.is_int8(int(op.inputs[0])) or not g.is_int8(int(op.outputs[0])):
            continue
        x, y = int(op.inputs[0]), int(op.outputs[0])
        out_q = g.tensor(y).quantization
        if out_q is None or len(out_q.scale) != 1:
            continue
        name = _name(g, y)
        three = _int8_scalar(g, f"{name}/hswish_3", 3.0)
        sixth = _int8_scalar(g, f"{name}/hswish_1_6", 1.0 / 6.0)
        gate = g.add_tensor(f"{name}/hswish_relu6", g.shape(x), TT.INT8)
        _set_quant(g, gate, 6.0 / 255.0, -128)  # [0, 6]
        product = g.add_tensor(f"{name}/hswish_x_relu6", g.shape(y), TT.INT8)
        _set_quant(g, product, 6.0 * float(out_q.scale[0]), int(out_q.zeroPoint[0]))
        add_opts, mul_opts = fb.AddOptionsT(), fb.MulOptionsT()
        add_opts.fusedActivationFunction = fb.ActivationFunctionType.RELU6
        new = [g.make_op(BO.ADD, [x, three], [gate], options_type=fb.BuiltinOptions.AddOptions, options=add_opts,
                         version=2),
               g.make_op(BO.MUL, [x, gate], [product], options_type=fb.BuiltinOptions.MulOptions,
                         options=fb.MulOptionsT(), version=2),
               g.make_op(BO.MUL, [product, sixth], [y], options_type=fb.BuiltinOptions.MulOptions,
                         options=mul_opts, version=2)]
        _replace_ops(g, [op], new, anchor=op)
        rewritten += 1
    return rewritten


def _int8_scalar(g: Graph, name: str, value: float) -> int:
    """A constant int8 tensor of shape [1] holding VALUE exactly (q = 127, scale = value / 127)."""
    index = g.add_tensor(name, [1], TT.INT8, data=np.array([127], np.int8))
    _set_quant(g, index, value / 127.0, 0)
    return index


def _set_quant(g: Graph, index: int, scale: float, zero_point: int) -> None:
    q = fb.QuantizationParametersT()
    q.scale, q.zeroPoint = np.array([scale], np.float32), np.array([zero_point], np.int64)
    q.quantizedDimension = 0
    g.tensor(index).quantization = q

