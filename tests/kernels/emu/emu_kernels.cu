// Small kernels that exercise the CUDA emulator (tests/kernels/emu/test_emu.cpp), with extern "C" host launchers that
// copy in, launch and copy out. Real CUDA: nvcc compiles this file for sm_80 and sm_90 whenever it is found, and
// g++ compiles it against kernels/emu for the emulated tests. Some kernels are broken on purpose (marked BROKEN):
// the tests check that the emulator catches them.
#include "kernels/cuda/cuda_common.cuh"

#define FULL_MASK 0xffffffffu
#define WARP_OPS 10  // outputs per thread of warp_ops_kernel

// ---- block sum through static shared memory, a tree for any blockDim.x <= 1024 ----
// kSecondSync = false is BROKEN: without the __syncthreads inside the tree loop a thread reads partial sums that
// its neighbours have not written yet.
template <bool kSecondSync>
__global__ void block_sum_kernel(float *out, const float *x, int n) {
    __shared__ float buf[1024];
    const int t = threadIdx.x, nt = blockDim.x;
    float s = 0.0f;
    for (int i = blockIdx.x * nt + t; i < n; i += gridDim.x * nt) s += x[i];
    buf[t] = s;
    __syncthreads();
    int half = 1;
    while (2 * half < nt) half *= 2;
    for (int h = half; h > 0; h /= 2) {
        if (t < h && t + h < nt) buf[t] += buf[t + h];
        if (kSecondSync) __syncthreads();
    }
    if (t == 0) out[blockIdx.x] = buf[0];
}

// Sum of x[0, n) with blocks of `block` threads: per-block partial sums, then one block over the partials.
extern "C" float emu_block_sum(const float *x, int n, int block, int second_sync) {
    const unsigned grid = avt_blocks((size_t)n, (unsigned)block) < 64 ? avt_blocks((size_t)n, (unsigned)block) : 64;
    float *d_x, *d_part, *d_out, out;
    cudaStream_t s;
    cuda_check(cudaStreamCreate(&s));
    cuda_check(cudaMalloc(&d_x, (size_t)n * sizeof(float)));
    cuda_check(cudaMalloc(&d_part, grid * sizeof(float)));
    cuda_check(cudaMalloc(&d_out, sizeof(float)));
    cuda_check(cudaMemcpyAsync(d_x, x, (size_t)n * sizeof(float), cudaMemcpyHostToDevice, s));
    if (second_sync) {
        LAUNCH(block_sum_kernel<true>, grid, block, 0, s, d_part, d_x, n);
        LAUNCH(block_sum_kernel<true>, 1, block, 0, s, d_out, d_part, (int)grid);
    } else {
        LAUNCH(block_sum_kernel<false>, grid, block, 0, s, d_part, d_x, n);
        LAUNCH(block_sum_kernel<false>, 1, block, 0, s, d_out, d_part, (int)grid);
    }
    cuda_check(cudaMemcpyAsync(&out, d_out, sizeof(float), cudaMemcpyDeviceToHost, s));
    cuda_check(cudaStreamSynchronize(s));
    cuda_check(cudaFree(d_x));
    cuda_check(cudaFree(d_part));
    cuda_check(cudaFree(d_out));
    cuda_check(cudaStreamDestroy(s));
    return out;
}

// ---- warp-shuffle sum: shfl_down within warps, shared per-warp sums, shfl_xor in warp 0, one atomicAdd ----
__global__ void warp_sum_kernel(float *out, const float *x, int n) {
    __shared__ float warp_sums[32];
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, nwarps = blockDim.x / 32;
    float s = 0.0f;
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) s += x[i];
#pragma unroll
    for (int o = 16; o > 0; o /= 2) s += __shfl_down_sync(FULL_MASK, s, o);
    if (lane == 0) warp_sums[warp] = s;
    __syncthreads();
    if (warp == 0) {
        s = lane < nwarps ? warp_sums[lane] : 0.0f;
        for (int o = 16; o > 0; o /= 2) s += __shfl_xor_sync(FULL_MASK, s, o);
        if (lane == 0) atomicAdd(out, s);
    }
}

