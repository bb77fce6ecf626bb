// avt prepare: the paper's pretraining metadata (feature-file pairs), or a dataset's media tree, -> a sharded corpus
// store (data/corpus/store.h).
#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#ifdef _OPENMP
#include <omp.h>
#endif
#include "data/media/av_features.h"
#include "data/media/face.h"
#include "data/media/fbank.h"
#include "data/corpus/features.h"
#include "data/corpus/store.h"
#include "tools/cli.h"

static const char *HELP =
    "usage: avt prepare --from-csv METADATA.csv --out DIR [--dtype f16|f32] [--shard-size N] [--threads N]\n"
    "                   [--audio-dim N] [--video-dim N]\n"
    "       avt prepare --layout voxceleb2|cremad|ravdess ROOT --out DIR [--dtype ...] [--shard-size N]\n"
    "                   [--threads N] [--cascade XML]\n"
    "       avt prepare --verify DIR\n"
    "\n"
    "Reads every utterance's feature files and writes them, aligned, into a sharded store in DIR (manifest.json\n"
    "and shard-NNNNN.avts; an earlier store there is replaced). --verify recomputes every utterance's CRC.\n"
    "\n"
    "METADATA rows are the paper's: audio_csv,openface_csv[,seq_len[,masking_list]]; seq_len and masking_list are\n"
    "ignored (pretraining crops and masks on the fly). Lines starting with '#' are comments; a first row whose two\n"
    "paths hold no '.' is a header. Relative paths are relative to METADATA's directory.\n"
    "Audio: headerless CSV (one 200 ms step per row) or .npy; video: OpenFace 2.x CSV (every 6th row, the 17\n"
    "AU*_r columns) or .npy. NaN rows are dropped per stream, then both are cut to the common length.\n"
    "Utterance id: the audio path relative to METADATA's directory, without its extension. Speaker: the first\n"
    "path component of the audio path that is a VoxCeleb2 identity (id + digits), else the audio file's directory.\n"
    "\n"
    "--layout computes the features of every media file of a dataset tree (as avt features: 512 log-mel\n"
    "statistics + 17 face values per 200 ms step) from the file's own audio and video streams. Per layout: the\n"
    "files taken, the speaker, and the label fields the names carry, written to DIR/labels.csv (header\n"
    "id,speaker,<fields>; one row per stored utterance, in store order):\n"
    "  voxceleb2  ROOT/{dev,test}/mp4/idNNNNN/VIDEOID/NNNNN.mp4; speaker idNNNNN; fields split,video\n"
    "  cremad     ROOT/VideoFlash/ActorID_Sentence_Emotion_Level.flv (e.g. 1001_DFA_ANG_XX); speaker ActorID;\n"
    "             fields sentence,emotion (ANG DIS FEA HAP NEU SAD),level (LO MD HI XX); the audio is the\n"
    "             16 kHz original ROOT/AudioWAV/NAME.wav when present, else the FLV's own\n"
    "  ravdess    ROOT/Actor_NN/MM-VV-EE-II-SS-RR-NN.mp4 (NN: the directory's actor), full-AV files only\n"
    "             (modality 01; video-only 02 and audio-only 03 are passed over); speaker Actor_NN; fields\n"
    "             channel (speech song),emotion (neutral calm happy sad angry fearful disgust surprised),\n"
    "             intensity (normal strong),statement (1 2),repetition (1 2)\n"
    "  mspimprov  ROOT/**/MSP-IMPROV-S01A-F01-P-FM01.avi (any folder layout), audio from the .wav beside it when\n"
    "             present; speaker F01 (gender + session); fields session,sentence,emotion (target A H S N),\n"
    "             condition (P R S T),turn, and from ROOT/Evaluation.txt when present category (A H S N O X),\n"
    "             arousal,valence,dominance (means of the raters, 1-5)\n"
    "Utterance id: the path relative to ROOT without its extension. Each finished file's features are kept in\n"
    "DIR/.cache/ (keyed by that path, the file's size and mtime): a rerun, after an interruption or with new\n"
    "files, computes only what is not there and rebuilds the store from the cache (entries of changed or removed\n"
    "files stay: delete DIR/.cache to reclaim them).\n"
    "\n"
    "  --from-csv PATH     metadata file\n"
    "  --layout NAME ROOT  a dataset tree (above)\n"
    "  --out DIR           store directory (created if missing; its parent must exist)\n"
    "  --dtype f16|f32     stored precision (default f16, as the paper holds its corpus; f32 is exact)\n"
    "  --shard-size N      utterances per shard (default 1000)\n"
    "  --threads N         threads reading feature or media files (default: all cores)\n"
    "  --audio-dim N       audio feature width (512; --from-csv)\n"
    "  --video-dim N       video feature width (17; --from-csv)\n"
    "  --cascade XML       --layout: OpenCV face cascade, by default (from opencv-data)\n"
    "                      " AV_CASCADE_DEFAULT "\n"
    "  --verify DIR        check an existing store: every shard, index and utterance CRC\n"
    "\n"
    "Rows or files that cannot be read (missing or malformed file, no audio or video stream, too short, a decode\n"
    "error, Inf, a value beyond f16, no common steps, a duplicate id, a name off the layout's pattern) are skipped\n"
    "and listed in DIR/skipped.txt. Exit status: 0, 2 when rows or files were skipped, 1 on an error.\n";

