#!/bin/sh
# make bench: runs every bench/*.c program; each prints one line per figure,
# with its configuration, so runs can be compared. The header names the CPU
# and the OpenBLAS kernel, so a slow fallback kernel cannot hide behind a
# ratio measured on that same kernel; the benches run on the kernel rlhf
# itself chooses (an OPENBLAS_CORETYPE set in the environment is obeyed).
BUILD=${BUILD:-build}
ver=$("$BUILD/rlhf" --version)
kernel=$(echo "$ver" | sed -n 's/^BLAS: OpenBLAS kernel \([^ ]*\) .*/\1/p')
reason=$(echo "$ver" | sed -n 's/^BLAS: OpenBLAS kernel [^ ]* (\(.*\))$/\1/p')
alone=$(env -u OPENBLAS_CORETYPE -u RLHF_BLAS_FALLBACK OPENBLAS_VERBOSE=2 "$BUILD/rlhf" --help 2>&1 >/dev/null |
        sed -n 's/^Core: //p' | head -n 1)
[ -n "$alone" ] || alone=$(echo "$reason" | sed -n 's/.*fell back to \([^ ;]*\).*/\1/p')
echo "# rlhf bench $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(nproc) cores, $(uname -m)"
echo "# cpu: $(echo "$ver" | sed -n 's/^CPU: //p')"
echo "# blas: kernel=$kernel ($reason); openblas_alone=${alone:-?}${OPENBLAS_CORETYPE:+; OPENBLAS_CORETYPE=$OPENBLAS_CORETYPE in the environment}"
if [ -z "${OPENBLAS_CORETYPE:-}" ] && [ -n "$kernel" ]; then
    # the same choice for the bench programs as for rlhf
    export OPENBLAS_CORETYPE="$kernel"
    case "$reason" in "chosen by rlhf"*) export RLHF_BLAS_FALLBACK="$alone" ;; esac
fi
rc=0
for b in "$BUILD"/bench/*; do
    [ -x "$b" ] && [ -f "$b" ] || continue
    case "$b" in *.o|*.d) continue ;; esac
    "$b" || { echo "bench $(basename "$b") failed" >&2; rc=1; }
done
exit $rc
