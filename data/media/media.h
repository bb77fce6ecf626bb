// Media decoding through FFmpeg (libavformat/libavcodec/libswresample/libswscale, 5.1 API): a clip's audio as
// 16 kHz mono float32 and its video as 8-bit grayscale frames with presentation times, for the audio and face
// front ends. One pass over the file decodes both streams.
//
// Every failure is per file: the functions return -1 with one line in err naming the file (missing file, not a
// media file, no audio / video stream, nothing decodable, absurd sizes, over the limits, stalled past the wall-clock
// deadline); they never exit. A packet the decoder rejects is skipped and counted; a stream fails only when
// nothing of it decodes.
//
// Built without FFmpeg (the Makefile's probe failed), media_decode and media_video_foreach return an error that
// says so and media_have_ffmpeg() is 0.
#ifndef AVT_MEDIA_H
#define AVT_MEDIA_H

#include <stddef.h>
#include <stdint.h>

#include "base/common.h"

#define MEDIA_RATE 16000   // output audio sample rate
#define MEDIA_MAX_DIM 8192 // a source frame wider or taller than this is rejected

// Zero fields (or lim == NULL) take the defaults.
typedef struct {
    double max_seconds;      // reject media longer than this (default 3600)
    double max_wall_seconds; // wall-clock deadline for one call, enforced through FFmpeg's interrupt callback (120)
    int max_side;            // larger frames are downscaled, aspect kept, so the longer side is <= this (640)
    size_t max_video_bytes;  // media_decode only: cap on the stored frames (1 GiB); longer: media_video_foreach
} MediaLimits;

typedef struct {
    float *samples;   // (n,) mono, 16 kHz, in [-1, 1]
    size_t n;
    int rate;         // MEDIA_RATE
    int src_rate;     // the source stream's sample rate and channel count, for reporting
    int src_channels;
    int skipped;      // packets the audio decoder rejected
} MediaAudio;

typedef struct {
    uint8_t *frames;  // (n_frames, h, w) grayscale
    double *t;        // (n_frames,) presentation time in seconds
    size_t n_frames;
    int w, h;         // stored frame size (the source size downscaled to max_side)
    int src_w, src_h; // the source's frame size
    double fps;       // av_guess_frame_rate; 0 when FFmpeg cannot tell
    int skipped;      // packets the video decoder rejected
} MediaVideo;

// Decode path: audio into a (when not NULL) and video frames into v (when not NULL); at least one must be wanted.
// Returns 0, or -1 with err set and *a, *v empty. Free with media_free.
int media_decode(MediaAudio *a, MediaVideo *v, const char *path, const MediaLimits *lim, AvtErr *err);

// Streaming video: fn gets each decoded frame in presentation order, grayscale (h, w) with row stride w, valid
// only during the call, and its time t in seconds. Every frame of a file has the same (w, h). fn returns 0 to go
// on, > 0 to stop early (the call then returns 0), < 0 to abort (the call returns -1 with err naming the file).
typedef int (*MediaFrameFn)(void *ctx, const uint8_t *gray /* (h, w) */, int w, int h, double t);
int media_video_foreach(const char *path, const MediaLimits *lim, MediaFrameFn fn, void *ctx, AvtErr *err);

// Frees what media_decode stored and zeroes the structs; either may be NULL.
void media_free(MediaAudio *a, MediaVideo *v);

// 1 when this avt was built with FFmpeg.
int media_have_ffmpeg(void);

#endif
