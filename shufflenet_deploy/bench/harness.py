"""Drive one device: push the runner (or Android's benchmark_model) and the models, run, summarize.

Linux devices (local, ssh) run `runner.py` under the device's Python, which prints one JSON object; Android
(adb) runs TFLite's own `benchmark_model` binary, whose text output bench/benchmark_model.py parses. Either
way the result is a `BenchResult`. A dropped connection keeps what was already measured: `BenchInterrupted`
carries those results so the CLI can write them with `"partial": true`.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..errors import DeviceError, UserError
from ..fileio import sha256
from ..devices.registry import BENCHMARK_BINARY_HINT, DeviceProfile
from .importer import result_from_benchmark_model
from .results import BenchResult

RUNNER = Path(__file__).resolve().parent.parent / "runner.py"
DEFAULT_INSTANCES = 3  # interpreters per measurement on Linux devices (runner.py --instances explains why)
INSTANCE_SPREAD_WARN = 0.10
PRECISIONS = ("fp32", "fp16", "int8", "int16", "int16x8", "dynamic", "uint8")


class BenchInterrupted(DeviceError):
    """The device went away mid-benchmark; `results` holds what was measured before (marked partial)."""

    def __init__(self, message: str, hint: str | None = None, results: list[BenchResult] | None = None):
        super().__init__(message, hint)
        self.results = results or []


@dataclass
class ModelArtifact:
    path: Path
    model: str
    precision: str


def find_models(artifact: Path) -> list[ModelArtifact]:
    """A .tflite file or an export folder with manifest.json -> the TFLite models to benchmark."""
    artifact = Path(artifact)
    if not artifact.exists():
        raise UserError(f"no such artifact: {artifact}", "pass a .tflite file or an export folder")
    folder = artifact if artifact.is_dir() else artifact.parent
    manifest = _read_manifest(folder)
    if artifact.is_dir():
        if manifest is None:
            tflites = sorted(artifact.glob("*.tflite"))
            if not tflites:
                raise UserError(f"{artifact} has neither manifest.json nor .tflite files",
                                "pass a .tflite file or an export folder")
            return [_from_name(p) for p in tflites]
        models = [m for m in _manifest_models(folder, manifest)]
        if not models:
            raise UserError(f"{folder / 'manifest.json'} lists no TFLite artifacts")
        return models
    if artifact.suffix != ".tflite":
        raise UserError(f"{artifact} is not a .tflite file", "pass a .tflite file or an export folder")
    for m in _manifest_models(folder, manifest or {}):
        if m.path.resolve() == artifact.resolve():
            return [m]
    return [_from_name(artifact)]


def _read_manifest(folder: Path) -> dict | None:
    path = folder / "manifest.json"
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise UserError(f"{path} is not valid JSON: {err}") from None


def _manifest_models(folder: Path, manifest: dict) -> list[ModelArtifact]:
    name = manifest.get("model")
    if isinstance(name, dict):
        name = name.get("name") or name.get("id")
    out = []
    for key, entry in (manifest.get("artifacts") or {}).items():
        file = (entry or {}).get("file", "")
        if not str(file).endswith(".tflite"):
            continue
        path = folder / file
        if not path.exists():
            raise UserError(f"manifest lists {file} but {path} does not exist", "re-run the export")
        out.append(ModelArtifact(path, str(name or _from_name(path).model), entry.get("precision") or key))
    return out


def _from_name(path: Path, default_precision: str = "fp32") -> ModelArtifact:
    """model_int8.tflite -> (model, int8); names without a precision suffix are taken as fp32."""
    stem = path.stem
    if stem in PRECISIONS:
        return ModelArtifact(path, stem, stem)
    for prec in PRECISIONS:
        for sep in ("_", "-", "."):
            if stem.endswith(sep + prec):
                return ModelArtifact(path, stem[: -len(prec) - 1], prec)
    return ModelArtifact(path, stem, default_precision)


def bench_artifact(artifact: Path, profile: DeviceProfile, *, threads: list[int] | None = None, runs: int = 50,
                   warmup: int = 10, min_seconds: float = 0, cooldown_s: float = 0, trials: int = 1,
                   timeout: float = 600, progress: Callable[[str], None] | None = None,
                   input: Path | None = None, save_outputs_dir: Path | None = None,
                   instances: int = DEFAULT_INSTANCES) -> list[BenchResult]:
    """Benchmark every TFLite model of `artifact` on `profile` at each thread count, `trials` times each.

    Linux devices spread each trial's runs over `instances` interpreters (runner.py --instances: one interpreter
    can sit in a slow mode for its whole life); Android's benchmark_model runs one."""
    models = find_models(artifact)
    threads = list(threads or profile.threads)
    if profile.transport == "adb" and (input is not None or save_outputs_dir is not None):
        raise UserError("--input/--save-outputs need a Linux device (runner.py); benchmark_model on Android "
                        "uses random inputs")
    if profile.transport == "adb":
        _benchmark_binary(profile)  # fail before connecting
    say = progress or (lambda msg: None)
    results: list[BenchResult] = []
    session = _Session(profile, timeout, say)
    transport = profile.transport_factory()
    session.transport = transport
    reports: list[dict] = []
    try:
        session.setup(input)
        first = True
        for m in models:
            remote_model = session.push(m.path, m.path.name)
            for t in threads:
                reports = []
                for trial in range(trials):
                    if not first and cooldown_s > 0:
                        say(f"cooling down {cooldown_s:g} s")
                        time.sleep(cooldown_s)
                    first = False
                    say(f"{m.model} {m.precision} threads={t} trial {trial + 1}/{trials}")
                    reports.append(session.measure(m, remote_model, t, runs, warmup, min_seconds,
                                                   save_outputs_dir if trial == trials - 1 else None, instances))
                results.append(_result(profile, m, t, reports, runs, warmup, trials))
                reports = []
    except BenchInterrupted as err:
        if reports:  # some trials of the interrupted combination finished
            results.append(_result(profile, m, t, reports, runs, warmup, trials))
        for r in results:
            r.partial = True
        raise BenchInterrupted(err.message, err.hint, results) from None
    finally:
        try:
            transport.cleanup()
        except UserError as err:  # a dead connection must not hide the results or the first error
            say(f"cleanup on {profile.name} failed: {err.one_line()}")
    return results


