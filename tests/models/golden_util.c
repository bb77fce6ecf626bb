// Helpers shared by the golden tests (tests/models/golden_util.h).
#include "tests/models/golden_util.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "tests/testutil.h"

const GoldenTol GOLDEN_TOL[] = {
    [TOL_OUT] = {"forward outputs", 2e-5},
    [TOL_LOSS] = {"loss", 2e-6},
    [TOL_GRAD] = {"parameter gradients", 1e-4},
};

const StTensor *golden_need(const SafeTensors *st, const char *name) {
    const StTensor *t = st_find(st, name);
    cr_assert(t, "%s: tensor '%s' missing", st->path, name);
    return t;
}

float *golden_load_f32(const SafeTensors *st, const char *name) {
    const StTensor *t = golden_need(st, name);
    float *x = malloc(t->numel * sizeof(float));
    cr_assert(x);
    st_copy_f32(x, t);
    return x;
}

uint64_t golden_meta_u64(const SafeTensors *st, const char *key) {
    const char *v = st_meta(st, key);
    cr_assert(v, "%s: metadata '%s' missing", st->path, key);
    return strtoull(v, NULL, 10);
}

void golden_open(Golden *g, const char *cfg, const char *head) {
    char file[256];
    AvtErr err;
    snprintf(file, sizeof file, "%s.golden.safetensors", cfg);
    cr_assert_eq(st_open(&g->gold, golden_path(file), &err), 0, "%s (run `make golden`)", err.msg);
    snprintf(file, sizeof file, "%s.params.safetensors", cfg);
    cr_assert_eq(avt_load(&g->m, golden_path(file), &err), 0, "%s", err.msg);
    if (head) {
        AvtModel plain = g->m;
        AvtConfig c = plain.cfg;
        char key[128];
        snprintf(key, sizeof key, "%s2.weight", head);
        const StTensor *w2 = golden_need(&g->gold, key);
        cr_assert_eq(w2->ndim, 2, "%s: a matrix expected", key);
        c.n_out = (int)w2->shape[0];
        avt_init(&g->m, c, 0);
        for (int i = 0; i < g->m.params.n; i++) {
            Param *p = &g->m.params.p[i];
            const Param *q = params_find(&plain.params, p->name);
            if (q) {
                memcpy(p->t.data, q->t.data, p->t.size * sizeof(float));
                continue;
            }
            cr_assert(!strncmp(p->name, "head.", 5), "parameter '%s' is neither the twin's nor the head's", p->name);
            snprintf(key, sizeof key, "%s%s", head, p->name + 5);
            const StTensor *t = golden_need(&g->gold, key);
            cr_assert_eq(t->numel, p->t.size, "%s: %zu elements, the model's %s has %zu", key, t->numel, p->name,
                         p->t.size);
            st_copy_f32(p->t.data, t);
        }
        avt_free(&plain);
    }
    const StTensor *xa = golden_need(&g->gold, "x_a");
    g->B = (int)xa->shape[0];
    g->T = (int)xa->shape[1];
    g->seed = golden_meta_u64(&g->gold, "seed");
    g->step = (uint32_t)golden_meta_u64(&g->gold, "step");
    g->ft_step = (uint32_t)golden_meta_u64(&g->gold, "ft_step");
}

void golden_close(Golden *g) {
    avt_free(&g->m);
    st_close(&g->gold);
}

double golden_check_ref(const char *name, const float *got, const float *ref, size_t n, int tol) {
    double e = rel_err(got, ref, n, 1e-6);
    cr_expect(e <= GOLDEN_TOL[tol].tol, "%s: error %.3g relative to scale exceeds %g (%s)", name, e,
              GOLDEN_TOL[tol].tol, GOLDEN_TOL[tol].what);
    return e;
}

double golden_check(const Golden *g, const char *name, const float *got, size_t n, int tol) {
    const StTensor *ref = golden_need(&g->gold, name);
    cr_assert_eq(ref->numel, n, "%s: %zu elements, the twin has %zu", name, n, ref->numel);
    float *r = golden_load_f32(&g->gold, name);
    double e = golden_check_ref(name, got, r, n, tol);
    free(r);
    return e;
}
