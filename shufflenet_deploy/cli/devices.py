"""`sdeploy devices`: list device profiles; `sdeploy devices check NAME`: probe one device;
`sdeploy devices cpuinfo FILE`: what a saved /proc/cpuinfo says about speed (clusters, int8 dot product)."""
from __future__ import annotations

import dataclasses
import json

import click

from ..errors import DeviceError, UserError

devices_option = click.option("--devices", "devices_file", type=click.Path(dir_okay=False),
                              help="devices TOML file (default: $SDEPLOY_DEVICES or ~/.config/sdeploy/devices.toml)")


@click.group(invoke_without_command=True)
@devices_option
@click.option("--json", "as_json", is_flag=True, help="print the profiles as JSON")
@click.pass_context
def devices(ctx, devices_file, as_json):
    """List device profiles (built-in + your devices.toml)."""
    ctx.ensure_object(dict)["devices_file"] = devices_file
    if ctx.invoked_subcommand is not None:
        return
    from ..devices.registry import load_registry

    registry = load_registry(devices_file)
    if as_json:
        click.echo(json.dumps({n: dataclasses.asdict(p) for n, p in registry.items()}, indent=2))
        return
    from rich.table import Table

    from .common import console as make_console

    table = Table(title="sdeploy devices")
    for col in ("name", "transport", "target", "python / binary", "affinity", "threads", "from"):
        table.add_column(col)
    for p in registry.values():
        runtime = p.benchmark_binary or "benchmark_binary: not set" if p.transport == "adb" else " ".join(
            p.python_argv)
        table.add_row(p.name, p.transport, p.target(), runtime, p.affinity or "-",
                      ",".join(map(str, p.threads)), p.source)
    console = make_console()
    (console if console.is_terminal else make_console(width=160)).print(table)


@devices.command()
@click.argument("name")
@devices_option
@click.option("--timeout", type=float, default=30, show_default=True, help="seconds per probe")
@click.pass_context
def check(ctx, name, devices_file, timeout):
    """Probe NAME: reachable, arch, CPU, runtime, governor, temperature (one ok/warn/fail line each)."""
    from ..bench.check import check_device
    from ..devices.registry import get_device

    profile = get_device(name, devices_file or ctx.obj.get("devices_file"))
    checks = check_device(profile, timeout=timeout)
    colors = {"ok": "green", "warn": "yellow", "fail": "red"}
    for c in checks:
        click.echo(f"{click.style(c.status.ljust(4), fg=colors[c.status])}  {c.name:<12} {c.detail}")
    failed = [c.name for c in checks if c.status == "fail"]
    if failed:
        raise DeviceError(f"{profile.name}: {len(failed)} check(s) failed ({', '.join(failed)})")


@devices.command("cpuinfo")
@click.argument("file")
@click.option("--json", "as_json", is_flag=True, help="print the facts as JSON")
def cpuinfo_cmd(file, as_json):
    """Parse a saved /proc/cpuinfo: core clusters (big.LITTLE), ISA features, and what they mean for int8."""
    from pathlib import Path

    from ..devices.cpuinfo import format_facts, parse_cpuinfo

    try:
        text = Path(file).read_bytes().decode("utf-8", errors="replace")
    except OSError as err:
        raise UserError(f"cannot read {file}: {err.strerror or err}",
                        "save one on the device with `cat /proc/cpuinfo > cpuinfo.txt`") from None
    facts = parse_cpuinfo(text)
    click.echo(json.dumps(facts.to_dict(), indent=2) if as_json else format_facts(facts))
