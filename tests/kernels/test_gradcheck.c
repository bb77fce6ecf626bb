// Finite-difference gradient checks of every CPU kernel backward (suite gradcheck), with the accumulate (+=)
// contract: the gradient-check tolerance table, the gradcheck driver, and one objective/backward pair per op.
// Set AVT_GC_VERBOSE=1 to print the largest gradient-check error of every tensor.
#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/cpu/kernels.h"
#include "tests/kernels/kernel_check.h"

// ---------------------------------------------------------------------------------------------------------------
// Gradient-check tolerances, the only place they live. eps: central-difference step. tol: bound on
// max |analytic - numeric| / (max(|analytic|, |numeric|) + floor * max|numeric|), the relative floor keeping
// near-zero entries from dominating.
typedef struct {
    const char *op;
    double eps;
    double tol;
    double floor;
} GradTol;

static const GradTol GRAD_TOL[] = {
    // smooth, non-linear ops: error is fp32 rounding of f divided by 2 eps, so eps is not tiny
    {"linear", 1e-2, 2e-3, 1e-2},
    {"layernorm", 1e-2, 3e-3, 1e-2},
    {"attention", 3e-2, 5e-3, 1e-2},
    {"cross_entropy", 1e-2, 5e-3, 1e-2},
    {"mse", 1e-2, 5e-3, 1e-2},
    {"ccc", 1e-2, 5e-3, 1e-2},
    // piecewise linear ops (inputs kept eps away from the kinks): the difference is exact up to rounding
    {"relu", 1e-2, 1e-4, 1e-2},
    {"concat", 1e-2, 1e-4, 1e-2},
    {"dropout", 1e-2, 1e-4, 1e-2},
    {"embed", 1e-2, 1e-4, 1e-2},
    {"l1_masked", 1e-2, 1e-4, 1e-2},
};

static const GradTol *grad_tol(const char *op) {
    for (size_t i = 0; i < sizeof GRAD_TOL / sizeof GRAD_TOL[0]; i++)
        if (strcmp(GRAD_TOL[i].op, op) == 0) return &GRAD_TOL[i];
    cr_assert_fail("no gradient tolerance for op '%s'", op);
    return NULL;
}

// At most this many elements per tensor get a finite difference.
#define GC_MAX_POINTS 200

// ---------------------------------------------------------------------------------------------------------------
// Helpers (the shared ones are in kernel_check.h)

static float *fcopy(const float *x, size_t n) {
    float *p = falloc(n);
    memcpy(p, x, n * sizeof(float));
    return p;
}

static double dot_fd(const float *a, const float *b, size_t n) {
    double s = 0.0;
    for (size_t i = 0; i < n; i++) s += (double)a[i] * b[i];
    return s;
}

static int gc_verbose(void) {
    const char *v = getenv("AVT_GC_VERBOSE");
    return v && *v && strcmp(v, "0") != 0;
}

// ---------------------------------------------------------------------------------------------------------------
// Gradient-check driver. The objective is f = sum(out * G) (losses: G * loss) evaluated from the current
// contents of the input tensors; backward runs with dout = G and accumulates into the tensors' grad buffers.

typedef struct {
    const char *name;
    float *x;    // (n) input, perturbed in place
    float *grad; // (n) analytic gradient buffer written by backward
    size_t n;
} GcTensor;

typedef struct {
    const char *op;    // key into GRAD_TOL
    const char *label; // case name for messages
    int may_vanish;    // 1: some gradient is identically zero by construction (e.g. softmax over one key)
    void *ctx;
    double (*objective)(void *ctx);
    void (*backward)(void *ctx);
    int nt;
    GcTensor t[3];
} GcCase;

