// CPU kernel tests (suite kernels): forward values against naive double-precision references, the sinusoid table
// and the zero-step rule, Philox known answers, dropout statistics, keys and offsets (the AVX2 path equal to the
// generic one), NULL gradients skipped, and reductions independent of the thread count. The finite-difference
// gradient checks of every backward are in test_gradcheck.c.
#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "kernels/cpu/kernels.h"
#include "base/cpu.h"
#include "base/philox.h"
#include "tests/kernels/kernel_check.h"

// ---------------------------------------------------------------------------------------------------------------
// Helpers (the shared ones are in kernel_check.h)

static double max_abs_diff(const float *a, const double *ref, size_t n) {
    double m = 0.0;
    for (size_t i = 0; i < n; i++) m = fmax(m, fabs((double)a[i] - ref[i]));
    return m;
}

// ---------------------------------------------------------------------------------------------------------------
// Naive double-precision references

// out (N, OC) = inp (N, C) . W^T (OC, C) + b
static void ref_linear(double *out, const float *inp, const float *w, const float *b, int N, int C, int OC) {
    for (int r = 0; r < N; r++)
        for (int o = 0; o < OC; o++) {
            double s = b ? b[o] : 0.0;
            for (int c = 0; c < C; c++) s += (double)inp[r * C + c] * w[o * C + c];
            out[r * OC + o] = s;
        }
}

static void ref_layernorm(double *out, double *mean, double *rstd, const float *inp, const float *w,
                          const float *b, int N, int C) {
    for (int r = 0; r < N; r++) {
        double m = 0.0, v = 0.0;
        for (int c = 0; c < C; c++) m += inp[r * C + c];
        m /= C;
        for (int c = 0; c < C; c++) v += (inp[r * C + c] - m) * (inp[r * C + c] - m);
        v /= C;
        double rs = 1.0 / sqrt(v + 1e-5);
        for (int c = 0; c < C; c++) out[r * C + c] = (inp[r * C + c] - m) * rs * w[c] + b[c];
        mean[r] = m;
        rstd[r] = rs;
    }
}

// att (B, NH, Tq, Tk), out (B, Tq, NH*HS); mask and dropout exactly as the header states.
static void ref_attention(double *out, double *att, const float *q, const float *k, const float *v,
                          DropoutKey drop, int causal, int B, int Tq, int Tk, int NH, int HS) {
    const int C = NH * HS;
    const int off = abs(Tk - Tq);
    double *s = malloc((size_t)Tk * sizeof(double));
    for (int b = 0; b < B; b++)
        for (int h = 0; h < NH; h++)
            for (int i = 0; i < Tq; i++) {
                double mx = -INFINITY;
                for (int j = 0; j < Tk; j++) {
                    if (causal && j - i >= 1 + off) {
                        s[j] = -INFINITY;
                        continue;
                    }
                    const float *qi = q + ((size_t)b * Tq + i) * C + h * HS;
                    const float *kj = k + ((size_t)b * Tk + j) * C + h * HS;
                    double d = 0.0;
                    for (int e = 0; e < HS; e++) d += (double)qi[e] * kj[e];
                    s[j] = d / sqrt((double)HS);
                    mx = fmax(mx, s[j]);
                }
                double sum = 0.0;
                for (int j = 0; j < Tk; j++) sum += exp(s[j] - mx);
                size_t arow = (((size_t)b * NH + h) * Tq + i) * Tk;
                for (int j = 0; j < Tk; j++) att[arow + j] = exp(s[j] - mx) / sum;
                for (int e = 0; e < HS; e++) {
                    double o = 0.0;
                    for (int j = 0; j < Tk; j++)
                        o += att[arow + j] * dropout_scale(drop, arow + j) * v[((size_t)b * Tk + j) * C + h * HS + e];
                    out[((size_t)b * Tq + i) * C + h * HS + e] = o;
                }
            }
    free(s);
}

// ---------------------------------------------------------------------------------------------------------------
// Forward value tests

Test(kernels, linear_forward_matches_naive) {
    rng_seed(1);
    const int sizes[][3] = {{5, 7, 3}, {37, 129, 65}}; // odd sizes; the second crosses BLAS blocking
    for (int s = 0; s < 2; s++) {
        int N = sizes[s][0], C = sizes[s][1], OC = sizes[s][2];
        float *inp = falloc((size_t)N * C), *w = falloc((size_t)OC * C), *b = falloc(OC), *out = falloc((size_t)N * OC);
        double *ref = malloc((size_t)N * OC * sizeof(double));
        fill_uniform(inp, (size_t)N * C, -1, 1);
        fill_uniform(w, (size_t)OC * C, -1, 1);
        fill_uniform(b, OC, -1, 1);
        for (int with_bias = 0; with_bias < 2; with_bias++) {
            fill_uniform(out, (size_t)N * OC, 100, 200); // stale contents must be overwritten
            linear_forward(out, inp, w, with_bias ? b : NULL, N, C, OC);
            ref_linear(ref, inp, w, with_bias ? b : NULL, N, C, OC);
            double err = max_abs_diff(out, ref, (size_t)N * OC);
            cr_assert(err < 1e-5 * sqrt((double)C), "linear %dx%dx%d bias=%d: max err %g", N, C, OC, with_bias, err);
        }
        free(inp), free(w), free(b), free(out), free(ref);
    }
}

