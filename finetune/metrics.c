// Evaluation metrics: classification from a confusion matrix, regression per output column in double, and the
// t-based intervals of a results table.
#include "finetune/metrics.h"

#include <math.h>
#include <string.h>

void metrics_confusion(long *conf, const int *label, const int *pred, size_t n, int C) {
    memset(conf, 0, (size_t)C * (size_t)C * sizeof *conf);
    for (size_t i = 0; i < n; i++) conf[(size_t)label[i] * (size_t)C + (size_t)pred[i]]++;
}

// Clips of true class t (row) and clips predicted as t (column).
static long row_sum(const long *conf, int C, int t) {
    long s = 0;
    for (int p = 0; p < C; p++) s += conf[(size_t)t * (size_t)C + (size_t)p];
    return s;
}

static long col_sum(const long *conf, int C, int p) {
    long s = 0;
    for (int t = 0; t < C; t++) s += conf[(size_t)t * (size_t)C + (size_t)p];
    return s;
}

static long diag(const long *conf, int C, int t) { return conf[(size_t)t * (size_t)C + (size_t)t]; }

double metrics_accuracy(const long *conf, int C) {
    long right = 0, all = 0;
    for (int t = 0; t < C; t++) {
        right += diag(conf, C, t);
        all += row_sum(conf, C, t);
    }
    return all ? (double)right / (double)all : 0.0;
}

double metrics_uar(const long *conf, int C) {
    double sum = 0.0;
    int classes = 0;
    for (int t = 0; t < C; t++) {
        long row = row_sum(conf, C, t);
        if (!row) continue;
        sum += (double)diag(conf, C, t) / (double)row;
        classes++;
    }
    return classes ? sum / classes : 0.0;
}

double metrics_macro_f1(const long *conf, int C) {
    double sum = 0.0;
    int classes = 0;
    for (int t = 0; t < C; t++) {
        // 2 TP + FP + FN = (TP + FN) + (TP + FP) = row + column.
        long denom = row_sum(conf, C, t) + col_sum(conf, C, t);
        if (!denom) continue;
        sum += 2.0 * (double)diag(conf, C, t) / (double)denom;
        classes++;
    }
    return classes ? sum / classes : 0.0;
}

// Population moments of column c: means, variances and covariance, two passes in double.
typedef struct {
    double mx, my, vx, vy, cov;
} Moments;

static Moments moments(const float *x, const float *y, size_t n, size_t stride, int c) {
    Moments m = {0};
    for (size_t i = 0; i < n; i++) {
        m.mx += x[i * stride + (size_t)c];
        m.my += y[i * stride + (size_t)c];
    }
    m.mx /= (double)n;
    m.my /= (double)n;
    for (size_t i = 0; i < n; i++) {
        double dx = x[i * stride + (size_t)c] - m.mx, dy = y[i * stride + (size_t)c] - m.my;
        m.vx += dx * dx;
        m.vy += dy * dy;
        m.cov += dx * dy;
    }
    m.vx /= (double)n;
    m.vy /= (double)n;
    m.cov /= (double)n;
    return m;
}

double metrics_ccc(const float *x, const float *y, size_t n, size_t stride, int c) {
    Moments m = moments(x, y, n, stride, c);
    double d = m.mx - m.my, denom = m.vx + m.vy + d * d;
    return denom > 0.0 ? 2.0 * m.cov / denom : 1.0; // denom 0: both columns the same constant
}

double metrics_pearson(const float *x, const float *y, size_t n, size_t stride, int c) {
    Moments m = moments(x, y, n, stride, c);
    return m.vx > 0.0 && m.vy > 0.0 ? m.cov / sqrt(m.vx * m.vy) : 0.0;
}

double metrics_rmse(const float *x, const float *y, size_t n, size_t stride, int c) {
    double s = 0.0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)x[i * stride + (size_t)c] - y[i * stride + (size_t)c];
        s += d * d;
    }
    return sqrt(s / (double)n);
}

// Mean and sample standard deviation of v - w (w NULL: of v).
static void mean_std_diff(const double *v, const double *w, int n, double *mean, double *std) {
    double m = 0.0, ss = 0.0;
    for (int i = 0; i < n; i++) m += v[i] - (w ? w[i] : 0.0);
    m = n > 0 ? m / n : 0.0;
    for (int i = 0; i < n; i++) {
        double d = v[i] - (w ? w[i] : 0.0) - m;
        ss += d * d;
    }
    *mean = m;
    *std = n > 1 ? sqrt(ss / (n - 1)) : 0.0;
}

void metrics_mean_std(const double *v, int n, double *mean, double *std) { mean_std_diff(v, NULL, n, mean, std); }

// Continued fraction of the regularized incomplete beta function (modified Lentz; Press et al., Numerical Recipes
// §6.4), converging fast for x < (a + 1) / (a + b + 2).
static double beta_cf(double a, double b, double x) {
    const double tiny = 1e-300;
    double c = 1.0, d = 1.0 - (a + b) * x / (a + 1.0);
    if (fabs(d) < tiny) d = tiny;
    d = 1.0 / d;
    double h = d;
    for (int m = 1; m <= 100000; m++) {
        double m2 = 2.0 * m;
        double num = m * (b - m) * x / ((a + m2 - 1.0) * (a + m2)); // even step
        d = 1.0 + num * d;
        c = 1.0 + num / c;
        if (fabs(d) < tiny) d = tiny;
        if (fabs(c) < tiny) c = tiny;
        d = 1.0 / d;
        h *= d * c;
        num = -(a + m) * (a + b + m) * x / ((a + m2) * (a + m2 + 1.0)); // odd step
        d = 1.0 + num * d;
        c = 1.0 + num / c;
        if (fabs(d) < tiny) d = tiny;
        if (fabs(c) < tiny) c = tiny;
        d = 1.0 / d;
        double step = d * c;
        h *= step;
        if (fabs(step - 1.0) < 1e-15) break;
    }
    return h;
}

// I_x(a, b), by the continued fraction on whichever side of the mean it converges.
static double beta_inc(double a, double b, double x) {
    if (x <= 0.0) return 0.0;
    if (x >= 1.0) return 1.0;
    double front = exp(lgamma(a + b) - lgamma(a) - lgamma(b) + a * log(x) + b * log1p(-x));
    if (x < (a + 1.0) / (a + b + 2.0)) return front * beta_cf(a, b, x) / a;
    return 1.0 - front * beta_cf(b, a, 1.0 - x) / b;
}

// P(|T| > t) for Student's t with df degrees of freedom: I_{df / (df + t^2)}(df / 2, 1 / 2).
static double t_two_tail(double t, double df) { return beta_inc(0.5 * df, 0.5, df / (df + t * t)); }

double metrics_t95(int df) {
    if (df < 1) return NAN;
    // The two-tailed probability falls as t grows: bracket 0.05, then bisect to double precision.
    double lo = 0.0, hi = 2.0;
    while (t_two_tail(hi, df) > 0.05) {
        lo = hi;
        hi *= 2.0;
    }
    for (int it = 0; it < 200 && hi - lo > 1e-13 * hi; it++) {
        double mid = 0.5 * (lo + hi);
        if (t_two_tail(mid, df) > 0.05) lo = mid;
        else hi = mid;
    }
    return 0.5 * (lo + hi);
}

void metrics_paired_ci95(const double *a, const double *b, int n, double *mean, double *lo, double *hi) {
    double sd;
    mean_std_diff(a, b, n, mean, &sd);
    double half = n > 1 ? metrics_t95(n - 1) * sd / sqrt((double)n) : 0.0;
    *lo = *mean - half;
    *hi = *mean + half;
}
