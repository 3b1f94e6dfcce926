"""model_int8.onnx: an int8 ONNX file for ONNX Runtime (`sdeploy export --onnx-int8`, issue 25).

ONNX Runtime's own quantizer writes it from the export's model.onnx: static QDQ (QuantizeLinear/DequantizeLinear
around every quantizable op), int8 weights per output channel on a 7-bit range, int8 activations with MinMax
ranges, calibrated on the same images as the TFLite int8 file.

Why the 7-bit weight range (`reduce_range`): ONNX Runtime's x86 int8 kernels without VNNI multiply with AVX2's
VPMADDUBSW, which saturates a pair of 8-bit products in int16; on the bundled digits model full-range weights
gave 76% top-1 agreement with model.onnx on this host and 100% with reduce_range. The file is judged on the
export's machine (usually x86) and run on the device (usually ARM, no saturation): with 7-bit weights the two
compute the same thing, so the judgement holds where the file runs, for a small cost in weight resolution.

On x86 without VNNI it is slower than ONNX Runtime's fp32 (1.5x on g3 and v2 1.0x at 224,
benchmarks/results/peers_issue25.txt); it is made for the devices whose int8 dot-product instructions (`asimddp`,
`i8mm`) its kernels use, where only `sdeploy bench --runtime onnxruntime` on the device can say which file wins.

It is judged like the TFLite int8 file: parity against model.onnx (the int8 cosine gate, verify.THRESHOLDS) on the
held-out images, and, with an int8 target, top-1 agreement (and drop, when labelled) against model.onnx on the
images the TFLite int8 was judged on, decided with 95% confidence (int8_repair.decide). There is no repair ladder
for it: a decided miss is not shipped (the manifest's `onnx_int8` block says why); the export goes on.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..int8_records import Int8Check, Int8Target, Verdict
from .int8_repair import compare_logits, decide

METHOD = ("onnxruntime.quantization.quantize_static: QDQ format, int8 weights per output channel on a 7-bit range "
          "(reduce_range), int8 activations, MinMax ranges")
FILE = "model_int8.onnx"


def quantize(src: Path, dst: Path, calibration_nchw: np.ndarray) -> None:
    """SRC (float model.onnx) -> DST (QDQ int8), calibrated one image at a time on CALIBRATION_NCHW."""
    import onnx
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    model = onnx.load(str(src))
    name = model.graph.input[0].name
    float_copy = dst.with_name(dst.stem + ".float.onnx")
    if _sums_as_adds(model):  # quantized from a copy: model.onnx itself stays as verified
        src = float_copy
        onnx.save(model, str(src))

    class Images(CalibrationDataReader):
        def __init__(self):
            self.batches = iter(calibration_nchw[i : i + 1].astype(np.float32) for i in range(len(calibration_nchw)))

        def get_next(self):
            x = next(self.batches, None)
            return None if x is None else {name: x}

    logging.disable(logging.WARNING)  # its advice to pre-process, printed for every model, is not for our users
    try:
        quantize_static(str(src), str(dst), Images(), quant_format=QuantFormat.QDQ, per_channel=True,
                        reduce_range=True, activation_type=QuantType.QInt8, weight_type=QuantType.QInt8)
    finally:
        logging.disable(logging.NOTSET)
        float_copy.unlink(missing_ok=True)


def _sums_as_adds(model) -> int:
    """Two-input Sum -> Add (the same arithmetic). The lowered model.onnx writes ShuffleNet's residual adds as Sum
    (onnx2tf's form, lower.py); ONNX Runtime's quantizer has no int8 Sum, so each stayed in float between a
    DequantizeLinear and a QuantizeLinear, with its ReLU unfused. Returns how many were rewritten."""
    count = 0
    for node in model.graph.node:
        if node.op_type == "Sum" and len(node.input) == 2:
            node.op_type = "Add"
            count += 1
    return count


@dataclass(frozen=True)
class Judgement:
    """The manifest's `onnx_int8` block: how the file was made, how it compares with model.onnx, and whether it
    was shipped (a decided miss of the int8 target is not)."""

    evaluated_on: str
    calibration: int  # images
    check: Int8Check
    target: Int8Target | None
    decision: str | None  # met | missed | undecided; None without a target
    verdicts: list[Verdict]
    why: str | None  # why it was not shipped

    @property
    def shipped(self) -> bool:
        return self.decision != "missed"

    def to_dict(self) -> dict:
        return {"method": METHOD, "evaluated_on": self.evaluated_on, "calibration": self.calibration,
                **self.check.to_dict(), "target": self.target.to_dict() if self.target else None,
                "decision": self.decision, "verdicts": [v.to_dict() for v in self.verdicts],
                "shipped": self.shipped, **({"why": self.why} if self.why else {})}


def judge(path: Path, reference: Path, x_eval: np.ndarray, labels: np.ndarray | None, eval_name: str,
          calibration: int, target: Int8Target | None) -> Judgement:
    """PATH against REFERENCE (model.onnx) on X_EVAL (the images the TFLite int8 file was judged on)."""
    from .verify import run_onnx

    return judge_logits(run_onnx(path, x_eval), run_onnx(reference, x_eval), labels, eval_name, calibration, target)


def judge_logits(int8_logits: np.ndarray, fp32_logits: np.ndarray, labels: np.ndarray | None, eval_name: str,
                 calibration: int, target: Int8Target | None) -> Judgement:
    """judge() on the two files' logits: agreement (and drop), decided against TARGET with 95% confidence."""
    check = compare_logits(int8_logits, fp32_logits, labels)
    if target is None:
        return Judgement(eval_name, calibration, check, None, None, [], None)
    decision, verdicts = decide(target, check)
    why = None if decision != "missed" else (
        "its top-1 agreement with model.onnx misses the int8 target with 95% confidence: "
        + "; ".join(v.text() for v in verdicts if v.state == "missed"))
    return Judgement(eval_name, calibration, check, target, decision, verdicts, why)
