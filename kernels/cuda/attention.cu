// Multi-head scaled dot-product attention on the GPU: the twin of kernels/cpu/attention.c (q scaled by HS^-0.5
// before q.k; causal hides key j from query i when j - i >= 1 + |Tk - Tq|; att saved BEFORE dropout; the dropout
// element index is att's (B, NH, Tq, Tk) offset; backward ACCUMULATES).
//
// Forward: one block per (query-row tile, head, batch), one thread per query row, with the row's scaled q and its
// output accumulator in registers (head size padded to HSP = 16, 32, 48 or 64, a template argument, so the
// arrays stay in registers). Key/value tiles of ATT_KT keys are staged in shared memory and every thread reads the
// same element at a time (a broadcast). Softmax is online in fp32 (running max and sum), so any Tk works; the raw
// scores go to att on the way and a second pass over the thread's own att row turns them into the softmax with the
// final max and sum.
//
// Backward, deterministic and without atomics, in two kernels that each write every output element from one
// thread in a fixed order:
//   1. rows (thread per query row, as the forward): dP_ij = (dout_i . v_j) * m_ij into ws (B, NH, Tq, Tk),
//      D_i = sum_j dP_ij att_ij, then dS_ij = att_ij (dP_ij - D_i) HS^-0.5 in place, then dq_i += sum_j dS_ij k_j
//      over key tiles in shared memory;
//   2. columns (thread per key): dv_j += sum_i att_ij m_ij dout_i and dk_j += sum_i dS_ij q_i over query tiles of
//      dout and q in shared memory (att and ws reads are coalesced across the threads of a warp).
#include "kernels/cuda/kernels.cuh"

#include <float.h>

#define ATT_ROWS 64  // threads per block: query rows (forward, backward rows) or keys (backward columns)
#define ATT_KT 32    // rows of a shared tile (keys, or queries in the column kernel)
#define ATT_HSMAX 64

// Keys visible to query i: j < att_visible(i).
__device__ __forceinline__ int att_visible(int causal, int i, int Tq, int Tk) {
    if (!causal) return Tk;
    const int off = Tk > Tq ? Tk - Tq : Tq - Tk;
    const int n = i + off + 1;
    return n < Tk ? n : Tk;
}

// Stage rows [r0, r0 + ATT_KT) of head columns of x (rows of stride C) into tile (ATT_KT, HSP), zero-padded.
template <int HSP>
__device__ __forceinline__ void att_load_tile(float (*tile)[HSP], const float *__restrict__ x, int r0, int nrows,
                                              int HS, int C) {
    for (int idx = threadIdx.x; idx < ATT_KT * HSP; idx += blockDim.x) {
        const int r = idx / HSP, d = idx % HSP;
        tile[r][d] = (r0 + r < nrows && d < HS) ? x[(size_t)(r0 + r) * C + d] : 0.0f;
    }
}

