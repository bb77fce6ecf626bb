// Operations on the tape: forward = allocate the output, run the backend's kernel, record a node;
// backward = one kernel call per node. Gradients accumulate, so a tensor used twice gets both contributions.
// Kernels are reached only through g->be (engine/backend.h), so this file is the same for every device.
#include <math.h>
#include <string.h>
#include "base/common.h"
#include "engine/graph.h"

static float *alloc_floats(Arena *a, size_t n) { return arena_alloc(a, n * sizeof(float)); }

// ---- per-op timing (ops_profile): wall time of each kernel call, by op and direction ----
#define PROF_ZERO_GRAD OP_COUNT // clearing the activation gradients before a backward
static const char *OP_NAME[OP_COUNT + 1] = {"linear", "layernorm", "attention", "relu", "add", "concat", "dropout",
                                            "embed", "gather_rows", "l1_masked", "cross_entropy", "mse", "ccc",
                                            "zero_grad"};
static int prof_on;
static double prof_s[OP_COUNT + 1][2];
static long prof_calls[OP_COUNT + 1][2];

// Kernels may run asynchronously (cuda): a timed call waits for the backend on both sides.
static double prof_now(const Backend *be) {
    if (!prof_on) return 0.0;
    be->sync();
    return avt_now();
}

static void prof_add(const Backend *be, int op, int backward, double t0) {
    if (!prof_on) return;
    prof_s[op][backward] += prof_now(be) - t0;
    prof_calls[op][backward]++;
}

void ops_profile(int on) {
    prof_on = on;
    memset(prof_s, 0, sizeof prof_s);
    memset(prof_calls, 0, sizeof prof_calls);
}

void ops_profile_report(FILE *f, int steps) {
    double total = 0.0;
    for (int o = 0; o <= OP_COUNT; o++) total += prof_s[o][0] + prof_s[o][1];
    fprintf(f, "%-14s %12s %12s %7s   (ms per step, %d steps)\n", "op", "forward", "backward", "share", steps);
    for (int o = 0; o <= OP_COUNT; o++) {
        double t = prof_s[o][0] + prof_s[o][1];
        if (prof_calls[o][0] + prof_calls[o][1] == 0) continue;
        fprintf(f, "%-14s %12.1f %12.1f %6.1f%%\n", OP_NAME[o], 1e3 * prof_s[o][0] / steps, 1e3 * prof_s[o][1] / steps,
                total > 0 ? 100.0 * t / total : 0.0);
    }
    fprintf(f, "%-14s %25.1f\n", "all kernels", 1e3 * total / steps);
}

// COMPUTE(g, op, backward) stmt; runs stmt unless the graph is planning, and times it when profiling.
#define COMPUTE(g, op, backward)                                                \
    for (double t0_ = (g)->planning ? -1.0 : prof_now((g)->be); t0_ >= 0.0; \
         prof_add((g)->be, op, backward, t0_), t0_ = -1.0)

static Tensor *new_tensor(Graph *g, int ndim, const int *shape, int requires_grad) {
    Tensor *t = graph_view(g, NULL, ndim, shape);
    t->data = alloc_floats(&g->act, t->size);
    t->requires_grad = requires_grad && !g->no_grad;
    if (t->requires_grad) t->grad = alloc_floats(&g->agrad, t->size);
    return t;
}

// Output with the shape of x but last dim C.
static Tensor *new_like(Graph *g, const Tensor *x, int C, int requires_grad) {
    int shape[TENSOR_MAX_DIMS];
    memcpy(shape, x->shape, sizeof shape);
    shape[x->ndim - 1] = C;
    return new_tensor(g, x->ndim, shape, requires_grad);
}

static int rg(const Tensor *t) { return t && t->requires_grad; }
static int last_dim(const Tensor *t) { return t->shape[t->ndim - 1]; }
static size_t rows_of(const Tensor *t) { return t->size / (size_t)last_dim(t); }

