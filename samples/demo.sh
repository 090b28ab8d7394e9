#!/bin/sh
# make demo: the whole InstructGPT loop on the embedded default, with
# simulated labelers, ending with figures that show whether it worked:
#
#   tokenizer -> pretrain -> SFT -> k=8 candidates -> 3 simulated labelers
#   -> agreement, Elo -> export -> reward model -> best-of-n, PPO, DPO
#   -> each evaluated against SFT on held-out prompts -> Elo of every policy
#
# Every stage is resumable: run it again after an interruption and it goes on
# where it stopped (DEMO_FRESH=1 starts over). DEMO_SCALE=small runs a
# shortened version in a few minutes (the end-to-end test uses it).
set -eu
BUILD=${BUILD:-build}
RLHF=${RLHF:-"$(pwd)/$BUILD/rlhf"}
DIR=${DEMO_DIR:-demo}
[ "${DEMO_FRESH:-0}" = 1 ] && rm -rf "$DIR"
mkdir -p "$DIR"
export RLHF_DB="$DIR/demo.db"
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
t0=$(date +%s)

if [ "${DEMO_SCALE:-full}" = small ]; then
    # tiny sizes: every stage runs and writes its outputs, nothing is learned well
    PRE="--config tiny --steps 40" SFT_EPOCHS=1 EVAL_LIMIT="--limit 8"
    PROMPTS="$DIR/prompts.jsonl"
    head -n 60 samples/prompts.jsonl > "$PROMPTS"
    PPO="--steps 3 --prompts 4 --samples 2" BON=2 BIASED=4 EVAL_N=1
    export DEMO_PPO_STEPS=3 DEMO_DPO_EPOCHS=1 DEMO_K="${DEMO_K:-4}"
else
    PRE="--config demo --steps ${DEMO_STEPS:-800} --lr 2e-3" SFT_EPOCHS=2 EVAL_LIMIT="" PROMPTS=samples/prompts.jsonl
    PPO="--steps ${DEMO_PPO_STEPS:-60}" BON=8 BIASED=40 EVAL_N=8
fi
# PPO's settings for this task (see README: what limits the gain)
PPO="$PPO --beta 0.1 --kl-target 0.6 --kl-horizon 500 --lr 5e-5 --whiten-scores --epochs 1"
# DPO's settings for this task (README: what moved the number)
DPO="--beta 0.3 --epochs ${DEMO_DPO_EPOCHS:-3} --token-kl 2"
# the words of the training data, for eval's unknown-word count (garbled words)
KNOWN=samples/corpus.txt,samples/sft.jsonl

step "1. A project: one SQLite file ($RLHF_DB) with the demo task's prompts"
"$RLHF" init "$RLHF_DB"
"$RLHF" prompts import "$PROMPTS"
"$RLHF" prompts list --limit 3
echo "(a quiz of small facts: sums, colours, capitals, opposites, animal sounds, plurals;"
echo " 'test' prompts are held out: asked in a phrasing the training data never uses)"

step "2. Pretraining: a tokenizer and a small transformer on samples/corpus.txt"
echo "(the corpus answers its questions right only part of the time: wrong facts, rude,"
echo " off-topic, hedged and run-on answers are mixed in, so feedback has something to fix)"
[ -f "$DIR/tok.bin" ] || "$RLHF" tokenizer train --vocab 512 --out "$DIR/tok.bin" samples/corpus.txt
"$RLHF" pretrain --corpus samples/corpus.txt --tokenizer "$DIR/tok.bin" $PRE \
    --out "$DIR/base.ckpt" --name base --resume

step "3. SFT: supervised fine-tuning on demonstrations (samples/sft.jsonl, also mixed)"
"$RLHF" sft --init "$DIR/base.ckpt" --data samples/sft.jsonl --epochs "$SFT_EPOCHS" \
    --out "$DIR/sft.ckpt" --name sft --resume

