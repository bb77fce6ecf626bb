// kernels/cuda/attention.cu against kernels/cpu/attention.c: the same random inputs through both, compared with the
// "attention" row of CUDA_TOL (max |cuda - cpu| <= atol + rtol * max |cpu|). Shapes cover causal and not,
// Tq == Tk and Tq != Tk both ways (the causal offset |Tk - Tq|), T = 1, lengths that are not multiples of the
// 16-row forward block, the 64-row backward block or the 32-key tile, fewer query rows than the forward block has
// warps, head sizes 16, 24, 32, 48 and 64 and ones that the padding (to 16, 24, 32, 48, 64) or the forward's split
// of the head dimensions over 32 lanes leaves partial (7, 17, 40, 56), the base model's attention (NH 10, T 100),
// and dropout p 0 and 0.1 (a mask that
// differs from the CPU's by one element fails by far more than the tolerance). The backward runs from the CPU
// forward's att into nonzero gradients (so it accumulates); also: two runs from zero give exactly twice one run,
// results are bit-identical across emulator schedules, and null gradients are skipped. Set AVT_CUDA_TOL_REPORT=1
// to print the measured errors.
#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/cuda/cuda_test.h"

// File-local types: every test file is linked into one binary (one definition rule).
namespace {

struct Shape {
    int B, NH, Tq, Tk, HS, causal;
    float p;
};

// Asserts got ~ ref under the "attention" row of CUDA_TOL; returns max |got - ref|.
static double expect_close_shape(const Vec &got, const Vec &ref, const char *what, const Shape &s) {
    char desc[128];
    snprintf(desc, sizeof desc, "%s B %d NH %d Tq %d Tk %d HS %d causal %d p %g", what, s.B, s.NH, s.Tq, s.Tk, s.HS,
             s.causal, (double)s.p);
    return expect_close(got, ref, "attention", desc);
}

struct Inputs {
    Shape s;
    DropoutKey drop;
    Vec q, k, v;
    explicit Inputs(const Shape &sh) : s(sh) {
        const int C = s.NH * s.HS;
        const uint32_t seed = (uint32_t)(s.Tq * 1009 + s.Tk * 31 + s.HS * 7 + s.causal);
        // Spread wide enough that the softmax is far from uniform (scores of several units).
        q = random_vec((size_t)s.B * s.Tq * C, -2.0f, 2.0f, seed);
        k = random_vec((size_t)s.B * s.Tk * C, -2.0f, 2.0f, seed + 1);
        v = random_vec((size_t)s.B * s.Tk * C, -1.0f, 1.0f, seed + 2);
        drop = DropoutKey{0x1234567890abcdefull + (uint64_t)seed, 3u, 7u, s.p, 0};
    }
    size_t nq() const { return (size_t)s.B * s.Tq * s.NH * s.HS; }
    size_t nk() const { return (size_t)s.B * s.Tk * s.NH * s.HS; }
    size_t natt() const { return (size_t)s.B * s.NH * s.Tq * s.Tk; }
    // CPU forward: out and att.
    void cpu_forward(Vec &out, Vec &att) const {
        out.assign(nq(), 0.0f);
        att.assign(natt(), 0.0f);
        const int nt = kernel_threads();
        Vec ws(attention_ws_floats(s.Tk, s.HS, nt));
        attention_forward(out.data(), att.data(), ws.data(), q.data(), k.data(), v.data(), drop, s.causal, s.B, s.Tq,
                          s.Tk, s.NH, s.HS, nt);
    }
};
}  // namespace

static void check_forward(const Shape &s) {
    Inputs in(s);
    Vec out, att;
    in.cpu_forward(out, att);
    Dev d_out(in.nq()), d_att(in.natt()), d_q(in.q), d_k(in.k), d_v(in.v);
    attention_forward_cuda(d_out.p, d_att.p, d_q.p, d_k.p, d_v.p, in.drop, s.causal, s.B, s.Tq, s.Tk, s.NH, s.HS, 0);
    expect_close_shape(d_att.get(), att, "att", s);
    expect_close_shape(d_out.get(), out, "out", s);
}

