#!/usr/bin/python3
"""Independent PyTorch check of `rlhf eval`'s KL: reads the project's stored
draws of one model (the first N per prompt, each draw its candidate's sampled
token ids), encodes each templated prompt with `rlhf tokenizer encode` (the
tokenizer is not what is checked), runs the policy and the reference (llama2.c
checkpoints, parsed from run.c's layout) in float64, and recomputes

    KL = mean over prompts of mean over draws of
         sum over answer tokens of log softmax(logits/T)[y] (policy - reference)

then compares it with the figure eval printed.

usage: eval_kl_ref.py DB MODEL POLICY.bin REF.bin TOK RLHF T N EXPECTED"""
import json
import sqlite3
import struct
import subprocess
import sys

import numpy as np
import torch

db, model, policy, ref, tok, rlhf = sys.argv[1:7]
temp, n_draws, expected = float(sys.argv[7]), int(sys.argv[8]), float(sys.argv[9])
TEMPLATE = "Human: {prompt}\nAssistant:"


def load(path):
    """llama2.c's checkpoint: 7 int32 (dim, hidden, layers, heads, kv heads,
    vocab (negative: own classifier), seq), then the f32 tensors in run.c's order."""
    raw = open(path, "rb").read()
    dim, hidden, layers, heads, kv, vocab, seq = struct.unpack("7i", raw[:28])
    w = np.frombuffer(raw[28:], dtype=np.float32).astype(np.float64)
    shared, vocab, hs = vocab > 0, abs(vocab), dim // heads
    at = [0]

    def take(*shape):
        n = int(np.prod(shape))
        t = torch.tensor(w[at[0]:at[0] + n].reshape(shape))
        at[0] += n
        return t

    m = {"emb": take(vocab, dim), "rms_att": take(layers, dim), "wq": take(layers, dim, dim),
         "wk": take(layers, kv * hs, dim), "wv": take(layers, kv * hs, dim), "wo": take(layers, dim, dim),
         "rms_ffn": take(layers, dim), "w1": take(layers, hidden, dim), "w2": take(layers, dim, hidden),
         "w3": take(layers, hidden, dim), "rms_final": take(dim)}
    at[0] += seq * hs  # run.c's unused freq_cis_real and freq_cis_imag
    m["cls"] = m["emb"] if shared else take(vocab, dim)
    assert at[0] == len(w), (at[0], len(w))
    m.update(layers=layers, heads=heads, kv=kv, hs=hs, seq=seq)
    return m


def logits(m, ids):
    T = len(ids)

    def norm(x, g):
        return g * x / torch.sqrt((x * x).mean(-1, keepdim=True) + 1e-5)

    f = 1.0 / 10000.0 ** (torch.arange(0, m["hs"], 2, dtype=torch.float64) / m["hs"])
    ang = torch.arange(T, dtype=torch.float64)[:, None] * f[None, :]
    cos, sin = torch.cos(ang)[:, None, :], torch.sin(ang)[:, None, :]

    def rot(x):  # pairs (2i, 2i+1) of each head, as run.c
        a, b = x[..., 0::2], x[..., 1::2]
        return torch.stack([a * cos - b * sin, a * sin + b * cos], -1).flatten(-2)

    x = m["emb"][torch.tensor(ids)]
    mask = torch.ones(T, T, dtype=torch.bool).tril()
    for l in range(m["layers"]):
        h = norm(x, m["rms_att"][l])
        q = rot((h @ m["wq"][l].T).view(T, m["heads"], m["hs"])).transpose(0, 1)
        k = rot((h @ m["wk"][l].T).view(T, m["kv"], m["hs"])).transpose(0, 1)
        v = (h @ m["wv"][l].T).view(T, m["kv"], m["hs"]).transpose(0, 1)
        rep = m["heads"] // m["kv"]
        k, v = k.repeat_interleave(rep, 0), v.repeat_interleave(rep, 0)
        a = (q @ k.transpose(1, 2) / m["hs"] ** 0.5).masked_fill(~mask, float("-inf")).softmax(-1)
        x = x + (a @ v).transpose(0, 1).reshape(T, -1) @ m["wo"][l].T
        h = norm(x, m["rms_ffn"][l])
        x = x + (torch.nn.functional.silu(h @ m["w1"][l].T) * (h @ m["w3"][l].T)) @ m["w2"][l].T
    return norm(x, m["rms_final"]) @ m["cls"].T


def answer_logp(m, prompt_ids, answer_ids):
    ids = prompt_ids + answer_ids
    assert len(ids) <= m["seq"], f"{len(ids)} tokens do not fit the context of {m['seq']}: eval would cut them"
    lp = torch.log_softmax(logits(m, ids)[:-1] / temp, -1)
    pos = torch.arange(len(prompt_ids) - 1, len(ids) - 1)
    return lp[pos, torch.tensor(answer_ids)].sum().item()


rows = sqlite3.connect(db).execute(
    """SELECT d.prompt_id, p.text, c.tokens FROM draws d JOIN candidates c ON c.id = d.candidate_id
       JOIN prompts p ON p.id = d.prompt_id JOIN models m ON m.id = d.model_id
       WHERE m.name = ? AND d.draw < ? ORDER BY d.prompt_id, d.draw""", (model, n_draws)).fetchall()
assert rows, f"no draws of {model}"
texts = sorted({(pid, text) for pid, text, _ in rows})
enc = subprocess.run([rlhf, "tokenizer", "encode", "--tokenizer", tok, "--bos", "--special", "--jsonl", "-"],
                     input="".join(json.dumps(TEMPLATE.replace("{prompt}", t)) + "\n" for _, t in texts),
                     capture_output=True, text=True, check=True).stdout.split("\n")
prompt_ids = {pid: [int(x) for x in enc[i].split()] for i, (pid, _) in enumerate(texts)}
pm, rm = load(policy), load(ref)
per = {}
for pid, _, tokens in rows:
    ids = [int(x) for x in tokens.split()]
    d = answer_logp(pm, prompt_ids[pid], ids) - answer_logp(rm, prompt_ids[pid], ids)
    per.setdefault(pid, []).append(d)
kl = float(np.mean([np.mean(v) for v in per.values()]))
print(f"KL of {model}: torch {kl:.6f}, rlhf eval {expected:.6f}, over {len(rows)} draws of {len(per)} prompts")
sys.exit(0 if abs(kl - expected) <= 1e-4 + 1e-4 * abs(kl) else 1)
