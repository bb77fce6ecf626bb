// IEEE binary16 <-> binary32 on the host (the store keeps features as f16). f16_from_f32 rounds to nearest, ties
// to even; beyond the f16 range it gives +-Inf; a NaN stays a quiet NaN.
#ifndef AVT_HALF_H
#define AVT_HALF_H

#include <stdint.h>

uint16_t f16_from_f32(float x);
float f32_from_f16(uint16_t h);

#endif
