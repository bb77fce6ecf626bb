// Pointwise kernels. Large tensors are split across threads; small ones stay serial (thread start-up dominates).
// Without -fopenmp the pragmas are meant to compile away; keep -Wall -Werror from rejecting them.
#ifndef _OPENMP
#pragma GCC diagnostic ignored "-Wunknown-pragmas"
#endif

#include "kernels/cpu/kernels.h"

#include <string.h>
#include "base/cpu.h"
#ifdef AVT_X86
#include <immintrin.h>
#endif
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

#define PHILOX_LANES 8

// Philox4x32-10 of counters (blk0 + l, site, step), l < 8, bit-identical to philox4x32_10 lane by lane.
typedef void PhiloxX8(uint32_t out[4][PHILOX_LANES], uint64_t blk0, DropoutKey key);

static void philox_x8_generic(uint32_t out[4][PHILOX_LANES], uint64_t blk0, DropoutKey key) {
    for (int l = 0; l < PHILOX_LANES; l++) {
        uint64_t blk = blk0 + (uint64_t)l;
        Philox4 c = {{(uint32_t)blk, (uint32_t)(blk >> 32), key.site, key.step}};
        Philox4 r = philox4x32_10(c, (uint32_t)key.seed, (uint32_t)(key.seed >> 32));
        for (int w = 0; w < 4; w++) out[w][l] = r.v[w];
    }
}

#ifdef AVT_X86
// (hi, lo) of a * m per 32-bit lane: vpmuludq multiplies the even lanes, so run it on a and on a >> 32.
static inline AVT_TARGET_AVX2 void mulhilo8(__m256i a, __m256i m, __m256i *hi, __m256i *lo) {
    __m256i pe = _mm256_mul_epu32(a, m), po = _mm256_mul_epu32(_mm256_srli_epi64(a, 32), m);
    *lo = _mm256_blend_epi32(pe, _mm256_slli_epi64(po, 32), 0xAA);
    *hi = _mm256_blend_epi32(_mm256_srli_epi64(pe, 32), po, 0xAA);
}

