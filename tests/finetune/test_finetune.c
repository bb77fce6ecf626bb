// avt finetune and avt table end to end on small generated stores: the files a run writes, exact resume, the
// emulated cuda backend against the cpu, the table's grid, and one clear line for each bad input.
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "base/philox.h"
#include "data/corpus/store.h"
#include "engine/backend.h"
#include "finetune/finetune.h"
#include "tests/testutil.h"

static const char *const EMO[] = {"ANG", "HAP", "SAD"};

// A store of n clips of 2-7 steps by `speakers` speakers with labels.csv: emotion (a class the audio carries as a
// shifted mean), arousal and valence (numbers tied to it), session. Deterministic.
static const char *make_store(const char *name, int n, int speakers) {
    const char *dir = test_path(name);
    char dir_copy[4096];
    snprintf(dir_copy, sizeof dir_copy, "%s", dir);
    StoreWriter *w;
    AvtErr err;
    cr_assert_eq(store_writer_open(&w, dir_copy, STORE_F32, 512, 17, 16, &err), 0, "%s", err.msg);
    char *labels = malloc(1 << 20);
    size_t o = (size_t)sprintf(labels, "id,speaker,emotion,arousal,valence,session\n");
    float *a = malloc(7 * 512 * sizeof(float)), *v = malloc(7 * 17 * sizeof(float));
    for (int i = 0; i < n; i++) {
        const int T = 2 + i % 6, e = i % 3, spk = (i / 3) % speakers;
        for (int t = 0; t < T * 512; t++) a[t] = 0.5f * (float)e + philox_uniform(7, 1, (uint32_t)i, (size_t)t) - 0.5f;
        for (int t = 0; t < T * 17; t++) v[t] = philox_uniform(7, 2, (uint32_t)i, (size_t)t);
        char id[32], sp[16];
        snprintf(id, sizeof id, "clip%03d", i);
        snprintf(sp, sizeof sp, "s%02d", spk);
        cr_assert_eq(store_writer_add(w, id, sp, T, a, v, &err), 0, "%s", err.msg);
        o += (size_t)sprintf(labels + o, "%s,%s,%s,%.2f,%.2f,S%d\n", id, sp, EMO[e], 1.0 + e + 0.1 * (i % 4),
                             5.0 - e - 0.05 * (i % 3), spk % 3);
    }
    cr_assert_eq(store_writer_finish(w, &err), 0, "%s", err.msg);
    char path[4200];
    snprintf(path, sizeof path, "%s/labels.csv", dir_copy);
    FILE *f = fopen(path, "w");
    fputs(labels, f);
    fclose(f);
    free(labels);
    free(a);
    free(v);
    return test_path(name);
}

static void setup(void) { test_tmpdir(); }
static void teardown(void) { test_tmpdir_remove(); }
TestSuite(finetune, .init = setup, .fini = teardown, .timeout = 300);

#define TINY "--config tiny --epochs 2 --batch 4 --threads 2"

static int exists(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0;
}

Test(finetune, classes_run_writes_every_file) {
    char store[4096];
    snprintf(store, sizeof store, "%s", make_store("store", 40, 8));
    cr_assert_eq(test_run("%s finetune --data %s --target emotion --folds 4 --out %s " TINY " 2>/dev/null",
                          test_avt_bin(), store, test_path("run")), 0);
    static const char *const files[] = {"settings.json", "split.csv", "metrics.json", "summary.md",
                                        "fold-0/log.csv", "fold-0/predictions.csv", "fold-0/metrics.json",
                                        "fold-0/model.safetensors", "fold-3/metrics.json"};
    char p[4200];
    for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
        snprintf(p, sizeof p, "%s/%s", test_path("run"), files[i]);
        cr_expect(exists(p), "missing %s", files[i]);
    }
    // No checkpoint or best-so-far file outlives a finished fold.
    snprintf(p, sizeof p, "%s/fold-0/best.safetensors", test_path("run"));
    cr_expect(!exists(p));
    // split.csv: one row per clip per fold, and each clip tested once.
    snprintf(p, sizeof p, "%s/split.csv", test_path("run"));
    char *split = test_slurp(p, NULL);
    int rows = 0;
    for (char *l = strchr(split, '\n'); l && l[1]; l = strchr(l + 1, '\n')) rows++;
    cr_expect_eq(rows, 4 * 40);
    free(split);
    int tested = 0;
    for (int k = 0; k < 4; k++) {
        snprintf(p, sizeof p, "%s/fold-%d/predictions.csv", test_path("run"), k);
        char *pred = test_slurp(p, NULL);
        cr_expect(strncmp(pred, "id,group,fold,label,pred,p_ANG,p_HAP,p_SAD\n", 42) == 0, "%.60s", pred);
        for (char *c = pred; (c = strchr(c, '\n')) && c[1]; c++) tested++;
        free(pred);
    }
    cr_expect_eq(tested, 40, "every clip is predicted exactly once over the folds (%d)", tested);
    // The model loads as a checkpoint with a 3-output head.
    snprintf(p, sizeof p, "%s/fold-1/model.safetensors", test_path("run"));
    cr_expect_eq(test_run("%s info %s | grep -q 'head.2.weight.*(3, 16)'", test_avt_bin(), p), 0);
}

