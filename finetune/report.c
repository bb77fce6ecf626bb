// What a fine-tuning run writes: split.csv, predictions.csv, metrics.json per fold and for the run, summary.md and
// the plots (finetune/report.h, finetune/finetune.h; the formulas are finetune/metrics.h).
#include "finetune/report.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "data/corpus/metadata.h"
#include "finetune/metrics.h"

// ---- JSON files and plots ----
static int write_text(FILE *f, void *ctx, AvtErr *err) {
    (void)err;
    fprintf(f, "%s\n", (const char *)ctx);
    return 0;
}

int ft_write_json(const char *path, const cJSON *j, AvtErr *err) {
    char *text = cJSON_Print(j);
    if (!text) avt_fatal("%s: out of memory", path);
    int rc = avt_write_atomic(path, write_text, text, err);
    free(text);
    return rc;
}

cJSON *ft_read_json(const char *path, AvtErr *err) {
    char *text = avt_read_file(path, NULL, err);
    if (!text) return NULL;
    cJSON *j = cJSON_Parse(text);
    free(text);
    if (!j) avt_err_set(err, "%s: not JSON", path);
    return j;
}

void ft_plot(const char *png, const char *body) {
    static int warned;
    if (system("command -v gnuplot >/dev/null 2>&1") != 0) {
        if (!warned++) fprintf(stderr, "avt: gnuplot not found: no plots (apt-get install gnuplot-nox)\n");
        return;
    }
    char *gp = asprintf_check("%s.gp.%ld", png, (long)getpid()), *tmp = asprintf_check("%s.tmp.%ld", png, (long)getpid());
    FILE *f = fopen_check(gp, "w");
    fprintf(f, "set terminal pngcairo size 900,560\nset output '%s'\n%s\n", tmp, body);
    fclose_check(f, gp);
    char *cmd = asprintf_check("gnuplot '%s' 2>/dev/null", gp);
    if (system(cmd) != 0 || rename(tmp, png) != 0) {
        if (!warned++) fprintf(stderr, "avt: gnuplot failed: no %s\n", png);
        remove(tmp);
    }
    remove(gp);
    free(cmd);
    free(gp);
    free(tmp);
}

void ft_plot_curve(const char *fold_dir, const Labels *L) {
    char *png = asprintf_check("%s/curve.png", fold_dir);
    char *body = asprintf_check(
        "set datafile separator ','\nset key autotitle columnhead\nset grid\nset xlabel 'epoch'\n"
        "set ylabel 'loss'\nset y2label 'validation %s'\nset y2tics\nset ytics nomirror\n"
        "set title 'avt finetune: %s'\n"
        "plot '%s/log.csv' using 1:3 with linespoints lw 2 title 'train loss', "
        "'' using 1:4 with linespoints lw 2 title 'validation loss', "
        "'' using 1:5 axes x1y2 with linespoints lw 2 dt 2 title 'validation %s'",
        L->kind == TARGET_CLASSES ? "accuracy" : "mean CCC", fold_dir, fold_dir,
        L->kind == TARGET_CLASSES ? "accuracy" : "mean CCC");
    ft_plot(png, body);
    free(body);
    free(png);
}

// ---- split.csv and predictions.csv ----
typedef struct {
    const Labels *L;
    const Folds *F;
} SplitCtx;

static int write_split(FILE *f, void *ctx, AvtErr *err) {
    (void)err;
    const SplitCtx *c = ctx;
    fprintf(f, "id,group,fold,role\n");
    for (int k = 0; k < c->F->K; k++)
        for (size_t j = 0; j < c->L->n; j++) {
            corpus_csv_field(f, c->L->id[j]);
            fputc(',', f);
            corpus_csv_field(f, c->L->group[j]);
            fprintf(f, ",%d,%s\n", k, fold_role_name((FoldRole)c->F->role[(size_t)k * c->F->n + j]));
        }
    return 0;
}

int ft_write_split(const char *path, const Labels *L, const Folds *F, AvtErr *err) {
    SplitCtx c = {L, F};
    return avt_write_atomic(path, write_split, &c, err);
}

