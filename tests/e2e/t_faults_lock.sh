# Faults from concurrency (issue 24): gen holds no write lock while its model
# samples (other writers get the lock at once, and gen's candidates are those
# of a run alone); a refused eval or score registers nothing; status --json
# counts come from one snapshot while labelers write.
. "$ROOT/tests/e2e/lib.sh"
CORPUS="$ROOT/samples/corpus.txt"
py() { /usr/bin/python3 "$@"; }
expect_rc 0 "$RLHF" tokenizer train --vocab 300 --out tok.bin "$CORPUS"
expect_rc 0 "$RLHF" pretrain --corpus "$CORPUS" --tokenizer tok.bin --config tiny --steps 2 --batch 1 --out a.ckpt
# the 15m shape, untrained: 64 answers of up to 240 tokens take seconds a prompt
expect_rc 0 "$RLHF" pretrain --corpus "$CORPUS" --tokenizer tok.bin --config 15m --steps 1 --batch 1 --out slow.ckpt
py "$ROOT/tests/e2e/make_rm.py" a.ckpt rm.ckpt 1 || die "make_rm.py"
expect_rc 0 "$RLHF" init p.db
expect_rc 0 "$RLHF" prompts import --db p.db "$ROOT/samples/prompts.jsonl"
export RLHF_DB=p.db
expect_rc 0 "$RLHF" gen --model a.ckpt -k 2 --ids 1,2 --max-tokens 8

# ---- no write lock while gen samples ----------------------------------------
SLOW="--model slow.ckpt -k 64 --ids 3,4,5 --max-tokens 240 --stop @@@@ --temperature 1.5 --threads 1"
# under the sanitizers sampling is about ten times slower: a tenth of the work
# keeps a prompt several seconds long
[ -n "${RLHF_SAN:-}" ] && SLOW="--model slow.ckpt -k 16 --ids 3,4,5 --max-tokens 96 --stop @@@@ --temperature 1.5 --threads 1"
cp p.db ref.db
"$RLHF" gen $SLOW >gen.out 2>gen.err &
gen=$!
sleep 1.5
kill -0 $gen 2>/dev/null || die "gen finished before the writers tried; make it slower"
# three writers, a second apart, each waiting at most 2 s for the lock
py - p.db >lock.out <<'EOF' || die "a writer waited on gen's lock: $(cat lock.out)"
import sqlite3, sys, time
bad = 0
for i in range(3):
    c = sqlite3.connect(sys.argv[1], timeout=2, isolation_level=None)
    t = time.time()
    try:
        c.execute("BEGIN IMMEDIATE")
        c.execute("INSERT INTO settings(key, value) VALUES('lock.test', ?) "
                  "ON CONFLICT(key) DO UPDATE SET value = excluded.value", (str(i),))
        c.execute("COMMIT")
        print("write %d: %.2fs" % (i, time.time() - t))
    except sqlite3.OperationalError as e:
        print("write %d: %s after %.2fs" % (i, e, time.time() - t))
        bad += 1
    c.close()
    time.sleep(1)
sys.exit(1 if bad else 0)
EOF
cat lock.out
# a labeler too: it ranks while gen samples, without waiting on gen
t0=$(date +%s)
expect_rc 0 "$RLHF" label --auto demo --as during
[ $(( $(date +%s) - t0 )) -le 4 ] || die "label --auto waited on gen"
contains "$OUT" "during ranked"
wait $gen || die "gen failed: $(cat gen.err)"
# gen's candidates are exactly those of the same gen alone
expect_rc 0 "$RLHF" gen --db ref.db $SLOW
Q="SELECT group_concat(prompt_id || ':' || seed || ':' || n_tokens || ':' || hex(text), ',') FROM
   (SELECT c.* FROM candidates c JOIN models m ON m.id = c.model_id WHERE m.name = 'slow.ckpt'
    ORDER BY prompt_id, seed)"
got=$(sql p.db "$Q")
[ -n "$got" ] || die "no candidates"
[ "$got" = "$(sql ref.db "$Q")" ] || die "gen beside writers stored other candidates than gen alone"
[ "$(sql p.db "SELECT count(DISTINCT prompt_id) FROM candidates c JOIN models m ON m.id = c.model_id
   WHERE m.name = 'slow.ckpt'")" = 3 ] || die "prompts"

# ---- a refused command registers nothing --------------------------------------
models=$(sql p.db "SELECT group_concat(name || ':' || kind) FROM models")
expect_rc 1 "$RLHF" eval --a rm.ckpt --b a.ckpt --limit 2 --max-tokens 4
contains "$ERR" "is a reward model"
expect_rc 1 "$RLHF" eval --a a.ckpt --b rm.ckpt --limit 2 --max-tokens 4
contains "$ERR" "is a reward model"
expect_rc 1 "$RLHF" score --rm rm.ckpt --model nosuch
[ "$(sql p.db "SELECT group_concat(name || ':' || kind) FROM models")" = "$models" ] ||
    die "a refused command registered a model: $(sql p.db "SELECT group_concat(name || ':' || kind) FROM models")"
[ "$(sql p.db "SELECT count(*) FROM labelers WHERE name LIKE 'judge:%'")" = 0 ] || die "a refused eval added its judge"
# so the reward model is still free to be registered as one
expect_rc 0 "$RLHF" score --rm rm.ckpt
[ "$(sql p.db "SELECT kind FROM models WHERE name = 'rm.ckpt'")" = rm ] || die "rm kind"

# ---- status counts from one snapshot ------------------------------------------
expect_rc 0 "$RLHF" init s.db
py - <<'EOF' || die "candidates file"
import json
with open("c.jsonl", "w") as f:
    for i in range(40):
        for m, a in (("good", "The sky is blue on day %d." % i), ("bad", "cheese"), ("ok", "blue-ish %d" % i)):
            f.write(json.dumps({"prompt": "What color is the sky on day %d?" % i, "completion": a, "model": m}) + "\n")
EOF
expect_rc 0 "$RLHF" candidates import --db s.db c.jsonl
labelers() {
    i=0
    while [ ! -e stop ]; do
        i=$((i + 1))
        "$RLHF" label --db s.db --auto demo --overlap 1000 --as "$1$i" >/dev/null 2>&1
    done
}
labelers x & l1=$!
labelers y & l2=$!
sleep 0.5
before=$(sql s.db "SELECT count(*) FROM rankings")
bad=0 n=0
while [ $n -lt 30 ]; do
    n=$((n + 1))
    "$RLHF" status --db s.db --json >st.json 2>st.err || { touch stop; die "status failed: $(cat st.err)"; }
    py -c 'import json,sys; d=json.load(open("st.json")); sys.exit(d["rankings"] != sum(d["rankings_by_labeler"].values()))' ||
        { bad=$((bad + 1)); echo "inconsistent: $(cat st.json | tr -d '\n' | head -c 400)"; }
done
touch stop
wait $l1 $l2
[ "$(sql s.db "SELECT count(*) FROM rankings")" -gt "$before" ] || die "the labelers wrote nothing while status read"
[ $bad = 0 ] || die "$bad of $n status samples: total rankings != the sum by labeler"
echo "ok"
