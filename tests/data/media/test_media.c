// Tests for data/media/media.c on real media built at test time by tests/fixtures.sh (face still + LibriVox speech muxed
// like CREMA-D and VoxCeleb2 clips): audio length and rate, bit-exact 16 kHz WAV against Python's wave module,
// frame counts, timestamps, frame rates and sizes, streaming, limits, and one clear error per damaged file.
#include <criterion/criterion.h>

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/media/media.h"
#include "tests/testutil.h"

static int fixtures_rc = -1; // tests/fixtures.sh's exit status; -1: built without FFmpeg
static void setup(void) {
    if (media_have_ffmpeg()) fixtures_rc = test_run("bash tests/fixtures.sh '%s'", test_tmpdir());
}
TestSuite(media, .init = setup, .fini = test_tmpdir_remove, .timeout = 120);

// Skipped without FFmpeg or without the programs and packages the fixtures come from (fixtures.sh exits 2);
// any other failure to build them fails the test.
#define NEED_FIXTURES() \
    do { \
        if (fixtures_rc == -1) cr_skip_test("built without FFmpeg"); \
        if (fixtures_rc == 2) { /* a skipped test does not run .fini */ \
            test_tmpdir_remove(); \
            cr_skip_test("tests/fixtures.sh: a program or package is missing (see stderr)"); \
        } \
        cr_assert_eq(fixtures_rc, 0, "tests/fixtures.sh failed"); \
    } while (0)

static const char *FLV = "1001_DFA_ANG_XX.flv";
static const char *WAV = "1001_DFA_ANG_XX.wav";
static const char *MP4 = "vox2/dev/mp4/id00012/21Uxsk56VDQ/00001.mp4";
static const double SPEECH_S = 47840 / 16000.0; // the source WAV: 47,840 samples

// MP3 adds the encoder delay (1105 samples) and pads to whole frames; without gapless info (none in FLV) the
// decoder keeps both, as the ffmpeg program does: about 40 ms on a 3 s clip, so MP3 sources get 60 ms more.
static const double MP3_SLACK_S = 0.06;

static void check_audio_len(const MediaAudio *a, double seconds, double slack_s) {
    cr_assert_eq(a->rate, 16000);
    double want = seconds * 16000, tol = 0.01 * want + slack_s * 16000;
    cr_assert(fabs((double)a->n - want) <= tol, "audio has %zu samples, want %.0f +- %.0f", a->n, want, tol);
    for (size_t i = 0; i < a->n; i++) cr_assert(a->samples[i] >= -1.0f && a->samples[i] <= 1.0f);
}

static void check_video(const MediaVideo *v, double seconds, double fps, int w, int h) {
    cr_assert_eq(v->fps, fps, "fps %g, want %g", v->fps, fps);
    cr_assert_eq(v->w, w);
    cr_assert_eq(v->h, h);
    double want = seconds * fps;
    cr_assert(fabs((double)v->n_frames - want) <= 2, "%zu frames, want %.1f +- 2", v->n_frames, want);
    cr_assert(v->t[0] >= 0 && v->t[0] < 0.05, "first frame at %g s", v->t[0]);
    for (size_t i = 1; i < v->n_frames; i++)
        cr_assert(v->t[i] > v->t[i - 1], "t[%zu] = %g after %g", i, v->t[i], v->t[i - 1]);
    // The zoom moves: the first and last frames differ.
    size_t fb = (size_t)w * (size_t)h;
    cr_assert(memcmp(v->frames, v->frames + (v->n_frames - 1) * fb, fb) != 0);
}

