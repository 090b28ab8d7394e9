# The labeling screen as a new labeler meets it (issue 13): every candidate on
# screen at 80x24 with a long prompt (opening at its top) and a long answer,
# (empty) answers, tabs at tab stops, the scroll marker in its own column,
# overlays over the message line, places past the end refused, e pre-filling,
# scores in one go (v), quit asking first and the draft coming back, saving...
# while another writer holds the lock, review of a skip, readable width.
. "$ROOT/tests/e2e/lib.sh"
. "$ROOT/tests/tui/tmux_lib.sh"
export RLHF_DB=s.db
expect_rc 0 "$RLHF" init s.db
/usr/bin/python3 - <<'P'
import json
prompt = "PROMPT-TOP " + " ".join("word%d" % i for i in range(500)) + " PROMPT-END"
answers = ["LONG-ANSWER " + " ".join("ans%d" % i for i in range(330)),
           "def f(x):\n\tif x:\n\t\treturn 1", "", "Short one."]
with open("c.jsonl", "w") as f:
    for i, a in enumerate(answers):
        f.write(json.dumps({"prompt": prompt, "completion": a, "model": "m%d" % i}) + "\n")
    for i, a in enumerate(["Paris.", "Lyon."]):
        f.write(json.dumps({"prompt": "Capital of France?", "completion": a, "model": "m%d" % i}) + "\n")
    f.write(json.dumps({"prompt": "Lonely prompt?", "completion": "only one", "model": "m0"}) + "\n")
P
[ "$(wc -c < c.jsonl)" -gt 5000 ] || die "fixture"
expect_rc 0 "$RLHF" candidates import c.jsonl

# to_skip: in review, pages on (Enter: unchanged) to the skipped prompt
to_skip() {
    _n=0
    while ! screen | grep -q "SKIPPED: not sure"; do
        _n=$((_n + 1)); [ $_n -lt 5 ] || { screen; die "the skip is not reviewable"; }
        keys Enter; sleep 0.3
    done
}
# focus_on PATTERN: moves the focus to the candidate whose header matches
focus_on() {
    keys k k k k k; sleep 0.2
    for _i in 1 2 3 4 5; do
        screen > screen.txt
        grep -q "^> .*$1" screen.txt && return 0
        keys j; sleep 0.2
    done
    cat screen.txt; die "no candidate matching $1"
}
tui_start 80 24 "$RLHF label --as ann"
wait_for "PROMPT-TOP"          # a long prompt opens at its top
wait_for "Order: (none yet)"
for k in 1 2 3 4; do grep -q "\[$k\] " screen.txt || { cat screen.txt; die "candidate $k is not on screen"; }; done
grep -q "^    (empty)" screen.txt || die "an empty answer is not shown as (empty)"
grep -q "more lines of the prompt (z: show all)" screen.txt || die "the cut prompt does not say so"
grep -q "    def f(x):" screen.txt || die "code answer"
# focus each candidate: the others stay on screen
for j in 1 2 3; do
    keys j; sleep 0.2; screen > screen.txt
    for k in 1 2 3 4; do grep -q "\[$k\] " screen.txt || { cat screen.txt; die "focus $j: candidate $k left the screen"; }; done
done
# the code answer's tabs are at tab stops when it has the room
focus_on "(3 lines)"
grep -q "^            if x:" screen.txt || { cat screen.txt; die "a tab is not a tab stop"; }
grep -q "^                    return 1" screen.txt || { cat screen.txt; die "two tabs are not two stops"; }
# expanded, the long text scrolls and the marker has its own column
focus_on "(32 lines)"
keys z
wait_for "expanded:"
keys Space Space Space
wait_for "ans329"
screen | awk 'length($0) >= 80 && substr($0, 79, 1) != " " && (substr($0, 80, 1) == "^" || substr($0, 80, 1) == "v") { bad = 1 } END { exit bad }' \
    || die "the scroll marker overwrites text"