typedef struct {
    char *audio, *video; // resolved paths (--layout: the media file in audio, video NULL)
    char *id, *speaker;
    char *labels;        // --layout: the fields the file name carries, comma-separated, else NULL
    char *wav;           // --layout: the media's separate original audio (CREMA-D's AudioWAV/NAME.wav), or NULL
    int line;            // in the metadata file (0 for --layout)
    int stored;          // made it into the store
    char *bad;           // why the row is skipped before reading (malformed, duplicate id), or NULL
} Row;

// A field without its surrounding white space and quotes.
static char *trim(char *s) {
    s = cli_trim(s);
    size_t n = strlen(s);
    if (n >= 2 && s[0] == '"' && s[n - 1] == '"') { // pandas quotes fields holding commas
        s[n - 1] = '\0';
        s++;
    }
    return s;
}

static char *dup_check(const char *s) {
    char *d = strdup(s);
    if (!d) avt_fatal("out of memory");
    return d;
}

AVT_PRINTF(1, 2) static char *str_printf(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    char *s;
    int n = vasprintf(&s, fmt, ap);
    va_end(ap);
    if (n < 0) avt_fatal("out of memory");
    return s;
}

// A VoxCeleb2 identity: "id" followed by one or more digits, the whole component.
static int is_identity(const char *c, size_t len) {
    if (len < 3 || c[0] != 'i' || c[1] != 'd') return 0;
    for (size_t k = 2; k < len; k++)
        if (c[k] < '0' || c[k] > '9') return 0;
    return 1;
}

static char *speaker_of(const char *audio_field, const char *resolved) {
    for (const char *c = audio_field; *c;) {
        const char *e = strchr(c, '/');
        size_t len = e ? (size_t)(e - c) : strlen(c);
        if (e && is_identity(c, len)) return strndup(c, len); // the file name itself is no directory
        c = e ? e + 1 : c + len;
    }
    const char *file = strrchr(resolved, '/');
    if (!file) return dup_check(".");
    const char *dir = file;
    while (dir > resolved && dir[-1] != '/') dir--;
    return dir == file ? dup_check("/") : strndup(dir, (size_t)(file - dir));
}

// The audio path as written, without leading "/" or "./" and without its extension.
static char *id_of(const char *audio_field) {
    const char *s = audio_field;
    for (;;) {
        if (*s == '/') s++;
        else if (s[0] == '.' && s[1] == '/') s += 2;
        else break;
    }
    char *id = dup_check(s);
    char *slash = strrchr(id, '/'), *dot = strrchr(id, '.');
    if (dot && dot > (slash ? slash + 1 : id)) *dot = '\0';
    return id;
}

static int cmp_row_id(const void *a, const void *b) {
    const Row *x = *(const Row *const *)a, *y = *(const Row *const *)b;
    int c = strcmp(x->id, y->id);
    return c ? c : (x->line > y->line) - (x->line < y->line);
}

static Row *read_metadata(const char *path, int *n_out) {
    FILE *f = fopen(path, "r");
    if (!f) avt_die("%s: cannot open: %s", path, strerror(errno));
    const char *slash = strrchr(path, '/');
    char *dir = slash ? strndup(path, (size_t)(slash - path + 1)) : dup_check(""); // with its trailing '/'
    if (!dir) avt_fatal("out of memory");
    Row *rows = NULL;
    int n = 0, cap = 0, lineno = 0, seen = 0;
    char *line = NULL;
    size_t len = 0;
    while (getline(&line, &len, f) != -1) {
        lineno++;
        char *s = trim(line);
        if (*s == '\0' || *s == '#') continue;
        char *c1 = strchr(s, ',');
        char *c2 = c1 ? strchr(c1 + 1, ',') : NULL;
        if (c1) *c1 = '\0';
        if (c2) *c2 = '\0';
        char *audio = trim(s), *video = c1 ? trim(c1 + 1) : "";
        if (!seen++ && !strchr(audio, '.') && !strchr(video, '.')) continue; // a header row
        if (n == cap) {
            cap = cap ? 2 * cap : 1024;
            rows = realloc(rows, (size_t)cap * sizeof *rows);
            if (!rows) avt_fatal("out of memory reading %s", path);
        }
        Row *r = &rows[n++];
        memset(r, 0, sizeof *r);
        r->line = lineno;
        if (!*audio || !*video) {
            r->bad = dup_check("expected 'audio_csv,openface_csv[,seq_len[,masking_list]]'");
            r->id = dup_check("");
            continue;
        }
        r->audio = audio[0] == '/' ? dup_check(audio) : str_printf("%s%s", dir, audio);
        r->video = video[0] == '/' ? dup_check(video) : str_printf("%s%s", dir, video);
        r->id = id_of(audio);
        r->speaker = speaker_of(audio, r->audio);
        if (!r->speaker) avt_fatal("out of memory");
        if (strlen(r->id) > STORE_ID_MAX)
            r->bad = str_printf("utterance id '%.60s...' is longer than %d bytes", r->id, STORE_ID_MAX);
    }
    free(line);
    fclose(f);
    free(dir);
    if (n == 0) avt_die("%s: no rows", path);
    // Duplicate ids: the first row keeps the id, later ones are skipped.
    Row **by_id = malloc_check((size_t)n * sizeof *by_id);
    for (int i = 0; i < n; i++) by_id[i] = &rows[i];
    qsort(by_id, (size_t)n, sizeof *by_id, cmp_row_id);
    for (int i = 1; i < n; i++) {
        Row *a = by_id[i - 1], *b = by_id[i];
        if (*b->id && !b->bad && strcmp(a->id, b->id) == 0) {
            b->bad = str_printf("duplicate utterance id '%s' (first on line %d)", b->id, a->line);
        }
    }
    free(by_id);
    *n_out = n;
    return rows;
}