// Softmax of one row of logits (n) into p, stable.
static void softmax(double *p, const float *z, int n) {
    double mx = z[0], sum = 0.0;
    for (int c = 1; c < n; c++) mx = fmax(mx, z[c]);
    for (int c = 0; c < n; c++) sum += p[c] = exp((double)z[c] - mx);
    for (int c = 0; c < n; c++) p[c] /= sum;
}

static int argmax(const float *z, int n) {
    int best = 0;
    for (int c = 1; c < n; c++)
        if (z[c] > z[best]) best = c;
    return best;
}

typedef struct {
    const Labels *L;
    int fold;
    const size_t *rows;
    size_t n;
    const float *out;
} PredCtx;

static int write_predictions(FILE *f, void *ctx, AvtErr *err) {
    (void)err;
    const PredCtx *c = ctx;
    const Labels *L = c->L;
    const int C = L->n_out;
    fprintf(f, "id,group,fold");
    for (int d = 0; d < C && L->kind == TARGET_VALUES; d++) fprintf(f, ",%s,pred_%s", L->names[d], L->names[d]);
    if (L->kind == TARGET_CLASSES) {
        fprintf(f, ",label,pred");
        for (int d = 0; d < C; d++) fprintf(f, ",p_%s", L->names[d]);
    }
    fputc('\n', f);
    double *p = malloc_check((size_t)C * sizeof *p);
    for (size_t i = 0; i < c->n; i++) {
        const size_t j = c->rows[i];
        const float *o = c->out + i * (size_t)C;
        corpus_csv_field(f, L->id[j]);
        fputc(',', f);
        corpus_csv_field(f, L->group[j]);
        fprintf(f, ",%d", c->fold);
        if (L->kind == TARGET_CLASSES) {
            softmax(p, o, C);
            fprintf(f, ",%s,%s", L->names[L->label[j]], L->names[argmax(o, C)]);
            for (int d = 0; d < C; d++) fprintf(f, ",%.6f", p[d]);
        } else {
            for (int d = 0; d < C; d++) fprintf(f, ",%.9g,%.9g", L->y[j * (size_t)C + (size_t)d], o[d]);
        }
        fputc('\n', f);
    }
    free(p);
    return 0;
}

int ft_write_predictions(const char *path, const Labels *L, int fold, const size_t *rows, size_t n, const float *out,
                         AvtErr *err) {
    PredCtx c = {L, fold, rows, n, out};
    return avt_write_atomic(path, write_predictions, &c, err);
}

// ---- metrics of a set of outputs ----
// The labels (classes: predicted and true class; values: targets) of the set as dense arrays.
static void gather(const Labels *L, const size_t *rows, size_t n, const float *out, int *label, int *pred, float *y) {
    const size_t C = (size_t)L->n_out;
    for (size_t i = 0; i < n; i++) {
        if (L->kind == TARGET_CLASSES) {
            label[i] = L->label[rows[i]];
            pred[i] = argmax(out + i * C, (int)C);
        } else {
            memcpy(y + i * C, L->y + rows[i] * C, C * sizeof(float));
        }
    }
}

