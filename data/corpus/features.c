// Readers for the paper's feature files (TRILL CSV, OpenFace 2.x CSV), and .npy float32 arrays as features.
// Text is read one line at a time (getline) and parsed in place with strtof, so cost is linear in the file size.
#include "data/corpus/features.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define OPENFACE_TAIL 35    // every OpenFace 2.x row ends with 17 AU*_r then 18 AU*_c columns
#define VIDEO_STRIDE 6      // authors' values[::6]: 30 fps -> 5 steps/s
#define SHOW_MAX 48         // longest cell / name quoted in an error message

static const char *const AU_R_NAMES[OPENFACE_AU_DIM] = {
    "AU01_r", "AU02_r", "AU04_r", "AU05_r", "AU06_r", "AU07_r", "AU09_r", "AU10_r", "AU12_r",
    "AU14_r", "AU15_r", "AU17_r", "AU20_r", "AU23_r", "AU25_r", "AU26_r", "AU45_r",
};

static bool is_npy(const char *path) {
    size_t n = strlen(path);
    return n >= 4 && strcasecmp(path + n - 4, ".npy") == 0;
}

static bool is_space(char c) { return c == ' ' || c == '\t'; }

// ---------------------------------------------------------------------------------------------------------------
// Growable (rows, D) buffer: capacity doubles, so appending T rows costs O(T * D).

typedef struct {
    float *data;
    size_t rows, cap;
    int D;
} RowBuf;

// Slot for one more row, not yet counted: the caller bumps rows only if it keeps the row. NULL if T would overflow int.
static float *rowbuf_slot(RowBuf *b) {
    if (b->rows >= (size_t)INT_MAX) return NULL;
    if (b->rows == b->cap) {
        size_t cap = b->cap ? 2 * b->cap : 64;
        if (cap > (size_t)INT_MAX) cap = (size_t)INT_MAX;
        size_t row_bytes = (size_t)b->D * sizeof(float);
        if (cap > SIZE_MAX / row_bytes) return NULL;
        float *p = realloc(b->data, cap * row_bytes);
        if (!p) avt_fatal("out of memory growing a feature buffer to %zu rows x %d", cap, b->D);
        b->data = p;
        b->cap = cap;
    }
    return b->data + b->rows * (size_t)b->D;
}

// Hands the rows to out; trims the spare capacity since thousands of these may stay resident.
static void rowbuf_finish(RowBuf *b, Features *out) {
    if (b->rows == 0) {
        free(b->data);
        b->data = malloc_check(sizeof(float)); // T = 0 still gets a valid pointer
    } else if (b->rows < b->cap) {
        float *p = realloc(b->data, b->rows * (size_t)b->D * sizeof(float));
        if (p) b->data = p;
    }
    out->data = b->data;
    out->T = (int)b->rows;
    out->D = b->D;
    b->data = NULL;
}

// ---------------------------------------------------------------------------------------------------------------
// Line reader: hands out non-blank lines without their line ending, and tracks 1-based line numbers for errors.

typedef struct {
    const char *path;
    FILE *f;
    char *buf;
    size_t cap;
    long lineno; // number of the line last returned
} Lines;

static int lines_open(Lines *r, const char *path, AvtErr *err) {
    memset(r, 0, sizeof *r);
    r->path = path;
    r->f = fopen(path, "rb");
    if (!r->f) return avt_err_set(err, "%s: cannot open: %s", path, strerror(errno));
    return 0;
}

static void lines_close(Lines *r) {
    if (r->f) fclose(r->f); // read-only: nothing to lose on close
    free(r->buf);
    memset(r, 0, sizeof *r);
}

// End of a CSV read: an empty file is an error; on success the rows go to out, on failure everything is freed.
static int csv_finish(Lines *r, RowBuf *b, int rc, long ndata, Features *out, AvtErr *err) {
    if (rc == 0 && ndata == 0) rc = avt_err_set(err, "%s: empty file (no feature rows)", r->path);
    lines_close(r);
    if (rc != 0) {
        free(b->data);
        b->data = NULL;
        return -1;
    }
    rowbuf_finish(b, out);
    return 0;
}

// Next non-blank line in *line (NUL-terminated, "\n" / "\r\n" removed). Returns its length (> 0), 0 at end of
// file, -1 on a read error (err set).
static long lines_next(Lines *r, char **line, AvtErr *err) {
    for (;;) {
        errno = 0;
        ssize_t n = getline(&r->buf, &r->cap, r->f);
        if (n < 0) {
            if (ferror(r->f)) return avt_err_set(err, "%s: read error: %s", r->path, strerror(errno ? errno : EIO));
            return 0;
        }
        r->lineno++;
        char *s = r->buf;
        if (r->lineno == 1 && n >= 3 && memcmp(s, "\xEF\xBB\xBF", 3) == 0) { // UTF-8 BOM some tools prepend
            s += 3;
            n -= 3;
        }
        if (n > 0 && s[n - 1] == '\n') n--;
        if (n > 0 && s[n - 1] == '\r') n--;
        s[n] = '\0';
        for (ssize_t i = 0; i < n; i++) {
            if (!is_space(s[i])) {
                *line = s;
                return (long)n;
            }
        }
        // completely blank line: skipped, as pandas does
    }
}

