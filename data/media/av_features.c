#include "data/media/av_features.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "data/corpus/feature_cache.h"
#include "data/media/face.h"
#include "data/media/fbank.h"

// The detector is the cost (~93 % of a file's time when it runs on every frame), and a step samples one frame per
// 200 ms: so detect about once per step (every round(0.2 s / frame interval)-th frame, the tracker holding the box in
// between) and skip faces smaller than a fifth of the frame's height, too small to read an expression from.
#define AV_MIN_FACE_FRACTION 5

typedef struct {
    FaceTrack *track;
    int frames;
    double t0, last; // the first and last frame's time
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
    f->last = t;
    f->frames++;
    return face_track_push(f->track, gray, w, h, t);
}

int av_check_durations(double audio_seconds, double video_seconds, const char *path, AvtErr *err) {
    double longer = fmax(audio_seconds, video_seconds);
    if (fabs(audio_seconds - video_seconds) <= fmax(AV_SKEW_MIN_SECONDS, AV_SKEW_FRACTION * longer)) return 0;
    return avt_err_set(err, "%s: the audio lasts %.2f s, the video %.2f s: more apart than max(%.1f s, %.0f %%) "
                       "allows (a truncated or damaged stream)", path, audio_seconds, video_seconds,
                       AV_SKEW_MIN_SECONDS, 100 * AV_SKEW_FRACTION);
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
    FrameFeed feed = {&track, 0, 0.0, 0.0};
    int rc = media_video_foreach(path, lim, push_frame, &feed, err);
    if (rc == 0) { // the video lasts until its last frame ends, a mean frame interval after that frame's time
        double frame = feed.frames > 1 ? (feed.last - feed.t0) / (feed.frames - 1) : 0.0;
        rc = av_check_durations(out->seconds, feed.last + frame, path, err);
    }
    if (rc) {
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

int av_features_cached(Features *audio, Features *video, int *cached, const char *cache_dir, const char *rel,
                       const char *path, const char *audio_path, const Cascade *face_cascade, AvtErr *err) {
    *cached = 0;
    char *entry;
    if (feature_cache_entry(&entry, cache_dir, rel, path, audio_path, err)) return -1;
    AvtErr miss; // a missing or damaged entry is recomputed
    int rc = 0;
    if (feature_cache_read(entry, rel, FBANK_STEP_DIM, FACE_D, audio, video, &miss) == 0) *cached = 1;
    else {
        AvFeatures f;
        rc = av_features(&f, path, audio_path, face_cascade, NULL, err);
        if (rc == 0) {
            *audio = f.audio; // the features move to the caller
            *video = f.video;
            f.audio = f.video = (Features){0};
            av_features_free(&f);
            rc = feature_cache_write(entry, rel, audio, video, err);
            if (rc) {
                features_free(audio);
                features_free(video);
            }
        }
    }
    free(entry);
    return rc;
}
