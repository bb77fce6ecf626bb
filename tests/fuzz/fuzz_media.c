// libFuzzer harness for data/media/media.c: any byte string, written to a file (FFmpeg probes and demuxes it as a file,
// the way media_decode meets real clips), must give rc 0 with sane outputs or rc -1 with an error naming the file
// and empty outputs: never a crash, leak, hang past the wall-clock limit or undefined behaviour (ASan/UBSan
// watch our code; FFmpeg's own libraries are not instrumented).
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "data/media/media.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int touch_frame(void *ctx, const uint8_t *gray, int w, int h, double t) {
    unsigned *sum = ctx;
    if (w < 1 || h < 1 || w > 64 || h > 64 || t != t) abort(); // max_side = 64 below
    for (size_t i = 0; i < (size_t)w * (size_t)h; i++) *sum += gray[i];
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    // In the working directory (make fuzz-media runs in the build folder): libFuzzer's exit skips atexit cleanup.
    static char path[64];
    if (!path[0]) snprintf(path, sizeof path, "fuzz_media_input.%d", (int)getpid());
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, size, f) != size || fclose(f) != 0) abort();
    // Small limits keep each input fast: a few seconds of wall clock, 10 s of media, 64-pixel frames.
    MediaLimits lim = {.max_seconds = 10, .max_wall_seconds = 5, .max_side = 64, .max_video_bytes = 1 << 20};
    MediaAudio a;
    MediaVideo v;
    AvtErr err;
    if (media_decode(&a, &v, path, &lim, &err) == 0) {
        for (size_t i = 0; i < a.n; i++)
            if (!(a.samples[i] >= -1.0f && a.samples[i] <= 1.0f)) abort();
        if (v.n_frames == 0 || a.n == 0 || v.w > 64 || v.h > 64) abort();
        unsigned sum = 0;
        for (size_t i = 0; i < v.n_frames * (size_t)v.w * (size_t)v.h; i++) sum += v.frames[i];
        (void)sum;
    } else if (a.samples || v.frames || v.t || !strstr(err.msg, path)) {
        abort(); // failure must leave the outputs empty and name the file
    }
    media_free(&a, &v);
    // The streaming path on its own (video only, different code paths for missing audio).
    unsigned sum = 0;
    if (media_video_foreach(path, &lim, touch_frame, &sum, &err) != 0 && !strstr(err.msg, path)) abort();
    return 0;
}
