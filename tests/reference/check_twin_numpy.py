"""Independent cross-check of the golden files: a batch-first float64 numpy forward written straight from the spec
(loops over heads, explicit PE table, Philox masks drawn directly in the canonical batch-first layout), compared with
the twin's training-mode out_a / out_v / loss and eval-mode h_av / out_a / out_v / h_last, and the ft logits.

usage: check_twin_numpy.py DIR [--configs tiny,base]      (DIR as written by make_golden.py)
"""
import argparse
import math
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(HERE)), "tools"))
import philox  # noqa: E402
from st_io import read_safetensors  # noqa: E402


class Drop:
    def __init__(self, training, seed, step):
        self.training, self.seed, self.step = training, seed, step

    def __call__(self, x, p, enc, layer, k):
        if not self.training or p <= 0:
            return x
        site = (enc << 16) | (layer << 8) | k
        return x * philox.dropout_scale(self.seed, site, self.step, p, x.shape).astype(np.float64)


def ln(x, w, b):
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + 1e-5) * w + b


def pe_rows(T, D):
    half = D // 2
    w = np.exp(np.arange(half) * -(math.log(10000) / (half - 1)))
    pos = np.arange(T + 1)[:, None] * w[None, :]
    tab = np.concatenate([np.sin(pos), np.cos(pos)], 1)
    tab[0] = 0
    return tab


def embed(x_in, drop, enc, k):  # x_in (B, T, D)
    B, T, D = x_in.shape
    pos = np.where(x_in[:, :, 0] == 0.0, 0, np.arange(1, T + 1)[None, :])
    x = math.sqrt(D) * x_in + pe_rows(T, D)[pos]
    return drop(x, 0.25, enc, 0xFF, k)


