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
# skip_missing WHAT: a test cannot run for want of WHAT, which `make deps`
# installs. Under `make test` (RLHF_DEPS_INSTALLED=1: the target has just
# installed every dependency) that is a failure, not a skip: a build made
# before the install, say, must not hide a test.
skip_missing() {
    if [ "${RLHF_DEPS_INSTALLED:-0}" = 1 ]; then
        echo "FAIL: $1, though make test installed what this test needs (a stale build? make rebuilds when its configuration changes)" >&2
        exit 1
    fi
    echo "skip: $1"; exit 77
}
# contains HAYSTACK NEEDLE
contains() { case "$1" in *"$2"*) return 0 ;; esac; die "expected to find '$2' in: $1"; }
not_contains() { case "$1" in *"$2"*) die "did not expect '$2' in: $1" ;; esac; return 0; }
# sky_candidates N: candidates JSONL for N prompts "What color is the sky on
# day I?", each answered by models good (right), bad (nonsense) and ok (long)
sky_candidates() {
    _i=1
    while [ $_i -le "$1" ]; do
        printf '{"prompt":"What color is the sky on day %s?","completion":"%s","model":"%s"}\n' \
            $_i "The sky is blue on day $_i." good $_i "cheese cheese cheese" bad \
            $_i "On day $_i the sky is blue, with a few white clouds over the sea" ok
        _i=$((_i + 1))
    done
}
# sql DB QUERY: one value from the database (sqlite3's CLI is not a dependency; use python)
sql() { /usr/bin/python3 -c 'import sqlite3,sys; r=sqlite3.connect(sys.argv[1]).execute(sys.argv[2]).fetchone(); print("" if r is None else r[0])' "$1" "$2"; }
# kill9_after_checkpoint CKPT CMD...: runs CMD in the background (stdout k.out,
# stderr k.err) and kills it with SIGKILL once CKPT exists, as a crash would
kill9_after_checkpoint() {
    _ck=$1; shift
    "$@" >k.out 2>k.err &
    _pid=$!
    _i=0
    while [ ! -e "$_ck" ] && [ $_i -lt 600 ]; do sleep 0.02; _i=$((_i + 1)); done
    sleep 0.1
    kill -9 $_pid 2>/dev/null
    wait $_pid 2>/dev/null
    return 0
}
# interrupt_when PATTERN CMD...: runs CMD in the background (stdout int.out,
# stderr int.err), sends SIGINT once PATTERN shows on its stderr, and leaves
# its exit status in RC
interrupt_when() {
    _pat=$1; shift
    "$@" >int.out 2>int.err &
    _pid=$!
    _i=0
    while ! grep -q "$_pat" int.err 2>/dev/null && [ $_i -lt 500 ]; do sleep 0.02; _i=$((_i + 1)); done
    sleep 0.3
    kill -INT $_pid
    wait $_pid
    RC=$?
}
# tiny_base DB: a project DB with a tiny model pretrained briefly on the demo
# corpus (tok.bin, base.ckpt registered as base)
tiny_base() {
    expect_rc 0 "$RLHF" init "$1"
    expect_rc 0 "$RLHF" tokenizer train --vocab 300 --out tok.bin "$ROOT/samples/corpus.txt"
    expect_rc 0 "$RLHF" pretrain --db "$1" --corpus "$ROOT/samples/corpus.txt" --tokenizer tok.bin --config tiny \
        --steps 150 --batch 8 --lr 3e-3 --out base.ckpt --name base
}
# tiny_candidates DB: the demo's prompts and 4 candidates of base.ckpt for each train prompt
tiny_candidates() {
    expect_rc 0 "$RLHF" prompts import --db "$1" "$ROOT/samples/prompts.jsonl"
    expect_rc 0 "$RLHF" gen --db "$1" --model base.ckpt -k 4 --split train --seed 1 --max-tokens 32
}
