# The labeling screen says why a prompt came now: in uncertain order the RM's
# margin between the two best candidates (the smallest first) or an ensemble's
# disagreement (the largest first), in random order the seed; queue order
# shows nothing extra.
. "$ROOT/tests/e2e/lib.sh"
. "$ROOT/tests/tui/tmux_lib.sh"
export RLHF_DB=o.db
expect_rc 0 "$RLHF" init o.db
cat > c.jsonl <<'J'
{"prompt":"Name a fruit.","completion":"An apple is a fruit.","model":"a"}
{"prompt":"Name a fruit.","completion":"Rocks.","model":"b"}
{"prompt":"Name a vegetable.","completion":"A carrot.","model":"a"}
{"prompt":"Name a vegetable.","completion":"Lead.","model":"b"}
J
expect_rc 0 "$RLHF" candidates import c.jsonl
# the scores an RM gave (prompt 2 is the close call), and the margins score keeps
/usr/bin/python3 -c 'import sqlite3,sys; c=sqlite3.connect(sys.argv[1])
c.execute("insert into models(name, kind) values(\"rm-x\", \"rm\")")
rm = c.execute("select id from models where name = \"rm-x\"").fetchone()[0]
for cid, s in zip((1, 2, 3, 4), (0.9, 0.1, 0.52, 0.51)):
    c.execute("insert into scores(candidate_id, model_id, score) values(?, ?, ?)", (cid, rm, s))
c.execute("insert into prompt_margins(prompt_id, model_id, margin, n_scored) values(1, ?, 0.8, 2), (2, ?, 0.01, 2)", (rm, rm))
c.commit()' o.db
tui_start 80 24 "$RLHF label --as alice --order uncertain --overlap 3"
wait_for "Prompt 2  -- uncertain: RM margin 0.010 (rm-x)"
wait_for "Name a vegetable."
keys q
wait_for "EXITED 0"
tui_cleanup
tui_start 80 24 "$RLHF label --as bob --order random --seed 5 --overlap 3"
wait_for "random order (seed 5)"
keys q
wait_for "EXITED 0"
tui_cleanup
# an ensemble keeps its disagreement negated: the largest first, and the screen says so
/usr/bin/python3 -c 'import sqlite3,sys; c=sqlite3.connect(sys.argv[1])
e = c.execute("insert into models(name, kind) values(\"ens\", \"rm\")").lastrowid
c.execute("insert into prompt_margins(prompt_id, model_id, margin, n_scored) values(1, ?, -0.2, 2), (2, ?, -0.7, 2)", (e, e))
c.commit()' o.db
tui_start 80 24 "$RLHF label --as dora --order uncertain --rm ens --overlap 3"
wait_for "Prompt 2  -- uncertain: ensemble disagreement 0.700 (ens)"
keys q
wait_for "EXITED 0"
tui_cleanup
tui_start 80 24 "$RLHF label --as carl --overlap 3"
wait_for "Prompt 1"
screen | grep -q -- "Prompt 1  --" && die "queue order says nothing extra"
keys q
wait_for "EXITED 0"
exit 0
