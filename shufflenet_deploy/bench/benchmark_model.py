"""Parser for the text output of TFLite's `benchmark_model` (stdout+stderr, a paste, or a logcat dump).

Why parse text: on a phone the text is all we get, from whatever TF version the binary was built from. Every
format in docs/benchmark_model_grammar.md is read:

- "Output grammar": `STARTING!`, `Name: [value]` parameter lines, `Loaded model`, model size, `Initialized
  session in`, `Running benchmark for at least ...`, Stat lines (`count= first= curr= min= max= avg= std=`, the
  `count=1 curr=` / `curr=..(all same)` / `count=0` forms, and the newer ` p5= median= p95=` suffix; first Stat =
  warmup, second = regular runs), `Inference timings in us: ...` and the very old `Average inference timings in
  us: ...`, memory lines (`Memory footprint delta ...`, TF ~2.4 `Peak memory footprint (MB): ...`, `Overall peak
  memory footprint (MB) via periodic monitoring`, the Linux `VmRSS` / `RssAnnon` / `RssFile + RssShmem` block),
  delegate lines (`Created ... delegate`, `Replacing N out of M node(s) ... yielding K partitions`), failures.
- "Parser gotchas": scientific notation anywhere; line prefixes: none, `INFO: `/`WARNING: `/`ERROR: `,
  logcat `I tflite  : `, logcat brief `I/tflite ( 123): ` and threadtime `11-28 10:00:00.123  1234  1234 I tflite  : `
  lines, TF/glog `I1128 10:00:00.123 1 file.cc:12] ` lines; CRLF from old `adb shell`.
- "Op profiling tables": Run Order, Top by Computation Time, Top by Memory Use and Summary by node type, in the
  OLD (`[start]` column) and NEW layouts and their CSV variants. Rows are read with a regex anchored on the
  numeric columns rather than by splitting on tabs: it reads tab-aligned rows and rows whose tabs were lost
  (copy-paste, terminals) the same way, and node types and names may hold spaces and commas (XNNPACK
  `Convolution (NHWC, F32) IGEMM`, `[a, b]:231`).

Shape: `_split_prefix` + `_classify` label each line; `_RunBuilder` is a small state machine that also reads the
tables. `parse_many` starts a new run at `STARTING!` (or, for logs without it, when an init-phase line follows a
finished run); tables found alone ahead of a run (stdout joined before stderr) are given to that run.
What a parse gives: bench/benchmark_model_run.py (with the mapping onto sdeploy's bench record); the
`### sdeploy-*` blocks of android_harness/run_benchmarks.sh: bench/android_harness.py.
"""
from __future__ import annotations

import math
import re

from ..errors import UserError
from .benchmark_model_run import NUM, TABLE_KEYS, BenchmarkModelRun, OpProfile, Partition, Stat, parse_row

_N = f"({NUM})"


# ----------------------------------------------------------------------------------------------- lines

_LEVELS = {"V": "VERBOSE", "D": "DEBUG", "I": "INFO", "W": "WARNING", "E": "ERROR", "F": "FATAL"}
_PREFIXES = [  # (regex, group holding the level); each consumes the prefix and one following space
    (re.compile(r"^(?:\d{4}-)?\d\d-\d\d\s+\d\d:\d\d:\d\d\.\d+\s+\d+\s+\d+\s+([VDIWEF])\s+\S+?\s*: ?"), 1),
    (re.compile(r"^([VDIWEF])/[^(:]+\(\s*\d+\): ?"), 1),
    (re.compile(r"^([VDIWEF]) [\w.\-]+\s*: ?"), 1),
    (re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)?: ([IWEF]) \S+:\d+\] ?"), 1),
    (re.compile(r"^([IWEF])\d{4} \d\d:\d\d:\d\d\.\d+\s+\d+ \S+:\d+\] ?"), 1),
    (re.compile(r"^(INFO|WARNING|ERROR|VERBOSE|DEBUG|FATAL): ?"), 1),
]


def _split_prefix(line: str) -> tuple[str, str]:
    """Strip log prefixes (a logcat prefix may wrap a TFLITE_LOG one) -> (level, text). Leading tabs are kept."""
    level = "INFO"
    for _ in range(2):
        for rx, group in _PREFIXES:
            m = rx.match(line)
            if m:
                tag = m.group(group)
                level = _LEVELS.get(tag, tag)
                line = line[m.end():]
                break
        else:
            break
    return level, line


