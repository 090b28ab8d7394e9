# kill -9 in the middle of a labeling session: what was submitted stays, the
# unfinished prompt stays claimed (others do not get it), and starting again
# resumes at that same prompt.
. "$ROOT/tests/e2e/lib.sh"
. "$ROOT/tests/tui/tmux_lib.sh"
export RLHF_DB=r.db
expect_rc 0 "$RLHF" init r.db
: > c.jsonl
for i in 1 2 3; do
    printf '{"prompt":"Question %s?","completion":"Answer one to %s.","model":"a"}\n' $i $i >> c.jsonl
    printf '{"prompt":"Question %s?","completion":"Reply two for %s.","model":"b"}\n' $i $i >> c.jsonl
done
expect_rc 0 "$RLHF" candidates import c.jsonl

tui_start 80 24 "$RLHF label --as alice"
wait_for "Prompt 1"
keys e
type_text "2>1"
keys Enter
wait_for "Order: 2>1"
keys Enter
wait_for "saved prompt 1"
wait_for "Prompt 2"
keys e
type_text "1=2"
keys Enter
wait_for "Order: 1=2"
kill -9 "$(cat pane.pid)"
wait_for "EXITED 137"
[ "$(sql r.db "SELECT count(*) FROM rankings")" = 1 ] || die "the submitted ranking is gone"
[ "$(sql r.db "SELECT status FROM assignments WHERE prompt_id = 2")" = claimed ] || die "claim lost"
# another labeler does not get the claimed prompt meanwhile
expect_rc 0 "$RLHF" label --auto demo --as bot
contains "$OUT" "bot ranked 1 prompts"
[ "$(sql r.db "SELECT prompt_id FROM rankings r JOIN labelers l ON l.id = r.labeler_id WHERE l.name = 'bot'")" = 3 ] || die "bot took the claimed prompt"
tui_cleanup

tui_start 80 24 "$RLHF label --as alice"
wait_for "resumed prompt 2 where you left it"
wait_for "Prompt 2"
wait_for "done 1 "
wait_for "Order: 1=2" # the draft: what was on screen when it was killed
keys e C-u
type_text "1>2"
keys Enter Enter
wait_for "saved prompt 2"
wait_for "Nothing left to label"
keys q
wait_for "EXITED 0"
[ "$(sql r.db "SELECT count(*) FROM rankings")" = 3 ] || die "rankings"
[ "$(sql r.db "SELECT count(*) FROM rankings r JOIN labelers l ON l.id = r.labeler_id WHERE l.name = 'alice'")" = 2 ] || die "alice"
[ "$(sql r.db "SELECT count(*) FROM assignments WHERE status = 'done'")" = 3 ] || die "assignments"
[ "$(sql r.db "SELECT count(*) FROM (SELECT prompt_id FROM rankings GROUP BY prompt_id HAVING count(*) > 1)")" = 0 ] || die "double"
exit 0
