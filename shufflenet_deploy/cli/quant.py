"""`sdeploy quant-report EXPORT`: where int8 loses accuracy, layer by layer (analysis/quant_report.py)."""
from __future__ import annotations

from pathlib import Path

import click

from .common import stdout


@click.command("quant-report")
@click.argument("export_dir", type=click.Path(path_type=Path))
@click.option("--data", type=click.Path(path_type=Path),
              help="measure on these images (a folder; first 64) instead of reading the export's stored table")
@click.option("-o", "--outdir", type=click.Path(path_type=Path), help="default: EXPORT/quant-report")
@click.option("--top", default=8, show_default=True, help="worst layers to print")
def quant_report(export_dir, data, outdir, top):
    """The int8 error of every quantized tensor along depth: SNR, RMSE, scale, clipping; plot, CSV, Markdown."""
    from ..analysis.quant_report import layer_rows, write_report
    from ..export.int8_layers import summary_line, worst
    from ..manifest import Manifest

    manifest = Manifest.load(export_dir)
    table = layer_rows(manifest, data)
    files = write_report(manifest, table, outdir or manifest.folder / "quant-report")
    stdout.print(f"{manifest.key}: {len(table.rows)} quantized tensors, measured on {table.measured_on}; worst:",
                 highlight=False)
    for row in worst(table.rows, top):
        stdout.print("  " + summary_line(row), highlight=False, soft_wrap=True)
    stdout.print(f"wrote {files.png}, {files.csv} and {files.markdown}", highlight=False)
