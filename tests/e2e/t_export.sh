#!/bin/sh
# rlhf import / export / elo / agreement end to end: every export format,
# export then import gives the same comparisons, the train/validation split is
# disjoint by prompt, filters, and bad input leaves the database unchanged.
. "$ROOT/tests/e2e/lib.sh"
PY=/usr/bin/python3
DB=t.db
expect_rc 0 "$RLHF" init $DB
printf 'Name a colour.\nWhat is 2+2?\n' > prompts.txt
expect_rc 0 "$RLHF" prompts import --db $DB prompts.txt

# alice ranks A > B > C; bob A > C > B; alice ties X = Y above Z;
# a simulated labeler; texts with quotes, commas, newlines and UTF-8
cat > in.jsonl <<'J'
{"prompt":"Name a colour.","chosen":"red","rejected":"blue","labeler":"alice","chosen_model":"m1","rejected_model":"m2"}
{"prompt":"Name a colour.","chosen":"red","rejected":"green","labeler":"alice","chosen_model":"m1","rejected_model":"m3"}
{"prompt":"Name a colour.","chosen":"blue","rejected":"green","labeler":"alice","chosen_model":"m2","rejected_model":"m3"}
{"prompt":"Name a colour.","chosen":"red","rejected":"blue","labeler":"bob","chosen_model":"m1","rejected_model":"m2"}
{"prompt":"Name a colour.","chosen":"red","rejected":"green","labeler":"bob","chosen_model":"m1","rejected_model":"m3"}
{"prompt":"Name a colour.","chosen":"green","rejected":"blue","labeler":"bob","chosen_model":"m3","rejected_model":"m2"}
{"prompt":"What is 2+2?","chosen":"4","rejected":"five","labeler":"alice","chosen_model":"m1","rejected_model":"m3"}
{"prompt":"What is 2+2?","chosen":"four","rejected":"five","labeler":"alice","chosen_model":"m2","rejected_model":"m3"}
{"prompt":"Say \"hi\", then stop.","chosen":"hi,\n\"there\" – ok","rejected":"no","labeler":"bot","simulated":true,"chosen_model":"m2","rejected_model":"m1"}
{"prompt":"Pick one: a, b.","chosen":"a","rejected":"b","labeler":"bot","simulated":true,"chosen_model":"m1","rejected_model":"m2"}
J
# two answers come in through `rlhf candidates import`; the comparisons reuse them
printf '%s\n' '{"prompt":"Name a colour.","completion":"red","model":"m1"}' \
    '{"prompt":"Name a colour.","completion":"blue","model":"m2"}' > cands.jsonl
expect_rc 0 "$RLHF" candidates import --db $DB cands.jsonl
expect_rc 0 "$RLHF" import --db $DB --format pairs in.jsonl
[ "$(sql $DB 'select count(*) from candidates')" = 10 ] || die "candidates: $(sql $DB 'select count(*) from candidates')"
contains "$OUT" "imported 10 comparisons as 5 rankings"
[ "$(sql $DB 'select count(*) from rankings')" = 5 ] || die "rankings: $(sql $DB 'select count(*) from rankings')"
[ "$(sql $DB 'select count(*) from prompts')" = 4 ] || die "prompts"
# the tie came back: alice's 2+2 ranking has ranks 1,1,3
[ "$(sql $DB "select group_concat(rank) from (select i.rank from ranking_items i join rankings r on r.id=i.ranking_id join labelers l on l.id=r.labeler_id join prompts p on p.id=r.prompt_id where l.name='alice' and p.text='What is 2+2?' order by i.rank)")" = "1,1,3" ] || die "tie not rebuilt"
[ "$(sql $DB "select simulated from labelers where name='bot'")" = 1 ] || die "bot not simulated"

# ---- every format parses and holds what it should
expect_rc 0 "$RLHF" export --db $DB --format pairs --out pairs.jsonl
contains "$ERR" "exported 10 comparisons"
contains "$ERR" "11 pairs, 1 ties dropped"
$PY - pairs.jsonl <<'P' || die "pairs content"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
assert len(rows) == 10, len(rows)
for r in rows:
    for k in ("prompt", "chosen", "rejected", "prompt_id", "chosen_id", "rejected_id", "labeler", "rank_gap"):
        assert k in r, (k, r)
    assert isinstance(r["prompt"], str) and isinstance(r["rank_gap"], int) and r["rank_gap"] >= 1
    assert "margin" not in r, "TRL's RewardTrainer would subtract it in its loss"
    # the template on every prompt, the separator on the answer
    assert r["prompt"].startswith("\n\nHuman: ") and r["prompt"].endswith("\n\nAssistant:"), r
    assert r["chosen"].startswith(" ") and r["rejected"].startswith(" "), r
