"""Per-device latency predictor from per-op measurements (nn-Meter's idea, built from our own sweep's JSON).

1. Op level. An op whose exact signature (op type, version, shapes, dtypes, options — tflite/ops.py) was
   measured gets that single-op time (median over the models it appeared in). Any other op gets a regression:
   time = c0 + c1*MACs + c2*input bytes + c3*output bytes, non-negative least squares, fitted per (precision, op
   type, group, kernel size), falling back to (precision, op type, group), (precision, group), (precision) when a
   key has fewer than MIN_SAMPLES ops. A PAD that XNNPACK folds into the next conv (ops.py `fused_into`) is 0.
2. Model level: latency = a * (sum of the op predictions), one scale a per precision: the geometric mean over the
   sweep's models of measured / summed. Ops timed one by one miss what a whole graph does (the next op reads its
   input from cache or not, one invoke instead of many); on `local` a is 1.05-1.07.

   Committed local sweep (benchmarks/results/gap_report, lowered graph, 26 model x precision pairs incl.
   ShuffleNet v2, AMD EPYC AVX2, 2026-12-03): a = 1.08 fp32 (0.95-1.23 over the models), 1.02 int8 (0.98-1.06);
   leave-one-out 24 of 26 within +-10%, median |error| 3.4% (2026-11-28 on an earlier host: 24 of 26, 4.0%). On
   onnx2tf's plain graph (22 pairs, no v2): 20 of 22, 3.1%.
   Tried and dropped: a per-family correction (latency = sum_F a_F * S_F + b over grouped / depthwise / dense conv
   / shuffle / rest, NNLS): 13 of 22 within +-10% on the previous (plain) sweep, where a * S + b and the single
   scale gave 16 — the extra parameters overfit 11 models per precision. The two changes that mattered were in the
   measurements: counting XNNPACK-folded PADs at their alone-time (0.5-0.75 ms for the [1,224,224,3] stem PAD,
   more than a whole 0.25x model takes) and one interpreter per model (a slow-mode instance moved a model by
   ~20%; runner.py --instances) — with both fixed the same predictor went from 59% to 82%, the regression weights
   below to 91% (plain graph, 22 pairs).

Evaluation is leave-one-out: for each model, the lookup, the regressions and the scale are rebuilt without that
model's ops and latency, then it is predicted. The predictor is one typed document (analysis/predictor.py:
`Predictor`, schema "sdeploy-predictor/3"), stored as JSON per device beside the sweep results and under
$SDEPLOY_CACHE/predictors/DEVICE.json; `store` writes it, `load_predictor` reads it (strictly).

A predictor is valid on the machine it was fitted on only: it carries that machine's facts (`machine`,
devices/machine.py: CPU, cores, ISA, runtime, threads), and `differences` says what differs on the device it is
applied to (`sdeploy predict` refuses then, unless --force-predictor).
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from ..bench.results import ResultsDocument
from ..devices.machine import MachineFacts
from ..errors import UserError
from .predictor import FEATURES, UNIT_SCALE, Evaluation, OpModel, Predictor, Regression, Scale, TrainedOn
from .predictor import SCHEMA  # noqa: F401  (predict.SCHEMA: the version store() writes)

MIN_SAMPLES = 6
OpRecord = dict[str, Any]  # one op of a sweep document's `models` block (tflite/ops.py OpInfo + time_ms)


@dataclass(frozen=True)
class Sample:
    """One model + precision of a sweep with both a latency and per-op times: what a predictor is fitted on."""
    key: str
    precision: str
    measured_ms: float
    ops: tuple[OpRecord, ...]


@dataclass(frozen=True)
class PathCounts:
    """How many of a model's ops each prediction path served."""
    lookup: int = 0
    regression: int = 0
    fused: int = 0
    none: int = 0


@dataclass(frozen=True)
class Prediction:
    """A model's predicted latency: scale x the sum of its op predictions, and how the ops were predicted."""
    predicted_ms: float
    op_sum_ms: float
    paths: PathCounts
    correction: Scale


def default_path(device: str) -> Path:
    from ..paths import predictor

    return predictor(device)


def samples(doc: ResultsDocument) -> list[Sample]:
    """Every model+precision with both a latency and per-op times."""
    latency = {(r.key, r.precision): doc.latency(r) for r in doc.results}
    out = []
    for key, entry in sorted(doc.models.items()):
        for precision, data in sorted(entry.get("precisions", {}).items()):
            ops = [o for o in data.get("ops", []) if o.get("signature")]
            measured = latency.get((key, precision))
            timed = sum(o.get("time_ms") is not None for o in ops)
            if ops and measured and timed >= 0.9 * len(ops):  # ops that failed alone fall to the regressions
                out.append(Sample(key, precision, measured, tuple(ops)))
    return out