static Node *record(Graph *g, OpKind op, Tensor *out, Tensor *a, Tensor *b, Tensor *c) {
    if (g->no_grad || !out->requires_grad) return NULL;
    if (g->n_nodes == g->max_nodes) avt_fatal("graph: tape longer than %d nodes", g->max_nodes);
    Node *n = &g->nodes[g->n_nodes++];
    memset(n, 0, sizeof *n);
    n->op = op;
    n->out = out;
    n->in[0] = a;
    n->in[1] = b;
    n->in[2] = c;
    return n;
}

// The dropout key of a tensor with `per_sample` elements per sample of the batch (dim 0).
static DropoutKey key_for(const Graph *g, float p, uint32_t site, size_t per_sample) {
    DropoutKey k = {g->seed, g->step, site, g->training ? p : 0.0f, g->sample0 * per_sample};
    return k;
}

// A constant the caller holds in host memory (targets, masks, labels, row lists), as the backend can read it:
// itself on a host-memory backend, else a copy in the activation arena. NULL stays NULL.
static const void *to_backend(Graph *g, const void *host, size_t bytes) {
    if (g->be->host_memory || (!host && !g->planning)) return host;
    void *p = arena_alloc(&g->act, bytes);
    if (p) g->be->upload(p, host, bytes);
    return p;
}

// Forward scratch: taken from the activation arena and released by the caller (g->act.used = mark).
static float *forward_ws(Graph *g, size_t floats, size_t *mark) {
    *mark = g->act.used;
    return alloc_floats(&g->act, floats);
}

Tensor *op_linear(Graph *g, Tensor *x, Tensor *w, Tensor *b) {
    int OC = w->shape[0], C = (int)(w->size / (size_t)OC);
    if (last_dim(x) != C) avt_fatal("linear: input width %d, weight expects %d", last_dim(x), C);
    Tensor *out = new_like(g, x, OC, rg(x) || rg(w) || rg(b));
    size_t N = rows_of(x);
    COMPUTE(g, OP_LINEAR, 0) g->be->linear_forward(out->data, x->data, w->data, b ? b->data : NULL, N, C, OC);
    Node *n = record(g, OP_LINEAR, out, x, w, b);
    if (n) { n->dim[0] = C; n->dim[1] = OC; }
    return out;
}

Tensor *op_layernorm(Graph *g, Tensor *x, Tensor *w, Tensor *b) {
    int C = last_dim(x);
    size_t N = rows_of(x);
    Tensor *out = new_like(g, x, C, rg(x) || rg(w) || rg(b));
    float *mean = alloc_floats(&g->act, N), *rstd = alloc_floats(&g->act, N); // (N) saved for backward
    COMPUTE(g, OP_LAYERNORM, 0) g->be->layernorm_forward(out->data, mean, rstd, x->data, w->data, b->data, N, C);
    Node *n = record(g, OP_LAYERNORM, out, x, w, b);
    if (n) { n->aux[0] = mean; n->aux[1] = rstd; }
    return out;
}

Tensor *op_attention(Graph *g, Tensor *q, Tensor *k, Tensor *v, int NH, int causal, float p, uint32_t site) {
    int B = q->shape[0], Tq = q->shape[1], Tk = k->shape[1], C = q->shape[2], HS = C / NH;
    if (C % NH) avt_fatal("attention: width %d not divisible by %d heads", C, NH);
    Tensor *out = new_like(g, q, C, rg(q) || rg(k) || rg(v));
    DropoutKey drop = key_for(g, p, site, (size_t)NH * Tq * Tk);
    int keep = out->requires_grad; // the probabilities are kept only for a backward
    int cudnn = backend_attention() == ATTN_CUDNN && g->be->attention_forward_cudnn;
    if (cudnn && (keep || drop.p > 0.0f))
        avt_die("--attention cudnn runs inference only (no backward, no dropout): train with --attention avt");
    float *att = keep ? alloc_floats(&g->act, (size_t)B * NH * Tq * Tk) : NULL; // (B, NH, Tq, Tk)
    size_t mark;
    float *ws = forward_ws(g, g->be->attention_ws(B, Tq, Tk, NH, HS, 0), &mark);
    if (!keep && !cudnn) att = alloc_floats(&g->act, (size_t)B * NH * Tq * Tk); // scratch
    COMPUTE(g, OP_ATTENTION, 0) {
        AvtErr err;
        if (!cudnn)
            g->be->attention_forward(out->data, att, ws, q->data, k->data, v->data, drop, causal, B, Tq, Tk, NH, HS);
        else if (g->be->attention_forward_cudnn(out->data, ws, q->data, k->data, v->data, causal, B, Tq, Tk, NH, HS,
                                                &err))
            avt_die("--attention cudnn: %s", err.msg);
    }
    g->act.used = mark;
    Node *n = record(g, OP_ATTENTION, out, q, k, v);
    if (n) {
        n->aux[0] = att;
        n->drop = drop;
        n->dim[0] = NH;
    }
    return out;
}

