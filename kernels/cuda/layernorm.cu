// LayerNorm over the last dimension on the GPU: the twin of kernels/cpu/layernorm.c (PyTorch semantics: biased
// variance, eps 1e-5 inside the square root; backward ACCUMULATES). Rows are independent, so the forward pass and
// the dinp part of the backward pass give one warp to each row: the row's statistics are warp reductions, with no
// shared memory and no __syncthreads. dweight/dbias reduce over rows instead, deterministically and without
// atomics: a first kernel sums fixed chunks of rows into per-chunk partials in ws, a second sums the partials of
// every channel in chunk order and adds the result into dweight/dbias.
#include "kernels/cuda/kernels.cuh"

#define LN_EPS 1e-5f
#define LN_FULL_MASK 0xffffffffu
#define LN_WARPS_PER_BLOCK 8     // row kernels: 8 rows per block of 256 threads
#define LN_ROWS_PER_CHUNK 64     // dweight/dbias: rows summed by one block of the first stage (as the CPU kernel)
#define LN_CHANNELS_PER_BLOCK 128  // dweight/dbias: channels per block, one per thread (coalesced row reads)
#define LN_MAX_GRID_X 2147483647u

// Sum over the 32 lanes; every lane gets the total (xor butterfly, so all lanes hold the same bits).
__device__ __forceinline__ float ln_warp_sum(float v) {
#pragma unroll
    for (int o = 16; o > 0; o /= 2) v += __shfl_xor_sync(LN_FULL_MASK, v, o);
    return v;
}

// One warp per row. Whole warps exit together (the row test depends on the warp only), so the full-mask
// shuffles always see all 32 lanes.
__global__ void __launch_bounds__(LN_WARPS_PER_BLOCK * 32)
    layernorm_forward_kernel(float *__restrict__ out, float *__restrict__ mean, float *__restrict__ rstd,
                             const float *__restrict__ inp, const float *__restrict__ weight,
                             const float *__restrict__ bias, size_t N, int C) {
    // out (N, C), mean (N) or nullptr, rstd (N) or nullptr; inp (N, C), weight (C), bias (C)
    const int lane = threadIdx.x % 32;
    const size_t row = (size_t)blockIdx.x * LN_WARPS_PER_BLOCK + threadIdx.x / 32;
    if (row >= N) return;
    const float *x = inp + row * (size_t)C;  // (C)
    float *o = out + row * (size_t)C;        // (C)
    // Two passes (mean, then centred squares) avoid the cancellation of E[x^2] - E[x]^2; the second pass
    // re-reads the row, which is in L1 after the first.
    float s = 0.0f;
    for (int c = lane; c < C; c += 32) s += x[c];
    const float m = ln_warp_sum(s) / (float)C;
    float v = 0.0f;
    for (int c = lane; c < C; c += 32) {
        const float d = x[c] - m;
        v += d * d;
    }
    // 1/sqrtf, not rsqrtf: rsqrtf is approximate on the GPU and the CPU twin divides.
    const float rs = 1.0f / sqrtf(ln_warp_sum(v) / (float)C + LN_EPS);
    for (int c = lane; c < C; c += 32) o[c] = (x[c] - m) * rs * weight[c] + bias[c];
    if (lane == 0) {
        if (mean) mean[row] = m;
        if (rstd) rstd[row] = rs;
    }
}

// dinp += rstd * (g - mean(g) - xhat * mean(g * xhat)) with g = dout * weight; one warp per row, as the forward.
__global__ void __launch_bounds__(LN_WARPS_PER_BLOCK * 32)
    layernorm_backward_dinp_kernel(float *__restrict__ dinp, const float *__restrict__ dout,
                                   const float *__restrict__ inp, const float *__restrict__ weight,
                                   const float *__restrict__ mean, const float *__restrict__ rstd, size_t N, int C) {
    // dinp (N, C) accumulated; dout, inp (N, C); weight (C); mean, rstd (N)
    const int lane = threadIdx.x % 32;
    const size_t row = (size_t)blockIdx.x * LN_WARPS_PER_BLOCK + threadIdx.x / 32;
    if (row >= N) return;
    const float *x = inp + row * (size_t)C;    // (C)
    const float *dy = dout + row * (size_t)C;  // (C)
    float *dx = dinp + row * (size_t)C;        // (C)
    const float m = mean[row], rs = rstd[row];
    float sg = 0.0f, sgx = 0.0f;
    for (int c = lane; c < C; c += 32) {
        const float g = dy[c] * weight[c];
        sg += g;
        sgx += g * ((x[c] - m) * rs);
    }
    const float mg = ln_warp_sum(sg) / (float)C, mgx = ln_warp_sum(sgx) / (float)C;
    for (int c = lane; c < C; c += 32) {
        const float xhat = (x[c] - m) * rs;
        dx[c] += rs * (dy[c] * weight[c] - mg - xhat * mgx);
    }
}

