# The labeling screen in a labeling team's second week (issue 22): a digit is
# the focused candidate's final place (3, 2, 1, 4 going down gives 3>2>1>4)
# and a clash shows at once; a digit then > or = starts an expression; many
# candidates at 80x24 and short ones at 200x50 fill the screen before
# folding; v scores are checked as they are typed; the key hints and the help
# never cut a key's name (80x24, 60x20); identical answers are marked and d
# ties them; scores that contradict the order warn once, then submit.
. "$ROOT/tests/e2e/lib.sh"
. "$ROOT/tests/tui/tmux_lib.sh"
# mkdb DB PROMPT ANSWER...: a project with one prompt and these answers
mkdb() {
    _db=$1; shift
    "$RLHF" init "$_db" >/dev/null || die "init $_db"
    /usr/bin/python3 - "$@" > c.jsonl <<'P'
import json, sys
p = sys.argv[1]
for i, a in enumerate(sys.argv[2:]):
    print(json.dumps({"prompt": p, "completion": a.replace("\\n", "\n"), "model": "m%d" % i}))
P
    "$RLHF" candidates import --db "$_db" c.jsonl >/dev/null || die "import into $_db"
}
order() { screen | sed -n 's/^Order: \([0-9>=]*\).*/\1/p'; }

# digits are places; a clash is named; then an expression typed straight away
export RLHF_DB=d.db
mkdb d.db "Name a colour." "Red." "Blue." "Green." "Black."
tui_start 80 24 "$RLHF label --as ann"
wait_for "Order: (none yet)"
keys 3; wait_for "[1] at place 3 of 4"
screen | grep -q "^> \[1\] #3" || { screen; die "the place is not shown beside [1]"; }
keys j 2; wait_for "[2] at place 2"
keys j 1; wait_for "[3] at place 1"
keys j 4; wait_for "Order: 3>2>1>4"
keys k 2; wait_for "clash: [3] and [2] both at place 2"
screen | grep -q "#2 CLASH" || { screen; die "the clash is not marked beside the candidates"; }
keys C
wait_for "Order: (none yet)"
# 2 then > : an expression, the digit's place taken back
keys 2 '>'
wait_for "Ranking: 2>"
type_text "1=3>4"
keys Enter
wait_for "Order: 2>1=3>4"
# the footer at 80 and at 60 columns keeps whole key names, Enter and q among them
screen | tail -n 1 > foot.txt
grep -q "Enter:submit" foot.txt && grep -q "q:quit" foot.txt || { cat foot.txt; die "80x24: Enter:submit or q:quit missing"; }
$TM resize-window -t t -x 60 -y 20
sleep 0.3
screen | tail -n 1 > foot.txt
grep -q "Enter:submit" foot.txt && grep -q "q:quit" foot.txt || { cat foot.txt; die "60x20: Enter:submit or q:quit missing"; }
grep -qE '(^|  )[^ ]*:[^ ]*$' foot.txt || die "footer"
$TM resize-window -t t -x 80 -y 24
keys '?'
wait_for "Keys (any other key closes"
screen | tr '\n' ' ' | tr -s ' ' | grep -q "it is kept as a draft)" || { screen; die "a help line is cut"; }
keys Escape
# v: checked while typing
keys v
type_text "78"
wait_for "'8' is not a score"
keys BSpace
wait_for "1 of 4: [2] next"
type_text "111"
wait_for "all 4: Enter applies"
keys Enter
wait_for "scored all 4"
keys q y
wait_for "EXITED 0"
tui_cleanup

# scores against the order: warned once, then submitted
export RLHF_DB=w.db
mkdb w.db "Say hi." "Hi." "Hello." "Hey." "Yo."
tui_start 80 24 "$RLHF label --as ann"
wait_for "Order: (none yet)"
keys e; type_text "1>2>3>4"; keys Enter
wait_for "Order: 1>2>3>4"
keys v; type_text "1777"; keys Enter
wait_for "scored all 4"
keys Enter
wait_for "scores vs order: [1]=1, [2]=7; Enter again submits"
keys Enter
wait_for "saved prompt 1"
keys q
wait_for "EXITED 0"
tui_cleanup

# identical answers: marked, and d ties every copy
export RLHF_DB=i.db
mkdb i.db "What is 2+2?" "Four." "Four." "Four." "Five."
"$RLHF" candidates list --db i.db --prompt 1 | grep -c "Four" | grep -q 1 && {
    # the importer keeps one per model and text: three models gave Four
    :; }
tui_start 80 24 "$RLHF label --as ann"
wait_for "Order: (none yet)"
n=$(screen | grep -c "identical")
[ "$n" -eq 3 ] || { screen; die "$n candidates marked identical, not 3"; }
for i in 1 2 3 4; do
    screen | grep -q "^> .*identical" && break
    keys j; sleep 0.2
done
keys d
wait_for "tied with its 2 identical copies"
o=$(order)
case $o in *=*=*) ;; *) screen; die "the copies are not tied: $o" ;; esac
keys q y
wait_for "EXITED 0"
tui_cleanup

# many candidates at 80x24: more than the focused one shows text; at 200x50
# short answers are whole
export RLHF_DB=m.db
set --
for i in 1 2 3 4 5 6 7 8 9 10 11 12; do set -- "$@" "ANS$i first line\\nANS$i second line"; done
mkdb m.db "Pick the best of twelve." "$@"
tui_start 80 24 "$RLHF label --as ann"
wait_for "Order: (none yet)"
n=$(screen | grep -c "^    ANS")
[ "$n" -ge 5 ] || { screen; die "80x24 with 12 candidates: only $n lines of answers on a 24-line screen"; }
[ "$(screen | grep -c '^ *$')" -le 2 ] || { screen; die "empty rows while answers are folded"; }
keys q
wait_for "EXITED 0"
tui_cleanup
export RLHF_DB=l.db
mkdb l.db "Four lines each." "A1\\nA2\\nA3\\nA4" "B1\\nB2\\nB3\\nB4" "C1\\nC2\\nC3\\nC4" "D1\\nD2\\nD3\\nD4"
tui_start 200 50 "$RLHF label --as ann"
wait_for "Order: (none yet)"
screen | grep -q "more line" && { screen; die "200x50: a 4-line answer is folded"; }
for c in A4 B4 C4 D4; do screen | grep -q "^    $c" || { screen; die "200x50: $c not shown"; }; done
keys q
wait_for "EXITED 0"
echo "ok"
