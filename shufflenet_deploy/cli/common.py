"""Small helpers shared by the CLI commands: progress on stderr, JSON on stdout, comma lists."""
from __future__ import annotations

import json
from contextlib import contextmanager

import click
from rich.console import Console

stderr = Console(stderr=True)
stdout = Console()


@contextmanager
def status(message: str):
    """A spinner on stderr whose text the block updates by calling the yielded function."""
    with stderr.status(message) as live:
        yield lambda text: live.update(f"{text}…")


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
