#!/bin/sh
# rlhf report rendered by a real browser: headless Chromium (Debian's chromium,
# `make deps`) lays the page out, its DOM holds every chart's SVG, and the PNG
# it paints shows the curves in their colour, wide and phone-sized.
. "$ROOT/tests/e2e/lib.sh"
CHROME=$(command -v chromium || command -v chromium-browser || true)
[ -n "$CHROME" ] || skip_missing "chromium is not installed (make deps installs it)"
export RLHF_DB=p.db HOME="$PWD"
expect_rc 0 "$RLHF" init p.db
/usr/bin/python3 - p.db <<'PY' || die "could not fill the store"
import math, sqlite3, sys
db = sqlite3.connect(sys.argv[1])
r = db.execute("INSERT INTO runs(kind, config, status) VALUES('ppo', '{\"kl_target\":3}', 'done')").lastrowid
for name, f in [('objective/kl', lambda s: s / 10), ('objective/scores', lambda s: math.log(s)),
                ('loss/policy_avg', lambda s: 1 / s), ('policy/clipfrac_avg', lambda s: 0.2)]:
    db.executemany("INSERT INTO metrics VALUES(?,?,?,?)", [(r, s, name, f(s)) for s in range(1, 51)])
db.commit()
PY
expect_rc 0 "$RLHF" report --out r.html
chrome() { timeout 120 "$CHROME" --headless --no-sandbox --disable-gpu --hide-scrollbars \
    --no-first-run --user-data-dir="$PWD/chrome" "$@" "file://$PWD/r.html" 2>chrome.err; }
chrome --dump-dom > dom.html || { cat chrome.err; die "chromium could not load the report"; }
chrome --window-size=1000,1400 --screenshot="$PWD/wide.png" >/dev/null || { cat chrome.err; die "no screenshot"; }
chrome --window-size=390,1400 --screenshot="$PWD/phone.png" >/dev/null || { cat chrome.err; die "no phone screenshot"; }
/usr/bin/python3 - dom.html wide.png phone.png <<'PY' || die "the rendered report is wrong"
import struct, sys, zlib
from html.parser import HTMLParser
class P(HTMLParser):
    def __init__(s): super().__init__(); s.tags = {}
    def handle_starttag(s, tag, a): s.tags[tag] = s.tags.get(tag, 0) + 1
p = P(); p.feed(open(sys.argv[1], encoding='utf-8').read())
# 4 curves in 4 groups (Loss, Reward, KL, Clip fraction): 4 charts, one target line
assert p.tags.get('svg') == 4, p.tags
assert p.tags.get('polyline') == 4, p.tags

def pixels(path):
    """Decodes an 8-bit RGB/RGBA PNG with the standard library; returns (w, h, rows)."""
    data = open(path, 'rb').read()
    assert data[:8] == b'\x89PNG\r\n\x1a\n', "not a PNG"
    pos, idat = 8, b''
    while pos < len(data):
        n, kind = struct.unpack('>I4s', data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        if kind == b'IHDR': w, h, depth, ctype = struct.unpack('>IIBB', body[:10])
        if kind == b'IDAT': idat += body
        pos += 12 + n
    assert depth == 8 and ctype in (2, 6), (depth, ctype)
    bpp = 3 if ctype == 2 else 4
    raw, stride, prev, rows, i = zlib.decompress(idat), w * bpp, bytearray(w * bpp), [], 0
    for _ in range(h):
        f, line = raw[i], bytearray(raw[i + 1:i + 1 + stride]); i += 1 + stride
        for x in range(stride):
            a = line[x - bpp] if x >= bpp else 0
            b, c = prev[x], prev[x - bpp] if x >= bpp else 0
            if f == 1: line[x] = (line[x] + a) & 255
            elif f == 2: line[x] = (line[x] + b) & 255
            elif f == 3: line[x] = (line[x] + (a + b) // 2) & 255
            elif f == 4:
                pa, pb, pc = abs(b - c), abs(a - c), abs(a + b - 2 * c)
                line[x] = (line[x] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append(bytes(line)); prev = line
    return w, h, bpp, rows

for path in sys.argv[2:]:
    w, h, bpp, rows = pixels(path)
    blue = red = 0
    for r in rows:
        for x in range(0, w * bpp, bpp):
            R, G, B = r[x], r[x + 1], r[x + 2]
            blue += B - R > 60 and B - G > 15 and 0x50 < G < 0xb0  # #1f77b4, not the links' blue
            red += R - G > 80 and R - B > 80          # #c00
    # the curves (#1f77b4) and the dashed KL target (#c00) are painted
    assert blue > 300, f"{path}: {blue} curve pixels"
    assert red > 20, f"{path}: {red} target-line pixels"
    print(f"{path}: {w}x{h}, {blue} curve pixels, {red} target pixels")
PY
