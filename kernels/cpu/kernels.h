// CPU kernels: the reference backend. One file per operation family (linear.c, layernorm.c, attention.c,
// elementwise.c, embed.c, loss.c); the CUDA twins in kernels/cuda/ keep these signatures plus a stream.
//
// Conventions
// - Arguments: outputs, inputs, parameters, dimensions. Row-major, batch-first: an activation is (B, T, C);
//   N = B*T rows where the batch structure does not matter.
// - Every backward ACCUMULATES (+=) into its gradient outputs; a NULL gradient pointer means "not needed".
// - Dropout masks are never stored: forward and backward redraw them from the DropoutKey (base/philox.h).
// - Kernels allocate nothing: scratch comes from the caller's arena as `ws`, sized by the matching *_ws_floats.
//   Threaded kernels that need per-thread scratch take the thread count the workspace was sized for.
#ifndef AVT_KERNELS_CPU_H
#define AVT_KERNELS_CPU_H

#include <stddef.h>
#include "base/philox.h"
#include "kernels/optim.h"

// Threads a kernel may use now (OpenMP's current limit; 1 without OpenMP).
int kernel_threads(void);

// ---- linear.c: out = inp . W^T + b (GEMM through cblas_sgemm) ----
// out (N, OC), inp (N, C), weight (OC, C), bias (OC) or NULL
void linear_forward(float *out, const float *inp, const float *weight, const float *bias, size_t N, int C, int OC);
// dinp (N, C), dweight (OC, C), dbias (OC); dout (N, OC)
void linear_backward(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                     const float *weight, size_t N, int C, int OC);

// ---- layernorm.c: eps 1e-5, two-pass statistics ----
// out (N, C), mean (N), rstd (N) written; inp (N, C), weight (C), bias (C)
void layernorm_forward(float *out, float *mean, float *rstd, const float *inp, const float *weight,
                       const float *bias, size_t N, int C);
// ws (layernorm_backward_ws_floats): per-block partial sums of the weight and bias gradients
size_t layernorm_backward_ws_floats(size_t N, int C);
void layernorm_backward(float *dinp, float *dweight, float *dbias, float *ws, const float *dout, const float *inp,
                        const float *weight, const float *mean, const float *rstd, size_t N, int C);

// ---- attention.c: multi-head scaled dot-product attention ----
// q (B, Tq, C), k (B, Tk, C), v (B, Tk, C) with C = NH*HS (already projected, head h = columns [h*HS, (h+1)*HS)).
// scores = (q_h * HS^-0.5) . k_h^T (q scaled first, as the reference scales q after its bias);
// causal: key j is hidden from query i when j - i >= 1 + |Tk - Tq|;
// att = softmax(scores) in fp32 (saved, BEFORE dropout; element index of att is its (B, NH, Tq, Tk) offset,
// which is also the dropout element index); out (B, Tq, C) = dropout(att) . v_h per head.
// ws (attention_ws_floats(Tk, HS, nthreads)) is per-thread scratch for at most nthreads threads.
size_t attention_ws_floats(int Tk, int HS, int nthreads);
void attention_forward(float *out, float *att, float *ws, const float *q, const float *k, const float *v,
                       DropoutKey drop, int causal, int B, int Tq, int Tk, int NH, int HS, int nthreads);
// dq (B, Tq, C), dk, dv (B, Tk, C)
void attention_backward(float *dq, float *dk, float *dv, float *ws, const float *dout, const float *q,
                        const float *k, const float *v, const float *att, DropoutKey drop, int B, int Tq, int Tk,
                        int NH, int HS, int nthreads);

// ---- elementwise.c ----
void relu_forward(float *out, const float *inp, size_t n);
void relu_backward(float *dinp, const float *dout, const float *out, size_t n);       // uses out > 0
void add_forward(float *out, const float *a, const float *b, size_t n);
// out (N, C1 + C2) = [a (N, C1) | b (N, C2)]
void concat_forward(float *out, const float *a, const float *b, size_t N, int C1, int C2);
void concat_backward(float *da, float *db, const float *dout, size_t N, int C1, int C2);
// m[j] = dropout_scale(drop, base + j) for j < n, eight Philox blocks at a time (the rounds vectorise).
void dropout_scales(float *m, DropoutKey drop, size_t base, size_t n);
// element index i of the flat tensor is the dropout element index
void dropout_forward(float *out, const float *inp, DropoutKey drop, size_t n);
void dropout_backward(float *dinp, const float *dout, DropoutKey drop, size_t n);
// out (n, C) = rows[r] of inp (N, C); backward: dinp[rows[r]] += dout[r] in the order r = 0..n-1 (rows may repeat)
void gather_rows_forward(float *out, const float *inp, const int *rows, int n, int C);
void gather_rows_backward(float *dinp, const float *dout, const int *rows, int n, int C);

// ---- embed.c: encoder input step, out = sqrt(C) * inp + PE(pos) ----
// pos(b, t) = 0 if inp[b, t, 0] == 0.0f exactly, else t + 1.  pe (Tmax + 1, C) from sinusoid_table, Tmax >= T.
void sinusoid_table(float *pe, int Tmax, int C);
void embed_forward(float *out, const float *inp, const float *pe, int B, int T, int C);
void embed_backward(float *dinp, const float *dout, int B, int T, int C);

// ---- loss.c: each forward returns the scalar loss; backward scales by dloss ----
// mean |pred - target| over the rows with mask[r] != 0 and all C columns; pred, target (N, C), mask (N) or
// NULL for every row. Returns 0 when no row is masked.
float l1_masked_forward(const float *pred, const float *target, const float *mask, size_t N, int C);
void l1_masked_backward(float *dpred, float dloss, const float *pred, const float *target, const float *mask,
                        size_t N, int C);
// mean over B of -log softmax(logits)[label]; logits (B, n), labels (B) in [0, n)
float cross_entropy_forward(const float *logits, const int *labels, int B, int n);
void cross_entropy_backward(float *dlogits, float dloss, const float *logits, const int *labels, int B, int n);
// mean (pred - target)^2 over N*C elements
float mse_forward(const float *pred, const float *target, size_t N, int C);
void mse_backward(float *dpred, float dloss, const float *pred, const float *target, size_t N, int C);
// 1 - CCC averaged over the C columns, CCC = 2 cov(x, y) / (var x + var y + (mean x - mean y)^2) with population
// (1/N) moments of pred's column x and target's column y over the N rows; a column pair that is constant and equal
// counts as CCC = 1 with zero gradient. pred, target (N, C); returns 0 when N == 0 or C <= 0.
float ccc_forward(const float *pred, const float *target, size_t N, int C);
void ccc_backward(float *dpred, float dloss, const float *pred, const float *target, size_t N, int C);

// ---- optim.c: BertAdam (docs/model.md §3.4) over one parameter tensor ----
// *out = sum of x[i]^2 over n in a fixed order (blocked partial sums in double)
void sum_squares(float *out, const float *x, size_t n);
// g' = g * bertadam_grad_scale(*tensor_sq, *global_sq, h); m = b1 m + (1 - b1) g'; v = b2 v + (1 - b2) g'^2;
// p -= lr * (m / (sqrt(v) + eps) + wd * p). No bias correction. p, m, v, g (n); tensor_sq, global_sq: scalars
// (sum_squares of this tensor's and of every parameter's gradient), read through pointers so the CUDA twin needs
// no host synchronisation.
void bertadam_update(float *p, float *m, float *v, const float *g, const float *tensor_sq, const float *global_sq,
                     BertAdamHyper h, float lr, size_t n);

#endif
