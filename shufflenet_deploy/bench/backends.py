"""The two ways sdeploy measures a TFLite model on a device, behind one interface.

- `RunnerBackend` (Linux devices: local, ssh): pushes `runner.py` once per session and runs it under the
  device's Python; it prints one JSON object. Runs can be spread over several interpreters (`--instances`).
- `BenchmarkModelBackend` (Android, adb): pushes TFLite's own `benchmark_model` binary once and parses its text
  output (bench/benchmark_model.py).

Both offer, over one transport session held until `close()`:
    measure(model, threads, ...)      one measurement (a trial) -> the backend's raw report
    result(model, threads, reports)   the trials of one (model, threads) -> a BenchResult
    measure_many({id: file}, ...)     many models timed side by side -> {id: {median_ms, times_ms, error}}
    op_times(file, result, ...)       per-op time (bench/op_times.py: single-op models, or the op profile)
    probe_runtime()                   (status, detail) for `sdeploy devices check`
A fault of the link (DeviceError) becomes `BenchInterrupted`, so callers can keep what was measured before.
"""
from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path
from typing import Callable

from ..devices.registry import BENCHMARK_BINARY_HINT, DeviceProfile
from ..errors import DeviceError, UserError
from ..fileio import safe_component, sha256
from ..validate import Fields
from . import stats
from .artifacts import ModelArtifact
from .importer import result_from_benchmark_model
from .results import BenchResult

RUNNER = Path(__file__).resolve().parent.parent / "runner.py"
_FACTS_MARK = "### sdeploy-cpufreq"
_FACTS_SCRIPT = ("cat /proc/cpuinfo 2>/dev/null; echo '" + _FACTS_MARK + "'; "
                 "for f in /sys/devices/system/cpu/cpu[0-9]*/cpufreq/cpuinfo_max_freq; do "
                 "[ -r \"$f\" ] && echo \"$f $(cat \"$f\")\"; done; true")
INSTANCE_SPREAD_WARN = 0.10
Progress = Callable[[str], None]


class BenchInterrupted(DeviceError):
    """The device went away mid-benchmark; `results` holds what was measured before (marked partial)."""

    def __init__(self, message: str, hint: str | None = None, results: list[BenchResult] | None = None):
        super().__init__(message, hint)
        self.results = results or []


def backend_for(profile: DeviceProfile, *, timeout: float = 600, progress: Progress | None = None) -> "Backend":
    cls = BenchmarkModelBackend if profile.transport == "adb" else RunnerBackend
    return cls(profile, timeout=timeout, progress=progress)


def benchmark_binary(profile: DeviceProfile) -> Path:
    """The local benchmark_model binary an Android profile names (checked before connecting)."""
    if not profile.benchmark_binary:
        raise UserError(f"device {profile.name!r} has no benchmark_binary (TFLite's benchmark_model for Android)",
                        BENCHMARK_BINARY_HINT)
    path = Path(profile.benchmark_binary).expanduser()
    if not path.is_file():
        raise UserError(f"benchmark_binary {path} does not exist", BENCHMARK_BINARY_HINT)
    return path


def artifact_info(path: Path, known_sha256: str | None = None) -> dict:
    return {"file": Path(path).name, "sha256": known_sha256 or sha256(path), "size_bytes": Path(path).stat().st_size}


