"""Round trips between the C engine's files and the PyTorch twin.

usage:
  check_roundtrip.py load WEIGHTS.safetensors INPUTS.safetensors EXPECT.safetensors
      Build the twin from WEIGHTS' metadata (embed_size, n_code, n_heads), load_state_dict(strict=True) from
      WEIGHTS (a file written by the C engine: every state-dict key incl. the buffers), run eval-mode
      extract_feature on INPUTS' x_a (B,T,512), x_v (B,T,17) and compare h_av with EXPECT's `h_av`
      (batch-first (B,T,2d); a time-first (T,B,2d) tensor is accepted when only that shape fits).
      Pass: max abs err <= 1e-4 * max(1, max|ref|), ref = the twin's h_av. Prints the max error.
      Exit 0 ok, 1 mismatch (values, or state-dict keys/shapes that do not load), 2 usage / IO error.
  check_roundtrip.py makept OUT.pt CFG            CFG = tiny | base | large
      torch.save() a freshly initialised model's state_dict (as the released base.pt would be), plus
      OUT.pt.inputs.safetensors (x_a, x_v; sample 0 right-padded, sample 1 with one zero audio step) and
      OUT.pt.expect.safetensors (h_av (B,T,2d) batch-first, h_last (B,2d): eval-mode twin outputs).
"""
import os
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(REPO, "tools"))
import avt_ref  # noqa: E402
from st_io import read_safetensors, write_safetensors  # noqa: E402

EXIT_OK, EXIT_FAIL, EXIT_USAGE = 0, 1, 2
MAKEPT_SEED = 4242


def usage(msg=None):
    if msg:
        print("check_roundtrip: " + msg, file=sys.stderr)
    print("usage: check_roundtrip.py load WEIGHTS.safetensors INPUTS.safetensors EXPECT.safetensors\n"
          "       check_roundtrip.py makept OUT.pt tiny|base|large   (--help for details)", file=sys.stderr)
    return EXIT_USAGE


def cmd_load(wpath, ipath, epath):
    try:
        W, meta = read_safetensors(wpath)
        I, _ = read_safetensors(ipath)
        E, _ = read_safetensors(epath)
    except Exception as e:  # missing, truncated or malformed files
        return usage("cannot read input files: %s: %s" % (type(e).__name__, e))
    try:
        d, L, H = int(meta["embed_size"]), int(meta["n_code"]), int(meta["n_heads"])
    except (KeyError, ValueError):
        return usage("%s: metadata must hold embed_size, n_code, n_heads (got %s)" % (wpath, meta))
    for name, src in (("x_a", I), ("x_v", I), ("h_av", E)):
        if name not in src:
            return usage("missing tensor %s in %s" % (name, ipath if src is I else epath))
    orig_a = W["proj_a.weight"].shape[1] if "proj_a.weight" in W else 512
    orig_v = W["proj_v.weight"].shape[1] if "proj_v.weight" in W else 17
    model = avt_ref.CrossAttentionAVTransformer(orig_a, orig_v, d, L, H)
    try:
        model.load_state_dict({k: torch.from_numpy(v) for k, v in W.items()}, strict=True)
    except RuntimeError as e:
        print("FAIL: state dict does not load strictly: %s" % e)
        return EXIT_FAIL
    model.eval()
    x_a, x_v = torch.from_numpy(I["x_a"]), torch.from_numpy(I["x_v"])
    with torch.no_grad():
        h_av, _ = model.extract_feature(x_a, x_v)
    ref = h_av.permute(1, 0, 2).numpy()  # (B, T, 2d)
    got = E["h_av"]
    if got.shape != ref.shape:
        if got.shape == h_av.shape:
            got = np.transpose(got, (1, 0, 2))
            print("note: EXPECT h_av is time-first (T,B,2d); compared after transposing")
        else:
            print("FAIL: h_av shape %s, twin gives %s (B,T,2d)" % (list(got.shape), list(ref.shape)))
            return EXIT_FAIL
    err = float(np.max(np.abs(got.astype(np.float64) - ref))) if ref.size else 0.0
    tol = 1e-4 * max(1.0, float(np.max(np.abs(ref))) if ref.size else 1.0)
    ok = np.isfinite(got).all() and err <= tol
    print("h_av max abs err %.3e (tol %.3e, max|ref| %.3f) over %s: %s" % (
        err, tol, float(np.max(np.abs(ref))) if ref.size else 0.0, list(ref.shape), "ok" if ok else "FAIL"))
    return EXIT_OK if ok else EXIT_FAIL


def cmd_makept(out_pt, cfg):
    if cfg not in avt_ref.CONFIGS:
        return usage("unknown config %r (tiny|base|large)" % cfg)
    torch.manual_seed(MAKEPT_SEED)
    model = avt_ref.build(cfg)
    gen = torch.Generator().manual_seed(MAKEPT_SEED + 1)
    B, T = 2, 11
    x_a = torch.randn(B, T, 512, generator=gen)
    x_v = torch.rand(B, T, 17, generator=gen) * 5
    x_a[0, T - 3:] = 0  # right padding (both modalities)
    x_v[0, T - 3:] = 0
    x_a[1, 4] = 0       # one step with zero audio only
    model.eval()
    with torch.no_grad():
        h_av, h_last = model.extract_feature(x_a, x_v)
    try:
        torch.save(model.state_dict(), out_pt)
        write_safetensors(out_pt + ".inputs.safetensors", {"x_a": x_a, "x_v": x_v}, {"config": cfg})
        c = avt_ref.CONFIGS[cfg]
        write_safetensors(out_pt + ".expect.safetensors",
                          {"h_av": h_av.permute(1, 0, 2).numpy(), "h_last": h_last.numpy()},
                          {"config": cfg, "embed_size": c["embed_size"], "n_code": c["n_code"],
                           "n_heads": c["n_heads"]})
    except (OSError, RuntimeError) as e:  # torch.save raises RuntimeError for a missing directory
        return usage("cannot write: %s" % e)
    print("makept %s: %s (%d params) + .inputs/.expect.safetensors (B=%d T=%d)" % (
        cfg, out_pt, avt_ref.n_trainable(model), B, T))
    return EXIT_OK


def main(argv):
    if len(argv) >= 1 and argv[0] in ("-h", "--help"):
        print(__doc__)
        return EXIT_OK
    if len(argv) == 4 and argv[0] == "load":
        return cmd_load(*argv[1:])
    if len(argv) == 3 and argv[0] == "makept":
        return cmd_makept(*argv[1:])
    return usage("bad arguments: %s" % " ".join(argv))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
