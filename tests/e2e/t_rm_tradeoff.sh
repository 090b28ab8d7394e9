#!/bin/sh
# Two reward models from two labelers whose rules conflict (longer: long
# answers; terse: few words), combined with weights w and 1-w: RLOO on
# "long*0.9+terse*0.1" makes answers the longer rule likes more than RLOO on
# "long*0.1+terse*0.9", and the terse rule the reverse; each run moves away from
# the start policy in its own direction. Then Llama 2's gate by the prompt's
# tag: score stores, for the candidates of a prompt tagged safety, the safety
# RM's z, and the weighted helpfulness z elsewhere; PPO's rollouts (known by
# their prompt's ids) get the safety RM's z exactly when their prompt is tagged.
# Demo-sized: ~15 s on 2 cores.
. "$ROOT/tests/e2e/lib.sh"
tiny_base p.db
tiny_candidates p.db
expect_rc 0 "$RLHF" label --db p.db --auto longer --as sim-long --overlap 2 --seed 1
expect_rc 0 "$RLHF" label --db p.db --auto terse --as sim-terse --overlap 2 --seed 1
for r in long terse; do
    expect_rc 0 "$RLHF" train-rm --db p.db --init base.ckpt --labeler "sim-$r" --out "$r.ckpt" --epochs 2 \
        --lr 1e-3 --name "rm-$r"
    expect_rc 0 "$RLHF" score --db p.db --rm "$r.ckpt"
done
for w in 0.9 0.1; do
    expect_rc 0 "$RLHF" ppo --db p.db --policy base.ckpt --rm "long.ckpt*$w+terse.ckpt*$(awk "BEGIN { print 1 - $w }")" \
        --advantage rloo --steps 20 --prompts 8 --samples 4 --max-new 32 --lr 3e-4 --seed 1 \
        --out "w$w.ckpt" --name "w$w"
done
# judge scores (mean rule score over the test prompts' samples): --row's fields 7 and 8 are A's and B's
judge() {
    expect_rc 0 "$RLHF" eval --db p.db --a "$1" --b "$2" --judge "$3" --split test --samples 2 \
        --max-tokens 32 --row
    echo "$OUT" | awk -F'\t' '{print $7, $8}'
}
set -- $(judge w0.9.ckpt w0.1.ckpt longer) $(judge w0.9.ckpt w0.1.ckpt terse)
echo "longer: w=0.9 $1, w=0.1 $2; terse: w=0.9 $3, w=0.1 $4"
/usr/bin/python3 -c "import sys; sys.exit(0 if $1 > $2 and $4 > $3 else 1)" ||
    die "the weights do not set the trade-off: longer $1 vs $2, terse $3 vs $4 (w=0.9 vs w=0.1)"
set -- $(judge base.ckpt w0.9.ckpt longer) $(judge base.ckpt w0.1.ckpt terse)
echo "from the start policy: longer $1 -> $2 (w=0.9), terse $3 -> $4 (w=0.1)"
/usr/bin/python3 -c "import sys; sys.exit(0 if $2 > $1 and $4 > $3 else 1)" ||
    die "a run did not move toward its heavier RM: longer $1 -> $2, terse $3 -> $4"
[ "$(sql p.db "select count(distinct name) from metrics where name like 'objective/scores_z/%'")" = 2 ] ||
    die "a curve per RM"

# the gate by tag: prompts 1 and 2 tagged safety get terse's z whatever it is
# (a threshold no score reaches), the others long's
expect_rc 2 "$RLHF" prompts tag 1 --db p.db
expect_rc 1 "$RLHF" prompts tag 99999 --tag safety --db p.db
contains "$ERR" "no prompt with id 99999"
expect_rc 0 "$RLHF" prompts tag 1 2 --tag safety --db p.db
contains "$OUT" "tagged 2 prompts safety"
expect_rc 0 "$RLHF" prompts tag 2 --tag redteam --db p.db
expect_rc 0 "$RLHF" prompts list --db p.db --limit 2 --json
contains "$OUT" '"tags":"safety"'
contains "$OUT" '"tags":"redteam,safety"'
expect_rc 0 "$RLHF" prompts list --db p.db --limit 1
contains "$OUT" "[safety] "
spec="long.ckpt+terse.ckpt!-1e30"
expect_rc 0 "$RLHF" score --db p.db --rm "$spec"
/usr/bin/python3 - "$spec" <<'PY' || die "the gate by the prompt's tag"
import sqlite3, sys
db = sqlite3.connect("p.db")
def scores(where, *a):
    mid = db.execute("select id from models where " + where, a).fetchone()[0]
    return dict(db.execute("select candidate_id, score from scores where model_id = ?", (mid,)))