// Stage 1: block (chunk, channel tile) sums its LN_ROWS_PER_CHUNK rows in row order, one thread per channel, and
// writes (overwrites) that chunk's partials. Each partial has exactly one writer, so no atomics and no ordering
// question between blocks.
__global__ void __launch_bounds__(LN_CHANNELS_PER_BLOCK)
    layernorm_backward_partials_kernel(float *__restrict__ part, const float *__restrict__ dout,
                                       const float *__restrict__ inp, const float *__restrict__ mean,
                                       const float *__restrict__ rstd, size_t N, int C) {
    // part (nchunks, 2, C) written: per chunk [sum dout * xhat | sum dout]; dout, inp (N, C); mean, rstd (N)
    const int c = blockIdx.y * LN_CHANNELS_PER_BLOCK + threadIdx.x;
    if (c >= C) return;  // no barrier below, so early exit is safe
    const size_t chunk = blockIdx.x;
    const size_t r0 = chunk * LN_ROWS_PER_CHUNK;
    const size_t r1 = r0 + LN_ROWS_PER_CHUNK < N ? r0 + LN_ROWS_PER_CHUNK : N;
    float sw = 0.0f, sb = 0.0f;
    for (size_t r = r0; r < r1; r++) {
        const float dy = dout[r * (size_t)C + c];
        sw += dy * ((inp[r * (size_t)C + c] - mean[r]) * rstd[r]);
        sb += dy;
    }
    float *pw = part + chunk * 2 * (size_t)C;  // (C)
    pw[c] = sw;
    pw[C + c] = sb;
}

// Stage 2: one thread per channel sums the chunks' partials in chunk order and accumulates. The order is fixed
// by the shapes alone, so every run gives the same bits.
__global__ void __launch_bounds__(LN_CHANNELS_PER_BLOCK)
    layernorm_backward_sum_kernel(float *__restrict__ dweight, float *__restrict__ dbias,
                                  const float *__restrict__ part, size_t nchunks, int C) {
    // dweight (C) or nullptr, dbias (C) or nullptr, accumulated; part (nchunks, 2, C)
    const int c = blockIdx.x * LN_CHANNELS_PER_BLOCK + threadIdx.x;
    if (c >= C) return;
    // double over the chunks, as the CPU twin: nchunks grows with N and float would drift with it.
    double sw = 0.0, sb = 0.0;
    for (size_t k = 0; k < nchunks; k++) {
        sw += part[k * 2 * (size_t)C + c];
        sb += part[k * 2 * (size_t)C + C + c];
    }
    if (dweight) dweight[c] += (float)sw;
    if (dbias) dbias[c] += (float)sb;
}

// Blocks of the row kernels for N rows; a grid past the hardware's x limit is a caller error, not a silent wrap.
static unsigned ln_row_blocks(size_t N) {
    const size_t blocks = (N + LN_WARPS_PER_BLOCK - 1) / LN_WARPS_PER_BLOCK;
    if (blocks > LN_MAX_GRID_X) avt_fatal("layernorm: %zu rows need %zu blocks (> %u)", N, blocks, LN_MAX_GRID_X);
    return (unsigned)blocks;
}

static size_t ln_chunks(size_t N) { return (N + LN_ROWS_PER_CHUNK - 1) / LN_ROWS_PER_CHUNK; }

extern "C" void layernorm_forward_cuda(float *out, float *mean, float *rstd, const float *inp, const float *weight,
                                       const float *bias, size_t N, int C, cudaStream_t stream) {
    // out (N, C), mean (N) or nullptr, rstd (N) or nullptr; inp (N, C), weight (C), bias (C)
    if (N == 0 || C <= 0) return;  // an empty grid is a launch error
    LAUNCH(layernorm_forward_kernel, ln_row_blocks(N), LN_WARPS_PER_BLOCK * 32, 0, stream, out, mean, rstd, inp,
           weight, bias, N, C);
}

extern "C" size_t layernorm_backward_ws_floats_cuda(size_t N, int C) {
    return C <= 0 ? 0 : ln_chunks(N) * 2 * (size_t)C;
}

extern "C" void layernorm_backward_cuda(float *dinp, float *dweight, float *dbias, float *ws, const float *dout,
                                        const float *inp, const float *weight, const float *mean,
                                        const float *rstd, size_t N, int C, cudaStream_t stream) {
    // dinp (N, C) or nullptr, dweight (C) or nullptr, dbias (C) or nullptr, all accumulated;
    // ws (layernorm_backward_ws_floats_cuda(N, C)) scratch; dout, inp (N, C); weight (C); mean, rstd (N)
    if (N == 0 || C <= 0) return;
    if (dinp) {
        LAUNCH(layernorm_backward_dinp_kernel, ln_row_blocks(N), LN_WARPS_PER_BLOCK * 32, 0, stream, dinp, dout, inp,
               weight, mean, rstd, N, C);
    }
    if (!dweight && !dbias) return;
    const size_t nchunks = ln_chunks(N);
    const unsigned ctiles = avt_blocks((size_t)C, LN_CHANNELS_PER_BLOCK);
    if (nchunks > LN_MAX_GRID_X || ctiles > 65535u)
        avt_fatal("layernorm backward: grid (%zu, %u) past the limits", nchunks, ctiles);
    LAUNCH(layernorm_backward_partials_kernel, dim3((unsigned)nchunks, ctiles), LN_CHANNELS_PER_BLOCK, 0, stream, ws,
           dout, inp, mean, rstd, N, C);
    LAUNCH(layernorm_backward_sum_kernel, ctiles, LN_CHANNELS_PER_BLOCK, 0, stream, dweight, dbias, ws, nchunks, C);
}
