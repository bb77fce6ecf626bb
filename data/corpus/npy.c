// .npy float32 arrays: NumPy's format, parsed and written by hand (a dict literal header, then raw C-order data).
#include "data/corpus/npy.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

// '<f4' data is moved as raw bytes; a big-endian host would need byte swaps.
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
#error "data/corpus/npy.c assumes a little-endian host"
#endif

#define NPY_MAX_HEADER (1u << 20) // far above any real header; guards malloc against a corrupt length
#define SHOW_MAX 48               // longest dtype quoted in an error message

static bool is_space(char c) { return c == ' ' || c == '\t'; }

// ---------------------------------------------------------------------------------------------------------------
// Reading: "\x93NUMPY", version, header length (u16 for 1.0, u32 for 2.0/3.0), a Python dict literal, raw data.

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

// ---------------------------------------------------------------------------------------------------------------
// Writing: version 1.0, the header padded so the data start on a 64-byte boundary, as numpy.save does.

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