typedef struct {
    Features a, v;
    int cached;  // --layout: read from the feature cache
    char *why;   // skipped: the reason, else NULL
} Slot;

// What a run reads from: the metadata file, or a layout's ROOT and the face cascade.
typedef struct {
    const char *src;       // METADATA or ROOT, for messages
    const char *what;      // "rows" or "files"
    const Cascade *cascade; // --layout only
    const char *cache;     // --layout: DIR/.cache
    const char *header;    // --layout: labels.csv's fields after id,speaker
    StoreDtype dtype;
    int d_a, d_v;
} Job;

// ---- the per-file feature cache of --layout: one file per finished media file ----
//   char[8] "AVTFCACH", i32 T, d_a, d_v, u32 path length, the relative path, audio (T, d_a) f32, video (T, d_v) f32
// The name hashes (relative path, size, mtime), so an edited or replaced file misses; the stored path guards the
// (unlikely) hash collision.
static const char CACHE_MAGIC[8] = {'A', 'V', 'T', 'F', 'C', 'A', 'C', 'H'};

// st_wav: the separate audio file's, or NULL.
static char *cache_name(const Job *j, const char *rel, const struct stat *st, const struct stat *st_wav) {
    uint64_t h = 1469598103934665603ull; // FNV-1a 64
    char key[128];
    int n = snprintf(key, sizeof key, "|%lld|%lld.%09ld", (long long)st->st_size, (long long)st->st_mtim.tv_sec,
                     (long)st->st_mtim.tv_nsec);
    if (st_wav)
        n += snprintf(key + n, sizeof key - (size_t)n, "|%lld|%lld.%09ld", (long long)st_wav->st_size,
                      (long long)st_wav->st_mtim.tv_sec, (long)st_wav->st_mtim.tv_nsec);
    for (const char *c = rel; *c; c++) h = (h ^ (uint8_t)*c) * 1099511628211ull;
    for (int k = 0; k < n; k++) h = (h ^ (uint8_t)key[k]) * 1099511628211ull;
    return str_printf("%s/%016llx.feat", j->cache, (unsigned long long)h);
}

// 0 with the features in o, or -1 (no such file, or one that is not a whole entry for rel: it is recomputed).
static int cache_read(Slot *o, const char *path, const char *rel, int d_a, int d_v) {
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    struct stat st;
    char magic[8];
    int32_t hdr[3];
    uint32_t len;
    int ok = fstat(fileno(f), &st) == 0 && fread(magic, 1, 8, f) == 8 && memcmp(magic, CACHE_MAGIC, 8) == 0 &&
             fread(hdr, sizeof hdr, 1, f) == 1 && hdr[0] >= 1 && hdr[1] == d_a && hdr[2] == d_v &&
             fread(&len, sizeof len, 1, f) == 1 && len == strlen(rel);
    size_t na = ok ? (size_t)hdr[0] * d_a : 0, nv = ok ? (size_t)hdr[0] * d_v : 0;
    // The size first, so a damaged header cannot ask for a huge buffer.
    ok = ok && (uint64_t)st.st_size == 8 + sizeof hdr + sizeof len + len + (na + nv) * sizeof(float);
    char *p = ok ? malloc_check(len + 1) : NULL;
    ok = ok && fread(p, 1, len, f) == len && memcmp(p, rel, len) == 0;
    free(p);
    if (ok) {
        o->a = (Features){malloc_check(na * sizeof(float)), hdr[0], d_a};
        o->v = (Features){malloc_check(nv * sizeof(float)), hdr[0], d_v};
        ok = fread(o->a.data, sizeof(float), na, f) == na && fread(o->v.data, sizeof(float), nv, f) == nv;
        if (!ok) {
            features_free(&o->a);
            features_free(&o->v);
        }
    }
    fclose(f);
    return ok ? 0 : -1;
}

typedef struct {
    const Slot *o;
    const char *rel;
} CacheEntry;

