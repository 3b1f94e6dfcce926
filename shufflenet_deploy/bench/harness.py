"""`sdeploy bench`: measure every TFLite model of an artifact on one device, at each thread count and trial.

How a device is measured (runner.py on Linux, benchmark_model on Android) is the backend's business
(bench/backends.py); this module only orders the work: models x threads x trials, cool-downs, progress, and
keeping what was measured when the link drops (`BenchInterrupted.results`, marked partial). Each result carries
the model's key and MACs from its export manifest (bench/artifacts.py).
"""
from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Callable

from ..devices.profile import DeviceProfile
from ..errors import DeviceError, UserError
from ..precisions import ONNX_ROWS
from .artifacts import check_input, find_models
from .backends import BenchInterrupted, backend_for
from .results import BenchResult

DEFAULT_INSTANCES = 3  # interpreters per measurement on Linux devices (runner.py --instances explains why)
MAX_THREADS = 256  # XNNPACK builds a thread pool of this size: 100000 hung the runner for minutes


def bench_artifact(artifact: Path, profile: DeviceProfile, *, threads: list[int] | None = None, runs: int = 50,
                   warmup: int = 10, min_seconds: float = 0, cooldown_s: float = 0, trials: int = 1,
                   timeout: float = 600, progress: Callable[[str], None] | None = None,
                   input: Path | None = None, save_outputs_dir: Path | None = None,
                   instances: int = DEFAULT_INSTANCES, backend=None, peak: str = "skip",
                   op_profile: bool = False, cores: str | None = None, runtime: str = "tflite") -> list[BenchResult]:
    """Benchmark every TFLite model of `artifact` on `profile` at each thread count, `trials` times each.

    Linux devices spread each trial's runs over `instances` interpreters (runner.py --instances: one interpreter
    can sit in a slow mode for its whole life); Android's benchmark_model runs one. Pass an open `backend` to
    reuse its session (the sweep does: the runner is pushed once); otherwise one is opened and closed here.

    Every result carries the device's CPU facts and its MACs-derived gap fields (bench/efficiency.py). `peak`:
    "auto" measures the device's peak when none is cached for its runtime and thread count, "measure" always
    re-measures, "skip" uses only a cached one (the sweep measures its own). `op_profile`: per-op times of every
    row too (bench/op_times.py: single-op models on Linux, benchmark_model's op profile on Android). `cores`
    ("big", "little", "prime", "all") pins every run to that cluster, found from the device's own facts
    (devices/cpuinfo.cpus_of) instead of a hand-written affinity mask; each result says which cluster ran.
    `runtime` ("tflite", "onnxruntime", "all"): which files run (bench/artifacts.find_models); the export's
    model.onnx runs under the device's ONNX Runtime, as precision "onnx" (its model_int8.onnx, when exported, as
    "onnx_int8"); a device without it skips them in one line ("all") or fails ("onnxruntime")."""
    models = find_models(artifact, runtime)
    threads = list(threads or profile.threads)
    if max(threads) > MAX_THREADS:
        raise UserError(f"--threads {max(threads)} is more than any board or phone has cores",
                        f"use at most {MAX_THREADS} (e.g. the device's core count)")
    if (input is not None or save_outputs_dir is not None) and any(m.precision in ONNX_ROWS for m in models):
        raise UserError("--input/--save-outputs are for the TFLite files (NHWC inputs)", "drop --runtime, or them")
    if input is not None:
        check_input(Path(input), models)
    if op_profile:  # per-op times read the .tflite graph: without its schema, say so before measuring anything
        from ..tflite import graph  # noqa: F401
    say = progress or (lambda msg: None)
    own = backend is None
    backend = backend or backend_for(profile, timeout=timeout, progress=say)
    if (input is not None or save_outputs_dir is not None) and not backend.supports_inputs:
        raise UserError("--input/--save-outputs need a Linux device (runner.py); benchmark_model on Android "
                        "uses random inputs")
    backend.prepare()  # fail before connecting
    results: list[BenchResult] = []
    reports: list[dict] = []
    failed: list[str] = []  # models the device could not run: the others' results are kept
    m = t = None
    try:
        cpu = backend.device_facts()
        facts = cpu.to_dict() if cpu else None  # the form a result records (BenchResult.device_facts)
        if cores:
            from ..devices.cpuinfo import cpus_of

            cpus = cpus_of(facts, cores, backend.profile.name)
            backend.profile = dataclasses.replace(backend.profile, affinity=",".join(map(str, cpus)))
            say(f"--cores {cores}: CPUs {backend.profile.affinity}")
        models, skipped = _runnable(models, backend, runtime, say)
        first = True
        for m in models:
            for t in threads:
                reports = []
                for trial in range(trials):
                    if not first and cooldown_s > 0:
                        say(f"cooling down {cooldown_s:g} s")
                        time.sleep(cooldown_s)
                    first = False
                    say(f"{m.model} {m.precision} threads={t} trial {trial + 1}/{trials}")
                    try:
                        reports.append(backend.measure(m, t, runs=runs, warmup=warmup, min_seconds=min_seconds,
                                                       instances=instances, input=input,
                                                       save_dir=save_outputs_dir if trial == trials - 1 else None))
                    except BenchInterrupted:
                        raise
                    except DeviceError as err:
                        if len(models) == 1:
                            raise
                        failed.append(f"{m.path.name}: {err.one_line()}")
                        say(f"{m.model} {m.precision} threads={t} failed: {err.one_line()}")
                        break
                if not reports:
                    continue
                results.append(backend.result(m, t, reports, runs=runs, warmup=warmup))
                reports = []
                if op_profile and m.precision not in ONNX_ROWS:  # per-op times cut single ops out of a .tflite
                    say(f"{m.model} {m.precision} threads={t}: per-op times")
                    results[-1].op_times = backend.op_times(m.path, results[-1], _opcut_dir(m), threads=t,
                                                            progress=say).to_dict()
    except BenchInterrupted as err:
        if reports:  # some trials of the interrupted combination finished
            results.append(backend.result(m, t, reports, runs=runs, warmup=warmup))
        for r in results:
            r.partial = True
        raise BenchInterrupted(err.message, err.hint, results) from None
    else:
        _explain(results, facts, backend, peak, say)
        for r in results if skipped else []:
            r.warnings.append(skipped)
    finally:
        if own:
            backend.close()
    if failed:
        if not results:
            raise DeviceError(f"no model of {artifact} ran on {profile.name}: {failed[0]}")
        for r in results:
            r.partial = True
        raise BenchInterrupted(f"{len(failed)} of {len(models)} models failed on {profile.name} ({failed[0]})",
                               "the others were measured", results)
    return results


