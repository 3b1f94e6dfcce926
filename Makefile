# Two commands on a fresh machine: `make demo` and `make test`. Everything else is a building block.
PY      ?= python3.11
VENV    ?= .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
PYTEST_ARGS ?=
# Both cores: two pytest-xdist workers, a module's tests together on one (tests/conftest.py says why and how).
# `make test PYTEST_XDIST=` runs the suite in one process.
PYTEST_XDIST ?= -n 2 --dist loadgroup --no-loadscope-reorder

.PHONY: demo test test-fast sysdeps aarch64-root models constraints clean peers

ARCH    := $(shell uname -m)
# Pinned sets: constraints.txt (x86_64, the known-good stack) and constraints-aarch64.txt (the same minus what has
# no aarch64 wheel; see its header). On aarch64, torch comes from PyTorch's CPU index (PyPI's is the CUDA build).
CONSTRAINTS := $(if $(filter aarch64,$(ARCH)),constraints-aarch64.txt,constraints.txt)
TORCH_INDEX ?= https://download.pytorch.org/whl/cpu

# The project's venv: every extra (export, train, test), editable.
$(STAMP): pyproject.toml $(CONSTRAINTS)
	@test -x $(BIN)/python || $(PY) -m venv $(VENV) || python3 -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	@if [ "$(ARCH)" = aarch64 ]; then $(BIN)/pip install -q --index-url $(TORCH_INDEX) torch==2.13.0; fi
	$(BIN)/pip install -q -c $(CONSTRAINTS) -e '.[export,train,test]'
	@touch $(STAMP)

# System packages the real-component tests use: qemu-user (aarch64), sshd + ssh client, the adb client.
sysdeps:
	@command -v qemu-aarch64-static >/dev/null && command -v sshd >/dev/null && command -v adb >/dev/null \
	  && command -v ssh >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	  qemu-user-static openssh-server openssh-client adb >/dev/null; }

# Two aarch64 Debian userlands + the aarch64 LiteRT wheel, for the ARM tier of the tests (cached in .cache/):
# bookworm (Python 3.11, .cache/aarch64-root) and trixie (Python 3.13, .cache/aarch64-root-trixie).
AARCH64_ROOTS := scripts/build_aarch64_root.sh && SDEPLOY_AARCH64_SUITE=trixie scripts/build_aarch64_root.sh
aarch64-root: sysdeps
	$(AARCH64_ROOTS)

demo: $(STAMP)
	$(BIN)/sdeploy demo

# On an x86_64 host the aarch64 tier runs under qemu-user; on an aarch64 host (the arm CI runner) it is moot.
test: $(STAMP) sysdeps
	@if [ "$$(uname -m)" = x86_64 ]; then $(AARCH64_ROOTS); fi
	$(BIN)/python -m pytest $(PYTEST_XDIST) $(PYTEST_ARGS); rc=$$?; [ $$rc -eq 5 ] && { echo "no tests collected"; exit 1; }; exit $$rc

test-fast: $(STAMP)
	$(BIN)/python -m pytest -m "not slow and not aarch64" $(PYTEST_ARGS)

models: $(STAMP)
	scripts/train_bundled_models.sh

# Peer toolchains for benchmarks/lowering.py in their own venvs (litert-torch, ncnn+pnnx, ExecuTorch): they conflict with onnx2tf's pins.
peers:
	PY=$(PY) scripts/setup_peer_venvs.sh

# Regenerate the pins from a working x86_64 .venv; constraints-aarch64.txt is derived from them (scripts/aarch64_constraints.sh).
constraints: $(STAMP)
	{ head -2 constraints.txt; $(BIN)/pip freeze --exclude-editable | sed 's/+cpu$$//' ; } > constraints.tmp && mv constraints.tmp constraints.txt
	scripts/aarch64_constraints.sh

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
