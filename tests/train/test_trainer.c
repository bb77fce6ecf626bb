// The optimiser (train/optim.c) against PyTorch's BertAdam + clip_grad_norm_ (tests/reference/bertadam_ref.py),
// on the cpu backend and the (emulated) cuda one; and the trainer (train/trainer.c) on a tiny model: proj1/proj2
// are never touched, a run resumed from a checkpoint equals the uninterrupted run bit for bit, the validation loss
// weighs its batches, and trainer_run validates, saves and prunes on its cadence.
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "train/trainer.h"
#include "tests/testutil.h"

static void setup(void) { test_tmpdir(); }
TestSuite(trainer, .init = setup, .fini = test_tmpdir_remove, .timeout = 300);

Test(trainer, warmup_linear_ramps_then_decays) {
    cr_expect_eq(warmup_linear(0.0, 0.1), 0.0f);
    cr_expect_float_eq(warmup_linear(0.05, 0.1), 0.5f, 1e-7);
    cr_expect_float_eq(warmup_linear(0.1, 0.1), 1.0f, 1e-7);
    cr_expect_float_eq(warmup_linear(0.55, 0.1), 0.5f, 1e-7);
    cr_expect_eq(warmup_linear(1.0, 0.1), 0.0f);
    cr_expect_eq(warmup_linear(1.5, 0.1), 0.0f, "past t_total the rate stays 0");
}

// ---------------------------------------------------------------------------------------------------------------
// A hand-made parameter table: two trained tensors and a third of odd shape, an unused tensor whose gradient is
// garbage (it must neither move nor count in the global norm) and a buffer.

typedef struct {
    const char *name;
    int ndim, shape[3];
    int buffer, unused;
} Spec;

static const Spec SPECS[] = {
    {"enc.w", 2, {4, 6}, 0, 0}, {"enc.b", 1, {6}, 0, 0}, {"proj1.weight", 2, {3, 3}, 0, 1},
    {"version", 1, {1}, 1, 0},  {"out.w", 3, {2, 3, 2}, 0, 0},
};
#define N_SPECS ((int)(sizeof SPECS / sizeof *SPECS))
#define N_STEPS 5

static void fill(float *x, size_t n, float scale, uint32_t site, uint32_t step) {
    for (size_t i = 0; i < n; i++) x[i] = scale * (2.0f * philox_uniform(3, site, step, i) - 1.0f);
}

static void table_build(ParamTable *pt) {
    memset(pt, 0, sizeof *pt);
    arena_init(&pt->data, "test parameters", &BACKEND_CPU);
    arena_init(&pt->grad, "test gradients", &BACKEND_CPU);
    pt->n = N_SPECS;
    pt->p = calloc(N_SPECS, sizeof *pt->p);
    for (int pass = 0; pass < 2; pass++) { // size, then carve
        for (int i = 0; i < N_SPECS; i++) {
            Param *p = &pt->p[i];
            snprintf(p->name, sizeof p->name, "%s", SPECS[i].name);
            p->t.ndim = SPECS[i].ndim;
            memcpy(p->t.shape, SPECS[i].shape, sizeof SPECS[i].shape);
            p->t.size = tensor_numel(p->t.ndim, p->t.shape);
            p->buffer = SPECS[i].buffer;
            p->unused = SPECS[i].unused;
            p->t.data = arena_alloc(&pt->data, p->t.size * sizeof(float));
            p->t.grad = p->buffer ? NULL : arena_alloc(&pt->grad, p->t.size * sizeof(float));
        }
        if (pass == 0) {
            arena_commit(&pt->data);
            arena_commit(&pt->grad);
        }
    }
    for (int i = 0; i < N_SPECS; i++) fill(pt->p[i].t.data, pt->p[i].t.size, 1.0f, (uint32_t)i, 99);
}

static void table_free(ParamTable *pt) {
    arena_free(&pt->data);
    arena_free(&pt->grad);
    free(pt->p);
}

