#!/usr/bin/python3
"""dump_logits.py DUMP IDS LOGITS: from a folder written by `rlhf model-dump`,
the rows of token ids (IDS: one row per line, space-separated, as
`hf_ref.py logits` reads them) and rlhf's float32 logits (LOGITS)."""
import sys

import numpy as np

d, ids_out, logits_out = sys.argv[1:4]
lines = open(f"{d}/meta.txt").read().split("\n")
nums = list(map(int, lines[1 if lines[0] == "hf" else 0].split()))
V, B, T = nums[5], nums[8], nums[9]
tok = np.fromfile(f"{d}/inputs.bin", dtype="<i4")[:B * T].reshape(B, T)
open(ids_out, "w").write("\n".join(" ".join(map(str, r)) for r in tok) + "\n")
np.fromfile(f"{d}/outputs.bin", dtype="<f4")[:B * T * V].tofile(logits_out)
