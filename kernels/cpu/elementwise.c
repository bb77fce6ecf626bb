// Pointwise kernels. Large tensors are split across threads; small ones stay serial (thread start-up dominates).
// Without -fopenmp the pragmas are meant to compile away; keep -Wall -Werror from rejecting them.
#ifndef _OPENMP
#pragma GCC diagnostic ignored "-Wunknown-pragmas"
#endif

#include "kernels.h"

#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#define EW_PAR_MIN 65536

int kernel_threads(void) {
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}

void relu_forward(float *out, const float *inp, size_t n) {
    // out, inp (n); may alias
#pragma omp parallel for if (n > EW_PAR_MIN)
    for (size_t i = 0; i < n; i++) out[i] = inp[i] > 0.0f ? inp[i] : 0.0f;
}

void relu_backward(float *dinp, const float *dout, const float *out, size_t n) {
    // dinp, dout, out (n); out is the forward output, so this works after an in-place forward
#pragma omp parallel for if (n > EW_PAR_MIN)
    for (size_t i = 0; i < n; i++) dinp[i] += out[i] > 0.0f ? dout[i] : 0.0f;
}

void add_forward(float *out, const float *a, const float *b, size_t n) {
    // out, a, b (n); out may alias a or b
#pragma omp parallel for if (n > EW_PAR_MIN)
    for (size_t i = 0; i < n; i++) out[i] = a[i] + b[i];
}

void concat_forward(float *out, const float *a, const float *b, size_t N, int C1, int C2) {
    // out (N, C1 + C2); a (N, C1); b (N, C2)
    const size_t C = (size_t)C1 + (size_t)C2;
#pragma omp parallel for if (N * C > EW_PAR_MIN)
    for (size_t r = 0; r < N; r++) {
        memcpy(out + r * C, a + r * C1, (size_t)C1 * sizeof(float));
        memcpy(out + r * C + C1, b + r * C2, (size_t)C2 * sizeof(float));
    }
}

void concat_backward(float *da, float *db, const float *dout, size_t N, int C1, int C2) {
    // da (N, C1), db (N, C2) or NULL; dout (N, C1 + C2)
    const size_t C = (size_t)C1 + (size_t)C2;
#pragma omp parallel for if (N * C > EW_PAR_MIN)
    for (size_t r = 0; r < N; r++) {
        const float *g = dout + r * C;
        if (da)
            for (int c = 0; c < C1; c++) da[r * C1 + c] += g[c];
        if (db)
            for (int c = 0; c < C2; c++) db[r * C2 + c] += g[C1 + c];
    }
}

// The multipliers of Philox block blk (elements 4*blk .. 4*blk+3): one generator call yields four draws, and
// each equals dropout_scale(key, 4*blk + w) bit for bit (same expression as philox_uniform). Needs p > 0.
static inline void dropout_block(float s[4], DropoutKey key, uint64_t blk) {
    Philox4 c = {{(uint32_t)blk, (uint32_t)(blk >> 32), key.site, key.step}};
    Philox4 r = philox4x32_10(c, (uint32_t)key.seed, (uint32_t)(key.seed >> 32));
    const float keep = 1.0f / (1.0f - key.p);
    for (int w = 0; w < 4; w++) s[w] = (float)(r.v[w] >> 8) * (1.0f / 16777216.0f) >= key.p ? keep : 0.0f;
}

void dropout_forward(float *out, const float *inp, DropoutKey drop, size_t n) {
    // out, inp (n); may alias
    if (drop.p <= 0.0f) {
        if (out != inp) memmove(out, inp, n * sizeof(float));
        return;
    }
    const size_t nblk = (n + 3) / 4;
#pragma omp parallel for if (n > EW_PAR_MIN / 4)
    for (size_t blk = 0; blk < nblk; blk++) {
        float s[4];
        dropout_block(s, drop, blk);
        for (size_t w = 0, i = blk * 4; w < 4 && i < n; w++, i++) out[i] = inp[i] * s[w];
    }
}

void dropout_backward(float *dinp, const float *dout, DropoutKey drop, size_t n) {
    // dinp, dout (n)
    if (drop.p <= 0.0f) {
#pragma omp parallel for if (n > EW_PAR_MIN)
        for (size_t i = 0; i < n; i++) dinp[i] += dout[i];
        return;
    }
    const size_t nblk = (n + 3) / 4;
#pragma omp parallel for if (n > EW_PAR_MIN / 4)
    for (size_t blk = 0; blk < nblk; blk++) {
        float s[4];
        dropout_block(s, drop, blk);
        for (size_t w = 0, i = blk * 4; w < 4 && i < n; w++, i++) dinp[i] += dout[i] * s[w];
    }
}
