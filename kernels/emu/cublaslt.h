// The subset of cuBLASLt that kernels/cuda/linear.cu calls, for the emulated build (-DAVT_EMU): the real names,
// types and enum values of <cublasLt.h>, implemented in kernels/emu/cublaslt.cpp on cblas_sgemm.
//
// Implemented: fp32 only (CUDA_R_32F matrices and scale, CUBLAS_COMPUTE_32F), column-major layouts without
// batching, transposes N/T of A and B, host alpha/beta, the DEFAULT and BIAS epilogues (fp32 bias of D's rows),
// and the preferences MAX_WORKSPACE_BYTES and MIN_ALIGNMENT_{A,B,C,D}_BYTES. Anything else stops the process
// with "cuBLASLt emulation: ... not implemented" rather than computing something else. Calls run synchronously
// on the calling thread, like the emulated kernels, so stream order holds trivially.
//
// Rounding: D = beta * C + bias is formed first and cblas_sgemm adds alpha * op(A) op(B) to it, the order of
// kernels/cpu/linear.c. A GPU adds the bias after the product and may split k; both are fp32 accumulation.
#ifndef AVT_EMU_CUBLASLT_H
#define AVT_EMU_CUBLASLT_H

#include <cstddef>
#include <cstdint>

#include "kernels/emu/emu.h"

extern "C" {

typedef enum {
    CUBLAS_STATUS_SUCCESS = 0,
    CUBLAS_STATUS_NOT_INITIALIZED = 1,
    CUBLAS_STATUS_ALLOC_FAILED = 3,
    CUBLAS_STATUS_INVALID_VALUE = 7,
    CUBLAS_STATUS_NOT_SUPPORTED = 15,
} cublasStatus_t;

typedef enum { CUBLAS_OP_N = 0, CUBLAS_OP_T = 1 } cublasOperation_t;
typedef enum { CUBLAS_COMPUTE_32F = 68 } cublasComputeType_t;
typedef enum cudaDataType_t { CUDA_R_32F = 0 } cudaDataType_t;
typedef cudaDataType_t cudaDataType;

typedef enum {
    CUBLASLT_MATMUL_DESC_TRANSA = 3,        // int32_t cublasOperation_t
    CUBLASLT_MATMUL_DESC_TRANSB = 4,        // int32_t cublasOperation_t
    CUBLASLT_MATMUL_DESC_EPILOGUE = 7,      // uint32_t cublasLtEpilogue_t
    CUBLASLT_MATMUL_DESC_BIAS_POINTER = 8,  // const void *
} cublasLtMatmulDescAttributes_t;

typedef enum { CUBLASLT_EPILOGUE_DEFAULT = 1, CUBLASLT_EPILOGUE_BIAS = 4 } cublasLtEpilogue_t;

typedef enum {
    CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES = 1,    // uint64_t
    CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES = 5,  // uint32_t, likewise B, C, D
    CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES = 6,
    CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES = 7,
    CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES = 8,
} cublasLtMatmulPreferenceAttributes_t;

// Opaque objects; the emulator's own structs behind the real handle type names.
typedef struct cublasLtContext *cublasLtHandle_t;
typedef struct AvtEmuLtMatmulDesc *cublasLtMatmulDesc_t;
typedef struct AvtEmuLtLayout *cublasLtMatrixLayout_t;
typedef struct AvtEmuLtPreference *cublasLtMatmulPreference_t;

typedef struct {
    uint64_t data[8];
} cublasLtMatmulAlgo_t;

typedef struct {
    cublasLtMatmulAlgo_t algo;
    size_t workspaceSize;
    cublasStatus_t state;
    float wavesCount;
    int reserved[4];
} cublasLtMatmulHeuristicResult_t;

cublasStatus_t cublasLtCreate(cublasLtHandle_t *lightHandle);
cublasStatus_t cublasLtDestroy(cublasLtHandle_t lightHandle);
const char *cublasLtGetStatusString(cublasStatus_t status);

cublasStatus_t cublasLtMatmulDescCreate(cublasLtMatmulDesc_t *matmulDesc, cublasComputeType_t computeType,
                                        cudaDataType_t scaleType);
cublasStatus_t cublasLtMatmulDescDestroy(cublasLtMatmulDesc_t matmulDesc);
cublasStatus_t cublasLtMatmulDescSetAttribute(cublasLtMatmulDesc_t matmulDesc, cublasLtMatmulDescAttributes_t attr,
                                              const void *buf, size_t sizeInBytes);

cublasStatus_t cublasLtMatrixLayoutCreate(cublasLtMatrixLayout_t *matLayout, cudaDataType type, uint64_t rows,
                                          uint64_t cols, int64_t ld);
cublasStatus_t cublasLtMatrixLayoutDestroy(cublasLtMatrixLayout_t matLayout);

cublasStatus_t cublasLtMatmulPreferenceCreate(cublasLtMatmulPreference_t *pref);
cublasStatus_t cublasLtMatmulPreferenceDestroy(cublasLtMatmulPreference_t pref);
cublasStatus_t cublasLtMatmulPreferenceSetAttribute(cublasLtMatmulPreference_t pref,
                                                    cublasLtMatmulPreferenceAttributes_t attr, const void *buf,
                                                    size_t sizeInBytes);

// One algorithm, needing no workspace; rejects what cublasLtMatmul would reject.
cublasStatus_t cublasLtMatmulAlgoGetHeuristic(cublasLtHandle_t lightHandle, cublasLtMatmulDesc_t operationDesc,
                                              cublasLtMatrixLayout_t Adesc, cublasLtMatrixLayout_t Bdesc,
                                              cublasLtMatrixLayout_t Cdesc, cublasLtMatrixLayout_t Ddesc,
                                              cublasLtMatmulPreference_t preference, int requestedAlgoCount,
                                              cublasLtMatmulHeuristicResult_t heuristicResultsArray[],
                                              int *returnAlgoCount);

// D = alpha * op(A) op(B) + beta * C (+ bias), alpha and beta host floats; algo nullptr or from the heuristic.
cublasStatus_t cublasLtMatmul(cublasLtHandle_t lightHandle, cublasLtMatmulDesc_t computeDesc, const void *alpha,
                              const void *A, cublasLtMatrixLayout_t Adesc, const void *B,
                              cublasLtMatrixLayout_t Bdesc, const void *beta, const void *C,
                              cublasLtMatrixLayout_t Cdesc, void *D, cublasLtMatrixLayout_t Ddesc,
                              const cublasLtMatmulAlgo_t *algo, void *workspace, size_t workspaceSizeInBytes,
                              cudaStream_t stream);
}

#endif
