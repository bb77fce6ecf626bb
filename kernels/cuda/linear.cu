// Fully connected layer on the GPU: the twin of kernels/cpu/linear.c (out = inp . W^T + b; backward ACCUMULATES).
// The three GEMMs are cuBLASLt matmuls in fp32 compute (CUBLAS_COMPUTE_32F: no TF32, so results match the CPU's
// fp32 GEMM to summation-order rounding), the forward bias fused as the BIAS epilogue. The bias gradient is a
// column sum of dout, done deterministically without atomics: a first kernel sums fixed chunks of rows into
// per-chunk partials in ws, a second sums each column's partials in chunk order and adds them into dbias.
//
// Layouts: cuBLASLt is column-major, and a row-major (R, K) array is the column-major K x R matrix, its
// transpose. So every row-major product X = Y . Z is computed as X^T = Z^T . Y^T on the same memory.
//
// One process-wide handle and workspace, created on first use on the current device: GEMMs issued on different
// streams must not overlap (they would share the workspace); every caller so far uses one stream.
#include "kernels/cuda/kernels.cuh"

#include <stdint.h>

#define LIN_WORKSPACE_BYTES ((size_t)32 << 20)  // what cuBLASLt's Hopper kernels ask for at most (split-k)
#define LIN_ROWS_PER_CHUNK 64                  // dbias: rows summed by one block of the first stage
#define LIN_COLS_PER_BLOCK 128                 // dbias: columns per block, one per thread (coalesced row reads)
#define LIN_MAX_GRID_X 2147483647u

static cublasLtHandle_t lin_handle;
static void *lin_workspace;  // (LIN_WORKSPACE_BYTES) device

static void lin_init(void) {
    if (lin_handle) return;
    cublas_check(cublasLtCreate(&lin_handle));
    cuda_check(cudaMalloc(&lin_workspace, LIN_WORKSPACE_BYTES));
}

// The largest power of two up to 256 dividing the address. The heuristic otherwise assumes 256-byte aligned
// buffers, which a tensor at an offset inside a larger allocation need not be.
static uint32_t lin_alignment(const void *p) {
    uint32_t a = 256;
    while (a > 1 && (uintptr_t)p % a) a /= 2;
    return a;
}

static void lin_set_pref(cublasLtMatmulPreference_t pref, cublasLtMatmulPreferenceAttributes_t attr, uint32_t v) {
    cublas_check(cublasLtMatmulPreferenceSetAttribute(pref, attr, &v, sizeof v));
}

// d (m x n, column-major, leading dimension ldd) = op(a) . op(b) + beta * d, plus bias (m) added to every column
// when given. op(a) is m x k, stored k x m when transa; op(b) is k x n, stored n x k when transb.
static void lin_matmul(float *d, const float *a, const float *b, const float *bias, bool transa, bool transb,
                       size_t m, size_t n, size_t k, size_t lda, size_t ldb, size_t ldd, float beta,
                       cudaStream_t stream) {
    lin_init();
    cublasLtMatmulDesc_t desc;
    cublas_check(cublasLtMatmulDescCreate(&desc, CUBLAS_COMPUTE_32F, CUDA_R_32F));
    const cublasOperation_t ta = transa ? CUBLAS_OP_T : CUBLAS_OP_N, tb = transb ? CUBLAS_OP_T : CUBLAS_OP_N;
    cublas_check(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof ta));
    cublas_check(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof tb));
    if (bias) {
        const cublasLtEpilogue_t epi = CUBLASLT_EPILOGUE_BIAS;
        cublas_check(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_EPILOGUE, &epi, sizeof epi));
        cublas_check(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof bias));
    }
    cublasLtMatrixLayout_t la, lb, ld;
    cublas_check(cublasLtMatrixLayoutCreate(&la, CUDA_R_32F, transa ? k : m, transa ? m : k, (int64_t)lda));
    cublas_check(cublasLtMatrixLayoutCreate(&lb, CUDA_R_32F, transb ? n : k, transb ? k : n, (int64_t)ldb));
    cublas_check(cublasLtMatrixLayoutCreate(&ld, CUDA_R_32F, m, n, (int64_t)ldd));

    cublasLtMatmulPreference_t pref;
    cublas_check(cublasLtMatmulPreferenceCreate(&pref));
    const uint64_t ws_bytes = LIN_WORKSPACE_BYTES;
    cublas_check(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws_bytes,
                                                      sizeof ws_bytes));
    lin_set_pref(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, lin_alignment(a));
    lin_set_pref(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, lin_alignment(b));
    lin_set_pref(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, lin_alignment(d));
    lin_set_pref(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, lin_alignment(d));
    cublasLtMatmulHeuristicResult_t heur;
    int found = 0;
    cublas_check(cublasLtMatmulAlgoGetHeuristic(lin_handle, desc, la, lb, ld, ld, pref, 1, &heur, &found));
    if (found == 0)
        avt_fatal("linear: cuBLASLt has no algorithm for m %zu n %zu k %zu (trans %d %d, ld %zu %zu %zu)", m, n, k,
                  (int)transa, (int)transb, lda, ldb, ldd);

    // C is D: beta = 1 accumulates in place, beta = 0 does not read it.
    const float alpha = 1.0f;
    cublas_check(cublasLtMatmul(lin_handle, desc, &alpha, a, la, b, lb, &beta, d, ld, d, ld, &heur.algo,
                                lin_workspace, LIN_WORKSPACE_BYTES, stream));
    cublas_check(cublasLtMatmulPreferenceDestroy(pref));
    cublas_check(cublasLtMatrixLayoutDestroy(ld));
    cublas_check(cublasLtMatrixLayoutDestroy(lb));
    cublas_check(cublasLtMatrixLayoutDestroy(la));
    cublas_check(cublasLtMatmulDescDestroy(desc));
}

