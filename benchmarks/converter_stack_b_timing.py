# Inputs: the files the commands of benchmarks/results/converter_stack_b.md write (/tmp/e311, /tmp/stackB/...).
"""Stack A vs stack B latency, one process, interleaved.

Run with the stack-A venv (ai-edge-litert 2.1.0):
    ./.venv/bin/python /tmp/stackB/time_ab.py [--rounds 30] [--runs 20]

Each file gets its own LiteRT interpreter (1 thread, default XNNPACK delegate on). After a warm-up, every round
runs each file `runs` times back to back, the files in a rotated order (round r starts with file r mod n), and
records the mean time of one invoke in that round. The result per file is the median (and min) over the rounds.
Input: one real digits val image (normalised as manifest.json says), quantised with the input's scale/zero point
for int8 files.
"""
import argparse
import json
import os
import platform
import statistics
import time

import numpy as np
from ai_edge_litert.interpreter import Interpreter

FILES = {
    "A_fp32": "/tmp/e311/model_fp32.tflite",
    "A_int8": "/tmp/e311/model_int8.tflite",
    "B_fp32": "/tmp/stackB/out_e311/model_float32.tflite",
    "B_int8": "/tmp/stackB/out_e311_nuo_pt_int8/model_full_integer_quant.tflite",
    "B_fp32_nuo": "/tmp/stackB/out_e311_nuo_fp32/model_float32.tflite",  # extra: onnx2tf -nuo (no onnxsim)
}
RATIOS = (("B_fp32", "A_fp32"), ("B_int8", "A_int8"), ("B_fp32_nuo", "A_fp32"))


def cpu_line() -> dict:
    model, flags = "?", []
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name") and model == "?":
                model = line.split(":", 1)[1].strip()
            if line.startswith("flags") and not flags:
                flags = [x for x in line.split(":", 1)[1].split() if "avx" in x or "vnni" in x or "amx" in x]
    return {"model_name": model, "avx_vnni_amx_flags": flags, "nproc": os.cpu_count(), "load_avg": os.getloadavg(),
            "python": platform.python_version()}


def make(path: str, x_norm: np.ndarray):
    it = Interpreter(model_path=path, num_threads=1)  # XNNPACK is the default delegate
    it.allocate_tensors()
    i = it.get_input_details()[0]
    x = x_norm[None].astype(np.float32)
    if list(i["shape"]) != list(x.shape):  # a model that kept NCHW
        x = x.transpose(0, 3, 1, 2)
    if i["dtype"] == np.int8:
        s, z = i["quantization"]
        x = np.clip(np.round(x / s) + z, -128, 127).astype(np.int8)
    it.set_tensor(i["index"], np.ascontiguousarray(x))
    delegates = sum(1 for op in it._get_ops_details() if op["op_name"] == "DELEGATE")
    return it, delegates


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=30)
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--json", default="/tmp/stackB/time_ab.json")
    a = ap.parse_args()

    x = np.load("/tmp/stackB/val_nhwc_norm.npy")[0]
    its, parts = {}, {}
    for k, p in FILES.items():
        its[k], parts[k] = make(p, x)
    for k, it in its.items():
        for _ in range(a.warmup):
            it.invoke()
    names = list(its)
    per_round = {k: [] for k in names}
    t_start = time.time()
    for r in range(a.rounds):
        order = names[r % len(names):] + names[:r % len(names)]
        for k in order:
            it = its[k]
            t0 = time.perf_counter_ns()
            for _ in range(a.runs):
                it.invoke()
            per_round[k].append((time.perf_counter_ns() - t0) / a.runs / 1e3)  # us per invoke
    wall = time.time() - t_start
    res = {"cpu": cpu_line(), "rounds": a.rounds, "runs": a.runs, "threads": 1, "wall_s": round(wall, 1),
           "cpu_free_flag": os.path.exists("/tmp/cpu_free"), "files": {}}
    for k in names:
        v = per_round[k]
        res["files"][k] = {"path": FILES[k], "delegate_partitions": parts[k], "median_us": statistics.median(v),
                           "min_us": min(v), "max_us": max(v)}
    res["ratios_B_over_A"] = {f"{b}/{a_}": res["files"][b]["median_us"] / res["files"][a_]["median_us"]
                              for b, a_ in RATIOS}
    print(json.dumps(res["cpu"]))
    print(f"{'file':12s} {'parts':>5s} {'median_us':>10s} {'min_us':>9s} {'max_us':>9s}")
    for k, v in res["files"].items():
        print(f"{k:12s} {v['delegate_partitions']:5d} {v['median_us']:10.1f} {v['min_us']:9.1f} {v['max_us']:9.1f}")
    for k, v in res["ratios_B_over_A"].items():
        print(f"ratio {k}: {v:.3f}")
    json.dump(res, open(a.json, "w"), indent=1)


if __name__ == "__main__":
    main()
