"""Timing worker for benchmarks/lowering.py: one model, one runtime, driven over stdin/stdout.

Runs under whichever venv holds the runtime (.venv for LiteRT/onnxruntime, .venv-ncnn for ncnn, .venv-litert-torch
for its newer LiteRT, .venv-executorch for ExecuTorch), so it imports only numpy and the runtime (and torch for
ExecuTorch's tensors). The parent interleaves workers: it asks each in
turn for a burst of invokes, so every variant sees the same machine state; only one worker runs at a time.

    python lowering_worker.py KIND MODEL THREADS INPUT.npy      (KIND: tflite | onnxruntime | ncnn | executorch)
stdin lines:  "run N"  -> N invokes on the next of INSTANCES interpreters/sessions, replies "ok <seconds per invoke>"
              "dump PATH" -> one invoke on the input, output saved (float32) to PATH, replies "ok"
              "quit"
INPUT.npy is float32 NCHW (preprocessed); tflite inputs are transposed to NHWC and quantized when int8.

INSTANCES = 3 interpreters (sessions, nets) per model, used in turn burst by burst: on this project's VM a freshly
built interpreter sometimes lands in a slow mode for its whole life (~20%, shufflenet_deploy/runner.py), so one
instance per variant made each variant's median a draw from two modes and skewed the ratios.
"""
from __future__ import annotations

import sys
import time

import numpy as np


def tflite_runner(path: str, threads: int, x: np.ndarray):
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:  # pragma: no cover - older runtimes
        from tflite_runtime.interpreter import Interpreter
    it = Interpreter(model_path=path, num_threads=threads)
    it.allocate_tensors()
    inp, out = it.get_input_details()[0], it.get_output_details()[0]
    data = x.transpose(0, 2, 3, 1) if list(inp["shape"]) != list(x.shape) else x
    scale, zp = inp["quantization"]
    if scale:
        info = np.iinfo(inp["dtype"])
        data = np.clip(np.round(data / scale) + zp, info.min, info.max)
    it.set_tensor(inp["index"], np.ascontiguousarray(data.astype(inp["dtype"])))

    def run():
        it.invoke()

    def output():
        y = it.get_tensor(out["index"]).astype(np.float32)
        s, z = out["quantization"]
        return (y - z) * s if s else y

    return run, output


def onnxruntime_runner(path: str, threads: int, x: np.ndarray):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads, opts.inter_op_num_threads = threads, 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.log_severity_level = 3
    sess = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
    feed = {sess.get_inputs()[0].name: x}
    result = {}

    def run():
        result["y"] = sess.run(None, feed)[0]

    return run, lambda: np.asarray(result["y"], np.float32)


def ncnn_runner(path: str, threads: int, x: np.ndarray):
    import ncnn

    net = ncnn.Net()
    net.opt.num_threads = threads
    net.opt.use_vulkan_compute = False
    net.load_param(path)
    net.load_model(path[: -len(".param")] + ".bin")
    mat = ncnn.Mat(np.ascontiguousarray(x[0]))
    result = {}

    def run():
        with net.create_extractor() as ex:
            ex.input("in0", mat)
            _, out = ex.extract("out0")
            result["y"] = np.array(out)

    return run, lambda: result["y"].astype(np.float32).reshape(1, -1)


def executorch_runner(path: str, threads: int, x: np.ndarray):
    """A .pte under ExecuTorch's runtime (its Python bindings: the C++ runtime and the XNNPACK delegate linked in);
    the XNNPACK threadpool set to THREADS, as an app does with its threadpool."""
    import torch
    from executorch.extension.pybindings import portable_lib
    from executorch.runtime import Runtime

    portable_lib._unsafe_reset_threadpool(threads)
    method = Runtime.get().load_program(path).load_method("forward")
    inputs = [torch.from_numpy(np.ascontiguousarray(x))]
    result = {}

    def run():
        result["y"] = method.execute(inputs)[0]

    return run, lambda: result["y"].numpy().astype(np.float32).reshape(1, -1)


INSTANCES = 3


def main(kind: str, model: str, threads: str, input_path: str) -> int:
    x = np.load(input_path).astype(np.float32)
    factory = {"tflite": tflite_runner, "onnxruntime": onnxruntime_runner, "ncnn": ncnn_runner,
               "executorch": executorch_runner}[kind]
    instances = [factory(model, int(threads), x) for _ in range(INSTANCES)]
    for run, _ in instances:
        for _ in range(3):
            run()
    run, output = instances[0]
    bursts = 0
    print("ready", flush=True)
    for line in sys.stdin:
        cmd, _, arg = line.strip().partition(" ")
        if cmd == "run":
            n = int(arg)
            run = instances[bursts % INSTANCES][0]
            bursts += 1
            t0 = time.perf_counter()
            for _ in range(n):
                run()
            print(f"ok {(time.perf_counter() - t0) / n:.9f}", flush=True)
        elif cmd == "dump":
            run()
            np.save(arg, output())
            print("ok", flush=True)
        elif cmd == "quit":
            break
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:5]))