template <int HSP>
__global__ void __launch_bounds__(ATT_ROWS)
    attention_forward_kernel(float *__restrict__ out, float *__restrict__ att, const float *__restrict__ q,
                             const float *__restrict__ k, const float *__restrict__ v, DropoutKey drop, int causal,
                             int Tq, int Tk, int NH, int HS) {
    // out (B, Tq, C); att (B, NH, Tq, Tk); q (B, Tq, C); k, v (B, Tk, C)
    __shared__ float ks[ATT_KT][HSP];
    __shared__ float vs[ATT_KT][HSP];
    const int C = NH * HS, h = blockIdx.y, b = blockIdx.z;
    const int i0 = blockIdx.x * ATT_ROWS, i = i0 + threadIdx.x;
    const bool active = i < Tq;
    const size_t bh = (size_t)b * NH + h;
    const float *kb = k + (size_t)b * Tk * C + (size_t)h * HS, *vb = v + (size_t)b * Tk * C + (size_t)h * HS;
    const float scale = 1.0f / sqrtf((float)HS);
    const int nv = active ? att_visible(causal, i, Tq, Tk) : 0;
    // Keys any row of the block sees: the last row sees the most.
    const int last = (i0 + ATT_ROWS < Tq ? i0 + ATT_ROWS : Tq) - 1;
    const int nkeys = att_visible(causal, last, Tq, Tk);
    float *arow = att + (bh * Tq + (active ? i : 0)) * Tk;

    float qr[HSP], o[HSP];
#pragma unroll
    for (int d = 0; d < HSP; d++) {
        qr[d] = (active && d < HS) ? q[((size_t)b * Tq + i) * C + (size_t)h * HS + d] * scale : 0.0f;
        o[d] = 0.0f;
    }
    float m = -FLT_MAX, l = 0.0f;
    for (int j0 = 0; j0 < nkeys; j0 += ATT_KT) {
        att_load_tile<HSP>(ks, kb, j0, Tk, HS, C);
        att_load_tile<HSP>(vs, vb, j0, Tk, HS, C);
        __syncthreads();
        const int jn = nv - j0 < ATT_KT ? nv - j0 : ATT_KT;
        for (int jj = 0; jj < jn; jj++) {
            float s = 0.0f;
#pragma unroll
            for (int d = 0; d < HSP; d++) s += qr[d] * ks[jj][d];
            arow[j0 + jj] = s;  // raw score; normalised below
            if (s > m) {
                const float corr = expf(m - s);
                l *= corr;
#pragma unroll
                for (int d = 0; d < HSP; d++) o[d] *= corr;
                m = s;
            }
            const float p = expf(s - m);
            l += p;
            const float w = p * dropout_scale(drop, (bh * Tq + i) * Tk + (size_t)(j0 + jj));
#pragma unroll
            for (int d = 0; d < HSP; d++) o[d] += w * vs[jj][d];
        }
        __syncthreads();
    }
    if (!active) return;
    const float inv = 1.0f / l;
    for (int j = 0; j < nv; j++) arow[j] = expf(arow[j] - m) * inv;
    for (int j = nv; j < Tk; j++) arow[j] = 0.0f;
    float *orow = out + ((size_t)b * Tq + i) * C + (size_t)h * HS;
#pragma unroll
    for (int d = 0; d < HSP; d++)
        if (d < HS) orow[d] = o[d] * inv;
}

// Backward 1: dS into ws and dq, one thread per query row.
template <int HSP>
__global__ void __launch_bounds__(ATT_ROWS)
    attention_backward_rows_kernel(float *__restrict__ dq, float *__restrict__ ws, const float *__restrict__ dout,
                                   const float *__restrict__ k, const float *__restrict__ v,
                                   const float *__restrict__ att, DropoutKey drop, int Tq, int Tk, int NH, int HS) {
    // dq (B, Tq, C) accumulated or nullptr; ws (B, NH, Tq, Tk) dS written; dout (B, Tq, C); k, v (B, Tk, C);
    // att (B, NH, Tq, Tk)
    __shared__ float ts[ATT_KT][HSP];
    const int C = NH * HS, h = blockIdx.y, b = blockIdx.z;
    const int i = blockIdx.x * ATT_ROWS + threadIdx.x;
    const bool active = i < Tq;
    const size_t bh = (size_t)b * NH + h, row = bh * Tq + (active ? i : 0);
    const float *kb = k + (size_t)b * Tk * C + (size_t)h * HS, *vb = v + (size_t)b * Tk * C + (size_t)h * HS;
    const float scale = 1.0f / sqrtf((float)HS);
    const float *arow = att + row * Tk;
    float *srow = ws + row * Tk;

    float u[HSP];
#pragma unroll
    for (int d = 0; d < HSP; d++) u[d] = (active && d < HS) ? dout[((size_t)b * Tq + i) * C + (size_t)h * HS + d] : 0.0f;
    // dP_ij = (dout_i . v_j) * m_ij; D_i = sum_j dP_ij att_ij
    float dot = 0.0f;
    for (int j0 = 0; j0 < Tk; j0 += ATT_KT) {
        att_load_tile<HSP>(ts, vb, j0, Tk, HS, C);
        __syncthreads();
        if (active) {
            const int jn = Tk - j0 < ATT_KT ? Tk - j0 : ATT_KT;
            for (int jj = 0; jj < jn; jj++) {
                float s = 0.0f;
#pragma unroll
                for (int d = 0; d < HSP; d++) s += u[d] * ts[jj][d];
                s *= dropout_scale(drop, row * Tk + (size_t)(j0 + jj));
                srow[j0 + jj] = s;
                dot += s * arow[j0 + jj];
            }
        }
        __syncthreads();
    }
    // dS = att (dP - D) HS^-0.5, in place (the thread's own row)
    if (active)
        for (int j = 0; j < Tk; j++) srow[j] = arow[j] * (srow[j] - dot) * scale;
    if (!dq) return;  // uniform over the block
    float acc[HSP];
#pragma unroll
    for (int d = 0; d < HSP; d++) acc[d] = 0.0f;
    for (int j0 = 0; j0 < Tk; j0 += ATT_KT) {
        att_load_tile<HSP>(ts, kb, j0, Tk, HS, C);
        __syncthreads();
        if (active) {
            const int jn = Tk - j0 < ATT_KT ? Tk - j0 : ATT_KT;
            for (int jj = 0; jj < jn; jj++) {
                const float w = srow[j0 + jj];
#pragma unroll
                for (int d = 0; d < HSP; d++) acc[d] += w * ts[jj][d];
            }
        }
        __syncthreads();
    }
    if (!active) return;
    float *dqi = dq + ((size_t)b * Tq + i) * C + (size_t)h * HS;
#pragma unroll
    for (int d = 0; d < HSP; d++)
        if (d < HS) dqi[d] += acc[d];
}

