# Helpers for end-to-end tests; source with: . "$ROOT/tests/e2e/lib.sh"
set -u
die() { echo "FAIL: $*" >&2; exit 1; }
# expect_rc N CMD...: runs CMD, keeps stdout in $OUT and stderr in $ERR, checks the exit code
expect_rc() {
    _want=$1; shift
    "$@" >out.txt 2>err.txt
    _got=$?
    OUT=$(cat out.txt); ERR=$(cat err.txt)
    [ "$_got" -eq "$_want" ] || die "expected exit $_want, got $_got: $*
stdout: $OUT
stderr: $ERR"
}
# contains HAYSTACK NEEDLE
contains() { case "$1" in *"$2"*) return 0 ;; esac; die "expected to find '$2' in: $1"; }
not_contains() { case "$1" in *"$2"*) die "did not expect '$2' in: $1" ;; esac; return 0; }
# sql DB QUERY: one value from the database (sqlite3's CLI is not a dependency; use python)
sql() { /usr/bin/python3 -c 'import sqlite3,sys; r=sqlite3.connect(sys.argv[1]).execute(sys.argv[2]).fetchone(); print("" if r is None else r[0])' "$1" "$2"; }
