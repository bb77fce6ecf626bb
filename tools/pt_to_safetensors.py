#!/usr/bin/python3
"""Convert a PyTorch checkpoint of the audio-visual Transformer (the released base.pt / large.pt) to safetensors.

Every tensor of the state dict is kept (buffers too, e.g. *.version and *.embed_positions._float_tensor) and
stored as float32. Metadata written: embed_size (rows of proj_a.weight), n_code (number of
acoustic_cross_visual layers) and n_heads (--n-heads, else 10 for embed_size 240 and 12 for 384).
"""
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tool_util import need_modules  # noqa: E402

need_modules("numpy", "torch")
import st_io  # noqa: E402  (found through the script's own directory)
from tool_util import BadInput, Parser, one_line, run  # noqa: E402

ST_MAX_DIMS = 8  # the C reader's limit (engine/safetensors.h)
DEFAULT_HEADS = {240: 10, 384: 12}  # base and large models
STATE_KEYS = ("state_dict", "model", "model_state_dict")


def find_state_dict(obj, path, torch):
    """The plain state dict inside a loaded checkpoint, or BadInput."""
    if isinstance(obj, torch.nn.Module):
        raise BadInput(f"{path}: holds a pickled nn.Module ({type(obj).__name__}), not a state_dict; "
                       "save model.state_dict() instead")
    if not isinstance(obj, dict):
        raise BadInput(f"{path}: not a checkpoint (top level is {type(obj).__name__}, expected a dict)")
    if obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
        return obj
    for k in STATE_KEYS:
        if k in obj:
            return find_state_dict(obj[k], f"{path}['{k}']", torch)
    raise BadInput(f"{path}: not a state_dict and has none of the keys {', '.join(STATE_KEYS)} "
                   f"(keys: {', '.join(map(str, list(obj)[:8]))}{', ...' if len(obj) > 8 else ''})")


def convert(args):
    import torch

    if not os.path.isfile(args.input):
        raise BadInput(f"{args.input}: no such file")
    try:
        obj = torch.load(args.input, map_location="cpu")
    except (AttributeError, ModuleNotFoundError) as e:
        # Unpickling a whole model needs its class; a state_dict never does.
        raise BadInput(f"{args.input}: cannot unpickle ({one_line(e)}); probably a pickled nn.Module: "
                       "save model.state_dict() instead")
    except Exception as e:
        raise BadInput(f"{args.input}: cannot load as a PyTorch checkpoint ({one_line(e)})")
    sd = find_state_dict(obj, args.input, torch)

    tensors = {}
    for name, t in sd.items():
        if not isinstance(name, str):
            raise BadInput(f"{args.input}: state_dict key {name!r} is not a string")
        if not isinstance(t, torch.Tensor):
            raise BadInput(f"{args.input}: '{name}' is a {type(t).__name__}, not a tensor")
        if t.is_sparse or t.is_quantized or t.is_complex():
            raise BadInput(f"{args.input}: '{name}' is a sparse, quantized or complex tensor; only dense real "
                           "tensors can be stored as F32")
        if t.dim() > ST_MAX_DIMS:
            raise BadInput(f"{args.input}: '{name}' has {t.dim()} dims, more than the {ST_MAX_DIMS} supported")
        tensors[name] = t.detach().to(torch.float32).contiguous().numpy()

    if "proj_a.weight" not in tensors:
        hint = " (keys start with 'module.': strip that prefix first)" if any(
            k.startswith("module.") for k in tensors) else ""
        raise BadInput(f"{args.input}: no 'proj_a.weight' tensor: not an audio-visual Transformer checkpoint{hint}")
    pa = tensors["proj_a.weight"]
    if pa.ndim != 3 or pa.shape[2] != 1:  # Conv1d(512, d, kernel_size=1) weight
        raise BadInput(f"{args.input}: 'proj_a.weight' has shape {list(pa.shape)}, expected (embed_size, in, 1)")
    embed = int(pa.shape[0])
    layers = {int(m.group(1)) for k in tensors if (m := re.match(r"acoustic_cross_visual\.layers\.(\d+)\.", k))}
    if not layers:
        raise BadInput(f"{args.input}: no 'acoustic_cross_visual.layers.N.*' tensors: cannot tell n_code")
    heads = args.n_heads if args.n_heads is not None else DEFAULT_HEADS.get(embed)
    if heads is None:
        raise BadInput(f"{args.input}: embed_size {embed} is neither 240 (base) nor 384 (large): "
                       "pass --n-heads")
    if heads <= 0 or embed % heads:
        raise BadInput(f"--n-heads {heads} does not divide embed_size {embed}")

    meta = {"embed_size": str(embed), "n_code": str(len(layers)), "n_heads": str(heads)}
    tmp = f"{args.output}.tmp.{os.getpid()}"
    try:  # temp file + rename: a failed write never leaves a half file under the final name
        st_io.write_safetensors(tmp, tensors, meta)
        os.replace(tmp, args.output)
    except OSError as e:
        try:
            os.remove(tmp)
        except OSError:
            pass
        raise BadInput(f"{args.output}: cannot write ({e.strerror or one_line(e)})")
    print(f"{args.output}: {len(tensors)} tensors, embed_size={embed} n_code={len(layers)} n_heads={heads}")


def main():
    p = Parser(description=__doc__.split("\n\n")[0],
               epilog="Accepts a plain state_dict or a dict holding one under "
                      "'state_dict', 'model' or 'model_state_dict'.")
    p.add_argument("input", metavar="IN.pt", help="PyTorch checkpoint")
    p.add_argument("output", metavar="OUT.safetensors", help="safetensors file to write")
    p.add_argument("--n-heads", type=int, metavar="H",
                   help="attention heads (default: 10 for embed_size 240, 12 for 384)")
    run(convert, p, "pt_to_safetensors")


if __name__ == "__main__":
    main()
