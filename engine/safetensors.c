// safetensors reader/writer (F32 only). The file is untrusted input: every size and offset is
// range-checked before it is used, so a corrupt or hostile file yields one error line, never a crash.
#include "engine/safetensors.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "safetensors.c assumes a little-endian host (tensor bytes are copied as-is)"
#endif

#define ST_MAX_HEADER ((uint64_t)100 << 20) // no real checkpoint header comes near this
#define ST_MAX_EXACT 9007199254740992.0     // 2^53: JSON numbers are doubles, exact up to here

// ---------------------------------------------------------------------------------------------
// Messages

// Quote an untrusted name for a one-line message: escape non-printables, cut long names.
enum { QNAME_LEN = 96 };
static const char *qname(const char *s, char out[QNAME_LEN]) {
    size_t o = 0;
    for (size_t i = 0; s[i]; i++) {
        unsigned char c = (unsigned char)s[i];
        if (o + 8 >= QNAME_LEN) {
            memcpy(out + o, "...", 4);
            return out;
        }
        if (c < 0x20 || c == 0x7f || c == '\\') o += (size_t)snprintf(out + o, QNAME_LEN - o, "\\x%02x", c);
        else out[o++] = (char)c;
    }
    out[o] = '\0';
    return out;
}

// ---------------------------------------------------------------------------------------------
// Reading

void st_close(SafeTensors *st) {
    if (!st) return;
    for (int i = 0; i < st->n; i++) free(st->t[i].name);
    for (int i = 0; i < st->n_meta; i++) {
        free(st->meta_key[i]);
        free(st->meta_val[i]);
    }
    free(st->t);
    free(st->meta_key);
    free(st->meta_val);
    free(st->buf);
    free(st->path);
    memset(st, 0, sizeof *st);
}

static char *dup_str(const char *s) {
    size_t n = strlen(s) + 1;
    char *p = malloc_check(n);
    memcpy(p, s, n);
    return p;
}

// A JSON number that is an exact non-negative integer below 2^53 (checked before the cast, which
// would otherwise be undefined for huge values or NaN).
static int json_uint(const cJSON *j, uint64_t *out) {
    if (!cJSON_IsNumber(j)) return 0;
    double d = j->valuedouble;
    if (!(d >= 0.0 && d < ST_MAX_EXACT)) return 0;
    uint64_t u = (uint64_t)d;
    if ((double)u != d) return 0;
    *out = u;
    return 1;
}

static const char *json_kind(const cJSON *j) {
    if (cJSON_IsString(j)) return "a string";
    if (cJSON_IsNumber(j)) return "a number";
    if (cJSON_IsBool(j)) return "a boolean";
    if (cJSON_IsNull(j)) return "null";
    if (cJSON_IsArray(j)) return "an array";
    if (cJSON_IsObject(j)) return "an object";
    return "invalid";
}

