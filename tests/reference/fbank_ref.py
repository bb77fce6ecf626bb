"""Reference log-mel filterbanks for tests/data/media/test_fbank.c, straight from torchaudio's Kaldi compliance module.

  fbank_ref.py fbank MELS DIR WAV...   torchaudio.compliance.kaldi.fbank of the i-th WAV -> float32 (T, MELS):
                                       DIR/fbank<i>.npy computed in float32 (torchaudio's usual path),
                                       DIR/fbank<i>_64.npy computed entirely in float64 (waveform and mel banks)
  fbank_ref.py banks DIR MELS...       the mel matrix get_mel_banks(MELS, 512, ...) computed in float64
                                       -> DIR/banks<MELS>.npy float32 (MELS, 256) (float32 math is ~1e-5 off)

The waveform comes from torchaudio.load, i.e. int16 / 32768 in [-1, 1], the scale data/media/fbank.c takes. torchaudio
asserts on waveforms shorter than one 400-sample frame (data/media/fbank.c returns 0 frames there).
"""
import os
import sys

import numpy as np
import torch
import torchaudio
import torchaudio.compliance.kaldi as kaldi


def fbank(wav, mels, dtype):
    # get_mel_banks builds its tensors in the default dtype, the rest follows the waveform's.
    torch.set_default_dtype(dtype)
    feats = kaldi.fbank(wav.to(dtype).reshape(1, -1), num_mel_bins=mels, frame_length=25, frame_shift=10,
                        dither=0.0, sample_frequency=16000, window_type='povey', use_energy=False)
    torch.set_default_dtype(torch.float32)
    return feats.numpy().astype(np.float32)


def banks(mels):
    torch.set_default_dtype(torch.float64)
    # low 20 Hz, high 0 (-> Nyquist), VTLN off: the arguments fbank passes with its defaults.
    b, _ = kaldi.get_mel_banks(mels, 512, 16000.0, 20.0, 0.0, 100.0, -500.0, 1.0)
    return b.numpy().astype(np.float32)


if __name__ == "__main__":
    torch.set_num_threads(1)
    if sys.argv[1] == "fbank":
        mels, out_dir = int(sys.argv[2]), sys.argv[3]
        for i, path in enumerate(sys.argv[4:]):
            wav, sr = torchaudio.load(path)
            assert sr == 16000 and wav.shape[0] == 1, (path, sr, wav.shape)
            np.save(os.path.join(out_dir, f"fbank{i}.npy"), fbank(wav, mels, torch.float32))
            np.save(os.path.join(out_dir, f"fbank{i}_64.npy"), fbank(wav, mels, torch.float64))
    elif sys.argv[1] == "banks":
        for mels in sys.argv[3:]:
            np.save(os.path.join(sys.argv[2], f"banks{mels}.npy"), banks(int(mels)))
    else:
        sys.exit(f"unknown mode {sys.argv[1]}")