Test(kernels, layernorm_forward_matches_naive) {
    rng_seed(2);
    const int N = 5, C = 7;
    float inp[5 * 7], w[7], b[7], out[5 * 7], mean[5], rstd[5];
    double rout[5 * 7], rmean[5], rrstd[5];
    fill_uniform(inp, N * C, -2, 3);
    fill_uniform(w, C, 0.5f, 1.5f);
    fill_uniform(b, C, -1, 1);
    layernorm_forward(out, mean, rstd, inp, w, b, N, C);
    ref_layernorm(rout, rmean, rrstd, inp, w, b, N, C);
    cr_assert(max_abs_diff(out, rout, N * C) < 1e-5, "out err %g", max_abs_diff(out, rout, N * C));
    cr_assert(max_abs_diff(mean, rmean, N) < 1e-6, "mean err %g", max_abs_diff(mean, rmean, N));
    for (int r = 0; r < N; r++)
        cr_assert(fabs(rstd[r] - rrstd[r]) < 1e-5 * rrstd[r], "rstd[%d] %g vs %g", r, rstd[r], rrstd[r]);
}

Test(kernels, layernorm_two_pass_survives_large_offset) {
    // E[x^2] - E[x]^2 would lose everything here; two passes keep the variance.
    const int C = 8;
    float inp[8], w[8], b[8], out[8], mean, rstd;
    for (int c = 0; c < C; c++) {
        inp[c] = 10000.0f + (c % 2 ? 1.0f : -1.0f);
        w[c] = 1.0f;
        b[c] = 0.0f;
    }
    layernorm_forward(out, &mean, &rstd, inp, w, b, 1, C);
    for (int c = 0; c < C; c++) cr_assert(fabsf(out[c] - (c % 2 ? 1.0f : -1.0f)) < 1e-4f, "out[%d] = %g", c, out[c]);
}

static void check_attention_forward(int B, int Tq, int Tk, int NH, int HS, int causal, float p) {
    const int C = NH * HS;
    const size_t nq = (size_t)B * Tq * C, nk = (size_t)B * Tk * C, na = (size_t)B * NH * Tq * Tk;
    float *q = falloc(nq), *k = falloc(nk), *v = falloc(nk), *out = falloc(nq), *att = falloc(na);
    double *rout = malloc(nq * sizeof(double)), *ratt = malloc(na * sizeof(double));
    fill_uniform(q, nq, -2, 2);
    fill_uniform(k, nk, -2, 2);
    fill_uniform(v, nk, -1, 1);
    fill_uniform(att, na, 5, 6); // stale contents must be overwritten, masked entries included
    DropoutKey drop = {.seed = 0x1234567890abcdefull, .step = 7, .site = 3, .p = p};
    float *ws = att_ws(Tk, HS);
    attention_forward(out, att, ws, q, k, v, drop, causal, B, Tq, Tk, NH, HS, kernel_threads());
    free(ws);
    ref_attention(rout, ratt, q, k, v, drop, causal, B, Tq, Tk, NH, HS);
    double ea = max_abs_diff(att, ratt, na), eo = max_abs_diff(out, rout, nq);
    cr_assert(ea < 1e-6, "att err %g (B%d Tq%d Tk%d causal%d p%g)", ea, B, Tq, Tk, causal, p);
    cr_assert(eo < 1e-5, "out err %g (B%d Tq%d Tk%d causal%d p%g)", eo, B, Tq, Tk, causal, p);
    const int off = abs(Tk - Tq);
    for (size_t r = 0; r < (size_t)B * NH * Tq; r++) {
        int i = (int)(r % Tq);
        double sum = 0.0;
        for (int j = 0; j < Tk; j++) {
            sum += att[r * Tk + j];
            if (causal && j - i >= 1 + off) cr_assert(att[r * Tk + j] == 0.0f, "hidden key %d of query %d not 0", j, i);
        }
        // att is saved before dropout, so rows still sum to one
        cr_assert(fabs(sum - 1.0) < 1e-5, "att row %zu sums to %g", r, sum);
    }
    free(q), free(k), free(v), free(out), free(att), free(rout), free(ratt);
}

