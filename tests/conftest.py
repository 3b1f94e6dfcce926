"""Shared pytest fixtures, grouped by what they provide. Add new groups as new sections.

Real components, not fakes: `sshd*` start an OpenSSH server on 127.0.0.1 (tests/servers/sshd.py) and
`aarch64_root` (bookworm) / `aarch64_root_trixie` are the qemu-user aarch64 userlands (tests/servers/aarch64.py).
Every fixture stops what it started. The aarch64 tier skips when its root is missing, except with
SDEPLOY_REQUIRE_AARCH64=1 (CI), where a missing root is a failure.
"""
from __future__ import annotations

import shlex
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
if str(TESTS) not in sys.path:          # `servers` and `tflite_models` are plain modules next to the tests
    sys.path.insert(0, str(TESTS))

from servers import aarch64 as _aarch64  # noqa: E402
from servers import sshd as _sshd  # noqa: E402


# ------------------------------------------------------------------------------------------ tiny TFLite models
@pytest.fixture(scope="session")
def tiny_tflite(tmp_path_factory):
    """Factory: tiny_tflite("fp32" | "int8") -> Path of a small real .tflite, built once per session."""
    from tflite_models import make_tiny_tflite

    cache: dict[str, Path] = {}
    directory = tmp_path_factory.mktemp("tiny_tflite")

    def get(precision: str = "fp32") -> Path:
        if precision not in cache:
            cache[precision] = make_tiny_tflite(directory / f"tiny_{precision}.tflite", precision)
        return cache[precision]

    return get


# ------------------------------------------------------------------------------------------------------- sshd
def _require_sshd():
    reason = _sshd.missing_reason()
    if reason:
        pytest.skip(reason)


@pytest.fixture(scope="session")
def sshd(tmp_path_factory):
    """One plain sshd shared by the non-destructive ssh tests (sessions run as the current user on the host)."""
    _require_sshd()
    with _sshd.running_sshd(tmp_path_factory.mktemp("sshd")) as server:
        yield server


@pytest.fixture
def sshd_factory(tmp_path):
    """Factory for private servers a test may kill or restart: sshd_factory(forced_command=None, ...)."""
    _require_sshd()
    stack = []

    def start(**kwargs) -> _sshd.SSHServer:
        cm = _sshd.running_sshd(tmp_path / f"sshd{len(stack)}", **kwargs)
        server = cm.__enter__()
        stack.append(cm)
        return server

    yield start
    for cm in reversed(stack):
        cm.__exit__(None, None, None)


# ---------------------------------------------------------------------------------------------------- aarch64
def _built_root(suite: str) -> Path:
    root = _aarch64.root_path(suite)
    reason = _aarch64.missing_reason(root, suite)
    if reason:
        if _aarch64.required():
            pytest.fail(f"{_aarch64.REQUIRE_ENV}=1 but {reason}", pytrace=False)
        pytest.skip(reason)
    return root


@pytest.fixture(scope="session")
def aarch64_root() -> Path:
    """The built aarch64 root (Debian bookworm, Python 3.11); skip (or fail under SDEPLOY_REQUIRE_AARCH64=1) when
    it is missing."""
    return _built_root("bookworm")


@pytest.fixture(scope="session")
def aarch64_root_trixie() -> Path:
    """The second aarch64 root (Debian trixie, Python 3.13, numpy 2.x); skip or fail like `aarch64_root`."""
    return _built_root("trixie")


@pytest.fixture(scope="session")
def aarch64_sshd(aarch64_root, tmp_path_factory):
    """An sshd whose every session runs through scripts/aarch64_exec.sh: an aarch64 machine over SSH."""
    reason = _sshd.missing_reason()
    if reason:
        if _aarch64.required():
            pytest.fail(f"{_aarch64.REQUIRE_ENV}=1 but {reason}", pytrace=False)
        pytest.skip(reason)
    command = str(_aarch64.EXEC_SHIM)
    if aarch64_root != _aarch64.REPO / ".cache" / "aarch64-root":
        command = f"env SDEPLOY_AARCH64_ROOT={shlex.quote(str(aarch64_root))} {shlex.quote(command)}"
    with _sshd.running_sshd(tmp_path_factory.mktemp("sshd_aarch64"), forced_command=command) as server:
        yield server


# ------------------------------------------------------------------------------------------------ environment
@pytest.fixture(scope="session", autouse=True)
def _sdeploy_environment():
    """Bundled datasets go to the repo's .cache (reused between runs); torch stays on one thread so tests on
    this shared 2-core machine do not fight each other (two threads ran 5-10x slower under load)."""
    import os

    os.environ.setdefault("SDEPLOY_CACHE", str(TESTS.parent / ".cache" / "sdeploy"))
    try:
        import torch
    except ImportError:
        return
    torch.set_num_threads(1)


REPO = TESTS.parent
BUNDLED = {  # the trained checkpoints in models/ (scripts/train_bundled_models.sh)
    "g3": REPO / "models" / "shufflenet_v1_g3_0.5x_digits64.pt",
    "g8": REPO / "models" / "shufflenet_v1_g8_0.5x_digits80.pt",
    "g8_nosmooth": REPO / "models" / "shufflenet_v1_g8_0.5x_digits80_nosmooth.pt",  # the int8-repair test model
}


@pytest.fixture(scope="session")
def bundled_checkpoint():
    def get(which: str = "g3") -> Path:
        path = BUNDLED[which]
        if not path.exists():
            pytest.fail(f"bundled model {path} is missing: run `make models`", pytrace=False)
        return path

    return get


# ------------------------------------------------------------------------------------------------------ wheel
@pytest.fixture(scope="session")
def sdeploy_wheel(tmp_path_factory) -> Path:
    """This checkout's wheel, built once per session (tests/installs.py)."""
    from installs import build_wheel

    return build_wheel(tmp_path_factory.mktemp("wheel"))
