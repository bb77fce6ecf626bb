// Tests for data/corpus/store*.c and avt prepare: f16 and CRC, round trips, windows, shard roll-over, every
// damaged-store error, and prepare end to end on a make_corpus.py corpus (the split: test_split.c).
#include <criterion/criterion.h>

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "data/corpus/features.h"
#include "data/corpus/store.h"
#include "tests/testutil.h"

static const char *dir;
static void setup(void) { dir = test_tmpdir(); }
TestSuite(store, .init = setup, .fini = test_tmpdir_remove, .timeout = 120);

enum { DA = 6, DV = 3 };

static int utt_len(int k) { return 2 + (k * 7) % 11; }

// Deterministic, not exactly representable values for utterance k: (T, D) of one stream.
static void utt_fill(float *x, int k, int stream, int T, int D) {
    for (int t = 0; t < T; t++)
        for (int j = 0; j < D; j++)
            x[(size_t)t * D + j] = sinf(0.1f * k + 0.37f * t + 0.011f * j + stream) * (stream ? 4.0f : 300.0f);
}

static void utt_name(char *id, size_t n, int k) { snprintf(id, n, "spk%d/utt%03d", k % 5, k); }
static void spk_name(char *s, size_t n, int k) { snprintf(s, n, "speaker-%d", k % 5); }

// A store of utterances 0 .. n-1.
static void write_store(const char *d, StoreDtype dt, int shard_size, int n) {
    StoreWriter *w;
    AvtErr err;
    cr_assert_eq(store_writer_open(&w, d, dt, DA, DV, shard_size, &err), 0, "%s", err.msg);
    for (int k = 0; k < n; k++) {
        int T = utt_len(k);
        float *a = malloc(sizeof(float) * T * DA), *v = malloc(sizeof(float) * T * DV);
        utt_fill(a, k, 0, T, DA);
        utt_fill(v, k, 1, T, DV);
        char id[64], spk[64];
        utt_name(id, sizeof id, k);
        spk_name(spk, sizeof spk, k);
        cr_assert_eq(store_writer_add(w, id, spk, T, a, v, &err), 0, "%s", err.msg);
        free(a);
        free(v);
    }
    cr_assert_eq(store_writer_finish(w, &err), 0, "%s", err.msg);
}

static Store *open_ok(const char *d) {
    Store *s;
    AvtErr err;
    cr_assert_eq(store_open(&s, d, &err), 0, "%s", err.msg);
    return s;
}

// A failed call: rc -1, and one line naming the file and the problem.
static void expect_err(int rc, const AvtErr *err, const char *file, const char *phrase) {
    cr_assert_eq(rc, -1, "expected failure (%s)", phrase);
    cr_expect_not_null(strstr(err->msg, file), "error '%s' does not name '%s'", err->msg, file);
    cr_expect_not_null(strstr(err->msg, phrase), "error '%s' lacks '%s'", err->msg, phrase);
    cr_expect_null(strchr(err->msg, '\n'), "error '%s' spans lines", err->msg);
}

static void expect_open_err(const char *d, const char *file, const char *phrase) {
    Store *s = (Store *)1;
    AvtErr err = {{0}};
    expect_err(store_open(&s, d, &err), &err, file, phrase);
    cr_expect_null(s);
}

// ---------------------------------------------------------------------------------------------------------------
// f16 and CRC

Test(store, crc32_known_values) {
    cr_expect_eq(store_crc32("123456789", 9), 0xcbf43926u);
    cr_expect_eq(store_crc32("", 0), 0u);
    cr_expect_eq(store_crc32("The quick brown fox jumps over the lazy dog", 43), 0x414fa339u);
}

