"""Write demo feature files in the paper's formats: headerless 512-column audio CSVs (one row per 200 ms) and
OpenFace 2.x FeatureExtraction CSVs with their full header (30 fps, so every 6th row is one 200 ms step),
plus a pairs.csv for `avt embed --list`. Values are synthetic; the formats are the real ones."""
import argparse
import os

import numpy as np


def openface_header():
    cols = ["frame", "face_id", "timestamp", "confidence", "success"]
    cols += [f"gaze_{e}_{a}" for e in (0, 1) for a in "xyz"] + ["gaze_angle_x", "gaze_angle_y"]
    cols += [f"eye_lmk_{a}_{i}" for a in ("x", "y", "X", "Y", "Z") for i in range(56)]
    cols += [f"pose_{a}" for a in ("Tx", "Ty", "Tz", "Rx", "Ry", "Rz")]
    cols += [f"{a}_{i}" for a in ("x", "y", "X", "Y", "Z") for i in range(68)]
    cols += ["p_scale", "p_rx", "p_ry", "p_rz", "p_tx", "p_ty"] + [f"p_{i}" for i in range(34)]
    r = ["01", "02", "04", "05", "06", "07", "09", "10", "12", "14", "15", "17", "20", "23", "25", "26", "45"]
    c = ["01", "02", "04", "05", "06", "07", "09", "10", "12", "14", "15", "17", "20", "23", "25", "26", "28", "45"]
    return cols + [f"AU{a}_r" for a in r] + [f"AU{a}_c" for a in c]


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", required=True)
    ap.add_argument("--count", type=int, default=16)
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    rng = np.random.default_rng(0)
    header = openface_header()
    pairs = []
    for u in range(args.count):
        steps = int(rng.integers(8, 40))  # 1.6 to 8 s
        audio = os.path.join(args.out, f"utt{u:02d}.audio.csv")
        video = os.path.join(args.out, f"utt{u:02d}.openface.csv")
        np.savetxt(audio, rng.standard_normal((steps, 512)).astype(np.float32), delimiter=",", fmt="%.6g")
        frames = steps * 6
        body = rng.random((frames, len(header))).astype(np.float32)
        body[:, 0] = np.arange(1, frames + 1)
        body[:, 2] = np.arange(frames) / 30.0
        body[:, -35:-18] *= 5.0  # AU intensities are 0..5
        with open(video, "w") as f:
            f.write(", ".join(header) + "\n")
            np.savetxt(f, body, delimiter=", ", fmt="%.4g")
        pairs.append(f"{audio},{video},utt{u:02d}")
    with open(os.path.join(args.out, "pairs.csv"), "w") as f:
        f.write("audio,video,name\n" + "\n".join(pairs) + "\n")
    print(f"wrote {args.count} audio/OpenFace CSV pairs and pairs.csv to {args.out}")


if __name__ == "__main__":
    main()
