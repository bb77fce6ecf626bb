// avt embed: feature files -> h_av embeddings (extract_feature, inference mode).
#include <stdlib.h>
#include <string.h>
#include "data/corpus/features.h"
#include "data/corpus/metadata.h"
#include "data/corpus/store.h"
#include "tools/cli.h"

static const char *HELP =
    "usage: avt embed --weights W.safetensors --audio A --video V --out O.npy [--sequence]\n"
    "       avt embed --weights W.safetensors --list PAIRS.csv --out DIR [--sequence] [--batch N]\n"
    "       avt embed --weights W.safetensors --data SHARDS/ --out DIR [--sequence] [--batch N]\n"
    "\n"
    "Runs the model's extract_feature in inference mode (no dropout) and writes float32 .npy files:\n"
    "shape (2d,) = h_av at the last common step, or (T, 2d) with --sequence.\n"
    "\n"
    "Inputs: audio = headerless CSV (one 200 ms step per row, 512 columns) or .npy (T, 512);\n"
    "video = OpenFace 2.x CSV (every 6th row, the 17 AU*_r columns) or .npy (T, 17).\n"
    "Rows holding a NaN are dropped per stream, then both are cut to the common length.\n"
    "\n"
    "  --weights PATH      safetensors checkpoint (avt init, or tools/pt_to_safetensors.py)\n"
    "  --audio PATH        audio features of one utterance\n"
    "  --video PATH        video features of one utterance\n"
    "  --out PATH          output .npy (one pair) or directory (--list, --data; created if missing)\n"
    "  --list PATH         CSV, one pair per line: audio,video[,name]; '#' lines are comments;\n"
    "                      output DIR/name.npy, name defaulting to the audio file's base name\n"
    "  --data DIR          a corpus store (avt prepare): every utterance, DIR/<id>.npy with the id's '/'\n"
    "                      as '_', and DIR/index.csv (file,id,speaker,steps) to join with labels.csv\n"
    "  --sequence          write every step, (T, 2d), instead of the last one\n"
    "  --batch N           utterances per forward pass with --list or --data (default 8)\n"
    "  --threads N         CPU threads (default: all cores)\n"
    CLI_DEVICE_HELP
    "\n"
    "With --list or --data, unreadable utterances are skipped and listed in DIR/skipped.txt; the exit\n"
    "status is 0 when every one was embedded and 2 when some were skipped.\n";

typedef struct {
    AvtModel *m;
    Graph g;
    int B, T;   // planned batch and steps
    float *h;   // (B, T, 2d) host copy of the last batch's h_av
} Embedder;

// h_av (B, T, 2d) for a right-padded batch; valid until the next call. Causality makes each sample's first
// len[b] steps exactly what the unpadded sample gives.
static const float *embed_batch(Embedder *e, float *x_a, float *x_v, int B, int T) {
    const AvtConfig *c = &e->m->cfg;
    int sa[3] = {B, T, c->d_a}, sv[3] = {B, T, c->d_v};
    if (!graph_planned(&e->g) || B > e->B || T > e->T) {
        e->B = B > e->B ? B : e->B;
        e->T = T > e->T ? T : e->T;
        int pa[3] = {e->B, e->T, c->d_a}, pv[3] = {e->B, e->T, c->d_v};
        graph_plan_begin(&e->g);
        avt_fuse(&e->g, e->m, graph_input(&e->g, NULL, 3, pa), graph_input(&e->g, NULL, 3, pv));
        graph_plan_end(&e->g);
        free(e->h);
        e->h = malloc_check((size_t)e->B * e->T * 2 * c->d * sizeof(float));
    }
    graph_reset(&e->g);
    tensor_read(&e->g, avt_fuse(&e->g, e->m, graph_input(&e->g, x_a, 3, sa), graph_input(&e->g, x_v, 3, sv)), e->h);
    return e->h;
}

static int write_embedding(const char *path, const float *h_av, int T, int D2, int sequence, AvtErr *err) {
    if (sequence) {
        int64_t shape[2] = {T, D2};
        return npy_write_f32(path, h_av, 2, shape, err);
    }
    int64_t shape[1] = {D2};
    return npy_write_f32(path, h_av + (size_t)(T - 1) * D2, 1, shape, err);
}

// Copy a stream into its slot of a right-padded (B, T, D) batch.
static void pack(float *dst, const Features *f, int T, int D) {
    memcpy(dst, f->data, (size_t)f->T * D * sizeof(float));
    memset(dst + (size_t)f->T * D, 0, (size_t)(T - f->T) * D * sizeof(float));
}