static void gradcheck(const GcCase *gc) {
    const GradTol *tol = grad_tol(gc->op);
    for (int k = 0; k < gc->nt; k++) memset(gc->t[k].grad, 0, gc->t[k].n * sizeof(float));
    gc->backward(gc->ctx);
    float *g1[3] = {NULL, NULL, NULL};
    for (int k = 0; k < gc->nt; k++) g1[k] = fcopy(gc->t[k].grad, gc->t[k].n);

    // Accumulation: a second backward into the same buffers must double them.
    gc->backward(gc->ctx);
    for (int k = 0; k < gc->nt; k++) {
        const GcTensor *t = &gc->t[k];
        double gmax = 0.0;
        for (size_t i = 0; i < t->n; i++) gmax = fmax(gmax, fabs(g1[k][i]));
        cr_assert(gmax > 0.0 || gc->may_vanish, "%s/%s: gradient of %s is all zero, the check would be vacuous",
                  gc->op, gc->label, t->name);
        for (size_t i = 0; i < t->n; i++) {
            double want = 2.0 * g1[k][i];
            cr_assert(fabs(t->grad[i] - want) <= 1e-5 * (fabs(want) + gmax),
                      "%s/%s: backward does not accumulate into %s[%zu]: %g after two calls, %g after one",
                      gc->op, gc->label, t->name, i, t->grad[i], g1[k][i]);
        }
    }

    for (int k = 0; k < gc->nt; k++) {
        const GcTensor *t = &gc->t[k];
        size_t npts = t->n < GC_MAX_POINTS ? t->n : GC_MAX_POINTS;
        size_t *idx = malloc(npts * sizeof(size_t));
        double *num = malloc(npts * sizeof(double));
        cr_assert(idx && num, "out of memory");
        uint64_t pick = 0x9e3779b9ull + (uint64_t)k;
        for (size_t p = 0; p < npts; p++) idx[p] = t->n <= GC_MAX_POINTS ? p : rng_next(&pick) % t->n;
        double nmax = 0.0;
        for (size_t p = 0; p < npts; p++) {
            const float x0 = t->x[idx[p]];
            // Divide by the step actually taken in float, not the nominal eps.
            const float xp = (float)(x0 + tol->eps), xm = (float)(x0 - tol->eps);
            t->x[idx[p]] = xp;
            double fp = gc->objective(gc->ctx);
            t->x[idx[p]] = xm;
            double fm = gc->objective(gc->ctx);
            t->x[idx[p]] = x0;
            num[p] = (fp - fm) / ((double)xp - (double)xm);
            nmax = fmax(nmax, fabs(num[p]));
        }
        double worst = 0.0;
        size_t worst_p = 0;
        for (size_t p = 0; p < npts; p++) {
            double a = g1[k][idx[p]], n = num[p];
            double err = fabs(a - n) / (fmax(fabs(a), fabs(n)) + tol->floor * nmax + 1e-30);
            if (err > worst) {
                worst = err;
                worst_p = p;
            }
        }
        if (gc_verbose())
            fprintf(stderr, "gradcheck %-14s %-16s %-7s max err %.3e (tol %.1e, %zu points)\n", gc->op, gc->label,
                    t->name, worst, tol->tol, npts);
        cr_assert(worst <= tol->tol, "%s/%s: d%s[%zu]: analytic %.6g vs numeric %.6g, error %.3g > %.3g", gc->op,
                  gc->label, t->name, idx[worst_p], g1[k][idx[worst_p]], num[worst_p], worst, tol->tol);
        free(idx);
        free(num);
    }
    for (int k = 0; k < gc->nt; k++) free(g1[k]);
}

// ---------------------------------------------------------------------------------------------------------------
// Gradient checks

typedef struct {
    float *inp, *w, *b, *G, *out, *dinp, *dw, *db;
    size_t N;
    int C, OC;
} LinearCtx;

static double linear_obj(void *p) {
    LinearCtx *c = p;
    linear_forward(c->out, c->inp, c->w, c->b, c->N, c->C, c->OC);
    return dot_fd(c->out, c->G, c->N * c->OC);
}

static void linear_bwd(void *p) {
    LinearCtx *c = p;
    linear_backward(c->dinp, c->dw, c->db, c->G, c->inp, c->w, c->N, c->C, c->OC);
}

