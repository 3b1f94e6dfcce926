"""Build small .tflite models and time them all in ONE runner process, interleaved (shared by the single-layer
benchmarks: pad_fusion.py, grouped_conv_forms.py). Ratios within one such run are what those scripts report."""
from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

RUNNER = Path(__file__).resolve().parent.parent / "shufflenet_deploy" / "runner.py"


def time_models(builds: dict[str, Callable[[], bytes]], rounds: int, runs: int = 20, instances: int = 3,
                timeout: int = 3600) -> dict:
    """{id: build()} -> the runner's --many report (its `results` carry each id's `median_ms`), 1 thread."""
    with tempfile.TemporaryDirectory() as tmp:
        items = []
        for model_id, build in builds.items():
            path = Path(tmp) / f"m{len(items)}.tflite"
            with contextlib.redirect_stdout(sys.stderr):  # Keras prints "Saved artifact at ..."
                path.write_bytes(build())
            items.append({"id": model_id, "path": str(path)})
        (Path(tmp) / "many.json").write_text(json.dumps(items))
        proc = subprocess.run([sys.executable, str(RUNNER), "--many", str(Path(tmp) / "many.json"), "--threads", "1",
                               "--runs", str(runs), "--rounds", str(rounds), "--instances", str(instances)],
                              capture_output=True, text=True, timeout=timeout, check=True)
    return json.loads(proc.stdout)
