#include "data/corpus/metadata.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

void corpus_rows_free(CorpusRow *rows, size_t n) {
    for (size_t i = 0; i < n; i++) {
        free(rows[i].audio);
        free(rows[i].video);
        free(rows[i].id);
        free(rows[i].speaker);
        free(rows[i].labels);
        free(rows[i].wav);
        free(rows[i].bad);
    }
    free(rows);
}

char *corpus_id(const char *path) {
    const char *s = path;
    for (;;) {
        if (*s == '/') s++;
        else if (s[0] == '.' && s[1] == '/') s += 2;
        else break;
    }
    char *id = asprintf_check("%s", s);
    char *slash = strrchr(id, '/'), *dot = strrchr(id, '.');
    if (dot && dot > (slash ? slash + 1 : id)) *dot = '\0';
    return id;
}

int corpus_is_voxceleb2_id(const char *s, size_t len) {
    if (len < 3 || s[0] != 'i' || s[1] != 'd') return 0;
    for (size_t k = 2; k < len; k++)
        if (s[k] < '0' || s[k] > '9') return 0;
    return 1;
}

void corpus_csv_field(FILE *f, const char *s) {
    if (!strpbrk(s, ",\"\r\n")) {
        fputs(s, f);
        return;
    }
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"') fputc('"', f);
        fputc(*s, f);
    }
    fputc('"', f);
}

// s without leading blanks and trailing blanks or line ending (cut in place).
static char *trim(char *s) {
    while (*s == ' ' || *s == '\t') s++;
    size_t n = strlen(s);
    while (n && strchr(" \t\r\n", s[n - 1])) s[--n] = '\0';
    return s;
}

// Whether rec ends inside a quoted field (corpus_csv_split's grammar): its record goes on on the next line.
static int quote_open(const char *rec) {
    int start = 1, quoted = 0; // at a field's start; inside a quoted field
    for (const char *c = rec; *c; c++) {
        if (quoted) {
            if (*c == '"' && c[1] == '"') c++;
            else if (*c == '"') quoted = 0;
        } else if (*c == ',') start = 1;
        else if (start && *c == '"') {
            quoted = 1;
            start = 0;
        } else if (*c != ' ' && *c != '\t') start = 0;
    }
    return quoted;
}

int corpus_csv_read(FILE *f, char **buf, size_t *cap, long *lineno) {
    if (getline(buf, cap, f) == -1) return -1;
    ++*lineno;
    char *more = NULL;
    size_t more_cap = 0;
    while (quote_open(*buf)) {
        ssize_t m = getline(&more, &more_cap, f);
        if (m == -1) break; // the split reports the open quote
        ++*lineno;
        size_t len = strlen(*buf);
        if (len + (size_t)m + 1 > *cap) {
            *cap = len + (size_t)m + 1;
            *buf = realloc(*buf, *cap);
            if (!*buf) avt_fatal("out of memory reading a CSV record");
        }
        memcpy(*buf + len, more, (size_t)m + 1);
    }
    free(more);
    size_t len = strlen(*buf);
    while (len && ((*buf)[len - 1] == '\n' || (*buf)[len - 1] == '\r')) (*buf)[--len] = '\0';
    return 0;
}

int corpus_csv_split(char *rec, CsvFields *f) {
    f->n = 0;
    for (char *c = rec;;) {
        if (f->n == f->cap) {
            f->cap = f->cap ? 2 * f->cap : 16;
            f->v = realloc(f->v, f->cap * sizeof *f->v);
            if (!f->v) avt_fatal("out of memory splitting a CSV record");
        }
        while (*c == ' ' || *c == '\t') c++;
        char *next;
        if (*c == '"') { // unquote in place: the text only shrinks
            char *out = ++c;
            f->v[f->n++] = out;
            for (;; c++) {
                if (*c == '\0') return -1;
                if (*c == '"' && c[1] != '"') break;
                *out++ = *c;
                if (*c == '"') c++;
            }
            c++;
            *out = '\0';
            while (*c == ' ' || *c == '\t' || *c == '\r' || *c == '\n') c++;
            if (*c != ',' && *c != '\0') return -1;
            next = *c ? c + 1 : NULL;
        } else {
            char *comma = strchr(c, ',');
            if (comma) *comma = '\0';
            f->v[f->n++] = trim(c);
            next = comma ? comma + 1 : NULL;
        }
        if (!next) return 0;
        c = next;
    }
}