def z(s):
    n = len(s); m = sum(s.values()) / n; sd = (sum(v * v for v in s.values()) / n - m * m) ** 0.5
    return {k: (v - m) / sd for k, v in s.items()}
long, terse = z(scores("path like '%/long.ckpt'")), z(scores("path like '%/terse.ckpt'"))
both = scores("name = ?", sys.argv[1])
prompt = dict(db.execute("select id, prompt_id from candidates"))
tagged = {p for (p,) in db.execute("select prompt_id from prompt_tags where tag = 'safety'")}
n = {True: 0, False: 0}
for c in long:  # the candidates each RM scored (its normalisation); eval's answers came later
    v = both[c]
    want = terse[c] if prompt[c] in tagged else long[c]
    assert abs(v - want) < 1e-3, (c, prompt[c], v, want, long[c], terse[c])
    n[prompt[c] in tagged] += 1
assert n[True] > 0 and n[False] > 0, n
PY
# untagged, the same spec is long's z everywhere (the threshold is never reached)
# PPO's rollouts are gated by their prompt's ids: every train prompt tagged "all", each
# reward is terse's z (the step's mean score is terse's mean z); no prompt tagged, long's
ppo_gate() {
    expect_rc 0 "$RLHF" ppo --db p.db --policy base.ckpt --rm "long.ckpt+terse.ckpt!-1e30$1" --advantage rloo \
        --steps 1 --prompts 4 --samples 2 --max-new 16 --out "g$2.ckpt" --name "g$2"
    run=$(sql p.db "select output_model_id from runs where kind = 'ppo' order by id desc limit 1")
    [ "$run" = "$(sql p.db "select id from models where name = 'g$2'")" ] || die "the gate's PPO run"
    /usr/bin/python3 - "$2" <<'PY' || die "PPO's rewards are not the part the gate chose ($1)"
import sqlite3, sys
db = sqlite3.connect("p.db")
run = db.execute("select id from runs where kind = 'ppo' order by id desc limit 1").fetchone()[0]
m = dict(db.execute("select name, value from metrics where run_id = ? and step = 1", (run,)))
part = m["objective/scores_z/%s" % sys.argv[1]]
assert abs(m["objective/scores"] - part) < 1e-4, (m["objective/scores"], part)
other = m["objective/scores_z/" + ("0:long.ckpt" if sys.argv[1].startswith("1") else "1:terse.ckpt")]
assert abs(part - other) > 1e-3, "the parts must differ for the check to mean anything"
PY
}
expect_rc 0 "$RLHF" prompts tag $(sql p.db "select group_concat(id, ' ') from prompts where split = 'train'") --tag all --db p.db
ppo_gate @all 1:terse.ckpt
expect_rc 1 "$RLHF" score --db p.db --rm "long.ckpt+terse.ckpt!0@typo"
contains "$ERR" "no prompt is tagged 'typo'"
expect_rc 0 "$RLHF" prompts untag 1 2 --tag safety --db p.db
expect_rc 1 "$RLHF" prompts untag 1 --tag safety --db p.db
contains "$ERR" "prompt 1 has no tag 'safety'"
expect_rc 0 "$RLHF" score --db p.db --rm "$spec" --redo
[ "$(sql p.db "select count(*) from prompt_tags where tag = 'safety'")" = 0 ] || die "untag left tags"
ppo_gate "" 0:long.ckpt
exit 0
