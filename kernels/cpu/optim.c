// BertAdam (docs/model.md §3.4): the sum of squares that feeds the gradient clips, and the per-tensor update.
// Without -fopenmp the pragmas are meant to compile away; keep -Wall -Werror from rejecting them.
#ifndef _OPENMP
#pragma GCC diagnostic ignored "-Wunknown-pragmas"
#endif

#include "kernels/cpu/kernels.h"

#include <math.h>

#define OPT_PAR_MIN 65536
// sum_squares splits x into SS_CHUNKS fixed chunks (boundaries depend on n only), each summed in SS_LANES
// interleaved double accumulators (independent, so they vectorise without reassociation); the partials are then
// added in chunk order. Threads only pick which chunks they compute: the bits do not depend on the thread count.
#define SS_CHUNKS 64
#define SS_LANES 8

void sum_squares(float *out, const float *x, size_t n) {
    // out: scalar; x (n)
    double part[SS_CHUNKS];
    const size_t len = (n + SS_CHUNKS - 1) / SS_CHUNKS;
#pragma omp parallel for schedule(static) if (n > OPT_PAR_MIN)
    for (int c = 0; c < SS_CHUNKS; c++) {
        const size_t i0 = (size_t)c * len < n ? (size_t)c * len : n, i1 = n - i0 < len ? n : i0 + len;
        double acc[SS_LANES] = {0.0};
        size_t i = i0;
        for (; i + SS_LANES <= i1; i += SS_LANES)
            for (int l = 0; l < SS_LANES; l++) acc[l] += (double)x[i + l] * (double)x[i + l];
        for (; i < i1; i++) acc[0] += (double)x[i] * (double)x[i];
        double s = 0.0;
        for (int l = 0; l < SS_LANES; l++) s += acc[l];
        part[c] = s;
    }
    double total = 0.0;
    for (int c = 0; c < SS_CHUNKS; c++) total += part[c];
    *out = (float)total;
}

void bertadam_update(float *p, float *m, float *v, const float *g, const float *tensor_sq, const float *global_sq,
                     BertAdamHyper h, float lr, size_t n) {
    // p, m, v, g (n); tensor_sq, global_sq: scalars
    const float s = bertadam_grad_scale(*tensor_sq, *global_sq, h);
    const float b1 = (float)h.beta1, b2 = (float)h.beta2, c1 = (float)(1.0 - h.beta1), c2 = (float)(1.0 - h.beta2);
#pragma omp parallel for if (n > OPT_PAR_MIN)
    for (size_t i = 0; i < n; i++) {
        const float gi = g[i] * s;
        const float mi = b1 * m[i] + c1 * gi, vi = b2 * v[i] + c2 * (gi * gi);
        m[i] = mi;
        v[i] = vi;
        p[i] -= lr * (mi / (sqrtf(vi) + h.eps) + h.weight_decay * p[i]);
    }
}
