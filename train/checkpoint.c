#include "train/checkpoint.h"

#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CKPT_PATH_LEN 4096
#define STATE_FORMAT "avt-bertadam-1"

// The state file's own metadata keys, in the order written; caller keys must differ.
enum { K_FORMAT, K_STEP, K_T_TOTAL, K_LR, K_WARMUP, K_BETA1, K_BETA2, K_EPS, K_WD, K_CLIP_G, K_CLIP_T, K_COUNT };
static const char *const STATE_KEYS[K_COUNT] = {"format", "step",  "t_total", "lr",          "warmup",     "beta1",
                                                "beta2",  "eps",   "weight_decay", "clip_global", "clip_tensor"};

static int reserved(const char *key) {
    for (int k = 0; k < K_COUNT; k++)
        if (strcmp(key, STATE_KEYS[k]) == 0) return 1;
    return 0;
}

int ckpt_meta_set(CkptMeta *meta, const char *key, const char *val, AvtErr *err) {
    if (!*key || strlen(key) >= CKPT_KEY_LEN)
        return avt_err_set(err, "checkpoint metadata key '%s': must have 1 to %d characters", key, CKPT_KEY_LEN - 1);
    if (strlen(val) >= CKPT_VAL_LEN)
        return avt_err_set(err, "checkpoint metadata '%s': value longer than %d characters", key, CKPT_VAL_LEN - 1);
    int i = 0;
    while (i < meta->n && strcmp(meta->key[i], key) != 0) i++;
    if (i == CKPT_META_MAX)
        return avt_err_set(err, "checkpoint metadata '%s': more than %d keys", key, CKPT_META_MAX);
    if (i == meta->n) meta->n++;
    strcpy(meta->key[i], key);
    strcpy(meta->val[i], val);
    return 0;
}

const char *ckpt_meta_get(const CkptMeta *meta, const char *key) {
    for (int i = 0; i < meta->n; i++)
        if (strcmp(meta->key[i], key) == 0) return meta->val[i];
    return NULL;
}

// snprintf into a CKPT_PATH_LEN buffer; -1 with err when the path does not fit.
AVT_PRINTF(3, 4) static int path_fmt(char *out, AvtErr *err, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(out, CKPT_PATH_LEN, fmt, ap);
    va_end(ap);
    return n < 0 || n >= CKPT_PATH_LEN ? avt_err_set(err, "checkpoint path too long: '%.64s...'", out) : 0;
}

static int exists(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0;
}

// mkdir -p
static int make_dirs(const char *dir, AvtErr *err) {
    char p[CKPT_PATH_LEN];
    if (path_fmt(p, err, "%s", dir)) return -1;
    for (char *s = p + 1;; s++) {
        const char c = *s;
        if (c != '/' && c != '\0') continue;
        *s = '\0';
        struct stat sb;
        if (mkdir(p, 0777) != 0 && (errno != EEXIST || stat(p, &sb) != 0 || !S_ISDIR(sb.st_mode)))
            return avt_err_set(err, "%s: cannot create the run directory (at '%s': %s)", dir, p,
                               strerror(errno == EEXIST ? ENOTDIR : errno));
        *s = c;
        if (c == '\0') return 0;
    }
}

// Delete a checkpoint directory (flat: files only). DONE goes first, so a delete cut short leaves an incomplete
// directory, never one that looks complete.
static int remove_dir(const char *dir, AvtErr *err) {
    char p[CKPT_PATH_LEN];
    if (path_fmt(p, err, "%s/DONE", dir)) return -1;
    if (unlink(p) != 0 && errno != ENOENT) return avt_err_set(err, "%s: cannot delete: %s", p, strerror(errno));
    DIR *d = opendir(dir);
    if (!d) return avt_err_set(err, "%s: cannot open: %s", dir, strerror(errno));
    int rc = 0;
    for (struct dirent *e; rc == 0 && (e = readdir(d)) != NULL;) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
        rc = path_fmt(p, err, "%s/%s", dir, e->d_name);
        if (rc == 0 && unlink(p) != 0) rc = avt_err_set(err, "%s: cannot delete: %s", p, strerror(errno));
    }
    closedir(d);
    if (rc == 0 && rmdir(dir) != 0) rc = avt_err_set(err, "%s: cannot delete: %s", dir, strerror(errno));
    return rc;
}