Test(kernels, attention_forward_matches_naive) {
    rng_seed(3);
    check_attention_forward(2, 5, 5, 3, 7, 1, 0.0f);
    check_attention_forward(2, 5, 5, 3, 7, 0, 0.0f);
    check_attention_forward(2, 5, 5, 3, 7, 1, 0.3f);
    check_attention_forward(2, 4, 6, 3, 7, 1, 0.3f); // Tk > Tq: the causal offset |Tk - Tq| widens the window
    check_attention_forward(2, 6, 4, 3, 7, 1, 0.0f);
    check_attention_forward(3, 1, 1, 2, 5, 1, 0.0f);
    check_attention_forward(1, 9, 9, 1, 24, 0, 0.5f);
}

Test(kernels, cross_entropy_matches_naive) {
    rng_seed(4);
    const int B = 3, n = 7;
    float z[3 * 7];
    int lab[3] = {0, 6, 3};
    for (int shift = 0; shift < 2; shift++) {
        fill_uniform(z, B * n, -3, 3);
        // +1000 would overflow exp without the max subtraction
        if (shift)
            for (int i = 0; i < B * n; i++) z[i] += 1000.0f;
        double ref = 0.0;
        for (int b = 0; b < B; b++) {
            double mx = -INFINITY, s = 0.0;
            for (int j = 0; j < n; j++) mx = fmax(mx, z[b * n + j]);
            for (int j = 0; j < n; j++) s += exp(z[b * n + j] - mx);
            ref += mx + log(s) - z[b * n + lab[b]];
        }
        ref /= B;
        float got = cross_entropy_forward(z, lab, B, n);
        cr_assert(isfinite(got) && fabs(got - ref) < 1e-5 * fmax(1.0, fabs(ref)), "shift %d: %g vs %g", shift, got,
                  ref);
    }
}

Test(kernels, l1_and_mse_match_naive) {
    rng_seed(5);
    const int N = 6, C = 5;
    float p[6 * 5], t[6 * 5], mask[6] = {1, 0, 1, 0, 0, 2}; // any non-zero marks a row
    fill_uniform(p, N * C, -1, 1);
    fill_uniform(t, N * C, -1, 1);
    double l1 = 0.0, mse = 0.0;
    for (int r = 0; r < N; r++)
        for (int c = 0; c < C; c++) {
            double d = (double)p[r * C + c] - t[r * C + c];
            if (mask[r] != 0.0f) l1 += fabs(d);
            mse += d * d;
        }
    l1 /= 3.0 * C;
    mse /= (double)N * C;
    cr_assert(fabs(l1_masked_forward(p, t, mask, N, C) - l1) < 1e-6, "l1");
    cr_assert(fabs(mse_forward(p, t, N, C) - mse) < 1e-6, "mse");
    float none[6] = {0};
    cr_assert(l1_masked_forward(p, t, none, N, C) == 0.0f, "no masked row must give 0");
    float dp[6 * 5] = {0};
    l1_masked_backward(dp, 1.0f, p, t, none, N, C);
    for (int i = 0; i < N * C; i++) cr_assert(dp[i] == 0.0f, "no masked row must give no gradient");
}

Test(kernels, l1_backward_sign_of_zero_is_zero) {
    float p[4] = {1, 2, 3, 4}, t[4] = {1, 1, 3, 5}, mask[1] = {1}, dp[4] = {0};
    l1_masked_backward(dp, 1.0f, p, t, mask, 1, 4);
    cr_assert(dp[0] == 0.0f && dp[2] == 0.0f, "sign(0) must be 0, got %g %g", dp[0], dp[2]);
    cr_assert(dp[1] == 0.25f && dp[3] == -0.25f, "got %g %g", dp[1], dp[3]);
}

// 1 - mean CCC by another route than the kernel's: one pass of raw moments, Pearson rho, then
// CCC = 2 rho sx sy / (sx^2 + sy^2 + (mx - my)^2); pred, target (N, C)
static double ref_ccc_loss(const float *p, const float *t, int N, int C) {
    double sum = 0.0;
    for (int c = 0; c < C; c++) {
        double sx = 0.0, sy = 0.0, sxx = 0.0, syy = 0.0, sxy = 0.0;
        for (int r = 0; r < N; r++) {
            double x = p[r * C + c], y = t[r * C + c];
            sx += x, sy += y, sxx += x * x, syy += y * y, sxy += x * y;
        }
        double mx = sx / N, my = sy / N;
        double sdx = sqrt(fmax(sxx / N - mx * mx, 0.0)), sdy = sqrt(fmax(syy / N - my * my, 0.0));
        double rho = (sxy / N - mx * my) / (sdx * sdy);
        sum += 2.0 * rho * sdx * sdy / (sdx * sdx + sdy * sdy + (mx - my) * (mx - my));
    }
    return 1.0 - sum / C;
}

