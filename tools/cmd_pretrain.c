// avt pretrain: masked-frame pretraining on a corpus store (docs/model.md §3), on one process or data parallel over
// MPI ranks. The trainer (train/trainer.h) owns the step and the cadence; this file has the flags, the run's saved
// settings, the wiring of the corpus loader to the trainer, the progress lines, log.csv and the plot.
// With several ranks avt_die ends the whole job (train/dist.c installs the hook), so errors here just die.
#include <stdarg.h>
#include <stdlib.h>
#include <unistd.h>
#include "data/corpus/loader.h"
#include "data/corpus/split.h"
#include "data/corpus/store.h"
#include "train/trainer.h"
#include "tools/cli.h"

static const char *HELP =
    "usage: avt pretrain --data SHARDS/ --out runs/NAME [--config base|large|tiny|FILE.json] [options]\n"
    "       mpirun -np N avt pretrain ...      (data parallel: each rank takes 1/N of every batch)\n"
    "\n"
    "Pretrains the model with the paper's masked-frame objective (docs/model.md §3): sequences of --seq steps\n"
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
    "  --val X             fraction of the utterances held out for validation (default 0.05), by whole speakers\n"
    "                      (at least one); a corpus of one speaker holds out utterances; 0: no validation\n"
    "  --val-every N       checkpoint and validation loss every N steps (default 1000; the loss also at step 0)\n"
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

// ---- the corpus as the trainer's batches ----
static int src_len(void *ctx, size_t i) { return store_len(ctx, i); }
static int src_read(void *ctx, size_t i, int t0, int n, float *audio, float *video, AvtErr *err) {
    return store_read(ctx, i, t0, n, audio, video, err);
}

// A loader handing out TrainBatches. Training opens it once; a validation pass opens it over the held-out items
// (unshuffled, the masks of epoch 0: the same batches every time) on the ranks below `world`.
typedef struct {
    Loader L;
    const LoaderBatch *last; // the batch handed out last
    UttSource src;           // validation passes: items, batches of global_batch over `world` ranks, T steps
    const size_t *items;
    size_t n_items;
    int global_batch, rank, world, T;
    uint64_t seed;
} Feed;

static int feed_next(void *ctx, TrainBatch *b, AvtErr *err) {
    Feed *f = ctx;
    if (loader_next(&f->L, &f->last, err)) return -1;
    const LoaderBatch *l = f->last;
    *b = (TrainBatch){.B = l->B, .T = l->T, .x_a = l->x_a, .x_v = l->x_v, .target_a = l->target_a,
                      .target_v = l->target_v, .mask = l->mask};
    return 0;
}

static long feed_begin(void *ctx, AvtErr *err) {
    Feed *f = ctx;
    if (f->rank >= f->world) return 0;
    LoaderState start = {f->seed, 0, 0};
    if (loader_open(&f->L, f->src, f->items, f->n_items, f->global_batch, f->rank, f->world, f->T, 0, start, err))
        return -1;
    return (long)loader_batches_per_epoch(&f->L);
}

