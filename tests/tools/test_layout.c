// avt prepare --layout: small CREMA-D, VoxCeleb2, RAVDESS and MSP-IMPROV trees built from the real-media fixtures
// (tests/fixtures.sh) -> a store, labels.csv, the skipped list, the feature cache a rerun reuses; then pretraining
// on each store and embedding each store's utterances with the trained weights.
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "data/corpus/features.h"
#include "data/media/media.h"
#include "data/corpus/store.h"
#include "tests/testutil.h"

static const char *dir;
static int fixtures_rc = -1; // tests/fixtures.sh's exit status; -1: built without FFmpeg

// The trees: copies of the 3 s fixture clips under each dataset's names (one FLV, not two, per CREMA-D actor, as
// its clips are the slow ones), the defective CREMA-D clip among them, and files each layout passes over.
static void setup(void) {
    dir = test_tmpdir();
    if (!media_have_ffmpeg()) return;
    fixtures_rc = test_run("bash tests/fixtures.sh %s/fx >/dev/null", dir);
    if (fixtures_rc != 0) return;
    const char *vox = "fx/vox2/dev/mp4/id00012/21Uxsk56VDQ/00001.mp4";
    cr_assert_eq(test_run("cd %s && mkdir -p cd/VideoFlash cd/AudioWAV vx/dev/mp4/id00012/21Uxsk56VDQ "
                          "vx/test/mp4/id00020/x-Y_z vx/dev/aac/id00012 rv/Actor_01 rv/Actor_02 empty && "
                          "cp fx/1001_DFA_ANG_XX.flv cd/VideoFlash/ && cp fx/1001_DFA_ANG_XX.flv "
                          "cd/VideoFlash/1002_IEO_HAP_HI.flv && cp fx/bad/1076_MTI_SAD_XX.flv cd/VideoFlash/ && "
                          "cp fx/1001_DFA_ANG_XX.wav cd/AudioWAV/ && "
                          "cp %s vx/dev/mp4/id00012/21Uxsk56VDQ/00001.mp4 && "
                          "cp %s vx/dev/mp4/id00012/21Uxsk56VDQ/00002.mp4 && "
                          "cp %s vx/test/mp4/id00020/x-Y_z/00001.mp4 && "
                          "cp fx/bad/audio_only.m4a vx/dev/aac/id00012/00001.m4a && "
                          "cp %s rv/Actor_01/01-01-03-01-01-01-01.mp4 && cp %s rv/Actor_01/02-01-03-01-01-01-01.mp4 && "
                          "cp %s rv/Actor_02/01-02-08-02-02-02-02.mp4 && touch rv/Actor_01/03-01-03-01-01-01-01.wav",
                          dir, vox, vox, vox, vox, vox, vox),
                 0, "building the dataset trees failed");
}
TestSuite(layout, .init = setup, .fini = test_tmpdir_remove, .timeout = 300);

#define NEED_FIXTURES()                                                                                            \
    do {                                                                                                           \
        if (fixtures_rc == -1) cr_skip_test("built without FFmpeg");                                              \
        if (fixtures_rc == 2) cr_skip_test("tests/fixtures.sh: a program or package is missing (see stderr)");   \
        cr_assert_eq(fixtures_rc, 0, "tests/fixtures.sh failed");                                                 \
    } while (0)

// `avt prepare --layout NAME ROOT --out OUT`, ROOT and OUT in the test directory, stderr to OUT.err; its exit
// status.
static int prepare(const char *layout, const char *root, const char *out) {
    return test_run("%s prepare --layout %s %s/%s --out %s/%s 2>%s/%s.err", test_avt_bin(), layout, dir, root, dir,
                    out, dir, out);
}

static void expect_file(const char *name, const char *want) {
    char got[4096] = "";
    FILE *f = fopen(test_path(name), "r");
    cr_assert(f, "%s missing", name);
    size_t n = fread(got, 1, sizeof got - 1, f);
    got[n] = '\0';
    fclose(f);
    cr_expect_str_eq(got, want, "%s", name);
}