screen | grep -q '^.\{79\}[v^]$' || { screen; die "no scroll marker in the last column"; }
keys z
wait_for "collapsed:"
# a place past the candidates is refused
keys 9
wait_for "no place 9: there are 4 candidates"
keys 1
wait_for "Order: "
keys e
wait_for "the current order is filled in"
keys C-u
type_text "1>2>3>4"
keys Enter
wait_for "Order: 1>2>3>4"
# scores in one go: v + one digit per candidate + Enter (6 keys instead of s+digit and moves)
keys v
type_text "7542"
keys Enter
wait_for "scored all 4"
grep -q "\[1\] #1 score 7" screen.txt || { cat screen.txt; die "score row"; }
screen | grep -q "\[4\] #4 score 2" || die "score row [4]"
# quitting with unsubmitted work asks; another key stays
keys q
wait_for "unsubmitted work here"
keys x
wait_for "not quitting"
keys C-c
wait_for "unsubmitted work here"
keys y
wait_for "EXITED 0"
tui_cleanup

# the draft comes back
tui_start 80 24 "$RLHF label --as ann"
wait_for "resumed prompt 1 where you left it"
wait_for "Order: 1>2>3>4"
screen | grep -q "\[1\] #1 score 7" || die "the draft lost the scores"
# overlays cover the message line (at 60x15)
$TM resize-window -t t -x 60 -y 15
wait_for "resumed prompt 1"
keys '?'
wait_for "Keys (any other key closes"
screen | grep -q "resumed prompt" && die "the message shows through the help"
keys Escape
# another writer holds the lock: saving... shows at once
/usr/bin/python3 - <<'P' &
import sqlite3, time
c = sqlite3.connect("s.db", isolation_level=None)
c.execute("BEGIN IMMEDIATE")
open("locked", "w").close()
time.sleep(3)
c.execute("COMMIT")
P
n=0; while [ ! -e locked ] && [ $n -lt 100 ]; do sleep 0.05; n=$((n + 1)); done
# edits go on while the lock is held: the draft waits for its turn, the screen does not
keys x
wait_for "of 4 ranked]" 1
keys u
wait_for "undone" 1
keys Enter
wait_for "saving..." 2
wait_for "saved prompt 1" 15
wait
# skip the next one with a reason
wait_for "Capital of France?"
keys S
type_text "not sure"
keys Enter
wait_for "skipped prompt"
# prompts with one candidate are named, not "every prompt has its rankings"
wait_for "Nothing left to label: 1 prompt has fewer than two"
keys q
wait_for "EXITED 0"
tui_cleanup
[ "$(sql s.db "SELECT count(*) FROM settings WHERE key LIKE 'draft.%'")" = 0 ] || die "a submitted draft was kept"

# review: the skip shows with its reason; Enter keeps it (no second version);
# ranking it replaces the skip
tui_start 100 30 "$RLHF label --as ann --review"
wait_for "Prompt"
to_skip
keys Enter
wait_for "unchanged:"
[ "$(sql s.db "SELECT count(*) FROM rankings r JOIN prompts p ON p.id = r.prompt_id WHERE p.text = 'Capital of France?'")" = 1 ] || die "an identical version was stored"
keys q
wait_for "EXITED 0"
tui_cleanup
tui_start 100 30 "$RLHF label --as ann --review"
to_skip
keys e
type_text "2>1"
keys Enter Enter
wait_for "saved a new version"
[ "$(sql s.db "SELECT skipped FROM rankings r JOIN prompts p ON p.id = r.prompt_id WHERE p.text = 'Capital of France?' AND r.is_current")" = 0 ] || die "the skip was not replaced"
keys q
wait_for "EXITED 0"
tui_cleanup

# wide terminals wrap at a readable width
tui_start 200 40 "$RLHF label --as bo --overlap 2"
wait_for "PROMPT-TOP"
screen | awk 'NR > 1 && length($0) > 105 { bad = 1 } END { exit bad }' || { screen; die "lines wider than ~100 columns"; }
keys q
wait_for "EXITED 0"
exit 0
