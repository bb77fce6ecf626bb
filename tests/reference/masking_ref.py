"""Python twin of data/corpus/masking.c: dynamic span masking of one sample (docs/model.md §3.2), written from the spec.

Draws (same keys as data/corpus/masking.h, Philox from tests/reference/philox.py):
    site = 0x4D000000 | kind     step = epoch     index = utt << 32 | j
    START  (0)  j = span       start = below(len)             len = min(length, T)
    ITEM   (1)  j = 0          other = below(n_items - 1), shifted past the sample's own position
    STEP   (2)  j = 0          step  = below(min(other_len, T))   (none when that is 0)
    ACTION (3)  j = t          u < 0.8 zero, u < 0.9 random frame, else keep   (u: float32 philox uniform)
below(n) = (word * n) >> 32, word = the full 32-bit Philox output.

Usage: masking_ref.py CASES OUT. CASES: one "seed epoch utt pos len T n_items" per line; the random-frame sample's
length is other_len(frame_pos) below (test_masking.c uses the same). OUT: per case
"n_spans n_masked frame_pos frame_step ACTIONS", ACTIONS = one digit per step (0 off, 1 zero, 2 random, 3 keep).
"""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from philox import philox4x32_10  # noqa: E402

OFF, ZERO, RANDOM, KEEP = 0, 1, 2, 3
START, ITEM, STEP, ACTION = 0, 1, 2, 3
SPAN = 3


def word(seed, site, step, i):
    w = philox4x32_10(i >> 2 & 0xFFFFFFFF, i >> 34, site, step, seed & 0xFFFFFFFF, seed >> 32)[i & 3]
    return int(w)


def draw(seed, epoch, utt, kind, j):
    return word(seed, 0x4D000000 | kind, epoch, utt << 32 | j)


def below(w, n):
    return (w * n) >> 32


def uniform(w):
    return np.float32(w >> 8) * np.float32(2.0 ** -24)


def plan(seed, epoch, utt, pos, length, T, n_items, other_len):
    """other_len: function from a dataset position to that sample's length."""
    length = min(length, T)
    n_spans = -(-length * 5 // 100)  # ceil(length * 0.05), exactly
    action = [OFF] * T
    for j in range(n_spans):
        s = below(draw(seed, epoch, utt, START, j), length)
        for t in range(s, min(s + SPAN, T)):  # clipped only at T: spans may reach into padding
            action[t] = ZERO
    for t in range(T):
        if action[t] != OFF:
            u = uniform(draw(seed, epoch, utt, ACTION, t))
            action[t] = ZERO if u < np.float32(0.8) else RANDOM if u < np.float32(0.9) else KEEP
    frame_pos = pos
    if n_items > 1:
        k = below(draw(seed, epoch, utt, ITEM, 0), n_items - 1)
        frame_pos = k + (k >= pos)
    ol = min(other_len(frame_pos), T)
    frame_step = below(draw(seed, epoch, utt, STEP, 0), ol) if ol > 0 else -1
    return dict(n_spans=n_spans, n_masked=sum(a != OFF for a in action), action=action, frame_pos=frame_pos,
                frame_step=frame_step)


def other_len(pos):
    return pos * 7919 % 131


def main():
    cases, out = sys.argv[1], sys.argv[2]
    with open(cases) as f, open(out, "w") as g:
        for line in f:
            if not line.strip():
                continue
            seed, epoch, utt, pos, length, T, n_items = (int(x) for x in line.split())
            p = plan(seed, epoch, utt, pos, length, T, n_items, other_len)
            g.write("%d %d %d %d %s\n" % (p["n_spans"], p["n_masked"], p["frame_pos"], p["frame_step"],
                                          "".join(str(a) for a in p["action"])))


if __name__ == "__main__":
    main()