// ---------------------------------------------------------------------------------------------------------------
// The run directory's entries.

#define ENTRY_NAME_LEN 256

typedef struct {
    char name[ENTRY_NAME_LEN];
    long step;       // from a final name "ckpt-<digits>"; -1 for anything else starting with "ckpt-"
    int done;        // final name with a DONE marker: a complete checkpoint
} Entry;

// Every directory in run_dir whose name starts with "ckpt-" into *out (caller frees). A missing run_dir has none.
static int scan(const char *run_dir, Entry **out, int *n, AvtErr *err) {
    *out = NULL;
    *n = 0;
    DIR *d = opendir(run_dir);
    if (!d) return errno == ENOENT ? 0 : avt_err_set(err, "%s: cannot read the run directory: %s", run_dir,
                                                     strerror(errno));
    int cap = 0, rc = 0;
    for (struct dirent *e; rc == 0 && (e = readdir(d)) != NULL;) {
        char p[CKPT_PATH_LEN];
        struct stat sb;
        if (strncmp(e->d_name, "ckpt-", 5) != 0 || strlen(e->d_name) >= ENTRY_NAME_LEN) continue;
        if ((rc = path_fmt(p, err, "%s/%s", run_dir, e->d_name)) != 0) break;
        if (stat(p, &sb) != 0 || !S_ISDIR(sb.st_mode)) continue;
        if (*n == cap) {
            cap = cap ? 2 * cap : 16;
            Entry *grown = realloc(*out, (size_t)cap * sizeof **out);
            if (!grown) avt_fatal("out of memory listing %s", run_dir);
            *out = grown;
        }
        Entry *x = &(*out)[(*n)++];
        strcpy(x->name, e->d_name);
        const char *digits = e->d_name + 5;
        char *end;
        errno = 0;
        x->step = strtol(digits, &end, 10);
        if (*digits < '0' || *digits > '9' || *end || errno) x->step = -1;
        rc = path_fmt(p, err, "%s/%s/DONE", run_dir, e->d_name);
        x->done = x->step >= 0 && exists(p);
    }
    closedir(d);
    if (rc) free_null(*out);
    return rc;
}

static int newest_first(const void *a, const void *b) {
    const Entry *x = a, *y = b;
    return (y->done - x->done) ? y->done - x->done : (x->step < y->step) - (x->step > y->step);
}

int ckpt_latest(const char *run_dir, char *path, size_t len, AvtErr *err) {
    Entry *e;
    int n;
    if (scan(run_dir, &e, &n, err)) return -1;
    qsort(e, (size_t)n, sizeof *e, newest_first);
    int found = n > 0 && e[0].done;
    if (found && (size_t)snprintf(path, len, "%s/%s", run_dir, e[0].name) >= len)
        found = avt_err_set(err, "%s/%s: path longer than the caller's %zu bytes", run_dir, e[0].name, len);
    free(e);
    return found;
}

// Keep the newest keep_last complete checkpoints and `keep` (the one just written, even when an older run left
// newer steps); delete the other complete ones and every leftover.
static int prune(const char *run_dir, const char *keep, int keep_last, AvtErr *err) {
    Entry *e;
    int n;
    if (scan(run_dir, &e, &n, err)) return -1;
    qsort(e, (size_t)n, sizeof *e, newest_first);
    int rc = 0;
    for (int i = 0; i < n && rc == 0; i++) {
        if (e[i].done && (keep_last <= 0 || i < keep_last || strcmp(e[i].name, keep) == 0)) continue;
        char p[CKPT_PATH_LEN];
        rc = path_fmt(p, err, "%s/%s", run_dir, e[i].name);
        if (rc == 0) rc = remove_dir(p, err);
    }
    free(e);
    return rc;
}

// ---------------------------------------------------------------------------------------------------------------
// Save.

// The host address of a moment: dev itself, or its place in host_copy (a download of the whole arena).
static float *moment_host(const Optimizer *o, const float *dev, const char *host_copy) {
    return host_copy ? (float *)(void *)(host_copy + ((const char *)dev - o->moments.base)) : (float *)dev;
}