static AVT_TARGET_AVX2 void philox_x8_avx2(uint32_t out[4][PHILOX_LANES], uint64_t blk0, DropoutKey key) {
    // The counters blk0 + l, built in registers (through memory they stall on store forwarding): low words, and
    // high words plus one where the low word wrapped (wrapped = -1 there: an unsigned compare via the sign flip).
    const __m256i base = _mm256_set1_epi32((int)(uint32_t)blk0), sign = _mm256_set1_epi32(INT32_MIN);
    __m256i c0 = _mm256_add_epi32(base, _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    const __m256i wrapped = _mm256_cmpgt_epi32(_mm256_xor_si256(base, sign), _mm256_xor_si256(c0, sign));
    __m256i c1 = _mm256_sub_epi32(_mm256_set1_epi32((int)(uint32_t)(blk0 >> 32)), wrapped);
    __m256i c2 = _mm256_set1_epi32((int)key.site), c3 = _mm256_set1_epi32((int)key.step);
    const __m256i m0 = _mm256_set1_epi32((int)0xD2511F53u), m1 = _mm256_set1_epi32((int)0xCD9E8D57u);
    uint32_t k0 = (uint32_t)key.seed, k1 = (uint32_t)(key.seed >> 32);
    for (int r = 0; r < 10; r++) {
        __m256i hi0, lo0, hi1, lo1;
        mulhilo8(c0, m0, &hi0, &lo0);
        mulhilo8(c2, m1, &hi1, &lo1);
        c0 = _mm256_xor_si256(_mm256_xor_si256(hi1, c1), _mm256_set1_epi32((int)k0));
        c1 = lo1;
        c2 = _mm256_xor_si256(_mm256_xor_si256(hi0, c3), _mm256_set1_epi32((int)k1));
        c3 = lo0;
        k0 += 0x9E3779B9u, k1 += 0xBB67AE85u;
    }
    _mm256_storeu_si256((__m256i *)out[0], c0);
    _mm256_storeu_si256((__m256i *)out[1], c1);
    _mm256_storeu_si256((__m256i *)out[2], c2);
    _mm256_storeu_si256((__m256i *)out[3], c3);
}
#endif

// dropout_scales past its p == 0 case and offset, for one way of drawing eight blocks. Inlined into the generic and
// the AVX2 entry points below, so the AVX2 one is compiled whole for AVX2 (its Philox rounds inlined, not called).
static AVT_ALWAYS_INLINE void scales_with(PhiloxX8 *philox_x8, float *m, DropoutKey drop, size_t base, size_t n) {
    const float keep = 1.0f / (1.0f - drop.p);
    size_t j = 0;
    while (j < n) {
        uint64_t blk0 = (uint64_t)(base + j) >> 2;
        uint32_t r[4][PHILOX_LANES], words[4 * PHILOX_LANES]; // words: elements 4*blk0 .. 4*blk0 + 31 in order
        philox_x8(r, blk0, drop);
        for (int l = 0; l < PHILOX_LANES; l++)
            for (int w = 0; w < 4; w++) words[4 * l + w] = r[w][l];
        size_t off = base + j - 4 * blk0, cnt = 4 * PHILOX_LANES - off;
        if (cnt > n - j) cnt = n - j;
        for (size_t k = 0; k < cnt; k++)
            m[j + k] = (float)(words[off + k] >> 8) * (1.0f / 16777216.0f) >= drop.p ? keep : 0.0f;
        j += cnt;
    }
}

static void scales_generic(float *m, DropoutKey drop, size_t base, size_t n) {
    scales_with(philox_x8_generic, m, drop, base, n);
}

#ifdef AVT_X86
static AVT_TARGET_AVX2 void scales_avx2(float *m, DropoutKey drop, size_t base, size_t n) {
    scales_with(philox_x8_avx2, m, drop, base, n);
}
#endif

void dropout_scales(float *m, DropoutKey drop, size_t base, size_t n) {
    // m (n)
    if (drop.p <= 0.0f) {
        for (size_t j = 0; j < n; j++) m[j] = 1.0f;
        return;
    }
    base += drop.offset;
#ifdef AVT_X86
    if (avt_cpu_avx2()) { // the CPU's choice, or AVT_CPU=generic (base/cpu.h)
        scales_avx2(m, drop, base, n);
        return;
    }
#endif
    scales_generic(m, drop, base, n);
}

#define DROPOUT_CHUNK 1024 // elements per task: the multipliers live on the stack

// y = x * mask, or y += x * mask when accumulating (the backward)
static void dropout_apply(float *y, const float *x, DropoutKey drop, size_t n, int accumulate) {
    if (drop.p <= 0.0f) {
        if (!accumulate) {
            if (y != x) memmove(y, x, n * sizeof(float));
            return;
        }
#pragma omp parallel for if (n > EW_PAR_MIN)
        for (size_t i = 0; i < n; i++) y[i] += x[i];
        return;
    }
    const size_t nchunk = (n + DROPOUT_CHUNK - 1) / DROPOUT_CHUNK;
#pragma omp parallel for if (n > EW_PAR_MIN)
    for (size_t c = 0; c < nchunk; c++) {
        float m[DROPOUT_CHUNK];
        size_t i0 = c * DROPOUT_CHUNK, len = n - i0 < DROPOUT_CHUNK ? n - i0 : DROPOUT_CHUNK;
        dropout_scales(m, drop, i0, len);
        if (accumulate)
            for (size_t j = 0; j < len; j++) y[i0 + j] += x[i0 + j] * m[j];
        else
            for (size_t j = 0; j < len; j++) y[i0 + j] = x[i0 + j] * m[j];
    }
}

void dropout_forward(float *out, const float *inp, DropoutKey drop, size_t n) {
    // out, inp (n); may alias
    dropout_apply(out, inp, drop, n, 0);
}

void dropout_backward(float *dinp, const float *dout, DropoutKey drop, size_t n) {
    // dinp, dout (n)
    dropout_apply(dinp, dout, drop, n, 1);
}

void gather_rows_forward(float *out, const float *inp, const int *rows, int n, int C) {
    // out (n, C); inp (N, C); rows (n), each in [0, N) (the caller checks)
#pragma omp parallel for if ((size_t)n * (size_t)C > EW_PAR_MIN)
    for (int r = 0; r < n; r++) memcpy(out + (size_t)r * C, inp + (size_t)rows[r] * C, (size_t)C * sizeof(float));
}

void gather_rows_backward(float *dinp, const float *dout, const int *rows, int n, int C) {
    // dinp (N, C); dout (n, C); rows (n). Serial in r: a repeated row adds its gradients in the order r = 0..n-1.
    for (int r = 0; r < n; r++) {
        float *d = dinp + (size_t)rows[r] * C;
        const float *g = dout + (size_t)r * C;
        for (int c = 0; c < C; c++) d[c] += g[c];
    }
}
