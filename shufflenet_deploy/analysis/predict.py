"""Per-device latency predictor from per-op measurements (nn-Meter's idea, built from our own sweep's JSON).

1. Lookup: op signature (op type, version, input/output shapes and dtypes, options — analysis/ops.py) -> the
   measured single-op time (median over the models it appeared in).
2. Regression per (precision, op type, group) for shapes never measured: time = c0 + c1*MACs + c2*input bytes
   + c3*output bytes, non-negative least squares (falls back to (precision, group) then (precision) when a key
   has fewer than MIN_SAMPLES ops).
3. Whole-model correction per precision, fitted on the sweep's models: latency = sum over op-group families
   F of a_F * (sum of F's op predictions) + b, families = grouped conv / depthwise conv / dense conv+FC /
   shuffle / the rest, non-negative least squares on relative error. It absorbs what single-op timing misses
   (XNNPACK fusing ops into one partition, caches warm vs cold, the one invoke overhead instead of one per op),
   which differs by op family: a single scale (latency = a * sum + b) left-one-out only 23% of the local sweep
   within +-10%, the per-family form 64% (with interleaved targets see the report). With fewer models than
   families + 2 it falls back to the single scale.

Evaluation is leave-one-out: for each model, the lookup, the regressions and the correction are rebuilt without
that model's ops and latency, then it is predicted. The predictor is stored as JSON per device
(schema "sdeploy-predictor/1") beside the sweep results and under $SDEPLOY_CACHE/predictors/DEVICE.json.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..errors import UserError

SCHEMA = "sdeploy-predictor/1"
MIN_SAMPLES = 4
FEATURES = ("macs", "in_bytes", "out_bytes")


def default_path(device: str) -> Path:
    from .sweep import cache_root

    return cache_root() / "predictors" / f"{device}.json"


def samples(doc: dict) -> list[dict]:
    """[{key, precision, measured_ms, ops}] for every model+precision with both a latency and per-op times."""
    from .gap import latency as _latency

    latency = {(r["model"], r["precision"]): _latency(doc, r) for r in doc.get("results", [])}
    out = []
    for key, entry in sorted(doc.get("models", {}).items()):
        for precision, data in sorted(entry.get("precisions", {}).items()):
            ops = [o for o in data.get("ops", []) if o.get("signature")]
            measured = latency.get((key, precision))
            timed = sum(o.get("time_ms") is not None for o in ops)
            if ops and measured and timed >= 0.9 * len(ops):  # ops that failed alone fall to the regressions
                out.append({"key": key, "precision": precision, "measured_ms": measured, "ops": ops})
    return out


def _features(op: dict) -> list[float]:
    return [1.0] + [float(op.get(f) or 0) for f in FEATURES]


def _regression_keys(precision: str, op: dict) -> list[str]:
    return [f"{precision}|{op['op']}|{op['group']}", f"{precision}|*|{op['group']}", f"{precision}|*|*"]


def _fit_nnls(rows: list[list[float]], y: list[float]) -> list[float]:
    from scipy.optimize import nnls

    X = np.asarray(rows, dtype=np.float64)
    scale = X.max(axis=0)
    scale[scale == 0] = 1.0
    coef, _ = nnls(X / scale, np.asarray(y, dtype=np.float64))
    return (coef / scale).tolist()


def fit_ops(sample_list: list[dict]) -> dict:
    """Lookup table + regressions from the given samples' per-op times."""
    by_sig: dict[str, list[float]] = {}
    reg_data: dict[str, tuple[list, list]] = {}
    seen: set[tuple[str, str]] = set()
    for s in sample_list:
        for op in s["ops"]:
            if op.get("time_ms") is None:
                continue
            sig = f"{s['precision']}|{op['signature']}"
            by_sig.setdefault(sig, []).append(op["time_ms"])
            if (sig, s["key"]) in seen:
                continue
            seen.add((sig, s["key"]))
            for key in _regression_keys(s["precision"], op):
                rows, y = reg_data.setdefault(key, ([], []))
                rows.append(_features(op))
                y.append(op["time_ms"])
    lookup = {sig: float(np.median(v)) for sig, v in by_sig.items()}
    regression = {key: {"coef": _fit_nnls(rows, y), "n": len(y)} for key, (rows, y) in reg_data.items()
                  if len(y) >= MIN_SAMPLES or key.endswith("|*|*")}
    return {"lookup": lookup, "regression": regression}


def op_sum(model: dict, precision: str, ops: list[dict]) -> tuple[float, dict]:
    """Sum of per-op predictions (lookup, else regression) and how many ops each path served."""
    total, used = 0.0, {"lookup": 0, "regression": 0, "none": 0}
    for op in ops:
        sig = f"{precision}|{op.get('signature')}"
        if sig in model["lookup"]:
            total += model["lookup"][sig]
            used["lookup"] += 1
            continue
        for key in _regression_keys(precision, op):
            reg = model["regression"].get(key)
            if reg:
                total += max(0.0, float(np.dot(reg["coef"], _features(op))))
                used["regression"] += 1
                break
        else:
            used["none"] += 1
    return total, used


