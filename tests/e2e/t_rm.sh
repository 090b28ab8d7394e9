#!/bin/sh
# The reward model end to end on a tiny project: train-rm on the store's
# rankings (registered with its parent, curves in metrics, normalised so the
# init model's answers score 0), score (store and file), eval-rm (text, JSON,
# a file), training from a pairs / multi-turn HH file, bad input refused with
# nothing written, and kill -9 then --resume equal to an uninterrupted run.
. "$ROOT/tests/e2e/lib.sh"
S="$ROOT/samples"
tiny_base p.db
# a project with no rankings yet
expect_rc 1 "$RLHF" train-rm --db p.db --init base.ckpt --out rm.ckpt
contains "$ERR" "no rankings"
[ ! -e rm.ckpt ] || die "a failed run wrote a checkpoint"
tiny_candidates p.db
for l in "careful 0.05 1" "hasty 0.4 2" "third 0.1 3"; do
    set -- $l
    expect_rc 0 "$RLHF" label --db p.db --auto demo --as "sim-$1" --noise "$2" --overlap 3 --seed "$3"
done

# usage errors
expect_rc 2 "$RLHF" train-rm --db p.db --out rm.ckpt
contains "$ERR" "--init"
expect_rc 2 "$RLHF" train-rm --db p.db --init base.ckpt
expect_rc 2 "$RLHF" train-rm --db p.db --init base.ckpt --out rm.ckpt --resume --force
expect_rc 2 "$RLHF" train-rm --db p.db --init base.ckpt --out rm.ckpt --data x.jsonl --split train
expect_rc 2 "$RLHF" train-rm --db p.db --init base.ckpt --out rm.ckpt --lr abc
expect_rc 0 "$RLHF" train-rm --help
contains "$OUT" "--val-frac"
# bad input: a tokenizer that does not match, no data with these filters, ties only
expect_rc 0 "$RLHF" tokenizer train --vocab 400 --out tok400.bin "$S/corpus.txt"
expect_rc 1 "$RLHF" train-rm --db p.db --init base.ckpt --tokenizer tok400.bin --out rm.ckpt
contains "$ERR" "400"
expect_rc 1 "$RLHF" train-rm --db p.db --init base.ckpt --out rm.ckpt --labeler nobody
contains "$ERR" "no rankings to train on with these filters"
cp p.db ties.db
/usr/bin/python3 -c 'import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.execute("update ranking_items set rank = 1"); c.commit()' ties.db
expect_rc 1 "$RLHF" train-rm --db ties.db --init base.ckpt --out rm.ckpt
contains "$ERR" "ties only"
[ ! -e rm.ckpt ] || die "a failed run wrote a checkpoint"

# training on the store
expect_rc 0 "$RLHF" train-rm --db p.db --init base.ckpt --out rm.ckpt --epochs 3 --lr 1e-3 --name rm-1
contains "$OUT" "held-out accuracy"
contains "$ERR" "cut from the left"
contains "$ERR" "reward bias set to"
[ "$(sql p.db "select kind from models where name='rm-1'")" = rm ] || die "RM not registered"
[ "$(sql p.db "select parent_id from models where name='rm-1'")" = "$(sql p.db "select id from models where name='base'")" ] ||
    die "RM's parent is not the init model"
[ "$(sql p.db "select status from runs where kind='rm'")" = done ] || die "run not done"
steps=$(sql p.db "select count(*) from metrics where name='train_loss'")
[ "$steps" -gt 50 ] || die "train_loss curve missing ($steps points)"
for m in train_accuracy reward_mean reward_std reward_margin val_accuracy norm_bias; do
    [ "$(sql p.db "select count(*) from metrics where name='$m'")" -gt 0 ] || die "metric $m missing"
done
acc=$(sql p.db "select value from metrics where name='val_accuracy' order by step desc limit 1")
/usr/bin/python3 -c "import sys; sys.exit(0 if $acc > 0.6 else 1)" || die "held-out accuracy $acc"

# score: every candidate once, the init model's answers average 0 (normalisation)
expect_rc 0 "$RLHF" score --db p.db --rm rm.ckpt
contains "$OUT" "scored"
n=$(sql p.db "select count(*) from scores")
[ "$n" = "$(sql p.db "select count(*) from candidates")" ] || die "scored $n candidates"
/usr/bin/python3 -c "import sys; sys.exit(0 if abs($(sql p.db "select avg(score) from scores")) < 1e-3 else 1)" ||
    die "the init model's answers do not average 0"
