// avt prepare --from-csv with a metadata header: ids and speakers from its columns, the further columns in
// DIR/labels.csv (stored utterances only, in store order), which labels_load reads back; the paper's headerless rows
// leave no labels.csv behind.
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "data/corpus/labels.h"
#include "data/corpus/npy.h"
#include "data/corpus/store.h"
#include "tests/testutil.h"

static const char *dir;

// name.npy in the test directory: (3, d) float32.
static void fx_npy(const char *name, int d) {
    float x[3 * 4];
    for (int k = 0; k < 3 * d; k++) x[k] = 0.25f * (float)k;
    const int64_t shape[2] = {3, d};
    AvtErr err;
    cr_assert_eq(npy_write_f32(test_path(name), x, 2, shape, &err), 0, "%s", err.msg);
}

// Feature pairs a1/v1 and a3/v3 (4 audio, 3 video values per step); no a2/v2.
static void setup(void) {
    dir = test_tmpdir();
    fx_npy("a1.npy", 4);
    fx_npy("v1.npy", 3);
    fx_npy("a3.npy", 4);
    fx_npy("v3.npy", 3);
}
TestSuite(prepare_labels, .init = setup, .fini = test_tmpdir_remove, .timeout = 60);

static void fx_text(const char *name, const char *text) {
    FILE *f = fopen(test_path(name), "w");
    cr_assert_not_null(f);
    fputs(text, f);
    cr_assert_eq(fclose(f), 0);
}

// `avt prepare --from-csv DIR/meta --out DIR/out` on the 4 + 3 feature files; its exit status.
static int prepare(const char *meta, const char *out) {
    return test_run("%s prepare --from-csv %s/%s --out %s/%s --dtype f32 --audio-dim 4 --video-dim 3 2>%s/%s.err",
                    test_avt_bin(), dir, meta, dir, out, dir, out);
}

Test(prepare_labels, header_columns_go_to_labels_csv) {
    fx_text("meta.csv", "id,audio,video,speaker,emotion,note\n"
                        "u1,a1.npy,v1.npy,s1,ANG,\"calm, then loud\"\n"
                        "u2,a2.npy,v2.npy,s1,HAP,x\n"
                        "u3,a3.npy,v3.npy,\"s,2\",SAD,\"say \"\"hi\"\"\"\n");
    cr_assert_eq(prepare("meta.csv", "out"), 2, "the row of missing files is skipped: exit 2");
    char *got = test_slurp(test_path("out/labels.csv"), NULL);
    cr_expect_str_eq(got, "id,speaker,emotion,note\n"
                          "u1,s1,ANG,\"calm, then loud\"\n"
                          "u3,\"s,2\",SAD,\"say \"\"hi\"\"\"\n");
    free(got);
    cr_expect_eq(test_run("grep -q 'meta.csv:3: .*a2.npy' %s/out/skipped.txt", dir), 0, "the skipped row is listed");

    Store *s;
    AvtErr err;
    cr_assert_eq(store_open(&s, test_path("out"), &err), 0, "%s", err.msg);
    cr_assert_eq(store_size(s), 2);
    cr_expect_str_eq(store_id(s, 1), "u3");
    cr_expect_str_eq(store_speaker_name(s, store_speaker(s, 1)), "s,2");
    Labels L;
    cr_assert_eq(labels_load(&L, test_path("out/labels.csv"), s, "emotion", "speaker", TARGET_AUTO, &err), 0, "%s",
                 err.msg);
    cr_assert_eq(L.n, 2);
    cr_expect_str_eq(L.names[L.label[1]], "SAD");
    cr_expect_str_eq(L.group[1], "s,2");
    labels_free(&L);
    store_close(s);
}

// A header of audio and video alone gives "id,speaker"; a rerun with the paper's headerless rows removes it.
Test(prepare_labels, headerless_rerun_removes_labels_csv) {
    fx_text("plain.csv", "audio,video,id,speaker\na1.npy,v1.npy,x,y\n");
    cr_assert_eq(prepare("plain.csv", "out"), 0);
    char *got = test_slurp(test_path("out/labels.csv"), NULL);
    cr_expect_str_eq(got, "id,speaker\nx,y\n");
    free(got);
    fx_text("paper.csv", "audio_csv,openface_csv,seq_len,masking_list\na1.npy,v1.npy,3,\"[0, 1]\"\n");
    cr_assert_eq(prepare("paper.csv", "out"), 0);
    cr_expect_neq(access(test_path("out/labels.csv"), F_OK), 0, "labels.csv outlived its store");
    cr_expect_eq(access(test_path("out/manifest.json"), F_OK), 0);
}

// A header naming audio without video stops avt prepare with one line.
Test(prepare_labels, header_lacking_video_is_one_error_line) {
    fx_text("bad.csv", "audio,vid,emotion\na1.npy,v1.npy,ANG\n");
    char args[1024];
    snprintf(args, sizeof args, "prepare --from-csv %s/bad.csv --out %s/out", dir, dir);
    test_expect_avt_error(args, "bad.csv:1: the header names 'audio' but no 'video' column");
}
