#!/bin/sh
# Nothing lost under faults: a run's metrics table is complete after kill -9
# and --resume (the same rows as an uninterrupted run: no gap, no duplicate),
# also when the kill lands while the store is locked mid-save; a store held
# locked past the busy timeout does not stop a trainer; train-rm's
# normalisation survives kill -9 and stops resumable on Ctrl-C.
. "$ROOT/tests/e2e/lib.sh"
CORPUS="$ROOT/samples/corpus.txt"
expect_rc 0 "$RLHF" tokenizer train --vocab 300 --out tok.bin "$CORPUS"
expect_rc 0 "$RLHF" init p.db
expect_rc 0 "$RLHF" pretrain --corpus "$CORPUS" --tokenizer tok.bin --config tiny \
    --steps 20 --batch 4 --lr 3e-3 --out base.ckpt
/usr/bin/python3 "$ROOT/tests/e2e/make_pairs.py" "$CORPUS" 200 sft.jsonl=completion prefs.jsonl=next7:0:80
# A writer holding the store: BEGIN IMMEDIATE until the file `release` shows
# or SECONDS pass; `locked` shows once it holds the lock.
cat >hold.py <<'PY'
import os, sqlite3, sys, time
db = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=60)
db.execute("BEGIN IMMEDIATE")
open("locked", "w").close()
t = time.time()
while time.time() - t < float(sys.argv[2]) and not os.path.exists("release"):
    time.sleep(0.05)
db.execute("COMMIT")
PY
# the newest run's curve, without the wall-clock figures
curve() {
    /usr/bin/python3 - "$1" <<'PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
run = db.execute("select max(id) from runs").fetchone()[0]
for r in db.execute("select step, name, value from metrics where run_id = ? and name not like '%per_s'"
                    " and name not like 'time/%'"
                    " order by name, step", (run,)):
    print("%d %s %.9g" % r)
PY
}
# same_curve REF.txt NOW.txt WHAT: identical rows, and every step 1..N has a train curve point
same_curve() {
    cmp -s "$1" "$2" || die "$3: the metrics differ from an uninterrupted run's:
$(diff "$1" "$2" | head -20)"
}
# wait_for FILE: up to 30 s
wait_for() {
    _i=0
    while [ ! -e "$1" ] && [ $_i -lt 1500 ]; do sleep 0.02; _i=$((_i + 1)); done
    [ -e "$1" ] || die "$1 never appeared"
}
# kill_when_locked CKPT CMD...: once CKPT exists, locks the store, lets CMD
# block on its next save, kills it with SIGKILL and releases the store
kill_when_locked() {
    _ck=$1; shift
    rm -f locked release
    "$@" >k.out 2>k.err &
    _pid=$!
    wait_for "$_ck"
    /usr/bin/python3 hold.py p.db 60 &
    _hold=$!
    wait_for locked
    sleep 1
    kill -9 $_pid 2>/dev/null
    wait $_pid 2>/dev/null
    touch release
    wait $_hold
}
# random_kills N CMD...: N runs of CMD --resume, each killed with SIGKILL at a
# random moment; the caller finishes the run with --resume
random_kills() {
    _n=$1; shift
    _k=0
    while [ $_k -lt "$_n" ]; do
        "$@" --resume >k.out 2>k.err &
        _pid=$!
        sleep "$(/usr/bin/python3 -c 'import random; print(round(random.uniform(0.05, 0.8), 2))')"
        kill -9 $_pid 2>/dev/null
        wait $_pid 2>/dev/null
        _k=$((_k + 1))
    done
}
# resumed_curves REF WHAT CKPT1 CKPT2 CMD...: CMD --out CKPT1 killed while its
# save waits on the store and CMD --out CKPT2 killed at random moments, each
# then resumed, end with REF's curve
resumed_curves() {
    _ref=$1 _what=$2 _c1=$3 _c2=$4; shift 4
    kill_when_locked $_c1 "$@" --out $_c1
    expect_rc 0 "$@" --out $_c1 --resume
    curve p.db >$_c1.txt
    same_curve $_ref $_c1.txt "$_what killed while its save waited on the store"
    random_kills 4 "$@" --out $_c2
    expect_rc 0 "$@" --out $_c2 --resume
    curve p.db >$_c2.txt
    same_curve $_ref $_c2.txt "$_what after random kills"
}
# wait_step N: until the newest run has its points of step N (30 s at most)
wait_step() {
    _i=0
    while [ "$(sql p.db "select count(*) from metrics where run_id = (select max(id) from runs) and step = $1")" = 0 ] &&
        [ $_i -lt 600 ]; do sleep 0.05; _i=$((_i + 1)); done
}

