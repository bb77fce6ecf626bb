// Pointwise kernels, the twins of kernels/cpu/elementwise.c. Every kernel walks its tensor with a grid-stride loop
// in size_t, so one launch configuration covers any n (the grid is capped: past a few waves more blocks only add
// scheduling cost). Results are bit-identical to the CPU: products that feed an addition are rounded on their own
// (__fmul_rn, __fadd_rn): no FMA contraction, as in the CPU build (ISO C, -ffp-contract=off).
#include "kernels/cuda/kernels.cuh"

#define EW_BLOCK 256
#define EW_MAX_GRID 4096u

static inline unsigned ew_grid(size_t n) { return avt_grid(n, EW_BLOCK, EW_MAX_GRID); }

// ---- relu ----
// out, inp (n); may alias (each item is read before its own write)
static __global__ void relu_forward_kernel(float *out, const float *inp, size_t n) {
    for (size_t i = GRID_START; i < n; i += GRID_STRIDE) {
        const float x = inp[i];
        out[i] = x > 0.0f ? x : 0.0f;
    }
}

// dinp, dout, out (n); out is the forward output
static __global__ void relu_backward_kernel(float *dinp, const float *dout, const float *out, size_t n) {
    for (size_t i = GRID_START; i < n; i += GRID_STRIDE) dinp[i] += out[i] > 0.0f ? dout[i] : 0.0f;
}

// ---- add ----
// out, a, b (n); out may alias a or b
static __global__ void add_forward_kernel(float *out, const float *a, const float *b, size_t n) {
    for (size_t i = GRID_START; i < n; i += GRID_STRIDE) out[i] = a[i] + b[i];
}

// ---- concat along the channel axis ----
// out (N, C1 + C2); a (N, C1); b (N, C2). One thread per output item: the writes are coalesced.
static __global__ void concat_forward_kernel(float *out, const float *a, const float *b, size_t N, int C1, int C2) {
    const size_t C = (size_t)C1 + (size_t)C2, n = N * C;
    for (size_t i = GRID_START; i < n; i += GRID_STRIDE) {
        const size_t r = i / C, c = i % C;
        out[i] = c < (size_t)C1 ? a[r * C1 + c] : b[r * C2 + (c - C1)];
    }
}

// da (N, C1) or nullptr, db (N, C2) or nullptr; dout (N, C1 + C2). Each gradient item has exactly one source item,
// so the accumulation needs no atomics.
static __global__ void concat_backward_kernel(float *da, float *db, const float *dout, size_t N, int C1, int C2) {
    const size_t C = (size_t)C1 + (size_t)C2, n = N * C;
    for (size_t i = GRID_START; i < n; i += GRID_STRIDE) {
        const size_t r = i / C, c = i % C;
        if (c < (size_t)C1) {
            if (da) da[r * C1 + c] += dout[i];
        } else if (db) {
            db[r * C2 + (c - C1)] += dout[i];
        }
    }
}

// ---- dropout ----
// One thread per Philox block of 4 draws (draws 4j .. 4j + 3 use the four words of counter j), so each draw is
// computed once; item i takes draw drop.offset + i. The keep test and the scale are those of dropout_scale in
// philox.h, bit for bit.
// y, x (n); forward: y = x * m (y may alias x); backward (accumulate): y += x * m.
template <bool kAccumulate>
static __global__ void dropout_kernel(float *y, const float *x, DropoutKey drop, size_t n) {
    const uint64_t blk0 = drop.offset / 4, nblk = (drop.offset + n + 3) / 4 - blk0;
    const float keep = 1.0f / (1.0f - drop.p);
    for (size_t j = GRID_START; j < nblk; j += GRID_STRIDE) {
        const uint64_t blk = blk0 + (uint64_t)j;
        const Philox4 c = {{(uint32_t)blk, (uint32_t)(blk >> 32), drop.site, drop.step}};
        const Philox4 r = philox4x32_10(c, (uint32_t)drop.seed, (uint32_t)(drop.seed >> 32));
#pragma unroll
        for (int w = 0; w < 4; w++) {
            const uint64_t d = 4 * blk + (uint64_t)w; // the draw
            if (d < drop.offset) continue;
            const size_t i = (size_t)(d - drop.offset);
            if (i >= n) break;
            const float u = (float)(r.v[w] >> 8) * (1.0f / 16777216.0f);
            const float m = u >= drop.p ? keep : 0.0f;
            if (kAccumulate)
                y[i] = __fadd_rn(y[i], __fmul_rn(x[i], m));
            else
                y[i] = __fmul_rn(x[i], m);
        }
    }
}

