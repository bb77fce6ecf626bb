// Readers for the paper's feature files (TRILL CSV, OpenFace 2.x CSV) and .npy float32 arrays.
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
#include <sys/stat.h>
#include <sys/types.h>

// '<f4' data is moved as raw bytes; a big-endian host would need byte swaps.
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
#error "data/corpus/features.c assumes a little-endian host"
#endif

#define OPENFACE_TAIL 35    // every OpenFace 2.x row ends with 17 AU*_r then 18 AU*_c columns
#define VIDEO_STRIDE 6      // authors' values[::6]: 30 fps -> 5 steps/s
#define NPY_MAX_NDIM 8
#define NPY_MAX_HEADER (1u << 20) // far above any real header; guards malloc against a corrupt length
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
// Audio: headerless CSV, expected_D cells a row.

static int read_npy_features(Features *out, const char *path, int expected_D, AvtErr *err);

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

// ---------------------------------------------------------------------------------------------------------------
// .npy: "\x93NUMPY", version, header length (u16 for 1.0, u32 for 2.0/3.0), a Python dict literal, raw data.

typedef struct {
    int ndim;
    int64_t shape[NPY_MAX_NDIM];
} NpyShape;

// Pointer just past "'key':" in the header dict, or NULL.
static const char *npy_key(const char *h, const char *key) {
    char q1[32], q2[32];
    snprintf(q1, sizeof q1, "'%s'", key);
    snprintf(q2, sizeof q2, "\"%s\"", key);
    const char *p = strstr(h, q1);
    if (!p) p = strstr(h, q2);
    if (!p) return NULL;
    p += strlen(q1);
    while (is_space(*p)) p++;
    if (*p != ':') return NULL;
    p++;
    while (is_space(*p)) p++;
    return p;
}

static int npy_parse_header(const char *path, const char *h, NpyShape *sh, AvtErr *err) {
    const char *p = npy_key(h, "descr");
    if (!p) return avt_err_set(err, "%s: malformed .npy header (no 'descr')", path);
    if (*p != '\'' && *p != '"') {
        int len = (int)strcspn(p, "}");
        return avt_err_set(err, "%s: dtype %.*s is not supported (need '<f4' float32)", path,
                           len > SHOW_MAX ? SHOW_MAX : len, p);
    }
    const char *e = strchr(p + 1, *p);
    if (!e) return avt_err_set(err, "%s: malformed .npy header (unterminated 'descr')", path);
    int dlen = (int)(e - p - 1);
    if (dlen != 3 || memcmp(p + 1, "<f4", 3) != 0)
        return avt_err_set(err, "%s: dtype '%.*s' is not supported (need '<f4' float32)", path,
                           dlen > SHOW_MAX ? SHOW_MAX : dlen, p + 1);

    p = npy_key(h, "fortran_order");
    if (!p) return avt_err_set(err, "%s: malformed .npy header (no 'fortran_order')", path);
    if (strncmp(p, "True", 4) == 0)
        return avt_err_set(err, "%s: fortran_order True is not supported (need a C-order array)", path);
    if (strncmp(p, "False", 5) != 0) return avt_err_set(err, "%s: malformed .npy header ('fortran_order')", path);

    p = npy_key(h, "shape");
    if (!p || *p != '(') return avt_err_set(err, "%s: malformed .npy header (no 'shape' tuple)", path);
    p++;
    sh->ndim = 0;
    for (;;) {
        while (is_space(*p)) p++;
        if (*p == ')') break;
        if (*p < '0' || *p > '9') return avt_err_set(err, "%s: malformed .npy header ('shape')", path);
        errno = 0;
        char *q;
        long long d = strtoll(p, &q, 10);
        if (errno == ERANGE) return avt_err_set(err, "%s: .npy shape dimension out of range", path);
        if (sh->ndim == NPY_MAX_NDIM)
            return avt_err_set(err, "%s: .npy arrays of rank above %d are not supported", path, NPY_MAX_NDIM);
        sh->shape[sh->ndim++] = (int64_t)d;
        p = q;
        if (*p == 'L') p++; // Python 2 wrote long ints as 3L
        while (is_space(*p)) p++;
        if (*p == ',') p++;
        else if (*p != ')') return avt_err_set(err, "%s: malformed .npy header ('shape')", path);
    }
    return 0;
}

