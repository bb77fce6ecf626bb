// One fine-tuning run: the store, its labels and folds, and each fold's training, model selection and test
// (finetune/finetune.h; docs/protocols.md).
#include "finetune/finetune.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "data/corpus/folds.h"
#include "data/corpus/masking.h"
#include "data/corpus/store.h"
#include "finetune/report.h"
#include "train/trainer.h"

#define FT_SHUFFLE_SITE 0x46000000u // 'F': the clip order of fine-tuning epochs, apart from other Philox users
#define EVAL_NODES 4096             // tape nodes of a prediction pass (the base config takes about 300)

struct FtRun {
    FtSettings s;
    char out[1024];
    Store *store;
    Labels L;
    Folds F;
    int T;        // steps per row: --seq, or the longest clip when shorter
    FtLoss loss;
};

// ---- opening a run ----
int ft_open(FtRun **rp, const FtSettings *s, const char *out, AvtErr *err) {
    FtRun *r = calloc_check(1, sizeof *r);
    r->s = *s;
    snprintf(r->out, sizeof r->out, "%s", out);
    if (store_open(&r->store, s->data, err)) {
        free(r);
        return -1;
    }
    char *labels = asprintf_check("%s/labels.csv", s->data);
    int rc = labels_load(&r->L, labels, r->store, s->target, s->group_by, s->kind, err);
    free(labels);
    if (rc) {
        store_close(r->store);
        free(r);
        return -1;
    }
    const int classes = r->L.kind == TARGET_CLASSES;
    r->loss = s->loss == FT_LOSS_AUTO ? (classes ? FT_LOSS_CE : FT_LOSS_CCC) : s->loss;
    r->s.loss = r->loss; // settings.json and the summary name what ran
    r->s.kind = r->L.kind;
    if (classes != (r->loss == FT_LOSS_CE))
        rc = avt_err_set(err, "--loss %s does not fit %s '%s'", ft_loss_name(r->loss),
                         classes ? "the class label" : "the numeric target", s->target);
    AvtConfig cfg = s->cfg;
    if (!rc && s->weights[0]) { // a bad checkpoint is reported now, not when the first fold starts
        AvtModel pre;
        rc = avt_load(&pre, s->weights, err);
        if (!rc) {
            cfg = pre.cfg;
            avt_free(&pre);
        }
    }
    if (!rc && (cfg.d_a != store_d_a(r->store) || cfg.d_v != store_d_v(r->store)))
        rc = avt_err_set(err, "%s: features are %d + %d wide, the model %s takes %d + %d", s->data,
                         store_d_a(r->store), store_d_v(r->store), s->weights[0] ? s->weights : "", cfg.d_a, cfg.d_v);
    FoldSpec spec = {s->folds, s->split_seed, s->val_groups, s->fraction, s->seed};
    if (!rc)
        rc = folds_make(&r->F, &spec, r->L.n, r->L.id, r->L.group, r->L.label, classes ? r->L.n_out : 0, r->L.names,
                        err);
    if (rc) {
        labels_free(&r->L);
        store_close(r->store);
        free(r);
        return -1;
    }
    r->T = 1;
    for (size_t j = 0; j < r->L.n; j++) {
        int len = store_len(r->store, r->L.item[j]);
        if (len > r->T) r->T = len;
    }
    if (r->T > s->seq) r->T = s->seq;
    *rp = r;
    return 0;
}

void ft_close(FtRun *r) {
    if (!r) return;
    folds_free(&r->F);
    labels_free(&r->L);
    store_close(r->store);
    free(r);
}

int ft_folds(const FtRun *r) { return r->F.K; }

// The clips (indices into the labels) of fold k with role `role`, ascending: count, and the list when rows != NULL.
static size_t fold_rows(const FtRun *r, int k, FoldRole role, size_t *rows) {
    size_t n = 0;
    for (size_t j = 0; j < r->F.n; j++)
        if (r->F.role[(size_t)k * r->F.n + j] == role) {
            if (rows) rows[n] = j;
            n++;
        }
    return n;
}

