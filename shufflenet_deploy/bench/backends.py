"""The two ways sdeploy measures a TFLite model on a device, behind one interface.

- `RunnerBackend` (Linux devices: local, ssh): pushes `runner.py` once per session and runs it under the
  device's Python; it prints one JSON object. Runs can be spread over several interpreters (`--instances`).
- `BenchmarkModelBackend` (Android, adb): pushes TFLite's own `benchmark_model` binary once and parses its text
  output (bench/benchmark_model.py).

Both offer, over one transport session held until `close()`:
    measure(model, threads, ...)      one measurement (a trial) -> a RawTrial (bench/raw.py, both backends)
    result(model, threads, trials)    the trials of one (model, threads) -> a BenchResult
    measure_many({id: file}, ...)     many models timed side by side -> {id: TimedModel}
    op_times(file, result, ...)       per-op time -> OpTimes (bench/op_times.py: single-op models, or the profile)
    probe_runtime()                   (status, detail) for `sdeploy devices check`
A fault of the link (DeviceError) becomes `BenchInterrupted`, so callers can keep what was measured before.
What both share: bench/backend_base.py; each: bench/runner_backend.py, bench/benchmark_model_backend.py.
"""
from __future__ import annotations

from ..devices.profile import DeviceProfile
from .backend_base import Backend, BenchInterrupted, Progress
from .benchmark_model_backend import BenchmarkModelBackend
from .runner_backend import RunnerBackend

__all__ = ["Backend", "BenchInterrupted", "BenchmarkModelBackend", "RunnerBackend", "backend_for"]


def backend_for(profile: DeviceProfile, *, timeout: float = 600, progress: Progress | None = None) -> Backend:
    cls = BenchmarkModelBackend if profile.transport == "adb" else RunnerBackend
    return cls(profile, timeout=timeout, progress=progress)