// Where the utterances come from: a pairs list or a corpus store. Item i is written to DIR/<name[i]>.npy.
typedef struct {
    int n;
    const char *const *name;                      // (n,) plain file names, without .npy
    const char *what;                             // "pairs" or "utterances", for messages
    int (*read)(void *ctx, const AvtConfig *c, int i, Features *a, Features *v, AvtErr *err);
    void *ctx;
} Source;

static int read_list_item(void *ctx, const AvtConfig *c, int i, Features *a, Features *v, AvtErr *err) {
    const EmbedPair *p = (const EmbedPair *)ctx + i;
    return features_read_pair(a, v, p->audio, p->video, c->d_a, c->d_v, err);
}

static int read_store_item(void *ctx, const AvtConfig *c, int i, Features *a, Features *v, AvtErr *err) {
    const Store *st = ctx;
    int T = store_len(st, (size_t)i);
    *a = (Features){malloc_check((size_t)T * c->d_a * sizeof(float)), T, c->d_a};
    *v = (Features){malloc_check((size_t)T * c->d_v * sizeof(float)), T, c->d_v};
    if (store_read(st, (size_t)i, 0, T, a->data, v->data, err) == 0) return 0;
    features_free(a);
    features_free(v);
    return -1;
}

// Embeds every item in batches of up to `batch` (right-padded); unreadable items go to DIR/skipped.txt.
static int embed_many(Embedder *e, const Source *src, const char *dir, int sequence, int batch) {
    const AvtConfig *c = &e->m->cfg;
    const int n = src->n;
    size_t plen = strlen(dir) + 64;
    char *skipped_path = malloc_check(plen);
    snprintf(skipped_path, plen, "%s/skipped.txt", dir);
    remove(skipped_path);
    FILE *skipped = NULL;
    int n_skipped = 0, n_done = 0;
    Features *fa = calloc_check((size_t)batch, sizeof *fa), *fv = calloc_check((size_t)batch, sizeof *fv);
    int *idx = calloc_check((size_t)batch, sizeof *idx);
    float *xa = NULL, *xv = NULL;
    size_t cap_a = 0, cap_v = 0;
    Progress prog;
    progress_start(&prog, src->what, n);
    for (int i = 0; i < n;) {
        int B = 0, T = 0;
        for (; i < n && B < batch; i++) {
            AvtErr err;
            if (src->read(src->ctx, c, i, &fa[B], &fv[B], &err)) {
                if (!skipped) skipped = fopen_check(skipped_path, "w");
                fprintf(skipped, "%s\n", err.msg);
                if (n_skipped < 5) fprintf(stderr, "%savt: skipped: %s\n", prog.tty ? "\n" : "", err.msg);
                n_skipped++;
                continue;
            }
            if (fa[B].T > T) T = fa[B].T;
            idx[B++] = i;
        }
        if (B > 0) {
            size_t na = (size_t)B * T * c->d_a, nv = (size_t)B * T * c->d_v;
            if (na > cap_a) { free(xa); xa = malloc_check(na * sizeof(float)); cap_a = na; }
            if (nv > cap_v) { free(xv); xv = malloc_check(nv * sizeof(float)); cap_v = nv; }
            for (int b = 0; b < B; b++) {
                pack(xa + (size_t)b * T * c->d_a, &fa[b], T, c->d_a);
                pack(xv + (size_t)b * T * c->d_v, &fv[b], T, c->d_v);
            }
            const float *h = embed_batch(e, xa, xv, B, T);
            int D2 = 2 * c->d;
            for (int b = 0; b < B; b++) {
                const char *name = src->name[idx[b]];
                char *out = malloc_check(strlen(dir) + strlen(name) + 8);
                sprintf(out, "%s/%s.npy", dir, name);
                AvtErr err;
                if (write_embedding(out, h + (size_t)b * T * D2, fa[b].T, D2, sequence, &err)) avt_die("%s", err.msg);
                free(out);
                features_free(&fa[b]);
                features_free(&fv[b]);
                n_done++;
            }
        }
        progress_update(&prog, i);
    }
    progress_end(&prog);
    if (skipped) fclose_check(skipped, skipped_path);
    double el = avt_now() - prog.t0;
    fprintf(stderr, "embedded %d of %d %s into %s in %.1f s (%.1f/s)\n", n_done, n, src->what, dir, el,
            el > 0 ? n_done / el : 0.0);
    if (n_skipped) fprintf(stderr, "skipped %d %s: reasons in %s\n", n_skipped, src->what, skipped_path);
    free(fa);
    free(fv);
    free(idx);
    free(xa);
    free(xv);
    free(skipped_path);
    return n_skipped ? 2 : 0;
}

