// The sharded corpus store: writer (avt prepare), memory-mapped reader, CRC check.
// Layout: see store.h.
#include "data/corpus/store.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include "base/half.h"

// The data arrays are used in place (mmap / fwrite), so the host must share the file's byte order.
_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "the store format is little-endian");

#define MAGIC "AVTSHARD"
#define HEADER_BYTES 64
#define ENTRY_BYTES 152
#define ALIGN 64
#define MANIFEST "manifest.json"

static uint64_t align64(uint64_t x) { return (x + ALIGN - 1) & ~(uint64_t)(ALIGN - 1); }
static size_t dtype_size(StoreDtype d) { return d == STORE_F16 ? 2 : 4; }
static const char *dtype_name(StoreDtype d) { return d == STORE_F16 ? "f16" : "f32"; }

static void put_u32(unsigned char *p, uint32_t v) { memcpy(p, &v, 4); }
static void put_u64(unsigned char *p, uint64_t v) { memcpy(p, &v, 8); }
static uint32_t get_u32(const unsigned char *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static uint64_t get_u64(const unsigned char *p) { uint64_t v; memcpy(&v, p, 8); return v; }

// Byte layout of one utterance's data: audio, padding to 64, video.
static uint64_t audio_bytes(uint64_t T, int d_a, StoreDtype dt) { return T * (uint64_t)d_a * dtype_size(dt); }
static uint64_t data_bytes(uint64_t T, int d_a, int d_v, StoreDtype dt) {
    return align64(audio_bytes(T, d_a, dt)) + T * (uint64_t)d_v * dtype_size(dt);
}

// ---------------------------------------------------------------------------------------------------------------
// CRC-32

static uint32_t crc_table[256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static void crc_init(void) {
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++) c = (c & 1u) ? 0xedb88320u ^ (c >> 1) : c >> 1;
        crc_table[i] = c;
    }
}

uint32_t store_crc32(const void *data, size_t n) {
    pthread_once(&crc_once, crc_init);
    const unsigned char *p = data;
    uint32_t c = 0xffffffffu;
    for (size_t i = 0; i < n; i++) c = crc_table[(c ^ p[i]) & 0xffu] ^ (c >> 8);
    return c ^ 0xffffffffu;
}

int store_check_values(const float *x, size_t n, StoreDtype dtype, const char *id, AvtErr *err) {
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(x[i])) return avt_err_set(err, "utterance '%s': value %g is not finite", id, (double)x[i]);
        if (dtype == STORE_F16 && (f16_from_f32(x[i]) & 0x7c00u) == 0x7c00u)
            return avt_err_set(err, "utterance '%s': value %g overflows f16 (|x| > 65504; use --dtype f32)", id,
                               (double)x[i]);
    }
    return 0;
}

uint64_t store_fnv1a(const char *s) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 0x100000001b3ull;
    return h;
}

// ---------------------------------------------------------------------------------------------------------------
// Writer

struct StoreWriter {
    char *dir;
    StoreDtype dtype;
    int d_a, d_v, shard_size;
    // the shard being written (f == NULL between a full shard and the next add)
    FILE *f;
    char *tmp, *final;
    uint64_t pos;              // bytes written so far
    unsigned char *index;      // (shard_size, ENTRY_BYTES)
    size_t n_in_shard;
    // finished shards
    uint64_t *shard_n, *shard_bytes; // (n_shards,)
    int n_shards, cap_shards;
    // speaker table with an open-addressing hash (slot = speaker + 1, 0 = empty)
    char **speakers;                 // (n_speakers,)
    uint32_t n_speakers, cap_speakers, *slots;
    size_t n_slots;
    size_t n;
    uint64_t steps, bytes;
    unsigned char *buf;              // one utterance's converted data
    size_t cap_buf;
};

static char *path_join(const char *dir, const char *name) {
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc_check(n);
    snprintf(p, n, "%s/%s", dir, name);
    return p;
}

static char *shard_name(int k) {
    char *s = malloc_check(32);
    snprintf(s, 32, "shard-%05d.avts", k);
    return s;
}

