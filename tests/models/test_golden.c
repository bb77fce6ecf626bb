// Whole-model golden tests: the C engine against the PyTorch twin (tests/reference/avt_ref.py), which wrote
// parameters, inputs, outputs, losses and every parameter gradient with `make golden`. The files, the model and the
// tolerances: tests/models/golden_util.h. Fine-tuning through the trainer's objectives:
// tests/train/test_objective_golden.c.
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "models/avt.h"
#include "tests/models/golden_util.h"
#include "tests/testutil.h"

// The rows of a golden (B, T, D) tensor at the masked steps, in (b, t) order: what the pretraining heads compute.
static float *masked_rows(const Golden *g, const char *name, const float *mask, size_t *n_rows) {
    const StTensor *t = golden_need(&g->gold, name);
    size_t D = (size_t)t->shape[2], n = 0;
    float *all = golden_load_f32(&g->gold, name), *out = malloc(t->numel * sizeof(float));
    for (size_t r = 0; r < (size_t)g->B * g->T; r++)
        if (mask[r] != 0.0f) memcpy(out + D * n++, all + D * r, D * sizeof(float));
    free(all);
    *n_rows = n;
    return out;
}

static double check_masked(const Golden *g, const char *name, const Tensor *got, const float *mask) {
    size_t n;
    float *ref = masked_rows(g, name, mask, &n);
    cr_assert_eq((size_t)got->shape[0], n, "%s: %d rows, %zu masked steps", name, got->shape[0], n);
    double e = golden_check_ref(name, got->data, ref, got->size, TOL_OUT);
    free(ref);
    return e;
}

// Graph over the golden inputs; planned on the first call of a build, so the step itself allocates nothing.
typedef struct {
    Graph gr;
    float *x_a, *x_v;
} Run;

static void run_open(Run *r, const Golden *g, int training, uint32_t step) {
    graph_init(&r->gr, 4096, &BACKEND_CPU);
    r->gr.training = training;
    r->gr.seed = g->seed;
    r->gr.step = step;
    r->x_a = golden_load_f32(&g->gold, "x_a");
    r->x_v = golden_load_f32(&g->gold, "x_v");
}

static void run_close(Run *r) {
    graph_free(&r->gr);
    free(r->x_a);
    free(r->x_v);
}

static Tensor *inputs(Run *r, const Golden *g, Tensor **xv) {
    int sa[3] = {g->B, g->T, g->m.cfg.d_a}, sv[3] = {g->B, g->T, g->m.cfg.d_v};
    *xv = graph_input(&r->gr, r->gr.planning ? NULL : r->x_v, 3, sv);
    return graph_input(&r->gr, r->gr.planning ? NULL : r->x_a, 3, sa);
}

static void pretrain_case(const char *cfg) {
    Golden g;
    golden_open(&g, cfg, NULL);
    Run r;
    run_open(&r, &g, 1, g.step);
    float *ta = golden_load_f32(&g.gold, "target_a"), *tv = golden_load_f32(&g.gold, "target_v");
    float *mask = golden_load_f32(&g.gold, "mask");
    Tensor *loss = NULL, *out_a, *out_v, *xv;
    for (int pass = 0; pass < 2; pass++) { // pass 0 plans the arenas, pass 1 computes
        if (pass == 0) graph_plan_begin(&r.gr);
        Tensor *xa = inputs(&r, &g, &xv);
        loss = avt_pretrain_loss(&r.gr, &g.m, xa, xv, ta, tv, mask, &out_a, &out_v);
        params_zero_grad(&g.m.params);
        graph_backward(&r.gr, loss);
        if (pass == 0) graph_plan_end(&r.gr);
    }
    double worst_out = fmax(check_masked(&g, "out_a", out_a, mask), check_masked(&g, "out_v", out_v, mask));
    double e_loss = golden_check(&g, "loss", loss->data, 1, TOL_LOSS), worst_grad = 0.0;
    const char *worst_name = "";
    int n_grads = 0;
    for (int i = 0; i < g.m.params.n; i++) {
        const Param *p = &g.m.params.p[i];
        if (p->buffer) continue;
        char key[128];
        snprintf(key, sizeof key, "grad.%s", p->name);
        double e = golden_check(&g, key, p->t.grad, p->t.size, TOL_GRAD);
        if (e > worst_grad) { worst_grad = e; worst_name = p->name; }
        n_grads++;
    }
    cr_assert_gt(n_grads, 50, "too few gradients compared");
    fprintf(stderr, "golden %s pretrain: loss %.6f, outputs err %.2e, loss err %.2e, %d gradients, worst %.2e (%s)\n",
            cfg, loss->data[0], worst_out, e_loss, n_grads, worst_grad, worst_name);
    free(ta);
    free(tv);
    free(mask);
    run_close(&r);
    golden_close(&g);
}

