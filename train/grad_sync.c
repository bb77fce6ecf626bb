#include "train/grad_sync.h"

#include <limits.h>
#include <stdlib.h>

void grad_sync_init(GradSync *s, Dist *d, const Backend *be, const ParamTable *pt, size_t bucket_bytes) {
    s->d = d, s->be = be, s->n = 0;
    s->base = (float *)(void *)pt->grad.base;
    s->lo = calloc_check((size_t)pt->n + 1, sizeof(size_t));
    s->hi = calloc_check((size_t)pt->n + 1, sizeof(size_t));
    s->ready_at = calloc_check((size_t)pt->n + 1, sizeof(int));
    s->req = calloc_check((size_t)pt->n + 1, sizeof(DistReq *));
    size_t cut = bucket_bytes / sizeof(float);
    for (int i = 0; i < pt->n; i++) {
        const Tensor *t = &pt->p[i].t;
        if (!t->grad) continue;
        size_t lo = (size_t)(t->grad - s->base), hi = lo + t->size;
        if (s->n == 0 || s->hi[s->n - 1] - s->lo[s->n - 1] >= cut) s->lo[s->n++] = lo;
        s->hi[s->n - 1] = hi; // buckets are contiguous: the alignment gaps between tensors (zeros) ride along
    }
}

void grad_sync_free(GradSync *s) {
    free(s->lo), free(s->hi), free(s->ready_at), free(s->req);
    s->lo = s->hi = NULL, s->ready_at = NULL, s->req = NULL;
}

// The bucket holding gradient pointer p, or -1 when p is not a parameter gradient.
static int bucket_of(const GradSync *s, const float *p) {
    if (!p || p < s->base || s->n == 0 || p >= s->base + s->hi[s->n - 1]) return -1;
    size_t off = (size_t)(p - s->base);
    int a = 0, b = s->n - 1;
    while (a < b) { // the last bucket with lo <= off
        int m = (a + b + 1) / 2;
        if (s->lo[m] <= off) a = m;
        else b = m - 1;
    }
    return off < s->hi[a] ? a : -1;
}

static void start(GradSync *s, int b) {
    s->req[b] = dist_allreduce_start(s->d, s->be, s->base + s->lo[b], s->hi[b] - s->lo[b]);
    s->ready_at[b] = -1; // started
}

static void node_done(void *ctx, int i) {
    GradSync *s = ctx;
    for (int b = 0; b < s->n; b++)
        if (s->ready_at[b] == i) start(s, b);
}

void grad_sync_begin(GradSync *s, Graph *g) {
    for (int b = 0; b < s->n; b++) s->ready_at[b] = INT_MAX, s->req[b] = NULL;
    for (int i = 0; i < g->n_nodes; i++)
        for (int k = 0; k < 3; k++) {
            const Tensor *t = g->nodes[i].in[k];
            int b = t ? bucket_of(s, t->grad) : -1;
            if (b >= 0 && i < s->ready_at[b]) s->ready_at[b] = i;
        }
    g->node_done = node_done;
    g->node_done_ctx = s;
}

void grad_sync_end(GradSync *s, Graph *g) {
    for (int b = 0; b < s->n; b++)
        if (s->ready_at[b] != -1) start(s, b);
    for (int b = 0; b < s->n; b++) dist_allreduce_wait(s->d, s->req[b]);
    g->node_done = NULL;
    g->node_done_ctx = NULL;
}
