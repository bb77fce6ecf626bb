// The avt program end to end: embeddings from files agree with the PyTorch twin, and every bad input gets
// one clear line and a non-zero exit.
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "data/corpus/features.h"
#include "engine/safetensors.h"
#include "tests/testutil.h"

static const char *dir;
static char weights[4096];

static void setup(void) {
    dir = test_tmpdir();
    snprintf(weights, sizeof weights, "%s", golden_path("tiny.params.safetensors"));
}
TestSuite(cli, .init = setup, .fini = test_tmpdir_remove, .timeout = 120);

// The twin's eval-mode inputs and outputs for one sample of the tiny golden batch.
typedef struct {
    SafeTensors st;
    int B, T, Da, Dv, D2;
    float *x_a, *x_v, *h_av; // (B, T, .)
} Twin;

static void twin_open(Twin *t) {
    AvtErr err;
    cr_assert_eq(st_open(&t->st, golden_path("tiny.golden.safetensors"), &err), 0, "%s", err.msg);
    const StTensor *xa = st_find(&t->st, "x_a"), *xv = st_find(&t->st, "x_v"), *h = st_find(&t->st, "eval.h_av");
    cr_assert(xa && xv && h);
    t->B = (int)xa->shape[0], t->T = (int)xa->shape[1], t->Da = (int)xa->shape[2], t->Dv = (int)xv->shape[2];
    t->D2 = (int)h->shape[2];
    t->x_a = malloc(xa->numel * 4), t->x_v = malloc(xv->numel * 4), t->h_av = malloc(h->numel * 4);
    st_copy_f32(t->x_a, xa);
    st_copy_f32(t->x_v, xv);
    st_copy_f32(t->h_av, h);
}

static void twin_close(Twin *t) {
    free(t->x_a);
    free(t->x_v);
    free(t->h_av);
    st_close(&t->st);
}

// Sample b's first T steps as two .npy feature files; returns their paths in a / v.
static void write_sample(const Twin *t, int b, int T, char *a, char *v, size_t len) {
    AvtErr err;
    int64_t sa[2] = {T, t->Da}, sv[2] = {T, t->Dv};
    snprintf(a, len, "%s/a%d_%d.npy", dir, b, T);
    snprintf(v, len, "%s/v%d_%d.npy", dir, b, T);
    cr_assert_eq(npy_write_f32(a, t->x_a + (size_t)b * t->T * t->Da, 2, sa, &err), 0, "%s", err.msg);
    cr_assert_eq(npy_write_f32(v, t->x_v + (size_t)b * t->T * t->Dv, 2, sv, &err), 0, "%s", err.msg);
}

static void expect_npy(const char *path, const float *ref, int ndim, const int64_t *shape) {
    float *x;
    int nd;
    int64_t sh[8];
    AvtErr err;
    cr_assert_eq(npy_read_f32(path, &x, &nd, sh, &err), 0, "%s", err.msg);
    cr_assert_eq(nd, ndim, "%s: rank %d, expected %d", path, nd, ndim);
    size_t n = 1;
    for (int i = 0; i < nd; i++) {
        cr_assert_eq(sh[i], shape[i], "%s: dim %d is %lld, expected %lld", path, i, (long long)sh[i], (long long)shape[i]);
        n *= (size_t)sh[i];
    }
    double e = rel_err(x, ref, n, 1e-6);
    cr_expect_leq(e, 2e-5, "%s: error %.3g against the PyTorch twin", path, e);
    free(x);
}

Test(cli, embed_one_pair_last_step_and_sequence_match_twin) {
    Twin t;
    twin_open(&t);
    char a[512], v[512], out[512];
    write_sample(&t, 1, t.T, a, v, sizeof a);
    snprintf(out, sizeof out, "%s/last.npy", dir);
    cr_assert_eq(test_run("%s embed --weights %s --audio %s --video %s --out %s", test_avt_bin(), weights, a, v, out), 0);
    int64_t s1[1] = {t.D2};
    expect_npy(out, t.h_av + ((size_t)1 * t.T + t.T - 1) * t.D2, 1, s1);
    snprintf(out, sizeof out, "%s/seq.npy", dir);
    cr_assert_eq(test_run("%s embed --weights %s --audio %s --video %s --out %s --sequence", test_avt_bin(), weights,
                          a, v, out), 0);
    int64_t s2[2] = {t.T, t.D2};
    expect_npy(out, t.h_av + (size_t)1 * t.T * t.D2, 2, s2);
    twin_close(&t);
}

