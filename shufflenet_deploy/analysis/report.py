"""`sdeploy report`: the gap report as HTML (self-contained: PNGs embedded as base64, also written beside it),
Markdown and CSV, built only from results JSON (analysis/gap.py computes every number).

Files in OUTDIR: report.html, report.md, models.csv (one row per device, model and precision), fastest.csv (the
file to ship per device, model and threads), speedups.csv,
op_shares.csv, flops_vs_time.csv, predictions.csv, exponents.csv, peak.csv (every row says its device) and the
PNGs (macs_vs_latency.png, efficiency.png, op_shares.png, flops_vs_time.png, prediction_error.png).

With results from several devices (one file per device, as a fleet sweep writes them) every device's numbers
come from its own document (gap.Documents.by_device: its own per-op times, interleaved latencies and predictor),
each device gets its own tables and plots (PLOT-DEVICE.png), and the "Across devices" tables come first: the
paper's speedups and the latencies with one column per device, where devices disagree, per-op time shares side
by side, and each device's predictor accuracy; plus devices.csv (the speedups and what each was promised, one
column per device) and macs_vs_latency_devices.png.
"""
from __future__ import annotations

import base64
import csv
import html
import os
from dataclasses import dataclass
from pathlib import Path

from ..bench.fastest import name_fastest
from ..errors import UserError
from ..escape import csv_cell, md_cell
from ..fileio import safe_component, staged_outputs
from ..tflite.ops import GROUP_LABELS, GROUPS
from . import gap, report_plots
from .predictor import Evaluation
from .rows import CrossDevice, DeviceSpeedups, Exponent


@dataclass(frozen=True)
class ReportSummary:
    """What `sdeploy report` says on stderr after writing: per device its exponents and predictor accuracy."""
    devices: list[str]
    rows: int  # model rows over all devices
    exponents: dict[str, list[Exponent]]  # device -> its fitted exponents
    within_10pct: dict[str, float | None]  # device -> share of its predictions within 10% (None: no predictor)
    no_peak: list[str]  # "DEVICE PRECISION" without a measured peak


@dataclass(frozen=True)
class WrittenReport:
    """The files written into OUTDIR and the summary of what they say."""
    files: list[Path]
    summary: ReportSummary


def build_report(paths: list[Path], outdir: Path, *, allow_mixed: bool = False,
                 title: str | None = None) -> WrittenReport:
    """Write the report files into OUTDIR, all or none (fileio.staged_outputs: a failure half-way leaves OUTDIR
    as it was); return their final paths and the summary."""
    docs = gap.load_documents(paths, allow_mixed=allow_mixed)  # bad input fails before anything is written
    outdir = Path(outdir)
    with staged_outputs(outdir) as stage:
        out = _write_report(docs, stage, title)
    return WrittenReport([outdir / f.name for f in out.files], out.summary)


