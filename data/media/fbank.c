// Kaldi-compatible log-mel filterbank and its pooling to 200 ms steps (see fbank.h for the exact definition).
#include "data/media/fbank.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#define HALF (FBANK_NFFT / 2) // the real 512-point FFT runs as a 256-point complex FFT

static void *xcalloc(size_t n, size_t size) {
    void *q = calloc(n, size);
    if (!q) {
        fprintf(stderr, "fbank: out of memory\n");
        abort();
    }
    return q;
}

static double mel_scale(double f) { return 1127.0 * log(1.0 + f / 700.0); }

void fbank_plan_init(FbankPlan *p, int num_mel_bins) {
    p->num_mel_bins = num_mel_bins;
    p->window = xcalloc(FBANK_WIN, sizeof(double));
    p->tw_cos = xcalloc(HALF, sizeof(double));
    p->tw_sin = xcalloc(HALF, sizeof(double));
    p->bitrev = xcalloc(HALF, sizeof(int));
    p->mel = xcalloc((size_t)num_mel_bins * FBANK_NFREQ, sizeof(double));
    p->mel_lo = xcalloc((size_t)num_mel_bins, sizeof(int));
    p->mel_hi = xcalloc((size_t)num_mel_bins, sizeof(int));

    const double two_pi = 2.0 * acos(-1.0);
    for (size_t j = 0; j < FBANK_WIN; j++) // symmetric Hann: the denominator is N - 1
        p->window[j] = pow(0.5 - 0.5 * cos(two_pi * (double)j / (FBANK_WIN - 1)), 0.85);
    for (size_t k = 0; k < HALF; k++) {
        p->tw_cos[k] = cos(two_pi * (double)k / FBANK_NFFT);
        p->tw_sin[k] = -sin(two_pi * (double)k / FBANK_NFFT);
        int r = 0;
        for (int b = 0; b < 8; b++) r |= (int)((k >> b) & 1) << (7 - b);
        p->bitrev[k] = r;
    }

    // Kaldi mel banks: equally spaced in mel from 20 Hz to Nyquist, triangles evaluated on the mel of each FFT
    // bin's frequency; FFT bin 256 (Nyquist) keeps weight 0, as torchaudio pads a zero column.
    const double lo = mel_scale(20.0), hi = mel_scale(FBANK_SAMPLE_RATE / 2.0);
    const double delta = (hi - lo) / (num_mel_bins + 1);
    const double bin_hz = (double)FBANK_SAMPLE_RATE / FBANK_NFFT;
    for (int b = 0; b < num_mel_bins; b++) {
        const double left = lo + b * delta, center = left + delta, right = left + 2.0 * delta;
        double *w = p->mel + (size_t)b * FBANK_NFREQ; // (FBANK_NFREQ)
        p->mel_lo[b] = p->mel_hi[b] = 0;
        for (size_t k = 0; k < HALF; k++) {
            const double m = mel_scale((double)k * bin_hz);
            const double up = (m - left) / (center - left), down = (right - m) / (right - center);
            const double v = fmax(0.0, fmin(up, down));
            w[k] = v;
            if (v > 0.0) {
                if (p->mel_hi[b] == 0) p->mel_lo[b] = (int)k;
                p->mel_hi[b] = (int)k + 1;
            }
        }
    }
}

void fbank_plan_free(FbankPlan *p) {
    free(p->window);
    free(p->tw_cos);
    free(p->tw_sin);
    free(p->bitrev);
    free(p->mel);
    free(p->mel_lo);
    free(p->mel_hi);
    *p = (FbankPlan){0};
}

int fbank_frames(size_t n_samples) {
    return n_samples < FBANK_WIN ? 0 : (int)(1 + (n_samples - FBANK_WIN) / FBANK_HOP);
}

