"""`sdeploy compare BASE NEW`: did a model change make the device slower, with the noise in mind?

Results are paired by device, model key, precision and threads. For each pair: the ratio of medians NEW / BASE
and a bootstrap 95% confidence interval of that ratio from the stored run times (both sides resampled, 2000
times, seeded). Verdicts:
    regression  slower by more than --max-regression, and the whole interval above 1 (not noise)
    slower      the whole interval above 1, within the threshold
    faster      the whole interval below 1
    same        otherwise (the interval holds 1)
Results from different devices or runtimes (TFLite interpreters compared with TFLite interpreters, ONNX Runtime
with ONNX Runtime), or that cannot all be paired, are refused with one line (`allow_mixed` pairs what it can and
says which were left out).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from ..errors import UserError
from ..escape import md_cell
from ..precisions import ONNX_ROWS
from .results import BenchResult

RESAMPLES = 2000


@dataclass
class Pair:
    device: str
    model_key: str
    precision: str
    threads: int
    base_ms: float
    new_ms: float
    ratio: float
    ci: tuple[float, float]
    verdict: str

    def to_dict(self) -> dict:
        return asdict(self)


def _key(r: BenchResult) -> tuple:
    return r.device, r.key, r.precision, r.threads


def _family(r: BenchResult) -> str:
    """Which kind of runtime ran the row: ONNX Runtime (model.onnx, `bench --runtime`) or a TFLite interpreter.
    Runtimes are compared within a family: a `--runtime all` result pairs its TFLite rows with a TFLite-only one."""
    return "onnx" if r.precision in ONNX_ROWS else "tflite"


def _runtime(r: BenchResult) -> str:
    return f"{(r.runtime or {}).get('name')} {(r.runtime or {}).get('version')}"


def ratio_ci(base: list[float], new: list[float], seed: int = 0) -> tuple[float, float, float]:
    """(median ratio new/base, 2.5th, 97.5th percentile of the bootstrapped ratio)."""
    a, b = np.asarray(base, np.float64), np.asarray(new, np.float64)
    rng = np.random.default_rng(seed)
    ra = np.median(a[rng.integers(0, a.size, (RESAMPLES, a.size))], axis=1)
    rb = np.median(b[rng.integers(0, b.size, (RESAMPLES, b.size))], axis=1)
    ratios = rb / ra
    return float(np.median(b) / np.median(a)), float(np.percentile(ratios, 2.5)), float(np.percentile(ratios, 97.5))


def verdict(ratio: float, low: float, high: float, max_regression: float) -> str:
    if low > 1 and ratio > 1 + max_regression:
        return "regression"
    if low > 1:
        return "slower"
    if high < 1:
        return "faster"
    return "same"


def compare(base: list[BenchResult], new: list[BenchResult], *, max_regression: float = 0.05,
            allow_mixed: bool = False) -> tuple[list[Pair], list[str]]:
    """(pairs, notes): notes say what --allow-mixed let through."""
    notes = []
    checks = [("devices", lambda r: r.device, base, new)]
    for family in sorted({_family(r) for r in base} & {_family(r) for r in new}):
        checks.append(("runtimes", _runtime, [r for r in base if _family(r) == family],
                       [r for r in new if _family(r) == family]))
    for what, attr, base_rows, new_rows in checks:
        a, b = sorted({attr(r) for r in base_rows}), sorted({attr(r) for r in new_rows})
        if a != b:
            message = f"BASE and NEW come from different {what} ({', '.join(a)} vs {', '.join(b)})"
            if not allow_mixed:
                raise UserError(message, "compare results of the same device and runtime, or pass --allow-mixed")
            notes.append(message + ": compared anyway (--allow-mixed)")
    by_base, by_new = {_key(r): r for r in base}, {_key(r): r for r in new}
    unpaired = sorted(set(by_base) ^ set(by_new))
    if unpaired:
        names = ", ".join(f"{k[1]} {k[2]} t={k[3]} on {k[0]}" for k in unpaired[:3])
        message = f"{len(unpaired)} result(s) have no counterpart to pair with ({names})"
        if not allow_mixed:
            raise UserError(message, "bench the same models, precisions and threads, or pass --allow-mixed")
        notes.append(message + ": left out (--allow-mixed)")
    pairs = []
    for key in sorted(set(by_base) & set(by_new)):
        a, b = by_base[key], by_new[key]
        if not a.times_ms or not b.times_ms:
            raise UserError(f"{key[1]} {key[2]}: a result has no stored run times to bootstrap from",
                            "compare results written by `sdeploy bench` (bench.json)")
        ratio, low, high = ratio_ci(a.times_ms, b.times_ms)
        pairs.append(Pair(*key, float(np.median(a.times_ms)), float(np.median(b.times_ms)), ratio, (low, high),
                          verdict(ratio, low, high, max_regression)))
    if not pairs:
        raise UserError("nothing to compare: no result of BASE pairs with one of NEW")
    return pairs, notes


def markdown(pairs: list[Pair], notes: list[str], max_regression: float) -> str:
    """A table for a CI job summary."""
    lines = ["| model | precision | threads | device | base ms | new ms | new/base | 95% CI | verdict |",
             "|---|---|---|---|---|---|---|---|---|"]
    for p in pairs:
        mark = "**regression**" if p.verdict == "regression" else p.verdict
        lines.append(f"| {md_cell(p.model_key)} | {md_cell(p.precision)} | {p.threads} | {md_cell(p.device)} | "
                     f"{p.base_ms:.3f} | "
                     f"{p.new_ms:.3f} | {p.ratio:.3f} | {p.ci[0]:.3f}-{p.ci[1]:.3f} | {mark} |")
    lines.append("")
    lines.append(f"Regression: slower by more than {100 * max_regression:g}% with the whole bootstrap interval "
                 "above 1.")
    lines += [f"- {md_cell(n)}" for n in notes]
    return "\n".join(lines) + "\n"
