"""Fine-tuning throughput of the PyTorch twin: the peer of build/bench_finetune in benchmarks/run.sh.

usage: bench_finetune_torch.py [--config base] [--batch 32] [--seq 20] [--steps N] [--threads K] [--classes 6]
                               [--optim bertadam|adamw] [--dropout torch|philox]

One update as avt's trainer does it with OBJECTIVE_CE (train/objective.h), the whole model trained: the twin
(tests/reference/avt_ref.py) in training mode runs extract_feature, the head FineTuneHead(2d, 16, classes) reads
h_av at each clip's last valid step, cross-entropy, backward, clip_grad_norm_(1.0) and BertAdam
(tests/reference/bertadam_ref.py, the spec's hyper-parameters, warmup_linear schedule), or torch.optim.AdamW with
--optim adamw. Each update takes a fresh batch of random clips of random lengths (uniform in [ceil(T/2), T] steps),
right-padded with zeros to --seq T, and random labels; the batch is made outside the timed region. After one warm-up
update, --steps updates are timed with torch.set_num_threads(K). Prints one line on stdout:
    torch_finetune_ms <median ms> <clips per second at the median>

--dropout torch (default) uses F.dropout with the spec's probabilities (the masks differ from avt's Philox masks,
which does not matter for timing); philox uses the bit-exact numpy masks (slow: mask generation then dominates).
"""
import argparse
import os
import statistics
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default="base", choices=("tiny", "base", "large"))
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--seq", type=int, default=20)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--classes", type=int, default=6)
    ap.add_argument("--optim", choices=("bertadam", "adamw"), default="bertadam")
    ap.add_argument("--dropout", choices=("torch", "philox"), default="torch")
    ap.add_argument("--verbose", action="store_true", help="per-update times on stderr")
    a = ap.parse_args()
    if min(a.batch, a.seq, a.steps, a.threads) < 1 or a.classes < 2:
        ap.error("--batch, --seq, --steps and --threads must be >= 1, --classes >= 2")
    return a


ARGS = parse_args() if __name__ == "__main__" else None
if ARGS is not None:  # pin every thread pool before torch loads its BLAS
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(ARGS.threads)

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

sys.path.insert(0, os.path.join(REPO, "tests", "reference"))
import avt_ref  # noqa: E402
from bertadam_ref import BertAdam  # noqa: E402


def make_batch(B, T, n_class, rng):
    """x_a (B, T, 512), x_v (B, T, 17) zero past each clip's length, t_last (B,), labels (B,)."""
    lengths = rng.integers((T + 1) // 2, T + 1, size=B)
    x_a = rng.uniform(-1, 1, (B, T, 512)).astype(np.float32)
    x_v = (5 * rng.random((B, T, 17))).astype(np.float32)
    for b, n in enumerate(lengths):
        x_a[b, n:] = 0
        x_v[b, n:] = 0
    t = torch.from_numpy
    return t(x_a), t(x_v), t(lengths - 1), t(rng.integers(0, n_class, size=B))


def main(a):
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    model = avt_ref.build(a.config)
    model.dropout_impl = a.dropout
    head = avt_ref.FineTuneHead(2 * model.d, a.classes)
    model.train()
    head.train()
    params = list(model.parameters()) + list(head.parameters())
    if a.optim == "bertadam":
        opt = BertAdam(params, lr=5e-5, warmup=0.1, t_total=1000, b1=0.9, b2=0.999, e=1e-6, weight_decay=0.01,
                       max_grad_norm=1.0)
    else:
        opt = torch.optim.AdamW(params, lr=5e-5, betas=(0.9, 0.999), eps=1e-6, weight_decay=0.01)
    rng = np.random.default_rng(0)
    rows = torch.arange(a.batch)
    times = []
    for step in range(a.steps + 1):
        x_a, x_v, t_last, labels = make_batch(a.batch, a.seq, a.classes, rng)
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        h, _ = model.extract_feature(x_a, x_v, seed=1234, step=step)  # (T, B, 2d)
        loss = F.cross_entropy(head(h[t_last, rows]), labels)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        loss = loss.item()
        if step:  # the first update warms up
            times.append((time.perf_counter() - t0) * 1e3)
            if a.verbose:
                print("update %d: %.1f ms loss %.4f" % (step, times[-1], loss), file=sys.stderr)
    ms = statistics.median(times)
    print("torch_finetune_ms %.1f %.2f" % (ms, a.batch * 1e3 / ms))


if __name__ == "__main__":
    main(ARGS)