static int cmp_str_ptr(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

// Sort a copy of the names and report the first repeat; O(n log n) so a header with many
// entries cannot make the check quadratic.
static const char *find_duplicate(char *const *names, int n) {
    if (n < 2) return NULL;
    const char **s = malloc_check((size_t)n * sizeof *s);
    for (int i = 0; i < n; i++) s[i] = names[i];
    qsort(s, (size_t)n, sizeof *s, cmp_str_ptr);
    const char *dup = NULL;
    for (int i = 1; i < n && !dup; i++)
        if (strcmp(s[i - 1], s[i]) == 0) dup = s[i];
    free(s);
    return dup;
}

static int parse_meta(SafeTensors *st, const cJSON *m, const char *path, AvtErr *err) {
    char q[QNAME_LEN];
    if (!cJSON_IsObject(m))
        return avt_err_set(err, "%s: __metadata__ is %s, expected an object of strings", path, json_kind(m));
    int n = cJSON_GetArraySize(m);
    st->meta_key = calloc_check((size_t)n, sizeof *st->meta_key);
    st->meta_val = calloc_check((size_t)n, sizeof *st->meta_val);
    for (const cJSON *e = m->child; e; e = e->next) {
        if (!cJSON_IsString(e))
            return avt_err_set(err, "%s: __metadata__ key '%s' is %s, expected a string", path,
                               qname(e->string, q), json_kind(e));
        st->meta_key[st->n_meta] = dup_str(e->string);
        st->meta_val[st->n_meta] = dup_str(e->valuestring);
        st->n_meta++;
    }
    const char *dup = find_duplicate(st->meta_key, st->n_meta);
    if (dup) return avt_err_set(err, "%s: __metadata__ has duplicate key '%s'", path, qname(dup, q));
    return 0;
}

// Validate one tensor entry and fill t (name excepted). data_len: bytes after the header.
static int parse_tensor(StTensor *t, const cJSON *e, const unsigned char *data, size_t data_len,
                        const char *path, AvtErr *err) {
    char q[QNAME_LEN];
    const char *nm = qname(e->string, q);
    if (!cJSON_IsObject(e))
        return avt_err_set(err, "%s: tensor '%s': entry is %s, expected an object", path, nm, json_kind(e));

    const cJSON *dt = cJSON_GetObjectItemCaseSensitive(e, "dtype");
    if (!dt) return avt_err_set(err, "%s: tensor '%s': missing \"dtype\"", path, nm);
    if (!cJSON_IsString(dt))
        return avt_err_set(err, "%s: tensor '%s': \"dtype\" is %s, expected a string", path, nm, json_kind(dt));
    if (strcmp(dt->valuestring, "F32") != 0) {
        char qd[QNAME_LEN];
        return avt_err_set(err, "%s: tensor '%s': dtype '%s' is not supported (only F32 is supported)", path, nm,
                           qname(dt->valuestring, qd));
    }

    const cJSON *sh = cJSON_GetObjectItemCaseSensitive(e, "shape");
    if (!sh) return avt_err_set(err, "%s: tensor '%s': missing \"shape\"", path, nm);
    if (!cJSON_IsArray(sh))
        return avt_err_set(err, "%s: tensor '%s': \"shape\" is %s, expected an array", path, nm, json_kind(sh));
    int nd = cJSON_GetArraySize(sh);
    if (nd > ST_MAX_DIMS)
        return avt_err_set(err, "%s: tensor '%s': shape has %d dims, more than the %d supported", path, nm, nd,
                           ST_MAX_DIMS);
    size_t numel = 1;
    int k = 0;
    for (const cJSON *d = sh->child; d; d = d->next, k++) {
        uint64_t v;
        if (!json_uint(d, &v))
            return avt_err_set(err, "%s: tensor '%s': shape[%d] is not a non-negative integer", path, nm, k);
        t->shape[k] = (int64_t)v;
        // Overflow is judged on numel*4 (the byte size) so later byte math cannot wrap either.
        if (v != 0 && numel > SIZE_MAX / 4 / v)
            return avt_err_set(err, "%s: tensor '%s': element count overflows (shape[%d] = %" PRIu64 ")", path, nm,
                               k, v);
        numel *= (size_t)v;
    }
    t->ndim = nd;
    t->numel = numel;

    const cJSON *of = cJSON_GetObjectItemCaseSensitive(e, "data_offsets");
    if (!of) return avt_err_set(err, "%s: tensor '%s': missing \"data_offsets\"", path, nm);
    uint64_t b, en;
    if (!cJSON_IsArray(of) || cJSON_GetArraySize(of) != 2 || !json_uint(of->child, &b) ||
        !json_uint(of->child->next, &en))
        return avt_err_set(err, "%s: tensor '%s': \"data_offsets\" must be two non-negative integers [begin, end]",
                           path, nm);
    if (b > en)
        return avt_err_set(err, "%s: tensor '%s': data_offsets [%" PRIu64 ", %" PRIu64 "] have begin > end", path,
                           nm, b, en);
    if (en > data_len)
        return avt_err_set(err, "%s: tensor '%s': data_offsets [%" PRIu64 ", %" PRIu64 "] exceed the %zu-byte data section",
                           path, nm, b, en, data_len);
    if (en - b != (uint64_t)numel * 4)
        return avt_err_set(err, "%s: tensor '%s': data_offsets [%" PRIu64 ", %" PRIu64 "] span %" PRIu64
                                " bytes but %zu F32 elements need %zu",
                           path, nm, b, en, en - b, numel, numel * 4);
    t->data = data + b;
    return 0;
}

// Parse buf (len bytes, owned by st from here on, freed on failure too).
static int parse_owned(SafeTensors *st, unsigned char *buf, size_t len, const char *path, AvtErr *err) {
    memset(st, 0, sizeof *st);
    st->buf = buf;
    st->len = len;
    st->path = dup_str(path);
    path = st->path;
    int rc = -1;
    cJSON *root = NULL;
    char *hdr = NULL;

    if (len < 8) {
        avt_err_set(err, "%s: file is %zu bytes, shorter than the 8-byte header length", path, len);
        goto out;
    }
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--) n = (n << 8) | buf[i];
    if (n > ST_MAX_HEADER) {
        avt_err_set(err, "%s: header length %" PRIu64 " is absurd (more than 100 MiB)", path, n);
        goto out;
    }
    if (n > len - 8) {
        avt_err_set(err, "%s: header length %" PRIu64 " is larger than the %zu bytes after it in the file", path, n,
                    len - 8);
        goto out;
    }
    size_t hlen = (size_t)n;
    // cJSON wants a NUL-terminated string; a NUL inside the header would silently end it early.
    if (memchr(buf + 8, '\0', hlen)) {
        avt_err_set(err, "%s: header is not valid JSON (contains a NUL byte)", path);
        goto out;
    }
    hdr = malloc_check(hlen + 1);
    memcpy(hdr, buf + 8, hlen);
    hdr[hlen] = '\0';
    const char *end = NULL;
    root = cJSON_ParseWithOpts(hdr, &end, 1); // 1: trailing garbage (other than the space padding) is an error
    if (!root) {
        size_t at = end ? (size_t)(end - hdr) : 0;
        avt_err_set(err, "%s: header is not valid JSON (error at byte %zu of %zu)", path, at, hlen);
        goto out;
    }
    if (!cJSON_IsObject(root)) {
        avt_err_set(err, "%s: header is %s, expected a JSON object", path, json_kind(root));
        goto out;
    }

    const unsigned char *data = buf + 8 + hlen;
    size_t data_len = len - 8 - hlen;
    int cap = cJSON_GetArraySize(root);
    st->t = calloc_check((size_t)cap, sizeof *st->t);
    const cJSON *meta = NULL;
    char **names = calloc_check((size_t)cap, sizeof *names);
    int n_names = 0, ok = 1;
    for (const cJSON *e = root->child; e && ok; e = e->next) {
        if (strcmp(e->string, "__metadata__") == 0) {
            if (meta) ok = avt_err_set(err, "%s: duplicate __metadata__ entry", path) == 0;
            else ok = parse_meta(st, e, path, err) == 0;
            meta = e;
            continue;
        }
        StTensor *t = &st->t[st->n];
        if (parse_tensor(t, e, data, data_len, path, err) != 0) {
            ok = 0;
            break;
        }
        t->name = dup_str(e->string);
        names[n_names++] = t->name;
        st->n++;
    }
    if (ok) {
        const char *dup = find_duplicate(names, n_names);
        char q[QNAME_LEN];
        if (dup) {
            avt_err_set(err, "%s: duplicate tensor name '%s'", path, qname(dup, q));
            ok = 0;
        }
    }
    free(names);
    if (ok) rc = 0;

out:
    cJSON_Delete(root);
    free(hdr);
    if (rc != 0) st_close(st);
    return rc;
}

