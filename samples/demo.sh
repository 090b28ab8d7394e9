#!/bin/sh
# make demo: the loop end to end on the embedded default, with simulated
# labelers: a tokenizer and a small model trained on samples/, candidates from
# two checkpoints, rankings by three simulated labelers, agreement, ratings and
# an exported comparison set. Every stage is resumable: run it again after an
# interruption and it goes on (DEMO_FRESH=1 starts over).
set -eu
BUILD=${BUILD:-build}
RLHF="$(pwd)/$BUILD/rlhf"
DIR=${DEMO_DIR:-demo}
STEPS=${DEMO_STEPS:-600}
[ "${DEMO_FRESH:-0}" = 1 ] && rm -rf "$DIR"
mkdir -p "$DIR"
export RLHF_DB="$DIR/demo.db"
has() { "$RLHF" help "$1" >/dev/null 2>&1; }
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
t0=$(date +%s)

step "1. A project: one SQLite file ($RLHF_DB)"
"$RLHF" init "$RLHF_DB"
"$RLHF" prompts import samples/prompts.jsonl
"$RLHF" prompts list --limit 3

step "2. A tokenizer and a small transformer trained on samples/corpus.txt"
[ -f "$DIR/tok.bin" ] || "$RLHF" tokenizer train --vocab 512 --out "$DIR/tok.bin" samples/corpus.txt
# a short run (a weaker model) and a longer one, to compare below
"$RLHF" pretrain --corpus samples/corpus.txt --tokenizer "$DIR/tok.bin" --config demo \
    --steps 120 --out "$DIR/early.ckpt" --name early --resume
"$RLHF" pretrain --corpus samples/corpus.txt --tokenizer "$DIR/tok.bin" --config demo \
    --steps "$STEPS" --out "$DIR/base.ckpt" --name base --resume
"$RLHF" sample --model "$DIR/base.ckpt" --temperature 0 --max-tokens 24 "Human: What is the capital of France?
Assistant:"

step "3. Candidates: 2 answers per training prompt from each checkpoint"
"$RLHF" gen --model "$DIR/early.ckpt" -k 2 --split train --seed 1 --unique
"$RLHF" gen --model "$DIR/base.ckpt" -k 2 --split train --seed 2 --unique
"$RLHF" candidates list --prompt 2

if has label; then
    step "4. Three simulated labelers rank every prompt (overlap 3)"
    "$RLHF" label --auto demo --as sim-careful --noise 0.05 --overlap 3 --seed 1
    "$RLHF" label --auto demo --as sim-hasty --noise 0.4 --overlap 3 --seed 2
    "$RLHF" label --auto longer --as sim-biased --noise 0.1 --overlap 3 --seed 3
fi

if has agreement; then
    step "5. How much do the labelers agree?"
    "$RLHF" agreement
fi

if has elo; then
    step "6. Ratings of the two checkpoints from the rankings"
    "$RLHF" elo
    echo "-- by the careful labeler alone (Bradley-Terry, 95% bootstrap intervals):"
    "$RLHF" elo --labeler sim-careful --method bt --bootstrap 100
    echo "-- by the biased labeler alone (it prefers longer answers, whatever they say):"
    "$RLHF" elo --labeler sim-biased --method bt --bootstrap 100
fi

if has export; then
    step "7. The comparisons as datasets"
    "$RLHF" export --format pairs --out "$DIR/pairs.jsonl"
    "$RLHF" export --format hh --out "$DIR/hh.jsonl"
    echo "$(wc -l < "$DIR/pairs.jsonl") pairs in $DIR/pairs.jsonl; first one:"
    head -n 1 "$DIR/pairs.jsonl"
fi

step "The project now"
"$RLHF" status
printf '\nDone in %ss. Rank by hand on the same project:\n\n' "$(( $(date +%s) - t0 ))"
printf '    %s label --db %s --as YOUR_NAME\n\n' "$BUILD/rlhf" "$RLHF_DB"
printf "(? lists the keys; type an order like 2>1=3>4 and press Enter.)\n"
