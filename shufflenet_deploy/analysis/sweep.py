"""`sdeploy sweep`: export (cached) and benchmark a set of zoo models on one device, with per-op timings.

Output: OUTDIR/bench.json, a `ResultsDocument` (bench/results.py: schema "sdeploy-bench/1"; its `results` are
ordinary BenchResults, one per model key, precision and thread count, and its sweep blocks — `sweep`, `peak`,
`models`, `skipped`, `interleaved` — are described there), plus its CSV view OUTDIR/bench.csv.

Resumable: the document is rewritten atomically after every (model, precision); a rerun skips every combination
that already has both its whole-model result and its per-op timings, and skips the peak once measured.

One measurement backend (bench/backends.py) is held for the whole sweep, so the runner is pushed once. Exports
come from analysis/export_cache.py, per-op times from bench/op_times.py (through the backend). Fitting the latency
predictor on the finished document is the caller's job (`sdeploy sweep` does it: cli/analysis.py).

How hard each step measures (whole model, per op, the interleaved pass, the re-timing, the peak kernels) is one
`MeasureSettings` (bench/settings.py: the `full` and `quick` presets), passed whole to each step and recorded in
the document's `sweep` block (`preset`, `measure`).
"""
from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from ..bench.results import ResultsDocument, read_document, write_document
from ..bench.settings import FULL, MeasureSettings
from ..errors import UserError
from ..manifest import Manifest, model_key
from ..sizes import to_json
from ..paths import opcut
from .export_cache import export_cached, tool_versions

if TYPE_CHECKING:
    from ..bench.peak import KernelTiming
    from ..bench.raw import TimedModel

DEFAULT_MODELS = (
    "shufflenet_v1_g1_1.0x", "shufflenet_v1_g2_1.0x", "shufflenet_v1_g3_1.0x", "shufflenet_v1_g4_1.0x",
    "shufflenet_v1_g8_1.0x",
    "shufflenet_v1_g3_0.25x", "shufflenet_v1_g3_0.5x", "shufflenet_v1_g3_1.5x", "shufflenet_v1_g3_2.0x",
    "mobilenet_v1_1.0x", "mobilenet_v1_0.5x",
    "shufflenet_v2_0.5x", "shufflenet_v2_1.0x",
)
GRAPH_LOWERED = "lowered (export/lower.py, what `sdeploy export` ships)"
GRAPH_PLAIN = "onnx2tf plain output (no lowering)"
Progress = Callable[[str], None]


def load_doc(outdir: Path, device: str, graph: str | None = None) -> ResultsDocument:
    """The sweep document in OUTDIR (a fresh one if none). Refuses another device's results, and resuming with
    the other graph (lowered vs plain): one document must not mix them."""
    path = Path(outdir) / "bench.json"
    if not path.exists():
        return ResultsDocument(partial=True)
    try:
        doc = read_document(path)
    except UserError as err:
        raise UserError(err.message, "choose another -o for the sweep") from None
    others = set(doc.devices()) - {device}
    if others:
        raise UserError(f"{path} holds results of device {sorted(others)[0]!r}, not {device!r}",
                        "choose another -o for this device's sweep")
    before = doc.sweep.get("graph")
    if graph and before and doc.results and before.split(" ")[0] != graph.split(" ")[0]:
        how = "with --no-optimize" if before.startswith("onnx2tf") else "without --no-optimize"
        raise UserError(f"{path} holds a sweep of the {before.split(' (')[0]} graph", f"resume it {how}, or "
                        "choose another -o")
    return doc


def save_doc(outdir: Path, doc: ResultsDocument) -> Path:
    return write_document(doc, outdir)[0]


def _done(doc: ResultsDocument, key: str, precision: str, threads: int) -> bool:
    entry = doc.models.get(key, {}).get("precisions", {}).get(precision, {})
    return doc.find(key, precision, threads) is not None and bool(entry.get("ops"))


