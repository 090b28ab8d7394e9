#!/bin/sh
# rlhf sft: trains on a JSONL file and on the store (top-ranked answers or a
# named model's demonstrations), registers kind sft with its parent, records
# the curves; bad flags exit 2, bad input exits 1 naming the place and writes
# nothing; kill -9 then --resume ends bit-identical to an uninterrupted run.
. "$ROOT/tests/e2e/lib.sh"
CORPUS="$ROOT/samples/corpus.txt"
expect_rc 0 "$RLHF" tokenizer train --vocab 300 --out tok.bin "$CORPUS"
expect_rc 0 "$RLHF" tokenizer train --vocab 280 --out tok2.bin "$CORPUS"
expect_rc 0 "$RLHF" init p.db
expect_rc 0 "$RLHF" pretrain --db p.db --corpus "$CORPUS" --tokenizer tok.bin --config tiny \
    --steps 30 --batch 4 --lr 3e-3 --out base.ckpt --name base
# prompt/answer pairs from the corpus's exchanges; a tenth of them as TRL pairs for the store
/usr/bin/python3 "$ROOT/tests/e2e/make_pairs.py" "$CORPUS" 300 sft.jsonl=completion chat.jsonl=chat:0:40 \
    prefs.jsonl=next7:0:30 demos.jsonl=demos:30:50 demos.n=distinct:30:50

# usage errors
expect_rc 2 "$RLHF" sft --data sft.jsonl --out s.ckpt
contains "$ERR" "--init"
expect_rc 2 "$RLHF" sft --init base.ckpt --out s.ckpt
contains "$ERR" "no data: give --db PATH"
# with a project, --data defaults to the store (as for dpo and train-rm)
expect_rc 1 "$RLHF" sft --db p.db --init base.ckpt --out s.ckpt
contains "$ERR" "store: no prompt→answer pairs"
expect_rc 2 "$RLHF" sft --init base.ckpt --data sft.jsonl
contains "$ERR" "--out"
expect_rc 2 "$RLHF" sft --init base.ckpt --data sft.jsonl --out s.ckpt --from-model x
contains "$ERR" "--data store"
expect_rc 2 "$RLHF" sft --init base.ckpt --data sft.jsonl --out s.ckpt --template "no marker"
contains "$ERR" "{prompt}"
expect_rc 2 "$RLHF" sft --init base.ckpt --data sft.jsonl --out s.ckpt --lr abc
expect_rc 2 "$RLHF" sft --init base.ckpt --data sft.jsonl --out s.ckpt --epochs 0
expect_rc 2 "$RLHF" sft --init base.ckpt --data sft.jsonl --out base.ckpt
expect_rc 0 "$RLHF" sft --help
contains "$OUT" "--from-model"

# bad input: named, nothing written
expect_rc 1 "$RLHF" sft --init base.ckpt --data missing.jsonl --out s.ckpt
contains "$ERR" "missing.jsonl"
printf '{"prompt":"a","completion":"b"}\n{"prompt":"a"}\n' > bad.jsonl
expect_rc 1 "$RLHF" sft --init base.ckpt --data bad.jsonl --out s.ckpt
contains "$ERR" "bad.jsonl:2"
contains "$ERR" "completion"
expect_rc 1 "$RLHF" sft --init missing.ckpt --data sft.jsonl --out s.ckpt
contains "$ERR" "missing.ckpt"
expect_rc 1 "$RLHF" sft --init base.ckpt --tokenizer tok2.bin --data sft.jsonl --out s.ckpt
contains "$ERR" "vocab"
expect_rc 1 "$RLHF" sft --init base.ckpt --data store --out s.ckpt
contains "$ERR" "--db"
[ ! -e s.ckpt ] || die "a failed run left a checkpoint"

# a recorded run on the file
expect_rc 0 "$RLHF" sft --db p.db --init base.ckpt --data sft.jsonl --out s.ckpt --epochs 2 \
    --batch 8 --lr 2e-3 --name tiny-sft
contains "$OUT" "val loss"
contains "$ERR" "held out"
[ "$(sql p.db "select kind from models where name='tiny-sft'")" = sft ] || die "not registered as sft"
[ "$(sql p.db "select p.name from models m join models p on p.id = m.parent_id where m.name='tiny-sft'")" = base ] ||
    die "parent is not the init model"