Test(finetune, values_run_reports_ccc_per_dimension) {
    char store[4096];
    snprintf(store, sizeof store, "%s", make_store("store", 36, 6));
    cr_assert_eq(test_run("%s finetune --data %s --target arousal,valence --group-by session --folds 3 --out %s " TINY
                          " 2>/dev/null", test_avt_bin(), store, test_path("run")), 0);
    char p[4200];
    snprintf(p, sizeof p, "%s/metrics.json", test_path("run"));
    char *m = test_slurp(p, NULL);
    for (const char *k = "ccc_arousal\0ccc_valence\0pearson_arousal\0rmse_valence\0"; *k; k += strlen(k) + 1)
        cr_expect(strstr(m, k), "metrics.json lacks %s", k);
    free(m);
    snprintf(p, sizeof p, "%s/fold-2/predictions.csv", test_path("run"));
    char *pred = test_slurp(p, NULL);
    cr_expect(strncmp(pred, "id,group,fold,arousal,pred_arousal,valence,pred_valence\n", 56) == 0, "%.70s", pred);
    free(pred);
}

// A run stopped after 5 updates and resumed ends with the same bytes as one that ran straight through.
Test(finetune, resume_is_exact) {
    char store[4096];
    snprintf(store, sizeof store, "%s", make_store("store", 30, 6));
    const char *flags = "--target emotion --folds 3 --val-groups 1 --config tiny --epochs 3 --batch 4 --threads 2";
    cr_assert_eq(test_run("%s finetune --data %s %s --out %s", test_avt_bin(), store, flags, test_path("a")), 0);
    cr_assert_eq(test_run("%s finetune --data %s %s --out %s --max-steps 5 2>/dev/null", test_avt_bin(), store,
                          flags, test_path("b")), 0);
    char p[4200];
    snprintf(p, sizeof p, "%s/fold-0/metrics.json", test_path("b"));
    cr_assert(!exists(p), "the first fold cannot have finished in 5 updates");
    for (int i = 0; i < 3; i++) // resume twice more part-way, then to the end
        cr_assert_eq(test_run("%s finetune --out %s --resume --max-steps 4 2>/dev/null", test_avt_bin(),
                              test_path("b")), 0);
    cr_assert_eq(test_run("%s finetune --out %s --resume 2>/dev/null", test_avt_bin(), test_path("b")), 0);
    for (int k = 0; k < 3; k++)
        for (const char *f = "predictions.csv\0model.safetensors\0log.csv\0"; *f; f += strlen(f) + 1) {
            char pa[4200], pb[4200];
            snprintf(pa, sizeof pa, "%s/fold-%d/%s", test_path("a"), k, f);
            snprintf(pb, sizeof pb, "%s/fold-%d/%s", test_path("b"), k, f);
            if (strcmp(f, "log.csv") == 0) // the seconds column differs: compare the others
                cr_expect_eq(test_run("bash -c 'cmp -s <(cut -d, -f1-6 %s) <(cut -d, -f1-6 %s)'", pa, pb), 0, "fold %d %s", k,
                             f);
            else
                cr_expect_eq(test_run("cmp -s %s %s", pa, pb), 0, "fold %d %s differs after resuming", k, f);
        }
}

