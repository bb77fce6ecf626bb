#include "data/corpus/labels.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "data/corpus/metadata.h"

#define NO_COLUMN SIZE_MAX

// What labels.csv holds for the store, before the kind is known: per store utterance, its line and its fields.
typedef struct {
    const char *path;
    char **cols;  // (n_cols) the header's names
    size_t n_cols;
    size_t *tcol; // (n_t) target columns
    size_t n_t;
    size_t gcol;  // the group column, or NO_COLUMN: the store's speaker table
    long *line;   // (store size) the utterance's line in labels.csv, 0 while not listed
    char **val;   // (store size, n_t) its target fields
    char **grp;   // (store size) its group field (a group column only)
} Sheet;

static void sheet_free(Sheet *sh, size_t ns) {
    for (size_t k = 0; k < sh->n_cols; k++) free(sh->cols[k]);
    for (size_t i = 0; sh->val && i < ns * sh->n_t; i++) free(sh->val[i]);
    for (size_t i = 0; sh->grp && i < ns; i++) free(sh->grp[i]);
    free(sh->cols);
    free(sh->tcol);
    free(sh->line);
    free(sh->val);
    free(sh->grp);
}

static size_t column_of(const Sheet *sh, const char *name) {
    for (size_t k = 0; k < sh->n_cols; k++)
        if (strcmp(sh->cols[k], name) == 0) return k;
    return NO_COLUMN;
}

// "PATH: no column 'name' (columns: id, speaker, ...)".
static int no_column(const Sheet *sh, const char *name, AvtErr *err) {
    char list[384] = "";
    size_t len = 0;
    for (size_t k = 0; k < sh->n_cols && len < sizeof list; k++)
        len += (size_t)snprintf(list + len, sizeof list - len, "%s%s", k ? ", " : "", sh->cols[k]);
    return avt_err_set(err, "%s: no column '%s' (columns: %s)", sh->path, name, list);
}

// The header (its first record) and the columns asked for.
static int read_header(Sheet *sh, FILE *f, char **rec, size_t *cap, long *lineno, CsvFields *fl, const char *targets,
                       const char *group_col, TargetKind kind, AvtErr *err) {
    int got;
    while ((got = corpus_csv_read(f, rec, cap, lineno)) == 0 && !(*rec)[strspn(*rec, " \t")]) {}
    if (got) return avt_err_set(err, "%s: %s", sh->path, ferror(f) ? "read error" : "empty (no header)");
    if (corpus_csv_split(*rec, fl)) return avt_err_set(err, "%s:%ld: malformed header quoting", sh->path, *lineno);
    sh->cols = malloc_check(fl->n * sizeof *sh->cols);
    for (; sh->n_cols < fl->n; sh->n_cols++) sh->cols[sh->n_cols] = asprintf_check("%s", fl->v[sh->n_cols]);
    if (strcmp(sh->cols[0], "id") != 0)
        return avt_err_set(err, "%s:%ld: the first column is '%s', not 'id'", sh->path, *lineno, sh->cols[0]);
    for (size_t k = 1; k < sh->n_cols; k++)
        if (column_of(sh, sh->cols[k]) != k)
            return avt_err_set(err, "%s:%ld: the header names column '%s' twice", sh->path, *lineno, sh->cols[k]);

    char *names = asprintf_check("%s", targets); // the targets, split as a CSV record
    CsvFields tf = {0};
    int rc = corpus_csv_split(names, &tf) ? avt_err_set(err, "%s: malformed target list '%s'", sh->path, targets) : 0;
    sh->tcol = malloc_check(tf.n * sizeof *sh->tcol);
    for (size_t t = 0; rc == 0 && t < tf.n; t++) {
        sh->tcol[t] = column_of(sh, tf.v[t]);
        if (!*tf.v[t]) rc = avt_err_set(err, "%s: an empty target column name in '%s'", sh->path, targets);
        else if (sh->tcol[t] == NO_COLUMN) rc = no_column(sh, tf.v[t], err);
        for (size_t u = 0; rc == 0 && u < t; u++)
            if (sh->tcol[u] == sh->tcol[t])
                rc = avt_err_set(err, "%s: target column '%s' named twice", sh->path, tf.v[t]);
        sh->n_t = t + 1;
    }
    if (rc == 0 && kind == TARGET_CLASSES && tf.n > 1)
        rc = avt_err_set(err, "%s: classes come from one target column, not %zu ('%s')", sh->path, tf.n, targets);
    free(tf.v);
    free(names);
    if (rc) return rc;
    sh->gcol = column_of(sh, group_col);
    if (sh->gcol == NO_COLUMN && strcmp(group_col, "speaker") != 0) return no_column(sh, group_col, err);
    return 0;
}

typedef struct {
    const char *id;
    size_t item;
} IdItem;

