"""`sdeploy demo` (what `make demo` runs): the main job on the bundled default model.

Exports the bundled trained ShuffleNet v1 g3 0.5x (digits, 64 px) to fp32 and int8 TFLite — calibrated on the
bundled calibration split, accuracy measured on the val split — then benchmarks both on `local` with per-op times,
prints the FLOPs gap (MACs, GMAC/s, % of this machine's measured peak, int8 vs fp32 and why) and writes the
report.
"""
from __future__ import annotations

from pathlib import Path

import click

from ..bundled import default_checkpoint
from ..errors import UserError


@click.command()
@click.option("-o", "--outdir", type=click.Path(path_type=Path), default=Path("demo_out"), show_default=True)
@click.option("--checkpoint", type=click.Path(path_type=Path), default=None,
              help="a checkpoint  [default: the bundled ShuffleNet v1 g3 0.5x, digits 64 px]")
@click.option("--runs", default=50, show_default=True)
@click.pass_context
def demo(ctx, outdir, checkpoint, runs):
    """Export the bundled trained ShuffleNet to int8 TFLite and benchmark it on this machine."""
    from ..extras import require
    from .bench import bench
    from .export import export

    require("export", "sdeploy demo")
    checkpoint = checkpoint or default_checkpoint()
    if not Path(checkpoint).exists():
        raise UserError(f"bundled model {checkpoint} is missing", "run `make models` to train it (a few minutes)")
    from ..analysis.report import build_report

    export_dir = outdir / "export"
    ctx.invoke(export, checkpoint=checkpoint, precision="fp32,int8", outdir=export_dir, force=True)
    ctx.invoke(bench, artifact=export_dir, device_name="local", runs=runs, threads=[1],
               outdir=outdir / "bench-local", op_profile=True)
    build_report([outdir / "bench-local"], outdir / "report", title="The bundled ShuffleNet on this machine")
    click.echo(f"report (MACs vs time per op, GMAC/s, % of peak, int8 vs fp32): {outdir / 'report' / 'report.html'}")
