#!/usr/bin/env bash
# Peer toolchains for benchmarks/lowering.py, each in its own virtualenv (they conflict with onnx2tf's pins:
# litert-torch needs numpy 2 and a newer ai-edge-litert). A venv that cannot be built is left absent and the
# benchmark prints why it skipped that peer (pip's log and the reason are kept in .cache/peer-venvs/).
#   .venv-litert-torch : litert-torch (PyTorch -> TFLite, PT2E int8) + CPU torch + ai-edge-litert
#   .venv-ncnn         : ncnn + pnnx (PyTorch -> ncnn)
#   .venv-executorch   : ExecuTorch 1.5 (PyTorch -> .pte with the XNNPACK delegate, PT2E int8) + its runtime;
#                        it needs numpy 2 and torchao 0.18; its wheel declares no torch pin and runs on the CPU torch
set -u
PY=${PY:-python3.11}
cd "$(dirname "$0")/.."
# The CPU torch wheel the main venv uses (pip's find-links on this machine); PyPI's default torch pulls CUDA.
TORCH=${TORCH:-torch==2.13.0+cpu}

LOGS=.cache/peer-venvs
mkdir -p "$LOGS"

make_venv() {  # NAME PIP-ARGS...
  local venv=$1; shift
  local log="$LOGS/$venv.log" failed="$LOGS/$venv.failed.txt"
  if [ -f "$venv/.installed" ]; then echo "$venv: up to date"; return 0; fi
  rm -rf "$venv" "$failed"
  echo "$venv: installing $*"
  if $PY -m venv "$venv" && "$venv/bin/pip" install -q --upgrade pip >"$log" 2>&1 \
     && "$venv/bin/pip" install -q "$@" >>"$log" 2>&1; then
    touch "$venv/.installed"; echo "$venv: ok"
  else
    tail -5 "$log" 2>/dev/null > "$failed"; echo "$venv: FAILED (see $log)"; rm -rf "$venv"
  fi
}

make_venv .venv-litert-torch litert-torch "$TORCH" "numpy>=2" pillow
make_venv .venv-ncnn ncnn pnnx "$TORCH" numpy pillow
make_venv .venv-executorch executorch==1.5.1 "$TORCH" pillow
exit 0
