// CUDA kernels: the twins of kernels/cpu/kernels.h, one .cu file per operation family. Each launcher has the CPU
// kernel's name with a _cuda suffix (both are linked into one test binary), the same arguments and semantics
// (outputs, inputs, parameters, dimensions; backward ACCUMULATES; dropout redrawn from the DropoutKey) on device
// pointers, plus the stream last. Determinism: no float atomics in any reduction.
#ifndef AVT_KERNELS_CUDA_CUH
#define AVT_KERNELS_CUDA_CUH

#include "kernels/cuda/cuda_common.cuh"
#include "base/philox.h"
#include "kernels/optim.h"

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
// rows (n) is a device array; the backward adds row r's gradient in the order r = 0..n-1 (rows may repeat)
void gather_rows_forward_cuda(float *out, const float *inp, const int *rows, int n, int C, cudaStream_t stream);
void gather_rows_backward_cuda(float *dinp, const float *dout, const int *rows, int n, int C, cudaStream_t stream);

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

// cross entropy over logits (B, n) with labels (B) on the device; mse over (N, C)
size_t cross_entropy_ws_floats_cuda(int B);
void cross_entropy_forward_cuda(float *loss, float *ws, const float *logits, const int *labels, int B, int n,
                                cudaStream_t stream);
void cross_entropy_backward_cuda(float *dlogits, const float *dloss, const float *logits, const int *labels, int B,
                                 int n, cudaStream_t stream);
size_t mse_ws_floats_cuda(size_t N, int C);
void mse_forward_cuda(float *loss, float *ws, const float *pred, const float *target, size_t N, int C,
                      cudaStream_t stream);
void mse_backward_cuda(float *dpred, const float *dloss, const float *pred, const float *target, size_t N, int C,
                       cudaStream_t stream);
// 1 - mean CCC over (N, C) (kernels/cpu/kernels.h): one block, no workspace (ccc_ws_floats_cuda is 0)
size_t ccc_ws_floats_cuda(size_t N, int C);
void ccc_forward_cuda(float *loss, float *ws, const float *pred, const float *target, size_t N, int C,
                      cudaStream_t stream);
void ccc_backward_cuda(float *dpred, const float *dloss, const float *pred, const float *target, size_t N, int C,
                       cudaStream_t stream);

// ---- linear.cu: GEMMs through cuBLASLt (fp32 compute, bias epilogue); the bias gradient by a deterministic
// column reduction (per-block partials in ws, then a fixed-order pass) ----
void linear_forward_cuda(float *out, const float *inp, const float *weight, const float *bias, size_t N, int C,
                         int OC, cudaStream_t stream);
size_t linear_backward_ws_floats_cuda(size_t N, int OC);
void linear_backward_cuda(float *dinp, float *dweight, float *dbias, float *ws, const float *dout, const float *inp,
                          const float *weight, size_t N, int C, int OC, cudaStream_t stream);

// ---- optim.cu: twins of kernels/cpu/optim.c; sum_squares by a deterministic two-stage reduction ----
size_t sum_squares_ws_floats_cuda(size_t n);
void sum_squares_cuda(float *out, float *ws, const float *x, size_t n, cudaStream_t stream);
void bertadam_update_cuda(float *p, float *m, float *v, const float *g, const float *tensor_sq, const float *global_sq,
                          BertAdamHyper h, float lr, size_t n, cudaStream_t stream);

// ---- attention_cudnn.cu: the baseline path, cuDNN's fused scaled-dot-product attention (graph API; bf16 in/out,
// fp32 softmax and accumulation), forward only and without dropout. Returns 0, or -1 with the reason in err when
// this build or device cannot run it (emulation, no cuDNN, an unsupported shape) ----
size_t attention_cudnn_ws_floats(int B, int Tq, int Tk, int NH, int HS);
int attention_forward_cudnn(float *out, float *ws, const float *q, const float *k, const float *v, int causal, int B,
                            int Tq, int Tk, int NH, int HS, cudaStream_t stream, AvtErr *err);

// ---- attention.cu: forward: a warp per 4 query rows, 32-key K/V tiles in shared memory, online softmax (lanes
// split the keys for the scores and the head dims for the output); backward: dS into ws by rows (with dq), then
// dk/dv by key columns (deterministic, no atomics) ----
void attention_forward_cuda(float *out, float *att, const float *q, const float *k, const float *v, DropoutKey drop,
                            int causal, int B, int Tq, int Tk, int NH, int HS, cudaStream_t stream);
size_t attention_backward_ws_floats_cuda(int B, int Tq, int Tk, int NH);
void attention_backward_cuda(float *dq, float *dk, float *dv, float *ws, const float *dout, const float *q,
                             const float *k, const float *v, const float *att, DropoutKey drop, int B, int Tq, int Tk,
                             int NH, int HS, cudaStream_t stream);

}

#endif
