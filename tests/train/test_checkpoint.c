// Checkpoints (train/checkpoint.c): bit-exact round trip of weights, moments, schedule and metadata (on the cpu
// and the cuda backend), the PyTorch twin loading model.safetensors strictly, retention, crash leftovers, and the
// errors of an unwritable run directory and damaged state files. The exact-resume test is in test_trainer.c, next
// to the training loop it needs.
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>
#include "train/checkpoint.h"
#include "tests/testutil.h"

static void setup(void) { test_tmpdir(); }
TestSuite(checkpoint, .init = setup, .fini = test_tmpdir_remove, .timeout = 300);

static const AvtConfig TINY = {12, 5, 16, 2, 2, 0};

// A tiny model on backend be and an optimizer with non-zero moments: two steps on random gradients.
static void make_trained(AvtModel *m, Optimizer *o, const Backend *be, uint64_t seed) {
    avt_init(m, TINY, seed);
    params_to(&m->params, be);
    optim_init(o, &m->params, BERTADAM_SPEC, 1e-3f, 0.1, 100);
    float *g = malloc(m->params.grad.used);
    for (int step = 0; step < 2; step++) {
        for (size_t i = 0; i < m->params.grad.used / sizeof(float); i++)
            g[i] = 2.0f * philox_uniform(seed, 9, (uint32_t)step, i) - 1.0f;
        be->upload(m->params.grad.base, g, m->params.grad.used);
        optim_step(o, &m->params);
    }
    free(g);
}

// A host copy of the parameter arena and of the moment arena.
static void snapshot(const AvtModel *m, const Optimizer *o, char **w, char **mv) {
    *w = malloc(m->params.data.used);
    *mv = malloc(o->moments.used);
    m->params.data.be->download(*w, m->params.data.base, m->params.data.used);
    o->moments.be->download(*mv, o->moments.base, o->moments.used);
}

// The names in dir, sorted, joined by spaces.
static const char *listing(const char *dir) {
    static char out[2048];
    struct dirent **e;
    int n = scandir(dir, &e, NULL, alphasort);
    out[0] = '\0';
    for (int i = 0; i < n; i++) {
        if (e[i]->d_name[0] != '.') {
            if (out[0]) strcat(out, " ");
            strcat(out, e[i]->d_name);
        }
        free(e[i]);
    }
    if (n >= 0) free(e);
    return out;
}

static void round_trip(const Backend *be) {
    AvtModel m, m2;
    Optimizer o, o2;
    AvtErr err;
    make_trained(&m, &o, be, 3);
    CkptMeta meta = {0}, got = {0};
    cr_assert_eq(ckpt_meta_set(&meta, "seed", "3", &err), 0, "%s", err.msg);
    cr_assert_eq(ckpt_meta_set(&meta, "loader.epoch", "2", &err), 0, "%s", err.msg);
    cr_assert_eq(ckpt_meta_set(&meta, "loader.batch", "17", &err), 0, "%s", err.msg);
    cr_assert_eq(ckpt_meta_set(&meta, "config", "{\"embed_size\": 16}", &err), 0, "%s", err.msg);
    const char *run = test_path(be->name);
    cr_assert_eq(ckpt_save(run, 2, &m, &o, &meta, 3, &err), 0, "%s", err.msg);
    cr_expect_str_eq(listing(run), "ckpt-000000002");
    char dir[512];
    snprintf(dir, sizeof dir, "%s/ckpt-000000002", run);
    cr_expect_str_eq(listing(dir), "DONE model.safetensors state.safetensors");

    // a different init and a different schedule: the checkpoint overrides both
    avt_init(&m2, TINY, 4);
    params_to(&m2.params, be);
    optim_init(&o2, &m2.params, BERTADAM_SPEC, 5e-2f, 0.3, 7);
    cr_assert_eq(ckpt_load(dir, &m2, &o2, &got, &err), 0, "%s", err.msg);
    char *w1, *w2, *mv1, *mv2;
    snapshot(&m, &o, &w1, &mv1);
    snapshot(&m2, &o2, &w2, &mv2);
    // tensor by tensor: the alignment gaps of the parameter arena are never written
    for (int i = 0; i < m.params.n; i++) {
        const Param *p = &m.params.p[i];
        const size_t off = (size_t)((char *)p->t.data - m.params.data.base), bytes = p->t.size * sizeof(float);
        cr_expect_eq(memcmp(w1 + off, w2 + off, bytes), 0, "%s differs after the round trip", p->name);
    }
    cr_expect_eq(memcmp(mv1, mv2, o.moments.used), 0, "moments differ after the round trip");
    cr_expect_eq(o2.step, 2);
    cr_expect_eq(o2.t_total, 100);
    cr_expect(o2.lr == o.lr && o2.warmup == o.warmup, "schedule lr %g warmup %g", o2.lr, o2.warmup);
    cr_expect_eq(memcmp(&o2.h, &o.h, sizeof o.h), 0, "hyper-parameters differ");
    cr_expect_eq(got.n, meta.n);
    for (int i = 0; i < meta.n; i++)
        cr_expect_str_eq(ckpt_meta_get(&got, meta.key[i]) ? ckpt_meta_get(&got, meta.key[i]) : "(missing)",
                         meta.val[i], "meta '%s'", meta.key[i]);
    free(w1), free(w2), free(mv1), free(mv2);
    optim_free(&o), optim_free(&o2);
    avt_free(&m), avt_free(&m2);
}

