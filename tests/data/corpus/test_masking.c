// Tests for data/corpus/masking.c: plans equal the Python twin's (tests/reference/masking_ref.py) draw for draw, apply does
// what each action says, and the statistics over many samples match docs/model.md §3.2.
#include <criterion/criterion.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/corpus/masking.h"
#include "tests/testutil.h"

static void fx_setup(void) { test_tmpdir(); }
TestSuite(masking, .init = fx_setup, .fini = test_tmpdir_remove);

// Length of the random-frame sample at a dataset position (masking_ref.py's other_len).
static int other_len(size_t pos) { return (int)(pos * 7919 % 131); }

static void plan_full(MaskPlan *p, uint64_t seed, uint32_t epoch, size_t utt, size_t pos, int len, int T,
                      size_t n_items) {
    masking_plan(p, seed, epoch, utt, pos, len, T, n_items);
    masking_plan_frame(p, other_len(p->frame_pos));
}

Test(masking, plans_match_python_twin) {
    static const struct { uint64_t seed; uint32_t epoch; size_t utt, pos; int len, T; size_t n_items; } cs[] = {
        {1, 0, 0, 0, 1, 100, 500000},          {1, 0, 1, 1, 2, 100, 500000},
        {1, 0, 2, 2, 20, 100, 500000},         {1, 0, 3, 3, 21, 100, 500000},
        {1, 0, 4, 4, 40, 100, 500000},         {1, 0, 5, 5, 60, 100, 500000},
        {1, 0, 6, 6, 99, 100, 500000},         {1, 0, 7, 7, 100, 100, 500000},
        {1, 0, 8, 8, 101, 100, 500000},        {1, 0, 9, 9, 250, 100, 500000},
        {1, 1, 9, 9, 250, 100, 500000},        {1, 39, 9, 9, 250, 100, 500000},
        {7, 3, 1092008, 499999, 100, 100, 500000}, {7, 3, 4000000000u, 0, 77, 100, 2},
        {7, 3, 12, 1, 77, 100, 2},             {7, 3, 12, 0, 77, 100, 1},
        {0xFFFFFFFFFFFFFFFFull, 0xFFFFFFFFu, 0xFFFFFFFFu, 3, 100, 100, 4},
        {0x123456789ABCDEF0ull, 2, 31337, 1234, 0, 100, 1092009},
        {0x123456789ABCDEF0ull, 2, 31338, 1235, 3, 3, 1092009},
        {0x123456789ABCDEF0ull, 2, 31339, 1236, 16, 16, 1092009},
        {0x123456789ABCDEF0ull, 2, 31340, 1237, 1024, 1024, 1092009},
        {0x123456789ABCDEF0ull, 2, 31341, 1238, 5000, 1024, 1092009},
    };
    enum { NC = sizeof cs / sizeof cs[0] };
    const char *cases = test_path("cases.txt"), *out = test_path("ref.txt");
    FILE *f = fopen(cases, "w");
    cr_assert_not_null(f);
    for (int c = 0; c < NC; c++)
        fprintf(f, "%llu %u %zu %zu %d %d %zu\n", (unsigned long long)cs[c].seed, cs[c].epoch, cs[c].utt, cs[c].pos,
                cs[c].len, cs[c].T, cs[c].n_items);
    cr_assert_eq(fclose(f), 0);
    cr_assert_eq(test_run("%s tests/reference/masking_ref.py %s %s", test_python(), cases, out), 0);

    FILE *g = fopen(out, "r");
    cr_assert_not_null(g);
    static char want[MASK_T_MAX + 128], got[MASK_T_MAX + 128];
    for (int c = 0; c < NC; c++) {
        cr_assert_not_null(fgets(want, sizeof want, g), "twin wrote fewer than %d lines", NC);
        MaskPlan p;
        plan_full(&p, cs[c].seed, cs[c].epoch, cs[c].utt, cs[c].pos, cs[c].len, cs[c].T, cs[c].n_items);
        int n = snprintf(got, sizeof got, "%d %d %zu %d ", p.n_spans, p.n_masked, p.frame_pos, p.frame_step);
        for (int t = 0; t < p.T; t++) got[n++] = (char)('0' + p.action[t]);
        got[n++] = '\n';
        got[n] = '\0';
        cr_assert_str_eq(got, want, "case %d (seed %llu epoch %u utt %zu len %d T %d)", c,
                         (unsigned long long)cs[c].seed, cs[c].epoch, cs[c].utt, cs[c].len, cs[c].T);
    }
    cr_assert_null(fgets(want, sizeof want, g), "twin wrote extra lines");
    fclose(g);
}

