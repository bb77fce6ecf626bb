// Tests for finetune/metrics.c: each metric on fixed predictions against values worked out by hand (in the
// comments), CCC against an independent route (Pearson r x sx x sy from raw sums), the edge cases of CCC and
// Pearson, and the t quantile against published tables and closed forms.
#include <criterion/criterion.h>

#include <math.h>

#include "finetune/metrics.h"

TestSuite(metrics, .timeout = 30);

#define PI 3.14159265358979323846

// 10 clips, 3 classes; class 2 is predicted once but never a label.
//   label 0 0 0 0 0 0 1 1 1 1
//   pred  0 0 0 0 1 2 1 1 0 1
// conf (rows true, columns predicted): [4 1 1; 1 3 0; 0 0 0]
static const int lab3[10] = {0, 0, 0, 0, 0, 0, 1, 1, 1, 1};
static const int pred3[10] = {0, 0, 0, 0, 1, 2, 1, 1, 0, 1};

Test(metrics, confusion_three_classes) {
    long conf[9];
    metrics_confusion(conf, lab3, pred3, 10, 3);
    const long want[9] = {4, 1, 1, 1, 3, 0, 0, 0, 0};
    cr_assert_arr_eq(conf, want, sizeof want);
    // accuracy: (4 + 3) / 10
    cr_assert_float_eq(metrics_accuracy(conf, 3), 0.7, 1e-15);
    // UAR over the classes with clips (0 and 1): (4/6 + 3/4) / 2 = 17/24
    cr_assert_float_eq(metrics_uar(conf, 3), 17.0 / 24.0, 1e-15);
    // F1 = 2 TP / (row + column): class 0 8/11, class 1 6/8, class 2 (predicted once) 0 / (0 + 1) = 0;
    // mean (8/11 + 3/4 + 0) / 3 = 65/132
    cr_assert_float_eq(metrics_macro_f1(conf, 3), 65.0 / 132.0, 1e-15);
}

Test(metrics, absent_class_ignored) {
    // The same clips with a fourth class that is neither a label nor a prediction: nothing changes.
    long conf[16];
    metrics_confusion(conf, lab3, pred3, 10, 4);
    cr_assert_float_eq(metrics_accuracy(conf, 4), 0.7, 1e-15);
    cr_assert_float_eq(metrics_uar(conf, 4), 17.0 / 24.0, 1e-15);
    cr_assert_float_eq(metrics_macro_f1(conf, 4), 65.0 / 132.0, 1e-15);
}

Test(metrics, accuracy_vs_uar_imbalanced) {
    // 9 clips of class 0, 1 of class 1, everything predicted 0.
    const int lab[10] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 1}, pred[10] = {0};
    long conf[4];
    metrics_confusion(conf, lab, pred, 10, 2);
    cr_assert_float_eq(metrics_accuracy(conf, 2), 0.9, 1e-15); // 9 / 10
    cr_assert_float_eq(metrics_uar(conf, 2), 0.5, 1e-15);      // (9/9 + 0/1) / 2
    // class 0: 2*9 / (9 + 10) = 18/19; class 1: 0 / (1 + 0) = 0; mean 9/19
    cr_assert_float_eq(metrics_macro_f1(conf, 2), 9.0 / 19.0, 1e-15);
    // No clips at all: 0, not NaN.
    long none[4] = {0};
    cr_assert_float_eq(metrics_accuracy(none, 2), 0.0, 0.0);
    cr_assert_float_eq(metrics_uar(none, 2), 0.0, 0.0);
    cr_assert_float_eq(metrics_macro_f1(none, 2), 0.0, 0.0);
}

// CCC by another route: r from raw sums, then 2 r sx sy / (sx^2 + sy^2 + (mx - my)^2), population moments.
static double ccc_ref(const float *x, const float *y, size_t n, size_t stride, int c) {
    double sx = 0, sy = 0, sxx = 0, syy = 0, sxy = 0;
    for (size_t i = 0; i < n; i++) {
        double a = x[i * stride + (size_t)c], b = y[i * stride + (size_t)c];
        sx += a, sy += b, sxx += a * a, syy += b * b, sxy += a * b;
    }
    double N = (double)n, mx = sx / N, my = sy / N;
    double r = (N * sxy - sx * sy) / sqrt((N * sxx - sx * sx) * (N * syy - sy * sy));
    double vx = sxx / N - mx * mx, vy = syy / N - my * my;
    return 2.0 * r * sqrt(vx) * sqrt(vy) / (vx + vy + (mx - my) * (mx - my));
}