Tensor *op_relu(Graph *g, Tensor *x) {
    Tensor *out = new_like(g, x, last_dim(x), rg(x));
    COMPUTE(g, OP_RELU, 0) g->be->relu_forward(out->data, x->data, x->size);
    record(g, OP_RELU, out, x, NULL, NULL);
    return out;
}

Tensor *op_add(Graph *g, Tensor *a, Tensor *b) {
    if (a->size != b->size) avt_fatal("add: sizes %zu and %zu differ", a->size, b->size);
    Tensor *out = new_like(g, a, last_dim(a), rg(a) || rg(b));
    COMPUTE(g, OP_ADD, 0) g->be->add_forward(out->data, a->data, b->data, a->size);
    record(g, OP_ADD, out, a, b, NULL);
    return out;
}

Tensor *op_concat(Graph *g, Tensor *a, Tensor *b) {
    int C1 = last_dim(a), C2 = last_dim(b);
    if (rows_of(a) != rows_of(b)) avt_fatal("concat: row counts differ");
    Tensor *out = new_like(g, a, C1 + C2, rg(a) || rg(b));
    COMPUTE(g, OP_CONCAT, 0) g->be->concat_forward(out->data, a->data, b->data, rows_of(a), C1, C2);
    record(g, OP_CONCAT, out, a, b, NULL);
    return out;
}

Tensor *op_dropout(Graph *g, Tensor *x, float p, uint32_t site) {
    DropoutKey drop = key_for(g, p, site, x->size / (size_t)x->shape[0]);
    if (drop.p <= 0.0f) return x; // identity: no copy, no node
    Tensor *out = new_like(g, x, last_dim(x), rg(x));
    COMPUTE(g, OP_DROPOUT, 0) g->be->dropout_forward(out->data, x->data, drop, x->size);
    Node *n = record(g, OP_DROPOUT, out, x, NULL, NULL);
    if (n) n->drop = drop;
    return out;
}

Tensor *op_embed(Graph *g, Tensor *x) {
    int B = x->shape[0], T = x->shape[1], C = x->shape[2];
    Tensor *out = new_like(g, x, C, rg(x));
    float *pe = alloc_floats(&g->act, (size_t)(T + 1) * C); // (T + 1, C)
    COMPUTE(g, OP_EMBED, 0) {
        g->be->sinusoid_table(pe, T, C);
        g->be->embed_forward(out->data, x->data, pe, B, T, C);
    }
    record(g, OP_EMBED, out, x, NULL, NULL);
    return out;
}

Tensor *op_gather_rows(Graph *g, Tensor *x, const int *rows, int n) {
    int C = last_dim(x);
    size_t N = rows_of(x);
    int shape[2] = {n, C};
    Tensor *out = new_tensor(g, 2, shape, rg(x));
    for (int r = 0; !g->planning && r < n; r++)
        if (rows[r] < 0 || (size_t)rows[r] >= N) avt_fatal("gather_rows: row %d outside [0, %zu)", rows[r], N);
    const int *drows = to_backend(g, rows, (size_t)n * sizeof(int));
    COMPUTE(g, OP_GATHER_ROWS, 0) g->be->gather_rows_forward(out->data, x->data, drows, n, C);
    Node *nd = record(g, OP_GATHER_ROWS, out, x, NULL, NULL);
    if (nd) nd->ci = drows;
    return out;
}

