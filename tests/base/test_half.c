// f16 <-> f32 (base/half.c): known values at the edges, every half's round trip, and nearest-even rounding of
// float32 values checked against the neighbouring halves.
#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>
#include <string.h>
#include "base/half.h"

static float bits_f32(uint32_t b) {
    float f;
    memcpy(&f, &b, 4);
    return f;
}

Test(half, known_values_subnormals_ties_overflow) {
    const struct { float x; uint16_t h; } cases[] = {
        {0.0f, 0x0000}, {-0.0f, 0x8000}, {1.0f, 0x3c00}, {-2.0f, 0xc000}, {0.1f, 0x2e66}, {65504.0f, 0x7bff},
        {65519.0f, 0x7bff},                          // rounds down to the largest half
        {65520.0f, 0x7c00}, {1e6f, 0x7c00},          // overflow: +Inf
        {-65520.0f, 0xfc00}, {INFINITY, 0x7c00},
        {0x1p-14f, 0x0400},                          // smallest normal
        {0x1p-24f, 0x0001},                          // smallest subnormal
        {0x1p-25f, 0x0000},                          // tie between 0 and 2^-24: even (0)
        {0x1.000002p-25f, 0x0001},                   // just above the tie
        {0x3p-25f, 0x0002},                          // tie between 1 and 2 ulps: even (2)
        {0x5p-25f, 0x0002},                          // tie between 2 and 3 ulps: even (2)
        {0x1p-26f, 0x0000}, {-0x1p-26f, 0x8000},
        {0x3ffp-24f, 0x03ff},                        // largest subnormal
        {0x7ffp-25f, 0x0400},                        // rounds up into the normals
        {1.0f + 0x1p-11f, 0x3c00},                   // tie: even mantissa (1.0)
        {1.0f + 0x3p-11f, 0x3c02},                   // tie: even mantissa (1 + 2^-9)
        {1.0f + 0x1p-11f + 0x1p-23f, 0x3c01},        // just above a tie rounds up
        {2047.0f, 0x67ff}, {2049.0f, 0x6800},        // 2049 is a tie between 2048 and 2050: even (2048)
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        cr_expect_eq(f16_from_f32(cases[i].x), cases[i].h, "f16(%a) = 0x%04x, want 0x%04x", (double)cases[i].x,
                     f16_from_f32(cases[i].x), cases[i].h);
    cr_expect(isnan(f32_from_f16(f16_from_f32(NAN))));
    cr_expect_eq(f32_from_f16(0x0001), 0x1p-24f);
    cr_expect_eq(f32_from_f16(0x03ff), 0x3ffp-24f);
    cr_expect_eq(f32_from_f16(0x7bff), 65504.0f);
    cr_expect_eq(f32_from_f16(0xfc00), -INFINITY);
    cr_expect(signbit(f32_from_f16(0x8000)) && f32_from_f16(0x8000) == 0.0f);
    // Every non-NaN half survives a round trip; every float32 rounds to a nearest half, ties to even.
    for (uint32_t h = 0; h < 0x10000; h++) {
        if ((h & 0x7c00) == 0x7c00 && (h & 0x3ff)) continue;
        cr_assert_eq(f16_from_f32(f32_from_f16((uint16_t)h)), h, "half 0x%04x", h);
    }
    for (uint32_t b = 0; b < 0x47800000u; b += 0x1235) { // positive floats up to 65536, strided
        float x = bits_f32(b);
        uint16_t h = f16_from_f32(x);
        double e = fabs((double)f32_from_f16(h) - x);
        if (h < 0x7c00) {
            double lo = h > 0 ? fabs((double)f32_from_f16((uint16_t)(h - 1)) - x) : INFINITY;
            double hi = h < 0x7bff ? fabs((double)f32_from_f16((uint16_t)(h + 1)) - x) : INFINITY;
            cr_assert(e <= lo && e <= hi && (e < lo || !(h & 1)) && (e < hi || !(h & 1)), "x %a -> 0x%04x", x, h);
        } else {
            cr_assert(x >= 65520.0f, "x %a overflowed", x);
        }
    }
}
