"""The numbers of the gap report, computed from sweep results only (no device, no conversion).

Everything here is a pure function of the results document(s) so the report, its CSV/Markdown and the tests
agree by construction. MACs are the conv+FC convention (complexity.py `macs_total`) throughout.

Paper figures: ShuffleNet v1 Table 8 (Qualcomm Snapdragon 820, single thread, ms at 224x224 / 480x640 /
720x1280) with the paper's MFLOPs (= MACs).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from ..bench.results import BenchResult, ResultsDocument, read_document, result_files
from ..errors import UserError
from ..sizes import size_str
from ..tflite.ops import GROUPS, shares
from .predictor import Evaluation
from .rows import (CrossDevice, DeviceLatencies, DeviceShares, DeviceSpeedups, Disagreement, Exponent, FlopsVsTime,
                   ModelRow, OpTable, PowerFit, PredictionSummary, Speedup)

REFERENCE = "shufflenet_v1_g3_1.0x"
PAPER_TABLE8 = {  # model: (MFLOPs, {size: ms})
    "shufflenet_v1_g3_0.5x": (38, {"224x224": 15.2, "480x640": 87.4, "720x1280": 260.1}),
    "shufflenet_v1_g3_1.0x": (140, {"224x224": 37.8, "480x640": 222.2, "720x1280": 684.5}),
    "shufflenet_v1_g3_2.0x": (524, {"224x224": 108.8, "480x640": 617.0, "720x1280": 1857.6}),
    "mobilenet_v1_1.0x": (569, {"224x224": 110.0, "480x640": 612.0, "720x1280": 1879.2}),
}
# (label, slower/bigger model, faster/smaller model)
SPEEDUP_PAIRS = (
    ("ShuffleNet 0.5x vs 1x (g=3)", "shufflenet_v1_g3_1.0x", "shufflenet_v1_g3_0.5x"),
    ("ShuffleNet 1x vs 2x (g=3)", "shufflenet_v1_g3_2.0x", "shufflenet_v1_g3_1.0x"),
    ("ShuffleNet 0.5x vs 2x (g=3)", "shufflenet_v1_g3_2.0x", "shufflenet_v1_g3_0.5x"),
    ("ShuffleNet 1x: g=3 vs g=8", "shufflenet_v1_g8_1.0x", "shufflenet_v1_g3_1.0x"),
    ("ShuffleNet 1x g=3 vs MobileNet v1 1.0", "mobilenet_v1_1.0x", "shufflenet_v1_g3_1.0x"),
)


@dataclass
class Documents:
    """What the report reads: the given results files merged into one document (for what belongs to results:
    their devices, facts, skips; it carries no interleaved latencies), one document per device (for what belongs
    to a device's sweep: its per-op times, interleaved latencies and predictor, which one merged document would
    mix up: two devices sweep the same model keys), and the files each came from."""

    doc: ResultsDocument
    sources: list[Path] = field(default_factory=list)
    by_device: dict[str, ResultsDocument] = field(default_factory=dict)
    device_sources: dict[str, list[Path]] = field(default_factory=dict)

    @property
    def devices(self) -> list[str]:
        return self.doc.devices()


def _merge_into(target: ResultsDocument, doc: ResultsDocument, device: str | None = None) -> None:
    """Add DOC's blocks to TARGET: all of them, or (DEVICE) that device's results and peaks only."""
    target.results += [r for r in doc.results if device is None or r.device == device]
    target.peak += [p for p in doc.peak if device is None or p.get("device") in (device, None)]
    target.skipped += doc.skipped
    for key, entry in doc.models.items():
        into = target.models.setdefault(key, {**entry, "precisions": {}})
        into["precisions"].update(entry.get("precisions", {}))
    target.sweep = target.sweep or doc.sweep


def load_documents(paths: list[Path], allow_mixed: bool = False) -> Documents:
    """Read sweep/bench result files (or folders), check schema and devices, merge into one document and into
    one per device."""
    if not paths:
        raise UserError("no results given", "pass one or more sweep folders or bench.json files")
    merged = ResultsDocument()
    sources, per_file = [], []
    by_device: dict[str, ResultsDocument] = {}
    device_sources: dict[str, list[Path]] = {}
    files = [file for path in paths for file in result_files(path)]  # a fleet folder: each DEVICE/bench.json
    for file in files:
        doc = read_document(file)  # schema check: another version is a UserError (exit 2)
        per_file.append([r.device for r in doc.results])
        _merge_into(merged, doc)
        swept = (doc.sweep or {}).get("device") or (doc.results[0].device if doc.results else "")
        for name in doc.devices():
            own = by_device.setdefault(name, ResultsDocument())
            _merge_into(own, doc, name)
            # the interleaved pass timed the sweep's device: only that device's document carries its latencies
            # (the merged one none; a file mixing devices by hand keeps them to the sweep's device, as before)
            if doc.interleaved and name == swept:
                own.interleaved = own.interleaved or {"latency_ms": {}}
                own.interleaved["latency_ms"].update(doc.interleaved.get("latency_ms") or {})
            device_sources.setdefault(name, []).append(file)
        sources.append(file)
    devices = merged.devices()
    if len(devices) > 1 and not allow_mixed and any(len(set(d)) > 1 for d in per_file):
        mixed = next(sorted(set(d)) for d in per_file if len(set(d)) > 1)
        raise UserError(f"one results file holds several devices ({', '.join(mixed)}) mixed",
                        "pass --allow-mixed to report them anyway, or one file per device (a fleet run writes "
                        "OUT/DEVICE/bench.json) for the side-by-side report")
    if not merged.results:
        raise UserError("the results hold no benchmark rows", "run `sdeploy bench` or `sdeploy sweep` first")
    return Documents(merged, sources, {d: by_device[d] for d in devices}, device_sources)


def macs_of(doc: ResultsDocument, result: BenchResult) -> int | None:
    """The measured model's conv+FC MACs as its result or its sweep entry recorded them — never recomputed from a
    name (a name says nothing of the export's input size, classes or options)."""
    if result.macs:
        return int(result.macs)
    entry = doc.models.get(result.key) or {}
    return int(entry["macs_total"]) if entry.get("macs_total") else None


def peak_for(doc: ResultsDocument, device: str, precision: str, threads: int) -> float | None:
    from ..bench.peak import KernelTiming, peak_gmacs

    return peak_gmacs([KernelTiming.from_dict(p) for p in doc.peak if p["device"] == device], precision, threads)


def ops_of(doc: ResultsDocument, result: BenchResult) -> OpTable:
    """A result's per-op times: the sweep's entry for its key, else its own `sdeploy bench --op-profile` ones."""
    data = (doc.models.get(result.key, {}).get("precisions", {}).get(result.precision)) or result.op_times or {}
    return OpTable(data.get("ops") or [], data.get("op_method"))


def macs_by_group(ops: list[dict]) -> dict[str, int]:
    """Where the MACs go, from the graph's own ops (what a bench result of any .tflite has)."""
    out = {g: 0 for g in GROUPS}
    for o in ops:
        out[o.get("group") or "other"] += int(o.get("macs") or 0)
    return out


def model_rows(doc: ResultsDocument, evaluation: list[Evaluation] | tuple[Evaluation, ...] | None = None
               ) -> list[ModelRow]:
    """One row per (device, model key, precision, threads): MACs, latency, GMAC/s, % of peak, time shares, and
    the predictor's leave-one-out prediction where `evaluation` (predict.fit's) has one."""
    errors = {(e.key, e.precision): e for e in evaluation or []}
    rows = []
    for r in doc.results:
        key, precision = r.key, r.precision
        entry = doc.models.get(key, {})
        macs = macs_of(doc, r)
        bench_p50 = (r.latency_ms or {}).get("p50")
        lat = doc.latency(r)
        gmacs = macs / (lat * 1e-3) / 1e9 if macs and lat else None
        peak = peak_for(doc, r.device, precision, r.threads) or r.peak_gmacs
        ops = ops_of(doc, r).ops
        group_ms = {g: sum(o["time_ms"] for o in ops if o.get("group") == g and o.get("time_ms") is not None)
                    for g in GROUPS}
        op_sum = sum(group_ms.values()) if ops else None
        pred = errors.get((key, precision))
        size = entry.get("input_size") or (r.model_info and r.model_info.input_size) or key.partition("@")[2] or None
        rows.append(ModelRow(
            device=r.device, model=key, family=entry.get("model") or (r.model_info and r.model_info.name) or r.model,
            input_size=size_str(size) if size else None, precision=precision, threads=r.threads, macs=macs,
            latency_ms=lat, latency_source="interleaved" if lat != bench_p50 else "sweep", sweep_p50_ms=bench_p50,
            gmacs=gmacs, peak_gmacs=peak, pct_of_peak=100 * gmacs / peak if gmacs and peak else None,
            op_sum_ms=op_sum, predicted_ms=pred.predicted_ms if pred else None,
            prediction_error_pct=100 * pred.error if pred else None,
            shares={g: (group_ms[g] / op_sum) if op_sum else None for g in GROUPS}))
    rows.sort(key=lambda x: (x.device, x.precision, x.macs or 0, x.model))
    return rows


def fit_exponent(macs: list[float], latency: list[float]) -> PowerFit | None:
    """log(latency) = k log(MACs) + c by least squares; k = 1 is "latency proportional to MACs"."""
    pts = [(m, t) for m, t in zip(macs, latency) if m and t and m > 0 and t > 0]
    if len(pts) < 2 or len({p[0] for p in pts}) < 2:
        return None
    x = np.log([p[0] for p in pts])
    y = np.log([p[1] for p in pts])
    k, c = np.polyfit(x, y, 1)
    resid = y - (k * x + c)
    ss = float(np.sum((y - y.mean()) ** 2))
    return PowerFit(float(k), float(c), 1 - float(np.sum(resid ** 2)) / ss if ss else 1.0, len(pts))


def exponents(rows: list[ModelRow]) -> list[Exponent]:
    """Fitted exponents per precision: over every model, and over the g=3 width series (0.25x..2x)."""
    out = []
    for precision in sorted({r.precision for r in rows}):
        sel = [r for r in rows if r.precision == precision and r.input_size == main_size(rows)]
        width = [r for r in sel if r.family.startswith("shufflenet_v1_g3_") and r.family.endswith("x")]
        for scope, group in (("all models", sel), ("ShuffleNet v1 g=3 widths", width)):
            fit = fit_exponent([r.macs for r in group], [r.latency_ms for r in group])
            if fit:
                out.append(Exponent(precision, scope, fit))
    return out


def main_size(rows: list[ModelRow]) -> str:
    sizes = [r.input_size for r in rows]
    return max(set(sizes), key=sizes.count) if sizes else "224"


def speedup_table(rows: list[ModelRow]) -> list[Speedup]:
    """The paper's form: theoretical (MACs ratio) vs actual (latency ratio) speedups, ours beside Table 8's."""
    size = main_size(rows)
    lat = {(r.family, r.precision): r for r in rows if r.input_size == size}
    precisions = sorted({r.precision for r in rows})
    out = []
    for label, slow, fast in SPEEDUP_PAIRS:
        a = lat.get((slow, precisions[0])) or lat.get((slow, "fp32"))
        b = lat.get((fast, precisions[0])) or lat.get((fast, "fp32"))
        if not (a and b):
            continue
        actual = {}
        for p in precisions:
            x, y = lat.get((slow, p)), lat.get((fast, p))
            actual[p] = x.latency_ms / y.latency_ms if x and y else None
        paper_a, paper_b = PAPER_TABLE8.get(slow), PAPER_TABLE8.get(fast)
        paper = ((paper_a[0] / paper_b[0], paper_a[1]["224x224"] / paper_b[1]["224x224"]) if paper_a and paper_b
                 else (None, None))
        out.append(Speedup(label, slow, fast, a.macs / b.macs, actual, *paper))
    # int8 vs fp32: the "theoretical" speedup is what the device's own peak kernels promise (peak int8 / fp32)
    if "fp32" in precisions and "int8" in precisions:
        pairs = [(lat[(f, "fp32")], lat[(f, "int8")]) for f, p in lat if p == "fp32" and (f, "int8") in lat]
        ref = lat.get((REFERENCE, "fp32")), lat.get((REFERENCE, "int8"))
        for label, chosen in (("int8 vs fp32, ShuffleNet 1x g=3", [ref] if all(ref) else []),
                              ("int8 vs fp32, geometric mean of all models", pairs)):
            if not chosen:
                continue
            f32, i8 = chosen[0]
            theo = (i8.peak_gmacs / f32.peak_gmacs) if i8.peak_gmacs and f32.peak_gmacs else None
            ratio = math.exp(np.mean([math.log(f.latency_ms / i.latency_ms) for f, i in chosen]))
            out.append(Speedup(label, "fp32", "int8", theo, {p: (ratio if p == "int8" else None) for p in precisions},
                               note="theoretical = measured peak int8 / peak fp32 GMAC/s; actual = fp32 ms / int8 ms"))
    return out


# What the papers say of a pair whose MACs are equal (Table 8 has no time for g=8)
EQUAL_MACS_PAPER = {
    ("shufflenet_v1_g8_1.0x", "shufflenet_v1_g3_1.0x"):
        "the paper: g=3 is the practical choice, g=8 less efficient in practice; ShuffleNet v2 measured g=8 up "
        "to 30% slower than g=1 on ARM at equal FLOPs",
}


def paper_answer(rows: list[ModelRow]) -> list[str]:
    """The paper's question in one line per measured pair of its models (speedup_table's rows): how many times
    fewer MACs, how many times faster here, and what the paper measured on ARM."""
    lines = []
    for row in speedup_table(rows):
        if row.slower == "fp32":  # int8 vs fp32 has no MACs ratio: the bench's own lines explain it
            continue
        slow, fast, theo = _short(row.slower), _short(row.faster), row.theoretical
        for precision, actual in row.actual.items():
            if not actual:
                continue
            on = f"{row.comparison}, {precision}: "
            if theo >= 1.2:
                said = (f"{theo:.1f}x fewer MACs -> {actual:.1f}x faster here")
                paper = (f"the paper: {row.paper_theoretical:.1f}x -> {row.paper_actual_sd820:.1f}x on a "
                         f"Snapdragon 820; ~2.6x per 4x fewer FLOPs on ARM" if row.paper_actual_sd820
                         else "the paper: ~2.6x faster per 4x fewer FLOPs on ARM")
            else:
                speed = (f"{slow} takes {actual:.2f}x the time of {fast}" if actual >= 1
                         else f"{slow} is {1 / actual:.2f}x faster than {fast}")
                said = f"equal MACs (ratio {theo:.2f}) -> {speed} here"
                paper = EQUAL_MACS_PAPER.get((row.slower, row.faster), "the paper has no figure for this pair")
            lines.append(f"{on}{said} ({paper})")
    return lines


def where_time_goes(fvt: FlopsVsTime, at_least: float = 0.03) -> str:
    """flops_vs_time's answer in one line: each op group's share of the MACs and of the time, by time, largest
    first (groups under AT_LEAST of both are left out)."""
    from ..tflite.ops import GROUP_LABELS

    parts = [f"{GROUP_LABELS[g]} {100 * fvt.flops_share.get(g, 0):.0f}% of MACs, "
             f"{100 * fvt.time_share.get(g, 0):.0f}% of time"
             for g in sorted(GROUPS, key=lambda g: -fvt.time_share.get(g, 0))
             if max(fvt.time_share.get(g, 0), fvt.flops_share.get(g, 0)) >= at_least]
    return f"{_short(fvt.model)} {fvt.precision}, where the time goes: " + "; ".join(parts)


def _short(model: str) -> str:
    """shufflenet_v1_g8_1.0x -> v1 g8 1.0x (the family prefix says nothing in a line about two ShuffleNets)."""
    return model.replace("shufflenet_", "").replace("_", " ")


def flops_vs_time(doc: ResultsDocument, key: str | None = None, precision: str | None = None) -> FlopsVsTime | None:
    """Where the FLOPs go (complexity.py per layer, grouped) vs where the time goes (per-op time shares): of
    PRECISION, else of fp32 where the results have it, else of the first precision they have (an int8-only sweep)."""
    for p in [precision] if precision else ["fp32", *sorted({r.precision for r in doc.results} - {"fp32"})]:
        found = _flops_vs_time(doc, key, p)
        if found:
            return found
    return None


def _flops_vs_time(doc: ResultsDocument, key: str | None, precision: str) -> FlopsVsTime | None:
    own = {r.key: r for r in doc.results if r.precision == precision and r.op_times}
    candidates = [key] if key else [REFERENCE] + sorted(doc.models) + sorted(own)
    for k in candidates:
        entry = doc.models.get(k)
        if not entry and k in own:  # a `sdeploy bench --op-profile` result: MACs per group from its own graph
            ops = own[k].op_times.get("ops") or []
            entry = {"flops_by_group": macs_by_group(ops), "precisions": {precision: own[k].op_times}}
        if not entry:
            continue
        ops = (entry.get("precisions", {}).get(precision) or {}).get("ops")
        by_group = entry.get("flops_by_group") or (macs_by_group(ops) if ops else None)  # a non-zoo model: its ops
        if not ops or not by_group:
            continue
        time_ms = {g: sum(o["time_ms"] for o in ops if o.get("group") == g and o.get("time_ms") is not None)
                   for g in GROUPS}
        flops = {g: by_group.get(g, 0) for g in GROUPS}
        other: dict[str, float] = {}
        folded = [o for o in ops if o.get("fused_into") is not None]
        for o in ops:
            if o.get("group") == "other" and o.get("time_ms") is not None and o.get("fused_into") is None:
                other[o["op"]] = other.get(o["op"], 0.0) + o["time_ms"]
        return FlopsVsTime(model=k, precision=precision, flops=flops, flops_share=shares(flops),
                           other_ops_ms=dict(sorted(other.items(), key=lambda kv: -kv[1])), folded_pads=len(folded),
                           folded_pads_alone_ms=sum(o.get("raw_ms") or 0.0 for o in folded), time_ms=time_ms,
                           time_share=shares(time_ms), op_method=(entry["precisions"][precision]).get("op_method"))
    return None


def flops_vs_time_each(doc: ResultsDocument) -> list[FlopsVsTime]:
    """flops_vs_time for every result that carries its own per-op times (`sdeploy bench --op-profile`)."""
    out = []
    for r in doc.results:
        if r.op_times and not doc.models.get(r.key):
            fvt = flops_vs_time(doc, r.key, r.precision)
            if fvt:
                out.append(replace(fvt, threads=r.threads))
    return out


def device_lines(doc: ResultsDocument) -> list[str]:
    """Per device: its CPU facts, and int8 vs fp32 with the ISA fact that explains it (bench/efficiency.py)."""
    from ..bench.efficiency import cpu_line, int8_vs_fp32

    lines = []
    for device in doc.devices():
        results = [r for r in doc.results if r.device == device]
        facts = next((r.device_facts for r in results if r.device_facts), None)
        lines.append(f"{device}: {cpu_line(facts)}")
        for row in int8_vs_fp32(results, facts):
            lines.append(f"{device} {row.model_key} t={row.threads}: {row.explanation}")
    return lines


def prediction_summary(evaluation: list[Evaluation] | tuple[Evaluation, ...]) -> PredictionSummary:
    """The predictor's stored leave-one-out evaluation (predict.fit) summarised for the report."""
    errs = [abs(e.error) for e in evaluation]
    return PredictionSummary(tuple(evaluation), len(evaluation),
                             within_10pct=sum(e <= 0.10 for e in errs) / len(errs) if errs else None,
                             median_abs_error=float(np.median(errs)) if errs else None,
                             max_abs_error=max(errs) if errs else None)


def cross_device(doc: ResultsDocument, rows: list[ModelRow], speedups: dict[str, list[Speedup]],
                 predictions: dict[str, PredictionSummary]) -> CrossDevice | None:
    """The fleet side by side, from each device's own rows (model_rows of its own document), its speedup_table
    and its prediction_summary: the paper-form speedups with one column per device, latency per model, per-op
    time shares, the predictor's accuracy, each device's CPU facts, and where devices disagree (a speedup that
    differs by more than 25% between two devices). None for a one-device document."""
    from ..devices.cpuinfo import summary

    devices = sorted({r.device for r in rows})  # a device with only a peak (stopped early) has no column
    if len(devices) < 2:
        return None
    facts, cores = {}, {}
    for device in devices:
        found = next((r.device_facts for r in doc.results if r.device == device and r.device_facts), None)
        facts[device] = summary(found) if found else "CPU facts unknown"
        cores[device] = "/".join(dict.fromkeys(c.get("name") or "?" for c in (found or {}).get("clusters") or [])) or "?"
    # per-device values are gathered under each row's key first; the frozen rows are made from them once
    latency: dict[tuple, dict[str, float | None]] = {}
    macs: dict[tuple, int | None] = {}
    op_shares: dict[tuple, dict[str, float]] = {}
    for r in rows:
        latency.setdefault((r.model, r.precision, r.threads), {})[r.device] = r.latency_ms
        macs.setdefault((r.model, r.precision, r.threads), r.macs)
        for g in GROUPS:
            if r.share(g) is not None:
                op_shares.setdefault((r.model, r.precision, GROUPS.index(g)), {})[r.device] = r.share(g)
    actual: dict[tuple[str, str], dict[str, float | None]] = {}
    theoretical: dict[tuple[str, str], dict[str, float | None]] = {}
    for device in devices:
        for s in speedups.get(device, []):
            int8_vs_fp32 = s.comparison.startswith("int8 vs fp32")
            for precision in ["int8"] if int8_vs_fp32 else sorted(s.actual):
                if s.actual.get(precision) is None:
                    continue
                label = s.comparison if int8_vs_fp32 else f"{s.comparison}, {precision}"
                actual.setdefault((label, precision), {})[device] = s.actual[precision]
                theoretical.setdefault((label, precision), {})[device] = s.theoretical
    table = [DeviceSpeedups(label, precision, theoretical[label, precision], values)
             for (label, precision), values in actual.items()]
    disagreements = []
    for row in table:
        values = {d: v for d, v in row.actual.items() if v}
        if len(values) < 2:
            continue
        hi, lo = max(values, key=values.get), min(values, key=values.get)
        if values[hi] / values[lo] > 1.25:
            disagreements.append(Disagreement(row.comparison, hi, values[hi], lo, values[lo],
                                              f"{row.comparison}: {values[hi]:.2f}x on {hi} ({cores[hi]}), "
                                              f"{values[lo]:.2f}x on {lo} ({cores[lo]})"))
    return CrossDevice(devices, facts, cores, table,
                       [DeviceLatencies(*key, macs[key], ms) for key, ms in latency.items()],
                       [DeviceShares(key[0], key[1], GROUPS[key[2]], op_shares[key]) for key in sorted(op_shares)],
                       {d: predictions[d] for d in devices}, disagreements)
