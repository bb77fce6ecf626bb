// The training step, validation and the run's cadence (train/trainer.h).
#include "train/trainer.h"

#include <math.h>
#include <signal.h>
#include <string.h>

#define MAX_NODES 4096 // tape nodes of one step (the base config takes about 600)

static volatile sig_atomic_t stop_requested;
static void on_signal(int sig) {
    (void)sig;
    stop_requested = 1;
}

// Sizes g's arenas for batches of `rows` rows: one measured build of the loss (and its backward when training).
static void plan(Trainer *t, Graph *g, int rows, int training) {
    graph_init(g, MAX_NODES, t->m->params.data.be);
    g->training = training;
    g->no_grad = !training;
    g->seed = t->c.seed;
    graph_plan_begin(g);
    const TrainBatch shape = {.B = rows, .T = t->c.seq};
    Tensor *loss = t->obj.loss(g, t->m, &shape);
    if (training) graph_backward(g, loss);
    graph_plan_end(g);
}

static void check_batch(const TrainBatch *b, int rows, int seq, const char *what) {
    if (b->B != rows || b->T != seq)
        avt_fatal("%s: a batch of %d x %d steps, the graph was planned for %d x %d", what, b->B, b->T, rows, seq);
}

void trainer_open(Trainer *t, const TrainerConfig *c, const Objective *obj, AvtModel *m, Dist *d) {
    memset(t, 0, sizeof *t);
    t->c = *c;
    t->obj = *obj;
    t->m = m;
    t->d = d;
    optim_init(&t->o, &m->params, c->h, c->lr, c->warmup, c->t_total);
    grad_sync_init(&t->sync, d, m->params.data.be, &m->params, c->bucket_bytes);
    plan(t, &t->g, c->rows, 1);
    if (c->val_rows > 0) plan(t, &t->gv, c->val_rows, 0);
}

void trainer_close(Trainer *t) {
    graph_free(&t->gv);
    graph_free(&t->g);
    grad_sync_free(&t->sync);
    optim_free(&t->o);
}

int trainer_resume(Trainer *t, const char *ckpt_dir, AvtErr *err) {
    if (ckpt_load(ckpt_dir, t->m, &t->o, NULL, err)) return -1;
    t->resumed = 1;
    return 0;
}

float trainer_grad(Trainer *t, const TrainBatch *b) {
    check_batch(b, t->c.rows, t->c.seq, "trainer_grad");
    Graph *g = &t->g;
    graph_reset(g);
    g->step = (uint32_t)t->o.step;
    g->sample0 = (uint64_t)t->d->rank * (uint64_t)t->c.rows;
    Tensor *loss = t->obj.loss(g, t->m, b);
    // Summed over the ranks: the batch weights, loss x weight, stop requests. The global batch's loss is the
    // weighted mean, so this rank's gradient is scaled by its share of the weight.
    const double w = t->obj.weight(b);
    double sum[3] = {w, 0.0, (double)stop_requested};
    params_zero_grad(&t->m->params);
    sum[1] = (double)tensor_item(g, loss) * w;
    dist_allreduce_sum_double(t->d, sum, 3);
    if (t->d->world > 1) grad_sync_begin(&t->sync, g);
    graph_backward_seed(g, loss, sum[0] > 0 ? (float)(w / sum[0]) : 0.0f);
    if (t->d->world > 1) grad_sync_end(&t->sync, g);
    t->stop |= sum[2] > 0;
    return sum[0] > 0 ? (float)(sum[1] / sum[0]) : 0.0f;
}

void trainer_step(Trainer *t, const TrainBatch *b, TrainStats *st) {
    st->loss = trainer_grad(t, b);
    st->lr = optim_lr(&t->o);
    st->grad_norm = optim_step(&t->o, &t->m->params);
    st->step = t->o.step;
    st->ms = 0.0;
    t->done++;
    if (!isfinite(st->loss))
        avt_die("step %ld: the loss is not finite: training diverged (lower the learning rate)", t->o.step);
}

double trainer_validate(Trainer *t, const BatchSource *src) {
    AvtErr err;
    const long n = src->begin(src->ctx, &err);
    if (n < 0) avt_die("%s", err.msg);
    double sum[2] = {0.0, 0.0}; // loss x weight, weight
    for (long i = 0; i < n; i++) {
        TrainBatch b;
        if (src->next(src->ctx, &b, &err)) avt_die("%s", err.msg);
        check_batch(&b, t->c.val_rows, t->c.seq, "trainer_validate");
        graph_reset(&t->gv);
        const double w = t->obj.weight(&b);
        sum[0] += (double)tensor_item(&t->gv, t->obj.loss(&t->gv, t->m, &b)) * w;
        sum[1] += w;
    }
    src->end(src->ctx);
    dist_allreduce_sum_double(t->d, sum, 2);
    return sum[1] > 0 ? sum[0] / sum[1] : 0.0;
}

static void validate(Trainer *t, const BatchSource *val, const TrainerHooks *h) {
    const double loss = trainer_validate(t, val);
    if (h->validated) h->validated(h->ctx, t, loss);
}

static void save(Trainer *t, const TrainerHooks *h) {
    dist_barrier(t->d); // every rank has finished the update being saved
    if (t->d->rank == 0) {
        CkptMeta meta = {0};
        if (h->meta) h->meta(h->ctx, &meta);
        AvtErr err;
        if (ckpt_save(t->c.run_dir, t->o.step, t->m, &t->o, &meta, t->c.keep, &err)) avt_die("%s", err.msg);
    }
    dist_barrier(t->d);
}

void trainer_catch_signals(void) {
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
}

void trainer_run(Trainer *t, const BatchSource *train, const BatchSource *val, const TrainerHooks *h) {
    if (t->c.every < 1 || !t->c.run_dir) avt_fatal("trainer_run: the config lacks run_dir or every");
    trainer_catch_signals();
    AvtErr err;
    while (t->o.step < t->o.t_total && (t->c.max_steps < 0 || t->done < t->c.max_steps)) {
        // Not again at the update a resumed run starts at: its checkpoint is there already.
        if (t->o.step % t->c.every == 0 && !(t->resumed && t->done == 0)) {
            if (val) validate(t, val, h);
            if (t->o.step > 0) save(t, h);
        }
        const double t0 = avt_now();
        TrainBatch b;
        if (train->next(train->ctx, &b, &err)) avt_die("%s", err.msg);
        TrainStats st;
        trainer_step(t, &b, &st);
        st.ms = 1e3 * (avt_now() - t0);
        if (h->step) h->step(h->ctx, t, &st);
        if (t->stop) break;
    }
    if (t->o.step == t->o.t_total && val) validate(t, val, h);
    if (t->done > 0) save(t, h);
}

int trainer_interrupted(const Trainer *t) { return t->stop || stop_requested; }
