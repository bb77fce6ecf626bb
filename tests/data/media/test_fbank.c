// The native log-mel filterbank (data/media/fbank.c) against torchaudio.compliance.kaldi.fbank on real 16 kHz speech
// (pocketsphinx-testdata; tests/reference/fbank_ref.py run at test time), its mel matrix against torchaudio's and
// the spot values of docs/data.md §5.4, frame and step counts, and the 200 ms pooling statistics.
#include <criterion/criterion.h>
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "data/media/fbank.h"
#include "data/corpus/features.h"
#include "tests/testutil.h"

static const char *dir;
static void setup(void) { dir = test_tmpdir(); }
TestSuite(fbank, .init = setup, .fini = test_tmpdir_remove, .timeout = 120);

#define SPEECH "/usr/share/pocketsphinx/test/data/"
static const char *const WAVS[] = {
    SPEECH "cards/001.wav",                                          // 17,526 samples
    SPEECH "cards/005.wav",                                          // 56,040
    SPEECH "librivox/sense_and_sensibility_01_austen_64kb-0880.wav", // 47,840
};
#define N_WAVS (sizeof WAVS / sizeof WAVS[0])
#define LOG_TOL 1e-3     // max |diff| of log energies (docs/data.md §5.5: absolute, in the log domain)
#define LOG_TOL_F64 1e-5 // the same against torchaudio computed in float64 (measured: 0)

static uint32_t le32(const unsigned char *b) { return b[0] | b[1] << 8 | b[2] << 16 | (uint32_t)b[3] << 24; }
static uint16_t le16(const unsigned char *b) { return (uint16_t)(b[0] | b[1] << 8); }

// A mono 16 kHz PCM16 WAV as floats int16 / 32768 (torchaudio.load's scale); returns the samples (n), malloc'd.
static float *read_wav(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    cr_assert(f, "cannot open %s", path);
    unsigned char h[12], c[8];
    cr_assert_eq(fread(h, 1, 12, f), 12);
    cr_assert(memcmp(h, "RIFF", 4) == 0 && memcmp(h + 8, "WAVE", 4) == 0, "%s: not RIFF/WAVE", path);
    int fmt_ok = 0;
    while (fread(c, 1, 8, f) == 8) {
        const uint32_t len = le32(c + 4);
        if (memcmp(c, "fmt ", 4) == 0) {
            unsigned char fm[16];
            cr_assert(len >= 16 && fread(fm, 1, 16, f) == 16);
            // format 1 (PCM), 1 channel, 16,000 Hz, 16 bits
            fmt_ok = le16(fm) == 1 && le16(fm + 2) == 1 && le32(fm + 4) == FBANK_SAMPLE_RATE && le16(fm + 14) == 16;
            fseek(f, (long)(len - 16 + (len & 1)), SEEK_CUR);
        } else if (memcmp(c, "data", 4) == 0) {
            cr_assert(fmt_ok, "%s: not mono 16 kHz PCM16", path);
            *n = len / 2;
            unsigned char *raw = malloc(len + 1);
            cr_assert_eq(fread(raw, 1, *n * 2, f), *n * 2, "%s: truncated", path);
            float *wav = malloc((*n ? *n : 1) * sizeof(float)); // (n)
            for (size_t i = 0; i < *n; i++) wav[i] = (float)(int16_t)le16(raw + 2 * i) / 32768.0f;
            free(raw);
            fclose(f);
            return wav;
        } else {
            fseek(f, (long)(len + (len & 1)), SEEK_CUR);
        }
    }
    cr_assert_fail("%s: no data chunk", path);
    return NULL;
}

// The (rows, cols) float32 .npy array at path, malloc'd.
static float *read_npy(const char *path, int64_t *rows, int64_t *cols) {
    float *data;
    int ndim;
    int64_t shape[8];
    AvtErr err;
    cr_assert_eq(npy_read_f32(path, &data, &ndim, shape, &err), 0, "%s", err.msg);
    cr_assert_eq(ndim, 2, "%s", path);
    *rows = shape[0], *cols = shape[1];
    return data;
}

