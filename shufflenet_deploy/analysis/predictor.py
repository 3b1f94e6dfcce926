"""The predictor document (`predictor-DEVICE.json`, schema "sdeploy-predictor/3"): one type, `Predictor`, with its
one writer (`to_dict`) and one strict reader (`from_dict`). analysis/predict.py fits and applies it; this module
only says what it holds, so a predictor read from a file and one just fitted are the same object.

The reader is strict the way every document reader is (validate.py): each field has one type, every number the
prediction multiplies is finite and non-negative (a NaN coefficient would predict "0.000 ms"), a scale is
positive, and a failure is one UserError naming the file, the field, what was expected and what was found.
Files of schema /2 predate the machine's facts: they read as fitted on an unknown machine.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..devices.machine import MachineFacts
from ..validate import Fields

SCHEMA = "sdeploy-predictor/3"
READS = (SCHEMA, "sdeploy-predictor/2")  # /2: the same predictor without the machine's facts
FEATURES = ("macs", "in_bytes", "out_bytes")  # a regression's coefficients: intercept, then one per feature
HINT = "the file is damaged or was edited; re-run `sdeploy sweep` to fit it again"
MAX_SCALE = 100.0  # in-graph / alone: ~1 in practice; beyond this the file is damaged, not a measurement


@dataclass(frozen=True)
class Regression:
    """time = coef . [1, MACs, input bytes, output bytes], fitted on `n` ops."""
    coef: tuple[float, ...]
    n: int

    def to_dict(self) -> dict[str, Any]:
        return {"coef": list(self.coef), "n": self.n}

    @classmethod
    def from_dict(cls, data: Any, where: str) -> "Regression":
        f = Fields(data, where, HINT)
        coef = f.numbers("coef", optional=False)
        if len(coef) != 1 + len(FEATURES):
            raise f.fail("coef", coef, f"{1 + len(FEATURES)} non-negative numbers")
        return cls(tuple(float(c) for c in coef), f.count("n", optional=True) or 0)


@dataclass(frozen=True)
class Scale:
    """One precision's in-graph / alone scale: the geometric mean of measured / summed over `n` models."""
    a: float
    n: int
    min: float | None = None
    max: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"a": self.a, "n": self.n, "min": self.min, "max": self.max}

    @classmethod
    def from_dict(cls, data: Any, where: str) -> "Scale":
        f = Fields(data, where, HINT)
        return cls(float(f.number("a", positive=True, high=MAX_SCALE)), f.count("n", optional=True) or 0,
                   f.number("min", optional=True, positive=True), f.number("max", optional=True, positive=True))


UNIT_SCALE = Scale(1.0, 0)  # a precision the sweep did not fit: the op sum as it is


@dataclass(frozen=True)
class OpModel:
    """What a prediction reads: measured op times by signature, the regressions, and each precision's scale."""
    lookup: dict[str, float]  # "precision|signature" -> median single-op time, ms
    regression: dict[str, Regression]  # "precision|op|group|kernel" (and coarser keys) -> its fit
    correction: dict[str, Scale] = field(default_factory=dict)  # precision -> scale

    def to_dict(self) -> dict[str, Any]:
        return {"lookup": dict(self.lookup), "regression": {k: r.to_dict() for k, r in self.regression.items()},
                "correction": {p: s.to_dict() for p, s in self.correction.items()}}

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str) -> "OpModel":
        f = Fields(data, where, HINT)
        lookup = Fields(f.obj("lookup", optional=False), f"{where}: lookup", HINT)
        regression, correction = f.obj("regression", optional=False), f.obj("correction", optional=False)
        if not regression:
            raise f.fail("regression", regression, "a non-empty table of regressions")
        if not correction:
            raise f.fail("correction", correction, "a scale per precision")
        return cls({k: float(lookup.number(k)) for k in lookup.data},
                   {k: Regression.from_dict(v, f"{where}: regression[{k!r}]") for k, v in regression.items()},
                   {p: Scale.from_dict(v, f"{where}: correction[{p!r}]") for p, v in correction.items()})


