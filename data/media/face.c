// Per-video face track, crops and descriptors (see face.h).
#include "data/media/face.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FACE_MAX_BOXES 64
#define TIME_TOL 1e-6

void face_track_init(FaceTrack *t, const Cascade *c) {
    memset(t, 0, sizeof *t);
    t->cascade = c;
    t->params = cascade_default_params();
    t->detect_every = 1;
    t->max_missed = 5;
    t->alpha = 0.5;
    t->gate = 0.5;
    t->margin = 0.15;
    t->roi_half = 1.2;
    t->roi_scale = 1.3;
    t->last_time = -INFINITY;
}

void face_track_free(FaceTrack *t) {
    free(t->desc);
    free(t->present);
    free(t->crops);
    free(t->roi);
    memset(t, 0, sizeof *t);
}

// Appends steps k = n_steps, ... with time 0.2 k <= until, all from the held last-frame result.
static void emit_until(FaceTrack *t, double until) {
    while ((double)t->n_steps / FACE_STEP_HZ <= until) {
        if (t->n_steps == t->cap) {
            t->cap = t->cap ? 2 * t->cap : 64;
            size_t cap = (size_t)t->cap;
            float *d = realloc(t->desc, cap * FACE_D * sizeof(float));
            uint8_t *p = realloc(t->present, cap), *cr = realloc(t->crops, cap * FACE_CROP * FACE_CROP);
            if (d) t->desc = d;
            if (p) t->present = p;
            if (cr) t->crops = cr;
            if (!d || !p || !cr) { fprintf(stderr, "out of memory\n"); exit(EXIT_FAILURE); }
        }
        size_t k = (size_t)t->n_steps++;
        memcpy(t->desc + k * FACE_D, t->last_desc, sizeof t->last_desc);
        t->present[k] = t->last_present;
        memcpy(t->crops + k * FACE_CROP * FACE_CROP, t->last_crop, sizeof t->last_crop);
    }
}

// The detection a live track follows (nearest centre, with its distance), else the largest; -1 if n == 0.
static int pick(const FaceTrack *t, const FaceBox *b, int n, double *dist) {
    int best = -1;
    double best_d = INFINITY;
    for (int i = 0; i < n; i++) {
        double dx = b[i].x + 0.5 * b[i].w - t->cx, dy = b[i].y + 0.5 * b[i].h - t->cy;
        double d = t->alive ? sqrt(dx * dx + dy * dy) : -(double)b[i].w * b[i].h;
        if (d < best_d) best_d = d, best = i;
    }
    *dist = best_d;
    return best;
}

static void update_track(FaceTrack *t, const FaceBox *b, int n) {
    t->detected = 0;
    double best_d;
    int best = pick(t, b, n, &best_d);
    if (t->alive && best >= 0 && best_d <= t->gate * t->size) {
        const FaceBox *q = &b[best];
        t->cx += t->alpha * (q->x + 0.5 * q->w - t->cx);
        t->cy += t->alpha * (q->y + 0.5 * q->h - t->cy);
        t->size += t->alpha * (0.5 * (q->w + q->h) - t->size);
        t->missed = 0;
        t->detected = 1;
        return;
    }
    if (t->alive && ++t->missed <= t->max_missed) return; // bridge: hold the box
    t->alive = 0;
    if (best >= 0) { // (re)start from the largest detection
        const FaceBox *q = &b[0];
        for (int i = 1; i < n; i++)
            if ((long)b[i].w * b[i].h > (long)q->w * q->h) q = &b[i];
        t->cx = q->x + 0.5 * q->w;
        t->cy = q->y + 0.5 * q->h;
        t->size = 0.5 * (q->w + q->h);
        t->alive = 1;
        t->missed = 0;
        t->detected = 1;
    }
}

static int clampi(int v, int lo, int hi) { return v < lo ? lo : v > hi ? hi : v; }

// Detections for this frame, in frame coordinates: around the live track when that finds a face within the gate,
// else in the whole frame (see face.h).
static int detect(FaceTrack *t, const uint8_t *gray, int w, int h, FaceBox *boxes, int max_boxes) {
    if (t->alive) {
        int half = (int)ceil(t->roi_half * t->size);
        int x0 = clampi((int)lrint(t->cx) - half, 0, w), x1 = clampi((int)lrint(t->cx) + half, 0, w);
        int y0 = clampi((int)lrint(t->cy) - half, 0, h), y1 = clampi((int)lrint(t->cy) + half, 0, h);
        size_t rw = (size_t)(x1 - x0), rh = (size_t)(y1 - y0);
        if (rw * rh > t->roi_cap) {
            free(t->roi);
            t->roi = malloc_check(rw * rh);
            t->roi_cap = rw * rh;
        }
        for (size_t y = 0; y < rh; y++) memcpy(t->roi + y * rw, gray + (y0 + y) * (size_t)w + (size_t)x0, rw);
        CascadeParams p = t->params;
        int lo = (int)floor(t->size / t->roi_scale);
        p.min_size = lo > p.min_size ? lo : p.min_size;
        p.max_size = (int)ceil(t->size * t->roi_scale);
        p.step = 2; // a face gives tens of windows at OpenCV's density; a quarter of them is plenty to confirm it
        int n = cascade_detect(t->cascade, t->roi, (int)rw, (int)rh, &p, boxes, max_boxes);
        n = n < max_boxes ? n : max_boxes;
        for (int i = 0; i < n; i++) boxes[i].x += x0, boxes[i].y += y0;
        t->n_scan_roi++;
        double d;
        if (pick(t, boxes, n, &d) >= 0 && d <= t->gate * t->size) return n;
    }
    t->n_scan_full++;
    int n = cascade_detect(t->cascade, gray, w, h, &t->params, boxes, max_boxes);
    return n < max_boxes ? n : max_boxes;
}

