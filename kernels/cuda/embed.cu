// Encoder input step, the twin of kernels/cpu/embed.c: out = sqrt(C) * inp + PE(pos), with fairseq's sinusoidal
// table (padding_idx 0). The scalars the CPU computes in double (the frequency step, sqrt(C)) are computed on the
// host the same way and passed in, so only the device expf/sinf/cosf can differ from the CPU (within CUDA_TOL).
#include <math.h>

#include "kernels/cuda/kernels.cuh"

#define EMBED_BLOCK 256
#define EMBED_MAX_GRID 4096u

static inline unsigned embed_grid(size_t n) { return avt_grid(n, EMBED_BLOCK, EMBED_MAX_GRID); }

// pe (Tmax + 1, C): row p is position p; row 0 (padding) and, for odd C, the last column are zero.
// Item (p, c) with c < nfreq is sin(p * w_c), with nfreq <= c < 2 nfreq cos(p * w_{c - nfreq}); w_k = exp(k * step),
// all in fp32 as the CPU (and torch) compute them.
static __global__ void sinusoid_table_kernel(float *pe, int Tmax, int C, float step) {
    const size_t n = ((size_t)Tmax + 1) * (size_t)C;
    const int nfreq = C / 2;
    for (size_t i = GRID_START; i < n; i += GRID_STRIDE) {
        const int p = (int)(i / (size_t)C), c = (int)(i % (size_t)C);
        float v = 0.0f;
        if (p > 0 && c < 2 * nfreq) {
            const int k = c < nfreq ? c : c - nfreq;
            const float a = (float)p * expf((float)k * step);
            v = c < nfreq ? sinf(a) : cosf(a);
        }
        pe[i] = v;
    }
}

// out, inp (B, T, C), must not alias (channel 0 of a row decides the row's position); pe (Tmax + 1, C), Tmax >= T.
// pos(b, t) = 0 when inp[b, t, 0] == 0.0f exactly (padding: no PE), else t + 1.
static __global__ void embed_forward_kernel(float *out, const float *inp, const float *pe, int T, int C, float s,
                                            size_t n) {
    for (size_t i = GRID_START; i < n; i += GRID_STRIDE) {
        const size_t r = i / (size_t)C, c = i % (size_t)C;
        const size_t t = r % (size_t)T;
        const size_t pos = inp[r * C] == 0.0f ? 0 : t + 1;
        // separate rounding of the product and the sum, as the CPU (no FMA contraction)
        out[i] = __fadd_rn(__fmul_rn(s, inp[i]), pe[pos * C + c]);
    }
}

// dinp, dout (B, T, C): the position choice is piecewise constant, so only the scale has a gradient
static __global__ void embed_backward_kernel(float *dinp, const float *dout, float s, size_t n) {
    for (size_t i = GRID_START; i < n; i += GRID_STRIDE) dinp[i] = __fadd_rn(dinp[i], __fmul_rn(s, dout[i]));
}

extern "C" {

void sinusoid_table_cuda(float *pe, int Tmax, int C, cudaStream_t stream) {
    const int nfreq = C / 2;
    // fairseq divides by nfreq - 1; below that its reference raises, so there is nothing to match.
    if (nfreq < 2) avt_fatal("sinusoid_table_cuda: embedding width %d < 4", C);
    const float step = (float)(-log(10000.0) / (double)(nfreq - 1));
    const size_t n = ((size_t)Tmax + 1) * (size_t)C;
    LAUNCH(sinusoid_table_kernel, embed_grid(n), EMBED_BLOCK, 0, stream, pe, Tmax, C, step);
}

void embed_forward_cuda(float *out, const float *inp, const float *pe, int B, int T, int C, cudaStream_t stream) {
    const size_t n = (size_t)B * T * C;
    if (n == 0) return;
    const float s = (float)sqrt((double)C);
    LAUNCH(embed_forward_kernel, embed_grid(n), EMBED_BLOCK, 0, stream, out, inp, pe, T, C, s, n);
}

void embed_backward_cuda(float *dinp, const float *dout, int B, int T, int C, cudaStream_t stream) {
    const size_t n = (size_t)B * T * C;
    if (!dinp || n == 0) return;
    const float s = (float)sqrt((double)C);
    LAUNCH(embed_backward_kernel, embed_grid(n), EMBED_BLOCK, 0, stream, dinp, dout, s, n);
}

}  // extern "C"
