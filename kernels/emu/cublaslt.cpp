// cuBLASLt for the emulated build: descriptors are plain structs, cublasLtMatmul is one cblas_sgemm on the host
// buffers that stand in for device memory (see kernels/emu/cublaslt.h for the subset). Misuse that the real
// library reports as a status (a bad size, a null handle) returns that status; what the emulation does not
// implement stops the process, so a test never passes on an unemulated path.
#include "kernels/emu/cublaslt.h"

#include <cblas.h>
#include <limits.h>
#include <string.h>

#include <initializer_list>

extern "C" {
#include "base/common.h"
}

#define LT_MAGIC 0x4c54454du  // marks live objects and the heuristic's algo ("LTEM")

struct cublasLtContext {
    uint32_t magic;
};
struct AvtEmuLtMatmulDesc {
    uint32_t magic;
    cublasOperation_t transa, transb;
    cublasLtEpilogue_t epilogue;
    const float *bias;  // (rows of D) or nullptr
};
struct AvtEmuLtLayout {
    uint32_t magic;
    uint64_t rows, cols;
    int64_t ld;
};
struct AvtEmuLtPreference {
    uint32_t magic;
};

#define LT_UNIMPLEMENTED(...) avt_fatal("cuBLASLt emulation: " __VA_ARGS__)

template <class T> static cublasStatus_t lt_new(T **out) {
    if (!out) return CUBLAS_STATUS_INVALID_VALUE;
    *out = new T();
    (*out)->magic = LT_MAGIC;
    return CUBLAS_STATUS_SUCCESS;
}

template <class T> static cublasStatus_t lt_delete(T *p) {
    if (!p || p->magic != LT_MAGIC) return CUBLAS_STATUS_INVALID_VALUE;
    p->magic = 0;
    delete p;
    return CUBLAS_STATUS_SUCCESS;
}

template <class T> static bool lt_live(const T *p) { return p && p->magic == LT_MAGIC; }

extern "C" cublasStatus_t cublasLtCreate(cublasLtHandle_t *lightHandle) { return lt_new(lightHandle); }
extern "C" cublasStatus_t cublasLtDestroy(cublasLtHandle_t lightHandle) { return lt_delete(lightHandle); }

extern "C" const char *cublasLtGetStatusString(cublasStatus_t status) {
    switch (status) {
    case CUBLAS_STATUS_SUCCESS: return "success";
    case CUBLAS_STATUS_NOT_INITIALIZED: return "the library was not initialized";
    case CUBLAS_STATUS_ALLOC_FAILED: return "the resource allocation failed";
    case CUBLAS_STATUS_INVALID_VALUE: return "an invalid numeric value was used as an argument";
    case CUBLAS_STATUS_NOT_SUPPORTED: return "the functionality requested is not supported";
    }
    return "unknown status";
}

extern "C" cublasStatus_t cublasLtMatmulDescCreate(cublasLtMatmulDesc_t *matmulDesc, cublasComputeType_t computeType,
                                                   cudaDataType_t scaleType) {
    if (computeType != CUBLAS_COMPUTE_32F) LT_UNIMPLEMENTED("compute type %d not implemented", (int)computeType);
    if (scaleType != CUDA_R_32F) LT_UNIMPLEMENTED("scale type %d not implemented", (int)scaleType);
    const cublasStatus_t s = lt_new(matmulDesc);
    if (s == CUBLAS_STATUS_SUCCESS) {
        (*matmulDesc)->transa = (*matmulDesc)->transb = CUBLAS_OP_N;
        (*matmulDesc)->epilogue = CUBLASLT_EPILOGUE_DEFAULT;
        (*matmulDesc)->bias = nullptr;
    }
    return s;
}

extern "C" cublasStatus_t cublasLtMatmulDescDestroy(cublasLtMatmulDesc_t matmulDesc) { return lt_delete(matmulDesc); }

// The library checks buf and its size against the attribute's type; so does the emulation.
template <class T> static cublasStatus_t lt_read(T *dst, const void *buf, size_t size) {
    if (!buf || size != sizeof(T)) return CUBLAS_STATUS_INVALID_VALUE;
    memcpy(dst, buf, sizeof(T));
    return CUBLAS_STATUS_SUCCESS;
}

static cublasStatus_t lt_read_op(cublasOperation_t *op, const void *buf, size_t size) {
    int32_t v;
    const cublasStatus_t s = lt_read(&v, buf, size);
    if (s != CUBLAS_STATUS_SUCCESS) return s;
    if (v != CUBLAS_OP_N && v != CUBLAS_OP_T) LT_UNIMPLEMENTED("transpose mode %d not implemented", (int)v);
    *op = (cublasOperation_t)v;
    return s;
}

