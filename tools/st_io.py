"""Minimal safetensors reader/writer (F32 only) for avt's Python tools and the PyTorch reference twin.

Format: 8-byte little-endian header length N, N bytes of JSON, then raw little-endian tensor bytes;
data_offsets are relative to the first byte after the header.
"""
import json
import struct

import numpy as np


def write_safetensors(path, tensors, metadata=None):
    """tensors: dict name -> array-like (stored as float32, C order); metadata: dict str -> str."""
    header = {}
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    blobs, offset = [], 0
    for name, arr in tensors.items():
        a = np.asarray(arr, dtype=np.float32, order="C")  # keeps 0-dim tensors 0-dim
        b = a.astype("<f4", copy=False).tobytes()
        header[name] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [offset, offset + len(b)]}
        blobs.append(b)
        offset += len(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)  # keep the payload 8-byte aligned
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def read_safetensors(path):
    """Returns (dict name -> float32 ndarray, metadata dict)."""
    with open(path, "rb") as f:
        buf = f.read()
    (n,) = struct.unpack("<Q", buf[:8])
    header = json.loads(buf[8 : 8 + n])
    meta = header.pop("__metadata__", {}) or {}
    base = 8 + n
    out = {}
    for name, e in header.items():
        if e["dtype"] != "F32":
            raise ValueError(f"{path}: tensor {name}: dtype {e['dtype']} not supported (need F32)")
        b, end = e["data_offsets"]
        out[name] = np.frombuffer(buf[base + b : base + end], dtype="<f4").reshape(e["shape"]).copy()
    return out, meta
