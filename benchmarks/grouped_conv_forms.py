"""Issue 25 item 3, measured before building: which form of a ShuffleNet v1 grouped 1x1 conv does XNNPACK run fastest?

    .venv/bin/python benchmarks/grouped_conv_forms.py [--rounds 12] [--out benchmarks/results/grouped_conv_forms.json]

A `--tune` that picks, per layer, the fastest exact form of the grouped 1x1 convs (87% of g3 1x's MACs, 63% of its
time on this host) is worth building only if the forms differ. For the grouped 1x1 convs of ShuffleNet v1 g3 and g8
1x at 224 px (each stage's bottleneck conv C -> C/4, ReLU fused, and expansion conv C/4 -> C, BN folded) it
builds, fp32 and int8 (TF's converter, per-channel weights):
  grouped    one CONV_2D whose filter holds C_in/g channels (what sdeploy's export writes)
  per-group  SPLIT -> g CONV_2Ds -> CONCATENATION (onnx2tf's `-dgc` form)
  dense      one CONV_2D over all C_in channels with block-diagonal weights (exact: the zeros add nothing; g x MACs)
and times every model in ONE runner process (interleaved rounds, 3 interpreters each, 1 thread). Ratios within
this one run are what count; the host's CPU and ISA are printed with them.
"""
from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
from benchmarks.interleaved import time_models  # noqa: E402
FORMS = ("grouped", "per-group", "dense")
# (model, stage, spatial side, channels C, groups): ShuffleNet v1 1x at 224 px, stages 2-4
STAGES = [("g3 1x", s, side, c, 3) for s, side, c in ((2, 28, 240), (3, 14, 480), (4, 7, 960))] + \
         [("g8 1x", s, side, c, 8) for s, side, c in ((2, 28, 384), (3, 14, 768), (4, 7, 1536))]


def cases():
    for model, stage, side, c, g in STAGES:
        yield f"{model} stage{stage} {side}x{side} {c}->{c // 4} /g{g}", (side, c, c // 4, g, True)
        yield f"{model} stage{stage} {side}x{side} {c // 4}->{c} /g{g}", (side, c // 4, c, g, False)


def build(form: str, side: int, cin: int, cout: int, groups: int, relu: bool, precision: str) -> bytes:
    import tensorflow as tf

    from shufflenet_deploy.export.keras_convert import keras_to_tflite

    rng = np.random.default_rng(0)
    w = rng.normal(0, 1 / np.sqrt(cin // groups), (1, 1, cin // groups, cout)).astype(np.float32)
    b = rng.normal(0, 0.1, cout).astype(np.float32)
    act = "relu" if relu else None
    inputs = tf.keras.Input((side, side, cin), batch_size=1)
    if form == "grouped":
        layer = tf.keras.layers.Conv2D(cout, 1, groups=groups, activation=act)
        x = layer(inputs)
        layer.set_weights([w, b])
    elif form == "per-group":
        parts = tf.keras.ops.split(inputs, groups, axis=-1)
        outs, per = [], cout // groups
        for i, part in enumerate(parts):
            layer = tf.keras.layers.Conv2D(per, 1, activation=act)
            outs.append(layer(part))
            layer.set_weights([w[..., i * per:(i + 1) * per], b[i * per:(i + 1) * per]])
        x = tf.keras.layers.Concatenate()(outs)
    else:
        dense = np.zeros((1, 1, cin, cout), np.float32)
        ci, co = cin // groups, cout // groups
        for i in range(groups):
            dense[..., i * ci:(i + 1) * ci, i * co:(i + 1) * co] = w[..., i * co:(i + 1) * co]
        layer = tf.keras.layers.Conv2D(cout, 1, activation=act)
        x = layer(inputs)
        layer.set_weights([dense, b])
    return keras_to_tflite(tf.keras.Model(inputs, x), precision, low=0.0, high=1.0)


def host() -> str:
    from shufflenet_deploy.devices.cpuinfo import parse_cpuinfo, summary

    facts = parse_cpuinfo(Path("/proc/cpuinfo").read_text()).to_dict()
    return f"{summary(facts)} ({platform.machine()}, {os.cpu_count()} cpus)"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path)
    parser.add_argument("--rounds", type=int, default=12)
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    all_cases = list(cases())
    builds = {f"{case}|{precision}|{form}": functools.partial(build, form, *shape, precision)
              for case, shape in all_cases for precision in ("fp32", "int8") for form in FORMS}
    report = time_models(builds, args.rounds)
    median = {e["id"]: e["median_ms"] for e in report["results"]}
    print(f"$ .venv/bin/python benchmarks/grouped_conv_forms.py --rounds {args.rounds} "
          "--out benchmarks/results/grouped_conv_forms.json")
    print(f"# host: {host()}; {report['runtime']['name']} {report['runtime']['version']}, 1 thread, {args.rounds} "
          f"interleaved rounds x 20 runs, 3 interpreters per model; load {os.getloadavg()[0]:.2f}")
    print(f"{'layer':34s} {'prec':5s} {'grouped':>9s} {'per-group':>10s} {'dense':>9s} {'per-group/g':>12s} "
          f"{'dense/g':>8s}")
    rows = []
    for case, _ in all_cases:
        for precision in ("fp32", "int8"):
            ms = {form: median[f"{case}|{precision}|{form}"] for form in FORMS}
            rows.append({"layer": case, "precision": precision, **{f"{f}_ms": v for f, v in ms.items()},
                         "per_group_over_grouped": ms["per-group"] / ms["grouped"],
                         "dense_over_grouped": ms["dense"] / ms["grouped"]})
            print(f"{case:34s} {precision:5s} {ms['grouped']:9.4f} {ms['per-group']:10.4f} {ms['dense']:9.4f} "
                  f"{ms['per-group'] / ms['grouped']:12.2f} {ms['dense'] / ms['grouped']:8.2f}")
    for precision in ("fp32", "int8"):
        mine = [r for r in rows if r["precision"] == precision]
        best = sum(min(r[f"{f}_ms"] for f in FORMS) for r in mine)
        print(f"# {precision}: sum of grouped {sum(r['grouped_ms'] for r in mine):.4f} ms, sum of each layer's "
              f"fastest form {best:.4f} ms")
    if args.out:
        args.out.write_text(json.dumps({"host": host(), "runtime": report["runtime"], "rounds": args.rounds,
                                        "rows": rows}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
