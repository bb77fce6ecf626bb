// Shared pieces of the CUDA-vs-CPU kernel tests: host vectors from a fixed generator, and device buffers.
#ifndef AVT_CUDA_TEST_H
#define AVT_CUDA_TEST_H

#include <stdint.h>
#include <string.h>

#include <initializer_list>
#include <vector>

#include "kernels/cuda/kernels.cuh"
#include "tests/emu/cuda_tol.h"
extern "C" {
#include "kernels/cpu/kernels.h"
}

typedef std::vector<float> Vec;

// Uniform in [lo, hi) from a fixed LCG.
static inline Vec random_vec(size_t n, float lo, float hi, uint32_t seed) {
    Vec v(n);
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1664525u + 1013904223u;
        v[i] = lo + (hi - lo) * (float)(seed >> 8) / 16777216.0f;
    }
    return v;
}

// A device copy of a host vector, freed at scope exit.
struct Dev {
    float *p = nullptr;
    size_t n = 0;
    explicit Dev(size_t count) : n(count) { cuda_check(cudaMalloc(&p, (n ? n : 1) * sizeof(float))); }
    explicit Dev(const Vec &h) : Dev(h.size()) { put(h); }
    ~Dev() { cuda_check(cudaFree(p)); }
    Dev(const Dev &) = delete;
    Dev &operator=(const Dev &) = delete;
    void put(const Vec &h) {
        if (n) cuda_check(cudaMemcpy(p, h.data(), n * sizeof(float), cudaMemcpyHostToDevice));
    }
    Vec get() const { // after every launch on any stream has finished
        Vec h(n);
        cuda_check(cudaDeviceSynchronize());
        if (n) cuda_check(cudaMemcpy(h.data(), p, n * sizeof(float), cudaMemcpyDeviceToHost));
        return h;
    }
};

// The contents of several device buffers, one after the other.
static inline Vec concat_outputs(std::initializer_list<const Dev *> bufs) {
    Vec all;
    for (const Dev *d : bufs) {
        Vec h = d->get();
        all.insert(all.end(), h.begin(), h.end());
    }
    return all;
}

// run() launches and returns its outputs; two emulator schedules must give the same bits (no atomics, fixed
// reduction orders).
template <typename Run> static inline void expect_schedule_independent(Run run, const char *what) {
    avt_emu_set_seed(1);
    const Vec a = run();
    avt_emu_set_seed(777);
    const Vec b = run();
    avt_emu_set_seed(1);
    cr_assert(a.size() == b.size() && memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0,
              "%s differs between schedules", what);
}

#endif
