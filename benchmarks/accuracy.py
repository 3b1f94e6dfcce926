#!/usr/bin/env python
"""Accuracy of every exported artifact of the bundled trained models, against issue 4's targets.

For each bundled checkpoint: a full export (fp32, fp16, int8; int8 calibrated on the bundled calibration split)
and top-1/top-5 of PyTorch, ONNX and each TFLite file (through LiteRT) on the bundled val split.
Targets: fp32 TFLite top-1 identical to PyTorch (100% top-1 agreement); int8 top-1 drop <= 0.5 points and
top-1 agreement with fp32 >= 99%.

    .venv/bin/python benchmarks/accuracy.py [--out benchmarks/results/accuracy.json]
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from shufflenet_deploy.export import verify  # noqa: E402
from shufflenet_deploy.export.pipeline import ExportRequest, export  # noqa: E402

MODELS = ["shufflenet_v1_g3_0.5x_digits64.pt", "shufflenet_v1_g8_0.5x_digits80.pt"]


def measure(checkpoint: Path, optimize: bool | None = None) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        request = ExportRequest(checkpoint=checkpoint, precisions=("fp32", "fp16", "int8"), outdir=Path(tmp) / "out")
        if optimize is not None and hasattr(request, "optimize"):
            request.optimize = optimize
        written = export(request)
        manifest = written.data
        # int8 vs fp32 agreement on the whole val split (the manifest's agreement column is vs PyTorch)
        from shufflenet_deploy.evaluate import resolve_data

        pre = written.preprocessing
        val = resolve_data("digits", pre.input_size)
        x = pre.load_batch(val.paths)
        out = Path(tmp) / "out"
        fp32 = verify.run_tflite(out / "model_fp32.tflite", x)
        int8 = verify.run_tflite(out / "model_int8.tflite", x)
    rows = {r["artifact"]: r for r in manifest["accuracy"]["rows"]}
    int8_vs_fp32 = verify.compare(fp32, int8, reference_name="fp32")
    return {
        "checkpoint": checkpoint.name, "model": manifest["model"], "val_images": manifest["accuracy"]["samples"],
        "lowering": manifest.get("lowering"),
        "rows": manifest["accuracy"]["rows"],
        "int8_vs_fp32": int8_vs_fp32.to_dict(),
        "targets": {
            "fp32_top1_identical_to_pytorch": rows["fp32"]["top1_agreement"] == 1.0,
            "int8_top1_drop_le_0.5pt": (rows["pytorch"]["top1"] - rows["int8"]["top1"]) * 100 <= 0.5,
            "int8_agreement_with_fp32_ge_99pct": int8_vs_fp32.top1_agreement >= 0.99,
        },
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    started = time.time()
    results = [measure(REPO / "models" / name) for name in MODELS]
    lines = ["command: .venv/bin/python benchmarks/accuracy.py --out benchmarks/results/accuracy.json", ""]
    for r in results:
        lines.append(f"{r['model']} ({r['checkpoint']}), {r['val_images']} val images")
        lines.append(f"  {'artifact':10} {'top-1':>8} {'top-5':>8} {'delta':>9} {'agree vs pytorch':>17}")
        for row in r["rows"]:
            lines.append(f"  {row['artifact']:10} {row['top1']:8.2%} {row['top5']:8.2%} {row['delta_top1'] * 100:+8.2f}p "
                         f"{row.get('top1_agreement', 1.0):17.2%}")
        p = r["int8_vs_fp32"]
        lines.append(f"  int8 vs fp32: top-1 agreement {p['top1_agreement']:.2%}, cosine {p['cosine']:.5f}, "
                     f"max abs {p['max_abs']:.3g}")
        lines.append("  targets: " + ", ".join(f"{k} {'MET' if v else 'MISSED'}" for k, v in r["targets"].items()))
        lines.append("")
    lines.append(f"({time.time() - started:.0f} s)")
    print("\n".join(lines))
    if args.out:
        args.out.write_text(json.dumps(results, indent=2) + "\n")
        args.out.with_suffix(".txt").write_text("\n".join(lines) + "\n")
    return 0 if all(all(r["targets"].values()) for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