def _features(op: OpRecord) -> list[float]:
    return [1.0] + [float(op.get(f) or 0) for f in FEATURES]


def _regression_keys(precision: str, op: OpRecord) -> list[str]:
    kernel = "x".join(map(str, op.get("kernel") or [])) or "-"
    return [f"{precision}|{op['op']}|{op['group']}|{kernel}", f"{precision}|{op['op']}|{op['group']}",
            f"{precision}|*|{op['group']}", f"{precision}|*|*"]


def _is_fused(op: OpRecord) -> bool:
    return op.get("fused_into") is not None


def _fit_nnls(rows: list[list[float]], y: list[float]) -> list[float]:
    """Non-negative least squares, each row weighted 1/sqrt(time): between absolute error (the big convs dominate
    and small ops get a too-large intercept: a 0.25x model came out +26%) and relative error (the small ops
    dominate); leave-one-out on the local sweep: unweighted 18, 1/sqrt 20, 1/time 19 of 22 within +-10%."""
    from scipy.optimize import nnls

    X = np.asarray(rows, dtype=np.float64)
    target = np.asarray(y, dtype=np.float64)
    weight = 1.0 / np.sqrt(np.maximum(target, 1e-4))
    scale = X.max(axis=0)
    scale[scale == 0] = 1.0
    coef, _ = nnls(X / scale * weight[:, None], target * weight)
    return (coef / scale).tolist()


def fit_ops(sample_list: list[Sample]) -> OpModel:
    """Lookup table + regressions from the given samples' per-op times (no scales yet: `_build` adds them)."""
    by_sig: dict[str, list[float]] = {}
    reg_data: dict[str, tuple[list, list]] = {}
    seen: set[tuple[str, str]] = set()
    for s in sample_list:
        for op in s.ops:
            if op.get("time_ms") is None or _is_fused(op):
                continue
            sig = f"{s.precision}|{op['signature']}"
            by_sig.setdefault(sig, []).append(op["time_ms"])
            if (sig, s.key) in seen:
                continue
            seen.add((sig, s.key))
            for key in _regression_keys(s.precision, op):
                rows, y = reg_data.setdefault(key, ([], []))
                rows.append(_features(op))
                y.append(op["time_ms"])
    lookup = {sig: float(np.median(v)) for sig, v in by_sig.items()}
    regression = {key: Regression(tuple(_fit_nnls(rows, y)), len(y)) for key, (rows, y) in reg_data.items()
                  if len(y) >= MIN_SAMPLES or key.endswith("|*|*")}
    return OpModel(lookup, regression)


def op_time(model: OpModel, precision: str, op: OpRecord) -> tuple[float, str]:
    """(predicted in-isolation time of one op, which path served it: fused / lookup / regression / none)."""
    if _is_fused(op):
        return 0.0, "fused"
    measured = model.lookup.get(f"{precision}|{op.get('signature')}")
    if measured is not None:
        return measured, "lookup"
    for key in _regression_keys(precision, op):
        reg = model.regression.get(key)
        if reg:
            return max(0.0, float(np.dot(reg.coef, _features(op)))), "regression"
    return 0.0, "none"


def op_sum(model: OpModel, precision: str, ops: list[OpRecord]) -> tuple[float, PathCounts]:
    """Sum of per-op predictions and how many ops each path served."""
    total, used = 0.0, {"lookup": 0, "regression": 0, "fused": 0, "none": 0}
    for op in ops:
        t, path = op_time(model, precision, op)
        total += t
        used[path] += 1
    return total, PathCounts(**used)


def fit_scale(points: list[tuple[float, float]]) -> Scale:
    """[(sum of op predictions, measured ms)] -> the geometric mean of measured/sum, its spread and count."""
    ratios = np.array([m / s for s, m in points if s > 0 and m > 0], dtype=np.float64)
    if not ratios.size:
        return UNIT_SCALE
    return Scale(float(np.exp(np.log(ratios).mean())), int(ratios.size), float(ratios.min()), float(ratios.max()))


def _build(sample_list: list[Sample]) -> OpModel:
    model = fit_ops(sample_list)
    return replace(model, correction={
        precision: fit_scale([(op_sum(model, precision, list(s.ops))[0], s.measured_ms)
                              for s in sample_list if s.precision == precision])
        for precision in sorted({s.precision for s in sample_list})})