Test(checkpoint, round_trip_is_bit_exact) { round_trip(&BACKEND_CPU); }

Test(checkpoint, round_trip_on_the_cuda_backend) {
    AvtErr err;
    const Backend *cuda = backend_open("cuda", &err);
    if (!cuda) cr_skip_test("%s", err.msg);
    round_trip(cuda);
}

Test(checkpoint, pytorch_twin_loads_the_model_strictly) {
    AvtModel m;
    Optimizer o;
    AvtErr err;
    make_trained(&m, &o, &BACKEND_CPU, 5);
    const char *run = test_path("twin");
    cr_assert_eq(ckpt_save(run, 2, &m, &o, NULL, 1, &err), 0, "%s", err.msg);
    int rc = test_run("%s -c \"import sys; sys.path[:0] = ['tests/reference', 'tools']; import avt_ref, torch; "
                      "from st_io import read_safetensors; W, h = read_safetensors(sys.argv[1]); "
                      "M = avt_ref.CrossAttentionAVTransformer(W['proj_a.weight'].shape[1], "
                      "W['proj_v.weight'].shape[1], int(h['embed_size']), int(h['n_code']), int(h['n_heads'])); "
                      "M.load_state_dict({k: torch.from_numpy(v) for k, v in W.items()}, strict=True); "
                      "assert float(M.proj1_a.weight.sum()) == float(W['proj1_a.weight'].sum())\" "
                      "%s/ckpt-000000002/model.safetensors",
                      test_python(), run);
    cr_expect_eq(rc, 0, "the twin must load model.safetensors with strict=True (exit %d)", rc);
    optim_free(&o);
    avt_free(&m);
}

Test(checkpoint, keep_last_keeps_the_newest) {
    AvtModel m;
    Optimizer o;
    AvtErr err;
    make_trained(&m, &o, &BACKEND_CPU, 6);
    const char *run = test_path("keep");
    for (long step = 1; step <= 5; step++)
        cr_assert_eq(ckpt_save(run, step * 10, &m, &o, NULL, 2, &err), 0, "%s", err.msg);
    cr_expect_str_eq(listing(run), "ckpt-000000040 ckpt-000000050");
    char dir[512];
    cr_expect_eq(ckpt_latest(run, dir, sizeof dir, &err), 1, "%s", err.msg);
    cr_expect(strstr(dir, "/ckpt-000000050"), "latest: %s", dir);
    // saving the newest step again replaces it in place
    cr_assert_eq(ckpt_save(run, 50, &m, &o, NULL, 2, &err), 0, "%s", err.msg);
    cr_expect_str_eq(listing(run), "ckpt-000000040 ckpt-000000050");
    // an older step written into a run with newer ones (a restart without resuming) is not deleted at once
    cr_assert_eq(ckpt_save(run, 10, &m, &o, NULL, 2, &err), 0, "%s", err.msg);
    cr_expect_str_eq(listing(run), "ckpt-000000010 ckpt-000000040 ckpt-000000050");
    optim_free(&o);
    avt_free(&m);
}

static void make_dir(const char *path) { cr_assert_eq(mkdir(path, 0777), 0, "mkdir %s", path); }

static void write_text(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    cr_assert(f, "cannot write %s", path);
    fputs(text, f);
    fclose(f);
}

