// The CUDA backend: the kernels of kernels/cuda on device memory, all queued on one stream. Compiled by nvcc in
// CUDA builds and by the host compiler against the emulator (kernels/emu) in EMU builds and in the test binary.
#include "kernels/cuda/kernels.cuh"
extern "C" {
#include "engine/backend.h"
}

static cudaStream_t stream; // every kernel and copy of the backend, in order

static void *cu_alloc(size_t bytes) {
    void *p = nullptr;
    cuda_check(cudaMalloc(&p, bytes ? bytes : 1));
    return p;
}
static void cu_release(void *p) { cuda_check(cudaFree(p)); }
static void cu_upload(void *dst, const void *src, size_t bytes) {
    // from pageable host memory the copy has read src when it returns, so the caller may reuse src at once
    if (bytes) cuda_check(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, stream));
}
static void cu_download(void *dst, const void *src, size_t bytes) {
    if (bytes) cuda_check(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, stream));
    cuda_check(cudaStreamSynchronize(stream));
}
static void cu_zero(void *p, size_t bytes) {
    if (bytes) cuda_check(cudaMemsetAsync(p, 0, bytes, stream));
}
static void cu_sync(void) { cuda_check(cudaStreamSynchronize(stream)); }

// ---- kernels: the launchers of kernels.cuh on the backend's stream ----
static void cu_linear_forward(float *out, const float *inp, const float *weight, const float *bias, size_t N, int C,
                              int OC) {
    linear_forward_cuda(out, inp, weight, bias, N, C, OC, stream);
}
static size_t cu_linear_backward_ws(size_t N, int C, int OC) {
    (void)C;
    return linear_backward_ws_floats_cuda(N, OC);
}
static void cu_linear_backward(float *dinp, float *dweight, float *dbias, float *ws, const float *dout,
                               const float *inp, const float *weight, size_t N, int C, int OC) {
    linear_backward_cuda(dinp, dweight, dbias, ws, dout, inp, weight, N, C, OC, stream);
}
static void cu_layernorm_forward(float *out, float *mean, float *rstd, const float *inp, const float *weight,
                                 const float *bias, size_t N, int C) {
    layernorm_forward_cuda(out, mean, rstd, inp, weight, bias, N, C, stream);
}
static void cu_layernorm_backward(float *dinp, float *dweight, float *dbias, float *ws, const float *dout,
                                  const float *inp, const float *weight, const float *mean, const float *rstd,
                                  size_t N, int C) {
    layernorm_backward_cuda(dinp, dweight, dbias, ws, dout, inp, weight, mean, rstd, N, C, stream);
}
static size_t cu_attention_ws(int B, int Tq, int Tk, int NH, int HS, int backward) {
    if (backward) return attention_backward_ws_floats_cuda(B, Tq, Tk, NH);
    return backend_attention() == ATTN_CUDNN ? attention_cudnn_ws_floats(B, Tq, Tk, NH, HS) : 0;
}
static void cu_attention_forward(float *out, float *att, float *ws, const float *q, const float *k, const float *v,
                                 DropoutKey drop, int causal, int B, int Tq, int Tk, int NH, int HS) {
    (void)ws;
    attention_forward_cuda(out, att, q, k, v, drop, causal, B, Tq, Tk, NH, HS, stream);
}
static void cu_attention_backward(float *dq, float *dk, float *dv, float *ws, const float *dout, const float *q,
                                  const float *k, const float *v, const float *att, DropoutKey drop, int B, int Tq,
                                  int Tk, int NH, int HS) {
    attention_backward_cuda(dq, dk, dv, ws, dout, q, k, v, att, drop, B, Tq, Tk, NH, HS, stream);
}
static int cu_attention_forward_cudnn(float *out, float *ws, const float *q, const float *k, const float *v,
                                      int causal, int B, int Tq, int Tk, int NH, int HS, AvtErr *err) {
    return attention_forward_cudnn(out, ws, q, k, v, causal, B, Tq, Tk, NH, HS, stream, err);
}
static void cu_relu_forward(float *out, const float *inp, size_t n) { relu_forward_cuda(out, inp, n, stream); }
static void cu_relu_backward(float *dinp, const float *dout, const float *out, size_t n) {
    relu_backward_cuda(dinp, dout, out, n, stream);
}
static void cu_add_forward(float *out, const float *a, const float *b, size_t n) {
    add_forward_cuda(out, a, b, n, stream);
}
static void cu_concat_forward(float *out, const float *a, const float *b, size_t N, int C1, int C2) {
    concat_forward_cuda(out, a, b, N, C1, C2, stream);
}
static void cu_concat_backward(float *da, float *db, const float *dout, size_t N, int C1, int C2) {
    concat_backward_cuda(da, db, dout, N, C1, C2, stream);
}
static void cu_dropout_forward(float *out, const float *inp, DropoutKey drop, size_t n) {
    dropout_forward_cuda(out, inp, drop, n, stream);
}
static void cu_dropout_backward(float *dinp, const float *dout, DropoutKey drop, size_t n) {
    dropout_backward_cuda(dinp, dout, drop, n, stream);
}
static void cu_sinusoid_table(float *pe, int Tmax, int C) { sinusoid_table_cuda(pe, Tmax, C, stream); }
static void cu_embed_forward(float *out, const float *inp, const float *pe, int B, int T, int C) {
    embed_forward_cuda(out, inp, pe, B, T, C, stream);
}
static void cu_embed_backward(float *dinp, const float *dout, int B, int T, int C) {
    embed_backward_cuda(dinp, dout, B, T, C, stream);
}
static void cu_gather_rows_forward(float *out, const float *inp, const int *rows, int n, int C) {
    gather_rows_forward_cuda(out, inp, rows, n, C, stream);
}
static void cu_gather_rows_backward(float *dinp, const float *dout, const int *rows, int n, int C) {
    gather_rows_backward_cuda(dinp, dout, rows, n, C, stream);
}
static void cu_l1_forward(float *loss, float *ws, const float *pred, const float *target, const float *mask, size_t N,
                          int C) {
    l1_masked_forward_cuda(loss, ws, pred, target, mask, N, C, stream);
}
static void cu_l1_backward(float *dpred, const float *dloss, float *ws, const float *pred, const float *target,
                           const float *mask, size_t N, int C) {
    l1_masked_backward_cuda(dpred, dloss, ws, pred, target, mask, N, C, stream);
}
static void cu_ce_forward(float *loss, float *ws, const float *logits, const int *labels, int B, int n) {
    cross_entropy_forward_cuda(loss, ws, logits, labels, B, n, stream);
}
static void cu_ce_backward(float *dlogits, const float *dloss, const float *logits, const int *labels, int B, int n) {
    cross_entropy_backward_cuda(dlogits, dloss, logits, labels, B, n, stream);
}
static void cu_mse_forward(float *loss, float *ws, const float *pred, const float *target, size_t N, int C) {
    mse_forward_cuda(loss, ws, pred, target, N, C, stream);
}
static void cu_mse_backward(float *dpred, const float *dloss, const float *pred, const float *target, size_t N,
                            int C) {
    mse_backward_cuda(dpred, dloss, pred, target, N, C, stream);
}
static void cu_ccc_forward(float *loss, float *ws, const float *pred, const float *target, size_t N, int C) {
    ccc_forward_cuda(loss, ws, pred, target, N, C, stream);
}
static void cu_ccc_backward(float *dpred, const float *dloss, const float *pred, const float *target, size_t N,
                            int C) {
    ccc_backward_cuda(dpred, dloss, pred, target, N, C, stream);
}
static void cu_sum_squares(float *out, float *ws, const float *x, size_t n) {
    sum_squares_cuda(out, ws, x, n, stream);
}
static void cu_bertadam_update(float *p, float *m, float *v, const float *g, const float *tensor_sq,
                               const float *global_sq, BertAdamHyper h, float lr, size_t n) {
    bertadam_update_cuda(p, m, v, g, tensor_sq, global_sq, h, lr, n, stream);
}

