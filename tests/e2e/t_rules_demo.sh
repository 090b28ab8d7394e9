# The demo task's rules through the real labeling path: on the sample answers
# of every question (samples/answers.jsonl) the rule `demo` puts the canonical
# answer first, `correct` tells right from wrong, and the example judge
# samples/judge_demo.py (the same rule in Python) ranks exactly as `demo` does.
. "$ROOT/tests/e2e/lib.sh"
export RLHF_DB=r.db
expect_rc 0 "$RLHF" init r.db
/usr/bin/python3 - "$ROOT/samples/answers.jsonl" > c.jsonl <<'P' || die "candidates"
import json, sys
for line in open(sys.argv[1]):
    q = json.loads(line)
    for model, text in [("good", q["answer"]), ("wrong", q["wrong"][0]), ("rude", q["rude"][0]),
                        ("runon", q["runon"][1]), ("hedge", q["hedge"][0]), ("offtopic", q["offtopic"][0])]:
        print(json.dumps({"prompt": q["prompt"], "completion": text, "model": model}))
P
expect_rc 0 "$RLHF" candidates import c.jsonl
n=$(sql r.db "SELECT count(*) FROM prompts")
[ "$n" -ge 200 ] || die "only $n prompts"
expect_rc 0 "$RLHF" label --auto demo --as rule --noise 0
expect_rc 0 "$RLHF" label --auto correct --as fact --noise 0 --overlap 2
expect_rc 0 "$RLHF" label --auto-cmd "/usr/bin/python3 $ROOT/samples/judge_demo.py" --as judge --overlap 3
# the rule: the canonical answer alone at the top of every question
[ "$(sql r.db "SELECT count(*) FROM ranking_items i JOIN rankings r ON r.id = i.ranking_id
  JOIN labelers l ON l.id = r.labeler_id JOIN candidates c ON c.id = i.candidate_id
  JOIN models m ON m.id = c.model_id WHERE l.name = 'rule' AND i.rank = 1 AND m.name = 'good'")" = "$n" ] \
  || die "demo: the canonical answer is not first everywhere"
[ "$(sql r.db "SELECT count(*) FROM ranking_items i JOIN rankings r ON r.id = i.ranking_id
  JOIN labelers l ON l.id = r.labeler_id WHERE l.name = 'rule' AND i.rank = 1")" = "$n" ] \
  || die "demo: ties at the top"
# correct: good, rude and run-on (right facts) tie first; wrong, hedge and off-topic tie below
[ "$(sql r.db "SELECT count(*) FROM ranking_items i JOIN rankings r ON r.id = i.ranking_id
  JOIN labelers l ON l.id = r.labeler_id JOIN candidates c ON c.id = i.candidate_id
  JOIN models m ON m.id = c.model_id WHERE l.name = 'fact'
  AND (i.rank = 1) = (m.name IN ('good', 'rude', 'runon'))")" = "$((6 * n))" ] || die "correct"
# the Python judge and the C rule: the same rank for every candidate
[ "$(sql r.db "SELECT count(*) FROM ranking_items a JOIN rankings ra ON ra.id = a.ranking_id
  JOIN labelers la ON la.id = ra.labeler_id JOIN ranking_items b ON b.candidate_id = a.candidate_id
  JOIN rankings rb ON rb.id = b.ranking_id JOIN labelers lb ON lb.id = rb.labeler_id
  WHERE la.name = 'rule' AND lb.name = 'judge' AND a.rank = b.rank")" = "$((6 * n))" ] \
  || die "judge_demo.py and the rule demo disagree"
# the data is what the generator writes (edit make_corpus.py, then run it)
/usr/bin/python3 "$ROOT/samples/make_corpus.py" --out . || die "make_corpus.py failed"
for f in prompts.jsonl corpus.txt sft.jsonl answers.jsonl; do
    cmp -s "$f" "$ROOT/samples/$f" || die "samples/$f differs from what samples/make_corpus.py writes"
done
