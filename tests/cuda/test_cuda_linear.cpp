// kernels/cuda/linear.cu against kernels/cpu/linear.c: the same random inputs through both, compared with the
// CUDA_TOL rows (max |cuda - cpu| <= atol + rtol * max |cpu|). Under emulation the GEMMs are the cuBLASLt
// emulation's cblas_sgemm (kernels/emu/cublaslt.cpp); natively, cuBLASLt's own kernels. Shapes: one row, zero rows,
// odd widths (17 -> 240, partial warps and column tiles), the model's widths (240 <-> 720, 960 -> 240, 480 -> 512)
// at 2 * 100 + 3 rows (a partial chunk of the bias-gradient reduction); with and without bias; gradients that start
// nonzero (the backward accumulates); every null gradient. AVT_CUDA_TOL_REPORT=1 prints the measured errors.
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "tests/cuda/cuda_test.h"

// Every test file is linked into one binary: file-local types keep their inline members from merging with
// another file's type of the same name (one definition rule).
namespace {

struct Shape {
    size_t N;
    int C, OC;
};

// Inputs of one shape: activations in [-2, 2), weights at the model's init scale, a small bias.
struct Inputs {
    Vec inp, weight, bias;
    explicit Inputs(const Shape &sh) {
        const uint32_t seed = (uint32_t)(sh.N * 131 + (size_t)sh.C * 17 + (size_t)sh.OC);
        inp = random_vec(sh.N * sh.C, -2.0f, 2.0f, seed);
        weight = random_vec((size_t)sh.OC * sh.C, -0.1f, 0.1f, seed + 1);
        bias = random_vec((size_t)sh.OC, -0.5f, 0.5f, seed + 2);
    }
};

// Backward into gradients that start nonzero, so the product must be added to them (beta = 1), not stored.
struct Backward {
    Vec dout, dinp, dw, db;
    Backward(const Shape &s, uint32_t seed)
        : dout(random_vec(s.N * s.OC, -1.0f, 1.0f, seed)), dinp(random_vec(s.N * s.C, -0.5f, 0.5f, seed + 1)),
          dw(random_vec((size_t)s.OC * s.C, -0.5f, 0.5f, seed + 2)),
          db(random_vec((size_t)s.OC, -0.5f, 0.5f, seed + 3)) {}
};

}  // namespace

static const Shape SHAPES[] = {{1, 17, 240}, {1, 960, 240},   {203, 17, 240}, {203, 240, 720},
                               {203, 960, 240}, {203, 480, 512}, {203, 7, 3},    {64, 33, 129}};

static double check(const Vec &got, const Vec &ref, const char *op, const char *what, const Shape &s, bool bias) {
    char desc[96];
    snprintf(desc, sizeof desc, "%s N %zu C %d OC %d%s", what, s.N, s.C, s.OC, bias ? " bias" : "");
    return expect_close(got, ref, op, desc);
}

static void check_forward(const Shape &s, bool with_bias) {
    Inputs in(s);
    const float *b = with_bias ? in.bias.data() : nullptr;
    Vec out(s.N * s.OC);
    linear_forward(out.data(), in.inp.data(), in.weight.data(), b, s.N, s.C, s.OC);
    // out starts as the emulator's 0xff bytes (NaN): beta = 0 must not read it
    Dev d_out(s.N * s.OC), d_inp(in.inp), d_w(in.weight), d_b(in.bias);
    linear_forward_cuda(d_out.p, d_inp.p, d_w.p, with_bias ? d_b.p : nullptr, s.N, s.C, s.OC, 0);
    check(d_out.get(), out, "linear_forward", "out", s, with_bias);
}

Test(cuda_linear, forward) {
    for (const Shape &s : SHAPES)
        for (bool bias : {true, false}) check_forward(s, bias);
}