Test(metrics, ccc_independent_route) {
    // (40, 2) columns of fixed, uneven values; column 1 of the predictions tracks the target with a bias and noise.
    float x[80], y[80];
    for (int i = 0; i < 40; i++) {
        y[2 * i] = (float)sin(0.37 * i) * 2.0f + 3.0f;
        y[2 * i + 1] = (float)cos(0.11 * i * i) + 0.05f * i;
        x[2 * i] = 0.5f * y[2 * i] + (float)sin(1.3 * i);
        x[2 * i + 1] = 0.8f * y[2 * i + 1] + 0.3f + 0.2f * (float)cos(2.1 * i);
    }
    for (int c = 0; c < 2; c++) {
        double got = metrics_ccc(x, y, 40, 2, c), want = ccc_ref(x, y, 40, 2, c);
        cr_assert(fabs(got - want) < 1e-9, "column %d: %.12f, want %.12f", c, got, want);
        cr_assert(got > 0.0 && got < 1.0, "column %d: %f", c, got);
    }
    // CCC <= |r|: the bias and the scale only lower it.
    cr_assert_leq(metrics_ccc(x, y, 40, 2, 1), fabs(metrics_pearson(x, y, 40, 2, 1)) + 1e-12);
}

Test(metrics, ccc_by_hand) {
    // x = 1 2 3, y = 2 4 6: means 2, 4; var 2/3, 8/3; cov 4/3; CCC = (8/3) / (2/3 + 8/3 + 4) = 4/11; r = 1;
    // RMSE = sqrt((1 + 4 + 9) / 3)
    const float x[3] = {1, 2, 3}, y[3] = {2, 4, 6};
    cr_assert_float_eq(metrics_ccc(x, y, 3, 1, 0), 4.0 / 11.0, 1e-12);
    cr_assert_float_eq(metrics_pearson(x, y, 3, 1, 0), 1.0, 1e-12);
    cr_assert_float_eq(metrics_rmse(x, y, 3, 1, 0), sqrt(14.0 / 3.0), 1e-12);
    // A prediction equal to the target: 1.
    cr_assert_float_eq(metrics_ccc(y, y, 3, 1, 0), 1.0, 1e-12);
}

Test(metrics, ccc_constant_predictions) {
    const float t[3] = {1, 2, 3}, c2[3] = {2, 2, 2}, k5[2] = {5, 5}, k3[2] = {3, 3};
    // cov = 0 whatever the constant: 0, even at the target's mean.
    cr_assert_float_eq(metrics_ccc(c2, t, 3, 1, 0), 0.0, 1e-15);
    cr_assert_float_eq(metrics_pearson(c2, t, 3, 1, 0), 0.0, 0.0);
    // Two different constants: denominator (5 - 3)^2 = 4, cov 0: 0. The same constant: 1 by definition.
    cr_assert_float_eq(metrics_ccc(k5, k3, 2, 1, 0), 0.0, 0.0);
    cr_assert_float_eq(metrics_ccc(k5, k5, 2, 1, 0), 1.0, 0.0);
    cr_assert_float_eq(metrics_pearson(k5, k5, 2, 1, 0), 0.0, 0.0);
}

Test(metrics, ccc_anti_correlated) {
    // x = 1 2 3, y = -x + 4 = 3 2 1: equal means and variances (2/3), cov -2/3: CCC = -(4/3) / (4/3) = -1.
    const float x[3] = {1, 2, 3}, y[3] = {3, 2, 1}, z[3] = {9, 8, 7};
    cr_assert_float_eq(metrics_ccc(x, y, 3, 1, 0), -1.0, 1e-12);
    cr_assert_float_eq(metrics_pearson(x, y, 3, 1, 0), -1.0, 1e-12);
    // z = -x + 10: means 2, 8, so CCC = -(4/3) / (4/3 + 36) = -1/28 while r stays -1.
    cr_assert_float_eq(metrics_ccc(x, z, 3, 1, 0), -1.0 / 28.0, 1e-12);
    cr_assert_float_eq(metrics_pearson(x, z, 3, 1, 0), -1.0, 1e-12);
}