static long batches_per_epoch(const FtRun *r, int k) {
    size_t n = fold_rows(r, k, ROLE_TRAIN, NULL);
    return (long)((n + (size_t)r->s.batch - 1) / (size_t)r->s.batch);
}

long ft_fold_updates(const FtRun *r, int k) { return (long)r->s.epochs * batches_per_epoch(r, k); }

static char *fold_path(const FtRun *r, int k, const char *name) {
    return asprintf_check("%s/fold-%d%s%s", r->out, k, name[0] ? "/" : "", name);
}

int ft_fold_done(const FtRun *r, int k) {
    char *p = fold_path(r, k, "metrics.json");
    int done = access(p, F_OK) == 0;
    free(p);
    return done;
}

int ft_write_plan(const FtRun *r, AvtErr *err) {
    char *settings = asprintf_check("%s/settings.json", r->out), *split = asprintf_check("%s/split.csv", r->out);
    int rc = ft_settings_check(&r->s, settings, err);
    if (!rc) rc = ft_settings_write(&r->s, settings, err);
    if (!rc) rc = ft_write_split(split, &r->L, &r->F, err);
    free(settings);
    free(split);
    return rc;
}

// ---- batches ----
typedef struct {
    TrainBatch b;  // x_a (B, T, d_a), x_v (B, T, d_v), t_last (B), label (B) or y (B, n_out)
} Batch;

static void batch_alloc(Batch *bt, const FtRun *r) {
    const size_t B = (size_t)r->s.batch, T = (size_t)r->T;
    bt->b.B = r->s.batch;
    bt->b.T = r->T;
    bt->b.x_a = malloc_check(B * T * (size_t)store_d_a(r->store) * sizeof(float));
    bt->b.x_v = malloc_check(B * T * (size_t)store_d_v(r->store) * sizeof(float));
    bt->b.t_last = malloc_check(B * sizeof(int));
    bt->b.label = malloc_check(B * sizeof(int));
    bt->b.y = malloc_check(B * (size_t)r->L.n_out * sizeof(float));
}

static void batch_free(Batch *bt) {
    free(bt->b.x_a);
    free(bt->b.x_v);
    free(bt->b.t_last);
    free(bt->b.label);
    free(bt->b.y);
}

// Row i of the batch holds clip rows[i] (an index into the labels): its first T steps, right zero-padded.
static void batch_fill(Batch *bt, const FtRun *r, const size_t *rows) {
    const int T = r->T, d_a = store_d_a(r->store), d_v = store_d_v(r->store), n_out = r->L.n_out;
    for (int i = 0; i < bt->b.B; i++) {
        const size_t j = rows[i], item = r->L.item[j];
        int len = store_len(r->store, item);
        if (len > T) len = T;
        float *xa = bt->b.x_a + (size_t)i * (size_t)T * (size_t)d_a, *xv = bt->b.x_v + (size_t)i * (size_t)T * (size_t)d_v;
        AvtErr err;
        if (store_read(r->store, item, 0, len, xa, xv, &err)) avt_die("%s", err.msg);
        memset(xa + (size_t)len * (size_t)d_a, 0, (size_t)(T - len) * (size_t)d_a * sizeof(float));
        memset(xv + (size_t)len * (size_t)d_v, 0, (size_t)(T - len) * (size_t)d_v * sizeof(float));
        bt->b.t_last[i] = len - 1;
        bt->b.label[i] = r->L.label ? r->L.label[j] : 0;
        if (r->L.y) memcpy(bt->b.y + (size_t)i * (size_t)n_out, r->L.y + j * (size_t)n_out, (size_t)n_out * sizeof(float));
    }
}

// ---- prediction ----
static Tensor *predict_graph(Graph *g, const AvtModel *m, const TrainBatch *b) {
    int sa[3] = {b->B, b->T, m->cfg.d_a}, sv[3] = {b->B, b->T, m->cfg.d_v};
    return avt_head(g, m, avt_fuse(g, m, graph_input(g, b->x_a, 3, sa), graph_input(g, b->x_v, 3, sv)), b->t_last);
}

