#!/bin/sh
# rlhf dpo: trains on a pairs file and on the store's rankings with each loss,
# registers kind policy with its parent, logs TRL's metrics; raises the
# held-out margin; bad flags exit 2, bad input exits 1 naming the place and
# writes nothing; a reward model is refused as the policy; kill -9 then
# --resume ends bit-identical to an uninterrupted run.
. "$ROOT/tests/e2e/lib.sh"
CORPUS="$ROOT/samples/corpus.txt"
expect_rc 0 "$RLHF" tokenizer train --vocab 300 --out tok.bin "$CORPUS"
expect_rc 0 "$RLHF" init p.db
expect_rc 0 "$RLHF" pretrain --db p.db --corpus "$CORPUS" --tokenizer tok.bin --config tiny \
    --steps 60 --batch 4 --lr 3e-3 --out base.ckpt --name base
expect_rc 0 "$RLHF" pretrain --corpus "$CORPUS" --tokenizer tok.bin --config tiny --dim 64 \
    --steps 2 --out other.ckpt
# chosen: the corpus's answer; rejected: its words in reverse order (pairs.jsonl,
# a pattern that generalises to held-out prompts) or another prompt's answer (few.jsonl)
/usr/bin/python3 "$ROOT/tests/e2e/make_pairs.py" "$CORPUS" 240 --unique pairs.jsonl=reversed few.jsonl=next11:0:40

# usage errors
expect_rc 2 "$RLHF" dpo --data pairs.jsonl --out d.ckpt
contains "$ERR" "--policy"
expect_rc 2 "$RLHF" dpo --policy base.ckpt --out d.ckpt
contains "$ERR" "no data: give --db PATH"
expect_rc 2 "$RLHF" dpo --policy base.ckpt --data pairs.jsonl
contains "$ERR" "--out"
expect_rc 2 "$RLHF" dpo --policy base.ckpt --data pairs.jsonl --out d.ckpt --loss kto
contains "$ERR" "kto"
expect_rc 2 "$RLHF" dpo --policy base.ckpt --data pairs.jsonl --out d.ckpt --loss ipo --label-smoothing 0.1
contains "$ERR" "sigmoid"
expect_rc 2 "$RLHF" dpo --policy base.ckpt --data pairs.jsonl --out d.ckpt --beta 0
contains "$ERR" "--beta"
expect_rc 2 "$RLHF" dpo --policy base.ckpt --data pairs.jsonl --out d.ckpt --split train
contains "$ERR" "--data store"
expect_rc 0 "$RLHF" dpo --help
contains "$OUT" "rewards/margins"
contains "$OUT" "--label-smoothing"

# bad input: named, nothing written
expect_rc 1 "$RLHF" dpo --policy base.ckpt --data missing.jsonl --out d.ckpt
contains "$ERR" "missing.jsonl"
printf '{"prompt":"a","chosen":"b","rejected":"c"}\n{"prompt":"a","chosen":"b"}\n' > bad.jsonl
expect_rc 1 "$RLHF" dpo --policy base.ckpt --data bad.jsonl --out d.ckpt
contains "$ERR" "bad.jsonl:2"
expect_rc 1 "$RLHF" dpo --db p.db --policy base.ckpt --data store --out d.ckpt
contains "$ERR" "no preference pairs"
[ ! -e d.ckpt ] || die "a failed run left a checkpoint"
if "$RLHF" help train-rm >/dev/null 2>&1; then
    expect_rc 0 "$RLHF" import --db p.db --format pairs few.jsonl
    if "$RLHF" train-rm --db p.db --init base.ckpt --out rm.ckpt --steps 1 >/dev/null 2>&1; then
        expect_rc 1 "$RLHF" dpo --policy rm.ckpt --data pairs.jsonl --out d.ckpt
        contains "$ERR" "reward model"
    fi
fi

# a recorded run on the file: the held-out margin rises, TRL's metrics are logged
expect_rc 0 "$RLHF" dpo --db p.db --policy base.ckpt --data pairs.jsonl --out d.ckpt --epochs 2 \
    --lr 1e-3 --beta 0.5 --val-frac 0.1 --name tiny-dpo
contains "$OUT" "held out"
[ "$(sql p.db "select kind from models where name='tiny-dpo'")" = policy ] || die "not registered as policy"
[ "$(sql p.db "select p.name from models m join models p on p.id = m.parent_id where m.name='tiny-dpo'")" = base ] ||
    die "parent is not the policy it started from"
[ "$(sql p.db "select status from runs where kind='dpo'")" = done ] || die "run not done"
for m in loss rewards/chosen rewards/rejected rewards/margins rewards/accuracies logps/chosen logps/rejected \
         eval/loss eval/rewards/margins eval/rewards/accuracies; do
    [ "$(sql p.db "select count(*) from metrics where name='$m'")" -gt 0 ] || die "metric $m missing"
