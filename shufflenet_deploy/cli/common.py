"""Small helpers shared by the CLI commands: progress on stderr, JSON on stdout, comma lists."""
from __future__ import annotations

import json
from contextlib import contextmanager

import click
from rich.console import Console

def console(**options) -> Console:
    """A rich Console that prints text as it is: model, device and file names come from other people's files, and
    rich markup in one (`[/x]`) would raise, or restyle the output. Style with Text objects, never with markup."""
    return Console(markup=False, **options)


stderr = console(stderr=True)
stdout = console()


@contextmanager
def status(message: str, on=None):
    """A spinner on stderr (or the console ON) whose text the block updates by calling the yielded function. The
    text is a rich Text, never markup (a spinner parses a plain string as markup whatever the console says)."""
    from rich.text import Text

    with (on or stderr).status(Text(message)) as live:
        yield lambda text: live.update(Text(f"{text}…"))


def print_json(data) -> None:
    click.echo(json.dumps(data, indent=2, default=str))


def comma_list(value: str | None) -> list[str]:
    return [v.strip() for v in (value or "").split(",") if v.strip()]


def input_size(value, what: str = "--input-size"):
    """--input-size SIDE or H,W (also HxW) -> sizes.parse's canonical size (None stays None)."""
    from ..sizes import parse

    return None if value is None else parse(value, what)


def int_list(value: str | None, what: str) -> list[int]:
    try:
        return [int(v) for v in comma_list(value)]
    except ValueError:
        raise click.BadParameter(f"{what} must be comma-separated integers, e.g. 1,4") from None
