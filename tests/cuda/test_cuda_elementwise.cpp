// CUDA pointwise, gather, embedding and loss kernels (kernels/cuda/elementwise.cu, embed.cu, loss.cu) against their
// CPU twins (kernels/cpu/*.c) on the same random inputs, compared with the CUDA_TOL rows (kernels/cuda/cuda_tol.h).
// Under the emulator in CI; the same code runs natively with a GPU. Sizes are chosen off the block size (256), with
// n = 1 and the model's widths (240, 480). AVT_CUDA_TOL_REPORT=1 prints the largest error seen per call.
#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/cuda/cuda_test.h"

// Uniform in [-1, 1) from a fixed LCG; a few exact zeros and repeated values so that relu's and L1's ties occur.
static Vec rnd(size_t n, uint32_t seed) {
    Vec v(n);
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1664525u + 1013904223u;
        const uint32_t u = seed >> 8;
        v[i] = u % 17 == 0 ? 0.0f : (float)u * (2.0f / 16777216.0f) - 1.0f;
    }
    return v;
}

static void check(const char *op, const char *what, const Vec &got, const Vec &ref) {
    expect_close(got, ref, op, what);
}

// Bitwise equality (the exact ops: a NaN or a signed zero must match too).
static void check_bits(const char *op, const char *what, const Vec &got, const Vec &ref) {
    cr_assert_eq(got.size(), ref.size());
    for (size_t i = 0; i < got.size(); i++)
        cr_assert(memcmp(&got[i], &ref[i], sizeof(float)) == 0, "%s (%s): item %zu is %.9g, CPU %.9g (not bit-identical)",
                  op, what, i, got[i], ref[i]);
    check(op, what, got, ref);
}

static const size_t SIZES[] = {1, 3, 255, 257, 1000, 240 * 7 + 1, 480 * 9};

// Integer indices (gather rows, labels) in a device buffer of as many floats.
static_assert(sizeof(int) == sizeof(float), "an int must fit a float slot");
static const int *put_ints(Dev &d, const std::vector<int> &v) {
    cr_assert_eq(d.n, v.size());
    if (!v.empty()) cuda_check(cudaMemcpy(d.p, v.data(), v.size() * sizeof(int), cudaMemcpyHostToDevice));
    return reinterpret_cast<const int *>(d.p);
}

// ---- relu ----
Test(cuda_elementwise, relu_forward_backward) {
    for (size_t n : SIZES) {
        char what[64];
        snprintf(what, sizeof what, "n %zu", n);
        const Vec x = rnd(n, (uint32_t)n), dout = rnd(n, (uint32_t)n + 1), d0 = rnd(n, (uint32_t)n + 2);
        Vec out(n), din = d0;
        relu_forward(out.data(), x.data(), n);
        relu_backward(din.data(), dout.data(), out.data(), n);

        Dev dx(x), dy(n), ddout(dout), ddin(d0);
        relu_forward_cuda(dy.p, dx.p, n, 0);
        check_bits("relu", what, dy.get(), out);
        relu_backward_cuda(ddin.p, ddout.p, dy.p, n, 0);  // accumulates onto d0
        check_bits("relu", what, ddin.get(), din);
        relu_forward_cuda(dx.p, dx.p, n, 0);  // in place
        check_bits("relu", what, dx.get(), out);
    }
}

// ---- add ----
Test(cuda_elementwise, add_forward) {
    for (size_t n : SIZES) {
        char what[64];
        snprintf(what, sizeof what, "n %zu", n);
        const Vec a = rnd(n, (uint32_t)n + 10), b = rnd(n, (uint32_t)n + 11);
        Vec out(n);
        add_forward(out.data(), a.data(), b.data(), n);
        Dev da(a), db(b), dout(n);
        add_forward_cuda(dout.p, da.p, db.p, n, 0);
        check_bits("add", what, dout.get(), out);
        add_forward_cuda(da.p, da.p, db.p, n, 0);  // out aliases a
        check_bits("add", what, da.get(), out);
    }
}

