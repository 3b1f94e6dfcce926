#!/usr/bin/env python3
"""Turn an `sdeploy bench` bench.json into a Markdown latency table (for CI's job summary).

    python scripts/ci_bench_summary.py out/bench-local/bench.json [-o summary.md] [--title TEXT]

Stdlib only: it reads the JSON that `sdeploy bench` writes ({"schema": "sdeploy-bench/1", "results": [...]})
and prints one row per (model, precision, threads). Latency on shared CI runners is informational: the table
says so, and this script never fails on a number (only on an unreadable file, exit 2).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

SCHEMA = "sdeploy-bench/1"


def _ms(value, digits: int = 3) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _cell(text) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def markdown(doc: dict, title: str) -> str:
    results = doc.get("results") or []
    first = results[0] if results else {}
    cpu = first.get("cpu") or {}
    runtime = first.get("runtime") or {}
    lines = [f"### {title}", ""]
    facts = [f"machine **{first.get('machine') or '?'}**",
             f"CPU {cpu.get('model') or '?'} ({cpu.get('cores') or '?'} cores)",
             f"runtime {runtime.get('name') or '?'} {runtime.get('version') or ''}".rstrip(),
             f"Python {first.get('python') or '?'}, numpy {first.get('numpy') or '?'}"]
    lines += [", ".join(facts) + ".", "",
              "_Informational only: shared CI runners are noisy, so latency is never a gate "
              "(the gates are bit-identical int8 outputs and the model size budget)._", ""]
    if doc.get("partial"):
        lines += ["**Partial results**: the benchmark was interrupted.", ""]
    if not results:
        return "\n".join(lines + ["No results.", ""])
    header = ["model", "precision", "threads", "p50 ms", "p90 ms", "p99 ms", "mean ± std ms", "median 95% CI",
              "first ms", "init ms", "runs", "peak RSS MB", "size KB", "warnings"]
    lines += ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] * 3 + ["---:"] * (len(header) - 4) + ["---"]) + "|"]
    for r in results:
        lat = r.get("latency_ms") or {}
        ci = lat.get("median_ci") or [None, None]
        size = (r.get("artifact") or {}).get("size_bytes")
        warnings = r.get("warnings") or []
        row = [r.get("model"), r.get("precision"), r.get("threads"), _ms(lat.get("p50")), _ms(lat.get("p90")),
               _ms(lat.get("p99")), f"{_ms(lat.get('mean'))} ± {_ms(lat.get('std'))}",
               f"{_ms(ci[0])}–{_ms(ci[1])}", _ms(r.get("first_inference_ms")), _ms(r.get("init_ms"), 1),
               r.get("runs"), _ms(r.get("peak_rss_mb"), 1), "–" if size is None else f"{size / 1000:.0f}",
               "; ".join(warnings) if warnings else "–"]
        lines.append("| " + " | ".join(_cell(c) for c in row) + " |")
    return "\n".join(lines + [""])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bench_json", type=Path, help="bench.json (or the folder holding it)")
    parser.add_argument("-o", "--out", type=Path, help="write the Markdown here (default: stdout)")
    parser.add_argument("--title", default=None, help="heading (default: 'sdeploy bench on DEVICE')")
    args = parser.parse_args(argv)
    path = args.bench_json / "bench.json" if args.bench_json.is_dir() else args.bench_json
    try:
        doc = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        print(f"error: cannot read {path}: {err}", file=sys.stderr)
        return 2
    if isinstance(doc, list):                        # tolerate a bare list of results
        doc = {"schema": SCHEMA, "results": doc}
    if not isinstance(doc, dict) or doc.get("schema", SCHEMA) != SCHEMA:
        print(f"error: {path} is not an {SCHEMA} document", file=sys.stderr)
        return 2
    results = doc.get("results") or []
    title = args.title or f"sdeploy bench on {(results[0].get('device') if results else None) or '?'}"
    text = markdown(doc, title)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
