"""The peak cache: `$SDEPLOY_CACHE/peaks/DEVICE.json`, the device's measured peak kernels kept between benches.

One typed document (schema "sdeploy-peaks/1"), one writer (`store`), one strict reader (`PeakCache.load`). Each
record carries the machine it was measured on (devices/machine.py): a cache found under a device's name is used
only where the facts match, because a name is not a machine (a CI cache restored on another CPU, `local` on a new
laptop). A record measured elsewhere, a cache from an older sdeploy (a bare list without machine facts) or a
damaged file is never an error that loses a bench: the caller re-measures and says why (`lookup`'s reason).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..devices.machine import MachineFacts, runtime_id
from ..errors import UserError
from ..fileio import read_json_bounded, write_json
from ..validate import is_int, is_number
from ..precisions import PEAK_KERNELS
from .peak import KERNEL_MACS, KernelTiming

SCHEMA = "sdeploy-peaks/1"


def cache_path(device: str) -> Path:
    from ..paths import peak_cache

    return peak_cache(device)


@dataclass(frozen=True)
class PeakRecord:
    """One peak kernel's timing: bench/peak.py's record plus the machine it ran on."""
    device: str
    precision: str
    threads: int
    kernel: str
    macs: int
    median_ms: float
    gmacs: float
    runtime: str | None
    machine: MachineFacts

    def timing(self) -> KernelTiming:
        """The kernel's timing without where it ran (what a bench row and a sweep's `peak` block hold)."""
        return KernelTiming(self.device, self.precision, self.threads, self.kernel, self.macs, self.median_ms,
                            self.gmacs)

    def to_dict(self) -> dict:
        """bench/peak.py's record shape (what results documents and peak_gmacs read) + runtime and machine."""
        return {"device": self.device, "precision": self.precision, "threads": self.threads, "kernel": self.kernel,
                "macs": self.macs, "median_ms": self.median_ms, "gmacs": self.gmacs, "runtime": self.runtime,
                "machine": self.machine.to_dict()}

    @classmethod
    def from_dict(cls, data, where: str) -> "PeakRecord":
        def bad(why: str):
            return UserError(f"{where}: a peak record {why}", "delete the file or run `sdeploy bench ... --peak`")

        if not isinstance(data, dict):
            raise bad("is not an object")
        kernel, precision, threads = data.get("kernel"), data.get("precision"), data.get("threads")
        if kernel not in KERNEL_MACS or precision not in PEAK_KERNELS:
            raise bad(f"names kernel {kernel!r} / precision {precision!r}, not one of bench/peak.py's")
        if not (is_int(threads) and 0 < threads <= 1024):
            raise bad(f"has threads {threads!r}")
        ms, gmacs = data.get("median_ms"), data.get("gmacs")
        for name, value in (("median_ms", ms), ("gmacs", gmacs)):
            if not (is_number(value) and 0 < value < 1e7):
                raise bad(f"has {name} {value!r} (a positive, finite number)")
        implied = KERNEL_MACS[kernel] / (ms * 1e-3) / 1e9
        if data.get("macs") != KERNEL_MACS[kernel] or abs(gmacs - implied) > 1e-6 * gmacs:
            raise bad(f"has MACs or GMAC/s that do not follow from its kernel and time ({kernel}, {ms} ms)")
        if data.get("runtime") is not None and not isinstance(data.get("runtime"), str):
            raise bad("has a runtime that is not a string")
        if not isinstance(data.get("device"), str):
            raise bad("has no device name")
        return cls(data["device"], precision, threads, kernel, data["macs"], float(ms), float(gmacs),
                   data.get("runtime"), MachineFacts.from_dict(data.get("machine"), where))


@dataclass
class PeakCache:
    device: str
    records: list[PeakRecord]

    @classmethod
    def load(cls, path: Path) -> "PeakCache":
        """Strict: schema, every record typed and consistent; a missing file is an empty cache."""
        path = Path(path)
        device = path.stem
        if not path.exists():
            return cls(device, [])
        data = read_json_bounded(path, what="peak cache")
        if isinstance(data, list):
            raise UserError(f"{path} is a peak cache from an older sdeploy (no machine facts)",
                            "it is re-measured and rewritten")
        if not isinstance(data, dict) or data.get("schema") != SCHEMA:
            schema = data.get("schema") if isinstance(data, dict) else None
            raise UserError(f"{path} has schema {schema!r}, this sdeploy reads {SCHEMA!r}", "it is re-measured")
        records = data.get("records")
        if not isinstance(records, list):
            raise UserError(f"{path}: `records` is not a list", "it is re-measured")
        return cls(device, [PeakRecord.from_dict(r, str(path)) for r in records])

    def to_dict(self) -> dict:
        return {"schema": SCHEMA, "device": self.device, "records": [r.to_dict() for r in self.records]}


def lookup(device: str, machine: MachineFacts | None, runtime: dict | None,
           threads: int) -> tuple[list[PeakRecord], str | None]:
    """(the cached peak records valid on this machine, runtime and thread count, why none are when so).

    The reason is said to the user when the caller re-measures: "measured on another machine (CPU ... vs ...)",
    "from an older sdeploy", "damaged (...)"; None when there simply was no cached peak yet."""
    path = cache_path(device)
    try:
        cache = PeakCache.load(path)
    except UserError as err:
        return [], f"the cached peak is not usable: {err.message}"
    rt = runtime_id(runtime)
    mine = [r for r in cache.records if r.runtime == rt and r.threads == threads]
    if not mine:
        return [], None
    if machine is None:
        return [], (f"the cached peak of {device} cannot be checked against this device (its CPU facts are "
                    "unknown)")
    differs = mine[0].machine.differences(machine)
    if differs:
        return [], f"the cached peak of {device} was measured on another machine ({'; '.join(differs)})"
    return mine, None


def store(device: str, machine: MachineFacts | None, runtime: dict | None, threads: int,
          records: list[KernelTiming]) -> None:
    """Replace the cache's records for this runtime and thread count with freshly measured ones (others kept;
    a damaged or older cache is replaced whole). Nothing is cached without machine facts: it could not be checked."""
    if machine is None:
        return
    path = cache_path(device)
    try:
        cache = PeakCache.load(path)
    except UserError:
        cache = PeakCache(device, [])
    rt = runtime_id(runtime)
    keep = [r for r in cache.records if (r.runtime, r.threads) != (rt, threads)]
    fresh = [PeakRecord(device, r.precision, threads, r.kernel, r.macs, r.median_ms, r.gmacs, rt, machine)
             for r in records if r.median_ms and r.gmacs]
    try:
        write_json(path, PeakCache(device, keep + fresh).to_dict())
    except OSError:
        pass  # a cache that cannot be written costs a re-measurement next time, never this bench's results
