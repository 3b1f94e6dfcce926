#!/usr/bin/env python
"""onnx2tf writing its own files vs sdeploy's convert_graph, side by side in one run, on the same ONNX files.

- "onnx2tf": `onnx2tf.convert(..., output_signaturedefs=True)` as sdeploy called it until 2026-12-03: onnx2tf
  writes the saved_model, then the float32 and float16 TFLite files, each through `from_keras_model` (onnx2tf
  1.29) which re-serialises the whole Keras model into a fresh saved_model first.
- "sdeploy": export/onnx2tf_worker.py `convert_graph`: onnx2tf builds the Keras graph only
  (`disable_model_save`), the saved_model is written once, and float32 (+ float16) TFLite come from it.

Each conversion runs in its own fresh Python process (imports not timed); the two are interleaved per model,
ROUNDS times. Both files are run on the same random input by LiteRT: the outputs must be equal and the op counts
the same. The ONNX files are sdeploy's own (lowered) exports of the models.

    .venv/bin/python benchmarks/float_conversion.py [--rounds 2] [--out benchmarks/results/float_conversion.json]
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

MODELS = [("shufflenet_v1_g3_1.0x", 224), ("shufflenet_v2_1.0x", 224), ("shufflenet_v1_g8_0.25x", 64)]

CHILD = r"""
import json, os, sys, time
from pathlib import Path
import numpy as np
method, onnx, outdir, precisions = sys.argv[1], sys.argv[2], Path(sys.argv[3]), sys.argv[4].split(",")
from shufflenet_deploy.export.tflite_convert import write_onnx2tf_sample
outdir.mkdir(parents=True)
write_onnx2tf_sample(outdir, np.random.default_rng(0).random((20, 128, 128, 3), dtype=np.float32))
os.chdir(outdir)
import onnx2tf, tensorflow, tf_keras  # imports are not timed
from shufflenet_deploy.export.onnx2tf_worker import convert_graph
t0 = time.perf_counter()
if method == "onnx2tf":
    onnx2tf.convert(input_onnx_file_path=onnx, output_folder_path=str(outdir / "tf"), not_use_onnxsim=True,
                    copy_onnx_input_output_names_to_tflite=True, output_signaturedefs=True, verbosity="error")
    files = {"fp32": str(outdir / "tf" / (Path(onnx).stem + "_float32.tflite"))}
else:
    files = convert_graph({"onnx": onnx, "outdir": str(outdir / "tf"), "precisions": precisions})
print(json.dumps({"seconds": time.perf_counter() - t0, "fp32": files["fp32"]}))
"""


def run_tflite(path: str, x: np.ndarray) -> tuple[np.ndarray, int]:
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_path=path)
    it.allocate_tensors()
    it.set_tensor(it.get_input_details()[0]["index"], x)
    it.invoke()
    return it.get_tensor(it.get_output_details()[0]["index"]), len(it._get_ops_details())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    from shufflenet_deploy.devices.cpuinfo import parse_cpuinfo, summary
    from shufflenet_deploy.export.pipeline import ExportRequest, export

    result = {"command": "python benchmarks/float_conversion.py " + " ".join(sys.argv[1:]),
              "host": summary(parse_cpuinfo(Path("/proc/cpuinfo").read_text()).to_dict()), "models": []}
    print(result["host"], flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        for model, size in MODELS:
            exported = Path(tmp) / f"{model}-{size}"
            export(ExportRequest(model=model, input_size=size, precisions=("fp32",), verify_count=2, outdir=exported))
            x = np.random.default_rng(1).random((1, size, size, 3), dtype=np.float32)
            times: dict[str, list[float]] = {"onnx2tf": [], "sdeploy": []}
            outputs = {}
            for r in range(args.rounds):
                for method in times:
                    work = Path(tmp) / f"{model}-{method}-{r}"
                    proc = subprocess.run([sys.executable, "-c", CHILD, method, str(exported / "model.onnx"), str(work),
                                           "fp32,fp16"], capture_output=True, text=True, cwd=REPO)
                    if proc.returncode:
                        print(proc.stderr[-3000:])
                        return 1
                    reply = json.loads(proc.stdout.strip().splitlines()[-1])
                    times[method].append(reply["seconds"])
                    outputs[method] = run_tflite(reply["fp32"], x)
            same = bool(np.array_equal(outputs["onnx2tf"][0], outputs["sdeploy"][0]))
            row = {"model": model, "input_size": size, "onnx2tf_s": statistics.median(times["onnx2tf"]),
                   "sdeploy_s": statistics.median(times["sdeploy"]), "all_s": times,
                   "outputs_equal": same, "ops": [outputs["onnx2tf"][1], outputs["sdeploy"][1]]}
            row["ratio"] = row["sdeploy_s"] / row["onnx2tf_s"]
            result["models"].append(row)
            print(f"{model} @{size}: onnx2tf writes its files {row['onnx2tf_s']:.1f} s, sdeploy {row['sdeploy_s']:.1f} s "
                  f"(ratio {row['ratio']:.2f}); fp32 outputs equal: {same}; ops {row['ops'][0]} / {row['ops'][1]}",
                  flush=True)
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