// block: a multiple of 32
extern "C" float emu_warp_sum(const float *x, int n, int block) {
    const unsigned grid = avt_blocks((size_t)n, (unsigned)block) < 64 ? avt_blocks((size_t)n, (unsigned)block) : 64;
    float *d_x, *d_out, out;
    cuda_check(cudaMalloc(&d_x, (size_t)n * sizeof(float)));
    cuda_check(cudaMalloc(&d_out, sizeof(float)));
    cuda_check(cudaMemcpy(d_x, x, (size_t)n * sizeof(float), cudaMemcpyHostToDevice));
    cuda_check(cudaMemset(d_out, 0, sizeof(float)));
    LAUNCH(warp_sum_kernel, grid, block, 0, 0, d_out, d_x, n);
    cuda_check(cudaMemcpy(&out, d_out, sizeof(float), cudaMemcpyDeviceToHost));
    cuda_check(cudaFree(d_x));
    cuda_check(cudaFree(d_out));
    return out;
}

// ---- dynamic shared memory: reverse every block's chunk of x ----
// store = 0 is BROKEN: the tile is read without being written.
__global__ void reverse_kernel(float *out, const float *x, int n, int store) {
    DYNAMIC_SHARED(float, tile);
    const int base = blockIdx.x * blockDim.x, t = threadIdx.x;
    const int count = min((int)blockDim.x, n - base);
    if (store && t < count) tile[t] = x[base + t];
    __syncthreads();
    if (t < count) out[base + t] = tile[count - 1 - t];
}

// smem_floats: the dynamic shared memory given to the launch (block is enough)
extern "C" void emu_reverse_blocks(float *out, const float *x, int n, int block, int smem_floats, int store) {
    float *d_x, *d_out;
    cuda_check(cudaMalloc(&d_x, (size_t)n * sizeof(float)));
    cuda_check(cudaMalloc(&d_out, (size_t)n * sizeof(float)));
    cuda_check(cudaMemcpy(d_x, x, (size_t)n * sizeof(float), cudaMemcpyHostToDevice));
    LAUNCH(reverse_kernel, avt_blocks((size_t)n, (unsigned)block), block, (size_t)smem_floats * sizeof(float), 0,
           d_out, d_x, n, store);
    cuda_check(cudaMemcpy(out, d_out, (size_t)n * sizeof(float), cudaMemcpyDeviceToHost));
    cuda_check(cudaFree(d_x));
    cuda_check(cudaFree(d_out));
}

// ---- constant memory, float4 loads through __ldg, fast-math intrinsics, launch bounds, and more than 48 KiB of
// dynamic shared memory (which needs cudaFuncSetAttribute, as on a GPU) ----
__constant__ float c_affine[2];  // scale, shift

__device__ __forceinline__ float squash(float v) {
    return __fdividef(1.0f, 1.0f + __expf(-v)) * rsqrtf(fmaxf(v * v, 1.0f));
}

__global__ void __launch_bounds__(256) vec4_kernel(float4 *__restrict__ out, const float4 *__restrict__ x, int n4) {
    DYNAMIC_SHARED(float4, stage);
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n4) stage[threadIdx.x] = __ldg(&x[i]);
    __syncthreads();
    if (i < n4) {
        const float4 v = stage[blockDim.x - 1 - threadIdx.x < (unsigned)(n4 - blockIdx.x * blockDim.x)
                                   ? blockDim.x - 1 - threadIdx.x
                                   : threadIdx.x];
        const float a = c_affine[0], b = c_affine[1];
        out[i] = make_float4(squash(v.x * a + b), squash(v.y * a + b), squash(v.z * a + b), squash(v.w * a + b));
    }
}

