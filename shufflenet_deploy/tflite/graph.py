"""A .tflite flatbuffer as mutable objects: LiteRT's generated schema, model read/pack, op names, and `Graph`.

Everything goes through the object API of `ai_edge_litert.schema_py_generated` (flatc's Python output for
LiteRT's schema.fbs; TensorFlow 2.19's tensorflow.lite copy is the same output of an older schema, without the
ExternalBuffer tables and TensorType INT2, and importing it imports TensorFlow). A model is read whole into a
`ModelT` (`read_model`), inspected or changed in place, and re-serialised with `pack` (file identifier "TFL3").
Shapes, dtypes and buffers are the file's own: no interpreter is involved. Without ai-edge-litert (a
tflite-runtime install) importing this module raises a UserError naming it, which callers that can do without a
graph (the peak kernels of `sdeploy bench`) turn into a reason.

`Graph` wraps a model's first subgraph for the rewrite passes (export/tflite_rewrite.py): lookups recomputed on
demand (graphs are small), constants as numpy arrays, helpers that add op codes, tensors, buffers and operators,
and `save`, which first drops the tensors no operator uses any more and empties the buffers only they held.
"""
from __future__ import annotations

from collections import Counter, defaultdict
from pathlib import Path

import numpy as np

from ..errors import UserError

try:
    from ai_edge_litert import schema_py_generated as fb
except ImportError:  # tflite-runtime runs models but ships no schema: say so in one line, not a traceback
    raise UserError("building or reading .tflite graphs needs ai-edge-litert's schema "
                    "(ai_edge_litert.schema_py_generated), which tflite-runtime lacks",
                    "pip install ai-edge-litert") from None

BO = fb.BuiltinOperator
TT = fb.TensorType
FILE_IDENTIFIER = b"TFL3"
# BuiltinOperator value -> name ("CONV_2D", ...)
OP_NAMES: dict[int, str] = {v: k for k, v in vars(BO).items() if not k.startswith("_")}
# TensorType -> (dtype name, bytes per element); the names are part of ops.py's op signatures
DTYPES: dict[int, tuple[str, int]] = {
    TT.FLOAT32: ("float32", 4), TT.FLOAT16: ("float16", 2), TT.INT32: ("int32", 4), TT.UINT8: ("uint8", 1),
    TT.INT64: ("int64", 8), TT.BOOL: ("bool", 1), TT.INT16: ("int16", 2), TT.INT8: ("int8", 1),
    TT.FLOAT64: ("float64", 8)}
# TensorType -> numpy dtype, for constant buffers
NP_DTYPES: dict[int, type] = {TT.FLOAT32: np.float32, TT.FLOAT16: np.float16, TT.INT32: np.int32, TT.INT8: np.int8,
                              TT.UINT8: np.uint8, TT.INT64: np.int64, TT.INT16: np.int16}


def read_model(path_or_bytes) -> fb.ModelT:
    """A .tflite file (path, or its bytes) -> schema ModelT (the mutable object API)."""
    if isinstance(path_or_bytes, (bytes, bytearray, memoryview)):
        buf = bytes(path_or_bytes)
    else:
        buf = Path(path_or_bytes).read_bytes()
    return fb.ModelT.InitFromPackedBuf(buf, 0)


def pack(model) -> bytes:
    """A ModelT -> the bytes of a .tflite file."""
    import flatbuffers

    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=FILE_IDENTIFIER)
    return bytes(builder.Output())


def builtin_code(operator_code) -> int:
    """An OperatorCodeT's builtin operator (the larger of the two fields: codes > 127 live only in builtinCode)."""
    return max(int(operator_code.builtinCode), int(operator_code.deprecatedBuiltinCode))


def op_name(model, opcode_index: int) -> str:
    """The name of operator code `opcode_index`: "CONV_2D", "CUSTOM:<custom code>", or "OP<n>" if unknown."""
    code = model.operatorCodes[opcode_index]
    builtin = builtin_code(code)
    if builtin == BO.CUSTOM:
        return f"CUSTOM:{(code.customCode or b'').decode(errors='replace')}"
    return OP_NAMES.get(builtin, f"OP{builtin}")


def is_const(model, tensor) -> bool:
    """Whether a TensorT holds constant data (a non-empty buffer of its own, inline or at an offset)."""
    if tensor.buffer <= 0 or tensor.buffer >= len(model.buffers):
        return False
    buf = model.buffers[tensor.buffer]
    return (buf.data is not None and len(buf.data) > 0) or bool(getattr(buf, "size", 0))


