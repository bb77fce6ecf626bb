// The paper's feature files, and .npy arrays (data/corpus/npy.h) as features.
// Audio: headerless CSV, one row per 200 ms step, D columns (512 for TRILL), rows holding a NaN dropped.
// Video: OpenFace 2.x FeatureExtraction CSV with header: keep every 6th data row (rows 0, 6, 12, ...), then the
//        17 columns [-35:-18] (AU01_r ... AU45_r), then drop rows holding a NaN.
// Either may instead be a .npy float32 (T, D) array (C order), used as is (no subsampling; NaN rows dropped).
#ifndef AVT_FEATURES_H
#define AVT_FEATURES_H

#include "base/common.h"
#include "data/corpus/npy.h"

#define OPENFACE_AU_DIM 17

typedef struct {
    float *data; // (T, D), owned
    int T, D;
} Features;

// expected_D: required column count for a CSV / width for a .npy. Errors name the file and, for text, the line.
int features_read_audio(Features *out, const char *path, int expected_D, AvtErr *err);
int features_read_video(Features *out, const char *path, int expected_D, AvtErr *err);
// One utterance: both files read, then cut to their common length; no common step left is an error naming both.
int features_read_pair(Features *a, Features *v, const char *audio, const char *video, int d_a, int d_v,
                       AvtErr *err);
// Cut both streams to their common length (the first min(Ta, Tv) steps).
void features_align(Features *a, Features *v);
void features_free(Features *f);

#endif
