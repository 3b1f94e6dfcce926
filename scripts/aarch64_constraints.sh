#!/bin/sh
# Derive constraints-aarch64.txt from constraints.txt (`make constraints` runs this; tests/test_install.py checks
# the committed file is what this prints). onnx2tf 1.29.24 pins h5py, psutil, onnxsim and onnxoptimizer at
# versions with no linux aarch64 wheel; on aarch64 pyproject.toml's [export] takes onnx2tf 1.28.8 (no declared
# dependencies) and the releases below, which have cp311 aarch64 wheels (docs/install.md has the resolution).
set -eu
cd "$(dirname "$0")/.."
{
    echo "# constraints.txt for linux aarch64, derived by scripts/aarch64_constraints.sh (do not edit): no"
    echo "# onnxsim/onnxoptimizer/simple_onnx_processing_tools, onnx2tf 1.28.8, h5py and psutil releases with wheels."
    grep -vE '^#|^(h5py|psutil|onnxsim|onnxoptimizer|onnx2tf|simple_onnx_processing_tools)==' constraints.txt
    echo "h5py==3.16.0"
    echo "onnx2tf==1.28.8"
    echo "psutil==7.2.2"
} > constraints-aarch64.tmp
mv constraints-aarch64.tmp constraints-aarch64.txt
