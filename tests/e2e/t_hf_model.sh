#!/bin/sh
# Hugging Face model directories (issue 19) against the independent PyTorch
# reference tests/ref/hf_ref.py, which writes random-weight directories the way
# transformers' save_pretrained does (its own safetensors writer, bf16/f16
# encoders and byte-level BPE tokenizer.json) and re-implements the HF modules'
# maths in float64. For each family rlhf loads the directory, runs one batch
# forward and backward (model-dump --model DIR) and greedy-decodes 8 tokens;
# the reference compares logits, log-probs, entropies, reward/value heads, the
# loss, the gradient of every HF tensor (HF names and layouts) and the greedy
# ids (tolerances and the dump format: the docstring of hf_ref.py).
. "$ROOT/tests/e2e/lib.sh"
/usr/bin/python3 -c 'import torch, numpy' 2>/dev/null || skip_missing "no PyTorch under /usr/bin/python3"
REF="/usr/bin/python3 $ROOT/tests/ref/hf_ref.py"
export PYTHONDONTWRITEBYTECODE=1  # the snippets below import hf_ref from the source tree

# the reference must be sound on its own before it judges rlhf
$REF selftest >selftest.log 2>&1 || { cat selftest.log; die "hf_ref.py selftest failed"; }

# mk NAME ARGS...: a random directory NAME from hf_ref.py make ARGS
mk() {
    _n=$1; shift
    $REF make "$@" --out "$_n" >make.log 2>&1 || { cat make.log; die "hf_ref.py make $*"; }
}
# check NAME DUMP-ARGS...: rlhf model-dump on directory NAME, then the reference
check() {
    _n=$1; shift
    expect_rc 0 "$RLHF" model-dump --model "$_n" --out "$_n.dump" "$@"
    $REF check "$_n" "$_n.dump" >"$_n.log" 2>&1 || { cat "$_n.log"; die "HF reference disagrees: $_n ($*)"; }
    echo "$_n: $(tail -n 1 "$_n.log")"
}
D="--batch 2 --len 12 --mask --greedy 8"

# --- every family, layout and dtype ----------------------------------------
# llama: tied (SmolLM2/Llama 3.2 style) and untied (Llama 2/TinyLlama), f32
mk llama_tied --arch llama --size tiny --tied --seed 1
check llama_tied $D
mk llama_untied --arch llama --size tiny --untied --dtype bf16 --seed 2
check llama_untied $D
# llama3 rope_scaling (theta 500000, factor 32, original context 64: for head
# size 16 one frequency is kept, one smoothed, six divided), f16, eos a list
mk llama3 --arch llama --size tiny --rope-llama3 --dtype f16 --seed 3
check llama3 $D --seed 5
# mistral: no head_dim key, theta 1e6, sliding_window null; bf16
mk mistral --arch mistral --size tiny --dtype bf16 --seed 4
check mistral $D
# qwen2: q/k/v biases, tied, vocab_size > tokenizer size; in 3 shards + index
mk qwen2 --arch qwen2 --size tiny --shards 3 --seed 5
check qwen2 $D
# qwen3: q/k RMSNorm per head before RoPE, head_dim 32 so NH*hd = 128 != 64; bf16
mk qwen3 --arch qwen3 --size tiny --dtype bf16 --seed 6
check qwen3 $D
# small: 9 heads / 3 kv heads of size 16, untied (SmolLM2-like); qwen3 with
# head_dim 48 (NH*hd = 192 != 128) in f16 over 2 shards
mk llama_small --arch llama --size small --untied --seed 7
check llama_small --batch 2 --len 20 --mask --greedy 8
mk qwen3_small --arch qwen3 --size small --dtype f16 --shards 2 --seed 8
check qwen3_small --batch 2 --len 20 --greedy 8

# --- reward models: *ForSequenceClassification ----------------------------
# the reward head's weights are score.weight (no lm_head); the bias is
# config.json's rlhf_reward_bias, or 0 without it; the logits use the tied
# embedding; grads.safetensors holds score.weight's gradient too
mk rm_qwen2 --arch qwen2 --size tiny --rm --reward-bias 0.25 --seed 9
check rm_qwen2 --batch 2 --len 12 --mask
mk rm_llama --arch llama --size tiny --untied --rm --dtype bf16 --seed 10
check rm_llama --batch 3 --len 10

# --- the comparison must be able to fail ----------------------------------
cp -r llama_tied.dump corrupt.dump
/usr/bin/python3 - corrupt.dump/grads.safetensors <<'PY'
import sys
sys.path.insert(0, __import__("os").environ["ROOT"] + "/tests/ref")
import hf_ref
t, _ = hf_ref.st_read(sys.argv[1])
out = []
for k, (dt, s, a) in t.items():
    a = a.copy()
    if k == "model.layers.1.mlp.up_proj.weight":
        a.flat[7] += 0.01
    out.append((k, "F32", s, a.astype("<f4").tobytes()))
hf_ref.st_write(sys.argv[1], out)
PY
if $REF check llama_tied corrupt.dump >corrupt.log 2>&1; then die "a corrupted gradient passed"; fi
contains "$(cat corrupt.log)" "BAD grad model.layers.1.mlp.up_proj.weight"

# --- the directory end to end: tokenizer, sample, sft ---------------------
# rlhf's tokenizer.json encoding must equal the reference BPE (GPT-2 split,
# merges by rank, specials as single ids)
for text in "Hello world! What's the capital of France?" "<|im_start|>user
Two plus two?<|im_end|>" "  spaces, digits 2024 and é中文"; do
    for m in llama_tied qwen3; do
        want=$($REF encode "$m" "$text")
        expect_rc 0 "$RLHF" tokenizer encode --special --tokenizer "$m" "$text"
        [ "$(echo $OUT)" = "$want" ] || die "$m: tokenizer encode '$text': rlhf '$OUT', reference '$want'"
    done