// out[i] = squash(x[j] * scale + shift) for 4 * n4 floats, where j mirrors i within each block's chunk when the
// mirrored element exists; 64 KiB of dynamic shared memory, allowed only with raise_limit.
extern "C" void emu_vec4(float *out, const float *x, int n4, float scale, float shift, int raise_limit) {
    const float affine[2] = {scale, shift};
    const size_t bytes = (size_t)n4 * 4 * sizeof(float), smem = 64 << 10;
    float4 *d_x, *d_out;
    cuda_check(cudaMalloc(&d_x, bytes));
    cuda_check(cudaMalloc(&d_out, bytes));
    cuda_check(cudaMemcpy(d_x, x, bytes, cudaMemcpyHostToDevice));
    cuda_check(cudaMemcpyToSymbol(c_affine, affine, sizeof affine));
    if (raise_limit)
        cuda_check(cudaFuncSetAttribute(vec4_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem));
    LAUNCH(vec4_kernel, avt_blocks((size_t)n4, 256), 256, smem, 0, d_out, d_x, n4);
    cuda_check(cudaMemcpy(out, d_out, bytes, cudaMemcpyDeviceToHost));
    cuda_check(cudaFree(d_x));
    cuda_check(cudaFree(d_out));
}

// ---- atomics: a histogram privatised in shared memory, per-bin float sums, the max (atomicMax) and the min
// (atomicCAS loop) ----
__device__ float atomic_min_float(float *addr, float v) {
    int *a = reinterpret_cast<int *>(addr);
    int old = *a, assumed;
    do {
        assumed = old;
        if (__int_as_float(assumed) <= v) break;
        old = atomicCAS(a, assumed, __float_as_int(v));
    } while (old != assumed);
    return __int_as_float(old);
}

__global__ void histogram_kernel(int *hist, float *bin_sum, int *max_val, float *min_val, const int *x, int n,
                                 int nbins) {
    DYNAMIC_SHARED(int, local);
    for (int b = threadIdx.x; b < nbins; b += blockDim.x) local[b] = 0;
    __syncthreads();
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) {
        const int v = x[i], b = v % nbins;
        atomicAdd(&local[b], 1);
        atomicAdd(&bin_sum[b], (float)v);
        atomicMax(max_val, v);
        atomic_min_float(min_val, (float)v - 0.5f);
    }
    __syncthreads();
    for (int b = threadIdx.x; b < nbins; b += blockDim.x)
        if (local[b]) atomicAdd(&hist[b], local[b]);
}

// x: n values >= 0; hist (nbins), bin_sum (nbins), *max_val, *min_val written
extern "C" void emu_histogram(int *hist, float *bin_sum, int *max_val, float *min_val, const int *x, int n,
                              int nbins, int block) {
    int *d_x, *d_hist, *d_max;
    float *d_sum, *d_min;
    const float big = 1e30f;
    cuda_check(cudaMalloc(&d_x, (size_t)n * sizeof(int)));
    cuda_check(cudaMalloc(&d_hist, (size_t)nbins * sizeof(int)));
    cuda_check(cudaMalloc(&d_sum, (size_t)nbins * sizeof(float)));
    cuda_check(cudaMalloc(&d_max, sizeof(int)));
    cuda_check(cudaMalloc(&d_min, sizeof(float)));
    cuda_check(cudaMemcpy(d_x, x, (size_t)n * sizeof(int), cudaMemcpyHostToDevice));
    cuda_check(cudaMemset(d_hist, 0, (size_t)nbins * sizeof(int)));
    cuda_check(cudaMemset(d_sum, 0, (size_t)nbins * sizeof(float)));
    cuda_check(cudaMemset(d_max, 0, sizeof(int)));
    cuda_check(cudaMemcpy(d_min, &big, sizeof(float), cudaMemcpyHostToDevice));
    LAUNCH(histogram_kernel, 7, block, (size_t)nbins * sizeof(int), 0, d_hist, d_sum, d_max, d_min, d_x, n, nbins);
    cuda_check(cudaMemcpy(hist, d_hist, (size_t)nbins * sizeof(int), cudaMemcpyDeviceToHost));
    cuda_check(cudaMemcpy(bin_sum, d_sum, (size_t)nbins * sizeof(float), cudaMemcpyDeviceToHost));
    cuda_check(cudaMemcpy(max_val, d_max, sizeof(int), cudaMemcpyDeviceToHost));
    cuda_check(cudaMemcpy(min_val, d_min, sizeof(float), cudaMemcpyDeviceToHost));
    cuda_check(cudaFree(d_x));
    cuda_check(cudaFree(d_hist));
    cuda_check(cudaFree(d_sum));
    cuda_check(cudaFree(d_max));
    cuda_check(cudaFree(d_min));
}