class Backend:
    """One transport session on one device (see the module docstring)."""

    supports_inputs = False  # --input / --save-outputs
    measures_peak = False  # can run the peak kernels (bench/peak.py)
    op_method = ""

    def __init__(self, profile: DeviceProfile, *, timeout: float = 600, progress: Progress | None = None):
        self.profile, self.timeout = profile, timeout
        self.say = progress or (lambda msg: None)
        self._transport = None
        self._pushed: dict[tuple[str, str], str] = {}
        self._memo: dict[str, object] = {}

    # -- session ---------------------------------------------------------------------------------------------
    @property
    def transport(self):
        if self._transport is None:
            self._transport = self.profile.transport_factory()
        return self._transport

    def __enter__(self) -> "Backend":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if self._transport is None:
            return
        try:
            self._transport.cleanup()
        except UserError as err:  # a dead connection must not hide the results or the first error
            self.say(f"cleanup on {self.profile.name} failed: {err.one_line()}")
        self._transport = None
        self._pushed.clear()

    def push(self, local: Path, name: str) -> str:
        """Push once per session: the same file under the same name is not sent again. The remote name is a safe
        one (a file name from a user's folder may hold bytes the device's Python cannot pass on)."""
        name = remote_name(name)
        key = (str(Path(local).resolve()), name)
        if key not in self._pushed:
            self.say(f"pushing {name} to {self.profile.name}")
            self._pushed[key] = self.guard(lambda: self.transport.push(Path(local), name), f"pushing {name}")
        return self._pushed[key]

    def push_all(self, files: list[tuple[Path, str]]) -> list[str]:
        """push() for many files, the ones not sent yet in one transfer (transport.push_many)."""
        named = [(Path(local), remote_name(name)) for local, name in files]
        keys = [(str(local.resolve()), name) for local, name in named]
        todo = [(local, name) for (local, name), key in zip(named, keys) if key not in self._pushed]
        if todo:
            self.say(f"pushing {len(todo)} files to {self.profile.name}")
            remote = self.guard(lambda: self.transport.push_many(todo), f"pushing {len(todo)} files")
            for (local, name), path in zip(todo, remote):
                self._pushed[(str(local.resolve()), name)] = path
        return [self._pushed[key] for key in keys]

    def guard(self, call, what: str, model: ModelArtifact | None = None, threads: int | None = None):
        """Turn transport faults into BenchInterrupted; a fault at the time limit is reported as a timeout."""
        start = time.monotonic()
        try:
            return call()
        except UserError as err:
            if not isinstance(err, DeviceError) and err.exit_code != 3:
                raise
            if isinstance(err, BenchInterrupted):
                raise
            elapsed = time.monotonic() - start
            if model is not None and elapsed >= 0.9 * self.timeout:
                raise BenchInterrupted(
                    f"{model.path.name} ({model.precision}, threads={threads}) did not finish within the "
                    f"{self.timeout:g} s limit on {self.profile.name}",
                    "raise --timeout or lower --runs/--min-seconds") from None
            raise BenchInterrupted(f"{self.profile.name}: {what} failed: {err.message}",
                                   err.hint or "check the connection and rerun the same command") from None

    # -- the interface ---------------------------------------------------------------------------------------
    def prepare(self) -> None:
        """Check what can be checked before connecting (e.g. that a local binary exists)."""

    def measure(self, m: ModelArtifact, threads: int, *, runs: int, warmup: int, min_seconds: float = 0,
                instances: int = 1, input: Path | None = None, save_dir: Path | None = None) -> dict:
        raise NotImplementedError

    def result(self, m: ModelArtifact, threads: int, reports: list[dict], *, runs: int, warmup: int) -> BenchResult:
        raise NotImplementedError

    def measure_many(self, files: dict[str, Path], *, threads: int = 1, runs: int = 20, warmup: int = 3,
                     rounds: int = 1, instances: int = 1, progress: Progress | None = None) -> dict[str, dict]:
        raise NotImplementedError

    def op_times(self, tflite: Path, result: BenchResult, workdir: Path, *, threads: int, runs: int = 15,
                 rounds: int = 3, progress: Progress | None = None) -> dict:
        raise NotImplementedError

    def probe_runtime(self) -> tuple[str, str]:
        raise NotImplementedError

    def runtime_info(self) -> dict | None:
        """{name, version} of the runtime measurements would use, where it can be asked without measuring."""
        return None

    def device_facts(self) -> dict | None:
        """The device's CPU facts (devices/cpuinfo.py): core names, clusters, the ISA features that decide
        XNNPACK's kernels. Read the same way on every transport, once per session; None when the device has no
        /proc/cpuinfo."""
        from ..devices.cpuinfo import parse_cpuinfo

        if "facts" in self._memo:
            return self._memo["facts"]

        res = self.guard(lambda: self.transport.run(["sh", "-c", _FACTS_SCRIPT], timeout=min(self.timeout, 60)),
                         "reading /proc/cpuinfo")
        text, _, freqs = (res.stdout or "").partition(_FACTS_MARK)
        self._memo["facts"] = None
        if not text.strip():
            return None
        sysfs = {}
        for line in freqs.splitlines():
            path, _, khz = line.strip().rpartition(" ")
            cpu = path.split("/cpu/cpu")[-1].split("/")[0] if "/cpu/cpu" in path else ""
            if cpu.isdigit() and khz.isdigit():
                sysfs[int(cpu)] = {"max_khz": int(khz)}
        self._memo["facts"] = parse_cpuinfo(text, sysfs=sysfs).to_dict()
        return self._memo["facts"]

    def _attach_model(self, result: BenchResult, m: ModelArtifact) -> BenchResult:
        result.model_key, result.model_info, result.macs = m.key, m.model_info, m.macs
        return result


