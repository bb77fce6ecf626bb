// avt pretrain: masked-frame pretraining on a corpus store (model-spec §3), on one process or data parallel over
// MPI ranks. A step: the loader's masked batch -> avt_pretrain_loss -> backward -> (sum over ranks) -> BertAdam.
// With several ranks avt_die ends the whole job (train/dist.c installs the hook), so errors here just die.
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "data/corpus/loader.h"
#include "data/corpus/store.h"
#include "train/checkpoint.h"
#include "train/dist.h"
#include "train/grad_sync.h"
#include "train/optim.h"
#include "tools/cli.h"

static const char *HELP =
    "usage: avt pretrain --data SHARDS/ --out runs/NAME [--config base|large|tiny|FILE.json] [options]\n"
    "       mpirun -np N avt pretrain ...      (data parallel: each rank takes 1/N of every batch)\n"
    "\n"
    "Pretrains the model with the paper's masked-frame objective (model-spec §3): sequences of --seq steps\n"
    "(right zero-padding, truncation), span masking regenerated every epoch (80/10/10 zero/random frame/\n"
    "unchanged, the same steps in both modalities), L1 on the masked steps, BertAdam with the warmup_linear\n"
    "schedule. The run folder gets log.csv, loss.png (gnuplot) and checkpoints ckpt-<step>/ (model.safetensors\n"
    "with the PyTorch key names + state.safetensors, written atomically, DONE marker last).\n"
    "\n"
    "  --data DIR          corpus store written by avt prepare\n"
    "  --out DIR           run folder (created); with --resume, continue its newest complete checkpoint\n"
    "  --resume            continue the run's newest complete checkpoint with the run's saved settings (config,\n"
    "                      schedule, optimiser, batch, seed, split: those flags are ignored with --resume)\n"
    CLI_CONFIG_HELP
    "  --epochs N          passes over the training split (default 40)\n"
    "  --batch N           global batch, sum over ranks (default 64)\n"
    "  --seq T             sequence length (default 100)\n"
    "  --lr X              peak learning rate (default 1e-4)\n"
    "  --warmup X          warmup fraction of the updates (default 0.1)\n"
    "  --weight-decay X    decoupled weight decay (default 0.01)\n"
    "  --clip X            global gradient-norm clip (default 1.0)\n"
    "  --clip-tensor X     BertAdam's per-tensor gradient-norm clip (default 1.0)\n"
    "  --eps X             BertAdam's epsilon, added to sqrt(v) (default 1e-6)\n"
    "  --beta1 X, --beta2 X  moment decay rates (default 0.9, 0.999)\n"
    "  --val X             fraction of the speakers held out for validation (default 0.05)\n"
    "  --val-every N       validation loss (and a checkpoint) every N steps (default 1000; also at step 0)\n"
    "  --keep K            checkpoints kept (default 3)\n"
    "  --max-steps N       stop after N updates in this invocation (the schedule still spans all epochs)\n"
    "  --log-every N       progress lines every N steps when stderr is not a terminal (default 10)\n"
    "  --seed S            initialisation, dropout, shuffling and masking (default 1)\n"
    "  --bucket-mb X       data parallel: gradients are summed over the ranks in buckets of X MB, each started\n"
    "                      as soon as the backward has finished it (default 4)\n"
    "  --threads N         CPU threads per rank (default: all cores)\n"
    CLI_DEVICE_HELP
    "\n"
    "Ctrl-C (SIGINT) or SIGTERM finishes the current step, writes a checkpoint and exits with status 130.\n";

// Settings that define a run; saved in every checkpoint and restored by --resume.
typedef struct {
    AvtConfig cfg;
    int epochs, batch, seq, val_every;
    double lr, warmup, weight_decay, clip, clip_tensor, eps, beta1, beta2, val;
    uint64_t seed;
} RunSettings;

#define SETTING_INT(X) X(epochs) X(batch) X(seq) X(val_every)
#define SETTING_REAL(X) X(lr) X(warmup) X(weight_decay) X(clip) X(clip_tensor) X(eps) X(beta1) X(beta2) X(val)

