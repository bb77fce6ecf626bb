"""Write the golden files the C engine is tested against (PyTorch twin, tests/reference/avt_ref.py).

usage: make_golden.py --out DIR [--configs tiny,base]

Per config CFG:
  DIR/CFG.params.safetensors   full state_dict (buffers included), LayerNorms perturbed; metadata embed_size,
                               n_code, n_heads
  DIR/CFG.golden.safetensors   F32 tensors; metadata seed, step, ft_step, obj_step, n_class, n_reg (+ config, B, T,
                               ft_inputs, obj_inputs)
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
  Fine-tuning through the objectives (train/objective.h): the clean right-padded clips target_a, target_v as inputs
  (metadata obj_inputs), each clip pooled at its last valid step, training mode, seed, step = obj_step (metadata):
  ft_step, or the first step after it whose forward keeps every ReLU input the losses read clear of 0 (RELU_MARGIN);
  the padded steps' inputs do not change any of these values (the causal mask; asserted here on the twin):
    obj.t_last (B,) as floats             T - 1 - pad of each clip
    obj.labels (B,) as floats             classification labels (the case's labels)
    ce.logits (B,n_class), ce.loss (1,)   the head.* head, cross-entropy mean
    cegrad.<key>                          every trainable parameter of the model and of the head (head.*)
    reg.head.0.weight, reg.head.0.bias, reg.head.2.weight, reg.head.2.bias   a second head, n_out = N_REG (3)
    reg.y (B,N_REG)                       regression targets
    reg.out (B,N_REG)                     the regression head's outputs (the same forward for both losses)
    mse.loss (1,)                         mean over B x N_REG of (out - y)^2
    msegrad.<key>                         every trainable parameter, the regression head as head.*
    ccc.loss (1,)                         1 - mean over the columns of CCC = 2 cov / (var_x + var_y + (m_x - m_y)^2),
                                          population moments over the B rows
    cccgrad.<key>                         every trainable parameter, the regression head as head.*
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

SEED, STEP, FT_STEP, N_CLASS, N_REG = 1234, 7, 8, 6, 3
# The objective keys' forward keeps every ReLU input the losses read at least this far from 0, relative to its layer's
# largest: a closer one (a tie) would let fp32 rounding order decide its gradient, in the C engine as in the twin.
RELU_MARGIN = 2e-6

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


def ccc_loss(x, y):
    """1 - CCC averaged over the columns of x, y (N, C); population moments over the N rows (docs/model.md §5.2)."""
    mx, my = x.mean(0), y.mean(0)
    vx, vy = ((x - mx) ** 2).mean(0), ((y - my) ** 2).mean(0)
    cov = ((x - mx) * (y - my)).mean(0)
    return 1 - (2 * cov / (vx + vy + (mx - my) ** 2)).mean()


# fp64 numpy versions of the three losses: a check of the fp32 torch values written
def ce_f64(z, labels):
    lse = np.log(np.exp(z - z.max(1, keepdims=True)).sum(1)) + z.max(1)
    return float((lse - z[np.arange(len(labels)), labels]).mean())


def mse_f64(x, y):
    return float(((x - y) ** 2).mean())


def ccc_f64(x, y):
    mx, my = x.mean(0), y.mean(0)
    cov = ((x - mx) * (y - my)).mean(0)
    return float(1 - (2 * cov / (x.var(0) + y.var(0) + (mx - my) ** 2)).mean())


def relu_margin(model, heads, x_a, x_v, t_last, step):
    """The smallest |ReLU input| relative to its layer's largest, over every ReLU the fine-tuning losses read (the FFN
    of every encoder layer on each clip's steps up to t_last, the heads' hidden layer), training mode at `step`."""
    pre = []
    hooks = [layer.fc1.register_forward_hook(lambda mod, inp, out: pre.append(out.detach()))
             for enc in (model.acoustic_cross_visual, model.visual_cross_acoustic, model.trans_mem)
             for layer in enc.layers]
    try:
        with torch.no_grad():
            h, _ = model.extract_feature(x_a, x_v, SEED, step)
            h_last = h[t_last, torch.arange(len(t_last))]
            heads_pre = [hd[0](h_last) for hd in heads]
    finally:
        for hk in hooks:
            hk.remove()
    worst = float("inf")
    for v in pre:  # (T, B, 4D)
        read = torch.cat([v[:int(t) + 1, b].flatten() for b, t in enumerate(t_last)])
        worst = min(worst, (read.abs().min() / v.abs().max()).item())
    for v in heads_pre:
        worst = min(worst, (v.abs().min() / v.abs().max()).item())
    return worst


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

    # fine-tuning through the objectives: the clean right-padded clips, each pooled at its last valid step
    t_last = torch.tensor([T - 1 - s.get("pad", 0) for s in case["samples"]], dtype=torch.long)
    assert len(set(t_last.tolist())) > 1, "the clips must differ in length"
    torch.manual_seed(case["init_seed"] + 200)
    reg_head = avt_ref.FineTuneHead(d2, N_REG)
    for k, v in reg_head.state_dict().items():
        gold["reg.head." + k] = v
    y = torch.randn(B, N_REG, generator=torch.Generator().manual_seed(case["data_seed"] + 1))
    gold.update({"obj.t_last": t_last.float(), "obj.labels": labels.float(), "reg.y": y})
    # the same clips with random values on the padded steps: the pooled outputs must not move
    pgen = torch.Generator().manual_seed(case["data_seed"] + 2)
    pad_a, pad_v = tgt_a.clone(), tgt_v.clone()
    for b in range(B):
        n = T - 1 - int(t_last[b])
        pad_a[b, T - n:] = torch.randn(n, 512, generator=pgen)
        pad_v[b, T - n:] = torch.rand(n, 17, generator=pgen) * 5

    # the dropout step: ft_step, or the next one whose ReLU inputs all keep clear of 0 (see relu_margin)
    obj_step = next((s for s in range(FT_STEP, FT_STEP + 100)
                     if relu_margin(model, (head, reg_head), tgt_a, tgt_v, t_last, s) >= RELU_MARGIN), None)
    assert obj_step is not None, "no dropout step keeps the ReLU inputs clear of 0"

    def pooled(hd, xa, xv):
        h, _ = model.extract_feature(xa, xv, SEED, obj_step)  # (T, B, 2d)
        return hd(h[t_last, torch.arange(B)])

    objectives = (("ce", head, lambda z: F.cross_entropy(z, labels), ce_f64),
                  ("mse", reg_head, lambda z: F.mse_loss(z, y), mse_f64),
                  ("ccc", reg_head, lambda z: ccc_loss(z, y), ccc_f64))
    obj_loss = {}
    for name, hd, loss_fn, loss_f64 in objectives:
        model.zero_grad(set_to_none=True)
        hd.zero_grad(set_to_none=True)
        out = pooled(hd, tgt_a, tgt_v)
        o_loss = loss_fn(out)
        o_loss.backward()
        target = labels.numpy() if name == "ce" else y.double().numpy()
        ref = loss_f64(out.detach().double().numpy(), target)
        assert abs(o_loss.item() - ref) <= 1e-5 * max(1.0, abs(ref)), (name, o_loss.item(), ref)
        with torch.no_grad():
            out_p = pooled(hd, pad_a, pad_v)
            assert torch.allclose(out_p, out, rtol=0, atol=1e-6), (name, "padding changed the outputs")
        out_key = "ce.logits" if name == "ce" else "reg.out"
        if out_key in gold:
            assert torch.equal(gold[out_key], out), out_key
        gold[out_key] = out
        gold[name + ".loss"] = o_loss.reshape(1)
        gold.update(grads(model.named_parameters(), name + "grad."))
        gold.update(grads(hd.named_parameters(), name + "grad.head."))
        obj_loss[name] = o_loss.item()

    gold = {k: (v.detach().numpy() if torch.is_tensor(v) else v) for k, v in gold.items()}
    for k, v in gold.items():
        assert np.all(np.isfinite(v)), k
    path = os.path.join(out_dir, cfg + ".golden.safetensors")
    write_safetensors(path, gold, {"seed": SEED, "step": STEP, "ft_step": FT_STEP, "n_class": N_CLASS,
                                   "config": cfg, "B": B, "T": T, "ft_inputs": "x_a,x_v",
                                   "obj_inputs": "target_a,target_v", "obj_step": obj_step, "n_reg": N_REG})
    n_grad = sum(1 for k in gold if k.startswith("grad."))
    print("%s: d=%d L=%d H=%d B=%d T=%d params=%d masked=%d loss=%.6f ft.loss=%.6f ce/mse/ccc.loss=%.6f/%.6f/%.6f "
          "(obj_step %d) grads=%d -> %s.{params,golden}.safetensors (%.1f s)" % (
              cfg, c["embed_size"], c["n_code"], c["n_heads"], B, T, avt_ref.n_trainable(model), int(mask.sum()),
              loss.item(), ft_loss.item(), obj_loss["ce"], obj_loss["mse"], obj_loss["ccc"], obj_step, n_grad, cfg,
              time.time() - t0))


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