// The malloc'd array grown to hold one more of n items of the given size.
static void *grow(void *items, size_t n, size_t *cap, size_t size, const char *path) {
    if (n < *cap) return items;
    *cap = *cap ? 2 * *cap : 64;
    items = realloc(items, *cap * size);
    if (!items) avt_fatal("out of memory reading %s", path);
    return items;
}

// ---- the paper's metadata ----

static char *speaker_of(const char *audio_field, const char *resolved) {
    for (const char *c = audio_field; *c;) {
        const char *e = strchr(c, '/');
        size_t len = e ? (size_t)(e - c) : strlen(c);
        if (e && corpus_is_voxceleb2_id(c, len)) return asprintf_check("%.*s", (int)len, c); // not the file name
        c = e ? e + 1 : c + len;
    }
    const char *file = strrchr(resolved, '/');
    if (!file) return asprintf_check(".");
    const char *dir = file;
    while (dir > resolved && dir[-1] != '/') dir--;
    return dir == file ? asprintf_check("/") : asprintf_check("%.*s", (int)(file - dir), dir);
}

static int cmp_row_id(const void *a, const void *b) {
    const CorpusRow *x = *(const CorpusRow *const *)a, *y = *(const CorpusRow *const *)b;
    int c = strcmp(x->id, y->id);
    return c ? c : (x->line > y->line) - (x->line < y->line);
}

// Later rows with an id an earlier row holds are marked bad.
static void mark_duplicates(CorpusRow *rows, size_t n, const char *path) {
    CorpusRow **by_id = malloc_check(n * sizeof *by_id);
    for (size_t i = 0; i < n; i++) by_id[i] = &rows[i];
    qsort(by_id, n, sizeof *by_id, cmp_row_id);
    for (size_t i = 1; i < n; i++) {
        CorpusRow *a = by_id[i - 1], *b = by_id[i];
        if (*b->id && !b->bad && strcmp(a->id, b->id) == 0)
            b->bad = asprintf_check("%s:%ld: duplicate utterance id '%s' (first on line %ld)", path, b->line, b->id,
                                   a->line);
    }
    free(by_id);
}

// A metadata header naming its columns (see metadata_read).
typedef struct {
    size_t n;                         // fields of every row
    size_t audio, video, id, speaker; // their columns; id and speaker NO_COLUMN when absent
    size_t *further, n_further;       // the label columns
    char *columns;                    // their names, as labels.csv's header takes them
} Header;
#define NO_COLUMN SIZE_MAX

static size_t column_of(const CsvFields *f, const char *name) {
    for (size_t k = 0; k < f->n; k++)
        if (strcmp(f->v[k], name) == 0) return k;
    return NO_COLUMN;
}

// The fields v[idx[k]] (k < n) as CSV fields, comma-joined: labels.csv's form.
static char *csv_join(char *const *v, const size_t *idx, size_t n) {
    char *s = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&s, &len);
    if (!m) avt_fatal("out of memory");
    for (size_t k = 0; k < n; k++) {
        if (k) fputc(',', m);
        corpus_csv_field(m, v[idx[k]]);
    }
    if (fclose(m) != 0) avt_fatal("out of memory");
    return s;
}

