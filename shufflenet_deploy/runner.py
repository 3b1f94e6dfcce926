#!/usr/bin/env python3
"""Standalone on-device TFLite benchmark runner: stdlib + numpy + one TFLite interpreter, nothing from sdeploy.

It is copied alone to a phone/board work dir, so it must stay one self-contained file. It prints exactly one
JSON object on stdout (runtime logs are diverted to stderr) so a harness can parse it over ssh/adb.
Exit codes: 0 ok, 1 runtime failure, 2 bad arguments, 3 no TFLite runtime (or numpy) on this machine.

A `.onnx` model runs under ONNX Runtime instead (CPU provider, the same threads, sequential execution, every
graph optimisation), through a small adapter with the interpreter's calls, so every measurement below is the
same code for both runtimes; exit 3 when onnxruntime is not installed.

`--many LIST.json` times several models in one process (LIST: a JSON list of paths, or of {"id", "path"}): all
interpreters are built first, then `--rounds` rounds run each model `--runs` times in turn (interleaved, so a
slow drift of the machine hits every model alike). The one JSON object then carries `results`, one per model
(id, times_ms, median_ms, min_ms, error), instead of `times_ms`. A model that fails to load or run gets its own
`error`; the others are still timed.

`--instances K` builds K interpreters per model: with --many round r runs instance r mod K; with one MODEL the
runs go to the instances in turn, in chunks (init, first inference and peak_rss_mb are the first instance's).
Why: on some machines a freshly built interpreter lands in a slow mode (~20% slower for its whole life: where its
buffers land), so one instance's median is a draw from two modes; over K instances it follows the majority mode
(`instance_medians_ms` shows the spread).
"""
import argparse
import glob
import json
import os
import platform
import sys
import time

SCHEMA = "sdeploy-runner/1"
MAX_THREADS = 256
PIP_HINT = "pip install ai-edge-litert"


def load_runtime(onnx=False):
    """Return (Interpreter class, OpResolverType or None, name, version); prefer LiteRT, then tflite_runtime, TF.
    For ONNX models: ONNX Runtime (OrtInterpreter below)."""
    if onnx:
        try:
            import onnxruntime
            return OrtInterpreter, None, "onnxruntime", _version(onnxruntime, "onnxruntime")
        except Exception:
            return None
    try:
        import ai_edge_litert
        from ai_edge_litert import interpreter as mod
        return mod.Interpreter, getattr(mod, "OpResolverType", None), "ai_edge_litert", _version(
            ai_edge_litert, "ai-edge-litert")
    except Exception:
        pass
    try:
        import tflite_runtime
        from tflite_runtime import interpreter as mod
        return mod.Interpreter, getattr(mod, "OpResolverType", None), "tflite_runtime", _version(
            tflite_runtime, "tflite-runtime")
    except Exception:
        pass
    try:
        import tensorflow as tf
        return tf.lite.Interpreter, tf.lite.experimental.OpResolverType, "tensorflow", tf.__version__
    except Exception:
        return None


class OrtInterpreter:
    """ONNX Runtime behind the four interpreter calls the runner makes (tensors by index: inputs, then outputs)."""

    def __init__(self, model_path, num_threads=1):
        import numpy as np
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = num_threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = ort.InferenceSession(model_path, options, providers=["CPUExecutionProvider"])
        ins, outs = self.session.get_inputs(), self.session.get_outputs()

        def detail(i, t):
            shape = [d if isinstance(d, int) else 1 for d in t.shape]  # a symbolic batch dim runs as 1
            return {"name": t.name, "index": i, "shape": shape, "quantization": (0.0, 0),
                    "dtype": getattr(np, {"float": "float32", "double": "float64"}.get(t.type[7:-1], t.type[7:-1]))}
        self.inputs = [detail(i, t) for i, t in enumerate(ins)]
        self.outputs = [detail(len(ins) + i, t) for i, t in enumerate(outs)]
        self.values = {}

    def allocate_tensors(self):
        pass

    def get_input_details(self):
        return self.inputs

    def get_output_details(self):
        return self.outputs

    def set_tensor(self, index, value):
        self.values[index] = value

    def get_tensor(self, index):
        return self.values[index]

    def invoke(self):
        feeds = {d["name"]: self.values[d["index"]] for d in self.inputs}
        for d, value in zip(self.outputs, self.session.run(None, feeds)):
            self.values[d["index"]] = value


def _version(module, dist):
    version = getattr(module, "__version__", None)
    if version:
        return version
    try:
        from importlib import metadata
        return metadata.version(dist)
    except Exception:
        return None