int st_parse(SafeTensors *st, const unsigned char *buf, size_t len, const char *name, AvtErr *err) {
    unsigned char *copy = malloc_check(len);
    if (len) memcpy(copy, buf, len);
    return parse_owned(st, copy, len, name ? name : "<buffer>", err);
}

int st_open(SafeTensors *st, const char *path, AvtErr *err) {
    memset(st, 0, sizeof *st);
    FILE *f = fopen(path, "rb");
    if (!f) return avt_err_set(err, "%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fileno(f), &sb) != 0) {
        int e = errno;
        fclose(f);
        return avt_err_set(err, "%s: cannot stat: %s", path, strerror(e));
    }
    if (!S_ISREG(sb.st_mode)) {
        fclose(f);
        return avt_err_set(err, "%s: not a regular file", path);
    }
    size_t len = (size_t)sb.st_size;
    unsigned char *buf = malloc_check(len);
    size_t got = fread(buf, 1, len, f);
    // A short read means the file changed under us or the disk failed; either way we cannot trust it.
    int bad = got != len || ferror(f);
    int e = errno;
    fclose(f);
    if (bad) {
        free(buf);
        return avt_err_set(err, "%s: short read (%zu of %zu bytes): %s", path, got, len,
                           e ? strerror(e) : "file changed while reading");
    }
    return parse_owned(st, buf, len, path, err);
}