extern "C" cublasStatus_t cublasLtMatmulDescSetAttribute(cublasLtMatmulDesc_t matmulDesc,
                                                         cublasLtMatmulDescAttributes_t attr, const void *buf,
                                                         size_t sizeInBytes) {
    if (!lt_live(matmulDesc)) return CUBLAS_STATUS_INVALID_VALUE;
    switch (attr) {
    case CUBLASLT_MATMUL_DESC_TRANSA: return lt_read_op(&matmulDesc->transa, buf, sizeInBytes);
    case CUBLASLT_MATMUL_DESC_TRANSB: return lt_read_op(&matmulDesc->transb, buf, sizeInBytes);
    case CUBLASLT_MATMUL_DESC_EPILOGUE: {
        uint32_t v;
        const cublasStatus_t s = lt_read(&v, buf, sizeInBytes);
        if (s != CUBLAS_STATUS_SUCCESS) return s;
        if (v != CUBLASLT_EPILOGUE_DEFAULT && v != CUBLASLT_EPILOGUE_BIAS)
            LT_UNIMPLEMENTED("epilogue %u not implemented", (unsigned)v);
        matmulDesc->epilogue = (cublasLtEpilogue_t)v;
        return s;
    }
    case CUBLASLT_MATMUL_DESC_BIAS_POINTER: return lt_read(&matmulDesc->bias, buf, sizeInBytes);
    }
    LT_UNIMPLEMENTED("matmul descriptor attribute %d not implemented", (int)attr);
}

extern "C" cublasStatus_t cublasLtMatrixLayoutCreate(cublasLtMatrixLayout_t *matLayout, cudaDataType type,
                                                     uint64_t rows, uint64_t cols, int64_t ld) {
    if (type != CUDA_R_32F) LT_UNIMPLEMENTED("matrix type %d not implemented", (int)type);
    const cublasStatus_t s = lt_new(matLayout);
    if (s == CUBLAS_STATUS_SUCCESS) {
        (*matLayout)->rows = rows;
        (*matLayout)->cols = cols;
        (*matLayout)->ld = ld;
    }
    return s;
}

extern "C" cublasStatus_t cublasLtMatrixLayoutDestroy(cublasLtMatrixLayout_t matLayout) { return lt_delete(matLayout); }

extern "C" cublasStatus_t cublasLtMatmulPreferenceCreate(cublasLtMatmulPreference_t *pref) { return lt_new(pref); }
extern "C" cublasStatus_t cublasLtMatmulPreferenceDestroy(cublasLtMatmulPreference_t pref) { return lt_delete(pref); }

// The preferences only narrow the heuristic's choice among GPU kernels: the emulation checks their types and has
// nothing to choose.
extern "C" cublasStatus_t cublasLtMatmulPreferenceSetAttribute(cublasLtMatmulPreference_t pref,
                                                               cublasLtMatmulPreferenceAttributes_t attr,
                                                               const void *buf, size_t sizeInBytes) {
    if (!lt_live(pref)) return CUBLAS_STATUS_INVALID_VALUE;
    switch (attr) {
    case CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES: {
        uint64_t v;
        return lt_read(&v, buf, sizeInBytes);
    }
    case CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES:
    case CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES:
    case CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES:
    case CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES: {
        uint32_t v;
        return lt_read(&v, buf, sizeInBytes);
    }
    }
    LT_UNIMPLEMENTED("matmul preference attribute %d not implemented", (int)attr);
}

// The GEMM's shape after the transposes, or INVALID_VALUE where the layouts disagree (as the library reports it).
struct LtShape {
    int m, n, k;
};

static cublasStatus_t lt_shape(LtShape *sh, cublasLtMatmulDesc_t desc, cublasLtMatrixLayout_t a,
                               cublasLtMatrixLayout_t b, cublasLtMatrixLayout_t c, cublasLtMatrixLayout_t d) {
    if (!lt_live(desc) || !lt_live(a) || !lt_live(b) || !lt_live(c) || !lt_live(d)) return CUBLAS_STATUS_INVALID_VALUE;
    const uint64_t m = d->rows, n = d->cols;
    const uint64_t k = desc->transa == CUBLAS_OP_N ? a->cols : a->rows;
    const uint64_t am = desc->transa == CUBLAS_OP_N ? a->rows : a->cols;
    const uint64_t bk = desc->transb == CUBLAS_OP_N ? b->rows : b->cols;
    const uint64_t bn = desc->transb == CUBLAS_OP_N ? b->cols : b->rows;
    if (am != m || bk != k || bn != n || c->rows != m || c->cols != n) return CUBLAS_STATUS_INVALID_VALUE;
    if (m == 0 || n == 0 || k == 0) return CUBLAS_STATUS_INVALID_VALUE;
    for (cublasLtMatrixLayout_t l : {a, b, c, d})
        if (l->ld < (int64_t)l->rows) return CUBLAS_STATUS_INVALID_VALUE;
    // cblas takes int sizes; past that the emulation would wrap, so it stops instead.
    for (uint64_t v : {m, n, k, (uint64_t)a->ld, (uint64_t)b->ld, (uint64_t)d->ld})
        if (v > (uint64_t)INT_MAX) LT_UNIMPLEMENTED("size %llu past the cblas int range", (unsigned long long)v);
    if (c->ld != d->ld) LT_UNIMPLEMENTED("C and D with different leading dimensions not implemented");
    sh->m = (int)m, sh->n = (int)n, sh->k = (int)k;
    return CUBLAS_STATUS_SUCCESS;
}