// The cuda backend (the emulator in this build) fine-tunes like the cpu one.
Test(finetune, cuda_matches_cpu) {
    AvtErr err;
    const Backend *cuda = backend_open("cuda", &err);
    if (!cuda) cr_skip_test("no cuda backend in this build: %s", err.msg);
    char store[1000];
    snprintf(store, sizeof store, "%s", make_store("store", 12, 4));
    FtSettings s = ft_defaults();
    snprintf(s.data, sizeof s.data, "%s", store);
    snprintf(s.target, sizeof s.target, "emotion");
    s.folds = 2;
    s.cfg.d = 24, s.cfg.L = 1, s.cfg.NH = 2;
    s.epochs = 1;
    s.batch = 4;
    s.seq = 4;
    const Backend *be[2] = {&BACKEND_CPU, cuda};
    for (int i = 0; i < 2; i++) {
        char out[4200];
        snprintf(out, sizeof out, "%s", test_path(i ? "cuda" : "cpu"));
        mkdir(out, 0777);
        FtRun *r;
        cr_assert_eq(ft_open(&r, &s, out, &err), 0, "%s", err.msg);
        cr_assert_eq(ft_write_plan(r, &err), 0, "%s", err.msg);
        FtProgress p = {0};
        p.t0 = avt_now();
        cr_assert_eq(ft_fold_run(r, 0, be[i], &p), 0);
        ft_close(r);
    }
    char pa[4200], pb[4200];
    snprintf(pa, sizeof pa, "%s/fold-0/predictions.csv", test_path("cpu"));
    snprintf(pb, sizeof pb, "%s/fold-0/predictions.csv", test_path("cuda"));
    char *a = test_slurp(pa, NULL), *b = test_slurp(pb, NULL);
    // Same clips and labels, probabilities within 1e-4 (the two backends sum in different orders).
    char *sa, *sb, *la = strtok_r(a, "\n", &sa), *lb = strtok_r(b, "\n", &sb);
    int n = 0;
    for (; la && lb; la = strtok_r(NULL, "\n", &sa), lb = strtok_r(NULL, "\n", &sb), n++) {
        if (n == 0) {
            cr_expect_str_eq(la, lb);
            continue;
        }
        const char *ca = la, *cb = lb;
        for (int field = 0; field < 5; field++) ca = strchr(ca, ',') + 1, cb = strchr(cb, ',') + 1;
        cr_expect_eq(strncmp(la, lb, (size_t)(ca - la)), 0, "row %d: %s vs %s", n, la, lb);
        for (int c = 0; c < 3; c++) {
            double x = strtod(ca, (char **)&ca), y = strtod(cb, (char **)&cb);
            cr_expect(fabs(x - y) < 1e-4, "row %d class %d: cpu %g cuda %g", n, c, x, y);
            if (*ca == ',') ca++;
            if (*cb == ',') cb++;
        }
    }
    cr_expect(n > 1 && !la && !lb, "the two prediction files differ in length");
    free(a);
    free(b);
}

Test(finetune, table_runs_the_grid_and_renders_again_at_once) {
    char store[4096];
    snprintf(store, sizeof store, "%s", make_store("store", 24, 6));
    char w[4200];
    snprintf(w, sizeof w, "%s", test_path("pre.safetensors"));
    cr_assert_eq(test_run("%s init --config tiny --out %s >/dev/null", test_avt_bin(), w), 0);
    const char *flags = "--target emotion --folds 2 --seeds 2 --fractions 1,0.5 --epochs 1 --batch 4 --threads 2";
    cr_assert_eq(test_run("%s table --data %s --pretrained %s %s --out %s >/dev/null", test_avt_bin(), store, w,
                          flags, test_path("t")), 0);
    char p[4200];
    snprintf(p, sizeof p, "%s/table.md", test_path("t"));
    char *md = test_slurp(p, NULL);
    cr_expect(strstr(md, "| accuracy | 100 % |") && strstr(md, "| accuracy | 50 % |") && strstr(md, "| uar |"),
              "%s", md);
    cr_expect(strstr(md, "+5 to +7"), "the claimed gain is shown at 100 %%");
    free(md);
    snprintf(p, sizeof p, "%s/table.csv", test_path("t"));
    char *csv = test_slurp(p, NULL);
    int lines = 0;
    for (char *c = csv; (c = strchr(c, '\n')); c++) lines++;
    cr_expect_eq(lines, 1 + 2 * 2, "header + 2 metrics x 2 fractions:\n%s", csv);
    free(csv);
    // 8 cells: a second run has nothing left to train and renders the same table.
    snprintf(p, sizeof p, "%s/log2", test_path("t"));
    cr_assert_eq(test_run("%s table --data %s --pretrained %s %s --out %s >/dev/null 2>%s", test_avt_bin(), store, w,
                          flags, test_path("t"), p), 0);
    char *log = test_slurp(p, NULL);
    cr_expect(strstr(log, "0 runs left"), "%s", log);
    free(log);
}

