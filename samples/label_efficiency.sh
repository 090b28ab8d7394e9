#!/bin/sh
# Label efficiency: does handing out prompts in uncertainty order (smallest RM
# margin first) get a reward model as good with fewer rankings than random order?
# On the demo task with a simulated labeler (rule demo, noise $NOISE), both orders
# start from the same random batch (same seeds); after each batch of $BATCH ranked
# prompts an RM is trained from the base model on every ranking so far, scores
# every candidate (which refreshes the margins the uncertain order reads), and is
# measured on held-out prompts (split test) against the rule without noise.
# Writes DIR/curve.tsv (order, repeat, ranked prompts, held-out accuracy),
# keeps each (order, repeat) as a run of kind label-efficiency in the project
# INTO (default DIR/base.db: config {"order", "repeat", ...}, metric
# heldout_accuracy at step = ranked prompts), where `rlhf report` draws both
# curves with their spread, and prints the mean curve per order and how many
# rankings uncertainty order needs to reach random order's final accuracy.
# ORDERS="random uncertain ensemble" adds ensemble order: uncertain order on the
# disagreement of the round's RM and MEMBERS (default 2) more trained on
# bootstrap resamples of the rankings with other seeds (score --rm A,B,C).
#   samples/label_efficiency.sh DIR   (RLHF=path/to/rlhf; REPEATS, BATCH, ROUNDS, NOISE, STEPS,
#                                      ORDERS, MEMBERS, INTO)
#   rlhf report --db DIR/base.db --out label_efficiency.html
set -eu
DIR=${1:?usage: samples/label_efficiency.sh DIR}
RLHF=${RLHF:-build/rlhf}
REPEATS=${REPEATS:-4} BATCH=${BATCH:-8} ROUNDS=${ROUNDS:-10} NOISE=${NOISE:-0.2} STEPS=${STEPS:-300}
ORDERS=${ORDERS:-random uncertain} MEMBERS=${MEMBERS:-2}
mkdir -p "$DIR"
base="$DIR/base.db"
INTO=${INTO:-$base}
if [ ! -f "$DIR/base.ok" ]; then
    rm -f "$base"
    "$RLHF" init "$base" >/dev/null
    "$RLHF" prompts import --db "$base" samples/prompts.jsonl >/dev/null
    [ -f "$DIR/tok.bin" ] || "$RLHF" tokenizer train --vocab 512 --out "$DIR/tok.bin" samples/corpus.txt >/dev/null
    "$RLHF" pretrain --db "$base" --corpus samples/corpus.txt --tokenizer "$DIR/tok.bin" --config tiny \
        --steps "$STEPS" --batch 8 --lr 3e-3 --out "$DIR/base.ckpt" --name base --force 2>/dev/null
    "$RLHF" gen --db "$base" --model "$DIR/base.ckpt" -k 4 --unique --seed 1 >/dev/null 2>&1
    # the held-out judge: the rule without noise on the test prompts
    "$RLHF" label --db "$base" --auto demo --as oracle --split test >/dev/null
    touch "$DIR/base.ok"
