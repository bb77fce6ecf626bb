#include "train/optim.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

const BertAdamHyper BERTADAM_SPEC = {0.9, 0.999, 1e-6f, 0.01f, 1.0f, 1.0f};

float warmup_linear(double x, double warmup) {
    if (x < warmup) return (float)(x / warmup);
    const double y = (x - 1.0) / (warmup - 1.0);
    return (float)(y > 0.0 ? y : 0.0);
}

int optim_skips(const Param *p) { return p->buffer || p->unused; }

void optim_init(Optimizer *o, ParamTable *pt, BertAdamHyper h, float lr, double warmup, long t_total) {
    if (t_total < 1) avt_fatal("optim_init: t_total must be >= 1, got %ld", t_total);
    if (!(warmup > 0.0 && warmup < 1.0)) avt_fatal("optim_init: warmup must be in (0, 1), got %g", warmup);
    const Backend *be = pt->data.be;
    memset(o, 0, sizeof *o);
    o->h = h;
    o->lr = lr;
    o->warmup = warmup;
    o->t_total = t_total;
    o->n = pt->n;
    o->m = calloc_check((size_t)pt->n, sizeof *o->m);
    o->v = calloc_check((size_t)pt->n, sizeof *o->v);
    arena_init(&o->moments, "optimizer moments", be);
    arena_init(&o->scratch, "optimizer scratch", be);
    // pass 0 sizes both arenas (arena_alloc returns NULL while planning), pass 1 carves them
    for (int pass = 0; pass < 2; pass++) {
        int trained = 0;
        size_t ws = 0;
        for (int i = 0; i < pt->n; i++) {
            const Param *p = &pt->p[i];
            if (optim_skips(p)) continue;
            o->m[i] = arena_alloc(&o->moments, p->t.size * sizeof(float));
            o->v[i] = arena_alloc(&o->moments, p->t.size * sizeof(float));
            const size_t w = be->sum_squares_ws(p->t.size);
            ws = w > ws ? w : ws;
            trained++;
        }
        // a power of two, so the global sum is a tree of halvings with no odd element
        for (o->n_sq = 2; o->n_sq < trained; o->n_sq *= 2) {}
        o->sq = arena_alloc(&o->scratch, (size_t)o->n_sq * sizeof(float));
        o->sum = arena_alloc(&o->scratch, (size_t)o->n_sq / 2 * sizeof(float));
        o->ws = arena_alloc(&o->scratch, ws * sizeof(float));
        if (pass == 0) {
            arena_commit(&o->moments);
            arena_commit(&o->scratch);
        }
    }
    // moments start at zero; the padding of sq stays zero forever (a step writes the first `trained` slots only)
    be->zero(o->moments.base, o->moments.cap);
    be->zero(o->scratch.base, o->scratch.cap);
}

void optim_free(Optimizer *o) {
    arena_free(&o->moments);
    arena_free(&o->scratch);
    free(o->m);
    free(o->v);
    memset(o, 0, sizeof *o);
}

float optim_lr(const Optimizer *o) {
    return (float)((double)o->lr * warmup_linear((double)o->step / (double)o->t_total, o->warmup));
}

float optim_step(Optimizer *o, ParamTable *pt) {
    const Backend *be = pt->data.be;
    if (be != o->moments.be || pt->n != o->n)
        avt_fatal("optim_step: %d tensors on the %s backend, the optimizer was set up for %d on %s (params_to "
                  "must come before optim_init)", pt->n, be->name, o->n, o->moments.be->name);
    // Each tensor's squared norm, then the global one by a fixed tree of float additions: the same order on
    // every backend and thread count, and no host round trip before the updates.
    int k = 0;
    for (int i = 0; i < pt->n; i++)
        if (o->m[i]) be->sum_squares(o->sq + k++, o->ws, pt->p[i].t.grad, pt->p[i].t.size);
    const size_t half = (size_t)o->n_sq / 2;
    be->add_forward(o->sum, o->sq, o->sq + half, half);
    for (size_t w = half / 2; w >= 1; w /= 2) be->add_forward(o->sum, o->sum, o->sum + w, w);

    const float lr = optim_lr(o);
    k = 0;
    for (int i = 0; i < pt->n; i++) {
        Param *p = &pt->p[i];
        if (!o->m[i]) continue; // skipped at optim_init
        be->bertadam_update(p->t.data, o->m[i], o->v[i], p->t.grad, o->sq + k++, o->sum, o->h, lr, p->t.size);
    }
    o->step++;
    float global_sq;
    be->download(&global_sq, o->sum, sizeof global_sq);
    return sqrtf(global_sq);
}