// ---- concat ----
Test(cuda_elementwise, concat_forward_backward) {
    static const int SHAPES[][3] = {{1, 1, 1}, {1, 240, 240}, {37, 240, 240}, {13, 480, 240}, {5, 3, 7}, {9, 0, 5}};
    for (const auto &s : SHAPES) {
        const size_t N = (size_t)s[0];
        const int C1 = s[1], C2 = s[2];
        char what[64];
        snprintf(what, sizeof what, "N %zu C1 %d C2 %d", N, C1, C2);
        const size_t n1 = N * C1, n2 = N * C2, n = n1 + n2;
        const Vec a = rnd(n1, 20 + (uint32_t)n), b = rnd(n2, 21 + (uint32_t)n), g = rnd(n, 22 + (uint32_t)n);
        const Vec ga0 = rnd(n1, 23), gb0 = rnd(n2, 24);
        Vec out(n), ga = ga0, gb = gb0;
        concat_forward(out.data(), a.data(), b.data(), N, C1, C2);
        concat_backward(ga.data(), gb.data(), g.data(), N, C1, C2);

        Dev da(a), db(b), dg(g), dout(n), dga(ga0), dgb(gb0);
        concat_forward_cuda(dout.p, da.p, db.p, N, C1, C2, 0);
        check_bits("concat", what, dout.get(), out);
        concat_backward_cuda(dga.p, dgb.p, dg.p, N, C1, C2, 0);
        check_bits("concat", what, dga.get(), ga);
        check_bits("concat", what, dgb.get(), gb);
        // one gradient not needed: the other still accumulates (a second time here), the skipped one is untouched
        Vec ga2 = ga, gb2 = gb;
        concat_backward(ga2.data(), nullptr, g.data(), N, C1, C2);
        concat_backward_cuda(dga.p, nullptr, dg.p, N, C1, C2, 0);
        check_bits("concat", what, dga.get(), ga2);
        check_bits("concat", what, dgb.get(), gb);
        concat_backward(nullptr, gb2.data(), g.data(), N, C1, C2);
        concat_backward_cuda(nullptr, dgb.p, dg.p, N, C1, C2, 0);
        check_bits("concat", what, dgb.get(), gb2);
        check_bits("concat", what, dga.get(), ga2);
    }
}

// ---- dropout: the same Philox draw, so bit-identical to the CPU ----
Test(cuda_elementwise, dropout_forward_backward) {
    static const float PS[] = {0.0f, 0.1f, 0.25f};
    static const size_t DSIZES[] = {1, 3, 5, 257, 1001, 240 * 11, 480 * 9 + 2};
    // offsets off the Philox block of 4, and past 2^32 draws (a rank's share of a large global batch)
    static const uint64_t OFFSETS[] = {0, 3, 1000001, (1ull << 32) + 2};
    for (float p : PS) {
        for (size_t n : DSIZES) {
            const uint64_t off = OFFSETS[n % 4];
            // seed above 2^32 so both key words matter; site and step differ per case
            const DropoutKey key = {0x1234567890abcdefull + n, (uint32_t)n * 3u, 7u + (uint32_t)(p * 100), p, off};
            char what[64];
            snprintf(what, sizeof what, "p %.2f n %zu offset %llu", (double)p, n, (unsigned long long)off);
            const Vec x = rnd(n, 30 + (uint32_t)n), g = rnd(n, 31 + (uint32_t)n), d0 = rnd(n, 32 + (uint32_t)n);
            Vec out(n), din = d0;
            dropout_forward(out.data(), x.data(), key, n);
            dropout_backward(din.data(), g.data(), key, n);

            Dev dx(x), dy(n), dg(g), dd(d0);
            dropout_forward_cuda(dy.p, dx.p, key, n, 0);
            check_bits("dropout", what, dy.get(), out);
            dropout_backward_cuda(dd.p, dg.p, key, n, 0);
            check_bits("dropout", what, dd.get(), din);
            dropout_forward_cuda(dx.p, dx.p, key, n, 0);  // in place
            check_bits("dropout", what, dx.get(), out);
            if (p > 0.0f && n >= 1000) {  // the draw really drops about p of the items
                size_t zeros = 0;
                for (size_t i = 0; i < n; i++) zeros += out[i] == 0.0f && x[i] != 0.0f;
                cr_assert(fabs((double)zeros / n - p) < 0.05, "%s: dropped %zu", what, zeros);
            }
        }
    }
}

// ---- sinusoid table and embedding ----
Test(cuda_elementwise, sinusoid_table) {
    static const int SHAPES[][2] = {{1, 4}, {0, 8}, {50, 240}, {200, 480}, {17, 7}};
    for (const auto &s : SHAPES) {
        const int Tmax = s[0], C = s[1];
        char what[64];
        snprintf(what, sizeof what, "Tmax %d C %d", Tmax, C);
        const size_t n = ((size_t)Tmax + 1) * C;
        Vec pe(n);
        sinusoid_table(pe.data(), Tmax, C);
        Dev dpe(n);
        sinusoid_table_cuda(dpe.p, Tmax, C, 0);
        const Vec got = dpe.get();
        check("sinusoid_table", what, got, pe);
        for (int c = 0; c < C; c++) cr_assert_eq(got[(size_t)c], 0.0f, "%s: row 0 must be zero", what);
    }
}

