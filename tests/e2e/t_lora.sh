#!/bin/sh
# LoRA (--lora R) on the trainers: the adapter checkpoint (small, naming its
# base by path and sha256) loads merged everywhere; SFT with LoRA learns a
# known answer; kill -9 then --resume ends bit-identical; convert --merge
# gives the adapter model's logits; convert --to peft writes PEFT's names and
# shapes, which an independent PyTorch reading of PEFT's format applies to the
# HF base with the same logits rlhf computes; bad flags and a changed or
# missing base are refused by name.
. "$ROOT/tests/e2e/lib.sh"
CORPUS="$ROOT/samples/corpus.txt"
expect_rc 0 "$RLHF" tokenizer train --vocab 300 --out tok.bin "$CORPUS"
expect_rc 0 "$RLHF" init p.db
# a base that has learnt the corpus's words: LoRA leaves the (tied) unembedding
# frozen, so it can only say what the base can already put into words
expect_rc 0 "$RLHF" pretrain --corpus "$CORPUS" --tokenizer tok.bin --config tiny \
    --steps 300 --batch 8 --lr 5e-3 --out base.ckpt
/usr/bin/python3 - <<'PY'
import json
with open("target.jsonl", "w") as f:
    for i in range(24):
        f.write(json.dumps({"prompt": f"Question number {i}: what colour is it?",
                            "completion": " The opposite of up is down."}) + "\n")
PY

# usage errors
expect_rc 2 "$RLHF" sft --init base.ckpt --data target.jsonl --out x.ckpt --lora-alpha 8
contains "$ERR" "need --lora"
expect_rc 2 "$RLHF" sft --init base.ckpt --data target.jsonl --out x.ckpt --lora 4 --lora-targets q,x
contains "$ERR" "unknown projection 'x'"
expect_rc 2 "$RLHF" sft --init base.ckpt --data target.jsonl --out x.ckpt --lora 0
expect_rc 2 "$RLHF" sft --init base.ckpt --data target.jsonl --out x.ckpt --lora 4 --lora-dropout 1
expect_rc 0 "$RLHF" sft --help
contains "$OUT" "--lora-targets"

# SFT with LoRA learns the known answer; the base and its weights are untouched
cp base.ckpt base0.ckpt
ARGS="--init base.ckpt --data target.jsonl --val-frac 0 --epochs 12 --batch 4 --lr 1e-2 --lora 8 --lora-targets all --threads 1 --seed 3"
expect_rc 0 "$RLHF" sft $ARGS --out l.ckpt
cmp base.ckpt base0.ckpt || die "LoRA training changed the base"
sz=$(wc -c <l.ckpt); bz=$(wc -c <base.ckpt)
[ "$sz" -lt "$bz" ] || die "the adapter checkpoint ($sz bytes) is not small beside the base ($bz)"
Q="Human: Question number 3: what colour is it?
Assistant:"
expect_rc 0 "$RLHF" sample --model l.ckpt --temperature 0 --max-tokens 40 "$Q"
contains "$OUT" "The opposite of up is down."
expect_rc 0 "$RLHF" sample --model base.ckpt --temperature 0 --max-tokens 40 "$Q"
not_contains "$OUT" "The opposite of up is down."

# convert --merge: one whole model whose logits are the adapter model's
expect_rc 0 "$RLHF" convert --model l.ckpt --merge --out merged.ckpt
expect_rc 1 "$RLHF" convert --model base.ckpt --merge --out m2.ckpt
contains "$ERR" "not a LoRA adapter"
expect_rc 0 "$RLHF" model-dump --model l.ckpt --unmerged --out a.dump --len 12 --seed 4
expect_rc 0 "$RLHF" model-dump --model merged.ckpt --out m.dump --len 12 --seed 4
/usr/bin/python3 - a.dump m.dump <<'PY'
import sys
import numpy as np
a, m = (np.fromfile(f"{d}/outputs.bin", dtype="<f4") for d in sys.argv[1:])
lines = open(f"{sys.argv[1]}/meta.txt").read().split("\n")
nums = list(map(int, lines[1].split()))
n = nums[5] * nums[8] * nums[9]
err = np.abs(a[:n] - m[:n]).max()
print(f"merged vs adapter logits: max diff {err:.3e} of {np.abs(a[:n]).max():.3e}")
sys.exit(0 if err <= 1e-4 else 1)
PY
[ $? -eq 0 ] || die "the merged model's logits differ from the adapter model's"

# kill -9 mid-run, then --resume: the same bytes as a run never interrupted
ARGS="--init base.ckpt --data target.jsonl --epochs 60 --batch 4 --save-every 3 --eval-every 100 --threads 1 --seed 5 --lora 4 --lora-dropout 0.1"
expect_rc 0 "$RLHF" sft $ARGS --out ref.ckpt
kill9_after_checkpoint k.ckpt "$RLHF" sft $ARGS --out k.ckpt
grep -q "trained" k.out && echo "note: the run finished before the kill"
expect_rc 0 "$RLHF" sft $ARGS --out k.ckpt --resume
contains "$ERR" "resumed"
cmp ref.ckpt k.ckpt || die "the resumed LoRA run differs from the uninterrupted one"
expect_rc 0 "$RLHF" models verify ref.ckpt
# resuming with other adapter settings, or without --lora, is refused
expect_rc 1 "$RLHF" sft $ARGS --lora 8 --out k.ckpt --resume
contains "$ERR" "differs from --lora's"
expect_rc 1 "$RLHF" sft --init base.ckpt --data target.jsonl --epochs 60 --batch 4 --out k.ckpt --resume
contains "$ERR" "LoRA adapter"