// Power spectrum (FBANK_NFREQ) of the real frame x (FBANK_NFFT). The even / odd samples are packed as the real /
// imaginary parts of a 256-point complex signal z, transformed by an iterative radix-2 FFT, and the two
// interleaved spectra separated: X[k] = E[k] + W^k O[k] with E = (Z[k] + conj Z[256-k]) / 2,
// O = (Z[k] - conj Z[256-k]) / 2i, W = exp(-2 pi i / 512).
static void power_spectrum(double *pow_out /* (FBANK_NFREQ) */, const FbankPlan *p, const double *x /* (NFFT) */) {
    double zr[HALF], zi[HALF]; // (HALF) Z, in place
    for (size_t n = 0; n < HALF; n++) {
        const size_t r = (size_t)p->bitrev[n];
        zr[r] = x[2 * n];
        zi[r] = x[2 * n + 1];
    }
    for (size_t len = 2; len <= HALF; len *= 2) {
        const size_t half = len / 2, stride = FBANK_NFFT / len; // W_len^j = W_512^(j * 512 / len)
        for (size_t s = 0; s < HALF; s += len) {
            for (size_t j = 0; j < half; j++) {
                const double c = p->tw_cos[j * stride], si = p->tw_sin[j * stride];
                const size_t a = s + j, b = a + half;
                const double tr = zr[b] * c - zi[b] * si, ti = zr[b] * si + zi[b] * c;
                zr[b] = zr[a] - tr;
                zi[b] = zi[a] - ti;
                zr[a] += tr;
                zi[a] += ti;
            }
        }
    }
    // k = 0 and k = 256 both come from Z[0]: X[0] = Re + Im, X[256] = Re - Im.
    pow_out[0] = (zr[0] + zi[0]) * (zr[0] + zi[0]);
    pow_out[HALF] = (zr[0] - zi[0]) * (zr[0] - zi[0]);
    for (size_t k = 1; k < HALF; k++) {
        const double ar = zr[k], ai = zi[k], br = zr[HALF - k], bi = zi[HALF - k];
        const double er = 0.5 * (ar + br), ei = 0.5 * (ai - bi);
        const double orr = 0.5 * (ai + bi), oi = -0.5 * (ar - br);
        const double c = p->tw_cos[k], s = p->tw_sin[k];
        const double xr = er + c * orr - s * oi, xi = ei + c * oi + s * orr;
        pow_out[k] = xr * xr + xi * xi;
    }
}

void fbank_compute(float *out, const FbankPlan *p, const float *wav, size_t n) {
    const int T = fbank_frames(n);
    const int M = p->num_mel_bins;
#pragma omp parallel for if (T > 64)
    for (int t = 0; t < T; t++) {
        const float *x = wav + (size_t)t * FBANK_HOP; // (FBANK_WIN)
        double frame[FBANK_NFFT];                     // (FBANK_NFFT) the windowed, zero-padded frame
        double power[FBANK_NFREQ];                    // (FBANK_NFREQ)
        double sum = 0.0;
        for (size_t j = 0; j < FBANK_WIN; j++) sum += x[j];
        const double mean = sum / FBANK_WIN;
        for (size_t j = 0; j < FBANK_WIN; j++) frame[j] = x[j] - mean;
        // Pre-emphasis from the end so that frame[j - 1] is still the un-emphasised sample.
        for (size_t j = FBANK_WIN - 1; j > 0; j--) frame[j] -= 0.97 * frame[j - 1];
        frame[0] -= 0.97 * frame[0];
        for (size_t j = 0; j < FBANK_WIN; j++) frame[j] *= p->window[j];
        for (size_t j = FBANK_WIN; j < FBANK_NFFT; j++) frame[j] = 0.0;
        power_spectrum(power, p, frame);
        float *o = out + (size_t)t * (size_t)M; // (M)
        for (int b = 0; b < M; b++) {
            const double *w = p->mel + (size_t)b * FBANK_NFREQ; // (FBANK_NFREQ)
            double e = 0.0;
            for (int k = p->mel_lo[b]; k < p->mel_hi[b]; k++) e += w[k] * power[k];
            o[b] = (float)log(fmax(e, FLT_EPSILON));
        }
    }
}

int fbank_steps_from_frames(int T) {
    if (T <= 0) return 0;
    return T / FBANK_STEP_FRAMES + (T % FBANK_STEP_FRAMES >= FBANK_STEP_MIN_FRAMES);
}

int fbank_steps(size_t n_samples) { return fbank_steps_from_frames(fbank_frames(n_samples)); }

void fbank_pool(float *steps, const float *frames, int T) {
    const int S = fbank_steps_from_frames(T);
    for (int k = 0; k < S; k++) {
        const size_t t0 = (size_t)k * FBANK_STEP_FRAMES;
        const size_t t1 = t0 + FBANK_STEP_FRAMES < (size_t)T ? t0 + FBANK_STEP_FRAMES : (size_t)T;
        float *o = steps + (size_t)k * FBANK_STEP_DIM; // (FBANK_STEP_DIM)
        for (size_t b = 0; b < FBANK_POOL_MELS; b++) {
            double sum = 0.0;
            float lo = INFINITY, hi = -INFINITY;
            for (size_t t = t0; t < t1; t++) {
                const float v = frames[t * FBANK_POOL_MELS + b];
                sum += v;
                lo = fminf(lo, v);
                hi = fmaxf(hi, v);
            }
            const double mean = sum / (double)(t1 - t0);
            double ss = 0.0; // two passes: the spread is small next to log-mel magnitudes of about 10
            for (size_t t = t0; t < t1; t++) {
                const double d = frames[t * FBANK_POOL_MELS + b] - mean;
                ss += d * d;
            }
            o[b] = (float)mean;
            o[FBANK_POOL_MELS + b] = (float)sqrt(ss / (double)(t1 - t0));
            o[2 * FBANK_POOL_MELS + b] = lo;
            o[3 * FBANK_POOL_MELS + b] = hi;
        }
    }
}