Test(metrics, pearson_rmse_by_hand) {
    // Column 1 of (4, 2): x = 1 2 3 4, y = 1 3 2 4. Deviations -1.5 -0.5 0.5 1.5 and -1.5 0.5 -0.5 1.5:
    // sum of products 2.25 - 0.25 - 0.25 + 2.25 = 4, sums of squares 5 and 5: r = 4/5.
    // Differences 0 -1 1 0: RMSE = sqrt(2/4). Column 0 (all zeros in both) must not leak in.
    const float x[8] = {0, 1, 0, 2, 0, 3, 0, 4}, y[8] = {0, 1, 0, 3, 0, 2, 0, 4};
    cr_assert_float_eq(metrics_pearson(x, y, 4, 2, 1), 0.8, 1e-12);
    cr_assert_float_eq(metrics_rmse(x, y, 4, 2, 1), sqrt(0.5), 1e-12);
    cr_assert_float_eq(metrics_rmse(x, y, 4, 2, 0), 0.0, 0.0);
    // CCC: means 2.5 and 2.5, variances 5/4, cov 1: 2 / (5/2) = 0.8.
    cr_assert_float_eq(metrics_ccc(x, y, 4, 2, 1), 0.8, 1e-12);
}

Test(metrics, mean_std) {
    // 2 4 4 4 5 5 7 9: mean 5, squared deviations sum to 32, sample variance 32/7.
    const double v[8] = {2, 4, 4, 4, 5, 5, 7, 9};
    double m, s;
    metrics_mean_std(v, 8, &m, &s);
    cr_assert_float_eq(m, 5.0, 1e-15);
    cr_assert_float_eq(s, sqrt(32.0 / 7.0), 1e-14);
    metrics_mean_std(v + 7, 1, &m, &s);
    cr_assert_float_eq(m, 9.0, 0.0);
    cr_assert_float_eq(s, 0.0, 0.0);
    metrics_mean_std(v, 0, &m, &s);
    cr_assert_float_eq(m, 0.0, 0.0);
    cr_assert_float_eq(s, 0.0, 0.0);
}

Test(metrics, t95_published) {
    // Two-sided 95 % (0.975 quantile) from the usual tables, given to 3 decimals.
    const int df[6] = {1, 2, 4, 9, 29, 1000};
    const double want[6] = {12.706, 4.303, 2.776, 2.262, 2.045, 1.962};
    for (int i = 0; i < 6; i++) {
        double got = metrics_t95(df[i]);
        cr_assert(fabs(got - want[i]) < 1e-3, "df %d: %.6f, want %.3f", df[i], got, want[i]);
    }
    // Closed forms: df 1 (Cauchy) tan(0.475 pi); df 2: (2p - 1) / sqrt(2 p (1 - p)) at p = 0.975.
    cr_assert_float_eq(metrics_t95(1), tan(0.475 * PI), 1e-9);
    cr_assert_float_eq(metrics_t95(2), 0.95 / sqrt(2.0 * 0.975 * 0.025), 1e-9);
    // Large df: the normal quantile 1.959964, approached from above, decreasing.
    cr_assert(fabs(metrics_t95(1000000) - 1.959964) < 1e-5, "df 1e6: %.7f", metrics_t95(1000000));
    for (int d = 1; d < 60; d++) cr_assert_gt(metrics_t95(d), metrics_t95(d + 1), "df %d", d);
    cr_assert(isnan(metrics_t95(0)));
}

Test(metrics, paired_ci95_by_hand) {
    // a - b = 2 3 2 3: mean 2.5, sd sqrt(4 x 0.25 / 3) = sqrt(1/3); t95(3) = 3.182446 (table: 3.182);
    // half width 3.182446 x sqrt(1/3) / 2 = 0.918693.
    const double a[4] = {3, 5, 4, 6}, b[4] = {1, 2, 2, 3};
    double m, lo, hi;
    metrics_paired_ci95(a, b, 4, &m, &lo, &hi);
    cr_assert_float_eq(m, 2.5, 1e-15);
    cr_assert_float_eq(lo, 2.5 - 0.918693, 1e-6);
    cr_assert_float_eq(hi, 2.5 + 0.918693, 1e-6);
    cr_assert_float_eq(hi - m, metrics_t95(3) * sqrt(1.0 / 3.0) / 2.0, 1e-12);
    // One pair: no interval.
    metrics_paired_ci95(a, b, 1, &m, &lo, &hi);
    cr_assert_float_eq(m, 2.0, 0.0);
    cr_assert_float_eq(lo, 2.0, 0.0);
    cr_assert_float_eq(hi, 2.0, 0.0);
}