# ---------------------------------------------------------------------------------------------- Linux runner
_RUNTIME_PROBE = r"""
import json, platform
out = {"python": platform.python_version(), "numpy": None, "runtime": None}
try:
    import numpy; out["numpy"] = numpy.__version__
except Exception as e:
    out["error"] = "numpy: %s" % e
for name, dist in (("ai_edge_litert", "ai-edge-litert"), ("tflite_runtime", "tflite-runtime"),
                   ("tensorflow", "tensorflow")):
    try:
        __import__(name + (".interpreter" if name != "tensorflow" else ""))
        from importlib import metadata
        out["runtime"] = {"name": name, "version": metadata.version(dist)}
        break
    except Exception:
        pass
print(json.dumps(out))
"""


class RunnerBackend(Backend):
    supports_inputs = True
    measures_peak = True

    @property
    def op_method(self) -> str:
        from .op_times import OP_METHOD_SINGLE

        return OP_METHOD_SINGLE

    def _runner(self) -> str:
        return self.push(RUNNER, "sdeploy_runner.py")

    def _affinity_args(self) -> list[str]:
        cpus = self.profile.affinity_cpus()
        return ["--affinity", ",".join(map(str, cpus))] if cpus else []

    def measure(self, m, threads, *, runs, warmup, min_seconds=0, instances=1, input=None, save_dir=None) -> dict:
        runner = self._runner()
        remote_model = self.push(m.path, m.path.name)
        argv = [*self.profile.python_argv, runner, remote_model, "--threads", str(threads), "--warmup", str(warmup),
                "--runs", str(runs), "--min-seconds", str(min_seconds), "--instances", str(instances),
                *self._affinity_args()]
        if input is not None:
            argv += ["--input", self.push(Path(input), "input.npy")]
        out_name = safe_component(f"output_{m.model}_{m.precision}_t{threads}") + ".npy"
        if save_dir is not None:
            argv += ["--save-output", out_name]
        res = self.guard(lambda: self.transport.run(argv, timeout=self.timeout), "running the runner", m, threads)
        report = self._parse(res, m.path.name)
        _check_reply(report, self.profile.name, m.path.name)
        if save_dir is not None:
            Path(save_dir).mkdir(parents=True, exist_ok=True)
            remote = f"{self.transport.workdir}/{out_name}"
            self.guard(lambda: self.transport.pull(remote, Path(save_dir) / out_name), "pulling the output")
        return report

    def measure_many(self, files, *, threads=1, runs=20, warmup=3, rounds=1, instances=1, progress=None):
        """Time {id: .tflite} in one `runner.py --many` call -> {id: runner entry}; instances > 1: that many
        interpreters per model, used in turn over the rounds (a lone interpreter can sit in a slow mode)."""
        runner = self._runner()
        remote = self.push_all([(Path(path), f"m{i:04d}_{Path(path).name}") for i, path in enumerate(files.values())])
        items = [{"id": ident, "path": path} for ident, path in zip(files, remote)]
        with tempfile.TemporaryDirectory() as tmp:
            listing = Path(tmp) / "many.json"
            listing.write_text(json.dumps(items))
            remote_list = self.guard(lambda: self.transport.push(listing, "many.json"), "pushing many.json")
        argv = [*self.profile.python_argv, runner, "--many", remote_list, "--threads", str(threads), "--runs",
                str(runs), "--warmup", str(warmup), "--rounds", str(rounds), "--instances", str(instances),
                *self._affinity_args()]
        (progress or self.say)(f"timing {len(items)} models in one runner process")
        res = self.guard(lambda: self.transport.run(argv, timeout=max(self.timeout, 1800)), "running the runner")
        report = self._parse(res, "many.json")
        entries = report.get("results")
        if not isinstance(entries, list):
            raise DeviceError(f"{self.profile.name}: the runner's reply for many.json has no results list")
        for entry in entries:
            f = _reply_fields(entry, self.profile.name, "many.json")
            f.numbers("times_ms", positive=True), f.number("median_ms", optional=True, positive=True)
        return {str(e["id"]): e for e in entries}

    def op_times(self, tflite, result, workdir, *, threads, runs=15, rounds=3, progress=None) -> dict:
        from .op_times import single_op_times

        return single_op_times(self.measure_many, tflite, workdir, threads=threads, runs=runs, rounds=rounds,
                               progress=progress or self.say)

    def _probe(self) -> dict | None:
        """The device Python's {python, numpy, runtime: {name, version}} (_RUNTIME_PROBE), None when it did not run."""
        res = self.transport.run([*self.profile.python_argv, "-c", _RUNTIME_PROBE], timeout=min(self.timeout, 60))
        try:
            info = json.loads(res.stdout.strip().splitlines()[-1])
        except (IndexError, json.JSONDecodeError):
            self._memo["probe_error"] = ((res.stderr or res.stdout).strip().splitlines()[-1:] or ["no output"])[0]
            return None
        return info if isinstance(info, dict) else None

    def runtime_info(self) -> dict | None:
        """{name, version} of the TFLite runtime the runner would use on the device; None when none runs."""
        info = self.guard(self._probe, "asking the device's Python for its TFLite runtime")
        rt = (info or {}).get("runtime")
        return rt if isinstance(rt, dict) and not (info or {}).get("error") else None

    def probe_runtime(self) -> tuple[str, str]:
        python = " ".join(self.profile.python_argv)
        info = self._probe()
        if info is None:
            return "fail", f"cannot run {python}: {self._memo.get('probe_error')}"
        if info.get("error") or not info.get("runtime"):
            return "fail", (f"{python} (Python {info['python']}) lacks "
                            f"{'numpy' if info.get('error') else 'a TFLite runtime'}: "
                            f"run `{python} -m pip install numpy ai-edge-litert` there")
        rt = info["runtime"]
        return ("warn" if rt["name"] == "tensorflow" else "ok",
                f"{rt['name']} {rt['version']} (numpy {info['numpy']}, Python {info['python']})")

    def _parse(self, res, what: str) -> dict:
        profile = self.profile
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
            raise DeviceError(f"{profile.name}: the runner failed for {what} (exit {res.returncode}): {tail}")
        if res.returncode == 3:
            hint = report.get("hint") or "pip install ai-edge-litert"
            raise DeviceError(f"{profile.name}: {report.get('error')} for {python} "
                              f"({report.get('python_executable') or python})",
                              f"install it on the device: {hint.replace('pip ', f'{python} -m pip ', 1)}")
        if report.get("error") or res.returncode != 0:
            raise DeviceError(f"{profile.name}: the runner failed for {what}: "
                              f"{report.get('error') or f'exit {res.returncode}'}")
        return report

    def result(self, m, threads, reports, *, runs, warmup) -> BenchResult:
        first, last = reports[0], reports[-1]
        times = [t for r in reports for t in r["times_ms"]]
        summary = summarize_trials(reports)
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
                                f"{100 * INSTANCE_SPREAD_WARN:.0f}%): some land in a slower mode; the median "
                                "follows the majority, raise --instances if it matters")
        affinity = first["cpu"].get("affinity")
        if affinity and threads > len(affinity):
            warnings.append(f"{threads} threads on {len(affinity)} allowed CPUs: threads share cores")
        return self._attach_model(BenchResult(
            device=self.profile.name, model=m.model, precision=m.precision, threads=threads,
            latency_ms=summary["latency_ms"], runtime=first["runtime"],
            first_inference_ms=first["first_inference_ms"], init_ms=first["init_ms"],
            peak_rss_mb=max((r.get("peak_rss_mb") or 0) for r in reports) or None,
            runs=len(times), warmup=warmup, trials=len(reports), instances=first.get("instances") or 1,
            notes=notes, times_ms=times, machine=first["machine"],
            cpu=first["cpu"], affinity=affinity, conditions=conditions, warnings=warnings,
            stable=summary.get("stable"), trials_summary=summary.get("trials"),
            artifact=artifact_info(m.path, m.sha256),
            inputs=first.get("inputs"), outputs=first.get("outputs"), source="runner",
            transport=self.profile.transport, python=first.get("python"), numpy=first.get("numpy")), m)


