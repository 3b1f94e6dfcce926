"""`sdeploy`: click commands only — parse options, call the package API, print.

Commands live in one small module each (cli/zoo.py, cli/export.py, ...) and are imported only when invoked, so
`sdeploy zoo` never pays for importing torch or tensorflow. `UserError` becomes one line on stderr and its exit
code (2 for bad input, 3 for device faults); an ImportError of an optional extra's package (torch, onnx2tf, ...)
becomes the line naming the extra to install (extras.py); nothing else is caught.
"""
from __future__ import annotations

import importlib
import importlib.util
import sys

import click

from ..errors import UserError
from ..extras import for_missing_module

# command name -> "module:function" inside shufflenet_deploy.cli
COMMANDS = {
    "demo": "demo:demo",
    "zoo": "zoo:zoo",
    "flops": "zoo:flops",
    "export": "export:export",
    "data": "data:data",
    "train": "train:train",
    "eval": "evaluate:eval_cmd",
    "devices": "devices:devices",
    "bench": "bench:bench",
    "sweep": "analysis:sweep",
    "report": "analysis:report",
    "predict": "analysis:predict",
    "compare": "compare:compare",
    "quant-report": "quant:quant_report",
}


class LazyGroup(click.Group):
    def list_commands(self, ctx):
        return [name for name in COMMANDS if self._available(name)]

    def _available(self, name: str) -> bool:
        module = COMMANDS[name].split(":")[0]
        return importlib.util.find_spec(f"{__name__}.{module}") is not None

    def get_command(self, ctx, name):
        if name not in COMMANDS or not self._available(name):
            return None
        module, attr = COMMANDS[name].split(":")
        return getattr(importlib.import_module(f"{__name__}.{module}"), attr)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="shufflenet-deploy")
def cli():
    """sdeploy: ShuffleNet from checkpoint to ARM device, with the FLOPs-vs-latency gap measured."""
    _check_cache_env()


def _check_cache_env() -> None:
    """$SDEPLOY_CACHE must name a folder (or a path one can be made at): found only when a bench writes its peak,
    a file there would throw away every measurement before it. Checked once, before any command runs."""
    import os
    from pathlib import Path

    from ..fileio import nearest_existing

    value = os.environ.get("SDEPLOY_CACHE")
    if not value:
        return
    probe = nearest_existing(Path(value).expanduser())
    if not probe.is_dir():
        raise UserError(f"SDEPLOY_CACHE={value} is not a folder ({probe} is a file)",
                        "point SDEPLOY_CACHE at a folder, or unset it (default ~/.cache/sdeploy)")


class Terminated(KeyboardInterrupt):
    """SIGTERM/SIGHUP, raised where the program is so every `finally` (temp folders, child processes) runs."""


def _on_signal(signum, frame):
    raise Terminated(signum)


def main(argv=None) -> int:
    import signal
    import threading

    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, _on_signal)
    try:
        return cli.main(args=argv, standalone_mode=False) or 0
    except UserError as err:
        click.echo(f"error: {err.one_line()}", err=True)
        return err.exit_code
    except ModuleNotFoundError as err:
        missing = for_missing_module(err, f"sdeploy {' '.join(_command_words(argv))}".rstrip())
        if missing is None:
            raise
        click.echo(f"error: {missing.one_line()}", err=True)
        return missing.exit_code
    except (click.exceptions.Abort, KeyboardInterrupt) as err:
        cause = err.__context__ if isinstance(err, click.exceptions.Abort) else err
        if isinstance(cause, Terminated):
            click.echo(f"terminated by signal {cause.args[0]}; temporary files removed", err=True)
            return 128 + int(cause.args[0])
        click.echo("interrupted; temporary files removed", err=True)
        return 130
    except click.ClickException as err:
        err.show()
        return err.exit_code
    except click.exceptions.Exit as err:
        return err.exit_code


def _command_words(argv) -> list[str]:
    """The command the user typed, for the missing-extra line: ["sweep"], ["data", "digits"]."""
    words = [arg for arg in (sys.argv[1:] if argv is None else argv) if not arg.startswith("-")]
    return words[:2] if words[:1] in (["data"], ["devices"]) else words[:1]


def run() -> None:
    sys.exit(main())
