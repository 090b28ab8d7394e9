#!/usr/bin/python3
"""Independent PyTorch reference for Hugging Face model directories (issue 19).

Nothing here imports rlhf code, `transformers` or `safetensors`: the file
formats (safetensors, config.json, tokenizer.json) and the modules' maths are
re-implemented from their published definitions so that this script and the C
loader can only agree by both being right.

Subcommands
-----------
  make --arch llama|mistral|qwen2|qwen3 [--size tiny|small] [--dtype f32|bf16|f16]
       [--tied|--untied] [--rope-llama3] [--shards N] [--seed S]
       [--rm [--reward-bias X]] --out DIR
      Writes a random-weight model directory as transformers' save_pretrained
      would: config.json, generation_config.json, model.safetensors (or
      model-0000i-of-0000N.safetensors + model.safetensors.index.json),
      tokenizer.json (byte-level BPE) and tokenizer_config.json (ChatML
      template). --rm writes a *ForSequenceClassification reward model
      (id2label with one label, i.e. num_labels 1 as transformers saves it;
      qwen2 also writes "num_labels": 1; score.weight (1, hidden), no
      lm_head, pad_token_id = <|endoftext|>);
      --reward-bias X also puts "rlhf_reward_bias": X in config.json.
      `make-rm ...` is `make --rm ...`.
  check DIR DUMP
      Compares a folder written by `rlhf model-dump --model DIR --out DUMP`
      with this reference (float64). One line per tensor, exit 1 on any BAD.
  fake-dump DIR DUMP [--batch B] [--len T] [--mask] [--seed S] [--greedy N]
      Writes DUMP the way rlhf model-dump is specified to, computed here in
      float32 (used by selftest to prove that `check` passes a float32 engine
      and fails a corrupted one; also a living specification of the format).
  logits DIR IDS_FILE OUT [--compare RLHF_OUT] [--atol A] [--peft ADAPTER_DIR]
      IDS_FILE: one row of space-separated token ids per line (rows may differ
      in length). OUT: little-endian float32, rows in order; a causal LM gives
      each row's logits (T_row x V, row-major); a reward model gives one float
      per row, the reward at the row's last token that is not pad_token_id
      (transformers >= 4.48: the rightmost non-pad token). --compare reads a
      file of the same layout (rlhf's) and exits 1 if any value differs by
      more than --atol (default 1e-4). --peft: first apply a PEFT LoRA adapter
      directory to DIR's weights (apply_peft: every name and shape checked).
  encode DIR TEXT / decode DIR ID...
      Byte-level BPE with DIR's tokenizer.json (GPT-2 pre-tokenizer split,
      merges by rank, added tokens split first).
  selftest
      Needs no rlhf; see selftest() for what each check proves.

The dump rlhf writes (`rlhf model-dump --model DIR --out DUMP [--batch B
--len T --mask --seed S --greedy N]`)
-------------------------------------------------------------------------
  meta.txt     line 1: `hf`; line 2: `C H L NH NKV V S shared B T [hd]`
               (C hidden_size, H intermediate_size, L layers, NH/NKV heads,
               V vocab_size, S the context rlhf uses, shared 1 when the
               logits use model.embed_tokens.weight (tied, or a reward-model
               directory, which has no lm_head), B, T, and optionally hd the
               head size). Each number is cross-checked against config.json.
  inputs.bin   int32 tok[B*T], int32 tgt[B*T], float32 mask[N], a[N], b[N],
               c[N], d[N]  (N = B*T, exactly as today's model-dump)
  heads.bin    float32 reward head (C+1: weights then bias), value head (C+1).
               For a *ForSequenceClassification DIR the reward weights must
               equal score.weight (as float32) and the bias config.json's
               "rlhf_reward_bias" (0 when absent).
  outputs.bin  float32 logits[N*V], logp[N], entropy[N], reward[N],
               value[N], scalars[2] = (masked-mean CE, J)
  grads.safetensors  float32 dJ/dtensor for EVERY tensor in DIR under its HF
               name and HF shape (lm_head.weight only when DIR has it;
               score.weight for a reward model), plus "rlhf.reward_head" and
               "rlhf.value_head" (C+1 each). Missing or extra names are BAD.
  greedy.txt   optional: line 1 prompt ids, line 2 rlhf's N greedy ids
               (argmax, no stopping at eos).
  J = sum(mask*CE)/sum(mask) + sum a*reward + sum b*value + sum c*logp
      + sum d*entropy,  reward = h_final @ rw[:C] + rw[C] at every position.

The maths (transformers' modeling_llama / mistral / qwen2 / qwen3)
-----------------------------------------------------------------
  RMSNorm(x) = w * x * rsqrt(mean(x^2) + eps), eps = rms_norm_eps.
  q = x Wq^T (+bq), k, v likewise; Qwen3: q and k RMSNorm'ed per head over
  head_dim (q_norm / k_norm gains, same eps) BEFORE RoPE.
  RoPE (rotate-half): inv_freq[i] = 1 / theta^(2i/hd), i < hd/2 (llama3
  scaling per _compute_llama3_parameters); emb = cat(freqs, freqs);
  q' = q*cos(emb) + rotate_half(q)*sin(emb), rotate_half(x) = cat(-x2, x1).
  So HF rotates the PAIR (i, i + hd/2) of each head by angle pos*inv_freq[i].
  GQA: repeat_kv = each kv head used by NH/NKV consecutive query heads.
  softmax(q k^T / sqrt(hd) + causal) v, then o_proj; SiLU-gated MLP
  down(silu(gate x) * up x); final norm; lm_head or tied embedding.

The q/k permutation (what the C loader must do)
-----------------------------------------------
  rlhf's RoPE (llama2.c's) rotates the interleaved pairs (2i, 2i+1) by
  pos*inv_freq[i]. Let, per head of size hd,
      perm = concat(arange(0, hd, 2), arange(1, hd, 2)) = [0,2,4,...,1,3,5,...]
      inv  = argsort(perm)  = [0, hd/2, 1, hd/2+1, 2, hd/2+2, ...]
  HF -> interleaved (loading a HF model):
      W_il[h*hd + j, :] = W_hf[h*hd + inv[j], :]   (gather with inv), i.e.
      interleaved row 2i     = HF row i,
      interleaved row 2i + 1 = HF row i + hd/2.
  interleaved -> HF (saving; transformers' convert_llama_weights_to_hf permute):
      W_hf[h*hd + k, :] = W_il[h*hd + perm[k], :]   (gather with perm).
  Applied to q_proj.weight and k_proj.weight rows, to q_proj.bias and
  k_proj.bias, and to q_norm.weight / k_norm.weight (one head's hd gains,
  permuted the same way: RMSNorm over a head is permutation-equivariant).
  v_proj and o_proj are NOT permuted (q.k is invariant under permuting q and
  k alike). selftest proves this on full models of every arch.

Tolerances
----------
  C runs in float32, this reference in float64. For every output and every
  gradient: max|c - ref| <= ATOL + RTOL * max|ref|, RTOL = 2e-5, ATOL = 1e-7
  (as tests/ref/torch_ref.py); logits and logp must in addition be within
  1e-4 absolute (the issue's bound), so their tolerance is min(1e-4, ...).
  bf16/f16 checkpoints need nothing different: the reference is built from
  the very values in the file, every bf16/f16 value is exact in float32, so
  the engine computes on the same weights and only float32 arithmetic
  differs. Greedy ids must be identical; a difference is tolerated only at a
  step where the float64 logits of the two tokens are within 1e-4 (a tie at
  float32 resolution), and that is reported.
"""
import json
import math
import os
import shutil
import struct
import sys
import tempfile
import unicodedata

import numpy as np
import torch

RTOL, ATOL, LOGIT_ATOL = 2e-5, 1e-7, 1e-4

ARCHS = {
    "llama": ("LlamaForCausalLM", "LlamaForSequenceClassification", "llama"),
    "mistral": ("MistralForCausalLM", "MistralForSequenceClassification", "mistral"),
    "qwen2": ("Qwen2ForCausalLM", "Qwen2ForSequenceClassification", "qwen2"),
    "qwen3": ("Qwen3ForCausalLM", "Qwen3ForSequenceClassification", "qwen3"),
}
ARCH_OF = {}
for _k, (_lm, _rm, _mt) in ARCHS.items():
    ARCH_OF[_lm] = (_k, False)
    ARCH_OF[_rm] = (_k, True)


def die(msg):
    print(f"hf_ref: {msg}", file=sys.stderr)
    sys.exit(2)


# ---------------------------------------------------------------- dtypes
def f32_to_bf16_bits(a):
    """float32 -> bfloat16 bit patterns, round to nearest, ties to even (as
    torch's and transformers' casts). NaN -> quiet NaN 0x7FC0 (sign kept)."""
    a = np.ascontiguousarray(a, dtype=np.float32)
    u = a.view(np.uint32).astype(np.uint64)
    r = ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)
    nan = np.isnan(a)
    if nan.any():
        r[nan] = ((u[nan] >> 16).astype(np.uint16) & 0x8000) | 0x7FC0
    return r