class _Session:
    """One transport session: what was pushed, and how to run one measurement."""

    def __init__(self, profile: DeviceProfile, timeout: float, say):
        self.profile, self.timeout, self.say = profile, timeout, say
        self.transport = None
        self.runner = self.binary = self.input = None

    def push(self, local: Path, name: str) -> str:
        self.say(f"pushing {name} to {self.profile.name}")
        return self._guard(lambda: self.transport.push(Path(local), name), f"pushing {name}")

    def setup(self, input: Path | None) -> None:
        if self.profile.transport == "adb":
            self.binary = self.push(_benchmark_binary(self.profile), "benchmark_model")
            self._guard(lambda: self.transport.run(["chmod", "755", self.binary], timeout=60), "chmod")
        else:
            self.runner = self.push(RUNNER, "sdeploy_runner.py")
        if input is not None:
            self.input = self.push(Path(input), "input.npy")

    def _guard(self, call, what: str, model: ModelArtifact | None = None, threads: int | None = None):
        """Turn transport faults into BenchInterrupted; a fault at the time limit is reported as a timeout."""
        start = time.monotonic()
        try:
            return call()
        except UserError as err:
            if not isinstance(err, DeviceError) and err.exit_code != 3:
                raise
            elapsed = time.monotonic() - start
            if model is not None and elapsed >= 0.9 * self.timeout:
                raise BenchInterrupted(
                    f"{model.path.name} ({model.precision}, threads={threads}) did not finish within the "
                    f"{self.timeout:g} s limit on {self.profile.name}",
                    "raise --timeout or lower --runs/--min-seconds") from None
            raise BenchInterrupted(f"{self.profile.name}: {what} failed: {err.message}",
                                   err.hint or "check the connection and rerun the same command") from None

    def measure(self, m: ModelArtifact, remote_model: str, threads: int, runs: int, warmup: int,
                min_seconds: float, save_dir: Path | None, instances: int = 1) -> dict:
        if self.profile.transport == "adb":
            return self._measure_adb(m, remote_model, threads, runs, warmup, min_seconds)
        argv = [*self.profile.python_argv, self.runner, remote_model, "--threads", str(threads),
                "--warmup", str(warmup), "--runs", str(runs), "--min-seconds", str(min_seconds),
                "--instances", str(instances)]
        cpus = self.profile.affinity_cpus()
        if cpus:
            argv += ["--affinity", ",".join(map(str, cpus))]
        if self.input:
            argv += ["--input", self.input]
        out_name = f"output_{m.model}_{m.precision}_t{threads}.npy"
        if save_dir is not None:
            argv += ["--save-output", out_name]
        res = self._guard(lambda: self.transport.run(argv, timeout=self.timeout), "running the runner", m, threads)
        report = _parse_runner(res, self.profile, m)
        if save_dir is not None:
            Path(save_dir).mkdir(parents=True, exist_ok=True)
            remote = f"{self.transport.workdir}/{out_name}"
            self._guard(lambda: self.transport.pull(remote, Path(save_dir) / out_name), "pulling the output")
        return report

    def _measure_adb(self, m, remote_model, threads, runs, warmup, min_seconds) -> dict:
        from .benchmark_model import parse_benchmark_output, to_bench_schema

        argv = [self.binary, f"--graph={remote_model}", f"--num_threads={threads}", f"--warmup_runs={warmup}",
                f"--num_runs={runs}", f"--min_secs={min_seconds:g}", "--enable_op_profiling=true",
                "--report_peak_memory_footprint=true"]
        mask = self.profile.affinity_mask()
        if mask:
            argv = ["taskset", mask, *argv]
        res = self._guard(lambda: self.transport.run(argv, timeout=self.timeout), "running benchmark_model", m,
                          threads)
        text = res.stdout + "\n" + res.stderr
        if not res.ok:
            tail = " / ".join(text.strip().splitlines()[-2:])
            raise DeviceError(f"benchmark_model failed on {self.profile.name} for {m.path.name} "
                              f"(exit {res.returncode}): {tail}")
        run = parse_benchmark_output(text)
        if run.failed:
            raise DeviceError(f"benchmark_model failed on {self.profile.name} for {m.path.name}: {run.error}")
        return {"_adb": to_bench_schema(run, device=self.profile.name, model=m.model, precision=m.precision,
                                        threads=threads)}


