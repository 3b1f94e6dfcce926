"""export/tflite_convert.py's shared worker: one onnx2tf process serving many conversions, each one's .tflite
byte-identical to a fresh worker's, each failure the same one-line error, and nothing left running afterwards.
All slow: the serving worker imports TensorFlow and onnx2tf before its first job."""
from __future__ import annotations

import json
import os
import re
import signal
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from shufflenet_deploy.errors import UserError
from shufflenet_deploy.export import lower, tflite_convert
from shufflenet_deploy.export.pipeline import ExportRequest, export
from shufflenet_deploy.export.tflite_convert import shared_worker
from shufflenet_deploy.proc import ProcessTimeout

pytestmark = pytest.mark.slow
SMALL, OTHER = "shufflenet_v1_g3_0.25x", "shufflenet_v2_0.5x"


def _fp32(out: Path, model: str = SMALL) -> bytes:
    import torch

    torch.manual_seed(0)  # a zoo model's weights are drawn from torch's global generator: the same each time
    export(ExportRequest(model=model, input_size=32, precisions=("fp32",), verify_count=4, outdir=out))
    return (out / "model_fp32.tflite").read_bytes()


def _convert(onnx: Path, work: Path, log: Path, **kwargs) -> tflite_convert.Converted:
    return tflite_convert.convert(onnx, work, precisions=["fp32"], calibration_nhwc=None,
                                  sample_images_nhwc01=np.full((1, 32, 32, 3), 0.5, np.float32), log=log,
                                  onnx2tf_options=lower.ONNX2TF_OPTIONS, **kwargs)


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def _pids(log: Path) -> list[int]:
    """The serving workers' pids, as each job's header in the log names them."""
    return [int(p) for p in re.findall(r"--serve \(pid (\d+)\)", log.read_text())]


def _kill_mid_job(pid_of, after: float = 1.0) -> threading.Thread:
    """SIGKILL the process `pid_of()` names once it exists and has worked `after` seconds (for a serving worker
    started for the job, still inside the job: importing TensorFlow alone takes longer)."""

    def kill():
        deadline = time.monotonic() + 120
        while (pid := pid_of()) is None and time.monotonic() < deadline:
            time.sleep(0.005)
        time.sleep(after)
        os.kill(pid, signal.SIGKILL)

    thread = threading.Thread(target=kill)
    thread.start()
    return thread


def _job_child(worker, work: Path) -> int | None:
    """The child a serving worker forked for the job converting into WORK, if any: a child whose working folder is
    under WORK (each job runs in its workdir), not a helper an import forks while the worker comes up (same command
    line until it execs, so that cannot tell them apart)."""
    pid = worker.pid
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split() if pid else []
    except OSError:
        return None
    for child in children:
        try:
            cwd = os.readlink(f"/proc/{child}/cwd")
        except OSError:
            continue
        if Path(cwd).is_relative_to(work.resolve()):
            return int(child)
    return None


@pytest.fixture(scope="module")
def fresh_small(tmp_path_factory):
    """SMALL exported the usual way: a fresh worker for its one conversion."""
    out = tmp_path_factory.mktemp("fresh") / "out"
    return out, _fp32(out)


def test_a_failing_job_fails_alike_in_both_modes_and_the_shared_worker_goes_on(tmp_path):
    """A job that fails at once (its workdir is gone): the same error, its own traceback in its log."""
    work, log = tmp_path / "work", tmp_path / "conversion.log"
    work.mkdir()
    (work / "spec.json").write_text(json.dumps({"workdir": str(tmp_path / "gone"), "outdir": str(tmp_path / "tf"),
                                                "calibration_nhwc": None}))
    errors, seen = [], 0

    def fail():
        nonlocal seen
        with pytest.raises(UserError) as err:
            tflite_convert.requantize(work, output=tmp_path / "int8.tflite", log=log)
        text = log.read_text()
        assert "Traceback" in text[seen:] and "FileNotFoundError" in text[seen:]
        seen = len(text)
        errors.append(err.value.one_line())

    fail()
    with shared_worker() as worker:
        fail()
        pid = worker.pid
        with shared_worker() as inner:  # nesting reuses the outer worker
            assert inner is worker
            fail()
        assert worker.pid == pid and _pids(log) == [pid, pid]
    assert errors == [errors[0]] * 3 and "\n" not in errors[0]
    assert errors[0].startswith("onnx2tf conversion failed with exit code 1")
    assert worker.pid is None and _gone(pid)


