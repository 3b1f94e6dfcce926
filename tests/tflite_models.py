"""Tiny real TFLite models for tests that need an interpreter but not a ShuffleNet conversion.

Built with TensorFlow's own converter (conv, depthwise conv, dense) so they exercise the same kernels the
runner and interpreters use; cached per test session by the `tiny_tflite` fixture in conftest.py.
"""
from __future__ import annotations

from pathlib import Path

from shufflenet_deploy.export.keras_convert import keras_to_tflite


def make_tiny_tflite(path: Path, precision: str = "fp32", input_size: int = 16, seed: int = 0) -> Path:
    """Write a small conv net as a .tflite file: fp32, or full-integer int8 with int8 input/output."""
    import os

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import tensorflow as tf

    tf.keras.utils.set_random_seed(seed)
    inputs = tf.keras.Input((input_size, input_size, 3), batch_size=1, name="input")
    x = tf.keras.layers.Conv2D(8, 3, padding="same", activation="relu")(inputs)
    x = tf.keras.layers.DepthwiseConv2D(3, padding="same")(x)
    x = tf.keras.layers.GlobalAveragePooling2D()(x)
    outputs = tf.keras.layers.Dense(10, name="logits")(x)
    model = tf.keras.Model(inputs, outputs)
    path = Path(path)
    path.write_bytes(keras_to_tflite(model, precision, seed=seed))
    return path


def make_pad_tflite(path: Path, precision: str = "fp32", size: int = 16) -> Path:
    """Three zero PADs over H/W: one feeding only a conv (XNNPACK folds it), one feeding a max-pool, one feeding
    a conv and an add (two consumers): tflite/ops.py must mark only the first as fused."""
    import os

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import tensorflow as tf

    tf.keras.utils.set_random_seed(0)
    layers = tf.keras.layers
    inputs = tf.keras.Input((size, size, 4), batch_size=1, name="input")
    x = layers.Conv2D(8, 3, strides=2, activation="relu")(layers.ZeroPadding2D(1)(inputs))
    x = layers.MaxPool2D(3, 2)(layers.ZeroPadding2D(1)(x))
    padded = layers.ZeroPadding2D(1)(x)
    x = layers.Add()([layers.Conv2D(8, 3, activation="relu")(padded), layers.Cropping2D(1)(padded)])
    model = tf.keras.Model(inputs, layers.GlobalAveragePooling2D()(x))
    path = Path(path)
    path.write_bytes(keras_to_tflite(model, precision))
    return path
