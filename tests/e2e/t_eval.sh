# rlhf eval: two policies on held-out prompts; answers and the judge's rankings
# stored (a rerun reproduces the table and stores nothing new), every policy
# evaluated ranked together so elo --by policy rates them all, best-of-n never
# below its policy by the RM, an external judge, and bad input refused before
# anything is written. Every sample counts (--samples N: a repeated answer
# weighs as often as it was drawn), the interval is a bootstrap over prompts,
# and gen and eval with one seed draw the same token ids.
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

# every sample counts: 2-token answers repeat, and the win rate is the one of
# every draw stored as its own row (recomputed here from the draws and the
# judge's levels), over 8 samples per prompt and side
expect_rc 0 "$RLHF" init q.db
expect_rc 0 "$RLHF" prompts import --db q.db "$ROOT/samples/prompts.jsonl"
expect_rc 0 "$RLHF" eval --db q.db --a a.ckpt --b b.ckpt --limit 6 --samples 8 --max-tokens 2 --json
printf "%s\n" "$OUT" > q.json
/usr/bin/python3 - q.db q.json <<'PY' || die "eval does not count every sample: $OUT"
import json, sqlite3, sys
db = sqlite3.connect(sys.argv[1]); d = json.load(open(sys.argv[2]))
assert d["samples_per_prompt"] == 8 and d["interval"] == "bootstrap95 over prompts", d
level = {c: r for c, r in db.execute("""select i.candidate_id, i.rank from ranking_items i
    join rankings k on k.id = i.ranking_id where k.is_current""")}
def draws(model, pid):
    return [c for (c,) in db.execute("""select d.candidate_id from draws d join models m on m.id = d.model_id
        where m.name = ? and d.prompt_id = ? order by d.draw limit 8""", (model, pid))]
wins = []
for (pid,) in db.execute("select distinct prompt_id from draws order by 1"):
    a, b = draws("a.ckpt", pid), draws("b.ckpt", pid)
    assert len(a) == 8 and len(b) == 8
    wins.append(sum(1.0 if level[x] < level[y] else 0.5 if level[x] == level[y] else 0.0
                    for x in a for y in b) / 64)
s = d["sides"]
assert len(wins) == 6 and abs(s[0]["win_rate"] - sum(wins) / 6) < 1e-9, (wins, s[0]["win_rate"])
assert s[0]["answers"] == 48 and s[1]["answers"] == 48, s
assert s[0]["distinct_answers"] < 48, "2-token answers repeat"
assert s[0]["win_ci"][0] <= s[0]["win_rate"] <= s[0]["win_ci"][1] and s[0]["win_wilson_ci"], s
PY
# a collapsed policy (temperature near 0: one answer per prompt) weighs 8 per prompt
expect_rc 0 "$RLHF" eval --db q.db --a a.ckpt --b b.ckpt --limit 6 --samples 8 --max-tokens 6 --temperature 0.01 --seed 9 --split train --json
[ "$(printf "%s\n" "$OUT" | J '[s["answers"] for s in d["sides"]]')" = "[48, 48]" ] || die "collapsed: $OUT"
[ "$(printf "%s\n" "$OUT" | J '[s["distinct_answers"] for s in d["sides"]]')" = "[6, 6]" ] || die "collapsed: $OUT"
[ "$(sql q.db "select count(*) from draws d join prompts p on p.id = d.prompt_id where p.split = 'train'")" = 96 ] || die "every draw stored"
# the same interval on a rerun (fixed seed); --n is --samples
expect_rc 0 "$RLHF" eval --db q.db --a a.ckpt --b b.ckpt --limit 6 --n 8 --max-tokens 2 --json
[ "$(printf "%s\n" "$OUT" | J 'd["sides"][0]["win_ci"]')" = "$(J 'd["sides"][0]["win_ci"]' < q.json)" ] || die "interval not reproducible"

# one decoding contract: gen's candidates and eval's answers of one policy,
# prompt and seed are the same token ids, draw by draw
expect_rc 0 "$RLHF" init g.db
expect_rc 0 "$RLHF" prompts import --db g.db "$ROOT/samples/prompts.jsonl"
ids=$(/usr/bin/python3 -c 'import sqlite3; print(",".join(str(r[0]) for r in sqlite3.connect("q.db").execute("select id from prompts where split = '"'test'"' order by id limit 4")))')
expect_rc 0 "$RLHF" gen --db g.db --model a.ckpt --ids "$ids" -k 4 --seed 5
expect_rc 0 "$RLHF" init e.db
expect_rc 0 "$RLHF" prompts import --db e.db "$ROOT/samples/prompts.jsonl"
expect_rc 0 "$RLHF" eval --db e.db --a a.ckpt --b b.ckpt --limit 4 --samples 4 --seed 5
Q="select d.prompt_id || ':' || d.draw || ':' || c.finish || ':' || c.tokens from draws d join candidates c on c.id = d.candidate_id join models m on m.id = d.model_id where m.name = 'a.ckpt' order by d.prompt_id, d.draw"
rows() { /usr/bin/python3 -c 'import sqlite3,sys; print("\n".join(r[0] for r in sqlite3.connect(sys.argv[1]).execute(sys.argv[2])))' "$1" "$Q"; }
rows g.db > g.txt; rows e.db > e.txt
[ "$(wc -l < g.txt)" = 16 ] || die "gen: 4 draws of 4 prompts: $(cat g.txt)"
cmp g.txt e.txt || die "gen and eval sampled different ids: $(diff g.txt e.txt)"
exit 0
