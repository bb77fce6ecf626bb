// Multi-head scaled dot-product attention, one (batch, head) pair per OpenMP iteration.
// No BLAS here (OpenBLAS is not safe to call from inside an OpenMP region in every build). Instead the head's
// keys and values are copied into zero-padded per-thread tiles, so every inner loop runs over a fixed width of
// VB floats that the compiler keeps in vector registers:
//   rows    x (VB keys):  s[j..j+VB) += q_d * kT[d][j..j+VB)      scores, dP
//   columns x (VB dims):  o[d..d+VB) += w_j * vP[j][d..d+VB)      outputs, dq, dk, dv
// Sums run in a fixed order, so results do not depend on the thread count.
// Without -fopenmp the pragmas are meant to compile away; keep -Wall -Werror from rejecting them.
#ifndef _OPENMP
#pragma GCC diagnostic ignored "-Wunknown-pragmas"
#endif

#include "kernels/cpu/kernels.h"

#include <math.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#define VB 16 // vector block: two AVX registers

static inline int round_up(int x) { return (x + VB - 1) / VB * VB; }

// Per-thread tiles: two (Tk, HSp) or (HS, Tkp) matrices for keys / values, two (Tk, HSp) accumulators for dk, dv,
// and four rows of max(Tkp, HSp).
static size_t tile_floats(int Tk, int HS) {
    size_t a = (size_t)HS * (size_t)round_up(Tk), b = (size_t)Tk * (size_t)round_up(HS);
    return a > b ? a : b;
}

size_t attention_ws_floats(int Tk, int HS, int nthreads) {
    size_t Tkp = (size_t)round_up(Tk), HSp = (size_t)round_up(HS);
    size_t tile = tile_floats(Tk, HS), row = Tkp > HSp ? Tkp : HSp;
    return (4 * tile + 4 * row) * (size_t)(nthreads > 0 ? nthreads : 1);
}

typedef struct {
    float *t0, *t1, *t2, *t3; // tiles
    float *r0, *r1, *r2, *r3; // rows
} Scratch;

static Scratch thread_scratch(float *ws, int Tk, int HS) {
    size_t per = attention_ws_floats(Tk, HS, 1), Tkp = (size_t)round_up(Tk), HSp = (size_t)round_up(HS);
    size_t tile = tile_floats(Tk, HS), row = Tkp > HSp ? Tkp : HSp;
#ifdef _OPENMP
    ws += per * (size_t)omp_get_thread_num();
#else
    (void)per;
#endif
    Scratch s = {ws, ws + tile, ws + 2 * tile, ws + 3 * tile, ws + 4 * tile, ws + 4 * tile + row,
                 ws + 4 * tile + 2 * row, ws + 4 * tile + 3 * row};
    return s;
}

// Keys visible to query i: j < visible_keys(i). The mask hides j - i >= 1 + |Tk - Tq|.
static inline int visible_keys(int causal, int i, int Tq, int Tk) {
    if (!causal) return Tk;
    int off = Tk > Tq ? Tk - Tq : Tq - Tk;
    int n = i + off + 1;
    return n < Tk ? n : Tk;
}

// xT (HS, Tkp) = head columns of x (Tk rows of stride C) transposed, zero beyond Tk.
static void load_transposed(float *xT, const float *x, int Tk, int Tkp, int HS, int C) {
    for (int d = 0; d < HS; d++) {
        float *row = xT + (size_t)d * Tkp;
        for (int j = 0; j < Tk; j++) row[j] = x[(size_t)j * C + d];
        for (int j = Tk; j < Tkp; j++) row[j] = 0.0f;
    }
}

// xP (Tk, HSp) = head columns of x, zero beyond HS.
static void load_padded(float *xP, const float *x, int Tk, int HS, int HSp, int C) {
    for (int j = 0; j < Tk; j++) {
        memcpy(xP + (size_t)j * HSp, x + (size_t)j * C, (size_t)HS * sizeof(float));
        for (int d = HS; d < HSp; d++) xP[(size_t)j * HSp + d] = 0.0f;
    }
}