def _write_report(docs, outdir: Path, title: str | None) -> WrittenReport:
    doc = docs.doc
    devices = [d for d in docs.devices if docs.by_device[d].results]  # not one stopped before its first model
    evaluations = predictor_evaluations(docs)
    parts = [_device_part(device, docs.by_device[device], evaluations.get(device, []), len(devices) > 1)
             for device in devices]
    rows = [r for part in parts for r in part["rows"]]
    files = []

    def write_csv(name, header, data):  # DATA: each row's CSV form (a row type's to_dict)
        path = outdir / name
        with open(path, "w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=header, extrasaction="ignore")
            w.writeheader()
            for row in data:
                w.writerow({k: _csv(row.get(k)) for k in header})
        files.append(path)

    def each_device(key):  # one CSV for all devices: every row says its device
        return [{"device": part["device"], **row.to_dict()} for part in parts for row in part[key]]

    model_cols = ["device", "model", "input_size", "precision", "threads", "macs", "latency_ms", "latency_source",
                  "sweep_p50_ms", "gmacs",
                  "peak_gmacs", "pct_of_peak", "op_sum_ms", "predicted_ms", "prediction_error_pct",
                  *[f"share_{g}" for g in GROUPS]]
    write_csv("models.csv", model_cols, [r.to_dict() for r in rows])
    speed_cols = ["device", "comparison", "slower", "faster", "theoretical",
                  *[f"actual_{p}" for p in sorted({r.precision for r in rows})], "paper_theoretical",
                  "paper_actual_sd820"]
    write_csv("speedups.csv", speed_cols, each_device("speed"))
    write_csv("exponents.csv", ["device", "precision", "scope", "k", "c", "r2", "n", "speedup_per_4x_macs"],
              each_device("exps"))
    write_csv("predictions.csv", ["device", "key", "precision", "measured_ms", "predicted_ms", "error", "lookup_ops",
                                  "regression_ops"],
              [{"device": part["device"], **e.to_dict()} for part in parts for e in part["pred"].evaluation])
    write_csv("peak.csv", ["device", "precision", "threads", "kernel", "macs", "median_ms", "gmacs"],
              [p for part in parts for p in part["peaks"]])
    write_csv("fastest.csv", ["device", "model", "threads", "artifact", "runtime", "precision", "p50_ms",
                              "runner_up", "margin", "tied", "why"],
              [f.to_dict() for part in parts for f in part["fastest"]])
    share_rows = [{"device": r.device, "model": r.model, "precision": r.precision, "group": g,
                   "share": r.share(g)} for r in rows for g in GROUPS if r.share(g) is not None]
    write_csv("op_shares.csv", ["device", "model", "precision", "group", "share"], share_rows)
    fvts = [(part["device"], part["fvt"]) for part in parts if part["fvt"]]
    if fvts:
        write_csv("flops_vs_time.csv", ["device", "model", "precision", "group", "macs", "flops_share", "time_ms",
                                        "time_share"],
                  [{"device": device, "model": f.model, "precision": f.precision, "group": g,
                    "macs": f.flops[g], "flops_share": f.flops_share[g], "time_ms": f.time_ms[g],
                    "time_share": f.time_share[g]} for device, f in fvts for g in GROUPS])

    across = gap.cross_device(doc, rows, {p["device"]: p["speed"] for p in parts},
                              {p["device"]: p["pred"] for p in parts})
    plots = {"macs_vs_latency_devices.png": report_plots.devices(rows) if across else None}
    for part in parts:
        plots.update(part["plots"])
    for name, png in plots.items():
        if png:
            (outdir / name).write_bytes(png)
            files.append(outdir / name)
    if across:
        write_csv("devices.csv", ["comparison", "precision", *across.devices,
                                  *[f"theoretical_{d}" for d in across.devices]],
                  [{"comparison": r.comparison, "precision": r.precision, **r.actual,
                    **{f"theoretical_{d}": v for d, v in r.theoretical.items()}} for r in across.speedups])
    ctx = {"across": across, "doc": doc, "parts": parts, "sources": docs.sources,
           "no_results": [d for d in docs.devices if d not in devices],
           "device_lines": gap.device_lines(doc), "plots": plots,
           "title": title or f"FLOPs vs speed on {', '.join(devices)}"}
    md = _markdown(ctx)
    (outdir / "report.md").write_text(md)
    (outdir / "report.html").write_text(_html(ctx))
    files += [outdir / "report.md", outdir / "report.html"]
    return WrittenReport(files, ReportSummary(devices, len(rows), {p["device"]: p["exps"] for p in parts},
                                              {p["device"]: p["pred"].within_10pct for p in parts},
                                              [n for part in parts for n in part["no_peak"]]))


def _device_part(device: str, doc, evaluation: list[Evaluation], many: bool) -> dict:
    """Everything the report says of one device, from that device's own document; with several devices the
    plots are named PLOT-DEVICE.png."""
    rows = gap.model_rows(doc, evaluation)
    exps = gap.exponents(rows)
    each = gap.flops_vs_time_each(doc)
    fvt = gap.flops_vs_time(doc) or (each[0] if each else None)
    pred = gap.prediction_summary(evaluation)
    no_peak = [f"{device} {p}" for p in sorted({r.precision for r in rows})
               if not any(r.peak_gmacs for r in rows if r.precision == p)]
    suffix = f"-{safe_component(device)}" if many else ""
    names = {role: f"{role}{suffix}.png" for role in ("macs_vs_latency", "efficiency", "op_shares", "flops_vs_time",
                                                      "prediction_error")}
    plots = {names["macs_vs_latency"]: report_plots.macs_latency(rows, exps),
             names["efficiency"]: report_plots.efficiency(rows), names["op_shares"]: report_plots.shares(rows),
             names["flops_vs_time"]: report_plots.flops_vs_time(fvt) if fvt else None,
             names["prediction_error"]: report_plots.prediction_error(pred) if pred.n else None}
    return {"device": device, "doc": doc, "rows": rows, "fastest": name_fastest(doc.results), "exps": exps, "speed": gap.speedup_table(rows),
            "fvt": fvt, "each": each, "pred": pred, "peaks": list(doc.peak) or _result_peaks(doc),
            "no_peak": no_peak, "plots": plots, "plot_names": names, "many": many}


def _result_peaks(doc) -> list[dict]:
    """The peaks `sdeploy bench` results carry (one per device, precision and threads), for the peak table."""
    seen = {}
    for r in doc.results:
        if r.peak_gmacs:
            seen[(r.device, r.precision, r.threads)] = {
                "device": r.device, "precision": r.precision, "threads": r.threads, "macs": None,
                "kernel": "best of bench/peak.py's kernels (cached per device)", "median_ms": None,
                "gmacs": r.peak_gmacs}
    return [seen[k] for k in sorted(seen)]


def predictor_evaluations(docs) -> dict[str, list[Evaluation]]:
    """Per device, the leave-one-out evaluation of the predictor `sdeploy sweep` stored beside its results
    (predictor-DEVICE.json); without a stored one, that device's predictor is fitted here from its own document
    (if it holds per-op timings at all)."""
    from . import predict

    out = {}
    for device in docs.devices:
        stored = [path for source in docs.device_sources.get(device, [])
                  if os.path.lexists(path := Path(source).parent / f"predictor-{device}.json")]  # broken link: 1 line
        evaluation = [e for path in stored for e in predict.load_predictor(path).evaluation]
        if not stored:
            try:
                evaluation = list(predict.fit(docs.by_device[device]).evaluation)
            except UserError:  # no per-op timings (a plain `sdeploy bench` result): no predictor section
                evaluation = []
        out[device] = evaluation
    return out


def _csv(v):
    if isinstance(v, float):
        return repr(v)  # full precision: the tests compare these to the JSON
    return "" if v is None else csv_cell(v)


def _f(v, digits=2, suffix=""):
    return "—" if v is None else f"{v:.{digits}f}{suffix}"


# ---- text ----------------------------------------------------------------------------------------------------
Table = tuple[str, list[str], list[list[str]], str, list[str]]  # heading, header, rows, note, plots shown with it


def _tables(ctx) -> list[Table]:
    """The tables of both the Markdown and the HTML: the fleet side by side first (several devices), then each
    device's own tables."""
    out = _across_tables(ctx["across"]) if ctx["across"] else []
    for part in ctx["parts"]:
        out += _device_tables(part)
    return out


def _promise_and_actuals(row: DeviceSpeedups, devs: list[str]) -> list[str]:
    """The MACs-ratio cell and one cell per device. The FLOP count promises every device the same; int8 vs fp32
    is promised by each device's own peak kernels (27x on this AMX host, far less on an ARM core without int8 dot
    product), so one shared cell would state one device's promise for all of them."""
    promised = {d: v for d, v in row.theoretical.items() if v}
    actual = [_f(row.actual.get(d), 2, "x") for d in devs]
    if len({round(v, 6) for v in promised.values()}) <= 1:
        return [_f(next(iter(promised.values()), None), 2, "x"), *actual]
    return ["per device", *[a if a == "—" or d not in promised else f"{a} (of {_f(promised[d], 2, 'x')})"
                            for a, d in zip(actual, devs)]]


def _across_tables(across: CrossDevice) -> list[Table]:
    devs = across.devices
    pct = lambda v: _f(100 * v, 1, "%") if v is not None else "—"  # noqa: E731
    out = [("Across devices: the paper's speedups, one column per device",
            ["comparison", "MACs ratio", *devs],
            [[r.comparison, *_promise_and_actuals(r, devs)] for r in across.speedups]
            or [["—", "—", *["no pair of the paper's models measured at one size" for _ in devs]]],
            "Devices: " + "; ".join(f"{d}: {across.facts[d]}" for d in devs) + ". Actual = latency "
            "ratio measured on that device, at the size most of its models ran at; MACs ratio = what the FLOP "
            "count promises. int8 vs fp32 has no FLOP ratio: its promise is each device's own measured peak int8 "
            "/ fp32 GMAC/s, given as \"(of Nx)\" in the device's cell when the devices' peaks differ.", []),
           ("Across devices: latency per model (ms), one column per device",
            ["model", "precision", "threads", "MACs (M)", *[f"{d} ({across.cores[d]})" for d in devs]],
            [[e.model, e.precision, str(e.threads), _f(e.macs / 1e6 if e.macs else None, 1),
              *[_f(e.ms.get(d), 3) for d in devs]] for e in across.latency], "",
            ["macs_vs_latency_devices.png"]),
           ("Where devices disagree (a speedup differing by more than 25%)", ["comparison", "where"],
            [[d.comparison, d.text.split(": ", 1)[1]] for d in across.disagreements]
            or [["—", "the devices agree within 25% on every comparison"]], "", [])]
    if across.op_shares:
        out.append(("Across devices: where the time goes (share of the summed per-op time)",
                    ["model", "precision", "op group", *devs],
                    [[s.model, s.precision, GROUP_LABELS[s.group], *[pct(s.share.get(d)) for d in devs]]
                     for s in across.op_shares if any(s.share.values())],
                    "Each device's own per-op times (its sweep's single-op models, or benchmark_model's op "
                    "profile); a group whose share moves between devices is where their kernels differ.", []))
    out.append(("Across devices: the latency predictor, fitted and evaluated per device",
                ["device", "models predicted", "within ±10%", "median |error|", "max |error|"],
                [[d, str(p.n), pct(p.within_10pct), pct(p.median_abs_error), pct(p.max_abs_error)]
                 for d, p in across.predictor.items()],
                "Each device's predictor is built from that device's measurements only and evaluated leave-one-out "
                "on them (analysis/predict.py); no device's numbers predict another's.", []))
    return out


def _device_tables(part) -> list[Table]:
    """One device's tables; with several devices each heading names the device."""
    rows, exps, speed, fvt, pred = part["rows"], part["exps"], part["speed"], part["fvt"], part["pred"]
    on = f" — {part['device']}" if part["many"] else ""
    plot = part["plot_names"]
    precisions = sorted({r.precision for r in rows})
    out = [(f"Which file to ship{on}", ["model", "threads", "fastest", "runtime", "median ms", "runner-up", "margin",
                                          "why"],
            [[f.model, str(f.threads), f"{f.precision} {f.artifact}", f.runtime, _f(f.p50_ms, 3), f.runner_up or "—",
              "within noise" if f.tied else _f(100 * f.margin, 1, "%") if f.margin is not None else "—", f.why]
             for f in part["fastest"]],
            "Per model and thread count, the fastest artifact measured (every file an export ships passed its "
            "parity and int8 checks); margin = the runner-up's median over it, \"within noise\" when the two "
            "medians' 95% intervals overlap (bench/fastest.py).", [])] if part["fastest"] else []
    peak_note = ("Peak = the faster of a 1x1 conv (56x56x256->256) and a 64x1024x1024 matmul, measured on the "
                 "device through the same runtime (runner.py); a model whose convs suit the kernels better than "
                 "those two (MobileNet's wide 1x1 convs) can come out slightly above 100%.")
    if part["no_peak"]:
        peak_note += " No measured peak for: " + ", ".join(part["no_peak"]) + " — % of peak is omitted there."
    out.append((f"Latency, MACs and efficiency{on}",
                ["model", "size", "precision", "MACs (M)", "median ms", "GMAC/s", "% of peak", "predicted ms",
                 "pred. error", "sweep p50 ms"],
                [[r.model, str(r.input_size), r.precision, _f(r.macs / 1e6 if r.macs else None, 1),
                  _f(r.latency_ms, 3), _f(r.gmacs, 2), _f(r.pct_of_peak, 1, "%") if r.peak_gmacs
                  else "no measured peak", _f(r.predicted_ms, 3), _f(r.prediction_error_pct, 1, "%"),
                  _f(r.sweep_p50_ms, 3)]
                 for r in rows], _latency_note(rows) + " " + peak_note,
                [plot["macs_vs_latency"], plot["efficiency"]]))
    out.append((f"Measured peak{on}", ["device", "precision", "kernel", "median ms", "GMAC/s"],
                [[p["device"], p["precision"], p["kernel"], _f(p["median_ms"], 3), _f(p["gmacs"], 1)]
                 for p in part["peaks"]] or [["—", "—", "no measured peak", "—", "—"]], "", []))
    out.append((f"Fitted exponent (latency ∝ MACs^k){on}", ["precision", "scope", "k", "R²", "n",
                                                          "speedup per 4x fewer MACs"],
                [[e.precision, e.scope, _f(e.fit.k, 3), _f(e.fit.r2, 3), str(e.fit.n),
                  _f(e.speedup_per_4x_macs, 2, "x")] for e in exps],
                "k = 1 would mean latency proportional to MACs (4x fewer MACs -> 4x faster). The paper's "
                "~2.6x per 4x corresponds to k ≈ 0.69.", []))
    out.append((f"Theoretical vs actual speedup (the paper's form){on}",
                ["comparison", "theoretical (MACs ratio)", *[f"actual {p}" for p in precisions],
                 "paper theoretical", "paper actual (Snapdragon 820)"],
                [[s.comparison, _f(s.theoretical, 2, "x"), *[_f(s.actual.get(p), 2, "x") for p in precisions],
                  _f(s.paper_theoretical, 2, "x"), _f(s.paper_actual_sd820, 2, "x")] for s in speed],
                "Actual = latency of the slower / latency of the faster (median ms, same run). Paper: ShuffleNet "
                "v1 Table 8, single thread, 224x224; MFLOPs 38/140/524 (0.5x/1x/2x g3), 569 (MobileNet v1). "
                "int8 rows: theoretical = measured peak int8 / peak fp32 GMAC/s; the paper has no int8 figure.", []))
    out.append((f"Per-op-type time share{on}", ["model", "precision", *[GROUP_LABELS[g] for g in GROUPS],
                                                 "Σ ops / whole model"],
                [[r.model, r.precision, *[_f(100 * r.share(g), 1, "%") if r.share(g) is not None else "—"
                                          for g in GROUPS],
                  _f(r.op_sum_ms / r.latency_ms if r.op_sum_ms and r.latency_ms else None, 2)]
                 for r in rows if r.op_sum_ms],
                "Method: " + (part["doc"].sweep.get("op_method") or next(
                    (r.op_times.get("op_method") for r in part["doc"].results if r.op_times), None) or "—")
                + ". Shares are of the summed per-op "
                "times; the last column compares that sum with the whole-model latency.", [plot["op_shares"]]))
    for one in ([fvt] if fvt and not part["each"] else []) + part["each"]:
        out.append((f"Where the FLOPs go vs where the time goes: {one.model} {one.precision}{on}",
                    ["group", "MACs (M)", "share of MACs", "time (ms)", "share of time"],
                    [[GROUP_LABELS[g], _f(one.flops[g] / 1e6, 2), _f(100 * one.flops_share[g], 1, "%"),
                      _f(one.time_ms[g], 3), _f(100 * one.time_share[g], 1, "%")] for g in GROUPS],
                    "MACs from complexity.py per layer (conv + FC; a bench result's from its TFLite graph's ops), "
                    "grouped like the TFLite ops. \"other\" here: "
                    + (", ".join(f"{op} {ms:.3f} ms" for op, ms in one.other_ops_ms.items()) or "nothing")
                    + f". {one.folded_pads} zero PADs that XNNPACK folds into the next conv count 0 (timed alone "
                    f"they took {one.folded_pads_alone_ms:.3f} ms).",
                    [plot["flops_vs_time"]] if one is fvt else []))
    if pred.n:
        out.append((f"Latency predictor: leave-one-out error distribution{on}",
                    ["model", "precision", "measured ms", "predicted ms", "error"],
                    [[e.key, e.precision, _f(e.measured_ms, 3), _f(e.predicted_ms, 3),
                      _f(100 * e.error, 1, "%")] for e in pred.evaluation],
                    f"Within ±10%: {100 * pred.within_10pct:.1f}% of {pred.n} model/precision pairs "
                    f"(median |error| {100 * pred.median_abs_error:.1f}%, max {100 * pred.max_abs_error:.1f}%). "
                    "Each model is predicted by a predictor built without its own ops and latency: per-op times "
                    "(measured signature, else a regression on MACs and bytes per op type and kernel) summed, times "
                    "one in-graph/alone scale per precision fitted on the other models (analysis/predict.py).",
                    [plot["prediction_error"]]))
    return out


def _latency_note(rows) -> str:
    if any(r.latency_source == "interleaved" for r in rows):
        return ("median ms = the sweep's final interleaved pass (every model in ONE runner process, round-robin), "
                "used for every ratio, fit and prediction target below; sweep p50 ms = the model's own benchmark "
                "run (bench.json results), minutes apart from the others on a shared host.")
    return "median ms = the sweep's p50 per model."


def _headline(ctx) -> list[str]:
    lines = list(ctx["device_lines"])
    for part in ctx["parts"]:
        on = f"{part['device']}, " if part["many"] else ""
        for e in part["exps"]:
            lines.append(f"{on}{e.precision}, {e.scope}: latency ∝ MACs^{e.fit.k:.2f} (4x fewer MACs -> "
                         f"{e.speedup_per_4x_macs:.2f}x faster; the paper saw ~2.6x)")
        if part["pred"].n:
            lines.append(f"{on}predictor (leave-one-out): {100 * part['pred'].within_10pct:.0f}% of "
                         f"{part['pred'].n} within ±10% of measurement")
        for note in part["no_peak"]:
            lines.append(f"{note}: no measured peak")
    for d in (ctx["across"].disagreements if ctx["across"] else []):
        lines.append(f"devices disagree: {d.text}")
    for device in ctx["no_results"]:
        lines.append(f"{device}: no results yet (its sweep stopped before the first model; rerun it to resume)")
    for s in ctx["doc"].skipped:
        lines.append(f"skipped {s['key']}{' ' + s['precision'] if s.get('precision') else ''}: {s['reason']}")
    return lines


def _context_line(doc, sources) -> str:
    """Sources, CPU, threads, runs, graph, runtimes, calibration: from the sweep's block where a sweep wrote it,
    else from the results themselves (a plain `sdeploy bench`); a field nothing records is left out, not dashed."""
    sw, results = doc.sweep, doc.results
    tools = sw.get("tools") or {}
    info = [r.model_info for r in results if r.model_info]

    def joined(values) -> str | None:
        values = [str(v) for v in dict.fromkeys(v for v in values if v not in (None, ""))]
        return ", ".join(values) or None

    cpus = joined((r.cpu or {}).get("model") for r in results)
    threads = sw.get("threads") or joined(sorted({r.threads for r in results}))
    runs = sw.get("runs") or joined(sorted({r.runs for r in results if r.runs}))
    presets = sw.get("presets_used") or ([sw["preset"]] if sw.get("preset") else [])
    preset = ("" if set(presets) <= {"full"} else f" ({presets[0]} preset: a quick look, noisier)" if len(presets) == 1
              else f" (presets {', '.join(presets)}: some models measured with fewer runs)")
    runtime = joined(" ".join(str(v) for v in ((r.runtime or {}).get("name"), (r.runtime or {}).get("version")) if v)
                     for r in results) or (f"ai-edge-litert {tools['ai-edge-litert']}" if tools.get("ai-edge-litert")
                                           else None)
    converter = (f"onnx2tf {tools['onnx2tf']}" if tools.get("onnx2tf")
                 else joined(f"onnx2tf {i.converter['onnx2tf']}" for i in info if i.converter.get("onnx2tf")))
    fields = [("CPU", cpus), ("threads", threads), ("runs per model", f"{runs}{preset}" if runs else None),
              ("graph", sw.get("graph") or joined(i.graph for i in info)),
              ("runtime", joined([runtime, converter and f"converted by {converter}"])),
              ("int8 calibration", sw.get("calibration") or joined(i.calibration for i in info))]
    known = "; ".join(f"{name}: {value}" for name, value in fields if value)
    return f"Sources: {', '.join(map(str, sources))}." + (f" {known}." if known else "")


def _markdown(ctx) -> str:
    doc = ctx["doc"]
    out = [f"# {md_cell(ctx['title'])}", "", md_cell(_context_line(doc, ctx["sources"])), ""]
    out += [f"- {md_cell(line)}" for line in _headline(ctx)] + [""]
    for heading, header, body, note, _ in _tables(ctx):
        out += [f"## {md_cell(heading)}", "", "| " + " | ".join(map(md_cell, header)) + " |",
                "|" + "---|" * len(header)]
        out += ["| " + " | ".join(map(md_cell, row)) + " |" for row in body]
        out += ["", md_cell(note), ""] if note else [""]
    out += ["## Plots", ""] + [f"![{n}]({n})" for n, png in ctx["plots"].items() if png] + [""]
    return "\n".join(out)


def _html(ctx) -> str:
    e = html.escape
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{e(ctx['title'])}</title><style>"
             "body{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}"
             "table{border-collapse:collapse;margin:.5em 0 1.5em;font-size:13px}"
             "td,th{border:1px solid #ccc;padding:3px 7px;text-align:right}td:first-child,th:first-child"
             "{text-align:left}th{background:#f3f3f3}img{max-width:100%;border:1px solid #eee;margin:.5em 0}"
             ".note{color:#555;font-size:13px}</style></head><body>",
             f"<h1>{e(ctx['title'])}</h1>",
             f"<p class='note'>{e(_context_line(ctx['doc'], ctx['sources']))}</p><ul>"]
    parts += [f"<li>{e(line)}</li>" for line in _headline(ctx)]
    parts.append("</ul>")
    for heading, header, body, note, names in _tables(ctx):
        parts.append(f"<h2>{e(heading)}</h2>")
        for name in names:
            png = ctx["plots"].get(name)
            if png:
                parts.append(f"<img alt='{e(name)}' src='data:image/png;base64,{base64.b64encode(png).decode()}'>")
        parts.append("<table><tr>" + "".join(f"<th>{e(h)}</th>" for h in header) + "</tr>")
        parts += ["<tr>" + "".join(f"<td>{e(c)}</td>" for c in row) + "</tr>" for row in body]
        parts.append("</table>")
        if note:
            parts.append(f"<p class='note'>{e(note)}</p>")
    parts.append("</body></html>")
    return "\n".join(parts)
