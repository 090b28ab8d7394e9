#!/bin/sh
# make demo: the whole InstructGPT loop on the embedded default, with
# simulated labelers, ending with figures that show whether it worked:
#
#   tokenizer -> pretrain -> SFT -> k=4 candidates -> 3 simulated labelers
#   -> agreement, Elo -> export -> reward model -> best-of-n, PPO, DPO
#   -> each evaluated against SFT on held-out prompts -> Elo of every policy
#
# Every stage is resumable: run it again after an interruption and it goes on
# where it stopped (DEMO_FRESH=1 starts over). DEMO_SCALE=small runs a
# shortened version (the end-to-end test uses it).
set -eu
BUILD=${BUILD:-build}
RLHF="$(pwd)/$BUILD/rlhf"
DIR=${DEMO_DIR:-demo}
[ "${DEMO_FRESH:-0}" = 1 ] && rm -rf "$DIR"
mkdir -p "$DIR"
export RLHF_DB="$DIR/demo.db"
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
t0=$(date +%s)

# sizes: the full demo, or a few minutes' worth for the test
if [ "${DEMO_SCALE:-full}" = small ]; then
    PRE_STEPS=60 SFT_EPOCHS=1 TRAIN_PROMPTS=40 EVAL_PROMPTS=12 PPO_STEPS=4 BON=4
else
    PRE_STEPS=${DEMO_STEPS:-800} SFT_EPOCHS=2 TRAIN_PROMPTS=0 EVAL_PROMPTS=0 PPO_STEPS=${DEMO_PPO_STEPS:-60} BON=8
fi
LIMIT=""
[ "$TRAIN_PROMPTS" -gt 0 ] && LIMIT="--limit $TRAIN_PROMPTS"
ELIMIT=""
[ "$EVAL_PROMPTS" -gt 0 ] && ELIMIT="--limit $EVAL_PROMPTS"

step "1. A project: one SQLite file ($RLHF_DB)"
"$RLHF" init "$RLHF_DB"
"$RLHF" prompts import samples/prompts.jsonl
"$RLHF" prompts list --limit 3

step "2. Pretraining: a tokenizer and a small transformer on samples/corpus.txt"
echo "(the corpus answers its questions right only part of the time: wrong facts, rude,"
echo " off-topic and run-on answers are mixed in, so there is something for feedback to fix)"
[ -f "$DIR/tok.bin" ] || "$RLHF" tokenizer train --vocab 512 --out "$DIR/tok.bin" samples/corpus.txt
"$RLHF" pretrain --corpus samples/corpus.txt --tokenizer "$DIR/tok.bin" --config demo \
    --steps "$PRE_STEPS" --out "$DIR/base.ckpt" --name base --resume

step "3. SFT: supervised fine-tuning on demonstrations (samples/sft.jsonl)"
"$RLHF" sft --init "$DIR/base.ckpt" --data samples/sft.jsonl --epochs "$SFT_EPOCHS" \
    --out "$DIR/sft.ckpt" --name sft --resume

step "4. Candidates: k = 4 answers per training prompt from the SFT model"
"$RLHF" gen --model "$DIR/sft.ckpt" -k 4 --split train --seed 1 $LIMIT
"$RLHF" candidates list --prompt 2

step "5. Three simulated labelers rank them, two per prompt (overlap 2)"
echo "(careful: the task's rule with a little noise; hasty: much noise; biased: prefers long answers)"
n=$("$RLHF" prompts list --split train --json | grep -c '"id"' || true)
[ "$TRAIN_PROMPTS" -gt 0 ] && n=$TRAIN_PROMPTS
"$RLHF" label --auto demo --as sim-careful --noise 0.05 --overlap 2 --split train --seed 1 --limit $(( n * 8 / 10 ))
"$RLHF" label --auto demo --as sim-hasty --noise 0.3 --overlap 2 --split train --seed 2 --limit $(( n * 7 / 10 ))
"$RLHF" label --auto longer --as sim-biased --noise 0.1 --overlap 2 --split train --seed 3

step "6. How much do the labelers agree? How do they rate the answers?"
"$RLHF" agreement
"$RLHF" elo --by model

step "7. The comparisons as a dataset (TRL's preference format)"
"$RLHF" export --format pairs --out "$DIR/pairs.jsonl" --val-frac 0.2
echo "$(wc -l < "$DIR/pairs.jsonl") training pairs in $DIR/pairs.jsonl; first one:"
head -n 1 "$DIR/pairs.jsonl"

step "8. A reward model from the SFT model, trained on the rankings"
"$RLHF" train-rm --init "$DIR/sft.ckpt" --out "$DIR/rm.ckpt" --name rm --val-frac 0.2 --resume
"$RLHF" eval-rm --rm "$DIR/rm.ckpt" --val-frac 0.2

step "9. Improving the policy three ways"
echo "-- PPO: the RM's score minus a KL penalty against SFT"
"$RLHF" ppo --policy "$DIR/sft.ckpt" --rm "$DIR/rm.ckpt" --steps "$PPO_STEPS" \
    --out "$DIR/ppo.ckpt" --name ppo --resume
echo "-- DPO: straight from the preference pairs, no reward model"
"$RLHF" dpo --policy "$DIR/sft.ckpt" --data store --out "$DIR/dpo.ckpt" --name dpo --resume
echo "-- best-of-$BON: sample $BON answers from SFT, keep the one the RM likes best (no training)"

step "10. Each against SFT on held-out prompts, judged by the noise-free rule"
for side in "ppo.ckpt" "dpo.ckpt" "bo"; do
    if [ "$side" = bo ]; then
        "$RLHF" eval --a "$DIR/sft.ckpt" --b "$DIR/sft.ckpt" --b-best-of "$BON" --rm "$DIR/rm.ckpt" \
            --judge demo --ref "$DIR/sft.ckpt" --split test $ELIMIT --json > "$DIR/eval-bo.json"
    else
        "$RLHF" eval --a "$DIR/sft.ckpt" --b "$DIR/$side" --rm "$DIR/rm.ckpt" \
            --judge demo --ref "$DIR/sft.ckpt" --split test $ELIMIT --json > "$DIR/eval-${side%.ckpt}.json"
    fi
done

step "11. Every policy rated by the judge's rankings"
"$RLHF" elo --by policy --labeler judge:demo

step "The loop, in figures"
"$RLHF" demo-report --dir "$DIR" 2>/dev/null || cat "$DIR"/eval-*.json

printf '\nDone in %ss.\n\nRank by hand on the same project:\n\n' "$(( $(date +%s) - t0 ))"
printf '    %s label --db %s --as YOUR_NAME\n\n' "$BUILD/rlhf" "$RLHF_DB"
printf "(? lists the keys; type an order like 2>1=3>4 and press Enter.)\n"
printf "Then the next round on your rankings (and the simulated ones):\n\n"
printf '    sh samples/next_round.sh %s\n' "$DIR"
