#!/usr/bin/env python3
"""Per test module: what it proves (its docstring's first sentence), how many tests and what it costs, from pytest's
JUnit XML (`pytest --junitxml FILE`); with several files, side by side, each column named by its file's stem.
Prints Markdown (docs/ci.md).

    python scripts/test_durations.py run.xml                   # one run
    python scripts/test_durations.py serial.xml xdist.xml      # two runs (e.g. before/after, one/two workers)

A module's cost is the sum of its test cases' times, setup and teardown included (module and session fixtures
are billed to the test that first needed them). Under pytest-xdist two modules run at once, so the sum of the
modules is more than the wall time; the wall time is the last line.
"""
from __future__ import annotations

import ast
import sys
import xml.etree.ElementTree as ET
from collections import defaultdict
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1] / "tests"


def module_costs(junit: Path) -> tuple[dict[str, list[float]], float]:
    """{module file: [seconds, tests, failed]} and the suite's reported wall time."""
    root = ET.parse(junit).getroot()
    suites = [root] if root.tag == "testsuite" else list(root)
    out: dict[str, list[float]] = defaultdict(lambda: [0.0, 0, 0])
    wall = 0.0
    for suite in suites:
        wall = max(wall, float(suite.get("time", 0)))
        for case in suite.iter("testcase"):
            name = case.get("classname", "").split(".")[1 if case.get("classname", "").startswith("tests.") else 0]
            row = out[f"{name}.py"]
            row[0] += float(case.get("time", 0))
            row[1] += 1
            row[2] += any(child.tag in ("failure", "error") for child in case)
    return dict(out), wall


def proves(module: str) -> str:
    """The first sentence of the test module's docstring (what it proves), Markdown-safe."""
    path = TESTS / module
    if not path.exists():
        return "(gone)"
    doc = ast.get_docstring(ast.parse(path.read_text())) or ""
    paragraph = " ".join(doc.strip().split("\n\n")[0].split())
    sentence = paragraph.split(". ")[0].rstrip(".")
    return (sentence if len(sentence) <= 200 else sentence[:197] + "...").replace("|", "\\|")


def main(files: list[str]) -> int:
    runs = [module_costs(Path(f)) for f in files]
    modules = sorted({m for costs, _ in runs for m in costs}, key=lambda m: -runs[-1][0].get(m, [0])[0])
    heads = [f"{Path(f).stem} s" for f in files]
    print("| module | what it proves | tests | " + " | ".join(heads) + " |")
    print("|---|---|---|" + "---|" * len(heads))
    for m in modules:
        counts = "/".join(str(int(costs.get(m, [0, 0])[1])) for costs, _ in runs)
        secs = " | ".join(f"{costs[m][0]:.0f}" if m in costs else "—" for costs, _ in runs)
        print(f"| {m} | {proves(m)} | {counts} | {secs} |")
    totals = " | ".join(f"{sum(c[0] for c in costs.values()):.0f}" for costs, _ in runs)
    tests = "/".join(str(int(sum(c[1] for c in costs.values()))) for costs, _ in runs)
    print(f"| **sum of modules** | | {tests} | {totals} |")
    print("| **pytest wall time** | | | " + " | ".join(f"{wall:.0f}" for _, wall in runs) + " |")
    return 0


if __name__ == "__main__":
    if not sys.argv[1:]:
        sys.exit(__doc__)
    sys.exit(main(sys.argv[1:]))
