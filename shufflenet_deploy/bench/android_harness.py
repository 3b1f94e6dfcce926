"""android_harness/run_benchmarks.sh's output file: one `### sdeploy-begin` ... `### sdeploy-end` block per model,
with the phone's state before and after (frequencies, governors, temperatures) and benchmark_model's own output
between, read by bench/benchmark_model.py's parser."""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any

from ..errors import UserError
from .benchmark_model import parse_runs
from .benchmark_model_run import BenchmarkModelRun


_MARKER = re.compile(r"^### sdeploy-([\w-]+)\s?(.*)$")


@dataclass(frozen=True)
class PhoneState:
    """The phone's state at one moment of a block, as stats.compare_conditions compares it (its `to_dict`)."""
    freq_khz: dict[str, int]  # cpuN -> current frequency
    governor: dict[str, str]  # cpuN -> cpufreq governor
    temp_c: dict[str, float]  # zoneN[:type] -> degrees Celsius

    def to_dict(self) -> dict[str, dict[str, Any]]:
        return {"freq_khz": dict(self.freq_khz), "governor": dict(self.governor), "temp_c": dict(self.temp_c)}


@dataclass
class HarnessRecord:
    """One model's block from run_benchmarks.sh: its markers plus the parsed benchmark_model output."""

    model: str
    rc: int | None  # None: no end marker (harness interrupted)
    before: dict[str, str]
    after: dict[str, str]
    run: BenchmarkModelRun
    settings: dict[str, str] = field(default_factory=dict)  # from the `### sdeploy-harness` line
    command: str | None = None
    warnings: list[str] = field(default_factory=list)

    def conditions(self, when: str) -> PhoneState:
        """The state before or after the model's run: freq_khz/governor per cpu, temp_c per zone."""
        state = self.before if when == "before" else self.after
        out: dict[str, dict] = {"freq_khz": {}, "governor": {}, "temp_c": {}}
        for key, value in state.items():
            m = re.fullmatch(r"(cpu\d+)_(governor|freq_khz)", key)
            if m and value != "NA":
                if m.group(2) == "governor":
                    out["governor"][m.group(1)] = value
                elif value.lstrip("-").isdigit():
                    out["freq_khz"][m.group(1)] = int(value)
            m = re.fullmatch(r"zone(\d+)_temp", key)
            if m and re.fullmatch(r"-?\d+(\.\d+)?", value):
                temp = float(value)
                temp = temp / 1000.0 if abs(temp) >= 1000 else temp  # sysfs: millidegrees on most devices
                zone_type = state.get(f"zone{m.group(1)}_type", "NA")
                out["temp_c"][f"zone{m.group(1)}" + (f":{zone_type}" if zone_type != "NA" else "")] = temp
        return PhoneState(out["freq_khz"], out["governor"], out["temp_c"])

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["conditions"] = {"before": self.conditions("before").to_dict(), "after": self.conditions("after").to_dict()}
        return d


def _kv(text: str) -> dict[str, str]:
    return dict(re.findall(r"([\w.]+)=(\S*)", text))


def _finish_record(rec: HarnessRecord, body: list[str]) -> HarnessRecord:
    runs = parse_runs("\n".join(body))
    if runs:
        rec.run = runs[0]
        if len(runs) > 1:
            rec.warnings.append(f"{len(runs)} benchmark_model runs inside one model block; kept the first")
    else:
        rec.run.failed, rec.run.error = True, "no benchmark_model output"
        rec.run.errors.append(rec.run.error)
    if rec.rc is None:
        rec.warnings.append("no end marker: the harness was interrupted")
        if rec.run.inference_avg_ms is None and not rec.run.failed:
            rec.run.failed, rec.run.error = True, "harness interrupted before benchmark_model finished"
            rec.run.errors.append(rec.run.error)
    elif rec.rc != 0 and not rec.run.failed:
        rec.run.failed, rec.run.error = True, f"benchmark_model exited with code {rec.rc}"
        rec.run.errors.append(rec.run.error)
    return rec


def parse_harness_output(text: str) -> list[HarnessRecord]:
    """Records of a run_benchmarks.sh output file, one per model, in order."""
    records: list[HarnessRecord] = []
    settings: dict[str, str] = {}
    cur: HarnessRecord | None = None
    body: list[str] = []
    for line in text.splitlines():
        m = _MARKER.match(line)
        if not m:
            if cur is not None:
                body.append(line)
            continue
        kind, rest = m.groups()
        if kind == "harness":
            settings = _kv(rest)
        elif kind == "begin":
            if cur is not None:
                records.append(_finish_record(cur, body))
            cur = HarnessRecord(model=rest.partition("model=")[2], rc=None, before={}, after={},
                                run=BenchmarkModelRun(), settings=dict(settings))
            body = []
        elif cur is None:
            continue
        elif kind == "state":
            values = _kv(rest)
            target = cur.after if values.pop("when", "") == "after" else cur.before
            target.update(values)
        elif kind == "cmd":
            cur.command = rest
        elif kind == "warning":
            cur.warnings.append(rest)
        elif kind == "end":
            rc = re.search(r"\brc=(-?\d+)\s*$", rest)
            cur.rc = int(rc.group(1)) if rc else None
            records.append(_finish_record(cur, body))
            cur, body = None, []
    if cur is not None:
        records.append(_finish_record(cur, body))
    if not records:
        raise UserError("input does not look like run_benchmarks.sh output (no `### sdeploy-begin` marker)",
                        "pass the file written by android_harness/run_benchmarks.sh -o, or use parse_many for "
                        "plain benchmark_model output")
    return records