// An earlier store in dir would mix with this one if prepare stopped half-way: remove its files first.
static int clear_store(const char *dir, AvtErr *err) {
    char *m = path_join(dir, MANIFEST);
    int rc = remove(m) != 0 && errno != ENOENT ? avt_err_set(err, "%s: cannot remove: %s", m, strerror(errno)) : 0;
    free(m);
    DIR *d = opendir(dir);
    if (!d) return rc ? rc : avt_err_set(err, "%s: cannot list: %s", dir, strerror(errno));
    for (struct dirent *e; rc == 0 && (e = readdir(d)) != NULL;) {
        int k, len = 0;
        // A final shard, or a crashed writer's temporary one ("shard-NNNNN.avts.tmp.PID").
        if (sscanf(e->d_name, "shard-%5d.avts%n", &k, &len) != 1 ||
            (e->d_name[len] != '\0' && strncmp(e->d_name + len, ".tmp.", 5) != 0))
            continue;
        char *p = path_join(dir, e->d_name);
        if (remove(p) != 0) rc = avt_err_set(err, "%s: cannot remove: %s", p, strerror(errno));
        free(p);
    }
    closedir(d);
    return rc;
}

static int shard_begin(StoreWriter *w, AvtErr *err) {
    char *name = shard_name(w->n_shards);
    w->final = path_join(w->dir, name);
    free(name);
    size_t n = strlen(w->final) + 32;
    w->tmp = malloc_check(n);
    snprintf(w->tmp, n, "%s.tmp.%ld", w->final, (long)getpid());
    w->f = fopen(w->tmp, "wb");
    if (!w->f) {
        avt_err_set(err, "%s: cannot create: %s", w->tmp, strerror(errno));
        free_null(w->tmp);
        free_null(w->final);
        return -1;
    }
    static const unsigned char zero[HEADER_BYTES];
    w->pos = HEADER_BYTES; // the header is written last, once the index offset is known
    w->n_in_shard = 0;
    if (fwrite(zero, 1, HEADER_BYTES, w->f) != HEADER_BYTES)
        return avt_err_set(err, "%s: write failed: %s", w->tmp, strerror(errno));
    return 0;
}

// Index, then header, then the rename that gives the shard its final name.
static int shard_end(StoreWriter *w, AvtErr *err) {
    size_t idx_bytes = w->n_in_shard * ENTRY_BYTES;
    uint64_t size = w->pos + idx_bytes;
    unsigned char h[HEADER_BYTES] = {0};
    memcpy(h, MAGIC, 8);
    put_u32(h + 8, STORE_VERSION);
    put_u32(h + 12, (uint32_t)w->dtype);
    put_u32(h + 16, (uint32_t)w->d_a);
    put_u32(h + 20, (uint32_t)w->d_v);
    put_u64(h + 24, w->n_in_shard);
    put_u64(h + 32, w->pos);
    put_u64(h + 40, size);
    put_u32(h + 48, store_crc32(w->index, idx_bytes));
    int ok = fwrite(w->index, 1, idx_bytes, w->f) == idx_bytes && fseek(w->f, 0, SEEK_SET) == 0 &&
             fwrite(h, 1, HEADER_BYTES, w->f) == HEADER_BYTES;
    ok = fclose(w->f) == 0 && ok;
    w->f = NULL;
    if (!ok) return avt_err_set(err, "%s: write failed: %s", w->tmp, strerror(errno));
    if (rename(w->tmp, w->final) != 0) return avt_err_set(err, "%s: rename failed: %s", w->final, strerror(errno));
    if (w->n_shards == w->cap_shards) {
        w->cap_shards = w->cap_shards ? 2 * w->cap_shards : 16;
        w->shard_n = realloc(w->shard_n, (size_t)w->cap_shards * sizeof *w->shard_n);
        w->shard_bytes = realloc(w->shard_bytes, (size_t)w->cap_shards * sizeof *w->shard_bytes);
        if (!w->shard_n || !w->shard_bytes) avt_fatal("out of memory");
    }
    w->shard_n[w->n_shards] = w->n_in_shard;
    w->shard_bytes[w->n_shards++] = size;
    w->bytes += size;
    free_null(w->tmp);
    free_null(w->final);
    return 0;
}