Test(gradcheck, linear) {
    rng_seed(100);
    LinearCtx c = {.N = 6, .C = 7, .OC = 5};
    size_t ni = c.N * c.C, nw = (size_t)c.OC * c.C, no = c.N * c.OC;
    c.inp = falloc(ni), c.w = falloc(nw), c.b = falloc(c.OC), c.G = falloc(no), c.out = falloc(no);
    c.dinp = falloc(ni), c.dw = falloc(nw), c.db = falloc(c.OC);
    fill_uniform(c.inp, ni, -1, 1);
    fill_uniform(c.w, nw, -1, 1);
    fill_uniform(c.b, c.OC, -1, 1);
    fill_uniform(c.G, no, -1, 1);
    GcCase gc = {"linear", "6x7->5", 0, &c, linear_obj, linear_bwd, 3,
                 {{"inp", c.inp, c.dinp, ni}, {"weight", c.w, c.dw, nw}, {"bias", c.b, c.db, (size_t)c.OC}}};
    gradcheck(&gc);
    free(c.inp), free(c.w), free(c.b), free(c.G), free(c.out), free(c.dinp), free(c.dw), free(c.db);
}

typedef struct {
    float *inp, *w, *b, *G, *out, *mean, *rstd, *dinp, *dw, *db;
    size_t N;
    int C;
} LnCtx;

static double ln_obj(void *p) {
    LnCtx *c = p;
    layernorm_forward(c->out, c->mean, c->rstd, c->inp, c->w, c->b, c->N, c->C);
    return dot_fd(c->out, c->G, c->N * c->C);
}

static void ln_bwd(void *p) {
    LnCtx *c = p;
    layernorm_forward(c->out, c->mean, c->rstd, c->inp, c->w, c->b, c->N, c->C);
    float *ws = ln_ws(c->N, c->C);
    layernorm_backward(c->dinp, c->dw, c->db, ws, c->G, c->inp, c->w, c->mean, c->rstd, c->N, c->C);
    free(ws);
}

Test(gradcheck, layernorm) {
    rng_seed(101);
    LnCtx c = {.N = 5, .C = 7};
    size_t n = c.N * c.C;
    c.inp = falloc(n), c.w = falloc(c.C), c.b = falloc(c.C), c.G = falloc(n), c.out = falloc(n);
    c.mean = falloc(c.N), c.rstd = falloc(c.N), c.dinp = falloc(n), c.dw = falloc(c.C), c.db = falloc(c.C);
    fill_uniform(c.inp, n, -2, 2);
    fill_uniform(c.w, c.C, 0.5f, 1.5f);
    fill_uniform(c.b, c.C, -1, 1);
    fill_uniform(c.G, n, -1, 1);
    GcCase gc = {"layernorm", "5x7", 0, &c, ln_obj, ln_bwd, 3,
                 {{"inp", c.inp, c.dinp, n}, {"weight", c.w, c.dw, (size_t)c.C}, {"bias", c.b, c.db, (size_t)c.C}}};
    gradcheck(&gc);
    free(c.inp), free(c.w), free(c.b), free(c.G), free(c.out), free(c.mean), free(c.rstd);
    free(c.dinp), free(c.dw), free(c.db);
}

typedef struct {
    float *q, *k, *v, *G, *out, *att, *scratch, *dq, *dk, *dv;
    DropoutKey drop;
    int causal, B, Tq, Tk, NH, HS;
} AttCtx;

static double att_obj(void *p) {
    AttCtx *c = p;
    attention_forward(c->out, c->att, c->scratch, c->q, c->k, c->v, c->drop, c->causal, c->B, c->Tq, c->Tk, c->NH,
                      c->HS, kernel_threads());
    return dot_fd(c->out, c->G, (size_t)c->B * c->Tq * c->NH * c->HS);
}

static void att_bwd(void *p) {
    AttCtx *c = p;
    attention_forward(c->out, c->att, c->scratch, c->q, c->k, c->v, c->drop, c->causal, c->B, c->Tq, c->Tk, c->NH,
                      c->HS, kernel_threads());
    attention_backward(c->dq, c->dk, c->dv, c->scratch, c->G, c->q, c->k, c->v, c->att, c->drop, c->B, c->Tq, c->Tk,
                       c->NH, c->HS, kernel_threads());
}

