// CUDA kernels: the twins of kernels/cpu/kernels.h, one .cu file per operation family. Each launcher has the CPU
// kernel's name with a _cuda suffix (both are linked into one test binary), the same arguments and semantics
// (outputs, inputs, parameters, dimensions; backward ACCUMULATES; dropout redrawn from the DropoutKey) on device
// pointers, plus the stream last. Determinism: no float atomics in any reduction.
#ifndef AVT_KERNELS_CUDA_CUH
#define AVT_KERNELS_CUDA_CUH

#include "kernels/cuda/cuda_common.cuh"
#include "kernels/philox.h"

extern "C" {

// ---- layernorm.cu: one warp per row; weight/bias gradients through per-block partials + a fixed-order pass ----
void layernorm_forward_cuda(float *out, float *mean, float *rstd, const float *inp, const float *weight,
                            const float *bias, size_t N, int C, cudaStream_t stream);
size_t layernorm_backward_ws_floats_cuda(size_t N, int C);
void layernorm_backward_cuda(float *dinp, float *dweight, float *dbias, float *ws, const float *dout,
                             const float *inp, const float *weight, const float *mean, const float *rstd, size_t N,
                             int C, cudaStream_t stream);

// ---- elementwise.cu ----
void relu_forward_cuda(float *out, const float *inp, size_t n, cudaStream_t stream);
void relu_backward_cuda(float *dinp, const float *dout, const float *out, size_t n, cudaStream_t stream);
void add_forward_cuda(float *out, const float *a, const float *b, size_t n, cudaStream_t stream);
void concat_forward_cuda(float *out, const float *a, const float *b, size_t N, int C1, int C2, cudaStream_t stream);
void concat_backward_cuda(float *da, float *db, const float *dout, size_t N, int C1, int C2, cudaStream_t stream);
void dropout_forward_cuda(float *out, const float *inp, DropoutKey drop, size_t n, cudaStream_t stream);
void dropout_backward_cuda(float *dinp, const float *dout, DropoutKey drop, size_t n, cudaStream_t stream);

// ---- embed.cu ----
void sinusoid_table_cuda(float *pe, int Tmax, int C, cudaStream_t stream);
void embed_forward_cuda(float *out, const float *inp, const float *pe, int B, int T, int C, cudaStream_t stream);
void embed_backward_cuda(float *dinp, const float *dout, int B, int T, int C, cudaStream_t stream);

// ---- loss.cu: the scalar loss is written to *loss (device) by a deterministic two-stage reduction ----
size_t l1_masked_ws_floats_cuda(size_t N, int C);
void l1_masked_forward_cuda(float *loss, float *ws, const float *pred, const float *target, const float *mask,
                            size_t N, int C, cudaStream_t stream);
void l1_masked_backward_cuda(float *dpred, const float *dloss, float *ws, const float *pred, const float *target,
                             const float *mask, size_t N, int C, cudaStream_t stream);

// ---- attention.cu: thread per query row, K/V tiles in shared memory, online softmax; backward: dS into ws by
// rows (with dq), then dk/dv by key columns (deterministic, no atomics) ----
void attention_forward_cuda(float *out, float *att, const float *q, const float *k, const float *v, DropoutKey drop,
                            int causal, int B, int Tq, int Tk, int NH, int HS, cudaStream_t stream);
size_t attention_backward_ws_floats_cuda(int B, int Tq, int Tk, int NH);
void attention_backward_cuda(float *dq, float *dk, float *dv, float *ws, const float *dout, const float *q,
                             const float *k, const float *v, const float *att, DropoutKey drop, int B, int Tq, int Tk,
                             int NH, int HS, cudaStream_t stream);

}

#endif
