#!/bin/sh
# samples/label_efficiency.sh, a few rounds small: each (order, repeat) is kept as
# a run of kind label-efficiency in the project (its RM's held-out accuracy at
# each number of ranked prompts), and `rlhf report` draws both orders' curves.
. "$ROOT/tests/e2e/lib.sh"
# the script reads samples/ from the repository's root; expect_rc's files stay here
expect_rc 0 sh -c 'cd "$ROOT" && RLHF="$RLHF" REPEATS=2 ROUNDS=2 BATCH=4 STEPS=60 exec sh samples/label_efficiency.sh "$0"' "$PWD/le"
contains "$OUT" "random order's final accuracy"
db=le/base.db
[ "$(sql $db "select count(*) from runs where kind = 'label-efficiency' and status = 'done'")" = 4 ] ||
    die "a run per order and repeat"
[ "$(sql $db "select count(*) from metrics m join runs r on r.id = m.run_id where r.kind = 'label-efficiency'
      and m.name = 'heldout_accuracy' and m.value between 0 and 1")" = 8 ] || die "a point per round"
[ "$(sql $db "select group_concat(distinct json_extract(config, '$.order')) from runs where kind = 'label-efficiency'")" = \
    "random,uncertain" ] || die "both orders"
# the points are the curve file's
/usr/bin/python3 - $db le/curve.tsv <<'PY' || die "the runs hold the curve file's points"
import csv, json, sqlite3, sys
db = sqlite3.connect(sys.argv[1])
got = {(json.loads(c)["order"], json.loads(c)["repeat"], s, round(v, 9)) for c, s, v in db.execute(
    "select r.config, m.step, m.value from metrics m join runs r on r.id = m.run_id where r.kind = 'label-efficiency'")}
want = {(r["order"], int(r["repeat"]), int(r["ranked"]), round(float(r["accuracy"]), 9))
        for r in csv.DictReader(open(sys.argv[2]), delimiter="\t")}
assert got == want, (got, want)
PY
expect_rc 0 "$RLHF" report --db $db --out r.html
page=$(cat r.html)
contains "$page" '<h2 id="label-efficiency">Label efficiency</h2>'
contains "$page" "RM accuracy by labeling order"
contains "$page" "<td>uncertain</td>"
not_contains "$page" ": label-efficiency</h3>"
