#include "engine/graph.h"

#include <stdlib.h>
#include <string.h>
#include "base/common.h"

#define ARENA_ALIGN 64

void arena_init(Arena *a, const char *name, const Backend *be) {
    memset(a, 0, sizeof *a);
    a->name = name;
    a->be = be;
}

void *arena_alloc(Arena *a, size_t bytes) {
    size_t off = (a->used + ARENA_ALIGN - 1) / ARENA_ALIGN * ARENA_ALIGN;
    size_t end = off + bytes;
    if (a->base == NULL) { // planning: only count
        a->used = end;
        if (end > a->peak) a->peak = end;
        return NULL;
    }
    if (end > a->cap)
        avt_fatal("arena '%s' exhausted: need %zu bytes, planned %zu (shapes changed after planning?)", a->name,
                  end, a->cap);
    a->used = end;
    if (end > a->peak) a->peak = end;
    return a->base + off;
}

void arena_commit(Arena *a) {
    if (a->base) a->be->release(a->base);
    a->cap = a->peak ? a->peak : ARENA_ALIGN;
    a->base = a->be->alloc(a->cap);
    a->used = 0;
}

void arena_reset(Arena *a) { a->used = 0; }

void arena_free(Arena *a) {
    if (a->base) a->be->release(a->base);
    a->base = NULL;
    a->cap = a->used = a->peak = 0;
}

char *arena_move(Arena *a, const Backend *be) {
    if (be == a->be || !a->base) {
        a->be = be;
        return a->base;
    }
    char *to = be->alloc(a->cap);
    if (a->be->host_memory) be->upload(to, a->base, a->used);
    else if (be->host_memory) a->be->download(to, a->base, a->used);
    else { // between two devices, through the host
        char *tmp = malloc_check(a->used ? a->used : 1);
        a->be->download(tmp, a->base, a->used);
        be->upload(to, tmp, a->used);
        free(tmp);
    }
    a->be->release(a->base);
    a->base = to;
    a->be = be;
    return to;
}

size_t tensor_numel(int ndim, const int *shape) {
    size_t n = 1;
    for (int i = 0; i < ndim; i++) n *= (size_t)shape[i];
    return n;
}

void graph_init(Graph *g, int max_nodes, const Backend *be) {
    memset(g, 0, sizeof *g);
    g->be = be;
    arena_init(&g->act, "activations", be);
    arena_init(&g->agrad, "activation gradients", be);
    arena_init(&g->host, "step constants", &BACKEND_CPU);
    g->max_nodes = max_nodes;
    g->max_tensors = 4 * max_nodes;
    g->nodes = calloc_check((size_t)g->max_nodes, sizeof(Node));
    g->tensors = calloc_check((size_t)g->max_tensors, sizeof(Tensor));
}

void graph_free(Graph *g) {
    arena_free(&g->act);
    arena_free(&g->agrad);
    arena_free(&g->host);
    free(g->nodes);
    free(g->tensors);
    memset(g, 0, sizeof *g);
}

void graph_reset(Graph *g) {
    g->n_nodes = g->n_tensors = 0;
    arena_reset(&g->act);
    arena_reset(&g->agrad);
    arena_reset(&g->host);
}

void graph_plan_begin(Graph *g) {
    arena_free(&g->act);
    arena_free(&g->agrad);
    arena_free(&g->host);
    g->planning = 1;
    graph_reset(g);
}

void graph_plan_end(Graph *g) {
    arena_commit(&g->act);
    arena_commit(&g->agrad);
    arena_commit(&g->host);
    g->planning = 0;
    graph_reset(g);
}

int graph_planned(const Graph *g) { return g->act.base != NULL; }

void *graph_scratch(Graph *g, size_t bytes) { return arena_alloc(&g->host, bytes); }

Tensor *graph_view(Graph *g, float *data, int ndim, const int *shape) {
    if (g->n_tensors == g->max_tensors) avt_fatal("graph: more than %d tensors in one step", g->max_tensors);
    // t->shape holds TENSOR_MAX_DIMS. The check also gives the compiler the bound: without it gcc 12 -O3 with
    // AVX-512 cannot see tensor_numel's loop stay inside a caller's shape[TENSOR_MAX_DIMS] (-Wmaybe-uninitialized).
    if (ndim < 1 || ndim > TENSOR_MAX_DIMS)
        avt_fatal("graph: a tensor of %d dimensions (1 to %d)", ndim, TENSOR_MAX_DIMS);
    Tensor *t = &g->tensors[g->n_tensors++];
    memset(t, 0, sizeof *t);
    t->ndim = ndim;
    memcpy(t->shape, shape, (size_t)ndim * sizeof(int));
    t->size = tensor_numel(ndim, shape);
    t->data = data;
    return t;
}

Tensor *graph_input(Graph *g, float *data, int ndim, const int *shape) {
    if (g->be->host_memory) return graph_view(g, data, ndim, shape);
    Tensor *t = graph_view(g, NULL, ndim, shape);
    t->data = arena_alloc(&g->act, t->size * sizeof(float));
    if (t->data) g->be->upload(t->data, data, t->size * sizeof(float));
    return t;
}

void tensor_read(const Graph *g, const Tensor *t, float *host) {
    g->be->download(host, t->data, t->size * sizeof(float));
}

float tensor_item(const Graph *g, const Tensor *t) {
    float x;
    g->be->download(&x, t->data, sizeof x);
    return x;
}

Tensor *tensor_rows(Graph *g, Tensor *t, int row0, int rows) {
    int shape[TENSOR_MAX_DIMS];
    memcpy(shape, t->shape, sizeof shape);
    shape[0] = rows;
    size_t row = t->size / (size_t)t->shape[0];
    Tensor *v = graph_view(g, t->data ? t->data + (size_t)row0 * row : NULL, t->ndim, shape);
    v->grad = t->grad ? t->grad + (size_t)row0 * row : NULL;
    v->requires_grad = t->requires_grad;
    return v;
}
