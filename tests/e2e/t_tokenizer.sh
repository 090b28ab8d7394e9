#!/bin/sh
# rlhf tokenizer train|encode|decode: training on the sample corpus, exact
# round trips through the CLI (Chinese, emoji), and refused bad input.
. "$ROOT/tests/e2e/lib.sh"
expect_rc 0 "$RLHF" tokenizer train --vocab 600 --out tok.bin "$ROOT/samples/corpus.txt"
contains "$OUT" "wrote tok.bin: 600 tokens"
[ -s tok.bin ] || die "no tokenizer written"
for text in "Question: What is 3 plus 4?" "你好，世界" "emoji 😀🎉 end" "  spaces  and tabs	x"; do
    expect_rc 0 "$RLHF" tokenizer encode --tokenizer tok.bin --bos "$text"
    ids=$OUT
    # shellcheck disable=SC2086
    expect_rc 0 "$RLHF" tokenizer decode --tokenizer tok.bin $ids
    [ "$OUT" = "$text" ] || die "round trip: '$text' came back as '$OUT'"
done
# frequent words become single tokens
i=0; while [ $i -lt 300 ]; do echo "the quick brown fox jumps over the lazy dog $i"; i=$((i + 1)); done >small.txt
expect_rc 0 "$RLHF" tokenizer train --vocab 420 --out small.bin small.txt
expect_rc 0 "$RLHF" tokenizer encode --tokenizer small.bin --pieces " quick"
[ "$(echo "$OUT" | wc -l)" -eq 1 ] || die "' quick' should be one token: $OUT"
# bad input
expect_rc 2 "$RLHF" tokenizer train --vocab 100 --out x.bin "$ROOT/samples/corpus.txt"
expect_rc 2 "$RLHF" tokenizer train --vocab 600 "$ROOT/samples/corpus.txt"
expect_rc 1 "$RLHF" tokenizer train --vocab 600 --out x.bin /nonexistent/corpus.txt
contains "$ERR" "/nonexistent/corpus.txt"
: >empty.txt
expect_rc 1 "$RLHF" tokenizer train --vocab 600 --out x.bin empty.txt
contains "$ERR" "empty"
head -c 1000 tok.bin >trunc.bin
expect_rc 1 "$RLHF" tokenizer encode --tokenizer trunc.bin "hello"
contains "$ERR" "truncated"
expect_rc 1 "$RLHF" tokenizer encode --tokenizer "$ROOT/samples/corpus.txt" "hello"
contains "$ERR" "not a tokenizer"
expect_rc 2 "$RLHF" tokenizer decode --tokenizer tok.bin 5 99999
expect_rc 2 "$RLHF" tokenizer frobnicate
exit 0