int store_writer_open(StoreWriter **wp, const char *dir, StoreDtype dtype, int d_a, int d_v, int shard_size,
                      AvtErr *err) {
    *wp = NULL;
    if (d_a < 1 || d_v < 1 || shard_size < 1)
        return avt_err_set(err, "%s: bad store shape (d_a %d, d_v %d, shard size %d)", dir, d_a, d_v, shard_size);
    struct stat sb;
    if (stat(dir, &sb) == 0) {
        if (!S_ISDIR(sb.st_mode)) return avt_err_set(err, "%s: exists and is not a directory", dir);
    } else if (mkdir(dir, 0777) != 0) {
        return avt_err_set(err, "%s: cannot create directory: %s", dir, strerror(errno));
    }
    if (clear_store(dir, err)) return -1;
    StoreWriter *w = calloc_check(1, sizeof *w);
    w->dir = strdup(dir);
    w->dtype = dtype;
    w->d_a = d_a;
    w->d_v = d_v;
    w->shard_size = shard_size;
    w->index = malloc_check((size_t)shard_size * ENTRY_BYTES);
    w->n_slots = 1024;
    w->slots = calloc_check(w->n_slots, sizeof *w->slots);
    if (!w->dir) avt_fatal("out of memory");
    // The first shard is created now, so an unwritable folder fails before any work is done.
    if (shard_begin(w, err)) {
        store_writer_abort(w);
        return -1;
    }
    *wp = w;
    return 0;
}

static uint32_t speaker_index(StoreWriter *w, const char *name) {
    size_t mask = w->n_slots - 1, j = (size_t)store_fnv1a(name) & mask;
    for (; w->slots[j]; j = (j + 1) & mask)
        if (strcmp(w->speakers[w->slots[j] - 1], name) == 0) return w->slots[j] - 1;
    if (w->n_speakers == w->cap_speakers) {
        w->cap_speakers = w->cap_speakers ? 2 * w->cap_speakers : 64;
        w->speakers = realloc(w->speakers, (size_t)w->cap_speakers * sizeof *w->speakers);
        if (!w->speakers) avt_fatal("out of memory");
    }
    uint32_t k = w->n_speakers++;
    w->speakers[k] = strdup(name);
    if (!w->speakers[k]) avt_fatal("out of memory");
    w->slots[j] = k + 1;
    if (2 * (size_t)w->n_speakers > w->n_slots) { // keep the table at most half full: rehash into twice the slots
        free(w->slots);
        w->n_slots *= 2;
        w->slots = calloc_check(w->n_slots, sizeof *w->slots);
        for (uint32_t s = 0; s < w->n_speakers; s++) {
            size_t i = (size_t)store_fnv1a(w->speakers[s]) & (w->n_slots - 1);
            while (w->slots[i]) i = (i + 1) & (w->n_slots - 1);
            w->slots[i] = s + 1;
        }
    }
    return k;
}

static void convert(unsigned char *dst, const float *src /* (n,) */, size_t n, StoreDtype dtype) {
    if (dtype == STORE_F32) {
        memcpy(dst, src, n * sizeof(float));
        return;
    }
    for (size_t i = 0; i < n; i++) {
        uint16_t h = f16_from_f32(src[i]);
        memcpy(dst + 2 * i, &h, 2);
    }
}

int store_writer_add(StoreWriter *w, const char *id, const char *speaker, int T, const float *audio,
                     const float *video, AvtErr *err) {
    size_t id_len = strlen(id);
    if (id_len == 0 || id_len > STORE_ID_MAX)
        return avt_err_set(err, "utterance '%s': id must be 1 to %d bytes", id, STORE_ID_MAX);
    if (T < 1) return avt_err_set(err, "utterance '%s': no steps", id);
    size_t na = (size_t)T * (size_t)w->d_a, nv = (size_t)T * (size_t)w->d_v;
    if (store_check_values(audio, na, w->dtype, id, err) || store_check_values(video, nv, w->dtype, id, err))
        return -1;
    if (!w->f && shard_begin(w, err)) return -1;
    uint64_t used = data_bytes((uint64_t)T, w->d_a, w->d_v, w->dtype), padded = align64(used);
    if (padded > w->cap_buf) {
        free(w->buf);
        w->buf = malloc_check(padded);
        w->cap_buf = padded;
    }
    memset(w->buf, 0, padded);
    convert(w->buf, audio, na, w->dtype);
    convert(w->buf + align64(audio_bytes((uint64_t)T, w->d_a, w->dtype)), video, nv, w->dtype);
    if (fwrite(w->buf, 1, padded, w->f) != padded)
        return avt_err_set(err, "%s: write failed: %s", w->tmp, strerror(errno));
    unsigned char *e = w->index + w->n_in_shard * ENTRY_BYTES;
    memset(e, 0, ENTRY_BYTES);
    memcpy(e, id, id_len);
    put_u32(e + 128, speaker_index(w, speaker));
    put_u32(e + 132, (uint32_t)T);
    put_u64(e + 136, w->pos);
    put_u32(e + 144, store_crc32(w->buf, used));
    w->pos += padded;
    w->n_in_shard++;
    w->n++;
    w->steps += (uint64_t)T;
    if (w->n_in_shard == (size_t)w->shard_size) return shard_end(w, err);
    return 0;
}

