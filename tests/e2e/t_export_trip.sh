#!/bin/sh
# Exports that their consumers load as they are, and that come back into rlhf
# whole, on a realistic project (five models, one of which copies another's
# answers and one with two samples of some prompts, four labelers with noise, ties, 1-7 scores, flags, notes, a skip,
# unknown times, dialogues and a system message):
#   rankings: export -> import -> export gives every field back;
#   pairs and pairs-chat: export -> import -> export gives the same strict
#   comparisons and the same labelers (no NAME#2, identical texts from two
#   models kept, no strict preference turned into a tie);
#   arena-json loads in a port of Chatbot Arena's notebook and rates;
#   TRL's margin only when asked; global --db; damaged .gz files.
. "$ROOT/tests/e2e/lib.sh"
PY=/usr/bin/python3
expect_rc 0 "$RLHF" init a.db
# global options before the command
expect_rc 0 "$RLHF" --db a.db status
expect_rc 2 "$RLHF" --db
contains "$ERR" "--db needs a value"

$PY - "$ROOT/samples/answers.jsonl" <<'P'
import json, sys
qs = [json.loads(l) for l in open(sys.argv[1])]
qs = [q for q in qs if q["split"] == "train"][:45]
with open("cands.jsonl", "w") as f:
    def put(p, text, model):
        f.write(json.dumps({"prompt": p, "completion": text, "model": model}) + "\n")
    for i, q in enumerate(qs):
        p = q["prompt"]
        put(p, q["answer"], "good")
        put(p, q["answer"], "copy")  # the same text from another model
        put(p, q["rude"][i % len(q["rude"])], "rude")
        put(p, q["wrong"][i % len(q["wrong"])], "wrong")
        put(p, q["hedge"][i % len(q["hedge"])] if q["hedge"] else "I am not sure.", "hedge")
        if i % 4 == 0:  # a second sample of one model: battles of a model against itself
            put(p, q["runon"][0], "good")
    # dialogues as HH import stores them, and one opening with a system message
    for i, q in enumerate(qs[:4]):
        d = f"Hello.\n\nAssistant: Hi! Ask me anything.\n\nHuman: {q['prompt']}"
        if i == 0:
            d = f"You answer in one sentence.\n\nHuman: {q['prompt']}"
        put(d, q["answer"], "good")
        put(d, q["wrong"][0], "wrong")
        put(d, q["rude"][0], "rude")
P
expect_rc 0 "$RLHF" candidates import --db a.db cands.jsonl
export RLHF_DB=a.db
expect_rc 0 "$RLHF" label --auto demo --as careful --noise 0.05 --overlap 4 --seed 1
expect_rc 0 "$RLHF" label --auto demo --as hasty --noise 0.3 --overlap 4 --seed 2
expect_rc 0 "$RLHF" label --auto longer --as biased --noise 0.1 --overlap 4 --seed 3 --limit 30
# noise 0: the copied answer ties with the original
expect_rc 0 "$RLHF" label --auto demo --as exact --overlap 4 --limit 35
unset RLHF_DB
# what people at the labeling screen leave behind: a human labeler, flags,
# notes, a skip, a "none acceptable", rankings without a time
$PY - a.db <<'P'
import sqlite3, sys
c = sqlite3.connect(sys.argv[1])
lid = c.execute("SELECT id FROM labelers WHERE name = 'exact'").fetchone()[0]
c.execute("UPDATE labelers SET simulated = 0, rule = NULL WHERE id = ?", (lid,))
c.execute("UPDATE rankings SET simulated = 0, source = 'tui' WHERE labeler_id = ?", (lid,))
c.execute("""UPDATE ranking_items SET flags = '["rude","unsafe"]' WHERE candidate_id IN
             (SELECT c.id FROM candidates c JOIN models m ON m.id = c.model_id WHERE m.name = 'rude')
             AND ranking_id % 3 = 0""")
c.execute("UPDATE rankings SET note = 'check the sum, \"twice\"' WHERE id % 7 = 0")
c.execute("UPDATE rankings SET time_spent_ms = NULL WHERE id % 5 = 0")
c.execute("UPDATE rankings SET none_acceptable = 1 WHERE id = 11")
c.execute("UPDATE rankings SET skipped = 1, skip_reason = 'unclear' WHERE id = 12")
c.execute("UPDATE ranking_items SET rank = NULL, likert = NULL WHERE ranking_id = 12")
c.commit()
P
[ "$(sql a.db 'SELECT count(*) FROM rankings')" -gt 120 ] || die "too few rankings"
[ "$(sql a.db "SELECT count(*) FROM ranking_items a JOIN ranking_items b ON a.ranking_id = b.ranking_id
  AND a.candidate_id < b.candidate_id AND a.rank = b.rank")" -gt 10 ] || die "too few ties"

