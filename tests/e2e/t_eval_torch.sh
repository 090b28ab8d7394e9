#!/bin/sh
# eval's KL end to end against an independent PyTorch computation
# (tests/ref/eval_kl_ref.py): a policy's stored draws at temperature 0.7, on
# the token ids it sampled (</s> where it sampled one), log-probs of logits / T
# for the policy and its reference, per-prompt means over draws, then over
# prompts (16 answer tokens at most: every example fits the tiny model's
# context, uncut). The reference at temperature 1 must disagree.
. "$ROOT/tests/e2e/lib.sh"
/usr/bin/python3 -c 'import torch, numpy' 2>/dev/null || skip_missing "no PyTorch under /usr/bin/python3"
tiny_base p.db
expect_rc 0 "$RLHF" prompts import --db p.db "$ROOT/samples/prompts.jsonl"
expect_rc 0 "$RLHF" sft --db p.db --init base.ckpt --data "$ROOT/samples/sft.jsonl" --epochs 1 --lr 3e-3 \
    --out sft.ckpt --name sft
for m in base sft; do expect_rc 0 "$RLHF" convert --model $m.ckpt --to llama2c --out $m.bin; done
kl() {  # kl T NAME: eval's sampled KL of sft from base at temperature T, side B's model NAME
    expect_rc 0 "$RLHF" eval --db p.db --a base.ckpt --b sft.ckpt --ref base.ckpt --judge correct \
        --temperature "$1" --samples 3 --limit 6 --seed 5 --max-tokens 16 --json
    echo "$OUT" | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["sides"][1]["kl_policy"])'
}
k07=$(kl 0.7)
/usr/bin/python3 "$ROOT/tests/ref/eval_kl_ref.py" p.db sft sft.bin base.bin tok.bin "$RLHF" 0.7 3 "$k07" ||
    die "eval's KL at T = 0.7 ($k07) is not PyTorch's"
# the same draws judged at T = 1 by the reference: another number, so the check can fail
if /usr/bin/python3 "$ROOT/tests/ref/eval_kl_ref.py" p.db sft sft.bin base.bin tok.bin "$RLHF" 1.0 3 "$k07" >/dev/null; then
    die "the reference at T = 1 agrees with eval at T = 0.7: the check cannot tell temperatures apart"
fi
exit 0