def run_sweep(device: str, **kwargs) -> ResultsDocument:
    """Run (or resume) a sweep; returns the results document (also in OUTDIR/bench.json). `settings`: how hard
    every step measures (bench/settings.py); a resumed document lists every preset it was measured with."""
    from ..fileio import check_writable, exclusive

    outdir = Path(kwargs.get("outdir", "sweep"))
    check_writable(outdir, "results folder")
    with exclusive(outdir, "sweep"):  # a second sweep into the same folder fails now, not by losing results
        return _run_sweep(device, **kwargs)


def _run_sweep(device: str, *, devices_file: str | None = None, models: list[str] | None = None,
              precisions: tuple[str, ...] = ("fp32", "int8"), input_sizes: tuple[int, ...] = (224,),
              outdir: Path = Path("sweep"), settings: MeasureSettings = FULL, threads: int | None = None,
              num_classes: int = 1000, lowered: bool = True,
              progress: Progress = lambda m: None,
              on_model_done: Callable[[str, str], None] | None = None, cores: str | None = None) -> ResultsDocument:
    """The sweep itself (run_sweep holds the folder)."""
    from ..bench.backends import backend_for
    from ..devices.registry import get_device
    from ..export.tflite_convert import shared_worker

    names = list(models or DEFAULT_MODELS)
    model_sources = sources(names, input_sizes)
    require_stack(model_sources)
    profile = get_device(device, devices_file)
    threads = threads or profile.threads[0]
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    graph = GRAPH_LOWERED if lowered else GRAPH_PLAIN
    doc = load_doc(outdir, profile.name, graph)
    options = {"num_classes": num_classes} if num_classes != 1000 else {}
    with backend_for(profile, progress=progress) as backend:
        if cores:  # pin the whole sweep (peak kernels included) to one cluster, from the device's own facts
            import dataclasses

            from ..devices.cpuinfo import cpus_of

            cpus = cpus_of(_facts(backend), cores, profile.name)
            backend.profile = dataclasses.replace(backend.profile, affinity=",".join(map(str, cpus)))
        _same_machine(doc, _facts(backend), outdir)
        presets = _presets_used(doc, settings)
        doc.sweep = {"device": profile.name, "transport": profile.transport, "threads": threads,
                     "runs": settings.runs, "preset": settings.preset, "measure": settings.to_dict(),
                     **({"presets_used": presets} if len(presets) > 1 else {}),
                     "models": names, "precisions": list(precisions), "input_sizes": [to_json(s) for s in input_sizes],
                     "num_classes": num_classes, "tools": tool_versions(), "graph": graph,
                     "op_method": backend.op_method,
                     "calibration": "bundled digits rendered at the input size (content barely matters for "
                                    "latency)"}
        if not any(p.get("threads") == threads for p in doc.peak):
            if not settings.peak:
                doc.sweep["peak_note"] = "no measured peak: the sweep ran with --no-peak"
            elif backend.measures_peak:
                records, source = _peak(backend, threads, progress, settings)
                doc.peak += records
                doc.sweep["peak_source"] = source
                save_doc(outdir, doc)
            else:
                doc.sweep["peak_note"] = "no measured peak: peak kernels need the Linux runner"
        with shared_worker():  # one onnx2tf worker converts every export of the sweep (tflite_convert.py)
            for source in model_sources:
                _sweep_model(doc, backend, outdir, source, precisions, threads, options, lowered, settings,
                             progress, on_model_done)
        interleaved_pass(doc, backend, threads, tuple(precisions), options, lowered, progress, settings)
    doc.partial = False
    save_doc(outdir, doc)
    return doc


@dataclass(frozen=True)
class Source:
    """One model of a sweep: a zoo name at a size, a user's checkpoint at a size, or an export folder as it is."""

    key: str
    name: str
    size: object
    zoo: str | None = None
    checkpoint: Path | None = None
    export: Path | None = None


def sources(names: list[str], input_sizes) -> list[Source]:
    """Zoo names (one source per size), checkpoint files (likewise; keyed by the file's stem) and export folders
    (their own size), in the order given, sizes outermost for the zoo/checkpoint ones."""
    out = []
    for entry in names:
        path = Path(entry)
        if path.is_dir():
            m = Manifest.load(path)
            out.append(Source(m.key, m.model, m.input_size, export=path))
    for size in input_sizes:
        for entry in names:
            path = Path(entry)
            if path.is_file():
                out.append(Source(model_key(path.stem, size), path.stem, size, checkpoint=path))
            elif not path.is_dir():
                out.append(Source(model_key(entry, size), entry, size, zoo=entry))
    return out


