// avt prepare: the paper's pretraining metadata (feature-file pairs) -> a sharded corpus store (data/store.h).
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif
#include "../data/features.h"
#include "../data/store.h"
#include "cli.h"

static const char *HELP =
    "usage: avt prepare --from-csv METADATA.csv --out DIR [--dtype f16|f32] [--shard-size N] [--threads N]\n"
    "                   [--audio-dim N] [--video-dim N]\n"
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
    "  --from-csv PATH     metadata file\n"
    "  --out DIR           store directory (created if missing; its parent must exist)\n"
    "  --dtype f16|f32     stored precision (default f16, as the paper holds its corpus; f32 is exact)\n"
    "  --shard-size N      utterances per shard (default 1000)\n"
    "  --threads N         threads reading feature files (default: all cores)\n"
    "  --audio-dim N       audio feature width (512)\n"
    "  --video-dim N       video feature width (17)\n"
    "  --verify DIR        check an existing store: every shard, index and utterance CRC\n"
    "\n"
    "Rows that cannot be read (missing or malformed file, Inf, a value beyond f16, no common steps, a duplicate\n"
    "id) are skipped and listed in DIR/skipped.txt. Exit status: 0, 2 when rows were skipped, 1 on an error.\n";

typedef struct {
    char *audio, *video; // resolved paths
    char *id, *speaker;
    int line;            // in the metadata file
    char *bad;           // why the row is skipped before reading (malformed, duplicate id), or NULL
} Row;

static char *trim(char *s) {
    while (*s == ' ' || *s == '\t') s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r' || s[n - 1] == '\n')) s[--n] = '\0';
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
    char *why; // skipped: the reason, else NULL
} Slot;

// Reads and checks one row's files; on failure the slot holds the reason.
static void load_row(Slot *o, const char *meta, const Row *r, int d_a, int d_v, StoreDtype dtype) {
    AvtErr err;
    memset(o, 0, sizeof *o);
    if (r->bad) {
        o->why = str_printf("%s:%d: %s", meta, r->line, r->bad);
        return;
    }
    int rc = features_read_audio(&o->a, r->audio, d_a, &err);
    if (rc == 0) rc = features_read_video(&o->v, r->video, d_v, &err);
    if (rc == 0) {
        features_align(&o->a, &o->v);
        if (o->a.T == 0) rc = avt_err_set(&err, "%s + %s: no common steps left after dropping NaN rows", r->audio,
                                          r->video);
    }
    AvtErr val;
    if (rc == 0 && store_check_values(o->a.data, (size_t)o->a.T * (size_t)d_a, dtype, r->id, &val))
        rc = avt_err_set(&err, "%s: %s", r->audio, val.msg);
    if (rc == 0 && store_check_values(o->v.data, (size_t)o->v.T * (size_t)d_v, dtype, r->id, &val))
        rc = avt_err_set(&err, "%s: %s", r->video, val.msg);
    if (rc) {
        features_free(&o->a);
        features_free(&o->v);
        o->why = str_printf("%s:%d: %s", meta, r->line, err.msg);
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

static int prepare(const char *meta, const char *dir, StoreDtype dtype, int shard_size, int d_a, int d_v) {
    int n;
    Row *rows = read_metadata(meta, &n);
    StoreWriter *w;
    AvtErr err;
    if (store_writer_open(&w, dir, dtype, d_a, d_v, shard_size, &err)) avt_die("%s", err.msg);
    char *skipped_path = str_printf("%s/skipped.txt", dir);
    if (remove(skipped_path) != 0 && errno != ENOENT) avt_die("%s: cannot remove: %s", skipped_path, strerror(errno));
#ifdef _OPENMP
    int chunk = 16 * omp_get_max_threads();
#else
    int chunk = 16;
#endif
    Slot *slots = calloc_check((size_t)chunk, sizeof *slots);
    FILE *skipped = NULL;
    int n_skipped = 0;
    Progress prog;
    progress_start(&prog, "rows", n);
    for (int i0 = 0; i0 < n; i0 += chunk) {
        int m = n - i0 < chunk ? n - i0 : chunk;
        // Files are read in parallel, then stored in metadata order: the store does not depend on the threads.
#pragma omp parallel for schedule(dynamic, 1)
        for (int j = 0; j < m; j++) load_row(&slots[j], meta, &rows[i0 + j], d_a, d_v, dtype);
        for (int j = 0; j < m; j++) {
            Slot *o = &slots[j];
            const Row *r = &rows[i0 + j];
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
            features_free(&o->a);
            features_free(&o->v);
        }
        progress_update(&prog, i0 + m);
    }
    progress_end(&prog);
    if (skipped) fclose_check(skipped, skipped_path);
    if (n_skipped == n) {
        store_writer_abort(w);
        avt_die("%s: every row was skipped (reasons in %s)", meta, skipped_path);
    }
    size_t n_utt;
    uint32_t n_spk;
    uint64_t steps, bytes;
    store_writer_totals(w, &n_utt, &n_spk, &steps, &bytes);
    if (store_writer_finish(w, &err)) avt_die("%s", err.msg);
    fprintf(stderr, "prepared %zu utterances of %u speakers (%llu steps, %llu bytes, %s) into %s in %.1f s\n", n_utt,
            n_spk, (unsigned long long)steps, (unsigned long long)bytes, dtype == STORE_F16 ? "f16" : "f32", dir,
            cli_now() - prog.t0);
    if (n_skipped) fprintf(stderr, "skipped %d of %d rows: reasons in %s\n", n_skipped, n, skipped_path);
    for (int i = 0; i < n; i++) {
        free(rows[i].audio);
        free(rows[i].video);
        free(rows[i].id);
        free(rows[i].speaker);
        free(rows[i].bad);
    }
    free(rows);
    free(slots);
    free(skipped_path);
    return n_skipped ? 2 : 0;
}

int cmd_prepare(int argc, char **argv) {
    const char *meta = NULL, *out = NULL, *check = NULL;
    StoreDtype dtype = STORE_F16;
    int shard_size = 1000, threads = 0, d_a = 512, d_v = OPENFACE_AU_DIM;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (cli_help(a)) {
            fputs(HELP, stdout);
            return 0;
        } else if (cli_is(a, "--from-csv")) meta = cli_value(argc, argv, &i);
        else if (cli_is(a, "--out")) out = cli_value(argc, argv, &i);
        else if (cli_is(a, "--verify")) check = cli_value(argc, argv, &i);
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
        if (meta || out) avt_die("prepare: give either --verify DIR or --from-csv/--out, not both");
        return verify(check);
    }
    if (!meta) avt_die("prepare: --from-csv is required (see avt prepare --help)");
    if (!out) avt_die("prepare: --out is required (see avt prepare --help)");
    return prepare(meta, out, dtype, shard_size, d_a, d_v);
}
