"""Is the `local` harness repeatable, and what does it add over a bare interpreter loop?

Runs, interleaved, `repeats` times each: (a) `bench_artifact` on the `local` profile (a runner.py subprocess,
as on a device) with its default --instances (3 interpreters share the runs), (b) the same with 1 interpreter,
and (c) a bare ai_edge_litert loop in this process with the same threads/warm-up/runs (1 interpreter). Reports
each method's medians, their spread ((max - min) / median, target <= 5 %), and the harness/bare ratio of the
median latencies (the runner's timing overhead, 1 interpreter each; ~1.00 expected) and of the wall time per
measurement.

    .venv/bin/python benchmarks/harness_stability.py [MODEL.tflite] [--repeats 5] [--runs 50] [--out FILE.json]

Default model: the first fp32 .tflite under models/ or exports/ (the bundled model's export), else a tiny
conv net built on the fly. Run it on an otherwise idle machine: it warns when the load average is high.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TARGET_SPREAD_PCT = 5.0


def default_model(tmp: Path) -> Path:
    for folder in ("models", "exports", "export"):
        found = sorted((REPO / folder).rglob("*fp32*.tflite")) or sorted((REPO / folder).rglob("*.tflite"))
        if found:
            return found[0]
    sys.path.insert(0, str(REPO / "tests"))
    from tflite_models import make_tiny_tflite

    print("no exported model found: using a tiny conv net built now (numbers are not ShuffleNet's)",
          file=sys.stderr)
    return make_tiny_tflite(tmp / "tiny_fp32.tflite", "fp32", input_size=64)


def bare_loop(model: Path, threads: int, warmup: int, runs: int, seed: int = 0) -> list[float]:
    """The same measurement as runner.py, without the subprocess: the reference."""
    import numpy as np
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_path=str(model), num_threads=threads)
    interp.allocate_tensors()
    rng = np.random.default_rng(seed)
    for d in interp.get_input_details():
        interp.set_tensor(d["index"], rng.uniform(0, 1, d["shape"]).astype(d["dtype"]))
    interp.invoke()
    for _ in range(warmup):
        interp.invoke()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter_ns()
        interp.invoke()
        times.append((time.perf_counter_ns() - t0) / 1e6)
    return times


def spread_pct(values: list[float]) -> float:
    return (max(values) - min(values)) / statistics.median(values) * 100


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", nargs="?", type=Path)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--affinity", help="pin both methods to these CPUs (e.g. 1): on a VM whose vCPUs run at "
                        "different speeds, an unpinned process lands on either and its median jumps")
    parser.add_argument("--out", type=Path, help="write the numbers as JSON here")
    args = parser.parse_args(argv)

    sys.path.insert(0, str(REPO))
    from shufflenet_deploy.bench.harness import bench_artifact
    from shufflenet_deploy.devices.registry import get_device

    load1 = os.getloadavg()[0]
    if load1 > 0.5 * (os.cpu_count() or 1):
        print(f"warning: load average {load1:.2f} on {os.cpu_count()} cores: timings will be noisy",
              file=sys.stderr)
    with tempfile.TemporaryDirectory() as tmp:
        model = args.model or default_model(Path(tmp))
        profile = get_device("local")
        if args.affinity:
            import dataclasses

            from shufflenet_deploy.devices.registry import parse_cpus

            profile = dataclasses.replace(profile, affinity=args.affinity)
            os.sched_setaffinity(0, parse_cpus(args.affinity))  # the bare loop runs in this process
        from shufflenet_deploy.bench.harness import DEFAULT_INSTANCES

        methods = {f"harness, {DEFAULT_INSTANCES} interpreters (default)": DEFAULT_INSTANCES,
                   "harness, 1 interpreter": 1, "bare loop (in process)": None}
        p50s = {name: [] for name in methods}
        walls = {name: [] for name in methods}
        for i in range(args.repeats):
            for name, instances in methods.items():
                t0 = time.perf_counter()
                if instances is None:
                    p50 = statistics.median(bare_loop(model, args.threads, args.warmup, args.runs))
                else:
                    (result,) = bench_artifact(model, profile, threads=[args.threads], runs=args.runs,
                                               warmup=args.warmup, instances=instances)
                    p50 = result.latency_ms["p50"]
                walls[name].append(time.perf_counter() - t0)
                p50s[name].append(p50)
            print(f"repeat {i + 1}/{args.repeats}: " + ", ".join(f"{n} p50 {v[-1]:.3f} ms" for n, v in p50s.items()),
                  file=sys.stderr)

    print(f"\nmodel {model.name}, threads {args.threads}, runs {args.runs}, warmup {args.warmup}, "
          f"repeats {args.repeats}, affinity {args.affinity or 'none'}, load {load1:.2f}")
    print(f"{'method':<40}{'median of p50 ms':>18}{'spread %':>10}{'ok':>5}{'wall s/measure':>16}")
    for name in methods:
        spread = spread_pct(p50s[name])
        print(f"{name:<40}{statistics.median(p50s[name]):>18.3f}{spread:>10.2f}"
              f"{'yes' if spread <= TARGET_SPREAD_PCT else 'NO':>5}{statistics.median(walls[name]):>16.3f}")
    harness_p50, harness_wall = p50s["harness, 1 interpreter"], walls["harness, 1 interpreter"]
    bare_p50, bare_wall = p50s["bare loop (in process)"], walls["bare loop (in process)"]
    latency_ratio = statistics.median(harness_p50) / statistics.median(bare_p50)
    wall_ratio = statistics.median(harness_wall) / statistics.median(bare_wall)
    print(f"harness/bare latency ratio {latency_ratio:.3f}  (timing overhead {(latency_ratio - 1) * 100:+.1f}%)")
    print(f"harness/bare wall-time ratio {wall_ratio:.2f}  (process start, push, JSON; "
          f"{statistics.median(harness_wall) - statistics.median(bare_wall):+.2f} s per measurement)")
    if args.out:
        data = {"model": str(model), "threads": args.threads, "affinity": args.affinity, "runs": args.runs, "warmup": args.warmup,
                "repeats": args.repeats, "load_average": load1, "target_spread_pct": TARGET_SPREAD_PCT,
                "methods": {name: {"p50_ms": p50s[name], "spread_pct": spread_pct(p50s[name]),
                                   "wall_s": walls[name]} for name in methods},
                "latency_ratio": latency_ratio, "wall_ratio": wall_ratio}
        args.out.write_text(json.dumps(data, indent=2) + "\n")
        print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