expect_rc 0 "$RLHF" score --db p.db --rm rm.ckpt
contains "$OUT" "nothing to score"
expect_rc 0 "$RLHF" score --db p.db --rm rm.ckpt --redo --split train
[ "$(sql p.db "select count(*) from scores")" = "$n" ] || die "--redo added rows"
# score keeps each prompt's margin (best minus second best); label --order uncertain
# hands out the smallest first and says why
contains "$OUT" "margins of"
np=$(sql p.db "select count(*) from prompt_margins")
[ "$np" = "$(sql p.db "select count(distinct prompt_id) from candidates where prompt_id in (select prompt_id from candidates group by prompt_id having count(*) >= 2)")" ] ||
    die "margins of $np prompts"
expect_rc 2 "$RLHF" label --db p.db --auto demo --as u --order sideways
expect_rc 2 "$RLHF" label --db p.db --auto demo --as u --rm rm.ckpt
contains "$ERR" "--order uncertain"
expect_rc 1 "$RLHF" label --db p.db --auto demo --as u --order uncertain --rm nosuch
contains "$ERR" "nosuch"
cp p.db u.db
expect_rc 0 "$RLHF" label --db u.db --auto demo --as sim-u --order uncertain --overlap 4 --limit 3
want=$(sql u.db "select group_concat(prompt_id) from (select prompt_id from prompt_margins m
    join prompts p on p.id = m.prompt_id order by margin, prompt_id limit 3)")
got=$(sql u.db "select group_concat(prompt_id) from (select r.prompt_id from rankings r
    join labelers l on l.id = r.labeler_id where l.name = 'sim-u' order by r.id)")
[ "$want" = "$got" ] || die "uncertain order gave $got, the smallest margins are $want"
# export by the RM's stored scores: the least sure prompts to relabel, the best answers
expect_rc 0 "$RLHF" export --db u.db --format pairs --out all.jsonl
expect_rc 2 "$RLHF" export --db u.db --format pairs --max-margin 0.1
contains "$ERR" "--rm"
expect_rc 2 "$RLHF" export --db u.db --format sft --rm rm.ckpt --min-score 0
expect_rc 1 "$RLHF" export --db u.db --format pairs --rm nosuch --max-margin 0.1
contains "$ERR" "nosuch"
expect_rc 1 "$RLHF" export --db u.db --format pairs --rm base.ckpt --max-margin 0.1
contains "$ERR" "not as a reward model"
mm=$(sql u.db "select margin from prompt_margins order by margin limit 1 offset 5")
expect_rc 0 "$RLHF" export --db u.db --format pairs --rm rm.ckpt --max-margin "$mm" --sort margin --out least.jsonl
contains "$ERR" "prompts whose margin"
/usr/bin/python3 - "$mm" <<'PY' || die "export --max-margin --sort margin"
import json, sqlite3, sys
mm = float(sys.argv[1])
db = sqlite3.connect("u.db")
margin = dict(db.execute("select prompt_id, margin from prompt_margins"))
want = [p for p, in db.execute("select distinct r.prompt_id from rankings r join ranking_items i on i.ranking_id = r.id"
        " where r.is_current and not r.skipped and r.prompt_id in (select prompt_id from prompt_margins where margin <= ?)", (mm,))]
rows = [json.loads(l) for l in open("least.jsonl")]
got = []
for r in rows:
    if not got or got[-1] != r["prompt_id"]: got.append(r["prompt_id"])
assert len(got) == len(set(got)), "a prompt's pairs are together"
assert sorted(got) == sorted(want), (got, want)
assert [margin[p] for p in got] == sorted(margin[p] for p in got), "least sure first"
assert all(margin[r["prompt_id"]] <= mm for r in rows)
PY
expect_rc 0 "$RLHF" export --db u.db --format pairs --rm rm.ckpt --min-score 0.1 --out best.jsonl
contains "$ERR" "scored below 0.1"
/usr/bin/python3 - <<'PY' || die "export --min-score"
import json, sqlite3
db = sqlite3.connect("u.db")
score = dict(db.execute("select candidate_id, score from scores"))
rows = [json.loads(l) for l in open("best.jsonl")]
assert rows and all(score[r["chosen_id"]] >= 0.1 for r in rows)
n = 0
for l in open("all.jsonl"):
    r = json.loads(l)
    n += score.get(r["chosen_id"], -1e9) >= 0.1
