"""The device's peak compute, measured through the same TFLite runtime the models use (not a datasheet).

Two large, cache-friendly-enough kernels per precision, built on the host with TensorFlow's converter and timed
on the device with runner.py (`--many`): a 1x1 convolution (56x56x256 -> 256, 205.5 M MACs) and a matmul as
FULLY_CONNECTED (64 x 1024 x 1024, 67.1 M MACs). fp32, and full-integer int8 with int8 input/output. The peak of
a precision is the faster of its two kernels, in GMAC/s (1 MAC = 1 multiply-add), at the sweep's thread count.
Stored in the sweep's results as `peak` records: {device, precision, threads, kernel, macs, median_ms, gmacs}.
"""
from __future__ import annotations

from pathlib import Path


from ..export.keras_convert import keras_to_tflite

KERNELS = {
    # name: (input shape, builder)
    "conv1x1_56x56x256x256": (1, 56, 56, 256),
    "matmul_64x1024x1024": (64, 1024),
}
KERNEL_MACS = {"conv1x1_56x56x256x256": 56 * 56 * 256 * 256, "matmul_64x1024x1024": 64 * 1024 * 1024}
PRECISIONS = ("fp32", "int8")


def build_kernel(kernel: str, precision: str, path: Path, seed: int = 0) -> Path:
    """Write one peak-kernel .tflite (cached by path)."""
    import os

    path = Path(path)
    if path.exists():
        return path
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import tensorflow as tf

    tf.keras.utils.set_random_seed(seed)
    shape = KERNELS[kernel]
    inputs = tf.keras.Input(shape[1:], batch_size=shape[0], name="input")
    if kernel.startswith("conv"):
        outputs = tf.keras.layers.Conv2D(256, 1, use_bias=True)(inputs)
    else:
        outputs = tf.keras.layers.Dense(1024, use_bias=True)(inputs)
    model = tf.keras.Model(inputs, outputs)
    data = keras_to_tflite(model, precision, low=-1.0, high=1.0, samples=8, seed=seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(data)
    tmp.replace(path)
    return path


def build_all(folder: Path) -> dict[tuple[str, str], Path]:
    """{(kernel, precision): path} for every peak kernel, built once per TensorFlow version into `folder`."""
    from importlib.metadata import version

    folder = Path(folder) / f"tf{version('tensorflow')}"
    return {(k, p): build_kernel(k, p, folder / f"peak_{k}_{p}.tflite") for k in KERNELS for p in PRECISIONS}


def peak_records(device: str, threads: int, timings: dict[tuple[str, str], float | None]) -> list[dict]:
    """{(kernel, precision): median ms} -> `peak` records (one per kernel and precision)."""
    out = []
    for (kernel, precision), ms in sorted(timings.items()):
        gmacs = KERNEL_MACS[kernel] / (ms * 1e-3) / 1e9 if ms else None
        out.append({"device": device, "precision": precision, "threads": threads, "kernel": kernel,
                    "macs": KERNEL_MACS[kernel], "median_ms": ms, "gmacs": gmacs})
    return out


def peak_gmacs(records: list[dict], precision: str, threads: int | None = None) -> float | None:
    """The precision's peak (best kernel) from `peak` records, or None when none was measured."""
    values = [r["gmacs"] for r in records or [] if r.get("precision") == precision and r.get("gmacs")
              and (threads is None or r.get("threads") == threads)]
    return max(values) if values else None