def parse_cpus(spec):
    """'4-7', '0,2,4-5' or a hex mask '0xf0' -> sorted CPU ids."""
    spec = spec.strip()
    if spec.lower().startswith("0x"):
        mask = int(spec, 16)
        return [i for i in range(mask.bit_length()) if mask >> i & 1]
    cpus = set()
    for part in spec.split(","):
        lo, _, hi = part.partition("-")
        cpus.update(range(int(lo), int(hi or lo) + 1))
    return sorted(cpus)


def _read(path):
    try:
        with open(path) as fh:
            return fh.read().strip()
    except OSError:
        return None


def cpu_info():
    text = _read("/proc/cpuinfo") or ""
    fields = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            fields.setdefault(key.strip(), []).append(value.strip())
    model = (fields.get("model name") or fields.get("Model") or fields.get("Hardware") or [platform.processor()])[0]
    parts = sorted(set(fields.get("CPU part", [])))
    affinity = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    return {"model": model or None, "hardware": (fields.get("Hardware") or [None])[0], "parts": parts or None,
            "cores": os.cpu_count(), "affinity": affinity}


def conditions():
    """Governors, current frequencies (kHz) and thermal zone temperatures (C); None where /sys lacks them."""
    governor, freq, temps = {}, {}, {}
    for cpu_dir in sorted(glob.glob("/sys/devices/system/cpu/cpu[0-9]*"), key=lambda p: int(p.rsplit("u", 1)[1])):
        cpu = os.path.basename(cpu_dir)
        gov = _read(cpu_dir + "/cpufreq/scaling_governor")
        cur = _read(cpu_dir + "/cpufreq/scaling_cur_freq")
        if gov is not None:
            governor[cpu] = gov
        if cur and cur.isdigit():
            freq[cpu] = int(cur)
    for zone in sorted(glob.glob("/sys/class/thermal/thermal_zone*")):
        temp = _read(zone + "/temp")
        if temp and temp.lstrip("-").isdigit():
            temps[f"{os.path.basename(zone)}/{_read(zone + '/type') or '?'}"] = int(temp) / 1000.0
    return {"governor": governor or None, "freq_khz": freq or None, "temp_c": temps or None}


def tensor_info(detail):
    scale, zero_point = detail.get("quantization", (0.0, 0))
    return {"name": detail["name"], "shape": [int(d) for d in detail["shape"]],
            "dtype": detail["dtype"].__name__,
            "quantization": {"scale": float(scale), "zero_point": int(zero_point)} if scale else None}


def quantize(np, x, detail):
    """Float -> the tensor's dtype with its scale/zero-point (round half to even, as TFLite's reference)."""
    scale, zero_point = detail.get("quantization", (0.0, 0))
    dtype = detail["dtype"]
    if np.issubdtype(dtype, np.integer) and scale:
        info = np.iinfo(dtype)
        return np.clip(np.round(x / scale + zero_point), info.min, info.max).astype(dtype)
    return x.astype(dtype)


def make_input(np, detail, rng, path=None):
    shape = [int(d) for d in detail["shape"]]
    if path is not None:
        x = np.asarray(np.load(path), dtype=np.float32)
        if x.ndim == len(shape) - 1:
            x = x[None]
        if list(x.shape) != shape:
            raise ValueError(f"--input has shape {list(x.shape)}, the model expects {shape}")
        return quantize(np, x, detail)
    dtype = detail["dtype"]
    scale, zero_point = detail.get("quantization", (0.0, 0))
    if np.issubdtype(dtype, np.integer) and scale:
        info = np.iinfo(dtype)
        lo, hi = (info.min - zero_point) * scale, (info.max - zero_point) * scale
        return quantize(np, rng.uniform(lo, hi, shape).astype(np.float32), detail)
    if np.issubdtype(dtype, np.integer):
        return rng.integers(0, 10, shape).astype(dtype)
    return rng.uniform(0.0, 1.0, shape).astype(dtype)


