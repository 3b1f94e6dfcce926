#!/usr/bin/env bash
# Rebuilds the trained checkpoints bundled in models/ (`make models`). Deterministic for a given machine:
# seeded, bundled data (scikit-learn digits), CPU only. Takes a few minutes per model on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
SDEPLOY=${SDEPLOY:-.venv/bin/sdeploy}
for model in shufflenet_v1_g3_0.5x shufflenet_v1_g8_0.5x; do
  out="models/${model}_digits64.pt"
  "$SDEPLOY" train "$model" --data digits --input-size 64 --epochs 40 --batch 64 --seed 0 -o "$out"
  "${PYTHON:-.venv/bin/python}" scripts/model_card.py "$out"
done
