"""How hard a measurement tries: the counts `sdeploy sweep` and `sdeploy bench` measure with, as named presets.

`full` is what both commands always measured with, and stays their default. `quick` is a quick look at a
fraction of the cost: every output is still produced (whole-model latency, per-op times and shares, the
interleaved pass, the per-op re-timing, the peak kernels, the predictor), each from fewer runs, so its numbers
are noisier — good for checking that a device, a model or the pipeline works (the tests use it), not for figures
to quote. Single options override a preset (`sdeploy sweep --preset quick --op-runs 10`).

Recorded with the results: a sweep's document carries `sweep.preset` and `sweep.measure` (every count below),
and its report says "quick preset" next to the runs; a bench result measured with the quick preset says so in
its notes (each result records its runs, warmup, trials and instances anyway).

`MeasureSettings` is passed whole down the sweep (analysis/sweep.py: whole model, per-op, interleaved pass,
re-timing, peak kernels in bench/peak.py); `BenchSettings` holds what `sdeploy bench` has. A leaf module: no
project imports but errors.py.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from ..errors import UserError

PRESET_NAMES = ("full", "quick")


def _check(settings, zero_ok: tuple[str, ...] = ()) -> None:
    """Every count a whole number >= 1 (>= 0 for those in zero_ok); flags are booleans; a known preset name."""
    for f in dataclasses.fields(settings):
        value = getattr(settings, f.name)
        if f.name == "preset":
            if value not in PRESET_NAMES:
                raise UserError(f"unknown measurement preset {value!r}", f"use one of {', '.join(PRESET_NAMES)}")
        elif f.type in ("bool", bool):
            if not isinstance(value, bool):
                raise UserError(f"bad measurement setting {f.name}={value!r}", "use true or false")
        else:
            low = 0 if f.name in zero_ok else 1
            if type(value) is not int or value < low:
                raise UserError(f"bad measurement setting {f.name}={value!r}", f"use a whole number >= {low}")


@dataclass(frozen=True)
class MeasureSettings:
    """Every count `sdeploy sweep` measures with (the `full` preset's values are the defaults)."""

    preset: str = "full"
    runs: int = 30                    # whole-model timed runs per model and precision
    warmup: int = 5                   # whole-model warm-up runs
    model_instances: int = 3          # interpreters the whole-model runs are spread over (runner.py --instances)
    op_runs: int = 15                 # per-op timing: runs of each single-op model per round
    op_rounds: int = 3                # per-op timing: interleaved rounds
    interleaved_rounds: int = 8       # the final pass (every model side by side in one process): rounds
    interleaved_runs: int = 10        # ... runs per model per round
    interleaved_instances: int = 4    # ... interpreters per model, used in turn
    retime_rounds: int = 4            # re-timing every distinct single-op model side by side: rounds
    retime_runs: int = 10             # ... runs per round
    retime_instances: int = 2         # ... interpreters per model
    peak: bool = True                 # measure the peak kernels (bench/peak.py); False: % of peak stays unknown
    peak_runs: int = 10               # peak kernels: runs per round
    peak_rounds: int = 4              # ... rounds
    peak_instances: int = 2           # ... interpreters per kernel

    def __post_init__(self):
        _check(self, zero_ok=("warmup",))

    def with_overrides(self, **changes) -> MeasureSettings:
        """These settings with every change that is not None applied (CLI options left unset are None)."""
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class BenchSettings:
    """What `sdeploy bench` measures with (the `full` preset's values are the defaults)."""

    preset: str = "full"
    runs: int = 50
    warmup: int = 10
    instances: int = 3                # interpreters each trial's runs are spread over (Linux devices)
    trials: int = 1

    def __post_init__(self):
        _check(self, zero_ok=("warmup",))

    def with_overrides(self, **changes) -> BenchSettings:
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def note(self) -> str | None:
        """The line a result measured with the quick preset carries in its notes (None for full)."""
        if self.preset == "full":
            return None
        return (f"measured with --preset {self.preset} (runs {self.runs}, warmup {self.warmup}, instances "
                f"{self.instances}, trials {self.trials}): a quick look, noisier than the full preset")


FULL = MeasureSettings()
QUICK = MeasureSettings("quick", runs=5, warmup=1, model_instances=2, op_runs=3, op_rounds=1,
                        interleaved_rounds=2, interleaved_runs=3, interleaved_instances=2,
                        retime_rounds=1, retime_runs=3, retime_instances=1,
                        peak_runs=3, peak_rounds=1, peak_instances=1)
SWEEP_PRESETS = {"full": FULL, "quick": QUICK}
BENCH_PRESETS = {"full": BenchSettings(), "quick": BenchSettings("quick", runs=10, warmup=2, instances=2, trials=1)}


def _preset(table: dict, name: str, option: str = "--preset"):
    if name not in table:
        raise UserError(f"unknown {option} {name!r}", f"use one of {', '.join(table)}")
    return table[name]


def sweep_preset(name: str) -> MeasureSettings:
    """The named sweep preset; an unknown name is one line."""
    return _preset(SWEEP_PRESETS, name)


def bench_preset(name: str) -> BenchSettings:
    return _preset(BENCH_PRESETS, name)


def parse_count(option: str, value, minimum: int = 1) -> int | None:
    """A CLI count (None when not given) -> int; anything but a whole number >= minimum is one line naming
    the option."""
    if value is None:
        return None
    try:
        number = int(str(value).strip()) if not isinstance(value, (bool, float)) else None
    except ValueError:
        number = None
    if number is None or number < minimum:
        raise UserError(f"bad {option} {value!r}", f"use a whole number >= {minimum}")
    return number
