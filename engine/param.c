#include "engine/param.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

size_t params_count(const ParamTable *pt) {
    size_t n = 0;
    for (int i = 0; i < pt->n; i++)
        if (!pt->p[i].buffer) n += pt->p[i].t.size;
    return n;
}

const Param *params_find(const ParamTable *pt, const char *name) {
    for (int i = 0; i < pt->n; i++)
        if (strcmp(pt->p[i].name, name) == 0) return &pt->p[i];
    return NULL;
}

void params_zero_grad(ParamTable *pt) {
    if (pt->grad.base) pt->grad.be->zero(pt->grad.base, pt->grad.used);
}

// p, an address inside arena a before it moved from old_base, at the same offset after.
static float *rebase(float *p, const char *old_base, const char *new_base) {
    return p ? (float *)(void *)(new_base + ((const char *)p - old_base)) : NULL;
}

void params_to(ParamTable *pt, const Backend *be) {
    char *old_data = pt->data.base, *old_grad = pt->grad.base;
    char *new_data = arena_move(&pt->data, be), *new_grad = arena_move(&pt->grad, be);
    for (int i = 0; i < pt->n; i++) {
        pt->p[i].t.data = rebase(pt->p[i].t.data, old_data, new_data);
        pt->p[i].t.grad = rebase(pt->p[i].t.grad, old_grad, new_grad);
    }
}

static void require_host(const ParamTable *pt, const char *what) {
    if (!pt->data.be->host_memory)
        avt_fatal("%s: the parameters are on the %s backend; call it before params_to", what, pt->data.be->name);
}

#define INIT_SITE 0x40000000u

void params_init(ParamTable *pt, uint64_t seed) {
    require_host(pt, "params_init");
    for (int i = 0; i < pt->n; i++) {
        Param *p = &pt->p[i];
        float bound = 0.0f, fill = 0.0f;
        switch (p->init) {
        case INIT_ZERO: fill = 0.0f; break;
        case INIT_ONE: fill = 1.0f; break;
        case INIT_VERSION: fill = 2.0f; break; // fairseq's encoder version buffer
        case INIT_XAVIER: bound = sqrtf(6.0f / (float)(p->fan_in + p->fan_out)); break;
        case INIT_FAN_IN: bound = 1.0f / sqrtf((float)p->fan_in); break; // PyTorch's Linear/Conv1d default
        }
        for (size_t j = 0; j < p->t.size; j++)
            p->t.data[j] = bound > 0.0f ? (2.0f * philox_uniform(seed, INIT_SITE + (uint32_t)i, 0, j) - 1.0f) * bound
                                        : fill;
    }
}

int params_save(const ParamTable *pt, const char *path, const char *const *meta_keys, const char *const *meta_vals,
                int n_meta, AvtErr *err) {
    // Device parameters are written from one host copy of their arena.
    char *host = NULL;
    if (!pt->data.be->host_memory) {
        host = malloc_check(pt->data.used ? pt->data.used : 1);
        pt->data.be->download(host, pt->data.base, pt->data.used);
    }
    StWrite *w = calloc_check((size_t)pt->n, sizeof *w);
    for (int i = 0; i < pt->n; i++) {
        w[i].name = pt->p[i].name;
        w[i].ndim = pt->p[i].t.ndim;
        for (int d = 0; d < w[i].ndim; d++) w[i].shape[d] = pt->p[i].t.shape[d];
        w[i].data = host ? rebase(pt->p[i].t.data, pt->data.base, host) : pt->p[i].t.data;
    }
    int rc = st_write(path, w, pt->n, meta_keys, meta_vals, n_meta, err);
    free(w);
    free(host);
    return rc;
}

static int same_shape(const StTensor *s, const Tensor *t) {
    if (s->ndim != t->ndim) return 0;
    for (int d = 0; d < t->ndim; d++)
        if (s->shape[d] != t->shape[d]) return 0;
    return 1;
}

static void shape_str(char *buf, size_t len, int ndim, const int64_t *s64, const int *s32) {
    size_t o = (size_t)snprintf(buf, len, "(");
    for (int d = 0; d < ndim && o < len; d++)
        o += (size_t)snprintf(buf + o, len - o, d ? ", %lld" : "%lld", (long long)(s64 ? s64[d] : s32[d]));
    if (o < len) snprintf(buf + o, len - o, ")");
}

int params_load(ParamTable *pt, const SafeTensors *st, AvtErr *err) {
    require_host(pt, "params_load");
    for (int i = 0; i < st->n; i++)
        if (!params_find(pt, st->t[i].name))
            return avt_err_set(err, "%s: unexpected tensor '%s' (not part of this model)", st->path, st->t[i].name);
    for (int i = 0; i < pt->n; i++) {
        Param *p = &pt->p[i];
        const StTensor *s = st_find(st, p->name);
        if (!s) {
            if (p->buffer) continue;
            return avt_err_set(err, "%s: missing tensor '%s'", st->path, p->name);
        }
        if (!same_shape(s, &p->t)) {
            char want[96], got[96];
            shape_str(want, sizeof want, p->t.ndim, NULL, p->t.shape);
            shape_str(got, sizeof got, s->ndim, s->shape, NULL);
            return avt_err_set(err, "%s: tensor '%s' has shape %s, the model needs %s", st->path, p->name, got, want);
        }
        st_copy_f32(p->t.data, s);
    }
    return 0;
}
