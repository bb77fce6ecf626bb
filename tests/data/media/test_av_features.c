// avt features: real-media fixtures (tests/fixtures.sh: real speech and a real face, muxed by ffmpeg like CREMA-D
// and VoxCeleb2 clips) -> log-mel statistics and face descriptors at 5 steps per second, and the bad files.
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "data/corpus/features.h"
#include "data/media/av_features.h"
#include "tests/testutil.h"

static const char *dir;

static void setup(void) {
    dir = test_tmpdir();
    cr_assert_eq(test_run("bash tests/fixtures.sh %s/fx >/dev/null 2>&1", dir), 0, "tests/fixtures.sh failed");
}
TestSuite(av_features, .init = setup, .fini = test_tmpdir_remove, .timeout = 300);

static void expect_npy(const char *path, int64_t T, int64_t D) {
    float *x;
    int nd;
    int64_t sh[8];
    AvtErr err;
    cr_assert_eq(npy_read_f32(path, &x, &nd, sh, &err), 0, "%s", err.msg);
    cr_expect(nd == 2 && sh[0] == T && sh[1] == D, "%s: shape (%lld, %lld), want (%lld, %lld)", path,
              (long long)sh[0], (long long)(nd > 1 ? sh[1] : 0), (long long)T, (long long)D);
    free(x);
}

// Both 3 s clips give 15 steps of 200 ms, whatever their frame rate (30 fps FLV, 25 fps MP4), with the face
// found in (nearly) every step; --plot draws the file.
Test(av_features, clips_to_steps) {
    const char *clips[2] = {"1001_DFA_ANG_XX.flv", "vox2/dev/mp4/id00012/21Uxsk56VDQ/00001.mp4"};
    for (int i = 0; i < 2; i++) {
        cr_assert_eq(test_run("%s features %s/fx/%s --out %s/c%d --plot %s/c%d.png > %s/c%d.txt", test_avt_bin(), dir,
                              clips[i], dir, i, dir, i, dir, i),
                     0, "avt features %s failed", clips[i]);
        char p[700];
        snprintf(p, sizeof p, "%s/c%d.audio.npy", dir, i);
        expect_npy(p, 15, 512);
        snprintf(p, sizeof p, "%s/c%d.video.npy", dir, i);
        expect_npy(p, 15, 17);
        cr_expect_eq(test_run("grep -qE 'a face in 1[3-5] of 15 steps' %s/c%d.txt", dir, i), 0,
                     "%s: the face is not found in most steps", clips[i]);
        cr_expect_eq(test_run("test -s %s/c%d.png", dir, i), 0, "no plot");
    }
}