static void gradcheck_attention(const char *label, int B, int Tq, int Tk, int NH, int HS, int causal, float p) {
    AttCtx c = {.causal = causal, .B = B, .Tq = Tq, .Tk = Tk, .NH = NH, .HS = HS};
    c.drop = (DropoutKey){.seed = 0xfeedbeefcafeull, .step = 3, .site = 9, .p = p};
    const size_t C = (size_t)NH * HS, nq = B * Tq * C, nk = B * Tk * C, na = (size_t)B * NH * Tq * Tk;
    c.q = falloc(nq), c.k = falloc(nk), c.v = falloc(nk), c.G = falloc(nq), c.out = falloc(nq);
    c.att = falloc(na), c.scratch = att_ws(Tk, HS), c.dq = falloc(nq), c.dk = falloc(nk), c.dv = falloc(nk);
    fill_uniform(c.q, nq, -1.5f, 1.5f);
    fill_uniform(c.k, nk, -1.5f, 1.5f);
    fill_uniform(c.v, nk, -1, 1);
    fill_uniform(c.G, nq, -1, 1);
    // One visible key: softmax is constant 1, so dq and dk vanish and only dv carries a gradient.
    int one_key = Tk == 1;
    GcCase gc = {"attention", label, one_key, &c, att_obj, att_bwd, 3,
                 {{"q", c.q, c.dq, nq}, {"k", c.k, c.dk, nk}, {"v", c.v, c.dv, nk}}};
    gradcheck(&gc);
    free(c.q), free(c.k), free(c.v), free(c.G), free(c.out), free(c.att), free(c.scratch);
    free(c.dq), free(c.dk), free(c.dv);
}

Test(gradcheck, attention_causal) { rng_seed(102); gradcheck_attention("causal", 2, 5, 5, 3, 7, 1, 0.0f); }
Test(gradcheck, attention_full) { rng_seed(103); gradcheck_attention("full", 2, 5, 5, 3, 7, 0, 0.0f); }
Test(gradcheck, attention_cross_lengths) { rng_seed(104); gradcheck_attention("Tq4-Tk6", 2, 4, 6, 2, 5, 1, 0.0f); }
Test(gradcheck, attention_t1) { rng_seed(105); gradcheck_attention("T1", 2, 1, 1, 2, 5, 1, 0.0f); }
Test(gradcheck, attention_tq1) { rng_seed(115); gradcheck_attention("Tq1-Tk4", 2, 1, 4, 2, 5, 1, 0.0f); }
Test(gradcheck, attention_dropout_causal) { rng_seed(106); gradcheck_attention("drop-causal", 2, 5, 5, 3, 7, 1, 0.3f); }
Test(gradcheck, attention_dropout_full) { rng_seed(107); gradcheck_attention("drop-full", 2, 3, 6, 2, 5, 0, 0.3f); }

typedef struct {
    float *x, *x2, *G, *out, *dx, *dx2;
    size_t n;
    int N, C1, C2;
    DropoutKey key;
} EwCtx;

static double relu_obj(void *p) {
    EwCtx *c = p;
    relu_forward(c->out, c->x, c->n);
    return dot_fd(c->out, c->G, c->n);
}

static void relu_bwd(void *p) {
    EwCtx *c = p;
    relu_forward(c->out, c->x, c->n);
    relu_backward(c->dx, c->G, c->out, c->n);
}

Test(gradcheck, relu) {
    rng_seed(108);
    EwCtx c = {.n = 150};
    c.x = falloc(c.n), c.G = falloc(c.n), c.out = falloc(c.n), c.dx = falloc(c.n);
    fill_away_from_zero(c.x, c.n, 0.05f, 1.0f); // keep the kink out of reach of eps
    fill_uniform(c.G, c.n, -1, 1);
    GcCase gc = {"relu", "150", 0, &c, relu_obj, relu_bwd, 1, {{"inp", c.x, c.dx, c.n}}};
    gradcheck(&gc);
    free(c.x), free(c.G), free(c.out), free(c.dx);
}

static double concat_obj(void *p) {
    EwCtx *c = p;
    concat_forward(c->out, c->x, c->x2, c->N, c->C1, c->C2);
    return dot_fd(c->out, c->G, (size_t)c->N * (c->C1 + c->C2));
}

static void concat_bwd(void *p) {
    EwCtx *c = p;
    concat_backward(c->dx, c->dx2, c->G, c->N, c->C1, c->C2);
}

