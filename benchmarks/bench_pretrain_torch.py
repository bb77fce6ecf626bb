"""The PyTorch twin's pretraining loop on a corpus, timed: the peer of `avt pretrain` in benchmarks/run.sh.

usage: bench_pretrain_torch.py METADATA.csv [--config base] [--batch 64] [--seq 100] [--steps N] [--threads K]

As the authors' code does: every utterance of the metadata (audio CSV, OpenFace CSV) is loaded into RAM as float16
first (not timed); then each step takes the next batch of a shuffled order, truncates and right-pads it to --seq
steps, masks it as docs/model.md §3.2 (numpy), runs the twin (tests/reference/avt_ref.py, torch dropout), takes the L1
loss on the masked steps of both modalities, backward, clip_grad_norm_(1.0), and BertAdam
(tests/reference/bertadam_ref.py) with the warmup_linear schedule. After one warm-up step, --steps steps are timed.
Prints one line:  torch_step_ms <median ms> <utterances per second at the median>
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
    ap.add_argument("metadata")
    ap.add_argument("--config", default="base", choices=("tiny", "base", "large"))
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--seq", type=int, default=100)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    a = ap.parse_args()
    if min(a.batch, a.seq, a.steps, a.threads) < 1:
        ap.error("--batch, --seq, --steps and --threads must be >= 1")
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


def load_corpus(metadata):
    """[(audio (T, 512) f16, video (T, 17) f16)] for every row of the metadata (paths relative to its folder)."""
    root = os.path.dirname(os.path.abspath(metadata))
    data = []
    with open(metadata) as f:
        for line in f:
            cols = line.strip().split(",")
            if not line.strip() or line.startswith("#") or "." not in cols[0]:
                continue  # blank, comment or header
            audio = np.loadtxt(os.path.join(root, cols[0]), delimiter=",", ndmin=2, dtype=np.float32)
            video = np.loadtxt(os.path.join(root, cols[1]), delimiter=",", skiprows=1, ndmin=2,
                               dtype=np.float32)[::6, -35:-18]
            T = min(len(audio), len(video))
            data.append((audio[:T].astype(np.float16), video[:T].astype(np.float16)))
    return data


def masked_batch(data, idx, T, rng):
    """Inputs, targets and the mask of one batch (docs/model.md §3.2)."""
    B = len(idx)
    tgt_a = np.zeros((B, T, 512), np.float32)
    tgt_v = np.zeros((B, T, 17), np.float32)
    mask = np.zeros((B, T), bool)
    for b, i in enumerate(idx):
        a, v = data[i]
        n = min(len(a), T)
        tgt_a[b, :n], tgt_v[b, :n] = a[:n], v[:n]
    x_a, x_v = tgt_a.copy(), tgt_v.copy()
    for b, i in enumerate(idx):
        n = min(len(data[i][0]), T)
        other = int(rng.integers(len(data)))
        fa, fv = data[other]
        ft = int(rng.integers(len(fa)))
        for s in rng.integers(0, n, size=math.ceil(n * 0.05)):
            for t in range(s, min(s + 3, T)):
                mask[b, t] = True
                u = rng.random()
                if u < 0.8:
                    x_a[b, t], x_v[b, t] = 0, 0
                elif u < 0.9:
                    x_a[b, t], x_v[b, t] = fa[ft], fv[ft]
    t = torch.from_numpy
    return t(x_a), t(x_v), t(tgt_a), t(tgt_v), t(mask)


def main(a):
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    data = load_corpus(a.metadata)
    if len(data) < a.batch:
        sys.exit("bench_pretrain_torch.py: %d utterances, fewer than one batch of %d" % (len(data), a.batch))
    model = avt_ref.build(a.config)
    model.dropout_impl = "torch"
    model.train()
    steps_per_epoch = len(data) // a.batch
    opt = BertAdam(model.parameters(), lr=1e-4, warmup=0.1, t_total=40 * steps_per_epoch, b1=0.9, b2=0.999,
                   e=1e-6, weight_decay=0.01, max_grad_norm=1.0)
    rng = np.random.default_rng(0)
    order = rng.permutation(len(data))
    times = []
    for step in range(a.steps + 1):
        t0 = time.perf_counter()
        k = step % steps_per_epoch
        if k == 0 and step:
            order = rng.permutation(len(data))
        x_a, x_v, tgt_a, tgt_v, mask = masked_batch(data, order[k * a.batch:(k + 1) * a.batch], a.seq, rng)
        opt.zero_grad(set_to_none=True)
        out_a, out_v = model(x_a, x_v, seed=1, step=step)
        loss = F.l1_loss(out_a[mask], tgt_a[mask]) + F.l1_loss(out_v[mask], tgt_v[mask])
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if step:  # the first step warms up
            times.append((time.perf_counter() - t0) * 1e3)
    ms = statistics.median(times)
    print("torch_step_ms %.1f %.2f" % (ms, a.batch * 1e3 / ms))


if __name__ == "__main__":
    main(ARGS)