const StTensor *st_find(const SafeTensors *st, const char *name) {
    for (int i = 0; i < st->n; i++)
        if (strcmp(st->t[i].name, name) == 0) return &st->t[i];
    return NULL;
}

const char *st_meta(const SafeTensors *st, const char *key) {
    for (int i = 0; i < st->n_meta; i++)
        if (strcmp(st->meta_key[i], key) == 0) return st->meta_val[i];
    return NULL;
}

void st_copy_f32(float *dst, const StTensor *t) {
    if (t->numel) memcpy(dst, t->data, t->numel * sizeof(float));
}

// ---------------------------------------------------------------------------------------------
// Writing. The header is built by hand rather than with cJSON so offsets print as exact integers
// (cJSON prints numbers through doubles, which turns large values into exponent notation).

typedef struct {
    char *p;
    size_t len, cap;
} Buf;

static void buf_put(Buf *b, const char *s, size_t n) {
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1) cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) avt_fatal("out of memory growing the safetensors header to %zu bytes", cap);
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void buf_str(Buf *b, const char *s) { buf_put(b, s, strlen(s)); }

static void buf_json_str(Buf *b, const char *s) {
    buf_put(b, "\"", 1);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        char esc[8];
        if (c == '"' || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)c;
            buf_put(b, esc, 2);
        } else if (c < 0x20) {
            snprintf(esc, sizeof esc, "\\u%04x", c);
            buf_put(b, esc, 6);
        } else {
            buf_put(b, (const char *)&c, 1);
        }
    }
    buf_put(b, "\"", 1);
}

typedef struct {
    const Buf *hdr;
    const StWrite *t;
    const size_t *bytes;
    int n;
    const char *path;
} WriteCtx;

static int write_body(FILE *f, void *vctx, AvtErr *err) {
    const WriteCtx *c = vctx;
    unsigned char len8[8];
    uint64_t n = c->hdr->len;
    for (int i = 0; i < 8; i++) len8[i] = (unsigned char)(n >> (8 * i));
    if (fwrite(len8, 1, 8, f) != 8 || fwrite(c->hdr->p, 1, c->hdr->len, f) != c->hdr->len)
        return avt_err_set(err, "%s: write failed: %s", c->path, strerror(errno));
    for (int i = 0; i < c->n; i++)
        if (c->bytes[i] && fwrite(c->t[i].data, 1, c->bytes[i], f) != c->bytes[i])
            return avt_err_set(err, "%s: write failed: %s", c->path, strerror(errno));
    if (fflush(f) != 0) return avt_err_set(err, "%s: write failed: %s", c->path, strerror(errno));
    return 0;
}

