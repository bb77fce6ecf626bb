// Speed of the native audio front end (data/media/fbank.c): 128-bin Kaldi log-mels plus pooling to 512-d steps, on a
// synthetic 16 kHz waveform. Prints `fbank_audio_s_per_s X` (seconds of audio processed per wall-clock second,
// best of --reps runs) for the OpenMP threads in effect (OMP_NUM_THREADS). Not a test.
//   bench_fbank [SECONDS (default 60)] [REPS (default 5)]
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include "base/common.h"
#include "data/media/fbank.h"

int main(int argc, char **argv) {
    const double seconds = argc > 1 ? atof(argv[1]) : 60.0;
    const int reps = argc > 2 ? atoi(argv[2]) : 5;
    if (seconds < 0.2 || reps < 1) { // at least one step
        fprintf(stderr, "usage: bench_fbank [SECONDS >= 0.2] [REPS >= 1]\n");
        return 1;
    }
    const size_t n = (size_t)(seconds * FBANK_SAMPLE_RATE);
    float *wav = malloc(n * sizeof(float)); // (n) a chirp plus deterministic noise, well inside [-1, 1]
    uint32_t state = 12345;
    for (size_t i = 0; i < n; i++) {
        state = state * 1664525u + 1013904223u; // LCG: only needs to be broadband, not good
        const double t = (double)i / FBANK_SAMPLE_RATE;
        const double noise = (double)(state >> 8) / (1 << 24) - 0.5;
        wav[i] = (float)(0.3 * sin(2.0 * M_PI * (200.0 + 50.0 * t) * t) + 0.05 * noise);
    }
    FbankPlan p;
    fbank_plan_init(&p, FBANK_POOL_MELS);
    const int T = fbank_frames(n), S = fbank_steps(n);
    float *frames = malloc((size_t)T * FBANK_POOL_MELS * sizeof(float)); // (T, 128)
    float *steps = malloc((size_t)S * FBANK_STEP_DIM * sizeof(float));   // (S, 512)
    double best = INFINITY, checksum = 0.0;
    for (int r = 0; r < reps; r++) {
        const double t0 = avt_now();
        fbank_compute(frames, &p, wav, n);
        fbank_pool(steps, frames, T);
        best = fmin(best, avt_now() - t0);
        checksum += steps[0];
    }
    printf("fbank: %.1f s of audio, %d frames, %d steps; best of %d: %.4f s (checksum %.4f)\n", seconds, T, S, reps,
           best, checksum / reps);
    printf("fbank_audio_s_per_s %.0f\n", seconds / best);
    free(steps);
    free(frames);
    free(wav);
    fbank_plan_free(&p);
    return 0;
}
