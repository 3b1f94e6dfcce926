"""Per-layer int8 error: every quantized activation of the shipped int8 TFLite against the same tensor of the
shipped fp32 TFLite, on the held-out images.

Method, decided by trying the three candidates on the bundled models (2026-12-01):
- **Preserved tensors in two interpreters (chosen).** Both shipped files run in LiteRT with
  `experimental_preserve_all_tensors` and without the XNNPACK delegate (a delegated partition keeps its
  intermediates private). The tensors are matched op to op: both graphs come from the same saved_model through
  the same converter and the same lowering passes, so their op sequences agree except for the int8 graph's
  QUANTIZE/DEQUANTIZE ops; a sequence alignment on (op, output shape) pairs them, and the names (which differ by
  the int8 converter's `;Const_N` suffixes) are kept for the reader. It measures exactly the files we ship,
  after lowering, needs no TensorFlow (so `sdeploy quant-report` runs on a board) and costs two interpreter runs
  per image.
- TFLite's QuantizationDebugger needs the converter object inside the TensorFlow worker and analyses the
  converter's graph *before* our lowering passes (it would report tensors the shipped file does not have), and
  its per-layer mode re-quantizes each layer's float input, which hides the error accumulation users see.
- ai-edge-quantizer's validation compares models that ai-edge-quantizer itself produced (its recipes), not a
  TensorFlow-converted file; adopting it means replacing the converter, not measuring ours.

The error is the accumulated one (each int8 tensor against the fp32 tensor computed from the same image, so a
saturating layer's damage shows in every layer after it), which is where accuracy is lost. Per tensor: SNR in
dB (10 log10 of signal over error energy), RMSE relative to the fp32 tensor's observed range, the quantization
scale and zero point, and the fraction of fp32 values outside the int8 grid's range (clipped: saturation); and
the median SNR of its channels (`channel_snr_db`): TFLite quantizes an activation tensor with one scale, so a
few outlier channels can set the grid while every other channel keeps a few int8 steps, which the whole
tensor's SNR (dominated by the outliers' signal) hides; `outlier_ratio` (largest channel |max| / the median
channel's) names such tensors.
"""
from __future__ import annotations

import dataclasses
import difflib
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..int8_records import LayerRow
from ..tflite.graph import Graph

SKIPPED_OPS = {"QUANTIZE", "DEQUANTIZE"}
# ops that move or pad values without computing: they carry their input's error and grid, never add to it
DATA_MOVEMENT = {"RESHAPE", "TRANSPOSE", "PAD", "PADV2", "GATHER", "CONCATENATION", "SPLIT", "SPLIT_V", "SLICE",
                 "STRIDED_SLICE", "SQUEEZE", "EXPAND_DIMS"}


def _ops(graph: Graph) -> list[tuple[str, tuple, int, str, list[int]]]:
    """(op name, output shape, output tensor, tensor name, input tensors) for each op with one output, in order."""
    out = []
    for op in graph.sg.operators:
        name = graph.name(op)
        if name in SKIPPED_OPS or len(op.outputs) != 1:
            continue
        t = int(op.outputs[0])
        out.append((name, tuple(graph.shape(t)), t, _text(graph.tensor(t).name), [int(i) for i in op.inputs if i >= 0]))
    return out


def _text(name) -> str:
    return name.decode() if isinstance(name, bytes) else str(name)


def quantized_activations(int8_path: Path) -> list[int]:
    """Indices of the int8 model's quantized activation tensors (op outputs, not weights), in op order."""
    graph = Graph.load(int8_path)
    return [int(op.outputs[0]) for op in graph.sg.operators
            if len(op.outputs) == 1 and graph.is_int8(int(op.outputs[0])) and graph.name(op) not in SKIPPED_OPS
            and _qparams(graph, int(op.outputs[0])) is not None]


def _qparams(graph: Graph, index: int) -> tuple[float, int] | None:
    q = graph.tensor(index).quantization
    if q is None or q.scale is None or len(q.scale) != 1:
        return None
    return float(q.scale[0]), int(q.zeroPoint[0])


@dataclass
class TensorPair:
    """A quantized int8 activation and the fp32 tensor it is compared with (None where the graphs disagree)."""
    depth: int  # op index in the int8 graph, QUANTIZE/DEQUANTIZE left out
    op: str
    tensor: str
    shape: tuple[int, ...]
    int8_index: int
    inputs: tuple[int, ...]  # the quantized activations this op reads (graph edges: float_island walks them)
    fp32_index: int | None
    fp32_tensor: str | None
    scale: float
    zero_point: int