// s[j] = sum_d u[d] * xT[d][j] for j < n (n rounded up to VB is written).
static void row_times_transposed(float *s, const float *u, const float *xT, int n, int HS, int Tkp) {
    for (int j0 = 0; j0 < n; j0 += VB) {
        float acc[VB] = {0};
        for (int d = 0; d < HS; d++) {
            const float ud = u[d];
            const float *x = xT + (size_t)d * Tkp + j0;
            for (int jj = 0; jj < VB; jj++) acc[jj] += ud * x[jj];
        }
        memcpy(s + j0, acc, sizeof acc);
    }
}

// o[0..HSp) = sum_{j < n} w[j] * xP[j] (skipping zero weights).
static void weights_times_rows(float *o, const float *w, const float *xP, int n, int HSp) {
    for (int d0 = 0; d0 < HSp; d0 += VB) {
        float acc[VB] = {0};
        for (int j = 0; j < n; j++) {
            const float wj = w[j];
            const float *x = xP + (size_t)j * HSp + d0;
            for (int dd = 0; dd < VB; dd++) acc[dd] += wj * x[dd];
        }
        memcpy(o + d0, acc, sizeof acc);
    }
}

// acc[j] += w[j] * u for j < n: rank-1 update of a (Tk, HSp) tile.
static void rank1_update(float *acc, const float *w, const float *u, int n, int HSp) {
    for (int j = 0; j < n; j++) {
        const float wj = w[j];
        if (wj == 0.0f) continue;
        float *a = acc + (size_t)j * HSp;
        for (int d = 0; d < HSp; d++) a[d] += wj * u[d];
    }
}

