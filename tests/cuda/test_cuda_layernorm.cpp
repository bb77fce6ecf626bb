// kernels/cuda/layernorm.cu against kernels/cpu/layernorm.c: the same random inputs through both, compared with
// the CUDA_TOL rows (max |cuda - cpu| <= atol + rtol * max |cpu|), at the model's widths (240, 384, 480, 768),
// odd widths (7, 33: partial warps and channel tiles) and row counts from 1 to 6401 (a partial row chunk of the
// weight/bias reduction). Also: backward accumulates (two runs from zero give exactly twice one run), results are
// bit-identical across emulator schedules, and null outputs are skipped. Set AVT_CUDA_TOL_REPORT=1 to print the
// measured errors.
#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/cuda/cuda_test.h"

// Asserts got ~ ref under the `op` row of CUDA_TOL; returns max |got - ref|.
static double expect_close_nc(const Vec &got, const Vec &ref, const char *op, const char *what, size_t N, int C) {
    char desc[96];
    snprintf(desc, sizeof desc, "%s N %zu C %d", what, N, C);
    return expect_close(got, ref, op, desc);
}

// Inputs of one shape: rows with a nonzero mean and varied spread, weight around 1, small bias.
// File-local types: every test file is linked into one binary (one definition rule).
namespace {

struct Inputs {
    size_t N;
    int C;
    Vec inp, weight, bias;
    Inputs(size_t n, int c) : N(n), C(c) {
        const uint32_t s = (uint32_t)(n * 131 + (size_t)c);
        inp = random_vec(N * C, -2.0f, 2.0f, s);
        const Vec shift = random_vec(N, -3.0f, 3.0f, s + 1), spread = random_vec(N, 0.1f, 4.0f, s + 2);
        for (size_t r = 0; r < N; r++)
            for (int c2 = 0; c2 < C; c2++) inp[r * C + c2] = shift[r] + spread[r] * inp[r * C + c2];
        weight = random_vec((size_t)C, 0.5f, 1.5f, s + 3);
        bias = random_vec((size_t)C, -0.5f, 0.5f, s + 4);
    }
};
}  // namespace

static void check_forward(size_t N, int C) {
    Inputs in(N, C);
    Vec out(N * C), mean(N), rstd(N);
    layernorm_forward(out.data(), mean.data(), rstd.data(), in.inp.data(), in.weight.data(), in.bias.data(), N, C);
    Dev d_out(N * C), d_mean(N), d_rstd(N), d_inp(in.inp), d_w(in.weight), d_b(in.bias);
    layernorm_forward_cuda(d_out.p, d_mean.p, d_rstd.p, d_inp.p, d_w.p, d_b.p, N, C, 0);
    expect_close_nc(d_out.get(), out, "layernorm_forward", "out", N, C);
    expect_close_nc(d_mean.get(), mean, "layernorm_forward", "mean", N, C);
    expect_close_nc(d_rstd.get(), rstd, "layernorm_forward", "rstd", N, C);
}

// Backward from the CPU forward's mean/rstd (so only the backward is compared), into nonzero gradients.
static void check_backward(size_t N, int C) {
    Inputs in(N, C);
    Vec out(N * C), mean(N), rstd(N);
    layernorm_forward(out.data(), mean.data(), rstd.data(), in.inp.data(), in.weight.data(), in.bias.data(), N, C);
    const uint32_t s = (uint32_t)(N * 7 + (size_t)C);
    const Vec dout = random_vec(N * C, -1.0f, 1.0f, s);
    Vec dinp = random_vec(N * C, -0.5f, 0.5f, s + 1), dw = random_vec((size_t)C, -0.5f, 0.5f, s + 2),
        db = random_vec((size_t)C, -0.5f, 0.5f, s + 3);
    Dev d_dinp(dinp), d_dw(dw), d_db(db), d_dout(dout), d_inp(in.inp), d_w(in.weight), d_mean(mean), d_rstd(rstd);
    Dev d_ws(layernorm_backward_ws_floats_cuda(N, C));  // exact size: an overrun hits the emulator's guard page
    Vec ws(layernorm_backward_ws_floats(N, C));
    layernorm_backward(dinp.data(), dw.data(), db.data(), ws.data(), dout.data(), in.inp.data(), in.weight.data(),
                       mean.data(), rstd.data(), N, C);
    layernorm_backward_cuda(d_dinp.p, d_dw.p, d_db.p, d_ws.p, d_dout.p, d_inp.p, d_w.p, d_mean.p, d_rstd.p, N, C, 0);
    expect_close_nc(d_dinp.get(), dinp, "layernorm_backward", "dinp", N, C);
    expect_close_nc(d_dw.get(), dw, "layernorm_backward", "dweight", N, C);
    expect_close_nc(d_db.get(), db, "layernorm_backward", "dbias", N, C);
}

static const int WIDTHS[] = {7, 33, 240, 384, 480, 768};

Test(cuda_layernorm, forward_small_rows) {
    for (int C : WIDTHS)
        for (size_t N : {(size_t)1, (size_t)5}) check_forward(N, C);
}

Test(cuda_layernorm, forward_100_rows) {
    for (int C : WIDTHS) check_forward(100, C);
}

// 6401 rows: more than one block of the grid's worth of warps, and a row count that is not a multiple of 8.
Test(cuda_layernorm, forward_6401_rows) {
    check_forward(6401, 240);
    check_forward(6401, 768);
    check_forward(6401, 33);
}

Test(cuda_layernorm, backward_small_rows) {
    for (int C : WIDTHS)
        for (size_t N : {(size_t)1, (size_t)5}) check_backward(N, C);
}