// Max |got - ref| over the (T, mels) output, ref read from the .npy file name in the test directory.
static double max_diff(const float *got, const char *name, int T, int mels) {
    int64_t rows, cols;
    float *ref = read_npy(test_path(name), &rows, &cols); // (T, mels)
    cr_assert(rows == T && cols == mels, "%s: torchaudio (%lld, %lld), ours (%d, %d)", name, (long long)rows,
              (long long)cols, T, mels);
    double d = 0.0;
    for (size_t j = 0; j < (size_t)T * (size_t)mels; j++) d = fmax(d, fabs((double)got[j] - ref[j]));
    free(ref);
    return d;
}

// Every file: frame count 1 + (N - 400) / 160; max |diff| within LOG_TOL of torchaudio's float32 path (the
// required agreement) and within LOG_TOL_F64 of torchaudio computed in float64 (our own error: see data/media/fbank.h).
static void against_torchaudio(int mels) {
    cr_assert_eq(test_run("%s tests/reference/fbank_ref.py fbank %d %s %s %s %s", test_python(), mels, dir, WAVS[0],
                          WAVS[1], WAVS[2]),
                 0, "fbank_ref.py");
    FbankPlan p;
    fbank_plan_init(&p, mels);
    for (size_t i = 0; i < N_WAVS; i++) {
        size_t n;
        float *wav = read_wav(WAVS[i], &n); // (n)
        const int T = fbank_frames(n);
        cr_assert_eq(T, (int)(1 + (n - 400) / 160));
        float *got = malloc((size_t)T * (size_t)mels * sizeof(float)); // (T, mels)
        fbank_compute(got, &p, wav, n);
        char f32[32], f64[32];
        snprintf(f32, sizeof f32, "fbank%zu.npy", i);
        snprintf(f64, sizeof f64, "fbank%zu_64.npy", i);
        const double d32 = max_diff(got, f32, T, mels), d64 = max_diff(got, f64, T, mels);
        fprintf(stderr, "fbank: %d bins, %s (%zu samples, %d frames): max |diff| %.3g vs torchaudio float32, %.3g vs "
                "float64\n", mels, WAVS[i], n, T, d32, d64);
        cr_expect_leq(d32, LOG_TOL, "%s: max |diff| %g", WAVS[i], d32);
        cr_expect_leq(d64, LOG_TOL_F64, "%s: max |diff| %g (float64)", WAVS[i], d64);
        if (mels == 128) // bin 3 is empty (docs/data.md §5.4): the floor in every frame, as in torchaudio
            for (size_t t = 0; t < (size_t)T; t++) cr_assert_float_eq(got[t * 128 + 3], -15.942385f, 1e-6);
        free(got);
        free(wav);
    }
    fbank_plan_free(&p);
}

Test(fbank, torchaudio_128_bins) { against_torchaudio(128); }
Test(fbank, torchaudio_80_bins) { against_torchaudio(80); }

