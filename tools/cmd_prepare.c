// avt prepare: the paper's pretraining metadata (feature-file pairs), or a dataset's media tree, -> a sharded corpus
// store (data/corpus/store.h).
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#ifdef _OPENMP
#include <omp.h>
#endif
#include "data/corpus/features.h"
#include "data/corpus/layouts.h"
#include "data/corpus/metadata.h"
#include "data/corpus/store.h"
#include "data/media/av_features.h"
#include "data/media/face.h"
#include "data/media/fbank.h"
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
    METADATA_HELP
    "\n"
    "--layout computes the features of every media file of a dataset tree (as avt features: 512 log-mel\n"
    "statistics + 17 face values per 200 ms step) from the file's own audio and video streams.\n"
    LAYOUTS_HELP
    "Each finished file's features are kept in DIR/.cache/ (keyed by that path, the file's size and mtime): a\n"
    "rerun, after an interruption or with new files, computes only what is not there and rebuilds the store from\n"
    "the cache (entries of changed or removed files stay: delete DIR/.cache to reclaim them).\n"
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
    "Rows or files that cannot be read (missing or malformed file, no audio or video stream, too short, audio and\n"
    "video of clearly different durations, a decode error, Inf, a value beyond f16, no common steps, a duplicate\n"
    "id, a name off the layout's pattern) are skipped and listed in DIR/skipped.txt. Exit status: 0, 2 when rows\n"
    "or files were skipped, 1 on an error.\n";

// What a run reads from: the metadata file, or a layout's ROOT with the face cascade and the feature cache.
typedef struct {
    const char *src;        // METADATA or ROOT, for messages
    const char *what;       // "rows" or "files"
    const Cascade *cascade; // --layout only
    const char *cache;      // --layout: DIR/.cache
    const Layout *layout;   // --layout: labels.csv's fields
    const char *columns;    // --from-csv with a header naming audio and video: labels.csv's columns after id,speaker
    StoreDtype dtype;
    int d_a, d_v;
} Job;

typedef struct {
    Features a, v;
    int cached; // --layout: read from the feature cache
    char *why;  // skipped: the reason, else NULL
} Slot;

// Reads and checks one row's files; on failure the slot holds the reason.
static void load_row(Slot *o, const Job *j, const CorpusRow *r) {
    memset(o, 0, sizeof *o);
    if (r->bad) {
        o->why = asprintf_check("%s", r->bad);
        return;
    }
    AvtErr err, val;
    int rc = j->cascade ? av_features_cached(&o->a, &o->v, &o->cached, j->cache, r->audio + strlen(j->src) + 1,
                                             r->audio, r->wav, j->cascade, &err)
                        : features_read_pair(&o->a, &o->v, r->audio, r->video, j->d_a, j->d_v, &err);
    if (rc == 0 && store_check_values(o->a.data, (size_t)o->a.T * (size_t)j->d_a, j->dtype, r->id, &val))
        rc = avt_err_set(&err, "%s: %s", r->audio, val.msg);
    if (rc == 0 && store_check_values(o->v.data, (size_t)o->v.T * (size_t)j->d_v, j->dtype, r->id, &val))
        rc = avt_err_set(&err, "%s: %s", j->cascade ? r->audio : r->video, val.msg);
    if (rc) {
        features_free(&o->a);
        features_free(&o->v);
        o->why = j->cascade ? asprintf_check("%s", err.msg) : asprintf_check("%s:%ld: %s", j->src, r->line, err.msg);
    }
}

static int verify(const char *dir) {
    Store *s;
    AvtErr err;
    double t0 = avt_now();
    if (store_open(&s, dir, &err) || store_verify(s, &err)) avt_die("%s", err.msg);
    printf("%s: %zu utterances of %u speakers, %llu steps (%s, d_a %d, d_v %d): every CRC matches (%.1f s)\n", dir,
           store_size(s), store_n_speakers(s), (unsigned long long)store_steps(s),
           store_dtype(s) == STORE_F16 ? "f16" : "f32", store_d_a(s), store_d_v(s), avt_now() - t0);
    store_close(s);
    return 0;
}