cJSON *ft_metrics_json(const Labels *L, const size_t *rows, size_t n, const float *out) {
    const int C = L->n_out;
    cJSON *j = cJSON_CreateObject();
    if (L->kind == TARGET_CLASSES) {
        int *label = malloc_check(n * sizeof(int) + 1), *pred = malloc_check(n * sizeof(int) + 1);
        long *conf = calloc_check((size_t)C * (size_t)C, sizeof(long));
        gather(L, rows, n, out, label, pred, NULL);
        metrics_confusion(conf, label, pred, n, C);
        cJSON_AddNumberToObject(j, "accuracy", metrics_accuracy(conf, C));
        cJSON_AddNumberToObject(j, "uar", metrics_uar(conf, C));
        cJSON_AddNumberToObject(j, "macro_f1", metrics_macro_f1(conf, C));
        cJSON *names = cJSON_AddArrayToObject(j, "classes"), *m = cJSON_AddArrayToObject(j, "confusion");
        for (int t = 0; t < C; t++) {
            cJSON_AddItemToArray(names, cJSON_CreateString(L->names[t]));
            cJSON *row = cJSON_CreateArray();
            for (int q = 0; q < C; q++) cJSON_AddItemToArray(row, cJSON_CreateNumber((double)conf[t * C + q]));
            cJSON_AddItemToArray(m, row);
        }
        free(label);
        free(pred);
        free(conf);
    } else {
        float *y = malloc_check(n * (size_t)C * sizeof(float) + 1);
        gather(L, rows, n, out, NULL, NULL, y);
        char key[128];
        for (int d = 0; d < C; d++) {
            snprintf(key, sizeof key, "ccc_%s", L->names[d]);
            cJSON_AddNumberToObject(j, key, metrics_ccc(out, y, n, (size_t)C, d));
        }
        for (int d = 0; d < C; d++) {
            snprintf(key, sizeof key, "pearson_%s", L->names[d]);
            cJSON_AddNumberToObject(j, key, metrics_pearson(out, y, n, (size_t)C, d));
        }
        for (int d = 0; d < C; d++) {
            snprintf(key, sizeof key, "rmse_%s", L->names[d]);
            cJSON_AddNumberToObject(j, key, metrics_rmse(out, y, n, (size_t)C, d));
        }
        free(y);
    }
    return j;
}

double ft_selection_metric(const Labels *L, const size_t *rows, size_t n, const float *out) {
    const int C = L->n_out;
    double v = 0.0;
    if (L->kind == TARGET_CLASSES) {
        for (size_t i = 0; i < n; i++) v += argmax(out + i * (size_t)C, C) == L->label[rows[i]];
        return n ? v / (double)n : 0.0;
    }
    float *y = malloc_check(n * (size_t)C * sizeof(float) + 1);
    gather(L, rows, n, out, NULL, NULL, y);
    for (int d = 0; d < C; d++) v += metrics_ccc(out, y, n, (size_t)C, d);
    free(y);
    return v / C;
}

double ft_set_loss(FtLoss loss, const Labels *L, const size_t *rows, size_t n, const float *out) {
    const size_t C = (size_t)L->n_out;
    if (n == 0) return 0.0;
    double v = 0.0;
    if (loss == FT_LOSS_CE) {
        double *p = malloc_check(C * sizeof *p);
        for (size_t i = 0; i < n; i++) {
            softmax(p, out + i * C, (int)C);
            v -= log(fmax(p[L->label[rows[i]]], 1e-300));
        }
        free(p);
        return v / (double)n;
    }
    float *y = malloc_check(n * C * sizeof(float));
    gather(L, rows, n, out, NULL, NULL, y);
    if (loss == FT_LOSS_MSE) {
        for (size_t i = 0; i < n * C; i++) v += ((double)out[i] - y[i]) * ((double)out[i] - y[i]);
        v /= (double)(n * C);
    } else {
        for (size_t d = 0; d < C; d++) v += metrics_ccc(out, y, n, C, (int)d);
        v = 1.0 - v / (double)C;
    }
    free(y);
    return v;
}

// ---- the run's summary ----
static int excluded_key(const char *k) {
    static const char *const skip[] = {"fold", "n_train", "n_val", "n_test", "best_epoch", "val_metric"};
    for (size_t i = 0; i < sizeof skip / sizeof *skip; i++)
        if (strcmp(k, skip[i]) == 0) return 1;
    return 0;
}

typedef struct {
    cJSON **fold; // (K) each fold's metrics.json
    int K;
    const cJSON *settings;
    cJSON *summary;
} Summary;

