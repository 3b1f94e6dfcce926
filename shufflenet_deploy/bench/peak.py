"""The device's peak compute, measured through the same TFLite runtime the models use (not a datasheet).

Two large, cache-friendly-enough kernels per precision, written without TensorFlow (tflite/build.py: a board
with only the base install builds its own) and timed on the device with runner.py (`--many`): a 1x1 convolution (56x56x256 -> 256, 205.5 M MACs) and a matmul as
FULLY_CONNECTED (64 x 1024 x 1024, 67.1 M MACs). fp32, and full-integer int8 with int8 input/output. The peak of
a precision is the faster of its two kernels, in GMAC/s (1 MAC = 1 multiply-add), at the sweep's thread count.
In memory one `KernelTiming` per kernel and precision; stored in the sweep's results as `peak` records (its
`to_dict`): {device, precision, threads, kernel, macs, median_ms, gmacs}.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ..fileio import atomic_path
from ..precisions import PEAK_KERNELS
from .settings import FULL, MeasureSettings

KERNELS = {  # name: (kind, input shape, output channels)
    "conv1x1_56x56x256x256": ("conv", (1, 56, 56, 256), 256),
    "matmul_64x1024x1024": ("fc", (64, 1024), 1024),
}
KERNEL_MACS = {"conv1x1_56x56x256x256": 56 * 56 * 256 * 256, "matmul_64x1024x1024": 64 * 1024 * 1024}
BUILD = "build1"  # bump when tflite/build.py writes different kernels: the cache key


@dataclass(frozen=True)
class KernelTiming:
    """One peak kernel timed at one precision and thread count; gmacs is None when it did not run."""
    device: str
    precision: str
    threads: int
    kernel: str
    macs: int
    median_ms: float | None
    gmacs: float | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "KernelTiming":
        """A `peak` record of a results document (checked by results.ResultsDocument.from_dict)."""
        return cls(data.get("device") or "", data["precision"], data["threads"], data.get("kernel") or "",
                   data.get("macs") or 0, data.get("median_ms"), data.get("gmacs"))


def build_kernel(kernel: str, precision: str, path: Path, seed: int = 0) -> Path:
    """Write one peak-kernel .tflite (cached by path)."""
    from ..tflite.build import single_op

    path = Path(path)
    if path.exists():
        return path
    kind, shape, out = KERNELS[kernel]
    # a temp file of its own: a fleet's device threads (or two sweeps) may build the same kernel at once
    with atomic_path(path) as tmp:
        tmp.write_bytes(single_op(kind, precision, shape, out, seed=seed))
    return path


def build_all(folder: Path) -> dict[tuple[str, str], Path]:
    """{(kernel, precision): path} for every peak kernel, built once into `folder` (no TensorFlow needed)."""
    folder = Path(folder) / BUILD
    return {(k, p): build_kernel(k, p, folder / f"peak_{k}_{p}.tflite") for k in KERNELS for p in PEAK_KERNELS}


def time_kernels(backend, threads: int, progress=lambda m: None,
                 settings: MeasureSettings = FULL) -> list[KernelTiming]:
    """Build the kernels (cached) and time them on the backend's device side by side -> `peak` records.

    `settings` (bench/settings.py): peak_runs x peak_rounds on peak_instances interpreters per kernel; `sdeploy
    bench` keeps the full counts (its peak is cached and reused), a sweep passes its own preset's."""
    from ..paths import peak_kernels

    files = build_all(peak_kernels())
    progress(f"measuring the peak compute of {backend.profile.name} ({threads} thread(s))")
    ids = {f"{k}|{p}": path for (k, p), path in files.items()}
    timed = backend.measure_many(ids, threads=threads, runs=settings.peak_runs, warmup=3, rounds=settings.peak_rounds,
                                 instances=settings.peak_instances, progress=progress)
    return peak_records(backend.profile.name, threads, {tuple(i.split("|")): timed[i].median_ms for i in ids})


def peak_records(device: str, threads: int, timings: dict[tuple[str, str], float | None]) -> list[KernelTiming]:
    """{(kernel, precision): median ms} -> one KernelTiming per kernel and precision."""
    out = []
    for (kernel, precision), ms in sorted(timings.items()):
        gmacs = KERNEL_MACS[kernel] / (ms * 1e-3) / 1e9 if ms else None
        out.append(KernelTiming(device, precision, threads, kernel, KERNEL_MACS[kernel], ms, gmacs))
    return out


def peak_gmacs(records: list[KernelTiming], precision: str, threads: int | None = None) -> float | None:
    """The precision's peak (best kernel) from `peak` records, or None when none was measured."""
    values = [r.gmacs for r in records or [] if r.precision == precision and r.gmacs
              and (threads is None or r.threads == threads)]
    return max(values) if values else None
