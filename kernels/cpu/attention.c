// Multi-head scaled dot-product attention, one (batch, head) pair per OpenMP iteration.
// Plain loops only (no BLAS: OpenBLAS is not safe to call from inside an OpenMP region here). Every hot loop is
// an independent-output "axpy" over a contiguous row, so -O3 vectorises it without reassociating sums.
// Without -fopenmp the pragmas are meant to compile away; keep -Wall -Werror from rejecting them.
#ifndef _OPENMP
#pragma GCC diagnostic ignored "-Wunknown-pragmas"
#endif

#include "kernels.h"

#include <math.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

// Multipliers of elements [base, base + n) of a dropout tensor, equal to dropout_scale() element by element
// but with one Philox call per 4 elements instead of one per element.
static void dropout_row(float *m, DropoutKey key, size_t base, int n) {
    if (key.p <= 0.0f) {
        for (int j = 0; j < n; j++) m[j] = 1.0f;
        return;
    }
    const float keep = 1.0f / (1.0f - key.p);
    int j = 0;
    while (j < n) {
        size_t i = base + (size_t)j;
        uint64_t blk = (uint64_t)i >> 2;
        Philox4 c = {{(uint32_t)blk, (uint32_t)(blk >> 32), key.site, key.step}};
        Philox4 r = philox4x32_10(c, (uint32_t)key.seed, (uint32_t)(key.seed >> 32));
        for (int w = (int)(i & 3); w < 4 && j < n; w++, j++)
            m[j] = (float)(r.v[w] >> 8) * (1.0f / 16777216.0f) >= key.p ? keep : 0.0f;
    }
}

// Keys visible to query i: j < tk_vis(i). The mask hides j - i >= 1 + |Tk - Tq|.
static inline int visible_keys(int causal, int i, int Tq, int Tk) {
    if (!causal) return Tk;
    int off = Tk > Tq ? Tk - Tq : Tq - Tk;
    int n = i + off + 1;
    return n < Tk ? n : Tk;
}

// Per thread: kT or vT (HS, Tk), a head's keys or values transposed so the inner loops run over contiguous
// keys; m (Tk) a dropout row; a row buffer of max(HS, Tk): one output row (forward) or dS row (backward).
size_t attention_ws_floats(int Tk, int HS, int nthreads) {
    size_t row = (size_t)(Tk > HS ? Tk : HS);
    return ((size_t)HS * Tk + (size_t)Tk + row) * (size_t)(nthreads > 0 ? nthreads : 1);
}

static float *thread_ws(float *ws, int Tk, int HS) {
#ifdef _OPENMP
    return ws + attention_ws_floats(Tk, HS, 1) * (size_t)omp_get_thread_num();
#else
    (void)Tk, (void)HS;
    return ws;
#endif
}

void attention_forward(float *out, float *att, float *ws, const float *q, const float *k, const float *v,
                       DropoutKey drop, int causal, int B, int Tq, int Tk, int NH, int HS, int nthreads) {
    // out (B, Tq, C), att (B, NH, Tq, Tk); q (B, Tq, C); k, v (B, Tk, C); C = NH * HS
    const int C = NH * HS;
    const float scale = 1.0f / sqrtf((float)HS);
#pragma omp parallel num_threads(nthreads)
    {
        float *kT = thread_ws(ws, Tk, HS);
        float *m = kT + (size_t)HS * Tk;
        float *acc = m + Tk;
#pragma omp for collapse(2) schedule(static)
        for (int b = 0; b < B; b++) {
            for (int h = 0; h < NH; h++) {
                const float *qb = q + (size_t)b * Tq * C + (size_t)h * HS;
                const float *kb = k + (size_t)b * Tk * C + (size_t)h * HS;
                const float *vb = v + (size_t)b * Tk * C + (size_t)h * HS;
                float *ob = out + (size_t)b * Tq * C + (size_t)h * HS;
                float *ab = att + ((size_t)b * NH + h) * Tq * Tk;
                for (int j = 0; j < Tk; j++)
                    for (int d = 0; d < HS; d++) kT[(size_t)d * Tk + j] = kb[(size_t)j * C + d];
                for (int i = 0; i < Tq; i++) {
                    const float *qi = qb + (size_t)i * C;
                    float *a = ab + (size_t)i * Tk;
                    int nv = visible_keys(causal, i, Tq, Tk);
                    for (int j = 0; j < nv; j++) a[j] = 0.0f;
                    for (int d = 0; d < HS; d++) {
                        const float qd = qi[d] * scale;
                        const float *kd = kT + (size_t)d * Tk;
                        for (int j = 0; j < nv; j++) a[j] += qd * kd[j];
                    }
                    // Softmax in fp32; hidden keys are -inf, i.e. exactly 0 after exp.
                    float mx = a[0];
                    for (int j = 1; j < nv; j++) mx = a[j] > mx ? a[j] : mx;
                    float sum = 0.0f;
                    for (int j = 0; j < nv; j++) {
                        a[j] = expf(a[j] - mx);
                        sum += a[j];
                    }
                    const float inv = 1.0f / sum;
                    for (int j = 0; j < nv; j++) a[j] *= inv;
                    for (int j = nv; j < Tk; j++) a[j] = 0.0f;
                    // att is stored before dropout; the mask is redrawn from its element index.
                    dropout_row(m, drop, (((size_t)b * NH + h) * Tq + i) * Tk, nv);
                    for (int d = 0; d < HS; d++) acc[d] = 0.0f;
                    for (int j = 0; j < nv; j++) {
                        const float w = a[j] * m[j];
                        if (w == 0.0f) continue;
                        const float *vj = vb + (size_t)j * C;
                        for (int d = 0; d < HS; d++) acc[d] += w * vj[d];
                    }
                    memcpy(ob + (size_t)i * C, acc, (size_t)HS * sizeof(float));
                }
            }
        }
    }
}

