// Shared pieces of the CUDA-vs-CPU kernel tests: the tolerance check and the schedule-independence check (host
// vectors and device buffers are in kernels/cuda/cuda_buf.h).
#ifndef AVT_CUDA_TEST_H
#define AVT_CUDA_TEST_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <initializer_list>
#include <vector>

#include "kernels/cuda/cuda_buf.h"
#include "kernels/cuda/cuda_tol.h"
extern "C" {
#include "kernels/cpu/kernels.h"
}

// Asserts max |got - ref| <= atol + rtol * max |ref| under the op's CUDA_TOL row, with NaN only where the CPU has
// NaN; `what` names the case in messages. AVT_CUDA_TOL_REPORT=1 prints every measured error. Returns the error.
static inline double expect_close(const Vec &got, const Vec &ref, const char *op, const char *what) {
    const CudaTol *tol = cuda_tol(op);
    cr_assert(tol, "no CUDA_TOL row for %s", op);
    cr_assert_eq(got.size(), ref.size(), "%s (%s): %zu values, CPU %zu", op, what, got.size(), ref.size());
    double err = 0.0, mag = 0.0;
    size_t worst = 0;
    for (size_t i = 0; i < ref.size(); i++) {
        cr_assert_eq(isnan(got[i]), isnan(ref[i]), "%s (%s): item %zu is %g, CPU %g", op, what, i, got[i], ref[i]);
        if (isnan(ref[i])) continue;
        const double e = fabs((double)got[i] - (double)ref[i]);
        if (e > err) err = e, worst = i;
        if (fabs((double)ref[i]) > mag) mag = fabs((double)ref[i]);
    }
    const double bound = tol->atol + tol->rtol * mag;
    if (getenv("AVT_CUDA_TOL_REPORT"))
        fprintf(stderr, "[cuda_tol] %-18s %-52s max err %.3g (bound %.3g, max|cpu| %.3g)\n", op, what, err, bound, mag);
    cr_expect_leq(err, bound, "%s (%s): max |cuda - cpu| %.3g at item %zu (cuda %.9g, cpu %.9g) > bound %.3g", op,
                  what, err, worst, got.empty() ? 0.0 : got[worst], ref.empty() ? 0.0 : ref[worst], bound);
    return err;
}

// The contents of several device buffers, one after the other.
static inline Vec concat_outputs(std::initializer_list<const Dev *> bufs) {
    Vec all;
    for (const Dev *d : bufs) {
        Vec h = d->get();
        all.insert(all.end(), h.begin(), h.end());
    }
    return all;
}

// run() launches and returns its outputs; two emulator schedules (natively: two runs) must give the same bits (no
// atomics, fixed reduction orders).
#ifdef AVT_EMU
#define SET_SCHEDULE(seed) avt_emu_set_seed(seed)
#else
#define SET_SCHEDULE(seed) ((void)(seed))
#endif
template <typename Run> static inline void expect_schedule_independent(Run run, const char *what) {
    SET_SCHEDULE(1);
    const Vec a = run();
    SET_SCHEDULE(777);
    const Vec b = run();
    SET_SCHEDULE(1);
    cr_assert(a.size() == b.size() && memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0,
              "%s differs between schedules", what);
}

#endif
