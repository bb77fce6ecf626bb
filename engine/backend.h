// Backends: which kernel runs an op on a device, and that device's memory. The ops (engine/ops.c), the arenas and
// the parameter table call a backend table and nothing else, so the model and the autograd run unchanged on
// `--device cpu` (engine/backend_cpu.c, always built) or `--device cuda` (engine/backend_cuda.cu, built by nvcc, or
// by the host compiler against the CUDA emulator in EMU builds and in the test binary).
//
// Every kernel entry has the semantics of its CPU kernel in kernels/cpu/kernels.h (backward ACCUMULATES, NULL
// gradient = not needed), on pointers into the backend's memory, with two uniform changes:
// - scratch: an op takes `ws` sized by its *_ws entry (floats), carved by the caller from an arena;
// - scalar losses live in backend memory: forwards write *loss, backwards read *dloss.
#ifndef AVT_BACKEND_H
#define AVT_BACKEND_H

#include <stddef.h>
#include "base/common.h"
#include "base/philox.h"
#include "kernels/optim.h"

typedef enum { ATTN_AVT, ATTN_CUDNN } AttentionImpl;

typedef struct Backend {
    const char *name;      // "cpu", "cuda"
    int host_memory;       // pointers are host pointers (no copies needed to read them)
    void *stream;          // the cudaStream_t every kernel and copy is queued on (NULL on cpu): collectives on
                           // the backend's memory (train/dist_nccl.cu) are queued behind them

    // ---- memory ----
    void *(*alloc)(size_t bytes);                          // fatal on failure; at least 16-byte aligned
    void (*release)(void *p);
    void (*upload)(void *dst, const void *src, size_t bytes);   // host -> backend
    void (*download)(void *dst, const void *src, size_t bytes); // backend -> host (waits for pending work)
    void (*zero)(void *p, size_t bytes);
    void (*sync)(void);                                    // wait for every queued kernel

    // ---- kernels ----
    void (*linear_forward)(float *out, const float *inp, const float *weight, const float *bias, size_t N, int C,
                           int OC);
    size_t (*linear_backward_ws)(size_t N, int C, int OC);
    void (*linear_backward)(float *dinp, float *dweight, float *dbias, float *ws, const float *dout, const float *inp,
                            const float *weight, size_t N, int C, int OC);
    void (*layernorm_forward)(float *out, float *mean, float *rstd, const float *inp, const float *weight,
                              const float *bias, size_t N, int C);
    size_t (*layernorm_backward_ws)(size_t N, int C);
    void (*layernorm_backward)(float *dinp, float *dweight, float *dbias, float *ws, const float *dout,
                               const float *inp, const float *weight, const float *mean, const float *rstd, size_t N,
                               int C);
    // att (B, NH, Tq, Tk) is always written (the probabilities a backward needs) except on the cuDNN path, which
    // ops.c takes only when no backward will run.
    size_t (*attention_ws)(int B, int Tq, int Tk, int NH, int HS, int backward);
    void (*attention_forward)(float *out, float *att, float *ws, const float *q, const float *k, const float *v,
                              DropoutKey drop, int causal, int B, int Tq, int Tk, int NH, int HS);
    void (*attention_backward)(float *dq, float *dk, float *dv, float *ws, const float *dout, const float *q,
                               const float *k, const float *v, const float *att, DropoutKey drop, int B, int Tq,
                               int Tk, int NH, int HS);
    // The baseline path (cuDNN SDPA), forward only, no dropout; NULL where the backend has none.
    int (*attention_forward_cudnn)(float *out, float *ws, const float *q, const float *k, const float *v, int causal,
                                   int B, int Tq, int Tk, int NH, int HS, AvtErr *err);
    void (*relu_forward)(float *out, const float *inp, size_t n);
    void (*relu_backward)(float *dinp, const float *dout, const float *out, size_t n);
    void (*add_forward)(float *out, const float *a, const float *b, size_t n);
    void (*concat_forward)(float *out, const float *a, const float *b, size_t N, int C1, int C2);
    void (*concat_backward)(float *da, float *db, const float *dout, size_t N, int C1, int C2);
    void (*dropout_forward)(float *out, const float *inp, DropoutKey drop, size_t n);
    void (*dropout_backward)(float *dinp, const float *dout, DropoutKey drop, size_t n);
    void (*sinusoid_table)(float *pe, int Tmax, int C);
    void (*embed_forward)(float *out, const float *inp, const float *pe, int B, int T, int C);
    void (*embed_backward)(float *dinp, const float *dout, int B, int T, int C);
    void (*gather_rows_forward)(float *out, const float *inp, const int *rows, int n, int C);
    void (*gather_rows_backward)(float *dinp, const float *dout, const int *rows, int n, int C);
    size_t (*l1_masked_ws)(size_t N, int C);
    void (*l1_masked_forward)(float *loss, float *ws, const float *pred, const float *target, const float *mask,
                              size_t N, int C);
    void (*l1_masked_backward)(float *dpred, const float *dloss, float *ws, const float *pred, const float *target,
                               const float *mask, size_t N, int C);
    size_t (*cross_entropy_ws)(int B);
    void (*cross_entropy_forward)(float *loss, float *ws, const float *logits, const int *labels, int B, int n);
    void (*cross_entropy_backward)(float *dlogits, const float *dloss, const float *logits, const int *labels, int B,
                                   int n);
    size_t (*mse_ws)(size_t N, int C);
    void (*mse_forward)(float *loss, float *ws, const float *pred, const float *target, size_t N, int C);
    void (*mse_backward)(float *dpred, const float *dloss, const float *pred, const float *target, size_t N, int C);
    size_t (*ccc_ws)(size_t N, int C);
    void (*ccc_forward)(float *loss, float *ws, const float *pred, const float *target, size_t N, int C);
    void (*ccc_backward)(float *dpred, const float *dloss, const float *pred, const float *target, size_t N, int C);
    size_t (*sum_squares_ws)(size_t n);
    void (*sum_squares)(float *out, float *ws, const float *x, size_t n);
    void (*bertadam_update)(float *p, float *m, float *v, const float *g, const float *tensor_sq,
                            const float *global_sq, BertAdamHyper h, float lr, size_t n);
} Backend;

extern const Backend BACKEND_CPU;

// "cpu" or "cuda": the backend, or NULL with the reason in err (a build without CUDA, no device, ...).
const Backend *backend_open(const char *name, AvtErr *err);
// Attention on backends with two paths (cuda): ATTN_AVT (ours, default) or ATTN_CUDNN (the baseline).
void backend_set_attention(AttentionImpl impl);
AttentionImpl backend_attention(void);

// Provided by engine/backend_cuda.cu: linked in, or in a native avt resolved through backend_cuda_symbol.
const Backend *backend_cuda_open(AvtErr *err);
// A symbol of the CUDA module (libavt_cuda.so beside the executable, loaded on first use), or NULL with err set.
void *backend_cuda_symbol(const char *name, AvtErr *err);

#endif