// Gradient scale per step: none of the clips, both (global norm ~18), BertAdam's only (global norm ~0.45 with
// 'enc.w' above the 0.25 bound of the second case), the global one (and BertAdam's with the 0.25 bound), none.
// The spec's bounds are both 1.0, where the per-tensor clip can only act by ~1e-6 after the global one, so the
// second case lowers it to 0.25.
static const float GSCALE[N_STEPS] = {0.01f, 5.0f, 0.12f, 1.0f, 0.03f};
#define LR 0.05f
#define WARMUP 0.5
#define T_TOTAL 4 // rates lr x {0, 0.5, 1, 0.5, 0}: ramp, decay, and 0 at t_total

static void grads_of_step(float **g, int step) {
    for (int i = 0; i < N_SPECS; i++) {
        if (SPECS[i].buffer) continue;
        size_t n = tensor_numel(SPECS[i].ndim, SPECS[i].shape);
        fill(g[i], n, SPECS[i].unused ? 1000.0f : GSCALE[step], 100 + (uint32_t)i, (uint32_t)step);
    }
}

// Five optimiser steps on backend be; returns the global norms, leaves the table and optimizer on the host side
// in *pt (moved back) and copies of the moments in m_out/v_out (per tensor, NULL for skipped ones).
static void run_steps(const Backend *be, BertAdamHyper h, ParamTable *pt, float **m_out, float **v_out,
                      float *norms) {
    table_build(pt);
    params_to(pt, be);
    Optimizer o;
    optim_init(&o, pt, h, LR, WARMUP, T_TOTAL);
    float *g[N_SPECS];
    for (int i = 0; i < N_SPECS; i++) g[i] = malloc(pt->p[i].t.size * sizeof(float));
    for (int s = 0; s < N_STEPS; s++) {
        grads_of_step(g, s);
        for (int i = 0; i < N_SPECS; i++)
            if (pt->p[i].t.grad) be->upload(pt->p[i].t.grad, g[i], pt->p[i].t.size * sizeof(float));
        norms[s] = optim_step(&o, pt);
    }
    cr_assert_eq(o.step, N_STEPS);
    for (int i = 0; i < N_SPECS; i++) {
        m_out[i] = v_out[i] = NULL;
        if (!o.m[i]) continue;
        m_out[i] = malloc(pt->p[i].t.size * sizeof(float));
        v_out[i] = malloc(pt->p[i].t.size * sizeof(float));
        be->download(m_out[i], o.m[i], pt->p[i].t.size * sizeof(float));
        be->download(v_out[i], o.v[i], pt->p[i].t.size * sizeof(float));
    }
    for (int i = 0; i < N_SPECS; i++) free(g[i]);
    optim_free(&o);
    params_to(pt, &BACKEND_CPU);
}

static float *read_tensor(const SafeTensors *st, const char *name, size_t n) {
    const StTensor *t = st_find(st, name);
    cr_assert(t, "%s: no tensor '%s'", st->path, name);
    cr_assert_eq(t->numel, n, "%s: '%s' has %zu values, want %zu", st->path, name, t->numel, n);
    float *x = malloc(n * sizeof(float));
    st_copy_f32(x, t);
    return x;
}

