"""Repair an int8 export until it meets an accuracy target, cheapest step first; record every attempt.

`--int8-target agreement=99,drop=0.5` (the default for trained checkpoints): top-1 agreement with the fp32
TFLite on the evaluation images >= 99%, and, when those images are labelled (`--val`, or the bundled model's
val split), a top-1 drop <= 0.5 points. The steps, in order of cost (each one is a requantization of the same
saved_model, lowered like the shipped file; no onnx2tf rerun):

1. `plain`: TensorFlow's own conversion (min/max ranges on the calibration images), what every export ships.
2. `more-calibration`: up to 4x the calibration images, from the same folder (never the held-out ones).
3. `ranges-percentile`, `ranges-mse`: activation ranges narrowed from histograms (onnx2tf_worker.narrow_ranges):
   a few outlier activations no longer stretch the grid that every other value is rounded to.
4. `float-N`: mixed precision, the N = 1, 2, 4, 8, 16 worst computing layers of the per-layer table
   (int8_layers.worst: saturating first, then the largest SNR drop) kept in float. Each attempt records its
   latency on this machine and its XNNPACK partitions: float islands split the int8 graph and cost
   QUANTIZE/DEQUANTIZE pairs.

Not tried, by decision: 16-bit activations. TensorFlow 2.19's converter quantizes 16x8 for the whole model only
(no per-layer choice), with int16 inputs and outputs (the manifest promises int8 I/O), and XNNPACK runs none of
it (reference kernels, several times slower); the manifest says so in `not_tried`.

Each attempt is judged twice: on its point estimate (`met`: the numbers on these images meet the target) and by
a decision with 95% confidence (`decision`: met, missed or undecided at N images; int8_decision.py says how).
The steps act on decisions, so that a one-image difference never decides anything:

- plain int8 whose numbers meet the target is shipped as it is (its decision recorded: often "undecided at 269
  images", which only more images can change);
- steps 2-3 (same speed as plain) are tried when the numbers miss it; the best is kept;
- float-N (slower: float islands) only when the best int8-speed attempt is a *decided* miss, and only when
  these images could decide a success at all (an error-free attempt would be "met": 0 errors in 269 images do
  not show 99% agreement, so there the export fails at once, naming the count that would); a float-N is
  applied when its decision is "met". One that meets the numbers but is undecided is not shipped (the next,
  larger island may decide it); if none is decided, the export fails naming how many images would decide it
  (`--val` with more labelled images) instead of shipping a slower file on a difference within noise;
- a miss within noise (undecided) ships the best int8-speed attempt and says so (`undecided` in the record).

The applied attempt is recorded; if none can be applied, the export fails like a parity failure: the report
(with every attempt and the worst layers) is kept, no model is.
"""
from __future__ import annotations

import shutil
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

import numpy as np

from ..int8_records import Int8Check, Int8Target, RepairAttempt, RepairRecord, Verdict
from . import int8_layers
from .int8_decision import agreement_verdict, combine, drop_verdict

FLOAT_LAYER_COUNTS = (1, 2, 4, 8, 16)
MORE_CALIBRATION_FACTOR = 4
NOT_TRIED = {"int16-activations": "TensorFlow 2.19 converts 16-bit activations for the whole model only, with "
                                  "int16 I/O, and XNNPACK runs none of it (reference kernels)"}


@dataclass
class RepairInputs:
    """What the repair needs from the export: the converter's work folder, the shipped fp32 file, the images."""

    workdir: Path  # tflite_convert.convert's folder (its saved_model is requantized)
    fp32: Path  # the lowered fp32 TFLite: the reference
    int8: Path  # the plain int8 TFLite (lowered), replaced by the applied attempt
    x_eval: np.ndarray  # NCHW float: the images the target is measured on
    labels: np.ndarray | None  # their labels, or None (agreement only)
    eval_name: str  # e.g. "val split (269 images)"
    calibration: np.ndarray  # NCHW: the images the plain attempt was calibrated on
    more_calibration: np.ndarray | None  # NCHW: further images from the same folder, or None
    lower: Callable[[Path], dict] | None  # the lowering pass the shipped file gets (None: --no-optimize)
    log: Path


def evaluate(path: Path, fp32_logits: np.ndarray, x: np.ndarray, labels: np.ndarray | None) -> Int8Check:
    """The int8 TFLite file at PATH against FP32_LOGITS on X."""
    from .verify import run_tflite

    return compare_logits(run_tflite(path, x), fp32_logits, labels)


