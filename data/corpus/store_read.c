// The store's reader: the manifest checked, the shards memory-mapped and checked against it, windows of steps
// read (a memcpy, or an f16 -> f32 conversion), every CRC verified on request. Layout: store.h.
#include "data/corpus/store.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include "base/half.h"
#include "data/corpus/store_format.h"

// ---------------------------------------------------------------------------------------------------------------
// Reader

typedef struct {
    char *path;
    const unsigned char *map; // (size,) read-only mapping of the whole file
    size_t size;
} Shard;

typedef struct {
    const unsigned char *data; // into its shard's mapping
    const char *id;            // ditto (NUL-terminated, checked at open)
    uint32_t T, speaker, crc, shard;
} Utt;

struct Store {
    StoreDtype dtype;
    int d_a, d_v;
    Shard *shards; // (n_shards,)
    int n_shards;
    Utt *utt;      // (n,)
    size_t n;
    char **speakers; // (n_speakers,)
    uint32_t n_speakers;
    uint64_t steps;
};

static char *read_text(const char *path, AvtErr *err) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        avt_err_set(err, "%s: cannot open: %s (not a store, or avt prepare did not finish)", path, strerror(errno));
        return NULL;
    }
    size_t cap = 4096, n = 0;
    char *s = malloc_check(cap);
    for (size_t got; (got = fread(s + n, 1, cap - n - 1, f)) > 0;) {
        n += got;
        if (n + 1 == cap) {
            cap *= 2;
            s = realloc(s, cap);
            if (!s) avt_fatal("out of memory reading %s", path);
        }
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        free(s);
        avt_err_set(err, "%s: read failed", path);
        return NULL;
    }
    s[n] = '\0';
    return s;
}

// A whole number in [0, max] under key, else -1 with err naming the manifest and the key.
static int json_uint(const cJSON *o, const char *key, uint64_t max, uint64_t *out, const char *path, AvtErr *err) {
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!cJSON_IsNumber(j) || j->valuedouble < 0 || j->valuedouble > (double)max ||
        j->valuedouble != floor(j->valuedouble))
        return avt_err_set(err, "%s: '%s' missing or not a whole number in [0, %llu]", path, key,
                           (unsigned long long)max);
    *out = (uint64_t)j->valuedouble;
    return 0;
}

// Maps one shard and checks it against the manifest's expectations; appends its utterances to s->utt.
static int open_shard(Store *s, int k, uint64_t want_n, uint64_t want_bytes, AvtErr *err) {
    Shard *sh = &s->shards[k];
    const char *p = sh->path;
    int fd = open(p, O_RDONLY);
    if (fd < 0) return avt_err_set(err, "%s: cannot open: %s (listed in the manifest)", p, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        close(fd);
        return avt_err_set(err, "%s: cannot stat: %s", p, strerror(errno));
    }
    sh->size = (size_t)sb.st_size;
    if (sh->size < HEADER_BYTES) {
        close(fd);
        return avt_err_set(err, "%s: truncated (%zu bytes, shorter than the %d-byte header)", p, sh->size,
                           HEADER_BYTES);
    }
    void *m = mmap(NULL, sh->size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd); // the mapping keeps the file
    if (m == MAP_FAILED) return avt_err_set(err, "%s: cannot map: %s", p, strerror(errno));
    sh->map = m;
    const unsigned char *h = sh->map;
    if (memcmp(h, MAGIC, 8) != 0) return avt_err_set(err, "%s: not an avt shard (bad magic)", p);
    uint32_t version = get_u32(h + 8), dtype = get_u32(h + 12), d_a = get_u32(h + 16), d_v = get_u32(h + 20);
    uint64_t n = get_u64(h + 24), idx = get_u64(h + 32), size = get_u64(h + 40);
    if (version != STORE_VERSION)
        return avt_err_set(err, "%s: shard version %u, this avt reads version %d", p, version, STORE_VERSION);
    if (dtype > STORE_F16) return avt_err_set(err, "%s: unknown dtype code %u", p, dtype);
    if ((StoreDtype)dtype != s->dtype || d_a != (uint32_t)s->d_a || d_v != (uint32_t)s->d_v)
        return avt_err_set(err, "%s: %s with d_a %u, d_v %u, but the manifest says %s with d_a %d, d_v %d", p,
                           dtype_name((StoreDtype)dtype), d_a, d_v, dtype_name(s->dtype), s->d_a, s->d_v);
    if (sh->size < size) return avt_err_set(err, "%s: truncated (%zu of %llu bytes)", p, sh->size,
                                            (unsigned long long)size);
    if (sh->size > size)
        return avt_err_set(err, "%s: %zu bytes, but its header says %llu", p, sh->size, (unsigned long long)size);
    if (n != want_n || size != want_bytes)
        return avt_err_set(err, "%s: %llu utterances in %llu bytes, but the manifest says %llu in %llu", p,
                           (unsigned long long)n, (unsigned long long)size, (unsigned long long)want_n,
                           (unsigned long long)want_bytes);
    if (idx < HEADER_BYTES || idx % ALIGN != 0 || n > (size - idx) / ENTRY_BYTES || idx + n * ENTRY_BYTES != size)
        return avt_err_set(err, "%s: corrupt header (index at %llu for %llu utterances in %llu bytes)", p,
                           (unsigned long long)idx, (unsigned long long)n, (unsigned long long)size);
    const unsigned char *index = sh->map + idx;
    if (n > 0) {
        s->utt = realloc(s->utt, (size_t)(s->n + n) * sizeof *s->utt); // n is bounded by the file's size
        if (!s->utt) avt_fatal("out of memory");
    }
    if (store_crc32(index, n * ENTRY_BYTES) != get_u32(h + 48))
        return avt_err_set(err, "%s: index CRC mismatch (the index is corrupted)", p);
    for (uint64_t j = 0; j < n; j++) {
        const unsigned char *e = index + j * ENTRY_BYTES;
        if (e[0] == '\0' || memchr(e, '\0', STORE_ID_MAX + 1) == NULL)
            return avt_err_set(err, "%s: index entry %llu: bad utterance id", p, (unsigned long long)j);
        const char *id = (const char *)e;
        uint32_t spk = get_u32(e + 128), T = get_u32(e + 132);
        uint64_t off = get_u64(e + 136), bytes = data_bytes(T, s->d_a, s->d_v, s->dtype);
        if (spk >= s->n_speakers)
            return avt_err_set(err, "%s: utterance '%s': speaker %u outside the table of %u", p, id, spk,
                               s->n_speakers);
        if (T == 0) return avt_err_set(err, "%s: utterance '%s': no steps", p, id);
        if (off < HEADER_BYTES || off % ALIGN != 0 || off > idx || bytes > idx - off)
            return avt_err_set(err, "%s: utterance '%s': data [%llu, %llu) outside the data area [%d, %llu)", p, id,
                               (unsigned long long)off, (unsigned long long)(off + bytes), HEADER_BYTES,
                               (unsigned long long)idx);
        s->utt[s->n++] = (Utt){.data = sh->map + off, .id = id, .T = T, .speaker = spk, .crc = get_u32(e + 144),
                               .shard = (uint32_t)k};
        s->steps += T;
    }
    return 0;
}

