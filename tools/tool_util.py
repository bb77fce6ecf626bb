"""Shared pieces of avt's Python tools: one-line errors and exit code 1 for every bad input, and the interpreter
that has Debian's Python packages."""
import argparse
import importlib.util
import os
import sys

DEBIAN_PYTHON = "/usr/bin/python3"


def need_modules(*names):
    """Make sure the modules (numpy, torch) can be imported. They come from Debian's packages (python3-numpy,
    python3-torch), which only Debian's interpreter sees; another python3 first on PATH (pyenv, conda, a venv)
    usually lacks them. Then the script runs itself again under /usr/bin/python3, or says what to install."""
    missing = [n for n in names if importlib.util.find_spec(n) is None]
    if not missing:
        return
    if os.access(DEBIAN_PYTHON, os.X_OK) and not os.environ.get("AVT_PYTHON_RERUN"):
        os.environ["AVT_PYTHON_RERUN"] = "1"  # once: if Debian's interpreter lacks them too, say so below
        os.execv(DEBIAN_PYTHON, [DEBIAN_PYTHON, os.path.abspath(sys.argv[0])] + sys.argv[1:])
    packages = " ".join("python3-" + n for n in missing)
    sys.stderr.write(f"{os.path.basename(sys.argv[0])}: needs the Python module(s) {', '.join(missing)}: "
                     f"apt-get install {packages}, then run it with {DEBIAN_PYTHON} "
                     f"(this is {sys.executable})\n")
    sys.exit(1)


class BadInput(Exception):
    pass


class Parser(argparse.ArgumentParser):
    def error(self, message):  # one line and exit 1, like every other bad input
        sys.stderr.write(f"{self.prog}: error: {message}\n")
        sys.exit(1)


def run(convert, parser, name):
    """Parse arguments and convert; a BadInput becomes one line on stderr and exit status 1."""
    args = parser.parse_args()
    try:
        convert(args)
    except BadInput as e:
        sys.stderr.write(f"{name}: {e}\n")
        sys.exit(1)


def one_line(e):
    s = str(e).strip().splitlines()
    return f"{type(e).__name__}: {s[0]}" if s else type(e).__name__


def openface_header():
    """The column names of an OpenFace 2.x FeatureExtraction CSV (714 columns; the last 35 are the AU columns)."""
    cols = ["frame", "face_id", "timestamp", "confidence", "success"]
    cols += [f"gaze_{e}_{a}" for e in (0, 1) for a in "xyz"] + ["gaze_angle_x", "gaze_angle_y"]
    cols += [f"eye_lmk_{a}_{i}" for a in ("x", "y", "X", "Y", "Z") for i in range(56)]
    cols += [f"pose_{a}" for a in ("Tx", "Ty", "Tz", "Rx", "Ry", "Rz")]
    cols += [f"{a}_{i}" for a in ("x", "y", "X", "Y", "Z") for i in range(68)]
    cols += ["p_scale", "p_rx", "p_ry", "p_rz", "p_tx", "p_ty"] + [f"p_{i}" for i in range(34)]
    r = ["01", "02", "04", "05", "06", "07", "09", "10", "12", "14", "15", "17", "20", "23", "25", "26", "45"]
    c = ["01", "02", "04", "05", "06", "07", "09", "10", "12", "14", "15", "17", "20", "23", "25", "26", "28", "45"]
    return cols + [f"AU{a}_r" for a in r] + [f"AU{a}_c" for a in c]


OPENFACE_HEADER = openface_header()
OPENFACE_OTHER = len(OPENFACE_HEADER) - 5 - 35  # gaze, landmarks, pose, shape parameters


def write_openface_csv(path, au_r, other=None, fps=30.0):
    """Write an OpenFace 2.x CSV: one row per frame of au_r (frames, 17; intensities 0..5), AU*_c = AU*_r >= 1.
    other (frames, OPENFACE_OTHER) fills the gaze/landmark/pose columns, zeros when None. The reader keeps every
    6th row (5 steps/s at 30 fps). Consecutive equal rows are formatted once, so repeated frames cost little."""
    import numpy as np

    au_r = np.asarray(au_r, dtype=np.float32)
    frames = au_r.shape[0]
    au_c = np.zeros((frames, 18), dtype=np.float32)
    au_c[:, :16] = au_r[:, :16] >= 1.0  # AU28_c has no intensity column
    au_c[:, 17] = au_r[:, 16] >= 1.0
    zeros = ", ".join(["0"] * OPENFACE_OTHER)
    lines, prev, text = [", ".join(OPENFACE_HEADER)], None, None
    for i in range(frames):
        key = au_r[i].tobytes() if other is None else None
        if key is None or key != prev:
            mid = zeros if other is None else ", ".join(f"{x:.4g}" for x in other[i])
            aus = ", ".join(f"{x:.4g}" for x in au_r[i]) + ", " + ", ".join(f"{x:.0f}" for x in au_c[i])
            text, prev = mid + ", " + aus, key
        lines.append(f"{i + 1}, 0, {i / fps:.3f}, 0.98, 1, {text}")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
