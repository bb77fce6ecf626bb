// The CPU backend: the reference kernels of kernels/cpu on host memory.
#include <stdlib.h>
#include <string.h>
#include "engine/backend.h"
#include "kernels/cpu/kernels.h"

#define CPU_ALIGN 64

static void *cpu_alloc(size_t bytes) {
    void *p = aligned_alloc(CPU_ALIGN, (bytes + CPU_ALIGN - 1) / CPU_ALIGN * CPU_ALIGN);
    if (!p) avt_fatal("out of host memory: %zu bytes", bytes);
    return p;
}
static void cpu_copy(void *dst, const void *src, size_t bytes) { memcpy(dst, src, bytes); }
static void cpu_zero(void *p, size_t bytes) { memset(p, 0, bytes); }
static void cpu_sync(void) {}
static size_t no_ws(void) { return 0; }

static size_t cpu_linear_ws(size_t N, int C, int OC) { (void)N, (void)C, (void)OC; return no_ws(); }
static void cpu_linear_backward(float *dinp, float *dweight, float *dbias, float *ws, const float *dout,
                                const float *inp, const float *weight, size_t N, int C, int OC) {
    (void)ws;
    linear_backward(dinp, dweight, dbias, dout, inp, weight, N, C, OC);
}
static size_t cpu_attention_ws(int B, int Tq, int Tk, int NH, int HS, int backward) {
    (void)B, (void)Tq, (void)NH, (void)backward;
    return attention_ws_floats(Tk, HS, kernel_threads());
}
static void cpu_attention_forward(float *out, float *att, float *ws, const float *q, const float *k, const float *v,
                                  DropoutKey drop, int causal, int B, int Tq, int Tk, int NH, int HS) {
    attention_forward(out, att, ws, q, k, v, drop, causal, B, Tq, Tk, NH, HS, kernel_threads());
}
static void cpu_attention_backward(float *dq, float *dk, float *dv, float *ws, const float *dout, const float *q,
                                   const float *k, const float *v, const float *att, DropoutKey drop, int B, int Tq,
                                   int Tk, int NH, int HS) {
    attention_backward(dq, dk, dv, ws, dout, q, k, v, att, drop, B, Tq, Tk, NH, HS, kernel_threads());
}

// Losses: the CPU kernels return the scalar and take dloss by value.
static size_t cpu_rows_ws(size_t N, int C) { (void)N, (void)C; return no_ws(); }
static size_t cpu_batch_ws(int B) { (void)B; return no_ws(); }
static size_t cpu_n_ws(size_t n) { (void)n; return no_ws(); }
static void cpu_l1_forward(float *loss, float *ws, const float *pred, const float *target, const float *mask, size_t N,
                           int C) {
    (void)ws;
    *loss = l1_masked_forward(pred, target, mask, N, C);
}
static void cpu_l1_backward(float *dpred, const float *dloss, float *ws, const float *pred, const float *target,
                            const float *mask, size_t N, int C) {
    (void)ws;
    l1_masked_backward(dpred, *dloss, pred, target, mask, N, C);
}
static void cpu_ce_forward(float *loss, float *ws, const float *logits, const int *labels, int B, int n) {
    (void)ws;
    *loss = cross_entropy_forward(logits, labels, B, n);
}
static void cpu_ce_backward(float *dlogits, const float *dloss, const float *logits, const int *labels, int B, int n) {
    cross_entropy_backward(dlogits, *dloss, logits, labels, B, n);
}
static void cpu_mse_forward(float *loss, float *ws, const float *pred, const float *target, size_t N, int C) {
    (void)ws;
    *loss = mse_forward(pred, target, N, C);
}
static void cpu_mse_backward(float *dpred, const float *dloss, const float *pred, const float *target, size_t N,
                             int C) {
    mse_backward(dpred, *dloss, pred, target, N, C);
}
static void cpu_ccc_forward(float *loss, float *ws, const float *pred, const float *target, size_t N, int C) {
    (void)ws;
    *loss = ccc_forward(pred, target, N, C);
}
static void cpu_ccc_backward(float *dpred, const float *dloss, const float *pred, const float *target, size_t N,
                             int C) {
    ccc_backward(dpred, *dloss, pred, target, N, C);
}
static void cpu_sum_squares(float *out, float *ws, const float *x, size_t n) {
    (void)ws;
    sum_squares(out, x, n);
}

const Backend BACKEND_CPU = {
    .name = "cpu",
    .host_memory = 1,
    .alloc = cpu_alloc,
    .release = free,
    .upload = cpu_copy,
    .download = cpu_copy,
    .zero = cpu_zero,
    .sync = cpu_sync,
    .linear_forward = linear_forward,
    .linear_backward_ws = cpu_linear_ws,
    .linear_backward = cpu_linear_backward,
    .layernorm_forward = layernorm_forward,
    .layernorm_backward_ws = layernorm_backward_ws_floats,
    .layernorm_backward = layernorm_backward,
    .attention_ws = cpu_attention_ws,
    .attention_forward = cpu_attention_forward,
    .attention_backward = cpu_attention_backward,
    .attention_forward_cudnn = NULL,
    .relu_forward = relu_forward,
    .relu_backward = relu_backward,
    .add_forward = add_forward,
    .concat_forward = concat_forward,
    .concat_backward = concat_backward,
    .dropout_forward = dropout_forward,
    .dropout_backward = dropout_backward,
    .sinusoid_table = sinusoid_table,
    .embed_forward = embed_forward,
    .embed_backward = embed_backward,
    .gather_rows_forward = gather_rows_forward,
    .gather_rows_backward = gather_rows_backward,
    .l1_masked_ws = cpu_rows_ws,
    .l1_masked_forward = cpu_l1_forward,
    .l1_masked_backward = cpu_l1_backward,
    .cross_entropy_ws = cpu_batch_ws,
    .cross_entropy_forward = cpu_ce_forward,
    .cross_entropy_backward = cpu_ce_backward,
    .mse_ws = cpu_rows_ws,
    .mse_forward = cpu_mse_forward,
    .mse_backward = cpu_mse_backward,
    .ccc_ws = cpu_rows_ws,
    .ccc_forward = cpu_ccc_forward,
    .ccc_backward = cpu_ccc_backward,
    .sum_squares_ws = cpu_n_ws,
    .sum_squares = cpu_sum_squares,
    .bertadam_update = bertadam_update,
};
