#!/bin/sh
# Issue 24 item 7 (part): sample takes --db as every command does; dpo on a
# store of ties says so; a run note never says "nan" when nothing is held out;
# a run killed with -9 is shown by status as having no process left, and a
# --resume makes it running again in the new process.
. "$ROOT/tests/e2e/lib.sh"
CORPUS="$ROOT/samples/corpus.txt"
expect_rc 0 "$RLHF" tokenizer train --vocab 300 --out tok.bin "$CORPUS"
expect_rc 0 "$RLHF" pretrain --corpus "$CORPUS" --tokenizer tok.bin --config tiny --batch 2 --threads 1 \
    --steps 2 --out base.ckpt
expect_rc 0 "$RLHF" init p.db
export RLHF_DB=p.db
expect_rc 0 "$RLHF" prompts import "$ROOT/samples/prompts.jsonl"

# sample --db: accepted, a no-op
expect_rc 0 "$RLHF" sample --db p.db --model base.ckpt --max-tokens 3 "Hello"

# dpo on a store whose rankings are all ties
expect_rc 0 "$RLHF" gen --model base.ckpt -k 2 --ids 1,2,3 --max-tokens 4 --seed 1
/usr/bin/python3 - <<'PY' || die "could not write tied rankings"
import sqlite3
c = sqlite3.connect("p.db")
c.execute("INSERT INTO labelers(name) VALUES('t')")
lab = c.execute("SELECT id FROM labelers WHERE name='t'").fetchone()[0]
for (p,) in c.execute("SELECT DISTINCT prompt_id FROM candidates").fetchall():
    r = c.execute("INSERT INTO rankings(prompt_id, labeler_id) VALUES(?, ?)", (p, lab)).lastrowid
    for (cid,) in c.execute("SELECT id FROM candidates WHERE prompt_id=?", (p,)).fetchall():
        c.execute("INSERT INTO ranking_items(ranking_id, candidate_id, rank) VALUES(?, ?, 1)", (r, cid))
c.commit()
PY
expect_rc 1 "$RLHF" dpo --policy base.ckpt --data store --out d.ckpt --steps 1
contains "$ERR" "tie"
[ ! -e d.ckpt ] || die "dpo on ties wrote a checkpoint"

# notes without nan: sft and train-rm with nothing held out
printf '{"prompt":"a","completion":"b"}\n{"prompt":"c","completion":"d"}\n' > sft.jsonl
expect_rc 0 "$RLHF" sft --init base.ckpt --data sft.jsonl --out s.ckpt --steps 1 --val-frac 0
printf '{"prompt":"a","chosen":"b","rejected":"c"}\n{"prompt":"d","chosen":"e","rejected":"f"}\n' > pairs.jsonl
expect_rc 0 "$RLHF" dpo --policy base.ckpt --data pairs.jsonl --out d2.ckpt --steps 1 --val-frac 0
expect_rc 0 "$RLHF" train-rm --init base.ckpt --data pairs.jsonl --out rm.ckpt --epochs 1 --val-frac 0 \
    --norm-samples 0
n=$(sql p.db "SELECT count(*) FROM runs WHERE lower(note) LIKE '%nan%'")
[ "$n" = 0 ] || die "run notes with nan: $(sql p.db "SELECT group_concat(note, ' | ') FROM runs")"
contains "$(sql p.db "SELECT note FROM runs WHERE kind = 'rm'")" "no held-out prompts"

# a run killed with -9: status says its process is gone; --resume runs it again
kill9_after_checkpoint k.ckpt "$RLHF" pretrain --corpus "$CORPUS" --tokenizer tok.bin --config tiny \
    --batch 2 --threads 1 --steps 400 --save-every 1 --out k.ckpt
[ "$(sql p.db "SELECT status FROM runs ORDER BY id DESC LIMIT 1")" = running ] || die "killed run not left running"
expect_rc 0 "$RLHF" status
contains "$OUT" "process"
contains "$OUT" "is gone"
expect_rc 0 "$RLHF" status --json
contains "$OUT" '"runs_process_gone":['
not_contains "$OUT" '"runs_process_gone":[]'
expect_rc 0 "$RLHF" pretrain --corpus "$CORPUS" --tokenizer tok.bin --config tiny --batch 2 --threads 1 \
    --steps 400 --save-every 100 --out k.ckpt --resume
[ "$(sql p.db "SELECT status FROM runs ORDER BY id DESC LIMIT 1")" = done ] || die "resumed run not done"
expect_rc 0 "$RLHF" status
not_contains "$OUT" "is gone"
echo ok