def compare_logits(logits: np.ndarray, fp32_logits: np.ndarray, labels: np.ndarray | None) -> Int8Check:
    """evaluate()'s numbers from two models' logits on the same images (the ONNX int8 file is judged so too)."""
    ours, theirs = logits.argmax(1), fp32_logits.argmax(1)
    agreement = Int8Check(agreement=float((ours == theirs).mean()), images=int(len(logits)),
                          disagree=int((ours != theirs).sum()))
    if labels is None:
        return agreement
    fp32_top1, top1 = float((theirs == labels).mean()), float((ours == labels).mean())
    return replace(agreement, top1=top1, fp32_top1=fp32_top1, drop=fp32_top1 - top1,
                   lost=int(((theirs == labels) & (ours != labels)).sum()),
                   gained=int(((theirs != labels) & (ours == labels)).sum()))


def decide(target: Int8Target, check: Int8Check) -> tuple[str, list[Verdict]]:
    """(met | missed | undecided, one verdict per criterion): int8_decision's bounds, not the point estimate."""
    verdicts = [agreement_verdict(check.disagree, check.images, target.agreement)]
    if target.drop is not None and check.lost is not None:
        verdicts.append(drop_verdict(check.lost, check.gained, check.images, target.drop))
    return combine(verdicts), verdicts


def latency_ms(path: Path, runs: int = 30) -> float:
    """Median single-thread latency with XNNPACK on this machine: a cost estimate beside each attempt (the
    measurements users quote come from `sdeploy bench`)."""
    from .tflite_inspect import load_interpreter

    interpreter = load_interpreter(path, num_threads=1)
    for _ in range(5):
        interpreter.invoke()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        interpreter.invoke()
        times.append((time.perf_counter() - t0) * 1e3)
    return float(np.median(times))


