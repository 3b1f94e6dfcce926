"""Latency statistics that say when a number should not be trusted.

Phones throttle, migrate threads and change frequency mid-run; a mean alone hides all of that. `summarize`
reports robust percentiles, a bootstrap CI of the median, and flags the run as unstable (with reasons) when:

- fewer than MIN_RUNS samples: percentiles and the CI are meaningless;
- the 95% CI of the median is wider than +-MAX_CI_HALF_WIDTH_PCT % of the median: the median itself is uncertain;
- p90/p50 > MAX_P90_OVER_P50: a heavy tail (background load, frequency changes) — the median may hide it;
- the median of the last third differs from the first third by > MAX_TREND_PCT %: a trend, usually thermal
  throttling (slower) or a governor ramping up (faster); needs >= 9 samples.

`compare_conditions` checks the device state around a run (CPU frequency, governor, temperature);
`merge_trials` combines repeated trials by the median of trial medians.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np

from ..errors import UserError

MIN_RUNS = 10
MAX_CI_HALF_WIDTH_PCT = 5.0
MAX_P90_OVER_P50 = 1.25
MAX_TREND_PCT = 10.0
MAX_TRIAL_SPREAD_PCT = 5.0
_BOOT_CHUNK_ELEMENTS = 2_000_000  # bound the bootstrap's memory: n_boot x n resamples in chunks


@dataclass
class LatencyStats:
    count: int
    p50: float
    p90: float
    p99: float
    mean: float
    std: float | None  # ddof=1; None for a single sample
    min: float
    max: float
    cv: float | None
    spread_pct: float  # (p90 - p50) / p50 * 100
    median_ci_low: float
    median_ci_high: float
    ci: float
    trend_pct: float | None  # (median of last third / median of first third - 1) * 100; None below 9 samples
    stable: bool
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _as_times(times_ms: Sequence[float], what: str = "latency samples") -> np.ndarray:
    x = np.asarray(times_ms, dtype=float).ravel()
    if x.size == 0:
        raise UserError(f"no {what} to summarise", "the benchmark produced no timings; check its log")
    if not np.all(np.isfinite(x)) or np.any(x <= 0):
        raise UserError(f"{what} must be finite and positive (got min={np.min(x)!r})",
                        "check the runner's timer and units")
    return x


def bootstrap_median_ci(x: np.ndarray, *, seed: int = 0, n_boot: int = 2000, ci: float = 0.95) -> tuple[float, float]:
    """Percentile-bootstrap CI of the median; deterministic for a given seed."""
    if not 0 < ci < 1:
        raise UserError(f"ci must be in (0, 1), got {ci}")
    rng = np.random.default_rng(seed)
    n = x.size
    rows = max(1, _BOOT_CHUNK_ELEMENTS // n)
    medians = np.concatenate([np.median(x[rng.integers(0, n, size=(min(rows, n_boot - start), n))], axis=1)
                              for start in range(0, n_boot, rows)])
    low, high = np.percentile(medians, [(1 - ci) / 2 * 100, (1 + ci) / 2 * 100])
    return float(low), float(high)


def summarize(times_ms: Sequence[float], *, seed: int = 0, n_boot: int = 2000, ci: float = 0.95) -> LatencyStats:
    """Summary of per-run latencies (in run order: the trend check needs it)."""
    x = _as_times(times_ms)
    n = x.size
    p50, p90, p99 = (float(v) for v in np.percentile(x, [50, 90, 99]))
    mean = float(np.mean(x))
    std = float(np.std(x, ddof=1)) if n > 1 else None
    low, high = bootstrap_median_ci(x, seed=seed, n_boot=n_boot, ci=ci)
    trend = None
    if n >= 9:
        third = n // 3
        first, last = float(np.median(x[:third])), float(np.median(x[-third:]))
        trend = (last / first - 1) * 100
    warnings = []
    if n < MIN_RUNS:
        warnings.append(f"only {n} runs (< {MIN_RUNS}): percentiles and the CI are not meaningful")
    half_width = max(high - p50, p50 - low) / p50 * 100
    if half_width > MAX_CI_HALF_WIDTH_PCT:
        warnings.append(f"{ci:.0%} CI of the median is +-{half_width:.1f}% (> {MAX_CI_HALF_WIDTH_PCT}%): "
                        "too noisy to trust, run more iterations")
    if p90 / p50 > MAX_P90_OVER_P50:
        warnings.append(f"p90/p50 = {p90 / p50:.2f} (> {MAX_P90_OVER_P50}): heavy tail, check background load and "
                        "frequency scaling")
    if trend is not None and abs(trend) > MAX_TREND_PCT:
        direction = "slower" if trend > 0 else "faster"
        warnings.append(f"last third of the runs is {abs(trend):.1f}% {direction} than the first third "
                        f"(> {MAX_TREND_PCT}%): thermal throttling or frequency ramp")
    return LatencyStats(count=n, p50=p50, p90=p90, p99=p99, mean=mean, std=std, min=float(np.min(x)),
                        max=float(np.max(x)), cv=std / mean if std is not None else None,
                        spread_pct=(p90 - p50) / p50 * 100, median_ci_low=low, median_ci_high=high, ci=ci,
                        trend_pct=trend, stable=not warnings, warnings=warnings)


def _number(value: Any) -> float | None:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def compare_conditions(before: Mapping[str, Mapping], after: Mapping[str, Mapping], *,
                       max_freq_change_pct: float = 10.0, max_temp_change_c: float = 5.0) -> list[str]:
    """Warnings when the device changed under a run. Dicts: {"freq_khz": {cpu: kHz}, "temp_c": {zone: C},
    "governor": {cpu: name}}; missing or non-numeric entries are skipped, a CPU that vanished is reported."""
    warnings = []
    b_freq, a_freq = before.get("freq_khz") or {}, after.get("freq_khz") or {}
    for cpu in sorted(set(b_freq) | set(a_freq)):
        if cpu not in a_freq or cpu not in b_freq:
            warnings.append(f"{cpu} reported a frequency only {'before' if cpu in b_freq else 'after'} the run "
                            "(core went on/offline)")
            continue
        b, a = _number(b_freq[cpu]), _number(a_freq[cpu])
        if b and a is not None and abs(a - b) / b * 100 > max_freq_change_pct:
            warnings.append(f"{cpu} frequency changed {b:.0f} -> {a:.0f} kHz ({(a / b - 1) * 100:+.0f}%, "
                            f"> {max_freq_change_pct}%)")
    b_gov, a_gov = before.get("governor") or {}, after.get("governor") or {}
    for cpu in sorted(set(b_gov) & set(a_gov)):
        if b_gov[cpu] != a_gov[cpu]:
            warnings.append(f"{cpu} governor changed {b_gov[cpu]} -> {a_gov[cpu]}")
    b_temp, a_temp = before.get("temp_c") or {}, after.get("temp_c") or {}
    for zone in sorted(set(b_temp) & set(a_temp)):
        b, a = _number(b_temp[zone]), _number(a_temp[zone])
        if b is not None and a is not None and abs(a - b) > max_temp_change_c:
            warnings.append(f"{zone} temperature changed {b:.1f} -> {a:.1f} C ({a - b:+.1f}, "
                            f"> {max_temp_change_c} C)")
    return warnings


@dataclass
class TrialsSummary:
    n_trials: int
    trial_medians: list[float]
    median_of_medians: float
    spread_pct: float  # (max - min) of the trial medians / median_of_medians * 100
    stable: bool
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def merge_trials(trials: Sequence[Sequence[float]]) -> TrialsSummary:
    """Repeated trials (e.g. separated by a cool-down): the median of per-trial medians and how much they agree."""
    if len(trials) == 0:
        raise UserError("no trials to merge")
    medians = [float(np.median(_as_times(t, f"latency samples of trial {i + 1}"))) for i, t in enumerate(trials)]
    mom = float(np.median(medians))
    spread = (max(medians) - min(medians)) / mom * 100
    warnings = []
    if spread > MAX_TRIAL_SPREAD_PCT:
        warnings.append(f"trial medians spread {spread:.1f}% (> {MAX_TRIAL_SPREAD_PCT}%): trials disagree, check "
                        "cooling and background load")
    return TrialsSummary(n_trials=len(medians), trial_medians=medians, median_of_medians=mom, spread_pct=spread,
                         stable=not warnings, warnings=warnings)
