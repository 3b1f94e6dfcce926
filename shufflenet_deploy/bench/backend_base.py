"""What every measurement backend shares (bench/backends.py picks one per device): one transport session held
until `close()`, files pushed once under safe remote names, device faults turned into `BenchInterrupted` (which
keeps what was measured), the device's CPU facts, and the latency summary of a set of trials."""
from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from ..devices.profile import DeviceProfile
from ..errors import DeviceError, UserError
from ..fileio import safe_component, sha256
from . import stats
from .artifacts import ModelArtifact
from .raw import ArtifactInfo, LatencySummary, RawTrial, Runtime, TimedModel, TrialSpread
from .results import BenchResult

_FACTS_MARK = "### sdeploy-cpufreq"
_FACTS_SCRIPT = ("cat /proc/cpuinfo 2>/dev/null; echo '" + _FACTS_MARK + "'; "
                 "for f in /sys/devices/system/cpu/cpu[0-9]*/cpufreq/cpuinfo_max_freq; do "
                 "[ -r \"$f\" ] && echo \"$f $(cat \"$f\")\"; done; true")
Progress = Callable[[str], None]

if TYPE_CHECKING:
    from ..devices.cpuinfo import CpuFacts
    from .op_times import OpTimes


class BenchInterrupted(DeviceError):
    """The device went away mid-benchmark; `results` holds what was measured before (marked partial)."""

    def __init__(self, message: str, hint: str | None = None, results: list[BenchResult] | None = None):
        super().__init__(message, hint)
        self.results = results or []


def artifact_info(path: Path, known_sha256: str | None = None) -> ArtifactInfo:
    return ArtifactInfo(Path(path).name, known_sha256 or sha256(path), Path(path).stat().st_size)


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
                instances: int = 1, input: Path | None = None, save_dir: Path | None = None) -> RawTrial:
        """One trial of one model (the same type from every backend; result() reads it)."""
        raise NotImplementedError

    def result(self, m: ModelArtifact, threads: int, reports: list[RawTrial], *, runs: int,
               warmup: int) -> BenchResult:
        raise NotImplementedError

    def measure_many(self, files: dict[str, Path], *, threads: int = 1, runs: int = 20, warmup: int = 3,
                     rounds: int = 1, instances: int = 1, progress: Progress | None = None) -> dict[str, TimedModel]:
        raise NotImplementedError

    def op_times(self, tflite: Path, result: BenchResult, workdir: Path, *, threads: int, runs: int = 15,
                 rounds: int = 3, progress: Progress | None = None) -> "OpTimes":
        raise NotImplementedError

    def onnxruntime_version(self) -> str | None:
        """ONNX Runtime's version where this backend can run .onnx files; None where it cannot."""
        return None

    def probe_runtime(self) -> tuple[str, str]:
        raise NotImplementedError

    def runtime_info(self) -> Runtime | None:
        """The runtime measurements would use, where it can be asked without measuring."""
        return None

    def device_facts(self) -> "CpuFacts | None":
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
        self._memo["facts"] = parse_cpuinfo(text, sysfs=sysfs)
        return self._memo["facts"]

    def _attach_model(self, result: BenchResult, m: ModelArtifact) -> BenchResult:
        result.model_key, result.model_info, result.macs = m.key, m.model_info, m.macs
        return result


# ---------------------------------------------------------------------------------------------- Linux runner
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


def summarize_trials(times: list[list[float]]) -> LatencySummary:
    """Percentiles over every run of every trial (one list of run times per trial); with several trials, also how
    much the trial medians agree."""
    out = latency_from_stats(stats.summarize([t for trial in times for t in trial]))
    if len(times) <= 1:
        return out
    trials = stats.merge_trials([list(trial) for trial in times])
    return LatencySummary(out.latency_ms, out.warnings + tuple(trials.warnings), out.stable and trials.stable,
                          TrialSpread(tuple(trials.trial_medians), trials.median_of_medians, trials.spread_pct))


def latency_from_stats(s: stats.LatencyStats) -> LatencySummary:
    """stats.LatencyStats -> the JSON `latency_ms` block (+ its warnings and stability verdict)."""
    latency = {k: getattr(s, k) for k in ("p50", "p90", "p99", "mean", "std", "min", "max", "cv")}
    latency["median_ci"] = [s.median_ci_low, s.median_ci_high]
    return LatencySummary(latency, tuple(s.warnings), s.stable)