static Tensor *scalar_out(Graph *g, Tensor *x) {
    int one = 1;
    return new_tensor(g, 1, &one, rg(x));
}

Tensor *op_l1_masked(Graph *g, Tensor *pred, const float *target, const float *mask) {
    size_t N = rows_of(pred), mark;
    int C = last_dim(pred);
    Tensor *out = scalar_out(g, pred);
    target = to_backend(g, target, N * C * sizeof(float));
    mask = to_backend(g, mask, N * sizeof(float));
    float *ws = forward_ws(g, g->be->l1_masked_ws(N, C), &mark);
    COMPUTE(g, OP_L1_MASKED, 0) g->be->l1_masked_forward(out->data, ws, pred->data, target, mask, N, C);
    g->act.used = mark;
    Node *n = record(g, OP_L1_MASKED, out, pred, NULL, NULL);
    if (n) { n->cf[0] = target; n->cf[1] = mask; }
    return out;
}

Tensor *op_cross_entropy(Graph *g, Tensor *logits, const int *labels) {
    int B = (int)rows_of(logits);
    size_t mark;
    Tensor *out = scalar_out(g, logits);
    for (int i = 0; !g->planning && i < B; i++)
        if (labels[i] < 0 || labels[i] >= last_dim(logits))
            avt_fatal("cross_entropy: label %d outside [0, %d)", labels[i], last_dim(logits));
    labels = to_backend(g, labels, (size_t)B * sizeof(int));
    float *ws = forward_ws(g, g->be->cross_entropy_ws(B), &mark);
    COMPUTE(g, OP_CROSS_ENTROPY, 0)
        g->be->cross_entropy_forward(out->data, ws, logits->data, labels, B, last_dim(logits));
    g->act.used = mark;
    Node *n = record(g, OP_CROSS_ENTROPY, out, logits, NULL, NULL);
    if (n) n->ci = labels;
    return out;
}

Tensor *op_mse(Graph *g, Tensor *pred, const float *target) {
    size_t N = rows_of(pred), mark;
    int C = last_dim(pred);
    Tensor *out = scalar_out(g, pred);
    target = to_backend(g, target, N * C * sizeof(float));
    float *ws = forward_ws(g, g->be->mse_ws(N, C), &mark);
    COMPUTE(g, OP_MSE, 0) g->be->mse_forward(out->data, ws, pred->data, target, N, C);
    g->act.used = mark;
    Node *n = record(g, OP_MSE, out, pred, NULL, NULL);
    if (n) n->cf[0] = target;
    return out;
}

Tensor *op_ccc(Graph *g, Tensor *pred, const float *target) {
    size_t N = rows_of(pred), mark;
    int C = last_dim(pred);
    Tensor *out = scalar_out(g, pred);
    target = to_backend(g, target, N * C * sizeof(float));
    float *ws = forward_ws(g, g->be->ccc_ws(N, C), &mark);
    COMPUTE(g, OP_CCC, 0) g->be->ccc_forward(out->data, ws, pred->data, target, N, C);
    g->act.used = mark;
    Node *n = record(g, OP_CCC, out, pred, NULL, NULL);
    if (n) n->cf[0] = target;
    return out;
}

static float *grad_of(Tensor *t) { return t && t->requires_grad ? t->grad : NULL; }

// Backward workspace of a node, in floats (taken from the gradient arena and released after the node).
static size_t backward_ws_floats(const Backend *be, const Node *n) {
    const Tensor *a = n->in[0];
    switch (n->op) {
    case OP_LINEAR: return be->linear_backward_ws(rows_of(a), n->dim[0], n->dim[1]);
    case OP_LAYERNORM: return be->layernorm_backward_ws(rows_of(a), last_dim(a));
    case OP_ATTENTION:
        return be->attention_ws(a->shape[0], a->shape[1], n->in[1]->shape[1], n->dim[0], last_dim(a) / n->dim[0], 1);
    case OP_L1_MASKED: return be->l1_masked_ws(rows_of(a), last_dim(a));
    default: return 0;
    }
}

