# Long text scrolls (PgDn/PgUp, and following the focus); a window too small
# says so and recovers on resize; an empty-queue screen; no terminal: an error.
. "$ROOT/tests/e2e/lib.sh"
. "$ROOT/tests/tui/tmux_lib.sh"
export RLHF_DB=l.db
expect_rc 0 "$RLHF" init l.db
long=$(i=1; while [ $i -le 60 ]; do printf 'line%02d.\\n' $i; i=$((i + 1)); done)
printf '{"prompt":"Count to sixty.","completion":"%s","model":"long"}\n' "$long" > c.jsonl
printf '{"prompt":"Count to sixty.","completion":"Short answer.","model":"short"}\n' >> c.jsonl
expect_rc 0 "$RLHF" candidates import c.jsonl
expect_rc 1 "$RLHF" label --as nobody < /dev/null
contains "$ERR" "needs a terminal"

tui_start 80 24 "$RLHF label --as carol"
wait_for "Count to sixty."
# focus the long candidate
wait_for "Order: (none yet)"  # the last part of the first frame
grep -q "^> .*(60 lines)" screen.txt || keys j
wait_for "(60 lines)"
grep -q "^> .*(60 lines)" screen.txt || { screen; die "the long candidate is not focused"; }
wait_for "    line01."
grep -q "line60" screen.txt && die "the whole text fits? it should not"
keys NPage NPage NPage NPage NPage NPage
wait_for "    line60."
keys PPage PPage PPage PPage PPage PPage
wait_for "Count to sixty."
# moving the focus brings the other candidate into view
keys j
wait_for "Short answer."
$TM resize-window -t t -x 30 -y 8
wait_for "window too small"
$TM resize-window -t t -x 80 -y 24
wait_for "Count to sixty."
keys Escape
wait_for "?:help"
keys q
wait_for "EXITED 0"
exit 0
