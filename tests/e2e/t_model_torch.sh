#!/bin/sh
# The engine against an independent PyTorch model built from our llama2.c-format
# checkpoint: logits, masked loss, log-probs, entropies, reward/value heads and
# every gradient (tolerances in tests/ref/torch_ref.py).
. "$ROOT/tests/e2e/lib.sh"
/usr/bin/python3 -c 'import torch, numpy' 2>/dev/null || skip_missing "no PyTorch under /usr/bin/python3"
check() {
    name=$1; shift
    expect_rc 0 "$RLHF" model-dump --out "$name" "$@"
    /usr/bin/python3 "$ROOT/tests/ref/torch_ref.py" "$name" >"$name.log" 2>&1 || { cat "$name.log"; die "torch reference disagrees: $name ($*)"; }
    echo "$name: $(tail -n 1 "$name.log")"
}
check mha --kv-heads 4 --len 16 --batch 2
check gqa --kv-heads 2 --len 24 --batch 3 --mask
check mqa --kv-heads 1 --unshared --len 9 --batch 2 --mask --seed 7
check full --len 64 --batch 2 --mask --seed 3
check blocks --seq 160 --len 150 --batch 2 --mask --seed 4   # several causal blocks
# log-probs and entropies at temperature 0.7 (softmax(logits / 0.7), as PPO's at
# --temperature 0.7) and their gradients
check temp --len 16 --batch 2 --mask --seed 11 --temperature 0.7
# the Hugging Face families (written in our checkpoint format, which holds them):
# Qwen2-like q/k/v biases with grouped KV heads, eps 1e-6 and theta 1e6
check qwen2 --kv-heads 2 --qkv-bias --eps 1e-6 --rope-theta 1000000 --unshared --len 24 --batch 2 --mask --seed 5
# Qwen3-like per-head q/k norms before RoPE, head size 16 so NH*hs = 64 != dim 32
check qwen3 --kv-heads 2 --head-dim 16 --qk-norm --eps 1e-6 --rope-theta 1000000 --len 20 --batch 2 --mask --seed 6
# Llama 3.1 RoPE scaling with theta 500000; original context 256 puts head
# size 8's frequencies in all three bands (kept, smoothed, divided by 8)
check llama3 --kv-heads 2 --rope-theta 500000 --rope-llama3 8,1,4,256 --seq 160 --len 150 --batch 2 --mask --seed 8
check allhf --kv-heads 1 --head-dim 12 --qkv-bias --qk-norm --eps 1e-6 --rope-theta 500000 --rope-llama3 8,1,4,256 --seq 96 --len 80 --batch 2 --mask --seed 9
# LoRA (PEFT's: y = W x + alpha/R * B A x, dropout off) on a frozen base: the
# forward and the gradients of A, B and the heads; every target, grouped KV
# heads, the Qwen families' biases and q/k norms, PEFT's default targets q,v
check lora --lora 4 --lora-targets all --kv-heads 2 --len 16 --batch 2 --mask --seed 12
check lora_qwen --lora 3 --lora-alpha 7 --lora-targets q,k,v,o,down --kv-heads 2 --head-dim 16 --qk-norm --qkv-bias --unshared --len 12 --batch 2 --mask --seed 13
check lora_qv --lora 8 --len 10 --batch 3 --seed 14 --temperature 0.7
contains "$(cat lora_qv/lora.txt)" "8 16 5"
expect_rc 2 "$RLHF" model-dump --out x --lora 4 --lora-targets q,nope
contains "$ERR" "nope"
test -f qwen3/model.ckpt && ! test -f qwen3/model.bin || die "a feature dump should be in our format"
# llama2.c's format cannot hold them: refused, naming the feature, nothing written
expect_rc 1 "$RLHF" convert --model qwen2/model.ckpt --to llama2c --out q2.bin
contains "$ERR" "q/k/v biases"
test ! -e q2.bin || die "a refused export left a file"
# a load checks only the header and the sizes; models verify reads it all
expect_rc 0 "$RLHF" models verify qwen3/model.ckpt mha/model.bin
contains "$OUT" "sha256 matches"
/usr/bin/python3 - qwen3/model.ckpt <<'PY'
import sys
b = bytearray(open(sys.argv[1], "rb").read()); b[5000] ^= 0x40
open(sys.argv[1], "wb").write(b)
PY
expect_rc 1 "$RLHF" models verify qwen3/model.ckpt
contains "$ERR" "qwen3/model.ckpt: checksum mismatch"
# the reward model: one train-rm step (K-wise loss over groups of 3 and 4
# answers of different lengths, right-padded in one pass, centring penalty)
expect_rc 0 "$RLHF" tokenizer train --vocab 300 --out tok.bin "$ROOT/samples/corpus.txt"
expect_rc 0 "$RLHF" pretrain --corpus "$ROOT/samples/corpus.txt" --tokenizer tok.bin --steps 3 --out base.ckpt
/usr/bin/python3 - <<'PY'
import json
with open("ranked.jsonl", "w") as f:
    for p in range(6):
        answers = [f"answer {a} to {p}" + " more" * (a * p % 5) for a in range(3 + p % 2)]
        for i in range(len(answers)):
            for j in range(i + 1, len(answers)):
                f.write(json.dumps({"prompt": f"prompt number {p}?", "chosen": answers[i],
                                    "rejected": answers[j], "labeler": "ann"}) + "\n")
PY
expect_rc 0 "$RLHF" init r.db
expect_rc 0 "$RLHF" import --db r.db --format pairs ranked.jsonl
expect_rc 0 "$RLHF" train-rm --db r.db --init base.ckpt --dump rm --batch 3 --val-frac 0 --center 0.01
contains "$OUT" "3 groups"
/usr/bin/python3 "$ROOT/tests/ref/torch_ref.py" rm >rm.log 2>&1 || { cat rm.log; die "torch reference disagrees: reward model"; }
echo "rm: $(tail -n 1 rm.log)"
# the comparison must be able to fail: a corrupted gradient file is caught
expect_rc 0 "$RLHF" model-dump --out bad --len 8
/usr/bin/python3 - bad/grads.bin <<'PY'
import sys
b = bytearray(open(sys.argv[1], "rb").read()); b[4000:4004] = b"\x00\x00\x80\x3f"
open(sys.argv[1], "wb").write(b)
PY
if /usr/bin/python3 "$ROOT/tests/ref/torch_ref.py" bad >bad.log 2>&1; then die "a corrupted gradient passed"; fi
contains "$(cat bad.log)" "BAD"
expect_rc 2 "$RLHF" model-dump
expect_rc 2 "$RLHF" model-dump --out x --kv-heads 3
expect_rc 2 "$RLHF" model-dump --out x --head-dim 7
contains "$ERR" "even"
expect_rc 2 "$RLHF" model-dump --out x --rope-llama3 8,4,1,256
contains "$ERR" "low_freq_factor"
expect_rc 2 "$RLHF" model-dump --out x --eps -1
exit 0
