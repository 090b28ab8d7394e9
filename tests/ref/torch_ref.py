#!/usr/bin/python3
"""Independent PyTorch rebuild of the rlhf transformer for the reference test.

Reads a folder written by `rlhf model-dump`: the model in llama2.c's checkpoint
format (parsed here from run.c's layout, not from our code), the heads, the
batch and the objective's coefficients; recomputes in float64 with autograd
logits, masked cross-entropy, log-probs, entropies, reward/value heads and the
gradient of every tensor; compares with what the C engine wrote.

Tolerances (C runs in float32, the reference in float64): every output and
gradient tensor must satisfy max|c - ref| <= ATOL + RTOL * max|ref|, with
RTOL = 2e-5 and ATOL = 1e-7. Exit 0 on agreement, 1 with the worst tensors.

A folder from `rlhf train-rm --dump` (it has rm.txt) holds a reward-model
step instead: K answers per group as rows of one padded batch, the reward at
each row's last token, the K-wise loss −mean log σ(r_w − r_l) over each
group's non-tie pairs (+ center·mean (r_w + r_l)²) averaged over groups; the
rewards, the loss and every gradient are compared the same way."""
import os
import struct
import sys

import numpy as np
import torch

RTOL, ATOL = 2e-5, 1e-7
d = sys.argv[1]
meta = open(f"{d}/meta.txt").read().split()
C, H, L, NH, NKV, V, S, shared, B, T = map(int, meta)
hs = C // NH
KV = NKV * hs
N = B * T

raw = open(f"{d}/model.bin", "rb").read()
hdr = struct.unpack("7i", raw[:28])
assert hdr[0] == C and hdr[2] == L and abs(hdr[5]) == V and hdr[6] == S, hdr
assert (hdr[5] > 0) == bool(shared)
w = np.frombuffer(raw[28:], dtype=np.float32)
pos = 0


def take(*shape):
    global pos
    n = int(np.prod(shape))
    t = torch.tensor(w[pos:pos + n].astype(np.float64).reshape(shape), requires_grad=True)
    pos += n
    return t


# run.c memory_map_weights order
P = {}
P["token_embedding"] = take(V, C)
P["rms_att"] = take(L, C)
P["wq"] = take(L, C, C)
P["wk"] = take(L, KV, C)
P["wv"] = take(L, KV, C)
P["wo"] = take(L, C, C)
P["rms_ffn"] = take(L, C)
P["w1"] = take(L, H, C)
P["w2"] = take(L, C, H)
P["w3"] = take(L, H, C)
P["rms_final"] = take(C)
pos += S * hs // 2 * 2  # freq_cis_real, freq_cis_imag placeholders
if not shared:
    P["wcls"] = take(V, C)
assert pos == len(w), (pos, len(w))
hb = np.fromfile(f"{d}/heads.bin", dtype=np.float32).astype(np.float64)
P["reward_head"] = torch.tensor(hb[:C + 1], requires_grad=True)
P["value_head"] = torch.tensor(hb[C + 1:], requires_grad=True)

inp = np.fromfile(f"{d}/inputs.bin", dtype=np.int32)
tok = torch.tensor(inp[:N].astype(np.int64)).view(B, T)
tgt = torch.tensor(inp[N:2 * N].astype(np.int64))
f = np.fromfile(f"{d}/inputs.bin", dtype=np.float32)
mask, ca, cb, cc, cd = (torch.tensor(f[k * N:(k + 1) * N].astype(np.float64)) for k in range(2, 7))


def rmsnorm(x, g):
    return g * x * torch.rsqrt((x * x).mean(-1, keepdim=True) + 1e-5)


# RoPE as run.c: pairs (2i, 2i+1) in each head, freq 10000^(-2i/hs)
i2 = torch.arange(0, hs, 2, dtype=torch.float64)
freq = 1.0 / (10000.0 ** (i2 / hs))
ang = torch.arange(T, dtype=torch.float64)[:, None] * freq[None, :]
cos, sin = torch.cos(ang), torch.sin(ang)


def rope(x):  # x (B, T, h, hs)
    x0, x1 = x[..., 0::2], x[..., 1::2]
    c, s = cos[None, :, None, :], sin[None, :, None, :]
    return torch.stack([x0 * c - x1 * s, x0 * s + x1 * c], dim=-1).flatten(-2)


