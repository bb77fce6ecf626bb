#!/usr/bin/python3
"""Write a synthetic pretraining corpus in the paper's file formats, laid out like VoxCeleb2:

    ROOT/idNNNNN/VIDEOID/000NN.csv           audio: headerless 512-column TRILL-like CSV, one row per 200 ms step
    ROOT/idNNNNN/VIDEOID/000NN.openface.csv  video: OpenFace 2.x CSV, 30 fps, 6 rows per step (the reader keeps
                                             every 6th), the 17 AU*_r intensities in [0, 5]
    ROOT/metadata.csv                        audio_csv,openface_csv,seq_len,masking_list (paths relative to ROOT)

The features are learnable, so masked reconstruction has something to find: each utterance is a smooth latent
trajectory (a speaker-specific offset plus a few sinusoids with per-utterance frequencies, phases and amplitudes)
mapped to 512 audio dims and 17 video dims by fixed random maps (video = 5 * sigmoid(linear), so it is correlated
with audio), plus a little noise. A masked step is predictable from its neighbours and from the other modality.
Seeded: the same arguments give the same files.
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tool_util import need_modules  # noqa: E402

need_modules("numpy")
import numpy as np  # noqa: E402
from tool_util import BadInput, Parser, run, write_openface_csv  # noqa: E402

LATENT = 8       # latent dimensions
WAVES = 3        # sinusoids per utterance
STEP_HZ = 5.0    # audio steps per second (200 ms TRILL chunks)
ROWS_PER_STEP = 6  # OpenFace frames per step at 30 fps


def video_id(rng):
    chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-"
    return "".join(chars[i] for i in rng.integers(0, len(chars), 11))


def utterance(rng, offset, w_a, w_v, b_v, steps, noise):
    """(steps, 512) audio and (steps, 17) video of one utterance around a speaker's latent offset."""
    t = np.arange(steps)[:, None] / STEP_HZ                     # (T, 1) seconds
    freq = rng.uniform(0.1, 0.8, (1, WAVES))                   # Hz
    phase = rng.uniform(0.0, 2 * np.pi, (1, WAVES))
    amp = rng.normal(0.0, 1.0, (WAVES, LATENT))
    z = offset + np.sin(2 * np.pi * freq * t + phase) @ amp     # (T, LATENT)
    audio = z @ w_a + noise * rng.standard_normal((steps, w_a.shape[1]))
    video = 5.0 / (1.0 + np.exp(-(z @ w_v + b_v))) + noise * rng.standard_normal((steps, w_v.shape[1]))
    return audio.astype(np.float32), np.clip(video, 0.0, 5.0).astype(np.float32)


def make(args):
    if args.utterances < 1 or args.speakers < 1 or args.speakers > args.utterances:
        raise BadInput("need 1 <= --speakers <= --utterances")
    if not 1 <= args.min_steps <= args.max_steps:
        raise BadInput("need 1 <= --min-steps <= --max-steps")
    rng = np.random.default_rng(args.seed)
    w_a = rng.normal(0.0, 1.0 / np.sqrt(LATENT), (LATENT, 512))  # fixed maps, shared by every speaker
    w_v = rng.normal(0.0, 0.6 / np.sqrt(LATENT), (LATENT, 17))
    b_v = rng.normal(-1.0, 0.5, (1, 17))                         # AUs mostly low, as in real faces
    offsets = rng.normal(0.0, 1.0, (args.speakers, LATENT))
    speaker = np.sort(np.concatenate([np.arange(args.speakers),  # every speaker gets at least one utterance
                                      rng.integers(0, args.speakers, args.utterances - args.speakers)]))
    os.makedirs(args.out, exist_ok=True)
    rows, counts, videos, steps_total = [], {}, {}, 0
    for s in speaker:
        name = f"id{10000 + 7 * int(s):05d}"
        k = counts.get(s, 0)
        counts[s] = k + 1
        if k % 4 == 0:  # a new YouTube video every 4 utterances
            videos[s] = video_id(rng)
        folder = os.path.join(name, videos[s])
        os.makedirs(os.path.join(args.out, folder), exist_ok=True)
        steps = int(rng.integers(args.min_steps, args.max_steps + 1))
        audio, video = utterance(rng, offsets[s], w_a, w_v, b_v, steps, args.noise)
        base = os.path.join(folder, f"{k % 4 + 1:05d}")
        a_rel, v_rel = base + ".csv", base + ".openface.csv"
        np.savetxt(os.path.join(args.out, a_rel), audio, delimiter=",", fmt="%.5g")
        write_openface_csv(os.path.join(args.out, v_rel), np.repeat(video, ROWS_PER_STEP, axis=0))
        rows.append(f"{a_rel},{v_rel},{min(steps, 100)},")
        steps_total += steps
    with open(os.path.join(args.out, "metadata.csv"), "w") as f:
        f.write("audio_csv,openface_csv,seq_len,masking_list\n" + "\n".join(rows) + "\n")
    print(f"wrote {len(rows)} utterances of {args.speakers} speakers ({steps_total} steps) and metadata.csv "
          f"to {args.out}")


def main():
    ap = Parser(prog="make_corpus.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, help="corpus root (created)")
    ap.add_argument("--utterances", type=int, default=300)
    ap.add_argument("--speakers", type=int, default=20)
    ap.add_argument("--min-steps", type=int, default=20)
    ap.add_argument("--max-steps", type=int, default=100)
    ap.add_argument("--noise", type=float, default=0.05, help="standard deviation of the added noise")
    ap.add_argument("--seed", type=int, default=0)
    run(make, ap, "make_corpus.py")


if __name__ == "__main__":
    main()