int npy_read_f32(const char *path, float **data, int *ndim, int64_t *shape, AvtErr *err) {
    *data = NULL;
    *ndim = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return avt_err_set(err, "%s: cannot open: %s", path, strerror(errno));
    char *h = NULL;
    float *buf = NULL;
    int rc = 0;
    unsigned char pre[12];
    size_t got = fread(pre, 1, 10, f);
    if (got < 8 || memcmp(pre, "\x93NUMPY", 6) != 0) {
        rc = avt_err_set(err, "%s: not a .npy file (bad magic)", path);
        goto done;
    }
    int major = pre[6];
    size_t hlen, hoff;
    if (major == 1) {
        if (got < 10) {
            rc = avt_err_set(err, "%s: truncated .npy header", path);
            goto done;
        }
        hlen = (size_t)pre[8] | (size_t)pre[9] << 8;
        hoff = 10;
    } else if (major == 2 || major == 3) { // 3.0 differs only in allowing utf-8 in the header
        if (got < 10 || fread(pre + 10, 1, 2, f) != 2) {
            rc = avt_err_set(err, "%s: truncated .npy header", path);
            goto done;
        }
        hlen = (size_t)pre[8] | (size_t)pre[9] << 8 | (size_t)pre[10] << 16 | (size_t)pre[11] << 24;
        hoff = 12;
    } else {
        rc = avt_err_set(err, "%s: unsupported .npy version %d.%d", path, major, pre[7]);
        goto done;
    }
    if (hlen > NPY_MAX_HEADER) {
        rc = avt_err_set(err, "%s: .npy header length %zu is implausible", path, hlen);
        goto done;
    }
    h = malloc_check(hlen + 1);
    if (fread(h, 1, hlen, f) != hlen) {
        rc = avt_err_set(err, "%s: truncated .npy header", path);
        goto done;
    }
    h[hlen] = '\0';
    NpyShape sh = {0};
    if ((rc = npy_parse_header(path, h, &sh, err)) != 0) goto done;

    size_t count = 1;
    for (int i = 0; i < sh.ndim; i++) {
        uint64_t d = (uint64_t)sh.shape[i];
        if (d != 0 && count > SIZE_MAX / sizeof(float) / d) {
            rc = avt_err_set(err, "%s: .npy shape too large", path);
            goto done;
        }
        count *= (size_t)d;
    }
    size_t need = count * sizeof(float);
    // Check the size before allocating so a corrupt shape gives "truncated", not an out-of-memory exit.
    struct stat st;
    if (fstat(fileno(f), &st) == 0 && S_ISREG(st.st_mode)) {
        uint64_t have = (uint64_t)st.st_size > hoff + hlen ? (uint64_t)st.st_size - hoff - hlen : 0;
        if (have < need) {
            rc = avt_err_set(err, "%s: truncated data: expected %zu bytes, found %llu", path, need,
                             (unsigned long long)have);
            goto done;
        }
        if (have > need) {
            rc = avt_err_set(err, "%s: %llu unexpected bytes after the data", path,
                             (unsigned long long)(have - need));
            goto done;
        }
    }
    buf = malloc_check(need);
    if (fread(buf, 1, need, f) != need) {
        rc = avt_err_set(err, "%s: truncated data (expected %zu bytes)", path, need);
        goto done;
    }
    *data = buf;
    buf = NULL;
    *ndim = sh.ndim;
    for (int i = 0; i < sh.ndim; i++) shape[i] = sh.shape[i];
done:
    free(buf);
    free(h);
    fclose(f);
    return rc;
}

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

typedef struct {
    const char *path;
    const char *header; // magic .. '\n', a multiple of 64 bytes
    size_t header_len;
    const float *data;
    size_t nbytes;
} NpyWrite;

static int npy_write_body(FILE *f, void *ctx, AvtErr *err) {
    const NpyWrite *w = ctx;
    if (fwrite(w->header, 1, w->header_len, f) != w->header_len ||
        (w->nbytes && fwrite(w->data, 1, w->nbytes, f) != w->nbytes))
        return avt_err_set(err, "%s: write failed: %s", w->path, strerror(errno));
    return 0;
}

int npy_write_f32(const char *path, const float *data, int ndim, const int64_t *shape, AvtErr *err) {
    if (ndim < 0 || ndim > NPY_MAX_NDIM)
        return avt_err_set(err, "%s: cannot write a rank-%d .npy (0..%d supported)", path, ndim, NPY_MAX_NDIM);
    char dims[NPY_MAX_NDIM * 24 + 4];
    size_t off = 0, count = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0) return avt_err_set(err, "%s: negative dimension %lld", path, (long long)shape[i]);
        uint64_t d = (uint64_t)shape[i];
        if (d != 0 && count > SIZE_MAX / sizeof(float) / d) return avt_err_set(err, "%s: shape too large", path);
        count *= (size_t)d;
        off += (size_t)snprintf(dims + off, sizeof dims - off, "%s%lld", i ? ", " : "", (long long)shape[i]);
    }
    if (ndim == 1) snprintf(dims + off, sizeof dims - off, ","); // Python's 1-tuple "(3,)"
    if (ndim == 0) dims[0] = '\0';
    size_t nbytes = count * sizeof(float);
    if (nbytes && !data) return avt_err_set(err, "%s: no data to write", path);

    // numpy's layout: the dict, spaces, '\n', so that data starts on a 64-byte boundary.
    char header[512];
    int dict = snprintf(header + 10, sizeof header - 10, "{'descr': '<f4', 'fortran_order': False, 'shape': (%s), }",
                        dims);
    size_t total = 10 + (size_t)dict + 1;
    total = (total + 63) / 64 * 64;
    memcpy(header, "\x93NUMPY\x01\x00", 8);
    size_t hlen = total - 10;
    header[8] = (char)(hlen & 0xff);
    header[9] = (char)(hlen >> 8);
    memset(header + 10 + dict, ' ', total - 10 - (size_t)dict - 1);
    header[total - 1] = '\n';

    NpyWrite w = {.path = path, .header = header, .header_len = total, .data = data, .nbytes = nbytes};
    return avt_write_atomic(path, npy_write_body, &w, err);
}