q = [r for r in rows if r["prompt"].startswith("\n\nHuman: Say")][0]
assert q["chosen"] == ' hi,\n"there" – ok' and q["labeler"] == "bot" and q["simulated"] is True
m = [r for r in rows if r["labeler"] == "alice" and r["chosen"] == " red" and r["rejected"] == " green"][0]
assert m["rank_gap"] == 2, m
P
expect_rc 0 "$RLHF" export --db $DB --format hh
printf "%s\n" "$OUT" > hh.jsonl
$PY - hh.jsonl <<'P' || die "hh content"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
assert len(rows) == 10
for r in rows:
    assert set(r) == {"chosen", "rejected"}, r
    assert r["chosen"].startswith("\n\nHuman: ") and "\n\nAssistant: " in r["chosen"]
assert {"chosen": "\n\nHuman: What is 2+2?\n\nAssistant: 4", "rejected": "\n\nHuman: What is 2+2?\n\nAssistant: five"} in rows
P
expect_rc 0 "$RLHF" export --db $DB --format arena
printf "%s\n" "$OUT" > arena.jsonl
contains "$ERR" "ties kept"
$PY - arena.jsonl <<'P' || die "arena content"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
assert len(rows) == 11
assert all(r["winner"] in ("model_a", "model_b", "tie") for r in rows)
assert sum(r["winner"] == "tie" for r in rows) == 1
assert all(r["a_id"] != r["b_id"] and isinstance(r["tstamp"], float) for r in rows)
t = [r for r in rows if r["winner"] == "tie"][0]
assert {t["model_a"], t["model_b"]} == {"m1", "m2"}
P
expect_rc 0 "$RLHF" export --db $DB --format rankings
printf "%s\n" "$OUT" > rankings.jsonl
$PY - rankings.jsonl <<'P' || die "rankings content"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
assert len(rows) == 5
for r in rows:
    assert len(r["completions"]) == len(r["ranks"]) == len(r["scores"]) == len(r["flags"])
    assert r["labeler"] in ("alice", "bob", "bot")
assert sorted(r["ranks"] for r in rows if r["prompt"] == "What is 2+2?") == [[1, 1, 3]]
P
expect_rc 0 "$RLHF" export --db $DB --format csv --out c.csv
$PY - c.csv <<'P' || die "csv content"
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1], newline="")))
assert len(rows) == 11, len(rows)
assert sum(r["tie"] == "1" for r in rows) == 1
q = [r for r in rows if r["prompt"].startswith("Say")][0]
assert q["prompt"] == 'Say "hi", then stop.' and q["chosen"] == 'hi,\n"there" – ok', q
P
# deterministic output
expect_rc 0 "$RLHF" export --db $DB --format pairs --out pairs2.jsonl
cmp -s pairs.jsonl pairs2.jsonl || die "two exports differ"

# ---- export then import gives back the same comparisons
expect_rc 0 "$RLHF" init db2
expect_rc 0 "$RLHF" import --db db2 --format pairs pairs.jsonl
expect_rc 0 "$RLHF" export --db db2 --format pairs --out back.jsonl
expect_rc 0 "$RLHF" export --db db2 --format arena --out back-arena.jsonl
$PY - pairs.jsonl back.jsonl arena.jsonl back-arena.jsonl <<'P' || die "round trip"
import json, sys
def pairs(p): return sorted((r["prompt"], r["chosen"], r["rejected"], r["labeler"], r["chosen_model"], r["rejected_model"], r["rank_gap"]) for r in map(json.loads, open(p)))
a, b = pairs(sys.argv[1]), pairs(sys.argv[2])
assert a == b, (a, b)
def wins(p): return sorted((r["model_a"], r["model_b"], r["winner"]) for r in map(json.loads, open(p)))
assert wins(sys.argv[3]) == wins(sys.argv[4]), "ties lost in the round trip"
P
# hh round trip (labelers are not in the format)
expect_rc 0 "$RLHF" init db3
expect_rc 0 "$RLHF" import --db db3 --format hh hh.jsonl
expect_rc 0 "$RLHF" export --db db3 --format hh --out back-hh.jsonl
$PY - hh.jsonl back-hh.jsonl <<'P' || die "hh round trip"
import json, sys
a = sorted(open(sys.argv[1]).read().split("\n")); b = sorted(open(sys.argv[2]).read().split("\n"))
assert [x for x in a if x] == [x for x in b if x]
P

