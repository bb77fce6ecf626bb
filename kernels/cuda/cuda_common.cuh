// The one header every .cu file includes. Under nvcc it is the CUDA runtime and cuBLASLt; under emulation
// (-DAVT_EMU, the .cu compiled by g++ -std=c++17 -x c++) it is kernels/emu/emu.h, which runs the kernels on the
// CPU, and kernels/emu/cublaslt.h, cuBLASLt's matmul on cblas_sgemm.
//
// Write kernels in plain CUDA with four rules so that both builds compile them:
// - launch with LAUNCH(kernel, grid, block, smem_bytes, stream, args...), never <<<...>>> (a template kernel whose
//   arguments hold a comma goes in parentheses: LAUNCH((k<64, float>), ...));
// - declare dynamic shared memory with DYNAMIC_SHARED(type, name) (static `__shared__ T x[N];` is fine);
// - call the *_sync warp intrinsics, never the pre-Volta ones, and name every lane that takes part in the mask;
// - pass nullptr, not NULL, for a null pointer argument (the emulator converts arguments through templates).
#ifndef AVT_CUDA_COMMON_CUH
#define AVT_CUDA_COMMON_CUH

#include <stddef.h>
#include <stdio.h>

#ifdef AVT_EMU
#include "kernels/emu/emu.h"
#include "kernels/emu/cublaslt.h"  // the subset of cuBLASLt that linear.cu uses, on cblas_sgemm
#else
#include <cuda_runtime.h>
#include <cublasLt.h>
#endif

extern "C" {
#include "base/common.h"
}

// Checked runtime call: on failure "avt: FILE:LINE: EXPR: <error>" and exit(1).
static inline void avt_cuda_check_at(cudaError_t e, const char *expr, const char *file, int line) {
    if (e != cudaSuccess) avt_fatal_at(file, line, "%s: %s", expr, cudaGetErrorString(e));
}
#define cuda_check(expr) avt_cuda_check_at((expr), #expr, __FILE__, __LINE__)

// Checked cuBLASLt call, the same way: "avt: FILE:LINE: EXPR: cuBLASLt <status>".
static inline void avt_cublas_check_at(cublasStatus_t s, const char *expr, const char *file, int line) {
    if (s != CUBLAS_STATUS_SUCCESS)
        avt_fatal_at(file, line, "%s: cuBLASLt %s (status %d)", expr, cublasLtGetStatusString(s), (int)s);
}
#define cublas_check(expr) avt_cublas_check_at((expr), #expr, __FILE__, __LINE__)

#ifdef AVT_EMU
// The emulator checks the configuration itself and stops at the launch's line on an error.
#define LAUNCH(kernel, grid, block, smem_bytes, stream, ...) \
    avt_emu::launch(#kernel, __FILE__, __LINE__, kernel, grid, block, smem_bytes, stream, ##__VA_ARGS__)
#define DYNAMIC_SHARED(type, name) type *name = static_cast<type *>(avt_emu::dynamic_shared())
#else
#define LAUNCH(kernel, grid, block, smem_bytes, stream, ...)                 \
    do {                                                                     \
        kernel<<<(grid), (block), (smem_bytes), (stream)>>>(__VA_ARGS__);    \
        cuda_check(cudaGetLastError());                                      \
    } while (0)
// One byte array for every kernel of a file (extern __shared__ arrays of different types may not share a name);
// 16-byte aligned, as the emulator's.
#define DYNAMIC_SHARED(type, name)                                  \
    extern __shared__ __align__(16) unsigned char avt_dynamic_smem[]; \
    type *name = reinterpret_cast<type *>(avt_dynamic_smem)
#endif

// Blocks of `block` threads that cover n items.
static inline unsigned avt_blocks(size_t n, unsigned block) { return (unsigned)((n + block - 1) / block); }

// Grid-stride loops: blocks for n items, capped at max_grid (past a few waves more blocks only add scheduling
// cost; the threads stride over the rest), and each thread's first item and stride.
static inline unsigned avt_grid(size_t n, unsigned block, unsigned max_grid) {
    const unsigned g = avt_blocks(n, block);
    return g < max_grid ? g : max_grid;
}
#define GRID_START ((size_t)blockIdx.x * blockDim.x + threadIdx.x)
#define GRID_STRIDE ((size_t)gridDim.x * blockDim.x)

#endif