def test_a_shared_worker_converts_byte_identical_to_fresh_ones_and_survives_a_failed_job(tmp_path, fresh_small,
                                                                                          monkeypatch):
    _, fresh = fresh_small
    bad, log = tmp_path / "bad.onnx", tmp_path / "bad.log"
    bad.write_bytes(b"not an ONNX model")
    with pytest.raises(UserError) as fresh_err:
        _convert(bad, tmp_path / "bad", log)
    seen = len(log.read_text())
    with shared_worker() as worker:
        first = _fp32(tmp_path / "a")
        pid = worker.pid
        _fp32(tmp_path / "b", OTHER)  # another model between: nothing of it may leak into the next
        second = _fp32(tmp_path / "c")
        with pytest.raises(UserError) as shared_err:
            _convert(bad, tmp_path / "bad", log)
        assert "Traceback" in log.read_text()[seen:]
        # each job guards the network and records the attempts in its own workdir, as a one-shot worker does
        with monkeypatch.context() as m:
            m.setattr(tflite_convert, "write_onnx2tf_sample", lambda workdir, images: None)
            with pytest.raises(UserError, match="tried to reach the network"):
                _convert(tmp_path / "a" / "model.onnx", tmp_path / "online", tmp_path / "online.log")
        assert json.loads((tmp_path / "online" / "network_attempts.json").read_text())
        third = _fp32(tmp_path / "d")  # the worker went on after the failed jobs
        assert worker.pid == pid
    assert first == fresh and second == fresh and third == fresh
    assert shared_err.value.one_line() == fresh_err.value.one_line() and "\n" not in fresh_err.value.one_line()
    assert worker.pid is None and _gone(pid)


def test_a_job_that_times_out_or_dies_fails_alone(tmp_path, fresh_small):
    out, _ = fresh_small
    onnx, log = out / "model.onnx", tmp_path / "conversion.log"
    with shared_worker() as worker:
        with pytest.raises(ProcessTimeout, match="did not finish within 0.5 s"):
            _convert(onnx, tmp_path / "w1", log, timeout=0.5)
        assert worker.pid is None and _gone(_pids(log)[-1])  # killed with its job
        # the job's own process dies: that job fails as a one-shot worker killed so would; the worker goes on
        # at once after its fork: with TensorFlow already imported, a small job finishes in ~0.1 s since the float
        # conversion was made faster (a kill 0.1 s after the fork missed it in CI)
        killer = _kill_mid_job(lambda: _job_child(worker, tmp_path / "w2"), after=0)
        with pytest.raises(UserError, match="conversion failed with exit code -9"):
            _convert(onnx, tmp_path / "w2", log)
        killer.join()
        pid = worker.pid
        assert pid == _pids(log)[-1]
        # the worker itself dies: the job fails the same way, and the next job starts a new worker
        killer = _kill_mid_job(lambda: worker.pid)
        with pytest.raises(UserError, match="conversion failed with exit code -9"):
            _convert(onnx, tmp_path / "w3", log)
        killer.join()
        assert worker.pid is None and _gone(pid)
        result = _convert(onnx, tmp_path / "w4", log)
        assert result.files["fp32"].exists() and result.timings
        pids = _pids(log)
        assert len(set(pids)) == 3 and worker.pid == pids[-1]
    assert all(_gone(p) for p in pids)
