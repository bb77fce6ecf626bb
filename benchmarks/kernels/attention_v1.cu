// The first attention forward kernel (kept for the kernel benchmark, bench_attention.cu): one thread per query row,
// with the row's scaled q and its output accumulator in registers (head size padded to HSP = 16, 32, 48 or 64),
// K/V tiles of ATT_KT keys in shared memory read as broadcasts, online softmax in fp32, raw scores written to att
// and normalised by a second pass over the thread's own row. Same semantics as attention_forward_cuda.
// The code below is the kernel as it was in kernels/cuda/attention.cu; the anonymous namespace keeps its names
// apart from that file's (both are linked into the benchmark).
#include "benchmarks/kernels/bench_common.cuh"

#include <float.h>

namespace {

#define ATT_ROWS 64  // threads per block: query rows
#define ATT_KT 32    // keys of a shared tile
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

int att_hsp(int HS) {
    if (HS < 1 || HS > ATT_HSMAX) avt_fatal("attention (cuda): head size %d not in [1, %d]", HS, ATT_HSMAX);
    return HS <= 16 ? 16 : HS <= 32 ? 32 : HS <= 48 ? 48 : 64;
}

template <int HSP>
void att_forward(float *out, float *att, const float *q, const float *k, const float *v, DropoutKey drop, int causal,
                 int B, int Tq, int Tk, int NH, int HS, cudaStream_t stream) {
    const dim3 grid(avt_blocks((size_t)Tq, ATT_ROWS), (unsigned)NH, (unsigned)B);
    LAUNCH(attention_forward_kernel<HSP>, grid, ATT_ROWS, 0, stream, out, att, q, k, v, drop, causal, Tq, Tk, NH,
           HS);
}

}  // namespace

extern "C" void attention_forward_cuda_v1(float *out, float *att, const float *q, const float *k, const float *v,
                                          DropoutKey drop, int causal, int B, int Tq, int Tk, int NH, int HS,
                                          cudaStream_t stream) {
    // out (B, Tq, C), att (B, NH, Tq, Tk); q (B, Tq, C); k, v (B, Tk, C)
    if (B <= 0 || Tq <= 0 || Tk <= 0 || NH <= 0) return;
    switch (att_hsp(HS)) {
    case 16: att_forward<16>(out, att, q, k, v, drop, causal, B, Tq, Tk, NH, HS, stream); break;
    case 32: att_forward<32>(out, att, q, k, v, drop, causal, B, Tq, Tk, NH, HS, stream); break;
    case 48: att_forward<48>(out, att, q, k, v, drop, causal, B, Tq, Tk, NH, HS, stream); break;
    default: att_forward<64>(out, att, q, k, v, drop, causal, B, Tq, Tk, NH, HS, stream); break;
    }
}