# ---- rankings: every key in every record, and the whole project back
expect_rc 0 "$RLHF" export --db a.db --format rankings --out r.jsonl
$PY - r.jsonl <<'P' || die "rankings keys"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
keys = {frozenset(r) for r in rows}
assert len(keys) == 1, [sorted(k) for k in keys]
assert any(r["time_ms"] is None for r in rows) and any(r["skipped"] for r in rows)
P
expect_rc 0 "$RLHF" init b.db
expect_rc 0 "$RLHF" --db b.db import --format rankings r.jsonl
contains "$OUT" "imported $(wc -l < r.jsonl) rankings"
expect_rc 0 "$RLHF" export --db b.db --format rankings --out r2.jsonl
$PY - r.jsonl r2.jsonl <<'P' || die "rankings round trip"
import json, sys
def load(p):
    out = []
    for l in open(p):
        d = json.loads(l)
        for k in ("ranking_id", "prompt_id"):
            del d[k]
        for c in d["completions"]:
            del c["id"]
        # the order within a tie is no information: by rank, then model
        items = sorted(zip(d["ranks"], d["completions"], d["scores"], d["flags"]),
                       key=lambda t: (t[0] or 99, t[1]["model"], t[1]["text"]))
        for i, k in enumerate(("ranks", "completions", "scores", "flags")):
            d[k] = [t[i] for t in items]
        out.append(d)
    return out
a, b = load(sys.argv[1]), load(sys.argv[2])
assert len(a) == len(b), (len(a), len(b))
for x, y in zip(a, b):
    assert x == y, (x, y)
print(len(a), "rankings back whole;", sum(r["note"] is not None for r in a), "notes,",
      sum(any(f) for r in a for f in r["flags"]), "flagged completions")
P
[ "$(sql b.db 'SELECT group_concat(name || simulated) FROM (SELECT * FROM labelers ORDER BY name)')" = \
  "$(sql a.db 'SELECT group_concat(name || simulated) FROM (SELECT * FROM labelers ORDER BY name)')" ] ||
    die "labelers differ"

# ---- pairs and pairs-chat: the same strict comparisons and labelers back
expect_rc 0 "$RLHF" export --db a.db --format pairs --out p.jsonl
ties=$(echo "$ERR" | sed -n 's/.*pairs, \([0-9]*\) ties dropped.*/\1/p')
[ "${ties:-0}" -gt 0 ] || die "no ties counted: $ERR"
expect_rc 0 "$RLHF" export --db a.db --format pairs-chat --out pc.jsonl
for f in p pc; do
    expect_rc 0 "$RLHF" init $f.db
    expect_rc 0 "$RLHF" import --db $f.db --format pairs $f.jsonl
    not_contains "$OUT" "not one ranking"
    expect_rc 0 "$RLHF" export --db $f.db --format pairs --out $f-back.jsonl
done
[ "$(sql p.db "SELECT count(*) FROM labelers WHERE name LIKE '%#%'")" = 0 ] || die "labelers split"
$PY - p.jsonl p-back.jsonl pc-back.jsonl <<'P' || die "pairs round trip"
import json, sys
def load(p):
    return sorted((r["prompt"], r["chosen"], r["rejected"], r["chosen_model"], r["rejected_model"],
                   r["labeler"], r["simulated"], r["rank_gap"]) for r in map(json.loads, open(p)))
a = load(sys.argv[1])
same = sum(x[1] == x[2] for x in a)
assert same > 0, "no identical texts from two models in the export"
for p in sys.argv[2:]:
    b = load(p)
    assert a == b, (p, len(a), len(b), set(a) ^ set(b))
print(len(a), "strict comparisons back,", same, "with the same text from two models,",
      len({x[5] for x in a}), "labelers")
P
# TRL's shapes: a string prompt ending at "Assistant:" and answers after a space;
# conversational messages; a system message first; no "margin" unless asked
$PY - p.jsonl pc.jsonl <<'P' || die "TRL shapes"
import json, sys
p = [json.loads(l) for l in open(sys.argv[1])]
pc = [json.loads(l) for l in open(sys.argv[2])]
for r in p:
    assert r["prompt"].endswith("\n\nAssistant:") and r["chosen"][0] == " " and r["rejected"][0] == " ", r
    assert "margin" not in r and r["rank_gap"] >= 1
    assert "\n\nHuman:" in r["prompt"]
