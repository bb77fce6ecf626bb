// Fine-tuning through the trainer's objectives (train/objective.h) against the PyTorch twin
// (tests/reference/make_golden.py): OBJECTIVE_CE with the classification head, OBJECTIVE_MSE and OBJECTIVE_CCC with a
// regression head of 3 outputs, on right-padded clips of different lengths (the golden file's clean clips target_a,
// target_v, each pooled at its last valid step obj.t_last), training mode with the twin's dropout (seed, obj_step:
// ft_step or the first step after it that keeps every ReLU input clear of 0, where rounding would pick the gradient).
// Compared: the loss and every parameter gradient, the head's and the model's, at the golden tolerances
// (tests/models/golden_util.h). Then padding is ignored: random values on the padded steps leave the loss and every
// gradient as they were (to 1e-6 relative; the log line says whether bit for bit).
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "tests/models/golden_util.h"
#include "tests/testutil.h"
#include "train/objective.h"

TestSuite(objective_golden, .timeout = 300);

#define PAD_TOL 1e-6 // random padding against zero padding: loss and gradients, relative to scale

typedef struct {
    const char *name; // golden keys "<name>.loss", "<name>grad.<parameter>"
    const Objective *obj;
    const char *head; // the head's tensors in the golden file (golden_open)
} ObjCase;

static const ObjCase CE = {"ce", &OBJECTIVE_CE, "head."};
static const ObjCase MSE = {"mse", &OBJECTIVE_MSE, "reg.head."};
static const ObjCase CCC = {"ccc", &OBJECTIVE_CCC, "reg.head."};

// The gradient half of a fine-tuning step on a fresh graph, as the trainer builds it (train/trainer.c): a planning
// pass with the batch's shape only, then the real pass; the gradients are left in the model's parameters.
static float objective_grad(Golden *g, const Objective *obj, const TrainBatch *b) {
    Graph gr;
    graph_init(&gr, 4096, &BACKEND_CPU);
    gr.training = 1;
    gr.seed = g->seed;
    gr.step = (uint32_t)golden_meta_u64(&g->gold, "obj_step");
    const TrainBatch shape = {.B = b->B, .T = b->T};
    Tensor *loss = NULL;
    for (int pass = 0; pass < 2; pass++) { // pass 0 plans the arenas, pass 1 computes
        if (pass == 0) graph_plan_begin(&gr);
        loss = obj->loss(&gr, &g->m, pass == 0 ? &shape : b);
        params_zero_grad(&g->m.params);
        graph_backward(&gr, loss);
        if (pass == 0) graph_plan_end(&gr);
    }
    float v = tensor_item(&gr, loss);
    graph_free(&gr);
    return v;
}

// Every trained parameter's gradient, concatenated in table order (buffers have none).
static float *grads_copy(const ParamTable *pt) {
    size_t n = 0;
    for (int i = 0; i < pt->n; i++)
        if (!pt->p[i].buffer) n += pt->p[i].t.size;
    float *out = malloc(n * sizeof(float)), *o = out;
    cr_assert(out);
    for (int i = 0; i < pt->n; i++)
        if (!pt->p[i].buffer) {
            memcpy(o, pt->p[i].t.grad, pt->p[i].t.size * sizeof(float));
            o += pt->p[i].t.size;
        }
    return out;
}

