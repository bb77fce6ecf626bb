// The store's writer (avt prepare): shards filled utterance by utterance, each renamed into place when complete,
// then the manifest. Layout: store.h.
#include "data/corpus/store.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "base/half.h"
#include "data/corpus/store_format.h"

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

static char *shard_name(int k) {
    char *s = malloc_check(32);
    snprintf(s, 32, "shard-%05d.avts", k);
    return s;
}

// An earlier store in dir would mix with this one if prepare stopped half-way: remove its files first.
static int clear_store(const char *dir, AvtErr *err) {
    char *m = asprintf_check("%s/%s", dir, MANIFEST);
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
        char *p = asprintf_check("%s/%s", dir, e->d_name);
        if (remove(p) != 0) rc = avt_err_set(err, "%s: cannot remove: %s", p, strerror(errno));
        free(p);
    }
    closedir(d);
    return rc;
}

static int shard_begin(StoreWriter *w, AvtErr *err) {
    char *name = shard_name(w->n_shards);
    w->final = asprintf_check("%s/%s", w->dir, name);
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
        char *m = asprintf_check("%s/%s", w->dir, MANIFEST);
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