// p == 0 backward: y += x
static __global__ void accumulate_kernel(float *y, const float *x, size_t n) {
    for (size_t i = GRID_START; i < n; i += GRID_STRIDE) y[i] += x[i];
}

// ---- gather rows ----
// out (n, C); inp (N, C); rows (n), each in [0, N). One thread per output item: the writes are coalesced.
static __global__ void gather_rows_forward_kernel(float *out, const float *inp, const int *rows, int n, int C) {
    const size_t total = (size_t)n * (size_t)C;
    for (size_t i = GRID_START; i < total; i += GRID_STRIDE) {
        const size_t r = i / (size_t)C, c = i % (size_t)C;
        out[i] = inp[(size_t)rows[r] * C + c];
    }
}

// dinp (N, C); dout (n, C); rows (n). One thread per column walks r = 0..n-1: a repeated row adds its gradients in
// the CPU's order without atomics, and a warp's reads and writes of one row are coalesced.
static __global__ void gather_rows_backward_kernel(float *dinp, const float *dout, const int *rows, int n, int C) {
    for (size_t c = GRID_START; c < (size_t)C; c += GRID_STRIDE)
        for (int r = 0; r < n; r++) dinp[(size_t)rows[r] * C + c] += dout[(size_t)r * C + c];
}

extern "C" {

void relu_forward_cuda(float *out, const float *inp, size_t n, cudaStream_t stream) {
    if (n == 0) return;
    LAUNCH(relu_forward_kernel, ew_grid(n), EW_BLOCK, 0, stream, out, inp, n);
}

void relu_backward_cuda(float *dinp, const float *dout, const float *out, size_t n, cudaStream_t stream) {
    if (n == 0) return;
    LAUNCH(relu_backward_kernel, ew_grid(n), EW_BLOCK, 0, stream, dinp, dout, out, n);
}

void add_forward_cuda(float *out, const float *a, const float *b, size_t n, cudaStream_t stream) {
    if (n == 0) return;
    LAUNCH(add_forward_kernel, ew_grid(n), EW_BLOCK, 0, stream, out, a, b, n);
}

void concat_forward_cuda(float *out, const float *a, const float *b, size_t N, int C1, int C2, cudaStream_t stream) {
    const size_t n = N * ((size_t)C1 + (size_t)C2);
    if (n == 0) return;
    LAUNCH(concat_forward_kernel, ew_grid(n), EW_BLOCK, 0, stream, out, a, b, N, C1, C2);
}

void concat_backward_cuda(float *da, float *db, const float *dout, size_t N, int C1, int C2, cudaStream_t stream) {
    const size_t n = N * ((size_t)C1 + (size_t)C2);
    if (n == 0 || (!da && !db)) return;
    LAUNCH(concat_backward_kernel, ew_grid(n), EW_BLOCK, 0, stream, da, db, dout, N, C1, C2);
}

void dropout_forward_cuda(float *out, const float *inp, DropoutKey drop, size_t n, cudaStream_t stream) {
    if (n == 0) return;
    if (drop.p <= 0.0f) {  // identity, nothing drawn
        if (out != inp)
            cuda_check(cudaMemcpyAsync(out, inp, n * sizeof(float), cudaMemcpyDeviceToDevice, stream));
        return;
    }
    LAUNCH(dropout_kernel<false>, ew_grid((n + 3) / 4), EW_BLOCK, 0, stream, out, inp, drop, n);
}

void dropout_backward_cuda(float *dinp, const float *dout, DropoutKey drop, size_t n, cudaStream_t stream) {
    if (n == 0) return;
    if (drop.p <= 0.0f) {
        LAUNCH(accumulate_kernel, ew_grid(n), EW_BLOCK, 0, stream, dinp, dout, n);
        return;
    }
    LAUNCH(dropout_kernel<true>, ew_grid((n + 3) / 4), EW_BLOCK, 0, stream, dinp, dout, drop, n);
}

void gather_rows_forward_cuda(float *out, const float *inp, const int *rows, int n, int C, cudaStream_t stream) {
    const size_t total = n > 0 && C > 0 ? (size_t)n * (size_t)C : 0;
    if (total == 0) return;
    LAUNCH(gather_rows_forward_kernel, ew_grid(total), EW_BLOCK, 0, stream, out, inp, rows, n, C);
}

void gather_rows_backward_cuda(float *dinp, const float *dout, const int *rows, int n, int C, cudaStream_t stream) {
    if (n <= 0 || C <= 0) return;
    LAUNCH(gather_rows_backward_kernel, ew_grid((size_t)C), EW_BLOCK, 0, stream, dinp, dout, rows, n, C);
}

}  // extern "C"
