#!/bin/sh
# rlhf report: an empty project says there is nothing yet; a project with
# rankings, training runs (pretrain with 10^5 points, PPO with its KL target,
# a reward model, DPO, an evaluation) gives one well-formed, self-contained
# page with a chart per known group and per new metric, small enough on a big
# run; bad flags exit 2, a missing run or an unwritable path exit 1.
. "$ROOT/tests/e2e/lib.sh"
export RLHF_DB=p.db
expect_rc 0 "$RLHF" init p.db

# usage
expect_rc 2 "$RLHF" report; contains "$ERR" "--out"
expect_rc 2 "$RLHF" report --out r.html --run abc; contains "$ERR" "--run"
expect_rc 2 "$RLHF" report --out r.html --since yesterday; contains "$ERR" "--since"
expect_rc 2 "$RLHF" report --out r.html --max-points 1
expect_rc 2 "$RLHF" report --out r.html --bogus
expect_rc 2 "$RLHF" report --out r.html extra
expect_rc 0 "$RLHF" report --help; contains "$OUT" "--max-points"
expect_rc 1 "$RLHF" report --out r.html --run 99; contains "$ERR" "no such run"
expect_rc 1 "$RLHF" report --db nosuch.db --out r.html

# an empty project
expect_rc 0 "$RLHF" report --out empty.html
contains "$OUT" "wrote empty.html"
contains "$(cat empty.html)" "Nothing to report yet"

# rankings by two simulated labelers, some candidates flagged
sky_candidates 8 > c.jsonl
expect_rc 0 "$RLHF" candidates import c.jsonl
expect_rc 0 "$RLHF" label --auto demo --as bot1
expect_rc 0 "$RLHF" label --auto keyword --as bot2 --overlap 2 --noise 0.3 --seed 3

# runs written straight into the store, as the training commands write them
/usr/bin/python3 - p.db <<'PY' || die "could not fill the store"
import math, sqlite3, sys
db = sqlite3.connect(sys.argv[1])
# the three models as one policy across rounds: bad (base) > ok (sft) > good (policy)
for name, kind, parent in (('bad', 'base', None), ('ok', 'sft', 'bad'), ('good', 'policy', 'ok')):
    db.execute("UPDATE models SET kind = ?, parent_id = (SELECT id FROM models WHERE name = ?) WHERE name = ?",
               (kind, parent, name))
db.execute("UPDATE ranking_items SET flags='[\"unsafe\",\"off-topic\"]' WHERE rank = 3")
db.execute("UPDATE ranking_items SET flags='[\"unsafe\"]' WHERE rank = 2 AND rowid % 2 = 0")
def run(kind, config='{}', status='done', inp=None, out=None):
    c = db.execute("INSERT INTO runs(kind, config, status, input_model_id, output_model_id) VALUES(?,?,?,?,?)",
                   (kind, config, status, inp, out))
    return c.lastrowid
def curve(r, name, n, f):
    db.executemany("INSERT INTO metrics(run_id, step, name, value) VALUES(?,?,?,?)",
                   ((r, s, name, f(s)) for s in range(1, n + 1)))
# a big pretraining run: 5 curves of 20000 points, a spike at step 12345
r = run('pretrain')
curve(r, 'train_loss', 20000, lambda s: 100.0 if s == 12345 else 5 * math.exp(-s / 4000) + 0.1 * math.sin(s))
curve(r, 'val_loss', 20000, lambda s: 5 * math.exp(-s / 4000) + 0.2)
curve(r, 'lr', 20000, lambda s: 1e-3 * min(1, s / 100))
curve(r, 'grad_norm', 20000, lambda s: 1 + 0.5 * math.cos(s / 7))
curve(r, 'tokens_per_s', 20000, lambda s: 5000 + s % 17)
r = run('ppo', '{"kl_target":6,"beta":0.02}', inp=1)
for name, f in [('objective/kl', lambda s: s / 10), ('objective/entropy', lambda s: 3 - s / 100),
                ('objective/scores', lambda s: s / 50), ('objective/rlhf_reward', lambda s: s / 60),
                ('policy/clipfrac_avg', lambda s: 0.1), ('val/clipfrac_avg', lambda s: 0.05),
                ('answer/length_mean', lambda s: 20 + s % 5), ('loss/policy_avg', lambda s: -0.01 * s),
                ('my/brand_new_metric', lambda s: s * s)]:
    curve(r, name, 60, f)
r = run('rm', inp=1)
curve(r, 'train_accuracy', 30, lambda s: 0.5 + s / 100)
db.executemany("INSERT INTO metrics VALUES(?,?,?,?)", [(r, s, 'val_accuracy', 0.5 + s / 200) for s in (10, 20, 30)])
r = run('dpo', inp=2)
for name in ('rewards/chosen', 'rewards/rejected', 'rewards/margins', 'rewards/accuracies'):
    curve(r, name, 25, lambda s: s / 25)
r = run('eval', inp=1, out=2)
for k, v in {'a.win_rate': .3, 'b.win_rate': .7, 'b.win_lo': .6, 'b.win_hi': .8, 'a.reward': -.1,
             'b.reward': .4, 'b.kl': 1.5, 'a.kl': 0, 'b.judge_score': 4.5}.items():
    db.execute("INSERT INTO metrics VALUES(?,?,?,?)", (r, 0, k, v))