def remote_name(name: str) -> str:
    """NAME as a file name on the device: safe characters only, the suffix kept, and a short hash of the original
    where anything had to change (two different names never land on one remote file)."""
    import hashlib

    path = Path(name)
    safe = safe_component(path.stem) + (f".{safe_component(path.suffix[1:])}" if path.suffix else "")
    if safe == name:
        return name
    digest = hashlib.sha1(name.encode("utf-8", "surrogateescape")).hexdigest()[:8]
    return f"{Path(safe).stem}-{digest}{Path(safe).suffix}"


def _reply_fields(entry, device: str, what: str) -> Fields:
    """Fields over one part of a runner reply; a wrong value is a DeviceError (the device side misbehaved)."""
    return Fields(entry, f"{device}: the runner's reply for {what}",
                  "the device's runner.py is not this sdeploy's, or its Python misbehaved", error=DeviceError)


def _check_reply(report: dict, device: str, what: str) -> None:
    """A runner reply must carry finite, positive run times and the facts result() reads, else one DeviceError
    (a NaN time would pass into every median, a missing block would be a traceback in result())."""
    f = _reply_fields(report, device, what)
    if not f.numbers("times_ms", optional=False, positive=True):
        raise DeviceError(f"{device}: the runner's reply for {what} has no run times")
    f.number("first_inference_ms", optional=True), f.number("init_ms", optional=True)
    f.number("peak_rss_mb", optional=True), f.numbers("instance_medians_ms", positive=True)
    rt = _reply_fields(f.obj("runtime", optional=False), device, what)
    rt.text("name"), rt.text("version", optional=True)
    f.obj("cpu", optional=False)
    conditions = _reply_fields(f.obj("conditions", optional=False), device, what)
    conditions.obj("before"), conditions.obj("after")


