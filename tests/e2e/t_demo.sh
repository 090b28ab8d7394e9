# A shortened `make demo` (DEMO_SCALE=small: the tiny model, a few prompts and
# steps) end to end: every stage runs, writes its outputs and metrics, the
# final table is complete, a rerun resumes instead of starting over, and the
# next round runs on the result.
. "$ROOT/tests/e2e/lib.sh"
D="$TMP/demo"
cd "$ROOT"
DEMO_SCALE=small DEMO_DIR="$D" sh samples/demo.sh > "$TMP/demo.out" 2> "$TMP/demo.err" ||
    die "demo failed: $(tail -n 30 "$TMP/demo.err")"
OUT=$(cat "$TMP/demo.out")
for f in tok.bin base.ckpt sft.ckpt rm.ckpt ppo.ckpt dpo.ckpt rm-r2.ckpt ppo-r2.ckpt pairs.jsonl eval-rm.txt final.tsv report.html \
         demos_sft.jsonl sft-written.ckpt; do
    [ -s "$D/$f" ] || die "the demo did not write $f"
done
for s in "1. A project" "2. Pretraining" "3. SFT" "4. Candidates" "5. Three simulated labelers" \
         "6. How much do the labelers agree" "7. The comparisons" "8. A reward model" \
         "9. Improving the policy" "10. Each against SFT" "11. Every policy" "12. The next round" \
         "The loop, in figures" "Demonstrations written in the tool"; do
    contains "$OUT" "$s"
done
# the final table: PPO, RLOO, GRPO, DPO, best-of-n and PPO round 2, each with every figure:
# under the rule (win, interval, reward, KL), by the fact alone (win, interval, SFT's and the
# policy's share correct), and both sides' distinct answers, template text and unknown words
[ "$(wc -l < "$D/final.tsv")" -eq 6 ] || die "final.tsv: $(cat "$D/final.tsv")"
awk -F '\t' 'NF != 17 { exit 1 } { for (i = 2; i <= 17; i++) if ($i == "" || $i == "-") exit 1 }' "$D/final.tsv" ||
    die "incomplete final table: $(cat "$D/final.tsv")"
for row in "PPO " "RLOO " "GRPO " "DPO " "best-of-n " "PPO round 2 "; do contains "$OUT" "$row"; done
contains "$OUT" "the fact alone:"
contains "$OUT" "distinct per prompt"
[ "$(echo "$OUT" | grep -c '^SFT  ')" = 1 ] || die "no SFT row in the answers' table"
contains "$OUT" "reward model, held-out prompts:"
not_contains "$OUT" "held-out prompts: ? "
not_contains "$OUT" "both rounds): ? "
contains "$OUT" "label --db"
# the closing hint leads to work: fresh prompts with k = 4 answers, ranked by
# no one, as many as it says, and the label command it prints offers one of them
n=$(echo "$OUT" | sed -n 's/^\([0-9]*\) fresh prompts are waiting.*/\1/p')
[ -n "$n" ] && [ "$n" -gt 0 ] || die "the closing hint names no prompts waiting: $(echo "$OUT" | tail -n 12)"
w=$(sql "$D/demo.db" "SELECT count(*) FROM prompts p WHERE p.source = 'person' AND p.split = 'person'
    AND (SELECT count(*) FROM candidates c WHERE c.prompt_id = p.id) BETWEEN 2 AND 6
    AND NOT EXISTS (SELECT 1 FROM rankings r WHERE r.prompt_id = p.id)")
[ "$w" = "$n" ] || die "the hint says $n prompts wait, the project has $w"
contains "$OUT" "--as YOUR_NAME --split person"
# part of the SFT data written in the tool: two writers on the person prompts, then SFT on it
[ "$(sql "$D/demo.db" "SELECT count(DISTINCT labeler_id) FROM demonstrations")" = 2 ] || die "two simulated writers"
contains "$OUT" "of the pairs are demonstrations labelers wrote"
[ "$(sql "$D/demo.db" "SELECT kind FROM models WHERE name = 'sft-written'")" = sft ] || die "sft-written registered"
# every training stage recorded its run and its curves
db="$D/demo.db"
for k in pretrain sft rm ppo dpo eval; do
    n=$(sql "$db" "SELECT count(*) FROM runs r JOIN metrics m ON m.run_id = r.id WHERE r.kind = '$k'")
    [ "$n" -gt 0 ] || die "no metrics for a $k run"
    st=$(sql "$db" "SELECT group_concat(DISTINCT status) FROM runs WHERE kind = '$k'")
    [ "$st" = done ] || die "$k runs: $st"
done
[ "$(sql "$db" "SELECT count(*) FROM models WHERE kind IN ('sft', 'rm', 'policy')")" -ge 4 ] ||
    die "models: $(sql "$db" "SELECT group_concat(name || ':' || kind) FROM models")"
[ "$(sql "$db" "SELECT count(DISTINCT labeler_id) FROM rankings WHERE simulated = 1")" -ge 3 ] || die "labelers"
# a rerun resumes: nothing is trained again
runs=$(sql "$db" "SELECT count(*) FROM runs WHERE kind != 'eval'")
DEMO_SCALE=small DEMO_DIR="$D" sh samples/demo.sh > "$TMP/demo2.out" 2> "$TMP/demo2.err" ||
    die "demo rerun failed: $(tail -n 30 "$TMP/demo2.err")"
[ "$(sql "$db" "SELECT count(*) FROM runs WHERE kind != 'eval'")" -eq "$runs" ] ||
    die "the rerun trained again: $(sql "$db" "SELECT group_concat(kind) FROM runs WHERE kind != 'eval'")"
[ "$(wc -l < "$D/final.tsv")" -eq 6 ] || die "final.tsv after the rerun"
# the round after the demo's: candidates from PPO round 2, new rankings, a new RM and PPO
DEMO_PPO_STEPS=2 sh samples/next_round.sh "$D" > "$TMP/r3.out" 2> "$TMP/r3.err" || die "next round: $(tail -n 30 "$TMP/r3.err")"
[ -s "$D/ppo-r3.ckpt" ] && [ -s "$D/rm-r3.ckpt" ] || die "round 3 wrote no policy or RM"
contains "$(cat "$TMP/r3.out")" "ppo-r3"
exit 0
