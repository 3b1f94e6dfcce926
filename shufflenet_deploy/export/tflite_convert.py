"""ONNX -> TFLite fp32/fp16/int8 by driving onnx2tf offline in a child process (see onnx2tf_worker.py).

Each conversion starts a fresh worker, except inside `shared_worker()`: there one long-lived worker serves them
all (TensorFlow and onnx2tf imported once, not once per conversion) with byte-identical files and the same errors.
"""
from __future__ import annotations

import contextlib
import errno
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import UserError
from ..proc import ProcessTimeout, run

WORKER = [sys.executable, "-m", "shufflenet_deploy.export.onnx2tf_worker"]
WORKER_ENV = {"TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": ""}

# onnx2tf validates every conversion on this file and downloads it when it is missing from its working dir.
ONNX2TF_SAMPLE_FILE = "calibration_image_sample_data_20x128x128x3_float32.npy"


def write_onnx2tf_sample(workdir: Path, images_nhwc01: np.ndarray) -> None:
    """onnx2tf's sample-data file, made from the user's own images (NHWC, 0..1, 20 x 128 x 128 x 3)."""
    import PIL.Image

    picks = [images_nhwc01[i % len(images_nhwc01)] for i in range(20)]
    picks = [np.repeat(p, 3, axis=-1) if p.shape[-1] == 1 else p for p in picks]  # grey models: the file is RGB
    resized = [np.asarray(PIL.Image.fromarray((p * 255).astype(np.uint8)).resize((128, 128)), np.float32) / 255
               for p in picks]
    np.save(workdir / ONNX2TF_SAMPLE_FILE, np.stack(resized).astype(np.float32))


@dataclass(frozen=True)
class Converted:
    """What one conversion wrote: a .tflite per precision (in the work folder) and the seconds each stage took."""

    files: dict[str, Path]
    timings: dict[str, float]


def convert(onnx_path: Path, workdir: Path, *, precisions: list[str], calibration_nhwc: np.ndarray | None,
            sample_images_nhwc01: np.ndarray, log: Path, timeout: float = 1800,
            onnx2tf_options: dict | None = None) -> Converted:
    """Run the worker on ONNX_PATH: a TFLite file per precision."""
    workdir = Path(workdir).resolve()  # the worker chdirs into it: every path in its spec must be absolute
    workdir.mkdir(parents=True, exist_ok=True)
    private_onnx = workdir / "model.onnx"
    shutil.copyfile(onnx_path, private_onnx)  # onnx2tf rewrites its input in place
    write_onnx2tf_sample(workdir, sample_images_nhwc01)
    calib_file = None
    if calibration_nhwc is not None:
        calib_file = workdir / "calibration_nhwc.npy"
        np.save(calib_file, calibration_nhwc.astype(np.float32))
    spec = {"onnx": str(private_onnx), "workdir": str(workdir), "outdir": str(workdir / "tf"),
            "precisions": precisions, "calibration_nhwc": str(calib_file) if calib_file else None,
            "result": str(workdir / "result.json"), "onnx2tf_options": onnx2tf_options or {}}
    result = _run_worker(spec, workdir, log, timeout)
    return Converted(files={k: Path(v) for k, v in result["files"].items()},
                     timings={k: float(v) for k, v in result["timings"].items()})


def requantize(workdir: Path, *, output: Path, log: Path, calibration_nhwc: np.ndarray | None = None,
               ranges: str = "minmax", float_tensors: list[str] | None = None, timeout: float = 1800) -> Path:
    """Another int8 model from the saved_model an earlier `convert` left in WORKDIR (no onnx2tf rerun): other
    calibration images, another activation-range choice, layers kept in float. Returns OUTPUT."""
    workdir = Path(workdir).resolve()
    spec = json.loads((workdir / "spec.json").read_text())
    options = {"output": str(Path(output).resolve()), "ranges": ranges, "float_tensors": float_tensors or []}
    if calibration_nhwc is not None:
        calib_file = Path(output).resolve().with_suffix(".calibration.npy")
        np.save(calib_file, calibration_nhwc.astype(np.float32))
        options["calibration_nhwc"] = str(calib_file)
    spec.update(mode="int8", precisions=["int8"], int8=options, result=str(workdir / "result-requantize.json"))
    result = _run_worker(spec, workdir, log, timeout, name="spec-requantize.json")
    return Path(result["files"]["int8"])


