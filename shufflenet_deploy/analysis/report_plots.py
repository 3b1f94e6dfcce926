"""The gap report's plots (analysis/report.py writes them): each a PNG's bytes from rows analysis/gap.py computed.
Matplotlib is imported on first use, with the Agg backend (no display needed)."""
from __future__ import annotations

import io

from ..tflite.ops import GROUP_LABELS, GROUPS
from . import gap
from .rows import Exponent, FlopsVsTime, ModelRow, PredictionSummary

COLORS = {"fp32": "#1f77b4", "int8": "#d62728", "fp16": "#2ca02c"}
GROUP_COLORS = dict(zip(GROUPS, ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
                                 "#7f7f7f")))


def _short(key: str) -> str:
    return (key.replace("shufflenet_v1_", "v1 ").replace("shufflenet_v2_", "v2 ").replace("mobilenet_v1_", "MBv1 ")
            .replace("_", " "))


def _fig():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    _fig().close(fig)
    return buf.getvalue()


def macs_latency(rows: list[ModelRow], exps: list[Exponent]) -> bytes:
    plt = _fig()
    import numpy as np

    fig, ax = plt.subplots(figsize=(8.5, 6))
    size = gap.main_size(rows)
    sel = [r for r in rows if r.input_size == size and r.macs and r.latency_ms]
    placed: list[tuple[float, float]] = []  # label positions (log10 MMACs, log10 ms), shared by precisions
    for p in sorted({r.precision for r in sel}):
        pts = [r for r in sel if r.precision == p]
        ax.scatter([r.macs / 1e6 for r in pts], [r.latency_ms for r in pts], color=COLORS.get(p, "k"),
                   label=f"{p} measured", zorder=3)
        for r in sorted(pts, key=lambda r: r.latency_ms):
            _label_point(ax, _short(r.family), r.macs / 1e6, r.latency_ms, placed)
        fit = next((e.fit for e in exps if e.precision == p and e.scope == "all models"), None)
        if fit:
            xs = np.geomspace(min(r.macs for r in pts), max(r.macs for r in pts), 50)
            ax.plot(xs / 1e6, np.exp(fit.c) * xs ** fit.k, color=COLORS.get(p, "k"), lw=1,
                    label=f"{p} fit: latency ∝ MACs^{fit.k:.2f}")
    ref = next((r for r in sel if r.family == gap.REFERENCE and r.precision == "fp32"), None)
    if ref and sel:
        xs = np.geomspace(min(r.macs for r in sel), max(r.macs for r in sel), 50)
        ax.plot(xs / 1e6, ref.latency_ms * xs / ref.macs, "k--", lw=1.2,
                label="ideal: latency ∝ MACs (through g3 1x fp32)")
    _macs_latency_axes(ax, f"MACs vs measured latency ({size}x{size}, {rows[0].device if rows else ''})")
    return _png(fig)


def _macs_latency_axes(ax, title: str) -> None:
    ax.set_xscale("log")
    ax.set_yscale("log")
    _plain_log_ticks(ax.xaxis)
    _plain_log_ticks(ax.yaxis)
    ax.set_xlabel("MACs (M, conv + FC)")
    ax.set_ylabel("median latency (ms)")
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)


def devices(rows: list[ModelRow]) -> bytes:
    """MACs vs latency, one series per device and precision, every size: the fleet on one plot."""
    plt = _fig()
    fig, ax = plt.subplots(figsize=(8.5, 6))
    devices = sorted({r.device for r in rows})
    markers = {"fp32": "o", "int8": "s", "fp16": "^"}
    cmap = plt.get_cmap("tab10")
    for i, device in enumerate(devices):
        for p in sorted({r.precision for r in rows if r.device == device}):
            pts = sorted((r for r in rows if r.device == device and r.precision == p and r.macs
                          and r.latency_ms), key=lambda r: r.macs)
            ax.plot([r.macs / 1e6 for r in pts], [r.latency_ms for r in pts], marker=markers.get(p, "x"),
                    color=cmap(i % 10), lw=0.8, label=f"{device} {p}")
    _macs_latency_axes(ax, "MACs vs measured latency, per device")
    return _png(fig)