Test(checkpoint, latest_ignores_incomplete_and_temporary) {
    AvtModel m;
    Optimizer o;
    AvtErr err;
    char dir[512], p[600];
    cr_expect_eq(ckpt_latest(test_path("nothing_here"), dir, sizeof dir, &err), 0, "a missing run dir has none");
    make_trained(&m, &o, &BACKEND_CPU, 7);
    const char *run = test_path("latest");
    cr_assert_eq(ckpt_save(run, 2, &m, &o, NULL, 0, &err), 0, "%s", err.msg);
    snprintf(p, sizeof p, "%s/ckpt-000000009", run); // a final name without DONE
    make_dir(p);
    snprintf(p, sizeof p, "%s/ckpt-000000010.tmp.123", run); // a temporary directory, even with a DONE inside
    make_dir(p);
    snprintf(p, sizeof p, "%s/ckpt-000000010.tmp.123/DONE", run);
    write_text(p, "step 10\n");
    cr_expect_eq(ckpt_latest(run, dir, sizeof dir, &err), 1, "%s", err.msg);
    cr_expect(strstr(dir, "/ckpt-000000002") != NULL, "latest: %s", dir);
    snprintf(p, sizeof p, "%s/ckpt-000000009", run);
    cr_expect_eq(ckpt_load(p, &m, &o, NULL, &err), -1);
    cr_expect(strstr(err.msg, "no DONE"), "got '%s'", err.msg);
    char tiny[8];
    cr_expect_eq(ckpt_latest(run, tiny, sizeof tiny, &err), -1, "a path that does not fit is an error");
    optim_free(&o);
    avt_free(&m);
}

// A crash between writing a checkpoint and renaming it leaves a temporary directory (here the real files of a
// save made elsewhere, moved to the temporary name and without DONE, which comes after the rename); another crash
// left a half-written one; a third hit between the rename and DONE. None is loaded, the next save removes them all.
Test(checkpoint, crash_leftovers_are_never_loaded_and_cleaned_up) {
    AvtModel m;
    Optimizer o;
    AvtErr err;
    char dir[512], p[600], q[600];
    make_trained(&m, &o, &BACKEND_CPU, 8);
    const char *run = test_path("crash"), *elsewhere = test_path("crash_elsewhere");
    cr_assert_eq(ckpt_save(run, 1, &m, &o, NULL, 0, &err), 0, "%s", err.msg);
    cr_assert_eq(ckpt_save(run, 2, &m, &o, NULL, 0, &err), 0, "%s", err.msg);
    cr_assert_eq(ckpt_save(elsewhere, 3, &m, &o, NULL, 0, &err), 0, "%s", err.msg);
    snprintf(p, sizeof p, "%s/ckpt-000000003/DONE", elsewhere);
    cr_assert_eq(unlink(p), 0);
    snprintf(p, sizeof p, "%s/ckpt-000000003", elsewhere);
    snprintf(q, sizeof q, "%s/ckpt-000000003.tmp.99999", run);
    cr_assert_eq(rename(p, q), 0);
    snprintf(p, sizeof p, "%s/ckpt-000000004.tmp.99998", run);
    make_dir(p);
    snprintf(p, sizeof p, "%s/ckpt-000000004.tmp.99998/model.safetensors", run);
    write_text(p, "\x10\x00\x00");
    cr_assert_eq(ckpt_save(elsewhere, 5, &m, &o, NULL, 0, &err), 0, "%s", err.msg);
    snprintf(p, sizeof p, "%s/ckpt-000000005/DONE", elsewhere);
    cr_assert_eq(unlink(p), 0);
    snprintf(p, sizeof p, "%s/ckpt-000000005", elsewhere);
    snprintf(q, sizeof q, "%s/ckpt-000000005", run);
    cr_assert_eq(rename(p, q), 0);

    cr_expect_eq(ckpt_latest(run, dir, sizeof dir, &err), 1, "%s", err.msg);
    cr_expect(strstr(dir, "/ckpt-000000002") != NULL, "resume must pick the last complete one, got %s", dir);
    cr_assert_eq(ckpt_save(run, 3, &m, &o, NULL, 0, &err), 0, "%s", err.msg);
    cr_expect_str_eq(listing(run), "ckpt-000000001 ckpt-000000002 ckpt-000000003");
    for (int s = 1; s <= 3; s++) {
        snprintf(p, sizeof p, "%s/ckpt-%09d/DONE", run, s);
        cr_expect_eq(access(p, F_OK), 0, "%s missing", p);
    }
    optim_free(&o);
    avt_free(&m);
}

Test(checkpoint, unwritable_run_dir_is_one_clear_error) {
    AvtModel m;
    Optimizer o;
    AvtErr err;
    make_trained(&m, &o, &BACKEND_CPU, 9);
    // a path through a regular file: unwritable even for root, which ignores permission bits
    const char *blocker = test_path("blocker");
    write_text(blocker, "not a directory\n");
    char run[600];
    snprintf(run, sizeof run, "%s/runs/x", blocker);
    cr_assert_eq(ckpt_save(run, 1, &m, &o, NULL, 0, &err), -1);
    cr_expect(strstr(err.msg, run) && strstr(err.msg, "Not a directory") && !strchr(err.msg, '\n'), "got '%s'",
              err.msg);
    optim_free(&o);
    avt_free(&m);
}

