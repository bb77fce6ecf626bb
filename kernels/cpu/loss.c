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

// Moments of column c of pred (x) and target (y), (N, C), in double: two passes (means, then centred sums) so a
// constant column has exactly zero variance and the d == 0 guard below is exact.
typedef struct {
    double mx, my, vx, vy, cov;
} CccMoments;

static CccMoments ccc_moments(const float *pred, const float *target, size_t N, int C, int c) {
    CccMoments m = {0};
    for (size_t r = 0; r < N; r++) {
        m.mx += pred[r * (size_t)C + c];
        m.my += target[r * (size_t)C + c];
    }
    m.mx /= (double)N;
    m.my /= (double)N;
    for (size_t r = 0; r < N; r++) {
        const double dx = (double)pred[r * (size_t)C + c] - m.mx, dy = (double)target[r * (size_t)C + c] - m.my;
        m.vx += dx * dx;
        m.vy += dy * dy;
        m.cov += dx * dy;
    }
    m.vx /= (double)N;
    m.vy /= (double)N;
    m.cov /= (double)N;
    return m;
}

float ccc_forward(const float *pred, const float *target, size_t N, int C) {
    // pred, target (N, C); no rows or no columns: 0, as mse
    if (N == 0 || C <= 0) return 0.0f;
    double sum = 0.0;
    for (int c = 0; c < C; c++) {
        const CccMoments m = ccc_moments(pred, target, N, C, c);
        const double dm = m.mx - m.my, d = m.vx + m.vy + dm * dm;
        // d == 0 only when both columns are constant and equal: perfect agreement, CCC = 1 (0/0 otherwise)
        sum += d > 0.0 ? 2.0 * m.cov / d : 1.0;
    }
    return (float)(1.0 - sum / C);
}

void ccc_backward(float *dpred, float dloss, const float *pred, const float *target, size_t N, int C) {
    // dpred, pred, target (N, C). With n = 2 cov and d as in the forward, (x_i - mx) + (mx - my) = x_i - my gives
    // dCCC/dx_i = (2/N) [(y_i - my) d - n (x_i - my)] / d^2, and dloss/dx_i = -(1/C) dCCC/dx_i.
    if (N == 0 || C <= 0) return;
    for (int c = 0; c < C; c++) {
        const CccMoments m = ccc_moments(pred, target, N, C, c);
        const double dm = m.mx - m.my, d = m.vx + m.vy + dm * dm;
        if (!(d > 0.0)) continue;  // the d == 0 guard of the forward: CCC held at 1, zero gradient
        const double k = -2.0 * (double)dloss / ((double)N * C * d * d), n = 2.0 * m.cov;
        for (size_t r = 0; r < N; r++) {
            const size_t i = r * (size_t)C + c;
            dpred[i] += (float)(k * (((double)target[i] - m.my) * d - n * ((double)pred[i] - m.my)));
        }
    }
}
