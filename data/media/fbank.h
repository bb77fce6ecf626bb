// Native audio features: a Kaldi-compatible log-mel filterbank and its pooling to the paper's 5 steps per second.
// This substitutes for TRILL (docs/model.md §1.1: 512-d per 200 ms chunk), whose weights exist only on TF-Hub.
//
// fbank_compute matches torchaudio.compliance.kaldi.fbank(wav.reshape(1, n), num_mel_bins=M, frame_length=25,
// frame_shift=10, dither=0.0, sample_frequency=16000, window_type='povey', use_energy=False) with every other
// argument at its default (docs/data.md §5.2-5.4):
//   frames of 400 samples every 160 (snip_edges: only whole frames, T = 1 + (n - 400) / 160, 0 when n < 400);
//   per frame: subtract the frame mean, pre-emphasis x[j] -= 0.97 x[j-1] (x[0] -= 0.97 x[0]), povey window
//   (symmetric Hann to the power 0.85), zero-pad to 512, power spectrum |rfft|^2 (257 bins);
//   Kaldi mel banks: mel(f) = 1127 ln(1 + f/700), M triangles equally spaced in mel between 20 Hz and 8 kHz, the
//   weights taken in the mel domain, the Nyquist bin weighted 0; output ln(max(E, FLT_EPSILON)).
// Waveform scale: floats in [-1, 1] (int16 / 32768, what torchaudio.load returns); Kaldi's own int16 scale would
// shift every value by ln(32768^2) = 20.79.
// Numerics: float32 in and out, double inside (window, twiddles, mel weights, FFT and mel sums). torchaudio's
// float32 path is itself off by up to ~4e-4 in the log domain in near-silent bins (its float32 FFT rounding, relative
// to the frame's loudest bins, swamps energies ~1e-8 of the peak; measured against its own float64 path), so double
// here puts all of that error on the reference side: against torchaudio computed in float64 (waveform and default
// dtype) the outputs, rounded to float32, are identical on the test files.
// Default M = 128: the AST / CAV-MAE recipe, and 4 statistics x 128 bins give the paper's d_a = 512 (fbank_pool).
// With 128 bins, bin 3 covers no FFT bin (62.9-93.0 Hz lies between bins at 62.5 and 93.75 Hz), so its row is
// the constant ln(FLT_EPSILON) = -15.942385, exactly as in torchaudio; this is kept, not "fixed".
#ifndef AVT_FBANK_H
#define AVT_FBANK_H

#include <stddef.h>

#define FBANK_SAMPLE_RATE 16000
#define FBANK_WIN 400      // 25 ms
#define FBANK_HOP 160      // 10 ms
#define FBANK_NFFT 512     // the window zero-padded to a power of two
#define FBANK_NFREQ 257    // FBANK_NFFT / 2 + 1 power-spectrum bins
#define FBANK_DEFAULT_MELS 128

typedef struct {
    int num_mel_bins;
    double *window;          // (FBANK_WIN) povey window
    double *tw_cos, *tw_sin; // (FBANK_NFFT / 2) cos and -sin of 2 pi k / 512
    int *bitrev;             // (FBANK_NFFT / 2) 8-bit reversal permutation for the 256-point complex FFT
    double *mel;             // (num_mel_bins, FBANK_NFREQ) triangle weights, dense
    int *mel_lo, *mel_hi;    // (num_mel_bins) the non-zero weights of bin b are at [mel_lo[b], mel_hi[b])
} FbankPlan;

// Precomputes window, twiddles and mel matrix once; num_mel_bins >= 1 (aborts on allocation failure).
void fbank_plan_init(FbankPlan *p, int num_mel_bins);
void fbank_plan_free(FbankPlan *p);
// Frames of a waveform of n_samples: 1 + (n - 400) / 160, or 0 when n < 400.
int fbank_frames(size_t n_samples);
// out: (fbank_frames(n), num_mel_bins) log-mel energies of wav (n) in [-1, 1]. Frame t covers samples
// [160 t, 160 t + 400). No allocation; frames run in parallel under OpenMP.
void fbank_compute(float *out /* (T, num_mel_bins) */, const FbankPlan *p, const float *wav /* (n) */, size_t n);

// ---- pooling to the paper's rate: one step = 200 ms = 20 frames = 3,200 samples (5 steps/s) ----
// Step k pools frames [20 k, 20 k + 20): frame 20 k starts at sample 3200 k, the start of the paper's k-th
// 3,200-sample chunk. Per step and for each of the 128 mel bins b, over the step's frames:
//   out[b] = mean, out[128 + b] = standard deviation (population, 1/N), out[256 + b] = min, out[384 + b] = max,
// i.e. 4 x 128 = 512 values, so the model's d_a = 512 configs apply unchanged.
// The last step may be partial: it is kept when it has at least FBANK_STEP_MIN_FRAMES frames (half a step) and
// pools the frames it has, else dropped (the paper keeps any remainder chunk, however short; statistics over a
// few frames would be mostly noise). Whole seconds give exactly 5 steps per second.
#define FBANK_STEP_FRAMES 20
#define FBANK_STEP_SAMPLES (FBANK_STEP_FRAMES * FBANK_HOP) // 3200
#define FBANK_STEP_MIN_FRAMES 10
#define FBANK_POOL_MELS 128
#define FBANK_STEP_DIM (4 * FBANK_POOL_MELS) // 512

// Steps from T frames, and from a waveform of n_samples (= fbank_steps_from_frames(fbank_frames(n))).
int fbank_steps_from_frames(int T);
int fbank_steps(size_t n_samples);
// steps: (fbank_steps_from_frames(T), 512) from frames (T, 128), the output of a 128-bin plan.
void fbank_pool(float *steps /* (S, 512) */, const float *frames /* (T, 128) */, int T);

#endif
