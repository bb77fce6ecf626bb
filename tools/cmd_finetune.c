// avt finetune: fine-tune and evaluate under a group K-fold protocol (finetune/finetune.h, docs/protocols.md). This
// file has the flags (shared with avt table), the dealing of folds over MPI ranks and the closing summary line.
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "finetune/finetune.h"
#include "tools/cli.h"

static const char *HELP =
    "usage: avt finetune --data SHARDS/ --target COLS --out runs/NAME [--weights W.safetensors | --config NAME]\n"
    "                    [options]\n"
    "       mpirun -np N avt finetune ...     (the folds are dealt over the ranks)\n"
    "\n"
    "Fine-tunes the model on the labels of a corpus store (SHARDS/labels.csv, written by avt prepare) and tests\n"
    "it under group K-fold cross-validation (docs/protocols.md): every clip is tested once, by a model that never\n"
    "saw its group; each fold keeps the epoch with the best validation metric, measured on groups held out of its\n"
    "training side, and reads its test clips once, at the end. The head (2d -> 16 -> ReLU -> outputs) reads each\n"
    "clip's last valid step. Writes runs/NAME/split.csv, fold-I/{log.csv, curve.png, predictions.csv,\n"
    "metrics.json, model.safetensors}, and metrics.json, summary.md (+ confusion.png) over the folds.\n"
    "\n"
    CLI_FINETUNE_HELP
    "  --fold I            run fold I only (0-based; Slurm job arrays); the summary is written once all are done\n"
    "  --resume            continue the run in --out with its saved settings (the flags above are ignored)\n"
    "  --max-steps N       stop after N updates in this invocation, with a checkpoint (--resume continues)\n"
    "  --threads N         CPU threads (default: all cores)\n"
    CLI_DEVICE_HELP
    "\n"
    "Ctrl-C (SIGINT) or SIGTERM finishes the current update, writes a checkpoint and exits with status 130;\n"
    "--resume continues exactly. Finished folds are never run again.\n";

// A text setting; one line and exit when it does not fit.
static void set_text(char *dst, size_t n, const char *flag, const char *v) {
    if (strlen(v) >= n) avt_die("%s: '%.40s...' is longer than %zu bytes", flag, v, n - 1);
    memcpy(dst, v, strlen(v) + 1);
}

int cli_finetune_flag(int argc, char **argv, int *i, FtSettings *s) {
    const char *a = argv[*i];
    if (cli_is(a, "--data")) set_text(s->data, sizeof s->data, a, cli_value(argc, argv, i));
    else if (cli_is(a, "--target")) set_text(s->target, sizeof s->target, a, cli_value(argc, argv, i));
    else if (cli_is(a, "--group-by")) set_text(s->group_by, sizeof s->group_by, a, cli_value(argc, argv, i));
    else if (cli_is(a, "--weights")) set_text(s->weights, sizeof s->weights, a, cli_value(argc, argv, i));
    else if (cli_is(a, "--task")) {
        const char *v = cli_value(argc, argv, i);
        if (cli_is(v, "classes")) s->kind = TARGET_CLASSES;
        else if (cli_is(v, "values")) s->kind = TARGET_VALUES;
        else if (cli_is(v, "auto")) s->kind = TARGET_AUTO;
        else avt_die("--task: '%s' is not classes, values or auto", v);
    } else if (cli_is(a, "--folds")) s->folds = cli_int(a, cli_value(argc, argv, i), 2, 1000);
    else if (cli_is(a, "--val-groups")) s->val_groups = cli_int(a, cli_value(argc, argv, i), 1, 1 << 20);
    else if (cli_is(a, "--train-fraction")) s->fraction = cli_real(a, cli_value(argc, argv, i), 1e-6, 1.0);
    else if (cli_is(a, "--split-seed")) s->split_seed = cli_u64(a, cli_value(argc, argv, i));
    else if (cli_is(a, "--freeze")) s->freeze = 1;
    else if (cli_is(a, "--loss")) {
        const char *v = cli_value(argc, argv, i);
        if (cli_is(v, "ce")) s->loss = FT_LOSS_CE;
        else if (cli_is(v, "mse")) s->loss = FT_LOSS_MSE;
        else if (cli_is(v, "ccc")) s->loss = FT_LOSS_CCC;
        else avt_die("--loss: '%s' is not ce, mse or ccc", v);
    } else if (cli_is(a, "--epochs")) s->epochs = cli_int(a, cli_value(argc, argv, i), 1, 1 << 20);
    else if (cli_is(a, "--batch")) s->batch = cli_int(a, cli_value(argc, argv, i), 1, 1 << 16);
    else if (cli_is(a, "--seq")) s->seq = cli_int(a, cli_value(argc, argv, i), 1, 1024);
    else if (cli_is(a, "--lr")) s->lr = cli_real(a, cli_value(argc, argv, i), 0.0, 1.0);
    else if (cli_is(a, "--warmup")) s->warmup = cli_real(a, cli_value(argc, argv, i), 1e-9, 1.0 - 1e-9);
    else if (cli_is(a, "--weight-decay")) s->weight_decay = cli_real(a, cli_value(argc, argv, i), 0.0, 1.0);
    else if (cli_is(a, "--clip")) s->clip = cli_real(a, cli_value(argc, argv, i), 1e-9, 1e9);
    else if (cli_is(a, "--seed")) s->seed = cli_u64(a, cli_value(argc, argv, i));
    else if (!cli_config_flag(argc, argv, i, &s->cfg)) return 0;
    return 1;
}