static void compare_with_pytorch(BertAdamHyper h, const char *tag) {
    // the inputs: initial values and every step's gradients, for the trained tensors only (the unused one has
    // .grad None on the PyTorch side; the buffer is not a parameter there)
    ParamTable pt;
    table_build(&pt);
    StWrite w[N_SPECS * (N_STEPS + 1)];
    char names[N_SPECS * (N_STEPS + 1)][128];
    float *g[N_STEPS][N_SPECS];
    int nw = 0;
    double gsq[N_STEPS] = {0}, max_tsq[N_STEPS] = {0};
    for (int s = 0; s <= N_STEPS; s++) {
        if (s < N_STEPS) {
            for (int i = 0; i < N_SPECS; i++) g[s][i] = malloc(pt.p[i].t.size * sizeof(float));
            grads_of_step(g[s], s);
        }
        for (int i = 0; i < N_SPECS; i++) {
            const Param *p = &pt.p[i];
            if (p->buffer || (s < N_STEPS && p->unused)) continue;
            if (s < N_STEPS) {
                double sq = 0.0;
                for (size_t j = 0; j < p->t.size; j++) sq += (double)g[s][i][j] * g[s][i][j];
                gsq[s] += sq;
                max_tsq[s] = fmax(max_tsq[s], sq);
                snprintf(names[nw], sizeof names[nw], "g.%d.%s", s, p->name);
            } else {
                snprintf(names[nw], sizeof names[nw], "p.%s", p->name);
            }
            w[nw] = (StWrite){names[nw], p->t.ndim, {0}, s < N_STEPS ? g[s][i] : p->t.data};
            for (int d = 0; d < p->t.ndim; d++) w[nw].shape[d] = p->t.shape[d];
            nw++;
        }
    }
    // the clips act where the comment above GSCALE says (BertAdam's bound applies to the globally clipped tensor)
    for (int s = 0; s < N_STEPS; s++) {
        const double cg = fmin(1.0, h.clip_global / (sqrt(gsq[s]) + 1e-6));
        const int global = cg < 1.0, tensor = cg * sqrt(max_tsq[s]) > h.clip_tensor;
        const int want_global = s == 1 || s == 3, want_tensor = h.clip_tensor < 1.0f && s >= 1 && s <= 3;
        cr_assert(global == want_global && tensor == want_tensor, "%s step %d: global clip %d, tensor clip %d", tag,
                  s, global, tensor);
    }
    char steps[16], lr[32], wu[32], tt[32], b1[32], b2[32], eps[32], wd[32], cgl[32], ct[32];
    snprintf(steps, sizeof steps, "%d", N_STEPS);
    snprintf(lr, sizeof lr, "%.9g", LR);
    snprintf(wu, sizeof wu, "%.17g", WARMUP);
    snprintf(tt, sizeof tt, "%d", T_TOTAL);
    snprintf(b1, sizeof b1, "%.17g", h.beta1);
    snprintf(b2, sizeof b2, "%.17g", h.beta2);
    snprintf(eps, sizeof eps, "%.9g", h.eps);
    snprintf(wd, sizeof wd, "%.9g", h.weight_decay);
    snprintf(cgl, sizeof cgl, "%.9g", h.clip_global);
    snprintf(ct, sizeof ct, "%.9g", h.clip_tensor);
    const char *keys[] = {"steps", "lr", "warmup", "t_total", "beta1", "beta2", "eps", "weight_decay",
                          "clip_global", "clip_tensor"};
    const char *vals[] = {steps, lr, wu, tt, b1, b2, eps, wd, cgl, ct};
    char in[512], out[512];
    snprintf(in, sizeof in, "%s", test_path("bertadam_in.safetensors"));
    snprintf(out, sizeof out, "%s", test_path("bertadam_out.safetensors"));
    AvtErr err;
    cr_assert_eq(st_write(in, w, nw, keys, vals, 10, &err), 0, "%s", err.msg);
    cr_assert_eq(test_run("%s tests/reference/bertadam_ref.py %s %s", test_python(), in, out), 0,
                 "bertadam_ref.py failed");
    for (int s = 0; s < N_STEPS; s++)
        for (int i = 0; i < N_SPECS; i++) free(g[s][i]);

    // ours, on the cpu backend
    ParamTable ours;
    float *m[N_SPECS], *v[N_SPECS], norms[N_STEPS];
    run_steps(&BACKEND_CPU, h, &ours, m, v, norms);
    SafeTensors ref;
    cr_assert_eq(st_open(&ref, out, &err), 0, "%s", err.msg);
    float *ref_norm = read_tensor(&ref, "norm", N_STEPS);
    for (int s = 0; s < N_STEPS; s++)
        cr_expect(fabsf(norms[s] - ref_norm[s]) <= 1e-6f * ref_norm[s], "%s step %d: global norm %.9g, torch %.9g",
                  tag, s, norms[s], ref_norm[s]);
    double worst = 0.0;
    for (int i = 0; i < N_SPECS; i++) {
        const Param *p = &ours.p[i];
        if (p->buffer || p->unused) {
            cr_expect_eq(memcmp(p->t.data, pt.p[i].t.data, p->t.size * sizeof(float)), 0, "%s: %s moved", tag,
                         p->name);
            cr_expect_null(m[i], "%s: %s has moments", tag, p->name);
            char key[128];
            snprintf(key, sizeof key, "m.%s", p->name);
            cr_expect_null(st_find(&ref, key), "torch kept state for the gradient-less %s", p->name);
            continue;
        }
        const float *got[3] = {p->t.data, m[i], v[i]};
        for (int k = 0; k < 3; k++) {
            char key[128];
            snprintf(key, sizeof key, "%c.%s", "pmv"[k], p->name);
            float *r = read_tensor(&ref, key, p->t.size);
            const double e = rel_err(got[k], r, p->t.size, 1e-30);
            cr_expect_leq(e, 1e-6, "%s: %s differs from torch by %.3g (relative to the tensor's scale)", tag, key, e);
            worst = fmax(worst, e);
            free(r);
        }
        // the step really moved the weights
        cr_expect_neq(memcmp(p->t.data, pt.p[i].t.data, p->t.size * sizeof(float)), 0, "%s: %s unchanged", tag,
                      p->name);
    }
    cr_log_info("BertAdam vs PyTorch (%s): worst relative error of p, m, v after %d steps: %.3g", tag, N_STEPS,
                worst);
    for (int i = 0; i < N_SPECS; i++) {
        free(m[i]);
        free(v[i]);
    }
    free(ref_norm);
    st_close(&ref);
    table_free(&ours);
    table_free(&pt);
}