Test(masking, span_count_is_exact_ceil_and_spans_stay_in_range) {
    static const int len[] = {0, 1, 2, 20, 21, 40, 41, 60, 99, 100, 150};
    static const int want[] = {0, 1, 1, 1, 2, 2, 3, 3, 5, 5, 5}; // 150 is truncated to T = 100
    for (size_t c = 0; c < sizeof len / sizeof len[0]; c++) {
        for (size_t utt = 0; utt < 200; utt++) {
            MaskPlan p;
            masking_plan(&p, 5, 0, utt, utt, len[c], 100, 1000);
            cr_assert_eq(p.n_spans, want[c], "len %d: %d spans", len[c], p.n_spans);
            cr_assert_eq(p.len, len[c] < 100 ? len[c] : 100);
            int first = -1, n = 0;
            for (int t = 0; t < 100; t++) {
                if (p.action[t] == MASK_OFF) continue;
                if (first < 0) first = t;
                n++;
            }
            cr_assert_eq(n, p.n_masked);
            cr_assert_leq(n, MASK_SPAN * p.n_spans);
            if (p.n_spans) cr_assert_lt(first, p.len, "len %d: first masked step %d starts no span", len[c], first);
        }
    }
}

// E[masked steps] = sum_t P(some start covers t) = sum_t 1 - (1 - c_t / len)^n_spans, c_t = starts covering t.
static double expected_coverage(int len, int T) {
    int n = (len * 5 + 99) / 100;
    double e = 0.0;
    for (int t = 0; t < T; t++) {
        int lo = t - (MASK_SPAN - 1) > 0 ? t - (MASK_SPAN - 1) : 0, hi = t < len - 1 ? t : len - 1;
        int c = hi >= lo ? hi - lo + 1 : 0;
        e += 1.0 - pow(1.0 - (double)c / len, n);
    }
    return e;
}

Test(masking, coverage_and_action_frequencies) {
    enum { N = 20000, T = 100 };
    static const int len[] = {100, 99, 57, 20, 7};
    size_t counts[4] = {0};
    for (size_t c = 0; c < sizeof len / sizeof len[0]; c++) {
        double sum = 0.0, sum2 = 0.0;
        for (size_t utt = 0; utt < N; utt++) {
            MaskPlan p;
            masking_plan(&p, 11, 4, utt, utt, len[c], T, N);
            sum += p.n_masked;
            sum2 += (double)p.n_masked * p.n_masked;
            for (int t = 0; t < T; t++) counts[p.action[t]]++;
        }
        double mean = sum / N, sd = sqrt(fmax(sum2 / N - mean * mean, 0.0)), e = expected_coverage(len[c], T);
        // len 20: one span always fully inside T, so exactly 3 steps (sd 0)
        cr_assert_leq(fabs(mean - e), 5.0 * sd / sqrt((double)N) + 1e-9, "len %d: mean masked %.4f, expected %.4f",
                      len[c], mean, e);
        if (len[c] == 100) cr_assert(mean > 13.0 && mean < 15.0, "len 100 covers %.3f steps, ~13.6 expected", mean);
    }
    size_t m = counts[MASK_ZERO] + counts[MASK_RANDOM] + counts[MASK_KEEP];
    static const double prob[4] = {0.0, 0.8, 0.1, 0.1};
    for (int a = MASK_ZERO; a <= MASK_KEEP; a++) {
        double mu = m * prob[a], sigma = sqrt(m * prob[a] * (1.0 - prob[a]));
        cr_assert_leq(fabs((double)counts[a] - mu), 5.0 * sigma, "action %d: %zu of %zu masked steps, %.0f expected",
                      a, counts[a], m, mu);
    }
}