// The two source pixels of a bilinear tap at coordinate v on an axis of n pixels (clamped to it), and the weight of
// the second.
static double taps(double v, int n, int *a, int *b) {
    double f = floor(v);
    *a = clampi((int)f, 0, n - 1);
    *b = clampi((int)f + 1, 0, n - 1);
    return v - f;
}

// Square crop around the track, bilinear, border pixels replicated.
static void crop_face(const FaceTrack *t, const uint8_t *gray, int w, int h, uint8_t *crop /* (64, 64) */) {
    double side = t->size * (1 + 2 * t->margin), x0 = t->cx - 0.5 * side, y0 = t->cy - 0.5 * side;
    double st = side / FACE_CROP;
    for (int i = 0; i < FACE_CROP; i++) {
        int ya, yb;
        double ay = taps(y0 + (i + 0.5) * st - 0.5, h, &ya, &yb);
        for (int j = 0; j < FACE_CROP; j++) {
            int xa, xb;
            double ax = taps(x0 + (j + 0.5) * st - 0.5, w, &xa, &xb);
            const uint8_t *ra = gray + (size_t)ya * (size_t)w, *rb = gray + (size_t)yb * (size_t)w;
            double v = (1 - ay) * ((1 - ax) * ra[xa] + ax * ra[xb]) + ay * ((1 - ax) * rb[xa] + ax * rb[xb]);
            crop[i * FACE_CROP + j] = (uint8_t)lrint(v);
        }
    }
}

static void describe(const FaceTrack *t, const uint8_t *crop /* (64, 64) */, float *d /* (17,) */) {
    enum { N = FACE_CROP * FACE_CROP, CELL = FACE_CROP / 4 };
    double mean = 0, var = 0;
    for (int i = 0; i < N; i++) mean += crop[i];
    mean /= N;
    for (int i = 0; i < N; i++) var += (crop[i] - mean) * (crop[i] - mean);
    double sd = sqrt(var / N);
    if (sd < 1e-6) sd = 1; // a flat crop: all cells at the centre value
    for (int gy = 0; gy < 4; gy++)
        for (int gx = 0; gx < 4; gx++) {
            double m = 0;
            for (int i = 0; i < CELL; i++)
                for (int j = 0; j < CELL; j++) m += crop[(gy * CELL + i) * FACE_CROP + gx * CELL + j];
            m = (m / (CELL * CELL) - mean) / sd;
            double v = 2.5 + 1.25 * m;
            d[gy * 4 + gx] = (float)(v < 0 ? 0 : v > 5 ? 5 : v);
        }
    d[16] = (float)(5.0 * (1.0 - (double)t->missed / (t->max_missed + 1)));
}

int face_track_push(FaceTrack *t, const uint8_t *gray, int w, int h, double time_s) {
    if (t->finished || !(time_s > t->last_time)) return -1;
    if (t->frames > 0) emit_until(t, time_s - TIME_TOL); // steps before this frame belong to the previous one
    if (t->frames % t->detect_every == 0) {
        FaceBox boxes[FACE_MAX_BOXES];
        update_track(t, boxes, detect(t, gray, w, h, boxes, FACE_MAX_BOXES));
    }
    t->frames++;
    t->last_time = time_s;
    t->last_present = (uint8_t)t->alive;
    if (t->alive) {
        crop_face(t, gray, w, h, t->last_crop);
        describe(t, t->last_crop, t->last_desc);
    } else {
        memset(t->last_crop, 0, sizeof t->last_crop);
        memset(t->last_desc, 0, sizeof t->last_desc);
    }
    return 0;
}

int face_track_steps(FaceTrack *t, const float **desc, const uint8_t **present, const uint8_t **crops) {
    if (!t->finished && t->frames > 0) emit_until(t, t->last_time + TIME_TOL);
    t->finished = 1;
    if (desc) *desc = t->desc;
    if (present) *present = t->present;
    if (crops) *crops = t->crops;
    return t->n_steps;
}