Test(trainer, bertadam_matches_pytorch_spec_clips) { compare_with_pytorch(BERTADAM_SPEC, "clips 1.0 / 1.0"); }

Test(trainer, bertadam_matches_pytorch_tensor_clip) {
    BertAdamHyper h = BERTADAM_SPEC;
    h.clip_tensor = 0.25f;
    compare_with_pytorch(h, "clips 1.0 / 0.25");
}

// The same five steps with the state on the cuda backend (the emulator in CI): the kernels share one clip
// formula, and the global norm is the same tree of float additions on both.
Test(trainer, cuda_optimizer_matches_cpu) {
    AvtErr err;
    const Backend *cuda = backend_open("cuda", &err);
    if (!cuda) cr_skip_test("%s", err.msg);
    BertAdamHyper h = BERTADAM_SPEC;
    h.clip_tensor = 0.25f;
    ParamTable a, b;
    float *ma[N_SPECS], *va[N_SPECS], *mb[N_SPECS], *vb[N_SPECS], na[N_STEPS], nb[N_STEPS];
    run_steps(&BACKEND_CPU, h, &a, ma, va, na);
    run_steps(cuda, h, &b, mb, vb, nb);
    for (int s = 0; s < N_STEPS; s++)
        cr_expect(fabsf(na[s] - nb[s]) <= 1e-6f * na[s], "step %d: norm cpu %.9g, cuda %.9g", s, na[s], nb[s]);
    for (int i = 0; i < N_SPECS; i++) {
        const size_t n = a.p[i].t.size;
        cr_expect_leq(rel_err(b.p[i].t.data, a.p[i].t.data, n, 1e-30), 1e-6, "%s: cuda and cpu differ", a.p[i].name);
        if (!ma[i]) continue;
        cr_expect_leq(rel_err(mb[i], ma[i], n, 1e-30), 1e-6, "m.%s: cuda and cpu differ", a.p[i].name);
        cr_expect_leq(rel_err(vb[i], va[i], n, 1e-30), 1e-6, "v.%s: cuda and cpu differ", a.p[i].name);
        free(ma[i]), free(va[i]), free(mb[i]), free(vb[i]);
    }
    table_free(&a);
    table_free(&b);
}

// ---------------------------------------------------------------------------------------------------------------
// Training a tiny model with the trainer on the cpu backend: one random batch per step (a function of the step),
// dropout on.

static const AvtConfig TINY = {12, 5, 16, 2, 2, 0};
#define BB 2
#define TT 6
#define DROP_SEED 7

typedef struct {
    AvtModel m;
    Dist d;
    Trainer t;
    float *x_a, *x_v, *t_a, *t_v, *mask; // (BB, TT, d_a), (BB, TT, d_v), same, same, (BB, TT)
} Run;

