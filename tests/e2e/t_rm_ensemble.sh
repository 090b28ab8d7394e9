#!/bin/sh
# An ensemble of reward models as the uncertainty of labeling in uncertain
# order: members trained with other seeds and on bootstrap resamples of the
# rankings (train-rm --bootstrap), `score --rm A,B,C` scores with each and keeps
# the ensemble's disagreement per prompt, and label --order uncertain --rm A,B,C
# hands out the prompts they disagree on most first.
. "$ROOT/tests/e2e/lib.sh"
tiny_base p.db
tiny_candidates p.db
expect_rc 0 "$RLHF" label --db p.db --auto demo --as sim --noise 0.2 --seed 1 --limit 40
expect_rc 0 "$RLHF" train-rm --db p.db --init base.ckpt --out a.ckpt --epochs 2 --lr 1e-3 --seed 1
for b in 2 3; do
    expect_rc 0 "$RLHF" train-rm --db p.db --init base.ckpt --out b$b.ckpt --epochs 2 --lr 1e-3 --seed $b --bootstrap $b
done
[ "$(sql p.db "select json_extract(config, '$.bootstrap') from runs where kind = 'rm' order by id desc limit 1")" = 3 ] ||
    die "the run keeps its bootstrap seed"
expect_rc 2 "$RLHF" train-rm --db p.db --init base.ckpt --out x.ckpt --bootstrap 0
expect_rc 2 "$RLHF" score --db p.db --rm a.ckpt,b2.ckpt --in x.jsonl
expect_rc 1 "$RLHF" score --db p.db --rm a.ckpt,
contains "$ERR" "two reward models or more"
ens=a.ckpt,b2.ckpt,b3.ckpt
expect_rc 0 "$RLHF" score --db p.db --rm $ens
contains "$OUT" "disagreement of"
for m in a b2 b3; do
    [ "$(sql p.db "select count(*) from scores s join models m on m.id = s.model_id where m.path like '%/$m.ckpt'")" = \
        "$(sql p.db "select count(*) from candidates")" ] || die "member $m scored every candidate"
done
/usr/bin/python3 - "$ens" <<'PY' || die "the stored disagreement"
import sqlite3, sys, math, itertools
db = sqlite3.connect("p.db")
ens = db.execute("select id from models where name = ?", (sys.argv[1],)).fetchone()[0]
members = [db.execute("select id from models where path like ?", ("%/" + m,)).fetchone()[0] for m in sys.argv[1].split(",")]
z = {}
for j, m in enumerate(members):
    s = dict(db.execute("select candidate_id, score from scores where model_id = ?", (m,)))
    n = len(s); mu = sum(s.values()) / n; sd = (sum(v * v for v in s.values()) / n - mu * mu) ** 0.5
    for c, v in s.items():
        z.setdefault(c, [0] * len(members))[j] = (v - mu) / sd
by = {}
for c, p in db.execute("select id, prompt_id from candidates"):
    by.setdefault(p, []).append(c)
stored = dict(db.execute("select prompt_id, margin from prompt_margins where model_id = ?", (ens,)))
assert len(stored) == sum(len(c) >= 2 for c in by.values()), len(stored)
for p, cs in by.items():
    if len(cs) < 2: continue
    ds = []
    for a, b in itertools.combinations(sorted(cs), 2):
        d = [z[a][j] - z[b][j] for j in range(len(members))]
        mu = sum(d) / len(d)
        ds.append(math.sqrt(max(sum((x - mu) ** 2 for x in d) / len(d), 0)))
    assert abs(stored[p] + sum(ds) / len(ds)) < 1e-6, (p, stored[p], sum(ds) / len(ds))
assert any(v < 0 for v in stored.values())
PY
# the most disputed unranked prompts come first
expect_rc 0 "$RLHF" label --db p.db --auto demo --as ens --order uncertain --rm $ens --limit 3
contains "$OUT" "ens ranked 3 prompts"
got=$(sql p.db "select group_concat(prompt_id) from (select r.prompt_id from rankings r join labelers l
    on l.id = r.labeler_id where l.name = 'ens' order by r.prompt_id)")
want=$(sql p.db "select group_concat(prompt_id) from (select prompt_id from (select m.prompt_id from prompt_margins m
    join models e on e.id = m.model_id where e.name = '$ens' and m.prompt_id not in
    (select prompt_id from rankings where labeler_id = (select id from labelers where name = 'sim'))
    and (select split from prompts where id = m.prompt_id) = 'train'
    order by m.margin, m.prompt_id limit 3) order by prompt_id)")
[ "$got" = "$want" ] || die "ens ranked $got, the largest disagreements are $want"
exit 0
