#!/usr/bin/python3
"""Convert a safetensors file (F32) back to a PyTorch checkpoint: a plain state_dict of float32 tensors.

The safetensors __metadata__ (embed_size, n_code, n_heads) has no place in a plain state_dict and is dropped.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tool_util import need_modules  # noqa: E402

need_modules("numpy", "torch")
import st_io  # noqa: E402  (found through the script's own directory)
from tool_util import BadInput, Parser, one_line, run  # noqa: E402


def convert(args):
    if not os.path.isfile(args.input):
        raise BadInput(f"{args.input}: no such file")
    # st_io trusts its input; check the framing first so the common mistakes get a clear message.
    size = os.path.getsize(args.input)
    with open(args.input, "rb") as f:
        head = f.read(8)
    if len(head) < 8:
        raise BadInput(f"{args.input}: not a safetensors file ({size} bytes, shorter than the 8-byte header length)")
    hlen = int.from_bytes(head, "little")
    if hlen > size - 8:
        raise BadInput(f"{args.input}: not a safetensors file (header length {hlen} is larger than the "
                       f"{size - 8} bytes after it)")
    try:
        arrays, _meta = st_io.read_safetensors(args.input)
    except Exception as e:  # st_io trusts its input: any corruption surfaces as some exception
        raise BadInput(f"{args.input}: not a valid F32 safetensors file ({one_line(e)})")
    if not isinstance(arrays, dict):
        raise BadInput(f"{args.input}: not a valid safetensors file (header is not a JSON object)")

    import collections

    import torch

    sd = collections.OrderedDict((name, torch.from_numpy(a)) for name, a in arrays.items())
    tmp = f"{args.output}.tmp.{os.getpid()}"
    try:  # temp file + rename: a failed write never leaves a half file under the final name
        torch.save(sd, tmp)
        os.replace(tmp, args.output)
    except (OSError, RuntimeError) as e:
        try:
            os.remove(tmp)
        except OSError:
            pass
        raise BadInput(f"{args.output}: cannot write ({one_line(e)})")
    print(f"{args.output}: {len(sd)} tensors")


def main():
    p = Parser(description=__doc__.split("\n\n")[0])
    p.add_argument("input", metavar="IN.safetensors", help="safetensors file (F32 tensors only)")
    p.add_argument("output", metavar="OUT.pt", help="PyTorch state_dict to write")
    run(convert, p, "safetensors_to_pt")


if __name__ == "__main__":
    main()
