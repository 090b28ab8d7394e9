#!/usr/bin/env python3
"""Makes a reward model for the eval and best-of tests without `rlhf train-rm`:
our checkpoint IN with a reward head added (weights N(0, scale) from SEED, bias 0;
or, with --emb TOKEN, SCALE times TOKEN's embedding row: the reward of a last
hidden state close to that token's), written to OUT in our format
(model/checkpoint.h) without optimizer state or extra bytes.
usage: make_rm.py IN OUT [SEED] [SCALE]   or   make_rm.py IN OUT --emb TOKEN SCALE"""
import hashlib, random, struct, sys

HDR = '<8sII8iIIQQQq4f'   # version 1's header; version 2 adds V2 after it
V2 = '<4i5fI16s'           # head_dim..rope_orig_ctx, eps, theta, rope scaling, pad, check
F_REWARD, F_VALUE, F_TOKENIZER = 1, 2, 4

src, dst = sys.argv[1], sys.argv[2]
emb_token = int(sys.argv[4]) if len(sys.argv) > 3 and sys.argv[3] == '--emb' else None
seed = int(sys.argv[3]) if len(sys.argv) > 3 and emb_token is None else 1
scale = float(sys.argv[5 if emb_token is not None else 4]) if len(sys.argv) > 4 else 1.0
d = open(src, 'rb').read()
h = list(struct.unpack_from(HDR, d, 0))
dim, flags, n_params, tok_len = h[3], h[11], h[13], h[14]
assert h[0] == b'RLHFCKPT' and not flags & (F_REWARD | F_VALUE), 'need our checkpoint without heads'
off = h[2]  # header size: 104 (version 1) or 160 (version 2)
v2 = list(struct.unpack_from(V2, d, struct.calcsize(HDR))) if h[1] >= 2 else None
params = d[off:off + 4 * n_params]
tok = d[off + 4 * n_params:off + 4 * n_params + tok_len]
rng = random.Random(seed)
if emb_token is None:
    w = [rng.gauss(0, scale) for _ in range(dim)]
else:
    w = [scale * x for x in struct.unpack_from('<%df' % dim, params, 4 * emb_token * dim)]
head = struct.pack('<%df' % (dim + 1), *(w + [0.0]))
h[11] = F_REWARD | (F_TOKENIZER if tok_len else 0)
h[13], h[15], h[16] = n_params + dim + 1, 0, 0
h[17:21] = [0.0] * 4
hdr = struct.pack(HDR, *h)
if v2 is not None:  # the check: sha256 of the header (check zeroed), tokenizer, extra
    v2[-1] = bytes(16)
    hdr += struct.pack(V2, *v2)
    v2[-1] = hashlib.sha256(hdr + tok).digest()[:16]
    hdr = struct.pack(HDR, *h) + struct.pack(V2, *v2)
body = hdr + params + head + tok
open(dst, 'wb').write(body + hashlib.sha256(body).digest())