// The closing line: each metric's mean +- std over the folds, from runs/NAME/metrics.json.
static void print_summary(const char *out) {
    char *p = asprintf_check("%s/metrics.json", out);
    AvtErr err;
    cJSON *j = ft_read_json(p, &err);
    if (!j) avt_die("%s", err.msg);
    const cJSON *mean = cJSON_GetObjectItem(j, "mean"), *sd = cJSON_GetObjectItem(j, "std"), *m;
    printf("%s:", out);
    cJSON_ArrayForEach(m, mean) printf("  %s %.4f ± %.4f", m->string, m->valuedouble,
                                       cJSON_GetObjectItem(sd, m->string)->valuedouble);
    printf("\n(per fold: %s/summary.md)\n", out);
    cJSON_Delete(j);
    free(p);
}

int cmd_finetune(int argc, char **argv) {
    FtSettings s = ft_defaults();
    const char *out = NULL, *device = "cpu";
    int resume = 0, threads = 0, fold = -1;
    long max_steps = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (cli_help(a)) {
            fputs(HELP, stdout);
            return 0;
        } else if (cli_is(a, "--out")) out = cli_value(argc, argv, &i);
        else if (cli_is(a, "--resume")) resume = 1;
        else if (cli_is(a, "--fold")) fold = cli_int(a, cli_value(argc, argv, &i), 0, 1000);
        else if (cli_is(a, "--max-steps")) max_steps = cli_int(a, cli_value(argc, argv, &i), 1, 1 << 30);
        else if (cli_is(a, "--threads")) threads = cli_int(a, cli_value(argc, argv, &i), 1, 4096);
        else if (!cli_finetune_flag(argc, argv, &i, &s) && !cli_device_flag(argc, argv, &i, &device))
            cli_unknown("finetune", a);
    }
    if (!out) avt_die("finetune: --out is required (see avt finetune --help)");
    char *settings = asprintf_check("%s/settings.json", out);
    AvtErr err;
    if (resume) {
        if (ft_settings_read(&s, settings, &err)) avt_die("--resume: %s", err.msg);
    } else {
        if (!s.data[0]) avt_die("finetune: --data is required (see avt finetune --help)");
        if (!s.target[0]) avt_die("finetune: --target is required (see avt finetune --help)");
        if (access(settings, F_OK) == 0)
            avt_die("%s: already holds a fine-tuning run: --resume continues it, or choose another --out", out);
    }
    free(settings);
    if (fold >= s.folds) avt_die("--fold %d: the run has %d folds (0 to %d)", fold, s.folds, s.folds - 1);
    Dist d;
    dist_init(&d);
    cli_set_threads(threads);
    const Backend *be = cli_backend(device);
    FtRun *r;
    if (ft_open(&r, &s, out, &err)) avt_die("%s", err.msg);
    if (d.rank == 0) {
        cli_make_dir(out);
        if (ft_write_plan(r, &err)) avt_die("%s", err.msg);
    }
    dist_barrier(&d);

    // This rank's folds: fold k goes to rank k mod world.
    FtProgress p = {0};
    p.t0 = avt_now();
    p.tty = isatty(2);
    p.max_updates = max_steps;
    int todo = 0;
    for (int k = 0; k < ft_folds(r); k++)
        if (k % d.world == d.rank && (fold < 0 || k == fold) && !ft_fold_done(r, k)) {
            p.total += ft_fold_updates(r, k);
            todo++;
        }
    if (d.rank == 0)
        fprintf(stderr, "avt finetune: %s, %d folds (%d to run here of %d rank%s), %ld updates on rank 0\n", be->name,
                ft_folds(r), todo, d.world, d.world > 1 ? "s" : "", p.total);
    int rc = 0;
    for (int k = 0; k < ft_folds(r) && rc == 0; k++)
        if (k % d.world == d.rank && (fold < 0 || k == fold) && !ft_fold_done(r, k)) rc = ft_fold_run(r, k, be, &p);
    ft_close(r);
    double stop = rc;
    dist_allreduce_sum_double(&d, &stop, 1);
    if (stop == 0 && d.rank == 0) {
        int done = ft_summarize(out, &err);
        if (done < 0) avt_die("%s", err.msg);
        if (done) print_summary(out);
        else fprintf(stderr, "avt finetune: fold %d finished; the summary comes once every fold is\n", fold);
    }
    const int limited = max_steps > 0 && p.run_updates >= max_steps;
    if (limited) fprintf(stderr, "avt finetune: stopped after --max-steps %ld updates: --resume continues\n", max_steps);
    dist_finalize(&d);
    return stop != 0 && !limited ? 130 : 0;
}