// 100 rows: two chunks of the weight/bias reduction, the second partial.
Test(cuda_layernorm, backward_100_rows) {
    for (int C : WIDTHS) check_backward(100, C);
}

// 6401 rows: 101 chunks, the last holding one row.
Test(cuda_layernorm, backward_6401_rows) {
    check_backward(6401, 240);
    check_backward(6401, 768);
    check_backward(6401, 33);
}

// Everything the backward pass writes, from zeroed gradients after `runs` calls, under emulator seed `seed`.
static Vec backward_runs(const Inputs &in, const Vec &dout, int runs, uint64_t seed) {
    const size_t N = in.N;
    const int C = in.C;
    Vec out(N * C), mean(N), rstd(N);
    layernorm_forward(out.data(), mean.data(), rstd.data(), in.inp.data(), in.weight.data(), in.bias.data(), N, C);
    Dev d_dinp(Vec(N * C, 0.0f)), d_dw(Vec((size_t)C, 0.0f)), d_db(Vec((size_t)C, 0.0f)), d_dout(dout),
        d_inp(in.inp), d_w(in.weight), d_mean(mean), d_rstd(rstd), d_ws(layernorm_backward_ws_floats_cuda(N, C));
    SET_SCHEDULE(seed);
    for (int i = 0; i < runs; i++)
        layernorm_backward_cuda(d_dinp.p, d_dw.p, d_db.p, d_ws.p, d_dout.p, d_inp.p, d_w.p, d_mean.p, d_rstd.p, N, C,
                                0);
    SET_SCHEDULE(1);
    return concat_outputs({&d_dinp, &d_dw, &d_db});
}

// Accumulation: from zero, x + x is exact, so two runs must give exactly twice one run (a kernel that assigns
// instead of adding gives once).
Test(cuda_layernorm, backward_accumulates) {
    for (int C : {33, 384}) {
        Inputs in(130, C);
        const Vec dout = random_vec(in.N * C, -1.0f, 1.0f, 99);
        const Vec once = backward_runs(in, dout, 1, 1), twice = backward_runs(in, dout, 2, 1);
        for (size_t i = 0; i < once.size(); i++)
            cr_assert_eq(twice[i], 2.0f * once[i], "C %d element %zu: two runs %g, one run %g", C, i, twice[i],
                         once[i]);
    }
}

// Determinism: no atomics and fixed reduction orders, so different block and thread schedules give the same bits.
Test(cuda_layernorm, deterministic) {
    const size_t N = 200;
    const int C = 240;
    Inputs in(N, C);
    const Vec dout = random_vec(N * C, -1.0f, 1.0f, 5);
    const Vec a = backward_runs(in, dout, 1, 1), b = backward_runs(in, dout, 1, 12345);
    cr_assert(memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0, "backward differs between schedules");
    Dev d_out(N * C), d_mean(N), d_rstd(N), d_inp(in.inp), d_w(in.weight), d_b(in.bias);
    expect_schedule_independent(
        [&] {
            layernorm_forward_cuda(d_out.p, d_mean.p, d_rstd.p, d_inp.p, d_w.p, d_b.p, N, C, 0);
            return concat_outputs({&d_out, &d_mean, &d_rstd});
        },
        "forward");
}

// Null outputs are "not needed": forward without mean/rstd, backward with only one of dinp, dweight, dbias; the
// buffers left alone keep their bytes and the rest match a full run.
Test(cuda_layernorm, null_outputs) {
    const size_t N = 70;
    const int C = 33;
    Inputs in(N, C);
    Vec out(N * C), mean(N), rstd(N);
    layernorm_forward(out.data(), mean.data(), rstd.data(), in.inp.data(), in.weight.data(), in.bias.data(), N, C);
    Dev d_out(N * C), d_inp(in.inp), d_w(in.weight), d_b(in.bias);
    layernorm_forward_cuda(d_out.p, nullptr, nullptr, d_inp.p, d_w.p, d_b.p, N, C, 0);
    expect_close_nc(d_out.get(), out, "layernorm_forward", "out", N, C);

    const Vec dout = random_vec(N * C, -1.0f, 1.0f, 3);
    Vec dinp(N * C, 0.0f), dw((size_t)C, 0.0f), db((size_t)C, 0.0f), ws(layernorm_backward_ws_floats(N, C));
    layernorm_backward(dinp.data(), dw.data(), db.data(), ws.data(), dout.data(), in.inp.data(), in.weight.data(),
                       mean.data(), rstd.data(), N, C);
    Dev d_dout(dout), d_mean(mean), d_rstd(rstd), d_ws(layernorm_backward_ws_floats_cuda(N, C));
    for (int which = 0; which < 3; which++) {
        Dev d_dinp(Vec(N * C, 0.0f)), d_dw(Vec((size_t)C, 0.0f)), d_db(Vec((size_t)C, 0.0f));
        layernorm_backward_cuda(which == 0 ? d_dinp.p : nullptr, which == 1 ? d_dw.p : nullptr,
                                which == 2 ? d_db.p : nullptr, d_ws.p, d_dout.p, d_inp.p, d_w.p, d_mean.p, d_rstd.p,
                                N, C, 0);
        const Vec zi(N * C, 0.0f), zc((size_t)C, 0.0f);
        expect_close_nc(d_dinp.get(), which == 0 ? dinp : zi, "layernorm_backward", "dinp", N, C);
        expect_close_nc(d_dw.get(), which == 1 ? dw : zc, "layernorm_backward", "dweight", N, C);
        expect_close_nc(d_db.get(), which == 2 ? db : zc, "layernorm_backward", "dbias", N, C);
    }
}
