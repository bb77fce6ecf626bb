// BertAdam (docs/model.md §3.4) pieces shared by the CPU and CUDA optimiser kernels, so both clip with one formula.
#ifndef AVT_OPTIM_H
#define AVT_OPTIM_H

#include <math.h>
#include "base/philox.h" // AVT_HD

typedef struct {
    // Doubles, as torch's are Python floats: (1 - beta) is formed in double and rounded to float once (1 - 0.999f
    // in float would be 0.000999987, not 0.001).
    double beta1, beta2;  // 0.9, 0.999
    float eps;            // 1e-6, added to sqrt(v)
    float weight_decay;   // 0.01, decoupled: added to the update before the lr scaling
    float clip_global;    // 1.0: clip_grad_norm_(all parameters) before the step
    float clip_tensor;    // 1.0: BertAdam's own per-tensor clip
} BertAdamHyper;

// The factor a gradient is multiplied by: the global clip (torch clip_grad_norm_: max / (norm + 1e-6), at most 1)
// and then the per-tensor clip of the globally clipped tensor, whose norm is cg * sqrt(tensor_sq).
// Products are rounded on their own on the device too (no FMA contraction), so both backends get the same bits.
#ifdef __CUDA_ARCH__
#define AVT_MUL_RN(a, b) __fmul_rn((a), (b))
#else
#define AVT_MUL_RN(a, b) ((a) * (b))
#endif
AVT_HD float bertadam_grad_scale(float tensor_sq, float global_sq, BertAdamHyper h) {
    float cg = h.clip_global / (sqrtf(global_sq) + 1e-6f);
    cg = cg < 1.0f ? cg : 1.0f;
    float ct = h.clip_tensor / (AVT_MUL_RN(cg, sqrtf(tensor_sq)) + 1e-6f);
    ct = ct < 1.0f ? ct : 1.0f;
    return AVT_MUL_RN(cg, ct);
}

#endif