static int header_read(Header *h, const CsvFields *f, const char *path, long line, AvtErr *err) {
    for (size_t k = 0; k < f->n; k++) {
        if (!*f->v[k]) return avt_err_set(err, "%s:%ld: header column %zu has no name", path, line, k + 1);
        for (size_t j = 0; j < k; j++)
            if (strcmp(f->v[j], f->v[k]) == 0)
                return avt_err_set(err, "%s:%ld: the header names column '%s' twice", path, line, f->v[k]);
    }
    h->n = f->n;
    h->audio = column_of(f, "audio");
    h->video = column_of(f, "video");
    if (h->audio == NO_COLUMN || h->video == NO_COLUMN)
        return avt_err_set(err, "%s:%ld: the header names '%s' but no '%s' column", path, line,
                           h->audio == NO_COLUMN ? "video" : "audio", h->audio == NO_COLUMN ? "audio" : "video");
    h->id = column_of(f, "id");
    h->speaker = column_of(f, "speaker");
    h->further = malloc_check(f->n * sizeof *h->further);
    h->n_further = 0;
    for (size_t k = 0; k < f->n; k++)
        if (k != h->audio && k != h->video && k != h->id && k != h->speaker) h->further[h->n_further++] = k;
    h->columns = csv_join(f->v, h->further, h->n_further);
    return 0;
}

// Row r's paths, id, speaker and labels from its fields: as the header h names them, or (h NULL) the paper's.
static void row_fill(CorpusRow *r, const CsvFields *f, const Header *h, const char *path, int dir_len) {
    if (h && f->n != h->n) {
        r->bad = asprintf_check("%s:%ld: expected %zu fields as the header, got %zu", path, r->line, h->n, f->n);
        return;
    }
    const char *audio = f->v[h ? h->audio : 0], *video = h ? f->v[h->video] : f->n > 1 ? f->v[1] : "";
    if (!*audio || !*video) {
        r->bad = h ? asprintf_check("%s:%ld: empty %s path", path, r->line, *audio ? "video" : "audio")
                   : asprintf_check("%s:%ld: expected 'audio_csv,openface_csv[,seq_len[,masking_list]]'", path,
                                    r->line);
        return;
    }
    r->audio = audio[0] == '/' ? asprintf_check("%s", audio) : asprintf_check("%.*s%s", dir_len, path, audio);
    r->video = video[0] == '/' ? asprintf_check("%s", video) : asprintf_check("%.*s%s", dir_len, path, video);
    r->id = h && h->id != NO_COLUMN ? asprintf_check("%s", f->v[h->id]) : corpus_id(audio);
    r->speaker = h && h->speaker != NO_COLUMN ? asprintf_check("%s", f->v[h->speaker]) : speaker_of(audio, r->audio);
    if (h) r->labels = csv_join(f->v, h->further, h->n_further);
    if (!*r->id || !*r->speaker)
        r->bad = asprintf_check("%s:%ld: empty %s", path, r->line, *r->id ? "speaker" : "id");
    else if (strlen(r->id) > STORE_ID_MAX)
        r->bad = asprintf_check("%s:%ld: utterance id '%.60s...' is longer than %d bytes", path, r->line, r->id,
                                STORE_ID_MAX);
}

int metadata_read(const char *path, CorpusRow **rows_out, size_t *n_out, char **columns, AvtErr *err) {
    *rows_out = NULL;
    *n_out = 0;
    *columns = NULL;
    FILE *f = fopen(path, "r");
    if (!f) return avt_err_set(err, "%s: cannot open: %s", path, strerror(errno));
    const char *slash = strrchr(path, '/');
    int dir_len = slash ? (int)(slash - path + 1) : 0; // with its trailing '/'
    CorpusRow *rows = NULL;
    size_t n = 0, cap = 0, rec_cap = 0;
    Header h = {0};
    CsvFields fields = {0};
    int seen = 0, named = 0, rc = 0;
    char *rec = NULL;
    long lineno = 0;
    for (long at = 1; rc == 0 && corpus_csv_read(f, &rec, &rec_cap, &lineno) == 0; at = lineno + 1) {
        char *s = rec + strspn(rec, " \t");
        if (*s == '\0' || *s == '#') continue;
        int broken = corpus_csv_split(s, &fields);
        if (!seen++ && !broken) {
            if (column_of(&fields, "audio") != NO_COLUMN || column_of(&fields, "video") != NO_COLUMN) {
                rc = header_read(&h, &fields, path, at, err);
                named = 1;
                continue;
            }
            if (!strchr(fields.v[0], '.') && (fields.n < 2 || !strchr(fields.v[1], '.'))) continue; // the paper's
        }
        rows = grow(rows, n, &cap, sizeof *rows, path);
        CorpusRow *r = &rows[n++];
        memset(r, 0, sizeof *r);
        r->line = at;
        if (broken)
            r->bad = asprintf_check("%s:%ld: malformed quoting (a quote left open, or text after a closing one)", path,
                                    at);
        else row_fill(r, &fields, named ? &h : NULL, path, dir_len);
        if (!r->id) r->id = asprintf_check("%s", "");
    }
    if (rc == 0 && ferror(f)) rc = avt_err_set(err, "%s: read error", path);
    if (rc == 0 && n == 0) rc = avt_err_set(err, "%s: no rows", path);
    free(rec);
    free(fields.v);
    free(h.further);
    fclose(f); // read-only: nothing to lose on close
    if (rc) {
        free(h.columns);
        corpus_rows_free(rows, n);
        return -1;
    }
    mark_duplicates(rows, n, path);
    *rows_out = rows;
    *n_out = n;
    *columns = h.columns;
    return 0;
}