static void predictor_open(Graph *g, const AvtModel *m, int B, int T) {
    graph_init(g, EVAL_NODES, m->params.data.be);
    g->training = 0;
    g->no_grad = 1;
    graph_plan_begin(g);
    const TrainBatch shape = {.B = B, .T = T};
    predict_graph(g, m, &shape);
    graph_plan_end(g);
}

// The head's outputs out (n, n_out) for clips rows (n), in batches; a last partial batch repeats its first clip.
static void predict(Graph *g, const AvtModel *m, const FtRun *r, Batch *bt, const size_t *rows, size_t n,
                    float *out) {
    const size_t B = (size_t)bt->b.B, n_out = (size_t)r->L.n_out;
    size_t *chunk = malloc_check(B * sizeof *chunk);
    float *o = malloc_check(B * n_out * sizeof(float));
    for (size_t i0 = 0; i0 < n; i0 += B) {
        const size_t k = n - i0 < B ? n - i0 : B;
        for (size_t i = 0; i < B; i++) chunk[i] = rows[i0 + (i < k ? i : 0)];
        batch_fill(bt, r, chunk);
        graph_reset(g);
        tensor_read(g, predict_graph(g, m, &bt->b), o);
        memcpy(out + i0 * n_out, o, k * n_out * sizeof(float));
    }
    free(o);
    free(chunk);
}

// ---- the model of a fold ----
// Pretrained: every tensor of the checkpoint but a head it may carry, the head initialised from the seed (as
// nn.Linear's default); from scratch: the whole model from the seed (docs/model.md §2.9). Tensors the fine-tuning
// forward does not read (the pretraining heads, proj1/proj2) are not trained (no weight decay either, as PyTorch
// skips parameters without a gradient); --freeze leaves the whole upstream untrained and takes no gradient there.
static void fold_model(AvtModel *m, const FtRun *r, uint64_t seed) {
    const FtSettings *s = &r->s;
    AvtConfig cfg = s->cfg;
    AvtModel pre;
    AvtErr err;
    if (s->weights[0]) {
        if (avt_load(&pre, s->weights, &err)) avt_die("%s", err.msg);
        cfg = pre.cfg;
    }
    cfg.n_out = r->L.n_out;
    avt_init(m, cfg, seed);
    if (s->weights[0]) {
        for (int i = 0; i < m->params.n; i++) {
            Param *p = &m->params.p[i];
            if (strncmp(p->name, "head.", 5) == 0) continue;
            const Param *q = params_find(&pre.params, p->name);
            if (q) memcpy(p->t.data, q->t.data, p->t.size * sizeof(float));
        }
        avt_free(&pre);
    }
    for (int i = 0; i < m->params.n; i++) {
        Param *p = &m->params.p[i];
        const int head = strncmp(p->name, "head.", 5) == 0;
        if (!head && (!avt_param_in_fuse(p->name) || s->freeze)) {
            p->unused = 1;
            p->t.requires_grad = 0;
        }
    }
}

// ---- one fold ----
typedef struct {
    long epoch, batch; // epochs finished; batches of the next epoch finished
    double loss_sum;   // training loss summed over those batches
    double best;       // best validation metric so far
    long best_epoch;   // its epoch (1-based), 0 none yet
} FoldState;

static void meta_put(CkptMeta *meta, const char *key, double v) {
    char buf[64];
    AvtErr err;
    snprintf(buf, sizeof buf, "%.17g", v);
    if (ckpt_meta_set(meta, key, buf, &err)) avt_fatal("%s", err.msg);
}

