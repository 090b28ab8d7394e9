# rlhf watch at 80x24 follows a pretraining run as it writes its metrics: the
# run appears, its curves are drawn in braille, the step moves on, space pages
# through the charts, a resize redraws, q quits; bad flags exit 2, a missing
# run exits 1 before the screen is taken.
. "$ROOT/tests/e2e/lib.sh"
. "$ROOT/tests/tui/tmux_lib.sh"
CORPUS="$ROOT/samples/corpus.txt"
export RLHF_DB=w.db
expect_rc 0 "$RLHF" init w.db
expect_rc 0 "$RLHF" tokenizer train --vocab 300 --out tok.bin "$CORPUS"
expect_rc 2 "$RLHF" watch --interval 0
expect_rc 2 "$RLHF" watch --run x
expect_rc 2 "$RLHF" watch extra
expect_rc 1 "$RLHF" watch --run 7; contains "$ERR" "no such run"
expect_rc 0 "$RLHF" watch --help; contains "$OUT" "--metric"

stop_training() { [ -f train.pid ] && kill "$(cat train.pid)" 2>/dev/null; wait 2>/dev/null; }
trap 'stop_training; tui_cleanup' EXIT

tui_start 80 24 "$RLHF watch --interval 0.2"
wait_for "no runs yet"
# a run long enough to be watched; metrics reach the store with each checkpoint,
# all five (train_loss, lr, grad_norm, val_loss, tokens_per_s: two pages at 80x24)
# from the first one on
"$RLHF" pretrain --corpus "$CORPUS" --tokenizer tok.bin --config tiny --steps 100000 --batch 4 \
    --eval-every 10 --save-every 10 --out m.ckpt >train.log 2>&1 &
echo $! > train.pid
wait_for "pretrain  running" 30
wait_for "train_loss  last" 30
# the header's step moves on while training writes
first=$(screen | sed -n 's/.*running  step \([0-9]*\).*/\1/p')
n=0
while :; do
    now=$(screen | sed -n 's/.*running  step \([0-9]*\).*/\1/p')
    [ -n "$now" ] && [ -n "$first" ] && [ "$now" -gt "$first" ] && break
    n=$((n + 1)); [ $n -ge 600 ] && { screen; die "the screen did not follow the run (step $first)"; }
    sleep 0.05
done
screen > s1.txt
/usr/bin/python3 - s1.txt <<'PY' || die "no braille curve on screen"
import sys
t = open(sys.argv[1], encoding='utf-8').read()
dots = sum(0x2801 <= ord(c) <= 0x28ff for c in t)
assert dots > 20, f"{dots} braille cells"
assert max(len(l) for l in t.splitlines()) <= 80
PY
contains "$(cat s1.txt)" "charts 1/2"
keys Space
wait_for "charts 2/2"
$TM resize-window -t t -x 100 -y 40
wait_for "train_loss  last"
keys q
wait_for "EXITED 0"
stop_training
