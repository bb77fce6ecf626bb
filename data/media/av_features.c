#include "data/media/av_features.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "data/media/face.h"
#include "data/media/fbank.h"

// The detector is the cost (~93 % of a file's time when it runs on every frame), and a step samples one frame per
// 200 ms: so detect about once per step (every round(0.2 s / frame interval)-th frame, the tracker holding the box in
// between) and skip faces smaller than a fifth of the frame's height, too small to read an expression from.
#define AV_MIN_FACE_FRACTION 5

typedef struct {
    FaceTrack *track;
    int frames;
    double t0;
} FrameFeed;

static int push_frame(void *ctx, const uint8_t *gray, int w, int h, double t) {
    FrameFeed *f = ctx;
    if (f->frames == 0) {
        f->t0 = t;
        f->track->params.min_size = h / AV_MIN_FACE_FRACTION;
    } else if (f->frames == 1 && t > f->t0) {
        long every = lround(0.2 / (t - f->t0));
        f->track->detect_every = every < 1 ? 1 : (int)every;
    }
    f->frames++;
    return face_track_push(f->track, gray, w, h, t);
}

int av_features(AvFeatures *out, const char *path, const char *audio_path, const Cascade *face_cascade,
                const MediaLimits *lim, AvtErr *err) {
    memset(out, 0, sizeof *out);
    MediaAudio a;
    if (!audio_path) audio_path = path;
    if (media_decode(&a, NULL, audio_path, lim, err)) return -1;
    int S_a = fbank_steps(a.n);
    out->seconds = (double)a.n / (double)a.rate;
    if (S_a == 0) {
        media_free(&a, NULL);
        return avt_err_set(err, "%s: %.2f s of audio, shorter than one 200 ms step", audio_path, out->seconds);
    }
    FbankPlan plan;
    fbank_plan_init(&plan, FBANK_POOL_MELS);
    out->n_frames = fbank_frames(a.n);
    out->fbank = malloc_check((size_t)out->n_frames * FBANK_POOL_MELS * sizeof(float));
    fbank_compute(out->fbank, &plan, a.samples, a.n);
    fbank_plan_free(&plan);
    media_free(&a, NULL);

    // A second pass streams the video frame by frame through the face tracker: a long file never sits in memory.
    FaceTrack track;
    face_track_init(&track, face_cascade);
    FrameFeed feed = {&track, 0, 0.0};
    if (media_video_foreach(path, lim, push_frame, &feed, err)) {
        face_track_free(&track);
        av_features_free(out);
        return -1;
    }
    const float *desc;
    const uint8_t *present, *crops;
    int S_v = face_track_steps(&track, &desc, &present, &crops);
    int S = S_a < S_v ? S_a : S_v;
    if (S == 0) {
        face_track_free(&track);
        av_features_free(out);
        return avt_err_set(err, "%s: no video frames for the first step", path);
    }
    out->audio = (Features){malloc_check((size_t)S_a * FBANK_STEP_DIM * sizeof(float)), S_a, FBANK_STEP_DIM};
    fbank_pool(out->audio.data, out->fbank, out->n_frames);
    out->audio.T = S;
    out->video = (Features){malloc_check((size_t)S * FACE_D * sizeof(float)), S, FACE_D};
    memcpy(out->video.data, desc, (size_t)S * FACE_D * sizeof(float));
    out->present = malloc_check((size_t)S);
    memcpy(out->present, present, (size_t)S);
    out->crops = malloc_check((size_t)S * FACE_CROP * FACE_CROP);
    memcpy(out->crops, crops, (size_t)S * FACE_CROP * FACE_CROP);
    for (int s = 0; s < S; s++) out->faces += present[s] != 0;
    face_track_free(&track);
    return 0;
}

void av_features_free(AvFeatures *f) {
    features_free(&f->audio);
    features_free(&f->video);
    free(f->present);
    free(f->crops);
    free(f->fbank);
    memset(f, 0, sizeof *f);
}