Test(cuda_elementwise, embed_forward_backward) {
    static const int SHAPES[][4] = {{1, 1, 4, 1}, {2, 37, 240, 40}, {3, 20, 480, 20}, {2, 5, 7, 9}};  // B, T, C, Tmax
    for (const auto &s : SHAPES) {
        const int B = s[0], T = s[1], C = s[2], Tmax = s[3];
        char what[64];
        snprintf(what, sizeof what, "B %d T %d C %d", B, T, C);
        const size_t n = (size_t)B * T * C;
        Vec x = rnd(n, 40 + (uint32_t)n);
        // padding steps: channel 0 exactly zero (also -0.0f, which compares equal); others only nearly zero
        for (int r = 0; r < B * T; r++) {
            float &x0 = x[(size_t)r * C];
            x0 = r % 3 == 0 ? 0.0f : r % 5 == 0 ? -0.0f : r % 7 == 0 ? 1e-30f : x0;
        }
        Vec pe(((size_t)Tmax + 1) * C), out(n);
        sinusoid_table(pe.data(), Tmax, C);
        embed_forward(out.data(), x.data(), pe.data(), B, T, C);
        const Vec g = rnd(n, 41 + (uint32_t)n), d0 = rnd(n, 42 + (uint32_t)n);
        Vec din = d0;
        embed_backward(din.data(), g.data(), B, T, C);

        Dev dx(x), dpe(pe), dout(n), dg(g), dd(d0);
        embed_forward_cuda(dout.p, dx.p, dpe.p, B, T, C, 0);
        check("embed", what, dout.get(), out);
        embed_backward_cuda(dd.p, dg.p, B, T, C, 0);
        check("embed", what, dd.get(), din);
        embed_backward_cuda(nullptr, dg.p, B, T, C, 0);  // not needed: nothing to do
    }
}

// ---- masked L1 loss ----
enum { MASK_NONE, MASK_SOME, MASK_ALL_ZERO };

Test(cuda_elementwise, l1_masked_forward_backward) {
    static const int SHAPES[][2] = {{1, 1}, {1, 240}, {37, 240}, {300, 480}, {1000, 7}};
    for (const auto &s : SHAPES) {
        for (int mode : {MASK_NONE, MASK_SOME, MASK_ALL_ZERO}) {
            const size_t N = (size_t)s[0];
            const int C = s[1];
            char what[64];
            snprintf(what, sizeof what, "N %zu C %d mask %d", N, C, mode);
            const size_t n = N * C;
            const Vec pred = rnd(n, 50 + (uint32_t)n);
            Vec target = rnd(n, 51 + (uint32_t)n);
            for (size_t i = 0; i < n; i += 11) target[i] = pred[i];  // ties: sign(0) = 0
            Vec mask(N);
            for (size_t r = 0; r < N; r++) mask[r] = mode == MASK_NONE ? 1.0f : mode == MASK_ALL_ZERO ? 0.0f : (float)(r % 4 != 1);
            const float *hmask = mode == MASK_NONE ? nullptr : mask.data();
            const float dloss = 0.7f;
            const float loss = l1_masked_forward(pred.data(), target.data(), hmask, N, C);
            const Vec d0 = rnd(n, 52 + (uint32_t)n);
            Vec dpred = d0;
            l1_masked_backward(dpred.data(), dloss, pred.data(), target.data(), hmask, N, C);

            Dev dp(pred), dt(target), dm(mask), dl(1), dws(l1_masked_ws_floats_cuda(N, C)), dd(d0), ddl(Vec{dloss});
            const float *mptr = mode == MASK_NONE ? nullptr : dm.p;
            l1_masked_forward_cuda(dl.p, dws.p, dp.p, dt.p, mptr, N, C, 0);
            const Vec got = dl.get();
            check("l1_masked", what, got, Vec{loss});
            if (mode == MASK_ALL_ZERO) cr_assert_eq(got[0], 0.0f, "%s: no row counts, loss 0", what);
            // deterministic: another run (under emulation: another block and thread order) gives the same bits
            SET_SCHEDULE(12345);
            l1_masked_forward_cuda(dl.p, dws.p, dp.p, dt.p, mptr, N, C, 0);
            SET_SCHEDULE(1);
            cr_assert(memcmp(dl.get().data(), got.data(), sizeof(float)) == 0, "%s: loss not reproducible", what);

            l1_masked_backward_cuda(dd.p, ddl.p, dws.p, dp.p, dt.p, mptr, N, C, 0);
            check("l1_masked", what, dd.get(), dpred);
        }
    }
}