def match(fp32_path: Path, int8_path: Path) -> list[TensorPair]:
    """Pair each quantized int8 activation with its fp32 tensor (None when the graphs disagree there)."""
    g32, g8 = Graph.load(fp32_path), Graph.load(int8_path)
    ops32, ops8 = _ops(g32), _ops(g8)
    key = lambda o: (o[0], o[1])  # noqa: E731 - op name and output shape
    matcher = difflib.SequenceMatcher(a=[key(o) for o in ops8], b=[key(o) for o in ops32], autojunk=False)
    partner = {}
    for block in matcher.get_matching_blocks():
        for k in range(block.size):
            partner[block.a + k] = ops32[block.b + k]
    wanted = set(quantized_activations(int8_path))
    pairs = []
    for depth, (op, shape, t8, name8, inputs) in enumerate(ops8):
        if t8 not in wanted:
            continue
        scale, zero_point = _qparams(g8, t8)
        other = partner.get(depth)
        pairs.append(TensorPair(depth, op, name8, tuple(shape), t8, tuple(i for i in inputs if i in wanted),
                                other[2] if other else None, other[3] if other else None, scale, zero_point))
    return pairs


class _Sums:
    __slots__ = ("n", "clipped", "lo", "hi", "channel_signal", "channel_error", "channel_absmax")

    def __init__(self):
        self.n = self.clipped = 0
        self.lo, self.hi = math.inf, -math.inf
        self.channel_signal = self.channel_error = self.channel_absmax = None  # per channel (last axis, NHWC)


def layer_errors(fp32_path: Path, int8_path: Path, x_nhwc: np.ndarray) -> list[LayerRow]:
    """One row per quantized int8 activation: its op, depth, qparams and error against fp32 on X (NHWC float)."""
    from .verify import quantize

    pairs = match(fp32_path, int8_path)
    interp32 = _preserving(fp32_path)
    interp8 = _preserving(int8_path)
    in32, in8 = interp32.get_input_details()[0], interp8.get_input_details()[0]
    sums = [_Sums() for _ in pairs]
    for sample in x_nhwc:
        interp32.set_tensor(in32["index"], sample[None].astype(np.float32))
        interp8.set_tensor(in8["index"], quantize(sample[None], in8))
        interp32.invoke()
        interp8.invoke()
        for pair, s in zip(pairs, sums):
            if pair.fp32_index is None:
                continue
            f = interp32.get_tensor(pair.fp32_index).astype(np.float64)
            q = interp8.get_tensor(pair.int8_index).astype(np.float64)
            if f.shape != q.shape:
                pair.fp32_index = None
                continue
            scale, zp = pair.scale, pair.zero_point
            d = (q - zp) * scale
            channels = f.shape[-1] if f.ndim else 1
            per_f, per_e = (f ** 2).reshape(-1, channels).sum(0), ((f - d) ** 2).reshape(-1, channels).sum(0)
            s.channel_signal = per_f if s.channel_signal is None else s.channel_signal + per_f
            s.channel_error = per_e if s.channel_error is None else s.channel_error + per_e
            per_max = np.abs(f).reshape(-1, channels).max(0)
            s.channel_absmax = per_max if s.channel_absmax is None else np.maximum(s.channel_absmax, per_max)
            f = f.ravel()
            s.n += f.size
            lo, hi = (-128 - zp) * scale, (127 - zp) * scale
            s.clipped += int(np.count_nonzero((f < lo - scale / 2) | (f > hi + scale / 2)))
            s.lo, s.hi = min(s.lo, float(f.min())), max(s.hi, float(f.max()))
    rows = [_row(pair, s) for pair, s in zip(pairs, sums)]
    snr_of = {pair.int8_index: row.snr_db for pair, row in zip(pairs, rows)}
    drops = []
    for pair, row in zip(pairs, rows):  # the error this op adds: its SNR below its noisiest input's
        before = [snr_of[i] for i in pair.inputs if snr_of.get(i) is not None]
        drops.append(round(min(before) - row.snr_db, 2) if before and row.snr_db is not None else None)
    return [dataclasses.replace(row, snr_drop_db=drop) for row, drop in zip(rows, drops)]


