#!/bin/sh
# make bench: runs every bench/*.c program; each prints one line per figure,
# with its configuration, so runs can be compared.
BUILD=${BUILD:-build}
echo "# rlhf bench $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(nproc) cores, $(uname -m)${OPENBLAS_CORETYPE:+, OPENBLAS_CORETYPE=$OPENBLAS_CORETYPE}"
rc=0
for b in "$BUILD"/bench/*; do
    [ -x "$b" ] && [ -f "$b" ] || continue
    case "$b" in *.o|*.d) continue ;; esac
    "$b" || { echo "bench $(basename "$b") failed" >&2; rc=1; }
done
exit $rc
