#!/bin/sh
# rlhf pretrain: trains, records the run, the curve and the model in the store;
# kill -9 mid-run then --resume ends bit-identical to an uninterrupted run;
# bad flags exit 2; refused resumes say why.
. "$ROOT/tests/e2e/lib.sh"
CORPUS="$ROOT/samples/corpus.txt"
expect_rc 0 "$RLHF" tokenizer train --vocab 300 --out tok.bin "$CORPUS"

# usage errors
expect_rc 2 "$RLHF" pretrain --tokenizer tok.bin --out a.ckpt
contains "$ERR" "corpus"
expect_rc 2 "$RLHF" pretrain --corpus "$CORPUS" --out a.ckpt
expect_rc 2 "$RLHF" pretrain --corpus "$CORPUS" --tokenizer tok.bin
expect_rc 2 "$RLHF" pretrain --corpus "$CORPUS" --tokenizer tok.bin --out a.ckpt --config huge
contains "$ERR" "huge"
expect_rc 2 "$RLHF" pretrain --corpus "$CORPUS" --tokenizer tok.bin --out a.ckpt --steps 0
expect_rc 2 "$RLHF" pretrain --corpus "$CORPUS" --tokenizer tok.bin --out a.ckpt --lr abc
expect_rc 2 "$RLHF" pretrain --corpus "$CORPUS" --tokenizer tok.bin --out a.ckpt --bogus
expect_rc 2 "$RLHF" pretrain --corpus "$CORPUS" --tokenizer tok.bin --out a.ckpt --resume --force
expect_rc 0 "$RLHF" pretrain --help
contains "$OUT" "--resume"
# bad inputs
expect_rc 1 "$RLHF" pretrain --corpus missing.txt --tokenizer tok.bin --out a.ckpt
contains "$ERR" "missing.txt"
expect_rc 1 "$RLHF" pretrain --corpus "$CORPUS" --tokenizer "$CORPUS" --out a.ckpt
expect_rc 2 "$RLHF" pretrain --corpus "$CORPUS" --tokenizer tok.bin --out a.ckpt --heads 3
contains "$ERR" "heads"
expect_rc 2 "$RLHF" pretrain --corpus "$CORPUS" --tokenizer tok.bin --out a.ckpt --dim 36 --heads 4
contains "$ERR" "even"
printf 'tiny text\n' > small.txt
expect_rc 1 "$RLHF" pretrain --corpus small.txt --tokenizer tok.bin --out a.ckpt
contains "$ERR" "too few"
[ ! -e a.ckpt ] || die "a failed run left a checkpoint"

# a recorded run
expect_rc 0 "$RLHF" init p.db
expect_rc 0 "$RLHF" pretrain --db p.db --corpus "$CORPUS" --tokenizer tok.bin --config tiny \
    --steps 40 --batch 4 --lr 3e-3 --eval-every 10 --out m.ckpt --name tiny-base