_FATAL = re.compile(
    r"Benchmarking failed|Failed to (?:mmap|load|read|open) (?:the )?model|Could not open '|"
    r"Failed to (?:construct|create|initialize|init|build) (?:the )?interpreter|Failed to allocate tensors|"
    r"Failed to apply .*delegate|Failed to invoke|failed to (?:prepare|invoke|allocate)|"
    r"Didn't find op for builtin opcode|Encountered unresolved custom op|Registration failed|"
    r"CANNOT LINK EXECUTABLE|Segmentation fault|Fatal signal|^Aborted|^Killed|: not found$|"
    r"No such file or directory|Permission denied|Model provided has model identifier",
    re.IGNORECASE,
)
_SUSPICIOUS = re.compile(r"fail|error|abort|unsupported|not supported|cannot|can't|unable|invalid|warning|\bnan\b",
                         re.IGNORECASE)
_KNOWN = [  # (kind, regex on the stripped text); first match wins
    ("start", re.compile(r"STARTING!$")),
    ("model_size", re.compile(rf"The input model file size \(MB\): {_N}")),
    ("init_session", re.compile(rf"Initialized session in {_N}\s*ms\.?$")),
    ("phase", re.compile(r"Running benchmark for at least (\d+) iterations")),
    ("stat", re.compile(r"(count=\d+.*)$")),
    ("timings", re.compile(r"(?:Average )?[Ii]nference timings in us: (.*)$")),
    ("mem_footprint", re.compile(rf"(Memory footprint delta from the start of the tool|Peak memory footprint)"
                                 rf" \(MB\): init={_N},? overall={_N}")),
    ("mem_periodic", re.compile(rf"(?:Overall )?peak memory footprint \(MB\) via periodic monitoring: {_N}",
                                re.IGNORECASE)),
    ("mem_status", re.compile(r"Memory status at the end of exe")),
    ("mem_item", re.compile(rf"[-+]\s*(VmRSS|RssAnn?on|RssFile \+ RssShmem)\s*:\s*{_N}\s*MB")),
    ("profile_header", re.compile(r"(?:Operator-wise )?Profiling Info for (.+?):?$")),
    ("table_title", re.compile(r"={5,} (.+?) ={5,}$")),
    ("table_header", re.compile(r"(?:\[node type\]|node type,)", re.IGNORECASE)),
    ("nodes_executed", re.compile(r"Number of nodes executed: (\d+)")),
    ("profile_timings", re.compile(r"Timings \(microseconds\): (count=.*)$")),
    ("profile_memory", re.compile(r"Memory \(bytes\): (count=.*)$")),
    ("nodes_observed", re.compile(r"(\d+) nodes observed$")),
    ("partition", re.compile(r"Replacing (\d+) out of (\d+) node\(s\) with delegate \((.+?)\) node, yielding (\d+)")),
    ("loaded_model", re.compile(r"Loaded model (.+)$")),
    ("note", re.compile(r"Note: ")),
    ("param", re.compile(r"([^\[\]:]{1,80}): \[(.*)\]$")),
]
_DELEGATE = re.compile(r"\bdelegate\b", re.IGNORECASE)


def _classify(level: str, text: str) -> tuple[str, re.Match | None]:
    """Label one prefix-free line. Table rows are not recognised here (they need the table's header)."""
    t = text.strip()
    if not t:
        return "blank", None
    if _FATAL.search(t):
        return "fatal", None
    if level in ("ERROR", "FATAL"):
        return "suspicious", None
    for kind, rx in _KNOWN:
        m = rx.match(t)
        if m:
            return kind, m
    if level == "WARNING" or _SUSPICIOUS.search(t):
        return "suspicious", None
    if _DELEGATE.search(t):
        return "delegate", None
    return "other", None