// Backward from the CPU forward's att (so only the backward is compared), into nonzero gradients.
static void check_backward(const Shape &s) {
    Inputs in(s);
    Vec out, att;
    in.cpu_forward(out, att);
    const uint32_t seed = (uint32_t)(s.Tq * 7 + s.Tk * 3 + s.HS);
    const Vec dout = random_vec(in.nq(), -1.0f, 1.0f, seed);
    Vec dq = random_vec(in.nq(), -0.5f, 0.5f, seed + 1), dk = random_vec(in.nk(), -0.5f, 0.5f, seed + 2),
        dv = random_vec(in.nk(), -0.5f, 0.5f, seed + 3);
    Dev d_dq(dq), d_dk(dk), d_dv(dv), d_dout(dout), d_q(in.q), d_k(in.k), d_v(in.v), d_att(att);
    Dev d_ws(attention_backward_ws_floats_cuda(s.B, s.Tq, s.Tk, s.NH));  // exact size: overruns hit the guard page
    const int nt = kernel_threads();
    Vec ws(attention_ws_floats(s.Tk, s.HS, nt));
    attention_backward(dq.data(), dk.data(), dv.data(), ws.data(), dout.data(), in.q.data(), in.k.data(),
                       in.v.data(), att.data(), in.drop, s.B, s.Tq, s.Tk, s.NH, s.HS, nt);
    attention_backward_cuda(d_dq.p, d_dk.p, d_dv.p, d_ws.p, d_dout.p, d_q.p, d_k.p, d_v.p, d_att.p, in.drop, s.B,
                            s.Tq, s.Tk, s.NH, s.HS, 0);
    expect_close_shape(d_dq.get(), dq, "dq", s);
    expect_close_shape(d_dk.get(), dk, "dk", s);
    expect_close_shape(d_dv.get(), dv, "dv", s);
}

// B NH Tq Tk HS causal p
static const Shape SHAPES[] = {
    {2, 2, 1, 1, 24, 0, 0.0f},    {2, 2, 1, 1, 48, 1, 0.1f},    // T = 1
    {2, 2, 37, 37, 24, 1, 0.0f},  {2, 2, 37, 37, 24, 1, 0.1f},  // causal square, partial key tile
    {2, 2, 37, 37, 48, 0, 0.1f},                                 // full attention
    {1, 2, 70, 70, 48, 1, 0.0f},                                 // two row blocks, three key tiles
    {2, 1, 20, 45, 24, 1, 0.1f},  {2, 1, 45, 20, 48, 1, 0.0f},  // Tq != Tk, causal offset both ways
    {2, 1, 20, 45, 48, 0, 0.0f},  {1, 2, 5, 1, 24, 1, 0.0f},    // non-causal Tq != Tk; one key
    {1, 2, 33, 65, 64, 0, 0.1f},  {1, 1, 66, 33, 64, 1, 0.1f},  // HS 64
    {1, 1, 9, 17, 7, 0, 0.1f},                                  // odd head size
    {1, 1, 200, 200, 64, 1, 0.1f}, {1, 1, 130, 197, 32, 1, 0.0f},  // model lengths: several blocks and tiles
    {1, 2, 17, 17, 40, 1, 0.1f},  {1, 1, 33, 50, 56, 0, 0.0f},  // head dimensions split partially over the lanes
    {1, 2, 3, 70, 17, 1, 0.1f},   {1, 1, 64, 64, 16, 1, 0.0f},  // warps without rows; head size 16
    {2, 10, 100, 100, 24, 1, 0.1f},                             // the base model's attention
};

Test(cuda_attention, forward) {
    for (const Shape &s : SHAPES) check_forward(s);
}

Test(cuda_attention, backward) {
    for (const Shape &s : SHAPES) check_backward(s);
}