Test(kernels, ccc_matches_pearson_form) {
    rng_seed(10);
    // the fine-tuning shape (batch 64, arousal/valence/dominance), one column, and a short odd batch
    static const int SHAPES[][2] = {{64, 3}, {64, 1}, {7, 2}};
    for (size_t s = 0; s < sizeof SHAPES / sizeof SHAPES[0]; s++) {
        const int N = SHAPES[s][0], C = SHAPES[s][1];
        float p[64 * 3], t[64 * 3], noise[64 * 3];
        fill_uniform(t, (size_t)N * C, -1, 1);
        fill_uniform(noise, (size_t)N * C, -1, 1);
        // correlated, shifted and scaled so every term of the denominator matters
        for (int i = 0; i < N * C; i++) p[i] = 0.8f * t[i] + 0.4f * noise[i] + 0.1f * (float)(i % C + 1);
        double ref = ref_ccc_loss(p, t, N, C);
        float got = ccc_forward(p, t, N, C);
        cr_assert(ref > 0.0 && ref < 1.0, "%dx%d: a partly concordant case, got reference %g", N, C, ref);
        cr_assert(fabs(got - ref) < 1e-6, "%dx%d: %.9g vs %.9g", N, C, got, ref);
        // identical columns agree perfectly
        cr_assert(fabs(ccc_forward(t, t, N, C)) < 1e-6, "%dx%d: ccc(t, t) = 1", N, C);
    }
}

Test(kernels, ccc_constant_equal_is_one_with_zero_gradient) {
    rng_seed(11);
    enum { N = 16, C = 2 };
    float p[N * C], t[N * C];
    fill_uniform(p, N * C, -1, 1);
    fill_uniform(t, N * C, -1, 1);
    for (int r = 0; r < N; r++) p[r * C] = t[r * C] = 0.3f;  // column 0: both constant and equal
    // column 1 alone through the reference
    float p1[N], t1[N];
    for (int r = 0; r < N; r++) p1[r] = p[r * C + 1], t1[r] = t[r * C + 1];
    double ccc1 = 1.0 - ref_ccc_loss(p1, t1, N, 1);
    float got = ccc_forward(p, t, N, C);
    cr_assert(fabs(got - (1.0 - (1.0 + ccc1) / 2)) < 1e-6, "column 0 must count as CCC = 1: %g", got);
    float dp[N * C];
    for (int i = 0; i < N * C; i++) dp[i] = 0.25f;  // backward accumulates
    ccc_backward(dp, 1.0f, p, t, N, C);
    for (int r = 0; r < N; r++) cr_assert(dp[r * C] == 0.25f, "row %d: constant-equal column got a gradient", r);
    int moved = 0;
    for (int r = 0; r < N; r++) moved += dp[r * C + 1] != 0.25f;
    cr_assert(moved > 0, "the other column must get its gradient");
    // every column constant and equal: loss exactly 0, no gradient, no NaN
    for (int i = 0; i < N * C; i++) p[i] = t[i] = -1.5f;
    cr_assert(ccc_forward(p, t, N, C) == 0.0f, "all constant and equal: loss %g", ccc_forward(p, t, N, C));
    for (int i = 0; i < N * C; i++) dp[i] = 0.0f;
    ccc_backward(dp, 1.0f, p, t, N, C);
    for (int i = 0; i < N * C; i++) cr_assert(dp[i] == 0.0f, "item %d: %g", i, dp[i]);
    // constant but different from the target: d > 0 and cov = 0, so CCC = 0 and the loss is 1
    for (int r = 0; r < N; r++) p[r * C] = 0.3f, p[r * C + 1] = 0.7f;
    fill_uniform(t, N * C, -1, 1);
    cr_assert(fabs(ccc_forward(p, t, N, C) - 1.0f) < 1e-6, "constant prediction: loss %g", ccc_forward(p, t, N, C));
    // no rows: 0, as mse
    cr_assert(ccc_forward(p, t, 0, C) == 0.0f);
}

Test(kernels, ccc_anti_correlated_near_minus_one) {
    rng_seed(12);
    enum { N = 64, C = 3 };
    float p[N * C], t[N * C], noise[N * C];
    // rows in pairs (v, -v): means exactly 0, target = -pred, so CCC = -1 exactly, the loss 2 and its maximum
    fill_uniform(p, N * C / 2, -1, 1);
    for (int r = N / 2 - 1; r >= 0; r--)
        for (int c = 0; c < C; c++) {
            float v = p[r * C + c];
            p[2 * r * C + c] = v, p[(2 * r + 1) * C + c] = -v;
        }
    for (int i = 0; i < N * C; i++) t[i] = -p[i];
    float got = ccc_forward(p, t, N, C);
    cr_assert(fabs(got - 2.0) < 1e-6, "exact anti-concordance: loss %.9g, want 2", got);
    float dp[N * C] = {0};
    ccc_backward(dp, 1.0f, p, t, N, C);
    for (int i = 0; i < N * C; i++) cr_assert(fabs(dp[i]) < 1e-6, "item %d: %g at the loss's maximum", i, dp[i]);
    // with noise: near -1, still the reference
    fill_uniform(noise, N * C, -0.1f, 0.1f);
    for (int i = 0; i < N * C; i++) t[i] = -p[i] + noise[i];
    double ref = ref_ccc_loss(p, t, N, C);
    got = ccc_forward(p, t, N, C);
    cr_assert(ref > 1.95 && ref < 2.0, "reference %g", ref);
    cr_assert(fabs(got - ref) < 1e-6, "%.9g vs %.9g", got, ref);
}

