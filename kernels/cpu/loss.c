// Losses. Forward sums run serially in double: the order is fixed, so the loss is reproducible for any thread count.
// Without -fopenmp the pragmas are meant to compile away; keep -Wall -Werror from rejecting them.
#ifndef _OPENMP
#pragma GCC diagnostic ignored "-Wunknown-pragmas"
#endif

#include "kernels/cpu/kernels.h"

#include <math.h>

float l1_masked_forward(const float *pred, const float *target, const float *mask, size_t N, int C) {
    // pred, target (N, C); mask (N), a row counts when mask[r] != 0; NULL: every row
    double sum = 0.0;
    size_t count = 0;
    for (size_t r = 0; r < N; r++) {
        if (mask && mask[r] == 0.0f) continue;
        count++;
        const float *p = pred + r * C, *t = target + r * C;
        for (int c = 0; c < C; c++) sum += fabs((double)p[c] - (double)t[c]);
    }
    return count ? (float)(sum / ((double)count * C)) : 0.0f;
}

void l1_masked_backward(float *dpred, float dloss, const float *pred, const float *target, const float *mask,
                        size_t N, int C) {
    // dpred, pred, target (N, C); mask (N) or NULL
    size_t count = mask ? 0 : N;
    for (size_t r = 0; mask && r < N; r++) count += mask[r] != 0.0f;
    if (count == 0 || C <= 0) return;
    const float g = (float)((double)dloss / ((double)count * C));
#pragma omp parallel for if (N * (size_t)C > 65536)
    for (size_t r = 0; r < N; r++) {
        if (mask && mask[r] == 0.0f) continue;
        const float *p = pred + r * C, *t = target + r * C;
        float *d = dpred + r * C;
        // sign(0) = 0, as torch.sign in L1Loss's backward
        for (int c = 0; c < C; c++) d[c] += p[c] > t[c] ? g : (p[c] < t[c] ? -g : 0.0f);
    }
}

float cross_entropy_forward(const float *logits, const int *labels, int B, int n) {
    // logits (B, n); labels (B)
    if (B <= 0) return 0.0f;
    double total = 0.0;
    for (int b = 0; b < B; b++) {
        const float *z = logits + (size_t)b * n;
        float mx = z[0];
        for (int j = 1; j < n; j++) mx = z[j] > mx ? z[j] : mx;
        double s = 0.0;
        for (int j = 0; j < n; j++) s += exp((double)z[j] - mx);
        total += log(s) + mx - z[labels[b]];
    }
    return (float)(total / B);
}

void cross_entropy_backward(float *dlogits, float dloss, const float *logits, const int *labels, int B, int n) {
    // dlogits, logits (B, n); labels (B)
    if (B <= 0) return;
    const double g = (double)dloss / B;
    for (int b = 0; b < B; b++) {
        const float *z = logits + (size_t)b * n;
        float *d = dlogits + (size_t)b * n;
        float mx = z[0];
        for (int j = 1; j < n; j++) mx = z[j] > mx ? z[j] : mx;
        double s = 0.0;
        for (int j = 0; j < n; j++) s += exp((double)z[j] - mx);
        for (int j = 0; j < n; j++) {
            double pj = exp((double)z[j] - mx) / s;
            d[j] += (float)(g * (pj - (j == labels[b])));
        }
    }
}

float mse_forward(const float *pred, const float *target, size_t N, int C) {
    // pred, target (N, C)
    const size_t n = N * (size_t)C;
    if (n == 0) return 0.0f;
    double sum = 0.0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)pred[i] - (double)target[i];
        sum += d * d;
    }
    return (float)(sum / (double)n);
}

void mse_backward(float *dpred, float dloss, const float *pred, const float *target, size_t N, int C) {
    // dpred, pred, target (N, C)
    const size_t n = N * (size_t)C;
    if (n == 0) return;
    const float g = (float)(2.0 * (double)dloss / (double)n);
#pragma omp parallel for if (n > 65536)
    for (size_t i = 0; i < n; i++) dpred[i] += g * (pred[i] - target[i]);
}