def _run_worker(spec: dict, workdir: Path, log: Path, timeout: float, name: str = "spec.json") -> dict:
    spec_path = workdir / name
    spec = {**spec, "log": str(Path(log).resolve())}  # a serving worker writes the log itself, from its own cwd
    spec_path.write_text(json.dumps(spec))
    result_path = Path(spec["result"])
    result_path.unlink(missing_ok=True)
    worker = _shared
    if worker is None:
        returncode = run([*WORKER, str(spec_path)], timeout=timeout, log=log, env=WORKER_ENV).returncode
    else:
        returncode = worker.run(spec_path, log, timeout)
    attempts_file = workdir / "network_attempts.json"
    if attempts_file.exists():
        raise UserError(f"onnx2tf tried to reach the network ({json.loads(attempts_file.read_text())[0]}); "
                        f"the attempt was blocked (log: {log})", "report this: sdeploy must stay offline")
    if returncode != 0 or not result_path.exists():
        tail = log.read_text(errors="replace")[-20000:] if log.exists() else ""
        if "No space left on device" in tail or "ENOSPC" in tail:
            raise OSError(errno.ENOSPC, "No space left on device", str(workdir))
        raise UserError(f"onnx2tf conversion failed with exit code {returncode}",
                        f"see the conversion log {log}")
    return json.loads(result_path.read_text())


# -- one worker for many conversions ---------------------------------------------------------------------------
_shared: SharedWorker | None = None
_users = 0
_users_lock = threading.Lock()


@contextlib.contextmanager
def shared_worker():
    """While active, every conversion in this process (requantize too) goes to one serve-mode worker, started on
    first use: TensorFlow's and onnx2tf's start-up is paid once, not per conversion. Nested (or other threads')
    uses share the outermost one; it is stopped when the last exits, whatever the reason. Yields the worker."""
    global _shared, _users
    with _users_lock:
        _shared = _shared or SharedWorker()
        _users += 1
        worker = _shared
    try:
        yield worker
    finally:
        with _users_lock:
            _users -= 1
            if _users == 0:
                _shared = None
                worker.stop()


class SharedWorker:
    """One `onnx2tf_worker --serve` process in its own session, one job at a time (each in a child it forks). A
    job that times out or is interrupted kills it (its whole process group, as proc.run does with a one-shot
    worker), as does one it dies in; the next job starts a new one."""

    def __init__(self):
        self._proc: subprocess.Popen | None = None
        self._lock = threading.Lock()

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def run(self, spec_path: Path, log: Path, timeout: float) -> int:
        """Run one job; return the exit code a one-shot worker would have had (negative: killed by a signal)."""
        with self._lock:
            if self._proc is None or self._proc.poll() is not None:
                self.stop()
                self._proc = subprocess.Popen([*WORKER, "--serve"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                              stderr=subprocess.DEVNULL, env={**os.environ, **WORKER_ENV},
                                              start_new_session=True)
            proc = self._proc
            log.parent.mkdir(parents=True, exist_ok=True)
            with open(log, "ab") as fh:
                fh.write(f"\n$ {' '.join(WORKER)} --serve (pid {proc.pid}) < {spec_path}\n".encode())
            try:
                proc.stdin.write(f"{spec_path}\n".encode())
                proc.stdin.flush()
                reply = _read_line(proc.stdout.fileno(), time.monotonic() + timeout)
            except BrokenPipeError:  # it died before this job
                reply = b""
            except BaseException:  # Ctrl-C, SIGTERM: a job left running would keep a CPU busy
                self.stop()
                raise
            if reply is None:
                self.stop()
                raise ProcessTimeout(f"{Path(WORKER[0]).name} did not finish within {timeout:g} s",
                                     "raise the timeout or check what it is waiting for")
            if not reply:  # it died in this job: its exit code is the job's, as a one-shot worker's would be
                self.stop()
                return proc.wait()
            return json.loads(reply)["code"]

    def stop(self) -> None:
        """Kill the worker's process group and reap it (idle, it holds nothing worth a graceful exit)."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=30)
        for pipe in (proc.stdin, proc.stdout):
            with contextlib.suppress(OSError):
                pipe.close()


def _read_line(fd: int, deadline: float) -> bytes | None:
    """One line from FD; b"" if it closed first (the worker died), None at the deadline."""
    line = b""
    while not line.endswith(b"\n"):
        if not select.select([fd], [], [], max(0.0, deadline - time.monotonic()))[0]:
            return None
        chunk = os.read(fd, 4096)
        if not chunk:
            return b""
        line += chunk
    return line