def _plain_log_ticks(axis) -> None:
    """1-2-5 ticks labelled as plain numbers (matplotlib's 3x10^1 minor labels collide on a short log axis)."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    axis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    axis.set_minor_formatter(NullFormatter())


def _label_point(ax, text: str, x: float, y: float, placed: list[tuple[float, float]]) -> None:
    """Annotate (x, y) on log-log axes, moving the label up past labels already placed nearby (the 1x models
    crowd around 140 MMACs); a moved label gets a thin line to its point."""
    import math

    lx, ly, shift = math.log10(x), math.log10(y), 0.0
    while any(abs(lx - px) < 0.15 and abs(ly + shift - py) < 0.032 for px, py in placed):
        shift += 0.032
    placed.append((lx, ly + shift))
    ax.annotate(text, (x, y), xytext=(x * 1.04, y * 10 ** shift), textcoords="data", fontsize=7, alpha=0.85,
                va="bottom", arrowprops={"arrowstyle": "-", "lw": 0.4, "alpha": 0.5} if shift else None)


def efficiency(rows: list[ModelRow]) -> bytes:
    plt = _fig()
    import numpy as np

    size = gap.main_size(rows)
    sel = [r for r in rows if r.input_size == size and r.gmacs]
    models = sorted({r.family for r in sel}, key=lambda m: min(r.macs for r in sel if r.family == m))
    precisions = sorted({r.precision for r in sel})
    fig, ax = plt.subplots(figsize=(9, 5))
    width = 0.8 / max(len(precisions), 1)
    for i, p in enumerate(precisions):
        vals = [next((r.gmacs for r in sel if r.family == m and r.precision == p), 0) for m in models]
        ax.bar(np.arange(len(models)) + i * width, vals, width, color=COLORS.get(p, "k"), label=f"{p} effective")
        peak = next((r.peak_gmacs for r in sel if r.precision == p and r.peak_gmacs), None)
        if peak:
            ax.axhline(peak, color=COLORS.get(p, "k"), ls="--", lw=1, label=f"{p} measured peak {peak:.0f}")
    ax.set_xticks(np.arange(len(models)) + width * (len(precisions) - 1) / 2)
    ax.set_xticklabels([_short(m) for m in models], rotation=45, ha="right", fontsize=8)
    ax.set_ylabel("GMAC/s")
    ax.set_yscale("log")
    ax.set_title("Effective GMAC/s (MACs / median latency) vs the device's measured peak")
    ax.legend(fontsize=8)
    ax.grid(True, axis="y", alpha=0.3, which="both")
    return _png(fig)


def shares(rows: list[ModelRow]) -> bytes:
    plt = _fig()

    sel = [r for r in rows if r.op_sum_ms]
    fig, ax = plt.subplots(figsize=(9, max(3, 0.28 * len(sel) + 1.5)))
    labels = [f"{_short(r.model)} {r.precision}" for r in sel]
    left = [0.0] * len(sel)
    for g in GROUPS:
        vals = [100 * (r.share(g) or 0) for r in sel]
        ax.barh(labels, vals, left=left, color=GROUP_COLORS[g], label=GROUP_LABELS[g])
        left = [a + b for a, b in zip(left, vals)]
    ax.set_xlabel("% of summed per-op time")
    ax.set_xlim(0, 100)
    ax.invert_yaxis()
    ax.tick_params(axis="y", labelsize=7)
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    ax.set_title("Per-op-type time share")
    return _png(fig)


def flops_vs_time(fvt: FlopsVsTime) -> bytes:
    plt = _fig()
    import numpy as np

    fig, ax = plt.subplots(figsize=(8, 4.5))
    x = np.arange(len(GROUPS))
    ax.bar(x - 0.2, [100 * fvt.flops_share[g] for g in GROUPS], 0.4, label="share of MACs", color="#999999")
    ax.bar(x + 0.2, [100 * fvt.time_share[g] for g in GROUPS], 0.4, label="share of time", color="#d62728")
    ax.set_xticks(x)
    ax.set_xticklabels([GROUP_LABELS[g] for g in GROUPS], rotation=30, ha="right", fontsize=8)
    ax.set_ylabel("%")
    ax.set_title(f"Where the FLOPs go vs where the time goes: {_short(fvt.model)} {fvt.precision}")
    ax.legend()
    ax.grid(True, axis="y", alpha=0.3)
    return _png(fig)


def prediction_error(pred: PredictionSummary) -> bytes:
    plt = _fig()

    errs = [100 * e.error for e in pred.evaluation]
    fig, ax = plt.subplots(figsize=(7, 4))
    lim = max(20, max(abs(e) for e in errs) + 2)
    ax.hist(errs, bins=[-lim + i * lim / 10 for i in range(21)], color="#1f77b4", edgecolor="white")
    ax.axvspan(-10, 10, color="green", alpha=0.1, label="±10%")
    ax.set_xlabel("prediction error, leave-one-out (%)")
    ax.set_ylabel("models")
    ax.set_title(f"Latency predictor: {100 * pred.within_10pct:.0f}% of {pred.n} within ±10%")
    ax.legend()
    return _png(fig)