# 8 answers per prompt, not 4: DPO's answers stay as varied (README: what moved the number)
K=${DEMO_K:-8}
step "4. Candidates: k = $K distinct answers per training prompt from the SFT model"
echo "(and 2 from the pretrained model, so the labelers' rankings also rate the two models)"
"$RLHF" gen --model "$DIR/sft.ckpt" -k "$K" --split train --seed 1 --unique
"$RLHF" gen --model "$DIR/base.ckpt" -k 2 --split train --seed 2 --unique
"$RLHF" candidates list --prompt 1

step "5. Three simulated labelers rank them, two per prompt (overlap 2)"
echo "(careful: the task's rule with a little noise, on every prompt; biased: prefers long"
echo " answers whatever they say, on a few; hasty: the rule with more noise, on the rest)"
"$RLHF" label --auto demo --as sim-careful --noise 0.05 --overlap 2 --split train --seed 1
"$RLHF" label --auto longer --as sim-biased --noise 0.1 --overlap 2 --split train --seed 3 --limit "$BIASED"
"$RLHF" label --auto demo --as sim-hasty --noise 0.2 --overlap 2 --split train --seed 2

step "6. How much do the labelers agree? How do they rate the answers?"
"$RLHF" agreement
"$RLHF" elo --split train --method bt --bootstrap 100

step "7. The comparisons as a dataset (TRL's preference format)"
"$RLHF" export --format pairs --split train --out "$DIR/pairs.jsonl"
echo "$(wc -l < "$DIR/pairs.jsonl") pairs in $DIR/pairs.jsonl; first one:"
head -n 1 "$DIR/pairs.jsonl"

step "8. A reward model, from the SFT model, trained on the rankings (20% held out)"
echo "(K-wise loss over every ranked pair, with a margin from the labelers' 1-7 scores)"
# (the stages that read the rankings run once: round 2 below adds rankings, and a
# rerun of the demo must not take those for round 1's)
if [ ! -f "$DIR/.rm.done" ]; then
    "$RLHF" train-rm --init "$DIR/sft.ckpt" --split train --val-frac 0.2 --epochs 2 --lr 1e-3 --margin 1 \
        --out "$DIR/rm.ckpt" --name rm --resume
    "$RLHF" eval-rm --rm "$DIR/rm.ckpt" --split train --val-frac 0.2 --judge demo > "$DIR/eval-rm.txt"
    touch "$DIR/.rm.done"
fi
cat "$DIR/eval-rm.txt"

step "9. Improving the policy: PPO, RLOO, GRPO, DPO, best-of-n"
echo "-- PPO: the RM's score minus a KL penalty against SFT, on the training prompts"
"$RLHF" ppo --policy "$DIR/sft.ckpt" --rm "$DIR/rm.ckpt" $PPO --out "$DIR/ppo.ckpt" --name ppo --resume
echo "-- RLOO and GRPO: the same rollouts and rewards, no critic: each answer against the"
echo "   other answers to its prompt"
for a in rloo grpo; do
    "$RLHF" ppo --policy "$DIR/sft.ckpt" --rm "$DIR/rm.ckpt" $PPO --advantage $a --out "$DIR/$a.ckpt" \
        --name $a --resume 2>&1 | tail -n 2
done
echo "-- DPO: straight from the ranked pairs, no reward model (beta 0.3, 3 epochs, a token-level"
echo "   KL to SFT against garbled words: README)"
if [ ! -f "$DIR/.dpo.done" ]; then
    # shellcheck disable=SC2086
    "$RLHF" dpo --policy "$DIR/sft.ckpt" --data store --split train $DPO --out "$DIR/dpo.ckpt" --name dpo --resume
    touch "$DIR/.dpo.done"
fi
echo "-- best-of-$BON: sample $BON answers from SFT, keep the one the RM scores highest (no training)"
"$RLHF" sample --model "$DIR/sft.ckpt" --best-of "$BON" --rm "$DIR/rm.ckpt" "What is the capital of Peru?"