static int cmp_id_item(const void *a, const void *b) {
    return strcmp(((const IdItem *)a)->id, ((const IdItem *)b)->id);
}

// Every row after the header, keyed by the store's ids; each store utterance must be listed exactly once.
static int read_rows(Sheet *sh, const Store *s, FILE *f, char **rec, size_t *cap, long *lineno, CsvFields *fl,
                     AvtErr *err) {
    size_t ns = store_size(s);
    IdItem *by_id = malloc_check(ns * sizeof *by_id);
    for (size_t i = 0; i < ns; i++) by_id[i] = (IdItem){store_id(s, i), i};
    qsort(by_id, ns, sizeof *by_id, cmp_id_item);
    size_t n_unknown = 0;
    char *unknown = NULL; // the first id the store does not hold, with its line
    long unknown_line = 0;
    int rc = 0;
    for (long at = *lineno + 1; corpus_csv_read(f, rec, cap, lineno) == 0; at = *lineno + 1) {
        if (!(*rec)[strspn(*rec, " \t")]) continue;
        if (corpus_csv_split(*rec, fl)) {
            rc = avt_err_set(err, "%s:%ld: malformed quoting (a quote left open, or text after a closing one)",
                             sh->path, at);
            break;
        }
        if (fl->n != sh->n_cols) {
            rc = avt_err_set(err, "%s:%ld: expected %zu fields as the header, got %zu", sh->path, at, sh->n_cols,
                             fl->n);
            break;
        }
        IdItem key = {fl->v[0], 0};
        const IdItem *hit = ns ? bsearch(&key, by_id, ns, sizeof *by_id, cmp_id_item) : NULL;
        if (!hit) {
            if (!n_unknown++) {
                unknown = asprintf_check("%s", fl->v[0]);
                unknown_line = at;
            }
            continue;
        }
        size_t i = hit->item;
        if (sh->line[i]) {
            rc = avt_err_set(err, "%s:%ld: duplicate id '%s' (first on line %ld)", sh->path, at, fl->v[0],
                             sh->line[i]);
            break;
        }
        sh->line[i] = at;
        for (size_t t = 0; t < sh->n_t; t++) sh->val[i * sh->n_t + t] = asprintf_check("%s", fl->v[sh->tcol[t]]);
        if (sh->gcol != NO_COLUMN) sh->grp[i] = asprintf_check("%s", fl->v[sh->gcol]);
    }
    if (rc == 0 && ferror(f)) rc = avt_err_set(err, "%s: read error", sh->path);
    if (rc == 0 && n_unknown)
        rc = avt_err_set(err, "%s:%ld: id '%s' is not in the store (%zu row%s with ids it lacks)", sh->path,
                         unknown_line, unknown, n_unknown, n_unknown == 1 ? "" : "s");
    size_t n_missing = 0, first_missing = 0;
    for (size_t i = 0; rc == 0 && i < ns; i++)
        if (!sh->line[i] && !n_missing++) first_missing = i;
    if (rc == 0 && n_missing)
        rc = avt_err_set(err, "%s: utterance '%s' of the store is not listed (%zu of its %zu utterances are not)",
                         sh->path, store_id(s, first_missing), n_missing, ns);
    free(unknown);
    free(by_id);
    return rc;
}

