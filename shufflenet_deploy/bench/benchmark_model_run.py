"""What a parse of benchmark_model's output gives (bench/benchmark_model.py makes them): one run's numbers, its
op-profiling tables (and how one row of them is read: `parse_row`) and XNNPACK partitions, and their mapping
onto sdeploy's bench record (`to_bench_schema`; bench/importer.py turns that into a typed BenchResult)."""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any

NUM = r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?|[-+]?(?:nan|inf)"  # every number benchmark_model prints

@dataclass
class Stat:
    """One Stat line, converted from microseconds to milliseconds. `count=1`/`(all same)` lines only print `curr`;
    the format means every sample equals it, so first/min/max/avg are filled with it and std with 0."""

    count: int
    first_ms: float | None = None
    curr_ms: float | None = None
    min_ms: float | None = None
    max_ms: float | None = None
    avg_ms: float | None = None
    std_ms: float | None = None  # benchmark_model's population std (ddof=0)
    p5_ms: float | None = None
    median_ms: float | None = None
    p95_ms: float | None = None
    all_same: bool = False


@dataclass
class OpRow:
    """A Run Order / Top-by row. `start_ms` exists only in the OLD layout."""

    node_type: str
    name: str
    first_ms: float
    avg_ms: float
    percent: float
    cdf_percent: float
    mem_kb: float
    times_called: int
    start_ms: float | None = None


@dataclass
class OpTypeRow:
    """A Summary-by-node-type row."""

    node_type: str
    count: int
    avg_ms: float
    percent: float
    cdf_percent: float
    mem_kb: float
    times_called: int


@dataclass
class OpProfile:
    """One "Profiling Info" block (initialization, or the regular runs)."""

    table_format: str | None = None  # "old" ([start] column), "new", "csv-old", "csv-new"
    run_order: list[OpRow] = field(default_factory=list)
    top_by_time: list[OpRow] = field(default_factory=list)
    top_by_memory: list[OpRow] = field(default_factory=list)
    by_type: list[OpTypeRow] = field(default_factory=list)
    nodes_executed: int | None = None
    nodes_observed: int | None = None
    timings: Stat | None = None  # "Timings (microseconds): ..." in ms


@dataclass
class Partition:
    delegate: str
    nodes_replaced: int
    nodes_total: int
    partitions: int


@dataclass
class BenchmarkModelRun:
    """Everything one benchmark_model invocation printed. Times in ms, memory in MB."""

    failed: bool = False
    error: str | None = None  # the first fatal line: usually the root cause
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # suspicious lines we could not use
    params: dict[str, str] = field(default_factory=dict)
    graph: str | None = None
    num_threads: int | None = None
    model_size_mb: float | None = None
    init_ms: float | None = None
    first_inference_ms: float | None = None
    warmup_avg_ms: float | None = None
    inference_avg_ms: float | None = None
    inference_min_ms: float | None = None
    inference_max_ms: float | None = None
    inference_std_ms: float | None = None
    inference_count: int | None = None
    inference_p5_ms: float | None = None
    inference_median_ms: float | None = None
    inference_p95_ms: float | None = None
    warmup_stat: Stat | None = None
    inference_stat: Stat | None = None
    memory_init_mb: float | None = None
    memory_overall_mb: float | None = None
    memory_line: str | None = None  # "delta" (newer) or "peak" (TF ~2.4) wording of the init/overall line
    periodic_peak_mb: float | None = None
    vmrss_mb: float | None = None
    rss_anon_mb: float | None = None
    rss_file_shmem_mb: float | None = None
    peak_memory_mb: float | None = None
    peak_memory_source: str | None = None
    delegate_lines: list[str] = field(default_factory=list)
    partitions: list[Partition] = field(default_factory=list)
    init_profile: OpProfile | None = None
    op_profile: OpProfile | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)




# ----------------------------------------------------------------------------------------------- table rows

