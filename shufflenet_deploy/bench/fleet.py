"""Several devices at once: one worker thread per device, so a device never runs two measurements at once and
a slow or dead device does not hold up the others.

Why threads: every measurement is a child process (the runner locally, ssh, adb) that the worker waits on, so
workers spend their time blocked, and the results stay in one process for one report. A device that fails
(unreachable, dropped mid-run, any error) ends only its own worker: its finished results are kept by the job
itself (bench and sweep write them, marked partial), its error is returned, and the caller exits non-zero
naming it. Rerunning the same command resumes each device from what it already wrote.

Ctrl-C: the main thread tells every worker to stop, and each stops at its next progress step (between
measurements: a worker cannot be interrupted inside a child process it waits on; from a terminal, Ctrl-C reaches
those children too and ends them at once). Then the interrupt goes on to the CLI (exit 130). A sweep keeps every
model it finished (it saves after each); a bench's measurements of the interrupted run are not kept, as with one
device.
"""
from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable

from ..errors import DeviceError, UserError

Job = Callable[[str, Callable[[str], None]], Any]


@dataclass
class Outcome:
    device: str
    value: Any = None
    error: str | None = None
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.error is None


class Stopped(KeyboardInterrupt):
    """Raised in a worker at its next progress step after Ctrl-C. A KeyboardInterrupt, so no `except Exception`
    or `except UserError` on the way (a sweep records a failed export as a skip) mistakes it for a result."""


def run_fleet(devices: list[str], job: Job, progress: Callable[[str, str], None] = lambda d, m: None
              ) -> dict[str, Outcome]:
    """Run JOB(device, progress) for every device concurrently; {device: Outcome} in the order given."""
    stop = threading.Event()

    def one(device: str) -> Outcome:
        t0 = time.monotonic()

        def say(msg: str) -> None:
            if stop.is_set():
                raise Stopped(device)
            progress(device, msg)

        try:
            value = job(device, say)
            progress(device, "done")
            return Outcome(device, value, seconds=time.monotonic() - t0)
        except Stopped:
            progress(device, "stopped (Ctrl-C)")
            return Outcome(device, error="stopped by Ctrl-C", seconds=time.monotonic() - t0)
        except UserError as err:  # DeviceError included: unreachable, dropped, timed out
            progress(device, f"failed: {err.one_line()}")
            return Outcome(device, error=err.one_line(), seconds=time.monotonic() - t0)
        except Exception as err:  # a bug on one device must not cost the others their results
            progress(device, f"failed: {type(err).__name__}: {err}")
            return Outcome(device, error=f"{type(err).__name__}: {err}", seconds=time.monotonic() - t0)

    with ThreadPoolExecutor(max_workers=len(devices), thread_name_prefix="sdeploy-device") as pool:
        futures = {device: pool.submit(one, device) for device in devices}
        try:
            return {device: future.result() for device, future in futures.items()}
        except KeyboardInterrupt:
            stop.set()
            for device, future in futures.items():
                if not future.done():
                    progress(device, "stopping after the running measurement (Ctrl-C)")
            for future in futures.values():
                future.result()  # each worker ends at its next step
            raise


def raise_for_failures(outcomes: dict[str, Outcome], what: str) -> None:
    """One line naming every device that failed (exit 3), after the others' results were written."""
    failed = [o for o in outcomes.values() if not o.ok]
    if failed:
        done = [o.device for o in outcomes.values() if o.ok]
        raise DeviceError(f"{what} failed on {len(failed)} of {len(outcomes)} device(s): "
                          + "; ".join(o.error if o.error.startswith(f"{o.device}:") else f"{o.device}: {o.error}"
                                      for o in failed),
                          (f"{', '.join(done)} finished; " if done else "")
                          + "rerun the same command to resume the failed device(s) (finished work is kept)")
