"""Per-op time of a .tflite model on a device — the sweep's and `sdeploy bench --op-profile`'s one method each.

Linux devices (`single_op_times`): each distinct op signature is cut into a single-op model (tflite/opcut.py) and
all are timed in ONE runner invocation (`runner.py --many`, interleaved rounds), minus the invoke overhead of a
trivial one-op model. A zero PAD that XNNPACK folds into the next conv counts 0 (`in_graph_ms`; its alone-time is
kept as raw_ms). Android (`android_op_times`): benchmark_model's own op profile (--enable_op_profiling), mapped to
the model's ops. Both return `OpTimes`, stored in documents as {op_method, overhead_ms, ops: [tflite/ops.py OpInfo
dicts + time_ms]} (its `to_dict`: a BenchResult's `op_times`, a sweep's per-precision entry).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from .raw import TimedModel

OpRecord = dict[str, Any]  # one op as documents store it: tflite/ops.py OpInfo.to_dict() + raw_ms/time_ms/error


@dataclass(frozen=True)
class OpTimes:
    """A model's per-op times by one method (OP_METHOD_SINGLE or OP_METHOD_ANDROID)."""
    op_method: str
    overhead_ms: float  # the invoke overhead subtracted from each single-op time (0 for benchmark_model's profile)
    ops: list[OpRecord]
    distinct_ops: int | None = None  # single-op models cut (one per distinct signature)

    def to_dict(self) -> dict[str, Any]:
        out = {"op_method": self.op_method, "overhead_ms": self.overhead_ms, "ops": self.ops}
        if self.distinct_ops is not None:
            out["distinct_ops"] = self.distinct_ops
        return out

OP_METHOD_SINGLE = ("single-op models cut from the real TFLite file (flatbuffer rewrite, one per distinct op "
                    "signature), timed together in one runner process (--many, interleaved rounds; at the sweep's "
                    "end every model's ops are re-timed together in one process, 2 interpreters each), minus the "
                    "invoke overhead of a trivial one-op model; a zero PAD that XNNPACK folds into the next conv "
                    "counts 0 (its time alone is kept as raw_ms)")
OP_METHOD_ANDROID = "benchmark_model --enable_op_profiling (run order), mapped to the model's ops"


def op_dtype(ops) -> str:
    """"int8" when the model's first op reads int8 (a full-integer model), else "float32"."""
    def first_input(o):
        inputs = o["inputs"] if isinstance(o, dict) else o.inputs
        return inputs[0] if inputs else None

    return "int8" if any(first_input(o) and first_input(o)[1] == "int8" for o in ops) else "float32"


def single_op_times(measure_many: Callable[..., dict[str, TimedModel]], tflite: Path, workdir: Path, *,
                    threads: int, runs: int = 15, rounds: int = 3,
                    progress: Callable[[str], None] = lambda m: None) -> OpTimes:
    """Per-op timings of `tflite` by the single-op method, timed with a backend's `measure_many`."""
    from ..tflite import opcut

    ops, files = opcut.cut_model(tflite, workdir)
    dtype = op_dtype(ops)
    ids = {"__overhead__": opcut.overhead_model(workdir / f"overhead_{dtype}.tflite", dtype), **files}
    timed = measure_many(ids, threads=threads, runs=runs, warmup=3, rounds=rounds, progress=progress)
    overhead = timed["__overhead__"].median_ms or 0.0
    out = []
    for op in ops:
        entry = timed.get(op.signature) or TimedModel(op.signature)
        op_dict = op.to_dict()
        out.append({**op_dict, "raw_ms": entry.median_ms, "time_ms": in_graph_ms(op_dict, entry.median_ms, overhead),
                    "error": entry.error})
    return OpTimes(OP_METHOD_SINGLE, overhead, out, len(files))


def in_graph_ms(op: dict, raw_ms: float | None, overhead_ms: float) -> float | None:
    """An op's time in its graph from its single-op time: minus the invoke overhead; 0 for a PAD that XNNPACK folds
    into the next conv (ops.py `fused_into`; its alone-time stays in raw_ms)."""
    if raw_ms is None:
        return None
    if op.get("fused_into") is not None:
        return 0.0
    return max(raw_ms - overhead_ms, 0.0)


_XNN_GROUPS = (("depthwise convolution", "depthwise_conv"), ("convolution", "conv"),
               ("fully connected", "dense_conv"), ("transpose", "shuffle"), ("copy", "shuffle"),
               ("reshape", "shuffle"), ("pooling", "pooling"), ("mean", "pooling"), ("concatenate", "concat_add"),
               ("add", "concat_add"), ("convert", "quant"), ("quantize", "quant"))


def android_op_times(op_profile: list[dict[str, Any]], tflite: Path) -> OpTimes:
    """benchmark_model's run-order op profile -> the same OpTimes, op by op where it can be mapped.

    Builtin rows (CONV_2D, TRANSPOSE, ...) map in order onto the model's ops of that type; XNNPACK rows
    ("Convolution (NHWC, F32) GEMM", ...) map in order onto the model's convolutions, other XNNPACK rows by
    name to a group; the aggregate "TfLiteXNNPackDelegate" rows are dropped when per-op XNNPACK rows exist.
    """
    from ..tflite.ops import model_ops

    ops = [o.to_dict() for o in model_ops(tflite)]
    rows = [r for r in op_profile or [] if r.get("avg_ms") is not None]
    if any(not r["op"].startswith("TfLite") and not r["op"].isupper() for r in rows):
        rows = [r for r in rows if not r["op"].startswith("TfLite")]
    queues: dict[str, list[dict]] = {}
    for op in ops:
        queues.setdefault(op["op"], []).append(op)
        if op["op"] in ("CONV_2D", "DEPTHWISE_CONV_2D"):
            queues.setdefault("__conv__", []).append(op)
    extra = []
    for row in rows:
        name = row["op"]
        if name.isupper() or name.startswith("TfLite"):
            queue = queues.get(name)
            target = queue.pop(0) if queue else None
        else:
            lname = name.lower()
            group = next((g for key, g in _XNN_GROUPS if lname.startswith(key)), "other")
            target = queues["__conv__"].pop(0) if group in ("conv", "depthwise_conv") and queues.get("__conv__") \
                else None
            if target is None:
                extra.append({"op": name, "group": "dense_conv" if group == "conv" else group,
                              "time_ms": row["avg_ms"], "macs": 0, "in_bytes": 0, "out_bytes": 0,
                              "signature": None})
                continue
        if target is None:
            extra.append({"op": name, "group": "other", "time_ms": row["avg_ms"], "macs": 0, "in_bytes": 0,
                          "out_bytes": 0, "signature": None})
        else:
            target["time_ms"] = (target.get("time_ms") or 0.0) + row["avg_ms"]
    return OpTimes(OP_METHOD_ANDROID, 0.0, ops + extra)
