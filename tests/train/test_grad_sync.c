// The overlapped gradient sum (train/grad_sync.c) may start a bucket's reduction once the backward has passed
// the bucket's ready node: check that no later node changes the bucket (a snapshot taken at the ready node equals
// the final gradient) on the tiny model's pretraining step, with buckets small enough to cut every layer.
#include <criterion/criterion.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include "train/grad_sync.h"
#include "models/avt.h"

typedef struct {
    GradSync *s;
    float *snap; // (arena floats) each bucket copied at its ready node
    int taken;
} Probe;

static void take(void *ctx, int i) {
    Probe *p = ctx;
    for (int b = 0; b < p->s->n; b++)
        if (p->s->ready_at[b] == i) {
            memcpy(p->snap + p->s->lo[b], p->s->base + p->s->lo[b], (p->s->hi[b] - p->s->lo[b]) * sizeof(float));
            p->taken++;
        }
}

Test(grad_sync, buckets_are_complete_at_their_ready_node) {
    const AvtConfig cfg = {12, 5, 16, 2, 2, 0};
    const int B = 2, T = 9;
    AvtModel m;
    avt_init(&m, cfg, 4);
    Dist d = {.rank = 0, .world = 1};
    GradSync s;
    grad_sync_init(&s, &d, &BACKEND_CPU, &m.params, 2048);
    cr_assert_gt(s.n, 20, "buckets of 2 KB should cut the tiny model into many, got %d", s.n);

    size_t na = (size_t)B * T * cfg.d_a, nv = (size_t)B * T * cfg.d_v;
    float *xa = malloc(na * sizeof(float)), *xv = malloc(nv * sizeof(float)), mask[18] = {0};
    for (size_t i = 0; i < na; i++) xa[i] = (float)((i * 7919) % 13) / 13.0f - 0.5f;
    for (size_t i = 0; i < nv; i++) xv[i] = (float)((i * 104729) % 11) / 11.0f;
    for (int t = 0; t < B * T; t += 4) mask[t] = 1.0f;
    Graph g;
    graph_init(&g, 4096, &BACKEND_CPU);
    g.training = 1;
    g.seed = 3;
    int sa[3] = {B, T, cfg.d_a}, sv[3] = {B, T, cfg.d_v};
    Tensor *oa, *ov, *loss = NULL;
    for (int pass = 0; pass < 2; pass++) {
        if (pass == 0) graph_plan_begin(&g);
        else graph_reset(&g);
        Tensor *ta = graph_input(&g, pass ? xa : NULL, 3, sa), *tv = graph_input(&g, pass ? xv : NULL, 3, sv);
        loss = avt_pretrain_loss(&g, &m, ta, tv, pass ? xa : NULL, pass ? xv : NULL, pass ? mask : NULL, &oa, &ov);
        if (pass == 0) {
            graph_backward(&g, loss);
            graph_plan_end(&g);
        }
    }
    grad_sync_begin(&s, &g);
    int reached = 0;
    for (int b = 0; b < s.n; b++) reached += s.ready_at[b] != INT_MAX;
    cr_assert_gt(reached, s.n / 2, "most buckets are read by some node");
    size_t n = m.params.grad.used / sizeof(float);
    Probe p = {&s, calloc(n, sizeof(float)), 0};
    g.node_done = take, g.node_done_ctx = &p; // observe instead of reducing
    params_zero_grad(&m.params);
    graph_backward(&g, loss);
    cr_assert_eq(p.taken, reached, "every reached bucket is ready exactly once");
    for (int b = 0; b < s.n; b++)
        if (s.ready_at[b] != INT_MAX)
            cr_assert(memcmp(p.snap + s.lo[b], s.base + s.lo[b], (s.hi[b] - s.lo[b]) * sizeof(float)) == 0,
                      "bucket %d changed after its ready node %d", b, s.ready_at[b]);
    free(p.snap), free(xa), free(xv);
    graph_free(&g);
    grad_sync_free(&s);
    avt_free(&m);
}