static int write_summary_md(FILE *f, void *ctx, AvtErr *err) {
    (void)err;
    const Summary *s = ctx;
    const cJSON *st = s->settings, *mean = cJSON_GetObjectItem(s->summary, "mean"),
                *sd = cJSON_GetObjectItem(s->summary, "std");
    const char *w = cJSON_GetObjectItem(st, "weights")->valuestring;
    fprintf(f, "# avt finetune: %s\n\n", cJSON_GetObjectItem(st, "target")->valuestring);
    fprintf(f, "Store `%s`, %d folds by `%s` (split seed %s), %s, fraction %g of the training labels, seed %s, "
               "loss %s, %d epochs, batch %d, lr %g%s.\n\n",
            cJSON_GetObjectItem(st, "data")->valuestring, s->K, cJSON_GetObjectItem(st, "group_by")->valuestring,
            cJSON_GetObjectItem(st, "split_seed")->valuestring, w[0] ? "pretrained" : "from scratch",
            cJSON_GetObjectItem(st, "fraction")->valuedouble, cJSON_GetObjectItem(st, "seed")->valuestring,
            ft_loss_name((FtLoss)cJSON_GetObjectItem(st, "loss")->valueint),
            cJSON_GetObjectItem(st, "epochs")->valueint, cJSON_GetObjectItem(st, "batch")->valueint,
            cJSON_GetObjectItem(st, "lr")->valuedouble, cJSON_GetObjectItem(st, "freeze")->valueint ? ", head only" : "");
    if (w[0]) fprintf(f, "Pretrained weights: `%s`.\n\n", w);
    fprintf(f, "| fold | test clips | best epoch |");
    const cJSON *m;
    cJSON_ArrayForEach(m, mean) fprintf(f, " %s |", m->string);
    fprintf(f, "\n|---|---|---|");
    cJSON_ArrayForEach(m, mean) fprintf(f, "---|");
    fputc('\n', f);
    for (int k = 0; k < s->K; k++) {
        fprintf(f, "| %d | %d | %d |", k, cJSON_GetObjectItem(s->fold[k], "n_test")->valueint,
                cJSON_GetObjectItem(s->fold[k], "best_epoch")->valueint);
        cJSON_ArrayForEach(m, mean) fprintf(f, " %.4f |", cJSON_GetObjectItem(s->fold[k], m->string)->valuedouble);
        fputc('\n', f);
    }
    fprintf(f, "| **mean ± std** | | |");
    cJSON_ArrayForEach(m, mean)
        fprintf(f, " **%.4f ± %.4f** |", m->valuedouble, cJSON_GetObjectItem(sd, m->string)->valuedouble);
    fputc('\n', f);
    const cJSON *conf = cJSON_GetObjectItem(s->summary, "confusion"), *names = cJSON_GetObjectItem(s->summary, "classes");
    if (conf) {
        fprintf(f, "\nConfusion over all folds (rows: label, columns: prediction):\n\n|  |");
        const cJSON *c, *row;
        cJSON_ArrayForEach(c, names) fprintf(f, " %s |", c->valuestring);
        fprintf(f, "\n|---|");
        cJSON_ArrayForEach(c, names) fprintf(f, "---|");
        fputc('\n', f);
        int t = 0;
        cJSON_ArrayForEach(row, conf) {
            fprintf(f, "| **%s** |", cJSON_GetArrayItem(names, t++)->valuestring);
            cJSON_ArrayForEach(c, row) fprintf(f, " %d |", c->valueint);
            fputc('\n', f);
        }
    }
    return 0;
}

// confusion.png: row-normalised confusion over all folds, as a heat map with the counts written in.
static void plot_confusion(const char *out, const cJSON *conf, const cJSON *names) {
    char *data = asprintf_check("%s/confusion.dat", out), *png = asprintf_check("%s/confusion.png", out);
    FILE *f = fopen_check(data, "w");
    const int C = cJSON_GetArraySize(names);
    for (int t = 0; t < C; t++) {
        const cJSON *row = cJSON_GetArrayItem(conf, t), *c;
        double sum = 0.0;
        cJSON_ArrayForEach(c, row) sum += c->valuedouble;
        for (int q = 0; q < C; q++) {
            double v = cJSON_GetArrayItem(row, q)->valuedouble;
            fprintf(f, "%d %d %.4f %d\n", q, t, sum > 0 ? v / sum : 0.0, (int)v);
        }
        fputc('\n', f);
    }
    fclose_check(f, data);
    char tics[2048] = "";
    size_t o = 0;
    for (int t = 0; t < C && o < sizeof tics; t++)
        o += (size_t)snprintf(tics + o, sizeof tics - o, "%s'%s' %d", t ? ", " : "",
                              cJSON_GetArrayItem(names, t)->valuestring, t);
    char *body = asprintf_check(
        "set title 'confusion over all folds (row-normalised)'\nset xlabel 'prediction'\nset ylabel 'label'\n"
        "set xtics (%s)\nset ytics (%s)\nset yrange [%d.5:-0.5]\nset xrange [-0.5:%d.5]\nset cbrange [0:1]\n"
        "set palette defined (0 'white', 1 '#2166ac')\nunset key\n"
        "plot '%s' using 1:2:3 with image, '' using 1:2:(sprintf('%%d', $4)) with labels",
        tics, tics, C - 1, C - 1, data);
    ft_plot(png, body);
    remove(data);
    free(body);
    free(data);
    free(png);
}