static void eval_case(const char *cfg) {
    Golden g;
    golden_open(&g, cfg, NULL);
    Run r;
    run_open(&r, &g, 0, 0);
    r.gr.no_grad = 1;
    Tensor *h = NULL, *out_a, *out_v, *xv;
    for (int pass = 0; pass < 2; pass++) {
        if (pass == 0) graph_plan_begin(&r.gr);
        Tensor *xa = inputs(&r, &g, &xv);
        h = avt_fuse(&r.gr, &g.m, xa, xv);
        avt_reconstruct(&r.gr, &g.m, h, &out_a, &out_v);
        if (pass == 0) graph_plan_end(&r.gr);
    }
    double e = golden_check(&g, "eval.h_av", h->data, h->size, TOL_OUT);
    int D2 = 2 * g.m.cfg.d;
    float *last = malloc((size_t)g.B * D2 * sizeof(float));
    for (int b = 0; b < g.B; b++)
        memcpy(last + (size_t)b * D2, h->data + ((size_t)b * g.T + g.T - 1) * D2, (size_t)D2 * sizeof(float));
    golden_check(&g, "eval.h_last", last, (size_t)g.B * D2, TOL_OUT);
    golden_check(&g, "eval.out_a", out_a->data, out_a->size, TOL_OUT);
    golden_check(&g, "eval.out_v", out_v->data, out_v->size, TOL_OUT);
    fprintf(stderr, "golden %s eval: h_av err %.2e\n", cfg, e);
    free(last);
    run_close(&r);
    golden_close(&g);
}

static void finetune_case(const char *cfg) {
    Golden g;
    golden_open(&g, cfg, "head.");
    Run r;
    run_open(&r, &g, 1, g.ft_step);
    float *labels_f = golden_load_f32(&g.gold, "ft.labels");
    int *labels = malloc((size_t)g.B * sizeof(int)), *t_last = malloc((size_t)g.B * sizeof(int));
    for (int b = 0; b < g.B; b++) {
        labels[b] = (int)labels_f[b];
        t_last[b] = g.T - 1;
    }
    Tensor *logits = NULL, *loss = NULL, *xv;
    for (int pass = 0; pass < 2; pass++) {
        if (pass == 0) graph_plan_begin(&r.gr);
        Tensor *xa = inputs(&r, &g, &xv);
        logits = avt_head(&r.gr, &g.m, avt_fuse(&r.gr, &g.m, xa, xv), t_last);
        loss = op_cross_entropy(&r.gr, logits, labels);
        params_zero_grad(&g.m.params);
        graph_backward(&r.gr, loss);
        if (pass == 0) graph_plan_end(&r.gr);
    }
    golden_check(&g, "ft.logits", logits->data, logits->size, TOL_OUT);
    golden_check(&g, "ft.loss", loss->data, 1, TOL_LOSS);
    double worst = 0.0;
    for (int i = 0; i < g.m.params.n; i++) {
        const Param *p = &g.m.params.p[i];
        if (p->buffer) continue;
        char key[128];
        snprintf(key, sizeof key, "ftgrad.%s", p->name);
        worst = fmax(worst, golden_check(&g, key, p->t.grad, p->t.size, TOL_GRAD));
    }
    fprintf(stderr, "golden %s finetune: loss %.6f, worst gradient err %.2e\n", cfg, loss->data[0], worst);
    free(labels_f);
    free(labels);
    free(t_last);
    run_close(&r);
    golden_close(&g);
}

Test(golden, tiny_pretrain_outputs_loss_and_gradients) { pretrain_case("tiny"); }
Test(golden, tiny_eval_embedding) { eval_case("tiny"); }
Test(golden, tiny_finetune_head) { finetune_case("tiny"); }
Test(golden, base_pretrain_outputs_loss_and_gradients, .timeout = 300) { pretrain_case("base"); }
Test(golden, base_eval_embedding, .timeout = 300) { eval_case("base"); }
Test(golden, base_finetune_head, .timeout = 300) { finetune_case("base"); }

// The dropout masks matter: the same inputs with another step (other masks) must NOT match the twin.
Test(golden, other_dropout_step_disagrees) {
    Golden g;
    golden_open(&g, "tiny", NULL);
    Run r;
    run_open(&r, &g, 1, g.step + 1);
    float *ta = golden_load_f32(&g.gold, "target_a"), *tv = golden_load_f32(&g.gold, "target_v");
    float *mask = golden_load_f32(&g.gold, "mask");
    Tensor *out_a, *out_v, *xv;
    for (int pass = 0; pass < 2; pass++) {
        if (pass == 0) graph_plan_begin(&r.gr);
        Tensor *xa = inputs(&r, &g, &xv);
        avt_pretrain_loss(&r.gr, &g.m, xa, xv, ta, tv, mask, &out_a, &out_v);
        if (pass == 0) graph_plan_end(&r.gr);
    }
    size_t n;
    float *ref = masked_rows(&g, "out_a", mask, &n);
    cr_expect_gt(rel_err(out_a->data, ref, out_a->size, 1e-6), 1e-3, "outputs must depend on the dropout step");
    free(ref);
    free(ta);
    free(tv);
    free(mask);
    run_close(&r);
    golden_close(&g);
}