def require_stack(model_sources: list[Source]) -> None:
    """A sweep of export folders runs on the base install; zoo names and checkpoints are exported: [export]."""
    from ..extras import require

    if any(source.export is None for source in model_sources):
        require("export", "sdeploy sweep of zoo names or checkpoints")


# A fleet sweep runs one run_sweep per device in threads: conversions are CPU-bound and cached, so one at a time;
# the second device then finds the first one's export in the cache.
_EXPORT_LOCK = threading.Lock()


def _manifest(source: Source, precisions, progress, options, lowered) -> Manifest:
    if source.export is not None:
        return Manifest.load(source.export)
    with _EXPORT_LOCK:
        folder = export_cached(source.zoo, source.size, tuple(precisions), progress,
                               options if source.zoo else {}, checkpoint=source.checkpoint, lowered=lowered)
    return Manifest.load(folder)


def _presets_used(doc: ResultsDocument, settings: MeasureSettings) -> list[str]:
    """The presets a document's results were measured with, this run's last (a document from before presets
    were recorded was measured with today's `full` counts)."""
    before = (doc.sweep.get("presets_used") or [doc.sweep.get("preset") or "full"]) if doc.results else []
    return list(dict.fromkeys([*before, settings.preset]))


def _sweep_model(doc, backend, outdir, source: Source, precisions, threads, options, lowered,
                 settings: MeasureSettings, progress, on_model_done) -> None:
    from ..bench.harness import bench_artifact
    from ..complexity import count_complexity
    from ..tflite.ops import flops_by_group
    from ..zoo.registry import list_models

    key, name, size = source.key, source.name, source.size
    todo = [p for p in precisions if not _done(doc, key, p, threads)]
    if not todo:
        progress(f"{key}: done already, skipping")
        return
    doc.skipped = [s for s in doc.skipped if s.get("key") != key]
    if source.zoo is not None and source.zoo not in set(list_models()):
        _skip(doc, key, name, size, None, "not in the model zoo (see `sdeploy zoo`), nor a checkpoint file or an "
              "export folder", progress)
        save_doc(outdir, doc)
        return
    try:
        manifest = _manifest(source, precisions, progress, options, lowered)
    except UserError as err:
        _skip(doc, key, name, size, None, f"export failed: {err.one_line()}", progress)
        save_doc(outdir, doc)
        return
    if manifest.model in set(list_models()):
        cx = count_complexity(manifest.model, input_size=manifest.input_size,
                              **{"num_classes": manifest.num_classes, **manifest.options})
        params, groups = cx.params, flops_by_group(cx)
        layers = [{"name": l.name, "kind": l.kind, "macs": l.macs} for l in cx.layers]
    else:  # a model sdeploy did not build (sources.py): its graph-counted MACs; MACs per group from its own ops
        params, groups, layers = manifest.data.get("params"), None, []
    entry = doc.models.setdefault(key, {"precisions": {}})
    entry.update(model=manifest.model, input_size=to_json(manifest.input_size), num_classes=manifest.num_classes,
                 macs_total=manifest.macs, macs_conv=manifest.macs_conv, params=params,
                 flops_by_group=groups, source=str(source.export or source.checkpoint or "zoo"),
                 export=str(manifest.folder), layers=layers)
    for precision in todo:
        try:
            art = manifest.artifact(precision)
        except UserError:
            _skip(doc, key, name, size, precision, "the export has no such artifact", progress)
            continue
        say = lambda m: progress(f"{key} {precision}: {m}")  # noqa: E731
        try:
            say(f"whole-model latency ({settings.runs} runs)")
            result = bench_artifact(art.path, backend.profile, threads=[threads], runs=settings.runs,
                                    warmup=settings.warmup, instances=settings.model_instances, progress=say,
                                    backend=backend)[0]
            result.model, result.model_key, result.precision = key, key, precision
            say("per-op timings")
            op_data = backend.op_times(art.path, result, opcut(art.sha256), threads=threads,
                                       runs=settings.op_runs, rounds=settings.op_rounds, progress=say)
        except UserError as err:
            _skip(doc, key, name, size, precision, f"benchmark failed: {err.one_line()}", progress)
            save_doc(outdir, doc)
            continue
        doc.put(result)
        entry["precisions"][precision] = {"file": art.file, "sha256": art.sha256,
                                          "xnnpack": art.entry.get("xnnpack"), "op_histogram": art.entry.get("ops"),
                                          **op_data.to_dict()}
        save_doc(outdir, doc)
        if on_model_done:
            on_model_done(key, precision)


