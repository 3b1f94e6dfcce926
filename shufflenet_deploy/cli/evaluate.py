"""`sdeploy eval ARTIFACT_OR_OUTDIR --data DIR`."""
from __future__ import annotations

from pathlib import Path

import click

from .common import input_size as parse_size, print_json, status, stdout


@click.command("eval")
@click.argument("artifact", type=click.Path(path_type=Path))
@click.option("--data", required=True, help="Labelled ImageFolder tree, or 'digits' (the bundled val split).")
@click.option("--input-size", help="Side or height,width; must match a fixed-size artifact, resizes a checkpoint's.")
@click.option("--json", "as_json", is_flag=True)
def eval_cmd(artifact, data, input_size, as_json):
    """Top-1/top-5 accuracy of a checkpoint, an ONNX/TFLite file, or every artifact of an export folder."""
    from rich.table import Table

    from ..evaluate import evaluate

    with status("evaluating"):
        result = evaluate(artifact, data, input_size=parse_size(input_size)).to_dict()
    if as_json:
        print_json(result)
        return
    rows = result.get("rows") or [{"artifact": str(artifact), **result}]
    table = Table(title=f"accuracy on {result['data']}")
    for col in ("artifact", "top-1", "top-5", "Δ top-1", "top-1 agreement", "images"):
        table.add_column(col, justify="left" if col == "artifact" else "right")
    for row in rows:
        table.add_row(row["artifact"], f"{row['top1']:.2%}", f"{row['top5']:.2%}",
                      f"{row['delta_top1'] * 100:+.2f} pt" if "delta_top1" in row else "-",
                      f"{row['top1_agreement']:.2%}" if "top1_agreement" in row else "-", str(row["samples"]))
    stdout.print(table)