# pretrain: an uninterrupted run's curve, then killed runs resumed to the same rows
PT="--db p.db --corpus $CORPUS --tokenizer tok.bin --config tiny --steps 150 --batch 4 --lr 3e-3 --eval-every 25 --save-every 1 --threads 1"
expect_rc 0 "$RLHF" pretrain $PT --out ref.ckpt
curve p.db >ref.txt
[ "$(grep -c ' train_loss ' ref.txt)" = 150 ] || die "the uninterrupted run lacks train_loss points"
resumed_curves ref.txt pretrain k1.ckpt k2.ckpt "$RLHF" pretrain $PT

# a store locked for 17 s (past the 15 s busy timeout) mid-run: the run goes on and records every step
PB="--db p.db --corpus $CORPUS --tokenizer tok.bin --config tiny --steps 150 --batch 4 --lr 3e-3 --eval-every 25 --save-every 10 --threads 1"
rm -f locked release
"$RLHF" pretrain $PB --out busy.ckpt >b.out 2>b.err &
pid=$!
wait_for busy.ckpt
/usr/bin/python3 hold.py p.db 17 &
hold=$!
wait $pid
rc=$?
wait $hold
[ $rc -eq 0 ] || die "pretrain under a locked store exited $rc: $(cat b.err)"
contains "$(cat b.err)" "warning: cannot write metrics"
curve p.db >b.txt
same_curve ref.txt b.txt "pretrain under a locked store"
[ "$(sql p.db "select status from runs order by id desc limit 1")" = done ] || die "busy run not done"

# sft, the loop dpo shares
ST="--db p.db --init base.ckpt --data sft.jsonl --steps 60 --batch 4 --save-every 1 --eval-every 20 --threads 1 --seed 5"
expect_rc 0 "$RLHF" sft $ST --out sref.ckpt
curve p.db >sref.txt
resumed_curves sref.txt sft s1.ckpt s2.ckpt "$RLHF" sft $ST

# train-rm: killed while its save waits on the store, then killed in the normalisation
# (8000 samples: about 2 s on a 2-core Zen 4, where 2000 were over before a
# signal sent 0.3 s after the last step arrived)
RT="--db p.db --init base.ckpt --data prefs.jsonl --batch 4 --save-every 1 --threads 1 --seed 3 --norm-samples 8000"
expect_rc 0 "$RLHF" train-rm $RT --out rref.ckpt --name rref
curve p.db >rref.txt
kill_when_locked r1.ckpt "$RLHF" train-rm $RT --out r1.ckpt --name r1
expect_rc 0 "$RLHF" train-rm $RT --out r1.ckpt --name r1 --resume
curve p.db >r1.txt
same_curve rref.txt r1.txt "train-rm killed while its save waited on the store"
steps=$(grep -c ' train_loss ' rref.txt)
# the normalisation starts once the last step's points are in (they precede its checkpoint)
"$RLHF" train-rm $RT --out r2.ckpt --name r2 >k.out 2>k.err &
pid=$!
wait_step $steps
sleep 0.3
kill -9 $pid 2>/dev/null
wait $pid 2>/dev/null
grep -q "reward bias" k.err && echo "note: the normalisation finished before the kill"
expect_rc 0 "$RLHF" train-rm $RT --out r2.ckpt --name r2 --resume
not_contains "$OUT" "nan"
contains "$ERR" "normalisation"
curve p.db >r2.txt
same_curve rref.txt r2.txt "train-rm killed in the normalisation"
# Ctrl-C in the normalisation: exit 1, the run interrupted, --resume finishes it
"$RLHF" train-rm $RT --out r3.ckpt --name r3 >int.out 2>int.err &
pid=$!
wait_step $steps
sleep 0.3
kill -INT $pid
wait $pid
RC=$?
[ $RC -eq 1 ] || die "Ctrl-C in the normalisation: exit $RC: $(cat int.err)"
contains "$(cat int.err)" "interrupted at step"
[ "$(sql p.db "select status from runs order by id desc limit 1")" = interrupted ] || die "run not marked interrupted"
expect_rc 0 "$RLHF" train-rm $RT --out r3.ckpt --name r3 --resume
not_contains "$OUT" "nan"
curve p.db >r3.txt
same_curve rref.txt r3.txt "train-rm stopped by Ctrl-C in the normalisation"
[ "$(sql p.db "select status from runs order by id desc limit 1")" = done ] || die "resumed run not done"
exit 0
