#!/bin/sh
# Build the aarch64 test target: .cache/aarch64-root/, an arm64 Debian bookworm userland (python3 3.11 only)
# plus the aarch64 wheels of ai-edge-litert==2.1.0 and its dependencies (numpy 1.26.4, protobuf, ...), all
# pinned by constraints.txt so the aarch64 side runs the same versions as the x86 .venv.
# SDEPLOY_AARCH64_SUITE=trixie builds the second target, .cache/aarch64-root-trixie/: Debian trixie (python3
# 3.13, glibc 2.41, Raspberry Pi OS trixie's Python) with ai-edge-litert==2.1.0's cp313 wheel. numpy 1.26.4 has
# no cp313 wheel, so there constraints.txt pins everything except numpy and pip picks numpy (2.x).
#
# Why this shape:
#   * Nothing is installed into the host: arm64 .debs are fetched with a private apt config/state dir
#     (APT::Architecture "arm64", empty dpkg status) and unpacked with `dpkg -x`; the host's dpkg never
#     learns about arm64. qemu-aarch64-static runs the result with `-L ROOT` (no binfmt, no chroot, no root).
#   * numpy comes from pip's aarch64 wheel (1.26.4, same as .venv), not Debian's 1.24, so x86 and aarch64
#     differ only in the CPU. The wheels live in ROOT/opt/sdeploy-site (put it on PYTHONPATH; see
#     scripts/aarch64_exec.sh and tests/servers/aarch64.py).
#   * ROOT/proc/cpuinfo is a Cortex-A76 description; qemu -L redirects the guest's open("/proc/cpuinfo")
#     to it (qemu 7.2 does not emulate /proc/cpuinfo for aarch64 guests, so without the file the guest
#     reads the host's x86 text). LiteRT's cpuinfo library picks XNNPACK kernels from that file (CPU part,
#     Features), so it must agree with qemu's `-cpu`: A76 text under `-cpu cortex-a72` dies with SIGILL
#     (dot-product kernels). Always run with `-cpu cortex-a76` (scripts/aarch64_exec.sh does).
#   * Cached: .debs in .cache/aarch64-apt/archives, wheels in .cache/aarch64-wheels (trixie: the same names
#     with a -trixie suffix, so the suites never share apt state, wheels or locks); ROOT/.sdeploy-stamp
#     holds a hash of this script + the pins, so a rerun with the same inputs is a no-op. The root is built
#     in a temp dir and renamed into place, so a half-built root is never visible; a lock serialises builds.
#   * Keys: the host's /usr/share/keyrings/debian-archive-keyring.gpg (Debian bookworm's package, 2023.3+deb12u2)
#     already holds the trixie archive and security keys, so both suites verify with it.
#
# Usage: scripts/build_aarch64_root.sh [--force | --check]
#   env SDEPLOY_AARCH64_SUITE  bookworm (default) | trixie
#   env SDEPLOY_AARCH64_ROOT   build the bookworm root elsewhere (SDEPLOY_AARCH64_ROOT_TRIXIE: the trixie one)
#   --check   exit 0 if the root is built and up to date, 1 otherwise; never builds
set -eu

REPO=$(cd "$(dirname "$0")/.." && pwd)
CACHE="$REPO/.cache"
SUITE="${SDEPLOY_AARCH64_SUITE:-bookworm}"
case "$SUITE" in
    bookworm)   # Python 3.11, glibc 2.36; every wheel pinned by constraints.txt (numpy 1.26.4, as the x86 .venv)
        ROOT="${SDEPLOY_AARCH64_ROOT:-$CACHE/aarch64-root}"
        SUFFIX=""
        PYVER=3.11
        GLIBC_MINOR=36
        PIP_PACKAGES="ai-edge-litert==2.1.0 numpy"        # versions of everything come from constraints.txt
        PIN_NUMPY=1
        ;;
    trixie)     # Python 3.13, glibc 2.41; numpy is pip's choice (no cp313 wheel of 1.26.4), the rest pinned
        ROOT="${SDEPLOY_AARCH64_ROOT_TRIXIE:-$CACHE/aarch64-root-trixie}"
        SUFFIX="-trixie"
        PYVER=3.13
        GLIBC_MINOR=41
        PIP_PACKAGES="ai-edge-litert==2.1.0 numpy"
        PIN_NUMPY=0
        ;;
    *) echo "SDEPLOY_AARCH64_SUITE must be bookworm or trixie, not '$SUITE'" >&2; exit 2 ;;