Test(media, wav_bit_exact) {
    NEED_FIXTURES();
    cr_assert_eq(test_run("%s -c 'import wave, sys, numpy as np; w = wave.open(sys.argv[1]); "
                          "x = np.frombuffer(w.readframes(w.getnframes()), dtype=\"<i2\"); "
                          "(x.astype(np.float32) / 32768).tofile(sys.argv[2])' '%s' '%s'",
                          test_python(), test_path(WAV), test_path("wav.f32")),
                 0);
    FILE *f = fopen(test_path("wav.f32"), "rb");
    cr_assert_not_null(f);
    float *ref = malloc(sizeof(float) * 100000);
    size_t n = fread(ref, sizeof(float), 100000, f);
    fclose(f);
    cr_assert_eq(n, 47840);
    MediaAudio a;
    AvtErr err;
    cr_assert_eq(media_decode(&a, NULL, test_path(WAV), NULL, &err), 0, "%s", err.msg);
    cr_assert_eq(a.src_rate, 16000);
    cr_assert_eq(a.src_channels, 1);
    cr_assert_eq(a.skipped, 0);
    cr_assert_eq(a.n, n);
    cr_assert(memcmp(a.samples, ref, n * sizeof(float)) == 0, "samples differ from int16 / 32768");
    free(ref);
    media_free(&a, NULL);
}

Test(media, crema_like_flv) {
    NEED_FIXTURES();
    MediaAudio a;
    MediaVideo v;
    AvtErr err;
    cr_assert_eq(media_decode(&a, &v, test_path(FLV), NULL, &err), 0, "%s", err.msg);
    cr_assert_eq(a.src_rate, 44100);
    cr_assert_eq(a.src_channels, 1);
    check_audio_len(&a, SPEECH_S, MP3_SLACK_S);
    check_video(&v, SPEECH_S, 30, 480, 360);
    cr_assert_eq(v.src_w, 480);
    cr_assert_eq(v.skipped, 0);
    media_free(&a, &v);
}

Test(media, vox_like_mp4) {
    NEED_FIXTURES();
    MediaAudio a;
    MediaVideo v;
    AvtErr err;
    cr_assert_eq(media_decode(&a, &v, test_path(MP4), NULL, &err), 0, "%s", err.msg);
    cr_assert_eq(a.src_rate, 16000);
    check_audio_len(&a, SPEECH_S, 0);
    check_video(&v, SPEECH_S, 25, 224, 224);
    // Video alone gives the same frames.
    MediaVideo v2;
    cr_assert_eq(media_decode(NULL, &v2, test_path(MP4), NULL, &err), 0, "%s", err.msg);
    cr_assert_eq(v2.n_frames, v.n_frames);
    cr_assert(memcmp(v2.frames, v.frames, v.n_frames * 224 * 224) == 0);
    cr_assert(memcmp(v2.t, v.t, v.n_frames * sizeof(double)) == 0);
    media_free(&a, &v);
    media_free(NULL, &v2);
}

// Every frame's gray image is the one the ffmpeg program makes (-pix_fmt gray, swscale: full-range luma), for the
// 8-bit YUV sources of both fixtures (flv1 yuv420p 480x360, H.264 yuv420p 224x224).
Test(media, gray_matches_ffmpeg) {
    NEED_FIXTURES();
    const char *files[2] = {FLV, MP4};
    for (int i = 0; i < 2; i++) {
        MediaVideo v;
        AvtErr err;
        cr_assert_eq(media_decode(NULL, &v, test_path(files[i]), NULL, &err), 0, "%s", err.msg);
        const char *raw = test_path(i ? "gray_mp4.raw" : "gray_flv.raw");
        cr_assert_eq(test_run("ffmpeg -nostdin -v error -y -i %s -fps_mode passthrough -f rawvideo -pix_fmt gray %s",
                              test_path(files[i]), raw), 0);
        size_t n = v.n_frames * (size_t)v.w * (size_t)v.h;
        uint8_t *ref = malloc(n + 1);
        FILE *f = fopen(raw, "rb");
        cr_assert_not_null(f);
        cr_assert_eq(fread(ref, 1, n + 1, f), n, "%s: ffmpeg gives another number of frames", files[i]);
        fclose(f);
        size_t diff = 0;
        for (size_t k = 0; k < n; k++) diff += ref[k] != v.frames[k];
        cr_expect_eq(diff, 0, "%s: %zu of %zu pixels differ from ffmpeg's gray", files[i], diff, n);
        free(ref);
        media_free(NULL, &v);
    }
}