# TRL's conversational form: messages, with an explicit or an implicit prompt
cat > conv.jsonl <<'J'
{"prompt":"Hello?","chosen":[{"role":"user","content":"Hello?"},{"role":"assistant","content":"Hi!"}],"rejected":[{"role":"user","content":"Hello?"},{"role":"assistant","content":"Go away."}]}
{"chosen":[{"role":"user","content":"A"},{"role":"assistant","content":"B"},{"role":"user","content":"C"},{"role":"assistant","content":"good"}],"rejected":[{"role":"user","content":"A"},{"role":"assistant","content":"B"},{"role":"user","content":"C"},{"role":"assistant","content":"bad"}]}
J
expect_rc 0 "$RLHF" init db4
expect_rc 0 "$RLHF" import --db db4 --format pairs conv.jsonl
expect_rc 0 "$RLHF" export --db db4 --format hh
contains "$OUT" '"chosen":"\n\nHuman: Hello?\n\nAssistant: Hi!"'
contains "$OUT" '"chosen":"\n\nHuman: A\n\nAssistant: B\n\nHuman: C\n\nAssistant: good"'
printf '%s\n' '{"chosen":[{"role":"user","content":"A"},{"role":"user","content":"x"}],"rejected":[{"role":"user","content":"A"},{"role":"assistant","content":"y"}]}' > conv-bad.jsonl
expect_rc 1 "$RLHF" import --db db4 --format pairs conv-bad.jsonl
contains "$ERR" "conv-bad.jsonl:1: field \"chosen\": the last message is not the assistant's"

# ---- train/validation split by prompt
expect_rc 0 "$RLHF" export --db $DB --format pairs --val-frac 0.5 --val-out val.jsonl --out train.jsonl
contains "$ERR" "validation:"
$PY - train.jsonl val.jsonl pairs.jsonl <<'P' || die "split"
import json, sys
t = [json.loads(l) for l in open(sys.argv[1])]; v = [json.loads(l) for l in open(sys.argv[2])]
a = [json.loads(l) for l in open(sys.argv[3])]
assert len(t) + len(v) == len(a) and t and v, (len(t), len(v))
assert not ({r["prompt"] for r in t} & {r["prompt"] for r in v})
P
expect_rc 2 "$RLHF" export --db $DB --format pairs --val-frac 0.5
contains "$ERR" "--val-out"

# ---- filters
expect_rc 0 "$RLHF" export --db $DB --format pairs --labeler bob
[ "$(printf "%s\n" "$OUT" | wc -l)" = 3 ] || die "labeler filter: $OUT"
expect_rc 0 "$RLHF" export --db $DB --format pairs --simulated
[ "$(printf "%s\n" "$OUT" | wc -l)" = 2 ] || die "simulated filter"
expect_rc 0 "$RLHF" export --db $DB --format pairs --human --since 2000-01-01 --until 2999-01-01
[ "$(printf "%s\n" "$OUT" | wc -l)" = 8 ] || die "human filter"
expect_rc 0 "$RLHF" export --db $DB --format pairs --until 2000-01-01
[ -z "$OUT" ] || die "until filter"
# alice and bob agree on 2 of 3 pairs of the colour prompt
expect_rc 0 "$RLHF" export --db $DB --format pairs --min-agreement 0.6
[ "$(printf "%s\n" "$OUT" | wc -l)" = 6 ] || die "min-agreement 0.6: $OUT"
expect_rc 0 "$RLHF" export --db $DB --format pairs --min-agreement 0.9
[ -z "$OUT" ] || die "min-agreement 0.9"
expect_rc 2 "$RLHF" export --db $DB --format nope
expect_rc 2 "$RLHF" export --db $DB
expect_rc 2 "$RLHF" export --db $DB --format pairs --since yesterday

# ---- ratings and agreement
expect_rc 0 "$RLHF" elo --db $DB --json
$PY -c 'import json,sys; d=json.loads(sys.argv[1]); assert [p["name"] for p in d["players"]][0]=="m1", d; assert d["battles"]==11' "$OUT" || die "elo json: $OUT"
expect_rc 0 "$RLHF" elo --db $DB --method bt --bootstrap 20 --seed 1
contains "$OUT" "95% CI"
contains "$OUT" "m1"
# imported models are external: no policy of ours to rate
expect_rc 1 "$RLHF" elo --db $DB --by policy
contains "$ERR" "11 left out"
expect_rc 2 "$RLHF" elo --db $DB --by team
expect_rc 0 "$RLHF" agreement --db $DB --json
$PY -c 'import json,sys; d=json.loads(sys.argv[1]); assert d["prompts_shared"]==1 and d["pairs_compared"]==3 and d["pairs_agreed"]==2, d; p=d["labeler_pairs"]; assert len(p)==1 and {p[0]["a"],p[0]["b"]}=={"alice","bob"} and p[0]["pairs_agreed"]==2, p' "$OUT" || die "agreement: $OUT"
expect_rc 0 "$RLHF" agreement --db $DB
contains "$OUT" "pairwise agreement: 66.7%"
contains "$OUT" "alice    bob"