static int open_manifest(Store *s, const char *dir, const char *path, const cJSON *m, AvtErr *err) {
    const cJSON *fmt = cJSON_GetObjectItemCaseSensitive(m, "format");
    if (!cJSON_IsString(fmt) || strcmp(fmt->valuestring, "avt-store") != 0)
        return avt_err_set(err, "%s: not an avt store manifest (no \"format\": \"avt-store\")", path);
    uint64_t version = 0, d_a = 0, d_v = 0, n_total = 0;
    if (json_uint(m, "version", UINT32_MAX, &version, path, err)) return -1;
    if (version != STORE_VERSION)
        return avt_err_set(err, "%s: manifest version %llu, this avt reads version %d", path,
                           (unsigned long long)version, STORE_VERSION);
    const cJSON *dt = cJSON_GetObjectItemCaseSensitive(m, "dtype");
    if (!cJSON_IsString(dt) || (strcmp(dt->valuestring, "f16") != 0 && strcmp(dt->valuestring, "f32") != 0))
        return avt_err_set(err, "%s: 'dtype' must be \"f16\" or \"f32\"", path);
    s->dtype = strcmp(dt->valuestring, "f16") == 0 ? STORE_F16 : STORE_F32;
    if (json_uint(m, "d_a", 1 << 16, &d_a, path, err) || json_uint(m, "d_v", 1 << 16, &d_v, path, err) ||
        json_uint(m, "utterances", (uint64_t)1 << 40, &n_total, path, err))
        return -1;
    if (d_a == 0 || d_v == 0) return avt_err_set(err, "%s: d_a and d_v must be positive", path);
    s->d_a = (int)d_a;
    s->d_v = (int)d_v;
    const cJSON *spk = cJSON_GetObjectItemCaseSensitive(m, "speakers");
    const cJSON *shards = cJSON_GetObjectItemCaseSensitive(m, "shards");
    if (!cJSON_IsArray(spk)) return avt_err_set(err, "%s: 'speakers' missing or not an array", path);
    if (!cJSON_IsArray(shards)) return avt_err_set(err, "%s: 'shards' missing or not an array", path);
    s->n_speakers = (uint32_t)cJSON_GetArraySize(spk);
    s->speakers = calloc_check(s->n_speakers, sizeof *s->speakers);
    uint32_t k = 0;
    for (const cJSON *j = spk->child; j; j = j->next, k++) {
        if (!cJSON_IsString(j)) return avt_err_set(err, "%s: speaker %u is not a string", path, k);
        s->speakers[k] = strdup(j->valuestring);
        if (!s->speakers[k]) avt_fatal("out of memory");
    }
    s->n_shards = cJSON_GetArraySize(shards);
    s->shards = calloc_check((size_t)s->n_shards, sizeof *s->shards);
    uint64_t n_seen = 0;
    int i = 0;
    for (const cJSON *j = shards->child; j; j = j->next, i++) {
        const cJSON *file = cJSON_GetObjectItemCaseSensitive(j, "file");
        uint64_t n = 0, bytes = 0;
        if (!cJSON_IsString(file) || !*file->valuestring || strchr(file->valuestring, '/'))
            return avt_err_set(err, "%s: shard %d: 'file' must be a plain file name", path, i);
        if (json_uint(j, "utterances", (uint64_t)1 << 40, &n, path, err) ||
            json_uint(j, "bytes", (uint64_t)1 << 52, &bytes, path, err))
            return -1;
        if (n > n_total - n_seen)
            return avt_err_set(err, "%s: the shards hold more than the %llu utterances listed", path,
                               (unsigned long long)n_total);
        n_seen += n;
        s->shards[i].path = asprintf_check("%s/%s", dir, file->valuestring);
        if (open_shard(s, i, n, bytes, err)) return -1;
    }
    if (n_seen != n_total)
        return avt_err_set(err, "%s: the shards hold %llu utterances, the manifest says %llu", path,
                           (unsigned long long)n_seen, (unsigned long long)n_total);
    return 0;
}

