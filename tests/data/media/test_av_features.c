// avt features: real-media fixtures (tests/fixtures.sh: real speech and a real face, muxed by ffmpeg like CREMA-D
// and VoxCeleb2 clips) -> log-mel statistics and face descriptors at 5 steps per second, and the bad files.
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include "data/corpus/features.h"
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