Test(masking, random_frame_is_another_sample_uniformly) {
    enum { N = 40000, ITEMS = 8 };
    size_t hits[ITEMS] = {0};
    for (size_t utt = 0; utt < N; utt++) {
        MaskPlan p;
        size_t pos = utt % ITEMS;
        masking_plan(&p, 3, 0, utt, pos, 50, 100, ITEMS);
        cr_assert_neq(p.frame_pos, pos);
        cr_assert_lt(p.frame_pos, ITEMS);
        hits[p.frame_pos]++;
        int ol = 1 + (int)(utt % 150);
        masking_plan_frame(&p, ol);
        cr_assert(p.frame_step >= 0 && p.frame_step < (ol < 100 ? ol : 100), "step %d of %d", p.frame_step, ol);
    }
    for (int i = 0; i < ITEMS; i++) // each position is excluded for 1/8 of the samples: N / 8 expected hits each
        cr_assert_leq(fabs((double)hits[i] - N / 8.0), 5.0 * sqrt(N / 8.0), "position %d chosen %zu times", i, hits[i]);
    MaskPlan p;
    masking_plan(&p, 3, 0, 17, 0, 50, 100, 1); // alone in the dataset: the frame comes from itself
    cr_assert_eq(p.frame_pos, 0);
    masking_plan_frame(&p, 0);
    cr_assert_eq(p.frame_step, -1);
}

Test(masking, same_key_same_plan_other_keys_differ) {
    MaskPlan a, b;
    plan_full(&a, 9, 2, 123, 5, 100, 100, 1000);
    plan_full(&b, 9, 2, 123, 5, 100, 100, 1000);
    cr_assert_eq(memcmp(&a, &b, sizeof a), 0);
    int differ_epoch = 0, differ_utt = 0, differ_seed = 0;
    for (uint32_t k = 0; k < 20; k++) {
        plan_full(&b, 9, 3 + k, 123, 5, 100, 100, 1000);
        differ_epoch += memcmp(a.action, b.action, sizeof a.action) != 0;
        plan_full(&b, 9, 2, 124 + k, 5, 100, 100, 1000);
        differ_utt += memcmp(a.action, b.action, sizeof a.action) != 0;
        plan_full(&b, 10 + k, 2, 123, 5, 100, 100, 1000);
        differ_seed += memcmp(a.action, b.action, sizeof a.action) != 0;
    }
    // two random 5-span masks of 100 steps coincide with probability ~1e-8
    cr_assert_eq(differ_epoch, 20);
    cr_assert_eq(differ_utt, 20);
    cr_assert_eq(differ_seed, 20);
}

Test(masking, apply_follows_each_action) {
    enum { T = 30, DA = 4, DV = 3 };
    float xa[T * DA], xv[T * DV], ya[T * DA], yv[T * DV], mask[T];
    const float fa[DA] = {-1, -2, -3, -4}, fv[DV] = {-5, -6, -7};
    int seen[4] = {0};
    for (size_t utt = 0; utt < 300; utt++) {
        MaskPlan p;
        masking_plan(&p, 1, 0, utt, 0, 25, T, 10); // 2 spans, may reach steps 25..26 (padding)
        for (int i = 0; i < T * DA; i++) xa[i] = ya[i] = (i / DA) < 25 ? 1.0f + (float)i : 0.0f;
        for (int i = 0; i < T * DV; i++) xv[i] = yv[i] = (i / DV) < 25 ? 1000.0f + (float)i : 0.0f;
        masking_apply(ya, yv, mask, &p, fa, fv, T, DA, DV);
        for (int t = 0; t < T; t++) {
            int act = p.action[t];
            seen[act]++;
            cr_assert_eq(mask[t], act != MASK_OFF ? 1.0f : 0.0f);
            for (int j = 0; j < DA; j++) {
                float want = act == MASK_ZERO ? 0.0f : act == MASK_RANDOM ? fa[j] : xa[t * DA + j];
                cr_assert_eq(ya[t * DA + j], want, "utt %zu step %d action %d audio %d", utt, t, act, j);
            }
            for (int j = 0; j < DV; j++) {
                float want = act == MASK_ZERO ? 0.0f : act == MASK_RANDOM ? fv[j] : xv[t * DV + j];
                cr_assert_eq(yv[t * DV + j], want, "utt %zu step %d action %d video %d", utt, t, act, j);
            }
        }
    }
    for (int a = 0; a < 4; a++) cr_assert_gt(seen[a], 0, "action %d never occurred", a);
}
