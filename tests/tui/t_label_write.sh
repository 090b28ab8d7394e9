# Writing answers on the labeling screen (--task write) in a real editor: a
# script set as $EDITOR writes known text (CJK, a 5,000-character answer),
# cancels (empty, unchanged), fails, or is killed mid-edit (kill -9): the draft
# stays in DB.drafts/ and comes back; nothing stored is lost. Then a labeler
# never ranks a prompt holding her own answer, and the rank screen's w key.
. "$ROOT/tests/e2e/lib.sh"
. "$ROOT/tests/tui/tmux_lib.sh"
export RLHF_DB=w.db
expect_rc 0 "$RLHF" init w.db
sky_candidates 3 > c.jsonl
expect_rc 0 "$RLHF" candidates import c.jsonl
D=$PWD
cat > ed.sh <<'S'
#!/bin/sh
# the test's editor: what it does is in $D/mode; it keeps what it saw
f="$1"
cp "$f" "$D/seen.txt"
rest() { sed -n '/^# -* >8 -*$/,$p' "$f"; }
case $(cat "$D/mode") in
text) { cat "$D/answer.txt"; rest; } > "$f.new"; mv "$f.new" "$f" ;;
kill) { printf 'half written\n'; rest; } > "$f.new"; mv "$f.new" "$f"; kill -9 $$ ;;
keep) : ;;
empty) : > "$f" ;;
fail) exit 3 ;;
esac
S
chmod +x ed.sh
mode() { echo "$1" > mode; }
CJK='春眠不觉晓，处处闻啼鸟。夜来风雨声，花落知多少。🌸'
printf '%s\n' "$CJK" > answer.txt
mode text
tui_start 100 30 "env D=$D EDITOR=$D/ed.sh VISUAL= $RLHF label --as ann --task write"
wait_for "task write"
wait_for "open 2"  # besides the one on screen
wait_for "What color is the sky on day 1?"
keys w
wait_for "saved your answer to prompt 1"
# the editor saw the prompt as commented context below the scissors
grep -q '^# -* >8 -*$' seen.txt || die "no scissors line"
grep -q '^# What color is the sky on day 1?' seen.txt || die "prompt not shown as a comment"
[ "$(sql w.db "SELECT c.text FROM demonstrations d JOIN candidates c ON c.id = d.candidate_id")" = "$CJK" ] || die "CJK answer"
[ "$(sql w.db "SELECT m.name FROM candidates c JOIN models m ON m.id = c.model_id JOIN demonstrations d ON d.candidate_id = c.id")" = "human:ann" ] || die "model human:ann"
[ "$(sql w.db "SELECT edited_from IS NULL FROM demonstrations")" = 1 ] || die "from empty"
[ "$(sql w.db "SELECT edit_distance FROM demonstrations")" = 25 ] || die "edit distance of 25 code points"
[ "$(sql w.db "SELECT time_spent_ms >= 0 FROM demonstrations")" = 1 ] || die "time spent"
# prompt 2: start from the focused candidate, and the editor is killed mid-edit
wait_for "What color is the sky on day 2?"
mode kill
keys W
wait_for "was killed by signal 9"
ls w.db.drafts/answer-*-2.txt >/dev/null 2>&1 || die "no draft left by the killed editor"
grep -q '^half written$' w.db.drafts/answer-*-2.txt || die "draft text"
grep -q '^# rlhf: edited-from [1-9]' w.db.drafts/answer-*-2.txt || die "draft names its origin"
[ "$(sql w.db "SELECT count(*) FROM demonstrations")" = 1 ] || die "nothing stored from a killed editor"
# an editor that fails keeps the draft too
mode fail
keys w
wait_for "exited with status 3"
keys q
wait_for "EXITED 0"
contains "$(screen)" "1 answers written"
tui_cleanup
# the next session resumes prompt 2 and offers the draft; saved as it stands
tui_start 100 30 "env D=$D EDITOR=$D/ed.sh VISUAL= $RLHF label --as ann --task write"
wait_for "a draft of your answer to prompt 2 is kept"
mode keep
keys w
wait_for "saved your answer to prompt 2"
wait_for "from your kept draft"
[ "$(sql w.db "SELECT c.text FROM demonstrations d JOIN candidates c ON c.id = d.candidate_id WHERE c.prompt_id = 2")" = "half written" ] || die "recovered draft"
[ "$(sql w.db "SELECT e.prompt_id FROM demonstrations d JOIN candidates e ON e.id = d.edited_from")" = 2 ] || die "edited_from from the draft"
ls w.db.drafts/answer-*-2.txt >/dev/null 2>&1 && die "draft left after storing"
# prompt 3: unchanged and empty texts cancel, then a 5,000-character answer
wait_for "What color is the sky on day 3?"
mode keep
keys W
wait_for "cancelled: an unchanged answer"
mode empty
keys w
wait_for "cancelled: an empty answer"
ls w.db.drafts/answer-*-3.txt >/dev/null 2>&1 && die "a cancelled draft stays"
/usr/bin/python3 -c '
import sys
line = "Line %03d: 天空是蓝色的 the sky is blue."
text = "\n".join(line % i for i in range(200))
text = (text * 2)[:4999] + "."
assert len(text) == 5000
open("answer.txt", "w").write(text + "\n")'
mode text
keys W
wait_for "saved your answer to prompt 3"
/usr/bin/python3 -c '
import sqlite3
t = sqlite3.connect("w.db").execute("SELECT c.text FROM demonstrations d JOIN candidates c ON c.id = d.candidate_id WHERE c.prompt_id = 3").fetchone()[0]
want = open("answer.txt").read().rstrip("\n")
assert t == want, (len(t), len(want))
assert len(t) == 5000, len(t)' || die "5,000-character answer"
wait_for "Nothing left to write"
keys q
wait_for "EXITED 0"
tui_cleanup
[ "$(sql w.db "SELECT count(*) FROM demonstrations WHERE labeler_id = (SELECT id FROM labelers WHERE name = 'ann')")" = 3 ] || die "three answers"