// ---- gather rows: rows repeat, so the backward adds several gradients into one row, in order ----
Test(cuda_elementwise, gather_rows_forward_backward) {
    static const int SHAPES[][3] = {{1, 1, 1}, {5, 240, 7}, {37, 480, 300}, {10, 3, 1000}, {4, 257, 9}};  // N, C, n
    for (const auto &s : SHAPES) {
        const int N = s[0], C = s[1], n = s[2];
        char what[64];
        snprintf(what, sizeof what, "N %d C %d n %d", N, C, n);
        std::vector<int> rows((size_t)n);
        for (int r = 0; r < n; r++) rows[(size_t)r] = (r * 7 + r / 3) % N;
        if (n > 2) rows[(size_t)n - 1] = rows[0];  // a repeat even where the pattern has none
        const size_t nin = (size_t)N * C, nout = (size_t)n * C;
        const Vec x = rnd(nin, 60 + (uint32_t)nout), g = rnd(nout, 61 + (uint32_t)nout), d0 = rnd(nin, 62);
        Vec out(nout), din = d0;
        gather_rows_forward(out.data(), x.data(), rows.data(), n, C);
        gather_rows_backward(din.data(), g.data(), rows.data(), n, C);
        for (size_t i = 0; i < nout; i++)  // the CPU twin itself: row r of out is row rows[r] of x
            cr_assert_eq(out[i], x[(size_t)rows[i / C] * C + i % C], "%s: CPU forward item %zu", what, i);

        Dev dx(x), dout(nout), dg(g), dd(d0), drows(rows.size());
        const int *rp = put_ints(drows, rows);
        gather_rows_forward_cuda(dout.p, dx.p, rp, n, C, 0);
        check_bits("gather_rows", what, dout.get(), out);
        auto run = [&] {  // accumulates onto d0
            dd.put(d0);
            gather_rows_backward_cuda(dd.p, dg.p, rp, n, C, 0);
            return dd.get();
        };
        check_bits("gather_rows", what, run(), din);
        expect_schedule_independent(run, what);
    }
}

// ---- cross entropy: wide logits (|z| up to 30) so the max shift matters ----
Test(cuda_loss, cross_entropy_forward_backward) {
    static const int SHAPES[][2] = {{1, 1}, {1, 2}, {3, 10}, {32, 527}, {257, 7}, {5, 1000}};  // B, n
    for (const auto &s : SHAPES) {
        const int B = s[0], n = s[1];
        char what[64];
        snprintf(what, sizeof what, "B %d n %d", B, n);
        const size_t nz = (size_t)B * n;
        const Vec z = random_vec(nz, -30.0f, 30.0f, 70 + (uint32_t)nz), d0 = rnd(nz, 71 + (uint32_t)nz);
        std::vector<int> labels((size_t)B);
        for (int b = 0; b < B; b++) labels[(size_t)b] = (b * 31 + 5) % n;
        const float dloss = 0.7f;
        const float loss = cross_entropy_forward(z.data(), labels.data(), B, n);
        Vec dz = d0;
        cross_entropy_backward(dz.data(), dloss, z.data(), labels.data(), B, n);

        Dev dlogits(z), dlab(labels.size()), dl(1), dws(cross_entropy_ws_floats_cuda(B)), dd(d0), ddl(Vec{dloss});
        const int *lp = put_ints(dlab, labels);
        auto fwd = [&] {
            cross_entropy_forward_cuda(dl.p, dws.p, dlogits.p, lp, B, n, 0);
            return dl.get();
        };
        auto bwd = [&] {
            dd.put(d0);
            cross_entropy_backward_cuda(dd.p, ddl.p, dlogits.p, lp, B, n, 0);
            return dd.get();
        };
        expect_close(fwd(), Vec{loss}, "cross_entropy", what);
        expect_close(bwd(), dz, "cross_entropy", what);
        expect_schedule_independent(fwd, what);
        expect_schedule_independent(bwd, what);
    }
}

