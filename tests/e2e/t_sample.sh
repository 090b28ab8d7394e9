#!/bin/sh
# rlhf sample on a random llama2.c-format checkpoint: reproducible with a seed,
# batched samples equal single ones, stop strings, limits, bf16 weights, and
# bad input.
. "$ROOT/tests/e2e/lib.sh"
expect_rc 0 "$RLHF" tokenizer train --vocab 512 --out tok.bin "$ROOT/samples/corpus.txt"
expect_rc 0 "$RLHF" model-dump --out m --vocab 512 --seed 4
S="$RLHF sample --model m/model.bin --tokenizer tok.bin"
expect_rc 0 $S --seed 7 --max-tokens 30 "Question: What"
a=$OUT
contains "$ERR" "30 sampled"
expect_rc 0 $S --seed 7 --max-tokens 30 "Question: What"
[ "$OUT" = "$a" ] || die "same seed, different text"
expect_rc 0 $S --seed 8 --max-tokens 30 "Question: What"
[ "$OUT" != "$a" ] || die "different seeds, same text"
# -k 3 decodes as a batch; sample i uses seed + i, so the first equals seed 7 alone
expect_rc 0 $S --seed 7 --max-tokens 30 -k 3 --json "Question: What"
[ "$(echo "$OUT" | wc -l)" -eq 3 ] || die "expected 3 JSON lines: $OUT"
first=$(echo "$OUT" | head -n 1 | /usr/bin/python3 -c 'import json,sys; print(json.loads(sys.stdin.read())["text"], end="")')
[ "$first" = "$a" ] || die "batched sample 1 differs from the single sample: '$first' vs '$a'"
contains "$OUT" '"finish":"length"'
# the prompt from standard input
printf 'Question: What' | $S --seed 7 --max-tokens 30 - >stdin.txt 2>/dev/null || die "prompt from stdin failed"
[ "$(cat stdin.txt)" = "$a" ] || die "prompt from stdin gives another text"
# greedy is seed-independent
expect_rc 0 $S --temperature 0 --seed 1 --max-tokens 20 "x"
g=$OUT
expect_rc 0 $S --temperature 0 --seed 2 --max-tokens 20 "x"
[ "$OUT" = "$g" ] || die "greedy depends on the seed"
# -t is --temperature, as llama2.c's run.c spells it
expect_rc 0 $S -t 0 --seed 3 --max-tokens 20 "x"
[ "$OUT" = "$g" ] || die "-t 0 is not --temperature 0"
expect_rc 2 $S -t -1 "x"
contains "$ERR" "--temperature"
# a stop string cuts the text before it
stop=$(printf '%s' "$a" | cut -c 5-6)
if [ -n "$stop" ]; then
    expect_rc 0 $S --seed 7 --max-tokens 30 --stop "$stop" --json "Question: What"
    contains "$OUT" '"finish":"stop"'
fi
# --weights: a model converted to BF16 safetensors decodes with bf16 weights
# on its own, losslessly: the text of --weights f32
expect_rc 0 "$RLHF" convert --model m/model.bin --tokenizer tok.bin --to rlhf --out m.ckpt
expect_rc 0 "$RLHF" convert --model m.ckpt --to hf --dtype bf16 --out hf
H="$RLHF sample --model hf --tokenizer tok.bin --max-tokens 30"
expect_rc 0 $H --temperature 0 "Question: What"
hg=$OUT
contains "$ERR" "bf16 weights"
expect_rc 0 $H --temperature 0 --weights f32 "Question: What"
contains "$ERR" "f32 weights"
[ "$OUT" = "$hg" ] || die "greedy text with f32 weights differs from bf16's: '$OUT' vs '$hg'"
expect_rc 0 $H --temperature 0 --weights bf16 "Question: What"
[ "$OUT" = "$hg" ] || die "--weights bf16 differs from auto"
# (sampled too; the log-probs agree to float rounding, the sums' order differs)
texts() { echo "$1" | /usr/bin/python3 -c 'import json,sys; [print(json.loads(l)["text"]) for l in sys.stdin]'; }
expect_rc 0 $H --seed 7 -k 3 --json "Question: What"
hs=$(texts "$OUT")
expect_rc 0 $H --seed 7 -k 3 --json --weights f32 "Question: What"
[ "$(texts "$OUT")" = "$hs" ] || die "sampled texts differ between bf16 and f32 weights"
# f32 weights stay f32 unless bf16 is asked for (which rounds them)
expect_rc 0 $S --temperature 0 --max-tokens 20 "x"
contains "$ERR" "f32 weights"
[ "$OUT" = "$g" ] || die "auto changed the greedy text of an f32 model"
expect_rc 0 $S --temperature 0 --max-tokens 20 --weights bf16 "x"
contains "$ERR" "bf16 weights"
expect_rc 2 $S --weights f16 "x"
contains "$ERR" "--weights"
# bad input
expect_rc 2 $S
expect_rc 2 "$RLHF" sample --tokenizer tok.bin "x"
expect_rc 2 $S --top-p 0 "x"
expect_rc 2 $S --temperature -1 "x"
expect_rc 2 $S --max-tokens 0 "x"
expect_rc 1 "$RLHF" sample --model m/model.bin "x"
contains "$ERR" "no tokenizer"
expect_rc 0 "$RLHF" tokenizer train --vocab 600 --out tok600.bin "$ROOT/samples/corpus.txt"
expect_rc 1 "$RLHF" sample --model m/model.bin --tokenizer tok600.bin "x"
contains "$ERR" "wrong tokenizer"
head -c 5000 m/model.bin >trunc.bin
expect_rc 1 "$RLHF" sample --model trunc.bin --tokenizer tok.bin "x"
exit 0
