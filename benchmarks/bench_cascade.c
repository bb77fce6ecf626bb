// Speed of the face detector alone (data/media/cascade.c) on one grayscale frame, whole-frame scans as
// cv::CascadeClassifier::detectMultiScale runs them (scale 1.1, 3 neighbours). Prints
// `cascade_ms X boxes N` (milliseconds per scan, best of REPS rounds of 10) for the OpenMP threads in effect.
// benchmarks/bench_media.sh sets it beside OpenCV on the same frame. Not a test.
//   bench_cascade FRAME.pgm CASCADE.xml [MIN_SIZE (default 0)] [REPS (default 5)]
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include "data/media/cascade.h"

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: bench_cascade FRAME.pgm CASCADE.xml [MIN_SIZE] [REPS]\n");
        return 1;
    }
    FILE *f = fopen(argv[1], "rb");
    int w, h, maxv;
    if (!f || fscanf(f, "P5 %d %d %d", &w, &h, &maxv) != 3 || maxv != 255 || w < 1 || h < 1 || fgetc(f) == EOF) {
        fprintf(stderr, "bench_cascade: %s: not a binary 8-bit PGM\n", argv[1]);
        return 1;
    }
    uint8_t *gray = malloc((size_t)w * (size_t)h); // (h, w)
    if (!gray || fread(gray, 1, (size_t)w * (size_t)h, f) != (size_t)w * (size_t)h) {
        fprintf(stderr, "bench_cascade: %s: truncated\n", argv[1]);
        return 1;
    }
    fclose(f);
    Cascade c;
    AvtErr err;
    if (cascade_load(&c, argv[2], &err)) {
        fprintf(stderr, "bench_cascade: %s\n", err.msg);
        return 1;
    }
    CascadeParams p = cascade_default_params();
    p.min_size = argc > 3 ? atoi(argv[3]) : 0;
    const int reps = argc > 4 ? atoi(argv[4]) : 5;
    FaceBox boxes[16];
    int n = 0;
    double best = INFINITY;
    for (int r = 0; r < (reps < 1 ? 1 : reps); r++) {
        double t0 = avt_now();
        for (int i = 0; i < 10; i++) n = cascade_detect(&c, gray, w, h, &p, boxes, 16);
        double t = (avt_now() - t0) / 10;
        best = t < best ? t : best;
    }
    printf("cascade_ms %.3f boxes %d\n", 1e3 * best, n);
    cascade_free(&c);
    free(gray);
    return 0;
}