def predict_ops(model: OpModel | Predictor, precision: str, ops: list[OpRecord]) -> Prediction:
    """The latency of a model with these ops (a fitted predictor, or a bare op model)."""
    model = model.model if isinstance(model, Predictor) else model
    total, used = op_sum(model, precision, ops)
    corr = model.correction.get(precision) or UNIT_SCALE
    return Prediction(corr.a * total, total, used, corr)


def evaluate_loo(doc: ResultsDocument) -> list[Evaluation]:
    """Leave-one-out: each model predicted by a predictor built from the other models only."""
    all_samples = samples(doc)
    out = []
    for i, s in enumerate(all_samples):
        rest = [t for j, t in enumerate(all_samples) if j != i and t.key != s.key]
        if not any(t.precision == s.precision for t in rest):
            continue
        pred = predict_ops(_build(rest), s.precision, list(s.ops))
        out.append(Evaluation(s.key, s.precision, s.measured_ms, pred.predicted_ms,
                              pred.predicted_ms / s.measured_ms - 1, pred.paths.lookup, pred.paths.regression))
    return out


def fit(doc: ResultsDocument) -> Predictor:
    """The device's predictor from a sweep document (+ its leave-one-out evaluation, run once, stored with it)."""
    all_samples = samples(doc)
    if not all_samples:
        raise UserError("the results hold no per-op timings to fit a predictor on", "run `sdeploy sweep` first")
    devices = {r.device for r in doc.results}
    evaluation = evaluate_loo(doc)
    within = [abs(e.error) <= 0.10 for e in evaluation]
    return Predictor(device=sorted(devices)[0] if devices else None, threads=doc.sweep.get("threads"),
                     graph=doc.sweep.get("graph"), machine=fitted_on(doc), model=_build(all_samples),
                     trained_on=tuple(TrainedOn(s.key, s.precision, s.measured_ms) for s in all_samples),
                     evaluation=tuple(evaluation), within_10pct=(sum(within) / len(within)) if within else None)


def store(pred: Predictor, outdir: Path) -> Path:
    """Keep a fitted predictor beside its sweep (OUTDIR/predictor-DEVICE.json, where `sdeploy report` finds it)
    and as the device's default for `sdeploy predict` (default_path)."""
    path = Path(outdir) / f"predictor-{pred.device}.json"
    save_predictor(pred, path)
    save_predictor(pred, default_path(pred.device))
    return path


def save_predictor(pred: Predictor, path: Path) -> None:
    """The predictor's one writer."""
    from ..fileio import write_json

    write_json(Path(path), pred.to_dict())


def fitted_on(doc: ResultsDocument) -> MachineFacts | None:
    """The machine a sweep's results were measured on (its first result with CPU facts), None when unrecorded."""
    for r in doc.results:
        machine = MachineFacts.of(r.device_facts, r.runtime, r.threads, r.affinity)
        if machine:
            return machine
    return None


def differences(pred: Predictor, facts: dict | None, runtime: dict | None) -> list[str]:
    """Why this predictor does not hold on a device with these CPU facts and runtime ([] when it does). The thread
    count is the predictor's own (a prediction is for the threads it was fitted at), so only the machine and the
    runtime are compared; an unrecorded side is a difference (nothing says the numbers hold)."""
    fitted = pred.machine
    if fitted is None:
        return ["the predictor does not record the machine it was fitted on (an older sdeploy, or a device "
                "without a readable /proc/cpuinfo)"]
    here = MachineFacts.of(facts, runtime, fitted.threads, fitted.cpus)
    if here is None:
        return ["this device's CPU facts are unknown (no readable /proc/cpuinfo), so the predictor's cannot be "
                "checked against them"]
    return fitted.differences(here)


def load_predictor(path: Path, device: str | None = None) -> Predictor:
    """The predictor's one reader (strict: analysis/predictor.py); one UserError naming the file otherwise."""
    from ..fileio import read_json_bounded

    path = Path(path)
    if not path.exists():
        fit_hint = f"sdeploy sweep --device {device}" if device else "sdeploy sweep --device NAME"
        raise UserError(f"no predictor at {path}" + (f": none has been fitted for {device!r} yet" if device else ""),
                        f"fit one with `{fit_hint}` (it stores the device's predictor), or pass --predictor FILE")
    return Predictor.from_dict(read_json_bounded(path, what="predictor"), str(path))