def parse_stat(text: str) -> Stat:
    """`count=50 first=.. curr=.. min=.. max=.. avg=.. std=..[ p5=.. median=.. p95=..]` (us) -> Stat (ms)."""
    values = {k: float(v) for k, v in re.findall(rf"(\w+)=({NUM})", text)}
    values = {k: v for k, v in values.items() if math.isfinite(v)}  # count=99999...9 (5000 digits) is inf: no count
    stat = Stat(count=int(values.get("count", 0)), all_same="(all same)" in text)
    for key in ("first", "curr", "min", "max", "avg", "std", "p5", "median", "p95"):
        if key in values:
            setattr(stat, f"{key}_ms", values[key] / 1000.0)
    if stat.count >= 1 and "avg" not in values and stat.curr_ms is not None:  # count=1 / (all same) form
        stat.first_ms = stat.min_ms = stat.max_ms = stat.avg_ms = stat.curr_ms
        stat.std_ms = 0.0
        stat.all_same = True
    return stat


# ----------------------------------------------------------------------------------------------- runs

_INIT_PHASE = {"start", "param", "loaded_model", "model_size", "init_session", "phase", "stat", "fatal"}
_SUBSTANTIVE = {"start", "loaded_model", "model_size", "init_session", "phase", "stat", "timings", "mem_footprint",
                "mem_periodic", "mem_status", "profile_header", "table_title", "nodes_executed", "profile_timings",
                "fatal", "partition"}


