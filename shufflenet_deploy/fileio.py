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
def exclusive(folder: Path, what: str) -> Iterator[None]:
    """Hold FOLDER/.sdeploy.lock for the block, or fail at once in one line if another sdeploy process holds it:
    two runs writing one results folder would each say "wrote" and one's results would be lost."""
    import fcntl

    from .errors import UserError

    folder = Path(folder)
    created = not folder.exists()
    folder.mkdir(parents=True, exist_ok=True)
    lock = folder / ".sdeploy.lock"
    try:
        with open(lock, "a") as fh:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise UserError(f"another sdeploy {what} is writing {folder} right now",
                                "wait for it to finish, or choose another -o") from None
            try:
                yield
            finally:
                lock.unlink(missing_ok=True)  # while still held: no lock file is left in the user's folder
                fcntl.flock(fh, fcntl.LOCK_UN)
    finally:
        if created and folder.is_dir() and not any(folder.iterdir()):  # nothing written: leave no folder
            folder.rmdir()


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


@contextmanager
def staged_outputs(outdir: Path) -> Iterator[Path]:
    """Write a set of outputs (a report's files) into a temp folder beside OUTDIR; only when the block succeeds are
    they moved into OUTDIR, each with an atomic rename. A failure half-way leaves OUTDIR as it was: never a half
    or mixed report. Files of OUTDIR the block does not write are left alone (it may be the user's folder)."""
    import shutil

    outdir = Path(outdir)
    check_writable(outdir, "the output folder")
    outdir.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{outdir.name}.", suffix=".tmp", dir=outdir.parent))
    try:
        yield stage
        items = sorted(stage.iterdir())
        blocked = [outdir / i.name for i in items if (outdir / i.name).is_dir() and not (outdir / i.name).is_symlink()]
        if blocked:  # never delete a folder we did not write; checked before anything moves
            from .errors import UserError

            raise UserError(f"{blocked[0]} is a folder where a report file goes", "choose another -o")
        for item in items:
            os.chmod(item, 0o666 & ~current_umask())
            os.replace(item, outdir / item.name)
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_json(path: Path, data: Any) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2, sort_keys=False, default=_json_default) + "\n")


def safe_component(text: str, limit: int = 120) -> str:
    """TEXT (a model, device or tensor name from a file or a user) as one safe path component: letters, digits and
    . _ - only, never empty, "." or "..", never hidden, at most LIMIT characters."""
    import re

    name = re.sub(r"[^A-Za-z0-9._-]+", "_", str(text)).strip("._") or "_"
    return name[:limit]


def regular_file(path: Path, what: str, max_bytes: int | None = None) -> Path:
    """PATH, when it is a regular file of at most MAX_BYTES: a named pipe would block the read, a device file never
    end. One UserError naming WHAT otherwise. Every document and input file is checked here before it is read."""
    import stat

    from .errors import UserError

    path = Path(path)
    try:
        info = path.stat()
    except FileNotFoundError:
        raise UserError(f"no {what} at {path}") from None
    except OSError as err:
        raise UserError(f"cannot read {what} {path}: {err.strerror}") from None
    if not stat.S_ISREG(info.st_mode):
        kind = "a folder" if stat.S_ISDIR(info.st_mode) else "not a regular file"
        raise UserError(f"{what} {path} is {kind}", "pass the path of a file")
    if max_bytes is not None and info.st_size > max_bytes:
        raise UserError(f"{what} {path} is {info.st_size / 1e6:.0f} MB, more than any {what} sdeploy reads "
                        f"({max_bytes / 1e6:.0f} MB)", "check the path")
    return path


MAX_DOCUMENT_BYTES = 256 * 1024 * 1024  # a results document of a long fleet sweep is tens of MB


def read_json_bounded(path: Path, *, what: str, max_bytes: int = MAX_DOCUMENT_BYTES) -> Any:
    """Read a JSON document as a strict reader must: a regular file only (a named pipe would block, a device file
    never ends), at most MAX_BYTES, UTF-8, and no NaN/Infinity (Python's json takes them; no number we write is
    one). Any failure is one UserError naming the file and what is wrong with it."""
    from .errors import UserError

    path = regular_file(path, f"the {what}", max_bytes)
    try:
        with open(path, "rb") as fh:
            raw = fh.read(max_bytes + 1)
        return json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)
    except OSError as err:
        raise UserError(f"cannot read the {what} {path}: {err.strerror}") from None
    except UnicodeDecodeError:
        raise UserError(f"the {what} {path} is not UTF-8 text (a binary or damaged file)") from None
    except (json.JSONDecodeError, ValueError) as err:
        raise UserError(f"the {what} {path} is not valid JSON ({err})") from None
    except RecursionError:  # [[[[...]]]] thousands deep: no document sdeploy writes nests more than a few levels
        raise UserError(f"the {what} {path} nests too deeply to be a document sdeploy wrote (a damaged or "
                        "hostile file)", "check the path") from None


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number sdeploy writes")


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


def nearest_existing(path: Path) -> Path:
    """PATH itself, or its nearest parent that exists (where a folder to be created would be made)."""
    path = Path(path)
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def check_writable(folder: Path, what: str) -> None:
    """Fail now, in one line, if `folder` (or the nearest parent that exists) cannot take a new file: found at
    the end, it would throw away a whole benchmark or export. A real probe file, not os.access: root passes
    os.access on a read-only mount."""
    from .errors import UserError

    folder = Path(folder)
    probe_dir = nearest_existing(folder)
    if not probe_dir.is_dir():
        raise UserError(f"{what} {folder} cannot be created: {probe_dir} is a file, not a folder", "choose another -o")
    try:
        fd, name = tempfile.mkstemp(prefix=".sdeploy-probe-", dir=probe_dir)
        os.close(fd)
        os.unlink(name)
    except OSError as err:
        raise UserError(f"{what} {folder} is not writable ({probe_dir}: {err.strerror})", "choose another -o") from None
