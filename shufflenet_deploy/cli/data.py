"""`sdeploy data digits -o DIR`: write the bundled real dataset as an ImageFolder."""
from __future__ import annotations

from pathlib import Path

import click


@click.group()
def data():
    """Bundled datasets."""


@data.command()
@click.option("-o", "--outdir", type=click.Path(path_type=Path), required=True)
@click.option("--size", default=64, show_default=True, help="Image size in pixels.")
@click.option("--force", is_flag=True, help="Replace OUTDIR if it is a digits folder sdeploy wrote.")
def digits(outdir, size, force):
    """scikit-learn's handwritten digits as train/val/calib ImageFolders of RGB PNGs."""
    from ..data.digits import write_digits

    root = write_digits(outdir, size, force=force)
    counts = {split: sum(1 for _ in (root / split).rglob("*.png")) for split in ("train", "val", "calib")}
    click.echo(f"wrote {root}: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