Test(store, f16_overflow_and_inf_rejected_naming_the_utterance) {
    float x[4] = {1, 2, 70000.0f, 3};
    AvtErr err = {{0}};
    expect_err(store_check_values(x, 4, STORE_F16, "id1/u7", &err), &err, "id1/u7", "overflows f16");
    cr_expect_eq(store_check_values(x, 4, STORE_F32, "id1/u7", &err), 0);
    x[1] = -INFINITY;
    expect_err(store_check_values(x, 4, STORE_F32, "id1/u7", &err), &err, "id1/u7", "not finite");

    // The writer refuses such an utterance and stays usable.
    StoreWriter *w;
    cr_assert_eq(store_writer_open(&w, dir, STORE_F16, 2, 2, 10, &err), 0, "%s", err.msg);
    float a[4] = {1, 2, 3, 65520.0f}, v[4] = {0, 1, 2, 3};
    expect_err(store_writer_add(w, "bad/one", "s", 2, a, v, &err), &err, "bad/one", "overflows f16");
    a[3] = 4;
    cr_assert_eq(store_writer_add(w, "good/one", "s", 2, a, v, &err), 0, "%s", err.msg);
    cr_assert_eq(store_writer_finish(w, &err), 0, "%s", err.msg);
    Store *s = open_ok(dir);
    cr_expect_eq(store_size(s), 1);
    cr_expect_str_eq(store_id(s, 0), "good/one");
    store_close(s);
}

// ---------------------------------------------------------------------------------------------------------------
// Round trips

static void check_round_trip(StoreDtype dt) {
    enum { N = 13 };
    write_store(dir, dt, 1000, N);
    Store *s = open_ok(dir);
    cr_assert_eq(store_size(s), N);
    cr_expect_eq(store_d_a(s), DA);
    cr_expect_eq(store_d_v(s), DV);
    cr_expect_eq(store_dtype(s), dt);
    cr_expect_eq(store_n_speakers(s), 5);
    uint64_t steps = 0;
    for (int k = 0; k < N; k++) {
        int T = utt_len(k);
        char id[64], spk[64];
        utt_name(id, sizeof id, k);
        spk_name(spk, sizeof spk, k);
        cr_expect_str_eq(store_id(s, (size_t)k), id);
        cr_expect_str_eq(store_speaker_name(s, store_speaker(s, (size_t)k)), spk);
        cr_assert_eq(store_len(s, (size_t)k), T);
        float *a = malloc(sizeof(float) * T * DA), *v = malloc(sizeof(float) * T * DV);
        float *ga = malloc(sizeof(float) * T * DA), *gv = malloc(sizeof(float) * T * DV);
        utt_fill(a, k, 0, T, DA);
        utt_fill(v, k, 1, T, DV);
        AvtErr err;
        cr_assert_eq(store_read(s, (size_t)k, 0, T, ga, gv, &err), 0, "%s", err.msg);
        for (int i = 0; i < T * DA; i++) {
            float tol = dt == STORE_F32 ? 0.0f : fabsf(a[i]) * 0x1p-11f + 0x1p-25f;
            cr_assert(fabsf(ga[i] - a[i]) <= tol, "utt %d audio %d: %g vs %g", k, i, ga[i], a[i]);
        }
        for (int i = 0; i < T * DV; i++) {
            float tol = dt == STORE_F32 ? 0.0f : fabsf(v[i]) * 0x1p-11f + 0x1p-25f;
            cr_assert(fabsf(gv[i] - v[i]) <= tol, "utt %d video %d: %g vs %g", k, i, gv[i], v[i]);
        }
        steps += (uint64_t)T;
        free(a), free(v), free(ga), free(gv);
    }
    cr_expect_eq(store_steps(s), steps);
    AvtErr err;
    cr_expect_eq(store_verify(s, &err), 0, "%s", err.msg);
    store_close(s);
}

Test(store, round_trip_f32_exact) { check_round_trip(STORE_F32); }
Test(store, round_trip_f16_within_half_precision) { check_round_trip(STORE_F16); }

