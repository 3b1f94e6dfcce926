#!/usr/bin/env python
"""Time `sdeploy export` against onnx2tf's own int8 path, side by side in one run.

Both start from the same ONNX file and the same 100 real calibration images (the bundled digits set at 224 px):
- sdeploy: `sdeploy export shufflenet_v1_g3_1.0x --input-size 224` — ONNX export, fp32 + int8 TFLite, every
  parity check through LiteRT, manifest (the full default export).
- onnx2tf: `onnx2tf -i model.onnx -oiqt -cind input calib.npy MEAN STD` — the documented way to get a
  full-integer model from onnx2tf; it also builds dynamic-range and two int16-activation variants, and checks
  nothing. Its sample-data file is placed in its working directory so it does not go online.
Absolute times vary on this shared machine; the ratio is the claim. Issue 3's target: sdeploy <= 90 s.

    .venv/bin/python benchmarks/export_speed.py [--model shufflenet_v1_g3_1.0x] [--out FILE.json]
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
sys.path.insert(0, str(REPO))


def timed(args: list[str], cwd: Path, log: Path) -> float:
    started = time.perf_counter()
    with open(log, "wb") as fh:
        subprocess.run(args, cwd=cwd, stdout=fh, stderr=subprocess.STDOUT, check=True)
    return time.perf_counter() - started


def main() -> int:
    from shufflenet_deploy.data.digits import ensure_digits
    from shufflenet_deploy.data.preprocess import Preprocessing
    from shufflenet_deploy.export.tflite_convert import write_onnx2tf_sample

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="shufflenet_v1_g3_1.0x")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    calib = ensure_digits(224) / "calib"
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        ours = timed([str(BIN / "sdeploy"), "export", args.model, "--input-size", "224", "--calib", str(calib),
                      "--calib-count", "100", "-o", str(tmp / "sdeploy")], REPO, tmp / "sdeploy.log")
        manifest = json.loads((tmp / "sdeploy" / "manifest.json").read_text())

        work = tmp / "onnx2tf"
        work.mkdir()
        shutil.copy(tmp / "sdeploy" / "model.onnx", work / "model.onnx")
        pre = Preprocessing.imagenet(224)
        paths = sorted(calib.rglob("*.png"))[:100]
        pixels = np.stack([pre.pixels_from_path(p) for p in paths]).astype(np.float32) / 255
        np.save(work / "calib.npy", pixels)
        write_onnx2tf_sample(work, pixels)  # onnx2tf would download this file otherwise
        theirs = timed([str(BIN / "onnx2tf"), "-i", "model.onnx", "-o", "out", "-oiqt", "-cind", "input", "calib.npy",
                        str([[[list(pre.mean)]]]), str([[[list(pre.std)]]])], work, tmp / "onnx2tf.log")
        produced = sorted(p.name for p in (work / "out").glob("*.tflite"))
    result = {
        "model": args.model, "input_size": 224, "calibration_images": 100,
        "sdeploy_s": round(ours, 1), "onnx2tf_oiqt_s": round(theirs, 1), "ratio": round(ours / theirs, 3),
        "sdeploy_timings": manifest["timings"], "sdeploy_files": sorted(a["file"] for a in manifest["artifacts"].values()),
        "onnx2tf_files": produced, "load": os.getloadavg(),
    }
    print(f"command: .venv/bin/python benchmarks/export_speed.py --model {args.model}")
    print(f"sdeploy export (ONNX + fp32 + int8 + parity + manifest): {ours:7.1f} s  {result['sdeploy_timings']}")
    print(f"onnx2tf -oiqt (all its variants, no checks):            {theirs:7.1f} s  ({len(produced)} .tflite files)")
    print(f"ratio sdeploy / onnx2tf: {result['ratio']:.2f}  (target: sdeploy <= 90 s; load avg {result['load'][0]:.1f})")
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
