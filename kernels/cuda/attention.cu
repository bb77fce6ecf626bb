// Multi-head scaled dot-product attention on the GPU: the twin of kernels/cpu/attention.c (q scaled by HS^-0.5
// before q.k; causal hides key j from query i when j - i >= 1 + |Tk - Tq|; att saved BEFORE dropout; the dropout
// element index is att's (B, NH, Tq, Tk) offset; backward ACCUMULATES).
//
// Forward: one block per (tile of ATT_FROWS query rows, head, batch); each warp owns ATT_RPW query rows and
// works on them together, so every key/value element it reads from shared memory serves all of them. Key/value
// tiles of ATT_KT = 32 keys are staged in shared memory (head size padded to HSP = 16, 24, 32, 48 or 64, a template
// argument). Per tile, lane j scores key j0 + j against the warp's rows (q scaled first, read as float4
// broadcasts; the key tile has an odd row stride, so the 32 lanes' reads hit 32 banks), the tile's max comes from
// a shuffle butterfly and updates the row's running max (warp-uniform, so the rescale factor is too); lane j keeps
// its own partial softmax sum, and its weight p_j * dropout_j goes to shared memory. Then lanes split the head
// dimensions (d = lane, lane + 32) and accumulate the tile's weights times the value rows in key order. The raw
// scores go to att on the way (coalesced: lane j writes column j0 + j); a last pass over the row, by the same
// lanes, turns them into the softmax with the final max and sum. Dropout is drawn by the lane that owns the key,
// with att's element index, as the CPU.
//
// Backward, deterministic and without atomics, in two kernels that each write every output element from one
// thread in a fixed order:
//   1. rows (thread per query row): dP_ij = (dout_i . v_j) * m_ij into ws (B, NH, Tq, Tk),
//      D_i = sum_j dP_ij att_ij, then dS_ij = att_ij (dP_ij - D_i) HS^-0.5 in place, then dq_i += sum_j dS_ij k_j
//      over key tiles in shared memory;
//   2. columns (thread per key): dv_j += sum_i att_ij m_ij dout_i and dk_j += sum_i dS_ij q_i over query tiles of
//      dout and q in shared memory (att and ws reads are coalesced across the threads of a warp).
#include "kernels/cuda/kernels.cuh"

#include <float.h>

#define ATT_ROWS 64  // backward: threads per block, one query row or key each
#define ATT_KT 32    // keys of a shared tile (queries in the backward column kernel); one per lane in the forward
#define ATT_HSMAX 64
#define ATT_WARPS 4                      // forward: warps per block
#define ATT_RPW 4                        // forward: query rows per warp
#define ATT_FROWS (ATT_WARPS * ATT_RPW)  // forward: query rows per block
#define ATT_FULL_MASK 0xffffffffu

// Keys visible to query i: j < att_visible(i).
__device__ __forceinline__ int att_visible(int causal, int i, int Tq, int Tk) {
    if (!causal) return Tk;
    const int off = Tk > Tq ? Tk - Tq : Tq - Tk;
    const int n = i + off + 1;
    return n < Tk ? n : Tk;
}

// Stage rows [r0, r0 + ATT_KT) of head columns of x (rows of stride C) into tile (ATT_KT, LD), zero-padded to HSP
// columns.
template <int HSP, int LD = HSP>
__device__ __forceinline__ void att_load_tile(float (*tile)[LD], const float *__restrict__ x, int r0, int nrows,
                                              int HS, int C) {
    for (int idx = threadIdx.x; idx < ATT_KT * HSP; idx += blockDim.x) {
        const int r = idx / HSP, d = idx % HSP;
        tile[r][d] = (r0 + r < nrows && d < HS) ? x[(size_t)(r0 + r) * C + d] : 0.0f;
    }
}

// Max and sum over the 32 lanes (xor butterfly: every lane gets the same bits).
__device__ __forceinline__ float att_warp_max(float x) {
#pragma unroll
    for (int o = 16; o > 0; o /= 2) x = fmaxf(x, __shfl_xor_sync(ATT_FULL_MASK, x, o));
    return x;
}
__device__ __forceinline__ float att_warp_sum(float x) {
#pragma unroll
    for (int o = 16; o > 0; o /= 2) x += __shfl_xor_sync(ATT_FULL_MASK, x, o);
    return x;
}

