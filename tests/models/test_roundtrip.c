// Checkpoints move both ways: a file written by avt loads strictly into the PyTorch twin and gives the same
// embedding; a torch.save()d state dict converts with tools/pt_to_safetensors.py and avt reproduces the twin.
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "models/avt.h"
#include "tests/testutil.h"

static const char *dir;
static void setup(void) { dir = test_tmpdir(); }
TestSuite(roundtrip, .init = setup, .fini = test_tmpdir_remove, .timeout = 300);

// Eval-mode h_av (B, T, 2d) of m on x_a, x_v; caller frees.
static float *embed(AvtModel *m, float *x_a, float *x_v, int B, int T) {
    Graph g;
    graph_init(&g, 4096, &BACKEND_CPU);
    g.no_grad = 1;
    int sa[3] = {B, T, m->cfg.d_a}, sv[3] = {B, T, m->cfg.d_v};
    graph_plan_begin(&g);
    avt_fuse(&g, m, graph_input(&g, NULL, 3, sa), graph_input(&g, NULL, 3, sv));
    graph_plan_end(&g);
    Tensor *h = avt_fuse(&g, m, graph_input(&g, x_a, 3, sa), graph_input(&g, x_v, 3, sv));
    float *out = malloc(h->size * sizeof(float));
    memcpy(out, h->data, h->size * sizeof(float));
    graph_free(&g);
    return out;
}

static void random_inputs(float *x, size_t steps, int D, unsigned seed, int zero_every) {
    for (size_t t = 0; t < steps; t++)
        for (int c = 0; c < D; c++)
            x[t * D + c] = zero_every && t % zero_every == 3 ? 0.0f
                                                             : 2.0f * philox_uniform(seed, 7, 0, t * D + c) - 1.0f;
}

static void c_writes_torch_loads(int corrupt) {
    AvtConfig c = AVT_BASE;
    c.d = 24, c.L = 2, c.NH = 4;
    AvtModel m;
    avt_init(&m, c, 42);
    int B = 2, T = 9;
    float *xa = malloc((size_t)B * T * c.d_a * 4), *xv = malloc((size_t)B * T * c.d_v * 4);
    random_inputs(xa, (size_t)B * T, c.d_a, 1, 5);
    random_inputs(xv, (size_t)B * T, c.d_v, 2, 5);
    float *h = embed(&m, xa, xv, B, T);
    if (corrupt) m.enc[ENC_MEM].layers[1].fc2_w->data[5] += 0.5f; // the file no longer matches h
    char w[512], in[512], ex[512];
    snprintf(w, sizeof w, "%s/c%d.safetensors", dir, corrupt);
    snprintf(in, sizeof in, "%s/in%d.safetensors", dir, corrupt);
    snprintf(ex, sizeof ex, "%s/ex%d.safetensors", dir, corrupt);
    AvtErr err;
    cr_assert_eq(avt_save(&m, w, &err), 0, "%s", err.msg);
    StWrite ins[2] = {{"x_a", 3, {B, T, c.d_a}, xa}, {"x_v", 3, {B, T, c.d_v}, xv}};
    StWrite exs[1] = {{"h_av", 3, {B, T, 2 * c.d}, h}};
    cr_assert_eq(st_write(in, ins, 2, NULL, NULL, 0, &err), 0, "%s", err.msg);
    cr_assert_eq(st_write(ex, exs, 1, NULL, NULL, 0, &err), 0, "%s", err.msg);
    // the corrupted case is meant to fail: keep its "FAIL" line out of the test log
    int rc = test_run("%s tests/reference/check_roundtrip.py load %s %s %s%s", test_python(), w, in, ex,
                      corrupt ? " >/dev/null" : "");
    if (corrupt) cr_expect_eq(rc, 1, "a changed weight must make the twin disagree (got exit %d)", rc);
    else cr_expect_eq(rc, 0, "the PyTorch twin must load the C checkpoint strictly and agree (exit %d)", rc);
    free(xa);
    free(xv);
    free(h);
    avt_free(&m);
}

Test(roundtrip, c_writes_pytorch_loads_strict_and_agrees) { c_writes_torch_loads(0); }
Test(roundtrip, pytorch_check_detects_a_changed_weight) { c_writes_torch_loads(1); }

static float *load_tensor(const char *path, const char *name, int64_t *shape) {
    SafeTensors st;
    AvtErr err;
    cr_assert_eq(st_open(&st, path, &err), 0, "%s", err.msg);
    const StTensor *t = st_find(&st, name);
    cr_assert(t, "%s: no tensor %s", path, name);
    float *x = malloc(t->numel * 4);
    st_copy_f32(x, t);
    if (shape) memcpy(shape, t->shape, (size_t)t->ndim * sizeof(int64_t));
    st_close(&st);
    return x;
}

