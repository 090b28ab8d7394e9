#!/bin/sh
# rlhf report on the small demo's project, read as a researcher reads it (issue 22):
# the final table has one row per (policy, judge) with the judge, the RM and the
# run ids; no chart puts curves of scales ten times apart on one axis; every
# chart names its y axis; headless Chromium lays the page out wide and at a
# 390 px phone's width and finds no text off its chart, no text over other text,
# chart text of 9 px or more, and no table wider than the screen; sibling
# policies' ratings are not joined by a line; a flag on 1 of N candidates reads
# with its digits; the eval judges stay out of the labelers' agreement.
. "$ROOT/tests/e2e/lib.sh"
CHROME=$(command -v chromium || command -v chromium-browser || true)
[ -n "$CHROME" ] || skip_missing "chromium is not installed (make deps installs it)"
export HOME="$PWD"
D="$TMP/demo"
(cd "$ROOT" && DEMO_SCALE=small DEMO_DIR="$D" sh samples/demo.sh >"$TMP/demo.out" 2>"$TMP/demo.err") ||
    die "demo failed: $(tail -n 20 "$TMP/demo.err")"
db="$D/demo.db"
# one flag on one ranked candidate of a labeler
/usr/bin/python3 - "$db" <<'PY' || die "could not flag a candidate"
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
db.execute("""UPDATE ranking_items SET flags = '["unsafe"]' WHERE rowid = (SELECT ri.rowid FROM ranking_items ri
    JOIN rankings r ON r.id = ri.ranking_id JOIN labelers l ON l.id = r.labeler_id
    WHERE l.name NOT LIKE 'judge:%' LIMIT 1)""")