extern "C" void linear_forward_cuda(float *out, const float *inp, const float *weight, const float *bias, size_t N,
                                    int C, int OC, cudaStream_t stream) {
    // out (N, OC); inp (N, C); weight (OC, C); bias (OC) or nullptr
    if (N == 0 || OC <= 0) return;
    // The CPU twin writes the bias alone here; no layer of the models has zero inputs, and a GEMM needs k >= 1.
    if (C <= 0) avt_fatal("linear_forward_cuda: C = %d, need C >= 1", C);
    // out^T (OC x N) = W (OC x C) . inp^T (C x N); weight as stored is W^T (C x OC), hence transa.
    lin_matmul(out, weight, inp, bias, true, false, (size_t)OC, N, (size_t)C, (size_t)C, (size_t)C, (size_t)OC,
               0.0f, stream);
}

// Stage 1: block (chunk, column tile) sums its LIN_ROWS_PER_CHUNK rows in row order, one thread per column, and
// overwrites that chunk's partials. Each partial has exactly one writer, so no atomics and no order between blocks.
__global__ void __launch_bounds__(LIN_COLS_PER_BLOCK)
    linear_dbias_partials_kernel(float *__restrict__ part, const float *__restrict__ dout, size_t N, int OC) {
    // part (nchunks, OC) written; dout (N, OC)
    const int c = blockIdx.y * LIN_COLS_PER_BLOCK + threadIdx.x;
    if (c >= OC) return;  // no barrier below, so early exit is safe
    const size_t r0 = (size_t)blockIdx.x * LIN_ROWS_PER_CHUNK;
    const size_t r1 = r0 + LIN_ROWS_PER_CHUNK < N ? r0 + LIN_ROWS_PER_CHUNK : N;
    // double, as the CPU twin sums whole columns; one rounding per chunk when stored.
    double s = 0.0;
    for (size_t r = r0; r < r1; r++) s += dout[r * (size_t)OC + c];
    part[(size_t)blockIdx.x * OC + c] = (float)s;
}

// Stage 2: one thread per column sums the chunks' partials in chunk order and accumulates. The order is fixed by
// the shapes alone, so every run and every schedule gives the same bits.
__global__ void __launch_bounds__(LIN_COLS_PER_BLOCK)
    linear_dbias_sum_kernel(float *__restrict__ dbias, const float *__restrict__ part, size_t nchunks, int OC) {
    // dbias (OC) accumulated; part (nchunks, OC)
    const int c = blockIdx.x * LIN_COLS_PER_BLOCK + threadIdx.x;
    if (c >= OC) return;
    double s = 0.0;
    for (size_t k = 0; k < nchunks; k++) s += part[k * (size_t)OC + c];
    dbias[c] += (float)s;
}

static size_t lin_chunks(size_t N) { return (N + LIN_ROWS_PER_CHUNK - 1) / LIN_ROWS_PER_CHUNK; }

extern "C" size_t linear_backward_ws_floats_cuda(size_t N, int OC) { return OC <= 0 ? 0 : lin_chunks(N) * (size_t)OC; }

extern "C" void linear_backward_cuda(float *dinp, float *dweight, float *dbias, float *ws, const float *dout,
                                     const float *inp, const float *weight, size_t N, int C, int OC,
                                     cudaStream_t stream) {
    // dinp (N, C) or nullptr, dweight (OC, C) or nullptr, dbias (OC) or nullptr, all accumulated;
    // ws (linear_backward_ws_floats_cuda(N, OC)) scratch for dbias; dout (N, OC); inp (N, C); weight (OC, C)
    if (N == 0 || OC <= 0) return;
    // dinp^T (C x N) += W^T (C x OC, weight as stored) . dout^T (OC x N, dout as stored)
    if (dinp && C > 0)
        lin_matmul(dinp, weight, dout, nullptr, false, false, (size_t)C, N, (size_t)OC, (size_t)C, (size_t)OC,
                   (size_t)C, 1.0f, stream);
    // dweight^T (C x OC) += inp^T (C x N, inp as stored) . dout (N x OC, the transpose of dout as stored)
    if (dweight && C > 0)
        lin_matmul(dweight, inp, dout, nullptr, false, true, (size_t)C, (size_t)OC, N, (size_t)C, (size_t)OC,
                   (size_t)C, 1.0f, stream);
    if (!dbias) return;
    const size_t nchunks = lin_chunks(N);
    const unsigned ctiles = avt_blocks((size_t)OC, LIN_COLS_PER_BLOCK);
    if (nchunks > LIN_MAX_GRID_X || ctiles > 65535u)
        avt_fatal("linear backward: grid (%zu, %u) past the limits", nchunks, ctiles);
    LAUNCH(linear_dbias_partials_kernel, dim3((unsigned)nchunks, ctiles), LIN_COLS_PER_BLOCK, 0, stream, ws, dout, N,
           OC);
    LAUNCH(linear_dbias_sum_kernel, ctiles, LIN_COLS_PER_BLOCK, 0, stream, dbias, ws, nchunks, OC);
}