// state.safetensors rewritten with one change: its tensors with `drop` left out, `extra` (a copy of tensor 0
// under that name) added, or tensor 0 reshaped to one dimension.
static void rewrite_state(const char *path, const char *drop, const char *extra, int reshape) {
    SafeTensors st;
    AvtErr err;
    cr_assert_eq(st_open(&st, path, &err), 0, "%s", err.msg);
    StWrite *w = calloc((size_t)st.n + 1, sizeof *w);
    float **data = calloc((size_t)st.n, sizeof *data);
    int n = 0;
    for (int i = 0; i < st.n; i++) {
        data[i] = malloc(st.t[i].numel * sizeof(float));
        st_copy_f32(data[i], &st.t[i]);
        if (drop && strcmp(st.t[i].name, drop) == 0) continue;
        w[n] = (StWrite){st.t[i].name, st.t[i].ndim, {0}, data[i]};
        memcpy(w[n].shape, st.t[i].shape, sizeof st.t[i].shape);
        n++;
    }
    if (extra) {
        w[n] = w[0];
        w[n++].name = extra;
    }
    if (reshape) {
        w[0].shape[0] = (int64_t)st.t[0].numel;
        w[0].ndim = 1;
    }
    cr_assert_eq(st_write(path, w, n, (const char *const *)st.meta_key, (const char *const *)st.meta_val, st.n_meta,
                          &err),
                 0, "%s", err.msg);
    for (int i = 0; i < st.n; i++) free(data[i]);
    free(data);
    free(w);
    st_close(&st);
}

Test(checkpoint, damaged_state_is_rejected_naming_the_file) {
    AvtModel m;
    Optimizer o;
    AvtErr err;
    make_trained(&m, &o, &BACKEND_CPU, 10);
    const char *run = test_path("damaged");
    char dir[512], state[600];
    snprintf(dir, sizeof dir, "%s/ckpt-000000002", run);
    snprintf(state, sizeof state, "%s/state.safetensors", dir);
    struct { const char *drop, *extra; int reshape, truncate; const char *phrase; } cases[] = {
        {NULL, NULL, 0, 1, state},
        {"v.proj_a.weight", NULL, 0, 0, "missing tensor 'v.proj_a.weight'"},
        {NULL, "m.proj1.weight", 0, 0, "unexpected tensor 'm.proj1.weight'"},
        {NULL, NULL, 1, 0, "does not have the shape"},
    };
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        cr_assert_eq(ckpt_save(run, 2, &m, &o, NULL, 1, &err), 0, "%s", err.msg);
        if (cases[c].truncate) {
            struct stat sb;
            cr_assert_eq(stat(state, &sb), 0);
            cr_assert_eq(truncate(state, sb.st_size / 2), 0);
        } else {
            rewrite_state(state, cases[c].drop, cases[c].extra, cases[c].reshape);
        }
        cr_expect_eq(ckpt_load(dir, &m, &o, NULL, &err), -1, "case %zu must fail", c);
        cr_expect(strstr(err.msg, state) && strstr(err.msg, cases[c].phrase), "case %zu: got '%s'", c, err.msg);
    }
    optim_free(&o);
    avt_free(&m);
}

Test(checkpoint, meta_helpers_and_reserved_keys) {
    CkptMeta meta = {0};
    AvtErr err;
    cr_expect_eq(ckpt_meta_set(&meta, "seed", "1", &err), 0);
    cr_expect_eq(ckpt_meta_set(&meta, "seed", "2", &err), 0);
    cr_expect_eq(meta.n, 1, "setting a key again replaces it");
    cr_expect_str_eq(ckpt_meta_get(&meta, "seed"), "2");
    cr_expect_null(ckpt_meta_get(&meta, "epoch"));
    cr_expect_eq(ckpt_meta_set(&meta, "", "x", &err), -1);
    for (int i = 1; i < CKPT_META_MAX; i++) {
        char k[16];
        snprintf(k, sizeof k, "k%d", i);
        cr_assert_eq(ckpt_meta_set(&meta, k, "v", &err), 0, "%s", err.msg);
    }
    cr_expect_eq(ckpt_meta_set(&meta, "one_more", "v", &err), -1, "the list is full");

    AvtModel m;
    Optimizer o;
    make_trained(&m, &o, &BACKEND_CPU, 11);
    CkptMeta bad = {0};
    cr_assert_eq(ckpt_meta_set(&bad, "lr", "1", &err), 0);
    cr_expect_eq(ckpt_save(test_path("reserved"), 1, &m, &o, &bad, 0, &err), -1);
    cr_expect(strstr(err.msg, "'lr' is reserved"), "got '%s'", err.msg);
    optim_free(&o);
    avt_free(&m);
}