# final_row EVAL-ARGS...: one row of final.tsv, side B (--b ...) against SFT: under the
# rule (win, interval, reward, KL) and by the fact alone (win, interval, both shares
# correct, both sides' distinct answers per prompt, template text and unknown words)
final_row() {
    # shellcheck disable=SC2086
    win=$("$RLHF" eval --a "$DIR/sft.ckpt" "$@" --rm "$DIR/rm.ckpt" --ref "$DIR/sft.ckpt" \
        --judge demo --split test --samples $EVAL_N $EVAL_LIMIT --row 2>/dev/null)
    # shellcheck disable=SC2086
    cor=$("$RLHF" eval --a "$DIR/sft.ckpt" "$@" --rm "$DIR/rm.ckpt" --judge correct --judge-name judge:correct \
        --split test --samples $EVAL_N $EVAL_LIMIT --known-words "$KNOWN" --row 2>/dev/null)
    printf '%s\t%s\n' "$(echo "$win" | cut -f1-6)" "$(echo "$cor" | cut -f2-4,7-14)" >> "$DIR/final.tsv"
}

step "10. Each against SFT on the held-out prompts, judged by the task's rule without noise"
: > "$DIR/final.tsv"
for side in ppo rloo grpo dpo bo; do
    if [ "$side" = bo ]; then b="--b $DIR/sft.ckpt --b-best-of $BON"; else b="--b $DIR/$side.ckpt"; fi
    # shellcheck disable=SC2086
    "$RLHF" eval --a "$DIR/sft.ckpt" $b --rm "$DIR/rm.ckpt" --ref "$DIR/sft.ckpt" \
        --judge demo --split test --samples $EVAL_N $EVAL_LIMIT
    # shellcheck disable=SC2086
    final_row $b
done

step "11. Every policy, rated by the judge's rankings on the held-out prompts"
"$RLHF" elo --by policy --labeler judge:demo

step "12. The next round, as InstructGPT did: candidates from PPO ranked, a new RM, PPO again"
RLHF="$RLHF" EVAL_N="$EVAL_N" sh samples/next_round.sh "$DIR" 2
final_row --b "$DIR/ppo-r2.ckpt"

step "The loop, in figures"
rm_acc=$(sed -n 's/^ *rule demo (no noise) *\([0-9.]*%\) *\(\[[^]]*\]\).*/\1 \2/p' "$DIR/eval-rm.txt")
lab=$(sed -n 's/^ *labelers agree *\([0-9.]*%\).*/\1/p' "$DIR/eval-rm.txt")
rm_lab=$(sed -n 's/^ *accuracy *\([0-9.]*%\).*/\1/p' "$DIR/eval-rm.txt")
echo "reward model, held-out prompts: ${rm_acc:-?} agreement with the task's rule (no noise);"
echo "  ${rm_lab:-?} with the labelers' own rankings, where the labelers agree with each other ${lab:-?}"
rm2=$(sed -n 's/^ *rule demo (no noise) *\([0-9.]*%\) *\(\[[^]]*\]\).*/\1 \2/p' "$DIR/eval-rm-r2.txt" 2>/dev/null)
echo "round 2's reward model (on the rankings of both rounds): ${rm2:-?} with the rule"
echo
printf '%-12s %-33s | %s\n' "" "by the task's rule:" "by the fact alone:"
printf '%-12s %-18s %7s %6s | %-18s %s\n' "vs SFT" "win rate [95% CI]" "reward" "KL" "win rate [95% CI]" "correct: SFT -> it"
awk -F '\t' '
function pct(x) { return x == "-" ? "   -" : sprintf("%4.1f", 100 * x) }
{
    name = $1; if (name ~ /\+bo/) name = "best-of-n"; else if (name == "ppo") name = "PPO"; else if (name == "dpo") name = "DPO"
    else if (name == "rloo") name = "RLOO"; else if (name == "grpo") name = "GRPO"
    else if (name == "ppo-r2") name = "PPO round 2"
    printf "%-12s %s%% [%s, %s] %7.3f %6.3f | %s%% [%s, %s] %5.0f%% -> %3.0f%%\n", name, pct($2), pct($3), pct($4), $5, $6,
        pct($7), pct($8), pct($9), 100*$10, 100*$11
    names[NR] = name; d[NR] = $13; l[NR] = $15; u[NR] = $17; sd = $12; sl = $14; su = $16
}
END {
    printf "\n%-12s %20s %15s %15s\n", "answers", "distinct per prompt", "template text", "unknown words"
    printf "%-12s %20.2f %14s%% %14s%%\n", "SFT", sd, pct(sl), pct(su)
    for (i = 1; i <= NR; i++) printf "%-12s %20.2f %14s%% %14s%%\n", names[i], d[i], pct(l[i]), pct(u[i])
}' "$DIR/final.tsv"
echo "(win rate: over $EVAL_N samples per held-out prompt and side, every sample counted (an answer"
echo " drawn twice weighs twice), the share of sample pairs where the judge prefers the policy's"
echo " answer to SFT's, ties half, averaged over prompts; 95% CI: bootstrap over prompts. The task's"
echo " rule weighs the fact 0.6 and politeness, topic and form 0.4; the fact alone ties every pair"
echo " of two right or two wrong answers. KL: sampled, nats per answer; correct: the share of"
echo " samples that state the right fact; template text: samples holding \"Human:\" or \"Assistant:\";"
echo " unknown words: samples with a word that neither the corpus nor the SFT data has)"
"$RLHF" report --out "$DIR/report.html" >/dev/null && echo "charts of every run: $DIR/report.html"