static int embed_list(Embedder *e, const char *list, const char *dir, int sequence, int batch) {
    EmbedPair *pairs;
    size_t n;
    AvtErr err;
    if (embed_pairs_read(list, &pairs, &n, &err)) avt_die("%s", err.msg);
    if (n > (size_t)INT32_MAX) avt_die("%s: %zu pairs, more than one run embeds", list, n);
    cli_make_dir(dir);
    const char **names = malloc_check(n * sizeof *names);
    for (size_t i = 0; i < n; i++) names[i] = pairs[i].name;
    Source src = {(int)n, names, "pairs", read_list_item, pairs};
    int rc = embed_many(e, &src, dir, sequence, batch);
    embed_pairs_free(pairs, n);
    free(names);
    return rc;
}

// Every utterance of a corpus store, named by its id ('/' -> '_'), with DIR/index.csv mapping files to ids.
static int embed_store(Embedder *e, const char *data, const char *dir, int sequence, int batch) {
    const AvtConfig *c = &e->m->cfg;
    Store *st;
    AvtErr err;
    if (store_open(&st, data, &err)) avt_die("%s", err.msg);
    if (store_d_a(st) != c->d_a || store_d_v(st) != c->d_v)
        avt_die("%s: features are (%d audio, %d video) wide, the model takes (%d, %d)", data, store_d_a(st),
                store_d_v(st), c->d_a, c->d_v);
    size_t n = store_size(st);
    if (n == 0) avt_die("%s: the store holds no utterances", data);
    if (n > (size_t)INT32_MAX) avt_die("%s: %zu utterances, more than one run embeds", data, n);
    char **names = embed_store_names(st, data, &err);
    if (!names) avt_die("%s", err.msg);
    cli_make_dir(dir);
    char *index_path = asprintf_check("%s/index.csv", dir);
    if (embed_index_write(index_path, st, names, &err)) avt_die("%s", err.msg);
    Source src = {(int)n, (const char *const *)names, "utterances", read_store_item, st};
    int rc = embed_many(e, &src, dir, sequence, batch);
    for (size_t i = 0; i < n; i++) free(names[i]);
    free(names);
    free(index_path);
    store_close(st);
    return rc;
}

int cmd_embed(int argc, char **argv) {
    const char *weights = NULL, *audio = NULL, *video = NULL, *out = NULL, *list = NULL, *data = NULL;
    const char *device = "cpu";
    int sequence = 0, batch = 8, threads = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (cli_help(a)) {
            fputs(HELP, stdout);
            return 0;
        } else if (cli_is(a, "--weights")) weights = cli_value(argc, argv, &i);
        else if (cli_is(a, "--audio")) audio = cli_value(argc, argv, &i);
        else if (cli_is(a, "--video")) video = cli_value(argc, argv, &i);
        else if (cli_is(a, "--out")) out = cli_value(argc, argv, &i);
        else if (cli_is(a, "--list")) list = cli_value(argc, argv, &i);
        else if (cli_is(a, "--data")) data = cli_value(argc, argv, &i);
        else if (cli_is(a, "--sequence")) sequence = 1;
        else if (cli_is(a, "--batch")) batch = cli_int(a, cli_value(argc, argv, &i), 1, 4096);
        else if (cli_is(a, "--threads")) threads = cli_int(a, cli_value(argc, argv, &i), 1, 4096);
        else if (!cli_device_flag(argc, argv, &i, &device)) cli_unknown("embed", a);
    }
    if (!weights) avt_die("embed: --weights is required (see avt embed --help)");
    if (!out) avt_die("embed: --out is required (see avt embed --help)");
    if ((list != NULL) + (data != NULL) + (audio || video) > 1)
        avt_die("embed: give one of --audio/--video, --list or --data");
    if (!list && !data && (!audio || !video))
        avt_die("embed: give --audio and --video, --list or --data (see avt embed --help)");
    cli_set_threads(threads);
    const Backend *be = cli_backend(device);

    AvtModel m;
    AvtErr err;
    if (avt_load(&m, weights, &err)) avt_die("%s", err.msg);
    params_to(&m.params, be);
    Embedder e = {.m = &m};
    graph_init(&e.g, 4096, be);
    e.g.no_grad = 1;
    int rc;
    if (list) {
        rc = embed_list(&e, list, out, sequence, batch);
    } else if (data) {
        rc = embed_store(&e, data, out, sequence, batch);
    } else {
        Features fa, fv;
        if (features_read_pair(&fa, &fv, audio, video, m.cfg.d_a, m.cfg.d_v, &err)) avt_die("%s", err.msg);
        const float *h = embed_batch(&e, fa.data, fv.data, 1, fa.T);
        if (write_embedding(out, h, fa.T, 2 * m.cfg.d, sequence, &err)) avt_die("%s", err.msg);
        features_free(&fa);
        features_free(&fv);
        rc = 0;
    }
    graph_free(&e.g);
    free(e.h);
    avt_free(&m);
    return rc;
}
