#include "data/corpus/masking.h"

#include <string.h>

#include "base/common.h"
#include "base/philox.h"

uint32_t philox_below(uint64_t seed, uint32_t site, uint32_t step, uint64_t i, uint64_t n) {
    uint64_t blk = i >> 2;
    Philox4 c = {{(uint32_t)blk, (uint32_t)(blk >> 32), site, step}};
    uint32_t word = philox4x32_10(c, (uint32_t)seed, (uint32_t)(seed >> 32)).v[i & 3];
    return (uint32_t)(((uint64_t)word * n) >> 32); // bias <= n / 2^32, far below anything a test could see
}

// Counter index of draw j of sample utt: the utterance in the high word keeps samples' streams apart.
static uint64_t draw_index(size_t utt, uint32_t j) { return (uint64_t)utt << 32 | j; }

void masking_plan(MaskPlan *plan, uint64_t seed, uint32_t epoch, size_t utt, size_t pos, int len, int T,
                  size_t n_items) {
    if (T < 1 || T > MASK_T_MAX || len < 0 || (uint64_t)utt > UINT32_MAX || n_items < 1 ||
        pos >= n_items || (uint64_t)n_items > UINT32_MAX)
        avt_fatal("masking_plan: bad arguments (utt %zu, pos %zu of %zu, len %d, T %d)", utt, pos, n_items, len, T);
    memset(plan, 0, sizeof *plan);
    plan->seed = seed;
    plan->epoch = epoch;
    plan->utt = utt;
    plan->T = T;
    plan->len = len = len < T ? len : T; // the sample as the model sees it
    plan->frame_step = -1;
    // ceil(len * 0.05) in integers: the float product is inexact (e.g. 60 * 0.05 > 3)
    plan->n_spans = (len * 5 + 99) / 100;
    for (int j = 0; j < plan->n_spans; j++) {
        int s = (int)philox_below(seed, MASK_SITE(MASK_DRAW_START), epoch, draw_index(utt, (uint32_t)j),
                                  (uint64_t)len);
        for (int t = s; t < s + MASK_SPAN && t < T; t++) plan->action[t] = MASK_ZERO; // clipped at T only
    }
    for (int t = 0; t < T; t++) {
        if (plan->action[t] == MASK_OFF) continue;
        // keyed by the step, not by the order of masked steps, so one step's action never shifts another's
        float u = philox_uniform(seed, MASK_SITE(MASK_DRAW_ACTION), epoch, draw_index(utt, (uint32_t)t));
        plan->action[t] = u < 0.8f ? MASK_ZERO : u < 0.9f ? MASK_RANDOM : MASK_KEEP;
        plan->n_masked++;
    }
    plan->frame_pos = pos;
    if (n_items > 1) {
        size_t k = philox_below(seed, MASK_SITE(MASK_DRAW_ITEM), epoch, draw_index(utt, 0), (uint64_t)n_items - 1);
        plan->frame_pos = k + (k >= pos); // uniform over the others
    }
}

void masking_plan_frame(MaskPlan *plan, int other_len) {
    if (other_len > plan->T) other_len = plan->T;
    plan->frame_step = other_len < 1 ? -1
        : (int)philox_below(plan->seed, MASK_SITE(MASK_DRAW_STEP), plan->epoch, draw_index(plan->utt, 0),
                            (uint64_t)other_len);
}

void masking_apply(float *x_a, float *x_v, float *mask, const MaskPlan *plan, const float *frame_a,
                   const float *frame_v, int T, int d_a, int d_v) {
    if (T != plan->T) avt_fatal("masking_apply: plan for T %d applied to T %d", plan->T, T);
    for (int t = 0; t < T; t++) {
        int act = plan->action[t];
        mask[t] = act != MASK_OFF;
        float *a = x_a + (size_t)t * d_a, *v = x_v + (size_t)t * d_v;
        if (act == MASK_ZERO) {
            memset(a, 0, sizeof(float) * (size_t)d_a);
            memset(v, 0, sizeof(float) * (size_t)d_v);
        } else if (act == MASK_RANDOM) {
            memcpy(a, frame_a, sizeof(float) * (size_t)d_a);
            memcpy(v, frame_v, sizeof(float) * (size_t)d_v);
        }
    }
}
