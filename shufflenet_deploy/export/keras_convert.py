"""A small Keras model -> .tflite bytes, fp32 or full-integer int8 with int8 input/output.

For synthetic models only (tiny test models and benchmark models; the peak kernels are written without TensorFlow by tflite/build.py): the ShuffleNet
export itself goes through onnx2tf (tflite_convert.py). Calibration data is uniform noise in [low, high], which
is fine for timing kernels and for tests that compare runtimes with each other, never for a real model.
"""
from __future__ import annotations

import os

import numpy as np


def keras_to_tflite(model, precision: str, *, low: float = 0.0, high: float = 1.0, samples: int = 16,
                    seed: int = 0) -> bytes:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    if precision == "int8":
        rng = np.random.default_rng(seed)
        shape = tuple(model.inputs[0].shape)

        def representative():
            for _ in range(samples):
                yield [rng.uniform(low, high, shape).astype(np.float32)]

        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = representative
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.int8
    elif precision != "fp32":
        raise ValueError(f"precision must be fp32 or int8, not {precision!r}")
    return converter.convert()
