"""Write demo feature files in the paper's formats: headerless 512-column audio CSVs (one row per 200 ms) and
OpenFace 2.x FeatureExtraction CSVs with their full header (30 fps, so every 6th row is one 200 ms step),
plus a pairs.csv for `avt embed --list`. Values are synthetic; the formats are the real ones."""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tool_util import need_modules  # noqa: E402

need_modules("numpy")
import numpy as np  # noqa: E402
from tool_util import OPENFACE_HEADER, OPENFACE_OTHER, write_openface_csv  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", required=True)
    ap.add_argument("--count", type=int, default=16)
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    rng = np.random.default_rng(0)
    pairs = []
    for u in range(args.count):
        steps = int(rng.integers(8, 40))  # 1.6 to 8 s
        audio = os.path.join(args.out, f"utt{u:02d}.audio.csv")
        video = os.path.join(args.out, f"utt{u:02d}.openface.csv")
        np.savetxt(audio, rng.standard_normal((steps, 512)).astype(np.float32), delimiter=",", fmt="%.6g")
        frames = steps * 6
        body = rng.random((frames, len(OPENFACE_HEADER))).astype(np.float32)
        # AU intensities are 0..5
        write_openface_csv(video, body[:, -35:-18] * 5.0, other=body[:, 5:5 + OPENFACE_OTHER])
        pairs.append(f"{audio},{video},utt{u:02d}")
    with open(os.path.join(args.out, "pairs.csv"), "w") as f:
        f.write("audio,video,name\n" + "\n".join(pairs) + "\n")
    print(f"wrote {args.count} audio/OpenFace CSV pairs and pairs.csv to {args.out}")


if __name__ == "__main__":
    main()
