// LayerNorm over the last dimension (PyTorch semantics: biased variance, eps inside the square root).
// Without -fopenmp the pragmas are meant to compile away; keep -Wall -Werror from rejecting them.
#ifndef _OPENMP
#pragma GCC diagnostic ignored "-Wunknown-pragmas"
#endif

#include "kernels/cpu/kernels.h"

#include <math.h>
#include <stdlib.h>

#include "base/common.h"

#define LN_EPS 1e-5f
// dweight/dbias are reduced over fixed row blocks, then the blocks are summed in order, so the result is
// identical for any thread count (and no float atomics are needed).
#define LN_ROWS_PER_BLOCK 64

void layernorm_forward(float *out, float *mean, float *rstd, const float *inp, const float *weight,
                       const float *bias, size_t N, int C) {
    // out (N, C), mean (N), rstd (N); inp (N, C), weight (C), bias (C)
#pragma omp parallel for if (N * (size_t)C > 16384)
    for (size_t r = 0; r < N; r++) {
        const float *x = inp + r * C;
        float *o = out + r * C;
        // Two passes (mean, then centred squares) avoid the cancellation of E[x^2] - E[x]^2.
        double s = 0.0;
        for (int c = 0; c < C; c++) s += x[c];
        float m = (float)(s / C);
        double v = 0.0;
        for (int c = 0; c < C; c++) {
            float d = x[c] - m;
            v += (double)d * d;
        }
        float rs = 1.0f / sqrtf((float)(v / C) + LN_EPS);
        for (int c = 0; c < C; c++) o[c] = (x[c] - m) * rs * weight[c] + bias[c];
        if (mean) mean[r] = m;
        if (rstd) rstd[r] = rs;
    }
}

size_t layernorm_backward_ws_floats(size_t N, int C) {
    return (N + LN_ROWS_PER_BLOCK - 1) / LN_ROWS_PER_BLOCK * 2 * (size_t)C;
}

void layernorm_backward(float *dinp, float *dweight, float *dbias, float *ws, const float *dout, const float *inp,
                        const float *weight, const float *mean, const float *rstd, size_t N, int C) {
    // dinp (N, C), dweight (C), dbias (C); dout, inp (N, C); weight (C); mean, rstd (N)
    if (N == 0 || C <= 0) return;
    if (dinp) {
#pragma omp parallel for if (N * (size_t)C > 16384)
        for (size_t r = 0; r < N; r++) {
            const float *x = inp + r * C, *dy = dout + r * C;
            float *dx = dinp + r * C;
            float m = mean[r], rs = rstd[r];
            // dx = rstd * (g - mean(g) - xhat * mean(g * xhat)) with g = dy * weight
            double sg = 0.0, sgx = 0.0;
            for (int c = 0; c < C; c++) {
                float g = dy[c] * weight[c];
                sg += g;
                sgx += (double)g * ((x[c] - m) * rs);
            }
            float mg = (float)(sg / C), mgx = (float)(sgx / C);
            for (int c = 0; c < C; c++) {
                float xhat = (x[c] - m) * rs;
                dx[c] += rs * (dy[c] * weight[c] - mg - xhat * mgx);
            }
        }
    }
    if (!dweight && !dbias) return;
    size_t nblk = (N + LN_ROWS_PER_BLOCK - 1) / LN_ROWS_PER_BLOCK;
    // part (nblk, 2, C): per block [sum dy * xhat | sum dy]
    float *part = ws;
#pragma omp parallel for if (N * (size_t)C > 16384)
    for (size_t blk = 0; blk < nblk; blk++) {
        float *pw = part + blk * 2 * C, *pb = pw + C;
        for (int c = 0; c < C; c++) pw[c] = pb[c] = 0.0f;
        size_t r1 = (blk + 1) * LN_ROWS_PER_BLOCK < N ? (blk + 1) * LN_ROWS_PER_BLOCK : N;
        for (size_t r = blk * LN_ROWS_PER_BLOCK; r < r1; r++) {
            const float *x = inp + r * C, *dy = dout + r * C;
            float m = mean[r], rs = rstd[r];
            for (int c = 0; c < C; c++) {
                pw[c] += dy[c] * ((x[c] - m) * rs);
                pb[c] += dy[c];
            }
        }
    }
    for (int c = 0; c < C; c++) {
        double sw = 0.0, sb = 0.0;
        for (size_t blk = 0; blk < nblk; blk++) {
            sw += part[blk * 2 * C + c];
            sb += part[blk * 2 * C + C + c];
        }
        if (dweight) dweight[c] += (float)sw;
        if (dbias) dbias[c] += (float)sb;
    }
}
