// avt table: the paper's comparison grid {scratch, pretrained} x label fractions x seeds x folds, and its table
// (finetune/table.h). This file has the flags and the wiring.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "finetune/table.h"
#include "tools/cli.h"

static const char *HELP =
    "usage: avt table --data SHARDS/ --target COLS --pretrained W.safetensors --out runs/T [options]\n"
    "       mpirun -np N avt table ...        (the runs are dealt over the ranks)\n"
    "\n"
    "Runs the paper's comparison (docs/protocols.md): the same model fine-tuned from scratch and from the\n"
    "pretrained checkpoint, with each fraction of the training labels, for each seed, on the same folds. Every\n"
    "cell is an avt finetune run in runs/T/<init>-f<fraction>-s<seed>/: a stopped table continues where it\n"
    "stopped when run again, and a finished one renders at once. Writes runs/T/table.md, table.csv, table.png:\n"
    "mean ± std over folds x seeds, the gain pretrained - scratch with its paired 95 % interval, and the gain the\n"
    "paper's abstract claims.\n"
    "\n"
    "  --pretrained W      the pretrained checkpoint (avt pretrain's model.safetensors, or base.pt converted)\n"
    "  --fractions F,...   fractions of the training labels (default 1,0.1)\n"
    "  --seeds N           seeds per cell: --seed, --seed + 1, ... (default 3)\n"
    "  --fold I            run fold I of every cell only (Slurm job arrays: tools/table.sbatch)\n"
    "  --threads N         CPU threads per rank (default: all cores)\n"
    CLI_FINETUNE_HELP
    "                      (--config defaults to the pretrained checkpoint's: the scratch cells train the same\n"
    "                      architecture)\n"
    CLI_DEVICE_HELP;

static int parse_fractions(const char *v, double *f) {
    int n = 0;
    for (const char *p = v; *p;) {
        char *end;
        double x = strtod(p, &end);
        if (end == p || !(x > 0.0 && x <= 1.0) || n == TABLE_MAX_FRACTIONS)
            avt_die("--fractions '%s': up to %d numbers in (0, 1], comma-separated", v, TABLE_MAX_FRACTIONS);
        f[n++] = x;
        p = *end == ',' ? end + 1 : end;
        if (*end && *end != ',') avt_die("--fractions '%s': up to %d numbers in (0, 1], comma-separated", v,
                                         TABLE_MAX_FRACTIONS);
    }
    if (n == 0) avt_die("--fractions: give at least one fraction");
    return n;
}

int cmd_table(int argc, char **argv) {
    TableSpec t = {.base = ft_defaults(), .fractions = {1.0, 0.1}, .n_fractions = 2, .seeds = 3};
    const char *out = NULL, *device = "cpu", *pretrained = NULL;
    int threads = 0, fold = -1, config_given = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (cli_help(a)) {
            fputs(HELP, stdout);
            return 0;
        } else if (cli_is(a, "--out")) out = cli_value(argc, argv, &i);
        else if (cli_is(a, "--pretrained")) pretrained = cli_value(argc, argv, &i);
        else if (cli_is(a, "--fractions")) t.n_fractions = parse_fractions(cli_value(argc, argv, &i), t.fractions);
        else if (cli_is(a, "--seeds")) t.seeds = cli_int(a, cli_value(argc, argv, &i), 1, 1000);
        else if (cli_is(a, "--fold")) fold = cli_int(a, cli_value(argc, argv, &i), 0, 1000);
        else if (cli_is(a, "--threads")) threads = cli_int(a, cli_value(argc, argv, &i), 1, 4096);
        else if (cli_is(a, "--weights")) avt_die("table: use --pretrained W (the table also trains from scratch)");
        else if (cli_is(a, "--freeze")) avt_die("table: --freeze would train no upstream from scratch; use avt finetune");
        else if (cli_finetune_flag(argc, argv, &i, &t.base)) config_given |= strncmp(a, "--config", 8) == 0;
        else if (!cli_device_flag(argc, argv, &i, &device)) cli_unknown("table", a);
    }
    if (!out) avt_die("table: --out is required (see avt table --help)");
    if (!pretrained) avt_die("table: --pretrained is required (see avt table --help)");
    if (!t.base.data[0]) avt_die("table: --data is required (see avt table --help)");
    if (!t.base.target[0]) avt_die("table: --target is required (see avt table --help)");
    if (strlen(out) >= sizeof t.out || strlen(pretrained) >= sizeof t.pretrained)
        avt_die("table: --out and --pretrained must be shorter than %zu bytes", sizeof t.out);
    memcpy(t.out, out, strlen(out) + 1);
    memcpy(t.pretrained, pretrained, strlen(pretrained) + 1);
    AvtModel pre;
    AvtErr err;
    if (avt_load(&pre, pretrained, &err)) avt_die("%s", err.msg);
    if (!config_given) t.base.cfg = pre.cfg;
    t.base.cfg.n_out = 0;
    avt_free(&pre);
    Dist d;
    dist_init(&d);
    cli_set_threads(threads);
    const Backend *be = cli_backend(device);
    int rc = table_run(&t, fold, &d, be);
    if (rc == 0 && d.rank == 0) {
        char *md = asprintf_check("%s/table.md", out);
        char *text = avt_read_file(md, NULL, &err);
        if (text) fputs(text, stdout);
        free(text);
        free(md);
    }
    dist_finalize(&d);
    return rc;
}
