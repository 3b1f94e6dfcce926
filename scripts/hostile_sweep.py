#!/usr/bin/env python3
"""Hostile-input sweep: damaged and hostile variants of every document and config file the CLI reads, each run
through the real `sdeploy` CLI in a child process, each outcome classified.

    PYTHONPATH=. python scripts/hostile_sweep.py [--only SUBSTRING] [--keep] [--list]

Classes: OK (a one-line `error:` and a nonzero exit for bad input, or exit 0 for a valid one), TRACEBACK,
EXIT0_ON_NONSENSE, REJECTED_VALID (a valid input refused), NOT_ONE_LINE (nonzero exit, no `error:` line), HANG
(timeout), LEFTOVER (hidden temp/lock files left in the case's folder), DATA_LOSS (a file that was there before
changed or vanished), UNESCAPED (a hostile string raw in an HTML/Markdown/CSV output).

The base documents (one small export of the bundled checkpoint, a bench.json of it, a devices.toml, a predictor)
are built once; each case works in its own folder with copies. Exit status: 0 when every case is OK.
Stdlib + the package only.
"""
from __future__ import annotations

import argparse
import csv
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

REPO = Path(__file__).resolve().parents[1]
CKPT = REPO / "models" / "shufflenet_v1_g3_0.5x_digits64.pt"
FIXTURES = REPO / "tests" / "fixtures" / "benchmark_model"
PY = sys.executable
TIMEOUT = 120

XSS = "<img src=x onerror=alert(1)>"
FORMULA = '=HYPERLINK("http://evil.example","x")'
PIPE = "zz|yy\nqq"
MARKUP = "[/x][bold]"
COMBINED = f"{FORMULA}{XSS}{PIPE}"
HOSTILE_NAMES = [XSS, FORMULA, PIPE, MARKUP, COMBINED]
FAST_BENCH = ["--preset", "quick", "--runs", "2", "--warmup", "1", "--instances", "1"]


@dataclass
class Case:
    name: str
    argv: list  # strings; "{w}" is the case folder, "{base}" the base folder
    setup: Callable[[Path], None] | None = None
    expect: str = "error"  # error | ok | any
    precious: list = field(default_factory=list)  # case-relative files that must survive unchanged
    env: dict = field(default_factory=dict)  # "{w}" expanded; a value None unsets
    timeout: int = TIMEOUT
    post: Callable[[Path, "Run"], list] | None = None  # extra classes
    parallel: int = 1  # >1: that many copies started at once (concurrent writers)
    known: str = ""  # a finding whose fix belongs in a module another change owns (reported, not fixed here)


@dataclass
class Run:
    rc: int | None
    stdout: str
    stderr: str
    seconds: float


# ---------------------------------------------------------------------------------------------- the base files
def sdeploy_env(base: Path, extra: dict | None = None) -> dict:
    env = {**os.environ, "PYTHONPATH": str(REPO), "XDG_CONFIG_HOME": str(base / "xdg"),
           "SDEPLOY_CACHE": str(base / "cache"), "PYTHONWARNINGS": "ignore", "COLUMNS": "200"}
    env.pop("SDEPLOY_DEVICES", None)
    for k, v in (extra or {}).items():
        if v is None:
            env.pop(k, None)
        else:
            env[k] = v
    return env


def cli(base: Path, *args, env=None, timeout=600, cwd=None) -> subprocess.CompletedProcess:
    argv = [PY, "-c", "from shufflenet_deploy.cli import run; run()", *map(str, args)]
    return subprocess.run(argv, capture_output=True, text=True, env=sdeploy_env(base, env), timeout=timeout,
                          cwd=cwd or base)


PREDICTOR = {"schema": "sdeploy-predictor/3", "device": "local", "threads": 1, "graph": None, "machine": None,
             "trained_on": [{"key": "shufflenet_v1_g3_0.5x@64", "precision": "fp32", "measured_ms": 0.3}],
             "lookup": {}, "regression": {"fp32|*|*": {"coef": [0.001, 1e-9, 0.0, 0.0], "n": 5},
                                          "int8|*|*": {"coef": [0.001, 1e-9, 0.0, 0.0], "n": 5}},
             "correction": {"fp32": {"a": 1.0, "n": 1, "min": 1.0, "max": 1.0}},
             "evaluation": [{"key": "shufflenet_v1_g3_0.5x@64", "precision": "fp32", "measured_ms": 0.3,
                             "predicted_ms": 0.31, "error": 0.033, "lookup_ops": 0, "regression_ops": 10}],
             "within_10pct": 1.0}


def build_base(base: Path) -> None:
    steps = [("export", ["export", "--checkpoint", CKPT, "--precision", "fp32,int8", "--calib-count", "16",
                         "-o", base / "exp"]),
             ("bench", ["bench", base / "exp", "--device", "local", *FAST_BENCH, "-o", base / "bench"]),
             ("report", ["report", base / "bench", "-o", base / "report"])]
    for what, args in steps:
        t = time.monotonic()
        done = cli(base, *args)
        if done.returncode != 0:
            sys.exit(f"base {what} failed:\n{done.stderr[-3000:]}")
        print(f"base {what}: {time.monotonic() - t:.1f} s", file=sys.stderr)
    (base / "devices.toml").write_text('[devices.box]\ntransport = "local"\nthreads = [1]\n'
                                       'description = "a local box"\n\n[groups]\nlab = ["box"]\n')
    (base / "predictor.json").write_text(json.dumps(PREDICTOR, indent=1))


# ------------------------------------------------------------------------------------------------- helpers
BASE: Path = Path("/nonexistent")


def copy_export(w: Path) -> Path:
    shutil.copytree(BASE / "exp", w / "exp", symlinks=True)
    return w / "exp"


def copy_bench(w: Path, name: str = "r") -> Path:
    shutil.copytree(BASE / "bench", w / name)
    return w / name


def load(path: Path) -> dict:
    return json.loads(path.read_text())


def dump(path: Path, data) -> None:
    path.write_text(json.dumps(data, indent=1, allow_nan=True))