_OP_COLS = {  # table format -> numeric columns between node type and name
    "new": ["first", "avg", "pct%", "cdf%", "mem", "times"],
    "old": ["start", "first", "avg", "pct%", "cdf%", "mem", "times"],
}
_TYPE_COLS = ["count", "avg", "pct%", "cdf%", "mem", "times"]


def _cells_regex(cols: list[str], sep: str, with_name: bool) -> re.Pattern:
    parts = []
    for c in cols:
        name = c.rstrip("%")
        parts.append(rf"(?P<{name}>{NUM})%" if c.endswith("%") else rf"(?P<{name}>{NUM})")
    tail = rf"{sep}(?P<name>.*?)" if with_name else ""
    return re.compile(rf"^\s*(?P<type>.+?){sep}" + sep.join(parts) + tail + r"\s*$")


_ROW_RX = {
    (fmt, csv, by_type): _cells_regex(_TYPE_COLS if by_type else _OP_COLS[fmt], r",\s*" if csv else r"\s+",
                                      with_name=not by_type)
    for fmt in ("new", "old") for csv in (False, True) for by_type in (False, True)
}


def parse_row(line: str, fmt: str, csv: bool, by_type: bool) -> OpRow | OpTypeRow | None:
    """One table row. The regex is anchored on the numeric columns (the `%` ones above all), so it reads tab-aligned
    rows and rows whose tabs became spaces alike, and node types/names may hold spaces and commas."""
    m = _ROW_RX[(fmt, csv, by_type)].match(line)
    if not m:
        return None
    values = m.groupdict()
    f = {k: float(v) for k, v in values.items() if k not in ("type", "name")}
    if by_type:
        return OpTypeRow(values["type"].strip(), int(f["count"]), f["avg"], f["pct"], f["cdf"], f["mem"],
                         int(f["times"]))
    name = values["name"].strip()
    if csv:
        name = name.replace("\t", ",")  # the CSV writer turns commas in names into tabs
    return OpRow(values["type"].strip(), name, f["first"], f["avg"], f["pct"], f["cdf"], f["mem"],
                 int(f["times"]), f.get("start"))


TABLE_KEYS = {"run order": "run_order", "top by computation time": "top_by_time",
              "top by memory use": "top_by_memory", "summary by node type": "by_type"}


# ----------------------------------------------------------------------------------------------- schema


def to_bench_schema(run: BenchmarkModelRun, *, device: str, model: str, precision: str,
                    threads: int | None) -> dict[str, Any]:
    """Map a run onto sdeploy's common bench record. benchmark_model has no p90/p99: they stay None."""
    notes = ["std is benchmark_model's population std (ddof=0)"]
    if run.inference_median_ms is None:
        notes.append("percentiles are not available from benchmark_model output (it prints avg/std/min/max; "
                     "p50 is only filled when the tool prints its percentile Stat line)")
    else:
        notes.append(f"p50 is benchmark_model's nearest-rank median; p90/p99 are not printed by the tool "
                     f"(it printed p5={run.inference_p5_ms} ms, p95={run.inference_p95_ms} ms)")
    prof = run.op_profile
    rows = (prof.run_order or prof.top_by_time) if prof else []
    return {
        "device": device,
        "model": model,
        "precision": precision,
        "runtime": "benchmark_model",
        "threads": threads if threads is not None else run.num_threads,
        "latency_ms": {"p50": run.inference_median_ms, "p90": None, "p99": None, "mean": run.inference_avg_ms,
                       "std": run.inference_std_ms, "min": run.inference_min_ms, "max": run.inference_max_ms},
        "first_inference_ms": run.first_inference_ms,
        "init_ms": run.init_ms,
        "peak_rss_mb": run.peak_memory_mb,
        "runs": run.inference_count,
        "op_profile": [{"op": r.node_type, "name": r.name, "avg_ms": r.avg_ms, "percent": r.percent} for r in rows],
        "op_summary": [asdict(r) for r in prof.by_type] if prof else [],
        "failed": run.failed,
        "error": run.error,
        "notes": notes,
    }