def bf16_bits_to_f32(b):
    return (np.asarray(b, dtype=np.uint16).astype(np.uint32) << 16).view(np.float32)


DT = {"F32": (4, "<f4"), "F16": (2, "<f2"), "BF16": (2, None), "F64": (8, "<f8")}
DTYPE_ARG = {"f32": ("F32", "float32"), "bf16": ("BF16", "bfloat16"), "f16": ("F16", "float16")}


def encode_tensor(a, dt):
    """float array -> (bytes, values as stored, as float32)."""
    a = np.asarray(a, dtype=np.float32)
    if dt == "F32":
        return a.astype("<f4").tobytes(), a.copy()
    if dt == "F16":
        with np.errstate(over="ignore"):
            h = a.astype("<f2")
        return h.tobytes(), h.astype(np.float32)
    if dt == "BF16":
        b = f32_to_bf16_bits(a)
        return b.astype("<u2").tobytes(), bf16_bits_to_f32(b).reshape(a.shape)
    raise ValueError(dt)


def decode_tensor(buf, dt, shape):
    if dt == "BF16":
        return bf16_bits_to_f32(np.frombuffer(buf, dtype="<u2")).reshape(shape)
    return np.frombuffer(buf, dtype=DT[dt][1]).astype(np.float32 if dt != "F64" else np.float64).reshape(shape)


