#!/system/bin/sh
# sdeploy on-phone harness: run TFLite benchmark_model on each model, recording the CPU governor, frequencies and
# thermal zones before and after each run, in a marker format that
# shufflenet_deploy.bench.benchmark_model.parse_harness_output reads back.
#
# POSIX sh (Android's mksh/toybox, dash, busybox ash). Typical use, on the device in /data/local/tmp:
#   sh run_benchmarks.sh -b ./benchmark_model -t 1 -c f0 -w 10 -r 100 -p -s 30 -o out.txt m1.tflite m2.tflite
#
# Output format (one block per model; values never contain spaces):
#   ### sdeploy-harness version=1 binary=.. threads=.. cpumask=.. warmup=.. runs=.. profile=.. cooldown=..
#   ### sdeploy-begin model=<path>
#   ### sdeploy-state when=before epoch=<s> cpu0_governor=.. cpu0_freq_khz=.. ...   (one line for cpus,
#   ### sdeploy-state when=before zone0_type=.. zone0_temp=.. ...                   one line for thermal zones)
#   ### sdeploy-warning <text>                (e.g. taskset missing -> unpinned)
#   ### sdeploy-cmd <command line>
#   <raw benchmark_model stdout+stderr>
#   ### sdeploy-state when=after ...
#   ### sdeploy-end model=<path> rc=<exit code>
# Exit status: 0 all models ran, 1 some benchmark failed, 2 usage error.

BIN=/data/local/tmp/benchmark_model
THREADS=1
CPUMASK=
WARMUP=10
RUNS=50
PROFILE=0
OUTFILE=
COOLDOWN=0

usage() {
    cat >&2 <<'EOF'
usage: run_benchmarks.sh [-b BINARY] [-t THREADS] [-c CPUMASK] [-w WARMUP] [-r RUNS] [-p] [-o OUTFILE]
                         [-s COOLDOWN_SECONDS] MODEL.tflite [MODEL.tflite ...]
  -b  benchmark_model binary (default /data/local/tmp/benchmark_model)
  -t  --num_threads (default 1)          -w  --warmup_runs (default 10)     -r  --num_runs (default 50)
  -c  taskset hex mask of the cores to pin to, e.g. f0 for the big cluster (default: no pinning)
  -p  op profiling (--enable_op_profiling=true)
  -o  write the report to OUTFILE instead of stdout
  -s  seconds to sleep before each model after the first, to cool down (default 0)
EOF
}

die() {
    printf 'run_benchmarks.sh: %s\n' "$1" >&2
    [ "${2:-}" = usage ] && usage
    exit 2
}

is_uint() {
    case $1 in '' | *[!0-9]*) return 1 ;; esac
    return 0
}

while getopts b:t:c:w:r:po:s:h opt; do
    case $opt in
    b) BIN=$OPTARG ;;
    t) THREADS=$OPTARG ;;
    c) CPUMASK=$OPTARG ;;
    w) WARMUP=$OPTARG ;;
    r) RUNS=$OPTARG ;;
    p) PROFILE=1 ;;
    o) OUTFILE=$OPTARG ;;
    s) COOLDOWN=$OPTARG ;;
    h) usage; exit 0 ;;
    *) die "unknown option" usage ;;
    esac
done
shift $((OPTIND - 1))

[ $# -ge 1 ] || die "no model given" usage
for name in THREADS WARMUP RUNS COOLDOWN; do
    eval "value=\$$name"
    is_uint "$value" || die "$name must be a non-negative integer, got '$value'"
done
[ "$THREADS" -ge 1 ] || die "THREADS must be at least 1"
[ "$RUNS" -ge 1 ] || die "RUNS must be at least 1"
case $CPUMASK in *[!0-9a-fA-FxX]*) die "CPUMASK must be a hex mask like f0, got '$CPUMASK'" ;; esac
[ -f "$BIN" ] || die "benchmark_model binary not found: $BIN (push it, see android_harness/README.md)"
[ -x "$BIN" ] || die "benchmark_model binary is not executable: $BIN (chmod +x it)"
for model in "$@"; do
    [ -f "$model" ] || die "model not found: $model"
done

if [ -n "$OUTFILE" ]; then
    exec >"$OUTFILE" || die "cannot write $OUTFILE"
fi

# First line of a sysfs file, spaces and '=' replaced so that key=value stays parseable; NA if unreadable.
read_value() {
    value=$(head -n 1 "$1" 2>/dev/null | tr ' =\t' '___')
    printf '%s' "${value:-NA}"
}

record_state() {
    line="### sdeploy-state when=$1 epoch=$(date +%s)"
    for dir in /sys/devices/system/cpu/cpu[0-9]*; do
        [ -d "$dir" ] || continue
        n=${dir##*/cpu}
        line="$line cpu${n}_online=$(read_value "$dir/online")"
        line="$line cpu${n}_governor=$(read_value "$dir/cpufreq/scaling_governor")"
        line="$line cpu${n}_freq_khz=$(read_value "$dir/cpufreq/scaling_cur_freq")"
    done
    printf '%s\n' "$line"
    line="### sdeploy-state when=$1"
    for dir in /sys/class/thermal/thermal_zone[0-9]*; do
        [ -d "$dir" ] || continue
        n=${dir##*/thermal_zone}
        line="$line zone${n}_type=$(read_value "$dir/type") zone${n}_temp=$(read_value "$dir/temp")"
    done
    printf '%s\n' "$line"
}

# Pin only if asked and taskset both exists and accepts the mask (a mask with no online core fails).
PIN=0
PIN_WARNING=
if [ -n "$CPUMASK" ]; then
    if ! command -v taskset >/dev/null 2>&1; then
        PIN_WARNING="taskset not found: running unpinned (mask $CPUMASK ignored)"
    elif ! taskset "$CPUMASK" true >/dev/null 2>&1; then
        PIN_WARNING="taskset rejected mask $CPUMASK: running unpinned"
    else
        PIN=1
    fi
    [ -n "$PIN_WARNING" ] && printf 'run_benchmarks.sh: warning: %s\n' "$PIN_WARNING" >&2
fi

run_model() {
    run_path=$1
    set -- "$BIN" "--graph=$run_path" "--num_threads=$THREADS" "--warmup_runs=$WARMUP" "--num_runs=$RUNS" \
        "--report_peak_memory_footprint=true"
    [ "$PROFILE" = 1 ] && set -- "$@" "--enable_op_profiling=true"
    [ "$PIN" = 1 ] && set -- taskset "$CPUMASK" "$@"
    printf '### sdeploy-begin model=%s\n' "$run_path"
    record_state before
    [ -n "$PIN_WARNING" ] && printf '### sdeploy-warning %s\n' "$PIN_WARNING"
    printf '### sdeploy-cmd %s\n' "$*"
    "$@" 2>&1
    rc=$?
    printf '\n'  # the tool's last line may lack a newline: keep the markers on their own lines
    record_state after
    printf '### sdeploy-end model=%s rc=%s\n' "$run_path" "$rc"
    return "$rc"
}

printf '### sdeploy-harness version=1 binary=%s threads=%s cpumask=%s warmup=%s runs=%s profile=%s cooldown=%s\n' \
    "$BIN" "$THREADS" "${CPUMASK:-none}" "$WARMUP" "$RUNS" "$PROFILE" "$COOLDOWN"
status=0
first=1
for model in "$@"; do
    if [ "$first" = 0 ] && [ "$COOLDOWN" -gt 0 ]; then
        sleep "$COOLDOWN"
    fi
    first=0
    printf 'run_benchmarks.sh: %s\n' "$model" >&2
    run_model "$model" || status=1
done
exit "$status"
