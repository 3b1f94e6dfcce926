"""Shared pytest fixtures, grouped by what they provide. Add new groups as new sections.

Real components, not fakes: `sshd*` start an OpenSSH server on 127.0.0.1 (tests/servers/sshd.py) and
`aarch64_root` (bookworm) / `aarch64_root_trixie` are the qemu-user aarch64 userlands (tests/servers/aarch64.py).
Every fixture stops what it started. The aarch64 tier skips when its root is missing, except with
SDEPLOY_REQUIRE_AARCH64=1 (CI), where a missing root is a failure.
"""
from __future__ import annotations

import json
import os
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
if str(TESTS) not in sys.path:          # `servers` and `tflite_models` are plain modules next to the tests
    sys.path.insert(0, str(TESTS))

from helpers import REPO, fingerprint, make_read_only, run_sdeploy  # noqa: E402
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
    os.environ.setdefault("SDEPLOY_CACHE", str(REPO / ".cache" / "sdeploy"))
    try:
        import torch
    except ImportError:
        return
    torch.set_num_threads(1)


BUNDLED = {  # the trained checkpoints in models/ (scripts/train_bundled_models.sh)
    "g3": REPO / "models" / "shufflenet_v1_g3_0.5x_digits64.pt",
    "g8": REPO / "models" / "shufflenet_v1_g8_0.5x_digits80.pt",
    "g8_nosmooth": REPO / "models" / "shufflenet_v1_g8_0.5x_digits80_nosmooth.pt",  # the int8-repair test model
}


# ------------------------------------------------------------------------------------------- shared exports
# Every distinct export the suite reads, by name: the `sdeploy export` arguments (besides -o). Each is made ONCE
# per session by the real CLI in a child process and handed out read-only; a test that damages files copies first.
# (Before this, the identical bundled g3 export was made by seven modules, each on its own.)
SHARED_EXPORTS = {
    # the bundled model, as a user exports it, with ONNX Runtime's int8 file too (`bench --runtime all` times both)
    "g3": lambda: ["--checkpoint", BUNDLED["g3"], "--onnx-int8"],
    "g3-plain": lambda: ["--checkpoint", BUNDLED["g3"], "--no-optimize"],  # onnx2tf's plain output of it
    "g8": lambda: ["--checkpoint", BUNDLED["g8"]],
    "g8_nosmooth-plain": lambda: ["--checkpoint", BUNDLED["g8_nosmooth"], "--int8-target", "none"],
    # one of the paper's pairs (0.5x vs 1x, g=3), small: the fleet sweep's models
    "g3_0.5x@32": lambda: _zoo_at_32("shufflenet_v1_g3_0.5x"),
    "g3_1.0x@32": lambda: _zoo_at_32("shufflenet_v1_g3_1.0x"),
}


def _zoo_at_32(name: str) -> list:
    from shufflenet_deploy.data.digits import ensure_digits

    return [name, "--input-size", "32", "--precision", "fp32,int8", "--calib", ensure_digits(32) / "calib",
            "--calib-count", "20"]


def _run_wide(tmp_path_factory, name: str) -> Path:
    """A folder shared by the whole test run: this session's base temp, or under pytest-xdist its parent, which
    every worker of the run shares (guard what is made there with a file lock)."""
    base = tmp_path_factory.getbasetemp()
    folder = (base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / name
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@dataclass(frozen=True)
class SharedExport:
    """A finished export folder (read-only) and what `sdeploy export` printed making it."""

    path: Path
    stdout: str

    @property
    def manifest(self) -> dict:
        return json.loads((self.path / "manifest.json").read_text())


@pytest.fixture(scope="session")
def shared_export(tmp_path_factory):
    """Factory: shared_export(NAME) -> SharedExport of SHARED_EXPORTS[NAME], made once per session.

    Under pytest-xdist the workers share one folder (the base temp's parent) and a file lock, so each export is
    still made once. At the session's end every handed-out export must be byte-identical to what was made: a test
    that wrote into one fails the session (modes alone cannot stop root, which CI runs as)."""
    from filelock import FileLock

    root = _run_wide(tmp_path_factory, "shared-exports")
    handed: dict[str, tuple[Path, dict]] = {}
    failed: dict[str, str] = {}

    def get(name: str) -> SharedExport:
        folder = root / name / "export"
        if name in failed:
            pytest.fail(failed[name], pytrace=False)
        if name not in handed:
            with FileLock(str(root / f"{name}.lock")):
                if not (folder / "manifest.json").exists():
                    folder.parent.mkdir(parents=True, exist_ok=True)
                    done = run_sdeploy("export", *SHARED_EXPORTS[name](), "-o", folder, timeout=1800)
                    if done.returncode != 0:
                        failed[name] = f"shared export {name!r} failed: {done.stderr[-3000:]}"
                        pytest.fail(failed[name], pytrace=False)
                    (folder.parent / "stdout.txt").write_text(done.stdout)
                    make_read_only(folder)
            handed[name] = folder, fingerprint(folder)
        return SharedExport(folder, (folder.parent / "stdout.txt").read_text())

    yield get
    changed = [name for name, (folder, prints) in handed.items() if fingerprint(folder) != prints]
    assert not changed, f"a test wrote into the shared export(s) {changed}: copy the folder first"


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
    """This checkout's wheel, built once per test run (tests/installs.py); pip builds in the source tree, so two
    xdist workers must not build at once."""
    from filelock import FileLock

    from installs import build_wheel

    folder = _run_wide(tmp_path_factory, "wheel")
    with FileLock(str(folder) + ".lock"):
        wheels = sorted(folder.glob("shufflenet_deploy-*.whl"))
        return wheels[0] if wheels else build_wheel(folder)


# --------------------------------------------------------------------------------- both cores (pytest-xdist)
# `make test` runs the suite on two workers: `-n 2 --dist loadgroup --no-loadscope-reorder` (Makefile). Each
# module's tests stay together on one worker, so its module fixtures are made once and its servers are its own,
# except the SPREAD modules, whose tests are independent conversions that go last and fill whichever worker is
# free. Modules start costliest first (measured: docs/ci.md), so the two workers finish together. A plain
# `pytest` run (no -n) is unaffected but for the order.
SPREAD = {"test_export_matrix.py"}
COSTLIEST_FIRST = ["test_fleet.py", "test_install.py", "test_int8_repair.py", "test_aarch64_cli.py",
                   "test_lowering.py", "test_ci_arm.py", "test_train_eval.py", "test_front_doors.py",
                   "test_bad_inputs.py", "test_export.py", "test_demo.py", "test_analysis.py"]


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook, which turns the group marks into node ids
def pytest_collection_modifyitems(config, items):
    rank = {name: i for i, name in enumerate(COSTLIEST_FIRST)}
    for item in items:
        if item.path.name not in SPREAD:
            item.add_marker(pytest.mark.xdist_group(item.path.stem))
    last = len(rank) + 1
    items.sort(key=lambda item: last if item.path.name in SPREAD else rank.get(item.path.name, len(rank)))
    # (a stable sort: every module keeps its own order)
