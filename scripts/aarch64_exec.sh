#!/bin/sh
# Make a shell session on this x86 host behave like an aarch64 device: the SSH forced command of the test
# sshd (authorized_keys `command="/path/scripts/aarch64_exec.sh"`) and the shell of the adb test device.
#
# Design: the session's shell and file tools (sh, mkdir, cat, rm, ...) are the host's, working on the shared
# filesystem — they move bytes, so their architecture does not matter. Everything whose architecture does
# matter is aarch64: PATH starts with a shim dir in which `python3`, `python`, `python3.11` exec
#     qemu-aarch64-static -cpu cortex-a76 -L ROOT ROOT/usr/bin/python3 ...
# with the root's aarch64 wheels (ai-edge-litert, numpy) on PYTHONPATH, so every Python the session runs is
# real aarch64 code reading a Cortex-A76 /proc/cpuinfo; and `uname`/`arch` report aarch64, so a device
# probe sees the target's architecture. ROOT is .cache/aarch64-root (scripts/build_aarch64_root.sh) or
# $SDEPLOY_AARCH64_ROOT.
# `cat /proc/cpuinfo` (how a device probe reads the CPU) is mapped to ROOT/proc/cpuinfo, the file qemu's -L
# gives the aarch64 processes, so the probe and LiteRT see the same CPU. One emulated board per ROOT: a fleet
# test makes a ROOT per board (symlinks to the real root's folders plus its own proc/cpuinfo) and sets
# SDEPLOY_AARCH64_CPU to the matching qemu CPU (default cortex-a76; a Pi 4 is cortex-a72).
# Limits: an absolute /usr/bin/python3 is the host's; a Python that re-executes sys.executable gets the root's
# binary path, which the host cannot exec without binfmt.
#
# Usage:
#   aarch64_exec.sh                      run $SSH_ORIGINAL_COMMAND with `sh -c` (forced-command mode),
#                                        or an interactive sh when there is none
#   aarch64_exec.sh -c 'COMMAND STRING'  run a shell string (adb shell style)
#   aarch64_exec.sh ARGV...              exec an argument vector
# The shims are symlinks to this script in ROOT/.sdeploy-shims; it dispatches on the name it was called by.
set -u

self=$(readlink -f "$0")
name=$(basename "$0")

case "$name" in
python|python3|python3.11)
    root=$(cd "$(dirname "$0")/.." && pwd)
    PYTHONPATH="$root/opt/sdeploy-site"
    PYTHONNOUSERSITE=1
    export PYTHONPATH PYTHONNOUSERSITE
    unset PYTHONHOME VIRTUAL_ENV
    exec "${SDEPLOY_QEMU:-qemu-aarch64-static}" -cpu "${SDEPLOY_AARCH64_CPU:-cortex-a76}" -L "$root" \
        "$root/usr/bin/python3" "$@"
    ;;
cat)
    root=$(cd "$(dirname "$0")/.." && pwd)
    for a do
        shift
        [ "$a" = /proc/cpuinfo ] && a="$root/proc/cpuinfo"
        set -- "$@" "$a"
    done
    PATH=${SDEPLOY_HOST_PATH:-/usr/bin:/bin}
    exec cat "$@"
    ;;
uname)
    PATH=${SDEPLOY_HOST_PATH:-/usr/bin:/bin}
    out=$(uname "$@") || exit $?
    printf '%s\n' "$out" | sed 's/x86_64/aarch64/g'
    exit 0
    ;;
arch)
    echo aarch64
    exit 0
    ;;
esac

# ---- session mode ----------------------------------------------------------------------------------
repo=$(cd "$(dirname "$self")/.." && pwd)
root=${SDEPLOY_AARCH64_ROOT:-$repo/.cache/aarch64-root}
if [ ! -x "$root/usr/bin/python3" ] || [ ! -f "$root/.sdeploy-stamp" ]; then
    echo "aarch64_exec: no aarch64 root at $root (run scripts/build_aarch64_root.sh)" >&2
    exit 126
fi
qemu=$(command -v qemu-aarch64-static) || { echo "aarch64_exec: qemu-aarch64-static not found" >&2; exit 126; }
root=$(cd "$root" && pwd)
shims="$root/.sdeploy-shims"
if [ ! -L "$shims/cat" ] || [ "$(readlink "$shims/cat")" != "$self" ]; then
    # Built beside the target and renamed into place, so concurrent sessions never see a partial dir.
    tmp=$(mktemp -d "$root/.sdeploy-shims.XXXXXX") && chmod 755 "$tmp" || exit 126
    for n in python python3 python3.11 uname arch cat; do ln -s "$self" "$tmp/$n"; done
    rm -rf "$shims.stale.$$"
    [ -e "$shims" ] && mv "$shims" "$shims.stale.$$" 2>/dev/null
    mv -T "$tmp" "$shims" 2>/dev/null || rm -rf "$tmp"
    rm -rf "$shims.stale.$$"
fi

SDEPLOY_HOST_PATH=$PATH
SDEPLOY_QEMU=$qemu
SDEPLOY_AARCH64_CPU=${SDEPLOY_AARCH64_CPU:-cortex-a76}
PATH="$shims:$PATH"
export PATH SDEPLOY_HOST_PATH SDEPLOY_QEMU SDEPLOY_AARCH64_CPU

if [ $# -eq 0 ]; then
    if [ -n "${SSH_ORIGINAL_COMMAND:-}" ]; then
        exec sh -c "$SSH_ORIGINAL_COMMAND"
    fi
    exec sh -i
fi
if [ "$1" = "-c" ]; then
    shift
    exec sh -c "$@"
fi
exec "$@"