// The store in the test directory holds exactly these ids (in order) and speakers.
static void expect_store(const char *name, int n, const char *const *ids, const char *const *speakers) {
    Store *s;
    AvtErr err;
    cr_assert_eq(store_open(&s, test_path(name), &err), 0, "%s", err.msg);
    cr_assert_eq(store_size(s), (size_t)n, "%s: %zu utterances, want %d", name, store_size(s), n);
    for (int i = 0; i < n; i++) {
        cr_expect_str_eq(store_id(s, (size_t)i), ids[i]);
        cr_expect_str_eq(store_speaker_name(s, store_speaker(s, (size_t)i)), speakers[i]);
        cr_expect_eq(store_len(s, (size_t)i), 15, "%s: 3 s give 15 steps", ids[i]);
    }
    cr_expect_eq(store_d_a(s), 512);
    cr_expect_eq(store_d_v(s), 17);
    store_close(s);
}

// `avt pretrain` trains on the store in the test directory (two updates), and `avt embed --data` embeds its n
// utterances with the weights it saved: one .npy per utterance and an index.csv row each.
static void expect_trains_and_embeds(const char *store, int n) {
    cr_assert_eq(test_run("A=$(realpath %s) && cd %s && $A pretrain --config tiny --data %s --out %s.run --batch 2 "
                          "--epochs 2 --val 0 --max-steps 2 >%s.pretrain.log 2>&1 || "
                          "{ tail -3 %s.pretrain.log >&2; false; }",
                          test_avt_bin(), dir, store, store, store, store),
                 0, "%s: pretraining on the prepared store failed", store);
    cr_assert_eq(test_run("A=$(realpath %s) && cd %s && "
                          "$A embed --weights $(ls -d %s.run/ckpt-*/ | tail -1)model.safetensors --data %s "
                          "--out %s.emb 2>%s.embed.log",
                          test_avt_bin(), dir, store, store, store, store),
                 0, "%s: avt embed --data failed", store);
    cr_expect_eq(test_run("test $(ls %s/%s.emb/*.npy | wc -l) -eq %d", dir, store, n), 0, "%s: not %d embeddings",
                 store, n);
    cr_expect_eq(test_run("test $(wc -l < %s/%s.emb/index.csv) -eq %d", dir, store, n + 1), 0);
    cr_expect_eq(test_run("grep -q 'embedded %d of %d utterances' %s/%s.embed.log", n, n, dir, store), 0);
}