def repair(inputs: RepairInputs, target: Int8Target, why: str,
           progress: Callable[[str], None] = lambda m: None) -> Repaired:
    """Try the steps until one meets TARGET; put the applied model at inputs.int8. Returns the record for the
    manifest (`int8_repair`, WHY the target applies) and the applied file's lowering report; raises
    Int8TargetMissed (with the record) when nothing meets it."""
    from .tflite_convert import requantize
    from .tflite_inspect import inspect_tflite
    from .verify import run_tflite

    started = time.perf_counter()
    fp32_logits = run_tflite(inputs.fp32, inputs.x_eval)
    x_layers = np.ascontiguousarray(inputs.x_eval[:64].transpose(0, 2, 3, 1))
    attempts: list[_Tried] = []
    candidates = inputs.int8.parent / "int8-attempts"
    candidates.mkdir(exist_ok=True)

    def record(step: str, path: Path, t0: float, calibration: int, ranges: str, float_layers=(),
               lowering: dict | None = None) -> _Tried:
        result = evaluate(path, fp32_logits, inputs.x_eval, inputs.labels)
        decision, verdicts = decide(target, result)
        info = inspect_tflite(path)
        tried = _Tried(RepairAttempt(
            step=step, calibration=calibration, ranges=ranges, float_layers=tuple(float_layers), check=result,
            decision=decision, verdicts=tuple(verdicts), met=target.met(result),
            latency_ms=round(latency_ms(path), 4), xnnpack_partitions=info.xnnpack.partitions,
            not_delegated=info.xnnpack.not_delegated, dequantize_ops=info.ops.get("DEQUANTIZE", 0),
            seconds=round(time.perf_counter() - t0, 1)), path, lowering)
        attempts.append(tried)
        progress(f"int8 {step}: agreement {100 * result.agreement:.2f}%"
                 + (f", top-1 drop {100 * result.drop:.2f} pt" if result.drop is not None else "")
                 + f": {decision}" + ("" if decision != "undecided" else
                                        f" ({'; '.join(v.text() for v in verdicts if v.state == 'undecided')})"))
        return tried

    def attempt(step: str, images: np.ndarray | None, ranges: str, float_layers=()) -> _Tried:
        t0 = time.perf_counter()
        out = candidates / f"{step}.tflite"
        requantize(inputs.workdir, output=out, log=inputs.log, ranges=ranges, float_tensors=list(float_layers) or None,
                   calibration_nhwc=None if images is None else images.transpose(0, 2, 3, 1))
        lowering = inputs.lower(out) if inputs.lower is not None else None
        count = len(images if images is not None else inputs.calibration)
        return record(step, out, t0, count, ranges, float_layers, lowering)

    plain = record("plain", inputs.int8, started, len(inputs.calibration), "minmax")
    best, calibration = plain, None
    if not best.met and inputs.more_calibration is not None and len(inputs.more_calibration):
        more = np.concatenate([inputs.calibration, inputs.more_calibration])
        more = more[: MORE_CALIBRATION_FACTOR * len(inputs.calibration)]
        tried = attempt("more-calibration", more, "minmax")
        if _better(tried, best):
            best, calibration = tried, more
    for ranges in ("percentile", "mse"):
        if best.met:
            break
        tried = attempt(f"ranges-{ranges}", calibration, ranges)
        if _better(tried, best):
            best = tried
    undecided_float: str | None = None
    error_free = Int8Check(agreement=1.0, images=len(inputs.x_eval), disagree=0,
                           **({"lost": 0, "gained": 0} if inputs.labels is not None else {}))
    could_be, verdicts = decide(target, error_free)  # the best any attempt could be decided on these images
    if not best.met and best.decision == "missed" and could_be != "met":
        undecided_float = f"an error-free attempt would meet the target on these images, but {_undecided(verdicts)}"
    elif not best.met and best.decision == "missed":  # a slower artifact only for a decided miss
        rows = int8_layers.layer_errors(inputs.fp32, best.file, x_layers)
        ranked = [r.tensor for r in int8_layers.worst(rows, max(FLOAT_LAYER_COUNTS))]
        for n in FLOAT_LAYER_COUNTS:
            if n > len(ranked):
                break
            # an outlier-dominated layer is floated with its readers (int8_layers.float_island)
            layers = list(dict.fromkeys(t for tensor in ranked[:n] for t in int8_layers.float_island(rows, tensor)))
            tried = attempt(f"float-{n}", calibration, best.attempt.ranges, layers)
            if tried.decision == "met":
                best = tried
                break
            if tried.met and undecided_float is None:
                # meets it on these images, within noise: a larger island may decide it; this one is not shipped
                undecided_float = (f"{tried.attempt.step} would meet the target on these images, but "
                                   f"{_undecided(tried.attempt.verdicts)}")
    ship = best if best.met else None
    undecided = None
    if ship is None and best.decision == "undecided" and undecided_float is None:
        ship = best  # missed on these images by a difference within noise: the best attempt at int8 speed
        undecided = (f"the target is missed on these images by a difference within noise: "
                     f"{_undecided(best.attempt.verdicts)}; shipped at int8 speed, no slower artifact")
    elif ship is None and undecided_float is not None:
        undecided = (f"{undecided_float}: a slower artifact is not shipped on an undecided difference; pass more "
                     "labelled images with --val")
    made = RepairRecord(why=why, target=target, evaluated_on=inputs.eval_name,
                        attempts=tuple(t.attempt for t in attempts), not_tried=NOT_TRIED,
                        seconds=round(time.perf_counter() - started, 1), undecided=undecided,
                        applied=ship.attempt.step if ship else None, decision=ship.decision if ship else None)
    if ship is not None and ship.file != inputs.int8:
        shutil.copyfile(ship.file, inputs.int8)
    shutil.rmtree(candidates, ignore_errors=True)
    if ship is None:
        raise Int8TargetMissed(made)
    return Repaired(made, ship.lowering)


@dataclass(frozen=True)
class Repaired:
    """What repair() hands the pipeline: the manifest's record and the applied file's lowering report (None when it
    is the plain file, whose lowering the pipeline already has, or without lowering)."""
    record: RepairRecord
    lowering: dict | None


@dataclass(frozen=True)
class _Tried:
    """An attempt and where its file is (and how it was lowered) while the repair runs."""
    attempt: RepairAttempt
    file: Path
    lowering: dict | None = None

    @property
    def met(self) -> bool:
        return self.attempt.met

    @property
    def decision(self) -> str:
        return self.attempt.decision


def _undecided(verdicts) -> str:
    """"agreement undecided at 269 images (about 299 would decide it); ..." for the open criteria."""
    return "; ".join(f"{v.criterion} undecided at {v.images} images"
                     + (f" (about {v.needed} would decide it)" if v.needed else " (no number of images decides it)")
                     for v in verdicts if v.state == "undecided")


def _better(a: _Tried, b: _Tried) -> bool:
    """More agreement, then less drop."""
    return (a.attempt.check.agreement, -(a.attempt.check.drop or 0)) > (b.attempt.check.agreement,
                                                                          -(b.attempt.check.drop or 0))


class Int8TargetMissed(Exception):
    """No attempt met the target: `record` is the manifest's int8_repair block (applied None)."""

    def __init__(self, record: RepairRecord):
        super().__init__("no int8 attempt met the target")
        self.record = record