db.commit()
PY
items=$(sql "$db" "SELECT count(*) FROM ranking_items ri JOIN rankings r ON r.id = ri.ranking_id
    JOIN labelers l ON l.id = r.labeler_id WHERE l.name NOT LIKE 'judge:%' AND r.is_current = 1 AND r.skipped = 0")
expect_rc 0 "$RLHF" report --db "$db" --out r.html
bad=
/usr/bin/python3 - r.html "$db" "$items" <<'PY'
import re, sqlite3, sys, xml.etree.ElementTree as ET
text = open(sys.argv[1], encoding='utf-8').read()
db = sqlite3.connect(sys.argv[2])
items = int(sys.argv[3])
root = ET.fromstring(text)
NS = '{http://www.w3.org/2000/svg}'
body = root.find('body')
# the final table: a judge column, one row per (judge, policy), run ids
tables = [t for t in root.iter('table') if (t.find('tr/th') is not None and t.find('tr/th').text == 'judge')]
assert tables, "no final table with a judge column"
for t in tables:
    judge, seen = None, set()
    for tr in t.findall('tr')[1:]:
        th = tr.find('th')
        if th is not None: judge = th.text
        tds = tr.findall('td')
        pol = ''.join(tds[0].itertext())
        assert judge and judge.startswith('judge:'), judge
        assert (judge, pol) not in seen, f"two rows for {pol} by {judge}"
        seen.add((judge, pol))
        assert re.match(r'\d+', ''.join(tds[1].itertext())), "no run id"
    assert len({j for j, _ in seen}) >= 2, seen
svgs = list(root.iter(f'{NS}svg'))
title = lambda s: s.find(f'{NS}title').text
win = [s for s in svgs if title(s).startswith('Win rate')]
for s in win:
    cats = [t.text for t in s.iter(f'{NS}text') if t.get('y') and float(t.get('y')) > 214 and t.get('class') == 'ax' and t.text not in ('policy',)]
    assert len(cats) == len(set(cats)), f"repeated policies on the win-rate axis: {cats}"
# every chart names its y axis
for s in svgs:
    if 'no finite values' in ''.join(s.itertext()): continue
    assert any((t.get('transform') or '').startswith('rotate(-90 16 ') for t in s.iter(f'{NS}text')), f"no y-axis title: {title(s)}"
# no chart of a run holds curves whose largest values are ten times apart
run = None
for el in body.iter():
    if el.tag == 'h2': run = None
    if el.tag == 'h3' and (el.get('id') or '').startswith('run-'): run = int(el.get('id')[4:])
    if el.tag != f'{NS}svg' or run is None: continue
    names = [t.text for t in el.iter(f'{NS}text') if t.get('class') == 'lg' and t.text != 'KL target']
    if len(names) < 2: continue
    mags = [db.execute("SELECT max(abs(value)) FROM metrics WHERE run_id = ? AND name = ?", (run, n)).fetchone()[0] for n in names]
    mags = [m for m in mags if m is not None]
    assert len(mags) == len(names), (run, names)
    assert max(mags) <= 10 * min(mags), f"run {run}, {title(el)}: {dict(zip(names, mags))} on one axis"
# ratings by policy: points, no line between sibling policies
bt = [s for s in svgs if title(s).startswith('Bradley-Terry rating by policy')]
assert bt and not bt[0].findall(f'.//{NS}polyline'), "ratings by policy joined by a line"
# the flag share has its digits; the judges are out of the agreement
want = f"{100 / items:.2g}%"
assert re.search(r'<td>unsafe</td><td>1</td><td>' + re.escape(want) + '</td>', text), f"1 of {items} flagged is not {want}"
lab = text[text.index('id="labelers"'):]
matrix = lab[lab.index('Agreement matrix'):lab.index('Per labeler')]
assert 'judge:' not in matrix, "eval judges in the agreement matrix"
assert 'judge:demo' in lab[:lab.index('Agreement matrix')], "the judges left out are not named"
print(f"ok: {len(svgs)} charts, {len(tables)} final tables")
PY
[ $? -eq 0 ] || bad="the report reads wrong"
# Chromium: a copy of the page with a script that measures what it lays out
cat > measure.html <<'HTML'
<script>
window.addEventListener('load', function () {
  var out = {vw: window.innerWidth, docw: document.documentElement.scrollWidth, overflow: [], small: [], offcanvas: [], overlaps: []};
  document.querySelectorAll('table').forEach(function (t, i) {
    var box = t.parentElement, b = box.getBoundingClientRect();
    if (b.right > window.innerWidth + 0.5 || (t.getBoundingClientRect().width > b.width + 0.5 && getComputedStyle(box).overflowX == 'visible'))
      out.overflow.push(i);
  });
  out.minfs = 1e9;
  document.querySelectorAll('svg.chart').forEach(function (svg, k) {
    var sr = svg.getBoundingClientRect(), scale = svg.getScreenCTM().a;
    var texts = Array.prototype.slice.call(svg.querySelectorAll('text'));
    texts.forEach(function (t) {
      var fs = parseFloat(getComputedStyle(t).fontSize) * scale, b = t.getBoundingClientRect();
      out.minfs = Math.min(out.minfs, fs);
      if (fs < 9) out.small.push(k + ':' + t.textContent + ':' + fs.toFixed(1));
      if (b.left < sr.left - 0.5 || b.right > sr.right + 0.5 || b.top < sr.top - 0.5 || b.bottom > sr.bottom + 0.5)
        out.offcanvas.push(k + ':' + t.textContent);
    });
    for (var i = 0; i < texts.length; i++) for (var j = i + 1; j < texts.length; j++) {
      var a = texts[i].getBoundingClientRect(), c = texts[j].getBoundingClientRect();
      if (Math.min(a.right, c.right) - Math.max(a.left, c.left) > 1 && Math.min(a.bottom, c.bottom) - Math.max(a.top, c.top) > 1)
        out.overlaps.push(k + ':' + texts[i].textContent + '|' + texts[j].textContent);
    }
  });
  var pre = document.createElement('pre'); pre.id = 'measure'; pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
  if (window.parent !== window) window.parent.postMessage(pre.textContent, '*');
});
</script>
HTML
/usr/bin/python3 -c '
import sys; t = open("r.html", encoding="utf-8").read(); m = open("measure.html").read()
open("m.html", "w", encoding="utf-8").write(t.replace("</body>", m + "</body>"))'
# headless Chromium's window is 500 px at least: the phone is a 390 px frame
cat > phone.html <<'HTML'
<!DOCTYPE html><html><body style="margin:0"><iframe src="m.html" style="width:390px;height:3000px;border:0"></iframe>
<script>window.addEventListener('message', function (e) { var p = document.createElement('pre'); p.id = 'measure'; p.textContent = e.data; document.body.appendChild(p); });</script></body></html>
HTML
chrome() { timeout 120 "$CHROME" --headless --no-sandbox --disable-gpu --hide-scrollbars --no-first-run \
    --user-data-dir="$PWD/chrome" --virtual-time-budget=10000 "$@" 2>chrome.err; }
chrome --window-size=1000,2000 --dump-dom "file://$PWD/m.html" > wide.dom || { cat chrome.err; die "chromium could not load the report"; }
chrome --window-size=800,2000 --dump-dom "file://$PWD/phone.html" > phone.dom || { cat chrome.err; die "chromium could not load the phone frame"; }
/usr/bin/python3 - wide.dom phone.dom <<'PY' || die "the report is laid out wrong"
import html, json, re, sys
for path in sys.argv[1:]:
    m = re.search(r'<pre id="measure">(.*?)</pre>', open(path, encoding='utf-8').read(), re.S)
    assert m, f"{path}: the measuring script did not run"
    d = json.loads(html.unescape(m.group(1)))
    where = f"{path} at {d['vw']} px"
    assert d['docw'] <= d['vw'], f"{where}: the page is {d['docw']} px wide"
    assert not d['overflow'], f"{where}: tables wider than the screen: {d['overflow']}"
    assert not d['offcanvas'], f"{where}: text off its chart: {d['offcanvas'][:5]}"
    assert not d['overlaps'], f"{where}: text over text: {d['overlaps'][:5]}"
    assert not d['small'], f"{where}: chart text under 9 px: {d['small'][:5]}"
    print(f"{where}: smallest chart text {d['minfs']:.1f} px")
PY
[ -z "$bad" ] || die "$bad"