Test(cuda_loss, cross_entropy_empty_batch) {
    Dev dl(Vec{42.0f}), dws(1);
    cross_entropy_forward_cuda(dl.p, dws.p, nullptr, nullptr, 0, 10, 0);
    cr_assert_eq(dl.get()[0], 0.0f, "no rows: loss 0, as on the CPU");
}

// ---- mean squared error: the backward is exact, so bit-identical ----
Test(cuda_loss, mse_forward_backward) {
    static const int SHAPES[][2] = {{1, 1}, {1, 240}, {37, 240}, {300, 480}, {1000, 7}, {0, 5}};  // N, C
    for (const auto &s : SHAPES) {
        const size_t N = (size_t)s[0];
        const int C = s[1];
        char what[64];
        snprintf(what, sizeof what, "N %zu C %d", N, C);
        const size_t n = N * C;
        const Vec pred = rnd(n, 80 + (uint32_t)n), target = rnd(n, 81 + (uint32_t)n), d0 = rnd(n, 82 + (uint32_t)n);
        const float dloss = 0.7f;
        const float loss = mse_forward(pred.data(), target.data(), N, C);
        Vec dpred = d0;
        mse_backward(dpred.data(), dloss, pred.data(), target.data(), N, C);

        Dev dp(pred), dt(target), dl(1), dws(mse_ws_floats_cuda(N, C)), dd(d0), ddl(Vec{dloss});
        auto fwd = [&] {
            mse_forward_cuda(dl.p, dws.p, dp.p, dt.p, N, C, 0);
            return dl.get();
        };
        expect_close(fwd(), Vec{loss}, "mse", what);
        expect_schedule_independent(fwd, what);
        mse_backward_cuda(dd.p, ddl.p, dp.p, dt.p, N, C, 0);
        check_bits("mse", what, dd.get(), dpred);
    }
}

// ---- concordance correlation: one block in double, so within a float rounding of the CPU ----
Test(cuda_loss, ccc_forward_backward) {
    // the fine-tuning batch (64 x 1..3), one row, more rows than the block (256), no rows
    static const int SHAPES[][2] = {{64, 3}, {64, 1}, {1, 1}, {7, 2}, {300, 3}, {1000, 2}, {0, 3}};  // N, C
    for (const auto &s : SHAPES) {
        for (int constant = 0; constant < 2; constant++) {
            const size_t N = (size_t)s[0];
            const int C = s[1];
            char what[64];
            snprintf(what, sizeof what, "N %zu C %d%s", N, C, constant ? " col 0 constant" : "");
            const size_t n = N * C;
            const Vec target = rnd(n, 90 + (uint32_t)n), noise = rnd(n, 91 + (uint32_t)n);
            const Vec d0 = rnd(n, 92 + (uint32_t)n), zeros(n, 0.0f);
            Vec pred(n);
            for (size_t i = 0; i < n; i++) pred[i] = 0.7f * target[i] + 0.5f * noise[i] + 0.2f;
            Vec tgt = target;
            if (constant)  // column 0 constant and equal in both: the d == 0 guard
                for (size_t r = 0; r < N; r++) pred[r * C] = tgt[r * C] = 0.25f;
            const float dloss = 0.7f;
            const float loss = ccc_forward(pred.data(), tgt.data(), N, C);
            Vec dpred = d0, dfresh = zeros;
            ccc_backward(dpred.data(), dloss, pred.data(), tgt.data(), N, C);
            ccc_backward(dfresh.data(), dloss, pred.data(), tgt.data(), N, C);

            Dev dp(pred), dt(tgt), dl(1), dws(ccc_ws_floats_cuda(N, C)), dd(d0), ddl(Vec{dloss});
            auto fwd = [&] {
                ccc_forward_cuda(dl.p, dws.p, dp.p, dt.p, N, C, 0);
                return dl.get();
            };
            auto bwd = [&](const Vec &start) {
                dd.put(start);
                ccc_backward_cuda(dd.p, ddl.p, dp.p, dt.p, N, C, 0);
                return dd.get();
            };
            expect_close(fwd(), Vec{loss}, "ccc", what);
            expect_close(bwd(zeros), dfresh, "ccc", what);  // the gradient alone, against its own magnitude
            expect_close(bwd(d0), dpred, "ccc", what);      // accumulated
            if (constant) {
                const Vec g = bwd(zeros);
                for (size_t r = 0; r < N; r++) cr_assert_eq(g[r * C], 0.0f, "%s: row %zu of column 0", what, r);
            }
            expect_schedule_independent(fwd, what);
            expect_schedule_independent([&] { return bwd(d0); }, what);
        }
    }
}

