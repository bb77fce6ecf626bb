// From a media file to the model's inputs: the audio as pooled log-mel statistics (512 per 200 ms step,
// data/media/fbank.h) and the video as the face descriptor (17 per step, data/media/face.h), both at 5 steps per second from
// time 0, cut to their common number of steps. These stand in for the paper's TRILL and OpenFace features
// (model-spec §1), so the model's configs apply unchanged.
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

// The features of media file path, its audio taken from audio_path instead when that is not NULL (a dataset's
// separate original recording, e.g. CREMA-D's 16 kHz AudioWAV next to its FLV with MP3 audio). 0, or -1 with err
// naming the file (no audio or video stream, nothing decodable, too short for one step, ...).
int av_features(AvFeatures *out, const char *path, const char *audio_path, const Cascade *face_cascade,
                const MediaLimits *lim, AvtErr *err);
void av_features_free(AvFeatures *f);

#endif