Test(kernels, elementwise_forward) {
    float a[6] = {-1, 0, 2, -3, 4, 0.5f}, b[6] = {1, 1, 1, 1, 1, 1}, o[6];
    relu_forward(o, a, 6);
    const float relu_ref[6] = {0, 0, 2, 0, 4, 0.5f};
    for (int i = 0; i < 6; i++) cr_assert(o[i] == relu_ref[i], "relu[%d]", i);
    add_forward(o, a, b, 6);
    for (int i = 0; i < 6; i++) cr_assert(o[i] == a[i] + 1.0f, "add[%d]", i);
    // relu backward gates on the output, so it works after an in-place forward
    float x[4] = {-1, 2, 0, 3}, g[4] = {1, 1, 1, 1}, dx[4] = {0};
    relu_forward(x, x, 4);
    relu_backward(dx, g, x, 4);
    cr_assert(dx[0] == 0 && dx[1] == 1 && dx[2] == 0 && dx[3] == 1, "relu backward mask");
    // concat (2, 3 + 2)
    float ca[6] = {1, 2, 3, 4, 5, 6}, cb[4] = {7, 8, 9, 10}, co[10];
    concat_forward(co, ca, cb, 2, 3, 2);
    const float cref[10] = {1, 2, 3, 7, 8, 4, 5, 6, 9, 10};
    for (int i = 0; i < 10; i++) cr_assert(co[i] == cref[i], "concat[%d] = %g", i, co[i]);
}

// fairseq's table for C = 8: half = 4, w_k = 10000^(-k/3).
Test(kernels, sinusoid_table_spot_values) {
    const int Tmax = 6, C = 8;
    float pe[7 * 8];
    fill_uniform(pe, 7 * 8, 3, 4);
    sinusoid_table(pe, Tmax, C);
    for (int c = 0; c < C; c++) cr_assert(pe[c] == 0.0f, "row 0 must be zero, pe[0][%d] = %g", c, pe[c]);
    for (int p = 1; p <= Tmax; p++)
        for (int kk = 0; kk < 4; kk++) {
            double w = pow(10000.0, -kk / 3.0);
            cr_assert(fabs(pe[p * C + kk] - sin(p * w)) < 2e-6, "sin p=%d k=%d: %g vs %g", p, kk, pe[p * C + kk],
                      sin(p * w));
            cr_assert(fabs(pe[p * C + 4 + kk] - cos(p * w)) < 2e-6, "cos p=%d k=%d", p, kk);
        }
    // row 1 literally: [sin 1, sin w1, sin w2, sin w3, cos 1, cos w1, cos w2, cos w3] (concatenated, not interleaved)
    const double w1 = pow(10000.0, -1.0 / 3), w2 = pow(10000.0, -2.0 / 3), w3 = 1e-4;
    const double row1[8] = {sin(1.0), sin(w1), sin(w2), sin(w3), cos(1.0), cos(w1), cos(w2), cos(w3)};
    for (int c = 0; c < C; c++)
        cr_assert(fabs(pe[C + c] - row1[c]) < 1e-6, "row 1 col %d: %g vs %g", c, pe[C + c], row1[c]);

    // Odd width: same frequencies (half = 4) plus a zero last column.
    float pe9[7 * 9];
    fill_uniform(pe9, 7 * 9, 3, 4);
    sinusoid_table(pe9, Tmax, 9);
    for (int p = 0; p <= Tmax; p++) {
        for (int c = 0; c < 8; c++) cr_assert(pe9[p * 9 + c] == pe[p * 8 + c], "C=9 row %d col %d", p, c);
        cr_assert(pe9[p * 9 + 8] == 0.0f, "C=9 row %d: last column must be 0", p);
    }
}

Test(kernels, sinusoid_table_wide) {
    const int Tmax = 100, C = 240, half = 120;
    float *pe = falloc((size_t)(Tmax + 1) * C);
    sinusoid_table(pe, Tmax, C);
    for (int c = 0; c < C; c++) cr_assert(pe[c] == 0.0f, "row 0 (padding) must be zero");
    double worst = 0.0;
    for (int p = 1; p <= Tmax; p++)
        for (int kk = 0; kk < half; kk++) {
            double w = exp(-kk * log(10000.0) / (half - 1));
            worst = fmax(worst, fabs(pe[p * C + kk] - sin(p * w)));
            worst = fmax(worst, fabs(pe[p * C + half + kk] - cos(p * w)));
        }
    // fp32 frequencies and angles (as the reference computes them) cost a few ulps of the angle at p = 100
    cr_assert(worst < 5e-5, "max deviation from the exact table %g", worst);
    free(pe);
}

