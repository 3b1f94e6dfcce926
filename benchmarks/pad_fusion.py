"""Does a zero PAD before a conv cost anything inside a LiteRT/XNNPACK graph? (why tflite/ops.py counts it 0)

    .venv/bin/python benchmarks/pad_fusion.py [--out benchmarks/results/pad_fusion.json]

For two shapes from ShuffleNet/MobileNet exports (the stem: [1,224,224,3] -> 3x3 stride-2 conv to 24 channels;
a stride-2 unit: [1,56,56,120] -> 3x3 stride-2 depthwise conv) it builds, fp32 and int8 (TF's converter):
  pad alone        PAD(1 px over H and W)
  pad -> conv      PAD then the VALID conv (what onnx2tf writes for PyTorch's symmetric padding)
  conv alone       the same VALID conv on an input already of the padded size
and times all of them in ONE runner process (interleaved rounds, 3 interpreters each). If XNNPACK folds the PAD
into the conv, "pad -> conv" / "conv alone" is ~1.00 while "pad alone" is not free: timing single ops one by one
would charge the PAD's alone-time to a graph that never pays it. Ratios within this one run are what count.
"""
from __future__ import annotations

import argparse
import functools
import json
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
from benchmarks.interleaved import time_models  # noqa: E402
CASES = {"stem [1,224,224,3] conv 3x3/2 ->24": ((224, 224, 3), "conv", 24),
         "unit [1,56,56,120] depthwise 3x3/2": ((56, 56, 120), "depthwise", None)}


def build(kind: str, shape, op: str, out_channels, precision: str) -> bytes:
    import tensorflow as tf

    from shufflenet_deploy.export.keras_convert import keras_to_tflite

    tf.keras.utils.set_random_seed(0)
    h, w, c = shape
    padded = (h + 2, w + 2, c)
    inputs = tf.keras.Input(padded if kind == "conv alone" else shape, batch_size=1)
    x = inputs if kind == "conv alone" else tf.keras.layers.ZeroPadding2D(1)(inputs)
    if kind != "pad alone":
        x = (tf.keras.layers.Conv2D(out_channels, 3, strides=2, activation="relu") if op == "conv" else
             tf.keras.layers.DepthwiseConv2D(3, strides=2, activation="relu"))(x)
    return keras_to_tflite(tf.keras.Model(inputs, x), precision)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path)
    parser.add_argument("--rounds", type=int, default=12)
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    kinds = ("pad alone", "pad -> conv", "conv alone")
    builds = {f"{case}|{precision}|{kind}": functools.partial(build, kind, shape, op, out_channels, precision)
              for case, (shape, op, out_channels) in CASES.items() for precision in ("fp32", "int8") for kind in kinds}
    report = time_models(builds, args.rounds, timeout=1800)
    median = {e["id"]: e["median_ms"] for e in report["results"]}
    print("$ .venv/bin/python benchmarks/pad_fusion.py --out benchmarks/results/pad_fusion.json")
    print(f"# {report['runtime']['name']} {report['runtime']['version']}, 1 thread, {args.rounds} interleaved rounds x "
          f"20 runs, 3 interpreters per model; load {os.getloadavg()[0]:.2f}")
    print(f"{'case':38s} {'prec':5s} {'pad alone':>10s} {'pad->conv':>10s} {'conv alone':>10s} "
          f"{'(pad->conv)/conv':>17s} {'pad alone/conv':>15s}")
    rows = []
    for case in CASES:
        for precision in ("fp32", "int8"):
            pad, both, conv = (median[f"{case}|{precision}|{k}"] for k in kinds)
            rows.append({"case": case, "precision": precision, "pad_ms": pad, "pad_conv_ms": both, "conv_ms": conv,
                         "pad_conv_over_conv": both / conv, "pad_over_conv": pad / conv})
            print(f"{case:38s} {precision:5s} {pad:10.4f} {both:10.4f} {conv:10.4f} {both / conv:17.2f} "
                  f"{pad / conv:15.2f}")
    if args.out:
        args.out.write_text(json.dumps({"runtime": report["runtime"], "rows": rows}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
