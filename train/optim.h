// The BertAdam optimiser (docs/model.md §3.4-3.5) over a parameter table: the global gradient clip
// (clip_grad_norm_(all, 1.0)), BertAdam's own per-tensor clip, decoupled weight decay, no bias correction, and the
// warmup_linear schedule. It runs on the backend the parameters live on: the moments and a small scratch arena are
// allocated there once by optim_init, and a step allocates nothing.
//
// Skipped tensors (Param.buffer or Param.unused, e.g. proj1/proj2, whose .grad stays None in PyTorch) have no
// moments, are never updated and take no part in the global norm, as in BertAdam + clip_grad_norm_.
#ifndef AVT_ENGINE_OPTIM_H
#define AVT_ENGINE_OPTIM_H

#include "engine/graph.h"
#include "engine/param.h"

typedef struct {
    BertAdamHyper h;
    float lr;              // peak learning rate (1e-4)
    double warmup;         // fraction of t_total spent ramping up (0.1)
    long t_total;          // planned updates (epochs x batches per epoch)
    long step;             // updates done; the next one uses warmup_linear(step / t_total)
    int n;                 // tensors in the table (moment pointers are indexed like it)
    int n_sq;              // squared-norm slots: trained tensors rounded up to a power of two (>= 2)
    Arena moments;         // m and v of every trained tensor, on the parameters' backend
    Arena scratch;         // sq, sum and ws below, on the parameters' backend
    float **m, **v;        // (n) first moment, second moment of each tensor; NULL for skipped ones
    float *sq;             // (n_sq) each trained tensor's squared gradient norm, in table order, zero padded
    float *sum;            // (n_sq / 2) pairwise sums of sq: sum[0] is the global squared norm after a step
    float *ws;             // sum_squares workspace of the largest tensor
} Optimizer;

// The spec's values: betas (0.9, 0.999), eps 1e-6, weight decay 0.01, both clips at 1.0.
extern const BertAdamHyper BERTADAM_SPEC;

// The schedule: x / warmup while x < warmup, then max((x - 1) / (warmup - 1), 0).
float warmup_linear(double x, double warmup);
// Call after params_to: the state goes where the parameters are. t_total > 0, 0 < warmup < 1. Moments start at 0.
void optim_init(Optimizer *o, ParamTable *pt, BertAdamHyper h, float lr, double warmup, long t_total);
void optim_free(Optimizer *o);
// 1 for tensors the optimiser leaves alone.
int optim_skips(const Param *p);
// The learning rate of the next update: lr * warmup_linear(step / t_total, warmup) (0 for the first one).
float optim_lr(const Optimizer *o);
// One update of every trained tensor from the gradients in pt (left unchanged), then step++. Returns the global
// gradient norm before clipping (the step's one read back to the host).
float optim_step(Optimizer *o, ParamTable *pt);

#endif
