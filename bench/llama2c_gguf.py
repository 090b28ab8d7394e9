#!/usr/bin/env python3
"""A llama2.c model.bin and tokenizer.bin as a GGUF file for llama.cpp's
llama-bench (bench_infer): the same weights in f32, or with every matrix
rounded to bf16 (nearest even, as `rlhf sample --weights bf16` rounds them;
the norms stay f32), written with the gguf-py package of the llama.cpp copy
given as argv[1]. llama2.c keeps Meta's layout (RoPE on adjacent pairs),
which is GGUF's llama layout: no permutation.

usage: llama2c_gguf.py LLAMA_CPP_DIR model.bin tokenizer.bin out.gguf [f32|bf16]
"""
import importlib.util
import struct
import sys
import types

import numpy as np

# gguf-py imports these for what this script does not use (vocabularies from
# sentencepiece files, model cards): empty stand-ins where they are missing
for name in ("sentencepiece", "yaml"):
    if importlib.util.find_spec(name) is None:
        stub = types.ModuleType(name)
        stub.SentencePieceProcessor = None
        sys.modules[name] = stub
sys.path.insert(0, sys.argv[1] + "/gguf-py")
import gguf  # noqa: E402

model_path, tok_path, out_path = sys.argv[2:5]
weights = sys.argv[5] if len(sys.argv) > 5 else "f32"
if weights not in ("f32", "bf16"):
    sys.exit(f"llama2c_gguf.py: weights must be f32 or bf16, not {weights!r}")
raw = open(model_path, "rb").read()
dim, hidden, n_layers, n_heads, n_kv, vocab, seq_len = struct.unpack("7i", raw[:28])
shared = vocab > 0
vocab = abs(vocab)
hs = dim // n_heads
kv_dim = n_kv * hs
w = np.frombuffer(raw, dtype=np.float32, offset=28)
pos = 0


def take(*shape):
    global pos
    n = int(np.prod(shape))
    a = w[pos:pos + n].reshape(shape)
    pos += n
    return a


emb = take(vocab, dim)
rms_att = take(n_layers, dim)
wq = take(n_layers, dim, dim)
wk = take(n_layers, kv_dim, dim)
wv = take(n_layers, kv_dim, dim)
wo = take(n_layers, dim, dim)
rms_ffn = take(n_layers, dim)
w1 = take(n_layers, hidden, dim)
w2 = take(n_layers, dim, hidden)
w3 = take(n_layers, hidden, dim)
rms_final = take(dim)
take(seq_len, hs // 2)  # freq_cis_real, unused
take(seq_len, hs // 2)  # freq_cis_imag
wcls = None if shared else take(vocab, dim)

# tokenizer.bin: max_token_length, then per token a float score, an int length, the bytes
t = open(tok_path, "rb").read()
off = 4
tokens, scores, types = [], [], []
for i in range(vocab):
    score, n = struct.unpack_from("fi", t, off)
    off += 8
    piece = t[off:off + n]
    off += n
    text = piece.decode("utf-8", errors="replace")
    if i == 0:
        kind = gguf.TokenType.UNKNOWN
    elif i in (1, 2):
        kind = gguf.TokenType.CONTROL
    elif text.startswith("<0x") and text.endswith(">") and len(text) == 6:
        kind = gguf.TokenType.BYTE
    else:
        kind = gguf.TokenType.NORMAL
        text = text.replace(" ", "\u2581")  # sentencepiece's word boundary
    tokens.append(text.encode("utf-8"))
    scores.append(score)
    types.append(kind)

g = gguf.GGUFWriter(out_path, "llama")
g.add_name("rlhf bench 15m")
g.add_context_length(seq_len)
g.add_embedding_length(dim)
g.add_block_count(n_layers)
g.add_feed_forward_length(hidden)
g.add_head_count(n_heads)
g.add_head_count_kv(n_kv)
g.add_rope_dimension_count(hs)
g.add_layer_norm_rms_eps(1e-5)
g.add_rope_freq_base(10000.0)
g.add_file_type(gguf.LlamaFileType.MOSTLY_BF16 if weights == "bf16" else gguf.LlamaFileType.ALL_F32)
g.add_tokenizer_model("llama")
g.add_token_list(tokens)
g.add_token_scores(scores)
g.add_token_types(types)
g.add_bos_token_id(1)
g.add_eos_token_id(2)
g.add_unk_token_id(0)


def add(name, a):
    """a tensor; a matrix in bf16 when asked (gguf-py's own rounding)"""
    a = np.ascontiguousarray(a)
    if weights == "bf16" and a.ndim == 2:
        bf16 = gguf.GGMLQuantizationType.BF16
        g.add_tensor(name, gguf.quants.quantize(a, bf16), raw_dtype=bf16)
    else:
        g.add_tensor(name, a)


add("token_embd.weight", emb)
for layer in range(n_layers):
    b = f"blk.{layer}."
    add(b + "attn_norm.weight", rms_att[layer])
    add(b + "attn_q.weight", wq[layer])
    add(b + "attn_k.weight", wk[layer])
    add(b + "attn_v.weight", wv[layer])
    add(b + "attn_output.weight", wo[layer])
    add(b + "ffn_norm.weight", rms_ffn[layer])
    add(b + "ffn_gate.weight", w1[layer])
    add(b + "ffn_down.weight", w2[layer])
    add(b + "ffn_up.weight", w3[layer])
add("output_norm.weight", rms_final)
if not shared:  # a tied classifier is token_embd, as llama.cpp reads it
    add("output.weight", wcls)
g.write_header_to_file()
g.write_kv_data_to_file()
g.write_tensors_to_file()
g.close()
print(f"wrote {out_path}: dim {dim}, {n_layers} layers, vocab {vocab}, {weights}")
