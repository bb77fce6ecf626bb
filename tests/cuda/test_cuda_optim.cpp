// CUDA optimiser kernels (kernels/cuda/optim.cu) against their CPU twins (kernels/cpu/optim.c) under the CUDA_TOL
// rows "sum_squares" and "bertadam" (kernels/cuda/cuda_tol.h). Sizes off the block size (256), n = 1, and a sum over
// more than 1e6 items (many stage-1 blocks, each striding over several slices).
#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "tests/cuda/cuda_test.h"

static const size_t SIZES[] = {1, 3, 255, 257, 1000, 240 * 480 + 1, (1u << 20) + 7};

Test(cuda_optim, sum_squares) {
    for (size_t n : SIZES) {
        char what[64];
        snprintf(what, sizeof what, "n %zu", n);
        const Vec x = random_vec(n, -2.0f, 2.0f, (uint32_t)n);
        float ref;
        sum_squares(&ref, x.data(), n);
        Dev dx(x), dout(1), dws(sum_squares_ws_floats_cuda(n));
        auto run = [&] {
            sum_squares_cuda(dout.p, dws.p, dx.p, n, 0);
            return dout.get();
        };
        expect_close(run(), Vec{ref}, "sum_squares", what);
        expect_schedule_independent(run, what);
    }
}

Test(cuda_optim, sum_squares_empty) {
    Dev dout(Vec{42.0f}), dws(sum_squares_ws_floats_cuda(0));
    sum_squares_cuda(dout.p, dws.p, nullptr, 0, 0);
    cr_assert_eq(dout.get()[0], 0.0f, "the sum of no items is 0");
}

// Three steps on one tensor: no clip (small gradient, small global norm), the global clip only (the other tensors
// dominate the global norm), then both clips (BertAdam's per-tensor bound below the global one). The tensor's sum
// of squares comes from sum_squares_cuda on the device, as in a training step; the global one from the host.
Test(cuda_optim, bertadam_update) {
    static const size_t BSIZES[] = {1, 3, 257, 1000, 240 * 7 + 1, 480 * 9};
    static const float GSCALE[] = {0.001f, 0.01f, 1.0f}, OTHER_SQ[] = {0.0f, 100.0f, 4.0f};
    static const float CLIP_T[] = {1.0f, 1.0f, 0.1f};
    for (size_t n : BSIZES) {
        const Vec p0 = random_vec(n, -1.0f, 1.0f, (uint32_t)n + 1);
        Vec p = p0, m(n, 0.0f), v(n, 0.0f);
        Dev dp(p0), dm(m), dv(v), dg(n), dtsq(1), dgsq(1), dws(sum_squares_ws_floats_cuda(n));
        for (int step = 0; step < 3; step++) {
            char what[64];
            snprintf(what, sizeof what, "n %zu step %d", n, step + 1);
            const BertAdamHyper h = {0.9, 0.999, 1e-6f, 0.01f, 1.0f, CLIP_T[step]};
            const float lr = 1e-3f * (float)(step + 1);  // the warmup schedule raises lr
            const Vec g = random_vec(n, -GSCALE[step], GSCALE[step], (uint32_t)(n * 3 + step));
            float tsq;
            sum_squares(&tsq, g.data(), n);
            const float gsq = tsq + OTHER_SQ[step];
            bertadam_update(p.data(), m.data(), v.data(), g.data(), &tsq, &gsq, h, lr, n);

            dg.put(g);
            dgsq.put(Vec{gsq});
            sum_squares_cuda(dtsq.p, dws.p, dg.p, n, 0);
            bertadam_update_cuda(dp.p, dm.p, dv.p, dg.p, dtsq.p, dgsq.p, h, lr, n, 0);
            expect_close(dp.get(), p, "bertadam", what);
            expect_close(dm.get(), m, "bertadam", what);
            expect_close(dv.get(), v, "bertadam", what);
        }
    }
}