Test(store, read_window_and_bad_windows) {
    write_store(dir, STORE_F32, 4, 9);
    Store *s = open_ok(dir);
    int k = 6, T = utt_len(k); // 11 steps, in the second shard
    cr_assert_eq(T, 11);
    float *a = malloc(sizeof(float) * T * DA), *v = malloc(sizeof(float) * T * DV);
    utt_fill(a, k, 0, T, DA);
    utt_fill(v, k, 1, T, DV);
    float ga[5 * DA], gv[5 * DV];
    AvtErr err = {{0}};
    cr_assert_eq(store_read(s, (size_t)k, 3, 5, ga, gv, &err), 0, "%s", err.msg);
    cr_expect_eq(memcmp(ga, a + 3 * DA, sizeof ga), 0, "audio window");
    cr_expect_eq(memcmp(gv, v + 3 * DV, sizeof gv), 0, "video window");
    memset(gv, 0, sizeof gv);
    cr_assert_eq(store_read(s, (size_t)k, T - 1, 1, NULL, gv, &err), 0, "%s", err.msg); // one stream only
    cr_expect_eq(memcmp(gv, v + (size_t)(T - 1) * DV, sizeof(float) * DV), 0);
    expect_err(store_read(s, (size_t)k, T - 2, 3, ga, gv, &err), &err, "shard-00001.avts", "outside [0, 11)");
    expect_err(store_read(s, (size_t)k, -1, 1, ga, gv, &err), &err, "utt006", "outside");
    expect_err(store_read(s, 9, 0, 1, ga, gv, &err), &err, "store_read", "utterance 9 of 9");
    free(a);
    free(v);
    store_close(s);
}

// store_read from many threads at once (the loader's prefetch thread does this) gives what one thread gets.
Test(store, concurrent_reads_agree) {
    enum { N = 24, ROUNDS = 50 };
    write_store(dir, STORE_F16, 5, N);
    Store *s = open_ok(dir);
    int bad = 0;
#pragma omp parallel for num_threads(4) reduction(+ : bad)
    for (int r = 0; r < ROUNDS * N; r++) {
        size_t k = (size_t)(r * 7) % N;
        int T = store_len(s, k);
        float a1[16 * DA], v1[16 * DV], a2[16 * DA], v2[16 * DV];
        AvtErr err;
        utt_fill(a1, (int)k, 0, T, DA);
        utt_fill(v1, (int)k, 1, T, DV);
        bad += store_read(s, k, 0, T, a2, v2, &err) != 0;
        for (int i = 0; i < T * DA; i++) bad += fabsf(a2[i] - a1[i]) > fabsf(a1[i]) * 0x1p-11f + 0x1p-25f;
        for (int i = 0; i < T * DV; i++) bad += fabsf(v2[i] - v1[i]) > fabsf(v1[i]) * 0x1p-11f + 0x1p-25f;
    }
    cr_expect_eq(bad, 0, "%d mismatches", bad);
    store_close(s);
}

Test(store, shards_roll_over_at_shard_size) {
    write_store(dir, STORE_F16, 3, 7);
    for (int k = 0; k < 3; k++) {
        char name[32];
        snprintf(name, sizeof name, "shard-%05d.avts", k);
        cr_expect_eq(access(test_path(name), F_OK), 0, "%s missing", name);
    }
    cr_expect_neq(access(test_path("shard-00003.avts"), F_OK), 0, "no empty trailing shard");
    cr_expect_eq(test_run("grep -c '\"utterances\":' %s | grep -qx 4", test_path("manifest.json")), 0);
    cr_expect_eq(test_run("ls %s | grep -q tmp", dir), 1, "no temporary file left");
    Store *s = open_ok(dir);
    cr_assert_eq(store_size(s), 7);
    for (int k = 0; k < 7; k++) {
        char id[64];
        utt_name(id, sizeof id, k);
        cr_expect_str_eq(store_id(s, (size_t)k), id);
    }
    store_close(s);
    // A new store replaces the old one's shards and manifest, and a crashed writer's temporary shard.
    cr_assert_eq(test_run("touch %s", test_path("shard-00009.avts.tmp.99")), 0);
    write_store(dir, STORE_F16, 100, 2);
    cr_expect_neq(access(test_path("shard-00001.avts"), F_OK), 0, "stale shard left behind");
    cr_expect_neq(access(test_path("shard-00009.avts.tmp.99"), F_OK), 0, "stale temporary shard left behind");
    s = open_ok(dir);
    cr_expect_eq(store_size(s), 2);
    store_close(s);
}