esac
APTDIR="$CACHE/aarch64-apt$SUFFIX"
WHEELS="$CACHE/aarch64-wheels$SUFFIX"
STAMP="$ROOT/.sdeploy-stamp"
DEBIAN_PACKAGES="python3 libstdc++6 libgcc-s1"   # libstdc++: the LiteRT/numpy wheels link it (manylinux)
FORCE=0
CHECK=0
case "${1:-}" in
    --force) FORCE=1 ;;
    --check) CHECK=1 ;;
    "") ;;
    *) echo "usage: $0 [--force | --check]" >&2; exit 2 ;;
esac

say() { printf "[aarch64-root %s] %3ss %s\n" "$SUITE" "$(( $(date +%s) - START ))" "$*"; }
START=$(date +%s)

# ---- inputs hash: this script, the pins of the wheels we install, the package lists -----------------
CONSTRAINTS="$REPO/constraints.txt"
pins() {
    grep -iE '^(ai-edge-litert|numpy|protobuf|flatbuffers|tqdm|typing[-_]extensions|backports[._-]strenum)==' \
        "$CONSTRAINTS" 2>/dev/null || true
}
HASH=$( { cat "$0"; pins; echo "$DEBIAN_PACKAGES|$PIP_PACKAGES|$SUITE|$PYVER|$PIN_NUMPY"; } | sha256sum | cut -d' ' -f1)

