#!/usr/bin/env python
"""Before/after table of the int8 repair on the model that fails in int8 (issue 16).

    .venv/bin/python benchmarks/int8_repair.py [--rounds 30] [-o benchmarks/results/int8_repair]

Exports models/shufflenet_v1_g8_0.5x_digits80_nosmooth.pt twice — `--int8-target none` (one plain attempt, what
sdeploy shipped before) and the default target (agreement >= 99%, top-1 drop <= 0.5 pt on the bundled val split)
— and, for reference, the bundled g8 trained with label smoothing. Then times every TFLite file side by side:
interleaved rounds in one process (XNNPACK, 1 thread), so the latency ratios hold on a shared, noisy machine.
Prints the table with the host's CPU and ISA and writes it as .txt and .json.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
FAILING = REPO / "models" / "shufflenet_v1_g8_0.5x_digits80_nosmooth.pt"
SMOOTHED = REPO / "models" / "shufflenet_v1_g8_0.5x_digits80.pt"


def export(checkpoint: Path, out: Path, target: str) -> tuple[dict, float]:
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", "from shufflenet_deploy.cli import run; run()", "export",
                           "--checkpoint", str(checkpoint), "-o", str(out), "--force", "--int8-target", target],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"export of {checkpoint.name} failed: {proc.stderr[-2000:]}")
    return json.loads((out / "manifest.json").read_text()), time.perf_counter() - t0


def mixed_precision_files(checkpoint: Path, work: Path, counts=(1, 4, 16)) -> dict[str, tuple[Path, int]]:
    """int8 files with the N worst layers in float (what the repair's float-N steps build), made from a kept
    conversion: the repair stopped before them on this model, and their cost is the question."""
    from shufflenet_deploy.export import int8_layers, lower, onnx_export, pipeline, tflite_convert
    from shufflenet_deploy.export.images import load_images
    from shufflenet_deploy.export.sources import open_source

    req = pipeline.ExportRequest(checkpoint=checkpoint, outdir=work / "unused")
    source = open_source(req.model, req.checkpoint)
    model, meta = source.module, source.meta
    pre = meta.preprocessing
    images = load_images(req.calib, meta, pre, ["onnx", "fp32", "int8"], verify_count=req.verify_count,
                         calib_count=req.calib_count, seed=req.seed)
    onnx_path = work / "mixed" / "model.onnx"
    onnx_path.parent.mkdir(parents=True, exist_ok=True)
    onnx_export.export_onnx(lower.lower_torch(model, meta.input_size)[0], meta.input_size, onnx_path)
    lower.lower_onnx(onnx_path)
    conv = tflite_convert.convert(onnx_path, work / "mixed" / "w", precisions=["fp32", "int8"],
                                  calibration_nhwc=images.calibration.transpose(0, 2, 3, 1),
                                  sample_images_nhwc01=images.held_out_pixels, log=work / "mixed" / "log.txt",
                                  onnx2tf_options=lower.ONNX2TF_OPTIONS)
    fp32, plain = work / "mixed" / "fp32.tflite", work / "mixed" / "plain.tflite"
    for src, dst in ((conv["files"]["fp32"], fp32), (conv["files"]["int8"], plain)):
        Path(dst).write_bytes(Path(src).read_bytes())
        lower.lower_tflite(dst, dst)
    rows = int8_layers.layer_errors(fp32, plain, np.ascontiguousarray(images.held_out.transpose(0, 2, 3, 1)))
    ranked = [r["tensor"] for r in int8_layers.worst(rows, max(counts))]
    out = {}
    for n in counts:
        path = tflite_convert.requantize(work / "mixed" / "w", output=work / "mixed" / f"float-{n}.tflite",
                                         log=work / "mixed" / "log.txt", float_tensors=ranked[:n])
        lower.lower_tflite(path, path)
        out[f"int8, {n} worst layer(s) in float"] = (path, n)
    return out


def interleaved_ms(paths: dict[str, Path], rounds: int, runs: int = 20) -> dict[str, float]:
    """Median latency per file over ROUNDS rounds, each round timing every file in turn (RUNS invokes each)."""
    from shufflenet_deploy.export.tflite_inspect import load_interpreter

    interps = {name: load_interpreter(p, num_threads=1) for name, p in paths.items()}
    for it in interps.values():
        for _ in range(10):
            it.invoke()
    times = {name: [] for name in paths}
    for _ in range(rounds):
        for name, it in interps.items():
            for _ in range(runs):
                t0 = time.perf_counter()
                it.invoke()
                times[name].append((time.perf_counter() - t0) * 1e3)
    return {name: float(np.median(t)) for name, t in times.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--work", type=Path, default=Path(os.environ.get("TMPDIR", "/tmp")) / "sdeploy-int8-repair")
    parser.add_argument("-o", "--out", type=Path, default=REPO / "benchmarks" / "results" / "int8_repair")
    args = parser.parse_args()
    from shufflenet_deploy.devices.cpuinfo import parse_cpuinfo, summary

    host = summary(parse_cpuinfo(Path("/proc/cpuinfo").read_text()).to_dict())
    plain, t_plain = export(FAILING, args.work / "plain", "none")
    repaired, t_repaired = export(FAILING, args.work / "repaired", "auto")
    smoothed, _ = export(SMOOTHED, args.work / "smoothed", "none")
    files = {"fp32": args.work / "plain" / "model_fp32.tflite", "int8 plain": args.work / "plain" / "model_int8.tflite",
             "int8 repaired": args.work / "repaired" / "model_int8.tflite",
             "int8 (smoothed model)": args.work / "smoothed" / "model_int8.tflite"}
    mixed = mixed_precision_files(FAILING, args.work)
    files.update({name: path for name, (path, _) in mixed.items()})
    latency = interleaved_ms(files, args.rounds)

    def top1(m, art):
        return next(r for r in m["accuracy"]["rows"] if r["artifact"] == art)

    repair = repaired["int8_repair"]
    applied = next(a for a in repair["attempts"] if a["step"] == repair["applied"])
    rows = []
    for name, m, art, attempt in (("fp32", plain, "fp32", None),
                                  ("int8 plain (--int8-target none)", plain, "int8", repair["attempts"][0]),
                                  (f"int8 repaired ({repair['applied']})", repaired, "int8", applied),
                                  ("int8 of the smoothed model (reference)", smoothed, "int8", None)):
        acc = top1(m, art)
        key = {"fp32": "fp32", "int8 plain (--int8-target none)": "int8 plain"}.get(name) or (
            "int8 repaired" if name.startswith("int8 repaired") else "int8 (smoothed model)")
        rows.append({"artifact": name, "top1": acc["top1"], "agreement": acc.get("top1_agreement"),
                     "drop_pt": 100 * (top1(m, "fp32")["top1"] - acc["top1"]),
                     "latency_ms": latency[key], "vs_plain_int8": latency[key] / latency["int8 plain"],
                     "float_layers": len(attempt["float_layers"]) if attempt else 0,
                     "partitions": m["artifacts"][art]["xnnpack"]["partitions"]})
    lines = [f"# int8 repair, {FAILING.name} (bundled val split, 269 images)",
             f"# command: .venv/bin/python benchmarks/int8_repair.py --rounds {args.rounds}",
             f"# host: {host}; {platform.machine()}, LiteRT {repaired['tools']['ai-edge-litert']}, XNNPACK, 1 thread; "
             f"latency = median of {args.rounds} interleaved rounds x 20 runs, measured side by side in one process",
             "", "| artifact | top-1 | agreement with fp32 | top-1 drop | latency (ms) | vs plain int8 | float layers "
             "| XNNPACK partitions |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        agree = "–" if r["agreement"] is None or r["artifact"] == "fp32" else f"{100 * r['agreement']:.2f}%"
        lines.append(f"| {r['artifact']} | {100 * r['top1']:.2f}% | {agree} | {r['drop_pt']:.2f} pt | "
                     f"{r['latency_ms']:.3f} | {r['vs_plain_int8']:.2f}x | {r['float_layers']} | {r['partitions']} |")
    from shufflenet_deploy.export.int8_repair import evaluate
    from shufflenet_deploy.export.tflite_inspect import inspect_tflite
    from shufflenet_deploy.data.folders import scan_image_folder
    from shufflenet_deploy.data.preprocess import Preprocessing
    from shufflenet_deploy.export.verify import run_tflite

    val = scan_image_folder(Path(plain["accuracy"]["data"]))
    x = Preprocessing.from_dict(plain["preprocessing"]).load_batch(val.paths)
    fp32_logits = run_tflite(files["fp32"], x)
    lines += ["", "Mixed precision on the same model (the repair's float-N steps, built here although the repair "
              "stopped earlier), same timing run:", "",
              "| artifact | top-1 | agreement | latency (ms) | vs plain int8 | XNNPACK partitions | not delegated |",
              "|---|---|---|---|---|---|---|"]
    for name, (path, n) in mixed.items():
        res = evaluate(path, fp32_logits, x, np.asarray(val.labels))
        info = inspect_tflite(path).to_dict()["xnnpack"]
        rows.append({"artifact": name, "top1": res["top1"], "agreement": res["agreement"],
                     "drop_pt": 100 * res["drop"], "latency_ms": latency[name],
                     "vs_plain_int8": latency[name] / latency["int8 plain"], "float_layers": n,
                     "partitions": info["partitions"], "not_delegated": info["not_delegated"]})
        lines.append(f"| {name} | {100 * res['top1']:.2f}% | {100 * res['agreement']:.2f}% | {latency[name]:.3f} | "
                     f"{latency[name] / latency['int8 plain']:.2f}x | {info['partitions']} | "
                     f"{', '.join(f'{k} {v}' for k, v in info['not_delegated'].items()) or '–'} |")
    lines += ["", f"repair attempts (target {repair['target']}, on {repair['evaluated_on']}):"]
    for a in repair["attempts"]:
        drop = "" if a.get("drop") is None else f", drop {100 * a['drop']:.2f} pt"
        lines.append(f"  {a['step']:<18} calibration {a['calibration']:>3}, ranges {a['ranges']:<10}, "
                     f"{len(a['float_layers'])} float layers: agreement {100 * a['agreement']:.2f}%{drop}, "
                     f"{a['seconds']:.1f} s{'  <- applied' if a['step'] == repair['applied'] else ''}")
    lines += [f"export time: {t_plain:.0f} s with --int8-target none, {t_repaired:.0f} s with the default target "
              f"(the repair: {repair['seconds']:.0f} s)"]
    text = ("\n".join(lines) + "\n").replace(str(Path.home()), "~")
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".txt").write_text(text)
    args.out.with_suffix(".json").write_text(json.dumps(
        {"host": host, "rounds": args.rounds, "rows": rows, "repair": repair,
         "export_seconds": {"none": round(t_plain, 1), "default": round(t_repaired, 1)}},
        indent=2).replace(str(Path.home()), "~") + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
