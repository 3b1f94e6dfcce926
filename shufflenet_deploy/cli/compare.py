"""`sdeploy compare BASE NEW`: the latency-regression gate (shufflenet_deploy/bench/compare.py)."""
from __future__ import annotations

import json
from pathlib import Path

import click


@click.command()
@click.argument("base", type=click.Path(path_type=Path))
@click.argument("new", type=click.Path(path_type=Path))
@click.option("--max-regression", type=click.FloatRange(0), default=5.0, show_default=True,
              help="percent slower (with the whole interval above 1) that counts as a regression")
@click.option("--allow-mixed", is_flag=True, help="pair what can be paired across devices/runtimes, saying so")
@click.option("--json", "as_json", is_flag=True)
@click.option("--markdown", "md_file", type=click.Path(dir_okay=False, path_type=Path),
              help="also write the Markdown table here (e.g. $GITHUB_STEP_SUMMARY)")
def compare(base, new, max_regression, allow_mixed, as_json, md_file):
    """Compare two bench results (folders or bench.json): faster / same / slower / regression; exit 1 on a
    regression."""
    from ..bench.compare import compare as run_compare, markdown
    from ..bench.results import read_results

    pairs, notes = run_compare(read_results(base), read_results(new), max_regression=max_regression / 100,
                               allow_mixed=allow_mixed)
    table = markdown(pairs, notes, max_regression / 100)
    if md_file:
        try:
            with open(md_file, "a") as fh:
                fh.write(table)
        except OSError as err:  # a full disk, a read-only mount, a missing folder, /proc: one line, not a traceback
            from ..errors import UserError

            raise UserError(f"cannot write --markdown {md_file}: {err.strerror or err}",
                            "pass a writable file (e.g. $GITHUB_STEP_SUMMARY)") from None
    if as_json:
        click.echo(json.dumps({"max_regression": max_regression / 100, "notes": notes,
                               "pairs": [p.to_dict() for p in pairs]}, indent=2))
    else:
        click.echo(table, nl=False)
    if any(p.verdict == "regression" for p in pairs):
        raise click.exceptions.Exit(1)
