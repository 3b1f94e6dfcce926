"""Benchmark results: one `BenchResult` per (device, model, precision, threads), stored as bench.json + bench.csv.

The report and analysis stages read only these files, so the JSON carries a schema version and every fact
needed later (runtime, CPU, thermal/frequency conditions, artifact hash) rather than relying on flags.
"""
from __future__ import annotations

import csv
import dataclasses
import datetime as _dt
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import UserError
from ..fileio import atomic_path, write_json

SCHEMA = "sdeploy-bench/1"
LATENCY_KEYS = ("p50", "p90", "p99", "mean", "std", "min", "max", "median_ci")


def now_iso() -> str:
    return _dt.datetime.now(_dt.timezone.utc).astimezone().isoformat(timespec="seconds")


@dataclass
class BenchResult:
    device: str
    model: str
    precision: str
    threads: int
    latency_ms: dict[str, Any]
    runtime: dict[str, Any] | None = None
    first_inference_ms: float | None = None
    init_ms: float | None = None
    peak_rss_mb: float | None = None
    runs: int = 0
    warmup: int = 0
    trials: int = 1
    instances: int = 1  # interpreters per trial the runs were spread over (runner.py --instances)
    trials_summary: dict[str, Any] | None = None  # with trials > 1: per-trial medians and their spread
    times_ms: list[float] = field(default_factory=list)
    machine: str | None = None
    cpu: dict[str, Any] | None = None
    affinity: list[int] | None = None
    conditions: dict[str, Any] = field(default_factory=lambda: {"before": None, "after": None})
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # facts about the numbers (e.g. how std was computed)
    stable: bool | None = None
    partial: bool = False
    artifact: dict[str, Any] | None = None
    inputs: list[dict] | None = None
    outputs: list[dict] | None = None
    op_profile: Any = None  # benchmark_model runs: [{op, name, avg_ms, percent}] in run order
    op_summary: Any = None  # benchmark_model runs: per node type
    source: str = "runner"  # runner | benchmark_model | parsed
    transport: str | None = None
    python: str | None = None
    numpy: str | None = None
    created: str = field(default_factory=now_iso)
    schema: str = SCHEMA

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "BenchResult":
        if data.get("schema", SCHEMA) != SCHEMA:
            raise UserError(f"result has schema {data.get('schema')!r}, this sdeploy reads {SCHEMA!r}",
                            "re-run the benchmark or use the sdeploy version that wrote it")
        names = {f.name for f in dataclasses.fields(cls)}
        known = {k: v for k, v in data.items() if k in names}
        missing = [k for k in ("device", "model", "precision", "threads", "latency_ms") if k not in known]
        if missing:
            raise UserError(f"result lacks {', '.join(missing)}")
        return cls(**known)

    def csv_row(self) -> dict[str, Any]:
        lat = self.latency_ms or {}
        ci = lat.get("median_ci") or [None, None]
        before = (self.conditions or {}).get("before") or {}
        after = (self.conditions or {}).get("after") or {}
        return {
            "device": self.device, "model": self.model, "precision": self.precision, "threads": self.threads,
            **{f"{k}_ms": lat.get(k) for k in LATENCY_KEYS if k != "median_ci"},
            "median_ci_lo_ms": ci[0], "median_ci_hi_ms": ci[1],
            "first_inference_ms": self.first_inference_ms, "init_ms": self.init_ms,
            "peak_rss_mb": self.peak_rss_mb, "runs": self.runs, "warmup": self.warmup, "trials": self.trials,
            "runtime": _runtime_str(self.runtime), "machine": self.machine,
            "cpu_model": (self.cpu or {}).get("model"), "affinity": _cpus_str(self.affinity),
            "max_temp_before_c": _max_temp(before), "max_temp_after_c": _max_temp(after),
            "warnings": " | ".join(self.warnings), "stable": self.stable, "partial": self.partial,
            "artifact": (self.artifact or {}).get("file"), "sha256": (self.artifact or {}).get("sha256"),
            "source": self.source, "created": self.created,
        }


def _runtime_str(runtime: dict | None) -> str | None:
    if not runtime:
        return None
    return " ".join(str(v) for v in (runtime.get("name"), runtime.get("version")) if v)


def _cpus_str(cpus: list[int] | None) -> str | None:
    return None if cpus is None else ",".join(map(str, cpus))


def _max_temp(cond: dict) -> float | None:
    temps = (cond or {}).get("temp_c") or {}
    return max(temps.values()) if temps else None


def results_document(results: list[BenchResult], *, partial: bool = False) -> dict[str, Any]:
    return {"schema": SCHEMA, "created": now_iso(), "partial": partial or any(r.partial for r in results),
            "results": [r.to_dict() for r in results]}


def write_results(results: list[BenchResult], outdir: Path, *, partial: bool = False) -> tuple[Path, Path]:
    """Write bench.json ({"schema", "created", "partial", "results": [...]}) and bench.csv, each atomically."""
    outdir = Path(outdir)
    json_path, csv_path = outdir / "bench.json", outdir / "bench.csv"
    write_json(json_path, results_document(results, partial=partial))
    rows = [r.csv_row() for r in results]
    header = list(rows[0]) if rows else list(BenchResult("", "", "", 0, {}).csv_row())
    with atomic_path(csv_path) as tmp:
        with open(tmp, "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=header)
            writer.writeheader()
            writer.writerows(rows)
    return json_path, csv_path


def read_results(path: Path) -> list[BenchResult]:
    """Read bench.json (or a folder holding one); another schema version is a UserError."""
    path = Path(path)
    if path.is_dir():
        path = path / "bench.json"
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise UserError(f"no benchmark results at {path}", "run `sdeploy bench` first") from None
    except json.JSONDecodeError as err:
        raise UserError(f"{path} is not valid JSON: {err}") from None
    if isinstance(data, list):
        items = data
    elif isinstance(data, dict) and "results" in data:
        if data.get("schema") != SCHEMA:
            raise UserError(f"{path} has schema {data.get('schema')!r}, this sdeploy reads {SCHEMA!r}",
                            "re-run the benchmark or use the sdeploy version that wrote it")
        items = data["results"]
    else:
        raise UserError(f"{path} is not an sdeploy benchmark file (no 'results' list)")
    try:
        return [BenchResult.from_dict(item) for item in items]
    except UserError as err:
        raise UserError(f"{path}: {err.message}", err.hint) from None
