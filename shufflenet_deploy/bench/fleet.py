"""Several devices at once: one worker thread per device, so a device never runs two measurements at once and
a slow or dead device does not hold up the others.

Why threads: every measurement is a child process (the runner locally, ssh, adb) that the worker waits on, so
workers spend their time blocked, and the results stay in one process for one report. A device that fails
(unreachable, dropped mid-run, any error) ends only its own worker: its finished results are kept by the job
itself (bench and sweep write them, marked partial), its error is returned, and the caller exits non-zero
naming it. Rerunning the same command resumes each device from what it already wrote.
"""
from __future__ import annotations

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


def run_fleet(devices: list[str], job: Job, progress: Callable[[str, str], None] = lambda d, m: None
              ) -> dict[str, Outcome]:
    """Run JOB(device, progress) for every device concurrently; {device: Outcome} in the order given."""

    def one(device: str) -> Outcome:
        t0 = time.monotonic()
        try:
            value = job(device, lambda msg: progress(device, msg))
            progress(device, "done")
            return Outcome(device, value, seconds=time.monotonic() - t0)
        except UserError as err:  # DeviceError included: unreachable, dropped, timed out
            progress(device, f"failed: {err.one_line()}")
            return Outcome(device, error=err.one_line(), seconds=time.monotonic() - t0)
        except Exception as err:  # a bug on one device must not cost the others their results
            progress(device, f"failed: {type(err).__name__}: {err}")
            return Outcome(device, error=f"{type(err).__name__}: {err}", seconds=time.monotonic() - t0)

    with ThreadPoolExecutor(max_workers=len(devices), thread_name_prefix="sdeploy-device") as pool:
        futures = {device: pool.submit(one, device) for device in devices}
        return {device: future.result() for device, future in futures.items()}


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