void attention_forward(float *out, float *att, float *ws, const float *q, const float *k, const float *v,
                       DropoutKey drop, int causal, int B, int Tq, int Tk, int NH, int HS, int nthreads) {
    // out (B, Tq, C), att (B, NH, Tq, Tk); q (B, Tq, C); k, v (B, Tk, C); C = NH * HS
    const int C = NH * HS, Tkp = round_up(Tk), HSp = round_up(HS);
    const float scale = 1.0f / sqrtf((float)HS);
#pragma omp parallel num_threads(nthreads)
    {
        Scratch s = thread_scratch(ws, Tk, HS);
        float *kT = s.t0, *vP = s.t1; // kT (HS, Tkp); vP (Tk, HSp)
        float *qs = s.r0, *sc = s.r1, *w = s.r2, *o = s.r3;
#pragma omp for collapse(2) schedule(static)
        for (int b = 0; b < B; b++) {
            for (int h = 0; h < NH; h++) {
                const size_t bh = (size_t)b * NH + h;
                const float *qb = q + (size_t)b * Tq * C + (size_t)h * HS;
                float *ob = out + (size_t)b * Tq * C + (size_t)h * HS;
                load_transposed(kT, k + (size_t)b * Tk * C + (size_t)h * HS, Tk, Tkp, HS, C);
                load_padded(vP, v + (size_t)b * Tk * C + (size_t)h * HS, Tk, HS, HSp, C);
                for (int i = 0; i < Tq; i++) {
                    float *a = att + (bh * Tq + i) * Tk;
                    int nv = visible_keys(causal, i, Tq, Tk);
                    for (int d = 0; d < HS; d++) qs[d] = qb[(size_t)i * C + d] * scale; // q scaled, then q.k
                    row_times_transposed(sc, qs, kT, nv, HS, Tkp);
                    // Softmax in fp32; hidden keys are -inf, i.e. exactly 0 after exp.
                    float mx = sc[0];
                    for (int j = 1; j < nv; j++) mx = sc[j] > mx ? sc[j] : mx;
                    float sum = 0.0f;
                    for (int j = 0; j < nv; j++) {
                        sc[j] = expf(sc[j] - mx);
                        sum += sc[j];
                    }
                    const float inv = 1.0f / sum;
                    for (int j = 0; j < nv; j++) a[j] = sc[j] * inv;
                    for (int j = nv; j < Tk; j++) a[j] = 0.0f;
                    // att is stored before dropout; the mask is redrawn from its element index.
                    dropout_scales(w, drop, (bh * Tq + i) * Tk, (size_t)nv);
                    for (int j = 0; j < nv; j++) w[j] *= a[j];
                    weights_times_rows(o, w, vP, nv, HSp);
                    memcpy(ob + (size_t)i * C, o, (size_t)HS * sizeof(float));
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
    const int C = NH * HS, Tkp = round_up(Tk), HSp = round_up(HS);
    const float scale = 1.0f / sqrtf((float)HS);
#pragma omp parallel num_threads(nthreads)
    {
        Scratch s = thread_scratch(ws, Tk, HS);
        // vT (HS, Tkp) for dP = dout_i . v^T; kP (Tk, HSp) for dq; dkA, dvA (Tk, HSp) accumulate dk, dv
        float *vT = s.t0, *kP = s.t1, *dkA = s.t2, *dvA = s.t3;
        float *m = s.r0, *ds = s.r1, *u = s.r2, *o = s.r3; // u: a padded dout or q row
#pragma omp for collapse(2) schedule(static)
        for (int b = 0; b < B; b++) {
            for (int h = 0; h < NH; h++) {
                const size_t bh = (size_t)b * NH + h;
                const size_t qoff = (size_t)b * Tq * C + (size_t)h * HS, koff = (size_t)b * Tk * C + (size_t)h * HS;
                load_transposed(vT, v + koff, Tk, Tkp, HS, C);
                load_padded(kP, k + koff, Tk, HS, HSp, C);
                memset(dkA, 0, (size_t)Tk * HSp * sizeof(float));
                memset(dvA, 0, (size_t)Tk * HSp * sizeof(float));
                for (int i = 0; i < Tq; i++) {
                    const float *a = att + (bh * Tq + i) * Tk;
                    // Hidden keys have att == 0 exactly and contribute nothing; find the last non-zero column
                    // instead of re-deriving the causal flag, which backward does not receive.
                    int nv = Tk;
                    while (nv > 1 && a[nv - 1] == 0.0f) nv--;
                    dropout_scales(m, drop, (bh * Tq + i) * Tk, (size_t)nv);
                    memcpy(u, dout + qoff + (size_t)i * C, (size_t)HS * sizeof(float));
                    for (int d = HS; d < HSp; d++) u[d] = 0.0f;
                    // dv_j += (att_ij * m_ij) dout_i
                    for (int j = 0; j < nv; j++) o[j] = a[j] * m[j];
                    rank1_update(dvA, o, u, nv, HSp);
                    // dP_j = (dout_i . v_j) * m_ij: gradient w.r.t. the softmax output P = att
                    row_times_transposed(ds, u, vT, nv, HS, Tkp);
                    float dot = 0.0f;
                    for (int j = 0; j < nv; j++) {
                        ds[j] *= m[j];
                        dot += ds[j] * a[j];
                    }
                    // Softmax backward, with the score scale folded in: dS = att * (dP - <dP, att>) * HS^-0.5.
                    for (int j = 0; j < nv; j++) ds[j] = a[j] * (ds[j] - dot) * scale;
                    if (dq) {
                        weights_times_rows(o, ds, kP, nv, HSp);
                        float *dqi = dq + qoff + (size_t)i * C;
                        for (int d = 0; d < HS; d++) dqi[d] += o[d];
                    }
                    // dk_j += dS_ij q_i
                    memcpy(u, q + qoff + (size_t)i * C, (size_t)HS * sizeof(float));
                    rank1_update(dkA, ds, u, nv, HSp);
                }
                for (int j = 0; j < Tk; j++) {
                    float *dkj = dk ? dk + koff + (size_t)j * C : NULL, *dvj = dv ? dv + koff + (size_t)j * C : NULL;
                    for (int d = 0; d < HS; d++) {
                        if (dkj) dkj[d] += dkA[(size_t)j * HSp + d];
                        if (dvj) dvj[d] += dvA[(size_t)j * HSp + d];
                    }
                }
            }
        }
    }
}