done
expect_rc 0 "$RLHF" sample --model qwen3 --temperature 0 --max-tokens 8 "What is two plus two?"
/usr/bin/python3 - <<'PY'
import json
with open("chat.jsonl", "w") as f:
    for i in range(8):
        f.write(json.dumps({"messages": [{"role": "user", "content": f"What is {i} plus {i}?"},
                                         {"role": "assistant", "content": f"{i} plus {i} is {2 * i}."}]}) + "\n")
PY
# one SFT step from a HF directory, written back as a HF directory: the copy
# rlhf wrote must pass the reference check (so its config.json, names,
# layouts and the inverse q/k permutation are right) and give, through the
# reference, the logits rlhf computes from its own checkpoint
expect_rc 0 "$RLHF" sft --init qwen3 --data chat.jsonl --steps 1 --batch 2 --out s.ckpt
expect_rc 0 "$RLHF" convert --model s.ckpt --to hf --dtype f32 --out s_hf
[ -f s_hf/config.json ] && [ -f s_hf/tokenizer.json ] || die "convert --to hf wrote no config.json/tokenizer.json"
check s_hf --batch 2 --len 12 --mask --greedy 8
expect_rc 0 "$RLHF" model-dump --model s.ckpt --out native.dump --batch 2 --len 12 --seed 11
/usr/bin/python3 "$ROOT/tests/e2e/dump_logits.py" native.dump ids.txt native_logits.bin || die "dump_logits.py"
$REF logits s_hf ids.txt ref_logits.bin --compare native_logits.bin >rt.log 2>&1 || { cat rt.log; die "HF copy's logits differ from rlhf's"; }
echo "round trip: $(tail -n 1 rt.log)"

# --- bad directories: exit 1, the file and the tensor/key named -----------
# edit DIR PY: runs python on DIR's tensors (dict t of name -> float32 array)
# and writes them back as model.safetensors
edit() {
    _d=$1; shift
    /usr/bin/python3 - "$_d" "$1" <<'PY'
import os, sys
sys.path.insert(0, os.environ["ROOT"] + "/tests/ref")
import hf_ref
d = sys.argv[1]
t = {k: v[2] for k, v in hf_ref.load_dir_tensors(d).items()}
exec(sys.argv[2])
hf_ref.st_write(f"{d}/model.safetensors",
                [(k, "F32", t[k].shape, t[k].astype("<f4").tobytes()) for k in sorted(t)])
PY
}
# a truncated file: the last tensor's data runs past the end
mk trunc --arch llama --size tiny --seed 12
/usr/bin/python3 -c 'import sys; b = open(sys.argv[1], "rb").read(); open(sys.argv[1], "wb").write(b[:-100])' trunc/model.safetensors
expect_rc 1 "$RLHF" model-dump --model trunc --out x.dump
contains "$ERR" "model.safetensors"
contains "$ERR" "model.norm.weight"
# a header length beyond the file
mk hdr --arch llama --size tiny --seed 12
/usr/bin/python3 -c 'import sys; b = open(sys.argv[1], "rb").read(); open(sys.argv[1], "wb").write(b[:40])' hdr/model.safetensors
expect_rc 1 "$RLHF" model-dump --model hdr --out x.dump
contains "$ERR" "model.safetensors"
# a tensor of the wrong shape
mk shape --arch llama --size tiny --seed 12
edit shape 't["model.layers.1.mlp.up_proj.weight"] = t["model.layers.1.mlp.up_proj.weight"][:159]'
expect_rc 1 "$RLHF" model-dump --model shape --out x.dump
contains "$ERR" "model.layers.1.mlp.up_proj.weight"
contains "$ERR" "159"
# a missing tensor, and a Qwen2 directory without a q bias
mk missing --arch llama --size tiny --seed 12
edit missing 'del t["model.layers.0.self_attn.k_proj.weight"]'
expect_rc 1 "$RLHF" model-dump --model missing --out x.dump
contains "$ERR" "model.layers.0.self_attn.k_proj.weight"
mk nobias --arch qwen2 --size tiny --seed 12
edit nobias 'del t["model.layers.1.self_attn.q_proj.bias"]'
expect_rc 1 "$RLHF" model-dump --model nobias --out x.dump
contains "$ERR" "model.layers.1.self_attn.q_proj.bias"
# a shard named by the index but absent
mk noshard --arch qwen2 --size tiny --shards 3 --seed 12
rm noshard/model-00002-of-00003.safetensors
expect_rc 1 "$RLHF" model-dump --model noshard --out x.dump
contains "$ERR" "model-00002-of-00003.safetensors"
# config.json: an architecture we do not implement, an unsupported rope_scaling
mk gpt2 --arch llama --size tiny --seed 12
/usr/bin/python3 - gpt2/config.json <<'PY'
import json, sys
c = json.load(open(sys.argv[1])); c["architectures"] = ["GPT2LMHeadModel"]; c["model_type"] = "gpt2"
json.dump(c, open(sys.argv[1], "w"))
PY
expect_rc 1 "$RLHF" model-dump --model gpt2 --out x.dump
contains "$ERR" "architectures"
contains "$ERR" "GPT2LMHeadModel"
mk yarn --arch llama --size tiny --rope-llama3 --seed 12
/usr/bin/python3 - yarn/config.json <<'PY'
import json, sys
c = json.load(open(sys.argv[1])); c["rope_scaling"] = {"rope_type": "yarn", "factor": 4.0}
json.dump(c, open(sys.argv[1], "w"))
PY
expect_rc 1 "$RLHF" model-dump --model yarn --out x.dump
contains "$ERR" "rope_scaling"
contains "$ERR" "yarn"
exit 0