// ---------------------------------------------------------------------------------------------------------------
// Damaged stores

static void patch(const char *path, long off, const void *bytes, size_t n) {
    FILE *f = fopen(path, "r+b");
    cr_assert_not_null(f);
    cr_assert_eq(fseek(f, off, SEEK_SET), 0);
    cr_assert_eq(fwrite(bytes, 1, n, f), n);
    cr_assert_eq(fclose(f), 0);
}

static long file_size(const char *path) {
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fclose(f);
    return n;
}

Test(store, truncated_shard_at_several_lengths) {
    const char *shard = test_path("shard-00001.avts"), *copy = test_path("copy.bin");
    write_store(dir, STORE_F16, 4, 9);
    long size = file_size(shard);
    cr_assert_eq(test_run("cp %s %s", shard, copy), 0);
    const long cuts[] = {0, 7, 63, 64, 65, 200, size / 2, size - 152, size - 1};
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        cr_assert_eq(test_run("cp %s %s && truncate -s %ld %s", copy, shard, cuts[i], shard), 0);
        expect_open_err(dir, "shard-00001.avts", "truncated");
    }
    cr_assert_eq(test_run("cp %s %s", copy, shard), 0);
    store_close(open_ok(dir));
}

Test(store, flipped_data_byte_found_by_verify) {
    write_store(dir, STORE_F32, 4, 9);
    Store *s = open_ok(dir);
    AvtErr err;
    cr_assert_eq(store_verify(s, &err), 0, "%s", err.msg);
    store_close(s);
    // Utterance 5 is the second of shard 1; its data follows utterance 4's.
    const char *shard = test_path("shard-00001.avts");
    long off = 64 + 64 * ((utt_len(4) * DA * 4 + 63) / 64) + 64 * ((utt_len(4) * DV * 4 + 63) / 64) + 12;
    unsigned char b = 0x5a;
    patch(shard, off, &b, 1);
    s = open_ok(dir); // the index is intact: reading stays possible
    expect_err(store_verify(s, &err), &err, "shard-00001.avts", "utterance 'spk0/utt005': CRC mismatch");
    store_close(s);
}

Test(store, bad_magic_version_index_and_missing_shard) {
    write_store(dir, STORE_F16, 4, 9);
    const char *shard = test_path("shard-00002.avts"), *copy = test_path("copy.bin");
    cr_assert_eq(test_run("cp %s %s", shard, copy), 0);
    patch(shard, 0, "AVTSHARX", 8);
    expect_open_err(dir, "shard-00002.avts", "bad magic");

    cr_assert_eq(test_run("cp %s %s", copy, shard), 0);
    uint32_t v2 = 2;
    patch(shard, 8, &v2, 4);
    expect_open_err(dir, "shard-00002.avts", "shard version 2, this avt reads version 1");

    cr_assert_eq(test_run("cp %s %s", copy, shard), 0);
    uint32_t dt = STORE_F32;
    patch(shard, 12, &dt, 4);
    expect_open_err(dir, "shard-00002.avts", "but the manifest says f16");

    cr_assert_eq(test_run("cp %s %s", copy, shard), 0);
    patch(shard, file_size(shard) - 152 + 128, "\x09", 1); // the last entry's speaker
    expect_open_err(dir, "shard-00002.avts", "index CRC mismatch");

    cr_assert_eq(test_run("cp %s %s", copy, shard), 0);
    store_close(open_ok(dir));
    cr_assert_eq(test_run("rm %s", test_path("shard-00001.avts")), 0);
    expect_open_err(dir, "shard-00001.avts", "cannot open");
    cr_assert_eq(test_run("rm %s", test_path("manifest.json")), 0);
    expect_open_err(dir, "manifest.json", "cannot open");
    cr_assert_eq(test_run("echo '{\"format\": \"avt-store\", \"version\": 2}' > %s", test_path("manifest.json")), 0);
    expect_open_err(dir, "manifest.json", "manifest version 2, this avt reads version 1");
    cr_assert_eq(test_run("echo '{\"format\": ' > %s", test_path("manifest.json")), 0);
    expect_open_err(dir, "manifest.json", "not valid JSON");
}

