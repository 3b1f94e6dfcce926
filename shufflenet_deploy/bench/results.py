"""Benchmark results: one `BenchResult` per (device, model, precision, threads), in one `ResultsDocument`.

`sdeploy bench` and `sdeploy sweep` both write a ResultsDocument (bench.json, schema "sdeploy-bench/1", + its CSV
view bench.csv) and every reader (report, predict, compare, the sweep resuming) goes through `read_document`.
The JSON carries a schema version and every fact needed later (runtime, CPU, thermal/frequency conditions,
artifact hash, and the model's key and MACs from its export manifest) rather than relying on flags or names.

A sweep's document adds blocks to the same type: `sweep` (what was asked, and how hard it was measured:
`preset` and `measure`, bench/settings.py), `peak` (bench/peak.py records),
`models` ({key: {model, input_size, num_classes, macs_total, macs_conv, flops_by_group, layers,
precisions: {p: {file, sha256, op_method, overhead_ms, ops: [...]}}}}), `skipped` and `interleaved`
(medians re-measured side by side at the sweep's end: `latency` prefers them).
"""
from __future__ import annotations

import csv
import dataclasses
import datetime as _dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import UserError
from ..escape import csv_cell
from ..fileio import atomic_path, read_json_bounded, write_json
from ..manifest import ModelInfo
from ..validate import Fields, is_int, is_number

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
    model_key: str | None = None  # manifest.model_key: what results are paired and reported by
    model_info: ModelInfo | None = None  # Manifest.model_info(): name, input size, classes, options, MACs
    macs: int | None = None  # conv+FC MACs of the measured model (manifest, else counted from the .tflite graph)
    gmacs_per_s: float | None = None  # macs / p50 (bench/efficiency.py)
    peak_gmacs: float | None = None  # the device's measured peak for this precision and thread count
    peak_fraction: float | None = None  # gmacs_per_s / peak_gmacs
    peak_missing_reason: str | None = None  # why peak_fraction is None
    device_facts: dict[str, Any] | None = None  # devices/cpuinfo.py: core names, clusters, ISA features
    cores: str | None = None  # which cluster the affinity pinned: big / little / prime / mixed / all
    op_times: dict[str, Any] | None = None  # --op-profile: bench/op_times.py {op_method, overhead_ms, ops}

    @property
    def key(self) -> str:
        return self.model_key or self.model

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["model_info"] = self.model_info.to_dict() if self.model_info else None
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str = "result") -> "BenchResult":
        """Strict: every field this sdeploy writes has its one type, numbers are finite and in range (a NaN run
        time or negative MACs is refused here, not printed later); unknown fields are ignored."""
        hint = "the file is damaged or was edited by hand; re-run the benchmark to rewrite it"
        f = Fields(data, where, hint)
        if data.get("schema", SCHEMA) != SCHEMA:
            raise UserError(f"{where} has schema {data.get('schema')!r}, this sdeploy reads {SCHEMA!r}",
                            "re-run the benchmark or use the sdeploy version that wrote it")
        for key in ("device", "model", "precision"):
            if not f.text(key):
                raise f.fail(key, data[key], "a non-empty string")
        f.count("threads", low=1, high=1024)
        latency = Fields(f.obj("latency_ms", optional=False), f"{where}: latency_ms", hint)
        for key in LATENCY_KEYS:
            if key == "median_ci":
                ci = latency.numbers(key)
                if ci is not None and len(ci) != 2:
                    raise latency.fail(key, ci, "two numbers")
            else:
                latency.number(key, optional=True)
        f.numbers("times_ms", positive=True)
        runtime = f.obj("runtime")
        if runtime is not None:
            rt = Fields(runtime, f"{where}: runtime", hint)
            rt.text("name"), rt.text("version", optional=True)
        for key in ("first_inference_ms", "init_ms", "peak_rss_mb", "gmacs_per_s", "peak_fraction"):
            f.number(key, optional=True)
        f.number("peak_gmacs", optional=True, positive=True)
        f.count("macs", optional=True)
        for key in ("runs", "warmup"):
            f.count(key, optional=True)
        for key in ("trials", "instances"):
            f.count(key, optional=True, low=1, high=10**6)
        for key in ("machine", "model_key", "source", "transport", "python", "numpy", "created", "cores",
                    "peak_missing_reason"):
            f.text(key, optional=True)
        for key in ("cpu", "conditions", "artifact", "trials_summary", "device_facts", "op_times"):
            f.obj(key)
        info = f.obj("model_info")
        _check_blocks(f, where)
        f.texts("warnings"), f.texts("notes")
        affinity = f.items("affinity")
        if affinity is not None and not all(is_int(c) and 0 <= c < 65536 for c in affinity):
            raise f.fail("affinity", affinity, "a list of CPU numbers")
        f.flag("stable"), f.flag("partial")
        names = {fl.name for fl in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names and k != "model_info"},
                   model_info=None if info is None else ModelInfo.from_dict(info, f"{where}: model_info", hint))

    def csv_row(self) -> dict[str, Any]:
        lat = self.latency_ms or {}
        ci = lat.get("median_ci") or [None, None]
        before = (self.conditions or {}).get("before") or {}
        after = (self.conditions or {}).get("after") or {}
        return {
            "device": self.device, "model": self.model, "model_key": self.key, "macs": self.macs,
            "gmacs_per_s": self.gmacs_per_s, "peak_fraction": self.peak_fraction,
            "precision": self.precision, "threads": self.threads,
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


# -- the nested blocks later stages read field by field (the report, the predictor, the gap lines): each is checked
# here to the depth it is read, so a damaged or hand-edited file is one line naming the field, not a traceback
def _sub(f: Fields, key: str, where: str) -> Fields | None:
    value = f.obj(key)
    return None if value is None else Fields(value, f"{where}: {key}", f.hint)


def check_ops(f: Fields, key: str) -> None:
    """A list of op records (tflite/ops.py OpInfo + time_ms), as op_times and a sweep's `models` hold them."""
    for i, op in enumerate(f.items(key) or []):
        o = Fields(op, f"{f.where}: {key}[{i}]", f.hint)
        o.text("op"), o.text("group", optional=True), o.text("signature", optional=True)
        for name in ("time_ms", "macs", "in_bytes", "out_bytes", "weight_bytes"):
            o.number(name, optional=True)
        kernel = o.items("kernel")
        if kernel is not None and not all(is_int(k) and k >= 0 for k in kernel):
            raise o.fail("kernel", kernel, "a list of whole numbers")
        if o.data.get("fused_into") is not None:
            o.count("fused_into")


def check_op_times(f: Fields) -> None:
    """{op_method, overhead_ms, ops: [...]}: bench/op_times.py's block, in a result or a sweep's precisions."""
    f.text("op_method", optional=True), f.number("overhead_ms", optional=True)
    check_ops(f, "ops")


def _check_blocks(f: Fields, where: str) -> None:
    # model_info is read by its own type (manifest.ModelInfo.from_dict, in BenchResult.from_dict)
    facts = _sub(f, "device_facts", where)
    if facts is not None:
        for key in ("arch", "model", "hardware", "int8"):
            facts.text(key, optional=True)
        for i, cluster in enumerate(facts.items("clusters") or []):
            c = Fields(cluster, f"{facts.where}: clusters[{i}]", f.hint)
            c.text("name"), c.text("role", optional=True), c.number("max_mhz", optional=True, high=1e6)
            cpus = c.items("cpus", optional=False)
            if not all(is_int(v) and 0 <= v < 65536 for v in cpus):
                raise c.fail("cpus", cpus, "a list of CPU numbers")
        for i, core in enumerate(facts.items("cores") or []):
            c = Fields(core, f"{facts.where}: cores[{i}]", f.hint)
            c.count("index", optional=True, high=65535), c.text("name", optional=True), c.texts("features")
        isa = _sub(facts, "isa", facts.where)
        for key in (isa.data if isa else ()):
            isa.flag(key)
        facts.obj("x86")
    op_times = _sub(f, "op_times", where)
    if op_times is not None:
        check_op_times(op_times)
    conditions = _sub(f, "conditions", where)
    for key in ("before", "after"):
        side = _sub(conditions, key, conditions.where) if conditions else None
        temps = _sub(side, "temp_c", side.where) if side else None
        for zone in (temps.data if temps else ()):
            temps.number(zone, low=-300.0, high=1e4)
    artifact = _sub(f, "artifact", where)
    if artifact is not None:
        artifact.text("file", optional=True), artifact.text("sha256", optional=True)
    cpu = _sub(f, "cpu", where)
    if cpu is not None:
        cpu.text("model", optional=True)


def _runtime_str(runtime: dict | None) -> str | None:
    if not runtime:
        return None
    return " ".join(str(v) for v in (runtime.get("name"), runtime.get("version")) if v)


def _cpus_str(cpus: list[int] | None) -> str | None:
    return None if cpus is None else ",".join(map(str, cpus))


def _max_temp(cond: dict) -> float | None:
    temps = (cond or {}).get("temp_c") or {}
    return max(temps.values()) if temps else None


DOC_BLOCKS = ("sweep", "peak", "models", "skipped", "interleaved")


@dataclass
class Fastest:
    """The fastest artifact of one model on one device at one thread count (bench/fastest.py names it)."""

    device: str
    model: str  # the model key (name@SIZE)
    threads: int
    artifact: str  # its file
    runtime: str  # "ai_edge_litert 2.1.0", "onnxruntime 1.23.0"
    precision: str
    p50_ms: float
    runner_up: str | None  # the next fastest, as "precision (runtime)"
    margin: float | None  # runner_up's p50 / p50_ms - 1
    tied: bool  # the two medians' 95% intervals overlap: within noise
    why: str

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Any, where: str) -> "Fastest":
        f = Fields(data, where, "the file is damaged or was edited by hand; re-run the benchmark to rewrite it")
        return cls(f.text("device"), f.text("model"), f.count("threads", low=1, high=1024), f.text("artifact"),
                   f.text("runtime"), f.text("precision"), f.number("p50_ms", positive=True),
                   f.text("runner_up", optional=True), f.number("margin", optional=True),
                   bool(f.flag("tied", optional=False)), f.text("why"))