// Everything the backward pass writes, from zeroed gradients after `runs` calls, under emulator seed `seed`;
// `mask` picks the gradients passed (bit 0 dq, 1 dk, 2 dv; the others are nullptr and come back zero).
static Vec backward_runs(const Inputs &in, const Vec &att, const Vec &dout, int runs, uint64_t seed, int mask = 7) {
    const Shape &s = in.s;
    Dev d_dq(Vec(in.nq(), 0.0f)), d_dk(Vec(in.nk(), 0.0f)), d_dv(Vec(in.nk(), 0.0f)), d_dout(dout), d_q(in.q),
        d_k(in.k), d_v(in.v), d_att(att), d_ws(attention_backward_ws_floats_cuda(s.B, s.Tq, s.Tk, s.NH));
    SET_SCHEDULE(seed);
    for (int r = 0; r < runs; r++)
        attention_backward_cuda(mask & 1 ? d_dq.p : nullptr, mask & 2 ? d_dk.p : nullptr, mask & 4 ? d_dv.p : nullptr,
                                d_ws.p, d_dout.p, d_q.p, d_k.p, d_v.p, d_att.p, in.drop, s.B, s.Tq, s.Tk, s.NH, s.HS,
                                0);
    SET_SCHEDULE(1);
    return concat_outputs({&d_dq, &d_dk, &d_dv});
}

// Accumulation: from zero, x + x is exact, so two runs must give exactly twice one run.
Test(cuda_attention, backward_accumulates) {
    Inputs in(Shape{1, 2, 21, 40, 24, 1, 0.1f});
    Vec out, att;
    in.cpu_forward(out, att);
    const Vec dout = random_vec(in.nq(), -1.0f, 1.0f, 99);
    const Vec once = backward_runs(in, att, dout, 1, 1), twice = backward_runs(in, att, dout, 2, 1);
    for (size_t i = 0; i < once.size(); i++)
        cr_assert_eq(twice[i], 2.0f * once[i], "element %zu: two runs %g, one run %g", i, twice[i], once[i]);
}

// Determinism: no atomics and fixed orders, so different block and thread schedules give the same bits.
Test(cuda_attention, deterministic) {
    const Shape s{2, 1, 40, 40, 32, 1, 0.1f};
    Inputs in(s);
    Vec out, att;
    in.cpu_forward(out, att);
    const Vec dout = random_vec(in.nq(), -1.0f, 1.0f, 5);
    const Vec a = backward_runs(in, att, dout, 1, 1), b = backward_runs(in, att, dout, 1, 4242);
    cr_assert(memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0, "backward differs between schedules");
    Dev d_out(in.nq()), d_att(in.natt()), d_q(in.q), d_k(in.k), d_v(in.v);
    expect_schedule_independent(
        [&] {
            attention_forward_cuda(d_out.p, d_att.p, d_q.p, d_k.p, d_v.p, in.drop, s.causal, s.B, s.Tq, s.Tk, s.NH,
                                   s.HS, 0);
            return concat_outputs({&d_out, &d_att});
        },
        "forward");
}

// Null gradients are "not needed": each of dq, dk, dv alone matches its part of a full run bit for bit, and the
// others stay zero.
Test(cuda_attention, null_gradients) {
    Inputs in(Shape{1, 2, 19, 23, 24, 0, 0.1f});
    Vec out, att;
    in.cpu_forward(out, att);
    const Vec dout = random_vec(in.nq(), -1.0f, 1.0f, 11);
    const Vec full = backward_runs(in, att, dout, 1, 1);
    const size_t parts[3][2] = {{0, in.nq()}, {in.nq(), in.nk()}, {in.nq() + in.nk(), in.nk()}};
    for (int which = 0; which < 3; which++) {
        const Vec got = backward_runs(in, att, dout, 1, 1, 1 << which);
        for (int part = 0; part < 3; part++)
            for (size_t i = parts[part][0]; i < parts[part][0] + parts[part][1]; i++)
                cr_assert_eq(got[i], part == which ? full[i] : 0.0f, "only gradient %d: element %zu is %g", which,
                             i, got[i]);
    }
}