class Graph:
    """A model and its first subgraph (`sg`), changed in place."""

    def __init__(self, model):
        self.model = model
        self.sg = model.subgraphs[0]

    @classmethod
    def load(cls, path: Path) -> "Graph":
        return cls(read_model(Path(path)))

    @classmethod
    def from_bytes(cls, buf: bytes) -> "Graph":
        return cls(read_model(buf))

    # -- lookups (recomputed on demand: graphs are small) ---------------------------------------------------
    def code(self, op) -> int:
        return builtin_code(self.model.operatorCodes[op.opcodeIndex])

    def name(self, op) -> str:
        return op_name(self.model, op.opcodeIndex)

    def producers(self) -> dict[int, object]:
        return {int(t): op for op in self.sg.operators for t in op.outputs}

    def consumers(self) -> dict[int, list]:
        out = defaultdict(list)
        for op in self.sg.operators:
            for t in op.inputs:
                if t >= 0:
                    out[int(t)].append(op)
        return out

    def outputs(self) -> set[int]:
        return {int(t) for t in self.sg.outputs}

    def tensor(self, index: int):
        return self.sg.tensors[int(index)]

    def shape(self, index: int) -> list[int]:
        return [int(s) for s in self.tensor(index).shape]

    def const(self, index: int) -> np.ndarray | None:
        t = self.tensor(index)
        data = self.model.buffers[t.buffer].data if t.buffer else None
        if data is None or len(data) == 0:
            return None
        return np.frombuffer(np.asarray(data, np.uint8).tobytes(), NP_DTYPES[t.type]).reshape(self.shape(index))

    def is_int8(self, index: int) -> bool:
        return self.tensor(index).type == TT.INT8

    # -- building ----------------------------------------------------------------------------------------------
    def opcode(self, builtin: int, version: int = 1) -> int:
        for i, oc in enumerate(self.model.operatorCodes):
            if builtin_code(oc) == builtin:
                oc.version = max(int(oc.version), version)
                return i
        oc = fb.OperatorCodeT()
        oc.builtinCode, oc.deprecatedBuiltinCode, oc.version = builtin, min(builtin, 127), version
        self.model.operatorCodes.append(oc)
        return len(self.model.operatorCodes) - 1

    def add_tensor(self, name: str, shape, type_: int, *, like=None, data: np.ndarray | None = None) -> int:
        t = fb.TensorT()
        t.name, t.shape, t.type = name.encode() if isinstance(name, str) else name, np.asarray(shape, np.int32), type_
        if like is not None and like.quantization is not None:
            q = fb.QuantizationParametersT()
            src = like.quantization
            q.scale, q.zeroPoint, q.quantizedDimension = src.scale, src.zeroPoint, src.quantizedDimension
            q.min, q.max = src.min, src.max
            t.quantization = q
        t.buffer = 0
        if data is not None:
            t.buffer = self.add_buffer(data)
        self.sg.tensors.append(t)
        return len(self.sg.tensors) - 1

    def add_buffer(self, data: np.ndarray) -> int:
        b = fb.BufferT()
        b.data = np.frombuffer(np.ascontiguousarray(data).tobytes(), np.uint8).copy()
        self.model.buffers.append(b)
        return len(self.model.buffers) - 1

    def make_op(self, builtin: int, inputs, outputs, *, options_type=0, options=None, version: int = 1):
        op = fb.OperatorT()
        op.opcodeIndex = self.opcode(builtin, version)
        op.inputs, op.outputs = np.asarray(inputs, np.int32), np.asarray(outputs, np.int32)
        op.builtinOptionsType, op.builtinOptions = options_type, options
        return op

    # -- saving ------------------------------------------------------------------------------------------------
    def to_bytes(self) -> bytes:
        """The model as .tflite bytes, after dropping what no operator uses any more (`_compact`)."""
        self._compact()
        return pack(self.model)

    def save(self, path: Path) -> None:
        Path(path).write_bytes(self.to_bytes())

    def _compact(self) -> None:
        """Drop tensors no op or graph boundary refers to; empty the buffers only they held."""
        sg = self.sg
        used = sorted({int(t) for op in sg.operators for t in list(op.inputs) + list(op.outputs) if t >= 0}
                      | {int(t) for t in sg.inputs} | {int(t) for t in sg.outputs})
        remap = {old: new for new, old in enumerate(used)}
        sg.tensors = [sg.tensors[i] for i in used]
        for op in sg.operators:
            op.inputs = np.asarray([remap[int(t)] if t >= 0 else -1 for t in op.inputs], np.int32)
            op.outputs = np.asarray([remap[int(t)] for t in op.outputs], np.int32)
        sg.inputs = np.asarray([remap[int(t)] for t in sg.inputs], np.int32)
        sg.outputs = np.asarray([remap[int(t)] for t in sg.outputs], np.int32)
        for sig in self.model.signatureDefs or []:
            for m in list(sig.inputs or []) + list(sig.outputs or []):
                m.tensorIndex = remap[int(m.tensorIndex)]
        live = {t.buffer for g in self.model.subgraphs for t in g.tensors}
        live |= {m.buffer for m in self.model.metadata or []}  # e.g. min_runtime_version lives in a buffer
        for i, buffer in enumerate(self.model.buffers):
            if i and i not in live:
                buffer.data = None  # held only dropped tensors or replaced weights

    def histogram(self) -> dict[str, int]:
        """{op name: count} over the subgraph's operators."""
        return dict(sorted(Counter(self.name(op) for op in self.sg.operators).items()))
