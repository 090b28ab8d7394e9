#!/bin/sh
# Runs every tests/e2e/*.sh and tests/tui/*.sh against the real binary.
# Each test script gets RLHF (the binary), TMP (its own scratch folder) and
# T (this folder, for lib.sh); exit 0 is a pass, 77 a skip. Arguments, if
# any, name the tests to run instead (t_gen t_sample ...).
BUILD=${BUILD:-build}
RLHF=$(cd "$(dirname "$BUILD/rlhf")" && pwd)/rlhf
ROOT=$(pwd)
export RLHF ROOT
pass=0 fail=0 skip=0 failed=""
list="tests/e2e/t_*.sh tests/tui/t_*.sh"
if [ $# -gt 0 ]; then
    list=""
    for name in "$@"; do
        [ -f "tests/e2e/$name.sh" ] || { echo "run.sh: no test tests/e2e/$name.sh"; exit 2; }
        list="$list tests/e2e/$name.sh"
    done
fi
for t in $list; do
    [ -f "$t" ] || continue
    name=$(basename "$t" .sh)
    TMP=$(mktemp -d "${TMPDIR:-/tmp}/rlhf-e2e.XXXXXX")
    export TMP
    log="$TMP.log"
    start=$(date +%s)
    if (cd "$TMP" && sh "$ROOT/$t") >"$log" 2>&1; then rc=0; else rc=$?; fi
    secs=$(( $(date +%s) - start ))
    if [ $rc -eq 0 ]; then
        pass=$((pass + 1)); echo "[PASS] $name (${secs}s)"
    elif [ $rc -eq 77 ]; then
        skip=$((skip + 1)); echo "[SKIP] $name: $(tail -n 1 "$log")"
    else
        fail=$((fail + 1)); failed="$failed $name"
        echo "[FAIL] $name (exit $rc, ${secs}s); last lines:"; tail -n 25 "$log" | sed 's/^/    /'
    fi
    rm -rf "$TMP" "$log"
done
[ -n "$failed" ] && echo "failed:$failed"
echo "e2e: $pass passed, $fail failed, $skip skipped"
[ $fail -eq 0 ]