def _runnable(models: list, backend, runtime: str, say) -> tuple[list, str | None]:
    """MODELS without the ONNX file when the device has no ONNX Runtime, and the line that says so (each result
    carries it) with --runtime all; a device fault when ONNX Runtime was all that was asked for."""
    if not any(m.precision in ONNX_ROWS for m in models):
        return models, None
    version = backend.onnxruntime_version()
    if version is not None:
        say(f"ONNX Runtime {version} on {backend.profile.name}")
        return models, None
    if backend.profile.transport == "adb":
        why, fix = "benchmark_model on Android runs TFLite files only", "bench the TFLite files (--runtime tflite)"
    else:
        python = " ".join(backend.profile.python_argv)
        why, fix = f"onnxruntime is not installed for {python}", f"install it there: {python} -m pip install onnxruntime"
    if runtime == "onnxruntime":
        raise DeviceError(f"{backend.profile.name} cannot run ONNX Runtime: {why}", fix)
    skipped = f"skipped onnxruntime on {backend.profile.name}: {why} ({fix})"
    say(skipped)
    return [m for m in models if m.precision not in ONNX_ROWS], skipped


def _opcut_dir(m) -> Path:
    from ..fileio import sha256
    from ..paths import opcut

    return opcut(m.sha256 or sha256(m.path))


def _explain(results: list[BenchResult], facts: dict | None, backend, peak: str, say) -> None:
    """Device facts, the cluster each run was pinned to, and the gap fields (MACs, GMAC/s, % of peak)."""
    from ..devices.cpuinfo import cluster_of
    from ..devices.machine import MachineFacts
    from . import efficiency, peak_cache

    peaks, missing = {}, None
    # the peak kernels are TFLite files: measured and cached under the TFLite runtime of the rows beside them
    runtime = next((r.runtime for r in results if r.runtime and r.precision not in ONNX_ROWS), None)
    if runtime is None and results:
        missing = "the peak is timed with TFLite kernels beside TFLite rows: bench with --runtime all for % of peak"
    for threads in sorted({r.threads for r in results}) if runtime is not None else []:
        cpus = next((r.affinity for r in results if r.threads == threads and r.affinity), None)
        machine = MachineFacts.of(facts, runtime, threads, cpus)
        found, why_not = [], None
        if peak != "measure":
            cached, why_not = peak_cache.lookup(backend.profile.name, machine, runtime, threads)
            found = [r.timing() for r in cached]
        if not found and peak in ("auto", "measure"):
            if why_not:
                say(f"re-measuring the peak: {why_not}")
            try:
                found = efficiency.measure_peaks(backend, machine, runtime, threads, say)
            except UserError as err:
                missing = f"the peak kernels could not be timed on {backend.profile.name}: {err.one_line()}"
            except OSError as err:  # the cache folder went away or filled up: the models' results still count
                missing = f"the peak kernels could not be built or cached: {err.strerror or err}"
        elif not found:
            missing = (why_not or f"no peak measured yet for {backend.profile.name} with this runtime and "
                       f"{threads} thread(s)") + ": run `sdeploy bench ... --peak`"
        peaks[threads] = found
    efficiency.attach(results, peaks, missing)
    for r in results:
        r.device_facts = facts
        r.cores = cluster_of(facts, r.affinity) if facts else None
        if r.cores == "little":
            r.warnings.append("pinned to the little cores only: latency is the slow cluster's, not the device's")
