"""`sdeploy quant-report EXPORT`: the int8 error along the network's depth, from the export's manifest (or
re-measured on the user's own images with --data), as a plot, a CSV and a Markdown page.

Reads only the manifest (through `Manifest`) and, with --data, the two TFLite files it lists; no TensorFlow, so it
runs on the base install and on a board.
"""
from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from ..errors import UserError
from ..escape import csv_cell, md_cell
from ..fileio import staged_outputs
from ..int8_records import LayerRow
from ..manifest import Manifest

CSV_COLUMNS = ("depth", "op", "tensor", "scale", "zero_point", "snr_db", "snr_drop_db", "rmse_rel", "clipped",
               "fp32_min", "fp32_max", "int8_min", "int8_max")


@dataclass(frozen=True)
class LayerTable:
    """The per-layer int8 error rows (the manifest's `int8_layers` shape: export/int8_layers.py owns it) and what
    they were measured on, which the plot title and the page repeat."""
    rows: list[LayerRow]
    measured_on: str


@dataclass(frozen=True)
class QuantReportFiles:
    """The three files write_report puts in its folder."""
    csv: Path
    png: Path
    markdown: Path


def layer_rows(manifest: Manifest, data: Path | None = None) -> LayerTable:
    """The rows and what they were measured on: the stored table, or a new one on DATA's images."""
    if data is None:
        rows = manifest.int8_layers
        if not rows:
            raise UserError(f"{manifest.folder / 'manifest.json'} has no per-layer int8 table (an fp32-only export, "
                            "or one made before sdeploy measured it)",
                            "re-export with int8, or pass --data DIR to measure it on your images")
        return LayerTable(rows, manifest.int8_layers_measured_on)
    import numpy as np

    from ..data.folders import scan_images
    from ..export.int8_layers import layer_errors

    pre = manifest.preprocessing
    found = scan_images(Path(data), min_size=min(pre.hw), what="--data folder")
    if not len(found):
        raise UserError(f"--data {data} holds no readable images", "pass a folder of JPEG/PNG images")
    paths = found.paths[:64]
    x = np.ascontiguousarray(pre.load_batch(paths).transpose(0, 2, 3, 1))
    fp32, int8 = manifest.artifact("fp32"), manifest.artifact("int8")
    return LayerTable(layer_errors(fp32.path, int8.path, x), f"{len(paths)} images of {data}")


def write_report(manifest: Manifest, table: LayerTable, outdir: Path) -> QuantReportFiles:
    """quant_layers.csv, quant_layers.png and quant_report.md in OUTDIR, all three or none (fileio.staged_outputs);
    returns their paths."""
    outdir = Path(outdir)
    with staged_outputs(outdir) as stage:
        _write_files(manifest, table.rows, table.measured_on, stage)
    return QuantReportFiles(outdir / "quant_layers.csv", outdir / "quant_layers.png", outdir / "quant_report.md")


def _write_files(manifest: Manifest, rows: list[LayerRow], measured_on: str, outdir: Path) -> None:
    from ..export.int8_layers import summary_line, worst

    with open(outdir / "quant_layers.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=CSV_COLUMNS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows({k: csv_cell(v) for k, v in row.to_dict().items()} for row in rows)
    _plot(rows, f"{manifest.key}: int8 vs fp32 along depth ({measured_on})", outdir / "quant_layers.png")
    lines = [f"# int8 error per layer: {md_cell(manifest.key)}", "",
             f"Measured on {md_cell(measured_on)}: each quantized tensor of "
             "the int8 TFLite against the same tensor of the fp32 TFLite (accumulated error).", "",
             "![int8 error along depth](quant_layers.png)", "", "## Worst computing layers", ""]
    lines += [f"- {md_cell(summary_line(r))}" for r in worst(rows, 8)]
    repair = manifest.int8_repair
    if repair is not None and repair.attempts:
        lines += ["", "## " + md_cell(f"int8 repair (target {repair.target.text()}, on {repair.evaluated_on})"), "",
                  "| step | calibration | ranges | float layers | agreement | top-1 drop | latency here (ms) | "
                  "XNNPACK partitions | met |", "|---|---|---|---|---|---|---|---|---|"]
        for a in repair.attempts:
            drop = "–" if a.check.drop is None else f"{100 * a.check.drop:.2f} pt"
            lines.append(f"| {md_cell(a.step)}{' (applied)' if a.step == repair.applied else ''} | "
                         f"{a.calibration} | {md_cell(a.ranges)} | {len(a.float_layers)} | "
                         f"{100 * a.check.agreement:.2f}% | {drop} | {a.latency_ms:.3f} | "
                         f"{a.xnnpack_partitions} | {'yes' if a.met else 'no'} |")
    (outdir / "quant_report.md").write_text("\n".join(lines) + "\n")


def _plot(rows: list[LayerRow], title: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..export.int8_layers import DATA_MOVEMENT

    shown = [r for r in rows if r.matched and r.op not in DATA_MOVEMENT]
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(10, 6), sharex=True, gridspec_kw={"height_ratios": [2, 1]})
    depth = [r.depth for r in shown]
    ax1.plot(depth, [r.snr_db for r in shown], "-", color="#888", lw=0.8)
    for op, color in (("CONV_2D", "#1f77b4"), ("DEPTHWISE_CONV_2D", "#2ca02c"), ("FULLY_CONNECTED", "#d62728"),
                      ("ADD", "#9467bd")):
        pts = [r for r in shown if r.op == op]
        ax1.scatter([r.depth for r in pts], [r.snr_db for r in pts], s=14, color=color, label=op, zorder=3)
    others = [r for r in shown if r.op not in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "ADD")]
    ax1.scatter([r.depth for r in others], [r.snr_db for r in others], s=10, color="#aaa", label="other",
                zorder=3)
    ax1.set_ylabel("SNR vs fp32 (dB)")
    ax1.legend(fontsize=7, ncol=5, loc="lower left")
    ax1.set_title(title, fontsize=9)
    ax2.bar(depth, [100 * r.clipped for r in shown], color="#d62728", width=0.8)
    ax2.set_ylabel("clipped (%)")
    ax2.set_xlabel("op index in the int8 graph (depth)")
    fig.tight_layout()
    fig.savefig(path, dpi=110, format="png")
    plt.close(fig)
