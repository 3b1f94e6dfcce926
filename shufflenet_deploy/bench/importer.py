"""Import a hand-run benchmark_model (or android_harness/run_benchmarks.sh) output into sdeploy's bench schema."""
from __future__ import annotations

from pathlib import Path

from ..errors import UserError
from .results import BenchResult

def result_from_benchmark_model(data: dict, *, conditions: dict | None = None, source: str = "benchmark_model",
                                artifact: dict | None = None, warnings: list[str] | None = None) -> BenchResult:
    """bench/benchmark_model_run.to_bench_schema's dict -> BenchResult (runtime string -> {name, version})."""
    data = dict(data)
    runtime = data.pop("runtime", "benchmark_model")
    notes = data.pop("notes", []) or []
    data.pop("error", None)
    data.pop("failed", None)
    data["latency_ms"] = {**data.get("latency_ms", {}), "median_ci": None}
    if isinstance(runtime, str):
        runtime = {"name": runtime, "version": None}
    result = BenchResult.from_dict({**data, "runtime": runtime, "source": source, "artifact": artifact,
                                    "conditions": conditions or {"before": None, "after": None}})
    result.warnings = list(warnings or [])
    result.notes = list(notes)
    if conditions and conditions.get("before") and conditions.get("after"):
        from . import stats

        result.warnings += stats.compare_conditions(conditions["before"], conditions["after"])
    return result


def import_benchmark_output(text: str, *, device: str | None = None, model: str | None = None,
                            precision: str | None = None,
                            threads: int | None = None) -> tuple[list[BenchResult], list[str]]:
    """Plain benchmark_model output (one or several runs) or android_harness/run_benchmarks.sh output.

    Returns (results, skipped): failed runs are not results; `skipped` says which failed and why. An unknown
    thread count (the tool's default) is stored as 0.
    """
    from .android_harness import parse_harness_output
    from .benchmark_model import parse_many
    from .benchmark_model_run import to_bench_schema
    from .artifacts import guess_from_name

    device = device or "unknown"
    if "### sdeploy-begin" in text:
        items = [(rec.run, rec.model, {"before": rec.conditions("before").to_dict(),
                                       "after": rec.conditions("after").to_dict()},
                  rec.warnings, "android_harness") for rec in parse_harness_output(text)]
    else:
        items = [(run, None, None, [], "benchmark_model") for run in parse_many(text)]
    results, skipped = [], []
    for i, (run, name, conds, warnings, source) in enumerate(items, 1):
        guess = guess_from_name(Path(name or run.graph or "unknown.tflite"), "unknown")
        if run.failed:
            skipped.append(f"run {i} ({name or run.graph or guess.model}) failed: {run.error}")
            continue
        data = to_bench_schema(run, device=device, model=model or guess.model,
                               precision=precision or guess.precision, threads=threads)
        result = result_from_benchmark_model(data, conditions=conds, source=source, warnings=warnings)
        result.threads = result.threads or 0
        if result.macs is None:  # a log names a .tflite, not its export: input size and classes are unknown
            result.peak_missing_reason = "MACs unknown: an imported benchmark_model log has no export manifest"
        results.append(result)
    if not results:
        raise UserError(f"no successful benchmark_model run in the input ({'; '.join(skipped)})")
    return results, skipped