def benchmark(np, args, runtime, report):
    interpreter_cls, resolver, name, version = runtime
    report["runtime"] = {"name": name, "version": version}
    if args.affinity:
        cpus = parse_cpus(args.affinity)
        os.sched_setaffinity(0, cpus)
    report["cpu"] = cpu_info()
    report["conditions"] = {"before": conditions(), "after": None}
    kwargs = {"model_path": args.model, "num_threads": args.threads}
    if args.no_xnnpack:
        if resolver is None:
            raise RuntimeError(f"{name} cannot disable XNNPACK (no OpResolverType)")
        kwargs["experimental_op_resolver_type"] = resolver.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    t0 = time.perf_counter_ns()
    interp = interpreter_cls(**kwargs)
    interp.allocate_tensors()
    report["init_ms"] = (time.perf_counter_ns() - t0) / 1e6
    inputs, outputs = interp.get_input_details(), interp.get_output_details()
    report["inputs"] = [tensor_info(d) for d in inputs]
    report["outputs"] = [tensor_info(d) for d in outputs]
    if args.input and len(inputs) != 1:
        raise ValueError(f"--input needs a single-input model, this one has {len(inputs)}")
    rng = np.random.default_rng(args.seed)
    for detail in inputs:
        interp.set_tensor(detail["index"], make_input(np, detail, rng, args.input))

    t0 = time.perf_counter_ns()
    interp.invoke()
    report["first_inference_ms"] = (time.perf_counter_ns() - t0) / 1e6
    for _ in range(args.warmup):
        interp.invoke()
    interps = [interp]
    if args.instances > 1:  # the memory figure stays one interpreter's: taken before the others exist
        report["peak_rss_mb"] = peak_rss_mb()
        for _ in range(args.instances - 1):
            other = interpreter_cls(**kwargs)
            other.allocate_tensors()
            for detail in inputs:
                other.set_tensor(detail["index"], interp.get_tensor(detail["index"]))
            for _ in range(max(1, args.warmup)):
                other.invoke()
            interps.append(other)
    # runs go to the instances in chunks, round-robin, each instance 4 chunks spread over the measurement
    chunk = max(1, -(-args.runs // (4 * len(interps))))
    by_instance = [[] for _ in interps]
    times, start = [], time.perf_counter_ns()
    min_ns = args.min_seconds * 1e9
    while len(times) < args.runs or time.perf_counter_ns() - start < min_ns:
        which = (len(times) // chunk) % len(interps)
        t0 = time.perf_counter_ns()
        interps[which].invoke()
        elapsed = (time.perf_counter_ns() - t0) / 1e6
        times.append(elapsed)
        by_instance[which].append(elapsed)
    report["times_ms"] = times
    report["runs"] = len(times)
    report["instances"] = len(interps)
    if len(interps) > 1:
        report["instance_medians_ms"] = [_median(t) for t in by_instance if t]
    report["conditions"]["after"] = conditions()
    if args.save_output:
        arrays = [interp.get_tensor(d["index"]) for d in outputs]
        if len(arrays) == 1:
            np.save(args.save_output, arrays[0])
        else:
            with open(args.save_output, "wb") as fh:
                np.savez(fh, **{f"output_{i}": a for i, a in enumerate(arrays)})
        report["saved_output"] = args.save_output


def _median(values):
    ordered = sorted(values)
    n = len(ordered)
    if not n:
        return None
    return ordered[n // 2] if n % 2 else (ordered[n // 2 - 1] + ordered[n // 2]) / 2.0


def benchmark_many(np, args, runtime, report):
    """Time every model of the --many list in one process, interleaved over --rounds rounds."""
    interpreter_cls, resolver, name, version = runtime
    report["runtime"] = {"name": name, "version": version}
    if args.affinity:
        os.sched_setaffinity(0, parse_cpus(args.affinity))
    report["cpu"] = cpu_info()
    report["conditions"] = {"before": conditions(), "after": None}
    with open(args.many) as fh:
        items = json.load(fh)
    base = os.path.dirname(os.path.abspath(args.many))
    rng = np.random.default_rng(args.seed)
    entries = []
    for i, item in enumerate(items):
        if isinstance(item, str):
            item = {"id": item, "path": item}
        path = item["path"] if os.path.isabs(item["path"]) else os.path.join(base, item["path"])
        entry = {"id": item.get("id", i), "model": os.path.basename(path), "times_ms": [], "error": None}
        try:
            kwargs = {"model_path": path, "num_threads": args.threads}
            if args.no_xnnpack:
                kwargs["experimental_op_resolver_type"] = resolver.BUILTIN_WITHOUT_DEFAULT_DELEGATES
            entry["_interps"], feeds = [], None
            for _ in range(max(1, args.instances)):
                interp = interpreter_cls(**kwargs)
                interp.allocate_tensors()
                if feeds is None:  # one input per model: its instances differ in nothing else
                    feeds = [(d["index"], make_input(np, d, rng)) for d in interp.get_input_details()]
                for index, value in feeds:
                    interp.set_tensor(index, value)
                for _ in range(max(1, args.warmup)):
                    interp.invoke()
                entry["_interps"].append(interp)
            entry["_by_instance"] = [[] for _ in entry["_interps"]]
        except Exception as err:
            entry["error"] = f"{type(err).__name__}: {err}"
            entry.pop("_interps", None)
        entries.append(entry)
    for r in range(args.rounds):
        for entry in entries:
            interps = entry.get("_interps")
            if not interps:
                continue
            which = r % len(interps)
            try:
                times = entry["_by_instance"][which]
                for _ in range(args.runs):
                    t0 = time.perf_counter_ns()
                    interps[which].invoke()
                    times.append((time.perf_counter_ns() - t0) / 1e6)
            except Exception as err:
                entry["error"] = f"{type(err).__name__}: {err}"
                entry.pop("_interps", None)
    for entry in entries:
        entry.pop("_interps", None)
        by_instance = [t for t in entry.pop("_by_instance", []) if t]
        entry["times_ms"] = [t for times in by_instance for t in times]
        entry["median_ms"] = _median(entry["times_ms"])
        entry["min_ms"] = min(entry["times_ms"]) if entry["times_ms"] else None
        if len(by_instance) > 1:
            entry["instance_medians_ms"] = [_median(t) for t in by_instance]
    report["results"] = entries
    report["runs"] = args.runs
    report["rounds"] = args.rounds
    report["instances"] = args.instances
    report["conditions"]["after"] = conditions()


def _many_onnx(path):
    """Whether a --many list holds ONNX models (one runtime per list: its first file decides)."""
    try:
        with open(path) as fh:
            first = (json.load(fh) or [""])[0]
        return str(first.get("path") if isinstance(first, dict) else first).endswith(".onnx")
    except Exception:
        return False  # benchmark_many reports the unreadable list itself


def peak_rss_mb():
    """Peak resident memory of this process. VmHWM first: getrusage's ru_maxrss survives fork+exec, so a runner
    started by a big parent (sdeploy with torch loaded: ~440 MB) would report the parent's peak, not its own."""
    status = _read("/proc/self/status") or ""
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024.0
    try:
        import resource
    except ImportError:
        return None
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / (1024.0 * 1024.0) if sys.platform == "darwin" else rss / 1024.0


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", nargs="?")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--min-seconds", type=float, default=0.0)
    parser.add_argument("--affinity", help="CPU list like 4-7 or 0,2 (or a 0x mask)")
    parser.add_argument("--input", help="NHWC float32 .npy, preprocessed; quantized here for int8/uint8 inputs")
    parser.add_argument("--save-output", help="write the raw output tensor(s) to this .npy")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-xnnpack", action="store_true")
    parser.add_argument("--many", help="JSON list of model paths (or {id, path}) to time in one process")
    parser.add_argument("--rounds", type=int, default=1, help="with --many: interleaved rounds of --runs each")
    parser.add_argument("--instances", type=int, default=1,
                        help="interpreters per model: --many: round r runs instance r mod K; one MODEL: the runs go "
                             "to the K instances in turn, in chunks (peak_rss_mb stays one interpreter's)")
    args = parser.parse_args(argv)
    if (args.model is None) == (args.many is None):
        parser.error("pass one MODEL or --many LIST.json")
    if not 1 <= args.threads <= MAX_THREADS:  # XNNPACK would build that pool: 100000 hung for minutes
        parser.error(f"--threads must be 1..{MAX_THREADS}, not {args.threads}")

    # Interpreters log to stdout on some builds: keep the real stdout for the one JSON line.
    sys.stdout.flush()
    real_stdout = os.dup(1)
    os.dup2(2, 1)
    report = {"schema": SCHEMA, "model": os.path.basename(args.model or args.many), "runtime": None,
              "python": platform.python_version(), "numpy": None, "machine": platform.machine(),
              "threads": args.threads, "warmup": args.warmup, "error": None}
    code = 0
    try:
        import numpy as np
    except ImportError as err:
        np = None
        report.update(error=f"numpy missing: {err}", hint="pip install numpy ai-edge-litert")
    onnx = (args.model or "").endswith(".onnx") or bool(args.many and _many_onnx(args.many))
    runtime = load_runtime(onnx) if np is not None else None
    try:
        if np is None:
            code = 3
        elif runtime is None:
            report.update(error="no ONNX Runtime" if onnx else "no TFLite runtime",
                          hint="pip install onnxruntime" if onnx else PIP_HINT, python_executable=sys.executable)
            code = 3
        else:
            report["numpy"] = np.__version__
            if args.many:
                report["mode"] = "many"
                benchmark_many(np, args, runtime, report)
            else:
                benchmark(np, args, runtime, report)
    except Exception as err:
        report["error"] = f"{type(err).__name__}: {err}"
        code = 1
    if "peak_rss_mb" in report:
        report["peak_rss_mb_all_instances"] = peak_rss_mb()
    else:
        report["peak_rss_mb"] = peak_rss_mb()
    sys.stdout.flush()
    os.dup2(real_stdout, 1)
    os.write(1, (json.dumps(report) + "\n").encode())
    return code


if __name__ == "__main__":
    sys.exit(main())