contains "$OUT" "trained 40 steps"
[ "$(sql p.db "select kind from models where name='tiny-base'")" = base ] || die "model not registered"
case "$(sql p.db "select path from models where name='tiny-base'")" in /*m.ckpt) ;; *) die "bad model path" ;; esac
[ "$(sql p.db "select length(sha256) from models where name='tiny-base'")" = 64 ] || die "no sha256"
[ "$(sql p.db "select status from runs where kind='pretrain'")" = done ] || die "run not done"
[ "$(sql p.db "select count(*) from metrics where name='val_loss'")" = 4 ] || die "val_loss curve missing"
[ "$(sql p.db "select count(*) from metrics where name='train_loss'")" = 40 ] || die "train_loss curve missing"
first=$(sql p.db "select value from metrics where name='train_loss' and step=1")
last=$(sql p.db "select value from metrics where name='train_loss' and step=40")
/usr/bin/python3 -c "import sys; sys.exit(0 if $last < $first - 0.3 else 1)" || die "loss did not fall: $first -> $last"
# the checkpoint carries its tokenizer and loads with the infer helper's sampler
expect_rc 0 "$RLHF" sample --model m.ckpt --max-tokens 5 --seed 1 "One day"
# an existing checkpoint is not overwritten by accident
expect_rc 1 "$RLHF" pretrain --corpus "$CORPUS" --tokenizer tok.bin --steps 2 --out m.ckpt
contains "$ERR" "--resume"
# resuming with another config or corpus is refused with the reason
expect_rc 1 "$RLHF" pretrain --corpus "$CORPUS" --tokenizer tok.bin --steps 50 --dim 64 --out m.ckpt --resume
contains "$ERR" "does not match"
expect_rc 1 "$RLHF" pretrain --corpus "$CORPUS" --corpus "$CORPUS" --tokenizer tok.bin --steps 50 --out m.ckpt --resume
contains "$ERR" "corpus"
# extending a finished run continues the same run in the store
expect_rc 0 "$RLHF" pretrain --db p.db --corpus "$CORPUS" --tokenizer tok.bin --steps 50 --batch 4 --eval-every 10 --out m.ckpt --resume --name tiny-base
contains "$ERR" "resumed"
[ "$(sql p.db "select count(*) from runs")" = 1 ] || die "resume started a second run"
[ "$(sql p.db "select max(step) from metrics")" = 50 ] || die "curve not continued"

# Ctrl-C (SIGINT) mid-run: saves a checkpoint, marks the run interrupted, exits 1
interrupt_when "parameters" "$RLHF" pretrain --db p.db --corpus "$CORPUS" --tokenizer tok.bin --steps 5000 --batch 4 \
    --save-every 1000 --out int.ckpt
[ $RC -eq 1 ] || die "interrupted run exited $RC: $(cat int.err)"
contains "$(cat int.err)" "interrupted at step"
[ -s int.ckpt ] || die "no checkpoint after Ctrl-C"
[ "$(sql p.db "select status from runs order by id desc limit 1")" = interrupted ] || die "run not marked interrupted"
expect_rc 0 "$RLHF" pretrain --db p.db --corpus "$CORPUS" --tokenizer tok.bin --steps 5000 --batch 4 \
    --save-every 1000 --out int.ckpt --resume --steps 60
[ "$(sql p.db "select status from runs order by id desc limit 1")" = done ] || die "resumed run not done"

# kill -9 mid-run, rerun with --resume: same bytes as a run never interrupted
ARGS="--corpus $CORPUS --tokenizer tok.bin --config tiny --steps 400 --batch 4 --save-every 10 --eval-every 100 --threads 1 --seed 5"
expect_rc 0 "$RLHF" pretrain $ARGS --out ref.ckpt
kill9_after_checkpoint k.ckpt "$RLHF" pretrain $ARGS --out k.ckpt
if grep -q "trained 400" k.out; then
    echo "note: the run finished before the kill; resuming a finished run instead"
fi
ls k.ckpt.tmp.* >/dev/null 2>&1 && echo "note: the kill left a temporary file"
: > k.ckpt.tmp.999999999   # a dead writer's leftover
expect_rc 0 "$RLHF" pretrain $ARGS --out k.ckpt --resume
contains "$ERR" "resumed"
! ls k.ckpt.tmp.* >/dev/null 2>&1 || die "stale temporaries were not removed"
# resuming a finished run has nothing to do and says so
expect_rc 0 "$RLHF" pretrain $ARGS --out k.ckpt --resume
contains "$OUT" "is up to date"
not_contains "$OUT" "nan"
cmp ref.ckpt k.ckpt || die "resumed run differs from the uninterrupted one"
# a corrupt checkpoint is refused on resume, not trained over
printf 'garbage' | dd of=k.ckpt bs=1 seek=5000 conv=notrunc 2>/dev/null
expect_rc 1 "$RLHF" pretrain $ARGS --out k.ckpt --resume --steps 500
contains "$ERR" "k.ckpt"
exit 0
