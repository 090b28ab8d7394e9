"""ckpt_close.py A B [TOL]: exits 0 when two of our checkpoints hold the same
config and parameters within TOL (max abs difference, default 1e-4), printing
the largest difference; for the 1-vs-N-rank test (sums in another order)."""
import struct, sys
import numpy as np


def params(path):
    with open(path, "rb") as f:
        b = f.read()
    assert b[:8] == b"RLHFCKPT", path + ": not our checkpoint"
    hsize = struct.unpack_from("<I", b, 12)[0]
    config = struct.unpack_from("<8i", b, 16)
    n = struct.unpack_from("<Q", b, 56)[0]
    return config, np.frombuffer(b, dtype="<f4", count=n, offset=hsize)


ca, pa = params(sys.argv[1])
cb, pb = params(sys.argv[2])
tol = float(sys.argv[3]) if len(sys.argv) > 3 else 1e-4
if ca != cb or pa.shape != pb.shape:
    sys.exit("different configs: %s vs %s" % (ca, cb))
d = float(np.max(np.abs(pa.astype(np.float64) - pb)))
print("max |diff| %.3g over %d parameters" % (d, pa.size))
sys.exit(0 if d <= tol else 1)