static int cache_write_fn(FILE *f, void *ctx, AvtErr *err) {
    const CacheEntry *c = ctx;
    int32_t hdr[3] = {c->o->a.T, c->o->a.D, c->o->v.D};
    uint32_t len = (uint32_t)strlen(c->rel);
    size_t na = (size_t)hdr[0] * hdr[1], nv = (size_t)hdr[0] * hdr[2];
    if (fwrite(CACHE_MAGIC, 1, 8, f) != 8 || fwrite(hdr, sizeof hdr, 1, f) != 1 ||
        fwrite(&len, sizeof len, 1, f) != 1 || fwrite(c->rel, 1, len, f) != len ||
        fwrite(c->o->a.data, sizeof(float), na, f) != na || fwrite(c->o->v.data, sizeof(float), nv, f) != nv)
        return avt_err_set(err, "%s: writing its feature cache entry failed: %s", c->rel, strerror(errno));
    return 0;
}

// One media file's features: from the cache, else computed (and cached).
static int load_media(Slot *o, const Job *j, const Row *r, AvtErr *err) {
    const char *rel = r->audio + strlen(j->src) + 1;
    struct stat st, st_wav;
    if (stat(r->audio, &st) != 0) return avt_err_set(err, "%s: %s", r->audio, strerror(errno));
    if (r->wav && stat(r->wav, &st_wav) != 0) return avt_err_set(err, "%s: %s", r->wav, strerror(errno));
    char *cache = cache_name(j, rel, &st, r->wav ? &st_wav : NULL);
    int rc = 0;
    if (cache_read(o, cache, rel, j->d_a, j->d_v) == 0) o->cached = 1;
    else {
        AvFeatures f;
        MediaLimits lim = {0}; // the defaults
        rc = av_features(&f, r->audio, r->wav, j->cascade, &lim, err);
        if (rc == 0) {
            o->a = f.audio; // the features move into the slot
            o->v = f.video;
            f.audio = f.video = (Features){0};
            av_features_free(&f);
            CacheEntry c = {o, rel};
            rc = avt_write_atomic(cache, cache_write_fn, &c, err);
        }
    }
    free(cache);
    return rc;
}

// Reads and checks one row's files; on failure the slot holds the reason.
static void load_row(Slot *o, const Job *j, const Row *r) {
    AvtErr err;
    memset(o, 0, sizeof *o);
    if (r->bad) {
        o->why = j->cascade ? str_printf("%s: %s", r->audio, r->bad) : str_printf("%s:%d: %s", j->src, r->line, r->bad);
        return;
    }
    int rc;
    if (j->cascade) rc = load_media(o, j, r, &err);
    else {
        rc = features_read_audio(&o->a, r->audio, j->d_a, &err);
        if (rc == 0) rc = features_read_video(&o->v, r->video, j->d_v, &err);
        if (rc == 0) {
            features_align(&o->a, &o->v);
            if (o->a.T == 0)
                rc = avt_err_set(&err, "%s + %s: no common steps left after dropping NaN rows", r->audio, r->video);
        }
    }
    AvtErr val;
    if (rc == 0 && store_check_values(o->a.data, (size_t)o->a.T * (size_t)j->d_a, j->dtype, r->id, &val))
        rc = avt_err_set(&err, "%s: %s", r->audio, val.msg);
    if (rc == 0 && store_check_values(o->v.data, (size_t)o->v.T * (size_t)j->d_v, j->dtype, r->id, &val))
        rc = avt_err_set(&err, "%s: %s", j->cascade ? r->audio : r->video, val.msg);
    if (rc) {
        features_free(&o->a);
        features_free(&o->v);
        o->why = j->cascade ? dup_check(err.msg) : str_printf("%s:%d: %s", j->src, r->line, err.msg);
    }
}

static int verify(const char *dir) {
    Store *s;
    AvtErr err;
    double t0 = cli_now();
    if (store_open(&s, dir, &err) || store_verify(s, &err)) avt_die("%s", err.msg);
    printf("%s: %zu utterances of %u speakers, %llu steps (%s, d_a %d, d_v %d): every CRC matches (%.1f s)\n", dir,
           store_size(s), store_n_speakers(s), (unsigned long long)store_steps(s),
           store_dtype(s) == STORE_F16 ? "f16" : "f32", store_d_a(s), store_d_v(s), cli_now() - t0);
    store_close(s);
    return 0;
}