static void batch_of_step(Run *r, long step) {
    const size_t na = (size_t)BB * TT * TINY.d_a, nv = (size_t)BB * TT * TINY.d_v;
    for (size_t i = 0; i < na; i++) r->x_a[i] = 2.0f * philox_uniform(11, 1, (uint32_t)step, i) - 1.0f;
    for (size_t i = 0; i < nv; i++) r->x_v[i] = 3.0f * philox_uniform(11, 2, (uint32_t)step, i);
    for (size_t i = 0; i < na; i++) r->t_a[i] = 2.0f * philox_uniform(11, 3, (uint32_t)step, i) - 1.0f;
    for (size_t i = 0; i < nv; i++) r->t_v[i] = 3.0f * philox_uniform(11, 4, (uint32_t)step, i);
    for (size_t i = 0; i < (size_t)BB * TT; i++)
        r->mask[i] = i % 5 == 0 || philox_uniform(11, 5, (uint32_t)step, i) < 0.3f;
}

// The run of these tests: 10 updates of batches of BB x TT; validation batches of BB rows; trainer_run validates
// and saves every 3 updates into run_dir (NULL: no trainer_run), keeping 2 checkpoints.
static TrainerConfig tiny_config(const char *run_dir, long max_steps) {
    return (TrainerConfig){.rows = BB, .val_rows = BB, .seq = TT, .seed = DROP_SEED, .h = BERTADAM_SPEC,
                           .lr = 1e-3f, .warmup = 0.2, .t_total = 10, .bucket_bytes = 4 << 20, .run_dir = run_dir,
                           .every = 3, .keep = 2, .max_steps = max_steps};
}

static void run_open(Run *r, uint64_t init_seed, const TrainerConfig *tc) {
    avt_init(&r->m, TINY, init_seed);
    r->d = (Dist){.rank = 0, .world = 1};
    trainer_open(&r->t, tc, &OBJECTIVE_MASKED_L1, &r->m, &r->d);
    r->x_a = calloc((size_t)BB * TT * TINY.d_a, sizeof(float));
    r->t_a = calloc((size_t)BB * TT * TINY.d_a, sizeof(float));
    r->x_v = calloc((size_t)BB * TT * TINY.d_v, sizeof(float));
    r->t_v = calloc((size_t)BB * TT * TINY.d_v, sizeof(float));
    r->mask = calloc((size_t)BB * TT, sizeof(float));
}

static TrainBatch run_batch(const Run *r) { return (TrainBatch){.B = BB, .T = TT, .x_a = r->x_a, .x_v = r->x_v, .target_a = r->t_a, .target_v = r->t_v,
                        .mask = r->mask};
}

static void train(Run *r, long steps) {
    const TrainBatch b = run_batch(r);
    for (long s = 0; s < steps; s++) {
        batch_of_step(r, r->t.o.step);
        TrainStats st;
        trainer_step(&r->t, &b, &st);
    }
}

static void run_close(Run *r) {
    trainer_close(&r->t);
    avt_free(&r->m);
    free(r->x_a), free(r->x_v), free(r->t_a), free(r->t_v), free(r->mask);
}

// ---- batch sources for trainer_run and trainer_validate: training takes the batch of its update (as train()
// does), a validation pass of n batches takes the batches of "steps" first .. first + n - 1 ----
typedef struct {
    Run *r;
    long first, n, k;  // validation: the pass's batches, the next one
    long val_at[8];    // updates at which a validation pass ended
    int n_val;
} Feed;

static int train_next(void *ctx, TrainBatch *b, AvtErr *err) {
    (void)err;
    Feed *f = ctx;
    batch_of_step(f->r, f->r->t.o.step);
    *b = run_batch(f->r);
    return 0;
}

static long val_begin(void *ctx, AvtErr *err) {
    (void)err;
    Feed *f = ctx;
    f->k = 0;
    return f->n;
}

static int val_next(void *ctx, TrainBatch *b, AvtErr *err) {
    (void)err;
    Feed *f = ctx;
    batch_of_step(f->r, f->first + f->k++);
    *b = run_batch(f->r);
    return 0;
}

static void val_end(void *ctx) { (void)ctx; }

static void validated(void *ctx, const Trainer *t, double loss) {
    (void)loss;
    Feed *f = ctx;
    cr_assert_lt(f->n_val, 8, "too many validation passes");
    f->val_at[f->n_val++] = t->o.step;
}