Test(store, writer_refuses_unwritable_folder) {
    StoreWriter *w = (StoreWriter *)1;
    AvtErr err = {{0}};
    cr_assert_eq(test_run("touch %s", test_path("plain")), 0);
    const char *out = test_path("plain/shards");
    expect_err(store_writer_open(&w, out, STORE_F16, 4, 2, 10, &err), &err, out, "cannot create directory");
    cr_expect_null(w);
    expect_err(store_writer_open(&w, test_path("plain"), STORE_F16, 4, 2, 10, &err), &err, "plain",
               "not a directory");
}

// ---------------------------------------------------------------------------------------------------------------
// avt prepare

// Runs avt prepare with args; returns the exit status, stderr in <dir>/err.log.
static int prepare(const char *args) {
    return test_run("%s prepare %s >/dev/null 2>%s", test_avt_bin(), args, test_path("err.log"));
}

static void expect_prepare_error(const char *args, const char *phrase) {
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "prepare %s", args);
    test_expect_avt_error(cmd, phrase);
}

Test(store, prepare_fatal_errors_one_line) {
    char args[2048], meta[600];
    snprintf(meta, sizeof meta, "%s", test_path("metadata.csv")); // test_path's buffers rotate
    cr_assert_eq(test_run("printf '# nothing here\\n\\naudio_csv,openface_csv\\n' > %s", meta), 0);
    snprintf(args, sizeof args, "--from-csv %s --out %s", meta, test_path("out"));
    expect_prepare_error(args, "metadata.csv: no rows");
    snprintf(args, sizeof args, "--from-csv %s --out %s", test_path("nope.csv"), test_path("out"));
    expect_prepare_error(args, "nope.csv: cannot open");
    cr_assert_eq(test_run("echo 'a.csv,b.csv' > %s && touch %s", meta, test_path("plain")), 0);
    snprintf(args, sizeof args, "--from-csv %s --out %s/sub", meta, test_path("plain"));
    expect_prepare_error(args, "plain/sub: cannot create directory");
    snprintf(args, sizeof args, "--from-csv %s --out %s --dtype f8", meta, test_path("out"));
    expect_prepare_error(args, "--dtype: 'f8' is not f16 or f32");
    expect_prepare_error("--out x", "--from-csv is required");
    snprintf(args, sizeof args, "--verify %s", test_path("out"));
    expect_prepare_error(args, "manifest.json: cannot open");
    // Every row skipped: exit 1, the reason listed, no store.
    snprintf(args, sizeof args, "--from-csv %s --out %s", meta, test_path("out"));
    cr_expect_eq(prepare(args), 1);
    cr_expect_eq(test_run("tail -n 1 %s | grep -q 'every row was skipped'", test_path("err.log")), 0);
    cr_expect_eq(test_run("grep -q 'metadata.csv:1: .*a.csv: cannot open' %s/skipped.txt", test_path("out")), 0);
    cr_expect_neq(access(test_path("out/manifest.json"), F_OK), 0, "no manifest");
}

// A make_corpus.py corpus of 30 utterances with two bad rows added: one missing file and one Inf.
static void make_corpus(const char *root) {
    cr_assert_eq(test_run("%s tools/make_corpus.py --out %s --utterances 30 --speakers 5 --max-steps 40 >/dev/null",
                          test_python(), root), 0, "make_corpus.py failed");
    // Row 3's audio gets an Inf (a value the reader accepts but the store must not hold).
    cr_assert_eq(test_run("f=%s/$(sed -n 4p %s/metadata.csv | cut -d, -f1) && sed -i '2s/^[^,]*,/inf,/' $f", root,
                          root), 0);
    cr_assert_eq(test_run("echo 'id99999/none/00001.csv,id99999/none/00001.openface.csv,10,' >> %s/metadata.csv",
                          root), 0);
}