void attention_backward(float *dq, float *dk, float *dv, float *ws, const float *dout, const float *q,
                        const float *k, const float *v, const float *att, DropoutKey drop, int B, int Tq, int Tk,
                        int NH, int HS, int nthreads) {
    // dq (B, Tq, C); dk, dv (B, Tk, C); dout, q (B, Tq, C); k, v (B, Tk, C);
    // att (B, NH, Tq, Tk) softmax output before dropout
    const int C = NH * HS;
    const float scale = 1.0f / sqrtf((float)HS);
#pragma omp parallel num_threads(nthreads)
    {
        // vT: v_h transposed for dA = dout . v^T; ds: one row of dS
        float *vT = thread_ws(ws, Tk, HS);
        float *m = vT + (size_t)HS * Tk;
        float *ds = m + Tk;
#pragma omp for collapse(2) schedule(static)
        for (int b = 0; b < B; b++) {
            for (int h = 0; h < NH; h++) {
                const size_t bh = (size_t)b * NH + h;
                const float *qb = q + (size_t)b * Tq * C + (size_t)h * HS;
                const float *kb = k + (size_t)b * Tk * C + (size_t)h * HS;
                const float *vb = v + (size_t)b * Tk * C + (size_t)h * HS;
                const float *gb = dout + (size_t)b * Tq * C + (size_t)h * HS;
                float *dqb = dq ? dq + (size_t)b * Tq * C + (size_t)h * HS : NULL;
                float *dkb = dk ? dk + (size_t)b * Tk * C + (size_t)h * HS : NULL;
                float *dvb = dv ? dv + (size_t)b * Tk * C + (size_t)h * HS : NULL;
                const float *ab = att + bh * Tq * Tk;
                for (int j = 0; j < Tk; j++)
                    for (int d = 0; d < HS; d++) vT[(size_t)d * Tk + j] = vb[(size_t)j * C + d];
                for (int i = 0; i < Tq; i++) {
                    const float *a = ab + (size_t)i * Tk;
                    const float *gi = gb + (size_t)i * C;
                    const float *qi = qb + (size_t)i * C;
                    // Hidden keys have att == 0 exactly and contribute nothing; find the last non-zero column
                    // instead of re-deriving the causal flag, which backward does not receive.
                    int nv = Tk;
                    while (nv > 1 && a[nv - 1] == 0.0f) nv--;
                    dropout_row(m, drop, (bh * Tq + i) * Tk, nv);
                    // dv_j += (att_ij * m_ij) dout_i
                    if (dvb) {
                        for (int j = 0; j < nv; j++) {
                            const float w = a[j] * m[j];
                            if (w == 0.0f) continue;
                            float *dvj = dvb + (size_t)j * C;
                            for (int d = 0; d < HS; d++) dvj[d] += w * gi[d];
                        }
                    }
                    if (!dqb && !dkb) continue;
                    // dP = (dout_i . v_j) * m_ij: gradient w.r.t. the softmax output P = att.
                    for (int j = 0; j < nv; j++) ds[j] = 0.0f;
                    for (int d = 0; d < HS; d++) {
                        const float g = gi[d];
                        const float *vd = vT + (size_t)d * Tk;
                        for (int j = 0; j < nv; j++) ds[j] += g * vd[j];
                    }
                    float dot = 0.0f;
                    for (int j = 0; j < nv; j++) {
                        ds[j] *= m[j];
                        dot += ds[j] * a[j];
                    }
                    // Softmax backward, with the score scale folded in: dS = att * (dP - <dP, att>) * HS^-0.5.
                    for (int j = 0; j < nv; j++) ds[j] = a[j] * (ds[j] - dot) * scale;
                    if (dqb) {
                        float *dqi = dqb + (size_t)i * C;
                        for (int j = 0; j < nv; j++) {
                            const float s = ds[j];
                            const float *kj = kb + (size_t)j * C;
                            for (int d = 0; d < HS; d++) dqi[d] += s * kj[d];
                        }
                    }
                    if (dkb) {
                        for (int j = 0; j < nv; j++) {
                            const float s = ds[j];
                            float *dkj = dkb + (size_t)j * C;
                            for (int d = 0; d < HS; d++) dkj[d] += s * qi[d];
                        }
                    }
                }
            }
        }
    }
}
