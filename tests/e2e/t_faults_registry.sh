#!/bin/sh
# Issue 24 item 4: a trainer never rebinds a registered name to new weights
# under the candidates drawn from the old ones. gen on an intermediate
# checkpoint, then the trainer's final write to the same file: the candidates
# keep pointing at the row with the weights that made them (kept as
# "NAME@<sha>"), and the name points at the new weights.
. "$ROOT/tests/e2e/lib.sh"
CORPUS="$ROOT/samples/corpus.txt"
expect_rc 0 "$RLHF" tokenizer train --vocab 300 --out tok.bin "$CORPUS"
expect_rc 0 "$RLHF" init p.db
export RLHF_DB=p.db
expect_rc 0 "$RLHF" prompts import "$ROOT/samples/prompts.jsonl"
TRAIN="--corpus $CORPUS --tokenizer tok.bin --config tiny --batch 2 --threads 1"
# the intermediate checkpoint, written outside the store, as a running pretrain leaves it
expect_rc 0 env -u RLHF_DB "$RLHF" pretrain $TRAIN --steps 2 --out prov.ckpt
expect_rc 0 "$RLHF" gen --model prov.ckpt -k 2 --ids 1,2 --max-tokens 4 --seed 1
old=$(sql p.db "SELECT sha256 FROM models WHERE name = 'prov.ckpt'")
[ -n "$old" ] || die "gen did not register prov.ckpt"
ncand=$(sql p.db "SELECT count(*) FROM candidates")
[ "$ncand" -gt 0 ] || die "no candidates"
# the trainer finishes and writes other weights to the same file
expect_rc 0 "$RLHF" pretrain $TRAIN --steps 3 --out prov.ckpt --resume
contains "$ERR" "stay registered as 'prov.ckpt@"
new=$(sql p.db "SELECT sha256 FROM models WHERE name = 'prov.ckpt'")
[ "$new" != "$old" ] || die "the name still has the old weights"
[ "$(sql p.db "SELECT kind FROM models WHERE name = 'prov.ckpt'")" = base ] || die "new row not kind base"
bad=$(sql p.db "SELECT count(*) FROM candidates c JOIN models m ON m.id = c.model_id WHERE m.sha256 <> '$old'")
[ "$bad" = 0 ] || die "$bad candidates now point at weights that did not make them"
kept=$(sql p.db "SELECT name FROM models WHERE sha256 = '$old'")
case "$kept" in prov.ckpt@*) ;; *) die "old weights kept as '$kept'" ;; esac
# gen on the new file finds the new row by its path, no refusal
expect_rc 0 "$RLHF" gen --model prov.ckpt -k 2 --ids 3 --max-tokens 4 --seed 1
n=$(sql p.db "SELECT count(*) FROM candidates c JOIN models m ON m.id = c.model_id WHERE m.name = 'prov.ckpt'")
[ "$n" -gt 0 ] || die "gen on the new weights did not attach to the new row"

# a name that nothing points at is simply updated: no version rows pile up
expect_rc 0 "$RLHF" pretrain $TRAIN --steps 2 --out solo.ckpt
expect_rc 0 "$RLHF" pretrain $TRAIN --steps 3 --out solo.ckpt --force
not_contains "$ERR" "stay registered"
[ "$(sql p.db "SELECT count(*) FROM models WHERE name LIKE 'solo.ckpt%'")" = 1 ] || die "solo versioned"
echo ok