typedef struct {
    const char *path, *columns;
    const CorpusRow *rows;
    size_t n;
} LabelsCtx;

static int labels_write_fn(FILE *f, void *ctx, AvtErr *err) {
    const LabelsCtx *c = ctx;
    int more = c->columns && *c->columns;
    fprintf(f, "id,speaker%s%s\n", more ? "," : "", more ? c->columns : "");
    for (size_t i = 0; i < c->n; i++) {
        const CorpusRow *r = &c->rows[i];
        if (!r->stored) continue;
        corpus_csv_field(f, r->id);
        fputc(',', f);
        corpus_csv_field(f, r->speaker);
        if (more) fprintf(f, ",%s", r->labels);
        fputc('\n', f);
    }
    return ferror(f) ? avt_err_set(err, "%s: write failed: %s", c->path, strerror(errno)) : 0;
}

int corpus_write_labels(const char *path, const char *columns, const CorpusRow *rows, size_t n, AvtErr *err) {
    LabelsCtx c = {path, columns, rows, n};
    return avt_write_atomic(path, labels_write_fn, &c, err);
}

// ---- avt embed ----

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

// A name two of the n carry, or NULL.
static const char *duplicate(char *const *names, size_t n) {
    char **sorted = malloc_check(n * sizeof *sorted);
    memcpy(sorted, names, n * sizeof *sorted);
    qsort(sorted, n, sizeof *sorted, cmp_str);
    const char *dup = NULL;
    for (size_t i = 1; i < n && !dup; i++)
        if (strcmp(sorted[i - 1], sorted[i]) == 0) dup = sorted[i];
    free(sorted);
    return dup;
}

// The file name of path without its extension.
static char *base_name(const char *path) {
    const char *s = strrchr(path, '/');
    char *b = asprintf_check("%s", s ? s + 1 : path);
    char *dot = strrchr(b, '.');
    if (dot && dot != b) *dot = '\0';
    return b;
}

void embed_pairs_free(EmbedPair *pairs, size_t n) {
    for (size_t i = 0; i < n; i++) {
        free(pairs[i].audio);
        free(pairs[i].video);
        free(pairs[i].name);
    }
    free(pairs);
}

// One line of the pairs list into p, or -1 (err set). Returns 1 for a header line.
static int pair_line(char *s, EmbedPair *p, int first, const char *path, long lineno, AvtErr *err) {
    char *fields[4] = {0};
    int nf = 0;
    for (char *tok = s; tok && nf < 4; nf++) {
        char *comma = strchr(tok, ',');
        if (comma) *comma = '\0';
        fields[nf] = trim(tok);
        tok = comma ? comma + 1 : NULL;
    }
    if (first && strcmp(fields[0], "audio") == 0 &&
        ((nf == 2 && strcmp(fields[1], "video") == 0) || (nf == 3 && strcmp(fields[2], "name") == 0)))
        return 1;
    if (nf < 2 || nf > 3 || !*fields[0] || !*fields[1] || (nf == 3 && !*fields[2]))
        return avt_err_set(err, "%s:%ld: expected 'audio,video[,name]'", path, lineno);
    if (nf == 3 && (strchr(fields[2], '/') || strcmp(fields[2], "..") == 0 || strcmp(fields[2], ".") == 0))
        return avt_err_set(err, "%s:%ld: name '%s' must be a plain file name", path, lineno, fields[2]);
    p->audio = asprintf_check("%s", fields[0]);
    p->video = asprintf_check("%s", fields[1]);
    p->name = nf == 3 ? asprintf_check("%s", fields[2]) : base_name(fields[0]);
    return 0;
}