def summarize_trials(reports: list[dict]) -> dict:
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


# ------------------------------------------------------------------------------------ Android benchmark_model
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

    def measure(self, m, threads, *, runs, warmup, min_seconds=0, instances=1, input=None, save_dir=None) -> dict:
        from .benchmark_model import parse_benchmark_output, to_bench_schema

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
        return to_bench_schema(run, device=self.profile.name, model=m.model, precision=m.precision, threads=threads)

    def result(self, m, threads, reports, *, runs, warmup) -> BenchResult:
        data = dict(reports[-1])
        data.update(device=self.profile.name, model=m.model, precision=m.precision, threads=threads,
                    warmup=warmup, transport="adb")
        if self.profile.affinity:
            data["affinity"] = self.profile.affinity_cpus()
        result = result_from_benchmark_model(data, artifact=artifact_info(m.path, m.sha256))
        result.trials = len(reports)
        if len(reports) > 1:
            result.warnings.append(f"{len(reports)} trials on Android: only the last trial is reported")
        return self._attach_model(result, m)

    def measure_many(self, files, *, threads=1, runs=20, warmup=3, rounds=1, instances=1, progress=None):
        """benchmark_model times one model per process: the models are measured one after another, `rounds`
        times each in turn, and each id gets the median of its rounds' averages."""
        from .artifacts import guess_from_name

        out: dict[str, dict] = {}
        for _ in range(rounds):
            for ident, path in files.items():
                (progress or self.say)(f"timing {ident}")
                report = self.measure(guess_from_name(Path(path)), threads, runs=runs, warmup=warmup)
                out.setdefault(ident, {"id": ident, "times_ms": [], "error": None})["times_ms"].append(
                    (report.get("latency_ms") or {}).get("p50") or (report.get("latency_ms") or {}).get("mean"))
        for entry in out.values():
            values = sorted(t for t in entry["times_ms"] if t is not None)
            entry["median_ms"] = values[len(values) // 2] if values else None
        return out

    def op_times(self, tflite, result, workdir, *, threads, runs=15, rounds=3, progress=None) -> dict:
        from .op_times import android_op_times

        return android_op_times(result.op_profile or [], tflite)

    def probe_runtime(self) -> tuple[str, str]:
        try:
            path = benchmark_binary(self.profile)
        except UserError as err:
            return "fail", err.one_line()
        return "ok", f"benchmark_model {path} ({path.stat().st_size // 1024} KiB, pushed at bench)"
