# rlhf eval: two policies on held-out prompts; answers and the judge's rankings
# stored (a rerun reproduces the table and stores nothing new), every policy
# evaluated ranked together so elo --by policy rates them all, best-of-n never
# below its policy by the RM, an external judge, and bad input refused before
# anything is written.
. "$ROOT/tests/e2e/lib.sh"
CORPUS="$ROOT/samples/corpus.txt"
expect_rc 0 "$RLHF" tokenizer train --vocab 300 --out tok.bin "$CORPUS"
expect_rc 0 "$RLHF" pretrain --corpus "$CORPUS" --tokenizer tok.bin --config tiny --steps 5 --batch 2 --out a.ckpt
expect_rc 0 "$RLHF" pretrain --corpus "$CORPUS" --tokenizer tok.bin --config tiny --steps 8 --batch 2 --seed 3 --out b.ckpt
/usr/bin/python3 "$ROOT/tests/e2e/make_rm.py" a.ckpt rm.ckpt 1 || die "make_rm.py"
expect_rc 0 "$RLHF" init p.db
expect_rc 0 "$RLHF" prompts import --db p.db "$ROOT/samples/prompts.jsonl"
export RLHF_DB=p.db
J() { /usr/bin/python3 -c 'import json,sys; d=json.load(sys.stdin); print(eval(sys.argv[1]))' "$1"; }

# usage errors and bad input: nothing registered, generated or ranked
expect_rc 2 "$RLHF" eval --a a.ckpt
contains "$ERR" "--b POLICY"
expect_rc 2 "$RLHF" eval --a a.ckpt --b b.ckpt --judge nosuch
contains "$ERR" "no rule 'nosuch'"
expect_rc 2 "$RLHF" eval --a a.ckpt --b b.ckpt --judge demo --judge-cmd cat
expect_rc 2 "$RLHF" eval --a a.ckpt --b b.ckpt --b-best-of 4
contains "$ERR" "--rm"
expect_rc 2 "$RLHF" eval --a a.ckpt --b b.ckpt --n 0
expect_rc 2 "$RLHF" eval --a a.ckpt --b b.ckpt --split 'bad split'
expect_rc 1 "$RLHF" eval --a a.ckpt --b missing.ckpt
contains "$ERR" "--b: 'missing.ckpt' is neither a checkpoint file nor a model of the project"
expect_rc 1 "$RLHF" eval --a a.ckpt --b b.ckpt --rm b.ckpt
contains "$ERR" "not a reward model"
expect_rc 1 "$RLHF" eval --a a.ckpt --b a.ckpt
contains "$ERR" "same model"
expect_rc 1 "$RLHF" eval --a a.ckpt --b b.ckpt --split nosuch
contains "$ERR" "no prompts of split nosuch"
for t in models candidates rankings labelers runs; do
    [ "$(sql p.db "select count(*) from $t")" = 0 ] || die "bad input wrote to $t"
done

# a run: 10 held-out prompts, one answer per side, the demo rule as judge, an RM
expect_rc 0 "$RLHF" eval --a a.ckpt --b b.ckpt --rm rm.ckpt --limit 10 --max-tokens 12 --json
echo "$OUT"
[ "$(printf "%s\n" "$OUT" | J 'd["prompts"]')" = 10 ] || die "prompts"
[ "$(printf "%s\n" "$OUT" | J 'd["judge"]')" = "judge:demo" ] || die "judge name"
[ "$(printf "%s\n" "$OUT" | J 'd["rankings_stored"]')" = 10 ] || die "rankings stored"
[ "$(printf "%s\n" "$OUT" | J 'round(d["sides"][0]["win_rate"] + d["sides"][1]["win_rate"], 9)')" = 1.0 ] || die "win rates do not add up"
[ "$(printf "%s\n" "$OUT" | J 'all(s["win_ci"][0] <= s["win_rate"] <= s["win_ci"][1] for s in d["sides"])')" = True ] || die "interval"
[ "$(printf "%s\n" "$OUT" | J 'all(s["mean_reward"] is not None and s["mean_length"] > 0 for s in d["sides"])')" = True ] || die "reward, length"
[ "$(printf "%s\n" "$OUT" | J 'd["sides"][0]["kl"]')" = None ] || die "KL without a reference"
[ "$(sql p.db "select count(*) from candidates c join prompts p on p.id = c.prompt_id where p.split = 'test'")" = 20 ] || die "answers not stored"
[ "$(sql p.db "select count(*) from candidates c join prompts p on p.id = c.prompt_id where p.split != 'test'")" = 0 ] || die "answers outside the test split"
[ "$(sql p.db "select count(*) from rankings r join labelers l on l.id = r.labeler_id where l.name = 'judge:demo' and r.simulated and r.is_current")" = 10 ] || die "judge rankings"
# the summary is kept as a run of kind eval with its metrics
[ "$(sql p.db "select count(*) from runs where kind = 'eval' and status = 'done'")" = 1 ] || die "eval run"
[ "$(sql p.db "select round(sum(value), 6) from metrics where name in ('a.win_rate', 'b.win_rate')")" = 1.0 ] || die "eval metrics"
# a rerun reproduces the table and stores nothing
expect_rc 0 "$RLHF" eval --a a.ckpt --b b.ckpt --rm rm.ckpt --limit 10 --max-tokens 12
first=$OUT
contains "$OUT" "judge win [95% CI]"
contains "$ERR" "0 + 0 new answers, 0 judge rankings stored"
expect_rc 0 "$RLHF" eval --a a.ckpt --b b.ckpt --rm rm.ckpt --limit 10 --max-tokens 12
[ "$OUT" = "$first" ] || die "a rerun changed the table"
[ "$(sql p.db "select count(*) from rankings")" = 10 ] || die "a rerun stored rankings"

