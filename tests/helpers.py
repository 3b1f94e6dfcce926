"""What many test files need and used to write each on its own: repo paths, the CLI in a child process or in
this one, the one-line-error assertion, the Markdown-table reader, and the read-only check of shared exports.

A plain module beside the tests (conftest puts tests/ on sys.path): `from helpers import run_sdeploy, ...`.
"""
from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent
FIXTURES = TESTS / "fixtures"
# the CLI as a user's shell runs it, in a child process of this interpreter (the project venv's sdeploy)
SDEPLOY = [sys.executable, "-c", "from shufflenet_deploy.cli import run; run()"]


def run(argv, *, timeout: float, env: dict | None = None, cwd: Path | None = None,
        check_timeout: bool = True) -> subprocess.CompletedProcess:
    """Run ARGV in its own process group, capture text output, and kill the whole group (qemu and onnx2tf
    children included) when it overruns or leaves anything behind. An overrun fails the test with the stderr
    tail."""
    proc = subprocess.Popen([str(a) for a in argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env, cwd=cwd, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        if check_timeout:
            pytest.fail(f"timed out after {timeout:g} s: {' '.join(map(str, argv))}\n{err[-3000:]}")
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def run_sdeploy(*args, cwd: Path | None = None, timeout: float = 900, env: dict | None = None
                ) -> subprocess.CompletedProcess:
    """`sdeploy ARGS...` in a child process (from the repo unless CWD is given)."""
    return run([*SDEPLOY, *args], timeout=timeout, env=env, cwd=cwd or REPO)


def cli_in_process(capsys, *args) -> tuple[int, str, str]:
    """`sdeploy ARGS...` through cli.main in this process: (exit code, stdout, stripped stderr)."""
    from shufflenet_deploy.cli import main

    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err.strip()


def assert_one_line_error(done: subprocess.CompletedProcess, *needles: str, code: int = 2) -> str:
    """A user mistake: exit CODE, no traceback, exactly one non-blank stderr line `error: ...` holding every
    NEEDLE. Returns that line."""
    assert done.returncode == code, done.stdout[-2000:] + done.stderr[-2000:]
    assert "Traceback" not in done.stderr, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def md_table(md: str, heading: str) -> list[list[str]]:
    """The body rows (cells stripped) of the first Markdown table under `## HEADING`."""
    section = md.split(f"## {heading}", 1)[1].split("\n## ", 1)[0]
    lines = [line for line in section.splitlines() if line.startswith("|")]
    return [[c.strip() for c in line.strip("|").split("|")] for line in lines[2:]]


def fingerprint(folder: Path) -> dict[str, str]:
    """{relative path: sha256} of every file below FOLDER: how a shared export proves no test changed it."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def make_read_only(folder: Path) -> None:
    """Files 0444, folders 0555: a test that writes into a shared export fails at once (for a non-root user;
    root ignores modes, so the session also compares fingerprints at its end)."""
    for p in sorted(folder.rglob("*"), reverse=True):
        p.chmod(0o555 if p.is_dir() else 0o444)
    folder.chmod(0o555)


def default_sigint() -> None:
    """In the child before exec: SIGINT back to its default. A suite started in the background by a script (`cmd &`
    without job control) inherits SIGINT ignored, and Python then never raises KeyboardInterrupt: a user's Ctrl-C
    reaches a foreground sdeploy with the default, which is what these tests are about."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
