#!/bin/sh
# The next round of the loop on a project `make demo` made (InstructGPT's
# iterated rounds): candidates from the latest PPO policy, ranked (by simulated
# labelers here; rankings people made with `rlhf label` count too), a reward
# model retrained on every ranking so far, PPO again from the latest policy
# with SFT as the KL reference, and the new policy rated beside all before it.
#
#   sh samples/next_round.sh demo        # the next round (make demo runs round 2)
#   sh samples/next_round.sh demo 3      # round 3 (or goes on with it after an interruption)
#   RSFT=1 sh samples/next_round.sh demo # rejection sampling first (Llama 2): SFT on the
#                                        # best of 8 answers by the new RM, then PPO from it
#
# Each step is resumable, as in the demo.
set -eu
BUILD=${BUILD:-build}
RLHF=${RLHF:-"$(pwd)/$BUILD/rlhf"}
DIR=${1:-demo}
[ -f "$DIR/ppo.ckpt" ] || { echo "next_round: $DIR/ppo.ckpt is missing: run make demo first" >&2; exit 1; }
export RLHF_DB="$DIR/demo.db"
# the round: as given, else one more than the last finished one
n=${2:-2}
if [ -z "${2:-}" ]; then
    while [ -f "$DIR/round-$n.done" ]; do n=$((n + 1)); done
fi
case "$n" in *[!0-9]*|''|0|1) echo "next_round: the round is a number from 2 on, not '$n'" >&2; exit 2 ;; esac
if [ -f "$DIR/round-$n.done" ]; then
    echo "round $n: done before ($DIR/round-$n.done); sh samples/next_round.sh $DIR runs the next one"
    exit 0
fi
prev=ppo
[ "$n" -gt 2 ] && prev="ppo-r$((n - 1))"
step() { printf '\n\033[1m== round %s: %s\033[0m\n' "$n" "$*"; }

step "candidates from $prev on the training prompts"
"$RLHF" gen --model "$DIR/$prev.ckpt" -k 4 --split train --seed "$n" --unique

step "two more rankings per prompt, over every candidate so far"
over=$((2 * n))
"$RLHF" label --auto demo --as "sim-careful-r$n" --noise 0.05 --overlap "$over" --split train --seed "$((10 * n + 1))"
"$RLHF" label --auto demo --as "sim-hasty-r$n" --noise 0.2 --overlap "$over" --split train --seed "$((10 * n + 2))"

step "a reward model on all rankings (people's included)"
"$RLHF" train-rm --init "$DIR/sft.ckpt" --split train --val-frac 0.2 --epochs 2 --lr 1e-3 --margin 1 \
    --out "$DIR/rm-r$n.ckpt" --name "rm-r$n" --resume
"$RLHF" eval-rm --rm "$DIR/rm-r$n.ckpt" --split train --val-frac 0.2 --judge demo | tee "$DIR/eval-rm-r$n.txt"

if [ "${RSFT:-0}" = 1 ]; then
    step "rejection sampling: the best of 8 answers of $prev by the new RM, then SFT on them"
    "$RLHF" gen --model "$DIR/$prev.ckpt" --best-of 8 --rm "$DIR/rm-r$n.ckpt" -k 1 --split train \
        --seed "$n" --name "$prev-bo8-r$n"
    "$RLHF" sft --init "$DIR/$prev.ckpt" --data best-of --from-model "$prev-bo8-r$n" --epochs 1 \
        --lr 1e-4 --out "$DIR/rsft-r$n.ckpt" --name "rsft-r$n" --resume
    "$RLHF" eval --a "$DIR/sft.ckpt" --b "$DIR/rsft-r$n.ckpt" --rm "$DIR/rm-r$n.ckpt" \
        --ref "$DIR/sft.ckpt" --judge demo --split test --samples "${EVAL_N:-8}"
    prev="rsft-r$n"
fi

step "PPO from $prev, KL against SFT"
"$RLHF" ppo --policy "$DIR/$prev.ckpt" --ref "$DIR/sft.ckpt" --rm "$DIR/rm-r$n.ckpt" \
    --steps "${DEMO_PPO_STEPS:-60}" --beta 0.1 --kl-target 0.6 --kl-horizon 500 --lr 5e-5 --whiten-scores --epochs 1 \
    --out "$DIR/ppo-r$n.ckpt" --name "ppo-r$n" --resume

step "against SFT on the held-out prompts, and every policy rated"
"$RLHF" eval --a "$DIR/sft.ckpt" --b "$DIR/ppo-r$n.ckpt" --rm "$DIR/rm-r$n.ckpt" \
    --ref "$DIR/sft.ckpt" --judge demo --split test --samples "${EVAL_N:-8}"
"$RLHF" elo --by policy --labeler judge:demo
touch "$DIR/round-$n.done"
