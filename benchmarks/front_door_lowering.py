#!/usr/bin/env python
"""Issue 22: does a ShuffleNet that arrives as someone else's ONNX run as fast as our zoo's own export?

    .venv/bin/python benchmarks/front_door_lowering.py [--rounds 30] [--size 224]
                                                       [-o benchmarks/results/front_door_lowering]

For each architecture (ShuffleNet v2 1x and v1 g3 1x; fixed random weights and BatchNorm statistics; calibrated on
the digits images) the same weights are exported twice:
  zoo     `sdeploy export --checkpoint ckpt.pt` (lowered by module: export/lower.py, shuffle_fold.py)
  onnx    `sdeploy export model.onnx`, where model.onnx is torch.onnx.export of the same module, plain (lowered by
          pattern: export/channel_fold.py, onnx_patterns.py)
and every TFLite file (fp32, int8) is timed side by side: interleaved rounds in one process (XNNPACK, 1 thread),
so the ratios hold on a shared, noisy machine. The issue's target: the ONNX door within 5% of the zoo path.
Prints the table with the host's CPU and ISA and writes it as .txt and .json.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import warnings
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))
MODELS = ("shufflenet_v2_1.0x", "shufflenet_v1_g3_1.0x")


def sources(name: str, size: int, work: Path) -> tuple[Path, Path]:
    """(our checkpoint, a plain ONNX file) of the same randomly initialised model."""
    import torch

    from shufflenet_deploy.checkpoints import load_model, save_checkpoint

    model = load_model(name)
    g = torch.Generator().manual_seed(0)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.copy_(torch.rand(m.num_features, generator=g) - 0.5)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
    work.mkdir(parents=True, exist_ok=True)
    checkpoint, onnx_file = work / f"{name}.pt", work / f"{name}.onnx"
    save_checkpoint(checkpoint, model, model.sdeploy_meta.with_input_size(size))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model.eval(), (torch.zeros(1, 3, size, size),), str(onnx_file), dynamo=False,
                          opset_version=17)
    return checkpoint, onnx_file


def export(args: list[str], out: Path) -> dict:
    proc = subprocess.run([sys.executable, "-c", "from shufflenet_deploy.cli import run; run()", "export", *args,
                           "-o", str(out), "--force", "--int8-target", "none"], capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"export {' '.join(args)} failed: {proc.stderr[-2000:]}")
    return json.loads((out / "manifest.json").read_text())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--work", type=Path, default=Path(os.environ.get("TMPDIR", "/tmp")) / "sdeploy-front-door")
    parser.add_argument("-o", "--out", type=Path, default=REPO / "benchmarks" / "results" / "front_door_lowering")
    args = parser.parse_args()
    from int8_repair import interleaved_ms

    from shufflenet_deploy.data.digits import ensure_digits
    from shufflenet_deploy.devices.cpuinfo import parse_cpuinfo, summary

    host = summary(parse_cpuinfo(Path("/proc/cpuinfo").read_text()).to_dict())
    calib = ensure_digits(args.size) / "calib"
    manifests, files = {}, {}
    for name in MODELS:
        checkpoint, onnx_file = sources(name, args.size, args.work)
        for door, argv in (("zoo", ["--checkpoint", str(checkpoint)]), ("onnx", [str(onnx_file)])):
            out = args.work / f"{name}-{door}"
            manifests[name, door] = export([*argv, "--calib", str(calib)], out)
            for precision in ("fp32", "int8"):
                files[f"{name} {precision} {door}"] = out / f"model_{precision}.tflite"
    latency = interleaved_ms(files, args.rounds)
    litert = manifests[MODELS[0], "zoo"]["tools"]["ai-edge-litert"]
    lines = [f"# the ONNX front door vs the zoo path, same weights, {args.size} px",
             f"# command: .venv/bin/python benchmarks/front_door_lowering.py --rounds {args.rounds} --size {args.size}",
             f"# host: {host}; {platform.machine()}, LiteRT {litert}, XNNPACK, 1 thread; latency = median of "
             f"{args.rounds} interleaved rounds x 20 runs, side by side in one process", "",
             "| model | precision | zoo ms | onnx door ms | onnx / zoo | ops zoo / onnx | TRANSPOSE zoo / onnx "
             "| XNNPACK partitions zoo / onnx | MACs zoo / onnx (M) |", "|---|---|---|---|---|---|---|---|---|"]
    rows = []
    for name in MODELS:
        zoo, door = manifests[name, "zoo"], manifests[name, "onnx"]
        for precision in ("fp32", "int8"):
            a, b = zoo["artifacts"][precision], door["artifacts"][precision]
            t_zoo, t_door = latency[f"{name} {precision} zoo"], latency[f"{name} {precision} onnx"]
            row = {"model": name, "precision": precision, "zoo_ms": t_zoo, "onnx_ms": t_door,
                   "ratio": t_door / t_zoo, "ops": [a["nodes"], b["nodes"]],
                   "transposes": [a["ops"].get("TRANSPOSE", 0), b["ops"].get("TRANSPOSE", 0)],
                   "partitions": [a["xnnpack"]["partitions"], b["xnnpack"]["partitions"]],
                   "macs": [zoo["macs"]["total"], door["macs"]["total"]]}
            rows.append(row)
            lines.append(f"| {name} | {precision} | {t_zoo:.3f} | {t_door:.3f} | {row['ratio']:.3f} | "
                         f"{a['nodes']} / {b['nodes']} | {row['transposes'][0]} / {row['transposes'][1]} | "
                         f"{row['partitions'][0]} / {row['partitions'][1]} | "
                         f"{row['macs'][0] / 1e6:.1f} / {row['macs'][1] / 1e6:.1f} |")
    worst = max(rows, key=lambda r: r["ratio"])
    lines += ["", f"target (onnx door within 5% of the zoo path): {'met' if worst['ratio'] <= 1.05 else 'MISSED'}; "
              f"worst {worst['model']} {worst['precision']} {worst['ratio']:.3f}x"]
    text = ("\n".join(lines) + "\n").replace(str(Path.home()), "~")
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".txt").write_text(text)
    args.out.with_suffix(".json").write_text(json.dumps({"host": host, "rounds": args.rounds, "size": args.size,
                                                          "rows": rows}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
