// avt pretrain end to end on a synthetic corpus (tools/make_corpus.py -> avt prepare): exact resume, learning,
// data parallel over two MPI ranks against one process, the run folder, and bad inputs (an unwritable run folder
// included).
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "engine/safetensors.h"
#include "tests/testutil.h"

static const char *dir;
static char shards[700];

// A corpus of 48 utterances from 6 speakers, packed into a store (f32 so runs compare exactly).
static void setup(void) {
    dir = test_tmpdir();
    snprintf(shards, sizeof shards, "%s/shards", dir);
    cr_assert_eq(test_run("%s tools/make_corpus.py --out %s/corpus --utterances 48 --speakers 6 --seed 2 >/dev/null",
                          test_python(), dir),
                 0, "make_corpus.py failed");
    cr_assert_eq(test_run("%s prepare --from-csv %s/corpus/metadata.csv --out %s --dtype f32 2>/dev/null",
                          test_avt_bin(), dir, shards),
                 0, "avt prepare failed");
}
TestSuite(pretrain, .init = setup, .fini = test_tmpdir_remove, .timeout = 600);

// The common flags of a small run: tiny config, batch 8, 2 epochs of the training split.
#define RUN "pretrain --config tiny --data %s --batch 8 --epochs 2 --val 0.2 --val-every 4 --seed 5 --threads 2"

static int pretrain(const char *out, const char *extra) {
    return test_run("%s " RUN " --out %s/%s %s 2>>%s/%s.log", test_avt_bin(), shards, dir, out, extra, dir, out);
}

// The newest checkpoint folder of a run, e.g. "A/ckpt-000000010".
static const char *last_ckpt(const char *run) {
    static char name[700];
    char path[700];
    snprintf(path, sizeof path, "%s/last", dir);
    cr_assert_eq(test_run("ls -d %s/%s/ckpt-* | tail -1 > %s", dir, run, path), 0);
    FILE *f = fopen(path, "r");
    cr_assert(f && fgets(name, sizeof name, f), "no checkpoint in %s", run);
    fclose(f);
    name[strcspn(name, "\n")] = '\0';
    return name;
}

// Running 2K steps equals running K, stopping, resuming and running K more, bit for bit.
Test(pretrain, exact_resume) {
    cr_assert_eq(pretrain("A", ""), 0);
    cr_assert_eq(pretrain("B", "--max-steps 5"), 0);
    cr_assert_eq(test_run("%s pretrain --resume --data %s --out %s/B 2>>%s/B.log", test_avt_bin(), shards, dir, dir),
                 0);
    char a[700];
    snprintf(a, sizeof a, "%s", last_ckpt("A"));
    const char *b = last_ckpt("B");
    cr_assert_str_eq(strrchr(a, '/'), strrchr(b, '/'), "the runs end at different steps");
    for (int i = 0; i < 2; i++) {
        const char *f = i ? "state.safetensors" : "model.safetensors";
        cr_expect_eq(test_run("cmp -s %s/%s %s/%s", a, f, b, f), 0, "%s differs after resuming", f);
    }
    // the training rows of the log (step, loss, grad norm) agree too
    for (int i = 0; i < 2; i++)
        test_run("awk -F, '$3 != \"\" {print $1, $3, $5}' %s/%s/log.csv > %s/%s.rows", dir, i ? "B" : "A", dir,
                 i ? "B" : "A");
    cr_expect_eq(test_run("cmp -s %s/A.rows %s/B.rows", dir, dir), 0, "the logged losses differ");
}

// The objective learns: the validation loss falls clearly, and the run folder has its log and plot.
Test(pretrain, validation_loss_drops) {
    cr_assert_eq(test_run("%s pretrain --config tiny --data %s --out %s/L --batch 8 --epochs 12 --val 0.2 "
                          "--val-every 10 --lr 2e-3 --seed 5 --threads 2 2>%s/L.log",
                          test_avt_bin(), shards, dir, dir),
                 0);
    char path[700];
    snprintf(path, sizeof path, "%s/L/log.csv", dir);
    FILE *f = fopen(path, "r");
    cr_assert(f, "no log.csv");
    char line[512];
    double first = -1, last = -1;
    while (fgets(line, sizeof line, f)) {
        const char *v = strrchr(line, ',');
        if (v && v[1] != '\n' && v[1] != '\0' && strncmp(line, "step", 4) != 0) {
            last = atof(v + 1);
            if (first < 0) first = last;
        }
    }
    fclose(f);
    cr_assert(first > 0 && last > 0, "no validation rows");
    cr_expect_lt(last, 0.8 * first, "validation loss %g -> %g: not a clear drop", first, last);
    cr_expect_eq(test_run("test -s %s/L/loss.png", dir), 0, "no loss.png");
}