Test(roundtrip, pytorch_pt_converts_and_c_reproduces_twin) {
    char pt[512], st[512], back[512], st2[512];
    snprintf(pt, sizeof pt, "%s/twin.pt", dir);
    snprintf(st, sizeof st, "%s/twin.safetensors", dir);
    cr_assert_eq(test_run("%s tests/reference/check_roundtrip.py makept %s tiny", test_python(), pt), 0);
    cr_assert_eq(test_run("%s tools/pt_to_safetensors.py --n-heads 4 %s %s", test_python(), pt, st), 0);
    AvtModel m;
    AvtErr err;
    cr_assert_eq(avt_load(&m, st, &err), 0, "%s", err.msg);
    char in[600], ex[600];
    snprintf(in, sizeof in, "%s.inputs.safetensors", pt);
    snprintf(ex, sizeof ex, "%s.expect.safetensors", pt);
    int64_t s[3];
    float *xa = load_tensor(in, "x_a", s), *xv = load_tensor(in, "x_v", NULL), *ref = load_tensor(ex, "h_av", NULL);
    float *h = embed(&m, xa, xv, (int)s[0], (int)s[1]);
    double e = rel_err(h, ref, (size_t)s[0] * s[1] * 2 * m.cfg.d, 1e-6);
    cr_expect_leq(e, 2e-5, "converted checkpoint: error %.3g against the twin", e);

    // and back: safetensors -> .pt -> safetensors keeps every tensor bit for bit
    snprintf(back, sizeof back, "%s/back.pt", dir);
    snprintf(st2, sizeof st2, "%s/back.safetensors", dir);
    cr_assert_eq(test_run("%s tools/safetensors_to_pt.py %s %s", test_python(), st, back), 0);
    cr_assert_eq(test_run("%s tools/pt_to_safetensors.py --n-heads 4 %s %s", test_python(), back, st2), 0);
    AvtModel m2;
    cr_assert_eq(avt_load(&m2, st2, &err), 0, "%s", err.msg);
    for (int i = 0; i < m.params.n; i++)
        cr_expect_eq(memcmp(m.params.p[i].t.data, m2.params.p[i].t.data, m.params.p[i].t.size * 4), 0,
                     "%s changed in the .pt round trip", m.params.p[i].name);
    free(xa);
    free(xv);
    free(ref);
    free(h);
    avt_free(&m);
    avt_free(&m2);
}

Test(roundtrip, strict_load_rejects_missing_extra_and_misshapen_tensors) {
    AvtConfig c = AVT_BASE;
    c.d = 24, c.L = 2, c.NH = 4;
    AvtModel m;
    avt_init(&m, c, 1);
    char path[512];
    AvtErr err;
    // write the table with one tensor renamed, then one reshaped, then one dropped
    const char *keys[] = {"embed_size", "n_code", "n_heads"}, *vals[] = {"24", "2", "4"};
    StWrite *w = calloc((size_t)m.params.n, sizeof *w);
    for (int i = 0; i < m.params.n; i++) {
        w[i].name = m.params.p[i].name;
        w[i].ndim = m.params.p[i].t.ndim;
        for (int d = 0; d < w[i].ndim; d++) w[i].shape[d] = m.params.p[i].t.shape[d];
        w[i].data = m.params.p[i].t.data;
    }
    int k = 10; // some layer tensor
    const char *name = w[k].name;
    struct { const char *what, *phrase; } cases[3] = {
        {"renamed", "unexpected tensor 'bogus'"}, {"reshaped", "has shape"}, {"dropped", "missing tensor"}};
    for (int cse = 0; cse < 3; cse++) {
        StWrite saved = w[k];
        int n = m.params.n;
        if (cse == 0) w[k].name = "bogus";
        if (cse == 1) { w[k].shape[0] = 1; w[k].ndim = 1; }
        if (cse == 2) { w[k] = w[n - 1]; n--; }
        snprintf(path, sizeof path, "%s/strict%d.safetensors", dir, cse);
        cr_assert_eq(st_write(path, w, n, keys, vals, 3, &err), 0, "%s", err.msg);
        w[k] = saved;
        AvtModel m2;
        cr_expect_eq(avt_load(&m2, path, &err), -1, "%s tensor must be rejected", cases[cse].what);
        cr_expect(strstr(err.msg, cases[cse].phrase) && strstr(err.msg, path), "%s: got '%s'", cases[cse].what, err.msg);
        if (cse == 2) cr_expect(strstr(err.msg, name), "the missing tensor is named: '%s'", err.msg);
    }
    free(w);
    avt_free(&m);
}