static void feed_end(void *ctx) {
    Feed *f = ctx;
    if (f->rank < f->world) loader_close(&f->L);
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

static void fmt_eta(char *buf, size_t len, double s) {
    long t = (long)(s + 0.5);
    snprintf(buf, len, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
}

// ---- the trainer's hooks: checkpoint settings, progress lines and the log (rank 0 writes) ----
typedef struct {
    const RunSettings *s;
    const Feed *train;
    const char *out;
    FILE *log;     // rank 0's log.csv; NULL on the other ranks
    int log_every;
    int tty;       // stderr is a terminal: the progress line is redrawn in place
    int line_open; // a progress line without its newline is on the terminal
    double t_start;
} Run;

static void run_meta(void *ctx, CkptMeta *meta) {
    Run *r = ctx;
    settings_save(meta, r->s, loader_state(&r->train->L));
}

static void run_step(void *ctx, const Trainer *t, const TrainStats *st) {
    Run *r = ctx;
    if (!r->log) return;
    const uint32_t epoch = r->train->last->state.epoch;
    fprintf(r->log, "%ld,%u,%.6f,%.4e,%.4f,%.1f,\n", st->step, epoch, st->loss, st->lr, st->grad_norm, st->ms);
    if (!r->tty && t->done % r->log_every != 0 && st->step != t->o.t_total) return;
    double per = (avt_now() - r->t_start) / (double)t->done;
    char eta[32];
    fmt_eta(eta, sizeof eta, per * (double)(t->o.t_total - st->step));
    fprintf(stderr, "%sstep %ld/%ld  epoch %u  loss %.4f  lr %.2e  |g| %.3f  %.0f ms/step  %.1f utt/s  ETA %s%s",
            r->tty ? "\r" : "", st->step, t->o.t_total, epoch + 1, st->loss, st->lr, st->grad_norm, st->ms,
            (double)r->s->batch / per, eta, r->tty ? "   " : "\n");
    r->line_open = r->tty;
}

static void run_validated(void *ctx, const Trainer *t, double loss) {
    Run *r = ctx;
    if (!r->log) return;
    fprintf(r->log, "%ld,%u,,,,,%.6f\n", t->o.step, loader_state(&r->train->L).epoch, loss);
    fflush(r->log);
    fprintf(stderr, "%sstep %ld: validation loss %.4f\n", r->line_open ? "\n" : "", t->o.step, loss);
    r->line_open = 0;
    if (t->o.step < t->o.t_total) plot(r->out); // the end of the run plots anyway
}

// One line on what was held out for validation and what a validation pass reads (whole batches only).
static void print_split(const StoreSplit *sp, const Store *store, double val, int val_batch, int val_world,
                        int world) {
    if (sp->n_val == 0) {
        fprintf(stderr, "avt pretrain: no validation%s\n", val > 0 ? ": too few utterances to hold any out" : "");
        return;
    }
    if (sp->by_utterance)
        fprintf(stderr, "avt pretrain: validation: the corpus has one speaker: %zu of its utterances held out (not "
                        "speaker-independent)", sp->n_val);
    else
        fprintf(stderr, "avt pretrain: validation: %u of the %u speakers held out, %zu utterances", sp->val_speakers,
                store_n_speakers(store), sp->n_val);
    fprintf(stderr, "; a pass reads %zu in batches of %d", sp->n_val / (size_t)val_batch * (size_t)val_batch,
            val_batch);
    if (val_world < world) fprintf(stderr, " on %d of the %d ranks", val_world, world);
    fputc('\n', stderr);
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
    StoreSplit split;
    store_split(store, s.val, s.seed, &split);
    if (s.batch % d.world) avt_die("--batch %d: not divisible by the %d ranks", s.batch, d.world);
    if (split.n_train < (size_t)s.batch)
        avt_die("%s: %zu training utterances, fewer than one batch of %d", data, split.n_train, s.batch);
    Feed train = {0};
    if (loader_open(&train.L, src, split.train, split.n_train, s.batch, d.rank, d.world, s.seq, 1, next, &err))
        avt_die("%s", err.msg);
    // Validation batches: at most the training batch, a multiple of the validating ranks, which are all ranks
    // unless fewer utterances than ranks were held out (then the first ranks take one each).
    const int val_world = split.n_val < (size_t)d.world ? (int)split.n_val : d.world;
    const int val_batch = split.n_val == 0 ? 0
                          : split.n_val < (size_t)s.batch ? (int)(split.n_val / (size_t)val_world) * val_world
                                                          : s.batch;
    Feed val = {.src = src, .items = split.val, .n_items = split.n_val, .global_batch = val_batch, .rank = d.rank,
                .world = val_world, .T = s.seq, .seed = s.seed};

    char csv[4200];
    snprintf(csv, sizeof csv, "%s/log.csv", out);
    FILE *log = NULL;
    if (d.rank == 0) {
        int fresh = !found || access(csv, F_OK) != 0;
        log = fopen_check(csv, fresh ? "w" : "a");
        if (fresh) fprintf(log, "step,epoch,loss,lr,grad_norm,ms_per_step,val_loss\n");
    }

    TrainerConfig tc = {
        .rows = s.batch / d.world,
        .val_rows = d.rank < val_world ? val_batch / val_world : 0,
        .seq = s.seq,
        .seed = s.seed,
        .h = {s.beta1, s.beta2, (float)s.eps, (float)s.weight_decay, (float)s.clip, (float)s.clip_tensor},
        .lr = (float)s.lr,
        .warmup = s.warmup,
        .t_total = (long)s.epochs * (long)loader_batches_per_epoch(&train.L),
        .bucket_bytes = (size_t)(bucket_mb * 1048576.0),
        .run_dir = out,
        .every = s.val_every,
        .keep = keep,
        .max_steps = max_steps,
    };
    Trainer t;
    trainer_open(&t, &tc, &OBJECTIVE_MASKED_L1, &m, &d);
    if (found && trainer_resume(&t, ckpt, &err)) avt_die("%s", err.msg);

    if (log) {
        fprintf(stderr, "avt pretrain: %s, d %d, %d layers, %d heads, %d rank%s; %zu train / %zu validation "
                        "utterances (%u speaker%s); %ld updates (%d epochs x %llu batches of %d)%s\n",
                be->name, s.cfg.d, s.cfg.L, s.cfg.NH, d.world, d.world > 1 ? "s" : "", split.n_train, split.n_val,
                store_n_speakers(store), store_n_speakers(store) > 1 ? "s" : "", t.o.t_total, s.epochs,
                (unsigned long long)loader_batches_per_epoch(&train.L), s.batch, found ? " (resumed)" : "");
        print_split(&split, store, s.val, val_batch, val_world, d.world);
        if (found) fprintf(stderr, "avt pretrain: resumed %s at update %ld\n", ckpt, t.o.step);
    }

    Run run = {&s, &train, out, log, log_every, isatty(2), 0, avt_now()};
    BatchSource train_src = {&train, feed_next, NULL, NULL}, val_src = {&val, feed_next, feed_begin, feed_end};
    TrainerHooks hooks = {&run, run_meta, run_step, run_validated};
    trainer_run(&t, &train_src, val_batch ? &val_src : NULL, &hooks);

    if (run.line_open) fputc('\n', stderr);
    if (log) {
        fclose_check(log, csv);
        plot(out);
        fprintf(stderr, "avt pretrain: %ld updates in %.1f s; checkpoint %s/ckpt-%09ld%s\n", t.done,
                avt_now() - run.t_start, out, t.o.step,
                t.o.step < t.o.t_total ? " (stopped early: --resume continues)" : "");
    }
    const int rc = trainer_interrupted(&t) ? 130 : 0;
    trainer_close(&t);
    loader_close(&train.L);
    store_close(store);
    store_split_free(&split);
    avt_free(&m);
    dist_finalize(&d);
    return rc;
}