static void meta_put(CkptMeta *meta, const char *key, const char *fmt, ...) AVT_PRINTF(3, 4);
static void meta_put(CkptMeta *meta, const char *key, const char *fmt, ...) {
    char v[64];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(v, sizeof v, fmt, ap);
    va_end(ap);
    AvtErr err;
    if (ckpt_meta_set(meta, key, v, &err)) avt_fatal("%s", err.msg);
}

static const char *need_meta(const SafeTensors *st, const char *key) {
    const char *v = st_meta(st, key);
    if (!v) avt_die("%s: the training state lacks '%s' (not written by avt pretrain?)", st->path, key);
    return v;
}

static void settings_save(CkptMeta *meta, const RunSettings *s, LoaderState next) {
#define PUT_INT(f) meta_put(meta, "run." #f, "%d", s->f);
#define PUT_REAL(f) meta_put(meta, "run." #f, "%.17g", s->f);
    SETTING_INT(PUT_INT)
    SETTING_REAL(PUT_REAL)
    meta_put(meta, "run.seed", "%llu", (unsigned long long)s->seed);
    meta_put(meta, "run.loader_epoch", "%u", next.epoch);
    meta_put(meta, "run.loader_batch", "%llu", (unsigned long long)next.batch);
}

// The run settings and loader position saved with a checkpoint (the metadata of its state.safetensors).
static void settings_load(RunSettings *s, LoaderState *next, const char *ckpt) {
    char path[4200];
    snprintf(path, sizeof path, "%s/state.safetensors", ckpt);
    SafeTensors st;
    AvtErr err;
    if (st_open(&st, path, &err)) avt_die("%s", err.msg);
#define NEED(key) need_meta(&st, key)
#define GET_INT(f) s->f = atoi(NEED("run." #f));
#define GET_REAL(f) s->f = strtod(NEED("run." #f), NULL);
    SETTING_INT(GET_INT)
    SETTING_REAL(GET_REAL)
    s->seed = strtoull(NEED("run.seed"), NULL, 10);
    next->seed = s->seed;
    next->epoch = (uint32_t)strtoul(NEED("run.loader_epoch"), NULL, 10);
    next->batch = strtoull(NEED("run.loader_batch"), NULL, 10);
#undef NEED
    st_close(&st);
}

// ---- the corpus store as the loader's utterance source ----
static int src_len(void *ctx, size_t i) { return store_len(ctx, i); }
static int src_read(void *ctx, size_t i, int t0, int n, float *audio, float *video, AvtErr *err) {
    return store_read(ctx, i, t0, n, audio, video, err);
}

// ---- one rank's graphs ----
typedef struct {
    Graph g;
    int B, T;
    AvtModel *m;
} Step;

static Tensor *step_loss(Step *s, const LoaderBatch *b) {
    const AvtConfig *c = &s->m->cfg;
    int sa[3] = {s->B, s->T, c->d_a}, sv[3] = {s->B, s->T, c->d_v};
    Tensor *out_a, *out_v;
    return avt_pretrain_loss(&s->g, s->m, graph_input(&s->g, b ? b->x_a : NULL, 3, sa),
                             graph_input(&s->g, b ? b->x_v : NULL, 3, sv), b ? b->target_a : NULL,
                             b ? b->target_v : NULL, b ? b->mask : NULL, &out_a, &out_v);
}

static void step_open(Step *s, AvtModel *m, const Backend *be, int B, int T, int training, uint64_t seed) {
    memset(s, 0, sizeof *s);
    s->m = m, s->B = B, s->T = T;
    graph_init(&s->g, 4096, be);
    s->g.training = training;
    s->g.no_grad = !training;
    s->g.seed = seed;
    graph_plan_begin(&s->g);
    Tensor *loss = step_loss(s, NULL);
    if (training) graph_backward(&s->g, loss);
    graph_plan_end(&s->g);
}