Test(gradcheck, concat) {
    rng_seed(109);
    EwCtx c = {.N = 5, .C1 = 3, .C2 = 4};
    size_t na = 15, nb = 20, no = 35;
    c.x = falloc(na), c.x2 = falloc(nb), c.G = falloc(no), c.out = falloc(no), c.dx = falloc(na), c.dx2 = falloc(nb);
    fill_uniform(c.x, na, -1, 1);
    fill_uniform(c.x2, nb, -1, 1);
    fill_uniform(c.G, no, -1, 1);
    GcCase gc = {"concat", "5x(3+4)", 0, &c, concat_obj, concat_bwd, 2,
                 {{"a", c.x, c.dx, na}, {"b", c.x2, c.dx2, nb}}};
    gradcheck(&gc);
    free(c.x), free(c.x2), free(c.G), free(c.out), free(c.dx), free(c.dx2);
}

static double dropout_obj(void *p) {
    EwCtx *c = p;
    dropout_forward(c->out, c->x, c->key, c->n);
    return dot_fd(c->out, c->G, c->n);
}

static void dropout_bwd(void *p) {
    EwCtx *c = p;
    dropout_backward(c->dx, c->G, c->key, c->n);
}

Test(gradcheck, dropout) {
    rng_seed(110);
    EwCtx c = {.n = 203, .key = {.seed = 77, .step = 5, .site = 4, .p = 0.3f}};
    c.x = falloc(c.n), c.G = falloc(c.n), c.out = falloc(c.n), c.dx = falloc(c.n);
    fill_uniform(c.x, c.n, -1, 1);
    fill_uniform(c.G, c.n, -1, 1);
    GcCase gc = {"dropout", "p0.3", 0, &c, dropout_obj, dropout_bwd, 1, {{"inp", c.x, c.dx, c.n}}};
    gradcheck(&gc);
    free(c.x), free(c.G), free(c.out), free(c.dx);
}

typedef struct {
    float *inp, *pe, *G, *out, *dinp;
    int B, T, C;
} EmbedCtx;

static double embed_obj(void *p) {
    EmbedCtx *c = p;
    embed_forward(c->out, c->inp, c->pe, c->B, c->T, c->C);
    return dot_fd(c->out, c->G, (size_t)c->B * c->T * c->C);
}

static void embed_bwd(void *p) {
    EmbedCtx *c = p;
    embed_backward(c->dinp, c->G, c->B, c->T, c->C);
}

Test(gradcheck, embed) {
    rng_seed(111);
    EmbedCtx c = {.B = 2, .T = 5, .C = 9};
    size_t n = (size_t)c.B * c.T * c.C;
    c.inp = falloc(n), c.pe = falloc((size_t)(c.T + 1) * c.C), c.G = falloc(n), c.out = falloc(n), c.dinp = falloc(n);
    sinusoid_table(c.pe, c.T, c.C);
    // channel 0 away from 0, so a perturbation never flips a step to padding (a jump, not a gradient)
    fill_away_from_zero(c.inp, n, 0.05f, 1.0f);
    fill_uniform(c.G, n, -1, 1);
    GcCase gc = {"embed", "2x5x9", 0, &c, embed_obj, embed_bwd, 1, {{"inp", c.inp, c.dinp, n}}};
    gradcheck(&gc);
    free(c.inp), free(c.pe), free(c.G), free(c.out), free(c.dinp);
}

typedef struct {
    float *pred, *target, *mask, *dpred, G;
    int *labels;
    size_t N;
    int C;
} LossCtx;

static double l1_obj(void *p) {
    LossCtx *c = p;
    return (double)c->G * l1_masked_forward(c->pred, c->target, c->mask, c->N, c->C);
}

static void l1_bwd(void *p) {
    LossCtx *c = p;
    l1_masked_backward(c->dpred, c->G, c->pred, c->target, c->mask, c->N, c->C);
}