// Backward 2: dk and dv, one thread per key.
template <int HSP>
__global__ void __launch_bounds__(ATT_ROWS)
    attention_backward_cols_kernel(float *__restrict__ dk, float *__restrict__ dv, const float *__restrict__ ws,
                                   const float *__restrict__ dout, const float *__restrict__ q,
                                   const float *__restrict__ att, DropoutKey drop, int Tq, int Tk, int NH, int HS) {
    // dk, dv (B, Tk, C) accumulated or nullptr; ws (B, NH, Tq, Tk) dS; dout, q (B, Tq, C); att (B, NH, Tq, Tk)
    __shared__ float us[ATT_KT][HSP];  // dout tile
    __shared__ float qs[ATT_KT][HSP];  // q tile
    const int C = NH * HS, h = blockIdx.y, b = blockIdx.z;
    const int j = blockIdx.x * ATT_ROWS + threadIdx.x;
    const bool active = j < Tk;
    const size_t bh = (size_t)b * NH + h;
    const float *ub = dout + (size_t)b * Tq * C + (size_t)h * HS, *qb = q + (size_t)b * Tq * C + (size_t)h * HS;
    float ak[HSP], av[HSP];
#pragma unroll
    for (int d = 0; d < HSP; d++) ak[d] = av[d] = 0.0f;
    for (int i0 = 0; i0 < Tq; i0 += ATT_KT) {
        if (dv) att_load_tile<HSP>(us, ub, i0, Tq, HS, C);
        if (dk) att_load_tile<HSP>(qs, qb, i0, Tq, HS, C);
        __syncthreads();
        if (active) {
            const int in = Tq - i0 < ATT_KT ? Tq - i0 : ATT_KT;
            for (int ii = 0; ii < in; ii++) {
                const size_t e = (bh * Tq + (size_t)(i0 + ii)) * Tk + (size_t)j;
                if (dv) {
                    const float w = att[e] * dropout_scale(drop, e);
#pragma unroll
                    for (int d = 0; d < HSP; d++) av[d] += w * us[ii][d];
                }
                if (dk) {
                    const float w = ws[e];
#pragma unroll
                    for (int d = 0; d < HSP; d++) ak[d] += w * qs[ii][d];
                }
            }
        }
        __syncthreads();
    }
    if (!active) return;
    const size_t off = ((size_t)b * Tk + j) * C + (size_t)h * HS;
#pragma unroll
    for (int d = 0; d < HSP; d++) {
        if (d < HS) {
            if (dk) dk[off + d] += ak[d];
            if (dv) dv[off + d] += av[d];
        }
    }
}

