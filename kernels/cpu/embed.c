// Encoder input step: scaled features plus fairseq's sinusoidal positional embedding (padding_idx 0).
// Without -fopenmp the pragmas are meant to compile away; keep -Wall -Werror from rejecting them.
#ifndef _OPENMP
#pragma GCC diagnostic ignored "-Wunknown-pragmas"
#endif

#include "kernels/cpu/kernels.h"

#include <math.h>
#include <string.h>

#include "base/common.h"

void sinusoid_table(float *pe, int Tmax, int C) {
    // pe (Tmax + 1, C); row p is position p, row 0 (padding) all zeros
    const int half = C / 2;
    // fairseq divides by half - 1; below that its reference raises, so there is nothing to match.
    if (half < 2) avt_fatal("sinusoid_table: embedding width %d < 4", C);
    // Frequencies and angles in fp32, as torch computes them, so the table matches the reference bit for bit
    // up to the libm sin/cos rounding.
    const float step = (float)(-log(10000.0) / (double)(half - 1));
    memset(pe, 0, (size_t)C * sizeof(float));
#pragma omp parallel for if ((size_t)Tmax * C > 65536)
    for (int p = 1; p <= Tmax; p++) {
        float *row = pe + (size_t)p * C;
        for (int k = 0; k < half; k++) {
            const float w = expf((float)k * step);
            const float a = (float)p * w;
            row[k] = sinf(a);
            row[half + k] = cosf(a);
        }
        if (C & 1) row[C - 1] = 0.0f;
    }
}

void embed_forward(float *out, const float *inp, const float *pe, int B, int T, int C) {
    // out, inp (B, T, C); pe (Tmax + 1, C) with Tmax >= T
    const float s = (float)sqrt((double)C);
#pragma omp parallel for collapse(2) if ((size_t)B * T * C > 65536)
    for (int b = 0; b < B; b++) {
        for (int t = 0; t < T; t++) {
            const size_t r = (size_t)b * T + t;
            const float *x = inp + r * C;
            float *o = out + r * C;
            // A step whose channel 0 is exactly zero counts as padding (fairseq make_positions on features):
            // it gets row 0 of the table, i.e. no PE. Other steps keep their absolute index t + 1.
            const float *p = pe + (x[0] == 0.0f ? 0 : (size_t)(t + 1)) * C;
            for (int c = 0; c < C; c++) o[c] = s * x[c] + p[c];
        }
    }
}

void embed_backward(float *dinp, const float *dout, int B, int T, int C) {
    // dinp, dout (B, T, C); the position choice is piecewise constant, so only the scale has a gradient
    if (!dinp) return;
    const float s = (float)sqrt((double)C);
    const size_t n = (size_t)B * T * C;
#pragma omp parallel for if (n > 65536)
    for (size_t i = 0; i < n; i++) dinp[i] += s * dout[i];
}