static int prepare(const Job *j, CorpusRow *rows, size_t n, const char *dir, int shard_size) {
    StoreWriter *w;
    AvtErr err;
    if (store_writer_open(&w, dir, j->dtype, j->d_a, j->d_v, shard_size, &err)) avt_die("%s", err.msg);
    char *skipped_path = asprintf_check("%s/skipped.txt", dir), *labels_path = asprintf_check("%s/labels.csv", dir);
    // Neither may outlive the store they describe.
    if (remove(skipped_path) != 0 && errno != ENOENT) avt_die("%s: cannot remove: %s", skipped_path, strerror(errno));
    if (remove(labels_path) != 0 && errno != ENOENT) avt_die("%s: cannot remove: %s", labels_path, strerror(errno));
    if (j->cache && mkdir(j->cache, 0777) != 0 && errno != EEXIST)
        avt_die("%s: cannot create: %s", j->cache, strerror(errno));
#ifdef _OPENMP
    size_t chunk = 16 * (size_t)omp_get_max_threads();
#else
    size_t chunk = 16;
#endif
    Slot *slots = calloc_check(chunk, sizeof *slots);
    FILE *skipped = NULL;
    size_t n_skipped = 0, n_cached = 0;
    Progress prog;
    progress_start(&prog, j->what, (long)n);
    for (size_t i0 = 0; i0 < n; i0 += chunk) {
        size_t m = n - i0 < chunk ? n - i0 : chunk;
        // Files are read in parallel, then stored in row order: the store does not depend on the threads.
#pragma omp parallel for schedule(dynamic, 1)
        for (size_t k = 0; k < m; k++) load_row(&slots[k], j, &rows[i0 + k]);
        for (size_t k = 0; k < m; k++) {
            Slot *o = &slots[k];
            CorpusRow *r = &rows[i0 + k];
            if (o->why) {
                if (!skipped) skipped = fopen_check(skipped_path, "w");
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
            n_cached += (size_t)o->cached;
            features_free(&o->a);
            features_free(&o->v);
        }
        progress_update(&prog, (long)(i0 + m));
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
    if (j->layout && layout_write_labels(j->layout, labels_path, rows, n, &err)) avt_die("%s", err.msg);
    if (j->columns && corpus_write_labels(labels_path, j->columns, rows, n, &err)) avt_die("%s", err.msg);
    fprintf(stderr, "prepared %zu utterances of %u speakers (%llu steps, %llu bytes, %s) into %s in %.1f s", n_utt,
            n_spk, (unsigned long long)steps, (unsigned long long)bytes, j->dtype == STORE_F16 ? "f16" : "f32", dir,
            avt_now() - prog.t0);
    if (j->cache) fprintf(stderr, "; %zu from cache, %zu computed", n_cached, n_utt - n_cached);
    fputc('\n', stderr);
    if (n_skipped) fprintf(stderr, "skipped %zu of %zu %s: reasons in %s\n", n_skipped, n, j->what, skipped_path);
    free(slots);
    free(skipped_path);
    free(labels_path);
    return n_skipped ? 2 : 0;
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
    size_t n;
    int rc;
    CorpusRow *rows;
    AvtErr err;
    if (meta) {
        char *columns;
        if (metadata_read(meta, &rows, &n, &columns, &err)) avt_die("%s", err.msg);
        Job j = {meta, "rows", NULL, NULL, NULL, columns, dtype, d_a ? d_a : 512, d_v ? d_v : OPENFACE_AU_DIM};
        rc = prepare(&j, rows, n, out, shard_size);
        free(columns);
    } else {
        const Layout *L = layout_find(layout);
        if (!L) avt_die("--layout: '%s' is not voxceleb2, cremad, ravdess or mspimprov", layout);
        if (d_a || d_v) avt_die("prepare: --audio-dim and --video-dim are for --from-csv (--layout computes 512 + 17)");
        if (layout_read(L, root, &rows, &n, &err)) avt_die("%s", err.msg);
        Cascade cascade;
        if (cascade_load(&cascade, xml, &err)) avt_die("%s", err.msg);
        char *cache = asprintf_check("%s/.cache", out);
        Job j = {root, "files", &cascade, cache, L, NULL, dtype, FBANK_STEP_DIM, FACE_D};
        rc = prepare(&j, rows, n, out, shard_size);
        free(cache);
        cascade_free(&cascade);
    }
    corpus_rows_free(rows, n);
    return rc;
}
