// Deterministic reductions shared by the .cu files: no atomics, and every order fixed by the sizes alone.
// A sum over n items is two-stage: reduce_grid(n) blocks of REDUCE_BLOCK threads each reduce a fixed grid-stride
// slice in double through a fixed tree and write one float partial; then one block sums the partials in a fixed
// order. The grid depends only on n, never on the device, so the result is the same bits on any GPU.
#ifndef AVT_CUDA_REDUCE_CUH
#define AVT_CUDA_REDUCE_CUH

#include "kernels/cuda/cuda_common.cuh"

#define REDUCE_BLOCK 256  // a power of two: the tree reductions halve it
#define REDUCE_MAX_GRID 512u

// Stage-1 blocks for n items, at least one (so stage 2 always has a partial to read).
static inline unsigned reduce_grid(size_t n) {
    const unsigned g = avt_grid(n, REDUCE_BLOCK, REDUCE_MAX_GRID);
    return g == 0 ? 1 : g;
}

struct SumOp {
    template <typename V> __device__ V operator()(V a, V b) const { return a + b; }
};
struct MaxOp {
    template <typename V> __device__ V operator()(V a, V b) const { return a > b ? a : b; }
};

// Tree reduction over a block of REDUCE_BLOCK threads in a fixed order; every thread must call it (it holds
// __syncthreads) and every thread gets the result. One shared buffer per instantiation.
template <typename V, class Op> static __device__ V block_reduce(V v, Op op) {
    __shared__ V buf[REDUCE_BLOCK];
    const unsigned t = threadIdx.x;
    buf[t] = v;
    __syncthreads();
    for (unsigned h = REDUCE_BLOCK / 2; h > 0; h /= 2) {
        if (t < h) buf[t] = op(buf[t], buf[t + h]);
        __syncthreads();
    }
    const V r = buf[0];
    __syncthreads();  // buf is reused by the next call
    return r;
}

template <typename V> static __device__ V block_sum(V v) { return block_reduce(v, SumOp()); }

// Stage 2 inside one block: the sum of part[0, G), each thread over a fixed stride, then the fixed tree.
static __device__ double block_sum_partials(const float *part, unsigned G) {
    double s = 0.0;
    for (unsigned b = threadIdx.x; b < G; b += blockDim.x) s += (double)part[b];
    return block_sum<double>(s);
}

// Stage 1 of a sum of term(i) over i < n: part[blockIdx.x] = this block's slice, summed in double. Term is a
// functor with `__device__ double operator()(size_t i) const`.
template <class Term> static __global__ void partial_sums_kernel(float *part, Term term, size_t n) {
    double s = 0.0;
    for (size_t i = GRID_START; i < n; i += GRID_STRIDE) s += term(i);
    s = block_sum<double>(s);
    if (threadIdx.x == 0) part[blockIdx.x] = (float)s;
}

// Stage 2: *out = (sum of part[0, G)) / div.
static __global__ void final_sum_kernel(float *out, const float *part, unsigned G, double div) {
    const double s = block_sum_partials(part, G);
    if (threadIdx.x == 0) *out = (float)(s / div);
}

// *out = (sum of term(i) over i < n) / div through reduce_grid(n) partials in part (device, reduce_grid(n) floats);
// div > 0, and the sum of no items is 0.
template <class Term>
static inline void reduce_sum(float *out, float *part, Term term, size_t n, double div, cudaStream_t stream) {
    const unsigned G = reduce_grid(n);
    LAUNCH(partial_sums_kernel<Term>, G, REDUCE_BLOCK, 0, stream, part, term, n);
    LAUNCH(final_sum_kernel, 1, REDUCE_BLOCK, 0, stream, out, part, G, div);
}

#endif
