// Helpers shared by the CPU kernel tests: see kernel_check.h.
#include "tests/kernels/kernel_check.h"

#include <criterion/criterion.h>
#include <stdint.h>
#include <stdlib.h>

#include "kernels/cpu/kernels.h"

// The RNG state: one per test process (Criterion runs each test in its own process), so each test starts from
// this value unless it calls rng_seed, as the tests that draw do first.
static uint64_t rng_state = 0x243f6a8885a308d3ull;

void rng_seed(uint64_t s) { rng_state = s; }

// splitmix64: small, seedable, identical on every platform.
uint64_t rng_next(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static double rng_u01(void) { return (double)(rng_next(&rng_state) >> 11) * (1.0 / 9007199254740992.0); }

static float rng_uniform(float lo, float hi) { return lo + (hi - lo) * (float)rng_u01(); }

void fill_uniform(float *x, size_t n, float lo, float hi) {
    for (size_t i = 0; i < n; i++) x[i] = rng_uniform(lo, hi);
}

// Uniform in +-[lo, hi]: keeps values away from a kink at 0.
void fill_away_from_zero(float *x, size_t n, float lo, float hi) {
    for (size_t i = 0; i < n; i++) x[i] = (rng_u01() < 0.5 ? -1.0f : 1.0f) * rng_uniform(lo, hi);
}

float *falloc(size_t n) {
    float *p = calloc(n ? n : 1, sizeof(float));
    cr_assert_not_null(p, "out of memory");
    return p;
}

// Kernel workspaces, filled with garbage: a kernel may not depend on what its scratch held before.
static float *ws_alloc(size_t n) {
    float *w = falloc(n ? n : 1);
    for (size_t i = 0; i < n; i++) w[i] = 1e30f;
    return w;
}
float *att_ws(int Tk, int HS) { return ws_alloc(attention_ws_floats(Tk, HS, kernel_threads())); }
float *ln_ws(size_t N, int C) { return ws_alloc(layernorm_backward_ws_floats(N, C)); }
