#include "data/corpus/feature_cache.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "data/corpus/metadata.h"
#include "data/corpus/store.h"

// The header's integers are written as the host holds them.
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
#error "data/corpus/feature_cache.c assumes a little-endian host"
#endif

static const char CACHE_MAGIC[8] = {'A', 'V', 'T', 'F', 'C', 'A', 'C', 'H'};
#define CACHE_VERSION 2u

// After the magic: version, T, d_a, d_v, path length, CRC-32 of the audio bytes, of the video bytes.
enum { H_VERSION, H_T, H_DA, H_DV, H_LEN, H_CRC_A, H_CRC_V, H_N };

static uint64_t fnv1a(uint64_t h, const char *s, size_t n) {
    for (size_t k = 0; k < n; k++) h = (h ^ (uint8_t)s[k]) * 1099511628211ull;
    return h;
}

// "|size|mtime" of a file, appended to key (the cache name's input).
static int stat_key(char *key, size_t cap, size_t *len, const char *path, AvtErr *err) {
    struct stat st;
    if (stat(path, &st) != 0) return avt_err_set(err, "%s: %s", path, strerror(errno));
    int n = snprintf(key + *len, cap - *len, "|%lld|%lld.%09ld", (long long)st.st_size, (long long)st.st_mtim.tv_sec,
                     (long)st.st_mtim.tv_nsec);
    *len += (size_t)n;
    return 0;
}

int feature_cache_entry(char **entry, const char *dir, const char *rel, const char *media, const char *wav,
                        AvtErr *err) {
    *entry = NULL;
    char key[128];
    size_t n = 0;
    if (stat_key(key, sizeof key, &n, media, err) || (wav && stat_key(key, sizeof key, &n, wav, err))) return -1;
    uint64_t h = fnv1a(fnv1a(1469598103934665603ull, rel, strlen(rel)), key, n); // FNV-1a 64 of rel, then key
    *entry = asprintf_check("%s/%016llx.feat", dir, (unsigned long long)h);
    return 0;
}

// Reads the entry's data into a and v once its header checked out; -1 with err when it does not.
static int read_body(FILE *f, const char *entry, const char *rel, const uint32_t *h, Features *a, Features *v,
                     AvtErr *err) {
    size_t len = h[H_LEN];
    char *p = malloc_check(len + 1);
    int same = fread(p, 1, len, f) == len && memcmp(p, rel, len) == 0;
    free(p);
    if (!same) return avt_err_set(err, "%s: an entry for another file (a hash collision)", entry);
    int T = (int)h[H_T];
    size_t na = (size_t)T * h[H_DA], nv = (size_t)T * h[H_DV];
    *a = (Features){malloc_check(na * sizeof(float)), T, (int)h[H_DA]};
    *v = (Features){malloc_check(nv * sizeof(float)), T, (int)h[H_DV]};
    if (fread(a->data, sizeof(float), na, f) != na || fread(v->data, sizeof(float), nv, f) != nv)
        return avt_err_set(err, "%s: read error", entry);
    if (store_crc32(a->data, na * sizeof(float)) != h[H_CRC_A] ||
        store_crc32(v->data, nv * sizeof(float)) != h[H_CRC_V])
        return avt_err_set(err, "%s: damaged (CRC mismatch)", entry);
    return 0;
}

int feature_cache_read(const char *entry, const char *rel, int d_a, int d_v, Features *a, Features *v, AvtErr *err) {
    memset(a, 0, sizeof *a);
    memset(v, 0, sizeof *v);
    FILE *f = fopen(entry, "rb");
    if (!f) return avt_err_set(err, "%s: cannot open: %s", entry, strerror(errno));
    struct stat st;
    char magic[8];
    uint32_t h[H_N];
    int rc;
    if (fstat(fileno(f), &st) != 0 || fread(magic, 1, 8, f) != 8 || fread(h, sizeof h, 1, f) != 1)
        rc = avt_err_set(err, "%s: shorter than a cache entry's header", entry);
    else if (memcmp(magic, CACHE_MAGIC, 8) != 0)
        rc = avt_err_set(err, "%s: not a feature cache entry (bad magic)", entry);
    else if (h[H_VERSION] != CACHE_VERSION)
        rc = avt_err_set(err, "%s: cache entry version %u, not %u", entry, h[H_VERSION], CACHE_VERSION);
    else if (h[H_T] < 1 || h[H_T] > INT32_MAX || h[H_DA] != (uint32_t)d_a || h[H_DV] != (uint32_t)d_v ||
             h[H_LEN] != strlen(rel))
        rc = avt_err_set(err, "%s: an entry of %u steps of (%u, %u) for a %u-byte path, not for (%d, %d) and '%s'",
                         entry, h[H_T], h[H_DA], h[H_DV], h[H_LEN], d_a, d_v, rel);
    // The size before any allocation, so a damaged header cannot ask for a huge buffer.
    else if ((uint64_t)st.st_size != sizeof magic + sizeof h + h[H_LEN] +
                                         (uint64_t)h[H_T] * (h[H_DA] + h[H_DV]) * sizeof(float))
        rc = avt_err_set(err, "%s: %lld bytes, not the size its header gives (truncated or damaged)", entry,
                         (long long)st.st_size);
    else rc = read_body(f, entry, rel, h, a, v, err);
    fclose(f); // read-only: nothing to lose on close
    if (rc) {
        features_free(a);
        features_free(v);
    }
    return rc;
}

typedef struct {
    const char *entry, *rel;
    const Features *a, *v;
} Entry;

static int write_fn(FILE *f, void *ctx, AvtErr *err) {
    const Entry *e = ctx;
    size_t na = (size_t)e->a->T * (size_t)e->a->D, nv = (size_t)e->v->T * (size_t)e->v->D;
    uint32_t h[H_N] = {
        [H_VERSION] = CACHE_VERSION,
        [H_T] = (uint32_t)e->a->T,
        [H_DA] = (uint32_t)e->a->D,
        [H_DV] = (uint32_t)e->v->D,
        [H_LEN] = (uint32_t)strlen(e->rel),
        [H_CRC_A] = store_crc32(e->a->data, na * sizeof(float)),
        [H_CRC_V] = store_crc32(e->v->data, nv * sizeof(float)),
    };
    if (fwrite(CACHE_MAGIC, 1, 8, f) != 8 || fwrite(h, sizeof h, 1, f) != 1 ||
        fwrite(e->rel, 1, h[H_LEN], f) != h[H_LEN] || fwrite(e->a->data, sizeof(float), na, f) != na ||
        fwrite(e->v->data, sizeof(float), nv, f) != nv)
        return avt_err_set(err, "%s: writing the feature cache entry of %s failed: %s", e->entry, e->rel,
                           strerror(errno));
    return 0;
}

int feature_cache_write(const char *entry, const char *rel, const Features *a, const Features *v, AvtErr *err) {
    if (a->T != v->T || a->T < 1)
        return avt_err_set(err, "%s: cannot cache %d audio and %d video steps (need the same T >= 1)", rel, a->T, v->T);
    Entry e = {entry, rel, a, v};
    return avt_write_atomic(entry, write_fn, &e, err);
}