void store_writer_totals(const StoreWriter *w, size_t *n, uint32_t *n_speakers, uint64_t *steps, uint64_t *bytes) {
    *n = w->n;
    *n_speakers = w->n_speakers;
    *steps = w->steps;
    *bytes = w->bytes + (w->f ? w->pos + w->n_in_shard * ENTRY_BYTES : 0);
}

static int write_manifest(FILE *f, void *ctx, AvtErr *err) {
    const StoreWriter *w = ctx;
    cJSON *m = cJSON_CreateObject(), *shards = cJSON_CreateArray(), *spk = cJSON_CreateArray();
    cJSON_AddStringToObject(m, "format", "avt-store");
    cJSON_AddNumberToObject(m, "version", STORE_VERSION);
    cJSON_AddStringToObject(m, "dtype", dtype_name(w->dtype));
    cJSON_AddNumberToObject(m, "d_a", w->d_a);
    cJSON_AddNumberToObject(m, "d_v", w->d_v);
    cJSON_AddNumberToObject(m, "utterances", (double)w->n);
    cJSON_AddNumberToObject(m, "steps", (double)w->steps);
    cJSON_AddNumberToObject(m, "bytes", (double)w->bytes);
    for (int k = 0; k < w->n_shards; k++) {
        cJSON *s = cJSON_CreateObject();
        char *name = shard_name(k);
        cJSON_AddStringToObject(s, "file", name);
        free(name);
        cJSON_AddNumberToObject(s, "utterances", (double)w->shard_n[k]);
        cJSON_AddNumberToObject(s, "bytes", (double)w->shard_bytes[k]);
        cJSON_AddItemToArray(shards, s);
    }
    for (uint32_t k = 0; k < w->n_speakers; k++) cJSON_AddItemToArray(spk, cJSON_CreateString(w->speakers[k]));
    cJSON_AddItemToObject(m, "shards", shards);
    cJSON_AddItemToObject(m, "speakers", spk);
    char *text = cJSON_Print(m);
    if (!text) avt_fatal("out of memory");
    int rc = fputs(text, f) < 0 || fputc('\n', f) == EOF ? avt_err_set(err, "%s: write failed", MANIFEST) : 0;
    free(text);
    cJSON_Delete(m);
    return rc;
}

static void writer_free(StoreWriter *w) {
    for (uint32_t k = 0; k < w->n_speakers; k++) free(w->speakers[k]);
    free(w->speakers);
    free(w->slots);
    free(w->shard_n);
    free(w->shard_bytes);
    free(w->index);
    free(w->buf);
    free(w->tmp);
    free(w->final);
    free(w->dir);
    free(w);
}

int store_writer_finish(StoreWriter *w, AvtErr *err) {
    int rc = w->f ? shard_end(w, err) : 0;
    if (rc == 0) {
        char *m = path_join(w->dir, MANIFEST);
        rc = avt_write_atomic(m, write_manifest, w, err);
        free(m);
    }
    if (rc) {
        store_writer_abort(w);
        return -1;
    }
    writer_free(w);
    return 0;
}

void store_writer_abort(StoreWriter *w) {
    if (!w) return;
    if (w->f) fclose(w->f); // its contents are being thrown away: a close error changes nothing
    if (w->tmp) remove(w->tmp);
    writer_free(w);
}

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
        s->shards[i].path = path_join(dir, file->valuestring);
        if (open_shard(s, i, n, bytes, err)) return -1;
    }
    if (n_seen != n_total)
        return avt_err_set(err, "%s: the shards hold %llu utterances, the manifest says %llu", path,
                           (unsigned long long)n_seen, (unsigned long long)n_total);
    return 0;
}

int store_open(Store **sp, const char *dir, AvtErr *err) {
    *sp = NULL;
    char *path = path_join(dir, MANIFEST);
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
