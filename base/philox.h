// Philox4x32-10 counter-based generator (Salmon et al., SC'11) and the dropout draw built on it.
// Header-only and free of host calls so the CUDA kernels can include the same code.
//
// Dropout contract (shared with tests/reference/philox.py, bit for bit):
//   key     = (seed & 0xffffffff, seed >> 32)
//   counter = (i >> 2 & 0xffffffff, i >> 34, site, step)       i = element index in the canonical layout
//   word    = philox4x32_10(counter, key)[i & 3]
//   u       = (word >> 8) * 2^-24                               uniform in [0, 1)
//   keep    = u >= p;   y = keep ? x / (1 - p) : 0
#ifndef AVT_PHILOX_H
#define AVT_PHILOX_H

#include <stdint.h>
#include <stddef.h>

#if defined(__CUDACC__)
#define AVT_HD __host__ __device__ __forceinline__
#else
#define AVT_HD static inline
#endif

typedef struct { uint32_t v[4]; } Philox4;

AVT_HD void philox_mulhilo(uint32_t a, uint32_t b, uint32_t *hi, uint32_t *lo) {
    uint64_t p = (uint64_t)a * (uint64_t)b;
    *hi = (uint32_t)(p >> 32);
    *lo = (uint32_t)p;
}

AVT_HD Philox4 philox4x32_10(Philox4 c, uint32_t k0, uint32_t k1) {
    for (int r = 0; r < 10; r++) {
        if (r > 0) { k0 += 0x9E3779B9u; k1 += 0xBB67AE85u; }
        uint32_t hi0, lo0, hi1, lo1;
        philox_mulhilo(0xD2511F53u, c.v[0], &hi0, &lo0);
        philox_mulhilo(0xCD9E8D57u, c.v[2], &hi1, &lo1);
        Philox4 n = {{hi1 ^ c.v[1] ^ k0, lo1, hi0 ^ c.v[3] ^ k1, lo0}};
        c = n;
    }
    return c;
}

// Where a random number is used: one generator for dropout, masking and shuffling,
// told apart by site (what) and step (when). p == 0 means "identity, draw nothing".
typedef struct {
    uint64_t seed;
    uint32_t step;
    uint32_t site;
    float p;
    // Element index of this tensor's first element in the whole batch: a data-parallel rank holding samples
    // [b0, b0 + B) of the global batch passes b0 * (elements per sample), so every rank draws the masks one
    // process would draw for the same global batch. 0 on a single process.
    uint64_t offset;
} DropoutKey;

// The uniform draw for element i of the tensor keyed by (seed, site, step).
AVT_HD float philox_uniform(uint64_t seed, uint32_t site, uint32_t step, size_t i) {
    uint64_t blk = (uint64_t)i >> 2;
    Philox4 c = {{(uint32_t)blk, (uint32_t)(blk >> 32), site, step}};
    Philox4 r = philox4x32_10(c, (uint32_t)seed, (uint32_t)(seed >> 32));
    return (float)(r.v[i & 3] >> 8) * (1.0f / 16777216.0f);
}

// Multiplier for element i of the tensor: 0 (dropped) or 1/(1-p) (kept).
AVT_HD float dropout_scale(DropoutKey k, size_t i) {
    if (k.p <= 0.0f) return 1.0f;
    return philox_uniform(k.seed, k.site, k.step, k.offset + i) >= k.p ? 1.0f / (1.0f - k.p) : 0.0f;
}

#endif