// CREMA-D: the defective clip is skipped with its reason (exit 2); the labels come from the names. A rerun after
// an interruption (no manifest) takes every finished file from the cache and writes the same store.
Test(layout, cremad_skips_defect_and_resumes) {
    NEED_FIXTURES();
    cr_assert_eq(prepare("cremad", "cd", "s"), 2, "exit 2 when a file was skipped");
    const char *ids[] = {"VideoFlash/1001_DFA_ANG_XX", "VideoFlash/1002_IEO_HAP_HI"}, *spk[] = {"1001", "1002"};
    expect_store("s", 2, ids, spk);
    expect_file("s/labels.csv", "id,speaker,sentence,emotion,level\n"
                                "VideoFlash/1001_DFA_ANG_XX,1001,DFA,ANG,XX\n"
                                "VideoFlash/1002_IEO_HAP_HI,1002,IEO,HAP,HI\n");
    cr_expect_eq(test_run("grep -q '1076_MTI_SAD_XX.flv: no audio stream' %s/s/skipped.txt", dir), 0);
    cr_expect_eq(test_run("test $(wc -l < %s/s/skipped.txt) -eq 1", dir), 0);
    cr_expect_eq(test_run("grep -q 'skipped: .*1076_MTI_SAD_XX.flv: no audio stream' %s/s.err", dir), 0);
    cr_expect_eq(test_run("grep -q 'skipped 1 of 3 files' %s/s.err", dir), 0);
    cr_expect_eq(test_run("grep -q '0 from cache, 2 computed' %s/s.err", dir), 0);
    // 1001 and 1002 are the same FLV, but 1001 has its 16 kHz original in AudioWAV/: same video, other audio.
    {
        Store *st;
        AvtErr err;
        cr_assert_eq(store_open(&st, test_path("s"), &err), 0, "%s", err.msg);
        int T = store_len(st, 0);
        cr_assert_eq(T, store_len(st, 1));
        float *a0 = malloc((size_t)T * 512 * sizeof(float)), *a1 = malloc((size_t)T * 512 * sizeof(float));
        float *v0 = malloc((size_t)T * 17 * sizeof(float)), *v1 = malloc((size_t)T * 17 * sizeof(float));
        cr_assert_eq(store_read(st, 0, 0, T, a0, v0, &err), 0, "%s", err.msg);
        cr_assert_eq(store_read(st, 1, 0, T, a1, v1, &err), 0, "%s", err.msg);
        cr_expect(memcmp(v0, v1, (size_t)T * 17 * sizeof(float)) == 0, "the same video gave other face features");
        cr_expect(memcmp(a0, a1, (size_t)T * 512 * sizeof(float)) != 0, "AudioWAV/1001_DFA_ANG_XX.wav was not used");
        free(a0), free(a1), free(v0), free(v1);
        store_close(st);
    }

    cr_assert_eq(test_run("cd %s && cp s/shard-00000.avts first.avts && rm s/manifest.json s/labels.csv", dir), 0);
    cr_assert_eq(prepare("cremad", "cd", "s"), 2);
    cr_expect_eq(test_run("grep -q '2 from cache, 0 computed' %s/s.err", dir), 0, "the rerun recomputed files");
    cr_expect_eq(test_run("cmp -s %s/first.avts %s/s/shard-00000.avts", dir, dir), 0, "the rerun's store differs");
    expect_store("s", 2, ids, spk);
    // A changed file misses the cache.
    cr_assert_eq(test_run("touch -d '2001-01-01' %s/cd/VideoFlash/1002_IEO_HAP_HI.flv", dir), 0);
    cr_assert_eq(prepare("cremad", "cd", "s"), 2);
    cr_expect_eq(test_run("grep -q '1 from cache, 1 computed' %s/s.err", dir), 0);
    expect_trains_and_embeds("s", 2);
}

// CREMA-D's 1076_MTI_NEU_XX: a video cut short (0.03 s) beside a complete WAV (2.99 s) is skipped with both
// durations, not stored as a 1-step utterance; it leaves no cache entry, and the good clip is stored as before.
Test(layout, cremad_video_cut_short_skipped) {
    NEED_FIXTURES();
    cr_assert_eq(test_run("cd %s && mkdir -p ct/VideoFlash ct/AudioWAV && cp fx/1001_DFA_ANG_XX.flv ct/VideoFlash/ && "
                          "cp fx/1001_DFA_ANG_XX.wav ct/AudioWAV/ && cp fx/bad/1076_MTI_NEU_XX.flv ct/VideoFlash/ && "
                          "cp fx/bad/1076_MTI_NEU_XX.wav ct/AudioWAV/",
                          dir),
                 0);
    cr_assert_eq(prepare("cremad", "ct", "s"), 2, "exit 2 when a file was skipped");
    const char *ids[] = {"VideoFlash/1001_DFA_ANG_XX"}, *spk[] = {"1001"};
    expect_store("s", 1, ids, spk);
    expect_file("s/labels.csv", "id,speaker,sentence,emotion,level\n"
                                "VideoFlash/1001_DFA_ANG_XX,1001,DFA,ANG,XX\n");
    cr_expect_eq(test_run("grep -q 'ct/VideoFlash/1076_MTI_NEU_XX.flv: the audio lasts 2.99 s, the video 0.03 s' "
                          "%s/s/skipped.txt && test $(wc -l < %s/s/skipped.txt) -eq 1",
                          dir, dir),
                 0, "skipped.txt does not give the reason");
    cr_expect_eq(test_run("grep -q 'skipped 1 of 2 files' %s/s.err", dir), 0);
    cr_expect_eq(test_run("test $(ls %s/s/.cache | wc -l) -eq 1", dir), 0, "the skipped file was cached");
}