def _same_machine(doc: ResultsDocument, facts: dict | None, outdir: Path) -> None:
    """A resumed sweep adds to results measured on one machine: another CPU under the same device name would mix
    two machines' numbers into one predictor and one report, so it is refused (devices/machine.py)."""
    from ..devices.machine import MachineFacts

    earlier = next((m for r in doc.results if (m := MachineFacts.of(r.device_facts, None, None))), None)
    here = MachineFacts.of(facts, None, None)
    if doc.results and earlier is None and here is not None:
        raise UserError(f"{outdir} holds a sweep whose results do not record the machine they were measured on "
                        "(an older sdeploy): adding to it could mix two machines", "sweep into another -o folder")
    if earlier and here and (differs := earlier.differences(here, runtime=False, threads=False)):
        raise UserError(f"{outdir} holds a sweep of {doc.sweep.get('device')!r} measured on another machine: "
                        + "; ".join(differs), "sweep into another -o folder")


def _facts(backend) -> dict | None:
    """The device's CPU facts in the form results record them (BenchResult.device_facts)."""
    cpu = backend.device_facts()
    return cpu.to_dict() if cpu else None


def _peak(backend, threads: int, progress: Progress, settings: MeasureSettings) -> tuple[list[dict], str]:
    """(the peak records, where they come from). This machine's cached peak (bench/peak_cache.py: same CPU facts,
    runtime and threads) when it has one: measured once per machine, so a sweep and a bench on it divide by the
    same peak; else measured now, and cached when measured at the full preset (a quick peak is too noisy to be
    the one every later % of peak divides by)."""
    from ..bench import peak_cache
    from ..devices.cpuinfo import cpus_of
    from ..devices.machine import MachineFacts

    rt, facts = backend.runtime_info(), _facts(backend)
    runtime = rt.to_dict() if rt else None
    # the cores a bench result records: its pinning, else every core the device has (what an unpinned runner gets)
    cpus = backend.profile.affinity_cpus() or (cpus_of(facts, "all") if (facts or {}).get("clusters") else None)
    machine = MachineFacts.of(facts, runtime, threads, cpus)
    found, why_not = peak_cache.lookup(backend.profile.name, machine, runtime, threads)
    if found:
        progress("peak: this machine's cached peak kernels (same CPU, runtime and threads)")
        return [r.timing().to_dict() for r in found], "cache"
    if why_not:
        progress(f"re-measuring the peak: {why_not}")
    records = measure_peak(backend, threads, progress, settings)
    if settings.preset == "full":
        peak_cache.store(backend.profile.name, machine, runtime, threads, records)
    return [r.to_dict() for r in records], f"measured by this sweep ({settings.preset} preset)"


def measure_peak(backend, threads: int, progress: Progress = lambda m: None,
                 settings: MeasureSettings = FULL) -> list["KernelTiming"]:
    """The device's peak compute (bench/peak.py kernels), timed side by side in one runner process."""
    from ..bench.peak import time_kernels

    return time_kernels(backend, threads, progress, settings)