Test(fbank, mel_matrix) {
    cr_assert_eq(test_run("%s tests/reference/fbank_ref.py banks %s 80 128", test_python(), dir), 0, "fbank_ref.py");
    const int sizes[] = {80, 128};
    for (size_t s = 0; s < 2; s++) {
        const int M = sizes[s];
        FbankPlan p;
        fbank_plan_init(&p, M);
        char name[32];
        snprintf(name, sizeof name, "banks%d.npy", M);
        int64_t rows, cols;
        float *ref = read_npy(test_path(name), &rows, &cols); // (M, 256)
        cr_assert(rows == M && cols == 256);
        double worst = 0.0;
        for (size_t b = 0; b < (size_t)M; b++) {
            const double *w = p.mel + b * FBANK_NFREQ; // (FBANK_NFREQ)
            for (size_t k = 0; k < 256; k++) {
                const double d = fabs(w[k] - ref[b * 256 + k]);
                worst = fmax(worst, d);
                cr_assert_leq(d, 1e-7, "%d bins: [%zu][%zu] %g vs %g", M, b, k, w[k], ref[b * 256 + k]);
                cr_assert_eq(w[k] > 0, ref[b * 256 + k] > 0, "%d bins: zero pattern at [%zu][%zu]", M, b, k);
                cr_assert_eq(w[k] > 0, (int)k >= p.mel_lo[b] && (int)k < p.mel_hi[b]);
            }
            cr_assert_eq(w[256], 0.0); // Nyquist
        }
        fprintf(stderr, "fbank: %d-bin mel matrix: max |diff| %.3g vs torchaudio\n", M, worst);
        if (M == 80) { // docs/data.md §5.4: bin 0 is non-zero at FFT bins 1 and 2 only
            cr_assert_eq(p.mel_lo[0], 1);
            cr_assert_eq(p.mel_hi[0], 3);
            cr_assert_float_eq(p.mel[1], 0.503983, 1e-6);
            cr_assert_float_eq(p.mel[2], 0.135723, 1e-6);
        } else {
            cr_assert_eq(p.mel_hi[3] - p.mel_lo[3], 0); // the empty bin
        }
        free(ref);
        fbank_plan_free(&p);
    }
}

Test(fbank, frame_counts) {
    cr_assert_eq(fbank_frames(0), 0);
    cr_assert_eq(fbank_frames(399), 0);
    cr_assert_eq(fbank_frames(400), 1);
    cr_assert_eq(fbank_frames(559), 1);
    cr_assert_eq(fbank_frames(560), 2);
    cr_assert_eq(fbank_frames(40000), 248); // docs/data.md §5.2: 2.5 s
}

// A 300-sample WAV: no frames, no steps, nothing written (torchaudio asserts on it).
Test(fbank, short_wav) {
    const char *path = test_path("short.wav");
    const uint32_t n = 300, bytes = 2 * n;
    unsigned char hdr[44] = "RIFF....WAVEfmt \x10\0\0\0\x01\0\x01\0....\0\0\0\0\x02\0\x10\0data....";
    const uint32_t vals[4][2] = {{4, 36 + bytes}, {24, FBANK_SAMPLE_RATE}, {28, 2 * FBANK_SAMPLE_RATE}, {40, bytes}};
    for (size_t i = 0; i < 4; i++)
        for (size_t b = 0; b < 4; b++) hdr[vals[i][0] + b] = (unsigned char)(vals[i][1] >> (8 * b));
    FILE *f = fopen(path, "wb");
    cr_assert(f);
    fwrite(hdr, 1, 44, f);
    for (uint32_t i = 0; i < n; i++) {
        const int16_t v = (int16_t)(1000 * sin(0.1 * i));
        const unsigned char s[2] = {(unsigned char)(v & 0xff), (unsigned char)((uint16_t)v >> 8)};
        fwrite(s, 1, 2, f);
    }
    fclose(f);

    size_t got_n;
    float *wav = read_wav(path, &got_n); // (n)
    cr_assert_eq(got_n, n);
    cr_assert_eq(fbank_frames(got_n), 0);
    cr_assert_eq(fbank_steps(got_n), 0);
    FbankPlan p;
    fbank_plan_init(&p, 128);
    float sentinel = 42.0f;
    fbank_compute(&sentinel, &p, wav, got_n);
    fbank_pool(&sentinel, &sentinel, 0);
    cr_assert_eq(sentinel, 42.0f);
    fbank_plan_free(&p);
    free(wav);
}