// ---- every warp operation, with widths, divergent sub-warp masks and a block vote; blockDim a multiple of 32 ----
__global__ void warp_ops_kernel(unsigned *out, const unsigned *x) {
    const int i = blockIdx.x * blockDim.x + threadIdx.x, lane = threadIdx.x % 32;
    const unsigned v = x[i];
    unsigned *o = out + (size_t)i * WARP_OPS;
    o[0] = __shfl_sync(FULL_MASK, v, (lane * 7 + 3) % 32);
    o[1] = __shfl_sync(FULL_MASK, v, lane + 1, 8);
    o[2] = __shfl_up_sync(FULL_MASK, v, 3);
    o[3] = __shfl_down_sync(FULL_MASK, v, 5, 16);
    o[4] = __shfl_xor_sync(FULL_MASK, v, 6);
    o[5] = __ballot_sync(FULL_MASK, v & 1);
    o[6] = (unsigned)__any_sync(FULL_MASK, v == 7) | (unsigned)__all_sync(FULL_MASK, v < 90) << 1;
    unsigned s = v;  // inclusive scan
    for (int d = 1; d < 32; d *= 2) {
        const unsigned u = __shfl_up_sync(FULL_MASK, s, d);
        if (lane >= d) s += u;
    }
    o[7] = s;
    if (lane < 16)
        o[8] = __shfl_xor_sync(0x0000ffffu, v, 1);
    else
        o[8] = __shfl_xor_sync(0xffff0000u, v, 2);
    __syncwarp();
    o[9] = (unsigned)__syncthreads_count(v & 1);
}

// out (n * WARP_OPS), x (n); n a multiple of block, block a multiple of 32
extern "C" void emu_warp_ops(unsigned *out, const unsigned *x, int n, int block) {
    unsigned *d_x, *d_out;
    cuda_check(cudaMalloc(&d_x, (size_t)n * sizeof(unsigned)));
    cuda_check(cudaMalloc(&d_out, (size_t)n * WARP_OPS * sizeof(unsigned)));
    cuda_check(cudaMemcpy(d_x, x, (size_t)n * sizeof(unsigned), cudaMemcpyHostToDevice));
    LAUNCH(warp_ops_kernel, n / block, block, 0, 0, d_out, d_x);
    cuda_check(cudaMemcpy(out, d_out, (size_t)n * WARP_OPS * sizeof(unsigned), cudaMemcpyDeviceToHost));
    cuda_check(cudaFree(d_x));
    cuda_check(cudaFree(d_out));
}

// ---- 3-d grids and blocks: every thread writes its indices, the warp's first linear thread id and a ballot ----
__global__ void index_kernel(unsigned *out) {
    const unsigned b = blockIdx.x + gridDim.x * (blockIdx.y + gridDim.y * blockIdx.z);
    const unsigned t = threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z);
    unsigned *o = out + 4 * ((size_t)b * blockDim.x * blockDim.y * blockDim.z + t);
    o[0] = threadIdx.x | threadIdx.y << 10 | threadIdx.z << 20;
    o[1] = blockIdx.x | blockIdx.y << 10 | blockIdx.z << 20;
    o[2] = __shfl_sync(FULL_MASK, t, 0);
    o[3] = __ballot_sync(FULL_MASK, t % 3 == 0);
}

