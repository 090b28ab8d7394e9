# rlhf label --auto / --auto-cmd: simulated labelers through the same path as
# people; noise reproducible by seed; overlap; external judges that work,
# crash, hang or answer garbage (reported, nothing half-written).
. "$ROOT/tests/e2e/lib.sh"
export RLHF_DB=a.db
expect_rc 0 "$RLHF" init a.db
sky_candidates 6 > c.jsonl
expect_rc 0 "$RLHF" candidates import c.jsonl
cp a.db fresh.db

# bad usage
expect_rc 2 "$RLHF" label --auto nosuchrule --as x; contains "$ERR" "no rule 'nosuchrule'"
expect_rc 2 "$RLHF" label --auto demo --auto-cmd cat --as x
expect_rc 2 "$RLHF" label --auto demo --as x --noise -1
expect_rc 2 "$RLHF" label --auto demo --as x --review
expect_rc 0 "$RLHF" label --list-rules; contains "$OUT" "demo"; contains "$OUT" "keyword"

# a rule: every prompt ranked once, marked simulated, best answer first
expect_rc 0 "$RLHF" label --auto demo --as bot1
contains "$OUT" "bot1 ranked 6 prompts"
[ "$(sql a.db "SELECT count(*) FROM rankings WHERE simulated = 1 AND source = 'auto:demo'")" = 6 ] || die "rankings"
[ "$(sql a.db "SELECT simulated || rule FROM labelers WHERE name = 'bot1'")" = "1demo" ] || die "labeler"
[ "$(sql a.db "SELECT count(*) FROM ranking_items i JOIN candidates c ON c.id = i.candidate_id
  JOIN models m ON m.id = c.model_id WHERE m.name = 'good' AND i.rank = 1")" = 6 ] || die "demo rule order"
[ "$(sql a.db "SELECT count(*) FROM ranking_items WHERE likert BETWEEN 1 AND 7")" = 18 ] || die "likert"
[ "$(sql a.db "SELECT count(*) FROM rankings WHERE shown_order LIKE '[%,%,%]'")" = 6 ] || die "shown order"
[ "$(sql a.db "SELECT count(*) FROM assignments WHERE status = 'done'")" = 6 ] || die "assignments"

# overlap: a second labeler gets nothing at overlap 1, everything at overlap 2, never twice
expect_rc 0 "$RLHF" label --auto demo --as bot2; contains "$OUT" "bot2 ranked 0 prompts"
expect_rc 0 "$RLHF" label --auto keyword --as bot2 --overlap 2 --limit 4; contains "$OUT" "bot2 ranked 4 prompts"
expect_rc 0 "$RLHF" label --auto keyword --as bot2 --overlap 2; contains "$OUT" "bot2 ranked 2 prompts"
expect_rc 0 "$RLHF" label --auto keyword --as bot2 --overlap 3; contains "$OUT" "bot2 ranked 0 prompts"
[ "$(sql a.db "SELECT count(*) FROM rankings")" = 12 ] || die "overlap total"
# project settings and gold items
expect_rc 0 "$RLHF" label --set-flags "a,b"
[ "$(sql a.db "SELECT value FROM settings WHERE key = 'label.flags'")" = "a,b" ] || die "flags setting"
expect_rc 1 "$RLHF" label --set-flags '["a",1]'; contains "$ERR" "label.flags"
expect_rc 1 "$RLHF" label --set-guidelines guide.txt; contains "$ERR" "cannot read"
echo "Rank by the facts." > guide.txt
expect_rc 0 "$RLHF" label --set-guidelines guide.txt
expect_rc 0 "$RLHF" label --add-gold '1:1>2>3'; contains "$OUT" "gold: prompt 1 = 1>2>3"
expect_rc 1 "$RLHF" label --add-gold '1:1>2'; contains "$ERR" "not a complete order of 3 candidates"
expect_rc 1 "$RLHF" label --add-gold 'x'; contains "$ERR" "PROMPT_ID:EXPR"
expect_rc 1 "$RLHF" label --add-gold '999:1>2'; contains "$ERR" "there is no prompt 999"
[ "$(sql a.db "SELECT count(*) FROM gold")" = 1 ] || die "gold rows"
# gold items mixed in: agreement with the known order is recorded
cp fresh.db g.db
expect_rc 0 "$RLHF" label --db g.db --add-gold '2:1>3>2'
expect_rc 0 "$RLHF" label --db g.db --auto demo --as goldbot --gold-rate 1 --limit 1
contains "$OUT" "goldbot ranked 1 prompts (1 gold)"
[ "$(sql g.db "SELECT prompt_id || ' ' || round(gold_agreement, 2) FROM rankings")" = "2 1.0" ] || die "gold agreement"
[ "$(sql g.db "SELECT is_gold FROM assignments")" = 1 ] || die "gold assignment"
expect_rc 0 "$RLHF" label --db g.db --auto demo --as other
[ "$(sql g.db "SELECT count(*) FROM rankings WHERE prompt_id = 2")" = 1 ] || die "gold handed out as normal work"
expect_rc 2 "$RLHF" label --auto demo --as x --split 'bad split'

