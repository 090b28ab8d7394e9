#!/usr/bin/python3
"""Independent PyTorch rebuild of the rlhf transformer for the reference test.

Reads a folder written by `rlhf model-dump`: the model in llama2.c's checkpoint
format (parsed here from run.c's layout, not from our code) or, when it uses
the Hugging Face families' features (head_dim, q/k/v biases, per-head q/k
RMSNorm before RoPE, eps, RoPE theta, Llama 3 RoPE scaling; the second line of
meta.txt), in our own format (model.ckpt: header, then the tensors in
model/model.h's order), the heads, the batch and the objective's coefficients; recomputes in float64 with autograd
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
import math
import os
import struct
import sys

import numpy as np
import torch

RTOL, ATOL = 2e-5, 1e-7
d = sys.argv[1]
lines = open(f"{d}/meta.txt").read().split("\n")
C, H, L, NH, NKV, V, S, shared, B, T = map(int, lines[0].split())
hs, qkv_bias, qk_norm, EPS, THETA, RF, RLO, RHI, RORIG = C // NH, 0, 0, 1e-5, 10000.0, 0.0, 0.0, 0.0, 0
TEMP = 1.0  # the log-probs' and entropies' temperature (logits / TEMP)
if len(lines) > 1 and lines[1].strip():
    e = lines[1].split()
    hs, qkv_bias, qk_norm, RORIG = int(e[0]), int(e[1]), int(e[2]), int(e[8])
    EPS, THETA, RF, RLO, RHI = (float(x) for x in e[3:8])
    if len(e) > 9:
        TEMP = float(e[9])
Q = NH * hs
KV = NKV * hs
N = B * T
pos = 0


def take(*shape):
    global pos
    n = int(np.prod(shape))
    t = torch.tensor(w[pos:pos + n].astype(np.float64).reshape(shape), requires_grad=True)
    pos += n
    return t


P = {}
if os.path.exists(f"{d}/model.ckpt"):
    # ours: "RLHFCKPT", u32 version, u32 header size, i32 config[8], ..., u64 n_params at 56
    raw = open(f"{d}/model.ckpt", "rb").read()
    assert raw[:8] == b"RLHFCKPT", raw[:8]
    hsize = struct.unpack("<I", raw[12:16])[0]
    cfg = struct.unpack("<8i", raw[16:48])
    assert cfg == (C, H, L, NH, NKV, V, S, shared), cfg
    n_params = struct.unpack("<Q", raw[56:64])[0]
    w = np.frombuffer(raw[hsize:hsize + 4 * n_params], dtype=np.float32)
    for name, shape in (("token_embedding", (V, C)), ("rms_att", (L, C)), ("wq", (L, Q, C)),
                        ("wk", (L, KV, C)), ("wv", (L, KV, C)), ("wo", (L, C, Q)), ("rms_ffn", (L, C)),
                        ("w1", (L, H, C)), ("w2", (L, C, H)), ("w3", (L, H, C)), ("rms_final", (C,)),
                        ("wcls", None if shared else (V, C)), ("bq", (L, Q) if qkv_bias else None),
                        ("bk", (L, KV) if qkv_bias else None), ("bv", (L, KV) if qkv_bias else None),
                        ("q_norm", (L, hs) if qk_norm else None), ("k_norm", (L, hs) if qk_norm else None)):
        if shape:
            P[name] = take(*shape)
    pos += 2 * (C + 1)  # the heads, read from heads.bin below as for llama2.c dumps
    assert pos == len(w), (pos, len(w))
else:
    raw = open(f"{d}/model.bin", "rb").read()
    hdr = struct.unpack("7i", raw[:28])
    assert hdr[0] == C and hdr[2] == L and abs(hdr[5]) == V and hdr[6] == S, hdr
    assert (hdr[5] > 0) == bool(shared)
    w = np.frombuffer(raw[28:], dtype=np.float32)
    # run.c memory_map_weights order
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

# --lora: an adapter on the base (PEFT's LoRA: y = W x + alpha/R * B A x, dropout
# off), A (L, R, in) and B (L, out, R) per target in q, k, v, o, gate, up, down
# order, then the heads' slots; only the adapters and the heads get gradients.
LORA = {}
LORA_ORDER = []
if os.path.exists(f"{d}/lora.txt"):
    R, alpha, bits = open(f"{d}/lora.txt").read().split()
    R, alpha, bits = int(R), float(alpha), int(bits)
    SCALE = alpha / R
    lw = np.fromfile(f"{d}/lora.bin", dtype=np.float32)
    dims = {"q": (C, Q), "k": (C, KV), "v": (C, KV), "o": (Q, C), "gate": (C, H), "up": (C, H),
            "down": (H, C)}
    o = 0
    for i, t in enumerate(["q", "k", "v", "o", "gate", "up", "down"]):
        if not bits >> i & 1:
            continue
        din, dout = dims[t]
        for part, shape in (("A", (L, R, din)), ("B", (L, dout, R))):
            n = int(np.prod(shape))
            P[f"lora_{part}.{t}"] = torch.tensor(lw[o:o + n].astype(np.float64).reshape(shape),
                                                 requires_grad=True)
            LORA_ORDER.append(f"lora_{part}.{t}")
            o += n
        LORA[t] = (P[f"lora_A.{t}"], P[f"lora_B.{t}"])
    assert o + 2 * (C + 1) == len(lw), (o, len(lw))
    assert np.array_equal(lw[o:], hb.astype(np.float32)), "the heads live in the adapter's slots"


def proj(t, l, x, w):
    """x W^T, plus the adapter's alpha/R * (x A^T) B^T when t is targeted."""
    y = x @ w.T
    if t in LORA:
        a, b = LORA[t]
        y = y + SCALE * (x @ a[l].T) @ b[l].T
    return y


