#!/bin/sh
# Runs the fuzz targets: usage run.sh BUILD SECONDS TARGET...
# Each target replays tests/fuzz/regress/TARGET (crash inputs found before,
# each a regression test), then fuzzes for SECONDS from tests/fuzz/corpus/TARGET,
# writing new inputs and any crash to BUILD/corpus/TARGET and BUILD/crashes.
# Ends with "fuzz: N targets, N failed"; exit 1 when any failed.
build=$1 secs=$2
shift 2
fail=0 n=0 failed=""
mkdir -p "$build/crashes"
for t in "$@"; do
    n=$((n + 1))
    bin="$build/fuzz/$t"
    work="$build/corpus/$t"
    mkdir -p "$work"
    ok=1
    regress=$(ls tests/fuzz/regress/"$t"/* 2>/dev/null)
    if [ -n "$regress" ]; then
        # shellcheck disable=SC2086
        "$bin" -runs=1 $regress >"$build/$t.regress.log" 2>&1 || {
            ok=0; echo "[FAIL] fuzz $t: a regression input fails again:"; tail -n 30 "$build/$t.regress.log" | sed 's/^/    /'; }
    fi
    if [ $ok = 1 ]; then
        "$bin" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
            -artifact_prefix="$build/crashes/$t-" -print_final_stats=1 \
            "$work" "tests/fuzz/corpus/$t" >"$build/$t.log" 2>&1 || ok=0
        execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$build/$t.log" | tail -n 1)
        if [ $ok = 1 ]; then
            echo "[PASS] fuzz $t: ${execs:-?} runs in ${secs}s"
        else
            echo "[FAIL] fuzz $t (crash input in $build/crashes/; add it to tests/fuzz/regress/$t):"
            tail -n 40 "$build/$t.log" | sed 's/^/    /'
        fi
    fi
    [ $ok = 1 ] || { fail=$((fail + 1)); failed="$failed $t"; }
done
[ -n "$failed" ] && echo "fuzz failed:$failed"
echo "fuzz: $n targets, $fail failed"
[ $fail -eq 0 ]