Test(kernels, embed_zero_step_rule) {
    const int B = 2, T = 5, C = 8;
    float pe[6 * 8], inp[2 * 5 * 8], out[2 * 5 * 8];
    sinusoid_table(pe, T, C);
    rng_seed(6);
    fill_away_from_zero(inp, (size_t)B * T * C, 0.1f, 1.0f);
    // batch 0: step 1 has channel 0 == 0 but other channels non-zero -> padding; steps after it keep t + 1
    inp[(0 * T + 1) * C] = 0.0f;
    // batch 0: step 3 has channel 0 == -0.0, which compares equal to 0 -> padding
    inp[(0 * T + 3) * C] = -0.0f;
    // batch 1: step 0 zero, everything else keeps its absolute position
    inp[(1 * T + 0) * C] = 0.0f;
    const int pos[2][5] = {{1, 0, 3, 0, 5}, {0, 2, 3, 4, 5}};
    embed_forward(out, inp, pe, B, T, C);
    const float s = sqrtf(8.0f);
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++)
            for (int c = 0; c < C; c++) {
                size_t i = ((size_t)b * T + t) * C + c;
                float want = s * inp[i] + pe[pos[b][t] * C + c];
                cr_assert(out[i] == want, "b%d t%d c%d: %g vs %g (pos %d)", b, t, c, out[i], want, pos[b][t]);
            }
}

// ---------------------------------------------------------------------------------------------------------------
// Philox and dropout

Test(kernels, philox_known_answers) {
    // Random123 kat_vectors, philox4x32 10 (counter words, key words, expected output)
    static const uint32_t kat[3][10] = {
        {0, 0, 0, 0, 0, 0, 0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8},
        {0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0x408f276d, 0x41c83b0e, 0xa20bc7c6,
         0x6d5451fd},
        {0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344, 0xa4093822, 0x299f31d0, 0xd16cfe09, 0x94fdcceb, 0x5001e420,
         0x24126ea1},
    };
    for (int t = 0; t < 3; t++) {
        Philox4 c = {{kat[t][0], kat[t][1], kat[t][2], kat[t][3]}};
        Philox4 r = philox4x32_10(c, kat[t][4], kat[t][5]);
        for (int w = 0; w < 4; w++)
            cr_assert(r.v[w] == kat[t][6 + w], "vector %d word %d: %08x, expected %08x", t, w, r.v[w], kat[t][6 + w]);
    }
}

Test(kernels, dropout_statistics_and_contract) {
    const size_t n = 1000000;
    float *x = falloc(n), *y = falloc(n);
    rng_seed(7);
    fill_uniform(x, n, 0.5f, 1.5f);
    const float ps[2] = {0.1f, 0.3f};
    for (int t = 0; t < 2; t++) {
        DropoutKey key = {.seed = 42 + t, .step = 11, .site = 2, .p = ps[t]};
        dropout_forward(y, x, key, n);
        size_t kept = 0;
        for (size_t i = 0; i < n; i++) {
            float sc = dropout_scale(key, i);
            // element i uses dropout_scale(key, i) bit for bit
            cr_assert(y[i] == x[i] * sc, "p=%g element %zu: %g vs %g", ps[t], i, y[i], x[i] * sc);
            if (y[i] != 0.0f) {
                kept++;
                double want = (double)x[i] / (1.0 - ps[t]);
                cr_assert(fabs(y[i] - want) <= 2e-7 * want, "kept value %g, want x/(1-p) = %g", y[i], want);
            }
        }
        double rate = (double)kept / n, expect = 1.0 - ps[t];
        cr_assert(fabs(rate - expect) < 0.01 * expect, "p=%g: keep rate %g, expected %g", ps[t], rate, expect);
    }
    free(x), free(y);
}