# the base is named by path and sha256: changed or missing, it is refused by name
cp base.ckpt moved.ckpt
expect_rc 0 "$RLHF" sft --init moved.ckpt --data target.jsonl --steps 2 --lora 2 --out mv.ckpt
rm moved.ckpt
expect_rc 1 "$RLHF" sample --model mv.ckpt "hi"
contains "$ERR" "moved.ckpt"
expect_rc 0 "$RLHF" pretrain --corpus "$CORPUS" --tokenizer tok.bin --config tiny --steps 2 --out moved.ckpt
expect_rc 1 "$RLHF" sample --model mv.ckpt "hi"
contains "$ERR" "changed since the adapter was trained"

# DPO and train-rm with LoRA; the RM's head trains beside the adapters
/usr/bin/python3 - <<'PY'
import json
with open("prefs.jsonl", "w") as f:
    for i in range(16):
        f.write(json.dumps({"prompt": f"Question number {i}: what colour is it?",
                            "chosen": " The opposite of up is down.", "rejected": " The sky is blue."}) + "\n")
PY
# DPO: the reference is the base with the adapter off (at the start the policy
# equals it, loss log 2); it learns the preference, also on held-out prompts
expect_rc 0 "$RLHF" dpo --policy base.ckpt --data prefs.jsonl --val-frac 0.25 --steps 24 --batch 4 --lr 1e-2 --lora 8 --out d.ckpt
contains "$OUT" "held out: loss 0.0"
contains "$OUT" "accuracy 1.00; wrote"
expect_rc 0 "$RLHF" import --db p.db --format pairs prefs.jsonl
expect_rc 0 "$RLHF" train-rm --db p.db --init base.ckpt --val-frac 0 --epochs 4 --lr 1e-2 --lora 4 --out rm.ckpt
printf '{"prompt":"Question number 1: what colour is it?","completion":" The opposite of up is down."}\n{"prompt":"Question number 1: what colour is it?","completion":" The sky is blue."}\n' >two.jsonl
expect_rc 0 "$RLHF" score --rm rm.ckpt --in two.jsonl
/usr/bin/python3 -c '
import json, sys
s = [json.loads(l)["score"] for l in sys.stdin if l.strip()]
print("rm scores: chosen %.3f, rejected %.3f" % (s[0], s[1]))
sys.exit(0 if s[0] > s[1] else 1)' <out.txt || die "the LoRA reward model does not prefer the chosen answer"

# PPO (and RLOO, GRPO) with LoRA: the reference is the base with the adapter off and
# the LoRA RM, trained on the same base, shares it; the result loads merged
printf '{"prompt":"Question number %s: what colour is it?"}\n' 1 2 3 4 5 6 >prompts.jsonl
expect_rc 0 "$RLHF" prompts import --db p.db prompts.jsonl
PPO="--db p.db --policy base.ckpt --rm rm.ckpt --steps 2 --prompts 2 --samples 2 --max-new 8 --minibatch 4 --lora 4"
expect_rc 0 "$RLHF" ppo $PPO --out pl.ckpt
contains "$ERR" "the reference is the base with the adapter off (no copy)"
contains "$ERR" "the RM is an adapter on the same base (no copy)"
contains "$OUT" "trained 2 PPO steps"
expect_rc 0 "$RLHF" ppo $PPO --advantage rloo --out rl.ckpt
contains "$OUT" "trained 2 PPO steps"
expect_rc 0 "$RLHF" ppo $PPO --advantage grpo --out gr.ckpt
contains "$OUT" "trained 2 PPO steps"
# InstructGPT's value model from the RM: its adapter and head on the same base too
expect_rc 0 "$RLHF" ppo $PPO --value rm --out pv.ckpt
contains "$ERR" "the value model, from the RM, is an adapter on it too"
expect_rc 0 "$RLHF" ppo $PPO --value rm --steps 3 --out pv.ckpt --resume
contains "$OUT" "trained 3 PPO steps"
expect_rc 0 "$RLHF" ppo $PPO --steps 3 --out pl.ckpt --resume
contains "$ERR" "resumed"
expect_rc 0 "$RLHF" sample --model pl.ckpt --max-tokens 8 "$Q"
# an RM on another base is loaded on its own
expect_rc 0 "$RLHF" train-rm --db p.db --init moved.ckpt --val-frac 0 --epochs 1 --lora 2 --out rm2.ckpt
expect_rc 0 "$RLHF" ppo --db p.db --policy base.ckpt --rm rm2.ckpt --steps 1 --prompts 2 --samples 2 --max-new 8 --minibatch 4 --lora 4 --out pl2.ckpt
contains "$ERR" "the RM is its own model"

