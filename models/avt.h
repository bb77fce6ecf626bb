// CrossAttentionAVTransformer (Tran & Soleymani, ICASSP 2022), as specified in docs/model.md §2.
// Batch-first throughout: x_a (B, T, d_a), x_v (B, T, d_v), h_av (B, T, 2d).
#ifndef AVT_MODEL_H
#define AVT_MODEL_H

#include "engine/graph.h"
#include "engine/param.h"

typedef struct {
    int d_a, d_v;   // input widths: 512 (TRILL), 17 (OpenFace AU intensities)
    int d;          // embed_size
    int L;          // n_code: layers in every encoder
    int NH;         // n_heads
    int n_out;      // fine-tuning head outputs; 0 = no head
} AvtConfig;

extern const AvtConfig AVT_BASE;   // d 240, 4 layers, 10 heads
extern const AvtConfig AVT_LARGE;  // d 384, 8 layers, 12 heads

typedef struct {
    Tensor *in_proj_w, *in_proj_b;   // (3D, D), (3D): rows [0, D) q, [D, 2D) k, [2D, 3D) v
    Tensor *out_w, *out_b;           // (D, D), (D)
    Tensor *fc1_w, *fc1_b;           // (4D, D), (4D)
    Tensor *fc2_w, *fc2_b;           // (D, 4D), (D)
    Tensor *ln0_w, *ln0_b, *ln1_w, *ln1_b; // (D)
} AvtLayer;

typedef struct {
    int D;
    AvtLayer *layers;                // (L)
    Tensor *ln_w, *ln_b;             // final layer norm (D)
} AvtEncoder;

enum { ENC_A_CROSS_V, ENC_V_CROSS_A, ENC_MEM, ENC_COUNT };

typedef struct { Tensor *w, *b; } AvtLinear;

typedef struct {
    AvtConfig cfg;
    ParamTable params;
    Tensor *proj_a;                  // (d, d_a, 1) Conv1d k=1, no bias
    Tensor *proj_v;                  // (d, d_v, 1)
    AvtEncoder enc[ENC_COUNT];       // A<-V, V<-A (width d), trans_mem (width 2d)
    AvtLinear proj1, proj2;          // unused by the forward; kept because the released checkpoints carry them
    AvtLinear proj1_a, proj2_a, proj1_v, proj2_v, out_a, out_v;
    AvtLinear head1, head2;          // fine-tuning head 2d -> 16 -> n_out (when n_out > 0)
} AvtModel;

// Validates cfg (one-line error, exit 1 on nonsense), builds the parameter table and initialises it (docs/model.md §2.9).
void avt_init(AvtModel *m, AvtConfig cfg, uint64_t seed);
void avt_free(AvtModel *m);
// Build the model described by a checkpoint's metadata and shapes, and load it strictly. -1 with err on failure.
int avt_load(AvtModel *m, const char *path, AvtErr *err);
int avt_save(const AvtModel *m, const char *path, AvtErr *err);

// ---- forward passes (build on the graph; the graph's training flag turns dropout on) ----
// h_av (B, T, 2d): trans_mem over concat(V<-A, A<-V), after its final layer norm (extract_feature).
Tensor *avt_fuse(Graph *g, const AvtModel *m, Tensor *x_a, Tensor *x_v);
// 1 if the parameter named is read by avt_fuse (extract_feature); 0 for the pretraining and fine-tuning heads and
// the unused proj1/proj2.
int avt_param_in_fuse(const char *name);
// Pretraining heads (§2.10) on every step of h (..., 2d): *out_a (..., d_a), *out_v (..., d_v).
void avt_reconstruct(Graph *g, const AvtModel *m, Tensor *h, Tensor **out_a, Tensor **out_v);
// Masked reconstruction loss (§3.3): L1(out_a[m], target_a[m]) + L1(out_v[m], target_v[m]).
// target_a (B, T, d_a), target_v (B, T, d_v), mask (B, T) with 1 at masked steps. The heads run on the M masked
// steps only (the loss reads nothing else): *out_a (M, d_a), *out_v (M, d_v), rows in (b, t) order.
Tensor *avt_pretrain_loss(Graph *g, const AvtModel *m, Tensor *x_a, Tensor *x_v, const float *target_a,
                          const float *target_v, const float *mask, Tensor **out_a, Tensor **out_v);
// Fine-tuning head (§4) on h_av at step t_last[b] of each sample: logits (B, n_out).
Tensor *avt_head(Graph *g, const AvtModel *m, Tensor *h_av, const int *t_last);

#endif