@dataclass(frozen=True)
class TrainedOn:
    """One model + precision the predictor was fitted on, and its measured latency."""
    key: str
    precision: str
    measured_ms: float

    def to_dict(self) -> dict[str, Any]:
        return {"key": self.key, "precision": self.precision, "measured_ms": self.measured_ms}

    @classmethod
    def from_dict(cls, data: Any, where: str) -> "TrainedOn":
        f = Fields(data, where, HINT)
        return cls(f.text("key"), f.text("precision"), float(f.number("measured_ms", positive=True)))


@dataclass(frozen=True)
class Evaluation:
    """One model predicted by a predictor fitted without it (leave-one-out); error = predicted / measured - 1."""
    key: str
    precision: str
    measured_ms: float
    predicted_ms: float
    error: float
    lookup_ops: int
    regression_ops: int

    def to_dict(self) -> dict[str, Any]:
        return {"key": self.key, "precision": self.precision, "measured_ms": self.measured_ms,
                "predicted_ms": self.predicted_ms, "error": self.error, "lookup_ops": self.lookup_ops,
                "regression_ops": self.regression_ops}

    @classmethod
    def from_dict(cls, data: Any, where: str) -> "Evaluation":
        f = Fields(data, where, HINT)
        return cls(f.text("key"), f.text("precision"), float(f.number("measured_ms", positive=True)),
                   float(f.number("predicted_ms")), float(f.number("error", low=-1.0)),
                   f.count("lookup_ops", optional=True) or 0, f.count("regression_ops", optional=True) or 0)


@dataclass(frozen=True)
class Predictor:
    """A device's fitted predictor: the op model, what it was fitted on (models, machine, threads, graph) and its
    leave-one-out evaluation, run once at fitting time and kept with it."""
    device: str | None
    threads: int | None
    graph: str | None  # the sweep's graph: sdeploy's lowered one (None: older files) or onnx2tf's plain one
    machine: MachineFacts | None  # None: an older file, or a device without readable CPU facts
    model: OpModel
    trained_on: tuple[TrainedOn, ...] = ()
    evaluation: tuple[Evaluation, ...] = ()
    within_10pct: float | None = None  # share of `evaluation` within +-10%
    schema: str = SCHEMA

    @property
    def lowered(self) -> bool:
        """Was it fitted on sdeploy's lowered graph (the default) or onnx2tf's plain one?"""
        return not str(self.graph or "lowered").startswith("onnx2tf")

    def measured_ms(self, key: str, precision: str) -> float | None:
        """The latency the sweep measured for KEY at PRECISION, where the predictor was fitted on it."""
        return next((t.measured_ms for t in self.trained_on if (t.key, t.precision) == (key, precision)), None)

    def to_dict(self) -> dict[str, Any]:
        return {"schema": self.schema, "device": self.device, "threads": self.threads, "graph": self.graph,
                "machine": self.machine.to_dict() if self.machine else None,
                "trained_on": [t.to_dict() for t in self.trained_on], **self.model.to_dict(),
                "evaluation": [e.to_dict() for e in self.evaluation], "within_10pct": self.within_10pct}

    @classmethod
    def from_dict(cls, data: Any, where: str) -> "Predictor":
        """Strict (the module docstring); WHERE names the file in every error."""
        f = Fields(data, where, HINT)
        schema = f.text("schema")
        if schema not in READS:
            raise f.fail("schema", schema, f"{SCHEMA!r} (re-run the sweep)")
        machine = f.obj("machine")
        return cls(device=f.text("device", optional=True), threads=f.count("threads", optional=True, low=1,
                                                                            high=1024),
                   graph=f.text("graph", optional=True),
                   machine=MachineFacts.from_dict(machine, where) if machine is not None else None,
                   model=OpModel.from_dict(data, where),
                   trained_on=tuple(TrainedOn.from_dict(t, f"{where}: trained_on[{i}]")
                                    for i, t in enumerate(f.items("trained_on") or [])),
                   evaluation=tuple(Evaluation.from_dict(e, f"{where}: evaluation[{i}]")
                                    for i, e in enumerate(f.items("evaluation") or [])),
                   within_10pct=f.number("within_10pct", optional=True, high=1.0), schema=schema)
