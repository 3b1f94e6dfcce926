"""The stored forms of an export's int8 story, typed, each with its strict reader: the per-layer error table's
`LayerRow` (the manifest's `int8_layers.rows`), the int8 target, one check of an int8 file against its float
reference (`Int8Check`), a decision's `Verdict`, and the repair's `RepairAttempt`s and `RepairRecord` (the
manifest's `int8_repair`).

The export's modules compute them (export/int8_layers.py, int8_decision.py, int8_repair.py, onnx_int8.py: their
docstrings say what each number means); the manifest's reader checks them and quant-report and the export's
summary read them. They live here, low in the layers and free of numpy and torch, because the manifest reads them.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from .errors import UserError
from .validate import Fields, is_int, is_number


@dataclass(frozen=True)
class LayerRow:
    """One row of the per-layer int8 table (the manifest's `int8_layers.rows`): the error of one quantized tensor
    against fp32 (the module docstring says what each number means). The numbers are None when unmatched."""
    depth: int
    op: str
    tensor: str
    shape: tuple[int, ...]
    scale: float
    zero_point: int
    fp32_tensor: str | None
    index: int | None
    inputs: tuple[int, ...]
    matched: bool
    snr_db: float | None = None
    channel_snr_db: float | None = None
    outlier_ratio: float | None = None
    rmse_rel: float | None = None
    clipped: float | None = None
    fp32_min: float | None = None
    fp32_max: float | None = None
    int8_min: float | None = None
    int8_max: float | None = None
    snr_drop_db: float | None = None  # the error this op adds: its SNR below its noisiest input's

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["shape"], out["inputs"] = list(self.shape), list(self.inputs)
        return out

    @classmethod
    def from_dict(cls, data: Any, where: str) -> "LayerRow":
        """A stored row, checked field by field (one UserError naming WHERE and the field)."""
        f = Fields(data, where, "the manifest's int8 table is damaged; re-run `sdeploy export`")
        shape, inputs = f.items("shape", optional=False), f.items("inputs") or []
        if not all(is_int(v) for v in [*shape, *inputs]):
            raise f.fail("shape/inputs", [*shape, *inputs], "lists of whole numbers")
        # float32's whole range: a plain graph's PADV2 pads with the dtype minimum (-3.4e38), and its row says so
        numbers = {k: f.number(k, optional=True, low=-FLOAT32_MAX, high=FLOAT32_MAX) for k in _MEASURED}
        for k in ("clipped", "rmse_rel"):
            if numbers[k] is not None and numbers[k] < 0:
                raise f.fail(k, numbers[k], "a fraction >= 0")
        matched = bool(f.flag("matched", optional=False))
        for k in _NEEDED_WHEN_MATCHED if matched else ():
            if numbers[k] is None:
                raise f.fail(k, None, "a number (the row is matched)")
        return cls(depth=f.count("depth"), op=f.text("op"), tensor=f.text("tensor"), shape=tuple(shape),
                   scale=f.number("scale", positive=True), zero_point=f.count("zero_point", low=-128, high=255),
                   fp32_tensor=f.text("fp32_tensor", optional=True), index=f.count("index", optional=True),
                   inputs=tuple(inputs), matched=matched, **numbers)


FLOAT32_MAX = 3.5e38
_MEASURED = ("snr_db", "channel_snr_db", "outlier_ratio", "rmse_rel", "clipped", "fp32_min", "fp32_max", "int8_min",
             "int8_max", "snr_drop_db")
_NEEDED_WHEN_MATCHED = ("snr_db", "rmse_rel", "clipped", "fp32_min", "fp32_max", "int8_min", "int8_max")


@dataclass(frozen=True)
class Verdict:
    criterion: str  # "agreement" | "drop"
    state: str  # "met" | "missed" | "undecided"
    observed: float  # agreement fraction, or drop in points/100
    bound: tuple[float, float]  # the 90% two-sided interval (each side a one-sided 95% bound)
    images: int
    needed: int | None  # images that would decide it at the observed rates (undecided only; None: never)

    def to_dict(self) -> dict:
        return {"criterion": self.criterion, "state": self.state, "observed": round(self.observed, 6),
                "bound": [round(b, 6) for b in self.bound], "images": self.images, "needed": self.needed}

    def text(self) -> str:
        pct = lambda v: f"{100 * v:.2f}%" if self.criterion == "agreement" else f"{100 * v:.2f} pt"  # noqa: E731
        said = f"{self.criterion} {pct(self.observed)} (95% bounds {pct(self.bound[0])}..{pct(self.bound[1])})"
        if self.state != "undecided":
            return f"{said}: {self.state}, decided at {self.images} images"
        more = (f"about {self.needed} would decide it" if self.needed
                else "no number of images decides it at these rates")
        return f"{said}: undecided at {self.images} images ({more})"

    @classmethod
    def from_dict(cls, data: Any, where: str, hint: str | None = None) -> "Verdict":
        f = Fields(data, where, hint)
        bound = f.items("bound", optional=False)
        if len(bound) != 2 or not all(is_number(b) and -1 <= b <= 1 for b in bound):
            raise f.fail("bound", bound, "[low, high] fractions")
        return cls(criterion=f.text("criterion", choices=("agreement", "drop")),
                   state=f.text("state", choices=DECISIONS), observed=f.number("observed", low=-1, high=1),
                   bound=(float(bound[0]), float(bound[1])), images=f.count("images", low=1),
                   needed=f.count("needed", optional=True))


@dataclass(frozen=True)
class Int8Target:
    agreement: float = 0.99  # top-1 agreement with fp32, a fraction
    drop: float | None = 0.005  # top-1 drop in points/100, checked only with labelled images

    @classmethod
    def parse(cls, text: str | None) -> "Int8Target | None":
        """"agreement=99,drop=0.5" (percent and points), "agreement=99" or "none"."""
        if text is None or text.strip().lower() == "none":
            return None
        values = {}
        for part in filter(None, (p.strip() for p in text.split(","))):
            key, _, value = part.partition("=")
            if key not in ("agreement", "drop") or not value:
                raise UserError(f"--int8-target {text!r}: unknown part {part!r}",
                                "use e.g. --int8-target agreement=99,drop=0.5, or none")
            try:
                values[key] = float(value)
            except ValueError:
                raise UserError(f"--int8-target {text!r}: {key} must be a number", "e.g. agreement=99") from None
        agreement = values.get("agreement", 99.0)
        drop = values.get("drop", 0.5)
        if not 0 < agreement <= 100 or drop < 0:
            raise UserError(f"--int8-target {text!r}: agreement must be in (0, 100] percent and drop >= 0 points",
                            "e.g. --int8-target agreement=99,drop=0.5")
        return cls(agreement / 100, drop / 100)

    def to_dict(self) -> dict[str, float | None]:
        return {"agreement_pct": round(100 * self.agreement, 3),
                "drop_pt": None if self.drop is None else round(100 * self.drop, 3)}

    @classmethod
    def from_dict(cls, data: Any, where: str, hint: str | None = None) -> "Int8Target":
        f = Fields(data, where, hint)
        agreement, drop = f.number("agreement_pct", positive=True, high=100), f.number("drop_pt", optional=True,
                                                                                        high=100)
        return cls(agreement / 100, None if drop is None else drop / 100)

    def text(self) -> str:
        """"agreement >= 99%, drop <= 0.5 pt" (the drop only counts with labelled images)."""
        return f"agreement >= {100 * self.agreement:g}%" + ("" if self.drop is None else
                                                           f", drop <= {100 * self.drop:g} pt")

    def met(self, check: "Int8Check") -> bool:
        """The point estimate: these images' numbers meet the target (decide() says whether they show it)."""
        if check.agreement < self.agreement - 1e-9:
            return False
        return self.drop is None or check.drop is None or check.drop <= self.drop + 1e-9


@dataclass(frozen=True)
class Int8Check:
    """An int8 file against its float reference on the same images: top-1 agreement, and with labels the top-1
    drop, with the counts a decision is made from (disagreements; images only fp32 (lost) or only int8 (gained)
    got right)."""

    agreement: float
    images: int
    disagree: int
    top1: float | None = None
    fp32_top1: float | None = None
    drop: float | None = None
    lost: int | None = None
    gained: int | None = None

    def to_dict(self) -> dict[str, float | int]:
        """The attempt record's fields (floats rounded to 5 places; the label-only ones when labelled)."""
        return {k: round(v, 5) if isinstance(v, float) else v for k, v in asdict(self).items() if v is not None}

    @classmethod
    def from_dict(cls, data: Any, where: str, hint: str | None = None) -> "Int8Check":
        """The fields to_dict wrote, in a record that holds other fields too."""
        f = Fields(data, where, hint)
        images = f.count("images", low=1)
        counts = {k: f.count(k, optional=True, high=images) for k in ("lost", "gained")}
        return cls(agreement=f.number("agreement", high=1), images=images, disagree=f.count("disagree", high=images),
                   top1=f.number("top1", optional=True, high=1), fp32_top1=f.number("fp32_top1", optional=True, high=1),
                   drop=f.number("drop", optional=True, low=-1, high=1), **counts)


@dataclass(frozen=True)
class RepairAttempt:
    """One int8 attempt of the repair (export/int8_repair.py): how it was made, what it measured, what was decided,
    and what it costs here (its latency on the export machine and its XNNPACK partitions)."""

    step: str  # plain | more-calibration | ranges-percentile | ranges-mse | float-N
    calibration: int  # images
    ranges: str  # minmax | percentile | mse
    float_layers: tuple[str, ...]
    check: Int8Check
    decision: str  # met | missed | undecided
    verdicts: tuple[Verdict, ...]
    met: bool  # the point estimate meets the target
    latency_ms: float
    xnnpack_partitions: int
    not_delegated: dict[str, int]
    dequantize_ops: int
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        return {"step": self.step, "calibration": self.calibration, "ranges": self.ranges,
                "float_layers": list(self.float_layers), **self.check.to_dict(), "decision": self.decision,
                "verdicts": [v.to_dict() for v in self.verdicts], "latency_ms": self.latency_ms,
                "xnnpack_partitions": self.xnnpack_partitions, "not_delegated": dict(self.not_delegated),
                "dequantize_ops": self.dequantize_ops, "met": self.met, "seconds": self.seconds}

    @classmethod
    def from_dict(cls, data: Any, where: str, hint: str | None = None) -> "RepairAttempt":
        f = Fields(data, where, hint)
        floats = f.texts("float_layers", optional=False)
        not_delegated = f.obj("not_delegated") or {}
        if not all(is_int(v) and v >= 0 for v in not_delegated.values()):
            raise f.fail("not_delegated", not_delegated, "op = count")
        return cls(step=f.text("step"), calibration=f.count("calibration"), ranges=f.text("ranges"),
                   float_layers=tuple(floats), check=Int8Check.from_dict(data, where, hint),
                   decision=f.text("decision", choices=DECISIONS),
                   verdicts=tuple(Verdict.from_dict(v, f"{where}: verdicts[{i}]", hint)
                                  for i, v in enumerate(f.items("verdicts", optional=False))),
                   met=bool(f.flag("met", optional=False)), latency_ms=f.number("latency_ms", positive=True),
                   xnnpack_partitions=f.count("xnnpack_partitions"), not_delegated=dict(not_delegated),
                   dequantize_ops=f.count("dequantize_ops"), seconds=f.number("seconds"))


@dataclass(frozen=True)
class RepairRecord:
    """The manifest's `int8_repair`: the target and why it applies, every attempt, and which one was applied (None:
    no attempt could be, the export failed). Without a target only `target: None` and `why` are recorded."""

    why: str
    target: Int8Target | None = None
    evaluated_on: str | None = None
    attempts: tuple[RepairAttempt, ...] = ()
    not_tried: dict[str, str] = field(default_factory=dict)
    seconds: float | None = None
    applied: str | None = None
    decision: str | None = None  # the applied attempt's
    undecided: str | None = None  # why a miss within noise was shipped, or why nothing was
    layer_images: int | None = None  # images the int8 table of a failed export was measured on

    @property
    def applied_attempt(self) -> RepairAttempt | None:
        return next((a for a in self.attempts if a.step == self.applied), None)

    def to_dict(self) -> dict[str, Any]:
        if self.target is None:
            return {"target": None, "why": self.why}
        out = {"target": self.target.to_dict(), "evaluated_on": self.evaluated_on,
               "attempts": [a.to_dict() for a in self.attempts], "not_tried": dict(self.not_tried),
               "seconds": self.seconds, "applied": self.applied, "why": self.why}
        extra = {"decision": self.decision, "undecided": self.undecided, "layer_images": self.layer_images}
        return {**out, **{k: v for k, v in extra.items() if v is not None}}

    @classmethod
    def from_dict(cls, data: Any, where: str, hint: str | None = None) -> "RepairRecord":
        f = Fields(data, where, hint)
        why = f.text("why", optional=True) or ""
        target = f.obj("target")
        if target is None:
            return cls(why=why)
        attempts = tuple(RepairAttempt.from_dict(a, f"{where}: attempts[{i}]", hint)
                         for i, a in enumerate(f.items("attempts", optional=False)))
        applied = f.text("applied", optional=True)
        if applied is not None and applied not in [a.step for a in attempts]:
            raise f.fail("applied", applied, "the step of one of its attempts")
        not_tried = f.obj("not_tried") or {}
        return cls(why=why, target=Int8Target.from_dict(target, f"{where}: target", hint),
                   evaluated_on=f.text("evaluated_on"), attempts=attempts,
                   not_tried={str(k): str(v) for k, v in not_tried.items()}, seconds=f.number("seconds", optional=True),
                   applied=applied, decision=f.text("decision", optional=True, choices=DECISIONS),
                   undecided=f.text("undecided", optional=True), layer_images=f.count("layer_images", optional=True))


DECISIONS = ("met", "missed", "undecided")