// MSP-IMPROV: AVI clips in any folder layout, the WAV beside one of them, labels from the name and Evaluation.txt
// (its aggregate line; rater lines and clips it does not list are handled).
Test(layout, mspimprov_labels) {
    NEED_FIXTURES();
    cr_assert_eq(test_run("cd %s && mkdir -p mi/session1/S01A/P mi/Video/session2 && "
                          "ffmpeg -v error -i fx/vox2/dev/mp4/id00012/21Uxsk56VDQ/00001.mp4 -c copy "
                          "mi/session1/S01A/P/MSP-IMPROV-S01A-F01-P-FM01.avi && "
                          "cp fx/1001_DFA_ANG_XX.wav mi/session1/S01A/P/MSP-IMPROV-S01A-F01-P-FM01.wav && "
                          "cp mi/session1/S01A/P/MSP-IMPROV-S01A-F01-P-FM01.avi "
                          "mi/Video/session2/MSP-IMPROV-S20H-M02-R-MM02.avi && "
                          "printf 'UTD-IMPROV-S01A-F01-P-FM01.avi; A; A:2.333333; V:3.333333; D:3.0 ; N:3.666667;\n"
                          "rater01; Angry; tense; A:2; V:3; D:3; N:4;\n' > mi/Evaluation.txt",
                          dir),
                 0, "building the MSP-IMPROV tree failed");
    cr_assert_eq(prepare("mspimprov", "mi", "s"), 0);
    const char *ids[] = {"Video/session2/MSP-IMPROV-S20H-M02-R-MM02", "session1/S01A/P/MSP-IMPROV-S01A-F01-P-FM01"},
               *spk[] = {"M02", "F01"};
    expect_store("s", 2, ids, spk);
    expect_file("s/labels.csv",
                "id,speaker,session,sentence,emotion,condition,turn,category,arousal,valence,dominance\n"
                "Video/session2/MSP-IMPROV-S20H-M02-R-MM02,M02,02,20,H,R,MM02,,,,\n"
                "session1/S01A/P/MSP-IMPROV-S01A-F01-P-FM01,F01,01,01,A,P,FM01,A,2.33333,3.33333,3\n");
    expect_trains_and_embeds("s", 2);
}

// VoxCeleb2: two speakers over both splits (the audio-only aac tree passed over), then pretraining on the store.
Test(layout, voxceleb2_to_pretrain) {
    NEED_FIXTURES();
    cr_assert_eq(prepare("voxceleb2", "vx", "s"), 0);
    const char *ids[] = {"dev/mp4/id00012/21Uxsk56VDQ/00001", "dev/mp4/id00012/21Uxsk56VDQ/00002",
                         "test/mp4/id00020/x-Y_z/00001"},
               *spk[] = {"id00012", "id00012", "id00020"};
    expect_store("s", 3, ids, spk);
    expect_file("s/labels.csv", "id,speaker,split,video\n"
                                "dev/mp4/id00012/21Uxsk56VDQ/00001,id00012,dev,21Uxsk56VDQ\n"
                                "dev/mp4/id00012/21Uxsk56VDQ/00002,id00012,dev,21Uxsk56VDQ\n"
                                "test/mp4/id00020/x-Y_z/00001,id00020,test,x-Y_z\n");
    cr_expect_eq(test_run("test ! -e %s/s/skipped.txt", dir), 0);
    // A damaged cache entry is recomputed, to the same store.
    cr_assert_eq(
        test_run("cd %s && cp s/shard-00000.avts first.avts && truncate -s 100 $(ls s/.cache/*.feat | head -1)", dir),
        0);
    cr_assert_eq(prepare("voxceleb2", "vx", "s"), 0);
    cr_expect_eq(test_run("grep -q '2 from cache, 1 computed' %s/s.err", dir), 0);
    cr_expect_eq(test_run("cmp -s %s/first.avts %s/s/shard-00000.avts", dir, dir), 0, "the rerun's store differs");
    expect_trains_and_embeds("s", 3);
    // From an f32 store, an utterance's embedding is the one `avt embed` gives for `avt features` of its file.
    cr_assert_eq(test_run("A=$(realpath %s) && cd %s && W=$(ls -d s.run/ckpt-*/ | tail -1)model.safetensors && "
                          "$A prepare --layout voxceleb2 vx --out s32 --dtype f32 2>/dev/null && "
                          "$A features vx/dev/mp4/id00012/21Uxsk56VDQ/00002.mp4 --out one >/dev/null && "
                          "$A embed --weights $W --audio one.audio.npy --video one.video.npy --out one.npy && "
                          "$A embed --weights $W --data s32 --out e32 2>/dev/null",
                          test_avt_bin(), dir),
                 0);
    float *x, *y;
    int nd, nd2;
    int64_t sh[8], sh2[8];
    AvtErr err;
    cr_assert_eq(npy_read_f32(test_path("one.npy"), &x, &nd, sh, &err), 0, "%s", err.msg);
    cr_assert_eq(npy_read_f32(test_path("e32/dev_mp4_id00012_21Uxsk56VDQ_00002.npy"), &y, &nd2, sh2, &err), 0, "%s",
                 err.msg);
    cr_assert(nd == 1 && nd2 == 1 && sh[0] == sh2[0] && sh[0] > 0);
    for (int64_t i = 0; i < sh[0]; i++)
        cr_expect_float_eq(x[i], y[i], 1e-5f * (1.f + fabsf(x[i])), "h_av[%lld]: %g from the file, %g from the store",
                           (long long)i, x[i], y[i]);
    free(x);
    free(y);
}