static int att_hsp(int HS) {
    if (HS < 1 || HS > ATT_HSMAX) avt_fatal("attention (cuda): head size %d not in [1, %d]", HS, ATT_HSMAX);
    return HS <= 16 ? 16 : HS <= 32 ? 32 : HS <= 48 ? 48 : 64;
}

template <int HSP>
static void att_forward(float *out, float *att, const float *q, const float *k, const float *v, DropoutKey drop,
                        int causal, int B, int Tq, int Tk, int NH, int HS, cudaStream_t stream) {
    const dim3 grid(avt_blocks((size_t)Tq, ATT_ROWS), (unsigned)NH, (unsigned)B);
    LAUNCH(attention_forward_kernel<HSP>, grid, ATT_ROWS, 0, stream, out, att, q, k, v, drop, causal, Tq, Tk, NH,
           HS);
}

template <int HSP>
static void att_backward(float *dq, float *dk, float *dv, float *ws, const float *dout, const float *q,
                         const float *k, const float *v, const float *att, DropoutKey drop, int B, int Tq, int Tk,
                         int NH, int HS, cudaStream_t stream) {
    const dim3 grid_rows(avt_blocks((size_t)Tq, ATT_ROWS), (unsigned)NH, (unsigned)B);
    LAUNCH(attention_backward_rows_kernel<HSP>, grid_rows, ATT_ROWS, 0, stream, dq, ws, dout, k, v, att, drop, Tq,
           Tk, NH, HS);
    if (!dk && !dv) return;
    const dim3 grid_cols(avt_blocks((size_t)Tk, ATT_ROWS), (unsigned)NH, (unsigned)B);
    LAUNCH(attention_backward_cols_kernel<HSP>, grid_cols, ATT_ROWS, 0, stream, dk, dv, ws, dout, q, att, drop, Tq,
           Tk, NH, HS);
}

extern "C" {

void attention_forward_cuda(float *out, float *att, const float *q, const float *k, const float *v, DropoutKey drop,
                            int causal, int B, int Tq, int Tk, int NH, int HS, cudaStream_t stream) {
    if (B <= 0 || Tq <= 0 || Tk <= 0 || NH <= 0) return;
    switch (att_hsp(HS)) {
    case 16: att_forward<16>(out, att, q, k, v, drop, causal, B, Tq, Tk, NH, HS, stream); break;
    case 32: att_forward<32>(out, att, q, k, v, drop, causal, B, Tq, Tk, NH, HS, stream); break;
    case 48: att_forward<48>(out, att, q, k, v, drop, causal, B, Tq, Tk, NH, HS, stream); break;
    default: att_forward<64>(out, att, q, k, v, drop, causal, B, Tq, Tk, NH, HS, stream); break;
    }
}

size_t attention_backward_ws_floats_cuda(int B, int Tq, int Tk, int NH) {
    return (size_t)(B > 0 ? B : 0) * (size_t)(NH > 0 ? NH : 0) * (size_t)(Tq > 0 ? Tq : 0) * (size_t)(Tk > 0 ? Tk : 0);
}

void attention_backward_cuda(float *dq, float *dk, float *dv, float *ws, const float *dout, const float *q,
                             const float *k, const float *v, const float *att, DropoutKey drop, int B, int Tq, int Tk,
                             int NH, int HS, cudaStream_t stream) {
    if (B <= 0 || Tq <= 0 || Tk <= 0 || NH <= 0) return;
    if (!dq && !dk && !dv) return;
    switch (att_hsp(HS)) {
    case 16: att_backward<16>(dq, dk, dv, ws, dout, q, k, v, att, drop, B, Tq, Tk, NH, HS, stream); break;
    case 32: att_backward<32>(dq, dk, dv, ws, dout, q, k, v, att, drop, B, Tq, Tk, NH, HS, stream); break;
    case 48: att_backward<48>(dq, dk, dv, ws, dout, q, k, v, att, drop, B, Tq, Tk, NH, HS, stream); break;
    default: att_backward<64>(dq, dk, dv, ws, dout, q, k, v, att, drop, B, Tq, Tk, NH, HS, stream); break;
    }
}

}
