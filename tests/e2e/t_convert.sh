# rlhf convert: our checkpoint -> llama2.c's model.bin + tokenizer.bin -> ours again,
# with the same greedy text at every step; bad input refused.
. "$ROOT/tests/e2e/lib.sh"
CORPUS="$ROOT/samples/corpus.txt"
expect_rc 0 "$RLHF" tokenizer train --vocab 300 --out tok.bin "$CORPUS"
expect_rc 0 "$RLHF" pretrain --corpus "$CORPUS" --tokenizer tok.bin --config tiny --steps 30 --batch 4 --out m.ckpt
P="Human: What is the opposite of hot?
Assistant:"
expect_rc 0 "$RLHF" sample --model m.ckpt --temperature 0 --max-tokens 16 "$P"; ref=$OUT
expect_rc 0 "$RLHF" convert --model m.ckpt --to llama2c --out model.bin --tokenizer-out tokenizer.bin
contains "$OUT" "llama2.c format"
# llama2.c's header: 7 ints, then the weights
/usr/bin/python3 -c 'import struct,sys; h=struct.unpack("7i", open("model.bin","rb").read(28)); sys.exit(0 if h[5] != 0 and h[6] > 0 else 1)' || die "bad llama2.c header"
expect_rc 0 "$RLHF" sample --model model.bin --tokenizer tokenizer.bin --temperature 0 --max-tokens 16 "$P"
[ "$OUT" = "$ref" ] || die "llama2.c copy samples differently: '$OUT' vs '$ref'"
expect_rc 1 "$RLHF" sample --model model.bin --temperature 0 "$P"
contains "$ERR" "carries no tokenizer"
expect_rc 0 "$RLHF" convert --model model.bin --to rlhf --tokenizer tokenizer.bin --out back.ckpt
expect_rc 0 "$RLHF" sample --model back.ckpt --temperature 0 --max-tokens 16 "$P"
[ "$OUT" = "$ref" ] || die "round trip samples differently"
# bad input
expect_rc 2 "$RLHF" convert --model m.ckpt --to onnx --out x
expect_rc 2 "$RLHF" convert --model m.ckpt --out x
expect_rc 2 "$RLHF" convert --model m.ckpt --to rlhf --out m.ckpt
expect_rc 2 "$RLHF" convert --model m.ckpt --to rlhf --tokenizer-out t.bin --out x
expect_rc 1 "$RLHF" convert --model missing.bin --to rlhf --out x
contains "$ERR" "missing.bin"
head -c 3000 model.bin > cut.bin
expect_rc 1 "$RLHF" convert --model cut.bin --to rlhf --out x
contains "$ERR" "cut.bin"
[ ! -e x ] || die "a failed conversion left a file"
exit 0
