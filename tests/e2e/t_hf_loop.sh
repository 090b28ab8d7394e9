#!/bin/sh
# The README's "Your own model" loop on a Hugging Face directory (a random
# tiny Qwen2 with a byte-level tokenizer.json and a ChatML chat template, as
# tests/ref/hf_ref.py writes it): candidates from the HF model under its own
# chat template, simulated labels, a reward model, DPO and PPO from the HF
# model, both written back as HF directories that the independent PyTorch
# reference loads with the same logits and rewards as rlhf.
. "$ROOT/tests/e2e/lib.sh"
/usr/bin/python3 -c 'import torch, numpy' 2>/dev/null || skip_missing "no PyTorch under /usr/bin/python3"
REF="/usr/bin/python3 $ROOT/tests/ref/hf_ref.py"
$REF make --arch qwen2 --size tiny --seed 3 --out base >/dev/null || die "hf_ref make failed"

expect_rc 0 "$RLHF" init p.db
expect_rc 0 "$RLHF" prompts import --db p.db "$ROOT/samples/prompts.jsonl"
# the chat template comes from tokenizer_config.json and is registered with the model
expect_rc 0 "$RLHF" gen --db p.db --model base -k 4 --limit 6 --max-tokens 12 --split train
expect_rc 0 "$RLHF" template show --model base
contains "$OUT" "chat:smollm2"
tmpl=$(sql p.db "SELECT template FROM models WHERE name = 'base'")
[ "$tmpl" = "chat:smollm2" ] || die "the HF model was registered with template '$tmpl'"
n=$(sql p.db "SELECT count(*) FROM candidates")
[ "$n" -ge 12 ] || die "only $n candidates"
# no end-of-turn token or template text leaks into a stored answer
leak=$(sql p.db "SELECT count(*) FROM candidates WHERE text LIKE '%<|im_end|>%' OR text LIKE '%<|im_start|>%'")
[ "$leak" = 0 ] || die "$leak candidates hold template tokens"
expect_rc 0 "$RLHF" label --db p.db --auto length --as sim --seed 1
expect_rc 0 "$RLHF" train-rm --db p.db --init base --out rm.ckpt --epochs 2 --val-frac 0
expect_rc 0 "$RLHF" dpo --db p.db --policy base --data store --out dpo.ckpt --steps 2
expect_rc 0 "$RLHF" ppo --db p.db --policy base --rm rm.ckpt --out ppo.ckpt --steps 1 --max-new 8 --prompts 2 --samples 2
expect_rc 0 "$RLHF" sample --model ppo.ckpt --temperature 0 --max-tokens 8 "What is two plus two?"
expect_rc 0 "$RLHF" eval --db p.db --a base --b ppo.ckpt --rm rm.ckpt --limit 4 --max-tokens 8

# back to Hugging Face: the policy as *ForCausalLM, the RM as *ForSequenceClassification
expect_rc 0 "$RLHF" convert --model ppo.ckpt --to hf --dtype f32 --out ppo_hf
contains "$OUT" "ForCausalLM"
expect_rc 0 "$RLHF" convert --model rm.ckpt --to hf --dtype f32 --out rm_hf
contains "$OUT" "ForSequenceClassification"
grep -q '"Qwen2ForSequenceClassification"' rm_hf/config.json || die "rm_hf/config.json: no Qwen2ForSequenceClassification"
grep -q '"rlhf_reward_bias"' rm_hf/config.json || die "rm_hf/config.json: no rlhf_reward_bias"
for f in tokenizer.json tokenizer_config.json generation_config.json; do
    cmp -s "base/$f" "ppo_hf/$f" || die "ppo_hf/$f is not the original's"
done
# the copies pass the PyTorch reference (outputs and gradients), and the RM's
# reward through HF's layout (score.weight at the last non-pad token) equals
# rlhf's
for d in ppo_hf rm_hf; do
    expect_rc 0 "$RLHF" model-dump --model "$d" --out "$d.dump" --batch 2 --len 10 --mask
    $REF check "$d" "$d.dump" >"$d.log" 2>&1 || { cat "$d.log"; die "torch reference disagrees: $d"; }
done
# a default bf16 copy is what a user ships: it loads back (rounded weights)
expect_rc 0 "$RLHF" convert --model ppo.ckpt --to hf --out ppo_bf16
grep -q '"bfloat16"' ppo_bf16/config.json || die "default dtype is not bf16"
expect_rc 0 "$RLHF" sample --model ppo_bf16 --temperature 0 --max-tokens 4 "Hi"
exit 0