// The CPU and CUDA backward with only the gradients in `which` (bits: 1 dinp, 2 dweight, 4 dbias); the others are
// null and their buffers must keep their starting values.
static void check_backward(const Shape &s, unsigned which) {
    Inputs in(s);
    const Backward start(s, (uint32_t)(s.N * 7 + (size_t)s.C + (size_t)s.OC * 3));
    Backward cpu = start;
    linear_backward(which & 1 ? cpu.dinp.data() : nullptr, which & 2 ? cpu.dw.data() : nullptr,
                    which & 4 ? cpu.db.data() : nullptr, cpu.dout.data(), in.inp.data(), in.weight.data(), s.N, s.C,
                    s.OC);
    Dev d_dinp(start.dinp), d_dw(start.dw), d_db(start.db), d_dout(start.dout), d_inp(in.inp), d_w(in.weight);
    Dev d_ws(linear_backward_ws_floats_cuda(s.N, s.OC));  // exact size: an overrun hits the emulator's guard page
    linear_backward_cuda(which & 1 ? d_dinp.p : nullptr, which & 2 ? d_dw.p : nullptr, which & 4 ? d_db.p : nullptr,
                         d_ws.p, d_dout.p, d_inp.p, d_w.p, s.N, s.C, s.OC, 0);
    check(d_dinp.get(), cpu.dinp, "linear_backward", "dinp", s, false);
    check(d_dw.get(), cpu.dw, "linear_backward", "dweight", s, false);
    check(d_db.get(), cpu.db, "linear_backward", "dbias", s, false);
    if (!(which & 1)) cr_assert(d_dinp.get() == start.dinp, "dinp written though null");
    if (!(which & 2)) cr_assert(d_dw.get() == start.dw, "dweight written though null");
    if (!(which & 4)) cr_assert(d_db.get() == start.db, "dbias written though null");
}

Test(cuda_linear, backward) {
    for (const Shape &s : SHAPES) check_backward(s, 7);
}

// Each gradient alone, each pair, and none.
Test(cuda_linear, backward_null_gradients) {
    for (const Shape &s : {Shape{203, 17, 240}, Shape{1, 33, 129}})
        for (unsigned which = 0; which < 7; which++) check_backward(s, which);
}

// Zero rows: nothing is read or written (the buffers hold one float, as cudaMalloc(0) stands in).
Test(cuda_linear, zero_rows) {
    const Shape s{0, 17, 240};
    Inputs in(s);
    const Vec sentinel = random_vec((size_t)s.OC * s.C, -1.0f, 1.0f, 11);
    Dev d_out(sentinel), d_dinp(sentinel), d_dw(sentinel), d_db(sentinel), d_dout(0), d_inp(0), d_w(in.weight),
        d_b(in.bias), d_ws(linear_backward_ws_floats_cuda(0, s.OC));
    cr_assert_eq(linear_backward_ws_floats_cuda(0, s.OC), 0u);
#ifdef AVT_EMU
    const unsigned long long launches = avt_emu_launch_count();
#endif
    linear_forward_cuda(d_out.p, d_inp.p, d_w.p, d_b.p, 0, s.C, s.OC, 0);
    linear_backward_cuda(d_dinp.p, d_dw.p, d_db.p, d_ws.p, d_dout.p, d_inp.p, d_w.p, 0, s.C, s.OC, 0);
#ifdef AVT_EMU
    cr_assert_eq(avt_emu_launch_count(), launches, "a launch for zero rows");
#endif
    for (const Dev *d : {&d_out, &d_dinp, &d_dw, &d_db}) cr_assert(d->get() == sentinel, "written for zero rows");
}

// The bias gradient's reduction: fixed orders, so the same bits under different block and thread schedules; and
// from zero, two calls give exactly twice one call (dbias += sum, x + x exact).
Test(cuda_linear, dbias_deterministic_and_accumulating) {
    const Shape s{2 * 100 + 3, 480, 512};
    Inputs in(s);
    const Vec dout = random_vec(s.N * s.OC, -1.0f, 1.0f, 5);
    Dev d_dout(dout), d_inp(in.inp), d_w(in.weight), d_ws(linear_backward_ws_floats_cuda(s.N, s.OC));
    auto runs = [&](int n) {
        Dev d_db(Vec((size_t)s.OC, 0.0f));
        for (int i = 0; i < n; i++)
            linear_backward_cuda(nullptr, nullptr, d_db.p, d_ws.p, d_dout.p, d_inp.p, d_w.p, s.N, s.C, s.OC, 0);
        return d_db.get();
    };
    expect_schedule_independent([&] { return runs(1); }, "dbias");
    const Vec once = runs(1), twice = runs(2);
    for (size_t i = 0; i < once.size(); i++)
        cr_assert_eq(twice[i], 2.0f * once[i], "dbias %zu: two calls %g, one call %g", i, twice[i], once[i]);
}

// The emulation refuses what it does not implement instead of computing something else.
Test(cuda_linear, emulation_rejects_tf32, .exit_code = 1) {
    cublasLtMatmulDesc_t desc;
    cublasLtMatmulDescCreate(&desc, (cublasComputeType_t)77 /* CUBLAS_COMPUTE_32F_FAST_TF32 */, CUDA_R_32F);
}
