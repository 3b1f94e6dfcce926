"""Measuring on Linux devices (local, ssh): `runner.py` is pushed once per session and run under the device's
Python; it prints one JSON object per measurement, checked here before anything reads it. Runs can be spread over
several interpreters (`--instances`)."""
from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import DeviceError
from ..fileio import safe_component
from ..validate import Fields
from . import stats
from .backend_base import Backend, artifact_info, summarize_trials
from .raw import RawTrial, Runtime, TimedModel
from .results import BenchResult

if TYPE_CHECKING:
    from .op_times import OpTimes

RUNNER = Path(__file__).resolve().parent.parent / "runner.py"
INSTANCE_SPREAD_WARN = 0.10


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
try:
    import onnxruntime; out["onnxruntime"] = onnxruntime.__version__
except Exception:
    out["onnxruntime"] = None
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

    def measure(self, m, threads, *, runs, warmup, min_seconds=0, instances=1, input=None,
                save_dir=None) -> RawTrial:
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
        trial = parse_reply(self._parse(res, m.path.name), self.profile.name, m.path.name)
        if save_dir is not None:
            Path(save_dir).mkdir(parents=True, exist_ok=True)
            remote = f"{self.transport.workdir}/{out_name}"
            self.guard(lambda: self.transport.pull(remote, Path(save_dir) / out_name), "pulling the output")
        return trial

    def measure_many(self, files, *, threads=1, runs=20, warmup=3, rounds=1, instances=1,
                     progress=None) -> dict[str, TimedModel]:
        """Time {id: .tflite} in one `runner.py --many` call -> {id: its timing}; instances > 1: that many
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
        timed = [parse_many_entry(entry, self.profile.name) for entry in entries]
        return {t.id: t for t in timed}

    def op_times(self, tflite, result, workdir, *, threads, runs=15, rounds=3, progress=None) -> "OpTimes":
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

    def runtime_info(self) -> Runtime | None:
        """The TFLite runtime the runner would use on the device; None when none runs."""
        info = self.guard(self._probe, "asking the device's Python for its TFLite runtime")
        rt = (info or {}).get("runtime")
        if not isinstance(rt, dict) or (info or {}).get("error") or not isinstance(rt.get("name"), str):
            return None
        return Runtime(rt["name"], rt.get("version") if isinstance(rt.get("version"), str) else None)

    def onnxruntime_version(self) -> str | None:
        """ONNX Runtime's version on the device (the runner runs .onnx files with it); None when it has none."""
        info = self.guard(self._probe, "asking the device's Python for ONNX Runtime")
        version = (info or {}).get("onnxruntime")
        return version if isinstance(version, str) else None

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

    def result(self, m, threads, reports: list[RawTrial], *, runs, warmup) -> BenchResult:
        first, last = reports[0], reports[-1]
        times = [t for r in reports for t in r.times_ms]
        summary = summarize_trials([list(r.times_ms) for r in reports])
        conditions = {"before": first.conditions_before, "after": last.conditions_after}
        warnings = list(summary.warnings)
        if conditions["before"] and conditions["after"]:
            warnings += stats.compare_conditions(conditions["before"], conditions["after"])
        if first.runtime.name == "tensorflow":
            warnings.append("timed with TensorFlow's bundled interpreter; ai-edge-litert is usually faster")
        instance_medians = [x for r in reports for x in r.instance_medians_ms]
        notes = []
        if instance_medians:
            lo, hi = min(instance_medians), max(instance_medians)
            notes.append(f"runs spread over {first.instances} interpreters per trial; their medians "
                         f"{lo:.3f}-{hi:.3f} ms")
            per_instance = min(len(r.times_ms) // max(r.instances, 1) for r in reports)
            if lo > 0 and (hi - lo) / lo > INSTANCE_SPREAD_WARN and per_instance >= 10:  # fewer: noise, not modes
                warnings.append(f"interpreter instances disagree by {100 * (hi - lo) / lo:.0f}% (> "
                                f"{100 * INSTANCE_SPREAD_WARN:.0f}%): some land in a slower mode; the median "
                                "follows the majority, raise --instances if it matters")
        affinity = first.affinity
        if affinity and threads > len(affinity):
            warnings.append(f"{threads} threads on {len(affinity)} allowed CPUs: threads share cores")
        return self._attach_model(BenchResult(
            device=self.profile.name, model=m.model, precision=m.precision, threads=threads,
            latency_ms=summary.latency_ms, runtime=first.runtime.to_dict(),
            first_inference_ms=first.first_inference_ms, init_ms=first.init_ms,
            peak_rss_mb=max((r.peak_rss_mb or 0) for r in reports) or None,
            runs=len(times), warmup=warmup, trials=len(reports), instances=first.instances,
            notes=notes, times_ms=times, machine=first.machine,
            cpu=first.cpu, affinity=affinity, conditions=conditions, warnings=warnings,
            stable=summary.stable, trials_summary=summary.trials.to_dict() if summary.trials else None,
            artifact=artifact_info(m.path, m.sha256).to_dict(),
            inputs=first.inputs, outputs=first.outputs, source="runner",
            transport=self.profile.transport, python=first.python, numpy=first.numpy), m)


def _reply_fields(entry, device: str, what: str) -> Fields:
    """Fields over one part of a runner reply; a wrong value is a DeviceError (the device side misbehaved)."""
    return Fields(entry, f"{device}: the runner's reply for {what}",
                  "the device's runner.py is not this sdeploy's, or its Python misbehaved", error=DeviceError)


def parse_reply(report: dict[str, Any], device: str, what: str) -> RawTrial:
    """runner.py's reply for one model -> RawTrial, strictly: finite, positive run times and the facts result()
    reads, else one DeviceError naming the device, the field, what was expected and what came (a NaN time would
    pass into every median, a missing block would be a traceback in result())."""
    f = _reply_fields(report, device, what)
    times = f.numbers("times_ms", optional=False, positive=True)
    if not times:
        raise DeviceError(f"{device}: the runner's reply for {what} has no run times")
    rt = _reply_fields(f.obj("runtime", optional=False), device, what)
    cpu = f.obj("cpu", optional=False)
    conditions = _reply_fields(f.obj("conditions", optional=False), device, what)
    return RawTrial(
        runtime=Runtime(rt.text("name"), rt.text("version", optional=True)), times_ms=tuple(times),
        first_inference_ms=f.number("first_inference_ms", optional=True), init_ms=f.number("init_ms", optional=True),
        peak_rss_mb=f.number("peak_rss_mb", optional=True),
        instances=f.count("instances", optional=True, low=1, high=10**6) or 1,
        instance_medians_ms=tuple(f.numbers("instance_medians_ms", positive=True) or ()), cpu=cpu,
        machine=f.text("machine", optional=True), conditions_before=conditions.obj("before"),
        conditions_after=conditions.obj("after"), inputs=f.items("inputs"), outputs=f.items("outputs"),
        python=f.text("python", optional=True), numpy=f.text("numpy", optional=True))


def parse_many_entry(entry: Any, device: str) -> TimedModel:
    """One model of runner.py's --many reply -> TimedModel (a model that failed alone carries its error)."""
    f = _reply_fields(entry, device, "many.json")
    if not isinstance(entry.get("id"), (str, int)):
        raise f.fail("id", entry.get("id"), "a model id")
    return TimedModel(str(entry["id"]), tuple(f.numbers("times_ms", positive=True) or ()),
                      f.number("median_ms", optional=True, positive=True), f.text("error", optional=True),
                      f.number("min_ms", optional=True, positive=True), tuple(f.numbers("instance_medians_ms", positive=True) or ()))