x = P["token_embedding"][tok]
causal = torch.tril(torch.ones(T, T, dtype=torch.bool))
for l in range(L):
    h = rmsnorm(x, P["rms_att"][l])
    q = rope((h @ P["wq"][l].T).view(B, T, NH, hs)).transpose(1, 2)
    k = rope((h @ P["wk"][l].T).view(B, T, NKV, hs)).transpose(1, 2)
    v = (h @ P["wv"][l].T).view(B, T, NKV, hs).transpose(1, 2)
    k = k.repeat_interleave(NH // NKV, dim=1)
    v = v.repeat_interleave(NH // NKV, dim=1)
    a = (q @ k.transpose(-1, -2)) / hs ** 0.5
    a = a.masked_fill(~causal, float("-inf")).softmax(-1)
    y = (a @ v).transpose(1, 2).reshape(B, T, C)
    x = x + y @ P["wo"][l].T
    h = rmsnorm(x, P["rms_ffn"][l])
    x = x + (torch.nn.functional.silu(h @ P["w1"][l].T) * (h @ P["w3"][l].T)) @ P["w2"][l].T
hf = rmsnorm(x, P["rms_final"]).view(N, C)


def compare(ref, got):
    bad = 0
    for name, r in ref.items():
        r = r.detach().numpy().ravel()
        c = got[name]
        err = np.abs(c - r).max()
        tol = ATOL + RTOL * np.abs(r).max()
        ok = err <= tol
        bad += not ok
        print(f"{'ok ' if ok else 'BAD'} {name:22s} max_err={err:.3e} tol={tol:.3e} max_ref={np.abs(r).max():.3e}")
    return bad


def grads(names, got, ref):
    """Our gradients.bin laid out in names' order beside autograd's."""
    g = np.fromfile(f"{d}/grads.bin", dtype=np.float32).astype(np.float64)
    o = 0
    for name in names:
        n = P[name].numel()
        got["grad " + name] = g[o:o + n]
        ref["grad " + name] = P[name].grad
        o += n
    assert o == len(g), (o, len(g))


order = ["token_embedding", "rms_att", "wq", "wk", "wv", "wo", "rms_ffn", "w1", "w2", "w3", "rms_final"]
order += [] if shared else ["wcls"]
if os.path.exists(f"{d}/rm.txt"):
    lines = open(f"{d}/rm.txt").read().split("\n")
    center = float(lines[0].split()[1])
    groups = [list(map(int, l.split())) for l in lines[1:] if l and not l.startswith("lens")]
    lens = [int(v) for v in next(l for l in lines if l.startswith("lens")).split()[1:]]
    reward = (hf @ P["reward_head"][:C] + P["reward_head"][C]).view(B, T)
    r = reward[torch.arange(B), torch.tensor(lens) - 1]
    J, row = 0, 0
    for ranks in groups:
        terms = []
        for i in range(len(ranks)):
            for j in range(len(ranks)):
                if ranks[i] < ranks[j]:  # i ranked above j
                    rw, rl = r[row + i], r[row + j]
                    terms.append(-torch.nn.functional.logsigmoid(rw - rl) + center * (rw + rl) ** 2)
        J = J + torch.stack(terms).mean()
        row += len(ranks)
    assert row == B, (row, B)
    J = J / len(groups)
    J.backward()
    out = np.fromfile(f"{d}/rm_out.bin", dtype=np.float32).astype(np.float64)
    got = {"reward": out[:B], "loss": out[B:B + 1]}
    ref = {"reward": r, "loss": J.reshape(1)}
    grads(order + ["reward_head"], got, ref)
    bad = compare(ref, got)
    print(f"rm loss={J.item():.6f} (C {out[B]:.6f}) over {len(groups)} groups, {B} rows")
    sys.exit(1 if bad else 0)

logits = hf @ (P["token_embedding"] if shared else P["wcls"]).T
logp_all = logits.log_softmax(-1)
logp = logp_all.gather(1, tgt[:, None])[:, 0]
ent = -(logp_all.exp() * logp_all).sum(-1)
ce = -(logp * mask).sum() / mask.sum()
reward = hf @ P["reward_head"][:C] + P["reward_head"][C]
value = hf @ P["value_head"][:C] + P["value_head"][C]
J = ce + (ca * reward).sum() + (cb * value).sum() + (cc * logp).sum() + (cd * ent).sum()
J.backward()

out = np.fromfile(f"{d}/outputs.bin", dtype=np.float32).astype(np.float64)
o = 0
got = {}
for name, n in (("logits", N * V), ("logp", N), ("entropy", N), ("reward", N), ("value", N), ("scalars", 2)):
    got[name] = out[o:o + n]
    o += n
ref = {"logits": logits, "logp": logp, "entropy": ent, "reward": reward, "value": value,
       "scalars": torch.stack([ce, J])}
grads(order + ["reward_head", "value_head"], got, ref)

bad = compare(ref, got)
print(f"loss={ce.item():.6f} (C {got['scalars'][0]:.6f})")
sys.exit(1 if bad else 0)