// Batched --list with different lengths: right padding must not change any sample (causal attention).
Test(cli, embed_list_batches_uneven_lengths_and_reports_skips) {
    Twin t;
    twin_open(&t);
    char list[512], outdir[512], a[512], v[512];
    snprintf(list, sizeof list, "%s/pairs.csv", dir);
    snprintf(outdir, sizeof outdir, "%s/emb", dir);
    FILE *f = fopen(list, "w");
    fprintf(f, "audio,video,name\n# a comment\n");
    int Ts[3] = {t.T, t.T, t.T - 4};
    for (int b = 0; b < t.B; b++) {
        write_sample(&t, b, Ts[b], a, v, sizeof a);
        fprintf(f, "%s,%s,s%d\n", a, v, b);
    }
    fprintf(f, "%s/missing.csv,%s,gone\n", dir, v);
    fclose(f);
    int rc = test_run("%s embed --weights %s --list %s --out %s --batch 2 2>%s/log", test_avt_bin(), weights, list,
                      outdir, dir);
    cr_expect_eq(rc, 2, "a skipped pair must give exit status 2, got %d", rc);
    for (int b = 0; b < t.B; b++) {
        char out[600];
        snprintf(out, sizeof out, "%s/s%d.npy", outdir, b);
        int64_t s1[1] = {t.D2};
        expect_npy(out, t.h_av + ((size_t)b * t.T + Ts[b] - 1) * t.D2, 1, s1);
    }
    char skipped[600];
    snprintf(skipped, sizeof skipped, "%s/skipped.txt", outdir);
    cr_expect_eq(test_run("grep -q 'missing.csv: cannot open' %s", skipped), 0, "skipped.txt names the missing file");
    cr_expect_eq(test_run("grep -q 'embedded 3 of 4 pairs' %s/log", dir), 0, "summary line");
    twin_close(&t);
}

Test(cli, bad_invocations_fail_with_one_clear_line) {
    char args[16384], path[600];
    test_expect_avt_error("", "no command given");
    test_expect_avt_error("frobnicate", "unknown command 'frobnicate'");
    test_expect_avt_error("embed --audio a.csv --video v.csv --out o.npy", "--weights is required");
    test_expect_avt_error("embed --weights", "--weights needs a value");
    test_expect_avt_error("embed --bogus", "unknown option '--bogus'");
    test_expect_avt_error("info --config huge", "unknown config 'huge'");
    test_expect_avt_error("info --config base --heads 7", "n_heads must divide embed_size");
    test_expect_avt_error("embed --device tpu --weights w --audio a --video v --out o", "--device tpu: unknown device");
    test_expect_avt_error("embed --attention flash --weights w --audio a --video v --out o", "--attention flash: unknown path");
    test_expect_avt_error("embed --attention cudnn --weights w --audio a --video v --out o", "the cpu backend has no cuDNN");
    test_expect_avt_error("init --config base", "--out is required");
    snprintf(args, sizeof args, "embed --weights %s/none.safetensors --audio a --video v --out o.npy", dir);
    test_expect_avt_error(args, "none.safetensors");
    // a truncated checkpoint
    snprintf(path, sizeof path, "%s/trunc.safetensors", dir);
    test_run("head -c 300 %s > %s", weights, path);
    snprintf(args, sizeof args, "info %s", path);
    test_expect_avt_error(args, "trunc.safetensors");
    // a feature file with a wrong column count names file and line
    snprintf(path, sizeof path, "%s/bad.csv", dir);
    FILE *f = fopen(path, "w");
    for (int r = 0; r < 3; r++) {
        for (int c = 0; c < (r == 2 ? 511 : 512); c++) fprintf(f, c ? ",%d" : "%d", c);
        fputc('\n', f);
    }
    fclose(f);
    snprintf(args, sizeof args, "embed --weights %s --audio %s --video %s --out %s/o.npy", weights, path, path, dir);
    test_expect_avt_error(args, "bad.csv:3");
    // an embedding that cannot be written leaves nothing behind
    snprintf(args, sizeof args, "embed --weights %s --list %s/nolist.csv --out %s", weights, dir, dir);
    test_expect_avt_error(args, "nolist.csv: cannot open");
    snprintf(args, sizeof args, "embed --weights %s --data %s/nostore --out %s/e", weights, dir, dir);
    test_expect_avt_error(args, "nostore/manifest.json: cannot open");
    snprintf(args, sizeof args, "embed --weights %s --data %s --list x.csv --out %s/e", weights, dir, dir);
    test_expect_avt_error(args, "give one of --audio/--video, --list or --data");
}