Test(gradcheck, l1_masked) {
    rng_seed(112);
    LossCtx c = {.N = 6, .C = 5, .G = 0.7f};
    size_t n = c.N * c.C;
    c.pred = falloc(n), c.target = falloc(n), c.mask = falloc(c.N), c.dpred = falloc(n);
    fill_uniform(c.target, n, -1, 1);
    float off[30];
    fill_away_from_zero(off, n, 0.05f, 1.0f); // |pred - target| > eps: no kink inside the difference
    for (size_t i = 0; i < n; i++) c.pred[i] = c.target[i] + off[i];
    const float mask[6] = {1, 0, 1, 1, 0, 1};
    memcpy(c.mask, mask, sizeof mask);
    GcCase gc = {"l1_masked", "6x5", 0, &c, l1_obj, l1_bwd, 1, {{"pred", c.pred, c.dpred, n}}};
    gradcheck(&gc);
    free(c.pred), free(c.target), free(c.mask), free(c.dpred);
}

static double ce_obj(void *p) {
    LossCtx *c = p;
    return (double)c->G * cross_entropy_forward(c->pred, c->labels, (int)c->N, c->C);
}

static void ce_bwd(void *p) {
    LossCtx *c = p;
    cross_entropy_backward(c->dpred, c->G, c->pred, c->labels, (int)c->N, c->C);
}

Test(gradcheck, cross_entropy) {
    rng_seed(113);
    int labels[4] = {2, 0, 8, 5};
    LossCtx c = {.N = 4, .C = 9, .G = 1.3f, .labels = labels};
    size_t n = c.N * c.C;
    c.pred = falloc(n), c.dpred = falloc(n);
    fill_uniform(c.pred, n, -2, 2);
    GcCase gc = {"cross_entropy", "4x9", 0, &c, ce_obj, ce_bwd, 1, {{"logits", c.pred, c.dpred, n}}};
    gradcheck(&gc);
    free(c.pred), free(c.dpred);
}

static double mse_obj(void *p) {
    LossCtx *c = p;
    return (double)c->G * mse_forward(c->pred, c->target, c->N, c->C);
}

static void mse_bwd(void *p) {
    LossCtx *c = p;
    mse_backward(c->dpred, c->G, c->pred, c->target, c->N, c->C);
}

Test(gradcheck, mse) {
    rng_seed(114);
    LossCtx c = {.N = 5, .C = 7, .G = 0.9f};
    size_t n = c.N * c.C;
    c.pred = falloc(n), c.target = falloc(n), c.dpred = falloc(n);
    fill_uniform(c.pred, n, -1, 1);
    fill_uniform(c.target, n, -1, 1);
    GcCase gc = {"mse", "5x7", 0, &c, mse_obj, mse_bwd, 1, {{"pred", c.pred, c.dpred, n}}};
    gradcheck(&gc);
    free(c.pred), free(c.target), free(c.dpred);
}

static double ccc_obj(void *p) {
    LossCtx *c = p;
    return (double)c->G * ccc_forward(c->pred, c->target, c->N, c->C);
}

static void ccc_bwd(void *p) {
    LossCtx *c = p;
    ccc_backward(c->dpred, c->G, c->pred, c->target, c->N, c->C);
}

// Partly concordant (pred = target scaled, shifted, plus noise) so every term of CCC's gradient is non-zero; a short
// batch of three columns and the fine-tuning batch with one. The d == 0 guard is not differentiable (any move off a
// constant-equal pair drops CCC to 0) and is tested in test_kernels.c.
Test(gradcheck, ccc) {
    rng_seed(115);
    static const int SHAPES[][2] = {{8, 3}, {64, 1}};
    for (size_t s = 0; s < sizeof SHAPES / sizeof SHAPES[0]; s++) {
        LossCtx c = {.N = (size_t)SHAPES[s][0], .C = SHAPES[s][1], .G = 0.8f};
        size_t n = c.N * c.C;
        c.pred = falloc(n), c.target = falloc(n), c.dpred = falloc(n);
        float *noise = falloc(n);
        fill_uniform(c.target, n, -1, 1);
        fill_uniform(noise, n, -1, 1);
        for (size_t i = 0; i < n; i++) c.pred[i] = 0.7f * c.target[i] + 0.5f * noise[i] + 0.2f;
        char label[16];
        snprintf(label, sizeof label, "%zux%d", c.N, c.C);
        GcCase gc = {"ccc", label, 0, &c, ccc_obj, ccc_bwd, 1, {{"pred", c.pred, c.dpred, n}}};
        gradcheck(&gc);
        free(c.pred), free(c.target), free(c.dpred), free(noise);
    }
}
