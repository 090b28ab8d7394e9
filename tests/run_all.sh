#!/bin/sh
# Runs the unit tests (Criterion) and the end-to-end tests on the real binary,
# then prints one closing line: "tests: N passed, N failed".
BUILD=${BUILD:-build}
export BUILD
out=$(mktemp)
trap 'rm -f "$out"' EXIT
# Criterion forks a process per test; two workers suit the 2-core machines.
"$BUILD/unit-tests" --jobs=2 2>&1 | tee "$out"
unit_rc=$?
synth=$(grep 'Synthesis:' "$out" | tail -n 1)
u_total=$(echo "$synth" | sed -n 's/.*Tested: \([0-9]*\).*/\1/p')
u_pass=$(echo "$synth" | sed -n 's/.*Passing: \([0-9]*\).*/\1/p')
u_total=${u_total:-0}
u_pass=${u_pass:-0}
u_fail=$((u_total - u_pass))
[ -n "$synth" ] || { echo "unit tests did not finish"; u_fail=$((u_fail + 1)); }
# Criterion judges a test by its assertions; under the sanitizers a report
# printed by a test's process (a leak at exit, say) fails the run too.
if [ "${RLHF_SAN:-0}" = 1 ]; then
    san=$(grep -cE 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:' "$out")
    if [ "$san" -gt 0 ]; then
        echo "unit: $san sanitizer reports (see above)"
        u_fail=$((u_fail + san))
    fi
fi

sh tests/e2e/run.sh | tee "$out"
e_line=$(grep -E '^e2e: [0-9]+ passed, [0-9]+ failed' "$out" | tail -n 1)
e_pass=$(echo "$e_line" | sed -n 's/e2e: \([0-9]*\) passed.*/\1/p')
e_fail=$(echo "$e_line" | sed -n 's/.* \([0-9]*\) failed.*/\1/p')
e_pass=${e_pass:-0}
e_fail=${e_fail:-1}

echo "unit: $u_pass passed, $u_fail failed; e2e: $e_pass passed, $e_fail failed"
echo "tests: $((u_pass + e_pass)) passed, $((u_fail + e_fail)) failed"
[ "$u_fail" -eq 0 ] && [ "$e_fail" -eq 0 ] && [ "$unit_rc" -eq 0 ]
