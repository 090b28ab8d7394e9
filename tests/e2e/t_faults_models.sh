#!/bin/sh
# Issue 24 item 5: a reward model is refused as PPO's reference, and a model,
# reference, RM or --tokenizer with another tokenizer of the same size is
# refused by content (not only by vocabulary size), naming both files.
. "$ROOT/tests/e2e/lib.sh"
CORPUS="$ROOT/samples/corpus.txt"
expect_rc 0 "$RLHF" tokenizer train --vocab 300 --out tok.bin "$CORPUS"
# another tokenizer of the same size: trained on other text
expect_rc 0 "$RLHF" tokenizer train --vocab 300 --out tok2.bin "$ROOT/README.md"
cmp -s tok.bin tok2.bin && die "the two tokenizers are the same"
TRAIN="--corpus $CORPUS --config tiny --batch 2 --threads 1 --steps 2"
expect_rc 0 "$RLHF" pretrain $TRAIN --tokenizer tok.bin --out sft.ckpt
expect_rc 0 "$RLHF" pretrain $TRAIN --tokenizer tok2.bin --out other.ckpt
/usr/bin/python3 "$ROOT/tests/e2e/make_rm.py" sft.ckpt rm.ckpt --emb 2 5 || die "could not make an RM"
expect_rc 0 "$RLHF" init p.db
export RLHF_DB=p.db
expect_rc 0 "$RLHF" prompts import "$ROOT/samples/prompts.jsonl"
SMALL="--prompts 2 --samples 2 --max-new 8 --minibatch 4 --epochs 2 --threads 1 --steps 1"

# ppo: a reward model is no reference policy
expect_rc 1 "$RLHF" ppo --policy sft.ckpt --rm rm.ckpt --ref rm.ckpt --out a.ckpt $SMALL
contains "$ERR" "rm.ckpt is a reward model"
# ppo: a reference with another tokenizer of the same size
expect_rc 1 "$RLHF" ppo --policy sft.ckpt --rm rm.ckpt --ref other.ckpt --out a.ckpt $SMALL
contains "$ERR" "different tokenizers"
contains "$ERR" "other.ckpt"
contains "$ERR" "sft.ckpt"
# ppo: --tokenizer that is not the one the checkpoints carry
expect_rc 1 "$RLHF" ppo --policy sft.ckpt --rm rm.ckpt --tokenizer tok2.bin --out a.ckpt $SMALL
contains "$ERR" "different tokenizers"
contains "$ERR" "tok2.bin"
[ ! -e a.ckpt ] || die "a refused ppo wrote a checkpoint"
# the same tokenizer given explicitly is fine
expect_rc 0 "$RLHF" ppo --policy sft.ckpt --rm rm.ckpt --ref sft.ckpt --tokenizer tok.bin --out a.ckpt $SMALL

# sft, dpo, train-rm: a --tokenizer other than the checkpoint's own is refused, nothing written
printf '{"prompt":"a","completion":"b"}\n' > sft.jsonl
expect_rc 1 "$RLHF" sft --init sft.ckpt --tokenizer tok2.bin --data sft.jsonl --out s.ckpt --steps 1
contains "$ERR" "different tokenizers"
contains "$ERR" "sft.ckpt"
contains "$ERR" "tok2.bin"
printf '{"prompt":"a","chosen":"b","rejected":"c"}\n' > pairs.jsonl
expect_rc 1 "$RLHF" dpo --policy sft.ckpt --tokenizer tok2.bin --data pairs.jsonl --out d.ckpt --steps 1
contains "$ERR" "different tokenizers"
contains "$ERR" "tok2.bin"
expect_rc 1 "$RLHF" train-rm --init sft.ckpt --tokenizer tok2.bin --out r.ckpt
contains "$ERR" "different tokenizers"
contains "$ERR" "tok2.bin"
[ ! -e s.ckpt ] && [ ! -e d.ckpt ] && [ ! -e r.ckpt ] || die "a refused trainer wrote a checkpoint"
# and the same tokenizer given explicitly still runs
expect_rc 0 "$RLHF" sft --init sft.ckpt --tokenizer tok.bin --data sft.jsonl --out s.ckpt --steps 1 --val-frac 0
echo ok
