"""The gap report's rows (analysis/gap.py computes them, analysis/report.py and report_plots.py show them): one
frozen type per kind of row, so the report, its plots and the CLI read attributes instead of string keys.

`to_dict()` gives a row's CSV form (report.py's columns pick from it): the keys and values are the ones the
report wrote before these types existed, so the files do not change. The per-op entries themselves (`OpTable.ops`)
stay the results document's dicts: bench/results.py owns that shape.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..tflite.ops import GROUPS
from .predictor import Evaluation

Cell = str | int | float | None  # one CSV cell before escaping


@dataclass(frozen=True)
class OpTable:
    """A result's per-op times as its document recorded them, and how they were measured (None: not said)."""
    ops: list[dict[str, Any]]
    method: str | None = None


@dataclass(frozen=True)
class ModelRow:
    """One (device, model key, precision, threads): MACs, latency, GMAC/s, % of peak, the per-op time shares and
    the predictor's leave-one-out prediction where it has one."""
    device: str
    model: str  # the model key (name@SIZE)
    family: str  # the architecture's name: the paper's pairs are looked up by it
    input_size: str | None  # "224", "480x640"
    precision: str
    threads: int
    macs: int | None
    latency_ms: float | None
    latency_source: str  # "interleaved" (the sweep's final pass) or "sweep" (the model's own run)
    sweep_p50_ms: float | None
    gmacs: float | None
    peak_gmacs: float | None
    pct_of_peak: float | None
    op_sum_ms: float | None
    predicted_ms: float | None
    prediction_error_pct: float | None
    shares: dict[str, float | None] = field(default_factory=dict)  # op group -> share of op_sum_ms

    def share(self, group: str) -> float | None:
        return self.shares.get(group)

    def to_dict(self) -> dict[str, Cell]:
        return {"device": self.device, "model": self.model, "family": self.family, "input_size": self.input_size,
                "precision": self.precision, "threads": self.threads, "macs": self.macs,
                "latency_ms": self.latency_ms, "latency_source": self.latency_source,
                "sweep_p50_ms": self.sweep_p50_ms, "gmacs": self.gmacs, "peak_gmacs": self.peak_gmacs,
                "pct_of_peak": self.pct_of_peak, "op_sum_ms": self.op_sum_ms, "predicted_ms": self.predicted_ms,
                "prediction_error_pct": self.prediction_error_pct,
                **{f"share_{g}": self.shares.get(g) for g in GROUPS}}


@dataclass(frozen=True)
class PowerFit:
    """log(latency) = k log(MACs) + c over n models; k = 1 is "latency proportional to MACs"."""
    k: float
    c: float
    r2: float
    n: int


@dataclass(frozen=True)
class Exponent:
    """A fitted exponent of one precision over one set of models (all of them, or the g=3 width series)."""
    precision: str
    scope: str
    fit: PowerFit

    @property
    def speedup_per_4x_macs(self) -> float:
        return 4 ** self.fit.k

    def to_dict(self) -> dict[str, Cell]:
        return {"precision": self.precision, "scope": self.scope, "k": self.fit.k, "c": self.fit.c,
                "r2": self.fit.r2, "n": self.fit.n, "speedup_per_4x_macs": self.speedup_per_4x_macs}


@dataclass(frozen=True)
class Speedup:
    """The paper's form: the theoretical (MACs ratio) and actual (latency ratio, per precision) speedup of one
    pair, beside the paper's Table 8; for int8 vs fp32, theoretical is the device's own peak int8 / fp32."""
    comparison: str
    slower: str
    faster: str
    theoretical: float | None
    actual: dict[str, float | None]  # precision -> slower ms / faster ms, in sorted precision order
    paper_theoretical: float | None = None
    paper_actual_sd820: float | None = None
    note: str | None = None

    def to_dict(self) -> dict[str, Cell]:
        out: dict[str, Cell] = {"comparison": self.comparison, "slower": self.slower, "faster": self.faster,
                                "theoretical": self.theoretical, **{f"actual_{p}": v for p, v in self.actual.items()},
                                "paper_theoretical": self.paper_theoretical,
                                "paper_actual_sd820": self.paper_actual_sd820}
        if self.note is not None:
            out["note"] = self.note
        return out


@dataclass(frozen=True)
class FlopsVsTime:
    """Where the MACs go vs where the time goes, per op group, for one model and precision."""
    model: str
    precision: str
    flops: dict[str, int]  # op group -> MACs
    flops_share: dict[str, float]
    other_ops_ms: dict[str, float]  # the "other" group's ops by time, largest first
    folded_pads: int  # zero PADs XNNPACK folds into the next conv (counted 0)
    folded_pads_alone_ms: float  # what those PADs took timed alone
    time_ms: dict[str, float]
    time_share: dict[str, float]
    op_method: str | None
    threads: int | None = None  # set for a result's own `--op-profile` times (flops_vs_time_each)


@dataclass(frozen=True)
class PredictionSummary:
    """A device's stored leave-one-out evaluation of its predictor, and its accuracy in three numbers."""
    evaluation: tuple[Evaluation, ...]
    n: int
    within_10pct: float | None
    median_abs_error: float | None
    max_abs_error: float | None


@dataclass(frozen=True)
class DeviceSpeedups:
    """One comparison of the paper's form across devices: actual and promised (theoretical) per device."""
    comparison: str
    precision: str
    theoretical: dict[str, float | None]
    actual: dict[str, float | None]


@dataclass(frozen=True)
class DeviceLatencies:
    """One model, precision and thread count: its latency on each device."""
    model: str
    precision: str
    threads: int
    macs: int | None
    ms: dict[str, float | None]


@dataclass(frozen=True)
class DeviceShares:
    """One model, precision and op group: its share of the summed per-op time on each device."""
    model: str
    precision: str
    group: str
    share: dict[str, float]


@dataclass(frozen=True)
class Disagreement:
    """A speedup that differs by more than 25% between two devices: the highest and the lowest."""
    comparison: str
    high: str
    high_value: float
    low: str
    low_value: float
    text: str


@dataclass(frozen=True)
class CrossDevice:
    """The fleet side by side (gap.cross_device): each device's CPU facts and core names, the paper-form speedups,
    latencies and per-op time shares with one value per device, each predictor's accuracy, and disagreements."""
    devices: list[str]
    facts: dict[str, str]
    cores: dict[str, str]
    speedups: list[DeviceSpeedups]
    latency: list[DeviceLatencies]
    op_shares: list[DeviceShares]
    predictor: dict[str, PredictionSummary]
    disagreements: list[Disagreement]
