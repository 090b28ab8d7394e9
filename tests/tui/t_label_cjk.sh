# CJK and emoji on the labeling screen: wrapped by display width (two columns
# each), never past the edge; typed into a note; words that differ between
# near-identical candidates highlighted, in colour and on a monochrome screen.
. "$ROOT/tests/e2e/lib.sh"
. "$ROOT/tests/tui/tmux_lib.sh"
export RLHF_DB=c.db
expect_rc 0 "$RLHF" init c.db
CJK=春眠不觉晓处处闻啼鸟夜来风雨声花落知多少床前明月光疑是地上霜举头望明月低头思故乡白日依山尽黄河入海流
/usr/bin/python3 - "$CJK" <<'P'
import json, sys
cjk = sys.argv[1]
# 36 wide characters + one emoji = 74 columns: one line at 80x24 (indent 4,
# and the last column is the scroll marker's), the next wide character wraps
a = cjk[:36] + "🌸" + cjk[36:49]
rows = [a, "The cat sat on the mat.", "The dog sat on the mat."]
with open("c.jsonl", "w") as f:
    for i, t in enumerate(rows):
        f.write(json.dumps({"prompt": "写一首关于春天的诗 🌸", "completion": t, "model": "m%d" % i}, ensure_ascii=False) + "\n")
P
expect_rc 0 "$RLHF" candidates import c.jsonl

# widths: every captured line fits in 80 columns, counted as the terminal does
fits() {
    screen | /usr/bin/python3 -c '
import sys, unicodedata
w = int(sys.argv[1])
for line in sys.stdin.read().splitlines():
    cols = sum(2 if unicodedata.east_asian_width(c) in "WF" else 0 if unicodedata.combining(c) else 1 for c in line)
    if cols > w: sys.exit("too wide (%d): %s" % (cols, line))
' "$1" || die "a line is wider than the pane"
}
tui_start 80 24 "$RLHF label --as bob"
wait_for "写一首关于春天的诗 🌸"
# [1] is focused; if the CJK answer is another one, move the focus to it
wait_for "Order: (none yet)"  # the last part of the first frame
pos=$(awk '/^  \[[0-9]\]/ { n = substr($1, 2, 1) } /^    春眠/ { print n; exit }' screen.txt)
i=1; while [ -n "$pos" ] && [ $i -lt "$pos" ]; do keys j; i=$((i + 1)); done
wait_for "    春眠不觉晓处处闻啼鸟夜来风雨声花落知多少床前明月光疑是地上霜举头望明月低🌸"
wait_for "    头思故乡白日依山尽黄河入海"
fits 80
# a narrower pane wraps earlier, still by columns
$TM resize-window -t t -x 41 -y 20
wait_for "    春眠不觉晓处处闻啼鸟夜来风雨声花落"
fits 41
$TM resize-window -t t -x 80 -y 24
wait_for "明月低🌸"
# a CJK + emoji note
keys n
type_text "诗很美 🌸 ok"
keys Enter
wait_for "note: 诗很美 🌸 ok"
fits 80
# the differing word of the near-identical pair is highlighted (black on yellow)
$TM capture-pane -p -e -t t > esc.txt
grep -q '43mcat' esc.txt || grep -q '43mdog' esc.txt || die "no diff highlight in colour"
keys q
wait_for "unsubmitted work here"
keys y
wait_for "EXITED 0"
[ "$(sql c.db "SELECT count(*) FROM assignments WHERE status = 'claimed'")" = 1 ] || die "claim kept for resume"
tui_cleanup

# monochrome, and a C locale (falls back to C.UTF-8): the highlight becomes
# underline and wide text still renders
tui_start 80 24 "env NO_COLOR=1 LC_ALL=C LANG=C $RLHF label --as bob"
wait_for "resumed prompt 1"
wait_for "写一首关于春天的诗 🌸"
$TM capture-pane -p -e -t t > esc.txt
grep -q '4mcat\|4mdog\|4;1mcat\|1;4mcat\|1;4mdog\|4;1mdog' esc.txt || { cat -v esc.txt; die "no diff highlight in monochrome"; }
grep -q '\[3[0-7]m\|\[4[0-7]m' esc.txt && die "colours on a monochrome screen"
wait_for "note: 诗很美 🌸 ok" # the draft came back
keys q
wait_for "unsubmitted work here"
keys y
wait_for "EXITED 0"
# no usable terminal: a clear error, not a crash
if command -v script >/dev/null; then
    expect_rc 1 env TERM=no-such-terminal script -qec "$RLHF label --as bob" /dev/null
    contains "$OUT" "cannot start the terminal screen"
fi
exit 0