for r in pc:
    assert r["prompt"][-1]["role"] == "user" and r["chosen"][0]["role"] == "assistant", r
    assert len(r["chosen"]) == len(r["rejected"]) == 1 and "margin" not in r
assert any(r["prompt"][0]["role"] == "system" and r["prompt"][0]["content"] == "You answer in one sentence."
           for r in pc)
assert any(len(r["prompt"]) == 3 for r in pc)
P
expect_rc 0 "$RLHF" export --db a.db --format pairs --margin 0.5 --out pm.jsonl
$PY - pm.jsonl a.db <<'P' || die "margin"
import json, sqlite3, sys
db = sqlite3.connect(sys.argv[2])
score = dict(db.execute("SELECT ranking_id || ':' || candidate_id, likert FROM ranking_items"))
for r in map(json.loads, open(sys.argv[1])):
    c, w = score[f"{r['ranking_id']}:{r['chosen_id']}"], score[f"{r['ranking_id']}:{r['rejected_id']}"]
    assert abs(r["margin"] - 0.5 * (c - w)) < 1e-9, r
P
expect_rc 2 "$RLHF" export --db a.db --format hh --margin 1
# a system message stays one through an import
printf '%s\n' '{"prompt":[{"role":"system","content":"Be brief."},{"role":"user","content":"Hi?"}],"chosen":[{"role":"assistant","content":"Hello."}],"rejected":[{"role":"assistant","content":"No."}]}' > sys.jsonl
expect_rc 0 "$RLHF" init s.db
expect_rc 0 "$RLHF" import --db s.db --format pairs sys.jsonl
expect_rc 0 "$RLHF" export --db s.db --format pairs-chat
contains "$OUT" '"prompt":[{"role":"system","content":"Be brief."},{"role":"user","content":"Hi?"}]'
expect_rc 0 "$RLHF" export --db s.db --format hh --out s-hh.jsonl
expect_rc 0 "$RLHF" init s2.db
expect_rc 0 "$RLHF" import --db s2.db --format hh s-hh.jsonl
[ "$(sql s2.db 'SELECT text FROM prompts')" = "$(sql s.db 'SELECT text FROM prompts')" ] || die "system lost via hh"
printf '%s\n' '{"prompt":[{"role":"user","content":"Hi?"},{"role":"system","content":"x"}],"chosen":"a","rejected":"b"}' > sys-bad.jsonl
expect_rc 1 "$RLHF" import --db s.db --format pairs sys-bad.jsonl
contains "$ERR" "sys-bad.jsonl:1: field \"prompt\": message 2: a system message can only come first"

# ---- Arena: one JSON array that a port of the rating notebook loads and fits
expect_rc 0 "$RLHF" export --db a.db --format arena-json --out arena.json
contains "$ERR" "left out"
expect_rc 0 "$RLHF" export --db a.db --format arena-json --keep-same-model --out arena-all.json
$PY - arena.json arena-all.json a.db <<'P' || die "arena notebook"
import json, math, sqlite3, sys
from collections import defaultdict
import numpy as np
# Chatbot Arena's notebook: read one JSON array, sort by time, anonymous battles,
# the de-duplication tag, then online Elo and the Bradley-Terry fit
battles = json.load(open(sys.argv[1]))
battles.sort(key=lambda b: b["tstamp"])
battles = [b for b in battles if b["anony"] == True]
battles = [b for b in battles if b["dedup_tag"].get("sampled", True)]
for b in battles:
    assert b["winner"] in ("model_a", "model_b", "tie", "tie (bothbad)")
    assert b["model_a"] != b["model_b"]
    assert isinstance(b["turn"], int) and b["turn"] >= 1 and isinstance(b["language"], str)
    assert b["conversation_a"][-1]["role"] == "assistant" and b["conversation_a"][:-1] == b["conversation_b"][:-1]
db = sqlite3.connect(sys.argv[3])
want = db.execute("""SELECT count(*) FROM rankings r JOIN ranking_items x ON x.ranking_id = r.id
  JOIN ranking_items y ON y.ranking_id = r.id AND x.candidate_id < y.candidate_id
  JOIN candidates cx ON cx.id = x.candidate_id JOIN candidates cy ON cy.id = y.candidate_id
  WHERE r.is_current AND NOT r.skipped AND x.rank IS NOT NULL AND y.rank IS NOT NULL
  AND cx.model_id != cy.model_id""").fetchone()[0]
