"""The one precision table: what an export writes, what a file's name may say, which peak kernel holds a row to
account. (Defined three ways before: the export's list, the peak kernels' and the file-name guesser's.)"""
from __future__ import annotations

EXPORT = ("fp32", "fp16", "int8")  # `sdeploy export --precision`, in the order the export writes them
PEAK_KERNELS = ("fp32", "int8")  # the peak kernels a device measures (bench/peak.py)
# what a bare .tflite's name may end with (model_int8.tflite): TFLite's quantization modes, not only ours
FILE_NAMES = ("fp32", "fp16", "int8", "int16", "int16x8", "dynamic", "uint8")
ONNX = "onnx"  # an export's model.onnx, timed under ONNX Runtime (`sdeploy bench --runtime`)
ONNX_INT8 = "onnx_int8"  # its model_int8.onnx (`sdeploy export --onnx-int8`), under ONNX Runtime too
ONNX_ROWS = (ONNX, ONNX_INT8)  # the rows ONNX Runtime ran (a bench row's precision names the file it ran)


def arithmetic(precision: str) -> str:
    """A bench row's arithmetic: ONNX Runtime's rows are named by their file (onnx = fp32, onnx_int8 = int8)."""
    return {ONNX: "fp32", ONNX_INT8: "int8"}.get(precision, precision)


def peak_precision(precision: str) -> str:
    """The peak a row's GMAC/s is held to: its arithmetic's (ONNX Runtime's rows too: the peaks are measured
    through LiteRT's kernels); fp16 has no peak kernel (no % of peak)."""
    return arithmetic(precision)
