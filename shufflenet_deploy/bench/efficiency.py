"""The FLOPs gap of every `sdeploy bench` row: MACs, effective GMAC/s, % of the device's measured peak, and why.

- MACs come with the result (its export manifest, or the .tflite graph: bench/artifacts.py); GMAC/s = MACs / p50.
- The peak is measured on the device, through the same runtime, by bench/peak.py's two kernels per precision, once
  per device + runtime + threads, and kept in $SDEPLOY_CACHE/peaks/DEVICE.json with the machine's facts
  (bench/peak_cache.py: used only on the same machine, else re-measured and said; `sdeploy bench --peak`
  re-measures). A row without a peak says why (`peak_missing_reason`).
- int8 vs fp32: when a model was measured in both, the measured speedup stands beside the one the device's own
  peak kernels promise (peak int8 / peak fp32), with the ISA fact that explains it (devices/cpuinfo.py).
"""
from __future__ import annotations

from dataclasses import dataclass

from ..precisions import peak_precision
from . import peak_cache
from .peak import KernelTiming, peak_gmacs, time_kernels
from .results import BenchResult


@dataclass(frozen=True)
class Int8Speedup:
    """One model at one thread count measured in both fp32 and int8: the measured and the promised speedup."""
    model_key: str
    threads: int
    fp32_ms: float | None
    int8_ms: float | None
    speedup: float | None  # fp32 / int8 latency
    peak_speedup: float | None  # the device's int8 / fp32 peak kernels
    explanation: str


def measure_peaks(backend, machine, runtime: dict | None, threads: int,
                  progress=lambda m: None) -> list[KernelTiming]:
    """Time the peak kernels on the device (one process, interleaved) and cache them with the machine's facts."""
    records = time_kernels(backend, threads, progress)
    peak_cache.store(backend.profile.name, machine, runtime, threads, records)
    return records


def attach(results: list[BenchResult], peaks: dict[int, list[KernelTiming]], missing: str | None = None) -> None:
    """Fill macs-derived fields: gmacs_per_s, peak_gmacs, peak_fraction (or peak_missing_reason)."""
    for r in results:
        p50 = (r.latency_ms or {}).get("p50")
        r.gmacs_per_s = r.macs / (p50 * 1e-3) / 1e9 if r.macs and p50 else None
        # ONNX Runtime's fp32 model is held to the device's fp32 peak (measured through LiteRT's kernels)
        peak = peak_gmacs(peaks.get(r.threads) or [], peak_precision(r.precision), r.threads)
        r.peak_gmacs = peak
        if r.gmacs_per_s is None:
            r.peak_fraction = None
            r.peak_missing_reason = "MACs unknown: " + ((r.model_info and r.model_info.macs_source) or "no manifest")
        elif peak is None:
            r.peak_fraction = None
            r.peak_missing_reason = missing or f"no {r.precision} peak kernel was measured on {r.device}"
        else:
            r.peak_fraction = r.gmacs_per_s / peak
            r.peak_missing_reason = None


def int8_vs_fp32(results: list[BenchResult], facts: dict | None = None) -> list[Int8Speedup]:
    """One row per (model key, threads) measured in both fp32 and int8: measured and theoretical speedup."""
    by = {(r.key, r.threads, r.precision): r for r in results}
    out = []
    for (key, threads, precision), f32 in sorted(by.items()):
        i8 = by.get((key, threads, "int8"))
        if precision != "fp32" or i8 is None:
            continue
        a, b = (f32.latency_ms or {}).get("p50"), (i8.latency_ms or {}).get("p50")
        theory = (i8.peak_gmacs / f32.peak_gmacs) if i8.peak_gmacs and f32.peak_gmacs else None
        speedup = a / b if a and b else None
        out.append(Int8Speedup(key, threads, a, b, speedup, theory, explain_int8(facts, speedup, theory)))
    return out


# Results without CPU facts: the device had no /proc/cpuinfo the parser reads, or an older sdeploy measured them
NO_ISA = ("CPU ISA not recorded (no readable /proc/cpuinfo, or measured by an sdeploy that did not record it), so "
          "int8 vs fp32 goes unexplained; `sdeploy devices check DEVICE` shows it, a new bench records it")


def cpu_line(facts: dict | None) -> str:
    """A device's CPU in one line, for a bench's and a report's device line: its facts, or that none were recorded."""
    from ..devices.cpuinfo import summary

    return summary(facts) if facts else NO_ISA


def explain_int8(facts: dict | None, measured: float | None, theoretical: float | None) -> str:
    """Why int8 is (not) faster here: the measured ratio, what the peak kernels promise, and the ISA fact that
    decides XNNPACK's int8 GEMM kernels (devices/cpuinfo.py's sentence) where the results record it."""
    ratio = f"int8 ran {measured:.2f}x the speed of fp32" if measured else "int8 vs fp32 not measured"
    promise = f" (the device's own peak kernels promise {theoretical:.2f}x)" if theoretical else ""
    why = (facts or {}).get("int8")
    if not why:
        return f"{ratio}{promise}"  # the caller's device line says once that the ISA is not recorded (NO_ISA)
    if measured and theoretical and measured < 0.5 * theoretical:
        why += ("; this model gets far less than the kernels promise: its time goes to ops int8 barely speeds up "
                "(depthwise convs, data movement, small per-group GEMMs; `--op-profile` shows which)")
    return f"{ratio}{promise}; {why}"
