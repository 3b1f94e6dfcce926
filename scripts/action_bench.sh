#!/usr/bin/env bash
# The steps of action.yml (the reusable GitHub Action), as one script so it can be shellchecked and run by hand:
#   install sdeploy (base set, or [export] when a checkpoint must be exported first) into a venv of its own,
#   export, bench, compare with a baseline, append the Markdown to the job summary, set the step's outputs.
# Inputs arrive as SDEPLOY_* environment variables (action.yml maps them); outside Actions, GITHUB_* default to
# files in the results folder. Exit: 0, 1 on a latency regression, 2 on bad input, else sdeploy's own code.
set -euo pipefail

SOURCE=${SDEPLOY_SOURCE:?SDEPLOY_SOURCE: the sdeploy source folder to install}
OUT=${SDEPLOY_OUT:-sdeploy-results}
DEVICE=${SDEPLOY_DEVICE:-local}
THREADS=${SDEPLOY_THREADS:-1}
RUNS=${SDEPLOY_RUNS:-100}
MAX_REGRESSION=${SDEPLOY_MAX_REGRESSION:-5}
EXPORT=${SDEPLOY_EXPORT:-}
CHECKPOINT=${SDEPLOY_CHECKPOINT:-}
BASELINE=${SDEPLOY_BASELINE:-}
mkdir -p "$OUT"
SUMMARY=${GITHUB_STEP_SUMMARY:-$OUT/summary.md}
OUTPUTS=${GITHUB_OUTPUT:-$OUT/outputs.txt}
VENV=${SDEPLOY_VENV:-${RUNNER_TEMP:-$OUT}/sdeploy-venv}
# CPU-only torch for [export]: PyPI's Linux torch wheels are CUDA builds (GBs, and no use on a CI runner)
TORCH_INDEX=${SDEPLOY_TORCH_INDEX:-https://download.pytorch.org/whl/cpu}

fail() { echo "::error title=sdeploy::$*" >&2; exit 2; }
if [ -n "$EXPORT" ] && [ -n "$CHECKPOINT" ]; then fail "give either export or checkpoint, not both"; fi
if [ -z "$EXPORT" ] && [ -z "$CHECKPOINT" ]; then fail "give an export folder (export) or a checkpoint to export"; fi

if [ ! -x "$VENV/bin/sdeploy" ]; then
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q --disable-pip-version-check --upgrade pip
    if [ -n "$CHECKPOINT" ]; then
        "$VENV/bin/pip" install -q --disable-pip-version-check --index-url "$TORCH_INDEX" torch==2.13.0
        "$VENV/bin/pip" install -q --disable-pip-version-check "${SOURCE}[export]"
    else
        "$VENV/bin/pip" install -q --disable-pip-version-check "$SOURCE"
    fi
fi
SDEPLOY=("$VENV/bin/sdeploy")
DEVICE_ARGS=(--device "$DEVICE")
if [ -n "${SDEPLOY_DEVICES_FILE:-}" ]; then DEVICE_ARGS+=(--devices "$SDEPLOY_DEVICES_FILE"); fi

if [ -n "$CHECKPOINT" ]; then
    EXPORT="$OUT/export"
    "${SDEPLOY[@]}" export --checkpoint "$CHECKPOINT" --precision "${SDEPLOY_PRECISION:-fp32,int8}" -o "$EXPORT" --force
fi

"${SDEPLOY[@]}" bench "$EXPORT" "${DEVICE_ARGS[@]}" --threads "$THREADS" --runs "$RUNS" -o "$OUT/bench" \
    | tee "$OUT/bench-table.txt"
echo "results=$OUT/bench/bench.json" >> "$OUTPUTS"

"$VENV/bin/python" "$SOURCE/scripts/ci_bench_summary.py" "$OUT/bench/bench.json" -o "$OUT/summary-bench.md" \
    --title "sdeploy bench on $DEVICE${RUNNER_ARCH:+ ($RUNNER_OS $RUNNER_ARCH runner)}"
cat "$OUT/summary-bench.md" >> "$SUMMARY"

if [ -z "$BASELINE" ]; then
    echo "verdict=none" >> "$OUTPUTS"
    exit 0
fi
set +e
"${SDEPLOY[@]}" compare "$BASELINE" "$OUT/bench/bench.json" --max-regression "$MAX_REGRESSION" \
    --markdown "$OUT/compare.md"
rc=$?
set -e
[ -f "$OUT/compare.md" ] && cat "$OUT/compare.md" >> "$SUMMARY"
case $rc in
    0) echo "verdict=ok" >> "$OUTPUTS" ;;
    1) echo "verdict=regression" >> "$OUTPUTS"; echo "::error title=sdeploy::latency regression beyond $MAX_REGRESSION% (see the job summary)" ;;
esac
exit "$rc"
