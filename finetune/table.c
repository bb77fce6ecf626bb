// The grid of fine-tuning runs behind the paper's comparison, and its table (finetune/table.h).
#include "finetune/table.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "finetune/metrics.h"

enum { INIT_SCRATCH, INIT_PRETRAINED, N_INITS };
static const char *const INIT_NAMES[N_INITS] = {"scratch", "pretrained"};

// Cell c = (init, fraction, seed), in that nesting order.
static int n_cells(const TableSpec *t) { return N_INITS * t->n_fractions * t->seeds; }
static int cell_init(const TableSpec *t, int c) { return c / (t->n_fractions * t->seeds); }
static int cell_fraction(const TableSpec *t, int c) { return c / t->seeds % t->n_fractions; }
static int cell_seed(const TableSpec *t, int c) { return c % t->seeds; }

static char *cell_dir(const TableSpec *t, int c) {
    return asprintf_check("%s/%s-f%g-s%llu", t->out, INIT_NAMES[cell_init(t, c)], t->fractions[cell_fraction(t, c)],
                          (unsigned long long)(t->base.seed + (uint64_t)cell_seed(t, c)));
}

static FtSettings cell_settings(const TableSpec *t, int c) {
    FtSettings s = t->base;
    if (cell_init(t, c) == INIT_PRETRAINED) snprintf(s.weights, sizeof s.weights, "%s", t->pretrained);
    s.fraction = t->fractions[cell_fraction(t, c)];
    s.seed = t->base.seed + (uint64_t)cell_seed(t, c);
    return s;
}

static FtRun *cell_open(const TableSpec *t, int c) {
    FtSettings s = cell_settings(t, c);
    char *dir = cell_dir(t, c);
    FtRun *r;
    AvtErr err;
    if (ft_open(&r, &s, dir, &err)) avt_die("%s", err.msg);
    free(dir);
    return r;
}

int table_run(const TableSpec *t, int fold, Dist *d, const Backend *be) {
    const int C = n_cells(t), K = t->base.folds;
    if (fold >= K) avt_die("--fold %d: the table has %d folds (0 to %d)", fold, K, K - 1);
    AvtErr err;
    if (d->rank == 0) {
        if (mkdir(t->out, 0777) != 0 && errno != EEXIST) avt_die("%s: cannot create: %s", t->out, strerror(errno));
        for (int c = 0; c < C; c++) {
            char *dir = cell_dir(t, c);
            if (mkdir(dir, 0777) != 0 && errno != EEXIST) avt_die("%s: cannot create: %s", dir, strerror(errno));
            FtRun *r = cell_open(t, c);
            if (ft_write_plan(r, &err)) avt_die("%s", err.msg);
            ft_close(r);
            free(dir);
        }
    }
    dist_barrier(d);
    // The (cell, fold) pairs dealt over the ranks; the progress counts this rank's unfinished ones.
    FtProgress p = {0};
    p.t0 = avt_now();
    p.tty = isatty(2);
    int todo = 0;
    for (int u = 0; u < C * K; u++) {
        const int c = u / K, k = u % K;
        if (u % d->world != d->rank || (fold >= 0 && k != fold)) continue;
        FtRun *r = cell_open(t, c);
        if (!ft_fold_done(r, k)) {
            p.total += ft_fold_updates(r, k);
            todo++;
        }
        ft_close(r);
    }
    if (d->rank == 0)
        fprintf(stderr, "avt table: %d cells (%s) x %d folds; %d run%s left on rank 0 of %d\n", C,
                t->pretrained, K, todo, todo == 1 ? "" : "s", d->world);
    int rc = 0;
    for (int u = 0; u < C * K && rc == 0; u++) {
        const int c = u / K, k = u % K;
        if (u % d->world != d->rank || (fold >= 0 && k != fold)) continue;
        FtRun *r = cell_open(t, c);
        if (!ft_fold_done(r, k)) {
            char *dir = cell_dir(t, c);
            snprintf(p.prefix, sizeof p.prefix, "%s  ", strrchr(dir, '/') + 1);
            free(dir);
            rc = ft_fold_run(r, k, be, &p);
        }
        ft_close(r);
    }
    double stop = rc;
    dist_allreduce_sum_double(d, &stop, 1);
    if (stop != 0) return 130;
    dist_barrier(d);
    if (d->rank == 0) {
        int done = 1;
        for (int c = 0; c < C; c++) {
            char *dir = cell_dir(t, c);
            int s = ft_summarize(dir, &err);
            if (s < 0) avt_die("%s", err.msg);
            done &= s;
            free(dir);
        }
        int r = done ? table_render(t, &err) : 0;
        if (r < 0) avt_die("%s", err.msg);
        if (!r) fprintf(stderr, "avt table: some cells are not finished yet: no table (run the missing folds)\n");
    }
    return 0;
}

