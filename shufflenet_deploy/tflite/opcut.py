"""Cut a .tflite model into single-op models (one per distinct op signature), for per-op timing on Linux devices.

Why: the Linux runner has no per-op profiler (benchmark_model's --enable_op_profiling exists only on Android),
so each op is timed alone with its real shapes, dtypes, quantization and weights. A single-op model keeps one
operator, its tensors (constant ones with their buffers, the rest become the graph's inputs/outputs) and its
operator code, and is re-serialised with LiteRT's flatbuffer schema object API (graph.py, file identifier "TFL3").

Limits of the method (stated in the report): ops run one at a time lose cross-op effects (XNNPACK fusing or
sharing a partition, cache reuse between neighbours), and each single-op invoke pays a fixed interpreter
overhead, which is measured on a trivial model (`overhead_model`) and subtracted.
"""
from __future__ import annotations

import copy
from pathlib import Path

from .graph import fb, is_const, pack, read_model
from .ops import OpInfo, model_ops


def single_op_model(model, op_index: int) -> bytes:
    """The bytes of a TFLite model holding only `model`'s op number `op_index` (subgraph 0)."""
    graph = model.subgraphs[0]
    op = graph.operators[op_index]
    new = fb.ModelT()
    new.version = 3
    new.description = b"sdeploy single op"
    new.operatorCodes = [copy.deepcopy(model.operatorCodes[op.opcodeIndex])]
    new.buffers = [fb.BufferT()]
    sub = fb.SubGraphT()
    sub.tensors, sub.inputs, sub.outputs, sub.name = [], [], [], b"single_op"
    mapping: dict[int, int] = {}

    def add(t: int) -> int:
        if t in mapping:
            return mapping[t]
        tensor = copy.deepcopy(graph.tensors[t])
        const = is_const(model, tensor)
        new.buffers.append(copy.deepcopy(model.buffers[tensor.buffer]) if const else fb.BufferT())
        tensor.buffer = len(new.buffers) - 1
        mapping[t] = len(sub.tensors)
        sub.tensors.append(tensor)
        if not const and t not in op.outputs:
            sub.inputs.append(mapping[t])
        return mapping[t]

    new_op = copy.deepcopy(op)
    new_op.opcodeIndex = 0
    new_op.inputs = [add(int(t)) if t >= 0 else -1 for t in op.inputs]
    new_op.outputs = [add(int(t)) for t in op.outputs]
    sub.outputs = list(new_op.outputs)
    new_op.intermediates = [add(int(t)) for t in (op.intermediates if op.intermediates is not None else [])]
    sub.operators = [new_op]
    new.subgraphs = [sub]
    return pack(new)


def cut_model(path: Path, outdir: Path) -> tuple[list[OpInfo], dict[str, Path]]:
    """(every op of the model, {signature: single-op .tflite}) — one file per distinct signature."""
    model = read_model(path)
    ops = model_ops(model)
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    files: dict[str, Path] = {}
    for op in ops:
        if op.signature in files:
            continue
        file = outdir / f"op_{op.signature}.tflite"
        if not file.exists():
            file.write_bytes(single_op_model(model, op.index))
        files[op.signature] = file
    return ops, files


def overhead_model(path: Path, dtype: str = "float32") -> Path:
    """A one-RESHAPE model on a 1-element tensor: the fixed cost of one invoke() through the runner."""
    path = Path(path)
    if path.exists():
        return path
    type_code = {"float32": 0, "int8": 9}[dtype]
    model = fb.ModelT()
    model.version = 3
    model.description = b"sdeploy invoke overhead"
    code = fb.OperatorCodeT()
    code.builtinCode = code.deprecatedBuiltinCode = fb.BuiltinOperator.RESHAPE
    code.version = 1
    model.operatorCodes = [code]
    model.buffers = [fb.BufferT(), fb.BufferT(), fb.BufferT(), fb.BufferT()]
    shape_buf = fb.BufferT()
    import numpy as np

    shape_buf.data = np.frombuffer(np.array([1, 1], np.int32).tobytes(), np.uint8).tolist()
    model.buffers[2] = shape_buf
    tensors = []
    for i, (shape, t, buf) in enumerate((([1, 1, 1, 1], type_code, 1), ([2], 2, 2), ([1, 1], type_code, 3))):
        tensor = fb.TensorT()
        tensor.shape, tensor.type, tensor.buffer, tensor.name = shape, t, buf, f"t{i}".encode()
        if type_code == 9 and t == 9:
            q = fb.QuantizationParametersT()
            q.scale, q.zeroPoint = [1.0], [0]
            tensor.quantization = q
        tensors.append(tensor)
    op = fb.OperatorT()
    op.opcodeIndex, op.inputs, op.outputs = 0, [0, 1], [2]
    sub = fb.SubGraphT()
    sub.tensors, sub.inputs, sub.outputs, sub.operators, sub.name = tensors, [0], [2], [op], b"overhead"
    model.subgraphs = [sub]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pack(model))
    return path
