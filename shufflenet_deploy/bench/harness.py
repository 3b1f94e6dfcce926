"""`sdeploy bench`: measure every TFLite model of an artifact on one device, at each thread count and trial.

How a device is measured (runner.py on Linux, benchmark_model on Android) is the backend's business
(bench/backends.py); this module only orders the work: models x threads x trials, cool-downs, progress, and
keeping what was measured when the link drops (`BenchInterrupted.results`, marked partial). Each result carries
the model's key and MACs from its export manifest (bench/artifacts.py).
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

from ..devices.registry import DeviceProfile
from ..errors import UserError
from .artifacts import find_models
from .backends import BenchInterrupted, backend_for
from .results import BenchResult

DEFAULT_INSTANCES = 3  # interpreters per measurement on Linux devices (runner.py --instances explains why)


def bench_artifact(artifact: Path, profile: DeviceProfile, *, threads: list[int] | None = None, runs: int = 50,
                   warmup: int = 10, min_seconds: float = 0, cooldown_s: float = 0, trials: int = 1,
                   timeout: float = 600, progress: Callable[[str], None] | None = None,
                   input: Path | None = None, save_outputs_dir: Path | None = None,
                   instances: int = DEFAULT_INSTANCES, backend=None) -> list[BenchResult]:
    """Benchmark every TFLite model of `artifact` on `profile` at each thread count, `trials` times each.

    Linux devices spread each trial's runs over `instances` interpreters (runner.py --instances: one interpreter
    can sit in a slow mode for its whole life); Android's benchmark_model runs one. Pass an open `backend` to
    reuse its session (the sweep does: the runner is pushed once); otherwise one is opened and closed here."""
    models = find_models(artifact)
    threads = list(threads or profile.threads)
    say = progress or (lambda msg: None)
    own = backend is None
    backend = backend or backend_for(profile, timeout=timeout, progress=say)
    if (input is not None or save_outputs_dir is not None) and not backend.supports_inputs:
        raise UserError("--input/--save-outputs need a Linux device (runner.py); benchmark_model on Android "
                        "uses random inputs")
    backend.prepare()  # fail before connecting
    results: list[BenchResult] = []
    reports: list[dict] = []
    m = t = None
    try:
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
                    reports.append(backend.measure(m, t, runs=runs, warmup=warmup, min_seconds=min_seconds,
                                                   instances=instances, input=input,
                                                   save_dir=save_outputs_dir if trial == trials - 1 else None))
                results.append(backend.result(m, t, reports, runs=runs, warmup=warmup))
                reports = []
    except BenchInterrupted as err:
        if reports:  # some trials of the interrupted combination finished
            results.append(backend.result(m, t, reports, runs=runs, warmup=warmup))
        for r in results:
            r.partial = True
        raise BenchInterrupted(err.message, err.hint, results) from None
    finally:
        if own:
            backend.close()
    return results