# ---------------------------------------------------------------- safetensors
def st_write(path, tensors, metadata=None):
    """tensors: list of (name, dtype string, shape, raw bytes). Layout: u64 LE
    header length n, n bytes of JSON ({"__metadata__": {...}, name: {dtype,
    shape, data_offsets [begin, end) relative to the data area}}), padded with
    spaces so the data area starts 8-byte aligned, then the data."""
    hdr = {"__metadata__": metadata or {"format": "pt"}}
    off = 0
    for name, dt, shape, raw in tensors:
        assert len(raw) == int(np.prod(shape, dtype=np.int64)) * DT[dt][0], name
        hdr[name] = {"dtype": dt, "shape": [int(s) for s in shape], "data_offsets": [off, off + len(raw)]}
        off += len(raw)
    h = json.dumps(hdr, separators=(",", ":")).encode()
    h += b" " * ((8 - (8 + len(h)) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for _, _, _, raw in tensors:
            f.write(raw)
    return off


def st_read(path):
    """-> (dict name -> (dtype, shape, float array), metadata). Validates
    everything a loader must: header length within the file, JSON, known
    dtypes, byte counts matching shapes, offsets inside the data area,
    contiguous and non-overlapping."""
    raw = open(path, "rb").read()
    if len(raw) < 8:
        raise ValueError(f"{path}: shorter than the 8-byte header length")
    (n,) = struct.unpack("<Q", raw[:8])
    if n > len(raw) - 8:
        raise ValueError(f"{path}: header length {n} beyond the file ({len(raw)} bytes)")
    hdr = json.loads(raw[8:8 + n].decode())
    data = raw[8 + n:]
    meta = hdr.pop("__metadata__", None)
    out, spans = {}, []
    for name, e in hdr.items():
        dt, shape, (b, en) = e["dtype"], e["shape"], e["data_offsets"]
        if dt not in DT:
            raise ValueError(f"{path}: {name}: unsupported dtype {dt}")
        want = int(np.prod(shape, dtype=np.int64)) * DT[dt][0]
        if en - b != want or b < 0:
            raise ValueError(f"{path}: {name}: {en - b} bytes for shape {shape} {dt}")
        if en > len(data):
            raise ValueError(f"{path}: {name}: data ends at {en}, past the file's {len(data)} bytes")
        spans.append((b, en, name))
        out[name] = (dt, tuple(shape), decode_tensor(data[b:en], dt, shape))
    spans.sort()
    pos = 0
    for b, en, name in spans:
        if b != pos:
            raise ValueError(f"{path}: {name}: data not contiguous at {b} (expected {pos})")
        pos = en
    return out, meta


def load_dir_tensors(d):
    """All tensors of a model directory, single file or sharded via the index."""
    idx = os.path.join(d, "model.safetensors.index.json")
    if os.path.exists(idx):
        wm = json.load(open(idx))["weight_map"]
        out = {}
        for fn in sorted(set(wm.values())):
            t, _ = st_read(os.path.join(d, fn))
            for k, v in t.items():
                if wm.get(k) != fn:
                    raise ValueError(f"{fn}: {k} not mapped to this shard in the index")
                out[k] = v
        missing = set(wm) - set(out)
        if missing:
            raise ValueError(f"index names tensors absent from the shards: {sorted(missing)}")
        return out
    t, _ = st_read(os.path.join(d, "model.safetensors"))
    return t


# ---------------------------------------------------------------- config
class Cfg:
    def __init__(self, c):
        self.raw = c
        arch = c["architectures"][0]
        if arch not in ARCH_OF:
            raise ValueError(f"architectures: unsupported {arch}")
        self.fam, self.rm = ARCH_OF[arch]
        self.C, self.H = c["hidden_size"], c["intermediate_size"]
        self.L, self.NH = c["num_hidden_layers"], c["num_attention_heads"]
        self.NKV = c.get("num_key_value_heads") or self.NH
        self.hd = c.get("head_dim") or self.C // self.NH
        self.V = c["vocab_size"]
        self.eps = float(c["rms_norm_eps"])
        self.theta = float(c.get("rope_theta", 10000.0))
        self.tied = bool(c.get("tie_word_embeddings", False))  # transformers' default for these four
        self.rope = c.get("rope_scaling")
        if self.rope is not None:
            t = self.rope.get("rope_type", self.rope.get("type"))
            if t not in ("llama3", "default"):
                raise ValueError(f"rope_scaling: unsupported type {t}")
            if t == "default":
                self.rope = None
        ab = bool(c.get("attention_bias", False))
        self.qkv_bias = self.fam == "qwen2" or ab
        self.o_bias = ab and self.fam != "qwen2"
        if c.get("mlp_bias"):
            raise ValueError("mlp_bias: unsupported")
        self.qk_norm = self.fam == "qwen3"
        if self.rm:
            nl = c.get("num_labels", len(c.get("id2label") or {"0": 0}))
            if nl != 1:
                raise ValueError(f"num_labels: {nl}, a reward model has 1")
        self.hidden_act = c.get("hidden_act", "silu")
        assert self.hidden_act == "silu", self.hidden_act

    def names(self):
        """The tensor names transformers' state_dict has, with shapes."""
        C, H, hd, Q, KV = self.C, self.H, self.hd, self.NH * self.hd, self.NKV * self.hd
        s = {"model.embed_tokens.weight": (self.V, C), "model.norm.weight": (C,)}
        for i in range(self.L):
            p = f"model.layers.{i}."
            s[p + "input_layernorm.weight"] = (C,)
            s[p + "post_attention_layernorm.weight"] = (C,)
            s[p + "self_attn.q_proj.weight"] = (Q, C)
            s[p + "self_attn.k_proj.weight"] = (KV, C)
            s[p + "self_attn.v_proj.weight"] = (KV, C)
            s[p + "self_attn.o_proj.weight"] = (C, Q)
            if self.qkv_bias:
                s[p + "self_attn.q_proj.bias"] = (Q,)
                s[p + "self_attn.k_proj.bias"] = (KV,)
                s[p + "self_attn.v_proj.bias"] = (KV,)
            if self.o_bias:
                s[p + "self_attn.o_proj.bias"] = (C,)
            if self.qk_norm:
                s[p + "self_attn.q_norm.weight"] = (hd,)
                s[p + "self_attn.k_norm.weight"] = (hd,)
            s[p + "mlp.gate_proj.weight"] = (H, C)
            s[p + "mlp.up_proj.weight"] = (H, C)
            s[p + "mlp.down_proj.weight"] = (C, H)
        if self.rm:
            s["score.weight"] = (1, C)
        elif not self.tied:
            s["lm_head.weight"] = (self.V, C)
        return s


def load_model(d, dtype=torch.float64):
    cfg = Cfg(json.load(open(os.path.join(d, "config.json"))))
    t = load_dir_tensors(d)
    want = cfg.names()
    for k, shp in want.items():
        if k not in t:
            raise ValueError(f"missing tensor {k}")
        if t[k][1] != shp:
            raise ValueError(f"{k}: shape {t[k][1]}, expected {shp}")
    extra = set(t) - set(want)
    if cfg.tied and not cfg.rm:
        extra.discard("lm_head.weight")  # some tied checkpoints also store it; ignored
    if extra:
        raise ValueError(f"unexpected tensors {sorted(extra)}")
    P = {k: torch.tensor(t[k][2].astype(np.float64), dtype=dtype, requires_grad=True) for k in want}
    return cfg, P


# ---------------------------------------------------------------- maths
def inv_freq_default(hd, theta):
    return 1.0 / (theta ** (torch.arange(0, hd, 2, dtype=torch.float64) / hd))


def inv_freq_llama3(inv_freq, rs):
    """Transcribed from transformers' _compute_llama3_parameters."""
    factor = rs["factor"]
    low_freq_factor = rs["low_freq_factor"]
    high_freq_factor = rs["high_freq_factor"]
    old_context_len = rs["original_max_position_embeddings"]
    low_freq_wavelen = old_context_len / low_freq_factor
    high_freq_wavelen = old_context_len / high_freq_factor
    wavelen = 2 * math.pi / inv_freq
    inv_freq_llama = torch.where(wavelen > low_freq_wavelen, inv_freq / factor, inv_freq)
    smooth_factor = (old_context_len / wavelen - low_freq_factor) / (high_freq_factor - low_freq_factor)
    smoothed_inv_freq = (1 - smooth_factor) * inv_freq_llama / factor + smooth_factor * inv_freq_llama
    is_medium_freq = ~(wavelen < high_freq_wavelen) * ~(wavelen > low_freq_wavelen)
    return torch.where(is_medium_freq, smoothed_inv_freq, inv_freq_llama)


def inv_freq_llama3_scalar(hd, theta, rs):
    """The same scaling written per frequency from Meta's reference
    apply_scaling (llama/model.py), to check the transcription above."""
    out = []
    lo_w = rs["original_max_position_embeddings"] / rs["low_freq_factor"]
    hi_w = rs["original_max_position_embeddings"] / rs["high_freq_factor"]
    for i in range(0, hd, 2):
        f = 1.0 / theta ** (i / hd)
        w = 2 * math.pi / f
        if w < hi_w:
            out.append(f)
        elif w > lo_w:
            out.append(f / rs["factor"])
        else:
            s = (rs["original_max_position_embeddings"] / w - rs["low_freq_factor"]) / (
                rs["high_freq_factor"] - rs["low_freq_factor"])
            out.append((1 - s) * f / rs["factor"] + s * f)
    return torch.tensor(out, dtype=torch.float64)


def model_inv_freq(cfg):
    f = inv_freq_default(cfg.hd, cfg.theta)
    if cfg.rope is not None:
        f = inv_freq_llama3(f, cfg.rope)
    return f


def rmsnorm(x, w, eps):
    return w * (x * torch.rsqrt((x * x).mean(-1, keepdim=True) + eps))


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat((-x[..., h:], x[..., :h]), dim=-1)


def rope_hf(x, inv_freq, T):
    """x (B, T, h, hd); HF apply_rotary_pos_emb with position_ids 0..T-1."""
    freqs = torch.arange(T, dtype=torch.float64)[:, None] * inv_freq[None, :]
    emb = torch.cat((freqs, freqs), dim=-1)
    cos, sin = emb.cos().to(x.dtype)[None, :, None, :], emb.sin().to(x.dtype)[None, :, None, :]
    return x * cos + rotate_half(x) * sin


def rope_interleaved(x, inv_freq, T):
    """llama2.c / rlhf: pairs (2i, 2i+1) rotated by pos*inv_freq[i]."""
    ang = torch.arange(T, dtype=torch.float64)[:, None] * inv_freq[None, :]
    c, s = ang.cos().to(x.dtype)[None, :, None, :], ang.sin().to(x.dtype)[None, :, None, :]
    x0, x1 = x[..., 0::2], x[..., 1::2]
    return torch.stack([x0 * c - x1 * s, x0 * s + x1 * c], dim=-1).flatten(-2)


def hidden(cfg, P, tok, interleaved=False):
    """Final-normed hidden states (B, T, C) for token ids tok (B, T)."""
    B, T = tok.shape
    NH, NKV, hd, eps = cfg.NH, cfg.NKV, cfg.hd, cfg.eps
    inv_freq = model_inv_freq(cfg)
    rope = rope_interleaved if interleaved else rope_hf
    x = P["model.embed_tokens.weight"][tok]
    causal = torch.tril(torch.ones(T, T, dtype=torch.bool))
    for i in range(cfg.L):
        p = f"model.layers.{i}."

        def lin(name, h):
            y = h @ P[p + name + ".weight"].T
            b = P.get(p + name + ".bias")
            return y if b is None else y + b

        h = rmsnorm(x, P[p + "input_layernorm.weight"], eps)
        q = lin("self_attn.q_proj", h).view(B, T, NH, hd)
        k = lin("self_attn.k_proj", h).view(B, T, NKV, hd)
        v = lin("self_attn.v_proj", h).view(B, T, NKV, hd)
        if cfg.qk_norm:
            q = rmsnorm(q, P[p + "self_attn.q_norm.weight"], eps)
            k = rmsnorm(k, P[p + "self_attn.k_norm.weight"], eps)
        q = rope(q, inv_freq, T).transpose(1, 2)
        k = rope(k, inv_freq, T).transpose(1, 2)
        v = v.transpose(1, 2)
        k = k.repeat_interleave(NH // NKV, dim=1)  # repeat_kv
        v = v.repeat_interleave(NH // NKV, dim=1)
        a = (q @ k.transpose(-1, -2)) * hd ** -0.5
        a = a.masked_fill(~causal, float("-inf")).softmax(-1)
        y = (a @ v).transpose(1, 2).reshape(B, T, NH * hd)
        x = x + lin("self_attn.o_proj", y)
        h = rmsnorm(x, P[p + "post_attention_layernorm.weight"], eps)
        g = torch.nn.functional.silu(lin("mlp.gate_proj", h)) * lin("mlp.up_proj", h)
        x = x + lin("mlp.down_proj", g)
    return rmsnorm(x, P["model.norm.weight"], eps)


def classifier(cfg, P):
    return P["lm_head.weight"] if "lm_head.weight" in P else P["model.embed_tokens.weight"]


def objective(cfg, P, heads, inp):
    """Everything model-dump writes, as tensors; heads = (rw, vw) leaves."""
    tok, tgt, mask, ca, cb, cc, cd = inp
    B, T = tok.shape
    N = B * T
    hf = hidden(cfg, P, tok).reshape(N, cfg.C)
    logits = hf @ classifier(cfg, P).T
    logp_all = logits.log_softmax(-1)
    logp = logp_all.gather(1, tgt[:, None])[:, 0]
    ent = -(logp_all.exp() * logp_all).sum(-1)
    ce = -(logp * mask).sum() / mask.sum()
    rw, vw = heads
    C = cfg.C
    if cfg.rm:  # the reward head's weights ARE score.weight
        reward = hf @ P["score.weight"][0] + rw[C]
    else:
        reward = hf @ rw[:C] + rw[C]
    value = hf @ vw[:C] + vw[C]
    J = ce + (ca * reward).sum() + (cb * value).sum() + (cc * logp).sum() + (cd * ent).sum()
    return dict(logits=logits, logp=logp, entropy=ent, reward=reward, value=value,
                scalars=torch.stack([ce, J])), J


# ---------------------------------------------------------------- make
SIZES = {  # (V, C, L, NH, NKV, H, head_dim or None, max_pos)
    ("tiny", "llama"): (300, 64, 2, 4, 2, 160, None, 128),
    ("tiny", "mistral"): (300, 64, 2, 4, 2, 160, None, 128),
    ("tiny", "qwen2"): (300, 64, 2, 4, 2, 160, None, 128),
    ("tiny", "qwen3"): (300, 64, 2, 4, 2, 160, 32, 128),   # NH*hd = 128 != 64
    ("small", "llama"): (1000, 144, 3, 9, 3, 384, None, 256),  # SmolLM2-like 9/3 heads, hs 16
    ("small", "mistral"): (1000, 128, 3, 8, 2, 352, None, 256),
    ("small", "qwen2"): (1000, 128, 3, 4, 2, 320, None, 256),
    ("small", "qwen3"): (1000, 128, 3, 4, 2, 320, 48, 256),  # NH*hd = 192 != 128
}

LLAMA3_SCALING = {"rope_type": "llama3", "factor": 32.0, "low_freq_factor": 1.0,
                  "high_freq_factor": 4.0, "original_max_position_embeddings": 64}

CHATML_SMOL = ("{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
               "{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face"
               "<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + "
               "'<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}"
               "{% endif %}")
SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]

TRAIN_TEXT = """\
The quick brown fox jumps over the lazy dog. A model learns from feedback: people
compare two answers and say which one they prefer, and the reward model learns to
score answers the way they would. Then the policy is trained to write answers that
the reward model scores highly, while a penalty keeps it close to where it started.
It's a loop: sample, label, train the reward model, train the policy, and repeat.
Numbers like 1, 2, 3, 10, 42 and 2024 appear in text too; so do words such as
"question", "answer", "assistant", "user" and "system". We'll see what they've done.
Hello world! How are you today? I'm fine, thank you. What is the capital of France?
The capital of France is Paris. What is two plus two? Two plus two is four.
"""


def bytes_to_unicode():
    """GPT-2's reversible byte -> printable unicode map, in GPT-2's id order."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("\u00a1"), ord("\u00ac") + 1)) + \
        list(range(ord("\u00ae"), ord("\u00ff") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return list(zip(bs, [chr(c) for c in cs]))


B2U = dict(bytes_to_unicode())
U2B = {u: b for b, u in B2U.items()}


def _cat(ch):
    c = unicodedata.category(ch)
    return "L" if c[0] == "L" else "N" if c[0] == "N" else "S" if ch.isspace() else "O"


def pretokenize(s):
    """GPT-2's split regex, hand-matched:
    's|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+"""
    out, i, n = [], 0, len(s)
    while i < n:
        m = None
        for c in ("'s", "'t", "'re", "'ve", "'m", "'ll", "'d"):
            if s.startswith(c, i):
                m = i + len(c)
                break
        if m is None:
            j = i + 1 if s[i] == " " and i + 1 < n and _cat(s[i + 1]) != "S" else i
            k = _cat(s[j])
            if k != "S":
                e = j
                while e < n and _cat(s[e]) == k:
                    e += 1
                m = e
        if m is None:  # whitespace run
            e = i
            while e < n and _cat(s[e]) == "S":
                e += 1
            m = e if e == n or e - i == 1 else e - 1
        out.append(s[i:m])
        i = m
    return out


def train_bpe(text, n_merges):
    words = {}
    for w in pretokenize(text):
        sym = tuple(B2U[b] for b in w.encode())
        words[sym] = words.get(sym, 0) + 1
    merges = []
    for _ in range(n_merges):
        pairs = {}
        for w, c in words.items():
            for a, b in zip(w, w[1:]):
                pairs[(a, b)] = pairs.get((a, b), 0) + c
        if not pairs:
            break
        best = min(pairs, key=lambda p: (-pairs[p], p))
        merges.append(best)
        nw = {}
        for w, c in words.items():
            o, i = [], 0
            while i < len(w):
                if i + 1 < len(w) and (w[i], w[i + 1]) == best:
                    o.append(w[i] + w[i + 1])
                    i += 2
                else:
                    o.append(w[i])
                    i += 1
            nw[tuple(o)] = nw.get(tuple(o), 0) + c
        words = nw
        if len(merges) == n_merges:
            break
    # when the text runs out of pairs, go on with merges of an existing
    # merged token and one byte symbol (still valid BPE: both parts exist
    # before the merge), deterministically, until n_merges
    have = set(B2U.values()) | {a + b for a, b in merges}
    first = [a + b for a, b in merges]
    letters = [B2U[c] for c in b" etaoinshrdlucmfwypvbgkjqxz"]
    for ch in letters:
        for m in first:
            if len(merges) >= n_merges:
                return merges
            if m + ch not in have:
                merges.append((m, ch))
                have.add(m + ch)
    return merges


def make_tokenizer(out, arch, V, bos):
    """tokenizer.json (ids: 256 byte symbols in GPT-2 order, then one per
    merge, then the 3 specials) and tokenizer_config.json. Qwen: V_tok =
    vocab_size - 4 (embedding rows past the tokenizer, as Qwen pads) and the
    specials only in added_tokens; llama/mistral: V_tok = vocab_size and the
    specials also in model.vocab (SmolLM2 style)."""
    vt = V - 4 if arch.startswith("qwen") else V
    merges = train_bpe(TRAIN_TEXT, vt - 256 - len(SPECIALS))
    vocab = {u: i for i, (_, u) in enumerate(bytes_to_unicode())}
    for a, b in merges:
        assert a + b not in vocab, (a, b)
        vocab[a + b] = len(vocab)
    sid = {s: len(vocab) + i for i, s in enumerate(SPECIALS)}
    if not arch.startswith("qwen"):
        vocab.update(sid)
    assert len(vocab) + (0 if not arch.startswith("qwen") else len(SPECIALS)) == vt <= V
    added = [{"id": sid[s], "content": s, "single_word": False, "lstrip": False, "rstrip": False,
              "normalized": False, "special": True} for s in SPECIALS]
    tj = {
        "version": "1.0", "truncation": None, "padding": None, "added_tokens": added,
        "normalizer": None,
        "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True,
                          "use_regex": True},
        "post_processor": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": False,
                           "use_regex": True},
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
        "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
                  "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False,
                  "ignore_merges": False, "vocab": vocab, "merges": [f"{a} {b}" for a, b in merges]},
    }
    with open(os.path.join(out, "tokenizer.json"), "w", encoding="utf-8") as f:
        json.dump(tj, f, ensure_ascii=False, indent=2)
    qwen = arch.startswith("qwen")
    tc = {
        "add_bos_token": False, "add_prefix_space": False,
        "added_tokens_decoder": {str(a["id"]): {k: v for k, v in a.items() if k != "id"} for a in added},
        "additional_special_tokens": ["<|im_start|>", "<|im_end|>"],
        "bos_token": bos, "chat_template": CHATML_SMOL,
        "clean_up_tokenization_spaces": False, "eos_token": "<|im_end|>", "errors": "replace",
        "model_max_length": 32768, "pad_token": "<|endoftext|>", "split_special_tokens": False,
        "tokenizer_class": "Qwen2Tokenizer" if qwen else "GPT2Tokenizer", "unk_token": None,
    }
    with open(os.path.join(out, "tokenizer_config.json"), "w", encoding="utf-8") as f:
        json.dump(tc, f, ensure_ascii=False, indent=2)
    return sid