int ft_summarize(const char *out, AvtErr *err) {
    char *sp = asprintf_check("%s/settings.json", out);
    cJSON *settings = ft_read_json(sp, err);
    free(sp);
    if (!settings) return -1;
    const int K = cJSON_GetObjectItem(settings, "folds")->valueint;
    Summary s = {calloc_check((size_t)K, sizeof(cJSON *)), K, settings, NULL};
    int rc = 1;
    for (int k = 0; k < K && rc == 1; k++) {
        char *p = asprintf_check("%s/fold-%d/metrics.json", out, k);
        if (access(p, F_OK) != 0) rc = 0;
        else if (!(s.fold[k] = ft_read_json(p, err))) rc = -1;
        free(p);
    }
    if (rc == 1) {
        s.summary = cJSON_CreateObject();
        cJSON *mean = cJSON_AddObjectToObject(s.summary, "mean"), *sd = cJSON_AddObjectToObject(s.summary, "std");
        double *v = malloc_check((size_t)K * sizeof *v);
        const cJSON *m;
        cJSON_ArrayForEach(m, s.fold[0]) {
            if (!cJSON_IsNumber(m) || excluded_key(m->string)) continue;
            for (int k = 0; k < K; k++) v[k] = cJSON_GetObjectItem(s.fold[k], m->string)->valuedouble;
            double mu, sigma;
            metrics_mean_std(v, K, &mu, &sigma);
            cJSON_AddNumberToObject(mean, m->string, mu);
            cJSON_AddNumberToObject(sd, m->string, sigma);
        }
        free(v);
        const cJSON *names = cJSON_GetObjectItem(s.fold[0], "classes");
        if (names) { // the confusion summed over the folds
            const int C = cJSON_GetArraySize(names);
            cJSON_AddItemToObject(s.summary, "classes", cJSON_Duplicate(names, 1));
            cJSON *conf = cJSON_AddArrayToObject(s.summary, "confusion");
            for (int t = 0; t < C; t++) {
                cJSON *row = cJSON_CreateArray();
                for (int q = 0; q < C; q++) {
                    double c = 0.0;
                    for (int k = 0; k < K; k++)
                        c += cJSON_GetArrayItem(cJSON_GetArrayItem(cJSON_GetObjectItem(s.fold[k], "confusion"), t), q)
                                 ->valuedouble;
                    cJSON_AddItemToArray(row, cJSON_CreateNumber(c));
                }
                cJSON_AddItemToArray(conf, row);
            }
        }
        cJSON *folds = cJSON_AddArrayToObject(s.summary, "folds");
        for (int k = 0; k < K; k++) cJSON_AddItemToArray(folds, cJSON_Duplicate(s.fold[k], 1));
        cJSON_AddItemToObject(s.summary, "settings", cJSON_Duplicate(settings, 1));
        char *mp = asprintf_check("%s/metrics.json", out), *md = asprintf_check("%s/summary.md", out);
        if (ft_write_json(mp, s.summary, err) || avt_write_atomic(md, write_summary_md, &s, err)) rc = -1;
        if (rc == 1 && names) plot_confusion(out, cJSON_GetObjectItem(s.summary, "confusion"), names);
        free(mp);
        free(md);
        cJSON_Delete(s.summary);
    }
    for (int k = 0; k < K; k++) cJSON_Delete(s.fold[k]);
    free(s.fold);
    cJSON_Delete(settings);
    return rc;
}
