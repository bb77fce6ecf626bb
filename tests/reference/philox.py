"""Philox4x32-10 in numpy, bit-exact with base/philox.h, and the dropout multiplier built on it.

Dropout contract (same as base/philox.h):
    key     = (seed & 0xffffffff, seed >> 32)
    counter = (i >> 2 & 0xffffffff, i >> 34, site, step)      i = C-order flat index in the canonical layout
    word    = philox4x32_10(counter, key)[i & 3]
    u       = (word >> 8) * 2^-24                              (float32, exact)
    keep    = u >= (float32)p;   multiplier = keep ? 1.0f / (1.0f - (float32)p) : 0   (float32 arithmetic)

All arithmetic is done on uint64 arrays masked to 32 bits, vectorised over every block of four elements.
Run `python3 tests/reference/philox.py` for the known-answer self-test (it also runs at import time).
"""
import numpy as np

_M32 = np.uint64(0xFFFFFFFF)
_MUL0 = np.uint64(0xD2511F53)
_MUL1 = np.uint64(0xCD9E8D57)
_W0 = 0x9E3779B9
_W1 = 0xBB67AE85


def philox4x32_10(c0, c1, c2, c3, k0, k1):
    """Vectorised Philox4x32-10. c0..c3: uint32-valued arrays (or scalars) of one common shape; k0, k1: ints.
    Returns four uint64 arrays holding 32-bit words."""
    c0, c1, c2, c3 = (np.asarray(c, dtype=np.uint64) & _M32 for c in (c0, c1, c2, c3))
    c0, c1, c2, c3 = np.broadcast_arrays(c0, c1, c2, c3)
    k0 = int(k0) & 0xFFFFFFFF
    k1 = int(k1) & 0xFFFFFFFF
    for r in range(10):
        if r > 0:
            k0 = (k0 + _W0) & 0xFFFFFFFF
            k1 = (k1 + _W1) & 0xFFFFFFFF
        p0 = _MUL0 * c0  # < 2^64, exact in uint64
        p1 = _MUL1 * c2
        hi0, lo0 = p0 >> np.uint64(32), p0 & _M32
        hi1, lo1 = p1 >> np.uint64(32), p1 & _M32
        c0, c1, c2, c3 = hi1 ^ c1 ^ np.uint64(k0), lo1, hi0 ^ c3 ^ np.uint64(k1), lo0
    return c0, c1, c2, c3


def philox_uniform(seed, site, step, n):
    """float32 uniforms u[i], i = 0..n-1, for the tensor keyed by (seed, site, step)."""
    n = int(n)
    if n == 0:
        return np.zeros(0, dtype=np.float32)
    seed = int(seed) & 0xFFFFFFFFFFFFFFFF
    nblk = (n + 3) // 4
    blk = np.arange(nblk, dtype=np.uint64)
    w = philox4x32_10(blk & _M32, blk >> np.uint64(32), np.uint64(int(site) & 0xFFFFFFFF),
                      np.uint64(int(step) & 0xFFFFFFFF), seed & 0xFFFFFFFF, seed >> 32)
    words = np.stack(w, axis=1).reshape(-1)[:n]  # element i = block i>>2, word i&3
    return (words >> np.uint64(8)).astype(np.float32) * np.float32(1.0 / 16777216.0)


def dropout_scale(seed, site, step, p, shape):
    """float32 multiplier array of the given shape: 0 (dropped) or 1/(1-p) (kept), element i = C-order flat index.
    p <= 0 gives all ones (the C side draws nothing then)."""
    shape = tuple(int(s) for s in shape)
    p32 = np.float32(p)
    if p32 <= 0:
        return np.ones(shape, dtype=np.float32)
    n = int(np.prod(shape, dtype=np.int64))
    u = philox_uniform(seed, site, step, n)
    scale = np.float32(1.0) / (np.float32(1.0) - p32)
    return np.where(u >= p32, scale, np.float32(0.0)).astype(np.float32).reshape(shape)


# Random123 known-answer vectors for philox4x32_10 (kat_vectors).
KAT = [
    ((0x00000000, 0x00000000, 0x00000000, 0x00000000), (0x00000000, 0x00000000),
     (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
    ((0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344), (0xA4093822, 0x299F31D0),
     (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1)),
]


def self_test():
    for ctr, key, want in KAT:
        got = tuple(int(w) for w in philox4x32_10(*ctr, *key))
        if got != want:
            raise AssertionError("philox4x32_10 KAT mismatch: ctr %s key %s got %s want %s" % (
                [hex(c) for c in ctr], [hex(k) for k in key], [hex(g) for g in got], [hex(w) for w in want]))
    # vectorised path == scalar path, including a counter high word (i >> 34) and a 64-bit seed
    seed, site, step = 0x123456789ABCDEF0, 0x0002FF01, 7
    u = philox_uniform(seed, site, step, 11)
    for i in (0, 3, 4, 10):
        w = philox4x32_10(i >> 2, 0, site, step, seed & 0xFFFFFFFF, seed >> 32)[i & 3]
        assert u[i] == np.float32(int(w) >> 8) * np.float32(2.0 ** -24)
    return True


self_test()

if __name__ == "__main__":
    for ctr, key, want in KAT:
        got = philox4x32_10(*ctr, *key)
        print("ctr", " ".join("%08x" % c for c in ctr), "key", " ".join("%08x" % k for k in key),
              "->", " ".join("%08x" % int(g) for g in got))
    m = dropout_scale(1234, 0x0000FF00, 7, 0.25, (64, 100, 240))
    print("KAT ok; dropout p=0.25 keep fraction over 1.5M elements: %.5f" % (np.count_nonzero(m) / m.size))
