"""What a backend hands back before it becomes a BenchResult (bench/results.py): one typed object per kind of
measurement, the same for every backend (RunnerBackend, BenchmarkModelBackend), so the harness, the sweep and the
peak and op-time modules read attributes instead of a device reply's string keys.

- `RawTrial`: one trial of one model (`Backend.measure`); `Backend.result` turns a model's trials into a result.
- `TimedModel`: one model of a side-by-side timing (`Backend.measure_many`: op cuts, peak kernels, the sweep's
  interleaved pass).
- `LatencySummary` (+ `TrialSpread`): the latency block of a set of trials (`summarize_trials`).
- `Runtime`, `ArtifactInfo`: the runtime a device measures with, and the file measured.

They are in-memory types: a BenchResult still stores the document's dict form (`to_dict`), so bench.json does
not change.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

Latency = dict[str, Any]  # results.LATENCY_KEYS -> ms (median_ci: [low, high]); the document's latency block


@dataclass(frozen=True)
class Runtime:
    """The interpreter that timed a model: ai_edge_litert, tflite_runtime, tensorflow, onnxruntime, benchmark_model."""
    name: str
    version: str | None = None

    def to_dict(self) -> dict[str, str | None]:
        return {"name": self.name, "version": self.version}


@dataclass(frozen=True)
class ArtifactInfo:
    """The measured file as a result records it: its name, hash and size."""
    file: str
    sha256: str
    size_bytes: int

    def to_dict(self) -> dict[str, str | int]:
        return {"file": self.file, "sha256": self.sha256, "size_bytes": self.size_bytes}


@dataclass(frozen=True)
class RawTrial:
    """One trial of one model as a backend measured it (runner.py's checked reply, or benchmark_model's parsed
    output). Fields a backend cannot know stay empty; result() reads only what its backend fills."""
    runtime: Runtime
    times_ms: tuple[float, ...] = ()  # every timed run (runner.py); empty where the tool prints only a summary
    tool_latency_ms: Latency | None = None  # benchmark_model's own summary (it prints no per-run times)
    runs: int | None = None
    first_inference_ms: float | None = None
    init_ms: float | None = None
    peak_rss_mb: float | None = None
    instances: int = 1  # interpreters the runs were spread over (runner.py --instances)
    instance_medians_ms: tuple[float, ...] = ()
    cpu: dict[str, Any] | None = None  # runner.py's cpu block (model, governor, affinity)
    machine: str | None = None  # platform.machine() on the device
    conditions_before: dict[str, Any] | None = None  # frequencies, governors, temperatures (stats.compare_conditions)
    conditions_after: dict[str, Any] | None = None
    inputs: list[dict[str, Any]] | None = None  # tensor facts as runner.py reports them
    outputs: list[dict[str, Any]] | None = None
    python: str | None = None
    numpy: str | None = None
    op_profile: list[dict[str, Any]] | None = None  # benchmark_model --enable_op_profiling, run order
    op_summary: list[dict[str, Any]] | None = None  # benchmark_model's per node type table
    notes: tuple[str, ...] = ()

    @property
    def affinity(self) -> list[int] | None:
        return (self.cpu or {}).get("affinity") or None


@dataclass(frozen=True)
class TimedModel:
    """One model of a side-by-side timing: its runs, their median, or why it did not run."""
    id: str
    times_ms: tuple[float, ...] = ()
    median_ms: float | None = None
    error: str | None = None
    min_ms: float | None = None
    instance_medians_ms: tuple[float, ...] = ()


@dataclass(frozen=True)
class TrialSpread:
    """How much the medians of repeated trials agree (stats.merge_trials)."""
    medians: tuple[float, ...]
    median_of_medians: float
    spread_pct: float

    def to_dict(self) -> dict[str, Any]:
        return {"medians": list(self.medians), "median_of_medians": self.median_of_medians,
                "spread_pct": self.spread_pct}


@dataclass(frozen=True)
class LatencySummary:
    """The latency block of a set of trials, the warnings that say when not to trust it, and its verdict."""
    latency_ms: Latency
    warnings: tuple[str, ...]
    stable: bool
    trials: TrialSpread | None = None  # with several trials