static void save_state(const char *dir, const Trainer *t, const AvtModel *m, const FoldState *fs) {
    CkptMeta meta = {0};
    meta_put(&meta, "ft.epoch", (double)fs->epoch);
    meta_put(&meta, "ft.batch", (double)fs->batch);
    meta_put(&meta, "ft.loss_sum", fs->loss_sum);
    meta_put(&meta, "ft.best", fs->best);
    meta_put(&meta, "ft.best_epoch", (double)fs->best_epoch);
    AvtErr err;
    if (ckpt_save(dir, t->o.step, m, &t->o, &meta, 1, &err)) avt_die("%s", err.msg);
}

static double meta_num(const SafeTensors *st, const char *key) {
    const char *v = st_meta(st, key);
    if (!v) avt_die("%s: the fine-tuning state lacks '%s'", st->path, key);
    return strtod(v, NULL);
}

// Continue from the fold's newest checkpoint, if any: 1 resumed, 0 fresh.
static int resume_state(const char *dir, Trainer *t, FoldState *fs) {
    char ckpt[4096], state[4200];
    AvtErr err;
    int found = ckpt_latest(dir, ckpt, sizeof ckpt, &err);
    if (found < 0) avt_die("%s", err.msg);
    if (!found) return 0;
    if (trainer_resume(t, ckpt, &err)) avt_die("%s", err.msg);
    snprintf(state, sizeof state, "%s/state.safetensors", ckpt);
    SafeTensors st;
    if (st_open(&st, state, &err)) avt_die("%s", err.msg);
    fs->epoch = (long)meta_num(&st, "ft.epoch");
    fs->batch = (long)meta_num(&st, "ft.batch");
    fs->loss_sum = meta_num(&st, "ft.loss_sum");
    fs->best = meta_num(&st, "ft.best");
    fs->best_epoch = (long)meta_num(&st, "ft.best_epoch");
    st_close(&st);
    return 1;
}

// log.csv keeps the rows of the epochs a resumed state has finished: a row written after the checkpoint it
// resumes from is dropped (it will be written again).
static FILE *open_log(const char *path, long epochs_done) {
    FILE *f;
    if (epochs_done == 0) {
        f = fopen_check(path, "w");
        fprintf(f, "epoch,step,train_loss,val_loss,val_metric,lr,seconds\n");
        return f;
    }
    AvtErr err;
    char *text = avt_read_file(path, NULL, &err);
    f = fopen_check(path, "w");
    if (text) {
        long row = -1;
        for (char *line = strtok(text, "\n"); line && row < epochs_done; line = strtok(NULL, "\n"), row++)
            fprintf(f, "%s\n", line);
        free(text);
    }
    return f;
}