// max |a - b| / max |a| over every tensor of two checkpoints.
static double checkpoint_diff(const char *a, const char *b) {
    SafeTensors sa, sb;
    AvtErr err;
    cr_assert_eq(st_open(&sa, a, &err), 0, "%s", err.msg);
    cr_assert_eq(st_open(&sb, b, &err), 0, "%s", err.msg);
    cr_assert_eq(sa.n, sb.n);
    double worst = 0.0;
    for (int i = 0; i < sa.n; i++) {
        const StTensor *x = &sa.t[i], *y = st_find(&sb, x->name);
        cr_assert(y && y->numel == x->numel, "%s", x->name);
        float *u = malloc(x->numel * sizeof(float) + 1), *v = malloc(x->numel * sizeof(float) + 1);
        st_copy_f32(u, x);
        st_copy_f32(v, y);
        double e = 0.0, mag = 1e-12;
        for (size_t j = 0; j < x->numel; j++) {
            e = fmax(e, fabs((double)u[j] - v[j]));
            mag = fmax(mag, fabs((double)u[j]));
        }
        worst = fmax(worst, e / mag);
        free(u);
        free(v);
    }
    st_close(&sa);
    st_close(&sb);
    return worst;
}

// Two MPI ranks, each with half of every batch, give the weights one process gives (float summation order aside);
// small buckets, so that most gradient sums start while the backward is still running.
Test(pretrain, two_ranks_match_one_process) {
    if (test_run("command -v mpirun >/dev/null") != 0) cr_skip_test("mpirun not installed");
    cr_assert_eq(pretrain("one", "--max-steps 6"), 0);
    cr_assert_eq(test_run("OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 timeout 300 mpirun -np 2 "
                          "--oversubscribe --bind-to none %s " RUN " --threads 1 --bucket-mb 0.002 --out %s/two "
                          "--max-steps 6 "
                          "2>%s/two.log >/dev/null",
                          test_avt_bin(), shards, dir, dir),
                 0, "mpirun -np 2 avt pretrain failed (see two.log)");
    char a[700], b[700];
    snprintf(a, sizeof a, "%s/model.safetensors", last_ckpt("one"));
    snprintf(b, sizeof b, "%s/model.safetensors", last_ckpt("two"));
    double e = checkpoint_diff(a, b);
    cr_expect_lt(e, 1e-4, "two ranks vs one process: weights differ by %g of their scale", e);
    cr_expect_eq(test_run("grep -q '2 ranks' %s/two.log", dir), 0, "the run did not use two ranks");
}

// A rank killed in the middle of a data-parallel run ends the job (non-zero, the others do not hang); every
// checkpoint left has its DONE marker, and the run resumes from the newest.
Test(pretrain, killed_rank_ends_the_job_and_keeps_checkpoints) {
    if (test_run("command -v mpirun >/dev/null") != 0) cr_skip_test("mpirun not installed");
    int rc = test_run("OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 timeout 300 mpirun -np 2 "
                      "--oversubscribe --bind-to none %s pretrain --config tiny --data %s --out %s/K --batch 8 "
                      "--epochs 500 --val 0.2 --val-every 3 --seed 5 --threads 1 >/dev/null 2>%s/K.log & "
                      "pid=$!; for i in $(seq 100); do sleep 0.2; ls -d %s/K/ckpt-*/DONE >/dev/null 2>&1 && break; "
                      "done; sleep 1; pkill -9 -n -f -- '--out %s/K'; wait $pid",
                      test_avt_bin(), shards, dir, dir, dir, dir);
    cr_expect(rc != 0 && rc != 124, "mpirun must end non-zero without hanging (status %d)", rc);
    cr_expect_eq(test_run("for c in %s/K/ckpt-*; do test -f $c/DONE || exit 1; done", dir), 0,
                 "a checkpoint without DONE carries a final name");
    cr_expect_eq(test_run("%s pretrain --resume --data %s --out %s/K --max-steps 1 2>>%s/K.log", test_avt_bin(),
                          shards, dir, dir),
                 0, "the run does not resume from its last complete checkpoint");
}

