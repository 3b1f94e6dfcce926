"""`sdeploy zoo` and `sdeploy flops`: the model list and analytic complexity. Torch-free, so they print at once."""
from __future__ import annotations

import json

import click

from ..complexity import Complexity, count_complexity
from ..errors import UserError
from ..zoo.registry import list_models


def _m(value: float) -> str:
    return f"{value / 1e6:.2f}"


def _paper_cell(c: Complexity) -> str:
    paper = c.paper_comparison()
    return f"{paper.paper.macs_m:g} ({paper.paper.convention})" if paper else ""


def _console():
    """A rich console; at least 120 columns when piped, so tables stay readable in logs and files."""
    from .common import console as make_console

    console = make_console()
    return console if console.is_terminal else make_console(width=max(console.width, 120))


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON (a list of per-model summaries).")
@click.option("--pattern", help="Only names matching this fnmatch pattern, e.g. 'shufflenet_v1_g3_*'.")
def zoo(as_json: bool, pattern: str | None):
    """Every zoo model with its MACs (conv-only and conv+FC) and params at 224x224, beside the paper's figure."""
    names = list_models(pattern)
    if not names:
        raise UserError(f"no model matches {pattern!r}", "run `sdeploy zoo` to list them all")
    results = [count_complexity(name) for name in names]
    if as_json:
        click.echo(json.dumps([c.summary() for c in results], indent=2))
        return
    from rich.table import Table

    table = Table(title="sdeploy zoo: 224x224, MACs (multiply-adds) and params in millions")
    table.add_column("model", no_wrap=True)
    table.add_column("family")
    for header in ("MACs conv", "MACs conv+FC", "params", "paper"):
        table.add_column(header, justify="right")
    for c in results:
        table.add_row(c.model, c.summary()["family"], _m(c.macs_conv), _m(c.macs_total), _m(c.params), _paper_cell(c))
    _console().print(table)


@click.command()
@click.argument("model")
@click.option("--input-size", default="224", show_default=True, help="Input side, or height,width (e.g. 480,640).")
@click.option("--num-classes", default=1000, show_default=True, type=click.IntRange(min=1))
@click.option("--per-layer", is_flag=True, help="Add every conv/FC layer's shapes, MACs and params.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option("--paper", is_flag=True, help="Compare with the published figure in its convention.")
def flops(model: str, input_size: int, num_classes: int, per_layer: bool, as_json: bool, paper: bool):
    """Analytic MACs and parameters of MODEL (a zoo name, see `sdeploy zoo`)."""
    from ..sizes import as_hw, parse

    c = count_complexity(model, input_size=parse(input_size, minimum=1), num_classes=num_classes)
    if as_json:
        data = c.to_dict() if per_layer else c.summary()
        if paper:
            cmp = c.paper_comparison()
            data["paper_comparison"] = cmp.to_dict() if cmp else None
        click.echo(json.dumps(data, indent=2))
        return
    if per_layer:
        _print_layers(c)
    h, w = as_hw(c.input_size)
    click.echo(f"{c.model} at {h}x{w}, {num_classes} classes: "
               f"{_m(c.macs_conv)} M MACs conv-only, {_m(c.macs_total)} M conv+FC, {_m(c.params)} M params")
    if paper:
        click.echo(_paper_line(c))


def _paper_line(c: Complexity) -> str:
    cmp = c.paper_comparison()
    if cmp is None:
        return "paper: no published figure for this model at 224x224 with 1000 classes"
    verdict = "matches" if cmp.matches else "differs"
    return (f"paper: {cmp.paper.macs_m:g} M ({cmp.paper.convention}, {cmp.paper.source}); "
            f"ours in that convention {cmp.ours_m:.2f} M, {verdict} after rounding")


def _print_layers(c: Complexity) -> None:
    from rich.table import Table

    table = Table(title=f"{c.model} per layer (MACs in millions)")
    table.add_column("layer", no_wrap=True)
    for header in ("kind", "in", "out", "k", "s", "g", "MACs", "params+BN"):
        table.add_column(header, justify="left" if header in ("kind", "in", "out") else "right")
    for l in c.layers:
        table.add_row(l.name, l.kind, "x".join(map(str, l.in_shape)), "x".join(map(str, l.out_shape)), str(l.kernel),
                      str(l.stride), str(l.groups), _m(l.macs), str(l.params + l.bn_params))
    _console().print(table)