def mha(P, pre, q_in, k_in, v_in, H, drop, p_attn, enc, li):
    B, Tq, D = q_in.shape
    Tk = k_in.shape[1]
    W, bias = P[pre + "in_proj_weight"], P[pre + "in_proj_bias"]
    q = (q_in @ W[:D].T + bias[:D]) * (D // H) ** -0.5
    k = k_in @ W[D:2 * D].T + bias[D:2 * D]
    v = v_in @ W[2 * D:].T + bias[2 * D:]
    hd = D // H
    att = np.zeros((B, H, Tq, Tk))
    for h in range(H):
        s = np.einsum("bqc,bkc->bqk", q[..., h * hd:(h + 1) * hd], k[..., h * hd:(h + 1) * hd])
        for i in range(Tq):
            s[:, i, i + 1 + abs(Tk - Tq):] = -np.inf
        s = np.exp(s - s.max(-1, keepdims=True))
        att[:, h] = s / s.sum(-1, keepdims=True)
    att = drop(att, p_attn, enc, li, 0)
    o = np.concatenate([att[:, h] @ v[..., h * hd:(h + 1) * hd] for h in range(H)], -1)
    return o @ P[pre + "out_proj.weight"].T + P[pre + "out_proj.bias"]


def encoder(P, E, enc, L, H, x_in, kv_in, drop, p_attn):
    x = embed(x_in, drop, enc, 0)
    if kv_in is not None:
        xk, xv = embed(kv_in, drop, enc, 1), embed(kv_in, drop, enc, 2)
    for i in range(L):
        pre = "%s.layers.%d." % (E, i)
        w0, b0 = P[pre + "layer_norms.0.weight"], P[pre + "layer_norms.0.bias"]
        r, x = x, ln(x, w0, b0)
        k = v = x
        if kv_in is not None:
            k, v = ln(xk, w0, b0), ln(xv, w0, b0)
        x = r + drop(mha(P, pre + "self_attn.", x, k, v, H, drop, p_attn, enc, i), 0.1, enc, i, 1)
        r, x = x, ln(x, P[pre + "layer_norms.1.weight"], P[pre + "layer_norms.1.bias"])
        x = drop(np.maximum(x @ P[pre + "fc1.weight"].T + P[pre + "fc1.bias"], 0), 0.1, enc, i, 2)
        x = r + drop(x @ P[pre + "fc2.weight"].T + P[pre + "fc2.bias"], 0.1, enc, i, 3)
    return ln(x, P[E + ".layer_norm.weight"], P[E + ".layer_norm.bias"])


def forward(P, L, H, x_a, x_v, drop):
    pa = x_a @ P["proj_a.weight"][:, :, 0].T
    pv = x_v @ P["proj_v.weight"][:, :, 0].T
    a_v = encoder(P, "acoustic_cross_visual", 0, L, H, pa, pv, drop, 0.0)
    v_a = encoder(P, "visual_cross_acoustic", 1, L, H, pv, pa, drop, 0.0)
    h = encoder(P, "trans_mem", 2, L, H, np.concatenate([v_a, a_v], -1), None, drop, 0.1)

    def lin(x, n):
        return x @ P[n + ".weight"].T + P[n + ".bias"]
    h_a = h + lin(np.maximum(lin(h, "proj1_a"), 0), "proj2_a")
    h_v = h + lin(np.maximum(lin(h, "proj1_v"), 0), "proj2_v")
    return h, lin(h_a, "out_layer_a"), lin(h_v, "out_layer_v")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("--configs", default="tiny,base")
    a = ap.parse_args()
    ok = True
    for cfg in a.configs.split(","):
        P, pm = read_safetensors(os.path.join(a.dir, cfg + ".params.safetensors"))
        G, gm = read_safetensors(os.path.join(a.dir, cfg + ".golden.safetensors"))
        P = {k: v.astype(np.float64) for k, v in P.items()}
        L, H = int(pm["n_code"]), int(pm["n_heads"])
        seed, step, ft_step = int(gm["seed"]), int(gm["step"]), int(gm["ft_step"])
        x_a, x_v = G["x_a"].astype(np.float64), G["x_v"].astype(np.float64)
        m = G["mask"] > 0
        errs = {}
        _, oa, ov = forward(P, L, H, x_a, x_v, Drop(True, seed, step))
        loss = np.abs(oa[m] - G["target_a"][m]).mean() + np.abs(ov[m] - G["target_v"][m]).mean()
        errs["out_a"] = np.abs(oa - G["out_a"]).max()
        errs["out_v"] = np.abs(ov - G["out_v"]).max()
        errs["loss"] = abs(loss - G["loss"][0])
        h, oa, ov = forward(P, L, H, x_a, x_v, Drop(False, 0, 0))
        errs["eval.h_av"] = np.abs(h - G["eval.h_av"]).max()
        errs["eval.h_last"] = np.abs(h[:, -1] - G["eval.h_last"]).max()
        errs["eval.out_a"] = np.abs(oa - G["eval.out_a"]).max()
        errs["eval.out_v"] = np.abs(ov - G["eval.out_v"]).max()
        h, _, _ = forward(P, L, H, x_a, x_v, Drop(True, seed, ft_step))
        z = np.maximum(h[:, -1] @ G["head.0.weight"].T + G["head.0.bias"], 0) @ G["head.2.weight"].T + G["head.2.bias"]
        errs["ft.logits"] = np.abs(z - G["ft.logits"]).max()
        lab = G["ft.labels"].astype(int)
        lse = np.log(np.exp(z - z.max(1, keepdims=True)).sum(1)) + z.max(1)
        errs["ft.loss"] = abs((lse - z[np.arange(len(lab)), lab]).mean() - G["ft.loss"][0])
        bad = {k: e for k, e in errs.items() if not e <= 1e-4}
        ok &= not bad
        print("%s: max abs err vs fp64 numpy: %s -> %s" % (
            cfg, " ".join("%s %.1e" % kv for kv in errs.items()), "ok" if not bad else "FAIL %s" % bad))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