# ---- bad input: the error names file:line and nothing changes
counts() { echo "$(sql $DB 'select count(*) from prompts') $(sql $DB 'select count(*) from candidates') $(sql $DB 'select count(*) from rankings') $(sql $DB 'select count(*) from labelers') $(sql $DB 'select count(*) from models')"; }
before=$(counts)
good='{"prompt":"New prompt","chosen":"x","rejected":"y"}'
printf '%s\n{"prompt": "p", "chosen": \n' "$good" > bad1.jsonl
expect_rc 1 "$RLHF" import --db $DB --format pairs bad1.jsonl
contains "$ERR" "bad1.jsonl:2:"
printf '%s\n%s\n{"prompt":"p","chosen":"a"}\n' "$good" "$good" > bad2.jsonl
expect_rc 1 "$RLHF" import --db $DB --format pairs bad2.jsonl
contains "$ERR" "bad2.jsonl:3: missing field \"rejected\""
printf '%s\n{"prompt":"p","chosen":"a","rejected":3}\n' "$good" > bad3.jsonl
expect_rc 1 "$RLHF" import --db $DB --format pairs bad3.jsonl
contains "$ERR" "bad3.jsonl:2: field \"rejected\" must be a string"
: > empty.jsonl
expect_rc 1 "$RLHF" import --db $DB --format pairs empty.jsonl
contains "$ERR" "empty.jsonl"
printf '{"chosen":"\\n\\nHuman: hi\\n\\nAssistant: a","rejected":"no transcript"}\n' > bad4.jsonl
expect_rc 1 "$RLHF" import --db $DB --format hh bad4.jsonl
contains "$ERR" "bad4.jsonl:1:"
# a good file followed by a bad one: the good one is rolled back too
printf '%s\n' "$good" > good.jsonl
expect_rc 1 "$RLHF" import --db $DB --format pairs good.jsonl bad3.jsonl
contains "$ERR" "nothing was imported"
[ "$(counts)" = "$before" ] || die "database changed: $before -> $(counts)"
expect_rc 2 "$RLHF" import --db $DB --format nope in.jsonl
expect_rc 1 "$RLHF" import --db $DB --format pairs missing.jsonl
# \u0000 is refused with its place, not cut short into a "duplicate"
printf '%s\n{"prompt":"a\\u0000b","chosen":"x","rejected":"y"}\n' "$good" > nul.jsonl
expect_rc 1 "$RLHF" import --db $DB --format pairs nul.jsonl
contains "$ERR" "nul.jsonl:2: \\u0000 (NUL) in a string"
[ "$(counts)" = "$before" ] || die "database changed: $before -> $(counts)"
# gzip files are read as they ship, by import, prompts import and candidates import
printf '{"chosen":"\\n\\nHuman: gz?\\n\\nAssistant: yes","rejected":"\\n\\nHuman: gz?\\n\\nAssistant: no"}\n' | gzip > hh.jsonl.gz
expect_rc 0 "$RLHF" import --db $DB --format hh hh.jsonl.gz
[ "$(sql $DB "select count(*) from prompts where text='gz?'")" = 1 ] || die "gz import"
printf 'gz prompt\n' | gzip > p.txt.gz
expect_rc 0 "$RLHF" prompts import --db $DB p.txt.gz
printf '{"prompt":"gz prompt","completion":"gz answer","model":"m1"}\n' | gzip > c.jsonl.gz
expect_rc 0 "$RLHF" candidates import --db $DB c.jsonl.gz
[ "$(sql $DB "select count(*) from candidates where text='gz answer'")" = 1 ] || die "gz candidates"
# --json output is built by cJSON: a stored config that is not JSON still
# gives valid JSON lines
/usr/bin/python3 -c 'import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.execute("UPDATE models SET config = ? WHERE id = 1", ("not \"json",)); c.commit()' $DB
expect_rc 0 "$RLHF" models --db $DB --json
printf '%s\n' "$OUT" | $PY -c 'import json, sys; [json.loads(l) for l in sys.stdin]' || die "models --json is not JSON"
# a failed export leaves no file behind
expect_rc 1 "$RLHF" export --db nowhere.db --format pairs --out never.jsonl
[ ! -e never.jsonl ] || die "partial export file left"
exit 0