done
margin=$(sql p.db "select value from metrics where name='eval/rewards/margins' order by step desc limit 1")
acc=$(sql p.db "select value from metrics where name='eval/rewards/accuracies' order by step desc limit 1")
/usr/bin/python3 -c "import sys; sys.exit(0 if $margin > 1 and $acc > 0.9 else 1)" ||
    die "held-out margin $margin, accuracy $acc: DPO did not separate chosen from rejected"
expect_rc 0 "$RLHF" sample --model d.ckpt --max-tokens 5 --seed 1 "Human: hi"
# each loss trains
for l in ipo hinge; do
    expect_rc 0 "$RLHF" dpo --policy base.ckpt --data few.jsonl --out "$l.ckpt" --loss $l --steps 3
done
expect_rc 0 "$RLHF" dpo --policy base.ckpt --data few.jsonl --out ls.ckpt --label-smoothing 0.1 --steps 3
# HH-RLHF transcripts
printf '%s\n' '{"chosen":"\n\nHuman: hi\n\nAssistant: Hello there.","rejected":"\n\nHuman: hi\n\nAssistant: go away"}' \
    '{"chosen":"\n\nHuman: 2+2?\n\nAssistant: 4.","rejected":"\n\nHuman: 2+2?\n\nAssistant: 5."}' > hh.jsonl
expect_rc 0 "$RLHF" dpo --policy base.ckpt --data hh.jsonl --out hh.ckpt --steps 2 --val-frac 0
contains "$ERR" "2 pairs"
# the store: imported comparisons as rankings
expect_rc 0 "$RLHF" import --db p.db --format pairs few.jsonl
expect_rc 0 "$RLHF" dpo --db p.db --policy base.ckpt --data store --out st.ckpt --steps 3
contains "$ERR" "40 pairs"
expect_rc 1 "$RLHF" dpo --db p.db --policy base.ckpt --data store --labeler nobody --out st2.ckpt
contains "$ERR" "no preference pairs"

# an existing checkpoint is not overwritten by accident; resumes on other data or another model are refused
expect_rc 1 "$RLHF" dpo --policy base.ckpt --data few.jsonl --out ls.ckpt
contains "$ERR" "--resume"
expect_rc 1 "$RLHF" dpo --policy base.ckpt --data few.jsonl --out ls.ckpt --resume --beta 0.2 --label-smoothing 0.1
contains "$ERR" "changed"
expect_rc 1 "$RLHF" dpo --policy other.ckpt --data few.jsonl --out ls.ckpt --resume --label-smoothing 0.1
contains "$ERR" "config"
cp base.ckpt notdpo.ckpt
expect_rc 1 "$RLHF" dpo --policy base.ckpt --data few.jsonl --out notdpo.ckpt --resume
contains "$ERR" "not a DPO checkpoint"

# kill -9 mid-run, rerun with --resume: same bytes as a run never interrupted
ARGS="--policy base.ckpt --data pairs.jsonl --epochs 2 --batch 4 --save-every 5 --eval-every 100 --threads 1 --seed 5"
expect_rc 0 "$RLHF" dpo $ARGS --out ref.ckpt
kill9_after_checkpoint k.ckpt "$RLHF" dpo $ARGS --out k.ckpt
grep -q "trained" k.out && echo "note: the run finished before the kill"
expect_rc 0 "$RLHF" dpo $ARGS --out k.ckpt --resume
contains "$ERR" "resumed"
not_contains "$ERR" "reference log-probabilities"
cmp ref.ckpt k.ckpt || die "resumed run differs from the uninterrupted one"

# --token-kl: the reference's distributions again from --policy on a resume, the
# same bytes as a run never interrupted; another G is a changed run
expect_rc 0 "$RLHF" dpo $ARGS --token-kl 1 --out tref.ckpt
contains "$ERR" "distributions"
cmp -s ref.ckpt tref.ckpt && die "--token-kl changed nothing"
kill9_after_checkpoint tk.ckpt "$RLHF" dpo $ARGS --token-kl 1 --out tk.ckpt
expect_rc 0 "$RLHF" dpo $ARGS --token-kl 1 --out tk.ckpt --resume
cmp tref.ckpt tk.ckpt || die "a resumed --token-kl run differs from the uninterrupted one"
expect_rc 1 "$RLHF" dpo $ARGS --token-kl 2 --out tk.ckpt --resume
contains "$ERR" "changed"
expect_rc 2 "$RLHF" dpo $ARGS --token-kl -1 --out tk2.ckpt
exit 0