static int write_state(const char *path, const ParamTable *pt, const Optimizer *o, const CkptMeta *meta,
                       AvtErr *err) {
    char *host = NULL;
    if (!o->moments.be->host_memory) {
        host = malloc_check(o->moments.used);
        o->moments.be->download(host, o->moments.base, o->moments.used);
    }
    StWrite *w = calloc_check(2 * (size_t)pt->n, sizeof *w);
    char(*names)[sizeof pt->p->name + 2] = calloc_check(2 * (size_t)pt->n, sizeof *names);
    int nw = 0;
    for (int i = 0; i < pt->n; i++) {
        if (!o->m[i]) continue;
        const Param *p = &pt->p[i];
        for (int k = 0; k < 2; k++, nw++) {
            snprintf(names[nw], sizeof names[nw], "%c.%s", "mv"[k], p->name);
            w[nw].name = names[nw];
            w[nw].ndim = p->t.ndim;
            for (int d = 0; d < p->t.ndim; d++) w[nw].shape[d] = p->t.shape[d];
            w[nw].data = moment_host(o, k ? o->v[i] : o->m[i], host);
        }
    }
    char num[K_COUNT][32];
    const char *keys[K_COUNT + CKPT_META_MAX], *vals[K_COUNT + CKPT_META_MAX];
    snprintf(num[K_FORMAT], 32, "%s", STATE_FORMAT);
    snprintf(num[K_STEP], 32, "%ld", o->step);
    snprintf(num[K_T_TOTAL], 32, "%ld", o->t_total);
    // %.17g: every float and double comes back bit for bit
    const double reals[K_COUNT] = {[K_LR] = o->lr, [K_WARMUP] = o->warmup, [K_BETA1] = o->h.beta1,
                                   [K_BETA2] = o->h.beta2, [K_EPS] = o->h.eps, [K_WD] = o->h.weight_decay,
                                   [K_CLIP_G] = o->h.clip_global, [K_CLIP_T] = o->h.clip_tensor};
    for (int k = K_LR; k < K_COUNT; k++) snprintf(num[k], 32, "%.17g", reals[k]);
    for (int k = 0; k < K_COUNT; k++) keys[k] = STATE_KEYS[k], vals[k] = num[k];
    const int n_meta = meta ? meta->n : 0;
    for (int i = 0; i < n_meta; i++) keys[K_COUNT + i] = meta->key[i], vals[K_COUNT + i] = meta->val[i];
    int rc = st_write(path, w, nw, keys, vals, K_COUNT + n_meta, err);
    free(names);
    free(w);
    free(host);
    return rc;
}

static int write_done(FILE *f, void *ctx, AvtErr *err) {
    (void)err;
    fprintf(f, "step %ld\n", *(const long *)ctx);
    return 0;
}

int ckpt_save(const char *run_dir, long step, const AvtModel *m, const Optimizer *o, const CkptMeta *meta,
              int keep_last, AvtErr *err) {
    if (step < 0) return avt_err_set(err, "%s: checkpoint step %ld is negative", run_dir, step);
    if (o->n != m->params.n)
        return avt_err_set(err, "%s: the optimizer has %d tensors, the model %d", run_dir, o->n, m->params.n);
    for (int i = 0; meta && i < meta->n; i++)
        if (reserved(meta->key[i]))
            return avt_err_set(err, "%s: checkpoint metadata key '%s' is reserved for the optimizer state", run_dir,
                               meta->key[i]);
    char final[CKPT_PATH_LEN], tmp[CKPT_PATH_LEN], old[CKPT_PATH_LEN], p[CKPT_PATH_LEN];
    if (make_dirs(run_dir, err) || path_fmt(final, err, "%s/ckpt-%09ld", run_dir, step) ||
        path_fmt(tmp, err, "%s.tmp.%ld", final, (long)getpid()) ||
        path_fmt(old, err, "%s.old.%ld", final, (long)getpid()))
        return -1;
    if (exists(tmp) && remove_dir(tmp, err)) return -1;
    if (mkdir(tmp, 0777) != 0)
        return avt_err_set(err, "%s: cannot create a checkpoint directory: %s", tmp, strerror(errno));
    int rc = path_fmt(p, err, "%s/model.safetensors", tmp);
    if (rc == 0) rc = avt_save(m, p, err);
    if (rc == 0) rc = path_fmt(p, err, "%s/state.safetensors", tmp);
    if (rc == 0) rc = write_state(p, &m->params, o, meta, err);
    // Saving a step again (e.g. right after resuming from it): the old directory steps aside first.
    int aside = 0;
    if (rc == 0 && exists(final)) {
        if (rename(final, old) != 0) rc = avt_err_set(err, "%s: cannot move aside: %s", final, strerror(errno));
        else aside = 1;
    }
    if (rc == 0 && rename(tmp, final) != 0) {
        rc = avt_err_set(err, "%s: rename failed: %s", tmp, strerror(errno));
        if (aside && rename(old, final) == 0) aside = 0; // the previous checkpoint keeps its name
    }
    if (rc != 0) {
        AvtErr ignored;
        if (exists(tmp)) remove_dir(tmp, &ignored); // the error already reported is the one that matters
        return -1;
    }
    if (path_fmt(p, err, "%s/DONE", final) || avt_write_atomic(p, write_done, &step, err)) return -1;
    if (aside && remove_dir(old, err)) return -1;
    return prune(run_dir, strrchr(final, '/') + 1, keep_last, err);
}