template <int HSP>
__global__ void __launch_bounds__(ATT_WARPS * 32)
    attention_forward_kernel(float *__restrict__ out, float *__restrict__ att, const float *__restrict__ q,
                             const float *__restrict__ k, const float *__restrict__ v, DropoutKey drop, int causal,
                             int Tq, int Tk, int NH, int HS) {
    // out (B, Tq, C); att (B, NH, Tq, Tk); q (B, Tq, C); k, v (B, Tk, C)
    constexpr int NC = (HSP + 31) / 32;  // head dimensions per lane in the output phase
    __shared__ float ks[ATT_KT][HSP + 1];  // odd row stride: lanes j = 0..31 read column d from 32 banks
    __shared__ float vs[ATT_KT][HSP];
    __shared__ __align__(16) float qs[ATT_WARPS][ATT_RPW][HSP];  // each warp's scaled q rows
    __shared__ __align__(16) float ws[ATT_WARPS][ATT_RPW][ATT_KT];  // each warp's weights of the tile's keys
    const int lane = threadIdx.x % 32, w = threadIdx.x / 32;
    const int C = NH * HS, h = blockIdx.y, b = blockIdx.z;
    const int i0 = blockIdx.x * ATT_FROWS;
    const size_t bh = (size_t)b * NH + h;
    const float *kb = k + (size_t)b * Tk * C + (size_t)h * HS, *vb = v + (size_t)b * Tk * C + (size_t)h * HS;
    const float scale = 1.0f / sqrtf((float)HS);
    // Keys any row of the block sees: the last row sees the most.
    const int nkeys = att_visible(causal, (i0 + ATT_FROWS < Tq ? i0 + ATT_FROWS : Tq) - 1, Tq, Tk);

    // The warp's rows are interleaved over the block (row r is i0 + r * ATT_WARPS + w), so causal rows of every
    // length are spread evenly over the warps.
    int nv[ATT_RPW];
    float m[ATT_RPW], l[ATT_RPW], o[ATT_RPW][NC];
    int nvw = 0;  // keys any of the warp's rows sees
#pragma unroll
    for (int r = 0; r < ATT_RPW; r++) {
        const int i = i0 + r * ATT_WARPS + w;
        nv[r] = i < Tq ? att_visible(causal, i, Tq, Tk) : 0;
        nvw = nv[r] > nvw ? nv[r] : nvw;
        m[r] = -FLT_MAX;
        l[r] = 0.0f;
#pragma unroll
        for (int c = 0; c < NC; c++) o[r][c] = 0.0f;
        for (int d = lane; d < HSP; d += 32)
            qs[w][r][d] = (i < Tq && d < HS) ? q[((size_t)b * Tq + i) * C + (size_t)h * HS + d] * scale : 0.0f;
    }
    for (int j0 = 0; j0 < nkeys; j0 += ATT_KT) {
        att_load_tile<HSP, HSP + 1>(ks, kb, j0, Tk, HS, C);
        att_load_tile<HSP>(vs, vb, j0, Tk, HS, C);
        __syncthreads();
        if (j0 < nvw) {  // warp-uniform
            const int j = j0 + lane;
            float s[ATT_RPW];
#pragma unroll
            for (int r = 0; r < ATT_RPW; r++) s[r] = 0.0f;
#pragma unroll
            for (int d4 = 0; d4 < HSP / 4; d4++) {
                const float k0 = ks[lane][4 * d4], k1 = ks[lane][4 * d4 + 1], k2 = ks[lane][4 * d4 + 2],
                            k3 = ks[lane][4 * d4 + 3];
#pragma unroll
                for (int r = 0; r < ATT_RPW; r++) {
                    const float4 qq = reinterpret_cast<const float4 *>(qs[w][r])[d4];
                    s[r] += qq.x * k0;
                    s[r] += qq.y * k1;
                    s[r] += qq.z * k2;
                    s[r] += qq.w * k3;
                }
            }
#pragma unroll
            for (int r = 0; r < ATT_RPW; r++) {
                const bool valid = j < nv[r];
                // -FLT_MAX, not -inf, for hidden keys: a row with none visible in this tile keeps its max and gets
                // the factor exp(0) = 1, never exp(-inf - -inf).
                const float mn = fmaxf(m[r], att_warp_max(valid ? s[r] : -FLT_MAX));
                const float corr = expf(m[r] - mn);
                const float p = valid ? expf(s[r] - mn) : 0.0f;
                m[r] = mn;
                l[r] = l[r] * corr + p;
#pragma unroll
                for (int c = 0; c < NC; c++) o[r][c] *= corr;
                const size_t row = bh * Tq + (size_t)(i0 + r * ATT_WARPS + w);
                if (valid) att[row * Tk + j] = s[r];  // raw score; normalised below
                ws[w][r][lane] = valid ? p * dropout_scale(drop, row * Tk + (size_t)j) : 0.0f;
            }
            __syncwarp();
            // Keys past every row's last visible one have weight 0; stop at the next multiple of 4 after it.
            const int jn = nvw - j0 < ATT_KT ? (nvw - j0 + 3) / 4 * 4 : ATT_KT;
            for (int jj = 0; jj < jn; jj += 4) {
                float vv[4][NC];
#pragma unroll
                for (int u = 0; u < 4; u++)
#pragma unroll
                    for (int c = 0; c < NC; c++)
                        vv[u][c] = lane + 32 * c < HSP ? vs[jj + u][lane + 32 * c] : 0.0f;
#pragma unroll
                for (int r = 0; r < ATT_RPW; r++) {
                    const float4 pw = reinterpret_cast<const float4 *>(ws[w][r])[jj / 4];
#pragma unroll
                    for (int c = 0; c < NC; c++) {
                        o[r][c] += pw.x * vv[0][c];
                        o[r][c] += pw.y * vv[1][c];
                        o[r][c] += pw.z * vv[2][c];
                        o[r][c] += pw.w * vv[3][c];
                    }
                }
            }
        }
        __syncthreads();
    }
#pragma unroll
    for (int r = 0; r < ATT_RPW; r++) {
        const int i = i0 + r * ATT_WARPS + w;
        if (i >= Tq) break;  // warp-uniform; later rows are further out
        const float inv = 1.0f / att_warp_sum(l[r]);
        float *arow = att + (bh * Tq + i) * Tk;  // each lane re-reads only the scores it wrote
        for (int j = lane; j < Tk; j += 32) arow[j] = j < nv[r] ? expf(arow[j] - m[r]) * inv : 0.0f;
        float *orow = out + ((size_t)b * Tq + i) * C + (size_t)h * HS;
#pragma unroll
        for (int c = 0; c < NC; c++)
            if (lane + 32 * c < HS) orow[lane + 32 * c] = o[r][c] * inv;
    }
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

// The forward pads to a multiple of 8 as well: 24 (the base model's head size) would waste a quarter at 32.
static int att_forward_hsp(int HS) { return HS > 16 && HS <= 24 ? 24 : att_hsp(HS); }

template <int HSP>
static void att_forward(float *out, float *att, const float *q, const float *k, const float *v, DropoutKey drop,
                        int causal, int B, int Tq, int Tk, int NH, int HS, cudaStream_t stream) {
    const dim3 grid(avt_blocks((size_t)Tq, ATT_FROWS), (unsigned)NH, (unsigned)B);
    LAUNCH(attention_forward_kernel<HSP>, grid, ATT_WARPS * 32, 0, stream, out, att, q, k, v, drop, causal, Tq, Tk, NH,
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
    switch (att_forward_hsp(HS)) {
    case 16: att_forward<16>(out, att, q, k, v, drop, causal, B, Tq, Tk, NH, HS, stream); break;
    case 24: att_forward<24>(out, att, q, k, v, drop, causal, B, Tq, Tk, NH, HS, stream); break;
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