Test(media, downscale) {
    NEED_FIXTURES();
    MediaVideo v;
    AvtErr err;
    MediaLimits lim = {.max_side = 240};
    cr_assert_eq(media_decode(NULL, &v, test_path(FLV), &lim, &err), 0, "%s", err.msg);
    cr_assert_eq(v.w, 240);
    cr_assert_eq(v.h, 180);
    cr_assert_eq(v.src_w, 480);
    cr_assert_eq(v.src_h, 360);
    media_free(NULL, &v);
}

typedef struct {
    int n, stop_at, fail, w, h; // stop (or with fail, abort) at frame stop_at
    double last_t;
} Count;

static int count_frame(void *ctx, const uint8_t *gray, int w, int h, double t) {
    Count *c = ctx;
    cr_assert_not_null(gray);
    if (c->n) cr_assert(t > c->last_t && w == c->w && h == c->h);
    c->w = w, c->h = h, c->last_t = t;
    c->n++;
    return c->n == c->stop_at ? (c->fail ? -1 : 1) : 0;
}

Test(media, foreach_streams_and_stops) {
    NEED_FIXTURES();
    AvtErr err;
    Count c = {0};
    cr_assert_eq(media_video_foreach(test_path(FLV), NULL, count_frame, &c, &err), 0, "%s", err.msg);
    cr_assert(abs(c.n - 90) <= 2, "%d frames", c.n);
    cr_assert_eq(c.w, 480);
    c = (Count){.stop_at = 5};
    cr_assert_eq(media_video_foreach(test_path(MP4), NULL, count_frame, &c, &err), 0, "%s", err.msg);
    cr_assert_eq(c.n, 5);
    // A negative return from the callback aborts with an error naming the file.
    c = (Count){.stop_at = 3, .fail = 1};
    cr_assert_eq(media_video_foreach(test_path(FLV), NULL, count_frame, &c, &err), -1);
    cr_assert_eq(c.n, 3);
    cr_assert(strstr(err.msg, test_path(FLV)) && strstr(err.msg, "frame callback"), "%s", err.msg);
}

// Expects media_decode(audio?, video?) on path to fail with a message naming the file and containing phrase.
static void expect_error(const char *path, int audio, int video, const MediaLimits *lim, const char *phrase) {
    MediaAudio a;
    MediaVideo v;
    AvtErr err;
    cr_assert_eq(media_decode(audio ? &a : NULL, video ? &v : NULL, path, lim, &err), -1, "%s decoded", path);
    cr_assert(strstr(err.msg, path) != NULL, "error does not name the file: %s", err.msg);
    cr_assert(strstr(err.msg, phrase) != NULL, "want '%s' in: %s", phrase, err.msg);
    cr_assert(strchr(err.msg, '\n') == NULL);
    if (audio) cr_assert(a.samples == NULL && a.n == 0);
    if (video) cr_assert(v.frames == NULL && v.t == NULL && v.n_frames == 0);
}