# an evaluation of checkpoints the registry does not know: names from its note
r = run('eval', inp=1)
db.execute("UPDATE runs SET note = 'good vs ppo-unregistered on 8 prompts, judge demo' WHERE id = ?", (r,))
db.execute("INSERT INTO metrics VALUES(?,?,?,?)", (r, 0, 'b.win_rate', .55))
run('sft', status='running')
db.commit()
PY

expect_rc 0 "$RLHF" report --out r.html --title "Sky & sea <test>"
contains "$OUT" "wrote r.html"
/usr/bin/python3 - r.html <<'PY' || die "the report does not hold what it should"
import os, re, sys, xml.etree.ElementTree as ET
from html.parser import HTMLParser
path = sys.argv[1]
text = open(path, encoding='utf-8').read()
size = os.path.getsize(path)
assert size < 3 * 1024 * 1024, f"report is {size} bytes"
root = ET.fromstring(text)          # well-formed: every element closed, text escaped
NS = '{http://www.w3.org/2000/svg}'
svgs = root.findall(f'.//{NS}svg')
titles = [s.find(f'{NS}title').text for s in svgs]
def need(t):   # a group's chart, whole or one of its scales ('Loss: train_loss')
    assert any(x == t or x.startswith(t + ': ') for x in titles), f"no chart '{t}' in {titles}"
for t in ['Loss', 'Learning rate', 'Gradient norm', 'Throughput', 'KL', 'Entropy', 'Clip fraction',
          'Reward', 'Answer length', 'Accuracy', 'my/brand_new_metric',
          'Held-out accuracy of the reward model', 'Win rate against the baseline (95% interval)',
          'Bradley-Terry rating by model, 95% bootstrap interval',
          'Bradley-Terry rating by policy, 95% bootstrap interval', 'Mean time per prompt (s)']:
    need(t)
# HTML's own parser agrees on the structure
class P(HTMLParser):
    def __init__(s): super().__init__(); s.svg = 0; s.ids = set()
    def handle_starttag(s, tag, a):
        s.svg += tag == 'svg'
        s.ids.update(v for k, v in a if k == 'id')
p = P(); p.feed(text)
assert p.svg == len(svgs), (p.svg, len(svgs))
for i in ('final', 'runs', 'ratings', 'labelers', 'rm'):
    assert i in p.ids, f"no section #{i}"
# self-contained: nothing to fetch
assert not re.search(r'(src|href)="(?!#)', text), "an external reference"
assert 'url(' not in text and '@import' not in text
assert root.find('.//meta[@name="viewport"]') is not None
assert '@media print' in text
# the title is escaped; the KL chart has its target line; PPO's reward groups two curves
assert 'Sky &amp; sea &lt;test&gt;' in text
kl = svgs[titles.index('KL: objective/kl')]
assert kl.find(f".//{NS}line[@class='hl']") is not None, "no KL target line"
assert any(t.text == 'KL target' for t in kl.iter(f'{NS}text'))
ppo_reward = [s for s, t in zip(svgs, titles) if t == 'Reward']
assert any(len(s.findall(f'.//{NS}polyline')) == 2 for s in ppo_reward)
# downsampled: no curve keeps more than 2*300+2 points, and the spike survives
for s in svgs:
    for pl in s.iter(f'{NS}polyline'):
        n = len(pl.get('points').split())
        assert n <= 602, n
# a spike to 100 beside a curve of 5: each on an axis of its own
loss = svgs[titles.index('Loss: train_loss')]
assert 'Loss: val_loss' in titles, titles
ys = [float(p.split(',')[1]) for p in loss.find(f'.//{NS}polyline').get('points').split()]
assert min(ys) < 34 + 0.2 * 180, "the spike at step 12345 was lost"   # 100 is the top of the plot (y 34 to 214)
# the final table, the labelers, the flags
for s in ('(baseline)', 'ppo-unregistered', '0.700', '0.600 &#8211; 0.800', 'bot1', 'bot2', 'Agreement matrix',
          'unsafe', 'off-topic', 'labeler agreement', 'No metrics recorded'):
    assert s in text, f"'{s}' missing"
print(f"ok: {size} bytes, {len(svgs)} charts")
PY
contains "$OUT" "100673 metric points"

# filters: one run; runs of one kind
expect_rc 0 "$RLHF" report --out one.html --run 2
not_contains "$(cat one.html)" "Run 1:"
contains "$(cat one.html)" "Run 2: ppo"
expect_rc 0 "$RLHF" report --out dpo.html --kind dpo
contains "$(cat dpo.html)" "rewards/margins"
not_contains "$(cat dpo.html)" "Run 2:"
expect_rc 0 "$RLHF" report --out later.html --since 2999-01-01
contains "$(cat later.html)" "Nothing to report yet"
# to stdout
expect_rc 0 "$RLHF" report --out - --kind rm
contains "$OUT" "<!DOCTYPE html>"
# an unwritable place: a clear error, nothing left behind
expect_rc 1 "$RLHF" report --out nosuchdir/r.html
contains "$ERR" "nosuchdir"
