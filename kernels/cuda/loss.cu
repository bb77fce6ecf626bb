// Losses, the twins of kernels/cpu/loss.c. Every loss is a deterministic two-stage reduction without atomics
// (kernels/cuda/reduce.cuh): stage-1 blocks reduce fixed slices in double and write partials to ws, then one block
// sums the partials in a fixed order and writes the loss to a device scalar. The CPU sums serially in double: the
// results agree to rounding (ccc: one block, fixed trees, see below). Backwards read dloss from a device scalar, so
// nothing waits on the host.
#include "kernels/cuda/kernels.cuh"
#include "kernels/cuda/reduce.cuh"

#define LOSS_EW_MAX_GRID 4096u  // elementwise backward: past this many blocks the threads stride

// ---- masked L1 ----
// ws layout (l1_masked_ws_floats_cuda): [0, G) partial sums (float), [G, 2G) partial row counts (uint32 bits),
// [2G] the backward's scale g.

// Stage-1 blocks: enough to cover the larger of the items and the rows.
static inline unsigned l1_grid(size_t N, int C) {
    const size_t items = N * (size_t)(C > 0 ? C : 0);
    return reduce_grid(items > N ? items : N);
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
    const double sum = block_sum_partials(ws, G);
    unsigned long long cnt = 0;
    for (unsigned b = threadIdx.x; b < G; b += blockDim.x) cnt += __float_as_uint(ws[G + b]);
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

// ---- cross entropy: one block per row of logits ----
// z (n), one row: its max *mx (exact in any order) and *s = sum_j exp(z[j] - mx) in double, in every thread.
static __device__ void ce_row_stats(float *mx, double *s, const float *z, int n) {
    float m = z[0];
    for (int j = threadIdx.x; j < n; j += blockDim.x) m = z[j] > m ? z[j] : m;
    m = block_reduce(m, MaxOp());
    double e = 0.0;
    for (int j = threadIdx.x; j < n; j += blockDim.x) e += exp((double)z[j] - m);
    *s = block_sum<double>(e);
    *mx = m;
}

// row_loss (B) = -log softmax(logits)[label] = log(s) + mx - z[label]; logits (B, n); labels (B)
static __global__ void ce_rows_kernel(float *row_loss, const float *logits, const int *labels, int n) {
    const float *z = logits + (size_t)blockIdx.x * n;
    float mx;
    double s;
    ce_row_stats(&mx, &s, z, n);
    if (threadIdx.x == 0) row_loss[blockIdx.x] = (float)(log(s) + (double)mx - (double)z[labels[blockIdx.x]]);
}

// dlogits, logits (B, n); labels (B): dlogits += (dloss / B) * (softmax(z) - onehot(label))
static __global__ void ce_backward_kernel(float *dlogits, const float *dloss, const float *logits, const int *labels,
                                          int B, int n) {
    const size_t off = (size_t)blockIdx.x * n;
    const float *z = logits + off;
    float *d = dlogits + off;
    float mx;
    double s;
    ce_row_stats(&mx, &s, z, n);
    const double g = (double)*dloss / B;
    const int label = labels[blockIdx.x];
    for (int j = threadIdx.x; j < n; j += blockDim.x) {
        const double pj = exp((double)z[j] - mx) / s;
        d[j] += (float)(g * (pj - (j == label)));
    }
}

// ---- mean squared error ----
// (pred[i] - target[i])^2 in double; pred, target (n)
struct SquaredDiff {
    const float *pred, *target;
    __device__ double operator()(size_t i) const {
        const double d = (double)pred[i] - (double)target[i];
        return d * d;
    }
};

// dpred, pred, target (n): dpred += g (pred - target), g = 2 dloss / n rounded to float as on the CPU; the product
// rounded on its own (no FMA), so the result is the CPU's bits.
static __global__ void mse_backward_kernel(float *dpred, const float *dloss, const float *pred, const float *target,
                                           size_t n) {
    const float g = (float)(2.0 * (double)*dloss / (double)n);
    for (size_t i = GRID_START; i < n; i += GRID_STRIDE)
        dpred[i] = __fadd_rn(dpred[i], __fmul_rn(g, pred[i] - target[i]));
}

// ---- concordance correlation: N is a batch (tens of rows) and C a few columns, so one block does the whole loss,
// column after column, in double through fixed trees: no workspace, and nothing lost to float partials ----
struct CccMoments {
    double mx, my, vx, vy, cov;
};

// Moments of column c of pred (x) and target (y), (N, C), N > 0, in every thread of the block: means first, then
// centred sums, as the CPU (a constant column has exactly zero variance, so the d == 0 guard is the CPU's).
static __device__ CccMoments ccc_moments(const float *pred, const float *target, size_t N, int C, int c) {
    double sx = 0.0, sy = 0.0;
    for (size_t r = threadIdx.x; r < N; r += blockDim.x) {
        sx += pred[r * (size_t)C + c];
        sy += target[r * (size_t)C + c];
    }
    CccMoments m;
    m.mx = block_sum<double>(sx) / (double)N;
    m.my = block_sum<double>(sy) / (double)N;
    double vx = 0.0, vy = 0.0, cov = 0.0;
    for (size_t r = threadIdx.x; r < N; r += blockDim.x) {
        const double dx = (double)pred[r * (size_t)C + c] - m.mx, dy = (double)target[r * (size_t)C + c] - m.my;
        vx += dx * dx;
        vy += dy * dy;
        cov += dx * dy;
    }
    m.vx = block_sum<double>(vx) / (double)N;
    m.vy = block_sum<double>(vy) / (double)N;
    m.cov = block_sum<double>(cov) / (double)N;
    return m;
}

// One block. *loss = 1 - mean over the C columns of CCC; 0 when N == 0 or C <= 0, as on the CPU.
static __global__ void ccc_forward_kernel(float *loss, const float *pred, const float *target, size_t N, int C) {
    if (N == 0 || C <= 0) {
        if (threadIdx.x == 0) *loss = 0.0f;
        return;
    }
    double sum = 0.0;
    for (int c = 0; c < C; c++) {
        const CccMoments m = ccc_moments(pred, target, N, C, c);
        const double dm = m.mx - m.my, d = m.vx + m.vy + dm * dm;
        sum += d > 0.0 ? 2.0 * m.cov / d : 1.0;  // d == 0: both constant and equal, CCC = 1 (see the CPU)
    }
    if (threadIdx.x == 0) *loss = (float)(1.0 - sum / C);
}

// One block. dpred += dloss * -(1/C) dCCC/dx, dCCC/dx_i = (2/N) [(y_i - my) d - 2 cov (x_i - my)] / d^2; each item
// is written by one thread. A column with d == 0 gets no gradient (the same for every thread, so no divergence
// around the block's barriers).
static __global__ void ccc_backward_kernel(float *dpred, const float *dloss, const float *pred, const float *target,
                                           size_t N, int C) {
    const double g = (double)*dloss;
    for (int c = 0; c < C; c++) {
        const CccMoments m = ccc_moments(pred, target, N, C, c);
        const double dm = m.mx - m.my, d = m.vx + m.vy + dm * dm;
        if (!(d > 0.0)) continue;
        const double k = -2.0 * g / ((double)N * C * d * d), n = 2.0 * m.cov;
        for (size_t r = threadIdx.x; r < N; r += blockDim.x) {
            const size_t i = r * (size_t)C + c;
            dpred[i] += (float)(k * (((double)target[i] - m.my) * d - n * ((double)pred[i] - m.my)));
        }
    }
}

extern "C" {

size_t l1_masked_ws_floats_cuda(size_t N, int C) { return 2 * (size_t)l1_grid(N, C) + 1; }

void l1_masked_forward_cuda(float *loss, float *ws, const float *pred, const float *target, const float *mask,
                            size_t N, int C, cudaStream_t stream) {
    const unsigned G = l1_grid(N, C);
    LAUNCH(l1_partials_kernel, G, REDUCE_BLOCK, 0, stream, ws, pred, target, mask, N, C, 1);
    LAUNCH(l1_final_kernel, 1, REDUCE_BLOCK, 0, stream, loss, ws, G, C, nullptr);
}

void l1_masked_backward_cuda(float *dpred, const float *dloss, float *ws, const float *pred, const float *target,
                             const float *mask, size_t N, int C, cudaStream_t stream) {
    // nothing to accumulate (the CPU returns before computing anything)
    if (N == 0 || C <= 0) return;
    const unsigned G = l1_grid(N, C);
    float *g = ws + 2 * (size_t)G;
    // counts only: the loss value is not needed for the gradient
    LAUNCH(l1_partials_kernel, G, REDUCE_BLOCK, 0, stream, ws, pred, target, mask, N, C, 0);
    LAUNCH(l1_final_kernel, 1, REDUCE_BLOCK, 0, stream, g, ws, G, C, dloss);
    LAUNCH(l1_backward_kernel, avt_grid(N * (size_t)C, REDUCE_BLOCK, LOSS_EW_MAX_GRID), REDUCE_BLOCK, 0, stream,
           dpred, g, pred, target, mask, N, C);
}

// ws: the B row losses
size_t cross_entropy_ws_floats_cuda(int B) { return B > 0 ? (size_t)B : 0; }

void cross_entropy_forward_cuda(float *loss, float *ws, const float *logits, const int *labels, int B, int n,
                                cudaStream_t stream) {
    if (B > 0) LAUNCH(ce_rows_kernel, (unsigned)B, REDUCE_BLOCK, 0, stream, ws, logits, labels, n);
    // B <= 0: no partials, the loss is 0 as on the CPU
    LAUNCH(final_sum_kernel, 1, REDUCE_BLOCK, 0, stream, loss, ws, (unsigned)(B > 0 ? B : 0), B > 0 ? (double)B : 1.0);
}

void cross_entropy_backward_cuda(float *dlogits, const float *dloss, const float *logits, const int *labels, int B,
                                 int n, cudaStream_t stream) {
    if (B <= 0) return;
    LAUNCH(ce_backward_kernel, (unsigned)B, REDUCE_BLOCK, 0, stream, dlogits, dloss, logits, labels, B, n);
}

size_t mse_ws_floats_cuda(size_t N, int C) { return reduce_grid(N * (size_t)(C > 0 ? C : 0)); }

void mse_forward_cuda(float *loss, float *ws, const float *pred, const float *target, size_t N, int C,
                      cudaStream_t stream) {
    const size_t n = N * (size_t)(C > 0 ? C : 0);
    reduce_sum(loss, ws, SquaredDiff{pred, target}, n, n ? (double)n : 1.0, stream);
}

void mse_backward_cuda(float *dpred, const float *dloss, const float *pred, const float *target, size_t N, int C,
                       cudaStream_t stream) {
    const size_t n = N * (size_t)(C > 0 ? C : 0);
    if (n == 0) return;
    LAUNCH(mse_backward_kernel, avt_grid(n, REDUCE_BLOCK, LOSS_EW_MAX_GRID), REDUCE_BLOCK, 0, stream, dpred, dloss,
           pred, target, n);
}

// One block reduces in double on its own: no workspace (the parameter keeps mse's calling convention).
size_t ccc_ws_floats_cuda(size_t N, int C) {
    (void)N, (void)C;
    return 0;
}

void ccc_forward_cuda(float *loss, float *ws, const float *pred, const float *target, size_t N, int C,
                      cudaStream_t stream) {
    (void)ws;
    LAUNCH(ccc_forward_kernel, 1, REDUCE_BLOCK, 0, stream, loss, pred, target, N, C);
}

void ccc_backward_cuda(float *dpred, const float *dloss, const float *pred, const float *target, size_t N, int C,
                       cudaStream_t stream) {
    if (N == 0 || C <= 0) return;  // nothing to accumulate, as on the CPU
    LAUNCH(ccc_backward_kernel, 1, REDUCE_BLOCK, 0, stream, dpred, dloss, pred, target, N, C);
}

}  // extern "C"
