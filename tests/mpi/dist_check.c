// The collectives of train/dist.c across real processes, run by tests/train/test_dist.c under mpirun (or alone: rank 0
// of 1). `dist_check sum` checks every collective and prints "dist_check: ok (world W)" on rank 0; the other modes
// make rank 1 fail in one way while rank 0 waits in a collective, to show the job ends instead of hanging:
//   abort  rank 1 calls dist_abort          die   rank 1 calls avt_die (the die hook)
//   exit   rank 1 exits(3) without MPI_Finalize    kill  rank 1 gets SIGKILL
#include <math.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "train/dist.h"

// Rank r's element i: a float from a hash, with magnitudes over 16 binades so that sums round.
static float value(int r, size_t i) {
    uint64_t z = ((uint64_t)r << 40) + i + 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    const float u = (float)(z >> 40) / 16777216.0f - 0.5f;
    return ldexpf(u, (int)(z & 15) - 8);
}

static void fail(Dist *d, const char *what, size_t n, size_t i, double got, double want) {
    char msg[256];
    snprintf(msg, sizeof msg, "%s (n %zu): element %zu is %.9g, expected %.9g", what, n, i, got, want);
    dist_abort(d, msg);
}

// The reduced x against the serial sum in rank order: exact with 2 ranks (a + b == b + a); with more the order of
// the additions is MPI's, so the result must be close and bit-identical on every rank.
static void check_sum(Dist *d, const char *what, const float *x, size_t n) {
    float *first = malloc_check(n * sizeof *first);
    memcpy(first, x, n * sizeof *first);
    dist_bcast(d, first, n * sizeof *first, 0);
    for (size_t i = 0; i < n; i++) {
        float want = 0.0f;
        for (int r = 0; r < d->world; r++) want += value(r, i);
        if (memcmp(&x[i], &first[i], sizeof x[i]) != 0) fail(d, "differs from rank 0's sum", n, i, x[i], first[i]);
        const int exact = d->world <= 2;
        if (exact ? x[i] != want : fabsf(x[i] - want) > 1e-6f * (float)d->world)
            fail(d, what, n, i, x[i], want);
    }
    free(first);
}

static void check_all(Dist *d) {
    static const size_t sizes[] = {0, 1, 1000, (3u << 20) + 7}; // the last: over a million floats
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        const size_t n = sizes[s];
        float *x = malloc_check(n * sizeof *x), *y = malloc_check(n * sizeof *y);
        for (size_t i = 0; i < n; i++) x[i] = y[i] = value(d->rank, i);
        dist_allreduce_sum(d, &BACKEND_CPU, x, n);
        check_sum(d, "dist_allreduce_sum", x, n);
        // overlapped: two ranges in flight at once, waited in reverse order
        const size_t h = n / 2;
        DistReq *a = dist_allreduce_start(d, &BACKEND_CPU, y, h);
        DistReq *b = dist_allreduce_start(d, &BACKEND_CPU, y + h, n - h);
        dist_allreduce_wait(d, b);
        dist_allreduce_wait(d, a);
        check_sum(d, "dist_allreduce_start/wait", y, n);
        free(x);
        free(y);
    }

    double v[3] = {0.1 * d->rank, 1e300, -(double)d->rank};
    dist_allreduce_sum_double(d, v, 3);
    const double w = (double)d->world;
    double want0 = 0.0;
    for (int r = 0; r < d->world; r++) want0 += 0.1 * r;
    if (v[0] != want0 || v[1] != 1e300 * w || v[2] != -w * (w - 1) / 2)
        fail(d, "dist_allreduce_sum_double", 3, 0, v[0], want0);

    char msg[64] = "";
    if (d->rank == d->world - 1) snprintf(msg, sizeof msg, "from the last rank, %d", d->rank);
    dist_bcast(d, msg, sizeof msg, d->world - 1);
    char want[64];
    snprintf(want, sizeof want, "from the last rank, %d", d->world - 1);
    if (strcmp(msg, want) != 0) dist_abort(d, "dist_bcast: wrong bytes");
    dist_barrier(d);
}

int main(int argc, char **argv) {
    if (argc != 2) avt_die("usage: dist_check sum|abort|die|exit|kill");
    Dist d;
    dist_init(&d);
    const char *mode = argv[1];
    if (strcmp(mode, "sum") == 0) {
        check_all(&d);
        if (d.rank == 0) printf("dist_check: ok (world %d)\n", d.world);
        dist_finalize(&d);
        return 0;
    }
    if (d.world < 2) avt_die("dist_check %s: needs 2 ranks or more", mode);
    if (d.rank == 1) {
        sleep(1); // rank 0 is waiting in the reduction by now
        if (strcmp(mode, "abort") == 0) dist_abort(&d, "dist_check: aborting on purpose");
        if (strcmp(mode, "die") == 0) avt_die("dist_check: dying on purpose");
        if (strcmp(mode, "exit") == 0) exit(3);
        if (strcmp(mode, "kill") == 0) raise(SIGKILL);
        avt_die("dist_check: unknown mode %s", mode);
    }
    float x = 1.0f;
    dist_allreduce_sum(&d, &BACKEND_CPU, &x, 1); // never completes: rank 1 is gone
    dist_finalize(&d);
    return 0;
}