@dataclass
class ResultsDocument:
    """bench.json: results plus, for a sweep, the blocks named in the module docstring."""

    results: list[BenchResult] = field(default_factory=list)
    partial: bool = False
    created: str | None = None
    sweep: dict[str, Any] = field(default_factory=dict)
    peak: list[dict] = field(default_factory=list)
    models: dict[str, dict] = field(default_factory=dict)
    skipped: list[dict] = field(default_factory=list)
    interleaved: dict[str, Any] | None = None
    fastest: list[Fastest] = field(default_factory=list)
    schema: str = SCHEMA

    def to_dict(self) -> dict[str, Any]:
        out = {"schema": self.schema, "created": self.created or now_iso(),
               "partial": self.partial or any(r.partial for r in self.results),
               "results": [r.to_dict() for r in self.results]}
        for name in DOC_BLOCKS:
            value = getattr(self, name)
            if value:
                out[name] = value
        if self.fastest:
            out["fastest"] = [f.to_dict() for f in self.fastest]
        return out

    @classmethod
    def from_dict(cls, data: Any, where: str = "results") -> "ResultsDocument":
        if isinstance(data, list):  # a bare list of results (older files, hand-made)
            data = {"schema": SCHEMA, "results": data}
        if not isinstance(data, dict) or not isinstance(data.get("results"), list):
            raise UserError(f"{where} is not an sdeploy benchmark file (no 'results' list)",
                            "pass a bench.json written by `sdeploy bench` or `sdeploy sweep`")
        if data.get("schema") != SCHEMA:
            raise UserError(f"{where} has schema {data.get('schema')!r}, this sdeploy reads {SCHEMA!r}",
                            "re-run the benchmark or use the sdeploy version that wrote it")
        results = [BenchResult.from_dict(item, f"{where}: results[{i}]") for i, item in enumerate(data["results"])]
        f = Fields(data, where, "the file is damaged or was edited by hand; re-run to rewrite it")
        sweep, models, interleaved = f.obj("sweep") or {}, f.obj("models") or {}, f.obj("interleaved")
        peak, skipped = f.items("peak") or [], f.items("skipped") or []
        for i, record in enumerate(peak):
            p = Fields(record, f"{where}: peak[{i}]", f.hint)
            p.count("threads", low=1, high=1024), p.text("precision")
            p.number("gmacs", optional=True, positive=True), p.number("median_ms", optional=True, positive=True)
            p.text("device", optional=True), p.text("kernel", optional=True), p.text("runtime", optional=True)
            p.count("macs", optional=True)
        for i, entry in enumerate(skipped):
            s = Fields(entry, f"{where}: skipped[{i}]", f.hint)
            s.text("key"), s.text("reason", optional=True)
        latency = Fields(interleaved, f"{where}: interleaved", f.hint).obj("latency_ms") if interleaved else None
        for key, value in (latency or {}).items():
            if not is_number(value) or value <= 0:
                raise f.fail(f"interleaved.latency_ms[{key!r}]", value, "a positive, finite number")
        for key, entry in models.items():
            m = Fields(entry, f"{where}: models[{key!r}]", f.hint)
            m.count("macs_total", optional=True), m.count("macs_conv", optional=True), m.text("model", optional=True)
            m.count("num_classes", optional=True, low=1, high=10**6), m.items("layers")
            m.size("input_size")
            groups = Fields(m.obj("flops_by_group") or {}, f"{m.where}: flops_by_group", f.hint)
            for group in groups.data:
                groups.number(group)
            precisions = Fields(m.obj("precisions") or {}, f"{m.where}: precisions", f.hint)
            for precision in precisions.data:
                entry_p = Fields(precisions.obj(precision, optional=False), f"{precisions.where}[{precision!r}]",
                                 f.hint)
                entry_p.text("file", optional=True), entry_p.text("sha256", optional=True)
                check_op_times(entry_p)
        f.flag("partial")
        fastest = [Fastest.from_dict(item, f"{where}: fastest[{i}]") for i, item in enumerate(f.items("fastest") or [])]
        return cls(results=results, partial=bool(data.get("partial")), created=data.get("created"),
                   sweep=dict(sweep), peak=list(peak), models=dict(models), skipped=list(skipped),
                   interleaved=interleaved or None, fastest=fastest)

    # -- lookups ---------------------------------------------------------------------------------------------
    def latency(self, result: BenchResult) -> float | None:
        """The latency to report: the interleaved pass's median when the sweep has one, else the result's p50."""
        value = ((self.interleaved or {}).get("latency_ms") or {}).get(f"{result.key}|{result.precision}")
        return value if value else (result.latency_ms or {}).get("p50")

    def find(self, key: str, precision: str, threads: int) -> BenchResult | None:
        return next((r for r in self.results if (r.key, r.precision, r.threads) == (key, precision, threads)), None)

    def put(self, result: BenchResult) -> None:
        """Add `result`, replacing the one with the same key, precision and threads."""
        self.results = [r for r in self.results
                        if (r.key, r.precision, r.threads) != (result.key, result.precision, result.threads)]
        self.results.append(result)

    def devices(self) -> list[str]:
        return sorted({r.device for r in self.results} | {p.get("device") for p in self.peak if p.get("device")})