// Cells in a line = commas + 1 (memchr, so an embedded NUL cannot hide a comma).
static int count_cells(const char *s, long len) {
    int n = 1;
    const char *end = s + len;
    for (const char *p = s; (p = memchr(p, ',', (size_t)(end - p))) != NULL; p++) n++;
    return n;
}

static int bad_cell(const Lines *r, const char *cell, const char *line_end, int col, AvtErr *err) {
    while (cell < line_end && is_space(*cell)) cell++;
    const char *e = cell < line_end ? memchr(cell, ',', (size_t)(line_end - cell)) : NULL;
    if (!e) e = line_end;
    while (e > cell && is_space(e[-1])) e--;
    int len = (int)(e - cell);
    return avt_err_set(err, "%s:%ld: column %d: '%.*s%s' is not a number", r->path, r->lineno, col + 1,
                       len > SHOW_MAX ? SHOW_MAX : len, cell, len > SHOW_MAX ? "..." : "");
}

// Parses all ncols cells of a line known to hold exactly ncols cells; cells [keep, keep + nkeep) go to dst.
// Returns 1 if a kept cell is NaN (row to drop), 0 if not, -1 on a non-numeric cell (err set).
static int parse_row(const Lines *r, char *line, long len, int ncols, int keep, int nkeep, float *dst,
                     AvtErr *err) {
    const char *line_end = line + len;
    char *s = line;
    int has_nan = 0;
    for (int c = 0; c < ncols; c++) {
        char *end;
        float v = strtof(s, &end); // also takes "nan", "NaN", "-nan", "inf"; skips leading blanks
        char *q = end;
        while (is_space(*q)) q++;
        bool ok = end != s && (c < ncols - 1 ? *q == ',' : q == line_end);
        if (!ok) return bad_cell(r, s, line_end, c, err);
        if (c >= keep && c < keep + nkeep) {
            dst[c - keep] = v;
            has_nan |= isnan(v) != 0;
        }
        s = q + 1;
    }
    return has_nan;
}

// ---------------------------------------------------------------------------------------------------------------
// A .npy (T, expected_D) array as features: used as is (no subsampling), rows holding a NaN dropped.

static int read_npy_features(Features *out, const char *path, int expected_D, AvtErr *err) {
    float *data;
    int ndim;
    int64_t shape[NPY_MAX_NDIM];
    if (npy_read_f32(path, &data, &ndim, shape, err)) return -1;
    if (ndim != 2) {
        char dims[160] = "";
        size_t off = 0;
        for (int i = 0; i < ndim && off < sizeof dims; i++)
            off += (size_t)snprintf(dims + off, sizeof dims - off, "%s%lld", i ? ", " : "", (long long)shape[i]);
        free(data);
        return avt_err_set(err, "%s: expected a 2-D (T, %d) array, got shape (%s%s)", path, expected_D, dims,
                           ndim == 1 ? "," : "");
    }
    if (shape[1] != expected_D || shape[0] > INT_MAX) {
        free(data);
        if (shape[1] != expected_D)
            return avt_err_set(err, "%s: expected %d columns, got shape (%lld, %lld)", path, expected_D,
                               (long long)shape[0], (long long)shape[1]);
        return avt_err_set(err, "%s: too many rows (%lld)", path, (long long)shape[0]);
    }
    // Drop NaN rows by compacting in place.
    size_t D = (size_t)expected_D, kept = 0;
    for (size_t t = 0; t < (size_t)shape[0]; t++) {
        const float *row = data + t * D;
        bool has_nan = false;
        for (size_t j = 0; j < D; j++) has_nan |= isnan(row[j]) != 0;
        if (has_nan) continue;
        if (kept != t) memmove(data + kept * D, row, D * sizeof(float));
        kept++;
    }
    RowBuf b = {.data = data, .rows = kept, .cap = (size_t)shape[0], .D = expected_D};
    rowbuf_finish(&b, out);
    return 0;
}

// ---------------------------------------------------------------------------------------------------------------
// Audio: headerless CSV, expected_D cells a row.

int features_read_audio(Features *out, const char *path, int expected_D, AvtErr *err) {
    memset(out, 0, sizeof *out);
    if (expected_D <= 0) return avt_err_set(err, "%s: expected_D must be positive, got %d", path, expected_D);
    if (is_npy(path)) return read_npy_features(out, path, expected_D, err);

    Lines r;
    if (lines_open(&r, path, err)) return -1;
    RowBuf b = {.D = expected_D};
    long ndata = 0, n;
    int rc = 0;
    char *s;
    while ((n = lines_next(&r, &s, err)) > 0) {
        int nc = count_cells(s, n);
        if (nc != expected_D) {
            rc = avt_err_set(err, "%s:%ld: expected %d columns, got %d", path, r.lineno, expected_D, nc);
            break;
        }
        float *row = rowbuf_slot(&b);
        if (!row) {
            rc = avt_err_set(err, "%s:%ld: too many rows", path, r.lineno);
            break;
        }
        int st = parse_row(&r, s, n, nc, 0, nc, row, err);
        if (st < 0) {
            rc = -1;
            break;
        }
        ndata++;
        if (st == 0) b.rows++; // a NaN row stays in the slot and is overwritten by the next one
    }
    if (n < 0) rc = -1;
    return csv_finish(&r, &b, rc, ndata, out, err);
}

