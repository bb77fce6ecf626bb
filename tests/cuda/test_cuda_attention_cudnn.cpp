// kernels/cuda/attention_cudnn.cu (cuDNN's fused attention, bf16 in and out) against kernels/cpu/attention.c.
// Under emulation there is no cuDNN: every call must refuse cleanly (-1, a message naming emulation, ws size 0).
// On a native GPU build the same code compares with the CPU forward (dropout 0) under the "attention_cudnn" row of
// CUDA_TOL, at the model's head sizes (24 base, 32 large), causal and not, Tq == Tk and Tq != Tk both ways (the
// causal offset |Tk - Tq|), T = 1; a second call (the cached plan) must give the same bits; and head sizes cuDNN's
// bf16 kernels cannot take are refused with the reason. Only the expectation depends on AVT_EMU.
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "tests/cuda/cuda_test.h"

#ifdef AVT_EMU
static const bool EMULATED = true;
#else
static const bool EMULATED = false;
#endif

// File-local types: every test file is linked into one binary (one definition rule).
namespace {

struct CudnnShape {
    int B, NH, Tq, Tk, HS, causal;
};
}  // namespace

// B NH Tq Tk HS causal
static const CudnnShape SHAPES[] = {
    {2, 4, 64, 64, 24, 1},  {2, 4, 64, 64, 24, 0},    // base head size, square
    {2, 4, 50, 50, 32, 1},  {2, 2, 37, 37, 32, 0},    // large head size, lengths off the tile sizes
    {2, 2, 20, 45, 24, 1},  {2, 2, 45, 20, 32, 1},    // causal offset |Tk - Tq| both ways
    {1, 2, 130, 197, 32, 0}, {1, 2, 200, 200, 24, 1}, // model lengths
    {2, 2, 1, 1, 24, 1},                               // T = 1
};

static void describe(char *buf, size_t n, const CudnnShape &s) {
    snprintf(buf, n, "B %d NH %d Tq %d Tk %d HS %d causal %d", s.B, s.NH, s.Tq, s.Tk, s.HS, s.causal);
}

// Runs the cuDNN path on s's inputs; returns its status, the output in got and the message in err.
static int run_cudnn(const CudnnShape &s, const Vec &q, const Vec &k, const Vec &v, Vec &got, AvtErr *err) {
    const size_t C = (size_t)s.NH * s.HS;
    Dev d_out((size_t)s.B * s.Tq * C), d_q(q), d_k(k), d_v(v);
    Dev d_ws(attention_cudnn_ws_floats(s.B, s.Tq, s.Tk, s.NH, s.HS));
    err->msg[0] = '\0';
    const int rc = attention_forward_cudnn(d_out.p, d_ws.p, d_q.p, d_k.p, d_v.p, s.causal, s.B, s.Tq, s.Tk, s.NH,
                                           s.HS, 0, err);
    got = d_out.get();
    return rc;
}

static void check_shape(const CudnnShape &s) {
    char desc[128];
    describe(desc, sizeof desc, s);
    const size_t C = (size_t)s.NH * s.HS;
    const uint32_t seed = (uint32_t)(s.Tq * 1009 + s.Tk * 31 + s.HS * 7 + s.causal);
    // Scores of several units, so the softmax is far from uniform (as in test_cuda_attention.cpp).
    const Vec q = random_vec((size_t)s.B * s.Tq * C, -2.0f, 2.0f, seed);
    const Vec k = random_vec((size_t)s.B * s.Tk * C, -2.0f, 2.0f, seed + 1);
    const Vec v = random_vec((size_t)s.B * s.Tk * C, -1.0f, 1.0f, seed + 2);

    AvtErr err;
    Vec got;
    const int rc = run_cudnn(s, q, k, v, got, &err);
    if (EMULATED) {
        cr_assert_eq(rc, -1, "%s: emulated call returned %d", desc, rc);
        cr_assert(strstr(err.msg, "emulation") != nullptr, "%s: refusal does not name emulation: '%s'", desc,
                  err.msg);
        return;
    }
    cr_assert_eq(rc, 0, "%s: cuDNN attention refused: %s", desc, err.msg);

    Vec ref((size_t)s.B * s.Tq * C, 0.0f), att((size_t)s.B * s.NH * s.Tq * s.Tk, 0.0f);
    const int nt = kernel_threads();
    Vec ws(attention_ws_floats(s.Tk, s.HS, nt));
    const DropoutKey nodrop{0, 0u, 0u, 0.0f, 0};
    attention_forward(ref.data(), att.data(), ws.data(), q.data(), k.data(), v.data(), nodrop, s.causal, s.B, s.Tq,
                      s.Tk, s.NH, s.HS, nt);
    expect_close(got, ref, "attention_cudnn", desc);

    // Again: the cached plan, the same bits.
    Vec again;
    cr_assert_eq(run_cudnn(s, q, k, v, again, &err), 0, "%s: second call refused: %s", desc, err.msg);
    cr_assert(memcmp(got.data(), again.data(), got.size() * sizeof(float)) == 0, "%s: second call differs", desc);
}

Test(cuda_attention_cudnn, matches_cpu) {
    for (const CudnnShape &s : SHAPES) check_shape(s);
}

// Head sizes that are not a multiple of 8 are refused with the reason (natively) or for emulation.
Test(cuda_attention_cudnn, refuses_head_size) {
    const CudnnShape s{1, 2, 9, 9, 20, 1};
    const size_t C = (size_t)s.NH * s.HS;
    const Vec q = random_vec((size_t)s.B * s.Tq * C, -1.0f, 1.0f, 3), k = random_vec(q.size(), -1.0f, 1.0f, 4),
              v = random_vec(q.size(), -1.0f, 1.0f, 5);
    AvtErr err;
    Vec got;
    cr_assert_eq(run_cudnn(s, q, k, v, got, &err), -1, "head size 20 was not refused");
    const char *want = EMULATED ? "emulation" : "multiple of 8";
    cr_assert(strstr(err.msg, want) != nullptr, "refusal '%s' does not mention '%s'", err.msg, want);
}

// The workspace: nothing under emulation; natively at least the four bf16 copies (q, k, v, out).
Test(cuda_attention_cudnn, ws_floats) {
    const int B = 2, Tq = 50, Tk = 70, NH = 4, HS = 32;
    const size_t ws = attention_cudnn_ws_floats(B, Tq, Tk, NH, HS);
    if (EMULATED) {
        cr_assert_eq(ws, (size_t)0, "emulated ws_floats is %zu", ws);
    } else {
        const size_t bf16_floats = (size_t)B * (2 * Tq + 2 * Tk) * NH * HS / 2;
        cr_assert_geq(ws, bf16_floats, "ws_floats %zu below the bf16 copies (%zu floats)", ws, bf16_floats);
    }
}