// --device cuda: where this avt has a usable CUDA backend (a GPU, or the emulator with make EMU=1) the embedding
// matches the twin; elsewhere one line says why not (no CUDA in the build, or no device).
Test(cli, embed_on_cuda_matches_twin_or_says_why_not) {
    Twin t;
    twin_open(&t);
    char a[600], v[600], out[600], log[600];
    write_sample(&t, 0, t.T, a, v, sizeof a);
    snprintf(out, sizeof out, "%s/cuda.npy", dir);
    snprintf(log, sizeof log, "%s/cuda.log", dir);
    int rc = test_run("%s embed --device cuda --weights %s --audio %s --video %s --out %s --sequence 2>%s",
                      test_avt_bin(), weights, a, v, out, log);
    if (rc == 0) {
        int64_t s2[2] = {t.T, t.D2};
        expect_npy(out, t.h_av, 2, s2);
    } else {
        cr_expect_eq(rc, 1);
        cr_expect_eq(test_run("test $(wc -l < %s) -eq 1", log), 0, "stderr must be one line");
        cr_expect_eq(test_run("grep -qE -- '--device cuda: (no CUDA module at|no CUDA device)' %s", log),
                     0, "the reason is given");
    }
    twin_close(&t);
}

// The CUDA code of a native build is a module beside avt, loaded only for --device cuda: an avt without it (copied
// alone, or a CPU build) and a module that is not one each give one line.
Test(cli, cuda_module_missing_or_bad) {
    char args[700];
    cr_assert_eq(test_run("cp %s %s/avt_alone", test_avt_bin(), dir), 0);
    cr_expect_eq(test_run("%s/avt_alone info --config tiny >/dev/null", dir), 0, "avt runs without its CUDA module");
    snprintf(args, sizeof args, "pretrain --config tiny --device cuda --data %s --out %s/r", dir, dir);
    cr_expect_eq(test_run("%s/avt_alone %s 2>%s/mod.log; test $? -eq 1 && test $(wc -l < %s/mod.log) -eq 1 && "
                          "grep -q -- '--device cuda: no CUDA module at %s/libavt_cuda.so' %s/mod.log",
                          dir, args, dir, dir, dir, dir),
                 0, "a missing module is one line naming where it was looked for");
    cr_expect_eq(test_run("AVT_CUDA_MODULE=%s/avt_alone %s/avt_alone %s 2>%s/mod.log; test $? -eq 1 && "
                          "grep -q -- '--device cuda: cannot load the CUDA module: ' %s/mod.log",
                          dir, dir, args, dir, dir),
                 0, "a file that is not a module is refused with the loader's reason");
}

Test(cli, info_prints_paper_parameter_counts) {
    char log[600];
    snprintf(log, sizeof log, "%s/info.log", dir);
    cr_assert_eq(test_run("%s info --config base > %s", test_avt_bin(), log), 0);
    cr_expect_eq(test_run("grep -q '^parameters: 18,407,329 ' %s", log), 0, "base must have 18,407,329 parameters");
    cr_assert_eq(test_run("%s info --config large > %s", test_avt_bin(), log), 0);
    cr_expect_eq(test_run("grep -q '^parameters: 89,250,961 ' %s", log), 0, "large must have 89,250,961 parameters");
    cr_assert_eq(test_run("%s info %s > %s", test_avt_bin(), weights, log), 0);
    cr_expect_eq(test_run("grep -q 'trans_mem.layers.1.self_attn.in_proj_weight *(144, 48)' %s", log), 0,
                 "tensor table lists PyTorch names and shapes");
}
