// From a media file to the model's inputs: the audio as pooled log-mel statistics (512 per 200 ms step,
// data/media/fbank.h) and the video as the face descriptor (17 per step, data/media/face.h), both at 5 steps per second from
// time 0, cut to their common number of steps. These stand in for the paper's TRILL and OpenFace features
// (docs/model.md §1), so the model's configs apply unchanged.
#ifndef AVT_AV_FEATURES_H
#define AVT_AV_FEATURES_H

#include <stdint.h>
#include "data/media/cascade.h"
#include "data/corpus/features.h"
#include "data/media/media.h"

#define AV_CASCADE_DEFAULT "/usr/share/opencv4/lbpcascades/lbpcascade_frontalface_improved.xml"

typedef struct {
    Features audio;     // (S, 512)
    Features video;     // (S, 17)
    uint8_t *present;   // (S) a face was tracked at the step
    uint8_t *crops;     // (S, 64, 64) the face crops (zeros without a face)
    float *fbank;       // (n_frames, 128) the log-mel frames the audio steps pool
    int n_frames;
    double seconds;     // audio duration
    int faces;          // steps with a face
} AvFeatures;

// The audio and video of one item must last about as long: a clip whose video was cut short (CREMA-D's
// 1076_MTI_NEU_XX, a truncated download) would otherwise become an utterance of the few steps both streams share,
// its labels standing for the whole clip. Real clips differ by a frame or two (33-80 ms at 25-30 fps) plus the
// audio codec's priming and padding (MP3 and AAC: up to ~0.1 s), and a separate original recording (CREMA-D's
// AudioWAV) by what its edit left; 0.5 s (2.5 steps) is far above all of these. On long recordings a mismatch can
// grow with the length (a drifting clock, variable-frame-rate timestamps), hence 10 % of the longer stream when
// that is more: such a file loses at most a tenth of its steps to the alignment, a truncated one far more.
#define AV_SKEW_MIN_SECONDS 0.5
#define AV_SKEW_FRACTION 0.1
// 0 when the durations (seconds) agree within max(AV_SKEW_MIN_SECONDS, AV_SKEW_FRACTION x the longer), else -1
// with err naming path and both durations.
int av_check_durations(double audio_seconds, double video_seconds, const char *path, AvtErr *err);

// The features of media file path, its audio taken from audio_path instead when that is not NULL (a dataset's
// separate original recording, e.g. CREMA-D's 16 kHz AudioWAV next to its FLV with MP3 audio). Video duration: the
// last frame's time plus the mean frame interval. 0, or -1 with err naming the file (no audio or video stream,
// nothing decodable, too short for one step, the streams' durations disagree (av_check_durations), ...).
int av_features(AvFeatures *out, const char *path, const char *audio_path, const Cascade *face_cascade,
                const MediaLimits *lim, AvtErr *err);
void av_features_free(AvFeatures *f);

// The audio and video features of a dataset's media file, as av_features gives them, through the feature cache in
// cache_dir (data/corpus/feature_cache.h; rel: the file's path relative to the dataset's root, its key): read from
// the file's entry when that is intact, else computed and cached. *cached: 1 when read from the cache.
int av_features_cached(Features *audio, Features *video, int *cached, const char *cache_dir, const char *rel,
                       const char *path, const char *audio_path, const Cascade *face_cascade, AvtErr *err);

#endif