fi
# keep_run ORDER REPEAT: the run's rows of curve.tsv into INTO as one run, in one transaction
keep_run() {
    /usr/bin/python3 - "$INTO" "$DIR/curve.tsv" "$1" "$2" "$BATCH" "$NOISE" "$STEPS" <<'PY'
import csv, json, sqlite3, sys
into, tsv, order, rep, batch, noise, steps = sys.argv[1:]
rows = [r for r in csv.DictReader(open(tsv), delimiter="\t") if r["order"] == order and r["repeat"] == rep]
db = sqlite3.connect(into)
with db:
    cfg = json.dumps({"order": order, "repeat": int(rep), "batch": int(batch), "noise": float(noise),
                      "rule": "demo", "base_steps": int(steps)})
    run = db.execute("insert into runs(kind, config, status, finished_at) values('label-efficiency', ?, 'done',"
                     " strftime('%Y-%m-%dT%H:%M:%SZ','now'))", (cfg,)).lastrowid
    for r in rows:
        if r["accuracy"] != "nan":
            db.execute("insert or replace into metrics(run_id, step, name, value) values(?, ?, 'heldout_accuracy', ?)",
                       (run, int(r["ranked"]), float(r["accuracy"])))
PY
}
printf 'order\trepeat\tranked\taccuracy\n' > "$DIR/curve.tsv"
for r in $(seq 1 "$REPEATS"); do
    for order in $ORDERS; do
        db="$DIR/$order-$r.db"
        cp "$base" "$db"
        for round in $(seq 1 "$ROUNDS"); do
            # round 1 is the same random batch for every order (no RM yet); ensemble
            # order is uncertain order on the ensemble's disagreement (stored last)
            o=$order
            [ "$order" = ensemble ] && o=uncertain
            [ "$round" = 1 ] && o=random
            "$RLHF" label --db "$db" --auto demo --as sim --noise "$NOISE" --seed "$r" --split train \
                --order "$o" --limit "$BATCH" >/dev/null
            rm_ckpt="$DIR/rm-$order-$r-$round.ckpt"
            # a round whose RM fails to train (or to score) counts as nan, the run goes on
            acc=nan
            if "$RLHF" train-rm --db "$db" --init "$DIR/base.ckpt" --split train --labeler sim --val-frac 0 \
                --epochs 2 --lr 1e-3 --seed "$r" --out "$rm_ckpt" --name "rm-$round" --force >"$DIR/last.log" 2>&1 &&
                "$RLHF" score --db "$db" --rm "$rm_ckpt" >>"$DIR/last.log" 2>&1; then
                acc=$("$RLHF" eval-rm --db "$db" --rm "$rm_ckpt" --split test --labeler oracle --all --json 2>>"$DIR/last.log" |
                    /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["accuracy"]["accuracy"])' || echo nan)
            else
                echo "round $round of $order $r: the RM failed (see $DIR/last.log)" >&2
                cp "$DIR/last.log" "$DIR/failed-$order-$r-$round.log"
            fi
            n=$(/usr/bin/python3 -c 'import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute(
                "select count(*) from rankings r join labelers l on l.id = r.labeler_id where l.name = \"sim\" and r.is_current and not r.skipped").fetchone()[0])' "$db")
            printf '%s\t%s\t%s\t%s\n' "$order" "$r" "$n" "$acc" | tee -a "$DIR/curve.tsv" >&2
            # ensemble order: MEMBERS more RMs on bootstrap resamples (other seeds); score
            # --rm keeps their disagreement, which the next batch is ordered by
            if [ "$order" = ensemble ] && [ "$acc" != nan ]; then
                spec=$rm_ckpt
                for k in $(seq 1 "$MEMBERS"); do
                    "$RLHF" train-rm --db "$db" --init "$DIR/base.ckpt" --split train --labeler sim --val-frac 0 \
                        --epochs 2 --lr 1e-3 --seed "$((r * 10 + k))" --bootstrap "$((r * 1000 + round * 10 + k))" \
                        --out "$rm_ckpt.b$k" --name "rm-$round-b$k" --force >>"$DIR/last.log" 2>&1 || break
                    spec="$spec,$rm_ckpt.b$k"
                done
                "$RLHF" score --db "$db" --rm "$spec" >>"$DIR/last.log" 2>&1 ||
                    echo "round $round of $order $r: the ensemble failed (see $DIR/last.log)" >&2
            fi
            rm -f "$rm_ckpt" "$rm_ckpt".b*
        done
        keep_run "$order" "$r"
    done
done
/usr/bin/python3 - "$DIR/curve.tsv" <<'PY'
import csv, sys, collections
rows = list(csv.DictReader(open(sys.argv[1]), delimiter="\t"))
curve = collections.defaultdict(list)
for r in rows:
    if r["accuracy"] != "nan":
        curve[(r["order"], int(r["ranked"]))].append(float(r["accuracy"]))
ns = sorted({n for _, n in curve})
print("ranked prompts  " + "  ".join("%6d" % n for n in ns))
mean = {}
orders = list(dict.fromkeys(r["order"] for r in rows))
for order in orders:
    m, sd = [], []
    for n in ns:
        a = curve[(order, n)]
        mu = sum(a) / len(a) if a else float("nan")
        m.append(mu)
        sd.append((sum((x - mu) ** 2 for x in a) / (len(a) - 1)) ** 0.5 if len(a) > 1 else float("nan"))
    mean[order] = m
    print("%-14s  " % order + "  ".join("%5.1f%%" % (100 * a) for a in m))
    print("%-14s  " % "  sd over runs" + "  ".join("%5.1f " % (100 * a) for a in sd))
final = mean["random"][-1] if "random" in mean else float("nan")
for order in orders:
    if order == "random": continue
    hit = next((n for n, a in zip(ns, mean[order]) if a >= final), None)
    print("random order's final accuracy %.1f%% at %d rankings; %s order's mean first reaches it at %s"
          % (100 * final, ns[-1], order, "%d rankings (%.0f%%)" % (hit, 100.0 * hit / ns[-1]) if hit else "no point measured"))
print("(held-out accuracy over the test prompts' pairs ordered by the rule without noise; "
      "compare the gap with the sd over runs before reading anything into it)")
PY
