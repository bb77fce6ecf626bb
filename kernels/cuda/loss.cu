// Masked L1 loss, the twin of l1_masked_forward/backward in kernels/cpu/loss.c. The sum is a deterministic
// two-stage reduction without atomics: L1_GRID(N, C) blocks each reduce a fixed slice (grid-stride, so the slice
// depends only on N and C, never on the device) in double through a fixed tree and write a partial to ws; then one
// block sums the partials in a fixed order. The CPU sums serially in double: the results agree to rounding.
//
// ws layout (l1_masked_ws_floats_cuda): [0, G) partial sums (float), [G, 2G) partial row counts (uint32 bits),
// [2G] the backward's scale g.
#include "kernels/cuda/kernels.cuh"

#define L1_BLOCK 256  // a power of two: the tree reductions below halve it
#define L1_MAX_GRID 512u

// Stage-1 blocks: enough to cover the larger of the items and the rows, capped.
static inline unsigned l1_grid(size_t N, int C) {
    const size_t items = N * (size_t)(C > 0 ? C : 0), n = items > N ? items : N;
    const unsigned g = avt_grid(n, L1_BLOCK, L1_MAX_GRID);
    return g == 0 ? 1 : g;
}

// Tree sum over a block of L1_BLOCK threads in a fixed order; every thread must call it (it holds
// __syncthreads). One instantiation per type, each with its own shared buffer.
template <typename V> static __device__ V block_sum(V v) {
    __shared__ V buf[L1_BLOCK];
    const unsigned t = threadIdx.x;
    buf[t] = v;
    __syncthreads();
    for (unsigned h = L1_BLOCK / 2; h > 0; h /= 2) {
        if (t < h) buf[t] += buf[t + h];
        __syncthreads();
    }
    const V s = buf[0];
    __syncthreads();  // buf is reused by the next call
    return s;
}

// Stage 1. pred, target (N, C); mask (N) or nullptr, a row counts when mask[r] != 0.
// ws[blockIdx.x] = sum of |pred - target| over this block's counted items (skipped when !with_sum),
// ws[G + blockIdx.x] = this block's counted rows (as uint32 bits).
static __global__ void l1_partials_kernel(float *ws, const float *pred, const float *target, const float *mask,
                                          size_t N, int C, int with_sum) {
    const unsigned G = gridDim.x;
    unsigned long long cnt = 0;
    for (size_t r = GRID_START; r < N; r += GRID_STRIDE) cnt += !mask || mask[r] != 0.0f;
    cnt = block_sum<unsigned long long>(cnt);
    double sum = 0.0;
    if (with_sum) {
        const size_t n = C > 0 ? N * (size_t)C : 0;
        for (size_t i = GRID_START; i < n; i += GRID_STRIDE) {
            if (mask && mask[i / (size_t)C] == 0.0f) continue;
            sum += fabs((double)pred[i] - (double)target[i]);
        }
        sum = block_sum<double>(sum);
    }
    if (threadIdx.x == 0) {
        ws[blockIdx.x] = (float)sum;
        ws[G + blockIdx.x] = __uint_as_float((unsigned)cnt);  // a block counts at most N / G rows (< 2^32)
    }
}

// Stage 2, one block: total sum and count of the G partials, each thread over a fixed stride, then a fixed tree.
// forward (dloss == nullptr): *out = sum / (count * C), 0 when no row counts;
// backward: *out = g = dloss / (count * C), the gradient of every counted item with pred != target.
static __global__ void l1_final_kernel(float *out, const float *ws, unsigned G, int C, const float *dloss) {
    double sum = 0.0;
    unsigned long long cnt = 0;
    for (unsigned b = threadIdx.x; b < G; b += blockDim.x) {
        sum += (double)ws[b];
        cnt += __float_as_uint(ws[G + b]);
    }
    sum = block_sum<double>(sum);
    cnt = block_sum<unsigned long long>(cnt);
    if (threadIdx.x == 0) {
        if (dloss)
            *out = cnt ? (float)((double)*dloss / ((double)cnt * C)) : 0.0f;
        else
            *out = cnt ? (float)(sum / ((double)cnt * C)) : 0.0f;
    }
}

// dpred, pred, target (N, C); mask (N) or nullptr; *g from l1_final_kernel. sign(0) = 0, as torch.sign.
static __global__ void l1_backward_kernel(float *dpred, const float *g_dev, const float *pred, const float *target,
                                          const float *mask, size_t N, int C) {
    const float g = *g_dev;
    const size_t n = N * (size_t)C;
    for (size_t i = GRID_START; i < n; i += GRID_STRIDE) {
        if (mask && mask[i / (size_t)C] == 0.0f) continue;
        const float p = pred[i], t = target[i];
        dpred[i] += p > t ? g : (p < t ? -g : 0.0f);
    }
}

extern "C" {

size_t l1_masked_ws_floats_cuda(size_t N, int C) { return 2 * (size_t)l1_grid(N, C) + 1; }

void l1_masked_forward_cuda(float *loss, float *ws, const float *pred, const float *target, const float *mask,
                            size_t N, int C, cudaStream_t stream) {
    const unsigned G = l1_grid(N, C);
    LAUNCH(l1_partials_kernel, G, L1_BLOCK, 0, stream, ws, pred, target, mask, N, C, 1);
    LAUNCH(l1_final_kernel, 1, L1_BLOCK, 0, stream, loss, ws, G, C, nullptr);
}

void l1_masked_backward_cuda(float *dpred, const float *dloss, float *ws, const float *pred, const float *target,
                             const float *mask, size_t N, int C, cudaStream_t stream) {
    // nothing to accumulate (the CPU returns before computing anything)
    if (N == 0 || C <= 0) return;
    const unsigned G = l1_grid(N, C);
    float *g = ws + 2 * (size_t)G;
    // counts only: the loss value is not needed for the gradient
    LAUNCH(l1_partials_kernel, G, L1_BLOCK, 0, stream, ws, pred, target, mask, N, C, 0);
    LAUNCH(l1_final_kernel, 1, L1_BLOCK, 0, stream, g, ws, G, C, dloss);
    const unsigned grid = avt_blocks(N * (size_t)C, L1_BLOCK);  // capped: the kernel strides over the rest
    LAUNCH(l1_backward_kernel, grid < 4096u ? grid : 4096u, L1_BLOCK, 0, stream, dpred, g, pred, target, mask, N, C);
}

}  // extern "C"