if [ "$FORCE" = 0 ] && [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$HASH" ] && command -v qemu-aarch64-static >/dev/null; then
    say "up to date: $ROOT"
    exit 0
fi
if [ "$CHECK" = 1 ]; then
    say "missing or stale: $ROOT (run $0)"
    exit 1
fi

# ---- host tools -------------------------------------------------------------------------------------
if ! command -v qemu-aarch64-static >/dev/null; then
    say "installing qemu-user-static (Debian)"
    [ "$(id -u)" = 0 ] || { echo "qemu-aarch64-static is missing: apt-get install qemu-user-static" >&2; exit 1; }
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq qemu-user-static >/dev/null
fi
for tool in apt-get dpkg sha256sum flock; do
    command -v "$tool" >/dev/null || { echo "missing host tool: $tool" >&2; exit 1; }
done
# the host Python whose pip fetches the aarch64 wheels: $SDEPLOY_HOST_PYTHON (.ci/run passes python3.11, as it
# builds the roots while the project venv is still being installed), else the project venv's, else python3
if [ -n "${SDEPLOY_HOST_PYTHON:-}" ]; then HOSTPY="$SDEPLOY_HOST_PYTHON"
elif [ -x "$REPO/.venv/bin/python" ]; then HOSTPY="$REPO/.venv/bin/python"; else HOSTPY=python3; fi
"$HOSTPY" -m pip --version >/dev/null 2>&1 || { echo "need pip on the host ($HOSTPY -m pip) to fetch aarch64 wheels" >&2; exit 1; }

mkdir -p "$CACHE"
exec 9>"$CACHE/aarch64-root$SUFFIX.lock"
flock 9
# Someone else may have finished the same build while we waited for the lock.
if [ "$FORCE" = 0 ] && [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$HASH" ]; then say "up to date: $ROOT"; exit 0; fi

# ---- private apt for arm64 --------------------------------------------------------------------------
mkdir -p "$APTDIR/etc/apt/apt.conf.d" "$APTDIR/etc/apt/preferences.d" "$APTDIR/etc/apt/sources.list.d" \
         "$APTDIR/lists/partial" "$APTDIR/archives/partial" "$APTDIR/state" "$APTDIR/cache"
: > "$APTDIR/state/status"      # empty: apt resolves the full closure, nothing counts as installed
KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg
MIRROR=http://deb.debian.org
cat > "$APTDIR/etc/apt/sources.list" <<EOF
deb [arch=arm64 signed-by=$KEYRING] $MIRROR/debian $SUITE main
deb [arch=arm64 signed-by=$KEYRING] $MIRROR/debian $SUITE-updates main
deb [arch=arm64 signed-by=$KEYRING] $MIRROR/debian-security $SUITE-security main
EOF
cat > "$APTDIR/apt.conf" <<EOF
APT::Architecture "arm64";
APT::Architectures { "arm64"; };
APT::Install-Recommends "false";
APT::Install-Suggests "false";
Dir::Etc "$APTDIR/etc/apt";
Dir::Etc::SourceList "$APTDIR/etc/apt/sources.list";
Dir::Etc::SourceParts "$APTDIR/etc/apt/sources.list.d";
Dir::Etc::Parts "$APTDIR/etc/apt/apt.conf.d";
Dir::Etc::Preferences "$APTDIR/etc/apt/preferences";
Dir::Etc::PreferencesParts "$APTDIR/etc/apt/preferences.d";
Dir::State "$APTDIR/state";
Dir::State::Lists "$APTDIR/lists";
Dir::State::status "$APTDIR/state/status";
Dir::Cache "$APTDIR/cache";
Dir::Cache::archives "$APTDIR/archives";
Debug::NoLocking "true";
EOF
export APT_CONFIG="$APTDIR/apt.conf"

# Refresh the arm64 index at most once a day (a rebuild from cache must not need the network).
if [ -z "$(find "$APTDIR/lists" -maxdepth 1 -name '*_Packages*' -mtime -1 2>/dev/null | head -1)" ]; then
    say "apt-get update (arm64, private state in $APTDIR)"
    if ! apt-get update -qq; then
        ls "$APTDIR"/lists/*_Packages* >/dev/null 2>&1 || { echo "apt-get update failed and no cached index" >&2; exit 1; }
        say "apt-get update failed; using the cached index"
    fi
fi

say "resolving the dependency closure of: $DEBIAN_PACKAGES"
# `install -s` with an empty status prints one "Inst NAME (VERSION ... [ARCH])" line per package of the closure.
PLAN="$APTDIR/plan.txt"
apt-get install -s -qq $DEBIAN_PACKAGES | sed -n 's/^Inst \([^ ]*\) (\([^ ]*\) .*\[\([a-z0-9]*\)\]).*/\1 \2 \3/p' > "$PLAN"
[ -s "$PLAN" ] || { echo "apt resolved nothing for: $DEBIAN_PACKAGES" >&2; exit 1; }
say "$(wc -l < "$PLAN") packages; downloading what is not cached"
apt-get install -y -qq --download-only $DEBIAN_PACKAGES >/dev/null

# ---- aarch64 wheels ---------------------------------------------------------------------------------
PLATFORMS="--platform manylinux2014_aarch64"
for minor in $(seq 17 "$GLIBC_MINOR"); do PLATFORMS="$PLATFORMS --platform manylinux_2_${minor}_aarch64"; done
CP="cp$(echo "$PYVER" | tr -d .)"
PIPARGS="$PLATFORMS --only-binary=:all: --python-version $PYVER --implementation cp --abi $CP --abi abi3 --abi none"
mkdir -p "$WHEELS"
if [ "$PIN_NUMPY" = 0 ]; then   # every pin of constraints.txt except numpy's
    grep -viE '^numpy==' "$CONSTRAINTS" > "$WHEELS/constraints-no-numpy.txt"
    CONSTRAINTS="$WHEELS/constraints-no-numpy.txt"
fi
say "fetching aarch64 wheels into $WHEELS: $PIP_PACKAGES"
# shellcheck disable=SC2086
if ! "$HOSTPY" -m pip download -q --disable-pip-version-check --no-index --find-links "$WHEELS" -d "$WHEELS" \
        $PIPARGS -c "$CONSTRAINTS" $PIP_PACKAGES >/dev/null 2>&1; then
    "$HOSTPY" -m pip download -q --disable-pip-version-check -d "$WHEELS" $PIPARGS -c "$CONSTRAINTS" $PIP_PACKAGES
fi

# ---- assemble in a temp dir, then swap into place ---------------------------------------------------
NEW="$ROOT.new.$$"
rm -rf "$NEW"
mkdir -p "$NEW"
trap 'rm -rf "$NEW"' EXIT
say "unpacking $(wc -l < "$PLAN") .debs into the root"
while read -r name version arch; do
    file="$APTDIR/archives/${name}_$(printf '%s' "$version" | sed 's/:/%3a/')_${arch}.deb"
    [ -f "$file" ] || { echo "missing downloaded package: $file" >&2; exit 1; }
    dpkg -x "$file" "$NEW"
done < "$PLAN"
cp "$PLAN" "$NEW/.sdeploy-packages"
# trixie's packages are merged-/usr (libc6 ships usr/lib/ld-linux-aarch64.so.1): the /lib, /bin, /sbin links come
# from base-files, which we do not unpack. Make them, so ELF interpreter lookups (/lib/ld-linux-aarch64.so.1) work.
if [ ! -e "$NEW/lib" ]; then
    for dir in bin sbin lib; do
        [ -d "$NEW/usr/$dir" ] && [ ! -e "$NEW/$dir" ] && ln -s "usr/$dir" "$NEW/$dir"
    done
fi

SITE="$NEW/opt/sdeploy-site"
say "installing wheels into ROOT/opt/sdeploy-site"
# --ignore-requires-python: the wheels are the root's Python's (--python-version/--abi above); an older host pip
# (23.x) checks their Requires-Python against the host's own Python instead
# shellcheck disable=SC2086
"$HOSTPY" -m pip install -q --disable-pip-version-check --no-warn-conflicts --no-index --find-links "$WHEELS" --target "$SITE" \
    --ignore-requires-python $PIPARGS -c "$CONSTRAINTS" $PIP_PACKAGES

# A Cortex-A76 /proc/cpuinfo (4 cores), matching `qemu-aarch64-static -cpu cortex-a76`.
mkdir -p "$NEW/proc"     # no ROOT/tmp on purpose: /tmp must stay the host's (shared work dirs live there)
: > "$NEW/proc/cpuinfo"
for cpu in 0 1 2 3; do
    cat >> "$NEW/proc/cpuinfo" <<EOF
processor	: $cpu
BogoMIPS	: 50.00
Features	: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp
CPU implementer	: 0x41
CPU architecture: 8
CPU variant	: 0x4
CPU part	: 0xd0b
CPU revision	: 1

EOF
done

# Smoke test before publishing: the interpreter starts, imports numpy + LiteRT, and is aarch64. It also
# leaves the stdlib/numpy/LiteRT .pyc files in the root, which makes every later start faster.
say "smoke test under qemu-aarch64-static -cpu cortex-a76"
OUT=$(PYTHONPATH="$SITE" PYTHONNOUSERSITE=1 \
      qemu-aarch64-static -cpu cortex-a76 -L "$NEW" "$NEW/usr/bin/python3" -c \
      "import platform, numpy; from ai_edge_litert.interpreter import Interpreter; print(platform.machine(), platform.python_version(), numpy.__version__)")
say "root python: $OUT"
case "$OUT" in "aarch64 $PYVER".*) ;; *) echo "smoke test failed (want aarch64 Python $PYVER): $OUT" >&2; exit 1;; esac

echo "$HASH" > "$NEW/.sdeploy-stamp"
rm -rf "$ROOT.old"
[ -e "$ROOT" ] && mv "$ROOT" "$ROOT.old"
mv "$NEW" "$ROOT"
trap - EXIT
rm -rf "$ROOT.old"
say "built $ROOT ($(du -sh "$ROOT" | cut -f1)) in $(( $(date +%s) - START )) s"
