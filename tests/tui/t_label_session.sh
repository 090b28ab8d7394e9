# A whole labeling session on the real binary in tmux at 80x24: an expression
# validated as typed, a score, a flag, a note, undo/redo, an unknown key, the
# help and guidelines overlays, a resize, submit, next, skip with a reason,
# quit; then --review stores a changed ranking as a new version.
. "$ROOT/tests/e2e/lib.sh"
. "$ROOT/tests/tui/tmux_lib.sh"
export RLHF_DB=s.db
expect_rc 0 "$RLHF" init s.db
cat > c.jsonl <<'J'
{"prompt":"Name a fruit.","completion":"An apple is a fruit.","model":"a"}
{"prompt":"Name a fruit.","completion":"A pear is a fruit.","model":"b"}
{"prompt":"Name a fruit.","completion":"Rocks.","model":"c"}
{"prompt":"Name a vegetable.","completion":"A carrot.","model":"a"}
{"prompt":"Name a vegetable.","completion":"Lead.","model":"b"}
J
expect_rc 0 "$RLHF" candidates import c.jsonl
expect_rc 0 "$RLHF" label --set-flags "off-topic,rude"
echo "Rank by helpfulness first. GUIDELINE-MARKER" > guide.txt

tui_start 80 24 "$RLHF label --as alice --guidelines guide.txt"
wait_for "Prompt 1"
wait_for "done 0  open 1"
wait_for "?:help"
# near-identical candidates point at each other
grep -q "~\[" screen.txt || die "no near-identical marker"
keys e
type_text "2>1"
wait_for "2 of 3 ranked"
type_text ">9"
wait_for "no candidate 9 (there are 1-3)"
keys BSpace
type_text "3"
wait_for "ok: Enter applies"
keys Enter
wait_for "Order: 2>1>3"
keys s 5
wait_for "scored 5"
keys f 1
wait_for "flagged off-topic"
keys n
type_text "nice 很好"
keys Enter
wait_for "note: nice 很好"
keys u
wait_gone "note: nice"
keys r
wait_for "note: nice 很好"
keys Z
wait_for "key 'Z' does nothing here; press ? for help"
keys '?'
wait_for "Keys (any other key closes"
wait_for "undo / redo"
keys Escape
wait_gone "Keys (any other key closes"
keys g
wait_for "GUIDELINE-MARKER"
keys Escape
wait_gone "GUIDELINE-MARKER"
# resize mid-session: redrawn at the new size, nothing lost
$TM resize-window -t t -x 50 -y 14
wait_for "Order: 2>1>3"
screen | awk 'length($0) > 50 { bad = 1 } END { exit bad }' || die "lines wider than the pane"
[ "$(screen | wc -l)" -le 14 ] || die "more lines than the pane"
$TM resize-window -t t -x 80 -y 24
wait_for "?:help"
keys Enter
wait_for "saved prompt 1"
wait_for "Prompt 2"
wait_for "done 1  open 0"
[ "$(sql s.db "SELECT count(*) FROM rankings WHERE prompt_id = 1 AND note = 'nice 很好' AND NOT simulated AND source = 'tui'")" = 1 ] || die "ranking"
# the focused candidate was [1] (shown_pos 0): it got the score and the flag
[ "$(sql s.db "SELECT count(*) FROM ranking_items WHERE shown_pos = 0 AND rank = 2 AND likert = 5 AND flags = '[\"off-topic\"]'")" = 1 ] || die "items"
[ "$(sql s.db "SELECT count(*) FROM ranking_items WHERE shown_pos = 1 AND rank = 1 AND likert IS NULL AND flags IS NULL")" = 1 ] || die "first place"
[ "$(sql s.db "SELECT count(*) FROM ranking_items WHERE shown_pos = 2 AND rank = 3")" = 1 ] || die "last place"
[ "$(sql s.db "SELECT time_spent_ms > 0 AND time_spent_ms < 60000 FROM rankings")" = 1 ] || die "time spent"
# submit refuses an incomplete ranking
keys Enter
wait_for "rank all 2 candidates first"
# skip with a reason (a reason is required)
keys S Enter
wait_for "a reason is needed"
type_text "unclear prompt"
keys Enter
wait_for "skipped prompt 2"
wait_for "Nothing left to label"
keys q
wait_for "EXITED 0"
grep -q "alice: 1 ranked, 1 skipped this session" screen.txt || die "summary"
[ "$(sql s.db "SELECT skip_reason FROM rankings WHERE skipped")" = "unclear prompt" ] || die "skip reason"
tui_cleanup

# review: the first ranking comes back as it was; a change is a new version
tui_start 80 24 "$RLHF label --as alice --review"
wait_for "(review"
wait_for "Order: 2>1>3"
wait_for "note: nice 很好"
keys e C-u
type_text "1>2>3"
keys Enter
wait_for "Order: 1>2>3"
keys Enter
wait_for "saved a new version of prompt 1"
keys q
wait_for "EXITED 0"
[ "$(sql s.db "SELECT count(*) FROM rankings WHERE prompt_id = 1")" = 2 ] || die "versions"
[ "$(sql s.db "SELECT version FROM rankings WHERE prompt_id = 1 AND is_current")" = 2 ] || die "current version"
[ "$(sql s.db "SELECT count(*) FROM ranking_items i JOIN rankings r ON r.id = i.ranking_id
  WHERE r.is_current AND r.prompt_id = 1 AND i.shown_pos = 0 AND i.rank = 1 AND i.likert = 5")" = 1 ] || die "new version content"
exit 0
