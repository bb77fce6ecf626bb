"""Write the golden files the C engine is tested against (PyTorch twin, tests/reference/avt_ref.py).

usage: make_golden.py --out DIR [--configs tiny,base]

Per config CFG:
  DIR/CFG.params.safetensors   full state_dict (buffers included), LayerNorms perturbed; metadata embed_size,
                               n_code, n_heads
  DIR/CFG.golden.safetensors   F32 tensors; metadata seed, step, ft_step, n_class (+ config, B, T, ft_inputs)
    x_a (B,T,512), x_v (B,T,17)          model inputs (pretraining-masked)
    target_a, target_v                    originals (padding rows zero)
    mask (B,T)                            1 = masked step (loss rows)
    out_a, out_v, loss (1,)               training mode, seed/step from metadata
    grad.<key>                            every trainable parameter (zeros for the unused proj1 / proj2)
    eval.h_av (B,T,2d) batch-first, eval.h_last (B,2d) (last step), eval.out_a, eval.out_v   eval mode
    head.0.weight, head.0.bias, head.2.weight, head.2.bias   fine-tuning head Linear(2d,16)-ReLU-Linear(16,n_class)
    ft.labels (B,) as floats, ft.logits (B,n_class), ft.loss (1,)  training mode, seed, step = ft_step,
                               h_last = extract_feature(x_a, x_v)[1] (same inputs x_a, x_v), cross-entropy mean
    ftgrad.<key>                          every trainable parameter of the model and of the head (head.*)
"""
import argparse
import os
import sys
import time

# One thread everywhere (OpenMP and the system BLAS torch calls): the tensors are small, and the golden values then
# do not depend on the machine's core count or load.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(REPO, "tools"))
import avt_ref  # noqa: E402
from st_io import write_safetensors  # noqa: E402

SEED, STEP, FT_STEP, N_CLASS = 1234, 7, 8, 6

# Hand-made pretraining masks (docs/model.md §3.2), one entry per sample:
#   pad:      number of right zero-padding steps (both modalities)
#   spans:    list of (start, outcomes); outcomes per covered step: "z" zero (80 %), "r" replaced by the random frame
#             (10 %), "k" kept unchanged (10 %); a span may reach into padding; spans are clipped at T
#   rand_src: (sample, step) of the random frame for "r" (original features, both modalities, same step)
#   audio_zero: steps (not masked) whose audio row is all zero while the video row is not
CASES = {
    "tiny": dict(B=3, T=10, init_seed=1001, data_seed=2001, labels=[1, 4, 5], samples=[
        dict(pad=3, spans=[(1, "zzz"), (5, "zzz")]),                   # step 7 is padding inside a span
        dict(pad=0, spans=[(2, "zrz"), (8, "zz")], rand_src=(2, 6)),   # span clipped at T
        dict(pad=0, spans=[(0, "zkz")], audio_zero=[8]),
    ]),
    "base": dict(B=2, T=12, init_seed=1002, data_seed=2002, labels=[3, 0], samples=[
        dict(pad=3, spans=[(2, "zzz"), (8, "zzz")]),                   # steps 9, 10 are padding inside a span
        dict(pad=0, spans=[(1, "zrk"), (6, "zzz")], rand_src=(0, 6), audio_zero=[10]),
    ]),
}


def make_inputs(case, gen):
    B, T = case["B"], case["T"]
    tgt_a = torch.randn(B, T, 512, generator=gen)
    tgt_v = torch.rand(B, T, 17, generator=gen) * 5
    for b, s in enumerate(case["samples"]):
        if s.get("pad"):
            tgt_a[b, T - s["pad"]:] = 0
            tgt_v[b, T - s["pad"]:] = 0
        for t in s.get("audio_zero", []):
            tgt_a[b, t] = 0
    x_a, x_v = tgt_a.clone(), tgt_v.clone()
    mask = torch.zeros(B, T)
    for b, s in enumerate(case["samples"]):
        for start, outcomes in s["spans"]:
            for j, o in enumerate(outcomes):
                t = start + j
                if t >= T:
                    break
                mask[b, t] = 1
                if o == "z":
                    x_a[b, t] = 0
                    x_v[b, t] = 0
                elif o == "r":
                    sb, st = s["rand_src"]
                    x_a[b, t] = tgt_a[sb, st]
                    x_v[b, t] = tgt_v[sb, st]
                else:
                    assert o == "k"
    return x_a, x_v, tgt_a, tgt_v, mask