[ "$(sql p.db "select status from runs where kind='sft'")" = done ] || die "run not done"
[ "$(sql p.db "select count(*) from metrics where name='val_loss'")" -ge 10 ] || die "val_loss curve missing"
first=$(sql p.db "select value from metrics where name='val_loss' order by step limit 1")
last=$(sql p.db "select value from metrics where name='val_loss' order by step desc limit 1")
/usr/bin/python3 -c "import sys; sys.exit(0 if $last < $first - 0.2 else 1)" || die "val loss did not fall: $first -> $last"
expect_rc 0 "$RLHF" sample --model s.ckpt --max-tokens 5 --seed 1 "Human: hi"
# an existing checkpoint is not overwritten by accident
expect_rc 1 "$RLHF" sft --init base.ckpt --data sft.jsonl --out s.ckpt
contains "$ERR" "--resume"
# a resume on other data is refused with the reason
expect_rc 1 "$RLHF" sft --init base.ckpt --data chat.jsonl --out s.ckpt --resume
contains "$ERR" "changed"
# chat-style messages
expect_rc 0 "$RLHF" sft --init base.ckpt --data chat.jsonl --out c.ckpt --steps 3 --val-frac 0

# the store: top-ranked answers of imported comparisons, and a named model's demonstrations
expect_rc 0 "$RLHF" import --db p.db --format pairs prefs.jsonl
expect_rc 0 "$RLHF" sft --db p.db --init s.ckpt --data store --out st.ckpt --steps 4 --val-frac 0
contains "$ERR" "28 pairs (28 training, 0 held out, 1 skipped)"
[ "$(sql p.db "select p.name from models m join models p on p.id = m.parent_id where m.name='st.ckpt'")" = tiny-sft ] ||
    die "store run's parent is not the init model"
expect_rc 1 "$RLHF" sft --db p.db --init s.ckpt --data store --from-model human-demos --out d.ckpt
contains "$ERR" "human-demos"
expect_rc 0 "$RLHF" candidates import --db p.db demos.jsonl
expect_rc 0 "$RLHF" sft --db p.db --init s.ckpt --data store --from-model human-demos --out d.ckpt --steps 2 --val-frac 0
contains "$ERR" "$(cat demos.n) pairs"

# Ctrl-C (SIGINT) mid-run: saves, marks the run interrupted, exits 1; --resume finishes it
interrupt_when "held out" "$RLHF" sft --db p.db --init base.ckpt --data sft.jsonl --out int.ckpt --epochs 50 --batch 4 \
    --save-every 1000
[ $RC -eq 1 ] || die "interrupted run exited $RC: $(cat int.err)"
contains "$(cat int.err)" "interrupted at step"
[ "$(sql p.db "select status from runs order by id desc limit 1")" = interrupted ] || die "run not marked interrupted"
expect_rc 0 "$RLHF" sft --db p.db --init base.ckpt --data sft.jsonl --out int.ckpt --epochs 50 --batch 4 \
    --save-every 1000 --resume --steps 40
[ "$(sql p.db "select status from runs order by id desc limit 1")" = done ] || die "resumed run not done"
[ "$(sql p.db "select kind from models where name='int.ckpt'")" = sft ] || die "resumed run not registered"

# kill -9 mid-run, rerun with --resume: same bytes as a run never interrupted
ARGS="--init base.ckpt --data sft.jsonl --epochs 3 --batch 4 --save-every 5 --eval-every 100 --threads 1 --seed 5"
expect_rc 0 "$RLHF" sft $ARGS --out ref.ckpt
kill9_after_checkpoint k.ckpt "$RLHF" sft $ARGS --out k.ckpt
grep -q "trained" k.out && echo "note: the run finished before the kill"
expect_rc 0 "$RLHF" sft $ARGS --out k.ckpt --resume
contains "$ERR" "resumed"
cmp ref.ckpt k.ckpt || die "resumed run differs from the uninterrupted one"
expect_rc 0 "$RLHF" sft $ARGS --out k.ckpt --resume
contains "$OUT" "up to date"
# a pretraining checkpoint is not an SFT run to resume
cp base.ckpt b2.ckpt
expect_rc 1 "$RLHF" sft $ARGS --out b2.ckpt --resume
contains "$ERR" "not a SFT checkpoint"
exit 0
