#!/usr/bin/env bash
# The committed gap report for `local`: the exact commands behind benchmarks/results/gap_report/.
# Heavy (~14 models x fp32/int8 at 224 px: exports ~1 min each, cached; benchmarks a few s each).
# Resumable: if interrupted, run this script again — finished models are skipped.
set -euo pipefail
cd "$(dirname "$0")/.."
export SDEPLOY_CACHE="${SDEPLOY_CACHE:-.cache/sdeploy}"   # relative: the export paths the sweep records stay inside the repo
SDEPLOY="${SDEPLOY:-.venv/bin/sdeploy}"
OUT=benchmarks/results/gap_report

# 1. sweep: the default model set (ShuffleNet v1 g=1,2,3,4,8 at 1x; g=3 at 0.25/0.5/1.5/2x; MobileNet v1 1.0/0.5;
#    ShuffleNet v2 0.5/1.0), fp32 + int8, 224 px, 1 thread, the lowered graph `sdeploy export` ships (the
#    sweep's default; --no-optimize would measure onnx2tf's plain output, which cannot convert v2);
#    bench.json is appended per model.
"$SDEPLOY" sweep --device local --precision fp32,int8 --input-sizes 224 --runs 30 -o "$OUT/sweep"

# 2. the report (HTML + PNGs + Markdown + CSV) from that JSON only.
"$SDEPLOY" report "$OUT/sweep" -o "$OUT" --title "FLOPs vs speed on local (x86 host, 1 thread, LiteRT/XNNPACK)"

# 3. one prediction through the stored predictor (a model outside the sweep: g=3 1x at 160 px, fp32).
COLUMNS=120 "$SDEPLOY" predict shufflenet_v1_g3_1.0x --device local --input-size 160 --precision fp32 \
  --predictor "$OUT/sweep/predictor-local.json" | tee "$OUT/predict_example.txt"

# 4. ... and that model measured: the same lowered fp32 export, 3 trials (3 interpreters) of 300 runs.
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
"$SDEPLOY" export shufflenet_v1_g3_1.0x --input-size 160 --precision fp32 -o "$TMP/export" > /dev/null
COLUMNS=120 "$SDEPLOY" bench "$TMP/export/model_fp32.tflite" --device local --threads 1 --runs 300 --trials 3 \
  -o "$TMP/bench" | tee -a "$OUT/predict_example.txt"