# PEFT export of an adapter on a Hugging Face base, read back by an
# independent PyTorch implementation of PEFT's format (names, shapes, q/k rows)
/usr/bin/python3 -c 'import torch, numpy' 2>/dev/null || skip_missing "no PyTorch under /usr/bin/python3"
REF="/usr/bin/python3 $ROOT/tests/ref/hf_ref.py"
$REF make --arch qwen2 --out qwen >make.log 2>&1 || { cat make.log; die "hf_ref.py make"; }
/usr/bin/python3 - <<'PY'
import json
with open("chat.jsonl", "w") as f:
    for i in range(8):
        f.write(json.dumps({"messages": [{"role": "user", "content": f"What is {i} plus {i}?"},
                                         {"role": "assistant", "content": f"{i} plus {i} is {2 * i}."}]}) + "\n")
PY
expect_rc 0 "$RLHF" sft --init qwen --data chat.jsonl --steps 3 --batch 2 --lr 5e-2 --lora 4 --lora-targets all --out q.ckpt
expect_rc 2 "$RLHF" convert --model q.ckpt --to peft --out qp --merge
expect_rc 1 "$RLHF" convert --model base.ckpt --to peft --out bp
contains "$ERR" "not a LoRA adapter"
expect_rc 0 "$RLHF" convert --model q.ckpt --to peft --out qp
[ -f qp/adapter_config.json ] && [ -f qp/adapter_model.safetensors ] || die "no PEFT files"
/usr/bin/python3 - qp/adapter_config.json "$PWD/qwen" <<'PY' || die "adapter_config.json"
import json, sys
c = json.load(open(sys.argv[1]))
want = {"peft_type": "LORA", "task_type": "CAUSAL_LM", "r": 4, "lora_alpha": 8, "lora_dropout": 0.05,
        "bias": "none", "base_model_name_or_path": sys.argv[2],
        "target_modules": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]}
bad = {k: c.get(k) for k, v in want.items() if (round(c.get(k), 6) if isinstance(v, float) else c.get(k)) != v}
print("adapter_config.json:", "ok" if not bad else f"BAD {bad}")
sys.exit(1 if bad else 0)
PY
expect_rc 0 "$RLHF" model-dump --model q.ckpt --out q.dump --batch 2 --len 10 --seed 11
/usr/bin/python3 "$ROOT/tests/e2e/dump_logits.py" q.dump ids.txt lora_logits.bin || die "dump_logits.py"
$REF logits qwen ids.txt ref.bin --peft qp --compare lora_logits.bin >peft.log 2>&1 || { cat peft.log; die "the PEFT adapter on the HF base gives other logits than rlhf's"; }
echo "peft: $(tail -n 1 peft.log)"
# the comparison can fail: the base alone is not the adapted model
if $REF logits qwen ids.txt ref.bin --compare lora_logits.bin >nopeft.log 2>&1; then die "the base alone matched the adapter model"; fi
# a reward model: SEQ_CLS, its head as score (modules_to_save); PEFT's score has no
# bias, so the reference's reward is rlhf's less the reward head's bias
$REF make --arch qwen2 --rm --out qrm >make.log 2>&1 || { cat make.log; die "hf_ref.py make --rm"; }
expect_rc 0 "$RLHF" train-rm --init qrm --data prefs.jsonl --val-frac 0 --epochs 1 --lora 4 --out qrm.ckpt
expect_rc 0 "$RLHF" convert --model qrm.ckpt --to peft --out qrmp
contains "$OUT" "SEQ_CLS"
expect_rc 0 "$RLHF" model-dump --model qrm.ckpt --out qrm.dump --batch 2 --len 10 --seed 3
/usr/bin/python3 "$ROOT/tests/e2e/dump_logits.py" qrm.dump ids.txt unused.bin || die "dump_logits.py"
$REF logits qrm ids.txt rm_ref.bin --peft qrmp >rmpeft.log 2>&1 || { cat rmpeft.log; die "the PEFT RM adapter"; }
/usr/bin/python3 - qrm.dump rm_ref.bin <<'PY' || die "the PEFT reward model's rewards differ from rlhf's"
import sys
import numpy as np
d, ref = sys.argv[1], np.fromfile(sys.argv[2], dtype="<f4").astype(np.float64)
nums = list(map(int, open(f"{d}/meta.txt").read().split("\n")[1].split()))
C, V, B, T = nums[0], nums[5], nums[8], nums[9]
o = np.fromfile(f"{d}/outputs.bin", dtype="<f4").astype(np.float64)
N = B * T
bias = np.fromfile(f"{d}/heads.bin", dtype="<f4")[C]
got = o[N * V + 2 * N:N * V + 3 * N].reshape(B, T)[:, -1] - bias
err = np.abs(got - ref).max()
print(f"peft rm: rewards {ref} (rlhf's less its bias {bias:.4f}), max diff {err:.2e}")
sys.exit(0 if err <= 1e-4 else 1)
PY
exit 0
