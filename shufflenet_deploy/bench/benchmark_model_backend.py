"""Measuring on Android (adb): TFLite's own `benchmark_model` binary is pushed once and its text output parsed
(bench/benchmark_model.py), the per-op profile included."""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from ..devices.profile import DeviceProfile
from ..devices.registry import BENCHMARK_BINARY_HINT
from ..errors import DeviceError, UserError
from .backend_base import Backend, artifact_info
from .importer import result_from_benchmark_model
from .raw import RawTrial, Runtime, TimedModel
from .results import BenchResult

if TYPE_CHECKING:
    from .op_times import OpTimes


def benchmark_binary(profile: DeviceProfile) -> Path:
    """The local benchmark_model binary an Android profile names (checked before connecting)."""
    if not profile.benchmark_binary:
        raise UserError(f"device {profile.name!r} has no benchmark_binary (TFLite's benchmark_model for Android)",
                        BENCHMARK_BINARY_HINT)
    path = Path(profile.benchmark_binary).expanduser()
    if not path.is_file():
        raise UserError(f"benchmark_binary {path} does not exist", BENCHMARK_BINARY_HINT)
    return path


class BenchmarkModelBackend(Backend):
    @property
    def op_method(self) -> str:
        from .op_times import OP_METHOD_ANDROID

        return OP_METHOD_ANDROID

    def prepare(self) -> None:
        benchmark_binary(self.profile)

    def _binary(self) -> str:
        key = (str(benchmark_binary(self.profile).resolve()), "benchmark_model")
        fresh = key not in self._pushed
        remote = self.push(benchmark_binary(self.profile), "benchmark_model")
        if fresh:
            self.guard(lambda: self.transport.run(["chmod", "755", remote], timeout=60), "chmod")
        return remote

    def measure(self, m, threads, *, runs, warmup, min_seconds=0, instances=1, input=None,
                save_dir=None) -> RawTrial:
        from .benchmark_model import parse_benchmark_output
        from .benchmark_model_run import to_bench_schema

        if input is not None or save_dir is not None:
            raise UserError("--input/--save-outputs need a Linux device (runner.py); benchmark_model on Android "
                            "uses random inputs")
        binary = self._binary()
        remote_model = self.push(m.path, m.path.name)
        argv = [binary, f"--graph={remote_model}", f"--num_threads={threads}", f"--warmup_runs={warmup}",
                f"--num_runs={runs}", f"--min_secs={min_seconds:g}", "--enable_op_profiling=true",
                "--report_peak_memory_footprint=true"]
        mask = self.profile.affinity_mask()
        if mask:
            argv = ["taskset", mask, *argv]
        res = self.guard(lambda: self.transport.run(argv, timeout=self.timeout), "running benchmark_model", m,
                         threads)
        text = res.stdout + "\n" + res.stderr
        if not res.ok:
            tail = " / ".join(text.strip().splitlines()[-2:])
            raise DeviceError(f"benchmark_model failed on {self.profile.name} for {m.path.name} "
                              f"(exit {res.returncode}): {tail}")
        run = parse_benchmark_output(text)
        if run.failed:
            raise DeviceError(f"benchmark_model failed on {self.profile.name} for {m.path.name}: {run.error}")
        record = to_bench_schema(run, device=self.profile.name, model=m.model, precision=m.precision,
                                 threads=threads)
        return RawTrial(runtime=Runtime(record["runtime"]), tool_latency_ms=record["latency_ms"],
                        runs=record["runs"], first_inference_ms=record["first_inference_ms"],
                        init_ms=record["init_ms"], peak_rss_mb=record["peak_rss_mb"],
                        op_profile=record["op_profile"], op_summary=record["op_summary"],
                        notes=tuple(record["notes"]))

    def result(self, m, threads, reports: list[RawTrial], *, runs, warmup) -> BenchResult:
        last = reports[-1]
        data = {"device": self.profile.name, "model": m.model, "precision": m.precision, "threads": threads,
                "warmup": warmup, "transport": "adb", "runtime": last.runtime.to_dict(),
                "latency_ms": dict(last.tool_latency_ms or {}), "runs": last.runs,
                "first_inference_ms": last.first_inference_ms, "init_ms": last.init_ms,
                "peak_rss_mb": last.peak_rss_mb, "op_profile": last.op_profile, "op_summary": last.op_summary,
                "notes": list(last.notes)}
        if self.profile.affinity:
            data["affinity"] = self.profile.affinity_cpus()
        result = result_from_benchmark_model(data, artifact=artifact_info(m.path, m.sha256).to_dict())
        result.trials = len(reports)
        if len(reports) > 1:
            result.warnings.append(f"{len(reports)} trials on Android: only the last trial is reported")
        return self._attach_model(result, m)

    def measure_many(self, files, *, threads=1, runs=20, warmup=3, rounds=1, instances=1,
                     progress=None) -> dict[str, TimedModel]:
        """benchmark_model times one model per process: the models are measured one after another, `rounds`
        times each in turn, and each id gets the median of its rounds' averages."""
        from .artifacts import guess_from_name

        times: dict[str, list[float | None]] = {ident: [] for ident in files}
        for _ in range(rounds):
            for ident, path in files.items():
                (progress or self.say)(f"timing {ident}")
                latency = self.measure(guess_from_name(Path(path)), threads, runs=runs,
                                       warmup=warmup).tool_latency_ms or {}
                times[ident].append(latency.get("p50") or latency.get("mean"))
        out = {}
        for ident, per_round in times.items():
            values = sorted(t for t in per_round if t is not None)
            out[ident] = TimedModel(ident, tuple(values), values[len(values) // 2] if values else None,
                                    min_ms=values[0] if values else None)
        return out

    def op_times(self, tflite, result, workdir, *, threads, runs=15, rounds=3, progress=None) -> "OpTimes":
        from .op_times import android_op_times

        return android_op_times(result.op_profile or [], tflite)

    def probe_runtime(self) -> tuple[str, str]:
        try:
            path = benchmark_binary(self.profile)
        except UserError as err:
            return "fail", err.one_line()
        return "ok", f"benchmark_model {path} ({path.stat().st_size // 1024} KiB, pushed at bench)"
