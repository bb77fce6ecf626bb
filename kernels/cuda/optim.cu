// BertAdam (docs/model.md §3.4), the twins of kernels/cpu/optim.c. sum_squares is a deterministic two-stage reduction
// (kernels/cuda/reduce.cuh); the update is elementwise and reads the two sums of squares from device scalars, so a
// training step clips without synchronising with the host.
#include "kernels/cuda/kernels.cuh"
#include "kernels/cuda/reduce.cuh"

#define OPT_BLOCK 256
#define OPT_MAX_GRID 4096u

// x[i]^2 in double; x (n)
struct Square {
    const float *x;
    __device__ double operator()(size_t i) const { return (double)x[i] * (double)x[i]; }
};

// p, m, v, g (n); tensor_sq, global_sq: device scalars. Each product rounded on its own (no FMA contraction), as in
// the CPU build, so the moments and parameters are the CPU's bits given the same clip factor.
static __global__ void bertadam_kernel(float *p, float *m, float *v, const float *g, const float *tensor_sq,
                                       const float *global_sq, BertAdamHyper h, float lr, size_t n) {
    const float s = bertadam_grad_scale(*tensor_sq, *global_sq, h);
    const float b1 = (float)h.beta1, b2 = (float)h.beta2, c1 = (float)(1.0 - h.beta1), c2 = (float)(1.0 - h.beta2);
    for (size_t i = GRID_START; i < n; i += GRID_STRIDE) {
        const float gi = __fmul_rn(g[i], s);
        const float mi = __fadd_rn(__fmul_rn(b1, m[i]), __fmul_rn(c1, gi));
        const float vi = __fadd_rn(__fmul_rn(b2, v[i]), __fmul_rn(c2, __fmul_rn(gi, gi)));
        const float pi = p[i];
        const float u = __fadd_rn(__fdiv_rn(mi, __fadd_rn(__fsqrt_rn(vi), h.eps)), __fmul_rn(h.weight_decay, pi));
        m[i] = mi;
        v[i] = vi;
        p[i] = __fsub_rn(pi, __fmul_rn(lr, u));
    }
}

extern "C" {

size_t sum_squares_ws_floats_cuda(size_t n) { return reduce_grid(n); }

void sum_squares_cuda(float *out, float *ws, const float *x, size_t n, cudaStream_t stream) {
    reduce_sum(out, ws, Square{x}, n, 1.0, stream);
}

void bertadam_update_cuda(float *p, float *m, float *v, const float *g, const float *tensor_sq, const float *global_sq,
                          BertAdamHyper h, float lr, size_t n, cudaStream_t stream) {
    if (n == 0) return;
    LAUNCH(bertadam_kernel, avt_grid(n, OPT_BLOCK, OPT_MAX_GRID), OPT_BLOCK, 0, stream, p, m, v, g, tensor_sq,
           global_sq, h, lr, n);
}

}  // extern "C"
