# The OpenBLAS kernel: rlhf says which one runs and why; an OPENBLAS_CORETYPE
# set in the environment is obeyed unchanged; without one, a fallback below
# what the CPU runs is replaced (checked where the CPU has AVX2 and FMA and
# OpenBLAS falls back on it, i.e. where there is something to check).
. "$ROOT/tests/e2e/lib.sh"
expect_rc 0 env OPENBLAS_CORETYPE=Prescott "$RLHF" --version
contains "$OUT" "BLAS: OpenBLAS kernel Prescott (OPENBLAS_CORETYPE set in the environment)"
expect_rc 0 "$RLHF" init p.db
expect_rc 0 env OPENBLAS_CORETYPE=Prescott "$RLHF" status --db p.db --json
contains "$OUT" '"blas":{"kernel":"Prescott"'
# what OpenBLAS picks alone, and what rlhf makes of it
alone=$(env -u OPENBLAS_CORETYPE -u RLHF_BLAS_FALLBACK OPENBLAS_VERBOSE=2 "$RLHF" --help 2>&1 >/dev/null | sed -n 's/^Core: //p' | head -n 1)
[ -n "$alone" ] || die "OPENBLAS_VERBOSE=2 printed no core"
expect_rc 0 env -u OPENBLAS_CORETYPE -u RLHF_BLAS_FALLBACK "$RLHF" --version
case "$alone" in
Haswell|Zen|SkylakeX|Cooperlake|SapphireRapids)
    contains "$OUT" "kernel $alone (OpenBLAS's own choice)" ;;
*)
    if grep -qw avx2 /proc/cpuinfo && grep -qw fma /proc/cpuinfo; then
        contains "$OUT" "chosen by rlhf: OpenBLAS fell back to $alone"
        not_contains "$OUT" "kernel $alone "
    else
        contains "$OUT" "kernel $alone (OpenBLAS's own choice)"
    fi ;;
esac
exit 0