def _benchmark_binary(profile: DeviceProfile) -> Path:
    if not profile.benchmark_binary:
        raise UserError(f"device {profile.name!r} has no benchmark_binary (TFLite's benchmark_model for Android)",
                        BENCHMARK_BINARY_HINT)
    path = Path(profile.benchmark_binary).expanduser()
    if not path.is_file():
        raise UserError(f"benchmark_binary {path} does not exist", BENCHMARK_BINARY_HINT)
    return path


def _parse_runner(res, profile: DeviceProfile, m: ModelArtifact) -> dict:
    report = None
    for line in reversed(res.stdout.strip().splitlines()):
        if line.startswith("{"):
            try:
                report = json.loads(line)
                break
            except json.JSONDecodeError:
                pass
    python = " ".join(profile.python_argv)
    if report is None:
        tail = " / ".join((res.stderr or res.stdout).strip().splitlines()[-2:]) or "no output"
        if res.returncode == 127 or "not found" in tail:
            raise DeviceError(f"{profile.name}: cannot start {python}: {tail}",
                              f"install Python 3 there or set python = \"...\" in [devices.{profile.name}]")
        raise DeviceError(f"{profile.name}: the runner failed for {m.path.name} (exit {res.returncode}): {tail}")
    if res.returncode == 3:
        hint = report.get("hint") or "pip install ai-edge-litert"
        raise DeviceError(f"{profile.name}: {report.get('error')} for {python} "
                          f"({report.get('python_executable') or python})",
                          f"install it on the device: {hint.replace('pip ', f'{python} -m pip ', 1)}")
    if report.get("error") or res.returncode != 0:
        raise DeviceError(f"{profile.name}: the runner failed for {m.path.name}: "
                          f"{report.get('error') or f'exit {res.returncode}'}")
    return report


def _artifact_info(path: Path) -> dict:
    return {"file": path.name, "sha256": sha256(path), "size_bytes": path.stat().st_size}