int store_open(Store **sp, const char *dir, AvtErr *err) {
    *sp = NULL;
    char *path = asprintf_check("%s/%s", dir, MANIFEST);
    char *text = read_text(path, err);
    if (!text) {
        free(path);
        return -1;
    }
    cJSON *m = cJSON_Parse(text);
    free(text);
    Store *s = calloc_check(1, sizeof *s);
    int rc = m ? open_manifest(s, dir, path, m, err) : avt_err_set(err, "%s: not valid JSON", path);
    cJSON_Delete(m);
    free(path);
    if (rc) {
        store_close(s);
        return -1;
    }
    *sp = s;
    return 0;
}

void store_close(Store *s) {
    if (!s) return;
    for (int k = 0; k < s->n_shards; k++) {
        if (s->shards[k].map) munmap((void *)s->shards[k].map, s->shards[k].size);
        free(s->shards[k].path);
    }
    for (uint32_t k = 0; k < s->n_speakers; k++) free(s->speakers[k]);
    free(s->speakers);
    free(s->shards);
    free(s->utt);
    free(s);
}

size_t store_size(const Store *s) { return s->n; }
int store_d_a(const Store *s) { return s->d_a; }
int store_d_v(const Store *s) { return s->d_v; }
StoreDtype store_dtype(const Store *s) { return s->dtype; }
int store_len(const Store *s, size_t i) { return (int)s->utt[i].T; }
uint32_t store_speaker(const Store *s, size_t i) { return s->utt[i].speaker; }
const char *store_speaker_name(const Store *s, uint32_t k) { return s->speakers[k]; }
uint32_t store_n_speakers(const Store *s) { return s->n_speakers; }
const char *store_id(const Store *s, size_t i) { return s->utt[i].id; }
uint64_t store_steps(const Store *s) { return s->steps; }

static void unpack(float *dst, const unsigned char *src, size_t n, StoreDtype dtype) {
    if (dtype == STORE_F32) {
        memcpy(dst, src, n * sizeof(float));
        return;
    }
    const uint16_t *h = (const uint16_t *)src; // 64-byte aligned arrays of 2-byte values
    for (size_t i = 0; i < n; i++) dst[i] = f32_from_f16(h[i]);
}

int store_read(const Store *s, size_t i, int t0, int n, float *audio, float *video, AvtErr *err) {
    if (i >= s->n) return avt_err_set(err, "store_read: utterance %zu of %zu", i, s->n);
    const Utt *u = &s->utt[i];
    if (t0 < 0 || n < 0 || (int64_t)t0 + n > (int64_t)u->T)
        return avt_err_set(err, "%s: utterance '%s': steps [%d, %lld) outside [0, %u)", s->shards[u->shard].path,
                           u->id, t0, (long long)t0 + n, u->T);
    size_t es = dtype_size(s->dtype), da = (size_t)s->d_a, dv = (size_t)s->d_v;
    const unsigned char *v = u->data + align64(audio_bytes(u->T, s->d_a, s->dtype));
    if (audio) unpack(audio, u->data + (size_t)t0 * da * es, (size_t)n * da, s->dtype);
    if (video) unpack(video, v + (size_t)t0 * dv * es, (size_t)n * dv, s->dtype);
    return 0;
}

int store_verify(const Store *s, AvtErr *err) {
    for (size_t i = 0; i < s->n; i++) {
        const Utt *u = &s->utt[i];
        if (store_crc32(u->data, data_bytes(u->T, s->d_a, s->d_v, s->dtype)) != u->crc)
            return avt_err_set(err, "%s: utterance '%s': CRC mismatch (its data is corrupted)",
                               s->shards[u->shard].path, u->id);
    }
    return 0;
}
