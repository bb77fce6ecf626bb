// Per-video face pipeline: cascade detection, a smoothed face track, square face crops and a 17-value face
// descriptor sampled at 5 steps per second (the model's d_v = 17 in place of OpenFace's 17 AU intensities).
//
// Frames are pushed in time order (grayscale, any size). Per frame:
//   detection   every `detect_every`-th frame (default 1 = every frame; frames in between keep the track as is and
//               count neither as hits nor misses). With a live track, the cascade first scans only the region
//               around it (a square of side 2 roi_half x size about the centre, default roi_half 1.2, enough for a
//               face that moved by the gate and grew by roi_scale) for faces between size / roi_scale and
//               size x roi_scale (default 1.3), at a step of 2 px on every pyramid level (OpenCV's rule scans
//               factors >= 2 at 1 px); only if nothing there lies within the gate does it scan the whole
//               frame. With no track it scans the whole frame. A face moving continuously thus costs a small scan
//               (~12x cheaper on a 480x360 frame) and a lost or jumping face one full scan, as before.
//   tracking    no track: start one from the largest detection. Track alive: take the detection whose centre is
//               nearest the track's centre; if it lies within `gate` x track size, the centre and size move toward it
//               by exponential smoothing (c += alpha (det - c), default alpha 0.5) and the miss count resets.
//               Otherwise the frame is a miss: the box is held (bridged) for up to `max_missed` consecutive missed
//               detections (default 5); one more miss ends the track (no face), and a detection outside the gate
//               then starts a new track at once.
//   crop        square of side size x (1 + 2 margin) (margin 0.15 = the box enlarged 1.3x) around the track centre,
//               bilinear-resampled to 64x64; pixels outside the frame replicate the nearest border pixel.
//   descriptor  (17,): values 0..15 = the 4x4 grid (row-major) of 16x16-cell means of the crop normalised to zero
//               mean and unit variance, mapped by clamp(2.5 + 1.25 m, 0, 5); value 16 = confidence
//               5 (1 - missed / (max_missed + 1)): 5 on a detected frame, decaying over bridged frames.
//               All values lie in [0, 5] like OpenFace AU intensities.
//   no face     descriptor all zeros, crop all zeros, present 0. A present step always has value 16 > 0, so only
//               no-face steps are all-zero, and the model's zero-step rule then treats them as padding (no positional
//               encoding): intended, a step without a face carries no visual information.
// Sampling: step k stands for time t_k = 0.2 k (k = 0, 1, ...) and takes the last frame with time <= t_k (1e-6 s
// tolerance); the steps are those with t_k <= the last frame's time, so 3.0 s at 25 fps (last frame 2.96 s) and at
// 30 fps (2.9667 s) both give 15 steps. Steps before the first frame's time take the first frame.
#ifndef AVT_FACE_H
#define AVT_FACE_H

#include <stdint.h>
#include "data/media/cascade.h"

#define FACE_D 17        // descriptor values per step
#define FACE_CROP 64     // crop side (px)
#define FACE_STEP_HZ 5   // steps per second

typedef struct {
    const Cascade *cascade;   // not owned
    CascadeParams params;     // detector parameters (min_size etc.); default cascade_default_params()
    int detect_every, max_missed;
    double alpha, gate, margin, roi_half, roi_scale;
    // track state
    int alive, missed, frames;
    double cx, cy, size;      // smoothed box: centre and side (px)
    int detected;             // the last frame had an accepted detection
    int n_scan_roi, n_scan_full; // cascade scans so far: around the track, whole frame
    uint8_t *roi;             // (roi_cap,) the region around the track, copied for the scan
    size_t roi_cap;
    // last frame's result, held until the next frame's time says which steps it covers
    double last_time;
    float last_desc[FACE_D];
    uint8_t last_present, last_crop[FACE_CROP * FACE_CROP];
    // steps so far
    int n_steps, cap, finished;
    float *desc;              // (cap, FACE_D)
    uint8_t *present;         // (cap,)
    uint8_t *crops;           // (cap, FACE_CROP, FACE_CROP)
} FaceTrack;

// Defaults as documented above; c must outlive the track.
void face_track_init(FaceTrack *t, const Cascade *c);
// Feeds one frame; 0, or -1 if time_s is not after the previous frame's or face_track_steps was called.
int face_track_push(FaceTrack *t, const uint8_t *gray /* (h, w) */, int w, int h, double time_s);
// Ends the video and returns S, the number of steps; the pointers (owned by the track) get
// desc (S, FACE_D), present (S,) 0/1 and crops (S, FACE_CROP, FACE_CROP). Any pointer may be NULL.
int face_track_steps(FaceTrack *t, const float **desc, const uint8_t **present, const uint8_t **crops);
void face_track_free(FaceTrack *t);

#endif