# ann never ranks a prompt holding her answer; bob ranks hers with the models'
tui_start 100 30 "$RLHF label --as ann"
wait_for "Nothing left to label"
keys q
wait_for "EXITED 0"
tui_cleanup
expect_rc 0 "$RLHF" label --auto demo --as bob
contains "$OUT" "ranked 3 prompts"
[ "$(sql w.db "SELECT count(*) FROM ranking_items ri JOIN candidates c ON c.id = ri.candidate_id JOIN models m ON m.id = c.model_id WHERE m.name = 'human:ann'")" = 3 ] || die "bob ranked ann's answers"

# the rank screen's w: carl writes while ranking; his answer is not on his screen
sky_candidates 4 | tail -n 3 > c4.jsonl
expect_rc 0 "$RLHF" candidates import c4.jsonl
printf 'The sky is blue on day 4, carl says.\n' > answer.txt
mode text
tui_start 100 30 "env D=$D EDITOR=$D/ed.sh VISUAL= $RLHF label --as carl --overlap 2"
wait_for "task rank"
wait_for "What color is the sky on day"
keys w
wait_for "saved your answer to prompt"
keys q
wait_for "EXITED 0"
tui_cleanup
p=$(sql w.db "SELECT c.prompt_id FROM demonstrations d JOIN candidates c ON c.id = d.candidate_id JOIN labelers l ON l.id = d.labeler_id WHERE l.name = 'carl'")
[ -n "$p" ] || die "carl's answer stored"
# the resumed screen (same claim) leaves his own answer out
tui_start 100 30 "env D=$D EDITOR=$D/ed.sh VISUAL= $RLHF label --as carl --overlap 2"
wait_for "resumed prompt $p"
not_contains "$(screen)" "carl says"
# F flags the prompt itself: held back, and carl's claim on it is skipped with the flag as reason
keys F
wait_for "flag the prompt itself"
keys 2
wait_for "skipped prompt $p"
[ "$(sql w.db "SELECT flag FROM prompt_flags WHERE prompt_id = $p")" = unsafe ] || die "prompt flag stored"
[ "$(sql w.db "SELECT skip_reason FROM rankings r JOIN labelers l ON l.id = r.labeler_id WHERE l.name = 'carl'")" = "flagged prompt: unsafe" ] || die "skipped with the flag"
keys q
wait_for "EXITED 0"
tui_cleanup
# an editor that does not exist: said, and nothing is lost
tui_start 100 30 "env EDITOR=/nonexistent/ed VISUAL= $RLHF label --as dan --task write --overlap 3"
wait_for "task write"
keys w
wait_for "no such editor?"
keys q
wait_for "EXITED 0"
echo ok