// RAVDESS: full-AV files only (video-only and audio-only ones passed over), labels decoded from the codes.
Test(layout, ravdess_labels) {
    NEED_FIXTURES();
    cr_assert_eq(prepare("ravdess", "rv", "s"), 0);
    const char *ids[] = {"Actor_01/01-01-03-01-01-01-01", "Actor_02/01-02-08-02-02-02-02"},
               *spk[] = {"Actor_01", "Actor_02"};
    expect_store("s", 2, ids, spk);
    expect_file("s/labels.csv", "id,speaker,channel,emotion,intensity,statement,repetition\n"
                                "Actor_01/01-01-03-01-01-01-01,Actor_01,speech,happy,normal,1,1\n"
                                "Actor_02/01-02-08-02-02-02-02,Actor_02,song,surprised,strong,2,2\n");
    expect_trains_and_embeds("s", 2);
}

Test(layout, bad_input_one_line) {
    NEED_FIXTURES();
    char args[700];
    snprintf(args, sizeof args, "prepare --layout cremad %s/missing --out %s/s", dir, dir);
    test_expect_avt_error(args, "missing: cannot open");
    snprintf(args, sizeof args, "prepare --layout mystery %s/cd --out %s/s", dir, dir);
    test_expect_avt_error(args, "'mystery' is not voxceleb2, cremad, ravdess or mspimprov");
    snprintf(args, sizeof args, "prepare --layout voxceleb2 %s/empty --out %s/s", dir, dir);
    test_expect_avt_error(args, "no voxceleb2 files");
    snprintf(args, sizeof args, "prepare --layout ravdess %s/cd --out %s/s", dir, dir);
    test_expect_avt_error(args, "no ravdess files");
    snprintf(args, sizeof args, "prepare --layout cremad %s/cd --from-csv x.csv --out %s/s", dir, dir);
    test_expect_avt_error(args, "--from-csv or --layout, not both");
    // Every file skipped: the reason, then exit 1 and no store.
    cr_assert_eq(test_run("mkdir -p %s/bad/VideoFlash && cp %s/fx/bad/1076_MTI_SAD_XX.flv %s/bad/VideoFlash/", dir,
                          dir, dir),
                 0);
    cr_expect_eq(prepare("cremad", "bad", "s"), 1);
    cr_expect_eq(test_run("tail -n 1 %s/s.err | grep -q 'every file was skipped'", dir), 0);
    cr_expect_eq(test_run("test ! -e %s/s/manifest.json", dir), 0);
}
