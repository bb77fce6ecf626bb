// Helpers shared by the CPU kernel tests (test_kernels.c, test_gradcheck.c): a seedable RNG, buffer fills and
// allocation, and kernel workspaces filled with garbage.
// The RNG state is one per process: Criterion runs each test in its own process, and a test calls rng_seed first.
#ifndef AVT_KERNEL_CHECK_H
#define AVT_KERNEL_CHECK_H

#include <stddef.h>
#include <stdint.h>

// Sets the state of the shared RNG that the fill_* helpers draw from.
void rng_seed(uint64_t s);
// splitmix64 step on the state *s (small, seedable, identical on every platform); returns the next draw.
uint64_t rng_next(uint64_t *s);
// Fills x[0..n) uniformly in [lo, hi) from the shared RNG.
void fill_uniform(float *x, size_t n, float lo, float hi);
// Fills x[0..n) uniformly in +-[lo, hi] from the shared RNG: keeps values away from a kink at 0.
void fill_away_from_zero(float *x, size_t n, float lo, float hi);
// n zeroed floats (at least one); out of memory fails the test.
float *falloc(size_t n);
// Attention workspace for Tk keys and head size HS at kernel_threads() threads, filled with garbage (free it).
float *att_ws(int Tk, int HS);
// Layer-norm backward workspace for N rows of C channels, filled with garbage (free it).
float *ln_ws(size_t N, int C);

#endif
