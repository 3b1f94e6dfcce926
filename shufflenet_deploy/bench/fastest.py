"""The fastest artifact of each model, per device and thread count, named with its margin and a reason (issue 25).

The candidates are one bench's rows of that model: every artifact an export ships passed its parity checks and
its int8 target (the export refuses the others), so the fastest row is a file the user may ship. Two medians whose
95% intervals overlap are a tie, said as one, never a winner by noise. The reason is the fact that decides it: the
runtime's kernels (ONNX Runtime's own vs LiteRT's XNNPACK) or the CPU's int8 dot-product instructions, as the
device's own /proc/cpuinfo records them.
"""
from __future__ import annotations

from collections import defaultdict

from ..precisions import ONNX_INT8, ONNX_ROWS, arithmetic
from .results import BenchResult, Fastest


def name_fastest(results: list[BenchResult]) -> list[Fastest]:
    """One Fastest per (device, model key, threads) with a measured median, in that order."""
    groups: dict[tuple, list[BenchResult]] = defaultdict(list)
    for r in results:
        if _p50(r):
            groups[(r.device, r.key, r.threads)].append(r)
    out = []
    for (device, key, threads), rows in sorted(groups.items()):
        best, *rest = sorted(rows, key=_p50)
        second = rest[0] if rest else None
        tied = second is not None and _overlap(best, second)
        margin = _p50(second) / _p50(best) - 1 if second else None
        out.append(Fastest(device=device, model=key, threads=threads, artifact=_printable((best.artifact or {}).get("file", "?")),
                           runtime=_runtime(best), precision=best.precision, p50_ms=_p50(best),
                           runner_up=_label(second) if second else None, margin=margin, tied=tied,
                           why=_why(best, second, margin, tied)))
    return out


def line(f: Fastest) -> str:
    """The console's sentence for one Fastest."""
    ahead = (f"; {f.runner_up} is within noise ({100 * f.margin:+.1f}%)" if f.tied else
             f", {100 * f.margin:.1f}% ahead of {f.runner_up}" if f.runner_up else "")
    return (f"fastest on {f.device}, {f.threads} thread(s), {f.model}: {f.precision} {f.artifact} ({f.runtime}) "
            f"{f.p50_ms:.3f} ms{ahead}. {f.why}")


def _printable(name: str) -> str:
    """A file name in bytes that are not UTF-8 (copied from another system) as text a console and JSON can hold."""
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def _p50(r: BenchResult) -> float | None:
    return (r.latency_ms or {}).get("p50")


def _overlap(a: BenchResult, b: BenchResult) -> bool:
    """A (the faster) and B overlap when A's upper median bound reaches B's lower one."""
    ci_a, ci_b = ((r.latency_ms or {}).get("median_ci") or [None, None] for r in (a, b))
    if None in (*ci_a, *ci_b):
        return False
    return ci_a[1] >= ci_b[0]


def _runtime(r: BenchResult) -> str:
    rt = r.runtime or {}
    return " ".join(str(v) for v in (rt.get("name"), rt.get("version")) if v) or "?"


def _label(r: BenchResult) -> str:
    return f"{r.precision} ({_runtime(r)})"


def _why(best: BenchResult, second: BenchResult | None, margin: float | None, tied: bool) -> str:
    if second is None:
        return "The only artifact measured here."
    if tied:
        return ("The two are within noise here (their medians' 95% intervals overlap): either is as fast; the "
                "smaller file, or the runtime the app already links, decides.")
    int8_fact = ((best.device_facts or {}).get("int8") or "").rstrip(".")
    ort = (best.precision in ONNX_ROWS, second.precision in ONNX_ROWS)
    if ort == (True, False):
        return ("ONNX Runtime's own CPU kernels run this graph faster than LiteRT's XNNPACK on this CPU; "
                "the TFLite files stay the choice where ONNX Runtime is not installed.")
    if ort == (False, True):
        return ("LiteRT's XNNPACK runs the lowered TFLite graph faster than ONNX Runtime's CPU kernels run "
                f"{'model_int8.onnx' if second.precision == ONNX_INT8 else 'model.onnx'} on this CPU.")
    if {arithmetic(best.precision), arithmetic(second.precision)} == {"int8", "fp32"} and int8_fact:
        side = "int8 wins" if arithmetic(best.precision) == "int8" else "fp32 wins"
        return f"{side}: {int8_fact}."
    return f"{best.precision} runs {100 * margin:.1f}% faster than {second.precision} here."