int embed_pairs_read(const char *path, EmbedPair **pairs_out, size_t *n_out, AvtErr *err) {
    *pairs_out = NULL;
    *n_out = 0;
    FILE *f = fopen(path, "r");
    if (!f) return avt_err_set(err, "%s: cannot open: %s", path, strerror(errno));
    EmbedPair *p = NULL;
    size_t n = 0, cap = 0, len = 0;
    long lineno = 0;
    int rc = 0;
    char *line = NULL;
    while (rc == 0 && getline(&line, &len, f) != -1) {
        lineno++;
        char *s = trim(line);
        if (*s == '\0' || *s == '#') continue;
        p = grow(p, n, &cap, sizeof *p, path);
        rc = pair_line(s, &p[n], n == 0, path, lineno, err);
        if (rc == 0) n++;
        else if (rc == 1) rc = 0;
    }
    if (rc == 0 && ferror(f)) rc = avt_err_set(err, "%s: read error", path);
    free(line);
    fclose(f); // read-only: nothing to lose on close
    if (rc == 0 && n == 0) rc = avt_err_set(err, "%s: no pairs listed", path);
    if (rc == 0) {
        char **names = malloc_check(n * sizeof *names);
        for (size_t i = 0; i < n; i++) names[i] = p[i].name;
        const char *dup = duplicate(names, n);
        if (dup)
            rc = avt_err_set(err, "%s: two pairs write '%s.npy' (give a third column with distinct names)", path, dup);
        free(names);
    }
    if (rc) {
        embed_pairs_free(p, n);
        return -1;
    }
    *pairs_out = p;
    *n_out = n;
    return 0;
}

char **embed_store_names(const Store *s, const char *store_dir, AvtErr *err) {
    size_t n = store_size(s);
    char **names = malloc_check((n ? n : 1) * sizeof *names);
    for (size_t i = 0; i < n; i++) {
        names[i] = asprintf_check("%s", store_id(s, i));
        for (char *q = names[i]; *q; q++)
            if (*q == '/') *q = '_';
    }
    const char *dup = duplicate(names, n);
    if (!dup) return names;
    avt_err_set(err, "%s: two utterance ids give the file name '%s.npy'", store_dir, dup);
    for (size_t i = 0; i < n; i++) free(names[i]);
    free(names);
    return NULL;
}

typedef struct {
    const char *path;
    const Store *s;
    char *const *names;
} IndexCtx;

static int index_write_fn(FILE *f, void *ctx, AvtErr *err) {
    const IndexCtx *c = ctx;
    fputs("file,id,speaker,steps\n", f);
    for (size_t i = 0; i < store_size(c->s); i++) {
        char file[STORE_ID_MAX + 8]; // a name is an id with '/' as '_'
        snprintf(file, sizeof file, "%s.npy", c->names[i]);
        corpus_csv_field(f, file);
        fputc(',', f);
        corpus_csv_field(f, store_id(c->s, i));
        fputc(',', f);
        corpus_csv_field(f, store_speaker_name(c->s, store_speaker(c->s, i)));
        fprintf(f, ",%d\n", store_len(c->s, i));
    }
    return ferror(f) ? avt_err_set(err, "%s: write failed: %s", c->path, strerror(errno)) : 0;
}

int embed_index_write(const char *path, const Store *s, char *const *names, AvtErr *err) {
    IndexCtx c = {path, s, names};
    return avt_write_atomic(path, index_write_fn, &c, err);
}
