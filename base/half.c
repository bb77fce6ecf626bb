#include "base/half.h"

#include <string.h>

uint16_t f16_from_f32(float x) {
    uint32_t b;
    memcpy(&b, &x, 4);
    uint16_t sign = (uint16_t)((b >> 16) & 0x8000u);
    uint32_t a = b & 0x7fffffffu;
    if (a > 0x7f800000u) return sign | 0x7e00u;   // NaN stays a (quiet) NaN
    if (a >= 0x477ff000u) return sign | 0x7c00u;  // >= 65520 rounds past 65504: Inf
    if (a >= 0x38800000u) {                       // >= 2^-14: a normal half
        uint32_t r = a - 0x38000000u;             // rebias the exponent from 127 to 15
        r += 0xfffu + ((r >> 13) & 1u);           // round the 13 dropped bits to nearest even
        return sign | (uint16_t)(r >> 13);
    }
    if (a <= 0x33000000u) return sign;            // <= 2^-25: rounds to (signed) zero, the tie included
    // A subnormal half m * 2^-24: shift the 24-bit significand right and round to nearest even.
    uint32_t mant = (a & 0x7fffffu) | 0x800000u, shift = 126u - (a >> 23);
    uint32_t m = mant >> shift, rem = mant & ((1u << shift) - 1u), half = 1u << (shift - 1u);
    if (rem > half || (rem == half && (m & 1u))) m++; // m == 0x400 is the smallest normal: still right
    return sign | (uint16_t)m;
}

float f32_from_f16(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16, e = (h >> 10) & 0x1fu, m = h & 0x3ffu, b;
    if (e == 0x1f) b = sign | 0x7f800000u | (m << 13);
    else if (e != 0) b = sign | ((e + 112u) << 23) | (m << 13);
    else {
        float f = (float)m * 0x1p-24f; // subnormal (or zero): exact in float
        return sign ? -f : f;
    }
    float f;
    memcpy(&f, &b, 4);
    return f;
}
