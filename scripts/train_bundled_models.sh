#!/usr/bin/env bash
# Rebuilds the trained checkpoints bundled in models/ (`make models`). Deterministic for a given machine:
# seeded, bundled data (scikit-learn digits), CPU only. Takes a few minutes per model on 2 cores.
#
# Input sizes: g3 at 64 px. g8 at 80 px, because onnx2tf 1.29 mis-converts a g=8 channel shuffle whose feature
# map is 8 pixels wide (at 64 px stage 2 is 8x8: the 5-D reshape [1, 8, C/8, 8, 8] has ambiguous axes for its
# layout inference); at 80 px no stage is 8 wide. See tests/test_lowering.py for the reproduction.
#
# Label smoothing 0.1 for g8: trained without it, g8 grew heavy-tailed activations (logits up to 370 on a few
# digits, 13 typical) and its int8 TFLite lost 1.86 top-1 points (97.0% agreement with fp32): per-layer
# comparison showed per-tensor activation ranges saturating from stage 3 on for those inputs, and neither 270
# calibration images nor the unlowered graph helped. With smoothing: int8 99.63% vs fp32 99.26%, 99.6% agreement.
# The failing recipe is kept too, as the int8-repair test model (`_nosmooth`, see its card).
set -euo pipefail
cd "$(dirname "$0")/.."
SDEPLOY=${SDEPLOY:-.venv/bin/sdeploy}
for spec in shufflenet_v1_g3_0.5x:64:0: shufflenet_v1_g8_0.5x:80:0.1: shufflenet_v1_g8_0.5x:80:0:_nosmooth; do
  IFS=: read -r model size smoothing suffix <<< "$spec"
  out="models/${model}_digits${size}${suffix}.pt"
  "$SDEPLOY" train "$model" --data digits --input-size "$size" --epochs 40 --batch 64 --seed 0 \
    --label-smoothing "$smoothing" -o "$out"
  "${PYTHON:-.venv/bin/python}" scripts/model_card.py "$out"
done
# The int8 repair's proof model: the g3 above with activation outlier channels (an exact rescale; see its card).
"${PYTHON:-.venv/bin/python}" scripts/make_int8_outlier_model.py models/shufflenet_v1_g3_0.5x_digits64.pt \
  -o models/shufflenet_v1_g3_0.5x_digits64_outliers.pt --units 4,5,6,7,8,9,10,11,12,13,14,15 --scale 150