extern "C" cublasStatus_t cublasLtMatmulAlgoGetHeuristic(cublasLtHandle_t lightHandle,
                                                         cublasLtMatmulDesc_t operationDesc,
                                                         cublasLtMatrixLayout_t Adesc, cublasLtMatrixLayout_t Bdesc,
                                                         cublasLtMatrixLayout_t Cdesc, cublasLtMatrixLayout_t Ddesc,
                                                         cublasLtMatmulPreference_t preference,
                                                         int requestedAlgoCount,
                                                         cublasLtMatmulHeuristicResult_t heuristicResultsArray[],
                                                         int *returnAlgoCount) {
    if (!lt_live(lightHandle)) return CUBLAS_STATUS_NOT_INITIALIZED;
    if (!lt_live(preference) || requestedAlgoCount <= 0 || !heuristicResultsArray || !returnAlgoCount)
        return CUBLAS_STATUS_INVALID_VALUE;
    LtShape sh;
    const cublasStatus_t s = lt_shape(&sh, operationDesc, Adesc, Bdesc, Cdesc, Ddesc);
    if (s != CUBLAS_STATUS_SUCCESS) return s;
    cublasLtMatmulHeuristicResult_t r;
    memset(&r, 0, sizeof r);
    r.algo.data[0] = LT_MAGIC;
    r.workspaceSize = 0;
    r.state = CUBLAS_STATUS_SUCCESS;
    r.wavesCount = 1.0f;
    heuristicResultsArray[0] = r;
    *returnAlgoCount = 1;
    return CUBLAS_STATUS_SUCCESS;
}

extern "C" cublasStatus_t cublasLtMatmul(cublasLtHandle_t lightHandle, cublasLtMatmulDesc_t computeDesc,
                                         const void *alpha, const void *A, cublasLtMatrixLayout_t Adesc,
                                         const void *B, cublasLtMatrixLayout_t Bdesc, const void *beta,
                                         const void *C, cublasLtMatrixLayout_t Cdesc, void *D,
                                         cublasLtMatrixLayout_t Ddesc, const cublasLtMatmulAlgo_t *algo,
                                         void *workspace, size_t workspaceSizeInBytes, cudaStream_t stream) {
    (void)workspace, (void)workspaceSizeInBytes, (void)stream;  // no workspace needed; synchronous
    if (!lt_live(lightHandle)) return CUBLAS_STATUS_NOT_INITIALIZED;
    if (algo && algo->data[0] != LT_MAGIC) return CUBLAS_STATUS_INVALID_VALUE;
    if (!alpha || !beta || !A || !B || !D) return CUBLAS_STATUS_INVALID_VALUE;
    LtShape sh;
    const cublasStatus_t s = lt_shape(&sh, computeDesc, Adesc, Bdesc, Cdesc, Ddesc);
    if (s != CUBLAS_STATUS_SUCCESS) return s;
    const float al = *(const float *)alpha, be = *(const float *)beta;
    const float *c = (const float *)C;
    float *d = (float *)D;
    const float *bias = computeDesc->epilogue == CUBLASLT_EPILOGUE_BIAS ? computeDesc->bias : nullptr;
    if (computeDesc->epilogue == CUBLASLT_EPILOGUE_BIAS && !bias) return CUBLAS_STATUS_INVALID_VALUE;
    if (be != 0.0f && !c) return CUBLAS_STATUS_INVALID_VALUE;
    const size_t ld = (size_t)Ddesc->ld;
    // D = beta * C + bias first (beta == 0 does not read C, so NaNs there do not leak); the product is then added
    // with beta = 1. C == D (in place) reads each element before writing it.
    if (be != 1.0f || c != d || bias)
        for (size_t j = 0; j < (size_t)sh.n; j++)
            for (size_t i = 0; i < (size_t)sh.m; i++) {
                float v = bias ? bias[i] : 0.0f;
                if (be != 0.0f) v += be * c[j * ld + i];
                d[j * ld + i] = v;
            }
    cblas_sgemm(CblasColMajor, computeDesc->transa == CUBLAS_OP_N ? CblasNoTrans : CblasTrans,
                computeDesc->transb == CUBLAS_OP_N ? CblasNoTrans : CblasTrans, sh.m, sh.n, sh.k, al,
                (const float *)A, (int)Adesc->ld, (const float *)B, (int)Bdesc->ld, 1.0f, d, (int)ld);
    return CUBLAS_STATUS_SUCCESS;
}