FAMILIES = (("grouped_conv",), ("depthwise_conv",), ("dense_conv",), ("shuffle",),
            ("pooling", "concat_add", "quant", "other"))


def family_sums(model: dict, precision: str, ops: list[dict]) -> list[float]:
    return [op_sum(model, precision, [o for o in ops if o.get("group") in fam])[0] for fam in FAMILIES]


def fit_family_correction(points: list[tuple[list[float], float]]) -> dict:
    """latency = sum_F a_F * S_F + b, a_F, b >= 0, minimising relative error."""
    from scipy.optimize import nnls

    X = np.array([p[0] for p in points], dtype=np.float64)
    y = np.array([p[1] for p in points], dtype=np.float64)
    w = 1.0 / y
    A = np.hstack([X, np.ones((len(y), 1))]) * w[:, None]
    coef, _ = nnls(A, y * w)
    return {"family": [float(c) for c in coef[:-1]], "b": float(coef[-1]), "n": len(points)}


def fit_correction(points: list[tuple[float, float]]) -> dict:
    """latency = a * S + b, least squares on relative error; with < 2 points a pure scale (b = 0)."""
    if not points:
        return {"a": 1.0, "b": 0.0, "n": 0}
    S = np.array([p[0] for p in points])
    y = np.array([p[1] for p in points])
    if len(points) < 2 or np.ptp(S) == 0:
        return {"a": float(np.sum(y / S) / len(S)) if np.all(S > 0) else 1.0, "b": 0.0, "n": len(points)}
    w = 1.0 / y
    A = np.stack([S * w, w], axis=1)
    (a, b), *_ = np.linalg.lstsq(A, y * w, rcond=None)
    return {"a": float(a), "b": float(b), "n": len(points)}


def _build(sample_list: list[dict]) -> dict:
    model = fit_ops(sample_list)
    corrections = {}
    for precision in sorted({s["precision"] for s in sample_list}):
        mine = [s for s in sample_list if s["precision"] == precision]
        if len(mine) >= len(FAMILIES) + 2:
            corrections[precision] = fit_family_correction(
                [(family_sums(model, precision, s["ops"]), s["measured_ms"]) for s in mine])
        else:
            corrections[precision] = fit_correction([(op_sum(model, precision, s["ops"])[0], s["measured_ms"])
                                                     for s in mine])
    model["correction"] = corrections
    return model


def predict_ops(model: dict, precision: str, ops: list[dict]) -> dict:
    total, used = op_sum(model, precision, ops)
    corr = model["correction"].get(precision) or {"a": 1.0, "b": 0.0}
    if "family" in corr:
        predicted = float(np.dot(corr["family"], family_sums(model, precision, ops))) + corr["b"]
    else:
        predicted = corr["a"] * total + corr["b"]
    return {"predicted_ms": predicted, "op_sum_ms": total, "paths": used, "correction": corr}


def evaluate_loo(doc: dict) -> list[dict]:
    """Leave-one-out: each model predicted by a predictor built from the other models only."""
    all_samples = samples(doc)
    out = []
    for i, s in enumerate(all_samples):
        rest = [t for j, t in enumerate(all_samples) if j != i and t["key"] != s["key"]]
        if not any(t["precision"] == s["precision"] for t in rest):
            continue
        pred = predict_ops(_build(rest), s["precision"], s["ops"])
        out.append({"key": s["key"], "precision": s["precision"], "measured_ms": s["measured_ms"],
                    "predicted_ms": pred["predicted_ms"], "error": pred["predicted_ms"] / s["measured_ms"] - 1,
                    "lookup_ops": pred["paths"]["lookup"], "regression_ops": pred["paths"]["regression"]})
    return out


def fit(doc: dict) -> dict:
    """The device's predictor from a sweep document (+ its leave-one-out evaluation)."""
    all_samples = samples(doc)
    if not all_samples:
        raise UserError("the results hold no per-op timings to fit a predictor on", "run `sdeploy sweep` first")
    devices = {r["device"] for r in doc.get("results", [])}
    model = _build(all_samples)
    evaluation = evaluate_loo(doc)
    within = [abs(e["error"]) <= 0.10 for e in evaluation]
    return {"schema": SCHEMA, "device": sorted(devices)[0] if devices else None,
            "threads": (doc.get("sweep") or {}).get("threads"), "trained_on": [
                {"key": s["key"], "precision": s["precision"], "measured_ms": s["measured_ms"]} for s in all_samples],
            **model, "evaluation": evaluation,
            "within_10pct": (sum(within) / len(within)) if within else None}


def save_predictor(pred: dict, path: Path) -> None:
    from ..fileio import write_json

    write_json(Path(path), pred)


def load_predictor(path: Path) -> dict:
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise UserError(f"no predictor at {path}", "run `sdeploy sweep --device NAME` first (it fits one), or pass "
                        "--predictor FILE") from None
    if data.get("schema") != SCHEMA:
        raise UserError(f"{path} has schema {data.get('schema')!r}, this sdeploy reads {SCHEMA!r}",
                        "re-run the sweep")
    return data