inp = np.fromfile(f"{d}/inputs.bin", dtype=np.int32)
tok = torch.tensor(inp[:N].astype(np.int64)).view(B, T)
tgt = torch.tensor(inp[N:2 * N].astype(np.int64))
f = np.fromfile(f"{d}/inputs.bin", dtype=np.float32)
mask, ca, cb, cc, cd = (torch.tensor(f[k * N:(k + 1) * N].astype(np.float64)) for k in range(2, 7))


def rmsnorm(x, g):
    return g * x * torch.rsqrt((x * x).mean(-1, keepdim=True) + EPS)


# RoPE as run.c: pairs (2i, 2i+1) in each head, freq theta^(-2i/hs)
i2 = torch.arange(0, hs, 2, dtype=torch.float64)
freq = 1.0 / (THETA ** (i2 / hs))
if RF > 0:  # transformers' _compute_llama3_parameters, in float64
    wavelen = 2 * math.pi / freq
    scaled = torch.where(wavelen > RORIG / RLO, freq / RF, freq)
    smooth = (RORIG / wavelen - RLO) / (RHI - RLO)
    smoothed = (1 - smooth) * scaled / RF + smooth * scaled
    medium = ~(wavelen < RORIG / RHI) * ~(wavelen > RORIG / RLO)
    freq = torch.where(medium, smoothed, scaled)
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
    q, k, v = proj("q", l, h, P["wq"][l]), proj("k", l, h, P["wk"][l]), proj("v", l, h, P["wv"][l])
    if qkv_bias:
        q, k, v = q + P["bq"][l], k + P["bk"][l], v + P["bv"][l]
    q, k, v = q.view(B, T, NH, hs), k.view(B, T, NKV, hs), v.view(B, T, NKV, hs)
    if qk_norm:  # each head's hs values, before RoPE (Qwen3)
        q, k = rmsnorm(q, P["q_norm"][l]), rmsnorm(k, P["k_norm"][l])
    q, k, v = rope(q).transpose(1, 2), rope(k).transpose(1, 2), v.transpose(1, 2)
    k = k.repeat_interleave(NH // NKV, dim=1)
    v = v.repeat_interleave(NH // NKV, dim=1)
    a = (q @ k.transpose(-1, -2)) / hs ** 0.5
    a = a.masked_fill(~causal, float("-inf")).softmax(-1)
    y = (a @ v).transpose(1, 2).reshape(B, T, Q)
    x = x + proj("o", l, y, P["wo"][l])
    h = rmsnorm(x, P["rms_ffn"][l])
    g = torch.nn.functional.silu(proj("gate", l, h, P["w1"][l])) * proj("up", l, h, P["w3"][l])
    x = x + proj("down", l, g, P["w2"][l])
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
order += ["bq", "bk", "bv"] if qkv_bias else []
order += ["q_norm", "k_norm"] if qk_norm else []
if LORA:  # the base is frozen: grads.bin holds the adapter's array
    order = LORA_ORDER
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
logp_all = (logits / TEMP).log_softmax(-1)
logp = logp_all.gather(1, tgt[:, None])[:, 0]
ent = -(logp_all.exp() * logp_all).sum(-1)
ce = -(logits.log_softmax(-1).gather(1, tgt[:, None])[:, 0] * mask).sum() / mask.sum()
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