static void node_backward(const Backend *be, Node *n, float *ws) {
    Tensor *out = n->out, *a = n->in[0], *b = n->in[1], *c = n->in[2];
    float *dout = out->grad;
    switch (n->op) {
    case OP_LINEAR:
        be->linear_backward(grad_of(a), grad_of(b), grad_of(c), ws, dout, a->data, b->data, rows_of(a), n->dim[0],
                            n->dim[1]);
        break;
    case OP_LAYERNORM:
        be->layernorm_backward(grad_of(a), grad_of(b), grad_of(c), ws, dout, a->data, b->data, n->aux[0], n->aux[1],
                               rows_of(a), last_dim(a));
        break;
    case OP_ATTENTION: {
        int NH = n->dim[0];
        be->attention_backward(grad_of(a), grad_of(b), grad_of(c), ws, dout, a->data, b->data, c->data, n->aux[0],
                               n->drop, a->shape[0], a->shape[1], b->shape[1], NH, last_dim(a) / NH);
        break;
    }
    case OP_RELU:
        if (grad_of(a)) be->relu_backward(a->grad, dout, out->data, out->size);
        break;
    case OP_ADD:
        // add's backward is the identity into both inputs
        if (grad_of(a)) be->add_forward(a->grad, a->grad, dout, out->size);
        if (grad_of(b)) be->add_forward(b->grad, b->grad, dout, out->size);
        break;
    case OP_CONCAT:
        be->concat_backward(grad_of(a), grad_of(b), dout, rows_of(a), last_dim(a), last_dim(b));
        break;
    case OP_DROPOUT:
        if (grad_of(a)) be->dropout_backward(a->grad, dout, n->drop, out->size);
        break;
    case OP_EMBED:
        if (grad_of(a)) be->embed_backward(a->grad, dout, a->shape[0], a->shape[1], a->shape[2]);
        break;
    case OP_GATHER_ROWS:
        if (grad_of(a)) be->gather_rows_backward(a->grad, dout, n->ci, out->shape[0], last_dim(a));
        break;
    case OP_L1_MASKED:
        if (grad_of(a)) be->l1_masked_backward(a->grad, dout, ws, a->data, n->cf[0], n->cf[1], rows_of(a), last_dim(a));
        break;
    case OP_CROSS_ENTROPY:
        if (grad_of(a)) be->cross_entropy_backward(a->grad, dout, a->data, n->ci, (int)rows_of(a), last_dim(a));
        break;
    case OP_MSE:
        if (grad_of(a)) be->mse_backward(a->grad, dout, a->data, n->cf[0], rows_of(a), last_dim(a));
        break;
    case OP_CCC:
        if (grad_of(a)) be->ccc_backward(a->grad, dout, a->data, n->cf[0], rows_of(a), last_dim(a));
        break;
    case OP_COUNT:
        break;
    }
}

void graph_backward(Graph *g, Tensor *loss) { graph_backward_seed(g, loss, 1.0f); }

void graph_backward_seed(Graph *g, Tensor *loss, float dloss) {
    if (g->no_grad) avt_fatal("graph_backward: the graph was built with no_grad");
    if (!loss->requires_grad) avt_fatal("graph_backward: the loss does not depend on any parameter");
    if (loss->size != 1) avt_fatal("graph_backward: the loss must be a scalar, got %zu elements", loss->size);
    COMPUTE(g, PROF_ZERO_GRAD, 1) {
        // Every activation gradient was carved out of agrad during the forward: zero them in one pass.
        g->be->zero(g->agrad.base, g->agrad.used);
        g->be->upload(loss->grad, &dloss, sizeof dloss);
    }
    for (int i = g->n_nodes - 1; i >= 0; i--) {
        Node *n = &g->nodes[i];
        size_t mark = g->agrad.used; // backward workspace is released after each node
        float *ws = alloc_floats(&g->agrad, backward_ws_floats(g->be, n));
        COMPUTE(g, n->op, 1) node_backward(g->be, n, ws);
        g->agrad.used = mark;
        if (g->node_done && !g->planning) g->node_done(g->node_done_ctx, i);
    }
}