def raw_replace(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, (path, old)
    path.write_text(text.replace(old, new, 1))


def nested(depth: int, opener: str = "[", closer: str = "]") -> str:
    return opener * depth + closer * depth


def whole_file_variants() -> list[tuple[str, Callable[[Path], None]]]:
    """Damage applied to a whole document file (it exists beforehand)."""
    def put(data: bytes):
        return lambda p: p.write_bytes(data)

    def fifo(p: Path):
        p.unlink()
        os.mkfifo(p)

    def folder(p: Path):
        p.unlink()
        p.mkdir()

    def link(target: str):
        def make(p: Path):
            p.unlink()
            p.symlink_to(target)
        return make

    def huge(p: Path):  # 200 MB of whitespace and a valid document at the end
        data = p.read_bytes()
        with open(p, "wb") as fh:
            for _ in range(200):
                fh.write(b" " * (1 << 20))
            fh.write(data)

    def sparse(p: Path):
        with open(p, "r+b") as fh:
            fh.truncate(300 << 20)

    def truncated(p: Path):
        data = p.read_bytes()
        p.write_bytes(data[: len(data) // 2])

    return [("random", put(os.urandom(4096))), ("non_utf8", put(b'{"schema": "\xff\xfe\xfa"}')),
            ("empty", put(b"")), ("null", put(b"null")), ("list", put(b"[1, 2]")), ("number", put(b"7")),
            ("truncated", truncated), ("deep_nesting", put(nested(200000).encode())),
            ("deep_objects", put(('{"a":' * 100000 + "1" + "}" * 100000).encode())),
            ("fifo", fifo), ("folder", folder), ("symlink_dev_zero", link("/dev/zero")),
            ("symlink_etc_passwd", link("/etc/passwd")), ("dangling_symlink", link("/nonexistent/x")),
            ("huge_200mb", huge), ("sparse_300mb", sparse), ("bom", lambda p: p.write_bytes(b"\xef\xbb\xbf"
                                                                                            + p.read_bytes()))]


# ------------------------------------------------------------------------------------------------- the cases
def manifest_cases() -> list[Case]:
    cases = []
    bench = ["bench", "{w}/exp", "--device", "local", *FAST_BENCH, "--no-peak", "-o", "{w}/b"]
    for name, damage in whole_file_variants():
        # 200 MB of whitespace around a valid manifest is a valid document under the readers' bound (256 MB)
        cases.append(Case(f"manifest/{name}", bench, _export_with(lambda m, d=damage: d(m)),
                          expect="any" if name == "huge_200mb" else "error"))
    edits = {
        "model_int": ("model", 123), "model_null": ("model", None), "model_empty": ("model", ""),
        "model_list": ("model", ["a"]), "input_size_str": ("input_size", "64"), "input_size_neg": ("input_size", -1),
        "input_size_zero": ("input_size", 0), "input_size_huge": ("input_size", 10**30),
        "input_size_nan": ("input_size", float("nan")), "input_size_3": ("input_size", [64, 64, 64]),
        "input_size_bool": ("input_size", True), "input_size_float": ("input_size", 64.5),
        "classes_neg": ("num_classes", -1), "classes_str": ("num_classes", "10"),
        "classes_inf": ("num_classes", float("inf")), "classes_huge": ("num_classes", 10**20),
        "macs_str": ("macs", "x"), "macs_neg": ("macs", {"total": -5, "conv": 1}),
        "macs_nan": ("macs", {"total": float("nan")}), "macs_huge": ("macs", {"total": 1e300}),
        "macs_total_str": ("macs", {"total": "3"}), "artifacts_missing": ("artifacts", "__delete__"),
        "artifacts_list": ("artifacts", []), "artifacts_str": ("artifacts", "x"),
        "artifact_entry_str": ("artifacts", {"fp32": "model_fp32.tflite"}),
        "artifact_escape_dotdot": ("artifacts", {"fp32": {"file": "../../etc/passwd", "format": "tflite"}}),
        "artifact_escape_abs": ("artifacts", {"fp32": {"file": "/etc/passwd", "format": "tflite"}}),
        "artifact_subdir": ("artifacts", {"fp32": {"file": "sub/model_fp32.tflite", "format": "tflite"}}),
        "artifact_file_int": ("artifacts", {"fp32": {"file": 5}}),
        "artifact_sha_bad": ("artifacts", {"fp32": {"file": "model_fp32.tflite", "sha256": "zz"}}),
        "artifact_sha_wrong": ("artifacts", {"fp32": {"file": "model_fp32.tflite", "sha256": "0" * 64}}),
        "artifact_format_int": ("artifacts", {"fp32": {"file": "model_fp32.tflite", "format": 5}}),
        "schema_missing": ("schema", "__delete__"), "schema_other": ("schema", "sdeploy-export/9"),
        "schema_int": ("schema", 5), "status_failed": ("status", "failed"), "status_int": ("status", 5),
        "preprocessing_str": ("preprocessing", "x"), "preprocessing_missing": ("preprocessing", "__delete__"),
        "preprocessing_bad_mean": ("preprocessing", {"mean": "x", "std": [0, 0, 0], "scale": "y"}),
        "class_names_ints": ("class_names", [1, 2]), "class_names_str": ("class_names", "abc"),
        "options_str": ("options", "x"), "options_bad_groups": ("options", {"groups": "x", "width": -1}),
        "images_bad": ("images", {"calibration": "x", "source": 5}), "lowering_bad": ("lowering", "x"),
        "tools_bad": ("tools", {"onnx2tf": ["x"]}), "params_str": ("params", "x"),
        "model_hostile": ("model", COMBINED),
    }
    for name, (key, value) in edits.items():
        cases.append(Case(f"manifest/{name}", bench, _export_with(_edit(key, value)),
                          expect="any" if name in ("model_hostile", "images_bad", "tools_bad", "lowering_bad",
                                                   "params_str", "options_bad_groups", "preprocessing_missing",
                                                   "preprocessing_bad_mean") else "error"))  # bench reads neither
    # artifact files themselves
    for name, damage in [("fifo", lambda p: (p.unlink(), os.mkfifo(p))),
                         ("symlink_outside", lambda p: (shutil.copy(p, p.parent.parent / "outside.tflite"),
                                                        p.unlink(), p.symlink_to(p.parent.parent / "outside.tflite"))),
                         ("symlink_dev_zero", lambda p: (p.unlink(), p.symlink_to("/dev/zero"))),
                         ("folder", lambda p: (p.unlink(), p.mkdir())),
                         ("huge_200mb", lambda p: open(p, "ab").write(b"\0" * (200 << 20))),
                         ("missing", lambda p: p.unlink()), ("garbage", lambda p: p.write_bytes(b"garbage"))]:
        cases.append(Case(f"manifest_artifact/{name}", bench,
                          _export_with(lambda m, d=damage: d(m.parent / "model_fp32.tflite")),
                          expect="any" if name == "symlink_outside" else "error"))
    # other readers of the manifest
    for name, value in [("rows_str", {"rows": "x"}), ("rows_ints", {"rows": [1, 2]}),
                        ("rows_nan", {"rows": [{"index": 0, "op": "CONV_2D", "tensor": "t", "snr_db": float("nan"),
                                                "rmse_pct": -1, "scale": "x"}]}),
                        ("rows_hostile", {"rows": [{"index": 0, "op": XSS, "tensor": PIPE, "snr_db": 5.0,
                                                    "rmse_pct": 1.0, "scale": 0.1, "clipped_pct": 0.0}]}),
                        ("str", "x")]:
        cases.append(Case(f"manifest_int8_layers/{name}", ["quant-report", "{w}/exp", "-o", "{w}/q"],
                          _export_with(_edit("int8_layers", value)), expect="any" if name == "rows_hostile"
                          else "error"))
    cases.append(Case("manifest_int8_repair/str", ["quant-report", "{w}/exp", "-o", "{w}/q"],
                      _export_with(_edit("int8_repair", "x"))))
    cases.append(Case("manifest_int8_repair/bad_attempts", ["quant-report", "{w}/exp", "-o", "{w}/q"],
                      _export_with(_edit("int8_repair", {"target": 5, "attempts": "x", "applied": [1]})),
                      expect="any"))
    for name, edit in [("preprocessing_missing", _edit("preprocessing", "__delete__")),
                       ("preprocessing_nan", _edit("preprocessing", {"input_size": 64, "resize": 64,
                                                                      "channel_order": "RGB", "scale": float("nan"),
                                                                      "mean": [0, 0, 0], "std": [0, 0, 0]})),
                       ("class_names_wrong_count", _edit("class_names", ["a", "b"])),
                       ("classes_mismatch", _edit("num_classes", 7))]:
        known = {"preprocessing_missing": "manifest.py: preprocessing is optional in _validate, required by the "
                                          "`preprocessing` property (KeyError)",
                 "classes_mismatch": "manifest.py: _validate does not check num_classes against class_names"}
        cases.append(Case(f"manifest_eval/{name}", ["eval", "{w}/exp", "--data", "digits"], _export_with(edit),
                          known=known.get(name, "")))
    return cases


def _export_with(change: Callable[[Path], None]) -> Callable[[Path], None]:
    def setup(w: Path):
        change(copy_export(w) / "manifest.json")
    return setup


def _edit(key: str, value) -> Callable[[Path], None]:
    def change(m: Path):
        data = load(m)
        if value == "__delete__":
            data.pop(key, None)
        else:
            data[key] = value
        dump(m, data)
    return change


def _bench_edit(fn: Callable[[dict], None]) -> Callable[[Path], None]:
    def setup(w: Path):
        r = copy_bench(w)
        data = load(r / "bench.json")
        fn(data)
        dump(r / "bench.json", data)
    return setup


def _row(**changes) -> Callable[[dict], None]:
    def fn(data: dict):
        for k, v in changes.items():
            if v == "__delete__":
                data["results"][0].pop(k, None)
            else:
                data["results"][0][k] = v
    return fn


def _lat(**changes) -> Callable[[dict], None]:
    def fn(data: dict):
        data["results"][0]["latency_ms"].update(changes)
    return fn


COMPARE_ROWS = {"p50_nan", "p50_neg", "threads_zero", "ci_short", "latency_str", "duplicate_rows", "results_empty",
                "schema_other", "fastest_bad", "device_int", "interleaved_nan", "models_ops_bad", "model_info_bad",
                "conditions_bad"}


def bench_cases() -> list[Case]:
    report = ["report", "{w}/r", "-o", "{w}/out"]
    compare = ["compare", "{w}/r", "{base}/bench", "--markdown", "{w}/c.md"]
    cases = []
    for name, damage in whole_file_variants():
        def setup(w, d=damage):
            d(copy_bench(w) / "bench.json")
        expect = "any" if name == "huge_200mb" else "error"
        cases.append(Case(f"bench_json/{name}/report", report, setup, expect=expect))
        if name in ("random", "deep_nesting", "fifo", "huge_200mb", "truncated", "null"):
            cases.append(Case(f"bench_json/{name}/compare", compare, setup, expect=expect))
    nan = float("nan")
    rows = {
        "p50_nan": _lat(p50=nan), "p50_neg": _lat(p50=-1), "p50_str": _lat(p50="1"), "p50_huge": _lat(p50=1e300),
        "p50_inf": _lat(p50=float("inf")), "ci_short": _lat(median_ci=[1]), "ci_nan": _lat(median_ci=[nan, 1]),
        "latency_str": _row(latency_ms="x"), "latency_missing": _row(latency_ms="__delete__"),
        "threads_zero": _row(threads=0), "threads_str": _row(threads="1"), "threads_float": _row(threads=1.5),
        "threads_bool": _row(threads=True), "device_int": _row(device=5), "device_empty": _row(device=""),
        "precision_int": _row(precision=5), "precision_int4": _row(precision="int4"),
        "times_nan": _row(times_ms=[nan]), "times_neg": _row(times_ms=[-1.0]), "times_str": _row(times_ms="x"),
        "affinity_str": _row(affinity=["x"]), "runtime_str": _row(runtime="x"), "runtime_name_int":
        _row(runtime={"name": 5}), "warnings_ints": _row(warnings=[1]), "cpu_str": _row(cpu="x"),
        "model_info_str": _row(model_info="x"), "macs_neg": _row(macs=-1), "macs_huge": _row(macs=10**30),
        "macs_float_nan": _row(macs=nan), "created_int": _row(created=5), "schema_other": _row(schema="x/9"),
        "op_times_bad": _row(op_times={"ops": "x", "op_method": 5}),
        "conditions_bad": _row(conditions={"before": "x", "after": [1]}),
        "device_facts_bad": _row(device_facts={"clusters": "x", "isa": 5, "cores": "y"}),
        "model_info_bad": _row(model_info={"macs": "x", "input_size": "y", "name": 5}),
        "artifact_bad": _row(artifact={"file": 5, "sha256": ["x"]}),
        "trials_summary_bad": _row(trials_summary={"medians": "x"}),
        "peak_gmacs_neg": _row(peak_gmacs=-1), "peak_fraction_huge": _row(peak_fraction=1e12),
        "partial_str": _row(partial="yes"), "stable_str": _row(stable="x"),
        "duplicate_rows": lambda d: d["results"].extend(d["results"]),
        "results_str": lambda d: d.update(results="x"), "results_empty": lambda d: d.update(results=[]),
        "results_missing": lambda d: d.pop("results"), "doc_schema_other": lambda d: d.update(schema="x"),
        "fastest_bad": lambda d: d.update(fastest=[{"device": 5}]), "fastest_str": lambda d: d.update(fastest="x"),
        "peak_bad": lambda d: d.update(peak=[{"threads": 1, "precision": "fp32", "gmacs": "x"}]),
        "peak_str_items": lambda d: d.update(peak=["x"]),
        "peak_extra_fields": lambda d: d.update(peak=[{"threads": 1, "precision": "fp32", "gmacs": 5.0,
                                                       "device": 5, "kernel": ["x"]}]),
        "models_bad": lambda d: d.update(models={"k": {"precisions": {"fp32": {"ops": "x"}}}}),
        "models_ops_bad": lambda d: d.update(models={"shufflenet_v1_g3_0.5x@64": {
            "precisions": {"fp32": {"ops": [{"op": 5, "time_ms": "x"}], "op_method": "single-op"}}}}),
        "models_layers_bad": lambda d: d.update(models={"shufflenet_v1_g3_0.5x@64": {
            "macs_total": 5, "layers": "x", "flops_by_group": "y"}}),
        "sweep_bad": lambda d: d.update(sweep={"preset": 5, "measure": "x", "threads": "y"}),
        "skipped_bad": lambda d: d.update(skipped=[{"key": "k", "reason": 5}]),
        "interleaved_nan": lambda d: d.update(interleaved={"latency_ms": {"k|fp32": nan}}),
        "interleaved_str": lambda d: d.update(interleaved={"latency_ms": "x"}),
        "partial_doc_str": lambda d: d.update(partial="x"),
    }
    accept = {"duplicate_rows", "warnings_ints", "op_times_bad", "conditions_bad", "device_facts_bad",
              "model_info_bad", "artifact_bad", "trials_summary_bad", "peak_extra_fields", "models_bad",
              "models_ops_bad", "models_layers_bad", "sweep_bad", "skipped_bad", "interleaved_str",
              "precision_int4", "peak_fraction_huge", "macs_huge", "p50_huge", "cpu_str", "created_int"}
    for name, fn in rows.items():
        expect = "any" if name in accept else "error"
        cases.append(Case(f"bench_row/{name}/report", report, _bench_edit(fn), expect=expect))
        if name in COMPARE_ROWS:
            cases.append(Case(f"bench_row/{name}/compare", compare, _bench_edit(fn), expect=expect))
    # resuming into a folder whose bench.json is damaged: never overwritten silently
    for name, content in [("random", os.urandom(512)), ("not_ours", b'{"hello": 1}')]:
        def setup(w, c=content):
            (w / "b").mkdir()
            (w / "b" / "bench.json").write_bytes(c)
            (w / "b" / "notes.txt").write_text("mine")
        cases.append(Case(f"bench_out/{name}_existing", ["bench", "{base}/exp", "--device", "local", *FAST_BENCH,
                                                         "--no-peak", "-o", "{w}/b"], setup,
                          precious=["b/bench.json", "b/notes.txt"]))
    def user_csv(w):
        (w / "b").mkdir()
        (w / "b" / "bench.csv").write_text("my,own\nspreadsheet,1\n")
    cases.append(Case("bench_out/user_bench_csv_no_json", ["bench", "{base}/exp", "--device", "local", *FAST_BENCH,
                                                          "--no-peak", "-o", "{w}/b"], user_csv,
                      precious=["b/bench.csv"]))
    # hostile strings from a colleague's bench.json into the report, compare's Markdown and the CSVs
    for i, text in enumerate(HOSTILE_NAMES):
        for field_ in ("device", "model", "model_key", "precision"):
            def fn(d, f=field_, t=text):
                for r in d["results"]:
                    r[f] = t
                    if f == "device":
                        r["warnings"] = [t]
                d.pop("fastest", None)
            cases.append(Case(f"bench_hostile/{field_}{i}/report", report, _bench_edit(fn), expect="any"))
            if text not in (COMBINED, MARKUP):
                continue
            cases.append(Case(f"bench_hostile/{field_}{i}/compare", ["compare", "{w}/r", "{w}/r", "--markdown",
                                                                    "{w}/c.md", "--allow-mixed"],
                              _bench_edit(fn), expect="any"))
    def fastest_hostile(d):
        for f in d.get("fastest", []):
            f.update(device=COMBINED, model=COMBINED, artifact=COMBINED, runtime=COMBINED, why=COMBINED)
    cases.append(Case("bench_hostile/fastest/report", report, _bench_edit(fastest_hostile), expect="any"))
    cases.append(Case("bench_hostile/title", ["report", "{base}/bench", "-o", "{w}/out", "--title", COMBINED],
                      expect="any"))
    return cases


def predictor_cases() -> list[Case]:
    cases = []
    nan = float("nan")

    def with_pred(fn=None, raw: bytes | None = None):
        def setup(w: Path):
            r = copy_bench(w)
            data = json.loads(json.dumps(PREDICTOR))
            if fn:
                fn(data)
            path = r / "predictor-local.json"
            path.write_bytes(raw) if raw is not None else dump(path, data)
        return setup

    edits = {
        "coef_nan": lambda d: d["regression"]["fp32|*|*"].update(coef=[nan, 0, 0, 0]),
        "coef_neg": lambda d: d["regression"]["fp32|*|*"].update(coef=[-1, 0, 0, 0]),
        "coef_short": lambda d: d["regression"]["fp32|*|*"].update(coef=[1]),
        "coef_str": lambda d: d["regression"]["fp32|*|*"].update(coef="x"),
        "scale_zero": lambda d: d["correction"]["fp32"].update(a=0), "scale_huge": lambda d: d["correction"]
        ["fp32"].update(a=1e300), "lookup_str": lambda d: d.update(lookup={"x": "1"}),
        "lookup_nan": lambda d: d.update(lookup={"x": nan}), "regression_empty": lambda d: d.update(regression={}),
        "correction_empty": lambda d: d.update(correction={}), "evaluation_bad": lambda d: d.update(evaluation=[1]),
        "evaluation_nan": lambda d: d["evaluation"][0].update(error=nan), "within_2": lambda d: d.update(
            within_10pct=2), "threads_zero": lambda d: d.update(threads=0), "machine_str": lambda d: d.update(
            machine="x"), "machine_bad": lambda d: d.update(machine={"cpu": 5, "cores": "x"}),
        "trained_bad": lambda d: d.update(trained_on=[{"key": 5}]), "schema_other": lambda d: d.update(schema="x"),
        "schema_missing": lambda d: d.pop("schema"), "device_int": lambda d: d.update(device=5),
        "evaluation_hostile": lambda d: d["evaluation"][0].update(key=COMBINED, precision=XSS),
    }
    for name, fn in edits.items():
        expect = "any" if name == "evaluation_hostile" else "error"
        cases.append(Case(f"predictor/{name}/report", ["report", "{w}/r", "-o", "{w}/out"], with_pred(fn),
                          expect=expect))
        cases.append(Case(f"predictor/{name}/predict", ["predict", "shufflenet_v1_g3_0.25x", "--device", "local",
                                                        "--input-size", "32", "--predictor",
                                                        "{w}/r/predictor-local.json", "--force-predictor"],
                          with_pred(fn), expect="any" if name in ("evaluation_hostile",) else "error"))
    for name, damage in whole_file_variants():
        def setup(w, d=damage):
            with_pred()(w)
            d(w / "r" / "predictor-local.json")
        cases.append(Case(f"predictor_file/{name}/report", ["report", "{w}/r", "-o", "{w}/out"], setup,
                          expect="any" if name == "huge_200mb" else "error"))
    cases.append(Case("predictor/valid/predict", ["predict", "shufflenet_v1_g3_0.25x", "--device", "local",
                                                  "--input-size", "32", "--predictor", "{base}/predictor.json",
                                                  "--force-predictor"], expect="ok", timeout=300))
    return cases


def peak_cache_cases() -> list[Case]:
    cmd = ["bench", "{base}/exp", "--device", "local", *FAST_BENCH, "-o", "{w}/b"]
    cases = []

    def with_cache(fn):
        def setup(w: Path):
            shutil.copytree(BASE / "cache" / "peaks", w / "cache" / "peaks")
            fn(w / "cache" / "peaks" / "local.json")
        return setup

    env = {"SDEPLOY_CACHE": "{w}/cache"}
    for name, damage in whole_file_variants():
        if name in ("huge_200mb", "sparse_300mb"):
            continue
        cases.append(Case(f"peak_cache/{name}", cmd, with_cache(damage), expect="ok", env=env))

    def rec(**changes):
        def fn(p: Path):
            data = load(p)
            data["records"][0].update(changes)
            dump(p, data)
        return fn
    for name, fn in [("gmacs_nan", rec(gmacs=float("nan"))), ("ms_neg", rec(median_ms=-1)),
                     ("kernel_bad", rec(kernel="x")), ("machine_str", rec(machine="x")),
                     ("machine_bad", rec(machine={"cpu": 5})), ("threads_str", rec(threads="1")),
                     ("records_str", lambda p: dump(p, {**load(p), "records": "x"})),
                     ("records_ints", lambda p: dump(p, {**load(p), "records": [1, 2]})),
                     ("schema_other", lambda p: dump(p, {**load(p), "schema": "x"})),
                     ("old_list", lambda p: dump(p, [1]))]:
        cases.append(Case(f"peak_cache_entry/{name}", cmd, with_cache(fn), expect="ok", env=env))

    def peaks_file(w):
        (w / "cache").mkdir()
        (w / "cache" / "peaks").write_text("x")
    cases.append(Case("peak_cache/peaks_is_a_file", cmd, peaks_file, expect="ok", env=env))

    def cache_file(w):
        (w / "cachefile").write_text("x")
    cases.append(Case("peak_cache/SDEPLOY_CACHE_is_a_file", cmd, cache_file, env={"SDEPLOY_CACHE": "{w}/cachefile"}))

    def cache_fifo(w):
        os.mkfifo(w / "cachefifo")
    cases.append(Case("peak_cache/SDEPLOY_CACHE_is_a_fifo", cmd, cache_fifo, env={"SDEPLOY_CACHE": "{w}/cachefifo"}))
    cases.append(Case("peak_cache/SDEPLOY_CACHE_empty", cmd, expect="ok", env={"SDEPLOY_CACHE": ""}))
    cases.append(Case("peak_cache/SDEPLOY_CACHE_dev_null", cmd, env={"SDEPLOY_CACHE": "/dev/null"}))
    cases.append(Case("peak_cache/SDEPLOY_CACHE_under_proc", cmd, expect="any",
                      env={"SDEPLOY_CACHE": "/proc/sdeploy-cache"}))
    return cases


LIST_FIELDS = {"threads_str", "timeout_inf", "transport_bad", "affinity_huge_range", "affinity_huge_mask",
               "description_markup", "unknown_key", "peak_nan", "python_unbalanced"}


def devices_cases() -> list[Case]:
    cases = []
    bench = ["bench", "{base}/exp", "--device", "box", "--devices", "{w}/d.toml", *FAST_BENCH, "--no-peak",
             "-o", "{w}/b"]
    listing = ["devices", "--devices", "{w}/d.toml"]

    def toml(text: str | bytes):
        def setup(w: Path):
            (w / "d.toml").write_bytes(text if isinstance(text, bytes) else text.encode())
        return setup

    box = '[devices.box]\ntransport = "local"\n'
    values = {
        "threads_str": 'threads = "4"', "threads_zero": "threads = [0]", "threads_float": "threads = [1.5]",
        "threads_huge": "threads = [1000000000]", "threads_empty": "threads = []",
        "threads_date": "threads = 1979-05-27", "timeout_inf": "connect_timeout = inf",
        "timeout_nan": "connect_timeout = nan", "timeout_neg": "connect_timeout = -1",
        "timeout_str": 'connect_timeout = "10"', "port_str": 'port = "22"', "port_huge": "port = 70000",
        "transport_bad": 'transport = "carrier-pigeon"', "transport_int": "transport = 5",
        "host_list": 'host = ["a"]', "affinity_bad": 'affinity = "zz"', "affinity_neg": "affinity = -1",
        "affinity_huge_range": 'affinity = "0-1000000000"', "affinity_huge_mask": f'affinity = "0x{"f" * 100000}"',
        "affinity_absent_cpu": 'affinity = "999"', "affinity_float": "affinity = 1.5",
        "unknown_key": 'hots = "x"', "peak_nan": "peak_gmacs = {fp32 = nan}", "peak_str": 'peak_gmacs = "x"',
        "ssh_options_str": 'ssh_options = "x"', "python_empty": 'python = ""',
        "python_missing": 'python = "/nonexistent/python3"', "python_false": 'python = "false"',
        "python_unbalanced": "python = \"python3 'oops\"", "workdir_proc": 'workdir = "/proc"',
        "workdir_missing": 'workdir = "/nonexistent/deep/x"', "workdir_nul": 'workdir = "a\\u0000b"',
        "benchmark_binary_list": "benchmark_binary = [1]", "description_markup": f'description = "{MARKUP}"',
    }
    expect_any = {"threads_huge", "affinity_absent_cpu", "workdir_missing", "description_markup"}
    for name, line in values.items():
        text = box + line + "\n"
        expect = "any" if name in expect_any else "error"
        cases.append(Case(f"devices_field/{name}/bench", bench, toml(text), expect=expect))
        if name not in LIST_FIELDS:
            continue
        cases.append(Case(f"devices_field/{name}/list", listing, toml(text),
                          expect="any" if name in expect_any or name.startswith(("python", "workdir", "affinity_h"))
                          else "error"))
    for name, damage in whole_file_variants():
        def setup(w, d=damage):
            (w / "d.toml").write_text(box)
            d(w / "d.toml")
        expect = "ok" if name == "empty" else "error"
        cases.append(Case(f"devices_file/{name}", listing, setup, expect=expect))
    structural = {
        "devices_int": "devices = 5\n", "device_int": "[devices]\nbox = 5\n", "groups_int": box + "groups = 5\n",
        "group_str": box + '[groups]\nlab = "box"\n', "group_unknown": box + '[groups]\nlab = ["nope"]\n',
        "group_empty": box + "[groups]\nlab = []\n", "unknown_table": box + "[other]\nx = 1\n",
        "deep_array": "x = " + nested(200000) + "\n", "deep_inline": "x = " + "{a = " * 20000 + "1" + "}" * 20000,
        "dup_table": box + box, "too_big": "# " + "x" * (2 << 20) + "\n",
    }
    for name, text in structural.items():
        argv = (["bench", "{base}/exp", "--device", "lab", "--devices", "{w}/d.toml", *FAST_BENCH, "--no-peak",
                 "-o", "{w}/b"] if name.startswith("group") else listing)
        cases.append(Case(f"devices_toml/{name}", argv, toml(text)))
    # hostile device names: listed, benched, then reported and compared
    for i, text in enumerate(HOSTILE_NAMES + ["../../escape", "a/b", "", "-rf"]):
        def setup(w, t=text):
            (w / "d.toml").write_text(f"[devices.{json.dumps(t)}]\ntransport = \"local\"\n"
                                      f"description = {json.dumps(t)}\n")

        def chain(w: Path, run: Run, t=text) -> list:
            if run.rc != 0:
                return []
            found = []
            for extra in (["report", "{w}/b", "-o", "{w}/out"], ["compare", "{w}/b", "{w}/b", "--markdown",
                                                                 "{w}/c.md"]):
                done = cli(BASE, *[a.replace("{w}", str(w)).replace("{base}", str(BASE)) for a in extra],
                           timeout=TIMEOUT)
                if "Traceback" in done.stderr:
                    found.append("TRACEBACK")
            return found
        cases.append(Case(f"devices_name/{i}/bench", ["bench", "{base}/exp", "--device", text, "--devices",
                                                      "{w}/d.toml", *FAST_BENCH, "--no-peak", "-o", "{w}/b"],
                          setup, expect="any", post=chain))
        cases.append(Case(f"devices_name/{i}/list", listing, setup, expect="any"))
    # a hostile device name with the default output folder (ARTIFACT/bench-DEVICE)
    def escape_setup(w):
        copy_export(w)
        (w / "d.toml").write_text('[devices."../../../escaped"]\ntransport = "local"\n')

    def stayed_inside(w: Path, run: Run) -> list:
        return ["DATA_LOSS"] if (w.parent / "escaped").exists() or (w / "escaped").exists() else []
    cases.append(Case("devices_name/default_out_escape", ["bench", "{w}/exp", "--device", "../../../escaped",
                                                          "--devices", "{w}/d.toml", *FAST_BENCH, "--no-peak"],
                      escape_setup, expect="any", post=stayed_inside))
    return cases


def import_cases() -> list[Case]:
    cases = []
    cmd = ["bench", "--parse", "{w}/log.txt", "--device", "pixel", "--model", "m", "--precision", "fp32",
           "-o", "{w}/b"]
    ok_fixtures, bad_fixtures = [], []
    for f in sorted(FIXTURES.glob("*.txt")):
        (bad_fixtures if f.name.startswith(("fail_", "not_")) else ok_fixtures).append(f)

    def log(data: bytes | Path | Callable[[], bytes]):
        def setup(w: Path):
            content = data.read_bytes() if isinstance(data, Path) else data() if callable(data) else data
            (w / "log.txt").write_bytes(content)
        return setup

    for f in ok_fixtures:
        cases.append(Case(f"import/fixture_{f.stem}", cmd, log(f), expect="any"))
    for f in bad_fixtures:
        cases.append(Case(f"import/fixture_{f.stem}", cmd, log(f)))
    good = (FIXTURES / "new_info_xnnpack_percentiles.txt").read_bytes()
    line = b"count=270 first=3712 curr=3699 min=3633 max=4502 avg=3701.07 std=58 p5=3648 median=3690 p95=3790"
    assert line in good
    for name, repl in [("avg_nan", b"count=270 first=3712 curr=3699 min=3633 max=4502 avg=nan std=58"),
                       ("avg_neg", line.replace(b"avg=3701.07", b"avg=-3701.07")),
                       ("avg_inf", line.replace(b"avg=3701.07", b"avg=1e400")),
                       ("median_neg", line.replace(b"median=3690", b"median=-5")),
                       ("count_zero", line.replace(b"count=270", b"count=0")),
                       ("count_huge", line.replace(b"count=270", b"count=" + b"9" * 5000)),
                       ("all_nan", b"count=nan first=nan curr=nan min=nan max=nan avg=nan std=nan p5=nan "
                                   b"median=nan p95=nan")]:
        # one garbled stat line: the tool's "Inference timings" summary line still gives the numbers
        cases.append(Case(f"import/{name}", cmd, log(good.replace(line, repl)),
                          expect="any"))  # count_huge: a count of 5000 digits is dropped
    for name, data in [("random", os.urandom(8192)), ("empty", b""), ("non_utf8", b"\xff\xfe" * 500),
                       ("nul_bytes", b"\0" * 10000)]:
        cases.append(Case(f"import/{name}", cmd, log(data)))

    def sparse(w):
        with open(w / "log.txt", "wb") as fh:
            fh.truncate(300 << 20)
    cases.append(Case("import/sparse_300mb", cmd, sparse))
    cases.append(Case("import/fifo", cmd, lambda w: os.mkfifo(w / "log.txt")))
    graph = good.replace(b"[/data/local/tmp/shufflenet_v1_g3_1.0x_fp32.tflite]",
                         b"[/data/local/tmp/" + COMBINED.replace("\n", " ").encode() + b".tflite]")
    for name, argv in [("hostile_graph_name", ["bench", "--parse", "{w}/log.txt", "--device", "pixel", "-o", "{w}/b"]),
                       ("hostile_model_flag", ["bench", "--parse", "{w}/log.txt", "--device", "pixel", "--model",
                                               COMBINED, "--precision", XSS, "-o", "{w}/b"]),
                       ("precision_unknown", ["bench", "--parse", "{w}/log.txt", "--device", "pixel", "--model", "m",
                                              "--precision", "int4", "-o", "{w}/b"]),
                       ("threads_zero", ["bench", "--parse", "{w}/log.txt", "--device", "pixel", "--model", "m",
                                         "--threads", "0", "-o", "{w}/b"]),
                       ("threads_str", ["bench", "--parse", "{w}/log.txt", "--device", "pixel", "--model", "m",
                                        "--threads", "x", "-o", "{w}/b"]),
                       ("device_unknown", ["bench", "--parse", "{w}/log.txt", "--device", "nope", "--model", "m",
                                           "-o", "{w}/b"]),
                       ("device_hostile", ["bench", "--parse", "{w}/log.txt", "--device", COMBINED, "--model", "m"])]:
        def chain(w: Path, run: Run) -> list:
            outs = [p for p in w.rglob("bench.json")]
            found = []
            for out in outs:
                for extra in (["report", out.parent, "-o", w / "out"],
                              ["compare", out.parent, out.parent, "--markdown", w / "c.md"]):
                    done = cli(BASE, *extra, timeout=TIMEOUT)
                    if "Traceback" in done.stderr:
                        found.append("TRACEBACK")
            return found
        expect = "error" if name in ("threads_zero", "threads_str", "precision_unknown") else "any"
        cases.append(Case(f"import/{name}", argv, log(graph if name == "hostile_graph_name" else good),
                          expect=expect, post=chain))
    return cases


def checkpoint_cases() -> list[Case]:
    cases = []
    cmd = ["export", "--checkpoint", "{w}/c.pt", "--precision", "fp32", "-o", "{w}/out"]

    def ck(fn):
        def setup(w: Path):
            fn(w / "c.pt")
        return setup

    good = CKPT.read_bytes()
    pickle_global = (b"\x80\x04\x95\x1d\x00\x00\x00\x00\x00\x00\x00\x8c\x02os\x94\x8c\x06system\x94\x93\x94"
                     b"\x8c\x04true\x94\x85\x94R\x94.")
    script = ("import sys, torch\nfrom shufflenet_deploy.checkpoints import load_model\n"
              "p = sys.argv[1]; kind = sys.argv[2]\n"
              "m = load_model('shufflenet_v1_g3_0.5x', num_classes=10)\n"
              "sd = m.state_dict()\n"
              "if kind == 'shapes': sd = {k: torch.zeros(3, 3) for k in sd}\n"
              "if kind == 'nan': sd = {k: v.float().fill_(float('nan')) if v.is_floating_point() else v "
              "for k, v in sd.items()}\n"
              "if kind == 'meta_str': sd = {'state_dict': sd, 'meta': 'x'}\n"
              "if kind == 'tensor': sd = torch.zeros(3)\n"
              "if kind == 'list': sd = [1, 2]\n"
              "torch.save(sd, p)\n")

    def torch_made(kind):
        def fn(p: Path):
            done = subprocess.run([PY, "-c", script, str(p), kind], env=sdeploy_env(BASE), capture_output=True,
                                  text=True)
            if done.returncode:
                raise RuntimeError(done.stderr[-2000:])
        return fn

    for name, fn in [("empty", lambda p: p.write_bytes(b"")), ("truncated", lambda p: p.write_bytes(good[:5000])),
                     ("random", lambda p: p.write_bytes(os.urandom(50000))),
                     ("pickle_global", lambda p: p.write_bytes(pickle_global)),
                     ("json_file", lambda p: p.write_text('{"a": 1}')), ("fifo", lambda p: os.mkfifo(p)),
                     ("folder", lambda p: p.mkdir()), ("dev_zero", lambda p: p.symlink_to("/dev/zero")),
                     ("wrong_shapes", torch_made("shapes")), ("meta_str", torch_made("meta_str")),
                     ("bare_tensor", torch_made("tensor")), ("list", torch_made("list")),
                     ("nan_weights", torch_made("nan"))]:
        # {"state_dict": ..., "meta": "x"}: a wrapped state_dict (a common layout); NaN weights fail parity
        cases.append(Case(f"checkpoint/{name}/export", cmd, ck(fn), timeout=300,
                          expect="any" if name == "meta_str" else "error"))
        if name in ("truncated", "pickle_global", "wrong_shapes", "fifo", "nan_weights"):
            cases.append(Case(f"checkpoint/{name}/eval", ["eval", "{w}/c.pt", "--data", "digits"], ck(fn),
                              timeout=300, expect="any" if name == "nan_weights" else "error"))
    return cases


def image_cases() -> list[Case]:
    cases = []

    def folder(kind: str):
        def setup(w: Path):
            d = w / "imgs"
            d.mkdir()
            if kind == "garbage":
                for i in range(20):
                    (d / f"{i}.png").write_bytes(os.urandom(300))
            elif kind == "fifo":
                os.mkfifo(d / "a.png")
            elif kind == "zero_bytes":
                for i in range(20):
                    (d / f"{i}.jpg").write_bytes(b"")
            elif kind == "dev_zero_link":
                (d / "a.png").symlink_to("/dev/zero")
            elif kind == "loop":
                (d / "sub").mkdir()
                (d / "sub" / "loop").symlink_to(d)
            elif kind == "labelled_garbage":
                for c in ("cat", "dog"):
                    (d / c).mkdir()
                    for i in range(5):
                        (d / c / f"{i}.png").write_bytes(os.urandom(100))
            elif kind == "labelled_fifo":
                for c in ("cat", "dog"):
                    (d / c).mkdir()
                    os.mkfifo(d / c / "a.png")
        return setup

    kinds = ["empty", "garbage", "fifo", "zero_bytes", "dev_zero_link", "loop"]
    for kind in kinds:
        cases.append(Case(f"images/{kind}/calib", ["export", "--checkpoint", str(CKPT), "--precision", "fp32,int8",
                                                   "--calib", "{w}/imgs", "-o", "{w}/out"], folder(kind),
                          timeout=300))
        cases.append(Case(f"images/{kind}/quant-report", ["quant-report", "{base}/exp", "--data", "{w}/imgs", "-o",
                                                          "{w}/q"], folder(kind)))
    for kind in ("empty", "labelled_garbage", "labelled_fifo"):
        cases.append(Case(f"images/{kind}/eval", ["eval", "{base}/exp", "--data", "{w}/imgs"], folder(kind)))
    cases.append(Case("images/labelled_fifo/val", ["export", "--checkpoint", str(CKPT), "--precision", "fp32",
                                                   "--val", "{w}/imgs", "-o", "{w}/out"], folder("labelled_fifo"),
                      timeout=300))
    return cases


def output_cases() -> list[Case]:
    cases = []

    def afile(w):
        (w / "target").write_text("precious")

    def user_folder(w):
        (w / "target").mkdir()
        (w / "target" / "thesis.tex").write_text("years")
        (w / "target" / "manifest.json").write_text('{"name": "pwa"}')

    def report_html_dir(w):
        (w / "target").mkdir()
        (w / "target" / "report.html").mkdir()
        (w / "target" / "report.html" / "keep.txt").write_text("x")

    def report_symlink(w):
        (w / "target").mkdir()
        (w / "precious.txt").write_text("precious")
        (w / "target" / "report.html").symlink_to(w / "precious.txt")

    def bench_json_symlink(w):
        (w / "target").mkdir()
        (w / "precious.txt").write_text("precious")
        (w / "target" / "bench.json").symlink_to(w / "precious.txt")

    cases += [
        Case("out/export_onto_file", ["export", "--checkpoint", str(CKPT), "--precision", "fp32", "-o", "{w}/target",
                                      "--force"], afile, precious=["target"]),
        Case("out/export_user_folder_force", ["export", "--checkpoint", str(CKPT), "--precision", "fp32", "-o",
                                              "{w}/target", "--force"], user_folder,
             precious=["target/thesis.tex", "target/manifest.json"]),
        Case("out/bench_onto_file", ["bench", "{base}/exp", "--device", "local", *FAST_BENCH, "--no-peak", "-o",
                                     "{w}/target"], afile, precious=["target"]),
        Case("out/report_onto_file", ["report", "{base}/bench", "-o", "{w}/target"], afile, precious=["target"]),
        Case("out/report_into_user_folder", ["report", "{base}/bench", "-o", "{w}/target"], user_folder,
             expect="ok", precious=["target/thesis.tex", "target/manifest.json"]),
        Case("out/report_html_is_folder", ["report", "{base}/bench", "-o", "{w}/target"], report_html_dir,
             precious=["target/report.html/keep.txt"]),
        Case("out/report_html_symlink", ["report", "{base}/bench", "-o", "{w}/target"], report_symlink,
             expect="any", precious=["precious.txt"]),
        Case("out/bench_json_symlink_force", ["bench", "{base}/exp", "--device", "local", *FAST_BENCH, "--no-peak",
                                              "--force", "-o", "{w}/target"], bench_json_symlink, expect="any",
             precious=["precious.txt"]),
        Case("out/quant_report_onto_file", ["quant-report", "{base}/exp", "-o", "{w}/target"], afile,
             precious=["target"]),
        Case("out/compare_markdown_folder", ["compare", "{base}/bench", "{base}/bench", "--markdown", "{w}"]),
        Case("out/compare_markdown_dev_full", ["compare", "{base}/bench", "{base}/bench", "--markdown",
                                               "/dev/full"]),
        Case("out/compare_markdown_missing_dir", ["compare", "{base}/bench", "{base}/bench", "--markdown",
                                                  "{w}/no/such/dir/c.md"], expect="any"),
        Case("out/compare_markdown_proc", ["compare", "{base}/bench", "{base}/bench", "--markdown",
                                           "/proc/version"]),
        Case("out/report_dev_null", ["report", "{base}/bench", "-o", "/dev/null"]),
        Case("out/bench_proc", ["bench", "{base}/exp", "--device", "local", *FAST_BENCH, "--no-peak", "-o",
                                "/proc/sdeploy-b"]),
        Case("out/report_proc", ["report", "{base}/bench", "-o", "/proc/sdeploy-r"]),
        Case("out/import_onto_file", ["bench", "--parse", str(FIXTURES / "new_info_xnnpack_percentiles.txt"),
                                      "--device", "pixel", "--model", "m", "-o", "{w}/target"], afile,
             precious=["target"]),
    ]
    # read-only output folders (a read-only tmpfs; root ignores file modes)
    for name, argv in [("report", ["report", "{base}/bench", "-o", "{w}/ro/out"]),
                       ("bench", ["bench", "{base}/exp", "--device", "local", *FAST_BENCH, "--no-peak",
                                  "-o", "{w}/ro/out"]),
                       ("quant_report", ["quant-report", "{base}/exp", "-o", "{w}/ro/out"]),
                       ("compare_md", ["compare", "{base}/bench", "{base}/bench", "--markdown", "{w}/ro/c.md"]),
                       ("export", ["export", "--checkpoint", str(CKPT), "--precision", "fp32", "-o", "{w}/ro/o"])]:
        cases.append(Case(f"out_readonly/{name}", argv, _ro_mount, post=_umount))
    # concurrent writers of one folder
    for name, argv in [("report", ["report", "{base}/bench", "-o", "{w}/same"]),
                       ("bench", ["bench", "{base}/exp", "--device", "local", *FAST_BENCH, "--no-peak", "--force",
                                  "-o", "{w}/same"]),
                       ("import", ["bench", "--parse", str(FIXTURES / "new_info_xnnpack_percentiles.txt"),
                                   "--device", "pixel", "--model", "m", "--force", "-o", "{w}/same"]),
                       ("quant_report", ["quant-report", "{base}/exp", "-o", "{w}/same"])]:
        cases.append(Case(f"concurrent/{name}", argv, expect="any", parallel=3, post=_valid_outputs))
    # user strings as model names
    for i, text in enumerate(HOSTILE_NAMES):
        cases += [Case(f"names/export_model{i}", ["export", text, "-o", "{w}/o"]),
                  Case(f"names/flops{i}", ["flops", text]),
                  Case(f"names/predict{i}", ["predict", text, "--device", "local"]),
                  Case(f"names/sweep_models{i}", ["sweep", "--device", "local", "--models", text, "-o", "{w}/s"]),
                  Case(f"names/bench_device{i}", ["bench", "{base}/exp", "--device", text])]
    return cases


def _ro_mount(w: Path) -> None:
    (w / "ro").mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(w / "ro")], capture_output=True)
    if done.returncode:
        os.chmod(w / "ro", 0o555)  # not root: modes are enough


def _umount(w: Path, run: Run) -> list:
    subprocess.run(["umount", str(w / "ro")], capture_output=True)
    return []


def _valid_outputs(w: Path, run: Run) -> list:
    """After concurrent writers: any bench.json left must read back through its one reader."""
    found = []
    for doc in w.rglob("bench.json"):
        done = subprocess.run([PY, "-c", "import sys; from shufflenet_deploy.bench.results import read_document; "
                               "read_document(sys.argv[1])", str(doc)], capture_output=True, text=True,
                              env=sdeploy_env(BASE))
        if done.returncode != 0:
            found.append("DATA_LOSS")
    return found


def all_cases() -> list[Case]:
    return (manifest_cases() + bench_cases() + predictor_cases() + peak_cache_cases() + devices_cases()
            + import_cases() + checkpoint_cases() + image_cases() + output_cases())


# -------------------------------------------------------------------------------------------- classification
def snapshot(w: Path) -> dict[str, bytes | None]:
    out = {}
    for p in w.rglob("*"):
        rel = str(p.relative_to(w))
        try:
            if p.is_symlink():
                out[rel] = b"->" + os.readlink(p).encode()
            elif p.is_file():
                out[rel] = p.read_bytes() if p.stat().st_size < (8 << 20) else b"<big>"
            else:
                out[rel] = None
        except OSError:
            out[rel] = None
    return out


def is_temp_name(name: str) -> bool:
    return name.startswith(".") or ".tmp" in name or name.endswith((".lock", ".partial"))


def scan_escaping(path: Path) -> bool:
    """True when a hostile marker landed raw in an HTML, Markdown or CSV file."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return False
    suffix = path.suffix.lower()
    if suffix in (".html", ".htm", ".md") and "<img src=x" in text:
        return True
    if suffix == ".md" and "zz|yy" in text:
        return True
    if suffix == ".csv":
        try:
            for row in csv.reader(io.StringIO(text)):
                for cell in row:
                    if "HYPERLINK" in cell and cell.startswith(("=", "+", "-", "@")):
                        return True
        except csv.Error:
            return True
    return False


def run_case(case: Case, root: Path, index: int) -> tuple[list[str], Run, str]:
    w = root / f"{index:03d}_{case.name.replace('/', '__')}"
    w.mkdir(parents=True)
    subst = lambda s: str(s).replace("{w}", str(w)).replace("{base}", str(BASE))  # noqa: E731
    argv = [subst(a) for a in case.argv]
    classes: list[str] = []
    if case.setup:
        case.setup(w)
    before = snapshot(w)
    env = sdeploy_env(BASE, {k: (subst(v) if v is not None else None) for k, v in case.env.items()})
    full = [PY, "-c", "from shufflenet_deploy.cli import run; run()", *argv]
    t = time.monotonic()
    procs = [subprocess.Popen(full, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=w,
                              start_new_session=True) for _ in range(case.parallel)]
    runs = []
    for p in procs:
        try:
            out, err = p.communicate(timeout=max(1, case.timeout - (time.monotonic() - t)))
            runs.append(Run(p.returncode, out, err, time.monotonic() - t))
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            out, err = p.communicate()
            runs.append(Run(None, out, err, time.monotonic() - t))
    for run in runs:
        last = (run.stderr.strip().splitlines() or [""])[-1]
        if run.rc is None:
            classes.append("HANG")
        elif "Traceback" in run.stderr:
            classes.append("TRACEBACK")
        elif case.expect == "error" and run.rc == 0:
            classes.append("EXIT0_ON_NONSENSE")
        elif case.expect == "ok" and run.rc != 0:
            classes.append("REJECTED_VALID")
        elif run.rc not in (0, 1) and not last.startswith(("error: ", "Error: ")):
            classes.append("NOT_ONE_LINE")
    run = runs[0]
    if case.parallel > 1 and not any(r.rc == 0 for r in runs):
        classes.append("REJECTED_VALID")
    if case.post:
        classes += case.post(w, run)
    after = snapshot(w)
    leftovers = [p for p in after if p not in before and any(is_temp_name(part) for part in Path(p).parts)]
    if leftovers:
        classes.append("LEFTOVER")
    for rel in case.precious:
        if before.get(rel) != after.get(rel):
            classes.append("DATA_LOSS")
    for rel in after:
        if (rel not in before or before[rel] != after[rel]) and scan_escaping(w / rel):
            classes.append("UNESCAPED")
            break
    last = (run.stderr.strip().splitlines() or [""])[-1]
    if run.rc is None:
        last = f"(killed after {case.timeout} s) {last}"
    return sorted(set(classes)) or ["OK"], run, last


def main() -> int:
    global BASE
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", action="append", help="run the cases whose name holds this (repeatable)")
    ap.add_argument("--keep", action="store_true", help="keep the work folder")
    ap.add_argument("--base", type=Path, help="reuse (or build once into) this base folder")
    ap.add_argument("--list", action="store_true")
    args = ap.parse_args()
    start = time.monotonic()
    cases = all_cases()
    if args.only:
        cases = [c for c in cases if any(o in c.name for o in args.only)]
    if args.list:
        print("\n".join(c.name for c in cases))
        return 0
    root = Path(tempfile.mkdtemp(prefix="hostile-sweep-"))
    BASE = args.base or root / "base"
    BASE.mkdir(parents=True, exist_ok=True)
    if not (BASE / "bench" / "bench.json").exists():
        build_base(BASE)
    counts: dict[str, int] = {}
    rows = []
    for i, case in enumerate(cases):
        classes, run, last = run_case(case, root / "cases", i)
        for c in classes:
            counts[c] = counts.get(c, 0) + 1
        label = ",".join(classes)
        if case.known and classes != ["OK"]:
            label += " [forbidden module]"
            counts["(in forbidden modules)"] = counts.get("(in forbidden modules)", 0) + 1
        rows.append((case.name, label))
        shown = " ".join(case.argv[:2]).replace("\n", "\\n")
        print(f"{case.name:55} {shown[:40]:40} {label:18} {run.seconds:5.1f}s  {last[:150]}", flush=True)
    elapsed = time.monotonic() - start
    print(f"\n{len(cases)} cases in {elapsed:.0f} s")
    for c in sorted(counts, key=lambda c: (c != "OK", c)):
        print(f"  {c:18} {counts[c]}")
    bad = [name for name, label in rows if label != "OK"]
    if bad:
        known = {c.name: c.known for c in cases if c.known}
        print("\nnot OK:\n  " + "\n  ".join(f"{n}: {dict(rows)[n]}" + (f" ({known[n]})" if n in known else "")
                                             for n in bad))
    if args.keep:
        print(f"work folder kept: {root}")
    else:
        for m in root.rglob("ro"):
            subprocess.run(["umount", str(m)], capture_output=True)
        shutil.rmtree(root, ignore_errors=True)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