assert n == len(rows), (n, len(rows))
PY
# several RMs: a combination is normalised by each RM's stored scores; the same RM twice
# at half weight is that RM's z-score, stored (with margins) under the spec
spec="rm.ckpt*0.5+rm.ckpt*0.5"
expect_rc 0 "$RLHF" score --db u.db --rm "$spec"
/usr/bin/python3 - "$spec" <<'PY' || die "combined scores"
import sqlite3, sys
db = sqlite3.connect("u.db")
one = db.execute("select id from models where path like '%/rm.ckpt'").fetchone()[0]
both = db.execute("select id from models where name = ?", (sys.argv[1],)).fetchone()[0]
s = dict(db.execute("select candidate_id, score from scores where model_id = ?", (one,)))
c = dict(db.execute("select candidate_id, score from scores where model_id = ?", (both,)))
n = len(s); m = sum(s.values()) / n; sd = (sum(v * v for v in s.values()) / n - m * m) ** 0.5
assert set(c) == set(s)
assert all(abs(c[k] - (s[k] - m) / sd) < 1e-3 for k in s), "z-scores"
assert db.execute("select count(*) from prompt_margins where model_id = ?", (both,)).fetchone()[0] > 0
PY
expect_rc 0 "$RLHF" label --db u.db --auto demo --as sim-c --order uncertain --rm "$spec" --overlap 5 --limit 1
expect_rc 0 "$RLHF" gen --db u.db --model base.ckpt --best-of 2 --rm "$spec" -k 1 --split test --limit 2 --max-tokens 8
contains "$ERR" "best-of-2"
expect_rc 1 "$RLHF" score --db u.db --rm "rm.ckpt+base.ckpt*x"
contains "$ERR" "not a number"
expect_rc 0 "$RLHF" ppo --db u.db --policy base.ckpt --rm "rm.ckpt*0.5+rm.ckpt!-1" --steps 1 --prompts 2 --samples 2 \
    --max-new 8 --out ppo-c.ckpt
[ "$(sql u.db "select count(distinct name) from metrics where name like 'objective/scores_z/%'")" = 2 ] ||
    die "a curve per RM of the combination"
cp p.db nomargins.db
/usr/bin/python3 -c 'import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.execute("delete from prompt_margins"); c.commit()' nomargins.db
expect_rc 1 "$RLHF" label --db nomargins.db --auto demo --as u --order uncertain
contains "$ERR" "rlhf score"
printf '{"prompt":"What is 2+2?","completion":"4","id":7}\n{"prompt":"hi","response":"hello"}\n' >in.jsonl
expect_rc 0 "$RLHF" score --rm rm.ckpt --in in.jsonl --out scored.jsonl
/usr/bin/python3 -c '
import json, sys
r = [json.loads(l) for l in open("scored.jsonl")]
assert len(r) == 2 and r[0]["id"] == 7 and all(isinstance(x["score"], float) for x in r), r' || die "bad scored file"
printf '{"prompt":"a","completion":"b"}\n{"prompt":"x"}\n' >bad.jsonl
expect_rc 1 "$RLHF" score --rm rm.ckpt --in bad.jsonl --out bad-out.jsonl
contains "$ERR" "bad.jsonl:2"
[ ! -e bad-out.jsonl ] || die "a failed score wrote its output"
# a checkpoint without a reward head is refused as --rm
expect_rc 1 "$RLHF" score --db p.db --rm base.ckpt
contains "$ERR" "not a reward model"
expect_rc 1 "$RLHF" eval-rm --db p.db --rm base.ckpt
contains "$ERR" "not a reward model"

# eval-rm: held-out accuracy beside the labelers' agreement
expect_rc 0 "$RLHF" eval-rm --db p.db --rm rm.ckpt
contains "$OUT" "accuracy"
contains "$OUT" "labelers agree"
contains "$OUT" "sim-careful"
contains "$OUT" "by labelers' agreement"
contains "$OUT" "95% CI: bootstrap over prompts"
expect_rc 0 "$RLHF" eval-rm --db p.db --rm rm.ckpt --json
echo "$OUT" | /usr/bin/python3 -c '
import json, sys
j = json.load(sys.stdin)
a = j["accuracy"]
assert a["pairs"] > 0 and a["ci95_low"] <= a["accuracy"] <= a["ci95_high"], a
assert len(j["by_labeler"]) == 3 and j["by_agreement"] and j["labeler_agreement"]["pairs"] > 0, j
# the interval is a bootstrap over prompts (a prompt'"'"'s pairs resampled together), Wilson beside it
assert a["interval"] == "bootstrap over prompts" and a["wilson_low"] <= a["accuracy"] <= a["wilson_high"], a
assert j["labeler_agreement"]["interval"] == "wilson", j' ||
    die "bad eval-rm JSON: $OUT"