// ---------------------------------------------------------------------------------------------------------------
// Load.

static int meta_long(const SafeTensors *st, int k, long *out, AvtErr *err) {
    const char *s = st_meta(st, STATE_KEYS[k]);
    if (!s) return avt_err_set(err, "%s: metadata has no '%s'", st->path, STATE_KEYS[k]);
    char *end;
    errno = 0;
    *out = strtol(s, &end, 10);
    if (end == s || *end || errno || *out < 0)
        return avt_err_set(err, "%s: metadata '%s' = '%s' is not a count", st->path, STATE_KEYS[k], s);
    return 0;
}

static int meta_real(const SafeTensors *st, int k, double *out, AvtErr *err) {
    const char *s = st_meta(st, STATE_KEYS[k]);
    if (!s) return avt_err_set(err, "%s: metadata has no '%s'", st->path, STATE_KEYS[k]);
    char *end;
    errno = 0;
    *out = strtod(s, &end);
    if (end == s || *end || errno)
        return avt_err_set(err, "%s: metadata '%s' = '%s' is not a number", st->path, STATE_KEYS[k], s);
    return 0;
}

// The schedule, hyper-parameters and caller metadata of a state file (nothing is changed on error).
static int read_state_meta(const SafeTensors *st, Optimizer *o, CkptMeta *meta, AvtErr *err) {
    const char *fmt = st_meta(st, STATE_KEYS[K_FORMAT]);
    if (!fmt || strcmp(fmt, STATE_FORMAT) != 0)
        return avt_err_set(err, "%s: not an avt optimizer state (format '%s', expected '%s')", st->path,
                           fmt ? fmt : "(none)", STATE_FORMAT);
    long step, t_total;
    double r[K_COUNT];
    if (meta_long(st, K_STEP, &step, err) || meta_long(st, K_T_TOTAL, &t_total, err)) return -1;
    for (int k = K_LR; k < K_COUNT; k++)
        if (meta_real(st, k, &r[k], err)) return -1;
    if (t_total < 1 || !(r[K_WARMUP] > 0.0 && r[K_WARMUP] < 1.0))
        return avt_err_set(err, "%s: t_total %ld / warmup %g out of range", st->path, t_total, r[K_WARMUP]);
    CkptMeta got = {0};
    AvtErr e;
    for (int i = 0; meta && i < st->n_meta; i++)
        if (!reserved(st->meta_key[i]) && ckpt_meta_set(&got, st->meta_key[i], st->meta_val[i], &e))
            return avt_err_set(err, "%s: %s", st->path, e.msg);
    o->step = step;
    o->t_total = t_total;
    o->lr = (float)r[K_LR];
    o->warmup = r[K_WARMUP];
    o->h = (BertAdamHyper){r[K_BETA1], r[K_BETA2], (float)r[K_EPS], (float)r[K_WD], (float)r[K_CLIP_G],
                           (float)r[K_CLIP_T]};
    if (meta) *meta = got;
    return 0;
}