def perturb_layernorms(model, gen):
    with torch.no_grad():
        for name, mod in model.named_modules():
            if isinstance(mod, torch.nn.LayerNorm):
                mod.weight.copy_(1 + 0.1 * torch.randn(mod.weight.shape, generator=gen))
                mod.bias.copy_(0.1 * torch.randn(mod.bias.shape, generator=gen))


def grads(named_params, prefix):
    out = {}
    for k, p in named_params:
        g = p.grad if p.grad is not None else torch.zeros_like(p)
        out[prefix + k] = g.detach().numpy()
    return out


def run_config(cfg, out_dir):
    t0 = time.time()
    case = CASES[cfg]
    c = avt_ref.CONFIGS[cfg]
    torch.manual_seed(case["init_seed"])
    model = avt_ref.build(cfg)
    avt_ref.check_state_dict_layout(model)
    gen = torch.Generator().manual_seed(case["data_seed"])
    perturb_layernorms(model, gen)
    x_a, x_v, tgt_a, tgt_v, mask = make_inputs(case, gen)
    B, T, d2 = case["B"], case["T"], 2 * c["embed_size"]

    sd = {k: v.detach().numpy() for k, v in model.state_dict().items()}
    write_safetensors(os.path.join(out_dir, cfg + ".params.safetensors"), sd,
                      {"embed_size": c["embed_size"], "n_code": c["n_code"], "n_heads": c["n_heads"]})

    gold = {"x_a": x_a, "x_v": x_v, "target_a": tgt_a, "target_v": tgt_v, "mask": mask}

    # pretraining objective, training mode
    model.train()
    model.zero_grad(set_to_none=True)
    out_a, out_v = model(x_a, x_v, SEED, STEP)
    m = mask.bool()
    loss = F.l1_loss(out_a[m], tgt_a[m]) + F.l1_loss(out_v[m], tgt_v[m])
    loss.backward()
    gold.update({"out_a": out_a, "out_v": out_v, "loss": loss.reshape(1)})
    gold.update(grads(model.named_parameters(), "grad."))

    # eval mode
    model.eval()
    with torch.no_grad():
        h_av, h_last = model.extract_feature(x_a, x_v)
        e_a, e_v = model(x_a, x_v)
    assert torch.equal(h_last, h_av[-1])
    gold.update({"eval.h_av": h_av.permute(1, 0, 2), "eval.h_last": h_last, "eval.out_a": e_a, "eval.out_v": e_v})

    # fine-tuning: head on the last step, training mode, full fine-tuning
    torch.manual_seed(case["init_seed"] + 100)
    head = avt_ref.FineTuneHead(d2, N_CLASS)
    for k, v in head.state_dict().items():
        gold["head." + k] = v
    labels = torch.tensor(case["labels"], dtype=torch.long)
    model.train()
    head.train()
    model.zero_grad(set_to_none=True)
    _, h_last_t = model.extract_feature(x_a, x_v, SEED, FT_STEP)
    logits = head(h_last_t)
    ft_loss = F.cross_entropy(logits, labels)
    ft_loss.backward()
    gold.update({"ft.labels": labels.float(), "ft.logits": logits, "ft.loss": ft_loss.reshape(1)})
    gold.update(grads(model.named_parameters(), "ftgrad."))
    gold.update(grads(head.named_parameters(), "ftgrad.head."))

    gold = {k: (v.detach().numpy() if torch.is_tensor(v) else v) for k, v in gold.items()}
    for k, v in gold.items():
        assert np.all(np.isfinite(v)), k
    path = os.path.join(out_dir, cfg + ".golden.safetensors")
    write_safetensors(path, gold, {"seed": SEED, "step": STEP, "ft_step": FT_STEP, "n_class": N_CLASS,
                                   "config": cfg, "B": B, "T": T, "ft_inputs": "x_a,x_v"})
    n_grad = sum(1 for k in gold if k.startswith("grad."))
    print("%s: d=%d L=%d H=%d B=%d T=%d params=%d masked=%d loss=%.6f ft.loss=%.6f grads=%d -> %s.{params,golden}"
          ".safetensors (%.1f s)" % (cfg, c["embed_size"], c["n_code"], c["n_heads"], B, T, avt_ref.n_trainable(model),
                                     int(mask.sum()), loss.item(), ft_loss.item(), n_grad, cfg, time.time() - t0))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True)
    ap.add_argument("--configs", default="tiny,base")
    a = ap.parse_args(argv)
    torch.set_num_threads(1)
    os.makedirs(a.out, exist_ok=True)
    for cfg in a.configs.split(","):
        cfg = cfg.strip()
        if cfg not in CASES:
            ap.error("unknown config %r (have %s)" % (cfg, ",".join(CASES)))
        run_config(cfg, a.out)


if __name__ == "__main__":
    main()
