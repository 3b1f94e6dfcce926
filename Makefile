# Two commands on a fresh machine: `make demo` and `make test`. Everything else is a building block.
PY      ?= python3.11
VENV    ?= .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: demo test test-fast sysdeps aarch64-root models constraints clean peers

$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PY) -m venv $(VENV) || python3 -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -c constraints.txt -e '.[test]'
	@touch $(STAMP)

# System packages the real-component tests use: qemu-user (aarch64), sshd + ssh client, the adb client.
sysdeps:
	@command -v qemu-aarch64-static >/dev/null && command -v sshd >/dev/null && command -v adb >/dev/null \
	  && command -v ssh >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	  qemu-user-static openssh-server openssh-client adb >/dev/null; }

# An aarch64 Debian userland + the aarch64 LiteRT wheel, for the ARM tier of the tests (cached in .cache/).
aarch64-root: sysdeps
	scripts/build_aarch64_root.sh

demo: $(STAMP)
	$(BIN)/sdeploy demo

# On an x86_64 host the aarch64 tier runs under qemu-user; on an aarch64 host (the arm CI runner) it is moot.
test: $(STAMP) sysdeps
	@if [ "$$(uname -m)" = x86_64 ]; then scripts/build_aarch64_root.sh; fi
	$(BIN)/python -m pytest $(PYTEST_ARGS); rc=$$?; [ $$rc -eq 5 ] && { echo "no tests collected"; exit 1; }; exit $$rc

test-fast: $(STAMP)
	$(BIN)/python -m pytest -m "not slow and not aarch64" $(PYTEST_ARGS)

models: $(STAMP)
	scripts/train_bundled_models.sh

# Peer toolchains for benchmarks/lowering.py in their own venvs (litert-torch, ncnn+pnnx): they conflict with onnx2tf's pins.
peers:
	PY=$(PY) scripts/setup_peer_venvs.sh

constraints: $(STAMP)
	{ head -2 constraints.txt; $(BIN)/pip freeze --exclude-editable | sed 's/+cpu$$//' ; } > constraints.tmp && mv constraints.tmp constraints.txt

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