# best-of-3 of a by the RM: its own policy, never below a by the RM (sample 0 is a's answer)
expect_rc 0 "$RLHF" eval --a a.ckpt --b a.ckpt --b-best-of 3 --rm rm.ckpt --limit 10 --max-tokens 12 --ref a.ckpt --json
[ "$(printf "%s\n" "$OUT" | J 'd["sides"][1]["model"]')" = "a.ckpt+bo3" ] || die "best-of model name"
[ "$(printf "%s\n" "$OUT" | J 'd["sides"][1]["rm_win_rate"] >= 0.5 and d["sides"][1]["mean_reward"] >= d["sides"][0]["mean_reward"]')" = True ] || die "best-of below its policy by the RM: $OUT"
[ "$(printf "%s\n" "$OUT" | J 'd["sides"][0]["kl"]')" = 0 ] || die "KL of a from itself"
[ "$(printf "%s\n" "$OUT" | J 'abs(d["sides"][1]["kl_best_of"] - 0.4319) < 1e-3')" = True ] || die "best-of KL term"
[ "$(sql p.db "select parent_id from models where name = 'a.ckpt+bo3'")" = "$(sql p.db "select id from models where name = 'a.ckpt'")" ] || die "best-of parent"
expect_rc 1 "$RLHF" eval --a b.ckpt --b a.ckpt+bo3 --rm rm.ckpt --limit 10
contains "$ERR" "--b: 'a.ckpt+bo3' is best-of-3 of 'a.ckpt': give --b a.ckpt --b-best-of 3 --rm RM"
# one current ranking per prompt holding all three policies
[ "$(sql p.db "select count(*) from rankings where is_current")" = 10 ] || die "one ranking per prompt"
[ "$(sql p.db "select min(n) from (select count(*) n from ranking_items i join rankings r on r.id = i.ranking_id where r.is_current group by r.id)")" = 3 ] || die "the judge did not rank every policy"
expect_rc 0 "$RLHF" elo --by policy --json
for m in a.ckpt b.ckpt a.ckpt+bo3; do contains "$OUT" "\"name\":\"$m\""; done
contains "$OUT" '"lineage":"a.ckpt > a.ckpt+bo3"'

# an external judge, its own labeler; --n 2 answers per side
expect_rc 0 "$RLHF" eval --a a.ckpt --b b.ckpt --limit 5 --n 2 --max-tokens 12 --judge-cmd "python3 $ROOT/samples/judge_demo.py" --json
[ "$(printf "%s\n" "$OUT" | J 'd["judge"]')" = "judge:cmd:judge_demo.py" ] || die "external judge name"
[ "$(printf "%s\n" "$OUT" | J 'd["sides"][0]["answers"] >= 5 and d["sides"][0]["judge_score"] is None')" = True ] || die "external judge: $OUT"
[ "$(sql p.db "select count(*) from rankings r join labelers l on l.id = r.labeler_id where l.name = 'judge:cmd:judge_demo.py'")" = 5 ] || die "external judge rankings"
expect_rc 1 "$RLHF" eval --a a.ckpt --b b.ckpt --limit 3 --judge-cmd "exit 3" --judge-name broken
contains "$ERR" "judge 'exit 3' exited with status 3"
[ "$(sql p.db "select count(*) from labelers where name = 'broken' and simulated")" = 1 ] || die "--judge-name"
[ "$(sql p.db "select count(*) from rankings r join labelers l on l.id = r.labeler_id where l.name = 'broken'")" = 0 ] || die "a failed judge stored rankings"
exit 0