def write_document(doc: ResultsDocument, outdir: Path) -> tuple[Path, Path]:
    """Write OUTDIR/bench.json and its CSV view OUTDIR/bench.csv, each atomically (the one CSV writer)."""
    outdir = Path(outdir)
    json_path, csv_path = outdir / "bench.json", outdir / "bench.csv"
    doc.created = now_iso()
    write_json(json_path, doc.to_dict())
    rows = [r.csv_row() for r in doc.results]
    header = list(rows[0]) if rows else list(BenchResult("", "", "", 0, {}).csv_row())
    with atomic_path(csv_path) as tmp:
        with open(tmp, "w", newline="", encoding="utf-8", errors="backslashreplace") as fh:
            writer = csv.DictWriter(fh, fieldnames=header)
            writer.writeheader()
            writer.writerows({k: csv_cell(v) for k, v in row.items()} for row in rows)
    return json_path, csv_path


def write_results(results: list[BenchResult], outdir: Path, *, partial: bool = False) -> tuple[Path, Path]:
    return write_document(ResultsDocument(results=list(results), partial=partial), outdir)


def read_document(path: Path) -> ResultsDocument:
    """Read bench.json (or a folder holding one); another schema version or a non-results file is a UserError."""
    path = Path(path)
    if path.is_dir():
        path = path / "bench.json"
    if not path.exists():
        raise UserError(f"no benchmark results at {path}", "run `sdeploy bench` first")
    return ResultsDocument.from_dict(read_json_bounded(path, what="benchmark results"), str(path))


def result_files(path: Path) -> list[Path]:
    """The bench.json files PATH stands for: the file itself, FOLDER/bench.json, or, for the folder a fleet run
    (`--device a,b`) wrote, every FOLDER/DEVICE/bench.json, in name order."""
    path = Path(path)
    if not path.is_dir() or (path / "bench.json").exists():
        return [path / "bench.json" if path.is_dir() else path]
    fleet = sorted(p for p in path.glob("*/bench.json") if p.is_file())
    if not fleet:
        raise UserError(f"no benchmark results at {path} (no bench.json there, nor in a DEVICE/ folder of a fleet "
                        "run)", "run `sdeploy bench` or `sdeploy sweep` first, or pass the folder they wrote")
    return fleet


def read_results(path: Path) -> list[BenchResult]:
    """Every result PATH holds (a bench.json, its folder, or a fleet run's folder of DEVICE/bench.json)."""
    return [r for file in result_files(path) for r in read_document(file).results]