Test(media, damaged_files) {
    NEED_FIXTURES();
    expect_error(test_path("missing.flv"), 1, 1, NULL, "No such file");
    expect_error(test_path("bad/empty.flv"), 1, 0, NULL, "cannot open as media");
    expect_error(test_path("bad/not_media.mp4"), 1, 0, NULL, "cannot open as media");
    expect_error(test_path("bad/jpg_named.flv"), 1, 0, NULL, "no audio stream");
    expect_error(test_path("bad/mp3_named.mp4"), 0, 1, NULL, "no video stream");
    expect_error(test_path("bad/audio_only.m4a"), 1, 1, NULL, "no video stream");
    expect_error(test_path("bad/video_only.mp4"), 1, 0, NULL, "no audio stream");
    expect_error(test_path(FLV), 0, 0, NULL, "neither audio nor video");
    expect_error(test_path("bad/zero_duration.wav"), 1, 0, NULL, "no decodable audio");
    expect_error(test_path("bad/header_only.flv"), 1, 1, NULL, "cannot read the stream info");
    expect_error(test_path("bad/1076_MTI_SAD_XX.flv"), 1, 1, NULL, "no audio stream");
    // What does decode: content decides, not the name; each single stream of the one-stream files.
    MediaAudio a;
    MediaVideo v;
    AvtErr err;
    cr_assert_eq(media_decode(&a, NULL, test_path("bad/mp3_named.mp4"), NULL, &err), 0, "%s", err.msg);
    check_audio_len(&a, SPEECH_S, MP3_SLACK_S);
    media_free(&a, NULL);
    cr_assert_eq(media_decode(&a, NULL, test_path("bad/audio_only.m4a"), NULL, &err), 0, "%s", err.msg);
    check_audio_len(&a, SPEECH_S, 0);
    media_free(&a, NULL);
    cr_assert_eq(media_decode(NULL, &v, test_path("bad/video_only.mp4"), NULL, &err), 0, "%s", err.msg);
    cr_assert(abs((int)v.n_frames - 50) <= 2, "%zu frames", v.n_frames);
    media_free(NULL, &v);
    cr_assert_eq(media_decode(NULL, &v, test_path("bad/1076_MTI_SAD_XX.flv"), NULL, &err), 0, "%s", err.msg);
    cr_assert(abs((int)v.n_frames - 9) <= 1, "%zu frames", v.n_frames);
    media_free(NULL, &v);
    // A still image is a one-frame video to FFmpeg, whatever its name.
    cr_assert_eq(media_decode(NULL, &v, test_path("bad/jpg_named.flv"), NULL, &err), 0, "%s", err.msg);
    cr_assert_eq(v.n_frames, 1);
    cr_assert_eq(v.w, 512);
    media_free(NULL, &v);
}

// The first 30 % of the FLV's bytes: the demuxer stops at the cut and what came before decodes, a shorter clip.
// The first frames of the zoom are the large ones, so only a few fit (4 here, the ffmpeg program agrees).
Test(media, truncated_decodes_shorter) {
    NEED_FIXTURES();
    MediaAudio a;
    MediaVideo v;
    AvtErr err;
    cr_assert_eq(media_decode(&a, &v, test_path("bad/truncated.flv"), NULL, &err), 0, "%s", err.msg);
    cr_assert(v.n_frames >= 1 && v.n_frames < 30, "%zu frames", v.n_frames);
    for (size_t i = 1; i < v.n_frames; i++) cr_assert(v.t[i] > v.t[i - 1]);
    cr_assert(a.n > 0 && a.n < (size_t)(SPEECH_S * 16000));
    media_free(&a, &v);
}

Test(media, limits) {
    NEED_FIXTURES();
    expect_error(test_path(FLV), 1, 0, &(MediaLimits){.max_seconds = 1}, "max_seconds");
    expect_error(test_path(MP4), 0, 1, &(MediaLimits){.max_seconds = 1}, "max_seconds");
    expect_error(test_path(MP4), 0, 1, &(MediaLimits){.max_video_bytes = 10 * 224 * 224}, "media_video_foreach");
    expect_error(test_path(FLV), 1, 1, &(MediaLimits){.max_wall_seconds = 1e-9}, "max_wall_seconds");
}

// Built without FFmpeg, decoding fails with one line naming the file and saying how to get FFmpeg. (Its own suite:
// no fixtures needed.)
Test(media_build, without_ffmpeg_says_so) {
    if (media_have_ffmpeg()) cr_skip_test("built with FFmpeg");
    MediaAudio a;
    AvtErr err;
    cr_assert_eq(media_decode(&a, NULL, "clip.flv", NULL, &err), -1);
    cr_assert(strstr(err.msg, "clip.flv") && strstr(err.msg, "built without FFmpeg"), "%s", err.msg);
    cr_assert(a.samples == NULL && a.n == 0);
}