// A data-parallel rank draws, with offset = its first element in the global batch, exactly the global batch's
// masks for its slice: dropout of a tensor's tail, and attention of a batch's last samples.
Test(kernels, dropout_offset_is_the_global_slice) {
    const size_t n = 2006, half = 1003; // the split is off the Philox block of 4
    float *x = falloc(n), *full = falloc(n), *part = falloc(half);
    rng_seed(9);
    fill_uniform(x, n, 0.5f, 1.5f);
    DropoutKey key = {.seed = 77, .step = 4, .site = 9, .p = 0.3f};
    dropout_forward(full, x, key, n);
    key.offset = half;
    dropout_forward(part, x + half, key, half);
    cr_assert(memcmp(part, full + half, half * sizeof(float)) == 0, "dropout with an offset is not the tail's mask");

    const int B = 3, NH = 2, T = 13, HS = 8, C = NH * HS, b0 = 1;
    const size_t per_x = (size_t)T * C, per_att = (size_t)NH * T * T;
    float *q = falloc(B * per_x), *k = falloc(B * per_x), *v = falloc(B * per_x);
    float *out = falloc(B * per_x), *att = falloc(B * per_att), *out1 = falloc(B * per_x), *att1 = falloc(B * per_att);
    fill_uniform(q, B * per_x, -2, 2);
    fill_uniform(k, B * per_x, -2, 2);
    fill_uniform(v, B * per_x, -1, 1);
    DropoutKey drop = {.seed = 5, .step = 2, .site = 1, .p = 0.2f};
    float *ws = att_ws(T, HS);
    attention_forward(out, att, ws, q, k, v, drop, 1, B, T, T, NH, HS, kernel_threads());
    drop.offset = b0 * per_att;
    attention_forward(out1, att1, ws, q + b0 * per_x, k + b0 * per_x, v + b0 * per_x, drop, 1, B - b0, T, T, NH, HS,
                      kernel_threads());
    cr_assert(memcmp(out1, out + b0 * per_x, (B - b0) * per_x * sizeof(float)) == 0,
              "attention of samples [1, 3) with an offset differs from the whole batch's");
    free(ws);
    free(x), free(full), free(part), free(q), free(k), free(v), free(out), free(att), free(out1), free(att1);
}

Test(kernels, dropout_keys_and_identity) {
    const size_t n = 1003; // not a multiple of 4: the tail block must be handled
    float *x = falloc(n), *y1 = falloc(n), *y2 = falloc(n), *y3 = falloc(n);
    rng_seed(8);
    fill_uniform(x, n, 0.5f, 1.5f);
    DropoutKey a = {.seed = 5, .step = 1, .site = 1, .p = 0.5f};
    DropoutKey b = a, c = a;
    b.site = 2;
    c.step = 2;
    dropout_forward(y1, x, a, n);
    dropout_forward(y2, x, a, n);
    cr_assert(memcmp(y1, y2, n * sizeof(float)) == 0, "same key must redraw the same mask");
    dropout_forward(y2, x, b, n);
    dropout_forward(y3, x, c, n);
    size_t diff_site = 0, diff_step = 0;
    for (size_t i = 0; i < n; i++) {
        diff_site += (y1[i] == 0.0f) != (y2[i] == 0.0f);
        diff_step += (y1[i] == 0.0f) != (y3[i] == 0.0f);
    }
    cr_assert(diff_site > n / 4 && diff_step > n / 4, "site/step must give independent masks (%zu, %zu)", diff_site,
              diff_step);
    // p == 0 is the identity, also in place
    DropoutKey z = {.seed = 5, .p = 0.0f};
    dropout_forward(y1, x, z, n);
    cr_assert(memcmp(y1, x, n * sizeof(float)) == 0, "p = 0 must copy");
    dropout_forward(y1, y1, a, n);
    for (size_t i = 0; i < n; i++) cr_assert(y1[i] == x[i] * dropout_scale(a, i), "in-place dropout element %zu", i);
    free(x), free(y1), free(y2), free(y3);
}

// The AVX2 Philox rounds (eight blocks per instruction stream) and the generic ones give the same multipliers, bit
// for bit, both equal to dropout_scale: both paths in this process, chosen as a portable build chooses them at run
// time (base/cpu.h). Starts off the block of 4 and the group of 32, lengths with partial groups, keys with both
// seed words set, and an offset whose blocks cross 2^32 (the counter's high word).
Test(kernels, dropout_avx2_equals_generic) {
    if (!avt_cpu_avx2()) cr_skip_test("no AVX2 on this CPU (or AVT_CPU=generic): one path only");
    enum { N = 1000 };
    const DropoutKey keys[] = {
        {.seed = 0x243f6a8885a308d3ull, .step = 7, .site = 3, .p = 0.3f},
        {.seed = 1, .step = 0xffffffffu, .site = 0xfffffffeu, .p = 0.5f, .offset = ((uint64_t)1 << 34) - 37},
    };
    const size_t bases[] = {0, 1, 3, 31, 33, 1000003}, lens[] = {1, 7, 32, 33, N};
    float *a = falloc(N), *b = falloc(N);
    for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++)
        for (size_t i = 0; i < sizeof bases / sizeof bases[0]; i++)
            for (size_t l = 0; l < sizeof lens / sizeof lens[0]; l++) {
                avt_cpu_force_generic(0);
                dropout_scales(a, keys[k], bases[i], lens[l]);
                avt_cpu_force_generic(1);
                dropout_scales(b, keys[k], bases[i], lens[l]);
                cr_assert(memcmp(a, b, lens[l] * sizeof(float)) == 0, "key %zu base %zu n %zu: AVX2 and generic differ",
                          k, bases[i], lens[l]);
                for (size_t j = 0; j < lens[l]; j++)
                    cr_assert(a[j] == dropout_scale(keys[k], bases[i] + j), "key %zu base %zu n %zu element %zu", k,
                              bases[i], lens[l], j);
            }
    // the environment's way to the generic path (a node to compare with)
    cr_assert_eq(setenv("AVT_CPU", "generic", 1), 0);
    avt_cpu_force_generic(0);
    cr_assert(!avt_cpu_avx2(), "AVT_CPU=generic not honoured");
    cr_assert_eq(unsetenv("AVT_CPU"), 0);
    avt_cpu_force_generic(0);
    cr_assert(avt_cpu_avx2());
    free(a), free(b);
}