static void objective_case(const char *cfg, const ObjCase *c) {
    Golden g;
    golden_open(&g, cfg, c->head);
    const int B = g.B, T = g.T;
    float *x_a = golden_load_f32(&g.gold, "target_a"), *x_v = golden_load_f32(&g.gold, "target_v");
    float *t_last_f = golden_load_f32(&g.gold, "obj.t_last"), *labels_f = golden_load_f32(&g.gold, "obj.labels");
    float *y = golden_load_f32(&g.gold, "reg.y");
    int *t_last = malloc((size_t)B * sizeof(int)), *labels = malloc((size_t)B * sizeof(int));
    int shortest = T, longest = 0;
    for (int b = 0; b < B; b++) {
        t_last[b] = (int)t_last_f[b];
        labels[b] = (int)labels_f[b];
        shortest = t_last[b] < shortest ? t_last[b] : shortest;
        longest = t_last[b] > longest ? t_last[b] : longest;
    }
    cr_assert_lt(shortest, longest, "the clips must differ in length");
    if (c->obj != &OBJECTIVE_CE)
        cr_assert_eq(golden_need(&g.gold, "reg.y")->numel, (size_t)B * g.m.cfg.n_out, "reg.y: (B, n_out) expected");
    TrainBatch batch = {.B = B, .T = T, .x_a = x_a, .x_v = x_v, .t_last = t_last, .label = labels, .y = y};
    cr_expect_eq(c->obj->weight(&batch), (double)B, "a head objective weighs its batch by its rows");

    // against the twin
    const float loss = objective_grad(&g, c->obj, &batch);
    char key[160];
    snprintf(key, sizeof key, "%s.loss", c->name);
    double e_loss = golden_check(&g, key, &loss, 1, TOL_LOSS), worst = 0.0;
    const char *worst_name = "";
    int n_grads = 0;
    for (int i = 0; i < g.m.params.n; i++) {
        const Param *p = &g.m.params.p[i];
        if (p->buffer) continue;
        snprintf(key, sizeof key, "%sgrad.%s", c->name, p->name);
        double e = golden_check(&g, key, p->t.grad, p->t.size, TOL_GRAD);
        if (e > worst) { worst = e; worst_name = p->name; }
        n_grads++;
    }
    cr_assert_gt(n_grads, 50, "too few gradients compared");

    // random values on the padded steps (zero before): channel 0 non-zero, so they even get positions
    float *ref = grads_copy(&g.m.params);
    int padded = 0;
    for (int b = 0; b < B; b++)
        for (int t = t_last[b] + 1; t < T; t++, padded++) {
            size_t row = (size_t)b * T + t;
            for (int j = 0; j < g.m.cfg.d_a; j++)
                x_a[row * g.m.cfg.d_a + j] = 0.5f + 2.0f * philox_uniform(77, 1, (uint32_t)row, (size_t)j);
            for (int j = 0; j < g.m.cfg.d_v; j++)
                x_v[row * g.m.cfg.d_v + j] = 0.1f + 5.0f * philox_uniform(77, 2, (uint32_t)row, (size_t)j);
        }
    cr_assert_gt(padded, 0, "no padded step");
    const float loss_p = objective_grad(&g, c->obj, &batch);
    float *got = grads_copy(&g.m.params);
    double pad_loss = fabs((double)loss_p - loss) / fmax(fabs(loss), 1e-6), pad_grad = 0.0;
    size_t off = 0, n_all = 0;
    for (int i = 0; i < g.m.params.n; i++) {
        const Param *p = &g.m.params.p[i];
        if (p->buffer) continue;
        double e = rel_err(got + off, ref + off, p->t.size, 1e-6);
        cr_expect(e <= PAD_TOL, "%s: random padding moved the gradient of %s by %.3g relative to scale", c->name,
                  p->name, e);
        pad_grad = fmax(pad_grad, e);
        off += p->t.size;
    }
    n_all = off;
    cr_expect(pad_loss <= PAD_TOL, "%s: random padding moved the loss from %.9g to %.9g", c->name, loss, loss_p);
    int bitwise = loss_p == loss && !memcmp(got, ref, n_all * sizeof(float));
    fprintf(stderr,
            "objective_golden %s %s: loss %.6f, loss err %.2e, %d gradients, worst %.2e (%s); %d padded steps "
            "randomised: %s (loss %.1e, gradients %.1e)\n",
            cfg, c->name, loss, e_loss, n_grads, worst, worst_name, padded,
            bitwise ? "bit for bit" : "not bitwise", pad_loss, pad_grad);
    free(ref);
    free(got);
    free(x_a);
    free(x_v);
    free(t_last_f);
    free(labels_f);
    free(y);
    free(t_last);
    free(labels);
    golden_close(&g);
}

Test(objective_golden, tiny_cross_entropy) { objective_case("tiny", &CE); }
Test(objective_golden, tiny_mse) { objective_case("tiny", &MSE); }
Test(objective_golden, tiny_ccc) { objective_case("tiny", &CCC); }
Test(objective_golden, base_cross_entropy) { objective_case("base", &CE); }
Test(objective_golden, base_mse) { objective_case("base", &MSE); }
Test(objective_golden, base_ccc) { objective_case("base", &CCC); }

// The pooling step matters: the same batch read at the last step T - 1 (padding, for the shorter clips) must NOT
// match the twin.
Test(objective_golden, pooling_at_the_last_step_disagrees) {
    Golden g;
    golden_open(&g, "tiny", CE.head);
    float *x_a = golden_load_f32(&g.gold, "target_a"), *x_v = golden_load_f32(&g.gold, "target_v");
    float *labels_f = golden_load_f32(&g.gold, "obj.labels"), *ref = golden_load_f32(&g.gold, "ce.loss");
    int *t_last = malloc((size_t)g.B * sizeof(int)), *labels = malloc((size_t)g.B * sizeof(int));
    for (int b = 0; b < g.B; b++) {
        t_last[b] = g.T - 1;
        labels[b] = (int)labels_f[b];
    }
    TrainBatch batch = {.B = g.B, .T = g.T, .x_a = x_a, .x_v = x_v, .t_last = t_last, .label = labels};
    float loss = objective_grad(&g, &OBJECTIVE_CE, &batch);
    cr_expect_gt(fabs((double)loss - ref[0]), 1e-4, "the loss must depend on t_last (%.6f, twin %.6f)", loss, ref[0]);
    free(x_a);
    free(x_v);
    free(labels_f);
    free(ref);
    free(t_last);
    free(labels);
    golden_close(&g);
}
