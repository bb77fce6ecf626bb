"""PyTorch reference for the optimiser (docs/model.md §3.4-3.5): BertAdam as in the old pytorch-pretrained-bert
(code/optimizers.py: per-tensor clip inside the step, no bias correction, decoupled weight decay added to the update,
warmup_linear schedule, per-parameter step counter, tensors whose .grad is None skipped), preceded at every step by
torch.nn.utils.clip_grad_norm_(all parameters, clip_global) as in code/train_avc.py.

usage: bertadam_ref.py IN.safetensors OUT.safetensors
  IN:  p.<name> initial values; g.<step>.<name> the gradient of <name> at step 0..steps-1 (a tensor with no
       g.* entry keeps .grad None); metadata steps, lr, warmup, t_total, beta1, beta2, eps, weight_decay,
       clip_global, clip_tensor.
  OUT: p.<name> after the steps; m.<name>, v.<name> for every tensor that has optimiser state; norm (steps,) the
       global gradient norm clip_grad_norm_ returned at each step.
Exit 0 ok, 2 usage / IO error.
"""
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                                "tools"))
from st_io import read_safetensors, write_safetensors  # noqa: E402


def warmup_linear(x, warmup):
    if x < warmup:
        return x / warmup
    return max((x - 1.0) / (warmup - 1.0), 0.0)


class BertAdam(torch.optim.Optimizer):
    def __init__(self, params, lr, warmup, t_total, b1, b2, e, weight_decay, max_grad_norm):
        defaults = dict(lr=lr, warmup=warmup, t_total=t_total, b1=b1, b2=b2, e=e, weight_decay=weight_decay,
                        max_grad_norm=max_grad_norm)
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self):
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                grad = p.grad
                state = self.state[p]
                if len(state) == 0:
                    state["step"] = 0
                    state["next_m"] = torch.zeros_like(p)
                    state["next_v"] = torch.zeros_like(p)
                next_m, next_v = state["next_m"], state["next_v"]
                beta1, beta2 = group["b1"], group["b2"]
                if group["max_grad_norm"] > 0:
                    torch.nn.utils.clip_grad_norm_(p, group["max_grad_norm"])
                next_m.mul_(beta1).add_(grad, alpha=1 - beta1)
                next_v.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
                update = next_m / (next_v.sqrt() + group["e"])
                if group["weight_decay"] > 0.0:
                    update += group["weight_decay"] * p
                lr_scheduled = group["lr"] * warmup_linear(state["step"] / group["t_total"], group["warmup"])
                p.add_(-lr_scheduled * update)
                state["step"] += 1


def main(argv):
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    try:
        T, meta = read_safetensors(argv[1])
        steps = int(meta["steps"])
        hp = {k: float(meta[k]) for k in ("lr", "warmup", "t_total", "beta1", "beta2", "eps", "weight_decay",
                                          "clip_global", "clip_tensor")}
    except (OSError, KeyError, ValueError) as e:
        print("bertadam_ref: %s: %s" % (argv[1], e), file=sys.stderr)
        return 2
    names = [k[2:] for k in T if k.startswith("p.")]
    params = {n: torch.nn.Parameter(torch.from_numpy(T["p." + n])) for n in names}
    opt = BertAdam(params.values(), hp["lr"], hp["warmup"], hp["t_total"], hp["beta1"], hp["beta2"], hp["eps"],
                   hp["weight_decay"], hp["clip_tensor"])
    norms = []
    for s in range(steps):
        for n, p in params.items():
            g = T.get("g.%d.%s" % (s, n))
            p.grad = None if g is None else torch.from_numpy(g.copy())
        with_grad = [p for p in params.values() if p.grad is not None]
        norms.append(float(torch.nn.utils.clip_grad_norm_(with_grad, hp["clip_global"])))
        opt.step()
    out = {"norm": np.array(norms, dtype=np.float32)}
    for n, p in params.items():
        out["p." + n] = p.detach().numpy()
        st = opt.state.get(p)
        if st:
            out["m." + n] = st["next_m"].numpy()
            out["v." + n] = st["next_v"].numpy()
    write_safetensors(argv[2], out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