// ---------------------------------------------------------------------------------------------------------------
// NULL gradients and thread-count independence

Test(kernels, null_gradients_are_skipped) {
    rng_seed(9);
    const int N = 6, C = 5, OC = 4;
    float inp[30], w[20], dout[24], dinp[30] = {0}, dw[20] = {0}, db[4] = {0}, dw2[20] = {0};
    fill_uniform(inp, 30, -1, 1);
    fill_uniform(w, 20, -1, 1);
    fill_uniform(dout, 24, -1, 1);
    linear_backward(dinp, dw, db, dout, inp, w, N, C, OC);
    linear_backward(NULL, dw2, NULL, dout, inp, w, N, C, OC);
    cr_assert(memcmp(dw, dw2, sizeof dw) == 0, "linear dweight must not depend on the other outputs");

    const int B = 1, T = 4, NH = 2, HS = 3;
    float q[24], k[24], v[24], g[24], out[24], att[32];
    float dq[24] = {0}, dk[24] = {0}, dv[24] = {0}, dk2[24] = {0};
    fill_uniform(q, 24, -1, 1);
    fill_uniform(k, 24, -1, 1);
    fill_uniform(v, 24, -1, 1);
    fill_uniform(g, 24, -1, 1);
    DropoutKey nod = {0};
    float *ws = att_ws(T, HS);
    attention_forward(out, att, ws, q, k, v, nod, 1, B, T, T, NH, HS, kernel_threads());
    attention_backward(dq, dk, dv, ws, g, q, k, v, att, nod, B, T, T, NH, HS, kernel_threads());
    attention_backward(NULL, dk2, NULL, ws, g, q, k, v, att, nod, B, T, T, NH, HS, kernel_threads());
    free(ws);
    cr_assert(memcmp(dk, dk2, sizeof dk) == 0, "attention dk must not depend on the other outputs");
}

#ifdef _OPENMP
// Reductions use fixed chunks, so 1 and 2 threads must agree bit for bit.
Test(kernels, reductions_independent_of_thread_count) {
    rng_seed(10);
    const size_t N = 700;
    const int C = 96, OC = 130;
    float *inp = falloc(N * C), *w = falloc(C), *b = falloc(C), *out = falloc(N * C), *mean = falloc(N),
          *rstd = falloc(N), *dout = falloc(N * C);
    fill_uniform(inp, N * C, -1, 1);
    fill_uniform(w, C, 0.5f, 1.5f);
    fill_uniform(dout, N * C, -1, 1);
    layernorm_forward(out, mean, rstd, inp, w, b, N, C);
    float *lw = falloc(OC * (size_t)C), *lg = falloc(N * OC);
    fill_uniform(lw, OC * (size_t)C, -1, 1);
    fill_uniform(lg, N * OC, -1, 1);
    float *dw[2], *db[2], *dx[2], *dlb[2];
    const int saved = omp_get_max_threads();
    for (int r = 0; r < 2; r++) {
        omp_set_num_threads(r + 1);
        dw[r] = falloc(C), db[r] = falloc(C), dx[r] = falloc(N * C), dlb[r] = falloc(OC);
        float *ws = ln_ws(N, C);
        layernorm_backward(dx[r], dw[r], db[r], ws, dout, inp, w, mean, rstd, N, C);
        free(ws);
        linear_backward(NULL, NULL, dlb[r], lg, inp, lw, N, C, OC);
    }
    omp_set_num_threads(saved);
    cr_assert(memcmp(dw[0], dw[1], C * sizeof(float)) == 0, "layernorm dweight depends on the thread count");
    cr_assert(memcmp(db[0], db[1], C * sizeof(float)) == 0, "layernorm dbias depends on the thread count");
    cr_assert(memcmp(dx[0], dx[1], N * C * sizeof(float)) == 0, "layernorm dinp depends on the thread count");
    cr_assert(memcmp(dlb[0], dlb[1], OC * sizeof(float)) == 0, "linear dbias depends on the thread count");
    for (int r = 0; r < 2; r++) free(dw[r]), free(db[r]), free(dx[r]), free(dlb[r]);
    free(inp), free(w), free(b), free(out), free(mean), free(rstd), free(dout), free(lw), free(lg);
}
#endif