class _RunBuilder:
    """Feeds classified lines into one BenchmarkModelRun; tracks which profile and table we are in."""

    def __init__(self) -> None:
        self.run = BenchmarkModelRun()
        self.stats: list[tuple[int, Stat]] = []  # (number of "Running benchmark" lines before it, Stat)
        self.phases = 0
        self.timings: dict[str, float] = {}
        self.substantive = 0
        self.profile: OpProfile | None = None
        self.table: str | None = None  # key in TABLE_KEYS values, or "unknown"
        self.fmt: tuple[str, bool] | None = None  # (layout, csv) once the header is read

    def starts_new_run(self, kind: str) -> bool:
        """`STARTING!`, or (logs without it) an init-phase line after this run printed its final timings."""
        return bool(self.substantive) and (kind == "start" or (bool(self.timings) and kind in _INIT_PHASE))

    def profile_only(self) -> bool:
        return bool(self.run.op_profile or self.run.init_profile) and not (
            self.stats or self.timings or self.phases or self.run.failed)

    def feed(self, text: str, kind: str, m: re.Match | None) -> None:
        if self.table and self.fmt and kind in ("other", "suspicious", "delegate"):
            row = parse_row(text, self.fmt[0], self.fmt[1], self.table == "by_type")
            if row is not None:
                if self.table != "unknown":
                    getattr(self.profile, self.table).append(row)
                return
            self.run.warnings.append(f"unparsed line in the {self.table} table: {text.strip()}")
            return
        if kind in _SUBSTANTIVE:
            self.substantive += 1
        getattr(self, f"_on_{kind}", self._on_ignore)(text.strip(), m)

    # --- handlers, one per line kind
    def _on_ignore(self, t: str, m) -> None:
        pass

    def _on_blank(self, t: str, m) -> None:
        self.table = None
        self.fmt = None

    def _on_fatal(self, t: str, m) -> None:
        self.run.failed = True
        self.run.errors.append(t)
        self.run.error = self.run.error or t

    def _on_suspicious(self, t: str, m) -> None:
        self.run.warnings.append(t)

    def _on_param(self, t: str, m) -> None:
        self.run.params[m.group(1).strip()] = m.group(2)

    def _on_loaded_model(self, t: str, m) -> None:
        self.run.graph = self.run.graph or m.group(1).strip()

    def _on_model_size(self, t: str, m) -> None:
        self.run.model_size_mb = float(m.group(1))

    def _on_init_session(self, t: str, m) -> None:
        self.run.init_ms = float(m.group(1))

    def _on_phase(self, t: str, m) -> None:
        self.phases += 1

    def _on_stat(self, t: str, m) -> None:
        self.stats.append((self.phases, parse_stat(m.group(1))))

    def _on_timings(self, t: str, m) -> None:
        for part in m.group(1).split(","):
            key, _, value = part.partition(":")
            if re.fullmatch(NUM, value.strip()):
                self.timings[key.strip().lower()] = float(value.strip()) / 1000.0

    def _on_mem_footprint(self, t: str, m) -> None:
        self.run.memory_line = "delta" if m.group(1).startswith("Memory footprint delta") else "peak"
        self.run.memory_init_mb, self.run.memory_overall_mb = float(m.group(2)), float(m.group(3))

    def _on_mem_periodic(self, t: str, m) -> None:
        self.run.periodic_peak_mb = float(m.group(1))

    def _on_mem_item(self, t: str, m) -> None:
        attr = {"VmRSS": "vmrss_mb", "RssAnnon": "rss_anon_mb", "RssAnon": "rss_anon_mb"}.get(m.group(1),
                                                                                           "rss_file_shmem_mb")
        setattr(self.run, attr, float(m.group(2)))

    def _on_delegate(self, t: str, m) -> None:
        self.run.delegate_lines.append(t)

    def _on_partition(self, t: str, m) -> None:
        self.run.delegate_lines.append(t)
        self.run.partitions.append(Partition(m.group(3), int(m.group(1)), int(m.group(2)), int(m.group(4))))

    def _on_profile_header(self, t: str, m) -> None:
        self.profile = OpProfile()
        if "initialization" in m.group(1).lower():
            self.run.init_profile = self.profile
        else:
            self.run.op_profile = self.profile
        self.table = self.fmt = None

    def _current_profile(self) -> OpProfile:
        if self.profile is None:  # tables printed without a "Profiling Info" header (old README excerpts)
            self.profile = self.run.op_profile = OpProfile()
        return self.profile

    def _on_table_title(self, t: str, m) -> None:
        self._current_profile()
        self.table = TABLE_KEYS.get(m.group(1).strip().lower(), "unknown")
        self.fmt = None

    def _on_table_header(self, t: str, m) -> None:
        profile = self._current_profile()
        low = t.lower()
        csv = not low.startswith("[")
        layout = "old" if ("[start]" in low or "start," in low) else "new"
        if self.table is None or ("count" in low) != (self.table == "by_type"):
            self.table = "by_type" if "count" in low else "run_order"
        self.fmt = (layout, csv)
        if self.table != "by_type":
            profile.table_format = ("csv-" if csv else "") + layout

    def _on_nodes_executed(self, t: str, m) -> None:
        self._current_profile().nodes_executed = int(m.group(1))
        self.table = None

    def _on_nodes_observed(self, t: str, m) -> None:
        self._current_profile().nodes_observed = int(m.group(1))

    def _on_profile_timings(self, t: str, m) -> None:
        self._current_profile().timings = parse_stat(m.group(1))
        self.table = None

    def _on_profile_memory(self, t: str, m) -> None:
        self.table = None

    # --- end of run
    def finish(self) -> BenchmarkModelRun:
        run, tm = self.run, self.timings
        self._assign_stats()
        run.init_ms = tm.get("init", run.init_ms)
        run.first_inference_ms = tm.get("first inference")
        run.warmup_avg_ms = tm.get("warmup (avg)", tm.get("warmup"))
        if run.warmup_avg_ms is None and run.warmup_stat:
            run.warmup_avg_ms = run.warmup_stat.avg_ms
        run.inference_avg_ms = tm.get("inference (avg)", tm.get("inference"))
        stat = run.inference_stat
        if stat:
            if run.inference_avg_ms is None:
                run.inference_avg_ms = stat.avg_ms
            elif stat.avg_ms and abs(stat.avg_ms - run.inference_avg_ms) > 0.01 * run.inference_avg_ms:
                run.warnings.append(f"Stat line avg {stat.avg_ms:g} ms differs from 'Inference (avg)' "
                                    f"{run.inference_avg_ms:g} ms")
            run.inference_min_ms, run.inference_max_ms = stat.min_ms, stat.max_ms
            run.inference_std_ms, run.inference_count = stat.std_ms, stat.count
            run.inference_p5_ms, run.inference_median_ms, run.inference_p95_ms = stat.p5_ms, stat.median_ms, stat.p95_ms
        if run.first_inference_ms is None and run.warmup_stat and run.warmup_stat.first_ms is not None:
            run.first_inference_ms = run.warmup_stat.first_ms
        self._params_to_fields()
        self._pick_peak_memory()
        if run.failed and tm:  # the tool prints its timings only after a successful benchmark: keep them
            run.warnings += [f"error line in a completed run: {e}" for e in run.errors]
            run.failed, run.error, run.errors = False, None, []
        if run.inference_avg_ms is None and not run.failed:
            run.warnings.append("no inference timings found (output truncated, or the run died silently?)")
        return run

    def _assign_stats(self) -> None:
        """The Stat line after the 1st "Running benchmark" line is warmup, after the 2nd the regular runs. Excerpts
        without those lines: first = warmup, second = regular; a lone line is matched to the timings line's avg."""
        run = self.run
        by_phase = {phase: s for phase, s in self.stats if phase in (1, 2)}
        if by_phase and len(by_phase) == len(self.stats):
            run.warmup_stat, run.inference_stat = by_phase.get(1), by_phase.get(2)
            return
        stats = [s for _, s in self.stats]
        if len(stats) >= 2:
            run.warmup_stat, run.inference_stat = stats[0], stats[1]
            if len(stats) > 2:
                run.warnings.append(f"{len(stats)} Stat lines in one run; used the first two")
        elif len(stats) == 1:
            s, tm = stats[0], self.timings
            close = lambda key: key in tm and s.avg_ms is not None and abs(s.avg_ms - tm[key]) <= 0.01 * tm[key]
            if close("inference (avg)") or close("inference"):
                run.inference_stat = s
            elif close("warmup (avg)") or close("warmup"):
                run.warmup_stat = s
            else:
                run.inference_stat = s
                if not tm:
                    run.warnings.append("one Stat line and no timings line: assumed it is the regular runs")

    def _params_to_fields(self) -> None:
        run, p = self.run, self.run.params
        run.graph = p.get("Graph", run.graph)
        for key in ("#threads used for CPU inference", "Num threads"):
            if re.fullmatch(r"\d+", p.get(key, "")):
                run.num_threads = int(p[key])
                break

    def _pick_peak_memory(self) -> None:
        """Best first: the periodic-monitoring peak (a real peak), then the init/overall line (delta from tool
        start, or TF 2.4's peak), then VmRSS at exit (absolute, but not a peak)."""
        run = self.run
        for value, source in ((run.periodic_peak_mb, "periodic_monitoring"),
                              (run.memory_overall_mb, f"footprint_{run.memory_line}_overall"),
                              (run.vmrss_mb, "vmrss_at_exit")):
            if value is not None:
                run.peak_memory_mb, run.peak_memory_source = value, source
                return