Test(fbank, step_counts) {
    cr_assert_eq(fbank_steps(16000), 5);              // 1 s: 98 frames = 4 x 20 + 18
    cr_assert_eq(fbank_steps(17600), 5);              // 1.1 s: 108 frames = 5 x 20 + 8, the 8 dropped
    cr_assert_eq(fbank_steps(19200), 6);              // 1.2 s: 118 frames = 5 x 20 + 18
    cr_assert_eq(fbank_steps(32000), 10);             // 2 s: 198 frames
    cr_assert_eq(fbank_steps(160000), 50);            // 10 s
    cr_assert_eq(fbank_steps(3200), 1);               // 18 frames: one partial step
    cr_assert_eq(fbank_steps(400 + 9 * 160), 1);      // 10 frames: the minimum
    cr_assert_eq(fbank_steps(400 + 9 * 160 - 1), 0);  // 9 frames
    cr_assert_eq(fbank_steps(400 + 29 * 160), 2);     // 30 frames
    cr_assert_eq(fbank_steps(400 + 29 * 160 - 1), 1); // 29 frames
    cr_assert_eq(fbank_steps_from_frames(0), 0);
    cr_assert_eq(fbank_steps_from_frames(40), 2);
    cr_assert_eq(fbank_steps_from_frames(FBANK_STEP_MIN_FRAMES), 1);
}

// Pooled statistics of real log-mels against a direct float64 computation, including the partial last step.
Test(fbank, pool_statistics) {
    size_t n;
    float *wav = read_wav(WAVS[0], &n); // (n): 17,526 samples
    n = 16000;                          // 1 s: 98 frames, 4 full steps and one of 18
    FbankPlan p;
    fbank_plan_init(&p, FBANK_POOL_MELS);
    const int T = fbank_frames(n), S = fbank_steps(n);
    cr_assert_eq(T, 98);
    cr_assert_eq(S, 5);
    float *frames = malloc((size_t)T * FBANK_POOL_MELS * sizeof(float)); // (T, 128)
    float *steps = malloc((size_t)S * FBANK_STEP_DIM * sizeof(float));   // (S, 512)
    fbank_compute(frames, &p, wav, n);
    fbank_pool(steps, frames, T);
    for (int k = 0; k < S; k++) {
        const int t0 = 20 * k, t1 = k < 4 ? t0 + 20 : T;
        for (int b = 0; b < FBANK_POOL_MELS; b++) {
            double sum = 0, sq = 0, lo = INFINITY, hi = -INFINITY;
            for (int t = t0; t < t1; t++) {
                const double v = frames[(size_t)t * FBANK_POOL_MELS + (size_t)b];
                sum += v, sq += v * v, lo = fmin(lo, v), hi = fmax(hi, v);
            }
            const double mean = sum / (t1 - t0), sd = sqrt(fmax(sq / (t1 - t0) - mean * mean, 0.0));
            const float *o = steps + (size_t)k * FBANK_STEP_DIM; // (512)
            cr_assert_float_eq(o[b], mean, 1e-5, "step %d bin %d mean", k, b);
            cr_assert_float_eq(o[128 + b], sd, 1e-4, "step %d bin %d std", k, b);
            cr_assert_eq(o[256 + b], (float)lo);
            cr_assert_eq(o[384 + b], (float)hi);
        }
        cr_assert_eq(steps[(size_t)k * FBANK_STEP_DIM + 128 + 3], 0.0f); // the constant empty bin
    }
    // Step k is the paper's chunk k: the audio from sample 3200 k on gives step k as its step 0, bit for bit.
    for (int k = 1; k < S; k++) {
        const size_t off = (size_t)k * FBANK_STEP_SAMPLES;
        const int Tk = fbank_frames(n - off);
        float *sub = malloc((size_t)Tk * FBANK_POOL_MELS * sizeof(float)); // (Tk, 128)
        float one[FBANK_STEP_DIM];                                         // (512) its step 0
        fbank_compute(sub, &p, wav + off, n - off);
        fbank_pool(one, sub, Tk < FBANK_STEP_FRAMES ? Tk : FBANK_STEP_FRAMES);
        cr_assert_arr_eq(one, steps + (size_t)k * FBANK_STEP_DIM, sizeof one, "step %d", k);
        free(sub);
    }
    free(steps);
    free(frames);
    fbank_plan_free(&p);
    free(wav);
}