# noise: the same seed gives the same orders, another seed other orders
orders() { sql "$1" "SELECT group_concat(x, ' ') FROM (SELECT r.prompt_id || ':' || i.candidate_id || '=' || i.rank AS x
  FROM rankings r JOIN ranking_items i ON i.ranking_id = r.id ORDER BY r.prompt_id, i.candidate_id)"; }
for s in s1 s2 s3; do cp fresh.db $s.db; done
expect_rc 0 "$RLHF" label --db s1.db --auto demo --as n --noise 3 --seed 7
expect_rc 0 "$RLHF" label --db s2.db --auto demo --as n --noise 3 --seed 7
expect_rc 0 "$RLHF" label --db s3.db --auto demo --as n --noise 3 --seed 8
[ "$(orders s1.db)" = "$(orders s2.db)" ] || die "same seed, different orders"
[ "$(orders s1.db)" != "$(orders s3.db)" ] || die "another seed, same orders"
[ "$(orders s1.db)" != "$(orders a.db)" ] || die "noise changed nothing"

# a labeler who knows the language: an answer with a word outside the known words
# loses 0.15 of its score ("clouds" is not known: the longest answer drops below good)
echo "The sky is blue on day. With a few white over the sea; cheese" > known.txt
cp fresh.db k.db
expect_rc 2 "$RLHF" label --db k.db --as x --known-words known.txt; contains "$ERR" "--auto RULE"
expect_rc 2 "$RLHF" label --db k.db --auto-cmd cat --as x --known-words known.txt
expect_rc 2 "$RLHF" label --db k.db --auto demo --as x --known-words ""
expect_rc 1 "$RLHF" label --db k.db --auto longer --as x --known-words known.txt,missing.txt
contains "$ERR" "missing.txt"
[ "$(sql k.db "SELECT count(*) FROM rankings")" = 0 ] || die "rankings stored after a bad --known-words"
expect_rc 0 "$RLHF" label --db k.db --auto longer --as kw --known-words known.txt
first() { sql "$1" "SELECT group_concat(DISTINCT m.name) FROM ranking_items i JOIN candidates c ON c.id = i.candidate_id
  JOIN models m ON m.id = c.model_id WHERE i.rank = 1"; }
[ "$(first k.db)" = good ] || die "known words: first is $(first k.db), not good"
expect_rc 0 "$RLHF" label --db k.db --auto longer --as plain --overlap 2
[ "$(sql k.db "SELECT count(*) FROM ranking_items i JOIN rankings r ON r.id = i.ranking_id JOIN labelers l
  ON l.id = r.labeler_id JOIN candidates c ON c.id = i.candidate_id JOIN models m ON m.id = c.model_id
  WHERE l.name = 'plain' AND i.rank = 1 AND m.name = 'ok'")" = 6 ] || die "without known words the longest is first"

# an external judge: scores by length (longest first)
cat > judge.py <<'P'
import json, sys
for line in sys.stdin:
    req = json.loads(line)
    print(json.dumps({"scores": [len(c["text"]) for c in req["candidates"]]}), flush=True)
P
cp fresh.db j.db
expect_rc 0 "$RLHF" label --db j.db --auto-cmd "python3 judge.py" --as judge
contains "$OUT" "judge ranked 6 prompts"
[ "$(sql j.db "SELECT count(*) FROM ranking_items i JOIN candidates c ON c.id = i.candidate_id
  JOIN models m ON m.id = c.model_id WHERE m.name = 'ok' AND i.rank = 1")" = 6 ] || die "judge order"
[ "$(sql j.db "SELECT count(*) FROM rankings WHERE simulated = 1 AND source LIKE 'auto-cmd:%'")" = 6 ] || die "judge marks"
# an order instead of scores
cp fresh.db o.db
expect_rc 0 "$RLHF" label --db o.db --auto-cmd "while read l; do echo '{\"order\":\"3>1=2\",\"likert\":[2,2,7]}'; done" --as ord --limit 2
[ "$(sql o.db "SELECT count(*) FROM ranking_items WHERE shown_pos = 2 AND rank = 1 AND likert = 7")" = 2 ] || die "order answer"

# the example judge of the demo task knows its facts
cat > f.jsonl <<'J'
{"prompt":"What is four plus one?","completion":"Four plus one is six.","model":"wrong"}
{"prompt":"What is four plus one?","completion":"Four plus one is five.","model":"right"}
{"prompt":"What is the capital of India?","completion":"The capital of India is Paris.","model":"wrong"}
{"prompt":"What is the capital of India?","completion":"The capital of India is New Delhi.","model":"right"}
J
expect_rc 0 "$RLHF" init f.db
expect_rc 0 "$RLHF" candidates import --db f.db f.jsonl
expect_rc 0 "$RLHF" label --db f.db --auto-cmd "python3 $ROOT/samples/judge_demo.py" --as facts
[ "$(sql f.db "SELECT count(*) FROM ranking_items i JOIN candidates c ON c.id = i.candidate_id
  JOIN models m ON m.id = c.model_id WHERE m.name = 'right' AND i.rank = 1")" = 2 ] || die "fact judge"

nothing_stored() { [ "$(sql "$1" "SELECT count(*) FROM rankings")" = 0 ] || die "$2: something was stored"
    [ "$(sql "$1" "SELECT count(*) FROM assignments")" = 0 ] || die "$2: a claim was left behind"; }
# a judge that crashes
cp fresh.db x.db
expect_rc 1 "$RLHF" label --db x.db --auto-cmd "read l; exit 3" --as crash
contains "$ERR" "exited with status 3"; contains "$ERR" "nothing of that prompt was stored"
nothing_stored x.db crash
# a judge that hangs: stopped after the timeout
start=$(date +%s)
expect_rc 1 "$RLHF" label --db x.db --auto-cmd "sleep 30" --timeout 1 --as hang
contains "$ERR" "did not answer within 1000 ms"
[ $(( $(date +%s) - start )) -lt 6 ] || die "the hanging judge was not stopped in time"
nothing_stored x.db hang
# garbage answers
expect_rc 1 "$RLHF" label --db x.db --auto-cmd "while read l; do echo not json; done" --as garbage
contains "$ERR" "answered garbage"
expect_rc 1 "$RLHF" label --db x.db --auto-cmd "while read l; do echo '{\"scores\":[1]}'; done" --as short
contains "$ERR" "one finite number per candidate"
expect_rc 1 "$RLHF" label --db x.db --auto-cmd "while read l; do echo '{\"order\":\"1>1\"}'; done" --as dup
contains "$ERR" "appears twice"
expect_rc 1 "$RLHF" label --db x.db --auto-cmd "true" --as quiet
contains "$ERR" "judge 'true'"
nothing_stored x.db garbage
# a judge that answers once, then dies: the first prompt is kept whole, the second is free again
expect_rc 1 "$RLHF" label --db x.db --auto-cmd "read l; echo '{\"scores\":[1,2,3]}'; read l; exit 9" --as once
contains "$OUT" "once ranked 1 prompts"; contains "$ERR" "exited with status 9"
[ "$(sql x.db "SELECT count(*) FROM rankings")" = 1 ] || die "first answer lost"
[ "$(sql x.db "SELECT count(*) FROM assignments WHERE status = 'claimed'")" = 0 ] || die "claim kept"
[ "$(sql x.db "SELECT count(*) FROM ranking_items")" = 3 ] || die "half-written ranking"
exit 0