static Backend make_backend(void) {
    Backend b = {};
    b.name = "cuda";
    b.host_memory = 0;
    b.stream = stream;
    b.alloc = cu_alloc;
    b.release = cu_release;
    b.upload = cu_upload;
    b.download = cu_download;
    b.zero = cu_zero;
    b.sync = cu_sync;
    b.linear_forward = cu_linear_forward;
    b.linear_backward_ws = cu_linear_backward_ws;
    b.linear_backward = cu_linear_backward;
    b.layernorm_forward = cu_layernorm_forward;
    b.layernorm_backward_ws = layernorm_backward_ws_floats_cuda;
    b.layernorm_backward = cu_layernorm_backward;
    b.attention_ws = cu_attention_ws;
    b.attention_forward = cu_attention_forward;
    b.attention_backward = cu_attention_backward;
    b.attention_forward_cudnn = cu_attention_forward_cudnn;
    b.relu_forward = cu_relu_forward;
    b.relu_backward = cu_relu_backward;
    b.add_forward = cu_add_forward;
    b.concat_forward = cu_concat_forward;
    b.concat_backward = cu_concat_backward;
    b.dropout_forward = cu_dropout_forward;
    b.dropout_backward = cu_dropout_backward;
    b.sinusoid_table = cu_sinusoid_table;
    b.embed_forward = cu_embed_forward;
    b.embed_backward = cu_embed_backward;
    b.gather_rows_forward = cu_gather_rows_forward;
    b.gather_rows_backward = cu_gather_rows_backward;
    b.l1_masked_ws = l1_masked_ws_floats_cuda;
    b.l1_masked_forward = cu_l1_forward;
    b.l1_masked_backward = cu_l1_backward;
    b.cross_entropy_ws = cross_entropy_ws_floats_cuda;
    b.cross_entropy_forward = cu_ce_forward;
    b.cross_entropy_backward = cu_ce_backward;
    b.mse_ws = mse_ws_floats_cuda;
    b.mse_forward = cu_mse_forward;
    b.mse_backward = cu_mse_backward;
    b.ccc_ws = ccc_ws_floats_cuda;
    b.ccc_forward = cu_ccc_forward;
    b.ccc_backward = cu_ccc_backward;
    b.sum_squares_ws = sum_squares_ws_floats_cuda;
    b.sum_squares = cu_sum_squares;
    b.bertadam_update = cu_bertadam_update;
    return b;
}

extern "C" const Backend *backend_cuda_open(AvtErr *err) {
    static Backend backend;
    if (backend.name) return &backend;
    int n = 0;
    const cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess || n == 0)
        return avt_err_set(err, "--device cuda: no CUDA device (%s)",
                           e != cudaSuccess ? cudaGetErrorString(e) : "cudaGetDeviceCount found none"), nullptr;
    // one GPU per process of a data-parallel run, by its rank on the node (device 0 when run alone)
    cuda_check(cudaSetDevice(avt_local_rank() % n));
    cuda_check(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
    backend = make_backend();
    return &backend;
}