// The first update has lr 0, so two steps: everything trained moves, proj1/proj2 and the buffers do not.
Test(trainer, model_step_leaves_unused_projections) {
    Run t;
    const TrainerConfig tc = tiny_config(NULL, -1);
    run_open(&t, 5, &tc);
    const ParamTable *pt = &t.m.params;
    char *before = malloc(pt->data.used);
    memcpy(before, pt->data.base, pt->data.used);
    train(&t, 2);
    int n_unused = 0;
    for (int i = 0; i < pt->n; i++) {
        const Param *p = &pt->p[i];
        const int same = memcmp(p->t.data, before + ((char *)p->t.data - pt->data.base), p->t.size * 4) == 0;
        const int frozen = p->buffer || p->unused;
        n_unused += p->unused;
        if (p->unused) cr_expect(strncmp(p->name, "proj1.", 6) == 0 || strncmp(p->name, "proj2.", 6) == 0,
                                 "%s is marked unused", p->name);
        cr_expect(same == frozen, "%s %s", p->name, frozen ? "moved" : "did not move");
    }
    cr_expect_eq(n_unused, 4, "proj1/proj2 weight and bias are the unused tensors");
    free(before);
    run_close(&t);
}

// Exact resume: 2K steps in one go = K steps, a checkpoint, a fresh model and optimizer (other init seed) loaded
// from it, K more steps. Bit for bit, weights and moments.
#define K_STEPS 3

Test(checkpoint, resume_is_bit_exact) {
    Run a, b, c;
    const TrainerConfig tc = tiny_config(NULL, -1);
    run_open(&a, 1, &tc);
    train(&a, 2 * K_STEPS);

    const char *run = test_path("resume_run");
    AvtErr err;
    CkptMeta meta = {0};
    cr_assert_eq(ckpt_meta_set(&meta, "seed", "1", &err), 0, "%s", err.msg);
    run_open(&b, 1, &tc);
    train(&b, K_STEPS);
    cr_assert_eq(ckpt_save(run, b.t.o.step, &b.m, &b.t.o, &meta, 2, &err), 0, "%s", err.msg);
    run_close(&b);

    run_open(&c, 2, &tc);
    char dir[512];
    CkptMeta got = {0};
    cr_assert_eq(ckpt_latest(run, dir, sizeof dir, &err), 1, "%s", err.msg);
    cr_assert_eq(ckpt_load(dir, &c.m, &c.t.o, &got, &err), 0, "%s", err.msg);
    cr_expect_str_eq(ckpt_meta_get(&got, "seed"), "1");
    cr_assert_eq(c.t.o.step, K_STEPS);
    train(&c, K_STEPS);

    const ParamTable *pa = &a.m.params, *pc = &c.m.params;
    for (int i = 0; i < pa->n; i++) {
        const size_t bytes = pa->p[i].t.size * sizeof(float);
        cr_expect_eq(memcmp(pa->p[i].t.data, pc->p[i].t.data, bytes), 0, "%s differs after resuming",
                     pa->p[i].name);
        if (!a.t.o.m[i]) continue;
        cr_expect_eq(memcmp(a.t.o.m[i], c.t.o.m[i], bytes), 0, "m.%s differs after resuming", pa->p[i].name);
        cr_expect_eq(memcmp(a.t.o.v[i], c.t.o.v[i], bytes), 0, "v.%s differs after resuming", pa->p[i].name);
    }
    run_close(&a);
    run_close(&c);
}

// The validation loss is the weighted mean (by masked steps) of its batches' losses.
Test(trainer, validation_is_the_weighted_mean_of_its_batches) {
    Run r;
    const TrainerConfig tc = tiny_config(NULL, -1);
    run_open(&r, 5, &tc);
    Feed f = {.r = &r};
    const BatchSource src = {&f, val_next, val_begin, val_end};
    double loss[2], weight[2];
    for (int k = 0; k < 2; k++) {
        f.first = 1000 + k, f.n = 1;
        loss[k] = trainer_validate(&r.t, &src);
        const TrainBatch b = run_batch(&r); // still holds batch 1000 + k
        weight[k] = OBJECTIVE_MASKED_L1.weight(&b);
    }
    cr_assert(loss[0] != loss[1] && weight[0] != weight[1], "the two batches should differ");
    f.first = 1000, f.n = 2;
    const double both = trainer_validate(&r.t, &src);
    const double want = (loss[0] * weight[0] + loss[1] * weight[1]) / (weight[0] + weight[1]);
    cr_expect(fabs(both - want) <= 1e-12 * want, "validation loss %.17g, weighted mean of the batches %.17g", both,
              want);
    run_close(&r);
}

