#include "graph.h"

#include <stdlib.h>
#include <string.h>
#include "common.h"

#define ARENA_ALIGN 64

void arena_init(Arena *a, const char *name) {
    memset(a, 0, sizeof *a);
    a->name = name;
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
    free(a->base);
    a->cap = a->peak ? a->peak : ARENA_ALIGN;
    a->base = aligned_alloc(ARENA_ALIGN, (a->cap + ARENA_ALIGN - 1) / ARENA_ALIGN * ARENA_ALIGN);
    if (!a->base) avt_fatal("out of memory: arena '%s' needs %zu bytes", a->name, a->cap);
    a->used = 0;
}

void arena_reset(Arena *a) { a->used = 0; }

void arena_free(Arena *a) {
    free(a->base);
    a->base = NULL;
    a->cap = a->used = a->peak = 0;
}

size_t tensor_numel(int ndim, const int *shape) {
    size_t n = 1;
    for (int i = 0; i < ndim; i++) n *= (size_t)shape[i];
    return n;
}

void graph_init(Graph *g, int max_nodes) {
    memset(g, 0, sizeof *g);
    arena_init(&g->act, "activations");
    arena_init(&g->agrad, "activation gradients");
    g->max_nodes = max_nodes;
    g->max_tensors = 4 * max_nodes;
    g->nodes = calloc_check((size_t)g->max_nodes, sizeof(Node));
    g->tensors = calloc_check((size_t)g->max_tensors, sizeof(Tensor));
}

void graph_free(Graph *g) {
    arena_free(&g->act);
    arena_free(&g->agrad);
    free(g->nodes);
    free(g->tensors);
    memset(g, 0, sizeof *g);
}

void graph_reset(Graph *g) {
    g->n_nodes = g->n_tensors = 0;
    arena_reset(&g->act);
    arena_reset(&g->agrad);
}

void graph_plan_begin(Graph *g) {
    arena_free(&g->act);
    arena_free(&g->agrad);
    g->planning = 1;
    graph_reset(g);
}

void graph_plan_end(Graph *g) {
    arena_commit(&g->act);
    arena_commit(&g->agrad);
    g->planning = 0;
    graph_reset(g);
}

int graph_planned(const Graph *g) { return g->act.base != NULL; }

void *graph_scratch(Graph *g, size_t bytes) { return arena_alloc(&g->act, bytes); }

Tensor *graph_input(Graph *g, float *data, int ndim, const int *shape) {
    if (g->n_tensors == g->max_tensors) avt_fatal("graph: more than %d tensors in one step", g->max_tensors);
    Tensor *t = &g->tensors[g->n_tensors++];
    memset(t, 0, sizeof *t);
    t->ndim = ndim;
    memcpy(t->shape, shape, (size_t)ndim * sizeof(int));
    t->size = tensor_numel(ndim, shape);
    t->data = data;
    return t;
}

Tensor *tensor_rows(Graph *g, Tensor *t, int row0, int rows) {
    int shape[TENSOR_MAX_DIMS];
    memcpy(shape, t->shape, sizeof shape);
    shape[0] = rows;
    size_t row = t->size / (size_t)t->shape[0];
    Tensor *v = graph_input(g, t->data ? t->data + (size_t)row0 * row : NULL, t->ndim, shape);
    v->grad = t->grad ? t->grad + (size_t)row0 * row : NULL;
    v->requires_grad = t->requires_grad;
    return v;
}
