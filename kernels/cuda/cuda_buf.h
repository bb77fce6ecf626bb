// Host vectors and device buffers for code that compares CUDA kernels with their CPU twins: the tests
// (tests/cuda/cuda_test.h) and the kernel benchmarks (benchmarks/kernels/bench_common.cuh).
#ifndef AVT_CUDA_BUF_H
#define AVT_CUDA_BUF_H

#include <stdint.h>

#include <vector>

#include "kernels/cuda/kernels.cuh"

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

#endif
