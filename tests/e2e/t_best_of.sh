# Best-of-n: gen --best-of N --rm RM stores the kept answers as candidates of
# the policy "<ckpt>+boN" (parent: the checkpoint) and sums the scores up;
# sample --best-of prints all N with their rewards and marks the highest; bad
# input is refused before anything is written.
. "$ROOT/tests/e2e/lib.sh"
CORPUS="$ROOT/samples/corpus.txt"
expect_rc 0 "$RLHF" tokenizer train --vocab 300 --out tok.bin "$CORPUS"
expect_rc 0 "$RLHF" pretrain --corpus "$CORPUS" --tokenizer tok.bin --config tiny --steps 5 --batch 2 --out t.ckpt
/usr/bin/python3 "$ROOT/tests/e2e/make_rm.py" t.ckpt rm.ckpt 1 || die "make_rm.py"
/usr/bin/python3 "$ROOT/tests/e2e/make_rm.py" t.ckpt rm2.ckpt 2 || die "make_rm.py"
expect_rc 0 "$RLHF" init p.db
expect_rc 0 "$RLHF" prompts import --db p.db "$ROOT/samples/prompts.jsonl"
export RLHF_DB=p.db

# usage and bad input
expect_rc 2 "$RLHF" gen --model t.ckpt --best-of 3
contains "$ERR" "--rm RM"
expect_rc 2 "$RLHF" gen --model t.ckpt --rm rm.ckpt
expect_rc 2 "$RLHF" gen --model t.ckpt --best-of 1 --rm rm.ckpt
expect_rc 1 "$RLHF" gen --model t.ckpt --best-of 3 --rm t.ckpt
contains "$ERR" "not a reward model"
expect_rc 1 "$RLHF" gen --model t.ckpt --best-of 3 --rm missing.ckpt
[ "$(sql p.db "select count(*) from models")" = 0 ] || die "a refused run registered a model"
expect_rc 2 "$RLHF" sample --model t.ckpt --best-of 3 "hi"
expect_rc 2 "$RLHF" sample --model t.ckpt --rm rm.ckpt "hi"
expect_rc 1 "$RLHF" sample --model t.ckpt --best-of 3 --rm t.ckpt "hi"
contains "$ERR" "not a reward model"

# gen: two answers per prompt, each the best of 4
expect_rc 0 "$RLHF" gen --model t.ckpt --best-of 4 --rm rm.ckpt -k 2 --split test --limit 5 --max-tokens 12
contains "$OUT" "5 prompts"
contains "$ERR" "best-of-4 by rm.ckpt as t.ckpt+bo4"
[ "$(sql p.db "select kind || ' ' || parent_id from models where name = 't.ckpt+bo4'")" = "policy $(sql p.db "select id from models where name = 't.ckpt'")" ] || die "best-of model"
[ "$(sql p.db "select count(*) from candidates c join models m on m.id = c.model_id where m.name = 't.ckpt+bo4'")" -ge 8 ] || die "kept answers not stored"
[ "$(sql p.db "select count(*) from candidates c join models m on m.id = c.model_id where m.name != 't.ckpt+bo4'")" = 0 ] || die "the other samples were stored"
[ "$(sql p.db "select count(*) from candidates where params like '%\"best_of\":4%'")" -ge 8 ] || die "params lack best_of"
# the summary: the kept beat the average sample
/usr/bin/python3 - "$ERR" <<'PY' || die "kept answers score below the samples: $ERR"
import re, sys
m = re.search(r"kept (-?[\d.]+), of all samples (-?[\d.]+), of sample 0 \(the plain policy\) (-?[\d.]+)", sys.argv[1])
kept, all_, first = map(float, m.groups())
assert kept >= all_ and kept >= first
PY
# a rerun fills nothing; another RM under the same name is refused
expect_rc 0 "$RLHF" gen --model t.ckpt --best-of 4 --rm rm.ckpt -k 2 --split test --limit 5 --max-tokens 12
contains "$OUT" "0 new candidates"
expect_rc 1 "$RLHF" gen --model t.ckpt --best-of 4 --rm rm2.ckpt -k 2 --split test --limit 5
contains "$ERR" "another name"
expect_rc 0 "$RLHF" gen --model t.ckpt --best-of 4 --rm rm2.ckpt --name t-bo4-rm2 -k 1 --split test --limit 2 --max-tokens 12
[ "$(sql p.db "select count(*) from candidates c join models m on m.id = c.model_id where m.name = 't-bo4-rm2'")" = 2 ] || die "--name"

# rejection-sampling fine-tuning: SFT on exactly the answers best-of-n kept
expect_rc 2 "$RLHF" sft --db p.db --init t.ckpt --data best-of --no-ranked --out rs.ckpt
expect_rc 1 "$RLHF" sft --db p.db --init t.ckpt --data best-of --from-model t.ckpt --out rs.ckpt --steps 1
contains "$ERR" "not a best-of policy"
expect_rc 0 "$RLHF" sft --db p.db --init t.ckpt --data best-of --out rs.ckpt --steps 1 --val-frac 0
[ "$(sql p.db "select json_extract(config, '$.pairs') from runs where kind = 'sft' order by id desc limit 1")" = 2 ] ||
    die "RSFT on the newest best-of policy (t-bo4-rm2: 2 answers)"
n=$(sql p.db "select count(*) from candidates c join models m on m.id = c.model_id where m.name = 't.ckpt+bo4'")
expect_rc 0 "$RLHF" sft --db p.db --init t.ckpt --data best-of --from-model t.ckpt+bo4 --out rs2.ckpt --steps 1 --val-frac 0
[ "$(sql p.db "select json_extract(config, '$.pairs') from runs where kind = 'sft' order by id desc limit 1")" = "$n" ] ||
    die "RSFT on t.ckpt+bo4: $n kept answers"

# sample: all N printed with rewards, exactly one kept, the highest
expect_rc 0 "$RLHF" sample --model t.ckpt --best-of 5 --rm rm.ckpt --max-tokens 12 --seed 3 --json "What color is the grass?"
[ "$(printf "%s\n" "$OUT" | wc -l)" -eq 5 ] || die "expected 5 samples: $OUT"
printf "%s\n" "$OUT" | /usr/bin/python3 -c '
import json, sys
s = [json.loads(l) for l in sys.stdin]
kept = [x for x in s if x["kept"]]
assert len(kept) == 1 and kept[0]["reward"] == max(x["reward"] for x in s), s
assert s[0]["seed"] == 3' || die "sample --best-of: $OUT"
expect_rc 0 "$RLHF" sample --model t.ckpt --best-of 3 --rm rm.ckpt --max-tokens 12 -k 2 "Name a fruit."
[ "$(printf "%s\n" "$OUT" | grep -c '^--- answer')" = 6 ] || die "2 answers of 3 samples: $OUT"
[ "$(printf "%s\n" "$OUT" | grep -c 'kept: the highest')" = 2 ] || die "one kept per answer: $OUT"
exit 0