# the eval's accuracy is the training run's last held-out accuracy (same split)
/usr/bin/python3 -c "
import json, sys
j = json.loads(sys.argv[1]); sys.exit(0 if abs(j['accuracy']['accuracy'] - $acc) < 1e-6 else 1)" "$OUT" ||
    die "eval-rm and train-rm disagree on the held-out split"
expect_rc 0 "$RLHF" export --db p.db --format hh --out hh.jsonl
expect_rc 0 "$RLHF" eval-rm --rm rm.ckpt --data hh.jsonl
contains "$OUT" "accuracy"

# training from a file without a store: pairs, and multi-turn HH dialogues
expect_rc 0 "$RLHF" export --db p.db --format pairs --out all-pairs.jsonl
head -n 400 all-pairs.jsonl >pairs.jsonl
expect_rc 0 "$RLHF" train-rm --init base.ckpt --data pairs.jsonl --out rm-pairs.ckpt --norm-samples 4
contains "$ERR" "fresh samples from the init model"
/usr/bin/python3 - <<'PY'
import json
with open("hh2.jsonl", "w") as f:
    for i in range(40):
        ctx = f"\n\nHuman: tell me about {i}\n\nAssistant: sure\n\nHuman: and more about {i}?"
        f.write(json.dumps({"chosen": ctx + "\n\nAssistant: yes, a good answer.",
                            "rejected": ctx + "\n\nAssistant: no"}) + "\n")
PY
expect_rc 0 "$RLHF" train-rm --init base.ckpt --data hh2.jsonl --out rm-hh.ckpt --norm-samples 0 --epochs 2
contains "$ERR" "40 ranked prompts"
printf '{"chosen":"\\n\\nHuman: a\\n\\nAssistant: b"}\n' >badhh.jsonl
expect_rc 1 "$RLHF" train-rm --init base.ckpt --data badhh.jsonl --out rm-bad.ckpt
contains "$ERR" "badhh.jsonl:1"
[ ! -e rm-bad.ckpt ] || die "a failed run wrote a checkpoint"

# Ctrl-C (SIGINT) mid-run: a checkpoint, the run marked interrupted, exit 1; --resume finishes it
interrupt_when "steps of" "$RLHF" train-rm --db p.db --init base.ckpt --out int.ckpt --epochs 50 --save-every 1000 --name rm-int
[ $RC -eq 1 ] || die "interrupted run exited $RC: $(cat int.err)"
contains "$(cat int.err)" "interrupted at step"
[ -s int.ckpt ] || die "no checkpoint after Ctrl-C"
[ "$(sql p.db "select status from runs order by id desc limit 1")" = interrupted ] || die "run not marked interrupted"
expect_rc 0 "$RLHF" train-rm --db p.db --init base.ckpt --out int.ckpt --epochs 50 --save-every 1000 --name rm-int --resume --epochs 1
contains "$ERR" "resumed"
[ "$(sql p.db "select status from runs order by id desc limit 1")" = done ] || die "resumed run not done"
[ "$(sql p.db "select kind from models where name='rm-int'")" = rm ] || die "resumed RM not registered"

# kill -9 mid-run, rerun with --resume: the same bytes as a run never interrupted
ARGS="--init base.ckpt --data pairs.jsonl --epochs 2 --batch 4 --save-every 5 --threads 1 --seed 3 --norm-samples 2"
expect_rc 0 "$RLHF" train-rm $ARGS --out ref.ckpt
kill9_after_checkpoint k.ckpt "$RLHF" train-rm $ARGS --out k.ckpt
grep -q "trained" k.out && echo "note: the run finished before the kill"
expect_rc 0 "$RLHF" train-rm $ARGS --out k.ckpt --resume
contains "$ERR" "resumed"
cmp ref.ckpt k.ckpt || die "resumed run differs from the uninterrupted one"
expect_rc 0 "$RLHF" train-rm $ARGS --out k.ckpt --resume
contains "$OUT" "up to date"
# an existing RM is not overwritten by accident; another data set is refused on resume
expect_rc 1 "$RLHF" train-rm $ARGS --out k.ckpt
contains "$ERR" "--resume"
expect_rc 1 "$RLHF" train-rm --init base.ckpt --data hh2.jsonl --out k.ckpt --resume
contains "$ERR" "changed"
expect_rc 1 "$RLHF" train-rm $ARGS --out k.ckpt --resume --batch 5
contains "$ERR" "--batch 4"
exit 0