def _result(profile, m, threads, reports, runs, warmup, trials, *, partial=False) -> BenchResult:
    from . import stats

    if "_adb" in reports[0]:
        return _adb_result(profile, m, threads, reports, runs, warmup, partial)
    first, last = reports[0], reports[-1]
    times = [t for r in reports for t in r["times_ms"]]
    summary = _summarize(stats, reports)
    conditions = {"before": first["conditions"]["before"], "after": last["conditions"]["after"]}
    warnings = list(summary.get("warnings", []))
    if conditions["before"] and conditions["after"]:
        warnings += stats.compare_conditions(conditions["before"], conditions["after"])
    if first["runtime"]["name"] == "tensorflow":
        warnings.append("timed with TensorFlow's bundled interpreter; ai-edge-litert is usually faster")
    instance_medians = [x for r in reports for x in r.get("instance_medians_ms") or []]
    notes = []
    if instance_medians:
        lo, hi = min(instance_medians), max(instance_medians)
        notes.append(f"runs spread over {first.get('instances')} interpreters per trial; their medians "
                     f"{lo:.3f}-{hi:.3f} ms")
        per_instance = min(len(r["times_ms"]) // max(r.get("instances") or 1, 1) for r in reports)
        if lo > 0 and (hi - lo) / lo > INSTANCE_SPREAD_WARN and per_instance >= 10:  # fewer: noise, not modes
            warnings.append(f"interpreter instances disagree by {100 * (hi - lo) / lo:.0f}% (> "
                            f"{100 * INSTANCE_SPREAD_WARN:.0f}%): some land in a slower mode; the median follows "
                            "the majority, raise --instances if it matters")
    affinity = first["cpu"].get("affinity")
    if affinity and threads > len(affinity):
        warnings.append(f"{threads} threads on {len(affinity)} allowed CPUs: threads share cores")
    return BenchResult(
        device=profile.name, model=m.model, precision=m.precision, threads=threads,
        latency_ms=summary["latency_ms"], runtime=first["runtime"],
        first_inference_ms=first["first_inference_ms"], init_ms=first["init_ms"],
        peak_rss_mb=max((r.get("peak_rss_mb") or 0) for r in reports) or None,
        runs=len(times), warmup=warmup, trials=len(reports), instances=first.get("instances") or 1,
        notes=notes, times_ms=times, machine=first["machine"],
        cpu=first["cpu"], affinity=affinity, conditions=conditions, warnings=warnings,
        stable=summary.get("stable"), trials_summary=summary.get("trials"), partial=partial,
        artifact=_artifact_info(m.path),
        inputs=first.get("inputs"), outputs=first.get("outputs"), source="runner", transport=profile.transport,
        python=first.get("python"), numpy=first.get("numpy"))


def _summarize(stats, reports: list[dict]) -> dict:
    """Percentiles over every run of every trial; with several trials, also how much the trial medians agree."""
    out = latency_from_stats(stats.summarize([t for r in reports for t in r["times_ms"]]))
    if len(reports) > 1:
        trials = stats.merge_trials([r["times_ms"] for r in reports])
        out["warnings"] += trials.warnings
        out["stable"] = out["stable"] and trials.stable
        out["trials"] = {"medians": trials.trial_medians, "median_of_medians": trials.median_of_medians,
                         "spread_pct": trials.spread_pct}
    return out


def latency_from_stats(s) -> dict:
    """stats.LatencyStats -> the JSON `latency_ms` block (+ its warnings and stability verdict)."""
    latency = {k: getattr(s, k) for k in ("p50", "p90", "p99", "mean", "std", "min", "max", "cv")}
    latency["median_ci"] = [s.median_ci_low, s.median_ci_high]
    return {"latency_ms": latency, "warnings": list(s.warnings), "stable": s.stable}


def _adb_result(profile, m, threads, reports, runs, warmup, partial) -> BenchResult:
    data = dict(reports[-1]["_adb"])
    data.update(device=profile.name, model=m.model, precision=m.precision, threads=threads, partial=partial,
                warmup=warmup, transport="adb")
    if profile.affinity:
        data["affinity"] = profile.affinity_cpus()
    result = result_from_benchmark_model(data, artifact=_artifact_info(m.path))
    result.trials = len(reports)
    if len(reports) > 1:
        result.warnings.append(f"{len(reports)} trials on Android: only the last trial is reported")
    return result
