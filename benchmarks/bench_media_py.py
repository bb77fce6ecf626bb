#!/usr/bin/env python3
"""The Python peer of `avt prepare --layout` for benchmarks/bench_media.sh: per media file
  audio: decode to 16 kHz mono float32 with the ffmpeg program (subprocess), torchaudio's kaldi.fbank (128 mel bins,
         the arguments of data/media/fbank.h), pooled in numpy to 512 values per 200 ms step (mean, std, min, max of 20
         frames, the last partial step kept at >= 10 frames);
  video: cv2.VideoCapture decodes every frame (grab); the frame each 200 ms step samples (the last at or before
         t_k = 0.2 k) goes to grayscale and cv2.CascadeClassifier(lbpcascade_frontalface_improved)
         .detectMultiScale(gray, 1.1, 3, minSize = a fifth of the frame height), as avt detects about once per step
         with that minimum; the largest box cropped to 64x64 and reduced to 16 cell means + a confidence.
Files run over THREADS worker processes (multiprocessing, fork), each single-threaded (torch and OpenCV set to 1
thread), the same cores avt gets.

usage: bench_media_py.py --threads N FILE...
prints one line: "python FILES SECONDS" (wall seconds of the pool's work, imports and interpreter start excluded)
"""
import argparse
import multiprocessing as mp
import subprocess
import sys
import time

import cv2
import numpy as np
import torch
import torchaudio.compliance.kaldi as kaldi

CASCADE = "/usr/share/opencv4/lbpcascades/lbpcascade_frontalface_improved.xml"
_clf = None


def _init():
    global _clf
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    _clf = cv2.CascadeClassifier(CASCADE)
    if _clf.empty():
        sys.exit(f"bench_media_py.py: cannot load {CASCADE}")


def audio_steps(path):
    raw = subprocess.run(["ffmpeg", "-v", "error", "-nostdin", "-threads", "1", "-i", path, "-vn", "-f", "f32le",
                          "-ac", "1", "-ar", "16000", "-"], check=True, stdout=subprocess.PIPE).stdout
    wav = torch.from_numpy(np.frombuffer(raw, dtype=np.float32).copy()).reshape(1, -1)
    fb = kaldi.fbank(wav, num_mel_bins=128, frame_length=25, frame_shift=10, dither=0.0, sample_frequency=16000,
                     window_type="povey", use_energy=False).numpy()
    steps = []
    for s in range(0, fb.shape[0], 20):
        f = fb[s:s + 20]
        if f.shape[0] < 10:
            break
        steps.append(np.concatenate([f.mean(0), f.std(0), f.min(0), f.max(0)]))
    return np.asarray(steps, dtype=np.float32)


def video_steps(path):
    cap = cv2.VideoCapture(path)
    fps = cap.get(cv2.CAP_PROP_FPS) or 25.0
    descs = []  # one per step: step k (time 0.2 k) takes the last frame at or before it
    i = 0
    while cap.grab():
        # frame i is a step's frame when some t_k = 0.2 k lies in [i / fps, (i + 1) / fps)
        k = np.ceil((i / fps - 1e-6) / 0.2)
        if 0.2 * k + 1e-6 < (i + 1) / fps:
            ok, frame = cap.retrieve()
            if not ok:
                break
            gray = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
            side = gray.shape[0] // 5
            boxes = _clf.detectMultiScale(gray, scaleFactor=1.1, minNeighbors=3, minSize=(side, side))
            desc = np.zeros(17, np.float32)
            if len(boxes):
                x, y, w, h = max(boxes, key=lambda b: b[2] * b[3])
                crop = cv2.resize(gray[y:y + h, x:x + w], (64, 64), interpolation=cv2.INTER_LINEAR)
                crop = crop.astype(np.float32)
                crop = (crop - crop.mean()) / (crop.std() + 1e-6)
                desc[:16] = np.clip(2.5 + 1.25 * crop.reshape(4, 16, 4, 16).mean((1, 3)).ravel(), 0, 5)
                desc[16] = 5
            descs.append(desc)
        i += 1
    cap.release()
    return np.asarray(descs, dtype=np.float32)


def features(path):
    a, v = audio_steps(path), video_steps(path)
    s = min(len(a), len(v))
    return path, a[:s].shape, v[:s].shape


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=mp.cpu_count())
    ap.add_argument("files", nargs="+")
    args = ap.parse_args()
    t0 = time.perf_counter()
    with mp.get_context("fork").Pool(args.threads, initializer=_init) as pool:
        out = pool.map(features, args.files, chunksize=1)
    t1 = time.perf_counter()
    bad = [p for p, a, v in out if a[0] == 0]
    if bad:
        sys.exit(f"bench_media_py.py: no steps from {bad[0]}")
    print(f"python {len(out)} {t1 - t0:.4f}")


if __name__ == "__main__":
    main()