# A batch for a person: fresh prompts (samples/prompts_person.jsonl), k = 4
# answers each from the latest policy, ranked by no one yet. Their own split
# (person): the trainers' resume checks see the train split unchanged.
"$RLHF" prompts import samples/prompts_person.jsonl >/dev/null
ids=$("$RLHF" prompts list --source person | awk 'NR > 1 && $3 == 0 { printf "%s%s", s, $1; s = "," }')
[ -z "$ids" ] || "$RLHF" gen --model "$DIR/ppo-r2.ckpt" -k 4 --ids "$ids" --seed 7 --unique >/dev/null

# Part of the SFT data written in the tool, as InstructGPT's labelers wrote
# theirs: two simulated writers answer the person prompts (each starts from the
# candidate its rule likes best and edits it into a clean answer; the hasty one
# sometimes only trims it), and an SFT round trains on what they wrote. Their
# answers join the person batch, so a person's ranking compares them with the
# model's. (Person split: nothing above reads it, so no figure changes.)
step "Demonstrations written in the tool: two simulated writers, then SFT on their answers"
"$RLHF" label --task write --auto demo --as sim-writer --overlap 2 --split person --seed 4
"$RLHF" label --task write --auto demo --as sim-writer-hasty --noise 0.5 --overlap 2 --split person --seed 5
"$RLHF" export --format sft --split person --out "$DIR/demos_sft.jsonl"
echo "first one (TRL's prompt-completion form):"
head -n 1 "$DIR/demos_sft.jsonl"
"$RLHF" sft --init "$DIR/sft.ckpt" --data store --split person --no-ranked --val-frac 0 --epochs 2 \
    --out "$DIR/sft-written.ckpt" --name sft-written --resume 2>&1 | grep -E '^sft: |demonstrations|saved|wrote' | head -n 4
waiting=$("$RLHF" prompts list --source person | awk 'NR > 1 && $3 >= 2 && $4 == 0' | wc -l)

printf '\nDone in %ss.\n\n' "$(( $(date +%s) - t0 ))"
printf '%s fresh prompts are waiting for a person, with 4 answers each from the latest policy\nand 2 written by the simulated writers. Rank them by hand, beside the simulated labelers:\n\n' "$waiting"
printf '    %s label --db %s --as YOUR_NAME --split person\n\n' "$BUILD/rlhf" "$RLHF_DB"
printf "(? lists the keys; press a digit for the focused answer's place, or type an order\n"
printf " like 2>1=3>4 and press Enter; w writes your own answer in \$EDITOR, W edits the\n"
printf " focused one.) Or write answers to prompts nobody has answered yet:\n\n"
printf '    %s label --db %s --as YOUR_NAME --task write --split person --overlap 3\n\n' "$BUILD/rlhf" "$RLHF_DB"
printf "Then the next round on them: candidates from the latest PPO policy, ranked, a new RM,\nPPO again:\n\n"
printf '    sh samples/next_round.sh %s\n' "$DIR"