// ---- rendering ----
typedef struct {
    char name[64];      // metric key in the cells' metrics.json
    int percent;        // accuracy-like: shown in percentage points
} Metric;

typedef struct {
    const TableSpec *t;
    int K, n_metrics;
    Metric metric[16];
    double *v;          // (cells, metrics, K) fold values
    const char *target;
} Grid;

static double *val(const Grid *g, int c, int m) { return g->v + ((size_t)c * (size_t)g->n_metrics + (size_t)m) * (size_t)g->K; }

// The fold x seed values of (init, fraction, metric), in (seed, fold) order: pairs line up across inits.
static void pooled(const Grid *g, int init, int f, int m, double *out) {
    const TableSpec *t = g->t;
    for (int s = 0; s < t->seeds; s++) {
        int c = (init * t->n_fractions + f) * t->seeds + s;
        memcpy(out + (size_t)s * (size_t)g->K, val(g, c, m), (size_t)g->K * sizeof(double));
    }
}

// The abstract's claimed gains (docs/protocols.md, "What the paper claims"), for full and 10 % labels.
static const char *claimed(const Metric *m, double fraction) {
    const int acc = strcmp(m->name, "accuracy") == 0, ccc = strncmp(m->name, "ccc_", 4) == 0;
    if (fraction == 1.0) return acc ? "+5 to +7" : ccc ? "+0.03 to +0.09" : "-";
    if (fraction == 0.1) return acc ? ">= +10" : ccc ? ">= +0.1" : "-";
    return "-";
}

typedef struct {
    const Grid *g;
    int md; // 1: table.md, 0: table.csv
} RenderCtx;

static int write_table(FILE *f, void *ctx, AvtErr *err) {
    (void)err;
    const RenderCtx *rc = ctx;
    const Grid *g = rc->g;
    const TableSpec *t = g->t;
    const int n = t->seeds * g->K;
    double *a = malloc_check((size_t)n * sizeof *a), *b = malloc_check((size_t)n * sizeof *b);
    if (rc->md) {
        fprintf(f, "# avt table: %s\n\n", g->target);
        fprintf(f, "Fine-tuned from scratch and from `%s`; %d folds by `%s` x %d seed%s per cell; mean ± std over "
                   "folds x seeds; gain = pretrained - scratch with its paired 95 %% interval over (fold, seed). "
                   "Accuracy and UAR in percentage points.\n\n",
                t->pretrained, g->K, t->base.group_by, t->seeds, t->seeds == 1 ? "" : "s");
        fprintf(f, "| metric | labels | scratch | pretrained | gain [95 %% CI] | paper's claimed gain |\n");
        fprintf(f, "|---|---|---|---|---|---|\n");
    } else {
        fprintf(f, "metric,fraction,scratch_mean,scratch_std,pretrained_mean,pretrained_std,gain_mean,gain_lo,"
                   "gain_hi,n,claimed_gain\n");
    }
    for (int m = 0; m < g->n_metrics; m++)
        for (int fi = 0; fi < t->n_fractions; fi++) {
            pooled(g, INIT_SCRATCH, fi, m, a);
            pooled(g, INIT_PRETRAINED, fi, m, b);
            double ma, sa, mb, sb, gm, lo, hi;
            metrics_mean_std(a, n, &ma, &sa);
            metrics_mean_std(b, n, &mb, &sb);
            metrics_paired_ci95(b, a, n, &gm, &lo, &hi);
            const Metric *mt = &g->metric[m];
            const double k = mt->percent && rc->md ? 100.0 : 1.0;
            if (rc->md)
                fprintf(f, "| %s | %g %% | %.*f ± %.*f | %.*f ± %.*f | **%+.*f** [%+.*f, %+.*f] | %s |\n", mt->name,
                        100.0 * t->fractions[fi], mt->percent ? 1 : 3, k * ma, mt->percent ? 1 : 3, k * sa,
                        mt->percent ? 1 : 3, k * mb, mt->percent ? 1 : 3, k * sb, mt->percent ? 1 : 3, k * gm,
                        mt->percent ? 1 : 3, k * lo, mt->percent ? 1 : 3, k * hi, claimed(mt, t->fractions[fi]));
            else
                fprintf(f, "%s,%g,%.6f,%.6f,%.6f,%.6f,%.6f,%.6f,%.6f,%d,%s\n", mt->name, t->fractions[fi], ma, sa, mb,
                        sb, gm, lo, hi, n, claimed(mt, t->fractions[fi]));
        }
    free(a);
    free(b);
    return 0;
}