// ---------------------------------------------------------------------------------------------------------------
// Video: OpenFace 2.x CSV. Authors' Python: values[::6][:, -35:-18], then rows with a NaN dropped.

// Checks the header line and returns its column count, or -1 (err set).
static int openface_header(const Lines *r, const char *s, long len, AvtErr *err) {
    int ncols = count_cells(s, len);
    if (ncols < OPENFACE_TAIL)
        return avt_err_set(err, "%s:%ld: not an OpenFace 2.x CSV: the header has %d columns, need at least %d",
                           r->path, r->lineno, ncols, OPENFACE_TAIL);
    const char *end = s + len, *cell = s;
    int first = ncols - OPENFACE_TAIL;
    for (int c = 0; c < first + OPENFACE_AU_DIM; c++) {
        const char *e = memchr(cell, ',', (size_t)(end - cell));
        if (!e) e = end;
        if (c >= first) {
            const char *a = cell, *z = e;
            while (a < z && is_space(*a)) a++;
            while (z > a && is_space(z[-1])) z--;
            const char *want = AU_R_NAMES[c - first];
            size_t nlen = (size_t)(z - a);
            if (nlen != strlen(want) || memcmp(a, want, nlen) != 0) {
                int show = nlen > SHOW_MAX ? SHOW_MAX : (int)nlen;
                return avt_err_set(err, "%s:%ld: not an OpenFace 2.x CSV: column %d is '%.*s', expected '%s'",
                                   r->path, r->lineno, c + 1, show, a, want);
            }
        }
        cell = e + 1;
    }
    return ncols;
}

int features_read_video(Features *out, const char *path, int expected_D, AvtErr *err) {
    memset(out, 0, sizeof *out);
    if (expected_D <= 0) return avt_err_set(err, "%s: expected_D must be positive, got %d", path, expected_D);
    if (is_npy(path)) return read_npy_features(out, path, expected_D, err);
    if (expected_D != OPENFACE_AU_DIM)
        return avt_err_set(err, "%s: an OpenFace CSV gives %d AU intensity columns, but expected_D is %d", path,
                           OPENFACE_AU_DIM, expected_D);

    Lines r;
    if (lines_open(&r, path, err)) return -1;
    RowBuf b = {.D = OPENFACE_AU_DIM};
    char *s;
    long n = lines_next(&r, &s, err);
    int rc = 0, ncols = 0;
    if (n == 0) rc = avt_err_set(err, "%s: empty file (no header row)", path);
    else if (n < 0 || (ncols = openface_header(&r, s, n, err)) < 0) rc = -1;

    long ndata = 0;
    int keep = ncols - OPENFACE_TAIL;
    while (rc == 0 && (n = lines_next(&r, &s, err)) > 0) {
        int nc = count_cells(s, n);
        if (nc != ncols) {
            rc = avt_err_set(err, "%s:%ld: expected %d columns (as in the header), got %d", path, r.lineno, ncols,
                             nc);
            break;
        }
        if (ndata++ % VIDEO_STRIDE != 0) continue; // rows that ::6 skips are never parsed
        float *row = rowbuf_slot(&b);
        if (!row) {
            rc = avt_err_set(err, "%s:%ld: too many rows", path, r.lineno);
            break;
        }
        int st = parse_row(&r, s, n, nc, keep, OPENFACE_AU_DIM, row, err);
        if (st < 0) rc = -1;
        else if (st == 0) b.rows++;
    }
    if (rc == 0 && n < 0) rc = -1;
    return csv_finish(&r, &b, rc, ndata, out, err);
}

// ---------------------------------------------------------------------------------------------------------------

void features_align(Features *a, Features *v) {
    int T = a->T < v->T ? a->T : v->T;
    a->T = T; // rows past T stay allocated but unused; features_free releases them
    v->T = T;
}

void features_free(Features *f) {
    if (!f) return;
    free(f->data);
    memset(f, 0, sizeof *f);
}

int features_read_pair(Features *a, Features *v, const char *audio, const char *video, int d_a, int d_v,
                       AvtErr *err) {
    memset(v, 0, sizeof *v);
    if (features_read_audio(a, audio, d_a, err)) return -1;
    if (features_read_video(v, video, d_v, err)) {
        features_free(a);
        return -1;
    }
    features_align(a, v);
    if (a->T > 0) return 0;
    features_free(a);
    features_free(v);
    return avt_err_set(err, "%s + %s: no common steps left after dropping NaN rows", audio, video);
}
