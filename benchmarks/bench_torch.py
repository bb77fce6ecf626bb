"""Time training steps of the PyTorch twin (tests/reference/avt_ref.py) on the CPU.

usage: bench_torch.py [--config base] [--batch 64] [--steps N] [--threads K] [--seq 100]
                      [--dropout torch|philox] [--warmup 1] [--verbose]

One step = forward of the pretraining objective (masked L1 on both heads, docs/model.md §3.3) + backward, dropout on, no
optimizer. Inputs: random features right-padded per sample, masked once with the spec's 5 % x 3-step spans
(80/10/10); the same batch is reused every step. After --warmup steps, N steps are timed with
torch.set_num_threads(K). Prints one line on stdout:  torch_step_ms <median> <mean>

--dropout torch (default) uses F.dropout with the spec's probabilities: the numbers differ from the C engine's
Philox masks, which does not matter for timing. --dropout philox uses the bit-exact numpy Philox masks (slow:
mask generation in numpy then dominates).
"""
import argparse
import math
import os
import statistics
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default="base", choices=("tiny", "base", "large"))
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--seq", type=int, default=100)
    ap.add_argument("--dropout", choices=("torch", "philox"), default="torch")
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--verbose", action="store_true", help="per-step times on stderr")
    a = ap.parse_args()
    if a.steps < 1 or a.batch < 1 or a.seq < 1 or a.threads < 1 or a.warmup < 0:
        ap.error("--steps, --batch, --seq and --threads must be >= 1, --warmup >= 0")
    return a


ARGS = parse_args() if __name__ == "__main__" else None
if ARGS is not None:
    # Debian's torch calls a system BLAS (OpenBLAS) that sizes its own thread pool when loaded: pin it, and
    # OpenMP, to --threads before torch is imported so that K threads means K threads everywhere.
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(ARGS.threads)

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

sys.path.insert(0, os.path.join(REPO, "tests", "reference"))
import avt_ref  # noqa: E402


def make_batch(B, T, seed=0):
    rng = np.random.default_rng(seed)
    tgt_a = rng.standard_normal((B, T, 512)).astype(np.float32)
    tgt_v = (rng.random((B, T, 17)) * 5).astype(np.float32)
    x_a, x_v = tgt_a.copy(), tgt_v.copy()
    mask = np.zeros((B, T), dtype=bool)
    for b in range(B):
        n = int(rng.integers(T // 2, T + 1))  # valid length
        tgt_a[b, n:] = 0
        tgt_v[b, n:] = 0
        x_a[b, n:] = 0
        x_v[b, n:] = 0
        rb, rt = int(rng.integers(B)), int(rng.integers(n))
        for s in rng.integers(0, n, size=math.ceil(n * 0.05)):
            for t in range(s, min(s + 3, T)):
                mask[b, t] = True
                u = rng.random()
                if u < 0.8:
                    x_a[b, t] = 0
                    x_v[b, t] = 0
                elif u < 0.9:
                    x_a[b, t] = tgt_a[rb, rt]
                    x_v[b, t] = tgt_v[rb, rt]
    t = torch.from_numpy
    return t(x_a), t(x_v), t(tgt_a), t(tgt_v), t(mask)


def main(a):
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    model = avt_ref.build(a.config)
    model.dropout_impl = a.dropout
    model.train()
    x_a, x_v, tgt_a, tgt_v, mask = make_batch(a.batch, a.seq)

    def step(i):
        for p in model.parameters():
            p.grad = None
        out_a, out_v = model(x_a, x_v, seed=1234, step=i)
        loss = F.l1_loss(out_a[mask], tgt_a[mask]) + F.l1_loss(out_v[mask], tgt_v[mask])
        loss.backward()
        return loss.item()

    for i in range(a.warmup):
        step(i)
    times = []
    for i in range(a.steps):
        t0 = time.perf_counter()
        loss = step(a.warmup + i)
        times.append((time.perf_counter() - t0) * 1e3)
        if a.verbose:
            print("step %d: %.1f ms loss %.4f" % (i, times[-1], loss), file=sys.stderr)
    print("torch_step_ms %.3f %.3f" % (statistics.median(times), statistics.fmean(times)))


if __name__ == "__main__":
    main(ARGS)
