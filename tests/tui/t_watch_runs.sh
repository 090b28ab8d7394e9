# rlhf watch with no run in progress (issue 22): it opens the newest training
# run, not the evaluation written after it; each chart has a step axis (first
# step, "step", last step); an evaluation (n) shows its figures as values
# under readable names ("sft: win rate", not "a.win_rate").
. "$ROOT/tests/e2e/lib.sh"
. "$ROOT/tests/tui/tmux_lib.sh"
export RLHF_DB=w.db
expect_rc 0 "$RLHF" init w.db
/usr/bin/python3 - w.db <<'PY' || die "could not fill the store"
import math, sqlite3, sys
db = sqlite3.connect(sys.argv[1])
for name, kind in (('sft', 'sft'), ('ppo', 'policy')):
    db.execute("INSERT INTO models(name, kind, path) VALUES(?, ?, ?)", (name, kind, name + '.ckpt'))
r = db.execute("INSERT INTO runs(kind, config, status) VALUES('pretrain', '{}', 'done')").lastrowid
db.executemany("INSERT INTO metrics VALUES(?,?,?,?)", [(r, s, 'train_loss', 5 * math.exp(-s / 10)) for s in range(1, 41)])
e = db.execute("INSERT INTO runs(kind, config, status, input_model_id, output_model_id, note) VALUES('eval', '{}', 'done',"
               " (SELECT id FROM models WHERE name = 'sft'), (SELECT id FROM models WHERE name = 'ppo'),"
               " 'sft vs ppo on 8 prompts, judge judge:demo')").lastrowid
for k, v in {'a.win_rate': .3, 'b.win_rate': .7, 'b.win_lo': .6, 'b.win_hi': .8, 'b.kl': 1.5}.items():
    db.execute("INSERT INTO metrics VALUES(?,?,?,?)", (e, 0, k, v))
db.commit()
PY
tui_start 80 24 "$RLHF watch --interval 0.2"
wait_for "run 1  pretrain"
wait_for "train_loss  last"
screen > s1.txt
grep -q '1─*step─*40' s1.txt || { cat s1.txt; die "no step axis under the chart"; }
keys n
wait_for "run 2  eval"
wait_for "sft: win rate"
wait_for "ppo: win rate, 95% low"
screen > s2.txt
not_contains "$(cat s2.txt)" "a.win_rate"
keys q
wait_for "EXITED 0"
