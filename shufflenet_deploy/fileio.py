"""Atomic writes: an artifact appears under its final name only once it is complete."""
from __future__ import annotations

import json
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator


@contextmanager
def locked(lock_file: Path) -> Iterator[None]:
    """Hold an exclusive lock on LOCK_FILE (created if missing) for the block: one writer of a shared cache entry
    at a time, across processes (parallel test workers, two sweeps) and across threads (one per fleet device)."""
    import fcntl

    lock_file = Path(lock_file)
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_file, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


@contextmanager
def atomic_path(final: Path) -> Iterator[Path]:
    """Yield a temp path beside `final`; rename it onto `final` only if the block succeeds."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.chmod(tmp_path, 0o666 & ~current_umask())  # mkstemp makes 0600; give the file normal permissions
        os.replace(tmp_path, final)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_json(path: Path, data: Any) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2, sort_keys=False, default=_json_default) + "\n")


def _json_default(obj: Any) -> Any:
    import numpy as np  # numpy scalars and arrays show up in results

    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def sha256(path: Path) -> str:
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


# -- hidden work folders beside an output, and the ones an interrupted run left -------------------------------
_STALE_KINDS = ("tmp", "final", "report", "old")


def temp_dir(parent: Path, name: str, kind: str) -> Path:
    """A hidden folder `.NAME.KIND-PID-XXXX` in `parent`, for building `parent/NAME` (PID: see remove_stale)."""
    import errno

    try:
        return Path(tempfile.mkdtemp(prefix=f".{name}.{kind}-{os.getpid()}-", dir=parent))
    except OSError as err:
        from .errors import UserError

        why = "the disk is full" if err.errno in (errno.ENOSPC, errno.EDQUOT) else (err.strerror or str(err))
        raise UserError(f"cannot create a work folder in {parent}: {why}", "choose another output folder") from None


def remove_stale(parent: Path, name: str) -> list[Path]:
    """Remove the hidden work folders of `parent/NAME` whose sdeploy process is gone (killed with SIGKILL, a
    power cut: nothing ran its cleanup). Folders of a process still alive are left alone. Returns what went."""
    import re
    import shutil

    pattern = re.compile(rf"^\.{re.escape(name)}\.({'|'.join(_STALE_KINDS)})-(\d+)(-|$)")
    removed = []
    try:
        entries = list(Path(parent).iterdir())
    except OSError:
        return removed
    for entry in entries:
        m = pattern.match(entry.name)
        if not m or _alive(int(m.group(2))):
            continue
        shutil.rmtree(entry, ignore_errors=True) if entry.is_dir() else entry.unlink(missing_ok=True)
        removed.append(entry)
    return removed


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def check_writable(folder: Path, what: str) -> None:
    """Fail now, in one line, if `folder` (or the nearest parent that exists) cannot take a new file: found at
    the end, it would throw away a whole benchmark or export. A real probe file, not os.access: root passes
    os.access on a read-only mount."""
    from .errors import UserError

    folder = Path(folder)
    probe_dir = folder
    while not probe_dir.exists():
        probe_dir = probe_dir.parent
    if not probe_dir.is_dir():
        raise UserError(f"{what} {folder} cannot be created: {probe_dir} is a file, not a folder", "choose another -o")
    try:
        fd, name = tempfile.mkstemp(prefix=".sdeploy-probe-", dir=probe_dir)
        os.close(fd)
        os.unlink(name)
    except OSError as err:
        raise UserError(f"{what} {folder} is not writable ({probe_dir}: {err.strerror})", "choose another -o") from None