// A CSV field, quoted when it holds a comma, a quote or a line break.
static void csv_field(FILE *f, const char *s) {
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

typedef struct {
    const Job *j;
    const Row *rows;
    int n;
} LabelsCtx;

static int labels_write_fn(FILE *f, void *ctx, AvtErr *err) {
    const LabelsCtx *c = ctx;
    fprintf(f, "id,speaker,%s\n", c->j->header);
    for (int i = 0; i < c->n; i++) {
        const Row *r = &c->rows[i];
        if (!r->stored) continue;
        csv_field(f, r->id);
        fputc(',', f);
        csv_field(f, r->speaker);
        fprintf(f, ",%s\n", r->labels);
    }
    return ferror(f) ? avt_err_set(err, "labels.csv: write failed: %s", strerror(errno)) : 0;
}

static int prepare(const Job *j, Row *rows, int n, const char *dir, int shard_size) {
    StoreWriter *w;
    AvtErr err;
    if (store_writer_open(&w, dir, j->dtype, j->d_a, j->d_v, shard_size, &err)) avt_die("%s", err.msg);
    char *skipped_path = str_printf("%s/skipped.txt", dir), *labels_path = str_printf("%s/labels.csv", dir);
    // Neither may outlive the store they describe.
    if (remove(skipped_path) != 0 && errno != ENOENT) avt_die("%s: cannot remove: %s", skipped_path, strerror(errno));
    if (remove(labels_path) != 0 && errno != ENOENT) avt_die("%s: cannot remove: %s", labels_path, strerror(errno));
    if (j->cache && mkdir(j->cache, 0777) != 0 && errno != EEXIST)
        avt_die("%s: cannot create: %s", j->cache, strerror(errno));
#ifdef _OPENMP
    int chunk = 16 * omp_get_max_threads();
#else
    int chunk = 16;
#endif
    Slot *slots = calloc_check((size_t)chunk, sizeof *slots);
    FILE *skipped = NULL;
    int n_skipped = 0, n_cached = 0;
    Progress prog;
    progress_start(&prog, j->what, n);
    for (int i0 = 0; i0 < n; i0 += chunk) {
        int m = n - i0 < chunk ? n - i0 : chunk;
        // Files are read in parallel, then stored in row order: the store does not depend on the threads.
#pragma omp parallel for schedule(dynamic, 1)
        for (int k = 0; k < m; k++) load_row(&slots[k], j, &rows[i0 + k]);
        for (int k = 0; k < m; k++) {
            Slot *o = &slots[k];
            Row *r = &rows[i0 + k];
            if (o->why) {
                if (!skipped) {
                    skipped = fopen(skipped_path, "w");
                    if (!skipped) avt_die("%s: cannot create: %s", skipped_path, strerror(errno));
                }
                fprintf(skipped, "%s\n", o->why);
                if (n_skipped < 5) fprintf(stderr, "%savt: skipped: %s\n", prog.tty ? "\n" : "", o->why);
                n_skipped++;
                free_null(o->why);
                continue;
            }
            if (store_writer_add(w, r->id, r->speaker, o->a.T, o->a.data, o->v.data, &err)) {
                store_writer_abort(w);
                avt_die("%s", err.msg);
            }
            r->stored = 1;
            n_cached += o->cached;
            features_free(&o->a);
            features_free(&o->v);
        }
        progress_update(&prog, i0 + m);
    }
    progress_end(&prog);
    if (skipped) fclose_check(skipped, skipped_path);
    if (n_skipped == n) {
        store_writer_abort(w);
        avt_die("%s: every %.*s was skipped (reasons in %s)", j->src, (int)strlen(j->what) - 1, j->what, // singular
                skipped_path);
    }
    size_t n_utt;
    uint32_t n_spk;
    uint64_t steps, bytes;
    store_writer_totals(w, &n_utt, &n_spk, &steps, &bytes);
    if (store_writer_finish(w, &err)) avt_die("%s", err.msg);
    LabelsCtx lc = {j, rows, n};
    if (j->header && avt_write_atomic(labels_path, labels_write_fn, &lc, &err)) avt_die("%s", err.msg);
    fprintf(stderr, "prepared %zu utterances of %u speakers (%llu steps, %llu bytes, %s) into %s in %.1f s", n_utt,
            n_spk, (unsigned long long)steps, (unsigned long long)bytes, j->dtype == STORE_F16 ? "f16" : "f32", dir,
            cli_now() - prog.t0);
    if (j->cache) fprintf(stderr, "; %d from cache, %zu computed", n_cached, n_utt - (size_t)n_cached);
    fputc('\n', stderr);
    if (n_skipped) fprintf(stderr, "skipped %d of %d %s: reasons in %s\n", n_skipped, n, j->what, skipped_path);
    free(slots);
    free(skipped_path);
    free(labels_path);
    return n_skipped ? 2 : 0;
}

static void free_rows(Row *rows, int n) {
    for (int i = 0; i < n; i++) {
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

// ---- --layout: dataset trees ----

// Splits rel at '/' into at most max components (in buf, which it overwrites); the count, or max + 1 if more.
static int components(char *buf, char **c, int max) {
    int n = 0;
    for (char *s = buf; s; n++) {
        if (n == max) return max + 1;
        c[n] = s;
        s = strchr(s, '/');
        if (s) *s++ = '\0';
    }
    return n;
}

static int is_digits(const char *s, size_t n) {
    for (size_t k = 0; k < n; k++)
        if (s[k] < '0' || s[k] > '9') return 0;
    return 1;
}

// The file name's stem when it ends in ext (cut in place), else NULL.
static char *stem(char *name, const char *ext) {
    size_t n = strlen(name), e = strlen(ext);
    if (n <= e || strcmp(name + n - e, ext) != 0) return NULL;
    name[n - e] = '\0';
    return name;
}

// Each parser: 0 if rel is not a file of the layout; 1 if it is, with r->speaker and r->labels set, or r->bad.
static int parse_voxceleb2(const char *rel, Row *r) {
    char buf[4096], *c[5], *s;
    snprintf(buf, sizeof buf, "%s", rel);
    if (components(buf, c, 5) != 5 || strcmp(c[1], "mp4") != 0 || !(s = stem(c[4], ".mp4"))) return 0;
    if (!is_identity(c[2], strlen(c[2])))
        r->bad = str_printf("'%s' is not a VoxCeleb2 identity directory (id + digits)", c[2]);
    r->speaker = dup_check(c[2]);
    r->labels = str_printf("%s,%s", c[0], c[3]);
    return 1;
}

static int one_of(const char *s, const char *const *set) {
    for (; *set; set++)
        if (strcmp(s, *set) == 0) return 1;
    return 0;
}

static int parse_cremad(const char *rel, Row *r) {
    static const char *const emotions[] = {"ANG", "DIS", "FEA", "HAP", "NEU", "SAD", NULL};
    static const char *const levels[] = {"LO", "MD", "HI", "XX", NULL};
    char buf[4096], *c[2], *s;
    snprintf(buf, sizeof buf, "%s", rel);
    if (components(buf, c, 2) != 2 || !(s = stem(c[1], ".flv"))) return 0;
    // ActorID_Sentence_Emotion_Level: 4 digits, 3 capitals, an emotion code, a level code
    if (strlen(s) != 15 || !is_digits(s, 4) || s[4] != '_' || s[8] != '_' || s[12] != '_') {
        r->bad = dup_check("name is not ActorID_Sentence_Emotion_Level (e.g. 1001_DFA_ANG_XX)");
        return 1;
    }
    s[4] = s[8] = s[12] = '\0';
    if (!one_of(s + 9, emotions) || !one_of(s + 13, levels)) {
        r->bad = str_printf("emotion '%s' or level '%s' is not a CREMA-D code", s + 9, s + 13);
        return 1;
    }
    r->speaker = dup_check(s);
    r->labels = str_printf("%s,%s,%s", s + 5, s + 9, s + 13);
    return 1;
}

static int parse_ravdess(const char *rel, Row *r) {
    static const char *const emotions[] = {"neutral", "calm",    "happy",   "sad",
                                           "angry",   "fearful", "disgust", "surprised"};
    char buf[4096], *c[2], *s;
    snprintf(buf, sizeof buf, "%s", rel);
    if (components(buf, c, 2) != 2 || strncmp(c[0], "Actor_", 6) != 0 || !(s = stem(c[1], ".mp4"))) return 0;
    int f[7], len = 0;
    if (strlen(s) != 20 || sscanf(s, "%2d-%2d-%2d-%2d-%2d-%2d-%2d%n", &f[0], &f[1], &f[2], &f[3], &f[4], &f[5], &f[6],
                                  &len) != 7 || len != 20) {
        r->bad = dup_check("name is not seven two-digit fields MM-VV-EE-II-SS-RR-AA");
        return 1;
    }
    if (f[0] != 1) return 0; // video-only (02) and audio-only (03) files: the full-AV file (01) holds both
    if (f[1] < 1 || f[1] > 2 || f[2] < 1 || f[2] > 8 || f[3] < 1 || f[3] > 2 || f[4] < 1 || f[4] > 2 || f[5] < 1 ||
        f[5] > 2) {
        r->bad = dup_check("a field is out of RAVDESS's codes");
        return 1;
    }
    if (strcmp(c[0] + 6, s + 18) != 0) r->bad = str_printf("actor %s is not the directory's", s + 18);
    r->speaker = dup_check(c[0]);
    r->labels = str_printf("%s,%s,%s,%d,%d", f[1] == 1 ? "speech" : "song", emotions[f[2] - 1],
                           f[3] == 1 ? "normal" : "strong", f[4], f[5]);
    return 1;
}

// MSP-IMPROV-S01A-F01-P-FM01: sentence 01, target emotion A, speaker F01 (gender, session), condition P, turn FM01.
static int parse_mspimprov(const char *rel, Row *r) {
    char buf[4096], *s;
    snprintf(buf, sizeof buf, "%s", rel);
    char *base = strrchr(buf, '/');
    if (!(s = stem(base ? base + 1 : buf, ".avi")) || strncmp(s, "MSP-IMPROV-", 11) != 0) return 0;
    if (strlen(s) < 23 || s[11] != 'S' || !is_digits(s + 12, 2) || !strchr("AHSN", s[14]) || s[15] != '-' ||
        !strchr("FM", s[16]) || !is_digits(s + 17, 2) || s[19] != '-' || !strchr("PRST", s[20]) || s[21] != '-') {
        r->bad = dup_check("name is not MSP-IMPROV-S<sentence><emotion>-<F|M><session>-<P|R|S|T>-<turn>");
        return 1;
    }
    r->speaker = str_printf("%.3s", s + 16);
    r->labels = str_printf("%.2s,%.2s,%c,%c,%s", s + 17, s + 12, s[14], s[20], s + 22);
    return 1;
}

// MSP-IMPROV's ROOT/Evaluation.txt, when present: each clip's aggregate line
// "UTD-IMPROV-<name>.avi; <category>; A:<f>; V:<f>; D:<f> ; N:<f>;" adds category,arousal,valence,dominance
// to its row's labels (empty fields for clips it does not list). Rater lines are passed over.
typedef struct {
    char name[160];
    char fields[192];
} Rating;

static int cmp_rating(const void *a, const void *b) {
    return strcmp(((const Rating *)a)->name, ((const Rating *)b)->name);
}

static void mspimprov_ratings(const char *root, Row *rows, int n) {
    char *path = str_printf("%s/Evaluation.txt", root);
    FILE *f = fopen(path, "r");
    Rating *rt = NULL;
    size_t nr = 0, cap = 0;
    char line[4096];
    while (f && fgets(line, sizeof line, f)) {
        char name[128], cat[8];
        double a, v, d;
        if (strncmp(line, "UTD-IMPROV-", 11) != 0 ||
            sscanf(line, "UTD-IMPROV-%120[^.].avi; %7[^;]; A:%lf; V:%lf; D:%lf", name, cat, &a, &v, &d) != 5)
            continue;
        if (nr == cap) rt = realloc(rt, (cap = cap ? 2 * cap : 1024) * sizeof *rt);
        if (!rt) avt_fatal("out of memory reading %s", path);
        snprintf(rt[nr].name, sizeof rt[nr].name, "MSP-IMPROV-%s", name);
        snprintf(rt[nr].fields, sizeof rt[nr].fields, "%s,%g,%g,%g", cat, a, v, d);
        nr++;
    }
    if (f) fclose(f);
    if (nr) qsort(rt, nr, sizeof *rt, cmp_rating);
    for (int i = 0; i < n; i++) {
        Rating key;
        const char *base = strrchr(rows[i].id, '/');
        snprintf(key.name, sizeof key.name, "%s", base ? base + 1 : rows[i].id);
        const Rating *hit = nr ? bsearch(&key, rt, nr, sizeof *rt, cmp_rating) : NULL;
        char *labels = str_printf("%s,%s", rows[i].labels, hit ? hit->fields : ",,,");
        free(rows[i].labels);
        rows[i].labels = labels;
    }
    free(rt);
    free(path);
}

typedef struct {
    const char *name;
    const char *dirs[3];  // walked under ROOT
    const char *pattern;  // for the empty-tree message
    const char *header;   // labels.csv's fields after id,speaker
    int (*parse)(const char *rel, Row *r);
    const char *wav_dir;  // where a media file's separate original audio NAME.wav may be ("": beside it), or NULL
    void (*annotate)(const char *root, Row *rows, int n); // labels from a dataset's label file, or NULL
} Layout;

static const Layout LAYOUTS[] = {
    {"voxceleb2", {"dev/mp4", "test/mp4", NULL}, "{dev,test}/mp4/idNNNNN/VIDEOID/NNNNN.mp4", "split,video",
     parse_voxceleb2, NULL, NULL},
    {"cremad", {"VideoFlash", NULL}, "VideoFlash/*.flv", "sentence,emotion,level", parse_cremad, "AudioWAV", NULL},
    {"ravdess", {"", NULL}, "Actor_NN/01-*.mp4", "channel,emotion,intensity,statement,repetition", parse_ravdess,
     NULL, NULL},
    {"mspimprov", {"", NULL}, "**/MSP-IMPROV-*.avi",
     "session,sentence,emotion,condition,turn,category,arousal,valence,dominance", parse_mspimprov, "",
     mspimprov_ratings},
};

typedef struct {
    char **v;
    int n, cap;
} Paths;

// Every regular file under root/rel (symbolic links followed, dot files passed over), as paths relative to root.
static void walk(const char *root, const char *rel, Paths *p) {
    char *dir = *rel ? str_printf("%s/%s", root, rel) : dup_check(root);
    DIR *d = opendir(dir);
    if (!d) {
        if (errno != ENOENT || !*rel) avt_die("%s: cannot open: %s", dir, strerror(errno));
        free(dir);
        return; // a split or directory this copy of the dataset lacks
    }
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        if (e->d_name[0] == '.') continue;
        char *sub = *rel ? str_printf("%s/%s", rel, e->d_name) : dup_check(e->d_name);
        char *full = str_printf("%s/%s", root, sub);
        struct stat st;
        int ok = stat(full, &st) == 0;
        if (ok && S_ISDIR(st.st_mode)) {
            walk(root, sub, p);
            free(sub);
        } else if (ok && S_ISREG(st.st_mode)) {
            if (p->n == p->cap) {
                p->cap = p->cap ? 2 * p->cap : 1024;
                p->v = realloc(p->v, (size_t)p->cap * sizeof *p->v);
                if (!p->v) avt_fatal("out of memory listing %s", root);
            }
            p->v[p->n++] = sub;
        } else free(sub);
        free(full);
    }
    closedir(d);
    free(dir);
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

// The layout's files under root, sorted by path (the store's order): one row each.
static Row *read_layout(const Layout *L, const char *root, int *n_out) {
    struct stat st;
    if (stat(root, &st) != 0) avt_die("%s: cannot open: %s", root, strerror(errno));
    if (!S_ISDIR(st.st_mode)) avt_die("%s: not a directory", root);
    Paths p = {0};
    for (int k = 0; L->dirs[k]; k++) walk(root, L->dirs[k], &p);
    qsort(p.v, (size_t)p.n, sizeof *p.v, cmp_str);
    Row *rows = calloc_check((size_t)(p.n ? p.n : 1), sizeof *rows);
    int n = 0;
    for (int i = 0; i < p.n; i++) {
        Row *r = &rows[n];
        if (L->parse(p.v[i], r)) {
            r->audio = str_printf("%s/%s", root, p.v[i]);
            r->id = id_of(p.v[i]);
            if (L->wav_dir) { // the original recording beats the media's lossy copy
                const char *base = strrchr(r->id, '/');
                char *wav = *L->wav_dir ? str_printf("%s/%s/%s.wav", root, L->wav_dir, base ? base + 1 : r->id)
                                        : str_printf("%s/%s.wav", root, r->id);
                if (stat(wav, &st) == 0) r->wav = wav;
                else free(wav);
            }
            if (!r->speaker) r->speaker = dup_check("");
            if (!r->labels) r->labels = dup_check("");
            if (!r->bad && strlen(r->id) > STORE_ID_MAX)
                r->bad = str_printf("utterance id is longer than %d bytes", STORE_ID_MAX);
            n++;
        }
        free(p.v[i]);
    }
    free(p.v);
    if (n == 0) avt_die("%s: no %s files here (%s)", root, L->name, L->pattern);
    if (L->annotate) L->annotate(root, rows, n);
    *n_out = n;
    return rows;
}

int cmd_prepare(int argc, char **argv) {
    const char *meta = NULL, *out = NULL, *check = NULL, *layout = NULL, *root = NULL, *xml = AV_CASCADE_DEFAULT;
    StoreDtype dtype = STORE_F16;
    int shard_size = 1000, threads = 0, d_a = 0, d_v = 0; // 0: not given
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (cli_help(a)) {
            fputs(HELP, stdout);
            return 0;
        } else if (cli_is(a, "--from-csv")) meta = cli_value(argc, argv, &i);
        else if (cli_is(a, "--layout")) {
            layout = cli_value(argc, argv, &i);
            root = cli_value(argc, argv, &i);
        } else if (cli_is(a, "--out")) out = cli_value(argc, argv, &i);
        else if (cli_is(a, "--verify")) check = cli_value(argc, argv, &i);
        else if (cli_is(a, "--cascade")) xml = cli_value(argc, argv, &i);
        else if (cli_is(a, "--shard-size")) shard_size = cli_int(a, cli_value(argc, argv, &i), 1, 1 << 24);
        else if (cli_is(a, "--threads")) threads = cli_int(a, cli_value(argc, argv, &i), 1, 4096);
        else if (cli_is(a, "--audio-dim")) d_a = cli_int(a, cli_value(argc, argv, &i), 1, 1 << 16);
        else if (cli_is(a, "--video-dim")) d_v = cli_int(a, cli_value(argc, argv, &i), 1, 1 << 16);
        else if (cli_is(a, "--dtype")) {
            const char *v = cli_value(argc, argv, &i);
            if (cli_is(v, "f16")) dtype = STORE_F16;
            else if (cli_is(v, "f32")) dtype = STORE_F32;
            else avt_die("--dtype: '%s' is not f16 or f32", v);
        } else cli_unknown("prepare", a);
    }
    cli_set_threads(threads);
    if (check) {
        if (meta || out || layout) avt_die("prepare: give either --verify DIR or --from-csv/--layout and --out");
        return verify(check);
    }
    if (meta && layout) avt_die("prepare: give --from-csv or --layout, not both");
    if (!meta && !layout) avt_die("prepare: --from-csv is required, or --layout (see avt prepare --help)");
    if (!out) avt_die("prepare: --out is required (see avt prepare --help)");
    int n, rc;
    Row *rows;
    if (meta) {
        Job j = {meta, "rows", NULL, NULL, NULL, dtype, d_a ? d_a : 512, d_v ? d_v : OPENFACE_AU_DIM};
        rows = read_metadata(meta, &n);
        rc = prepare(&j, rows, n, out, shard_size);
    } else {
        const Layout *L = NULL;
        for (size_t k = 0; k < sizeof LAYOUTS / sizeof *LAYOUTS; k++)
            if (strcmp(layout, LAYOUTS[k].name) == 0) L = &LAYOUTS[k];
        if (!L) avt_die("--layout: '%s' is not voxceleb2, cremad, ravdess or mspimprov", layout);
        if (d_a || d_v) avt_die("prepare: --audio-dim and --video-dim are for --from-csv (--layout computes 512 + 17)");
        rows = read_layout(L, root, &n);
        Cascade cascade;
        AvtErr err;
        if (cascade_load(&cascade, xml, &err)) avt_die("%s", err.msg);
        char *cache = str_printf("%s/.cache", out);
        Job j = {root, "files", &cascade, cache, L->header, dtype, FBANK_STEP_DIM, FACE_D};
        rc = prepare(&j, rows, n, out, shard_size);
        free(cache);
        cascade_free(&cascade);
    }
    free_rows(rows, n);
    return rc;
}