def _parse_runs(text: str) -> list[_RunBuilder]:
    builders = [_RunBuilder()]
    for raw in text.splitlines():
        level, body = _split_prefix(raw)
        kind, m = _classify(level, body)
        in_table = builders[-1].table is not None and kind in ("other", "suspicious", "delegate")
        if not in_table and builders[-1].starts_new_run(kind):
            builders.append(_RunBuilder())
        builders[-1].feed(body, kind, m)
    return _adopt_orphan_profiles([b for b in builders if b.substantive])


def _adopt_orphan_profiles(builders: list[_RunBuilder]) -> list[_RunBuilder]:
    """Tables alone ahead of a run (stdout joined before stderr) belong to the run that follows them."""
    out: list[_RunBuilder] = []
    for b in builders:
        prev = out[-1] if out else None
        if prev and prev.profile_only() and not (b.run.op_profile or b.run.init_profile):
            b.run.op_profile, b.run.init_profile = prev.run.op_profile, prev.run.init_profile
            b.run.warnings[:0] = prev.run.warnings
            out[-1] = b
        else:
            out.append(b)
    return out


_NOT_BM_HINT = ("pass the raw stdout+stderr of benchmark_model (e.g. `adb shell /data/local/tmp/benchmark_model "
                "--graph=... > out.txt 2>&1`) or a logcat dump of the benchmark APK")


def parse_runs(text: str) -> list[BenchmarkModelRun]:
    """Every benchmark_model run in `text`, in order; none when nothing in it is benchmark_model's."""
    return [b.finish() for b in _parse_runs(text)]


def parse_many(text: str) -> list[BenchmarkModelRun]:
    """Every benchmark_model run in `text` (concatenated outputs), in order; text without one is a UserError."""
    runs = parse_runs(text)
    if not runs:
        raise UserError("input does not look like benchmark_model output (no timing, Stat, memory, profiling or "
                        "failure line found)", _NOT_BM_HINT)
    return runs


def parse_benchmark_output(text: str) -> BenchmarkModelRun:
    """The one benchmark_model run in `text`; several runs are an error (use parse_many)."""
    runs = parse_many(text)
    if len(runs) > 1:
        raise UserError(f"input holds {len(runs)} benchmark_model runs, expected one",
                        "parse it with parse_many (or parse_harness_output for run_benchmarks.sh files)")
    return runs[0]