// Strict match of the state file's tensors with the optimizer's moments: every one present, same shape, nothing
// else. 0 or -1 with err naming the file.
static int check_moments(const SafeTensors *st, const ParamTable *pt, const Optimizer *o, AvtErr *err) {
    int want = 0;
    char name[sizeof pt->p->name + 2];
    for (int i = 0; i < pt->n; i++) {
        if (!o->m[i]) continue;
        const Tensor *t = &pt->p[i].t;
        for (int k = 0; k < 2; k++, want++) {
            snprintf(name, sizeof name, "%c.%s", "mv"[k], pt->p[i].name);
            const StTensor *s = st_find(st, name);
            if (!s) return avt_err_set(err, "%s: missing tensor '%s'", st->path, name);
            int same = s->ndim == t->ndim;
            for (int d = 0; same && d < t->ndim; d++) same = s->shape[d] == t->shape[d];
            if (!same) return avt_err_set(err, "%s: tensor '%s' does not have the shape of '%s'", st->path, name,
                                          pt->p[i].name);
        }
    }
    if (st->n != want)
        for (int j = 0; j < st->n; j++) {
            const char *nm = st->t[j].name;
            const Param *p = (nm[0] == 'm' || nm[0] == 'v') && nm[1] == '.' ? params_find(pt, nm + 2) : NULL;
            if (!p || !o->m[p - pt->p])
                return avt_err_set(err, "%s: unexpected tensor '%s' (no such trained tensor)", st->path, nm);
        }
    return st->n == want ? 0 : avt_err_set(err, "%s: %d tensors, expected %d", st->path, st->n, want);
}

static void copy_moments(const SafeTensors *st, const ParamTable *pt, Optimizer *o) {
    const Backend *be = o->moments.be;
    size_t most = 0;
    for (int i = 0; i < pt->n; i++) most = pt->p[i].t.size > most ? pt->p[i].t.size : most;
    float *stage = be->host_memory ? NULL : malloc_check(most * sizeof(float)); // (most) host staging
    char name[sizeof pt->p->name + 2];
    for (int i = 0; i < pt->n; i++) {
        if (!o->m[i]) continue;
        for (int k = 0; k < 2; k++) {
            snprintf(name, sizeof name, "%c.%s", "mv"[k], pt->p[i].name);
            const StTensor *s = st_find(st, name);
            float *dst = k ? o->v[i] : o->m[i];
            st_copy_f32(stage ? stage : dst, s);
            if (stage) be->upload(dst, stage, s->numel * sizeof(float));
        }
    }
    free(stage);
}

int ckpt_load(const char *ckpt_dir, AvtModel *m, Optimizer *o, CkptMeta *meta, AvtErr *err) {
    char p[CKPT_PATH_LEN];
    if (path_fmt(p, err, "%s/DONE", ckpt_dir)) return -1;
    if (!exists(p)) return avt_err_set(err, "%s: not a complete checkpoint (no DONE marker)", ckpt_dir);
    if (o->n != m->params.n)
        return avt_err_set(err, "%s: the optimizer has %d tensors, the model %d", ckpt_dir, o->n, m->params.n);
    SafeTensors state, model;
    memset(&model, 0, sizeof model);
    if (path_fmt(p, err, "%s/state.safetensors", ckpt_dir) || st_open(&state, p, err)) return -1;
    int rc = check_moments(&state, &m->params, o, err);
    if (rc == 0) rc = read_state_meta(&state, o, meta, err);
    if (rc == 0) rc = path_fmt(p, err, "%s/model.safetensors", ckpt_dir);
    if (rc == 0) rc = st_open(&model, p, err);
    if (rc == 0) {
        // params_load fills host memory: device parameters visit the host
        const Backend *be = m->params.data.be;
        if (!be->host_memory) params_to(&m->params, &BACKEND_CPU);
        rc = params_load(&m->params, &model, err);
        if (!be->host_memory) params_to(&m->params, be);
    }
    if (rc == 0) copy_moments(&state, &m->params, o);
    st_close(&model);
    st_close(&state);
    return rc;
}