static int has_ckpt(const char *run, long step) {
    return test_run("test -f %s/ckpt-%09ld/DONE", test_path(run), step) == 0;
}

// trainer_run's cadence: the validation loss at update 0, every 3 updates and at the end; a checkpoint every 3
// updates and at the end, 2 kept. Stopped after 3 updates (--max-steps) and resumed, a run saves where the
// uninterrupted one does, validates there after the update it resumed at, and ends with the same weights.
Test(trainer, run_validates_and_saves_on_its_cadence_and_resumes) {
    Run a, b, c;
    TrainerConfig tc = tiny_config(test_path("A"), -1);
    run_open(&a, 1, &tc);
    Feed fa = {.r = &a, .first = 1000, .n = 2};
    const TrainerHooks ha = {&fa, NULL, NULL, validated};
    trainer_run(&a.t, &(BatchSource){&fa, train_next, NULL, NULL}, &(BatchSource){&fa, val_next, val_begin, val_end},
                &ha);
    cr_assert_eq(a.t.o.step, 10);
    const long want_a[] = {0, 3, 6, 9, 10};
    cr_assert_eq(fa.n_val, 5, "%d validation passes", fa.n_val);
    for (int i = 0; i < 5; i++) cr_expect_eq(fa.val_at[i], want_a[i], "validation %d at update %ld", i, fa.val_at[i]);
    cr_expect(has_ckpt("A", 9) && has_ckpt("A", 10) && !has_ckpt("A", 6), "keeps the newest 2 checkpoints");

    tc = tiny_config(test_path("B"), 3);
    run_open(&b, 1, &tc);
    Feed fb = {.r = &b, .first = 1000, .n = 2};
    const TrainerHooks hb = {&fb, NULL, NULL, validated};
    trainer_run(&b.t, &(BatchSource){&fb, train_next, NULL, NULL}, &(BatchSource){&fb, val_next, val_begin, val_end},
                &hb);
    cr_assert_eq(b.t.o.step, 3);
    cr_expect(fb.n_val == 1 && fb.val_at[0] == 0, "validations of the stopped run");
    cr_expect(has_ckpt("B", 3), "a checkpoint where it stopped");
    run_close(&b);

    tc = tiny_config(test_path("B"), -1);
    run_open(&c, 2, &tc);
    char dir[512];
    AvtErr err;
    cr_assert_eq(ckpt_latest(test_path("B"), dir, sizeof dir, &err), 1, "%s", err.msg);
    cr_assert_eq(trainer_resume(&c.t, dir, &err), 0, "%s", err.msg);
    Feed fc = {.r = &c, .first = 1000, .n = 2};
    const TrainerHooks hc = {&fc, NULL, NULL, validated};
    trainer_run(&c.t, &(BatchSource){&fc, train_next, NULL, NULL}, &(BatchSource){&fc, val_next, val_begin, val_end},
                &hc);
    cr_expect(fc.n_val == 3 && fc.val_at[0] == 6 && fc.val_at[1] == 9 && fc.val_at[2] == 10,
              "validations of the resumed run (%d, the first at update %ld)", fc.n_val, fc.val_at[0]);
    cr_expect(has_ckpt("B", 9) && has_ckpt("B", 10) && !has_ckpt("B", 3), "the resumed run saves on the cadence");
    const ParamTable *pa = &a.m.params, *pc = &c.m.params;
    for (int i = 0; i < pa->n; i++)
        cr_expect_eq(memcmp(pa->p[i].t.data, pc->p[i].t.data, pa->p[i].t.size * sizeof(float)), 0,
                     "%s differs after resuming", pa->p[i].name);
    run_close(&a);
    run_close(&c);
}