// strtod over the whole field (blanks around it allowed).
static int number(const char *s, double *v) {
    char *end;
    *v = strtod(s, &end);
    return end != s && end[strspn(end, " \t")] == '\0';
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

// Auto kind: several columns, or one whose non-empty fields are all numbers, are values.
static TargetKind auto_kind(const Sheet *sh, size_t ns) {
    if (sh->n_t > 1) return TARGET_VALUES;
    double v;
    for (size_t i = 0; i < ns; i++)
        if (*sh->val[i] && !number(sh->val[i], &v)) return TARGET_CLASSES;
    return TARGET_VALUES;
}

// Utterance i's target into L (its next clip), or 1 when dropped; -1 (err) for a value that is not a number.
static int take(Labels *L, const Sheet *sh, const Store *s, size_t i, AvtErr *err) {
    char **f = &sh->val[i * sh->n_t];
    int dropped = 0;
    for (size_t t = 0; t < sh->n_t; t++) {
        double v = 0;
        if (!*f[t]) dropped = 1;
        else if (L->kind == TARGET_VALUES && !number(f[t], &v))
            return avt_err_set(err, "%s:%ld: column '%s': '%s' is not a number", sh->path, sh->line[i],
                               sh->cols[sh->tcol[t]], f[t]);
        else if (L->kind == TARGET_VALUES) {
            L->y[L->n * sh->n_t + t] = (float)v;
            dropped |= !isfinite(L->y[L->n * sh->n_t + t]);
        }
    }
    if (dropped) return 1;
    const char *group = sh->gcol != NO_COLUMN ? sh->grp[i] : store_speaker_name(s, store_speaker(s, i));
    if (!*group)
        return avt_err_set(err, "%s:%ld: id '%s' has an empty group ('%s')", sh->path, sh->line[i], store_id(s, i),
                           sh->gcol != NO_COLUMN ? sh->cols[sh->gcol] : "speaker");
    L->item[L->n] = i;
    L->id[L->n] = asprintf_check("%s", store_id(s, i));
    L->group[L->n] = asprintf_check("%s", group);
    L->n++;
    return 0;
}

// The classes: the distinct targets kept, sorted; each clip's index among them and the counts.
static int classes(Labels *L, const Sheet *sh, AvtErr *err) {
    char **v = malloc_check(L->n * sizeof *v);
    for (size_t k = 0; k < L->n; k++) v[k] = sh->val[L->item[k]];
    qsort(v, L->n, sizeof *v, cmp_str);
    size_t m = 0;
    for (size_t k = 0; k < L->n; k++)
        if (!m || strcmp(v[m - 1], v[k]) != 0) v[m++] = v[k];
    int rc = 0;
    if (m < 2)
        rc = avt_err_set(err, "%s: column '%s' holds fewer than two classes ('%s' only)", sh->path,
                         sh->cols[sh->tcol[0]], v[0]);
    else {
        L->names = malloc_check(m * sizeof *L->names);
        L->count = calloc_check(m, sizeof *L->count);
        L->label = malloc_check(L->n * sizeof *L->label);
        for (L->n_out = 0; (size_t)L->n_out < m; L->n_out++) L->names[L->n_out] = asprintf_check("%s", v[L->n_out]);
        for (size_t k = 0; k < L->n; k++) {
            const char *key = sh->val[L->item[k]];
            char *const *hit = bsearch(&key, L->names, m, sizeof *L->names, cmp_str);
            L->label[k] = (int)(hit - L->names);
            L->count[L->label[k]]++;
        }
    }
    free(v);
    return rc;
}

int labels_load(Labels *L, const char *path, const Store *s, const char *targets, const char *group_col,
                TargetKind kind, AvtErr *err) {
    memset(L, 0, sizeof *L);
    FILE *f = fopen(path, "r");
    if (!f) return avt_err_set(err, "%s: cannot open: %s", path, strerror(errno));
    size_t ns = store_size(s), cap = 0;
    Sheet sh = {.path = path};
    CsvFields fl = {0};
    char *rec = NULL;
    long lineno = 0;
    int rc = read_header(&sh, f, &rec, &cap, &lineno, &fl, targets, group_col, kind, err);
    if (rc == 0) {
        sh.line = calloc_check(ns, sizeof *sh.line);
        sh.val = calloc_check(ns * sh.n_t, sizeof *sh.val);
        sh.grp = calloc_check(ns, sizeof *sh.grp);
        rc = read_rows(&sh, s, f, &rec, &cap, &lineno, &fl, err);
    }
    free(rec);
    free(fl.v);
    fclose(f); // read-only: nothing to lose on close
    if (rc == 0) {
        L->kind = kind == TARGET_AUTO ? auto_kind(&sh, ns) : kind;
        L->item = malloc_check(ns * sizeof *L->item);
        L->id = malloc_check(ns * sizeof *L->id);
        L->group = malloc_check(ns * sizeof *L->group);
        if (L->kind == TARGET_VALUES) L->y = malloc_check(ns * sh.n_t * sizeof *L->y);
        for (size_t i = 0; rc == 0 && i < ns; i++) {
            rc = take(L, &sh, s, i, err);
            if (rc == 1) { // dropped
                L->n_dropped++;
                rc = 0;
            }
        }
    }
    if (rc == 0 && L->n == 0)
        rc = avt_err_set(err, "%s: no row has a usable target ('%s'; %zu dropped)", path, targets, L->n_dropped);
    if (rc == 0 && L->kind == TARGET_CLASSES) rc = classes(L, &sh, err);
    else if (rc == 0) {
        L->names = malloc_check(sh.n_t * sizeof *L->names);
        for (L->n_out = 0; (size_t)L->n_out < sh.n_t; L->n_out++)
            L->names[L->n_out] = asprintf_check("%s", sh.cols[sh.tcol[L->n_out]]);
    }
    sheet_free(&sh, ns);
    if (rc) labels_free(L);
    return rc;
}

void labels_free(Labels *L) {
    for (int k = 0; L->names && k < L->n_out; k++) free(L->names[k]);
    for (size_t i = 0; i < L->n; i++) {
        free(L->id[i]);
        free(L->group[i]);
    }
    free(L->names);
    free(L->item);
    free(L->id);
    free(L->group);
    free(L->label);
    free(L->y);
    free(L->count);
    memset(L, 0, sizeof *L);
}
