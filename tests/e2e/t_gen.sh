# rlhf gen: k candidates per prompt from a checkpoint; idempotent, deterministic
# in the seed, resumable after kill -9 (at most the prompt in flight is lost),
# template stored with the model, bad input refused before anything is written.
. "$ROOT/tests/e2e/lib.sh"
CORPUS="$ROOT/samples/corpus.txt"
expect_rc 0 "$RLHF" tokenizer train --vocab 300 --out tok.bin "$CORPUS"
expect_rc 0 "$RLHF" pretrain --corpus "$CORPUS" --tokenizer tok.bin --config tiny --steps 5 --batch 2 --out t.ckpt
for d in a b c; do
    expect_rc 0 "$RLHF" init $d.db
    expect_rc 0 "$RLHF" prompts import --db $d.db "$ROOT/samples/prompts.jsonl"
done
export RLHF_DB=a.db

# usage and bad input: nothing registered, nothing generated
expect_rc 2 "$RLHF" gen -k 2
contains "$ERR" "--model CKPT is required"
expect_rc 2 "$RLHF" gen --model t.ckpt -k 0
expect_rc 2 "$RLHF" gen --model t.ckpt --ids 1,x
expect_rc 2 "$RLHF" gen --model t.ckpt --template "no placeholder"
expect_rc 2 "$RLHF" gen --model t.ckpt --top-p 0
expect_rc 2 "$RLHF" gen --model t.ckpt --frobnicate
expect_rc 1 "$RLHF" gen --model missing.ckpt
contains "$ERR" "missing.ckpt"
head -c 1000 /dev/urandom > junk.ckpt
expect_rc 1 "$RLHF" gen --model junk.ckpt
head -c 5000 t.ckpt > cut.ckpt
expect_rc 1 "$RLHF" gen --model cut.ckpt
[ "$(sql a.db "select count(*) from models")" = 0 ] || die "a bad checkpoint was registered"

# fill the test split; a rerun finds nothing to do
expect_rc 0 "$RLHF" gen --model t.ckpt -k 3 --split test --max-tokens 12 --seed 5
nt=$(grep -c '"split": "test"' "$ROOT/samples/prompts.jsonl")
contains "$OUT" "$nt prompts"
n=$(sql a.db "select count(*) from candidates")
[ "$n" -ge $((nt * 5 / 2)) ] && [ "$n" -le $((nt * 3)) ] || die "expected about $((nt * 3)) candidates, got $n"
[ "$(sql a.db "select count(*) from candidates c join prompts p on p.id=c.prompt_id where p.split='train'")" = 0 ] || die "--split ignored"
expect_rc 0 "$RLHF" gen --model t.ckpt -k 3 --split test --max-tokens 12 --seed 5
contains "$OUT" "0 prompts, 0 new candidates"
[ "$(sql a.db "select count(*) from candidates where n_tokens is null or sum_logprob is null or seed is null or params is null")" = 0 ] || die "candidate metadata missing"
[ "$(sql a.db "select name from models")" = t.ckpt ] || die "model name"
# --ids and the stored template
expect_rc 0 "$RLHF" gen --model t.ckpt -k 2 --ids 1,2 --max-tokens 4 --template 'Q: {prompt}
A:'
[ "$(sql a.db "select count(*) from candidates where prompt_id in (1,2)")" -ge 3 ] || die "--ids"
[ "$(sql a.db "select template from models")" = 'Q: {prompt}
A:' ] || die "template not stored with the model"

# the same seed gives the same candidates in another project
expect_rc 0 "$RLHF" gen --db b.db --model t.ckpt -k 3 --split test --max-tokens 12 --seed 5
q="select group_concat(c.text, '|') from (select c.text from candidates c join prompts p on p.id=c.prompt_id where p.split='test' order by c.prompt_id, c.seed, c.text) c"
[ "$(sql a.db "$q")" = "$(sql b.db "$q")" ] || die "same seed, different candidates"

# prompt by prompt (--batch 1), the same candidates as the default batches of
# several prompts (-k 3: two prompts a batch of 8; -k 1 --batch 5: five)
expect_rc 0 "$RLHF" init d.db
expect_rc 0 "$RLHF" prompts import --db d.db "$ROOT/samples/prompts.jsonl"
expect_rc 0 "$RLHF" gen --db d.db --model t.ckpt -k 3 --split test --max-tokens 12 --seed 5 --batch 1
[ "$(sql a.db "$q")" = "$(sql d.db "$q")" ] || die "--batch 1 gave other candidates"
qa="select group_concat(c.text || ':' || c.n_tokens || ':' || c.sum_logprob || ':' || c.seed, '|') from (select * from candidates c order by c.prompt_id, c.seed) c where c.model_id = (select id from models where name = '%s')"
expect_rc 0 "$RLHF" gen --db d.db --model t.ckpt --name one -k 1 --max-tokens 12 --seed 7 --batch 1
expect_rc 0 "$RLHF" gen --db d.db --model t.ckpt --name five -k 1 --max-tokens 12 --seed 7 --batch 5
one=$(sql d.db "$(printf "$qa" one)")
[ "$(echo "$one" | tr '|' '\n' | wc -l)" -ge 20 ] || die "expected a sample of every prompt: $one"
[ "$one" = "$(sql d.db "$(printf "$qa" five)")" ] || die "a batch of 5 prompts gave other samples"
expect_rc 2 "$RLHF" gen --db d.db --model t.ckpt --batch 0

# kill -9 mid-run, then resume: every prompt is whole, and the result equals an uninterrupted run
expect_rc 0 "$RLHF" gen --db b.db --model t.ckpt -k 4 --max-tokens 48 --seed 9 --split train
"$RLHF" gen --db c.db --model t.ckpt -k 4 --max-tokens 48 --seed 9 --split train >/dev/null 2>&1 &
pid=$!
i=0
while [ "$(sql c.db "select count(*) from candidates")" -lt 40 ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i+1)); done
kill -9 $pid 2>/dev/null; wait $pid 2>/dev/null
partial=$(sql c.db "select count(*) from candidates")
echo "killed after $partial candidates"
[ "$partial" -lt 800 ] || die "the run ended before the kill; nothing was tested"
# one transaction per prompt: a prompt has all its candidates or none
[ "$(sql c.db "select count(*) from (select prompt_id from candidates group by prompt_id having count(*) < 3)")" = 0 ] || die "a half-written prompt survived the kill"
expect_rc 0 "$RLHF" gen --db c.db --model t.ckpt -k 4 --max-tokens 48 --seed 9 --split train
q="select group_concat(c.text, '|') from (select c.text from candidates c join prompts p on p.id=c.prompt_id where p.split='train' order by c.prompt_id, c.seed, c.text) c"
[ "$(sql b.db "$q")" = "$(sql c.db "$q")" ] || die "resumed run differs from an uninterrupted one"
# all stored text is valid UTF-8 even from an undertrained model
/usr/bin/python3 -c 'import sqlite3; [r[0].encode("utf-8") for r in sqlite3.connect("c.db").execute("select text from candidates")]' || die "invalid UTF-8 stored"
exit 0
