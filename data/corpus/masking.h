// Dynamic span masking of one pretraining sample (docs/model.md §3.2), reproducible from its key.
//
// Every draw comes from Philox (base/philox.h) keyed by (seed, epoch, utt), so any rank or resumed run derives
// the same mask for the same utterance in the same epoch. Each draw has a fixed counter (shared with
// tests/reference/masking_ref.py, bit for bit):
//   site  = MASK_SITE(kind)        step = epoch        index = utt << 32 | j
//   kind MASK_DRAW_START   j = span 0 .. n_spans-1   start  = below(len)
//   kind MASK_DRAW_ITEM    j = 0                     other  = below(n_items - 1), skipping the sample's own position
//   kind MASK_DRAW_STEP    j = 0                     step   = below(other_len)
//   kind MASK_DRAW_ACTION  j = t (the masked step)   u = philox_uniform: u < 0.8 zero, u < 0.9 random frame, else keep
// below(n) = (word * n) >> 32 with word the full 32-bit Philox output (philox_below).
#ifndef AVT_MASKING_H
#define AVT_MASKING_H

#include <stddef.h>
#include <stdint.h>

#define MASK_SITE(kind) (0x4D000000u | (uint32_t)(kind)) // 'M': apart from the model's dropout sites
enum { MASK_DRAW_START, MASK_DRAW_ITEM, MASK_DRAW_STEP, MASK_DRAW_ACTION };

#define MASK_T_MAX 1024 // longest padded sequence a plan describes
#define MASK_SPAN 3     // steps per span
enum { MASK_OFF, MASK_ZERO, MASK_RANDOM, MASK_KEEP }; // what happens to a step

typedef struct {
    uint64_t seed;              // the key the plan was drawn from
    uint32_t epoch;
    size_t utt;
    int T, len;                 // padded length, the sample's steps after truncation to T (what draws use)
    int n_spans, n_masked;      // n_masked: distinct masked steps (spans overlap, may reach into padding)
    uint8_t action[MASK_T_MAX]; // (T) MASK_OFF or the masked step's action
    size_t frame_pos;           // dataset position of the random-frame sample
    int frame_step;             // its step, set by masking_plan_frame; -1 = none (that sample has no steps)
} MaskPlan;

// Uniform integer in [0, n), n <= 2^32, from the full 32-bit Philox word at (seed, site, step, i).
uint32_t philox_below(uint64_t seed, uint32_t site, uint32_t step, uint64_t i, uint64_t n);

// Spans and actions of sample utt (at position pos of a dataset of n_items) with len steps (truncated to T here),
// and which other sample gives the random frame. The frame's step needs that sample's length: masking_plan_frame.
// With n_items == 1 the frame comes from the sample itself.
void masking_plan(MaskPlan *plan, uint64_t seed, uint32_t epoch, size_t utt, size_t pos, int len, int T,
                  size_t n_items);
// other_len: steps of sample frame_pos (truncated to T here).
void masking_plan_frame(MaskPlan *plan, int other_len);

// In place on the sample's padded input x_a (T, d_a), x_v (T, d_v); mask (T) gets 1 at masked steps.
// frame_a (d_a), frame_v (d_v): step frame_step of sample frame_pos (zeros when frame_step is -1).
void masking_apply(float *x_a, float *x_v, float *mask, const MaskPlan *plan, const float *frame_a,
                   const float *frame_v, int T, int d_a, int d_v);

#endif