static double masked_steps(const LoaderBatch *b) {
    double n = 0.0;
    for (size_t i = 0; i < (size_t)b->B * b->T; i++) n += b->mask[i] != 0.0f;
    return n;
}

// Mean validation loss over the whole validation split, with the masks of epoch 0 (the same every time).
static double validate(Dist *d, Step *val, UttSource src, const size_t *items, size_t n_items, int global_batch,
                       uint64_t seed) {
    Loader L;
    AvtErr err;
    LoaderState st = {seed, 0, 0};
    if (loader_open(&L, src, items, n_items, global_batch, d->rank, d->world, val->T, 0, st, &err)) avt_die("%s", err.msg);
    double sum[2] = {0.0, 0.0}; // loss x masked steps, masked steps
    for (uint64_t i = 0; i < loader_batches_per_epoch(&L); i++) {
        const LoaderBatch *b;
        if (loader_next(&L, &b, &err)) avt_die("%s", err.msg);
        graph_reset(&val->g);
        float l = tensor_item(&val->g, step_loss(val, b));
        double n = masked_steps(b);
        sum[0] += (double)l * n;
        sum[1] += n;
    }
    loader_close(&L);
    dist_allreduce_sum_double(d, sum, 2);
    return sum[1] > 0 ? sum[0] / sum[1] : 0.0;
}

// ---- run folder: log.csv and loss.png ----
// The loss curve with gnuplot when it is installed (a note otherwise, once).
static void plot(const char *out) {
    static int warned;
    if (system("command -v gnuplot >/dev/null 2>&1") != 0) {
        if (!warned++) fprintf(stderr, "avt: gnuplot not found: no loss.png (apt-get install gnuplot-nox)\n");
        return;
    }
    char cmd[8192];
    snprintf(cmd, sizeof cmd,
             "gnuplot -e \"set terminal pngcairo size 900,560; set output '%s/loss.png.tmp'; "
             "set datafile separator ','; set key autotitle columnhead; set xlabel 'step'; "
             "set ylabel 'L1 loss (masked steps)'; set grid; set title 'avt pretrain'; "
             "plot '%s/log.csv' using 1:3 with lines lw 1.5 title 'train', "
             "'' using 1:(\\$7 > 0 ? \\$7 : 1/0) with linespoints lw 2 pt 7 title 'validation'\" 2>/dev/null "
             "&& mv '%s/loss.png.tmp' '%s/loss.png'",
             out, out, out, out);
    if (system(cmd) != 0 && !warned++) fprintf(stderr, "avt: gnuplot failed: no loss.png\n");
}

static volatile sig_atomic_t stop_requested;
static void on_signal(int sig) {
    (void)sig;
    stop_requested = 1;
}

static void save(Dist *d, const char *out, long step, const AvtModel *m, const Optimizer *o, const RunSettings *s,
                 LoaderState next, int keep) {
    dist_barrier(d); // every rank has finished the step being saved
    if (d->rank == 0) {
        CkptMeta meta = {0};
        settings_save(&meta, s, next);
        AvtErr err;
        if (ckpt_save(out, step, m, o, &meta, keep, &err)) avt_die("%s", err.msg);
    }
    dist_barrier(d);
}