// table.png: per metric and fraction, the two inits' means as bars with their std as error bars.
static void plot_table(const Grid *g) {
    const TableSpec *t = g->t;
    const int n = t->seeds * g->K;
    char *data = asprintf_check("%s/table.dat", t->out), *png = asprintf_check("%s/table.png", t->out);
    FILE *f = fopen_check(data, "w");
    double *a = malloc_check((size_t)n * sizeof *a), *b = malloc_check((size_t)n * sizeof *b);
    for (int m = 0; m < g->n_metrics; m++)
        for (int fi = 0; fi < t->n_fractions; fi++) {
            double ma, sa, mb, sb;
            pooled(g, INIT_SCRATCH, fi, m, a);
            pooled(g, INIT_PRETRAINED, fi, m, b);
            metrics_mean_std(a, n, &ma, &sa);
            metrics_mean_std(b, n, &mb, &sb);
            fprintf(f, "\"%s %g%%\" %.6f %.6f %.6f %.6f\n", g->metric[m].name, 100.0 * t->fractions[fi], ma, sa, mb,
                    sb);
        }
    fclose_check(f, data);
    char *body = asprintf_check(
        "set title 'avt table: %s (mean and std over folds x seeds)'\nset style data histogram\n"
        "set style histogram errorbars gap 1 lw 1.5\nset style fill solid 0.7 border -1\nset grid ytics\n"
        "set yrange [0:*]\nset xtics rotate by -20\nset key top left\n"
        "plot '%s' using 2:3:xtic(1) title 'from scratch', '' using 4:5 title 'pretrained'",
        g->target, data);
    ft_plot(png, body);
    remove(data);
    free(a);
    free(b);
    free(body);
    free(data);
    free(png);
}

int table_render(const TableSpec *t, AvtErr *err) {
    const int C = n_cells(t);
    Grid g = {.t = t, .K = t->base.folds, .target = t->base.target};
    cJSON **cell = calloc_check((size_t)C, sizeof *cell);
    int rc = 1;
    for (int c = 0; c < C && rc == 1; c++) {
        char *dir = cell_dir(t, c), *p = asprintf_check("%s/metrics.json", dir);
        if (access(p, F_OK) != 0) rc = 0;
        else if (!(cell[c] = ft_read_json(p, err))) rc = -1;
        free(p);
        free(dir);
    }
    if (rc == 1) {
        // The metrics shown: accuracy and UAR for classes, every CCC for values (the cells share the target).
        const cJSON *m;
        cJSON_ArrayForEach(m, cJSON_GetObjectItem(cell[0], "mean")) {
            const int acc = !strcmp(m->string, "accuracy") || !strcmp(m->string, "uar");
            if ((acc || !strncmp(m->string, "ccc_", 4)) && g.n_metrics < 16) {
                snprintf(g.metric[g.n_metrics].name, sizeof g.metric[0].name, "%s", m->string);
                g.metric[g.n_metrics++].percent = acc;
            }
        }
        g.v = malloc_check((size_t)C * (size_t)g.n_metrics * (size_t)g.K * sizeof(double) + 1);
        for (int c = 0; c < C; c++) {
            const cJSON *folds = cJSON_GetObjectItem(cell[c], "folds");
            for (int mi = 0; mi < g.n_metrics; mi++)
                for (int k = 0; k < g.K; k++)
                    val(&g, c, mi)[k] = cJSON_GetObjectItem(cJSON_GetArrayItem(folds, k), g.metric[mi].name)->valuedouble;
        }
        char *md = asprintf_check("%s/table.md", t->out), *csv = asprintf_check("%s/table.csv", t->out);
        RenderCtx r_md = {&g, 1}, r_csv = {&g, 0};
        if (avt_write_atomic(md, write_table, &r_md, err) || avt_write_atomic(csv, write_table, &r_csv, err)) rc = -1;
        else plot_table(&g);
        free(md);
        free(csv);
        free(g.v);
    }
    for (int c = 0; c < C; c++) cJSON_Delete(cell[c]);
    free(cell);
    return rc;
}