def interleaved_pass(doc: ResultsDocument, backend, threads: int, precisions: tuple[str, ...], options: dict,
                     lowered: bool, progress: Progress, settings: MeasureSettings = FULL) -> None:
    """Time every finished model again, all in ONE runner process, interleaved over `settings.interleaved_rounds`
    rounds, each model on `settings.interleaved_instances` interpreters in turn (a lone interpreter can sit in a
    slow mode: runner.py).

    The per-model results were measured minutes apart on a machine whose load changes; these medians are side
    by side in one run, so their ratios (the report's speedups, the fitted exponent, the predictor's targets)
    are not skewed by load drift. Stored as doc.interleaved; the report prefers them and says so.
    """
    from ..bench.results import now_iso

    files = {}
    for r in doc.results:
        if r.threads != threads:
            continue
        entry = doc.models.get(r.key, {})
        data = entry.get("precisions", {}).get(r.precision)
        if not data:
            continue
        folder = Path(entry["export"]) if entry.get("export") else export_cached(
            entry["model"], entry["input_size"], precisions, progress, options, lowered=lowered)
        path = folder / data["file"]
        if path.exists():
            files[f"{r.key}|{r.precision}"] = path
    if not files:
        return
    rounds, runs, instances = settings.interleaved_rounds, settings.interleaved_runs, settings.interleaved_instances
    progress(f"interleaved pass: {len(files)} models x {rounds} rounds in one runner process")
    timed = backend.measure_many(files, threads=threads, runs=runs, warmup=3, rounds=rounds, instances=instances,
                                 progress=progress)
    doc.interleaved = {"threads": threads, "rounds": rounds, "runs_per_round": runs, "instances": instances,
                       "created": now_iso(),
                       "latency_ms": {k: v.median_ms for k, v in sorted(timed.items()) if v.median_ms}}
    if backend.measures_peak:  # the single-op method: re-time every model's ops side by side too
        retime_ops(doc, backend, threads, progress, settings)


def retime_ops(doc: ResultsDocument, backend, threads: int, progress: Progress,
               settings: MeasureSettings = FULL) -> None:
    """Re-time every distinct single-op model of the sweep in ONE runner process (`settings.retime_rounds`
    interleaved rounds of `settings.retime_runs` runs on `settings.retime_instances` interpreters).

    Each model's ops were first timed right after that model, minutes apart from the others; re-timing them all
    together puts every model's per-op times under the same machine conditions (the predictor's lookup and the
    report's shares compare them across models). Ops whose single-op file is gone keep their first timing.
    """
    from ..bench.op_times import in_graph_ms, op_dtype

    files, where = {}, []
    for entry in doc.models.values():
        for precision, data in entry.get("precisions", {}).items():
            if not str(data.get("op_method", "")).startswith("single-op") or not data.get("sha256"):
                continue
            folder = opcut(data["sha256"])
            dtype = op_dtype(data["ops"])
            overhead = folder / f"overhead_{dtype}.tflite"
            if not overhead.exists():
                continue
            files[f"{precision}|__overhead__{dtype}"] = overhead
            for op in data["ops"]:
                path = folder / f"op_{op['signature']}.tflite"
                if path.exists():
                    files[f"{precision}|{op['signature']}"] = path
            where.append((data, precision, dtype))
    if not files:
        return
    progress(f"re-timing {len(files)} distinct single-op models in one runner process")
    timed = backend.measure_many(files, threads=threads, runs=settings.retime_runs, warmup=2,
                                 rounds=settings.retime_rounds, instances=settings.retime_instances, progress=progress)
    for data, precision, dtype in where:
        overhead = _median(timed, f"{precision}|__overhead__{dtype}")
        if overhead is None:
            continue
        data["overhead_ms"] = overhead
        for op in data["ops"]:
            raw = _median(timed, f"{precision}|{op['signature']}")
            if raw is not None:
                op["raw_ms"], op["time_ms"] = raw, in_graph_ms(op, raw, overhead)
        data["op_retimed"] = "all models' distinct ops re-timed together in one runner process at the sweep's end"


def _median(timed: dict[str, "TimedModel"], ident: str) -> float | None:
    return timed[ident].median_ms if ident in timed else None


def _skip(doc: ResultsDocument, key, name, size, precision, reason, progress) -> None:
    progress(f"skipping {key}{' ' + precision if precision else ''}: {reason}")
    doc.skipped.append({"key": key, "model": name, "input_size": to_json(size), "precision": precision, "reason": reason})