// out (4 * grid threads); threads per block a multiple of 32
extern "C" void emu_index(unsigned *out, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by,
                          unsigned bz) {
    const size_t n = 4 * (size_t)gx * gy * gz * bx * by * bz;
    unsigned *d_out;
    cuda_check(cudaMalloc(&d_out, n * sizeof(unsigned)));
    LAUNCH(index_kernel, dim3(gx, gy, gz), dim3(bx, by, bz), 0, 0, d_out);
    cuda_check(cudaMemcpy(out, d_out, n * sizeof(unsigned), cudaMemcpyDeviceToHost));
    cuda_check(cudaFree(d_out));
}

// ---- BROKEN: out-of-bounds global accesses ----
// The classic off-by-one: `i <= n` writes p[n], one element past the buffer.
__global__ void write_past_end_kernel(int *p, int n) {
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i <= n) p[i] = i;
}

extern "C" void emu_write_past_end(int n) {
    int *d_p;
    cuda_check(cudaMalloc(&d_p, (size_t)n * sizeof(int)));
    LAUNCH(write_past_end_kernel, avt_blocks((size_t)n + 1, 128), 128, 0, 0, d_p, n);
    cuda_check(cudaDeviceSynchronize());
    cuda_check(cudaFree(d_p));
}

// out[i] = in[i + shift]: shift -1 reads one element before in, +1 one past its end.
__global__ void shifted_copy_kernel(int *out, const int *in, int n, int shift) {
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) out[i] = in[i + shift];
}

extern "C" void emu_shifted_copy(int n, int shift) {
    int *d_in, *d_out;
    cuda_check(cudaMalloc(&d_in, (size_t)n * sizeof(int)));
    cuda_check(cudaMalloc(&d_out, (size_t)n * sizeof(int)));
    cuda_check(cudaMemset(d_in, 0, (size_t)n * sizeof(int)));
    LAUNCH(shifted_copy_kernel, avt_blocks((size_t)n, 64), 64, 0, 0, d_out, d_in, n, shift);
    cuda_check(cudaDeviceSynchronize());
    cuda_check(cudaFree(d_in));
    cuda_check(cudaFree(d_out));
}

// ---- BROKEN: barriers that cannot complete ----
// mode 0: threads >= active return before __syncthreads; mode 1: the upper half of every warp returns before a
// full-mask shuffle; mode 2: two warps wait at different __syncthreads calls.
__global__ void broken_sync_kernel(int *out, int mode, int active) {
    __shared__ int flag;
    const int t = threadIdx.x;
    if (mode == 0) {
        if (t >= active) return;
        if (t == 0) flag = 1;
        __syncthreads();
        out[t] = flag;
    } else if (mode == 1) {
        if (t % 32 >= 16) return;
        out[t] = __shfl_xor_sync(FULL_MASK, t, 1);
    } else {
        if (t < 32) {
            __syncthreads();
            out[t] = 1;
        } else {
            __syncthreads();
            out[t] = 2;
        }
    }
}

extern "C" void emu_broken_sync(int mode, int block, int active) {
    int *d_out;
    cuda_check(cudaMalloc(&d_out, (size_t)block * sizeof(int)));
    LAUNCH(broken_sync_kernel, 1, block, 0, 0, d_out, mode, active);
    cuda_check(cudaDeviceSynchronize());
    cuda_check(cudaFree(d_out));
}

// ---- BROKEN: a thread needs more stack than the emulator's fibers have (64 KiB by default) ----
__global__ void big_stack_kernel(float *out, int n) {
    volatile float a[48 * 1024];  // 192 KiB of local memory
    for (int i = 0; i < n; i++) a[i] = (float)i;
    out[threadIdx.x] = a[n - 1 - (int)threadIdx.x];
}

extern "C" void emu_big_stack(void) {
    const int n = 48 * 1024;
    float *d_out;
    cuda_check(cudaMalloc(&d_out, 32 * sizeof(float)));
    LAUNCH(big_stack_kernel, 1, 32, 0, 0, d_out, n);
    cuda_check(cudaDeviceSynchronize());
    cuda_check(cudaFree(d_out));
}