Test(store, prepare_end_to_end_on_a_corpus, .timeout = 300) {
    char root[600], out[600], out1[600], args[2048]; // test_path's buffers rotate: keep copies
    snprintf(root, sizeof root, "%s", test_path("corpus"));
    snprintf(out, sizeof out, "%s", test_path("shards"));
    snprintf(out1, sizeof out1, "%s", test_path("shards1"));
    make_corpus(root);
    snprintf(args, sizeof args, "--from-csv %s/metadata.csv --out %s --dtype f32 --shard-size 8 --threads 3", root,
             out);
    cr_assert_eq(prepare(args), 2, "some rows skipped: exit 2");
    cr_expect_eq(test_run("grep -q '^prepared 29 utterances of 5 speakers' %s", test_path("err.log")), 0,
                 "summary line");
    cr_expect_eq(test_run("grep -c 'avt: skipped:' %s | grep -qx 2", test_path("err.log")), 0, "skips on stderr");
    cr_expect_eq(test_run("wc -l < %s/skipped.txt | grep -qx 2", out), 0, "two rows skipped");
    cr_expect_eq(test_run("grep -q 'metadata.csv:4: .*/0000[0-9].csv: utterance .*not finite' %s/skipped.txt", out), 0);
    cr_expect_eq(test_run("grep -q 'metadata.csv:32: .*id99999/none/00001.csv: cannot open' %s/skipped.txt", out),
                 0);
    // The store does not depend on the thread count.
    snprintf(args, sizeof args, "--from-csv %s/metadata.csv --out %s --dtype f32 --shard-size 8 --threads 1", root,
             out1);
    cr_assert_eq(prepare(args), 2);
    for (int k = 0; k < 4; k++)
        cr_expect_eq(test_run("cmp -s %s/shard-%05d.avts %s/shard-%05d.avts", out, k, out1, k), 0, "shard %d", k);
    cr_expect_eq(test_run("cmp -s %s/manifest.json %s/manifest.json", out, out1), 0);

    Store *s = open_ok(out);
    cr_assert_eq(store_size(s), 29);
    cr_expect_eq(store_n_speakers(s), 5);
    for (size_t i = 0; i < store_size(s); i++) {
        const char *id = store_id(s, i);
        cr_assert_eq(strncmp(id, store_speaker_name(s, store_speaker(s, i)), 7), 0, "speaker of %s", id);
        char a_path[1024], v_path[1024];
        snprintf(a_path, sizeof a_path, "%s/%s.csv", root, id);
        snprintf(v_path, sizeof v_path, "%s/%s.openface.csv", root, id);
        Features fa, fv;
        AvtErr err;
        cr_assert_eq(features_read_audio(&fa, a_path, 512, &err), 0, "%s", err.msg);
        cr_assert_eq(features_read_video(&fv, v_path, 17, &err), 0, "%s", err.msg);
        features_align(&fa, &fv);
        cr_assert_eq(store_len(s, i), fa.T, "%s", id);
        float *a = malloc(sizeof(float) * fa.T * 512), *v = malloc(sizeof(float) * fa.T * 17);
        cr_assert_eq(store_read(s, i, 0, fa.T, a, v, &err), 0, "%s", err.msg);
        cr_assert_eq(memcmp(a, fa.data, sizeof(float) * fa.T * 512), 0, "%s audio", id);
        cr_assert_eq(memcmp(v, fv.data, sizeof(float) * fa.T * 17), 0, "%s video", id);
        free(a), free(v);
        features_free(&fa);
        features_free(&fv);
    }
    store_close(s);

    // --verify passes, then names a corrupted utterance in one line.
    snprintf(args, sizeof args, "--verify %s", out);
    cr_expect_eq(prepare(args), 0);
    cr_assert_eq(test_run("printf 'X' | dd of=%s/shard-00002.avts bs=1 seek=100 conv=notrunc 2>/dev/null", out), 0);
    expect_prepare_error(args, "shard-00002.avts: utterance '");
}