// Bad inputs: one clear line naming the problem, exit status 1, no checkpoint with a final name left behind.
static void expect_fail(const char *args, const char *phrase) {
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "pretrain %s", args);
    test_expect_avt_error(cmd, phrase);
}

Test(pretrain, bad_inputs) {
    char args[2048];
    expect_fail("--out x", "--data is required");
    snprintf(args, sizeof args, "--data %s/nowhere --out %s/r1", dir, dir);
    expect_fail(args, "nowhere");
    snprintf(args, sizeof args, "--data %s --out %s/r2 --resume", shards, dir);
    expect_fail(args, "no complete checkpoint");
    // an output folder that cannot be created (a file is in the way)
    test_run("touch %s/file", dir);
    snprintf(args, sizeof args, "--data %s --out %s/file/run", shards, dir);
    expect_fail(args, "file/run");
    snprintf(args, sizeof args, "--config tiny --data %s --out %s/r3 --batch 1000", shards, dir);
    expect_fail(args, "fewer than one batch");
    snprintf(args, sizeof args, "--config base --audio-dim 100 --data %s --out %s/r4", shards, dir);
    expect_fail(args, "features are 512 + 17 wide");
    // a truncated shard is named
    test_run("cp -r %s %s/bad && f=$(ls %s/bad/shard-* | head -1) && truncate -s 1000 $f", shards, dir, dir);
    snprintf(args, sizeof args, "--config tiny --data %s/bad --out %s/r5", dir, dir);
    expect_fail(args, "shard-");
    cr_expect_eq(test_run("test -z \"$(ls -d %s/r*/ckpt-* 2>/dev/null)\"", dir), 0, "a failed run left a checkpoint");
}

// An output folder that cannot be written: one line naming the file, no source location of ours (that is for
// internal errors), exit status 1.
static void expect_unwritable(const char *out, const char *named) {
    char args[2048];
    snprintf(args, sizeof args, "--config tiny --batch 8 --data %s --out %s/%s", shards, dir, out);
    expect_fail(args, named);
    cr_expect_neq(test_run("grep -q '[.]c:[0-9]' %s", test_path("err.log")), 0, "the error names a source file");
}

Test(pretrain, unwritable_out_is_named) {
    // log.csv cannot be created: a directory has its name (this stops root too)
    cr_assert_eq(test_run("mkdir -p %s/w1/log.csv", dir), 0);
    expect_unwritable("w1", "w1/log.csv");
    // a read-only run folder (permissions do not stop root: then only the case above runs)
    cr_assert_eq(test_run("mkdir -p %s/w2 && chmod 555 %s/w2", dir, dir), 0);
    if (test_run("test -w %s/w2", dir) != 0) expect_unwritable("w2", "w2/log.csv");
}

// SIGINT finishes the step, writes a checkpoint and exits 130; --resume goes on from it.
Test(pretrain, interrupt_saves_and_resumes) {
    cr_assert_eq(test_run("%s pretrain --config tiny --data %s --out %s/I --batch 8 --epochs 200 --val 0.2 "
                          "--val-every 100000 --seed 5 --threads 2 2>%s/I.log & pid=$!; sleep 3; kill -INT $pid; "
                          "wait $pid",
                          test_avt_bin(), shards, dir, dir),
                 130, "an interrupted run must exit with 130");
    const char *c = last_ckpt("I");
    cr_expect_eq(test_run("test -f %s/DONE", c), 0, "the interrupt's checkpoint is incomplete");
    cr_expect_eq(test_run("%s pretrain --resume --data %s --out %s/I --max-steps 2 2>>%s/I.log", test_avt_bin(),
                          shards, dir, dir),
                 0, "resuming the interrupted run failed");
}