Test(finetune, bad_inputs_fail_with_one_clear_line) {
    char store[4096], cmd[8192];
    snprintf(store, sizeof store, "%s", make_store("store", 24, 6));
    const struct {
        const char *args, *phrase;
    } cases[] = {
        {"--target emotoin", "no column 'emotoin'"},
        {"--target emotion,arousal", "not a number"},
        {"--target emotion --group-by room", "no column 'room'"},
        {"--target emotion --folds 7", "groups"},
        {"--target emotion --loss mse", "does not fit"},
        {"--target arousal --loss ce", "does not fit"},
        {"--target emotion --weights /nonexistent.safetensors", "/nonexistent.safetensors"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char name[16];
        snprintf(name, sizeof name, "bad%zu", i);
        snprintf(cmd, sizeof cmd, "finetune --data %s %s --out %s", store, cases[i].args, test_path(name));
        test_expect_avt_error(cmd, cases[i].phrase);
    }
    // A store utterance that labels.csv does not list, and the other way round.
    char p[4200];
    snprintf(p, sizeof p, "%s/labels.csv", store);
    cr_assert_eq(test_run("sed -i '/^clip003,/d' %s", p), 0);
    snprintf(cmd, sizeof cmd, "finetune --data %s --target emotion --out %s", store, test_path("bad_ids"));
    test_expect_avt_error(cmd, "clip003");
    cr_assert_eq(test_run("echo 'ghost,s01,ANG,1,1,S0' >>%s", p), 0);
    test_expect_avt_error(cmd, "ghost");
    // Only one class without training clips: every clip of class SAD in one speaker's group.
    char bad[4096];
    snprintf(bad, sizeof bad, "%s", make_store("store1", 24, 6));
    snprintf(p, sizeof p, "%s/labels.csv", bad);
    cr_assert_eq(test_run("awk -F, 'BEGIN{OFS=\",\"} NR>1 && $3==\"SAD\" {$2=\"lonely\"} {print}' %s >%s.x && mv %s.x %s",
                          p, p, p, p), 0);
    snprintf(cmd, sizeof cmd, "finetune --data %s --target emotion --folds 2 --out %s", bad, test_path("bad_class"));
    test_expect_avt_error(cmd, "has no training clip");
    // A second run into a folder that holds one.
    cr_assert_eq(test_run("mkdir -p %s && echo '{}' >%s/settings.json", test_path("bad0"), test_path("bad0")), 0);
    snprintf(cmd, sizeof cmd, "finetune --data %s --target emotion --out %s", store, test_path("bad0"));
    test_expect_avt_error(cmd, "already holds a fine-tuning run");
}

// The label schemas the --layout readers write (data/corpus/layouts.h), with each dataset's documented flags
// (docs/protocols.md §4): MSP-IMPROV's three dimensions by session, RAVDESS's emotions by actor.
Test(finetune, layout_label_schemas) {
    char store[4096], p[4200];
    snprintf(store, sizeof store, "%s", make_store("store", 36, 6));
    snprintf(p, sizeof p, "%s/labels.csv", store);
    static const char *const RAV[] = {"angry", "happy", "sad"};
    FILE *f = fopen(p, "w");
    fprintf(f, "id,speaker,session,sentence,emotion,condition,turn,category,arousal,valence,dominance\n");
    for (int i = 0; i < 36; i++) // speakers s00..s05 as MSP-IMPROV's F01/M01 pairs: session = speaker / 2
        fprintf(f, "clip%03d,%c0%d,S0%d,%02d,%c,P,%d,%c,%.2f,%.2f,%s\n", i, i / 3 % 2 ? 'M' : 'F', i / 3 % 6 / 2 + 1,
                i / 3 % 6 / 2 + 1, i % 20, "AHS"[i % 3], i, "AHS"[i % 3], 1.0 + i % 3 + 0.1 * (i % 5),
                4.5 - i % 3, i == 7 ? "" : "3.0");
    fclose(f);
    cr_expect_eq(test_run("%s finetune --data %s --target arousal,valence --group-by session --folds 3 --out %s "
                          TINY " >/dev/null 2>&1", test_avt_bin(), store, test_path("msp")), 0);
    cr_expect_eq(test_run("grep -q ccc_valence %s/metrics.json", test_path("msp")), 0);
    // A turn without a dominance rating is left out when dominance is a target, and only then.
    cr_expect_eq(test_run("%s finetune --data %s --target arousal,valence,dominance --group-by session --folds 3 "
                          "--out %s " TINY " >/dev/null 2>&1 && test $(grep -c ',test$' %s/split.csv) -eq 35",
                          test_avt_bin(), store, test_path("msp3"), test_path("msp3")), 0);
    f = fopen(p, "w");
    fprintf(f, "id,speaker,channel,emotion,intensity,statement,repetition\n");
    for (int i = 0; i < 36; i++)
        fprintf(f, "clip%03d,Actor_%02d,speech,%s,normal,1,1\n", i, i / 3 % 6 + 1, RAV[i % 3]);
    fclose(f);
    cr_expect_eq(test_run("%s finetune --data %s --target emotion --group-by speaker --folds 3 --out %s " TINY
                          " >/dev/null 2>&1", test_avt_bin(), store, test_path("rav")), 0);
    cr_expect_eq(test_run("grep -q 'p_angry,p_happy,p_sad' %s/fold-0/predictions.csv", test_path("rav")), 0);
}