assert len(battles) == want, (len(battles), want)
every = json.load(open(sys.argv[2]))
assert len(every) > len(battles) and any(b["model_a"] == b["model_b"] for b in every)
def compute_elo(battles, K=4, SCALE=400, BASE=10, INIT_RATING=1000):
    rating = defaultdict(lambda: INIT_RATING)
    for b in battles:
        ra, rb = rating[b["model_a"]], rating[b["model_b"]]
        ea = 1 / (1 + BASE ** ((rb - ra) / SCALE))
        sa = {"model_a": 1, "model_b": 0}.get(b["winner"], 0.5)
        rating[b["model_a"]] += K * (sa - ea)
        rating[b["model_b"]] += K * (1 - sa - (1 - ea))
    return dict(rating)
def bt(battles, SCALE=400, BASE=10, INIT_RATING=1000):
    models = sorted({b["model_a"] for b in battles} | {b["model_b"] for b in battles})
    ix = {m: i for i, m in enumerate(models)}
    # as compute_mle_elo: each battle twice, a tie one win each way
    X, Y = [], []
    for b in battles:
        x = np.zeros(len(models)); x[ix[b["model_a"]]] = math.log(BASE); x[ix[b["model_b"]]] = -math.log(BASE)
        ys = {"model_a": (1, 1), "model_b": (0, 0)}.get(b["winner"], (1, 0))
        for y in ys:
            X.append(x); Y.append(y)
    X, Y, w = np.array(X), np.array(Y), np.zeros(len(models))
    for _ in range(50):  # Newton on the logistic loss, a little L2 as sklearn's default
        p = 1 / (1 + np.exp(-X @ w))
        g = X.T @ (p - Y) + w / len(Y)
        H = (X * (p * (1 - p))[:, None]).T @ X + np.eye(len(models)) / len(Y)
        w -= np.linalg.solve(H, g)
    return {m: SCALE * w[ix[m]] + INIT_RATING for m in models}
elo, mle = compute_elo(battles), bt(battles)
assert all(math.isfinite(v) for v in list(elo.values()) + list(mle.values()))
assert mle["good"] > mle["wrong"] and mle["copy"] > mle["hedge"], mle
print(len(battles), "battles;", {m: round(v) for m, v in sorted(mle.items(), key=lambda kv: -kv[1])})
P

# ---- damaged gzip: the stream's verdict, with the file, and nothing imported
$PY - <<'P'
import gzip
data = gzip.compress(open("p.jsonl", "rb").read())
b = bytearray(data); b[-7] ^= 0x5a
open("crc.jsonl.gz", "wb").write(bytes(b))
open("cut.jsonl.gz", "wb").write(data[:-6])
b = bytearray(data); b[len(b) // 2] ^= 0x10
open("mid.jsonl.gz", "wb").write(bytes(b))
P
before=$(sql p.db 'SELECT count(*) FROM rankings')
for f in crc cut mid; do
    expect_rc 1 "$RLHF" import --db p.db --format pairs $f.jsonl.gz
    contains "$ERR" "$f.jsonl.gz: corrupt gzip data"
    not_contains "$ERR" "invalid JSON"
done
[ "$(sql p.db 'SELECT count(*) FROM rankings')" = "$before" ] || die "a damaged file changed the project"

# ---- bad rankings input: FILE:LINE, nothing imported
head -n 2 r.jsonl > bad-r.jsonl
printf '{"prompt":"x","completions":[{"text":"a"},{"text":"b"}],"ranks":[1,3]}\n' >> bad-r.jsonl
expect_rc 0 "$RLHF" init e.db
expect_rc 1 "$RLHF" import --db e.db --format rankings bad-r.jsonl
contains "$ERR" "bad-r.jsonl:3: field \"ranks\": entry 2 must be 1..2 or null"
[ "$(sql e.db 'SELECT count(*) FROM rankings')" = 0 ] || die "half an import"
printf '{"prompt":"x","completions":[{"text":"a"}],"created_at":"yesterday"}\n' > bad-t.jsonl
expect_rc 1 "$RLHF" import --db e.db --format rankings bad-t.jsonl
contains "$ERR" "bad-t.jsonl:1: field \"created_at\""
exit 0