static void fmt_eta(char *buf, size_t len, double s) {
    long t = (long)(s + 0.5);
    snprintf(buf, len, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
}

int cmd_pretrain(int argc, char **argv) {
    RunSettings s = {AVT_BASE, 40, 64, 100, 1000, 1e-4, 0.1, 0.01, 1.0, 1.0, 1e-6, 0.9, 0.999, 0.05, 1};
    const char *data = NULL, *out = NULL, *device = "cpu";
    int resume = 0, keep = 3, threads = 0, log_every = 10;
    double bucket_mb = 4.0;
    long max_steps = -1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (cli_help(a)) {
            fputs(HELP, stdout);
            return 0;
        } else if (cli_is(a, "--data")) data = cli_value(argc, argv, &i);
        else if (cli_is(a, "--out")) out = cli_value(argc, argv, &i);
        else if (cli_is(a, "--resume")) resume = 1;
        else if (cli_is(a, "--epochs")) s.epochs = cli_int(a, cli_value(argc, argv, &i), 1, 1 << 20);
        else if (cli_is(a, "--batch")) s.batch = cli_int(a, cli_value(argc, argv, &i), 1, 1 << 20);
        else if (cli_is(a, "--seq")) s.seq = cli_int(a, cli_value(argc, argv, &i), 1, 1024);
        else if (cli_is(a, "--lr")) s.lr = cli_real(a, cli_value(argc, argv, &i), 0.0, 1.0);
        else if (cli_is(a, "--warmup")) s.warmup = cli_real(a, cli_value(argc, argv, &i), 1e-9, 1.0 - 1e-9);
        else if (cli_is(a, "--weight-decay")) s.weight_decay = cli_real(a, cli_value(argc, argv, &i), 0.0, 1.0);
        else if (cli_is(a, "--clip")) s.clip = cli_real(a, cli_value(argc, argv, &i), 1e-9, 1e9);
        else if (cli_is(a, "--clip-tensor")) s.clip_tensor = cli_real(a, cli_value(argc, argv, &i), 1e-9, 1e9);
        else if (cli_is(a, "--eps")) s.eps = cli_real(a, cli_value(argc, argv, &i), 0.0, 1.0);
        else if (cli_is(a, "--beta1")) s.beta1 = cli_real(a, cli_value(argc, argv, &i), 0.0, 1.0 - 1e-9);
        else if (cli_is(a, "--beta2")) s.beta2 = cli_real(a, cli_value(argc, argv, &i), 0.0, 1.0 - 1e-9);
        else if (cli_is(a, "--val")) s.val = cli_real(a, cli_value(argc, argv, &i), 0.0, 0.9);
        else if (cli_is(a, "--val-every")) s.val_every = cli_int(a, cli_value(argc, argv, &i), 1, 1 << 30);
        else if (cli_is(a, "--keep")) keep = cli_int(a, cli_value(argc, argv, &i), 1, 1 << 20);
        else if (cli_is(a, "--max-steps")) max_steps = cli_int(a, cli_value(argc, argv, &i), 0, 1 << 30);
        else if (cli_is(a, "--log-every")) log_every = cli_int(a, cli_value(argc, argv, &i), 1, 1 << 30);
        else if (cli_is(a, "--seed")) s.seed = cli_u64(a, cli_value(argc, argv, &i));
        else if (cli_is(a, "--threads")) threads = cli_int(a, cli_value(argc, argv, &i), 1, 4096);
        else if (cli_is(a, "--bucket-mb")) bucket_mb = cli_real(a, cli_value(argc, argv, &i), 1e-6, 1e6);
        else if (!cli_config_flag(argc, argv, &i, &s.cfg) && !cli_device_flag(argc, argv, &i, &device))
            cli_unknown("pretrain", a);
    }
    if (!data) avt_die("pretrain: --data is required (see avt pretrain --help)");
    if (!out) avt_die("pretrain: --out is required (see avt pretrain --help)");
    Dist d;
    dist_init(&d);
    cli_set_threads(threads);
    const Backend *be = cli_backend(device);
    if (d.rank == 0) cli_make_dir(out);
    dist_barrier(&d);

    // The run: fresh, or the newest complete checkpoint's settings, weights and optimiser state.
    AvtErr err;
    char ckpt[4096] = "";
    LoaderState next = {s.seed, 0, 0};
    AvtModel m;
    int found = resume ? ckpt_latest(out, ckpt, sizeof ckpt, &err) : 0;
    if (found < 0) avt_die("%s", err.msg);
    if (resume && !found) avt_die("%s: --resume: no complete checkpoint in the run folder", out);
    if (found) {
        char weights[4200];
        snprintf(weights, sizeof weights, "%s/model.safetensors", ckpt);
        if (avt_load(&m, weights, &err)) avt_die("%s", err.msg);
        s.cfg = m.cfg;
    } else {
        avt_init(&m, s.cfg, s.seed);
    }
    params_to(&m.params, be);

    Store *store;
    if (store_open(&store, data, &err)) avt_die("%s", err.msg);
    if (store_d_a(store) != s.cfg.d_a || store_d_v(store) != s.cfg.d_v)
        avt_die("%s: features are %d + %d wide, the model takes %d + %d", data, store_d_a(store), store_d_v(store),
                s.cfg.d_a, s.cfg.d_v);
    UttSource src = {store, store_d_a(store), store_d_v(store), src_len, src_read};

    if (found) settings_load(&s, &next, ckpt);
    size_t *tr, *va, n_tr, n_va;
    store_split(store, s.val, s.seed, &tr, &n_tr, &va, &n_va);
    if (s.batch % d.world) avt_die("--batch %d: not divisible by the %d ranks", s.batch, d.world);
    if (n_tr < (size_t)s.batch) avt_die("%s: %zu training utterances, fewer than one batch of %d", data, n_tr, s.batch);
    Loader train;
    if (loader_open(&train, src, tr, n_tr, s.batch, d.rank, d.world, s.seq, 1, next, &err)) avt_die("%s", err.msg);
    BertAdamHyper h = {s.beta1, s.beta2, (float)s.eps, (float)s.weight_decay, (float)s.clip, (float)s.clip_tensor};
    Optimizer o;
    optim_init(&o, &m.params, h, (float)s.lr, s.warmup, (long)s.epochs * (long)loader_batches_per_epoch(&train));
    if (found && ckpt_load(ckpt, &m, &o, NULL, &err)) avt_die("%s", err.msg);
    // Validation batches: at most the training batch, a multiple of the ranks, every held-out utterance used.
    int val_batch = n_va < (size_t)s.batch ? (int)(n_va / (size_t)d.world) * d.world : s.batch;
    if (s.val > 0 && val_batch == 0)
        avt_die("%s: the validation split has %zu utterances, fewer than the %d ranks (raise --val)", data, n_va,
                d.world);

    GradSync sync;
    grad_sync_init(&sync, &d, be, &m.params, (size_t)(bucket_mb * 1048576.0));
    Step step, val;
    step_open(&step, &m, be, s.batch / d.world, s.seq, 1, s.seed);
    if (val_batch) step_open(&val, &m, be, val_batch / d.world, s.seq, 0, s.seed);

    char csv[4200];
    snprintf(csv, sizeof csv, "%s/log.csv", out);
    FILE *log = NULL;
    if (d.rank == 0) {
        int fresh = !found || access(csv, F_OK) != 0;
        log = fopen_check(csv, fresh ? "w" : "a");
        if (fresh) fprintf(log, "step,epoch,loss,lr,grad_norm,ms_per_step,val_loss\n");
        fprintf(stderr, "avt pretrain: %s, d %d, %d layers, %d heads, %d rank%s; %zu train / %zu validation "
                        "utterances (%u speakers); %ld updates (%d epochs x %llu batches of %d)%s\n",
                be->name, s.cfg.d, s.cfg.L, s.cfg.NH, d.world, d.world > 1 ? "s" : "",
                n_tr, n_va, store_n_speakers(store), o.t_total, s.epochs,
                (unsigned long long)loader_batches_per_epoch(&train), s.batch, found ? " (resumed)" : "");
        if (found) fprintf(stderr, "avt pretrain: resumed %s at update %ld\n", ckpt, o.step);
    }
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);

    int tty = isatty(2);
    double t_start = cli_now(), ms = 0.0;
    long done_here = 0;
    float loss_v = 0.0f, gnorm = 0.0f;
    while (o.step < o.t_total && (max_steps < 0 || done_here < max_steps)) {
        if (val_batch && o.step % s.val_every == 0 && !(found && done_here == 0)) {
            double vl = validate(&d, &val, src, va, n_va, val_batch, s.seed);
            if (log) {
                fprintf(log, "%ld,%u,,,,,%.6f\n", o.step, next.epoch, vl);
                fflush(log);
                fprintf(stderr, "%sstep %ld: validation loss %.4f\n", tty ? "\n" : "", o.step, vl);
                plot(out);
            }
            if (o.step > 0) save(&d, out, o.step, &m, &o, &s, next, keep);
        }
        double t0 = cli_now();
        const LoaderBatch *b;
        if (loader_next(&train, &b, &err)) avt_die("%s", err.msg);
        graph_reset(&step.g);
        step.g.step = (uint32_t)o.step;
        step.g.sample0 = (uint64_t)d.rank * (uint64_t)step.B;
        Tensor *loss = step_loss(&step, b);
        // The global batch's loss averages over all ranks' masked steps: weigh this rank's gradient by its share.
        double counts[3] = {masked_steps(b), 0.0, (double)stop_requested};
        params_zero_grad(&m.params);
        loss_v = tensor_item(&step.g, loss);
        counts[1] = (double)loss_v * counts[0];
        dist_allreduce_sum_double(&d, counts, 3);
        if (d.world > 1) grad_sync_begin(&sync, &step.g);
        graph_backward_seed(&step.g, loss, counts[0] > 0 ? (float)(masked_steps(b) / counts[0]) : 0.0f);
        if (d.world > 1) grad_sync_end(&sync, &step.g);
        float lr = optim_lr(&o);
        gnorm = optim_step(&o, &m.params);
        loss_v = counts[0] > 0 ? (float)(counts[1] / counts[0]) : 0.0f;
        next = loader_state(&train);
        done_here++;
        ms = 1e3 * (cli_now() - t0);
        if (!isfinite(loss_v)) avt_die("step %ld: the loss is not finite: training diverged (lower --lr)", o.step);
        if (log) {
            fprintf(log, "%ld,%u,%.6f,%.4e,%.4f,%.1f,\n", o.step, b->state.epoch, loss_v, lr, gnorm, ms);
            double el = cli_now() - t_start, per = el / (double)done_here;
            char eta[32];
            fmt_eta(eta, sizeof eta, per * (double)(o.t_total - o.step));
            if (tty || done_here % log_every == 0 || o.step == o.t_total)
                fprintf(stderr, "%sstep %ld/%ld  epoch %u  loss %.4f  lr %.2e  |g| %.3f  %.0f ms/step  %.1f utt/s  "
                                "ETA %s%s",
                        tty ? "\r" : "", o.step, o.t_total, b->state.epoch + 1, loss_v, lr, gnorm, ms,
                        (double)s.batch / per, eta, tty ? "   " : "\n");
        }
        if (counts[2] > 0) break; // some rank was asked to stop
    }
    if (tty && log) fputc('\n', stderr);
    int interrupted = o.step < o.t_total;
    if (o.step == o.t_total && val_batch) {
        double vl = validate(&d, &val, src, va, n_va, val_batch, s.seed);
        if (log) {
            fprintf(log, "%ld,%u,,,,,%.6f\n", o.step, next.epoch, vl);
            fprintf(stderr, "step %ld: validation loss %.4f\n", o.step, vl);
        }
    }
    if (log) fflush(log);
    if (done_here > 0) save(&d, out, o.step, &m, &o, &s, next, keep);
    if (log) {
        fclose_check(log, csv);
        plot(out);
        fprintf(stderr, "avt pretrain: %ld updates in %.1f s; checkpoint %s/ckpt-%09ld%s\n", done_here,
                cli_now() - t_start, out, o.step, interrupted ? " (stopped early: --resume continues)" : "");
    }
    if (val_batch) graph_free(&val.g);
    graph_free(&step.g);
    grad_sync_free(&sync);
    loader_close(&train);
    optim_free(&o);
    store_close(store);
    free(tr), free(va);
    avt_free(&m);
    dist_finalize(&d);
    return stop_requested ? 130 : 0;
}