Test(av_features, bad_media_one_line) {
    static const char *cases[][2] = {
        {"bad/audio_only.m4a", "no video stream"}, {"bad/video_only.mp4", "no audio stream"},
        {"bad/empty.flv", "empty.flv"},           {"bad/not_media.mp4", "not_media.mp4"},
        {"missing.flv", "missing.flv"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char args[700];
        snprintf(args, sizeof args, "features %s/fx/%s", dir, cases[i][0]);
        test_expect_avt_error(args, cases[i][1]);
    }
    char args[700];
    snprintf(args, sizeof args, "features %s/fx/1001_DFA_ANG_XX.flv --cascade %s/none.xml", dir, dir);
    test_expect_avt_error(args, "none.xml");
}

// The streams of a truncated video and its complete WAV disagree in duration: refused with both durations, not cut
// to the one step they share (CREMA-D's 1076_MTI_NEU_XX). The same video with its own audio is the control.
Test(av_features, video_cut_short_refused) {
    Cascade c;
    AvtErr err;
    cr_assert_eq(cascade_load(&c, AV_CASCADE_DEFAULT, &err), 0, "%s", err.msg);
    char flv[600], wav[600];
    snprintf(flv, sizeof flv, "%s/fx/bad/1076_MTI_NEU_XX.flv", dir);
    snprintf(wav, sizeof wav, "%s/fx/bad/1076_MTI_NEU_XX.wav", dir);
    AvFeatures f;
    cr_assert_eq(av_features(&f, flv, wav, &c, NULL, &err), -1, "a 0.03 s video and 2.99 s of audio were accepted");
    cr_expect_not_null(strstr(err.msg, "1076_MTI_NEU_XX.flv: the audio lasts 2.99 s, the video 0.03 s"), "%s",
                       err.msg);
    cr_expect_null(f.audio.data);
    snprintf(flv, sizeof flv, "%s/fx/1001_DFA_ANG_XX.flv", dir);
    snprintf(wav, sizeof wav, "%s/fx/1001_DFA_ANG_XX.wav", dir);
    cr_assert_eq(av_features(&f, flv, wav, &c, NULL, &err), 0, "%s", err.msg);
    cr_expect_eq(f.audio.T, 15);
    av_features_free(&f);
    cascade_free(&c);
}

// The tolerance: max(0.5 s, 10 % of the longer stream), either stream the longer; a frame or two always passes.
Test(av_durations, tolerance) {
    const double ok[][2] = {{3.0, 2.9667 + 1 / 30.0}, {2.99, 3.0}, {3.0, 2.92}, {4.0, 3.5}, {3.5, 4.0},
                            {10.0, 9.1},           {9.1, 10.0},  {20.0, 18.1}, {0.3, 0.0}, {0.0, 0.0}};
    const double bad[][2] = {{4.0, 3.49}, {3.49, 4.0}, {10.0, 8.9}, {20.0, 17.9}, {4.0, 0.03}, {0.03, 4.0}, {1.0, 0.0}};
    AvtErr err;
    for (size_t i = 0; i < sizeof ok / sizeof *ok; i++)
        cr_expect_eq(av_check_durations(ok[i][0], ok[i][1], "x.mp4", &err), 0, "audio %g s, video %g s refused: %s",
                     ok[i][0], ok[i][1], err.msg);
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        cr_expect_eq(av_check_durations(bad[i][0], bad[i][1], "x.mp4", &err), -1, "audio %g s, video %g s accepted",
                     bad[i][0], bad[i][1]);
    cr_assert_eq(av_check_durations(4.0, 0.03, "clip.flv", &err), -1);
    cr_expect_str_eq(err.msg, "clip.flv: the audio lasts 4.00 s, the video 0.03 s: more apart than max(0.5 s, 10 %) "
                              "allows (a truncated or damaged stream)");
}

// Through the feature cache: computed once, then read back bit for bit; a damaged entry is recomputed, and a file
// whose streams disagree is never cached.
Test(av_features, cached) {
    Cascade c;
    AvtErr err;
    cr_assert_eq(cascade_load(&c, AV_CASCADE_DEFAULT, &err), 0, "%s", err.msg);
    char cache[600], flv[600], wav[600];
    snprintf(cache, sizeof cache, "%s/cache", dir);
    snprintf(flv, sizeof flv, "%s/fx/1001_DFA_ANG_XX.flv", dir);
    snprintf(wav, sizeof wav, "%s/fx/1001_DFA_ANG_XX.wav", dir);
    cr_assert_eq(test_run("mkdir -p %s", cache), 0);
    Features a[3], v[3];
    int cached[3];
    for (int k = 0; k < 3; k++) {
        if (k == 2) cr_assert_eq(test_run("truncate -s 100 %s/*.feat", cache), 0);
        cr_assert_eq(av_features_cached(&a[k], &v[k], &cached[k], cache, "a/1001.flv", flv, wav, &c, &err), 0, "%s",
                     err.msg);
        cr_assert(a[k].T == 15 && v[k].T == 15 && a[k].D == 512 && v[k].D == 17);
        cr_expect_eq(memcmp(a[k].data, a[0].data, 15 * 512 * sizeof(float)), 0, "audio %d differs", k);
        cr_expect_eq(memcmp(v[k].data, v[0].data, 15 * 17 * sizeof(float)), 0, "video %d differs", k);
    }
    cr_expect(cached[0] == 0 && cached[1] == 1 && cached[2] == 0, "cached %d %d %d", cached[0], cached[1], cached[2]);
    for (int k = 0; k < 3; k++) {
        features_free(&a[k]);
        features_free(&v[k]);
    }
    snprintf(flv, sizeof flv, "%s/fx/bad/1076_MTI_NEU_XX.flv", dir);
    snprintf(wav, sizeof wav, "%s/fx/bad/1076_MTI_NEU_XX.wav", dir);
    cr_expect_eq(av_features_cached(&a[0], &v[0], &cached[0], cache, "b/1076.flv", flv, wav, &c, &err), -1);
    cr_expect(!a[0].data && !v[0].data);
    cr_expect_eq(test_run("test $(ls %s | wc -l) -eq 1", cache), 0, "a file whose streams disagree was cached");
    cascade_free(&c);
}
