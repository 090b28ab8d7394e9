#!/usr/bin/env python3
"""Makes a reward model for the eval and best-of tests without `rlhf train-rm`:
our checkpoint IN with a reward head added (weights N(0, scale) from SEED, bias 0),
written to OUT in our format (model/checkpoint.h) without optimizer state.
usage: make_rm.py IN OUT [SEED] [SCALE]"""
import hashlib, random, struct, sys

HDR = '<8sII8iIIQQQq4f'
F_REWARD, F_VALUE, F_TOKENIZER = 1, 2, 4

src, dst = sys.argv[1], sys.argv[2]
seed = int(sys.argv[3]) if len(sys.argv) > 3 else 1
scale = float(sys.argv[4]) if len(sys.argv) > 4 else 1.0
d = open(src, 'rb').read()
h = list(struct.unpack_from(HDR, d, 0))
dim, flags, n_params, tok_len = h[3], h[11], h[13], h[14]
assert h[0] == b'RLHFCKPT' and not flags & (F_REWARD | F_VALUE), 'need our checkpoint without heads'
off = struct.calcsize(HDR)
params = d[off:off + 4 * n_params]
tok = d[off + 4 * n_params:off + 4 * n_params + tok_len]
rng = random.Random(seed)
head = struct.pack('<%df' % (dim + 1), *([rng.gauss(0, scale) for _ in range(dim)] + [0.0]))
h[11] = F_REWARD | (F_TOKENIZER if tok_len else 0)
h[13], h[15], h[16] = n_params + dim + 1, 0, 0
h[17:21] = [0.0] * 4
body = struct.pack(HDR, *h) + params + head + tok
open(dst, 'wb').write(body + hashlib.sha256(body).digest())