static void fmt_eta(char *buf, size_t len, double s) {
    long t = (long)(s + 0.5);
    snprintf(buf, len, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
}

static void progress(FtProgress *p, int k, int K, long epoch, long epochs, float loss) {
    p->done++;
    if (!p->tty && p->done % 20 != 0) return;
    const double el = avt_now() - p->t0;
    char eta[32];
    fmt_eta(eta, sizeof eta, p->done ? el / (double)p->done * (double)(p->total - p->done) : 0.0);
    fprintf(stderr, "%s%sfold %d/%d  epoch %ld/%ld  loss %.4f  update %ld/%ld  ETA %s%s", p->tty ? "\r" : "",
            p->prefix, k + 1, K, epoch + 1, epochs, loss, p->done, p->total, eta, p->tty ? "   " : "\n");
    p->line_open = p->tty;
}

static void end_line(FtProgress *p) {
    if (p->line_open) fputc('\n', stderr);
    p->line_open = 0;
}

static void save_model(const AvtModel *m, const char *path) {
    char *tmp = asprintf_check("%s.tmp.%ld", path, (long)getpid());
    AvtErr err;
    if (avt_save(m, tmp, &err)) avt_die("%s", err.msg);
    if (rename(tmp, path) != 0) avt_die("%s: rename failed: %s", path, strerror(errno));
    free(tmp);
}

// Removes the fold's checkpoints once its results are written (a table keeps many folds).
static void remove_checkpoints(const char *dir) {
    char ckpt[4096];
    AvtErr err;
    while (ckpt_latest(dir, ckpt, sizeof ckpt, &err) == 1) {
        char *cmd = asprintf_check("rm -rf '%s'", ckpt);
        if (system(cmd) != 0) avt_die("%s: cannot remove", ckpt);
        free(cmd);
    }
}

int ft_fold_run(FtRun *r, int k, const Backend *be, FtProgress *p) {
    const FtSettings *s = &r->s;
    const int K = r->F.K;
    char *dir = fold_path(r, k, "");
    if (mkdir(dir, 0777) != 0 && errno != EEXIST) avt_die("%s: cannot create: %s", dir, strerror(errno));
    size_t n_tr = fold_rows(r, k, ROLE_TRAIN, NULL), n_va = fold_rows(r, k, ROLE_VAL, NULL),
           n_te = fold_rows(r, k, ROLE_TEST, NULL);
    size_t *tr = malloc_check(n_tr * sizeof *tr), *va = malloc_check(n_va * sizeof *va),
           *te = malloc_check(n_te * sizeof *te);
    fold_rows(r, k, ROLE_TRAIN, tr);
    fold_rows(r, k, ROLE_VAL, va);
    fold_rows(r, k, ROLE_TEST, te);

    const uint64_t seed = s->seed + (uint64_t)k * 0x9E3779B97F4A7C15ull; // each fold its own draws
    AvtModel m;
    fold_model(&m, r, seed);
    params_to(&m.params, be);
    const long nb = batches_per_epoch(r, k);
    TrainerConfig tc = {
        .rows = s->batch,
        .seq = r->T,
        .seed = seed,
        .h = {(float)s->beta1, (float)s->beta2, (float)s->eps, (float)s->weight_decay, (float)s->clip,
              (float)s->clip_tensor},
        .lr = (float)s->lr,
        .warmup = s->warmup,
        .t_total = (long)s->epochs * nb,
    };
    static const Objective *const OBJ[] = {&OBJECTIVE_CE, &OBJECTIVE_MSE, &OBJECTIVE_CCC};
    Dist local = {.rank = 0, .world = 1}; // one process per fold
    Trainer t;
    trainer_open(&t, &tc, OBJ[r->loss], &m, &local);
    FoldState fs = {0, 0, 0.0, -INFINITY, 0};
    const int resumed = resume_state(dir, &t, &fs);
    p->done += fs.epoch * nb + fs.batch;

    Graph eval;
    predictor_open(&eval, &m, s->batch, r->T);
    Batch bt;
    batch_alloc(&bt, r);
    const size_t n_out = (size_t)r->L.n_out;
    float *out = malloc_check((n_va > n_te ? n_va : n_te) * n_out * sizeof(float) + 1);
    size_t *rows = malloc_check((size_t)s->batch * sizeof *rows), *perm = malloc_check(n_tr * sizeof *perm);
    char *log_path = fold_path(r, k, "log.csv"), *best_path = fold_path(r, k, "best.safetensors");
    FILE *log = open_log(log_path, fs.epoch);
    if (resumed) fprintf(stderr, "%sfold %d/%d: resumed at epoch %ld, update %ld\n", p->prefix, k + 1, K,
                         fs.epoch + 1, t.o.step);
    trainer_catch_signals();
    const double t_fold = avt_now();
    int stopped = 0;
    for (; fs.epoch < s->epochs && !stopped; fs.epoch++) {
        // The epoch's order: a Philox Fisher-Yates permutation keyed by (seed, epoch); batches take it in turn,
        // the last one filled up from its start, so every clip is seen every epoch, also when n < batch.
        for (size_t i = 0; i < n_tr; i++) perm[i] = tr[i];
        for (size_t i = n_tr; i-- > 1;) {
            size_t j = philox_below(seed, FT_SHUFFLE_SITE, (uint32_t)fs.epoch, i, (uint64_t)i + 1), x = perm[i];
            perm[i] = perm[j];
            perm[j] = x;
        }
        for (; fs.batch < nb; fs.batch++) {
            for (int i = 0; i < s->batch; i++) rows[i] = perm[((size_t)fs.batch * (size_t)s->batch + (size_t)i) % n_tr];
            batch_fill(&bt, r, rows);
            TrainStats st;
            trainer_step(&t, &bt.b, &st);
            fs.loss_sum += st.loss;
            progress(p, k, K, fs.epoch, s->epochs, st.loss);
            if (trainer_interrupted(&t) || (p->max_updates > 0 && ++p->run_updates >= p->max_updates)) {
                fs.batch++;
                stopped = 1;
                break;
            }
        }
        if (stopped) break;
        predict(&eval, &m, r, &bt, va, n_va, out);
        const double metric = ft_selection_metric(&r->L, va, n_va, out);
        const double vloss = ft_set_loss(r->loss, &r->L, va, n_va, out);
        if (metric > fs.best) { // ties keep the earlier epoch
            fs.best = metric;
            fs.best_epoch = fs.epoch + 1;
            save_model(&m, best_path);
        }
        fprintf(log, "%ld,%ld,%.6f,%.6f,%.6f,%.4e,%.1f\n", fs.epoch + 1, t.o.step, fs.loss_sum / (double)nb, vloss,
                metric, optim_lr(&t.o), avt_now() - t_fold);
        fflush(log);
        fs.batch = 0;
        fs.loss_sum = 0.0;
        FoldState next = fs;
        next.epoch++;
        save_state(dir, &t, &m, &next);
        end_line(p);
        fprintf(stderr, "%sfold %d/%d  epoch %ld/%d  validation %s %.4f%s\n", p->prefix, k + 1, K, fs.epoch + 1,
                s->epochs, r->L.kind == TARGET_CLASSES ? "accuracy" : "mean CCC", metric,
                fs.best_epoch == fs.epoch + 1 ? " (best)" : "");
        ft_plot_curve(dir, &r->L);
    }
    fclose_check(log, log_path);
    if (stopped) {
        save_state(dir, &t, &m, &fs);
        end_line(p);
        fprintf(stderr, "%sfold %d/%d: stopped at update %ld; checkpoint written (run again with --resume)\n",
                p->prefix, k + 1, K, t.o.step);
    } else {
        // The test clips, read once, by the best epoch's model.
        AvtModel best;
        AvtErr err;
        if (avt_load(&best, best_path, &err)) avt_die("%s", err.msg);
        params_to(&best.params, be);
        predict(&eval, &best, r, &bt, te, n_te, out);
        char *pred_path = fold_path(r, k, "predictions.csv"), *model_path = fold_path(r, k, "model.safetensors"),
             *metrics_path = fold_path(r, k, "metrics.json");
        if (ft_write_predictions(pred_path, &r->L, k, te, n_te, out, &err)) avt_die("%s", err.msg);
        if (rename(best_path, model_path) != 0) avt_die("%s: rename failed: %s", model_path, strerror(errno));
        cJSON *j = ft_metrics_json(&r->L, te, n_te, out);
        cJSON_AddNumberToObject(j, "fold", k);
        cJSON_AddNumberToObject(j, "n_train", (double)n_tr);
        cJSON_AddNumberToObject(j, "n_val", (double)n_va);
        cJSON_AddNumberToObject(j, "n_test", (double)n_te);
        cJSON_AddNumberToObject(j, "best_epoch", (double)fs.best_epoch);
        cJSON_AddNumberToObject(j, "val_metric", fs.best);
        if (ft_write_json(metrics_path, j, &err)) avt_die("%s", err.msg); // last: the fold is finished
        cJSON_Delete(j);
        remove_checkpoints(dir);
        avt_free(&best);
        free(pred_path);
        free(model_path);
        free(metrics_path);
    }
    free(out);
    free(rows);
    free(perm);
    free(log_path);
    free(best_path);
    batch_free(&bt);
    graph_free(&eval);
    trainer_close(&t);
    avt_free(&m);
    free(tr);
    free(va);
    free(te);
    free(dir);
    return stopped ? 130 : 0;
}
