"""The one precision table: what an export writes, what a file's name may say, which peak kernel holds a row to
account. (Defined three ways before: the export's list, the peak kernels' and the file-name guesser's.)"""
from __future__ import annotations

EXPORT = ("fp32", "fp16", "int8")  # `sdeploy export --precision`, in the order the export writes them
PEAK_KERNELS = ("fp32", "int8")  # the peak kernels a device measures (bench/peak.py)
# what a bare .tflite's name may end with (model_int8.tflite): TFLite's quantization modes, not only ours
FILE_NAMES = ("fp32", "fp16", "int8", "int16", "int16x8", "dynamic", "uint8")
ONNX = "onnx"  # an export's model.onnx, timed under ONNX Runtime (`sdeploy bench --runtime`)


def peak_precision(precision: str) -> str:
    """The peak a row's GMAC/s is held to: ONNX Runtime's fp32 model the device's fp32 peak (measured through
    LiteRT's kernels); every other row its own precision's (fp16 has no peak kernel: no % of peak)."""
    return "fp32" if precision == ONNX else precision