def make_dir(arch, size, out, dtype="f32", tied=None, rope_llama3=False, shards=1, seed=1,
             rm=False, reward_bias=None):
    V, C, L, NH, NKV, H, hd, maxpos = SIZES[(size, arch)]
    lm, rmname, mtype = ARCHS[arch]
    if tied is None:
        tied = arch in ("qwen2", "qwen3") or (arch == "llama" and size == "tiny")
    dt, tdname = DTYPE_ARG[dtype]
    if rope_llama3 and arch != "llama":
        raise ValueError("--rope-llama3 is a llama option")
    os.makedirs(out, exist_ok=True)
    for fn in os.listdir(out):
        if fn.endswith(".safetensors") or fn.endswith(".json"):
            os.remove(os.path.join(out, fn))
    qwen = arch.startswith("qwen")
    sid = make_tokenizer(out, arch, V, None if qwen else "<|im_start|>")
    eot, ime = sid["<|endoftext|>"], sid["<|im_end|>"]
    theta = {"llama": 500000.0 if rope_llama3 else 10000.0, "mistral": 1000000.0,
             "qwen2": 1000000.0, "qwen3": 1000000.0}[arch]
    cfg = {
        "architectures": [rmname if rm else lm], "model_type": mtype,
        "hidden_size": C, "intermediate_size": H, "num_hidden_layers": L,
        "num_attention_heads": NH, "num_key_value_heads": NKV,
        "hidden_act": "silu", "max_position_embeddings": maxpos, "initializer_range": 0.02,
        "rms_norm_eps": 1e-6, "rope_theta": theta, "rope_scaling": LLAMA3_SCALING if rope_llama3 else None,
        "tie_word_embeddings": bool(tied), "vocab_size": V, "torch_dtype": tdname,
        "bos_token_id": eot, "eos_token_id": [ime, eot] if rope_llama3 else ime,
        "attention_dropout": 0.0, "use_cache": True, "transformers_version": "4.51.3",
    }
    if arch == "llama":
        cfg.update({"attention_bias": False, "mlp_bias": False, "head_dim": C // NH, "pretraining_tp": 1})
    if arch == "mistral":
        cfg["sliding_window"] = None
    if qwen:
        cfg.update({"sliding_window": None, "use_sliding_window": False, "max_window_layers": L})
    if arch == "qwen3":
        cfg.update({"head_dim": hd, "attention_bias": False})
    if rm:
        # transformers saves num_labels only as id2label/label2id; a
        # hand-written config may also say num_labels (qwen2 does here)
        cfg.update({"id2label": {"0": "LABEL_0"}, "label2id": {"LABEL_0": 0}, "pad_token_id": eot})
        if arch == "qwen2":
            cfg["num_labels"] = 1
        if reward_bias is not None:
            cfg["rlhf_reward_bias"] = float(reward_bias)
    json.dump(cfg, open(os.path.join(out, "config.json"), "w"), indent=2, sort_keys=True)
    gen = {"_from_model_config": True, "bos_token_id": eot,
           "eos_token_id": [ime, eot] if (qwen or rope_llama3) else ime, "transformers_version": "4.51.3"}
    json.dump(gen, open(os.path.join(out, "generation_config.json"), "w"), indent=2)

    # random weights: scales keep activations O(1) so softmaxes and greedy
    # picks are not degenerate; norms, biases and q/k gains are random so
    # that every tensor (and its gradient) matters
    c = Cfg(cfg)
    r = np.random.default_rng(seed)
    vals = {}
    for name, shp in c.names().items():
        if name.endswith("norm.weight"):
            a = 1.0 + 0.2 * r.standard_normal(shp)
        elif name.endswith(".bias"):
            a = 0.2 * r.standard_normal(shp)
        elif name == "model.embed_tokens.weight":
            a = 2.0 * r.standard_normal(shp) / math.sqrt(shp[1])  # tied logits ~ N(0, 4)
        elif name == "score.weight":
            a = 0.1 * r.standard_normal(shp)
        else:
            a = r.standard_normal(shp) / math.sqrt(shp[1])
        vals[name] = a.astype(np.float32)
    ts = []
    stored = {}
    for name in sorted(vals):
        raw, sv = encode_tensor(vals[name], dt)
        stored[name] = sv
        ts.append((name, dt, vals[name].shape, raw))
    if shards <= 1:
        st_write(os.path.join(out, "model.safetensors"), ts)
    else:
        # contiguous groups of roughly equal bytes, as save_pretrained's max_shard_size
        total = sum(len(t[3]) for t in ts)
        groups, cur, acc = [], [], 0
        for t in ts:
            cur.append(t)
            acc += len(t[3])
            if acc >= total * (len(groups) + 1) / shards and len(groups) < shards - 1:
                groups.append(cur)
                cur = []
        groups.append(cur)
        groups = [g for g in groups if g]
        wm = {}
        for i, g in enumerate(groups):
            fn = f"model-{i + 1:05d}-of-{len(groups):05d}.safetensors"
            st_write(os.path.join(out, fn), g)
            for t in g:
                wm[t[0]] = fn
        json.dump({"metadata": {"total_size": total}, "weight_map": dict(sorted(wm.items()))},
                  open(os.path.join(out, "model.safetensors.index.json"), "w"), indent=2)
    return cfg, stored


# ---------------------------------------------------------------- dumps
def read_dump(dump):
    lines = open(os.path.join(dump, "meta.txt")).read().split("\n")
    if lines[0].strip() != "hf":
        raise ValueError("meta.txt: first line is not 'hf'")
    nums = list(map(int, lines[1].split()))
    return nums


def load_inputs(dump, B, T):
    N = B * T
    i = np.fromfile(os.path.join(dump, "inputs.bin"), dtype="<i4")
    f = np.fromfile(os.path.join(dump, "inputs.bin"), dtype="<f4")
    if len(i) != 7 * N:
        raise ValueError(f"inputs.bin: {len(i)} words, expected {7 * N}")
    tok = torch.tensor(i[:N].astype(np.int64)).view(B, T)
    tgt = torch.tensor(i[N:2 * N].astype(np.int64))
    rest = [torch.tensor(f[k * N:(k + 1) * N].astype(np.float64)) for k in range(2, 7)]
    return (tok, tgt, *rest)


def compare(ref, got, lines):
    bad = 0
    for name, r in ref.items():
        r = r.detach().double().numpy().ravel() if torch.is_tensor(r) else np.asarray(r, np.float64).ravel()
        c = got.get(name)
        if c is None:
            lines.append(f"BAD {name:44s} missing from the dump")
            bad += 1
            continue
        c = np.asarray(c, np.float64).ravel()
        if c.shape != r.shape:
            lines.append(f"BAD {name:44s} {c.size} values, expected {r.size}")
            bad += 1
            continue
        err = np.abs(c - r).max() if r.size else 0.0
        mr = np.abs(r).max() if r.size else 0.0
        tol = ATOL + RTOL * mr
        if name in ("logits", "logp"):
            tol = min(tol, LOGIT_ATOL)
        ok = bool(err <= tol)  # NaN fails
        bad += not ok
        lines.append(f"{'ok ' if ok else 'BAD'} {name:44s} max_err={err:.3e} tol={tol:.3e} max_ref={mr:.3e}")
    return bad


def greedy_ref(cfg, P, prompt, n):
    ids = list(prompt)
    W = classifier(cfg, P)
    with torch.no_grad():
        for _ in range(n):
            h = hidden(cfg, P, torch.tensor([ids]))[0, -1]
            ids.append(int((h @ W.T).argmax()))
    return ids[len(prompt):]


def check_greedy(cfg, P, prompt, got, lines):
    """Teacher-forced on rlhf's own ids: step s must pick the float64 argmax
    of the logits after prompt + got[:s]; a different pick passes only as a
    tie (float64 logits within LOGIT_ATOL), reported."""
    W = classifier(cfg, P)
    with torch.no_grad():
        lg = (hidden(cfg, P, torch.tensor([list(prompt) + list(got)])) @ W.T)[0]
    ties = 0
    for s, g in enumerate(got):
        row = lg[len(prompt) - 1 + s]
        a = int(row.argmax())
        if g != a:
            margin = float(row[a] - row[g]) if 0 <= g < cfg.V else float("inf")
            if margin > LOGIT_ATOL:
                free = greedy_ref(cfg, P, prompt, len(got))
                lines.append(f"BAD greedy: first divergence at step {s}: rlhf {g}, reference {a} "
                             f"(logit margin {margin:.3e}); rlhf {got}, reference {free}")
                return 1
            ties += 1
            lines.append(f"ok  greedy step {s}: rlhf {g} vs reference {a} is a tie (margin {margin:.3e})")
    lines.append(f"ok  greedy {len(got)} ids identical{f' (with {ties} ties)' if ties else ''}: {got}")
    return 0


def cmd_check(d, dump):
    try:
        cfg, P = load_model(d)
        nums = read_dump(dump)
    except (ValueError, KeyError, OSError) as e:
        print(f"BAD cannot load: {e}")
        return 1
    C, H, L, NH, NKV, V, S, shared, B, T = nums[:10]
    want = (cfg.C, cfg.H, cfg.L, cfg.NH, cfg.NKV, cfg.V)
    if (C, H, L, NH, NKV, V) != want or shared != int(cfg.tied or cfg.rm) or \
            (len(nums) > 10 and nums[10] != cfg.hd):
        print(f"BAD meta.txt {nums} disagrees with config.json {want} tied={cfg.tied} rm={cfg.rm} hd={cfg.hd}")
        return 1
    if T > S:
        print(f"BAD meta.txt T={T} > S={S}")
        return 1
    lines = []
    bad = 0
    inp = load_inputs(dump, B, T)
    N = B * T
    hb = np.fromfile(os.path.join(dump, "heads.bin"), dtype="<f4")
    if hb.size != 2 * (C + 1):
        print(f"BAD heads.bin: {hb.size} floats, expected {2 * (C + 1)}")
        return 1
    rw = torch.tensor(hb[:C + 1].astype(np.float64), requires_grad=True)
    vw = torch.tensor(hb[C + 1:].astype(np.float64), requires_grad=True)
    if cfg.rm:
        # the reward head must be score.weight (exactly) and the configured bias
        sw = P["score.weight"].detach().numpy()[0].astype(np.float32)
        bias = np.float32(cfg.raw.get("rlhf_reward_bias", 0.0))
        okh = np.array_equal(hb[:C], sw) and hb[C] == bias
        lines.append(f"{'ok ' if okh else 'BAD'} heads.bin reward head == score.weight, bias {float(bias)}"
                     f" (max diff {np.abs(hb[:C] - sw).max():.3e}, bias {hb[C]})")
        bad += not okh
    ref, J = objective(cfg, P, (rw, vw), inp)
    J.backward()
    out = np.fromfile(os.path.join(dump, "outputs.bin"), dtype="<f4").astype(np.float64)
    want_n = N * V + 4 * N + 2
    if out.size != want_n:
        print(f"BAD outputs.bin: {out.size} floats, expected {want_n}")
        return 1
    got, o = {}, 0
    for name, n in (("logits", N * V), ("logp", N), ("entropy", N), ("reward", N), ("value", N), ("scalars", 2)):
        got[name] = out[o:o + n]
        o += n
    # gradients: every HF tensor of DIR, HF names and shapes, + our two heads
    try:
        gs, _ = st_read(os.path.join(dump, "grads.safetensors"))
    except (ValueError, OSError) as e:
        print(f"BAD grads.safetensors: {e}")
        return 1
    for name, p in P.items():
        ref["grad " + name] = p.grad
        if name in gs:
            dt, shp, a = gs[name]
            if shp != tuple(p.shape) or dt != "F32":
                lines.append(f"BAD grad {name}: {dt} {list(shp)}, expected F32 {list(p.shape)}")
                bad += 1
                del ref["grad " + name]
                continue
            got["grad " + name] = a
    rg = rw.grad.clone()
    if cfg.rm:  # the reward head's weights are score.weight's: same gradient
        rg[:C] = P["score.weight"].grad[0]
    ref["grad rlhf.reward_head"] = rg
    ref["grad rlhf.value_head"] = vw.grad
    for h in ("rlhf.reward_head", "rlhf.value_head"):
        if h in gs:
            got["grad " + h] = gs[h][2]
    extra = set(gs) - set(P) - {"rlhf.reward_head", "rlhf.value_head"}
    for e in sorted(extra):
        lines.append(f"BAD grads.safetensors has {e}, not a tensor of {d}")
        bad += 1
    bad += compare(ref, got, lines)
    gp = os.path.join(dump, "greedy.txt")
    if os.path.exists(gp):
        gl = open(gp).read().split("\n")
        bad += check_greedy(cfg, P, list(map(int, gl[0].split())), list(map(int, gl[1].split())), lines)
    for ln in lines:
        print(ln)
    print(f"{cfg.fam}{' rm' if cfg.rm else ''} loss={ref['scalars'][0].item():.6f} "
          f"(C {got['scalars'][0]:.6f}) J={J.item():.6f}; {bad} BAD")
    return 1 if bad else 0


def cmd_fake_dump(d, dump, B=2, T=12, use_mask=False, seed=1, greedy=0, dtype=torch.float32):
    """What rlhf model-dump --model DIR writes, computed here in float32."""
    cfg, P = load_model(d, dtype)
    os.makedirs(dump, exist_ok=True)
    C, N, V = cfg.C, B * T, cfg.V
    r = np.random.default_rng(seed + 1000)
    tok = r.integers(0, V, N).astype(np.int32)
    tgt = r.integers(0, V, N).astype(np.int32)
    mask = (r.integers(0, 3, N) != 0).astype(np.float32) if use_mask else np.ones(N, np.float32)
    mask[0] = 1
    ca, cb = (0.3 * r.standard_normal(N)).astype(np.float32), (0.3 * r.standard_normal(N)).astype(np.float32)
    cc, cd = (0.1 * r.standard_normal(N)).astype(np.float32), (0.1 * r.standard_normal(N)).astype(np.float32)
    heads = (0.1 * r.standard_normal(2 * (C + 1))).astype(np.float32)
    if cfg.rm:
        heads[:C] = P["score.weight"].detach().numpy()[0]
        heads[C] = cfg.raw.get("rlhf_reward_bias", 0.0)
    with open(os.path.join(dump, "meta.txt"), "w") as f:
        f.write(f"hf\n{C} {cfg.H} {cfg.L} {cfg.NH} {cfg.NKV} {V} {cfg.raw['max_position_embeddings']} "
                f"{int(cfg.tied or cfg.rm)} {B} {T} {cfg.hd}\n")
    np.concatenate([tok.view(np.float32), tgt.view(np.float32), mask, ca, cb, cc, cd]).astype("<f4").tofile(
        os.path.join(dump, "inputs.bin"))
    heads.astype("<f4").tofile(os.path.join(dump, "heads.bin"))
    rw = torch.tensor(heads[:C + 1], dtype=dtype, requires_grad=True)
    vw = torch.tensor(heads[C + 1:], dtype=dtype, requires_grad=True)
    t = lambda a: torch.tensor(a, dtype=dtype)  # noqa: E731
    inp = (torch.tensor(tok.astype(np.int64)).view(B, T), torch.tensor(tgt.astype(np.int64)),
           t(mask), t(ca), t(cb), t(cc), t(cd))
    outs, J = objective(cfg, P, (rw, vw), inp)
    J.backward()
    np.concatenate([outs[k].detach().numpy().ravel() for k in
                    ("logits", "logp", "entropy", "reward", "value", "scalars")]).astype("<f4").tofile(
        os.path.join(dump, "outputs.bin"))
    ts = []
    for name, p in sorted(P.items()):
        ts.append((name, "F32", tuple(p.shape), p.grad.detach().numpy().astype("<f4").tobytes()))
    rg = rw.grad.clone()
    if cfg.rm:
        rg[:C] = P["score.weight"].grad[0]
    ts.append(("rlhf.reward_head", "F32", (C + 1,), rg.numpy().astype("<f4").tobytes()))
    ts.append(("rlhf.value_head", "F32", (C + 1,), vw.grad.numpy().astype("<f4").tobytes()))
    st_write(os.path.join(dump, "grads.safetensors"), ts)
    if greedy:
        prompt = [int(x) for x in tok[:min(T, 4)]]
        P64 = {k: v.detach().double() for k, v in P.items()}
        cont = greedy_ref(cfg, {k: v.float() for k, v in P64.items()}, prompt, greedy)
        with open(os.path.join(dump, "greedy.txt"), "w") as f:
            f.write(" ".join(map(str, prompt)) + "\n" + " ".join(map(str, cont)) + "\n")


# ---------------------------------------------------------------- logits
def apply_peft(cfg, P, adir):
    """PEFT's LoRA as PeftModel.from_pretrained + merge_and_unload would apply
    it, from its documented checkpoint format: adapter_config.json (peft_type
    LORA, r, lora_alpha, target_modules, modules_to_save) and
    adapter_model.safetensors with base_model.model.<module>.lora_A.weight (r, in)
    and .lora_B.weight (out, r) for each targeted module, and
    base_model.model.<module>.weight for modules_to_save. Every name and shape is
    checked against the base; W += lora_alpha / r * B @ A."""
    ac = json.load(open(os.path.join(adir, "adapter_config.json")))
    if ac.get("peft_type") != "LORA":
        raise ValueError(f"peft_type {ac.get('peft_type')}")
    r, alpha, targets = int(ac["r"]), float(ac["lora_alpha"]), set(ac["target_modules"])
    want_task = "SEQ_CLS" if cfg.rm else "CAUSAL_LM"
    if ac.get("task_type") != want_task:
        raise ValueError(f"task_type {ac.get('task_type')}, the base is a {want_task} model")
    t, _ = st_read(os.path.join(adir, "adapter_model.safetensors"))
    pre = "base_model.model."
    seen = set()
    for k, (_, shp, arr) in sorted(t.items()):
        if not k.startswith(pre):
            raise ValueError(f"{k}: not under {pre}")
        name = k[len(pre):]
        if name.endswith(".lora_A.weight") or name.endswith(".lora_B.weight"):
            mod = name[:-len(".lora_A.weight")]
            if mod.split(".")[-1] not in targets:
                raise ValueError(f"{k}: module not in target_modules {sorted(targets)}")
            w = mod + ".weight"
            if w not in P:
                raise ValueError(f"{k}: the base has no {w}")
            out_dim, in_dim = P[w].shape
            want = (r, in_dim) if name.endswith("lora_A.weight") else (out_dim, r)
            if tuple(shp) != want:
                raise ValueError(f"{k}: shape {shp}, expected {want}")
            seen.add(mod)
        elif name.endswith(".weight") and name[:-len(".weight")] in (ac.get("modules_to_save") or []):
            if name not in P or tuple(P[name].shape) != tuple(shp):
                raise ValueError(f"{k}: no base tensor {name} of shape {shp}")
        else:
            raise ValueError(f"{k}: not a LoRA or modules_to_save tensor")
    with torch.no_grad():
        for mod in seen:
            a = torch.tensor(t[pre + mod + ".lora_A.weight"][2].astype(np.float64))
            b = torch.tensor(t[pre + mod + ".lora_B.weight"][2].astype(np.float64))
            P[mod + ".weight"] += alpha / r * (b @ a)
        for name in ac.get("modules_to_save") or []:
            if pre + name + ".weight" in t:
                P[name + ".weight"].copy_(torch.tensor(t[pre + name + ".weight"][2].astype(np.float64)))
    per_layer = {m.split(".")[-1] for m in seen}
    if per_layer != targets or len(seen) != cfg.L * len(targets):
        raise ValueError(f"adapters on {sorted(per_layer)} in {len(seen)} modules; config names "
                         f"{sorted(targets)} on {cfg.L} layers")
    print(f"peft: r {r}, alpha {alpha:g}, {len(seen)} adapted modules, {len(t)} tensors")


def cmd_logits(d, ids_file, out, compare_with=None, atol=LOGIT_ATOL, peft=None):
    cfg, P = load_model(d)
    if peft:
        try:
            apply_peft(cfg, P, peft)
        except (ValueError, KeyError, OSError) as e:
            print(f"BAD peft {peft}: {e}")
            return 1
    rows = [list(map(int, l.split())) for l in open(ids_file).read().split("\n") if l.strip()]
    res = []
    with torch.no_grad():
        for row in rows:
            h = hidden(cfg, P, torch.tensor([row]))[0]
            if cfg.rm:
                pad = cfg.raw.get("pad_token_id")
                idx = [i for i, t in enumerate(row) if t != pad]
                last = idx[-1] if idx else len(row) - 1  # transformers: rightmost non-pad
                b = cfg.raw.get("rlhf_reward_bias", 0.0)
                res.append((h[last] @ P["score.weight"][0] + b).reshape(1).numpy())
            else:
                res.append((h @ classifier(cfg, P).T).numpy().ravel())
    a = np.concatenate(res).astype("<f4")
    a.tofile(out)
    print(f"wrote {out}: {len(rows)} rows, {a.size} floats{' (rewards)' if cfg.rm else ''}")
    if compare_with:
        c = np.fromfile(compare_with, dtype="<f4")
        if c.size != a.size:
            print(f"BAD {compare_with}: {c.size} floats, expected {a.size}")
            return 1
        ref = np.concatenate(res).astype(np.float64)
        err = np.abs(c.astype(np.float64) - ref).max()
        ok = err <= atol
        print(f"{'ok ' if ok else 'BAD'} logits max_err={err:.3e} atol={atol:.1e} max_ref={np.abs(ref).max():.3e}")
        return 0 if ok else 1
    return 0


# ---------------------------------------------------------------- tokenizer use
def load_tokenizer(d):
    tj = json.load(open(os.path.join(d, "tokenizer.json"), encoding="utf-8"))
    vocab = dict(tj["model"]["vocab"])
    merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in tj["model"]["merges"]]
    for a in tj["added_tokens"]:
        vocab[a["content"]] = a["id"]
    return vocab, {m: i for i, m in enumerate(merges)}, [a["content"] for a in tj["added_tokens"]]


def bpe_word(sym, ranks):
    sym = list(sym)
    while len(sym) > 1:
        best = min(range(len(sym) - 1), key=lambda i: ranks.get((sym[i], sym[i + 1]), 1 << 60))
        if (sym[best], sym[best + 1]) not in ranks:
            break
        sym[best:best + 2] = [sym[best] + sym[best + 1]]
    return sym


def encode(d, text):
    vocab, ranks, specials = load_tokenizer(d)
    ids, i, seg = [], 0, ""

    def flush(s):
        for w in pretokenize(s):
            for t in bpe_word([B2U[b] for b in w.encode()], ranks):
                ids.append(vocab[t])
    while i < len(text):
        sp = next((s for s in specials if text.startswith(s, i)), None)
        if sp:
            flush(seg)
            seg = ""
            ids.append(vocab[sp])
            i += len(sp)
        else:
            seg += text[i]
            i += 1
    flush(seg)
    return ids


def decode(d, ids):
    vocab, _, specials = load_tokenizer(d)
    inv = {v: k for k, v in vocab.items()}
    out = b""
    for t in ids:
        s = inv[t]
        out += s.encode() if s in specials else bytes(U2B[c] for c in s)
    return out.decode("utf-8", errors="replace")


# ---------------------------------------------------------------- selftest
def selftest():
    """Each check says what it proves. Exit 1 on any failure."""
    fails = []

    def ok(cond, what):
        print(f"{'ok ' if cond else 'BAD'} {what}")
        if not cond:
            fails.append(what)

    tmp = tempfile.mkdtemp(prefix="hf_ref_")
    try:
        # 1. bf16 encoder: round to nearest even on hand-made bit patterns
        #    (ties both ways, just above/below a tie, carry into the exponent,
        #    overflow to inf) and bit-identical to torch's cast on 1e5 values.
        pats = {0x3F808000: 0x3F80, 0x3F818000: 0x3F82, 0x3F808001: 0x3F81, 0x3F807FFF: 0x3F80,
                0xBF808000: 0xBF80, 0xBF818000: 0xBF82, 0x3FFF8000: 0x4000, 0x7F7FFFFF: 0x7F80,
                0x00008000: 0x0000, 0x00018000: 0x0002, 0x7F800000: 0x7F80}
        u = np.array(list(pats), dtype=np.uint32)
        got = f32_to_bf16_bits(u.view(np.float32))
        ok(all(int(g) == pats[int(k)] for k, g in zip(u, got)), "bf16 encoder rounds to nearest, ties to even")
        x = (np.random.default_rng(0).standard_normal(100000) * 10.0 ** np.random.default_rng(1).integers(
            -30, 30, 100000)).astype(np.float32)
        tb = torch.tensor(x).to(torch.bfloat16).view(torch.int16).numpy().view(np.uint16)
        ok(np.array_equal(f32_to_bf16_bits(x), tb), "bf16 encoder == torch.to(bfloat16) on 1e5 values")
        ok(np.array_equal(bf16_bits_to_f32(tb), torch.tensor(x).to(torch.bfloat16).float().numpy()),
           "bf16 decoder == torch's bfloat16 -> float32")
        th = torch.tensor(x).to(torch.float16).float().numpy()
        ok(np.array_equal(encode_tensor(x, "F16")[1], th), "f16 round trip == torch's float16 cast")

        # 2. safetensors writer/reader round trip, alignment, and the reader
        #    refusing a truncated file / bad byte counts
        p = os.path.join(tmp, "t.safetensors")
        a = np.arange(15, dtype=np.float32).reshape(3, 5) / 7
        ts = [("b.bias", "F32", (3, 5), a.tobytes()), ("a.weight", "BF16", (3, 5), f32_to_bf16_bits(a).tobytes()),
              ("c", "F16", (1,), np.float16(0.5).tobytes())]
        st_write(p, ts)
        raw = open(p, "rb").read()
        (n,) = struct.unpack("<Q", raw[:8])
        back, meta = st_read(p)
        ok((8 + n) % 8 == 0 and raw[8 + n - 1:8 + n] in (b" ", b"}") and meta == {"format": "pt"},
           "safetensors header is space-padded to 8-byte alignment with __metadata__ format pt")
        ok(np.array_equal(back["b.bias"][2], a) and np.array_equal(back["a.weight"][2], bf16_bits_to_f32(
            f32_to_bf16_bits(a)).reshape(3, 5)) and back["c"][2][0] == 0.5, "safetensors round trip F32/BF16/F16")
        open(p, "wb").write(raw[:-3])
        try:
            st_read(p)
            ok(False, "reader refuses a truncated file")
        except ValueError as e:
            ok("past the file" in str(e), f"reader refuses a truncated file ({e})")

        # 3. every arch: make, reload, compare with the values written; the
        #    config, the index and the tokenizer are consistent
        cases = [("llama", "tiny", "f32", dict(tied=True)), ("llama", "tiny", "bf16", dict(tied=False)),
                 ("llama", "tiny", "f16", dict(rope_llama3=True)), ("mistral", "tiny", "bf16", {}),
                 ("qwen2", "tiny", "f32", dict(shards=3)), ("qwen3", "tiny", "bf16", {}),
                 ("qwen2", "tiny", "f32", dict(rm=True, reward_bias=0.25)),
                 ("llama", "small", "f32", dict(tied=False)), ("qwen3", "small", "f16", dict(shards=2))]
        for arch, size, dtype, kw in cases:
            tag = f"{arch}-{size}-{dtype}-" + "-".join(f"{k}{v}" for k, v in kw.items())
            d = os.path.join(tmp, tag)
            cfgj, stored = make_dir(arch, size, d, dtype=dtype, seed=3, **kw)
            cfg, P = load_model(d)
            same = all(np.array_equal(P[k].detach().numpy(), stored[k].astype(np.float64)) for k in stored)
            ok(same and set(P) == set(stored), f"{tag}: {len(P)} tensors reload bit-exactly")
            files = os.listdir(d)
            if kw.get("shards", 1) > 1:
                idx = json.load(open(os.path.join(d, "model.safetensors.index.json")))
                shardf = sorted(f for f in files if f.startswith("model-"))
                tot = sum(os.path.getsize(os.path.join(d, f)) - 8 - struct.unpack(
                    "<Q", open(os.path.join(d, f), "rb").read(8))[0] for f in shardf)
                ok(len(shardf) == kw["shards"] and set(idx["weight_map"].values()) == set(shardf)
                   and idx["metadata"]["total_size"] == tot, f"{tag}: {len(shardf)} shards, index total_size {tot}")
            vocab, ranks, specials = load_tokenizer(d)
            ids = sorted(vocab.values())
            ok(ids == list(range(len(ids))) and len(ids) <= cfg.V and [vocab[s] for s in SPECIALS] == ids[-3:]
               and all(a in vocab and b in vocab and a + b in vocab for a, b in ranks),
               f"{tag}: tokenizer {len(ids)} ids <= vocab {cfg.V}, specials last, merges closed")
            txt = "<|im_start|>user\nHello world! What's 2024?<|im_end|>\n  The capital of France, é 中文"
            e = encode(d, txt)
            ok(decode(d, e) == txt and len(e) < len(txt.encode()), f"{tag}: BPE encode/decode round trip "
               f"({len(txt.encode())} bytes -> {len(e)} ids)")
            if cfg.fam == "qwen3":
                ok(cfg.NH * cfg.hd != cfg.C, f"{tag}: NH*head_dim = {cfg.NH * cfg.hd} != hidden {cfg.C}")

            # 4. the permutation: HF's rotate-half model == the interleaved
            #    model after permuting q/k rows (and q/k biases, q/k norm
            #    gains) within each head with W_il = W_hf[inv] (inv =
            #    argsort(perm), perm = [0,2,4,...,1,3,5,...]); and the other
            #    direction W_hf = W_il[perm] restores the original
            hd = cfg.hd
            perm = np.concatenate([np.arange(0, hd, 2), np.arange(1, hd, 2)])
            inv = np.argsort(perm)
            ok(np.array_equal(inv, np.array([j // 2 + (j % 2) * (hd // 2) for j in range(hd)])),
               f"{tag}: inv = [0, hd/2, 1, hd/2+1, ...]")
            Pi = {}
            for k, v in P.items():
                v = v.detach()
                if any(s in k for s in ("q_proj.", "k_proj.", "q_norm.", "k_norm.")):
                    nh = v.shape[0] // hd
                    w = v.reshape(nh, hd, *v.shape[1:])[:, torch.tensor(inv)].reshape(v.shape)
                    back = w.reshape(nh, hd, *v.shape[1:])[:, torch.tensor(perm)].reshape(v.shape)
                    assert torch.equal(back, v)
                    v = w
                Pi[k] = v
            tok = torch.tensor(np.random.default_rng(5).integers(0, cfg.V, (2, 11)))
            with torch.no_grad():
                h1 = hidden(cfg, {k: v.detach() for k, v in P.items()}, tok)
                h2 = hidden(cfg, Pi, tok, interleaved=True)
                h3 = hidden(cfg, {k: v.detach() for k, v in P.items()}, tok, interleaved=True)
            err = (h1 - h2).abs().max().item()
            ok(err < 1e-10 and (h1 - h3).abs().max().item() > 1e-3,
               f"{tag}: rotate-half == interleaved after W_il = W_hf[inv] per head (max diff {err:.1e}; "
               f"unpermuted differs by {(h1 - h3).abs().max().item():.1e})")

            # 5. the check itself: a float32 dump of this model passes, and
            #    one corrupted gradient value, logit or greedy id fails
            dump = os.path.join(tmp, tag + ".dump")
            cmd_fake_dump(d, dump, B=2, T=12, use_mask=True, seed=2, greedy=0 if cfg.rm else 8)
            import io
            import contextlib
            buf = io.StringIO()
            with contextlib.redirect_stdout(buf):
                rc = cmd_check(d, dump)
            ok(rc == 0, f"{tag}: check passes a float32 engine: {buf.getvalue().strip().splitlines()[-1]}")
            if rc:
                print(buf.getvalue())
            if tag.startswith("qwen3-tiny") or tag.startswith("qwen2-tiny-f32-rm"):
                gp = os.path.join(dump, "grads.safetensors")
                gs, _ = st_read(gp)
                name = "model.layers.1.self_attn.k_norm.weight" if cfg.qk_norm else "score.weight"
                gsw = [(k, "F32", s, (a * (1 + 1e-3 * (k == name))).astype("<f4").tobytes())
                       for k, (_, s, a) in gs.items()]
                st_write(gp, gsw)
                buf = io.StringIO()
                with contextlib.redirect_stdout(buf):
                    rc = cmd_check(d, dump)
                ok(rc == 1 and f"BAD grad {name}" in buf.getvalue(), f"{tag}: a gradient off by 1e-3 is BAD")
            if cfg.fam == "qwen3" and not cfg.rm:
                cmd_fake_dump(d, dump, B=2, T=12, seed=2, greedy=8)
                g = open(os.path.join(dump, "greedy.txt")).read().split("\n")
                cont = list(map(int, g[1].split()))
                cont[5] = (cont[5] + 1) % cfg.V
                open(os.path.join(dump, "greedy.txt"), "w").write(g[0] + "\n" + " ".join(map(str, cont)) + "\n")
                buf = io.StringIO()
                with contextlib.redirect_stdout(buf):
                    rc = cmd_check(d, dump)
                ok(rc == 1 and "first divergence at step 5" in buf.getvalue(), f"{tag}: a wrong greedy id is BAD")
                outp = os.path.join(dump, "outputs.bin")
                o = np.fromfile(outp, dtype="<f4")
                o[7] += 2e-4
                o.tofile(outp)
                os.remove(os.path.join(dump, "greedy.txt"))
                buf = io.StringIO()
                with contextlib.redirect_stdout(buf):
                    rc = cmd_check(d, dump)
                ok(rc == 1 and "BAD logits" in buf.getvalue(), f"{tag}: a logit off by 2e-4 is BAD")

        # 6. llama3 scaling: the transformers transcription == Meta's scalar
        #    apply_scaling, and the test config hits all three regions
        rs = LLAMA3_SCALING
        for hd in (16, 32):
            f0 = inv_freq_default(hd, 500000.0)
            f1 = inv_freq_llama3(f0, rs)
            f2 = inv_freq_llama3_scalar(hd, 500000.0, rs)
            wl = 2 * math.pi / f0
            hi = (wl < rs["original_max_position_embeddings"] / rs["high_freq_factor"]).sum().item()
            lo = (wl > rs["original_max_position_embeddings"] / rs["low_freq_factor"]).sum().item()
            ok(torch.allclose(f1, f2, rtol=1e-14, atol=0) and hi > 0 and lo > 0 and hd // 2 - hi - lo > 0,
               f"llama3 scaling hd={hd}: matches the scalar form; regions kept {hi}, smoothed {hd // 2 - hi - lo},"
               f" divided {lo}")

        # 7. a bad directory is refused by the reference loader too
        d = os.path.join(tmp, "bad")
        make_dir("llama", "tiny", d, seed=4)
        c = json.load(open(os.path.join(d, "config.json")))
        c["architectures"] = ["GPT2LMHeadModel"]
        json.dump(c, open(os.path.join(d, "config.json"), "w"))
        try:
            load_model(d)
            ok(False, "GPT2LMHeadModel refused")
        except ValueError as e:
            ok("architectures" in str(e), f"GPT2LMHeadModel refused ({e})")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"selftest: {'FAILED ' + str(len(fails)) if fails else 'all ok'}")
    return 1 if fails else 0


# ---------------------------------------------------------------- main
def parse_flags(args, spec):
    """spec: flag -> (key, type or None for a switch). Returns (opts, positional)."""
    opts, pos, i = {}, [], 0
    while i < len(args):
        a = args[i]
        if a in spec:
            k, t = spec[a]
            if t is None:
                opts[k] = True if not k.startswith("!") else False
            else:
                if i + 1 >= len(args):
                    die(f"{a} needs a value")
                try:
                    opts[k] = t(args[i + 1])
                except ValueError:
                    die(f"{a}: bad value {args[i + 1]}")
                i += 1
        elif a.startswith("--"):
            die(f"unknown option {a}")
        else:
            pos.append(a)
        i += 1
    return opts, pos


def main(argv):
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__)
        return 0 if argv else 2
    cmd, args = argv[0], argv[1:]
    if cmd in ("make", "make-rm"):
        o, pos = parse_flags(args, {
            "--arch": ("arch", str), "--size": ("size", str), "--dtype": ("dtype", str),
            "--tied": ("tied", None), "--untied": ("untied", None), "--rope-llama3": ("rope", None),
            "--shards": ("shards", int), "--seed": ("seed", int), "--out": ("out", str),
            "--rm": ("rm", None), "--reward-bias": ("rb", float)})
        if pos or "out" not in o or o.get("arch") not in ARCHS or o.get("size", "tiny") not in ("tiny", "small") \
                or o.get("dtype", "f32") not in DTYPE_ARG:
            die("usage: make --arch llama|mistral|qwen2|qwen3 --size tiny|small [--dtype f32|bf16|f16] "
                "[--tied|--untied] [--rope-llama3] [--shards N] [--seed S] [--rm [--reward-bias X]] --out DIR")
        tied = True if o.get("tied") else False if o.get("untied") else None
        try:
            cfg, _ = make_dir(o["arch"], o.get("size", "tiny"), o["out"], o.get("dtype", "f32"), tied,
                              o.get("rope", False), o.get("shards", 1), o.get("seed", 1),
                              o.get("rm", False) or cmd == "make-rm", o.get("rb"))
        except ValueError as e:
            die(str(e))
        print(f"wrote {o['out']}: {cfg['architectures'][0]} {o.get('dtype', 'f32')} vocab {cfg['vocab_size']}")
        return 0
    if cmd == "check" and len(args) == 2:
        return cmd_check(*args)
    if cmd == "fake-dump":
        o, pos = parse_flags(args, {"--batch": ("B", int), "--len": ("T", int), "--mask": ("mask", None),
                                    "--seed": ("seed", int), "--greedy": ("greedy", int)})
        if len(pos) != 2:
            die("usage: fake-dump DIR DUMP [--batch B] [--len T] [--mask] [--seed S] [--greedy N]")
        try:
            cmd_fake_dump(pos[0], pos[1], o.get("B", 2), o.get("T", 12), o.get("mask", False), o.get("seed", 1),
                          o.get("greedy", 0))
        except (ValueError, KeyError, OSError) as e:
            print(f"hf_ref fake-dump: {pos[0]}: {e}", file=sys.stderr)
            return 1
        return 0
    if cmd == "logits":
        o, pos = parse_flags(args, {"--compare": ("cmp", str), "--atol": ("atol", float),
                                    "--peft": ("peft", str)})
        if len(pos) != 3:
            die("usage: logits DIR IDS_FILE OUT [--compare RLHF_OUT] [--atol A] [--peft ADAPTER_DIR]")
        return cmd_logits(*pos, compare_with=o.get("cmp"), atol=o.get("atol", LOGIT_ATOL),
                          peft=o.get("peft"))
    if cmd == "encode" and len(args) == 2:
        print(" ".join(map(str, encode(*args))))
        return 0
    if cmd == "decode" and len(args) >= 2:
        sys.stdout.write(decode(args[0], [int(x) for x in args[1:]]))
        return 0
    if cmd == "selftest":
        return selftest()
    die(f"unknown command or arguments: {' '.join(argv)} (see --help)")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