def _preserving(path: Path):
    """An interpreter that keeps every intermediate tensor readable (no XNNPACK: it hides its partitions')."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    interpreter = Interpreter(model_path=str(path), num_threads=1, experimental_preserve_all_tensors=True,
                              experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    interpreter.allocate_tensors()
    return interpreter


def _row(pair: TensorPair, s: _Sums) -> LayerRow:
    row = {"depth": pair.depth, "op": pair.op, "tensor": pair.tensor, "shape": pair.shape, "scale": pair.scale,
           "zero_point": pair.zero_point, "fp32_tensor": pair.fp32_tensor, "index": pair.int8_index,
           "inputs": pair.inputs}
    if not s.n:
        return LayerRow(**row, matched=False)
    span = s.hi - s.lo
    signal, error = float(s.channel_signal.sum()), float(s.channel_error.sum())
    rmse = math.sqrt(error / s.n)
    live = s.channel_signal > 1e-12 * max(float(s.channel_signal.max()), 1e-30)  # dead channels (ReLU) say nothing
    channel_snr = 10 * np.log10(s.channel_signal[live] / np.maximum(s.channel_error[live], 1e-30))
    typical = float(np.median(np.minimum(channel_snr, 99.0))) if live.any() else None
    ratio = float(s.channel_absmax[live].max() / max(np.median(s.channel_absmax[live]), 1e-30)) if live.any() else None
    snr = math.inf if error == 0 else 10 * math.log10(max(signal, 1e-30) / error)
    return LayerRow(**row, matched=True, snr_db=round(snr, 2) if math.isfinite(snr) else 99.0,
                    channel_snr_db=None if typical is None else round(typical, 2),
                    outlier_ratio=None if ratio is None else round(ratio, 2),
                    rmse_rel=round(rmse / span, 6) if span > 0 else 0.0, clipped=round(s.clipped / s.n, 6),
                    fp32_min=round(s.lo, 5), fp32_max=round(s.hi, 5),
                    int8_min=round((-128 - pair.zero_point) * pair.scale, 5),
                    int8_max=round((127 - pair.zero_point) * pair.scale, 5))


SATURATING = 1e-3  # clipped fraction from which a layer counts as saturating (min/max ranges clip a little)
OUTLIERS = 10.0  # largest channel's |max| over the median channel's: a few channels set the tensor's one scale
OUTLIER_DAMAGE_DB = 20.0  # ... and its typical channel keeps less SNR than this: the outliers cost accuracy


def has_outliers(row: LayerRow) -> bool:
    """TFLite quantizes an activation tensor with one scale: when a few channels are OUTLIERS times larger than
    the typical one, they set the grid and every other channel keeps only a few int8 steps. The tensor's own SNR
    hides it (its signal is the outliers'); its typical channel's SNR (`channel_snr_db`) shows it. Trained
    models reach ratios of 10-14 harmlessly (typical channel 23-36 dB on the g8 digits model): both must hold."""
    return ((row.outlier_ratio or 0) > OUTLIERS
            and row.channel_snr_db is not None and row.channel_snr_db < OUTLIER_DAMAGE_DB)


def worst(rows: list[LayerRow], k: int = 5) -> list[LayerRow]:
    """The K computing layers to look at first: outlier-dominated ones by outlier ratio (a cause: the grid every
    later layer inherits), then saturating ones (clipped > 0.1%) by clipped fraction, then the ones that add the
    most error (SNR drop from their input), then the lowest SNR. Data movement is left out: it repeats its
    input's numbers."""
    matched = [r for r in rows if r.matched and r.op not in DATA_MOVEMENT]

    def rank(r: LayerRow):
        saturating, outliers = (r.clipped or 0) > SATURATING, has_outliers(r)
        return (-outliers, -r.outlier_ratio if outliers else 0, -saturating, -r.clipped if saturating else 0,
                -(r.snr_drop_db or 0), r.snr_db if r.snr_db is not None else 0)
    return sorted(matched, key=rank)[:k]


def float_island(rows: list[LayerRow], tensor: str) -> list[str]:
    """The layers to keep in float so that TENSOR is never quantized: its producer, and for an outlier-dominated
    tensor also every op that reads it up to the first computing one (through data movement such as the channel
    shuffle's reshapes). Keeping only the producer in float does not help there: its float output is quantized
    again, with the same outlier scale, at the next int8 op's input."""
    row = next((r for r in rows if r.tensor == tensor), None)
    if row is None or not has_outliers(row) or row.index is None:
        return [tensor]
    island, frontier = [tensor], {row.index}
    while frontier:
        readers = [r for r in rows if set(r.inputs) & frontier and r.tensor not in island]
        island += [r.tensor for r in readers]
        frontier = {r.index for r in readers if r.op in DATA_MOVEMENT}
    return island


def summary_line(row: LayerRow) -> str:
    """One line for a matched row (worst() returns only those)."""
    clip = f", {100 * row.clipped:.2f}% clipped" if row.clipped else ""
    if has_outliers(row):
        clip += (f", outlier channels {row.outlier_ratio:.0f}x the typical one set the scale (typical channel "
                 f"{row.channel_snr_db:.1f} dB)")
    return (f"#{row.depth} {row.op} {row.tensor[:60]}: SNR {row.snr_db:.1f} dB, RMSE "
            f"{100 * row.rmse_rel:.2f}% of range, scale {row.scale:.4g}{clip} (fp32 range "
            f"{row.fp32_min:.3g}..{row.fp32_max:.3g}, int8 grid {row.int8_min:.3g}..{row.int8_max:.3g})")