int st_write(const char *path, const StWrite *tensors, int n, const char *const *meta_keys,
             const char *const *meta_vals, int n_meta, AvtErr *err) {
    if (n < 0 || n_meta < 0) return avt_err_set(err, "%s: negative tensor or metadata count", path);
    char q[QNAME_LEN];
    size_t *bytes = calloc_check((size_t)n, sizeof *bytes);
    Buf h = {0};
    int rc = -1;

    // Validate the caller's tensors the same way the reader would, so we never write a file we refuse to read.
    for (int i = 0; i < n; i++) {
        const StWrite *t = &tensors[i];
        if (!t->name) {
            avt_err_set(err, "%s: tensor %d has no name", path, i);
            goto out;
        }
        if (strcmp(t->name, "__metadata__") == 0) {
            avt_err_set(err, "%s: tensor %d: the name __metadata__ is reserved", path, i);
            goto out;
        }
        if (t->ndim < 0 || t->ndim > ST_MAX_DIMS) {
            avt_err_set(err, "%s: tensor '%s': ndim %d outside 0..%d", path, qname(t->name, q), t->ndim, ST_MAX_DIMS);
            goto out;
        }
        size_t numel = 1;
        for (int k = 0; k < t->ndim; k++) {
            int64_t d = t->shape[k];
            if (d < 0 || (double)d >= ST_MAX_EXACT || (d != 0 && numel > SIZE_MAX / 4 / (uint64_t)d)) {
                avt_err_set(err, "%s: tensor '%s': bad or overflowing shape[%d] = %" PRId64, path,
                            qname(t->name, q), k, d);
                goto out;
            }
            numel *= (size_t)d;
        }
        if (numel && !t->data) {
            avt_err_set(err, "%s: tensor '%s': data is NULL", path, qname(t->name, q));
            goto out;
        }
        bytes[i] = numel * 4;
        for (int j = 0; j < i; j++)
            if (strcmp(tensors[j].name, t->name) == 0) {
                avt_err_set(err, "%s: duplicate tensor name '%s'", path, qname(t->name, q));
                goto out;
            }
    }
    for (int i = 0; i < n_meta; i++) {
        if (!meta_keys[i] || !meta_vals[i]) {
            avt_err_set(err, "%s: metadata entry %d is NULL", path, i);
            goto out;
        }
        for (int j = 0; j < i; j++)
            if (strcmp(meta_keys[j], meta_keys[i]) == 0) {
                avt_err_set(err, "%s: duplicate metadata key '%s'", path, qname(meta_keys[i], q));
                goto out;
            }
    }

    buf_str(&h, "{");
    int first = 1;
    if (n_meta > 0) {
        buf_str(&h, "\"__metadata__\":{");
        for (int i = 0; i < n_meta; i++) {
            if (i) buf_str(&h, ",");
            buf_json_str(&h, meta_keys[i]);
            buf_str(&h, ":");
            buf_json_str(&h, meta_vals[i]);
        }
        buf_str(&h, "}");
        first = 0;
    }
    uint64_t off = 0;
    for (int i = 0; i < n; i++) {
        const StWrite *t = &tensors[i];
        char num[64];
        if (!first) buf_str(&h, ",");
        first = 0;
        buf_json_str(&h, t->name);
        buf_str(&h, ":{\"dtype\":\"F32\",\"shape\":[");
        for (int k = 0; k < t->ndim; k++) {
            snprintf(num, sizeof num, "%s%" PRId64, k ? "," : "", t->shape[k]);
            buf_str(&h, num);
        }
        if (off + bytes[i] < off || (double)(off + bytes[i]) >= ST_MAX_EXACT) {
            avt_err_set(err, "%s: total tensor data too large", path);
            goto out;
        }
        snprintf(num, sizeof num, "],\"data_offsets\":[%" PRIu64 ",%" PRIu64 "]}", off, off + bytes[i]);
        buf_str(&h, num);
        off += bytes[i];
    }
    buf_str(&h, "}");
    // Pad with spaces so the data section starts 8-byte aligned (8 + header length is a multiple of 8).
    while (h.len % 8) buf_put(&h, " ", 1);
    if ((uint64_t)h.len > ST_MAX_HEADER) {
        avt_err_set(err, "%s: header would be %zu bytes, more than the 100 MiB the reader accepts", path, h.len);
        goto out;
    }

    WriteCtx ctx = {&h, tensors, bytes, n, path};
    rc = avt_write_atomic(path, write_body, &ctx, err);

out:
    free(h.p);
    free(bytes);
    return rc;
}
